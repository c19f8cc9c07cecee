package engine

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"time"

	"github.com/vireo-im/vireo/engine/fast"
	"github.com/vireo-im/vireo/engine/sasl"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// XEP-0388 (SASL2), XEP-0386 (Bind2) and XEP-0484 (FAST): a client authenticates, resumes
// or binds, enables stream management, carbons and its CSI state, and gets a fresh token,
// all in one round trip and without a stream restart. The SASL exchange itself is the same
// as RFC 6120 SASL (auth.go, flag fSASL2 picks the namespace of what is written); this file
// parses what an <authenticate/> asks for besides authentication and finishes the login
// once the mechanism has succeeded.

const (
	nsSASL2   = "urn:xmpp:sasl:2"
	nsBind2   = "urn:xmpp:bind:0"
	nsFAST    = "urn:xmpp:fast:0"
	fastTable = "engine.fast"
	// maxTag bounds the Bind2 tag that becomes part of the resource.
	maxTag = 64
)

// sasl2Req is what one <authenticate/> asked for besides authentication. It lives in the
// authState until the login is finished.
type sasl2Req struct {
	started    time.Time // when the exchange began: a token is refused if the account's were forgotten since
	agent      string    // XEP-0388 user-agent id
	mech       string
	tokenMech  string // <request-token mechanism=…/>
	count      uint32 // <fast count=…/>
	invalidate bool   // <fast invalidate='true'/>
	fp         [8]byte
	rotate     bool // the FAST token used is due for replacement

	resume   bool // inline XEP-0198 <resume/>
	resumeID string
	resumeH  uint32

	bind     bool // an XEP-0386 <bind/>
	tag      string
	smEnable int8     // 0 not asked, 1 enable, 2 enable with resume
	inline   [][]byte // other inline features, each with its namespace declared

	// XEP-0480 (upgrade.go): tasks asked for and still to do, as bits 1<<store.Hash.
	upgrade, pending uint8
	stage            uint8 // of the task in progress
	task             store.Hash
	proved           [3]store.Credentials // the keys the login's proof was checked against, and the tasks' since
	iter             int                  // iteration count for the new keys: the account's
	salt             []byte               // sent with the task in progress
	final            []byte               // the server-final-message, for <continue/> and <success/>

	// Set while finishing.
	extra    []byte // the mechanism's success data
	token    string
	expiry   time.Time
	smFailed []byte
}

// sasl2Feature writes the <authentication/> stream feature.
func (c *conn) sasl2Feature(b *xmlstream.Builder, have uint8) {
	b.Start("authentication").Attr("xmlns", nsSASL2)
	for _, m := range c.mechanismsFor(have) {
		b.Start("mechanism").Text(m).End()
	}
	b.Start("inline")
	b.Start("bind").Attr("xmlns", nsBind2).Start("inline")
	b.Start("feature").Attr("var", nsSM).End()
	for _, f := range c.srv().rt.Bind2FeaturesFor(c.domainName()) {
		b.Start("feature").Attr("var", f).End()
	}
	b.End().End()
	if ms := c.fastMechanisms(); len(ms) > 0 {
		b.Start("fast").Attr("xmlns", nsFAST)
		for _, m := range ms {
			b.Start("mechanism").Text(m).End()
		}
		b.End()
	}
	b.Start("sm").Attr("xmlns", nsSM).End()
	b.End()
	if c.has(fTLS) && c.srv().config().External == nil {
		// A SaltedPassword logs in as well as the password: never in the clear. Not with
		// an external program: no SCRAM login, which a task follows, is offered then.
		upgradeFeature(b)
	}
	b.End()
}

// fastMechanisms lists the XEP-0484 mechanisms this connection may use: none in the
// clear, where a token, as good as the password until it expires, would be seen in
// transit (XEP-0484 §9: FAST only over a secure connection), unless the client is on one
// of c2s.trusted_networks (loopback by default, which no network carries: the benchmarks
// compare FAST with SCRAM on plain TCP there).
func (c *conn) fastMechanisms() []string {
	if !c.has(fTLS) && !c.srv().config().trusted(c.peerIP()) {
		return nil
	}
	return sasl.FastMechanisms(c.cbTypes())
}

// parseAuthenticate reads an <authenticate/>: the initial response and the inline
// requests. A failure is reported to the client as it stands.
func (c *conn) parseAuthenticate(st *xmlstream.Stanza, mech string) (initial []byte, r *sasl2Req, f *sasl.Failure) {
	r = &sasl2Req{mech: mech, started: time.Now()}
	for it := st.Elem().Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		space, name := string(ch.NS()), string(ch.Name())
		switch {
		case space == nsSASL2 && name == "initial-response":
			initial = ch.AppendText(nil)
			if len(initial) == 0 {
				initial = []byte("=") // present and empty: an empty initial response
			}
		case space == nsSASL2 && name == "user-agent":
			id, _ := ch.Attr("id")
			if len(id) == 0 || len(id) > fast.MaxAgentID {
				return nil, nil, &sasl.Failure{Condition: "malformed-request", Text: "user-agent needs an id of at most 256 bytes"}
			}
			r.agent = string(xmlstream.AppendUnescaped(nil, id))
		case space == nsSM && name == "resume":
			id, _ := ch.Attr("previd")
			h, _ := ch.Attr("h")
			n, ok := parseUint32(h)
			if !ok || len(id) == 0 {
				return nil, nil, &sasl.Failure{Condition: "malformed-request", Text: "resume needs previd and h"}
			}
			r.resume, r.resumeID, r.resumeH = true, string(id), n
		case space == nsUpgrade && name == "upgrade" && c.has(fTLS):
			parseUpgrade(r, ch)
		case space == nsBind2 && name == "bind":
			if f := c.parseBind2(ch, r); f != nil {
				return nil, nil, f
			}
		case space == nsFAST && name == "request-token":
			m, _ := ch.Attr("mechanism")
			if !contains(c.fastMechanisms(), string(m)) {
				return nil, nil, &sasl.Failure{Condition: "malformed-request", Text: "request-token names a mechanism that is not offered"}
			}
			r.tokenMech = string(m)
		case space == nsFAST && name == "fast":
			if v, ok := ch.Attr("count"); ok {
				n, ok := parseUint32(v)
				if !ok {
					return nil, nil, &sasl.Failure{Condition: "malformed-request", Text: "bad FAST count"}
				}
				r.count = n
			}
			v, _ := ch.Attr("invalidate")
			r.invalidate = string(v) == "true" || string(v) == "1"
		}
	}
	if sasl.IsFast(mech) && r.agent == "" {
		return nil, nil, &sasl.Failure{Condition: "malformed-request", Text: "FAST needs a user-agent id"}
	}
	return initial, r, nil
}

func (c *conn) parseBind2(e xmlstream.Element, r *sasl2Req) *sasl.Failure {
	r.bind = true
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			return nil
		}
		space, name := ch.NS(), ch.Name()
		switch {
		case string(space) == nsBind2 && string(name) == "tag":
			r.tag = string(ch.AppendText(nil))
		case string(space) == nsSM && string(name) == "enable":
			r.smEnable = 1
			if v, _ := ch.Attr("resume"); string(v) == "true" || string(v) == "1" {
				r.smEnable = 2
			}
		default:
			if len(r.inline) >= 16 {
				return &sasl.Failure{Condition: "malformed-request", Text: "too many inline features"}
			}
			// The element travels to its module alone: its namespace goes with it.
			raw := xmlstream.SetAttrs(nil, ch.Raw(), xmlstream.AttrSet{Name: "xmlns", Value: space})
			r.inline = append(r.inline, raw)
		}
	}
}

func parseUint32(v []byte) (uint32, bool) {
	var n uint64
	if len(v) == 0 || len(v) > 10 {
		return 0, false
	}
	for _, ch := range v {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + uint64(ch-'0')
	}
	return uint32(n), n <= 1<<32-1
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// sasl2Failure writes an XEP-0388 failure: the RFC 6120 condition in the SASL namespace.
func (c *conn) sasl2Failure(f *sasl.Failure) {
	var b xmlstream.Builder
	b.Start("failure").Attr("xmlns", nsSASL2)
	b.Start(f.Condition).Attr("xmlns", ns.SASL).End()
	if f.Text != "" {
		b.Start("text").Text(f.Text).End()
	}
	b.End()
	c.write(b.B)
}

// checkToken runs on the worker pool for an HT (FAST) login: it finds the tokens the
// client may use, checks the proof and records the use. It returns the server's proof.
func (c *conn) checkToken(a *authState, user string, now time.Time) ([]byte, error) {
	r := a.v2
	var out []byte
	rotate, err := c.srv().fast.Login(user, r.agent, r.mech, r.fp, r.count, now, func(cand [2][]byte) (which int, err error) {
		out, which, err = a.srv.ResumeToken(cand[0], cand[1])
		return which, err
	})
	switch {
	case errors.Is(err, fast.ErrNoToken):
		// XEP-0484: a token the server no longer trusts (expired, invalidated, issued
		// before a password change) is credentials-expired; the client logs in otherwise.
		return nil, &sasl.Failure{Condition: "credentials-expired"}
	case errors.Is(err, fast.ErrCountUsed):
		return nil, &sasl.Failure{Condition: "not-authorized", Text: "FAST count was used before"}
	case err != nil:
		var f *sasl.Failure
		if errors.As(err, &f) {
			return nil, err // the proof's
		}
		return nil, &sasl.Failure{Condition: "temporary-auth-failure"}
	}
	r.rotate = rotate
	return out, nil
}

// sasl2Succeeded finishes an XEP-0388 login after the mechanism succeeded: tokens, then an
// inline resume, then Bind2, then <success/>.
func (c *conn) sasl2Succeeded(r *sasl2Req, out []byte) {
	r.extra = out
	issue := r.tokenMech != "" || (r.rotate && !r.invalidate)
	if !issue && !r.invalidate {
		c.sasl2Inline(r)
		return
	}
	mech := r.tokenMech
	if mech == "" {
		mech = r.mech // rotation: the new token is for the mechanism the old one served
	}
	user := c.bare.String()
	tokens := c.srv().fast
	log := c.srv().log
	ok := c.offLoop(func() {
		now := time.Now()
		if r.invalidate {
			if err := tokens.Invalidate(user, r.agent); err != nil {
				log.Warn().Err(err).Str("user", user).Msg("FAST token not invalidated")
			}
		}
		if issue && r.agent != "" {
			tok, exp, err := tokens.IssueSince(user, r.agent, mech, r.fp, now, r.started)
			if err != nil {
				log.Warn().Err(err).Str("user", user).Msg("FAST token not issued")
			} else {
				r.token, r.expiry = tok, exp
			}
		}
	}, func() { c.sasl2Inline(r) }) // a bind pauses input again: its answer resumes it
	if !ok {
		c.sasl2Inline(r) // no pool: the login works, without a new token
	}
}

// sasl2Inline resumes or binds as the client asked, or leaves the stream at the bind
// stage (the client binds the RFC 6120 way).
func (c *conn) sasl2Inline(r *sasl2Req) {
	if r.resume && c.inlineResume(r) {
		return
	}
	if !r.bind {
		c.sasl2Success(r, c.bare.String(), nil)
		c.state.Store(stAuthed)
		c.writeFeatures() // XEP-0388: features follow <success/> at once, no restart
		return
	}
	c.bind2(bind2Resource(c.bare, r.tag, r.agent), func(s *router.Session, bound []byte, err, werr error) {
		c.bind2Done(r, s, bound, err, werr)
	})
}

// bind2Resource makes the resource of a Bind2 session: the client's tag, then a part that
// is the same each time this client (user-agent id) binds with this tag, so its new session
// replaces its old one instead of piling up beside it (XEP-0386 §5). It is a hash: the
// user-agent id itself never shows in the JID.
func bind2Resource(bare jid.JID, tag, agent string) string {
	var suffix string
	if agent != "" {
		h := sha256.Sum256([]byte(bare.String() + "\x00" + agent + "\x00" + tag))
		suffix = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:10])
	} else {
		suffix = streamID()[:16]
	}
	if tag == "" || len(tag) > maxTag {
		return suffix
	}
	t, err := jid.PrepareResource(tag)
	if err != nil {
		return suffix
	}
	return t + "/" + suffix
}

// bind2Done runs on the loop with the router's answer to a Bind2 bind.
func (c *conn) bind2Done(r *sasl2Req, s *router.Session, extra []byte, err error, werr error) {
	defer c.recoverPanic()
	defer c.closing.v.And(^bBinding) // once <success/> is written, on this loop
	c.clear(fBindWait)
	if werr != nil || c.closing.Load() {
		if s != nil {
			c.srv().rt.Unbind(s)
		}
		return
	}
	if err != nil {
		// Authenticated but not bound: the client can still bind the RFC 6120 way.
		c.sasl2Success(r, c.bare.String(), nil)
		c.state.Store(stAuthed)
		c.writeFeatures()
		c.bindAnswered()
		return
	}
	c.sess = s
	c.state.Store(stEstablished)
	c.srv().established.Add(1)
	var b xmlstream.Builder
	b.Start("bound").Attr("xmlns", nsBind2)
	b.Raw(extra)
	var sm *smState
	if r.smEnable != 0 {
		var enabled []byte
		sm, enabled = c.newSM(r.smEnable == 2)
		b.Raw(enabled)
	}
	b.End()
	for _, raw := range r.inline {
		// Queued in the session's shard before anything the client sends next.
		if e, err := xmlstream.ParseElement(raw, nsBind2); err == nil {
			c.srv().rt.Bind2Inline(s, raw, e.NS(), e.Name())
		}
	}
	if sm != nil {
		// As for <enable/>: counting starts exactly at the <enabled/> inside <success/>.
		sm.mu.Lock()
		c.sm.Store(sm)
		c.sasl2Success(r, s.JID().String(), b.B)
		sm.mu.Unlock()
	} else {
		c.sasl2Success(r, s.JID().String(), b.B)
	}
	// Features follow <success/>; resource binding and stream management are done.
	var f xmlstream.Builder
	cfg := c.srv().config()
	f.Start("stream:features").Raw(c.srv().rt.StreamFeaturesFor(c.domainName(), module.PostAuth))
	appendLimits(&f, cfg.Limits.MaxStanza, cfg.PingAfter)
	f.End()
	c.write(f.B)
	if e := c.srv().log.Debug(); e.Enabled() {
		e.Str("jid", s.JID().String()).Str("remote", c.ip()).Msg("bound (Bind2)")
	}
	c.bindAnswered()
}

// sasl2Success writes <success/> with the authorization identifier and inline results.
func (c *conn) sasl2Success(r *sasl2Req, authz string, inner []byte) {
	var b xmlstream.Builder
	b.Start("success").Attr("xmlns", nsSASL2)
	if len(r.extra) > 0 {
		b.Start("additional-data").Text(base64.StdEncoding.EncodeToString(r.extra)).End()
	}
	b.Start("authorization-identifier").Text(authz).End()
	b.Raw(r.smFailed) // before <bound/>: a client applies them in order
	b.Raw(inner)
	if r.token != "" {
		b.Start("token").Attr("xmlns", nsFAST).Attr("expiry", r.expiry.UTC().Format(time.RFC3339)).
			Attr("token", r.token).End()
	}
	b.End()
	c.write(b.B)
}

// inlineResume tries an XEP-0198 resume inside SASL2. It reports whether it took over the
// rest of the login (resumed, or waiting for the old connection to hand over); otherwise
// r.smFailed says why and the login goes on to bind.
func (c *conn) inlineResume(r *sasl2Req) bool {
	sm, ok := c.findResumable(r.resumeID)
	if !ok {
		r.smFailed = smFailed("item-not-found")
		return false
	}
	c.takeOver(sm, r.resumeH, r)
	return true
}
