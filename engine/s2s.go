package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Namespaces of server-to-server streams (RFC 6120, XEP-0220).
const (
	nsServer    = "jabber:server"
	nsDialback  = ns.Dialback
	nsDBFeature = "urn:xmpp:features:dialback"
	// XEP-0288: the stream feature, and the element that asks for a bidirectional stream.
	nsBidiFeature = "urn:xmpp:features:bidi"
	nsBidi        = "urn:xmpp:bidi"
	// s2sHeaderNS is what writeHeaderFrom puts inside xmlns='...': the stream namespace,
	// then the dialback prefix declaration every s2s header carries.
	s2sHeaderNS = nsServer + "' xmlns:db='" + nsDialback
)

// S2S configures federation (server-to-server, RFC 6120 and XEP-0220 dialback).
type S2S struct {
	// Enabled turns federation on without a listener of its own here: a core whose
	// inbound server-to-server streams come through edges.
	Enabled bool
	// Hosts maps a remote domain to the address ("host:port") to dial for it, instead of
	// DNS; S2SDirectTLSScheme before the address ("tls://host:port") means the server
	// there speaks XEP-0368 direct TLS. A domain not listed is looked up with SRV (RFC
	// 6120 §3.2, XEP-0368; s2s_dns.go).
	Hosts map[string]string
	// Secret keys the dialback keys this server hands out (XEP-0220 §2.4); random per
	// process when empty, which is enough: a key is verified while its stream is set up.
	Secret []byte
	// SetupTimeout bounds dialing, STARTTLS and dialback of one outbound stream; stanzas
	// queued meanwhile then bounce with remote-server-timeout. Default s2sSetupTimeout.
	SetupTimeout time.Duration
	// CAs, when set, are the roots a peer server's certificate is checked against: a peer
	// whose certificate is valid for the domain in its stream header's 'from' is offered
	// SASL EXTERNAL (XEP-0178) besides dialback. Nil: dialback only.
	CAs *x509.CertPool
	// RequireValidCerts refuses an outbound stream whose peer certificate does not chain
	// to the system roots or CAs for the remote domain (RFC 6125 DNS-ID); the stanzas
	// queued for it bounce with remote-server-not-found. Inbound, it accepts dialback
	// from a peer only when its TLS client certificate is valid in the same way for the
	// domain it claims (XEP-0220 §2.5 not-authorized otherwise). False: such a peer is
	// still reached, and authenticates us with dialback (XEP-0344 §2.2). Domains
	// overrides it per remote domain.
	RequireValidCerts bool
	// Domains is the policy for single remote domains; a domain not listed gets
	// RequireValidCerts and dialback. Keys are prepared domains (jid.PrepareDomain).
	Domains map[string]S2SDomain
	// Deny lists remote domains this server does not federate with: inbound streams
	// claiming them end with policy-violation, stanzas to them bounce with not-allowed.
	// Allow, when not empty, lists the only remote domains it federates with (Deny still
	// wins). Both hold prepared domains, matched exactly (a subdomain is another domain).
	Deny, Allow []string
	// IdleTimeout closes an inbound or outbound stream that has carried nothing for that
	// long, with </stream:stream>. Default s2sIdleTimeout.
	IdleTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait after a failed outbound stream before the
	// domain is dialed again; it doubles per failure, with jitter, and meanwhile stanzas
	// to the domain bounce at once with remote-server-timeout. Defaults s2sBackoffMin and
	// s2sBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// NoBidi turns XEP-0288 bidirectional streams off: this server then neither offers
	// nor asks for them, and each direction has a stream of its own.
	NoBidi bool
	// Resolver looks up _xmpp-server._tcp SRV records and host addresses for domains not
	// in Hosts; nil: net.DefaultResolver. Tests substitute a fake.
	Resolver S2SResolver
	// DNSLoopback lets DNS answers name loopback addresses, for tests whose fake
	// resolver points at servers on this host. Without it such answers are skipped, as
	// unspecified, link-local and multicast ones always are (dialback makes any peer
	// name a domain, and its DNS would otherwise point us at our own host's services or
	// a cloud's metadata address). Hosts entries are dialed as they are.
	DNSLoopback bool
	// PublicOnly skips, in DNS answers, private addresses as well (RFC 1918, RFC 6598
	// shared, RFC 4193 unique local): for a server on the internet whose DNS-named peers
	// must never be hosts of its own network. Off by default, for deployments that
	// federate inside one. Hosts entries are dialed as they are.
	PublicOnly bool
}

// S2SDomain is the federation policy for one remote domain.
type S2SDomain struct {
	// RequireValidCerts is S2S.RequireValidCerts for this domain.
	RequireValidCerts bool
	// NoDialback refuses XEP-0220 dialback from this domain on inbound streams: it must
	// authenticate with SASL EXTERNAL (XEP-0178), which needs S2S.CAs.
	NoDialback bool
}

// s2sPolicy is what applies to one remote domain.
type s2sPolicy struct {
	requireCerts bool // a certificate valid for the domain, both ways
	dialback     bool // inbound dialback accepted (with a valid certificate under requireCerts)
}

// allowed reports whether this server federates with remote (Deny, Allow).
func (c *S2S) allowed(remote string) bool {
	if domainListed(c.Deny, remote) {
		return false
	}
	return len(c.Allow) == 0 || domainListed(c.Allow, remote)
}

// domainListed reports whether an entry of list names domain: the domain itself, or
// "*.parent" for any domain below parent.
func domainListed(list []string, domain string) bool {
	for _, e := range list {
		if e == domain {
			return true
		}
		if parent, ok := strings.CutPrefix(e, "*."); ok && len(domain) > len(parent)+1 &&
			strings.HasSuffix(domain, parent) && domain[len(domain)-len(parent)-1] == '.' {
			return true
		}
	}
	return false
}

// policy is the policy for remote: its Domains entry, else the defaults.
func (c *S2S) policy(remote string) s2sPolicy {
	if d, ok := c.Domains[remote]; ok {
		return s2sPolicy{requireCerts: d.RequireValidCerts, dialback: !d.NoDialback}
	}
	return s2sPolicy{requireCerts: c.RequireValidCerts, dialback: true}
}

// dialbackKey is XEP-0220 §2.4's recommended key: HMAC-SHA256 keyed with SHA-256 of the
// secret over "receiving originating streamID", in hex.
func dialbackKey(secret []byte, receiving, originating, id string) string {
	k := sha256.Sum256(secret)
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(receiving + " " + originating + " " + id))
	return hex.EncodeToString(m.Sum(nil))
}

// s2sIn is the inbound server-to-server stream kind: a peer server opens a jabber:server
// stream to one of our domains, must STARTTLS, then claims its domain with a dialback
// <db:result/>, which this server checks with the peer's authoritative server over a new
// outbound stream (s2sOut.verify). From then on the stream carries stanzas from that domain
// to our local domains and services; each one's 'from' and 'to' are checked. It also
// answers <db:verify/> for keys this server handed out (we are then the authoritative
// server). A peer that asked for a bidirectional stream (XEP-0288) gets our stanzas for
// the domain pair it authenticated over it (s2sOut.Route); otherwise they go over our own
// outbound stream. One authenticated domain per stream (no multiplexing).
type s2sIn struct{ srv *Server }

func (*s2sIn) name() string                   { return "s2s" }
func (*s2sIn) ns() string                     { return nsServer }
func (*s2sIn) scanKind() xmlstream.StreamKind { return xmlstream.KindServer }

func (k *s2sIn) header(c *conn, h *xmlstream.Stanza) {
	cfg := c.srv().config()
	to, _ := h.Attr("to")
	d, err := jid.PrepareDomain(string(xmlstream.AppendUnescaped(nil, to)))
	found := false
	// Federation off: no listener takes peers here, but an edge, whose configuration
	// is its own, may still relay their streams; they end as a stream to an unknown host.
	if err == nil && federates(cfg) {
		// A stream to one of our service or component domains (a remote user in a room of
		// conference.<host>, a phone's server publishing to our push component, or the
		// authoritative server asked to verify the key of one of its streams) belongs to
		// the host that domain belongs to.
		if host, ok := c.srv().remoteHost(d); ok && c.srv().hostFederates(host) {
			c.domain, found = c.srv().hostIndex(host)
		}
	}
	if !found {
		c.writeHeader(h, s2sHeaderNS)
		c.fail(stanza.HostUnknown, "")
		return
	}
	id := c.writeHeaderFrom(h, s2sHeaderNS, d)
	if v, ok := h.Attr("version"); !ok || len(v) < 2 || v[0] != '1' || v[1] != '.' {
		c.fail(stanza.UnsupportedVersion, "version='1.0' is required")
		return
	}
	from := attrDomain(h, "from")
	if from != "" && !cfg.S2S.allowed(from) {
		k.refuse(c, from)
		return
	}
	established := c.state.Load() == stEstablished
	if !established {
		c.auth = &authState{streamID: id, s2sTo: d}
		c.state.Store(stNegotiating)
	}
	var b xmlstream.Builder
	b.Start("stream:features")
	offered := false // a way to authenticate
	switch {
	case !c.has(fTLS) && cfg.TLS != nil:
		b.Start("starttls").Attr("xmlns", ns.TLS).Start("required").End().End()
	case established:
		// Restarted after SASL EXTERNAL (RFC 6120 §6.4.6): nothing left to negotiate.
	default:
		if from != "" && k.certValidFor(c, from) {
			c.auth.external = from
			b.Start("mechanisms").Attr("xmlns", ns.SASL).Start("mechanism").Text("EXTERNAL").End().End()
			offered = true
		}
		// Not offered to a domain whose policy refuses its dialback; one that does not
		// say who it is learns at <db:result/>.
		if from == "" || k.dialbackAllowed(c, from) {
			b.Start("dialback").Attr("xmlns", nsDBFeature).Start("errors").End().End()
			offered = true
		}
		if offered && k.bidiOffered(c) {
			b.Start("bidi").Attr("xmlns", nsBidiFeature).End()
		}
	}
	if offered {
		// XEP-0478, beside a way in: an empty <stream:features/> stays empty, which is how
		// a peer learns that nothing is left (RFC 6120 §6.4.6) or offered.
		appendLimits(&b, cfg.Limits.MaxStanza, cfg.S2S.IdleTimeout)
	}
	b.End()
	c.write(b.B)
	if established {
		c.srv().s2s.activateBidi(c) // after the restart's features, our stanzas may follow
	}
}

// certValidFor reports whether the peer presented, in the TLS handshake, a certificate
// that chains to S2S.CAs and names domain (DNS-ID, SRV-ID or XmppAddr: certNames; RFC
// 6125; XEP-0178 §3).
func (k *s2sIn) certValidFor(c *conn, domain string) bool {
	s := c.srv()
	cas := s.config().S2S.CAs
	if cas == nil || s.servesRemote(domain) {
		return false
	}
	return verifiedNames(c.peerCerts(), domain, cas)
}

// bidiOffered reports whether c may ask for a bidirectional stream (XEP-0288 §2.1: only
// once TLS is up, when this server has TLS).
func (k *s2sIn) bidiOffered(c *conn) bool {
	cfg := c.srv().config()
	return !cfg.S2S.NoBidi && (c.has(fTLS) || cfg.TLS == nil)
}

// refuse ends the stream of a peer that claims a domain this server does not federate
// with (S2S.Deny, S2S.Allow). RFC 6120 §4.9.3.14 policy-violation, "the entity has
// violated some local service policy", rather than §4.9.3.12 not-authorized: that one
// reports data sent before authentication or a failed negotiation, which a peer could
// remedy by retrying, and no credentials change this refusal.
func (k *s2sIn) refuse(c *conn, from string) {
	c.srv().log.Info().Str("peer", from).Str("remote", c.ip()).Msg("s2s inbound stream refused: domain not allowed")
	c.fail(stanza.PolicyViolation, "federation with "+from+" is not allowed")
}

// dialbackAllowed reports whether the policy for domain accepts its dialback on c: not
// under NoDialback, and under RequireValidCerts only with a TLS client certificate valid
// for domain (XEP-0344 §2.2, checked as the outbound side checks the peer's).
func (k *s2sIn) dialbackAllowed(c *conn, domain string) bool {
	cfg := &c.srv().config().S2S
	p := cfg.policy(domain)
	if !p.dialback {
		return false
	}
	if !p.requireCerts {
		return true
	}
	return peerCertValid(c.peerCerts(), domain, cfg.CAs)
}

// external handles <auth mechanism='EXTERNAL'/> (XEP-0178 §3): offered only when the
// certificate is valid for the header's 'from', so the authorization identity, if given,
// must be that domain.
func (k *s2sIn) external(c *conn, st *xmlstream.Stanza) {
	fail := func(cond string) {
		c.write([]byte("<failure xmlns='" + ns.SASL + "'><" + cond + "/></failure>"))
	}
	if c.auth == nil || c.auth.external == "" || c.state.Load() == stEstablished {
		fail("invalid-mechanism") // not offered on this stream: the peer may still dial back
		return
	}
	if m, _ := st.Attr("mechanism"); string(m) != "EXTERNAL" {
		fail("invalid-mechanism")
		return
	}
	domain := c.auth.external
	text := strings.TrimSpace(string(st.Elem().AppendText(nil)))
	if text != "" && text != "=" {
		authz, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			fail("incorrect-encoding")
			return
		}
		if d, err := jid.PrepareDomain(string(authz)); err != nil || d != domain {
			fail("invalid-authzid")
			return
		}
	}
	s := c.srv()
	local, bidi := c.auth.s2sTo, c.auth.bidi
	c.bare, _ = jid.New("", domain, local) // the domain pair (established)
	c.auth = nil
	c.set(fAuthed)
	c.authenticated()
	c.state.Store(stEstablished)
	s.login(mechExternal, true)
	s.s2s.addIn(c, domain, "external", local, bidi)
	s.log.Info().Str("peer", domain).Str("remote", c.ip()).Msg("s2s inbound stream authenticated with SASL EXTERNAL")
	c.write([]byte("<success xmlns='" + ns.SASL + "'/>"))
	// RFC 6120 §6.4.6: the peer restarts the stream; header answers with empty features.
	c.scan.Reset(k.scanKind(), &s.config().Limits)
}

func (k *s2sIn) element(c *conn, st *xmlstream.Stanza) bool {
	if string(st.NS) == nsDialback {
		k.dialback(c, st)
		return false
	}
	if c.state.Load() == stEstablished {
		k.established(c, st)
		return false
	}
	if string(st.Name) == "starttls" && string(st.NS) == ns.TLS {
		return c.onStartTLS()
	}
	if string(st.Name) == "auth" && string(st.NS) == ns.SASL && c.has(fTLS) {
		k.external(c, st)
		return false
	}
	if string(st.Name) == "bidi" && string(st.NS) == nsBidi && c.auth != nil && k.bidiOffered(c) {
		// XEP-0288 §2.2: no answer; our stanzas for the domain pair the peer goes on to
		// authenticate may use this stream.
		c.auth.bidi = true
		return false
	}
	c.fail(stanza.NotAuthorized, "")
	return false
}

// dialback handles <db:result/> (the peer claims a domain) and <db:verify/> (the peer
// asks whether a key we handed out is ours).
func (k *s2sIn) dialback(c *conn, st *xmlstream.Stanza) {
	s := c.srv()
	if !c.has(fTLS) && s.config().TLS != nil {
		c.fail(stanza.NotAuthorized, "STARTTLS is required")
		return
	}
	from := attrDomain(st, "from")
	to := attrDomain(st, "to")
	if from == "" || to == "" {
		c.fail(stanza.ImproperAddressing, "")
		return
	}
	if !s.servesRemote(to) || !s.hostFederates(to) {
		c.fail(stanza.HostUnknown, "")
		return
	}
	if !s.config().S2S.allowed(from) {
		k.refuse(c, from)
		return
	}
	key := strings.TrimSpace(string(st.Elem().AppendText(nil)))
	switch string(st.Name) {
	case "verify":
		id, _ := st.Attr("id")
		want := dialbackKey(s.s2s.secret, from, to, string(xmlstream.AppendUnescaped(nil, id)))
		typ := "invalid"
		if subtle.ConstantTimeCompare([]byte(key), []byte(want)) == 1 {
			typ = "valid"
		}
		var b xmlstream.Builder
		b.Start("db:verify").Attr("from", to).Attr("to", from).AttrBytes("id", xmlstream.AppendUnescaped(nil, id)).
			Attr("type", typ).End()
		c.write(b.B)
	case "result":
		if c.state.Load() == stEstablished || c.auth == nil {
			// One domain per stream in this slice: a second claim is refused, not fatal.
			k.resultAnswer(c, to, from, "invalid")
			return
		}
		if s.servesRemote(from) {
			c.fail(stanza.InvalidFrom, "")
			return
		}
		if !k.dialbackAllowed(c, from) {
			// XEP-0220 §2.5: not-authorized, "a policy requiring ... a valid PKIX
			// certificate ... and the Initiating Server did not provide proof". A dialback
			// error leaves the stream up (the peer may still use SASL EXTERNAL).
			s.login(mechDialback, false)
			s.log.Info().Str("peer", from).Str("remote", c.ip()).Msg("s2s dialback refused by policy: a valid certificate or SASL EXTERNAL is required")
			k.resultError(c, to, from, stanza.NotAuthorizedCond)
			return
		}
		id, bidi := c.auth.streamID, c.auth.bidi
		c.set(fPaused) // hold what follows until the authoritative server has answered
		addr := addrKey(c.ip())
		go func() {
			ok := s.s2s.verify(to, from, id, key, addr)
			c.gc.Wake(func(_ gnet.Conn, err error) error {
				if err != nil || c.closing.Load() {
					return nil
				}
				c.enterLoop()
				defer c.exitLoop()
				defer c.recoverPanic()
				if !ok {
					s.login(mechDialback, false)
					s.log.Info().Str("peer", from).Str("remote", c.ip()).Msg("s2s dialback failed")
					k.resultAnswer(c, to, from, "invalid")
					c.fail(stanza.NotAuthorized, "")
					return nil
				}
				c.bare, _ = jid.New("", from, to) // the domain pair (established)
				c.auth = nil
				c.set(fAuthed)
				c.authenticated()
				c.state.Store(stEstablished)
				s.login(mechDialback, true)
				s.s2s.addIn(c, from, "dialback", to, bidi)
				s.log.Info().Str("peer", from).Str("remote", c.ip()).Msg("s2s inbound stream authenticated")
				k.resultAnswer(c, to, from, "valid")
				s.s2s.activateBidi(c)
				c.resume()
				return nil
			})
		}()
	default:
		c.fail(stanza.UnsupportedStanzaType, "")
	}
}

func (k *s2sIn) resultAnswer(c *conn, from, to, typ string) {
	var b xmlstream.Builder
	b.Start("db:result").Attr("from", from).Attr("to", to).Attr("type", typ).End()
	c.write(b.B)
}

// resultError answers a <db:result/> with a dialback error (XEP-0220 §2.4).
func (k *s2sIn) resultError(c *conn, from, to string, cond stanza.Condition) {
	var b xmlstream.Builder
	b.Start("db:result").Attr("from", from).Attr("to", to).Attr("type", "error").Raw(stanza.New(cond).AppendXML(nil)).End()
	c.write(b.B)
}

// established checks and routes one stanza from the authenticated peer: 'from' must be in
// the domain it proved, 'to' in the domain of ours it proved it for (RFC 6120 §13.11,
// XEP-0220 §2.1: a stream carries one authenticated domain pair; else a stream error).
// c.bare holds the pair: the peer's domain, and ours as its resource, which costs no
// field in every connection.
func (k *s2sIn) established(c *conn, st *xmlstream.Stanza) {
	var ch *router.Charge
	if o := c.srv().s2s; o != nil {
		if v, ok := o.charges.Load(c); ok {
			ch = v.(*router.Charge)
		}
	}
	if cond := submitPeerStanza(c.srv(), st, c.bare.Domain(), c.bare.Resource(), ch); cond != "" {
		text := ""
		if cond == stanza.PolicyViolation {
			text = "too many stanzas"
		}
		c.fail(cond, text)
		return
	}
	if ch != nil && ch.Blocked() {
		c.set(fBlocked) // what the peer sends waits in the stream until the router catches up (Resume)
	}
}

// submitPeerStanza checks one stanza a peer server sent on a stream authenticated for
// remote and hands it to the router: a message, presence or IQ, 'from' inside remote, 'to'
// in local (any domain this server serves when local is ""). It returns the stream error
// to end the stream with (RFC 6120 §13.11), or "". The inbound stream's loop and an
// outbound bidirectional stream's reader (XEP-0288) both use it.
func submitPeerStanza(s *Server, st *xmlstream.Stanza, remote, local string, ch *router.Charge) stanza.StreamCondition {
	if st.Kind() == xmlstream.KindOther {
		return stanza.UnsupportedStanzaType
	}
	fromAttr, ok1 := st.Attr("from")
	toAttr, ok2 := st.Attr("to")
	if !ok1 || !ok2 {
		return stanza.ImproperAddressing
	}
	from, err := jid.ParseBytes(xmlstream.AppendUnescaped(nil, fromAttr))
	if err != nil || from.Domain() != remote {
		return stanza.InvalidFrom
	}
	to, err := jid.ParseBytes(xmlstream.AppendUnescaped(nil, toAttr))
	if err != nil || local == "" && !s.servesRemote(to.Domain()) || local != "" && to.Domain() != local {
		return stanza.HostUnknown
	}
	if !s.hostFederates(to.Domain()) {
		// A host a reload took off federation, on a stream that carries others' too.
		return stanza.HostUnknown
	}
	raw := st.Raw
	if strings.Contains(string(raw), nsServer) {
		raw = rewriteXMLNS(raw, nsServer, ns.Client)
	}
	ok := false
	if ch != nil {
		ok = s.rt.SubmitFromCharged(from, raw, ch)
	} else {
		ok = s.rt.SubmitFrom(from, raw)
	}
	if !ok {
		return stanza.PolicyViolation
	}
	return ""
}

func (k *s2sIn) closed(c *conn) {
	k.srv.s2s.removeIn(c)
	if c.has(fAuthed) {
		k.srv.log.Info().Str("peer", c.bare.Domain()).Msg("s2s inbound stream closed")
	}
}

// attrDomain is the prepared domain in attribute name of st, or "".
func attrDomain(st *xmlstream.Stanza, name string) string {
	v, ok := st.Attr(name)
	if !ok {
		return ""
	}
	d, err := jid.PrepareDomain(string(xmlstream.AppendUnescaped(nil, v)))
	if err != nil {
		return ""
	}
	return d
}
