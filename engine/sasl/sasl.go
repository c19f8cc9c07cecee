// Package sasl implements the server side of the SASL mechanisms Vireo offers (RFC 6120
// §6): SCRAM-SHA-1, SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) with their -PLUS
// variants over the tls-exporter (RFC 9266) and tls-server-end-point (RFC 5929) channel
// bindings, with XEP-0474's downgrade protection, PLAIN (RFC 4616), ANONYMOUS (RFC 4505), and
// the HT mechanisms that carry XEP-0484 FAST tokens (ht.go).
//
// The exchanges are pure state machines: no I/O, no store access, no logging. The engine
// fetches credentials off the event loop between steps (Status NeedCredentials,
// NeedPassword or NeedToken). Issuing and storing tokens is not this package's job. A SCRAM login uses the stored StoredKey and ServerKey and does no PBKDF2;
// only PLAIN and password changes hash passwords.
package sasl

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
)

// Failure is a SASL failure with an RFC 6120 §6.5 condition.
type Failure struct {
	Condition string
	Text      string
}

func (f *Failure) Error() string {
	if f.Text != "" {
		return "sasl: " + f.Condition + ": " + f.Text
	}
	return "sasl: " + f.Condition
}

// AppendXML appends the <failure/> element.
func (f *Failure) AppendXML(dst []byte) []byte {
	dst = append(dst, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><"...)
	dst = append(dst, f.Condition...)
	dst = append(dst, "/>"...)
	if f.Text != "" {
		dst = append(dst, "<text xml:lang='en'>"...)
		for _, r := range f.Text {
			switch r {
			case '<':
				dst = append(dst, "&lt;"...)
			case '&':
				dst = append(dst, "&amp;"...)
			case '>':
				dst = append(dst, "&gt;"...)
			default:
				dst = utf8.AppendRune(dst, r)
			}
		}
		dst = append(dst, "</text>"...)
	}
	return append(dst, "</failure>"...)
}

func fail(cond, text string) error { return &Failure{Condition: cond, Text: text} }

// ErrUnsupportedBinding is the failure for a -PLUS attempt with a channel-binding type
// this server does not offer.
var ErrUnsupportedBinding = &Failure{Condition: "malformed-request", Text: "unsupported channel binding type"}

var (
	errMalformed = func(text string) error { return fail("malformed-request", text) }
	errNotAuth   = &Failure{Condition: "not-authorized"}
)

// Status says what the caller does next.
type Status uint8

// Statuses.
const (
	Continue        Status = iota // send the challenge
	NeedCredentials               // look up Username's credentials for Hash, then Resume
	NeedPassword                  // PLAIN: verify Password against the account, off the loop
	NeedToken                     // HT (FAST): look up the user's tokens, then ResumeToken
	Success                       // send success with the returned data
	NeedAnonymous                 // ANONYMOUS: make a temporary account, then succeed
)

// Anonymous is the RFC 4505 mechanism: the engine offers it only on the hosts an operator
// opened to guests.
const Anonymous = "ANONYMOUS"

type mech struct {
	name string
	hash store.Hash
	plus bool
}

var scram = []mech{
	{"SCRAM-SHA-512-PLUS", store.SHA512, true},
	{"SCRAM-SHA-256-PLUS", store.SHA256, true},
	{"SCRAM-SHA-1-PLUS", store.SHA1, true},
	{"SCRAM-SHA-512", store.SHA512, false},
	{"SCRAM-SHA-256", store.SHA256, false},
	{"SCRAM-SHA-1", store.SHA1, false},
}

// Mechanisms lists the mechanisms to advertise, strongest first.
func Mechanisms(tls bool, cbTypes []string, allowPlain bool) []string {
	var out []string
	for _, m := range scram {
		if m.plus && len(cbTypes) == 0 {
			continue
		}
		out = append(out, m.name)
	}
	if tls && allowPlain {
		out = append(out, "PLAIN")
	}
	return out
}

// MechanismHash returns the hash of a SCRAM mechanism (with or without -PLUS).
func MechanismHash(mechanism string) (store.Hash, bool) {
	for _, m := range scram {
		if m.name == mechanism {
			return m.hash, true
		}
	}
	return 0, false
}

// Server is one SASL exchange.
type Server struct {
	m      mech
	plain  bool
	cb     func(typ string) ([]byte, bool)
	state  uint8
	user   string
	pass   string
	gs2    string // gs2 header as sent
	cbData []byte
	bare   string // client-first-message-bare
	nonce  string // full nonce
	first  string // server-first-message
	creds  store.Credentials
	allowY bool
	ht     *htServer // HT (FAST token) exchanges only
	anon   bool      // ANONYMOUS
	ssdp   string    // XEP-0474: what the stream advertised, hashed into server-first
	authzD string    // the domain of an authzid user@domain, which the caller checks
}

// AuthzDomain returns the domain the client's authzid named (user@domain), or "" when it
// named none: only the caller knows which domain the stream is for (RFC 6120 §6.3.8, an
// authzid for another account than the one authenticated is invalid-authzid).
func (s *Server) AuthzDomain() string { return s.authzD }

// AcceptUnboundClient lets a client send the 'y' flag (it supports channel binding, but
// not one we offer) although we advertise -PLUS. Call it only after this connection saw the
// client try -PLUS with a binding type we do not support: then 'y' is the client falling
// back, not an attacker who stripped -PLUS from our features (RFC 5802 §6). slixmpp does
// this on TLS 1.3, where its tls-unique does not exist.
func (s *Server) AcceptUnboundClient() { s.allowY = true }

// Advertised records what the stream offered before this exchange: the mechanisms of the
// SASL profile the client authenticates with, and the XEP-0440 channel-binding types (nil
// when the stream advertised none). A SCRAM exchange puts their hash in its
// server-first-message (XEP-0474), where the client's proof signs it: a client that
// compares it with the lists it saw detects an attacker who shortened them, without
// pinning what it saw on earlier connections.
func (s *Server) Advertised(mechs, cbTypes []string) {
	if s.plain || s.ht != nil {
		return
	}
	s.ssdp = DowngradeString(mechs, cbTypes)
}

// DowngradeString is XEP-0474's string S: the mechanisms sorted by octet and joined by
// %x1E, then, when channel bindings were advertised, %x1F and their types sorted and
// joined the same way.
func DowngradeString(mechs, cbTypes []string) string {
	var b strings.Builder
	join := func(list []string) {
		sorted := slices.Clone(list)
		slices.Sort(sorted) // Go compares strings bytewise: RFC 4790's i;octet
		for i, v := range sorted {
			if i > 0 {
				b.WriteByte(0x1e)
			}
			b.WriteString(v)
		}
	}
	join(mechs)
	if len(cbTypes) > 0 {
		b.WriteByte(0x1f)
		join(cbTypes)
	}
	return b.String()
}

const (
	stStart uint8 = iota
	stFirst
	stCreds
	stFinal
	stDone
)

// NewServer starts an exchange for mech. cb returns the channel-binding data of a type
// (nil for plain TCP).
func NewServer(mechanism string, cb func(typ string) ([]byte, bool)) (*Server, error) {
	if mechanism == "PLAIN" {
		return &Server{plain: true, cb: cb}, nil
	}
	if mechanism == Anonymous {
		return &Server{anon: true}, nil
	}
	if IsFast(mechanism) {
		return newHT(mechanism, cb)
	}
	for _, m := range scram {
		if m.name == mechanism {
			if m.plus && !cbAvailable(cb) {
				return nil, fail("invalid-mechanism", "")
			}
			return &Server{m: m, cb: cb}, nil
		}
	}
	return nil, fail("invalid-mechanism", "")
}

func cbAvailable(cb func(string) ([]byte, bool)) bool {
	if cb == nil {
		return false
	}
	_, a := cb("tls-exporter")
	_, b := cb("tls-server-end-point")
	return a || b
}

// Username returns the authentication identity as the client sent it (unescaped).
func (s *Server) Username() string { return s.user }

// Hash is the SCRAM hash of the exchange.
func (s *Server) Hash() store.Hash { return s.m.hash }

// Password returns the PLAIN password after NeedPassword.
func (s *Server) Password() string { return s.pass }

// Step consumes one client message (decoded from base64).
func (s *Server) Step(in []byte) ([]byte, Status, error) {
	if s.plain {
		return s.stepPlain(in)
	}
	if s.ht != nil {
		return s.stepHT(in)
	}
	if s.anon {
		return s.stepAnonymous(in)
	}
	switch s.state {
	case stStart:
		if len(in) == 0 {
			s.state = stFirst
			return nil, Continue, nil // empty initial response: ask for it
		}
		return s.clientFirst(in)
	case stFirst:
		return s.clientFirst(in)
	case stFinal:
		return s.clientFinal(in)
	}
	s.state = stDone
	return nil, 0, errMalformed("unexpected message")
}

func (s *Server) stepPlain(in []byte) ([]byte, Status, error) {
	if s.state == stStart && len(in) == 0 {
		s.state = stFirst
		return nil, Continue, nil
	}
	if s.state > stFirst {
		return nil, 0, errMalformed("unexpected message")
	}
	parts := strings.Split(string(in), "\x00")
	if len(parts) != 3 || parts[1] == "" || !utf8.ValidString(string(in)) {
		return nil, 0, errMalformed("PLAIN wants authzid NUL authcid NUL password")
	}
	s.user, s.pass = parts[1], parts[2]
	if parts[0] != "" && !authzOK(parts[0], s.user) {
		return nil, 0, fail("invalid-authzid", "")
	}
	s.authzD = authzDomain(parts[0])
	s.state = stCreds
	return nil, NeedPassword, nil
}

// stepAnonymous takes RFC 4505's single message: nothing, or trace information of at most
// 255 characters that the server does not use. An absent initial response succeeds at
// once, as Prosody and ejabberd do: Strophe.js (Converse) sends none and answers no
// challenge.
func (s *Server) stepAnonymous(in []byte) ([]byte, Status, error) {
	if s.state != stStart {
		return nil, 0, errMalformed("unexpected message")
	}
	s.state = stDone
	if !utf8.Valid(in) || utf8.RuneCount(in) > 255 || slices.Contains(in, 0) {
		return nil, 0, errMalformed("ANONYMOUS trace must be at most 255 characters of UTF-8")
	}
	return nil, NeedAnonymous, nil
}

// authzDomain is the domain of an authzid user@domain ("" for none).
func authzDomain(authz string) string {
	if i := strings.IndexByte(authz, '@'); i >= 0 {
		return authz[i+1:]
	}
	return ""
}

// authzOK accepts an authzid that names the same account (user or user@domain; the
// caller checks the domain, AuthzDomain).
func authzOK(authz, user string) bool {
	if authz == user {
		return true
	}
	i := strings.IndexByte(authz, '@')
	return i > 0 && strings.EqualFold(authz[:i], user) && !strings.ContainsAny(authz[i+1:], "@/")
}

func (s *Server) clientFirst(in []byte) ([]byte, Status, error) {
	msg := string(in)
	if !utf8.ValidString(msg) {
		return nil, 0, errMalformed("not UTF-8")
	}
	// gs2-header: cbflag "," [authzid] ","
	i := strings.IndexByte(msg, ',')
	if i < 0 {
		return nil, 0, errMalformed("no gs2 header")
	}
	flag := msg[:i]
	rest := msg[i+1:]
	j := strings.IndexByte(rest, ',')
	if j < 0 {
		return nil, 0, errMalformed("no gs2 header")
	}
	authz := rest[:j]
	s.bare = rest[j+1:]
	s.gs2 = msg[:i+1+j+1]
	switch {
	case flag == "n":
		if s.m.plus {
			return nil, 0, errMalformed("-PLUS needs channel binding")
		}
	case flag == "y":
		// The client could bind but thinks we cannot; if we can, someone stripped PLUS
		// from our features (RFC 5802 §6).
		if s.m.plus || (cbAvailable(s.cb) && !s.allowY) {
			return nil, 0, errNotAuth
		}
	case strings.HasPrefix(flag, "p="):
		if !s.m.plus {
			return nil, 0, errMalformed("channel binding with a non-PLUS mechanism")
		}
		data, ok := s.cb(flag[2:])
		if !ok {
			return nil, 0, ErrUnsupportedBinding
		}
		s.cbData = data
	default:
		return nil, 0, errMalformed("bad gs2 flag")
	}
	if authz != "" {
		if !strings.HasPrefix(authz, "a=") {
			return nil, 0, errMalformed("bad authzid")
		}
	}
	if strings.HasPrefix(s.bare, "m=") {
		return nil, 0, errMalformed("mandatory extensions are not supported")
	}
	if !strings.HasPrefix(s.bare, "n=") {
		return nil, 0, errMalformed("no username")
	}
	k := strings.IndexByte(s.bare, ',')
	if k < 0 {
		return nil, 0, errMalformed("no nonce")
	}
	user, err := unescapeName(s.bare[2:k])
	if err != nil || user == "" {
		return nil, 0, errMalformed("bad username")
	}
	after := s.bare[k+1:]
	if !strings.HasPrefix(after, "r=") {
		return nil, 0, errMalformed("no nonce")
	}
	cnonce := after[2:]
	if e := strings.IndexByte(cnonce, ','); e >= 0 {
		cnonce = cnonce[:e] // extensions are ignored
	}
	if cnonce == "" || !printable(cnonce) {
		return nil, 0, errMalformed("bad nonce")
	}
	if authz != "" {
		a, err := unescapeName(authz[2:])
		if err != nil || !authzOK(a, user) {
			return nil, 0, fail("invalid-authzid", "")
		}
		s.authzD = authzDomain(a)
	}
	s.user = user
	var sn [18]byte
	rand.Read(sn[:])
	s.nonce = cnonce + base64.RawStdEncoding.EncodeToString(sn[:])
	s.state = stCreds
	return nil, NeedCredentials, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

func unescapeName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		if strings.Contains(s, ",") {
			return "", errors.New("sasl: comma in saslname")
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("sasl: bad escape in saslname")
		}
		i += 2
	}
	return b.String(), nil
}

// Resume continues a SCRAM exchange with the user's credentials for Hash. For an unknown
// user pass zero Credentials: the exchange continues with a salt derived from the name
// and fails at the end, so responses do not reveal which accounts exist.
func (s *Server) Resume(c store.Credentials) ([]byte, Status, error) {
	if s.plain || s.ht != nil || s.state != stCreds {
		return nil, 0, errMalformed("unexpected resume")
	}
	if c.IsZero() || c.Iter < 1 {
		c = fakeCredentials(s.user, s.m.hash)
	}
	s.creds = c
	s.first = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(c.Salt) + ",i=" + strconv.Itoa(c.Iter)
	if s.ssdp != "" {
		h := creds.NewHash(s.m.hash)()
		h.Write([]byte(s.ssdp))
		s.first += ",h=" + base64.StdEncoding.EncodeToString(h.Sum(nil))
	}
	s.state = stFinal
	return []byte(s.first), Continue, nil
}

var fakeSecret = func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}()

func fakeCredentials(user string, h store.Hash) store.Credentials {
	m := hmac.New(sha256.New, fakeSecret)
	m.Write([]byte(user))
	// Random keys: no proof can match them.
	k := make([]byte, creds.NewHash(h)().Size())
	rand.Read(k)
	return store.Credentials{Salt: m.Sum(nil)[:16], Iter: creds.DefaultIter, StoredKey: k, ServerKey: k}
}

func (s *Server) clientFinal(in []byte) ([]byte, Status, error) {
	s.state = stDone
	msg := string(in)
	p := strings.LastIndex(msg, ",p=")
	if p < 0 {
		return nil, 0, errMalformed("no proof")
	}
	without := msg[:p]
	proof, err := base64.StdEncoding.DecodeString(msg[p+3:])
	if err != nil {
		return nil, 0, errMalformed("bad proof encoding")
	}
	if !strings.HasPrefix(without, "c=") {
		return nil, 0, errMalformed("no channel binding attribute")
	}
	k := strings.IndexByte(without, ',')
	if k < 0 {
		return nil, 0, errMalformed("no nonce")
	}
	cbGot, err := base64.StdEncoding.DecodeString(without[2:k])
	if err != nil {
		return nil, 0, errMalformed("bad channel binding encoding")
	}
	cbWant := append([]byte(s.gs2), s.cbData...)
	if subtle.ConstantTimeCompare(cbGot, cbWant) != 1 {
		return nil, 0, errNotAuth
	}
	r := without[k+1:]
	if !strings.HasPrefix(r, "r=") {
		return nil, 0, errMalformed("no nonce")
	}
	nonce := r[2:]
	if e := strings.IndexByte(nonce, ','); e >= 0 {
		nonce = nonce[:e]
	}
	if subtle.ConstantTimeCompare([]byte(nonce), []byte(s.nonce)) != 1 {
		return nil, 0, errNotAuth
	}
	h := creds.NewHash(s.m.hash)
	if len(proof) != h().Size() {
		return nil, 0, errNotAuth
	}
	authMsg := s.bare + "," + s.first + "," + without
	mac := hmac.New(h, s.creds.StoredKey)
	mac.Write([]byte(authMsg))
	sig := mac.Sum(nil)
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ sig[i]
	}
	hh := h()
	hh.Write(clientKey)
	if subtle.ConstantTimeCompare(hh.Sum(nil), s.creds.StoredKey) != 1 {
		return nil, 0, errNotAuth
	}
	mac = hmac.New(h, s.creds.ServerKey)
	mac.Write([]byte(authMsg))
	return []byte("v=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))), Success, nil
}
