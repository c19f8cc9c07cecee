package engine

import (
	"strconv"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// c2s is the client-to-server stream kind (RFC 6120, RFC 6121): jabber:client, STARTTLS,
// SASL (auth.go), in-band registration, resource binding, then stanzas to the router and
// registered top-level elements to their modules. Features that modules register are
// offered at their stage; nothing here knows which XEPs exist.
type c2s struct{}

func (c2s) name() string                        { return "c2s" }
func (c2s) ns() string                          { return ns.Client }
func (c2s) scanKind() xmlstream.StreamKind      { return xmlstream.KindClient }
func (c2s) header(c *conn, h *xmlstream.Stanza) { c.onHeader(h) }
func (c2s) element(c *conn, st *xmlstream.Stanza) bool {
	return c.onElement(st)
}
func (c2s) closed(c *conn) {}

func (c *conn) onHeader(h *xmlstream.Stanza) {
	cfg := c.srv().config()
	c.domain, _ = c.srv().hostIndex(cfg.Domains[0])
	to, _ := h.Attr("to")
	if len(to) > 0 {
		d, err := jid.PrepareDomain(string(xmlstream.AppendUnescaped(nil, to)))
		found := false
		if err == nil {
			c.domain, found = c.srv().hostIndex(d)
		}
		c.writeHeader(h, ns.Client)
		if !found {
			c.fail(stanza.HostUnknown, "")
			return
		}
	} else {
		c.writeHeader(h, ns.Client)
	}
	// RFC 6120 §4.7.5: a missing version means 0.9, which we do not speak.
	if v, ok := h.Attr("version"); !ok || len(v) < 2 || v[0] != '1' || v[1] != '.' {
		c.fail(stanza.UnsupportedVersion, "version='1.0' is required")
		return
	}
	c.clear(fTailored) // a restarted stream may name no account
	if from, ok := h.Attr("from"); ok && c.tailorFeatures(from) {
		return
	}
	c.writeFeatures()
}

func (c *conn) writeFeatures() { c.writeFeaturesFor(0) }

// writeFeaturesFor writes the features, offering the SCRAM hashes in have (0: all).
func (c *conn) writeFeaturesFor(have uint8) {
	cfg := c.srv().config()
	k := featKey{cfg: cfg, tls: c.has(fTLS), ws: c.ws != nil, cb: uint8(len(c.cbTypes())), have: have,
		guests: cfg.anonymousHost(c.domainName()), reg: c.openRegistration(cfg), mods: c.srv().rt.HostView(c.domainName())}
	switch c.state.Load() {
	case stHeader, stNegotiating:
		c.state.Store(stNegotiating)
	case stAuthed, stBind:
		c.state.Store(stBind)
		k.bind = true
		// The caps hash follows the host's disco#info, which a module's settings change
		// (its own XEP-0157 addresses, a reload's) without a new configuration.
		k.ver = c.srv().rt.CapsVerFor(c.domainName())
	default:
		return
	}
	c.write(c.srv().features(k, c.buildFeatures))
}

// featKey names one form of <stream:features>: it depends on nothing but the
// configuration, the stage, the connection's TLS and WebSocket state and whether its host
// takes guests, so each form is built once per configuration instead of at every stream
// (re)start of every login.
type featKey struct {
	cfg     *Config
	bind    bool  // after authentication
	tls, ws bool  // TLS on; a WebSocket transport
	cb      uint8 // how many channel-binding types the TLS connection supports
	have    uint8 // the SCRAM hashes offered (scramMask; 0: all)
	guests  bool  // the stream's host offers ANONYMOUS (anon.go)
	reg     bool  // the stream's host takes open registration (vhosts.go)
	// mods is the set of modules of the stream's host (router.HostView): "" for all, the
	// host's name when it turns some off ([vhosts] modules_disabled).
	mods string
	// ver is the host's XEP-0115 hash, in the features after authentication.
	ver string
}

// features returns the features for k, building them with build the first time.
func (s *Server) features(k featKey, build func(featKey) []byte) []byte {
	if s.featCfg.Load() != k.cfg {
		s.feats.Clear() // a reload: the old forms can no longer be asked for
		s.featCfg.Store(k.cfg)
	}
	if b, ok := s.feats.Load(k); ok {
		return b.([]byte)
	}
	b := build(k)
	s.feats.Store(k, b)
	return b
}

// buildFeatures makes the <stream:features> of k for this connection.
func (c *conn) buildFeatures(k featKey) []byte {
	cfg := k.cfg
	var b xmlstream.Builder
	b.Start("stream:features")
	if !k.bind {
		if !k.tls && cfg.TLS != nil && !k.ws { // WebSocket has its TLS below HTTP
			b.Start("starttls").Attr("xmlns", ns.TLS)
			if cfg.RequireTLS {
				b.Start("required").End()
			}
			b.End()
		}
		if k.tls || !cfg.RequireTLS || cfg.TLS == nil {
			b.Start("mechanisms").Attr("xmlns", ns.SASL)
			for _, m := range c.mechanismsFor(k.have) {
				b.Start("mechanism").Text(m).End()
			}
			b.End()
			c.sasl2Feature(&b, k.have)
			if cb := c.cbTypes(); len(cb) > 0 {
				// XEP-0440: which channel bindings this server supports.
				b.Start("sasl-channel-binding").Attr("xmlns", "urn:xmpp:sasl-cb:0")
				for _, t := range cb {
					b.Start("channel-binding").Attr("type", t).End()
				}
				b.End()
			}
			if k.reg {
				b.Start("register").Attr("xmlns", ns.RegisterFeature).End()
			}
			// XEP-0445: an invitation's token opens registration, open or not.
			b.Start("register").Attr("xmlns", nsIBRToken).End()
			b.Raw(c.srv().rt.StreamFeaturesFor(c.domainName(), module.PreAuth))
		}
		// A silent unauthenticated stream lasts PreAuthTimeout at most.
		appendLimits(&b, cfg.Limits.MaxStanza, cfg.PreAuthTimeout)
	} else {
		b.Start("bind").Attr("xmlns", ns.Bind).End()
		b.Start("session").Attr("xmlns", ns.Session).Start("optional").End().End()
		b.Start("c").Attr("xmlns", ns.Caps).Attr("hash", "sha-1").Attr("node", module.CapsNode).
			Attr("ver", k.ver).End()
		b.Start("sm").Attr("xmlns", nsSM).End() // XEP-0198, the engine's own
		b.Raw(c.srv().rt.StreamFeaturesFor(c.domainName(), module.PostAuth))
		appendLimits(&b, cfg.Limits.MaxStanza, cfg.PingAfter)
	}
	b.End()
	return b.B
}

// nsStreamLimits is XEP-0478 stream limits advertisement.
const nsStreamLimits = "urn:xmpp:stream-limits:0"

// appendLimits writes the XEP-0478 <limits/> feature: the largest top-level element the
// stream takes (a larger one closes it with policy-violation) and how long it may be
// silent before the server checks on it or closes it. Clients that read it shrink what
// they send (avatars, vCards) instead of losing the connection to a stream error.
func appendLimits(b *xmlstream.Builder, maxBytes int, idle time.Duration) {
	b.Start("limits").Attr("xmlns", nsStreamLimits)
	b.Start("max-bytes").Text(strconv.Itoa(maxBytes)).End()
	b.Start("idle-seconds").Text(strconv.Itoa(int(idle / time.Second))).End()
	b.End()
}

// onElement handles one top-level element. It reports whether TLS just started (the
// rest of the input belongs to the TLS layer).
func (c *conn) onElement(st *xmlstream.Stanza) bool {
	state := c.state.Load()
	elemNS := string(st.NS)
	name := string(st.Name)
	if state == stEstablished {
		c.established(st)
		return false
	}
	switch {
	case elemNS == ns.TLS && name == "starttls":
		return c.onStartTLS()
	case elemNS == nsSASL2 && (name == "next" || name == "task-data"):
		c.onUpgrade(st, name)
		return false
	case elemNS == ns.SASL && (name == "auth" || name == "response" || name == "abort"),
		elemNS == nsSASL2 && (name == "authenticate" || name == "response" || name == "abort"):
		c.onSASL(st)
		return false
	}
	cfg := c.srv().config()
	if st.Kind() == xmlstream.KindIQ && !c.has(fAuthed) {
		p, ok := st.FirstChild()
		preauth := ok && string(p.NS()) == nsPreauth && string(p.Name()) == "preauth"
		if preauth || ok && string(p.NS()) == ns.Register && (c.openRegistration(cfg) || c.has(fInvited)) {
			if cfg.RequireTLS && !c.has(fTLS) && cfg.TLS != nil {
				c.fail(stanza.NotAuthorized, "STARTTLS is required first")
				return false
			}
			if answered(st.Type) {
				return false
			}
			if preauth {
				c.onPreauth(st, p)
			} else {
				c.onRegister(st, p)
			}
			return false
		}
	}
	if state == stBind && string(st.NS) == nsSM {
		switch name {
		case "resume":
			c.onResume(st)
		case "r", "a":
			// Nothing is counted before <enable/>: an ack or a request for one is left
			// unanswered, as Prosody does. A <failed/> here would read as the answer to the
			// <resume/> that a reconnecting client sends right after its old session's <r/>
			// (Converse.js 14), which then binds a new session beside the resumed one.
		default:
			// XEP-0198 §3: enable before a resource is bound is an unexpected request.
			c.write(smFailed("unexpected-request"))
		}
		return false
	}
	if st.Kind() == xmlstream.KindIQ && state == stBind {
		if p, ok := st.FirstChild(); ok {
			switch {
			case string(p.NS()) == ns.Bind && string(p.Name()) == "bind":
				if !answered(st.Type) {
					c.onBind(st, p)
				}
				return false
			}
		}
	}
	if c.onStray(st, state) {
		return false
	}
	c.fail(stanza.NotAuthorized, "")
	return false
}

func (c *conn) established(st *xmlstream.Stanza) {
	k := st.Kind()
	if k == xmlstream.KindOther {
		if string(st.NS) == nsSM {
			c.onSM(st) // counts stanzas on the wire: the engine's own part of the protocol
			return
		}
		// Other top-level elements that are not stanzas (XEP-0352 <active/>) belong to
		// the module that registered them; anything else is an error.
		if !c.srv().rt.Nonza(c.sess, st.Raw, st.NS, st.Name) {
			c.fail(stanza.UnsupportedStanzaType, "")
		}
		return
	}
	if len(st.From) > 0 && !c.fromOK(st.From) {
		c.fail(stanza.InvalidFrom, "")
		return
	}
	if sm := c.sm.Load(); sm != nil {
		sm.mu.Lock()
		sm.hIn++
		sm.mu.Unlock()
	}
	if k == xmlstream.KindIQ && string(st.Type) == "set" && len(st.To) == 0 {
		if p, ok := st.FirstChild(); ok && string(p.NS()) == ns.Session {
			// RFC 3921 legacy session establishment: a no-op since RFC 6121. Through
			// Send, so that stream management counts it.
			var b xmlstream.Builder
			b.Start("iq").Attr("type", "result")
			if st.ID != nil {
				b.AttrBytes("id", xmlstream.AppendUnescaped(nil, st.ID))
			}
			b.End()
			c.Send(b.B)
			return
		}
	}
	if !c.srv().rt.Submit(c.sess, st) {
		// Dropped, so not handled: a resume's <resumed h/> must not count it, or the
		// client would take it for delivered and never send it again (XEP-0198 §4).
		if sm := c.sm.Load(); sm != nil {
			sm.mu.Lock()
			sm.hIn--
			sm.mu.Unlock()
		}
		c.fail(stanza.PolicyViolation, "too many stanzas")
		return
	}
	if c.sess.Blocked() {
		// Backpressure: take nothing more from this client until the router has passed
		// on what it holds (Resume).
		c.set(fBlocked)
	}
}

// fromOK checks a client-supplied 'from' against the session (RFC 6120 §8.1.2.1).
func (c *conn) fromOK(raw []byte) bool {
	full := c.sess.JID().String()
	v := raw
	if len(v) == len(full) && string(v) == full {
		return true
	}
	bare := c.bare.String()
	if string(v) == bare {
		return true
	}
	u := xmlstream.AppendUnescaped(nil, raw)
	if string(u) == full || string(u) == bare {
		return true
	}
	// The same address written another way (Juliet@Example.com): compared as prepared
	// (RFC 7622 §3); the router stamps the session's own form anyway.
	j, err := jid.ParseBytes(u)
	return err == nil && (j.String() == full || j.String() == bare)
}

// answered reports whether an IQ of type typ is itself an answer (result or error), which
// RFC 6120 §8.2.3 lets no one answer: one where a registration, an invitation's token or
// a bind belongs is dropped before its handler, not refused.
func answered(typ []byte) bool { return string(typ) == "result" || string(typ) == "error" }

// --- bind ---

func (c *conn) onBind(st *xmlstream.Stanza, p xmlstream.Element) {
	id := append([]byte(nil), st.ID...)
	if string(st.Type) != "set" {
		c.iqError(id, stanza.New(stanza.BadRequest))
		return
	}
	var res string
	if r, ok := p.Child(ns.Bind, "resource"); ok {
		raw := r.AppendText(nil)
		if len(raw) > 0 {
			prep, err := jid.PrepareResource(string(raw))
			if err != nil {
				c.iqError(id, stanza.New(stanza.BadRequest))
				return
			}
			res = prep
		}
	}
	c.bind(res, func(s *router.Session, err, werr error) { c.bound(id, s, err, werr) })
}

// bind asks the router to bind res for the authenticated account and runs done on the loop
// with its answer (werr set when the connection went meanwhile). Input waits until done
// has run.
func (c *conn) bind(res string, done func(s *router.Session, err, werr error)) {
	if s, ok, err := c.srv().rt.TryBind(c.bare, res, c); ok {
		// Bound on this loop: nothing was paused, and done's resume finds nothing held
		// (input is held only while paused, and process runs with nothing held).
		done(s, err, nil)
		return
	}
	c.set(fPaused | fBindWait)
	c.closing.v.Or(bBinding)
	gc := c.gc
	c.srv().rt.Bind(c.bare, res, c, func(s *router.Session, err error) {
		werr := gc.Wake(func(_ gnet.Conn, werr error) error {
			if werr == nil {
				c.enterLoop()
				defer c.exitLoop()
			}
			done(s, err, werr)
			return nil
		})
		if werr != nil && s != nil {
			c.srv().rt.Unbind(s)
		}
	})
}

// bind2 is bind for an XEP-0386 login: done also gets the modules' part of <bound/>.
func (c *conn) bind2(res string, done func(s *router.Session, bound []byte, err, werr error)) {
	if s, bound, ok, err := c.srv().rt.TryBindBound(c.bare, res, c); ok {
		done(s, bound, err, nil) // bound on this loop, as in bind
		return
	}
	c.set(fPaused | fBindWait)
	c.closing.v.Or(bBinding)
	gc := c.gc
	c.srv().rt.BindBound(c.bare, res, c, func(s *router.Session, bound []byte, err error) {
		werr := gc.Wake(func(_ gnet.Conn, werr error) error {
			if werr == nil {
				c.enterLoop()
				defer c.exitLoop()
			}
			done(s, bound, err, werr)
			return nil
		})
		if werr != nil && s != nil {
			c.srv().rt.Unbind(s)
		}
	})
}

// bindAnswered lets the router's stanzas reach the client, now that the bind's answer is
// written ahead of them (bBinding), then takes the input that waited: a presence
// pipelined behind the bind gets its own echo.
func (c *conn) bindAnswered() {
	c.closing.v.And(^bBinding)
	c.resume()
}

// bound runs on the loop with the router's answer to a bind.
func (c *conn) bound(id []byte, s *router.Session, err error, werr error) {
	defer c.recoverPanic()
	defer c.closing.v.And(^bBinding) // once the answer is written, on this loop
	c.clear(fBindWait)
	if werr != nil || c.closing.Load() {
		if s != nil {
			c.srv().rt.Unbind(s)
		}
		return
	}
	if err != nil {
		se, ok := err.(*stanza.Error)
		if !ok {
			se = stanza.New(stanza.InternalServerErrorCond)
		}
		c.iqError(id, se)
		c.bindAnswered()
		return
	}
	c.sess = s
	c.state.Store(stEstablished)
	c.srv().established.Add(1)
	var b xmlstream.Builder
	b.Start("bind").Attr("xmlns", ns.Bind).Start("jid").Text(s.JID().String()).End().End()
	c.iqResult(id, b.B)
	if e := c.srv().log.Debug(); e.Enabled() {
		e.Str("jid", s.JID().String()).Str("remote", c.ip()).Msg("bound")
	}
	c.bindAnswered()
}
