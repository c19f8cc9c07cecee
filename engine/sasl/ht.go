package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"unicode/utf8"
)

// The HT mechanisms (draft-schmaus-kitten-sasl-ht) carry XEP-0484 FAST tokens: the client
// proves it holds a token the server issued by sending HMAC(token, "Initiator" || cb-data)
// with its username in one message, and the server proves it knows the token with
// HMAC(token, "Responder" || cb-data) in its success. One round trip, one HMAC each way:
// no salted password hash, no nonce exchange.

// htMech is one HT mechanism: the hash is SHA-256 for all of them; the suffix names the
// channel binding mixed into both HMACs.
type htMech struct {
	name string
	cb   string // channel-binding type, "" for NONE
}

var htMechs = []htMech{
	{"HT-SHA-256-EXPR", "tls-exporter"},
	{"HT-SHA-256-ENDP", "tls-server-end-point"},
	{"HT-SHA-256-NONE", ""},
}

// FastMechanisms lists the HT mechanisms to offer for FAST, strongest binding first.
func FastMechanisms(cbTypes []string) []string {
	var out []string
	for _, m := range htMechs {
		if m.cb == "" || contains(cbTypes, m.cb) {
			out = append(out, m.name)
		}
	}
	return out
}

// IsFast reports whether mechanism is an HT (token) mechanism.
func IsFast(mechanism string) bool {
	for _, m := range htMechs {
		if m.name == mechanism {
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// htServer is the state of one HT exchange, kept in Server.ht.
type htServer struct {
	m      htMech
	cbData []byte
	proof  []byte
}

func newHT(mechanism string, cb func(string) ([]byte, bool)) (*Server, error) {
	for _, m := range htMechs {
		if m.name != mechanism {
			continue
		}
		h := &htServer{m: m}
		if m.cb != "" {
			if cb == nil {
				return nil, fail("invalid-mechanism", "")
			}
			data, ok := cb(m.cb)
			if !ok {
				return nil, fail("invalid-mechanism", "")
			}
			h.cbData = data
		}
		return &Server{ht: h, cb: cb}, nil
	}
	return nil, fail("invalid-mechanism", "")
}

func (s *Server) stepHT(in []byte) ([]byte, Status, error) {
	if s.state != stStart {
		return nil, 0, errMalformed("unexpected message")
	}
	s.state = stCreds
	i := bytes.IndexByte(in, 0)
	if i <= 0 || len(in)-i-1 != sha256.Size || !utf8.Valid(in[:i]) {
		return nil, 0, errMalformed("HT wants authcid NUL HMAC-SHA-256")
	}
	s.user = string(in[:i])
	s.ht.proof = append([]byte(nil), in[i+1:]...)
	return nil, NeedToken, nil
}

// ResumeToken finishes an HT exchange after NeedToken. tokens are the candidates the
// server holds for this user and client (the current token and the one it replaces); the
// result says which one matched, or -1 with not-authorized. On success out is the
// server's proof, to send as additional data.
func (s *Server) ResumeToken(tokens ...[]byte) (out []byte, which int, err error) {
	if s.ht == nil || s.state != stCreds {
		return nil, -1, errMalformed("unexpected resume")
	}
	s.state = stDone
	which = -1
	for i, tok := range tokens {
		if len(tok) == 0 {
			continue
		}
		// Every candidate is checked, so the time taken does not say which one matched.
		if subtle.ConstantTimeCompare(htMAC(tok, "Initiator", s.ht.cbData), s.ht.proof) == 1 {
			which = i
		}
	}
	if which < 0 {
		return nil, -1, errNotAuth
	}
	return htMAC(tokens[which], "Responder", s.ht.cbData), which, nil
}

func htMAC(token []byte, label string, cb []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(label))
	m.Write(cb)
	return m.Sum(nil)
}
