package loadgen

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vireo-im/vireo/xmlstream"
)

// The client side of XEP-0388 (SASL2), XEP-0386 (Bind2) and XEP-0484 (FAST): one
// <authenticate/> carries the mechanism's first message, the client's user-agent id, an
// inline bind and, on a password login, a request for a FAST token; <success/> carries the
// server's final SASL data, the authorization identifier, <bound/> and the token, and the
// post-authentication features follow it without a stream restart. A FAST login is one
// HT-SHA-256 message: username NUL HMAC-SHA-256(token, "Initiator" || channel binding).

// Namespaces.
const (
	NSSASL2 = "urn:xmpp:sasl:2"
	NSBind2 = "urn:xmpp:bind:0"
	NSFAST  = "urn:xmpp:fast:0"
	nsSASL  = "urn:ietf:params:xml:ns:xmpp-sasl"
)

// ErrNoSASL2 is returned when the server's features do not offer what a SASL2 or FAST
// login needs (the SASL2 <authentication/> feature, the mechanism, FAST).
var ErrNoSASL2 = errors.New("loadgen: not offered by the server")

// FailureError is a SASL2 <failure/>: the RFC 6120 condition and the optional text.
type FailureError struct {
	Condition, Text string
}

func (f *FailureError) Error() string {
	if f.Text != "" {
		return "loadgen: SASL2 failure " + f.Condition + ": " + f.Text
	}
	return "loadgen: SASL2 failure " + f.Condition
}

// SASL2Login is what an <authenticate/> asks for besides authentication.
type SASL2Login struct {
	// Agent is the <user-agent id=…/>: stable per client, since a FAST token belongs to
	// one account and one client. FAST logins need it.
	Agent string
	// Bind asks for an inline XEP-0386 <bind/> with Tag as its <tag/>; without it the
	// session binds Tag as its resource the RFC 6120 way after <success/>.
	Bind bool
	Tag  string
	// RequestToken asks for a FAST token for this HT mechanism ("" asks for none).
	RequestToken string
	// QuickStart sends the stream header and the <authenticate/> in one write, without
	// waiting for the features, as Conversations does when it reconnects to a server
	// whose SASL2 features it saw before: with a FAST token the login is one round trip
	// after TCP (and TLS). Plain TCP or direct TLS only.
	QuickStart bool
}

// SASL2Result is what the server's <success/> carried.
type SASL2Result struct {
	AdditionalData []byte // decoded: SCRAM's server-final, HT's server proof
	AuthzID        string // <authorization-identifier/>: the full JID once bound
	Bound          bool   // <bound xmlns='urn:xmpp:bind:0'/>
	Token          string // <token xmlns='urn:xmpp:fast:0' token=…/>
	Expiry         time.Time
}

// SASL2Offer is what the pre-authentication features offer for SASL2.
type SASL2Offer struct {
	Mechanisms []string // <authentication xmlns='urn:xmpp:sasl:2'><mechanism/>
	FAST       []string // <inline><fast xmlns='urn:xmpp:fast:0'><mechanism/>
	Bind2      bool     // <inline><bind xmlns='urn:xmpp:bind:0'/>
}

// has reports whether l holds s.
func has(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// ParseSASL2Offer reads the SASL2 part of a <stream:features/> element; ok is false when
// it has no SASL2 <authentication/> feature.
func ParseSASL2Offer(features xmlstream.Element) (o SASL2Offer, ok bool) {
	auth, ok := features.Child(NSSASL2, "authentication")
	if !ok {
		return o, false
	}
	for it := auth.Children(); ; {
		ch, more := it.Next()
		if !more {
			break
		}
		switch {
		case string(ch.NS()) == NSSASL2 && string(ch.Name()) == "mechanism":
			o.Mechanisms = append(o.Mechanisms, strings.TrimSpace(string(ch.AppendText(nil))))
		case string(ch.NS()) == NSSASL2 && string(ch.Name()) == "inline":
			if _, ok := ch.Child(NSBind2, "bind"); ok {
				o.Bind2 = true
			}
			if f, ok := ch.Child(NSFAST, "fast"); ok {
				for fi := f.Children(); ; {
					m, more := fi.Next()
					if !more {
						break
					}
					if string(m.NS()) == NSFAST && string(m.Name()) == "mechanism" {
						o.FAST = append(o.FAST, strings.TrimSpace(string(m.AppendText(nil))))
					}
				}
			}
		}
	}
	return o, true
}

// ParseSASL2Success reads a <success xmlns='urn:xmpp:sasl:2'/>.
func ParseSASL2Success(e xmlstream.Element) (SASL2Result, error) {
	var r SASL2Result
	if string(e.NS()) != NSSASL2 || string(e.Name()) != "success" {
		return r, fmt.Errorf("loadgen: not a SASL2 success: %.200s", e.Raw())
	}
	var authz bool
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		space, name := string(ch.NS()), string(ch.Name())
		switch {
		case space == NSSASL2 && name == "additional-data":
			d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(ch.AppendText(nil))))
			if err != nil {
				return r, fmt.Errorf("loadgen: additional-data: %w", err)
			}
			r.AdditionalData = d
		case space == NSSASL2 && name == "authorization-identifier":
			r.AuthzID, authz = strings.TrimSpace(string(ch.AppendText(nil))), true
		case space == NSBind2 && name == "bound":
			r.Bound = true
		case space == NSFAST && name == "token":
			tok, ok := ch.AppendAttr(nil, "token")
			if !ok || len(tok) == 0 {
				return r, errors.New("loadgen: FAST token without a token attribute")
			}
			exp, ok := ch.AppendAttr(nil, "expiry")
			if !ok {
				return r, errors.New("loadgen: FAST token without an expiry")
			}
			t, err := time.Parse(time.RFC3339, string(exp))
			if err != nil {
				return r, fmt.Errorf("loadgen: FAST token expiry: %w", err)
			}
			r.Token, r.Expiry = string(tok), t
		}
	}
	if !authz || r.AuthzID == "" {
		return r, errors.New("loadgen: SASL2 success without an authorization identifier")
	}
	return r, nil
}

// ParseSASL2Failure reads a <failure xmlns='urn:xmpp:sasl:2'/>: the condition is its
// child in the RFC 6120 SASL namespace.
func ParseSASL2Failure(e xmlstream.Element) *FailureError {
	f := &FailureError{Condition: "undefined-condition"}
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			return f
		}
		switch {
		case string(ch.NS()) == nsSASL && string(ch.Name()) != "text":
			f.Condition = string(ch.Name())
		case string(ch.Name()) == "text":
			f.Text = string(ch.AppendText(nil))
		}
	}
}

// HTInitial is the HT-SHA-256 initial response (draft-schmaus-kitten-sasl-ht):
// username NUL HMAC-SHA-256(key = token, "Initiator" || cb), cb empty for -NONE.
func HTInitial(user, token string, cb []byte) []byte {
	return append([]byte(user+"\x00"), htMAC(token, "Initiator", cb)...)
}

// HTResponder is the server's proof an HT-SHA-256 success carries as additional data.
func HTResponder(token string, cb []byte) []byte { return htMAC(token, "Responder", cb) }

func htMAC(token, label string, cb []byte) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(label))
	m.Write(cb)
	return m.Sum(nil)
}

// AgentID is a UUID-shaped (version 4 layout) user-agent id, the same for the same seed
// and n: simulated client n of a run keeps its id from the login that got its token to
// the logins that use it.
func AgentID(seed uint64, n int) string {
	var in [16]byte
	binary.BigEndian.PutUint64(in[:8], seed)
	binary.BigEndian.PutUint64(in[8:], uint64(n))
	h := sha256.Sum256(in[:])
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// authenticate is the <authenticate/> element for mech with its initial response.
func (l SASL2Login) authenticate(mech string, initial []byte) []byte {
	b := make([]byte, 0, 512)
	b = append(b, "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='"...)
	b = xmlstream.AppendEscapedString(b, mech)
	b = append(b, "'><initial-response>"...)
	if len(initial) == 0 {
		b = append(b, '=')
	} else {
		b = base64.StdEncoding.AppendEncode(b, initial)
	}
	b = append(b, "</initial-response>"...)
	if l.Agent != "" {
		b = append(b, "<user-agent id='"...)
		b = xmlstream.AppendEscapedString(b, l.Agent)
		b = append(b, "'><software>vireo-bench</software></user-agent>"...)
	}
	if l.Bind {
		b = append(b, "<bind xmlns='urn:xmpp:bind:0'>"...)
		if l.Tag != "" {
			b = append(b, "<tag>"...)
			b = xmlstream.AppendEscapedText(b, []byte(l.Tag))
			b = append(b, "</tag>"...)
		}
		b = append(b, "</bind>"...)
	}
	if l.RequestToken != "" {
		b = append(b, "<request-token xmlns='urn:xmpp:fast:0' mechanism='"...)
		b = xmlstream.AppendEscapedString(b, l.RequestToken)
		b = append(b, "'/>"...)
	}
	return append(b, "</authenticate>"...)
}

// ProbeSASL2 opens a stream as cfg says, reads what the features offer for SASL2 and
// closes; ErrNoSASL2 when they offer no SASL2 at all.
func ProbeSASL2(cfg Config) (SASL2Offer, error) {
	s, err := connect(&cfg)
	if err != nil {
		return SASL2Offer{}, err
	}
	defer s.Close()
	f, err := s.secure(cfg)
	if err != nil {
		return SASL2Offer{}, err
	}
	o, ok := ParseSASL2Offer(f)
	if !ok {
		return o, fmt.Errorf("%w: no XEP-0388 <authentication xmlns='urn:xmpp:sasl:2'/> in the stream features", ErrNoSASL2)
	}
	return o, nil
}

// OpenOnly opens a stream as cfg says (TLS included), reads the features that precede
// authentication and closes it: a connection's cost without a login.
func OpenOnly(cfg Config) error {
	s, err := connect(&cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = s.secure(cfg)
	return err
}

// DialSASL2 connects and logs user in with password over SASL2 (cfg.Mechanism:
// SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN), with what l asks for besides; it checks the
// server's SCRAM signature in <additional-data/>.
func DialSASL2(cfg Config, user, pass string, l SASL2Login) (*Session, SASL2Result, error) {
	mech := cfg.Mechanism
	if mech == "" {
		mech = "SCRAM-SHA-256"
	}
	return dialSASL2(cfg, user, mech, l, func(s *Session) (SASL2Result, error) {
		if mech == "PLAIN" {
			return s.sasl2Exchange(l.authenticate(mech, plainMessage(user, pass)), nil)
		}
		sc, err := newScram(mech, user, pass)
		if err != nil {
			return SASL2Result{}, err
		}
		r, err := s.sasl2Exchange(l.authenticate(mech, sc.first()), sc.final)
		if err != nil {
			return r, err
		}
		return r, sc.check(r.AdditionalData)
	})
}

// DialFAST connects and logs user in with a FAST token over HT mechanism mech
// (HT-SHA-256-NONE, or HT-SHA-256-EXPR over TLS); l.Agent must be the client the token
// was issued to. It checks the server's proof in <additional-data/>.
func DialFAST(cfg Config, user, token, mech string, l SASL2Login) (*Session, SASL2Result, error) {
	return dialSASL2(cfg, user, mech, l, func(s *Session) (SASL2Result, error) {
		var cb []byte
		switch mech {
		case "HT-SHA-256-NONE":
		case "HT-SHA-256-EXPR":
			tc, ok := s.conn.(*tls.Conn)
			if !ok {
				return SASL2Result{}, errors.New("loadgen: HT-SHA-256-EXPR needs TLS")
			}
			cs := tc.ConnectionState()
			var err error
			if cb, err = cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32); err != nil {
				return SASL2Result{}, err
			}
		default:
			return SASL2Result{}, fmt.Errorf("loadgen: mechanism %s not supported", mech)
		}
		r, err := s.sasl2Exchange(l.authenticate(mech, HTInitial(user, token, cb)), nil)
		if err != nil {
			return r, err
		}
		if !hmac.Equal(r.AdditionalData, HTResponder(token, cb)) {
			return r, errors.New("loadgen: FAST server proof missing or wrong")
		}
		return r, nil
	})
}

// dialSASL2 connects, checks that the features offer mech over SASL2, runs auth, then
// finishes the login: after <success/> come the features without a restart, and the
// session binds the RFC 6120 way if Bind2 did not.
func dialSASL2(cfg Config, user, mech string, l SASL2Login, auth func(*Session) (SASL2Result, error)) (*Session, SASL2Result, error) {
	cfg = cfg.forUser(user)
	s, err := connect(&cfg)
	if err != nil {
		return nil, SASL2Result{}, err
	}
	r, err := s.loginSASL2(cfg, user, mech, l, auth)
	if err != nil {
		s.conn.Close()
		return nil, r, err
	}
	s.conn.SetDeadline(time.Time{})
	return s, r, nil
}

func (s *Session) loginSASL2(cfg Config, user, mech string, l SASL2Login, auth func(*Session) (SASL2Result, error)) (SASL2Result, error) {
	if l.QuickStart {
		return s.quickStart(cfg, l, auth)
	}
	f, err := s.secure(cfg)
	if err != nil {
		return SASL2Result{}, err
	}
	o, ok := ParseSASL2Offer(f)
	switch {
	case !ok:
		return SASL2Result{}, fmt.Errorf("%w: no XEP-0388 <authentication xmlns='urn:xmpp:sasl:2'/> in the stream features", ErrNoSASL2)
	case !has(o.Mechanisms, mech) && !has(o.FAST, mech):
		return SASL2Result{}, fmt.Errorf("%w: mechanism %s", ErrNoSASL2, mech)
	case l.RequestToken != "" && !has(o.FAST, l.RequestToken):
		return SASL2Result{}, fmt.Errorf("%w: FAST with %s", ErrNoSASL2, l.RequestToken)
	case l.Bind && !o.Bind2:
		return SASL2Result{}, fmt.Errorf("%w: XEP-0386 Bind2", ErrNoSASL2)
	}
	r, err := auth(s)
	if err != nil {
		return r, err
	}
	if _, err := s.expect("features"); err != nil {
		return r, err
	}
	if r.Bound {
		s.JID = r.AuthzID
		return r, nil
	}
	if l.Bind {
		return r, fmt.Errorf("loadgen: Bind2 asked for but <success/> has no <bound/>: authorized as %s", r.AuthzID)
	}
	return r, s.bind(cfg, user, l.Tag)
}

// quickStart logs in without reading the features first: the stream header waits in
// s.held for auth's <authenticate/>, and the server's header and pre-authentication
// features come back ahead of its answer (sasl2Exchange passes over them).
func (s *Session) quickStart(cfg Config, l SASL2Login, auth func(*Session) (SASL2Result, error)) (SASL2Result, error) {
	if s.ws || cfg.Mode == StartTLS {
		return SASL2Result{}, errors.New("loadgen: quick start needs plain TCP or direct TLS")
	}
	if cfg.Mode == DirectTLS {
		tc := tls.Client(s.conn, s.tlsConfig(cfg))
		if err := tc.Handshake(); err != nil {
			return SASL2Result{}, err
		}
		s.conn = tc
	}
	s.resetReader()
	s.held = []byte(streamHeader(cfg))
	r, err := auth(s)
	if err != nil {
		return r, err
	}
	if _, err := s.expect("features"); err != nil {
		return r, err
	}
	if !r.Bound {
		return r, fmt.Errorf("loadgen: quick start without <bound/>: authorized as %s", r.AuthzID)
	}
	s.JID = r.AuthzID
	return r, nil
}

// sasl2Exchange sends authenticate and answers each <challenge/> with step's response
// (base64 both ways, no "=" for empty in SASL2) until <success/> or <failure/>.
func (s *Session) sasl2Exchange(authenticate []byte, step func([]byte) ([]byte, error)) (SASL2Result, error) {
	if err := s.Send(authenticate); err != nil {
		return SASL2Result{}, err
	}
	for {
		st, err := s.next()
		if err != nil {
			return SASL2Result{}, err
		}
		e := st.Elem()
		if string(e.NS()) != NSSASL2 {
			if string(st.Name) == "error" {
				return SASL2Result{}, fmt.Errorf("loadgen: server sent %s", st.Raw)
			}
			continue
		}
		switch string(e.Name()) {
		case "success":
			return ParseSASL2Success(e)
		case "failure":
			return SASL2Result{}, ParseSASL2Failure(e)
		case "challenge":
			if step == nil {
				return SASL2Result{}, errors.New("loadgen: unexpected SASL2 challenge")
			}
			in, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(e.AppendText(nil))))
			if err != nil {
				return SASL2Result{}, err
			}
			out, err := step(in)
			if err != nil {
				return SASL2Result{}, err
			}
			resp := append([]byte("<response xmlns='urn:xmpp:sasl:2'>"), base64.StdEncoding.AppendEncode(nil, out)...)
			if err := s.Send(append(resp, "</response>"...)); err != nil {
				return SASL2Result{}, err
			}
		}
	}
}
