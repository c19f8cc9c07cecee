package sasl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	msasl "mellium.im/sasl"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
)

// tlsPair returns the client and server states of a real TLS 1.3 handshake.
func tlsPair(t testing.TB) (client, server tls.ConnectionState) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	a, b := net.Pipe()
	srv := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k}}})
	cli := tls.Client(a, &tls.Config{InsecureSkipVerify: true})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return cli.ConnectionState(), srv.ConnectionState()
}

func cbFunc(cs tls.ConnectionState) func(string) ([]byte, bool) {
	return func(typ string) ([]byte, bool) {
		if typ == "tls-exporter" {
			b, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
			return b, err == nil
		}
		return nil, false
	}
}

func stored3(t testing.TB, pw string) [3]store.Credentials {
	var c [3]store.Credentials
	for _, h := range []store.Hash{store.SHA1, store.SHA256, store.SHA512} {
		var err error
		if c[h], err = creds.Derive(pw, h, creds.MinIter); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// run drives a full exchange between mellium's client and our server.
func run(t *testing.T, cm msasl.Mechanism, mech string, user, pass string, stored [3]store.Credentials, ccs, scs *tls.ConnectionState) error {
	t.Helper()
	opts := []msasl.Option{msasl.Credentials(func() ([]byte, []byte, []byte) { return []byte(user), []byte(pass), nil })}
	var cb func(string) ([]byte, bool)
	if ccs != nil {
		opts = append(opts, msasl.TLSState(*ccs), msasl.RemoteMechanisms(Mechanisms(true, []string{"tls-exporter"}, true)...))
		cb = cbFunc(*scs)
	}
	client := msasl.NewClient(cm, opts...)
	srv, err := NewServer(mech, cb)
	if err != nil {
		return err
	}
	// As the engine does: every SCRAM exchange carries XEP-0474's h attribute, which
	// clients that do not know it must ignore (RFC 5802 §5.1).
	if cb != nil {
		srv.Advertised(Mechanisms(true, []string{"tls-exporter"}, true), []string{"tls-exporter"})
	} else {
		srv.Advertised(Mechanisms(false, nil, false), nil)
	}
	_, resp, err := client.Step(nil)
	if err != nil {
		t.Fatalf("client first: %v", err)
	}
	for i := 0; i < 5; i++ {
		out, st, err := srv.Step(resp)
		for err == nil && (st == NeedCredentials || st == NeedPassword) {
			if st == NeedPassword {
				if !creds.VerifyPlain(stored[store.SHA256], store.SHA256, srv.Password()) || srv.Username() != "juliet" {
					return errNotAuth
				}
				return nil
			}
			var c store.Credentials
			if srv.Username() == "juliet" {
				c = stored[srv.Hash()]
			}
			out, st, err = srv.Resume(c)
		}
		if err != nil {
			return err
		}
		if st == Success {
			if _, _, err := client.Step(out); err != nil {
				t.Fatalf("client rejected server-final: %v", err)
			}
			return nil
		}
		_, resp, err = client.Step(out)
		if err != nil {
			t.Fatalf("client step: %v", err)
		}
	}
	t.Fatal("exchange did not finish")
	return nil
}

func TestMelliumClient(t *testing.T) {
	stored := stored3(t, "pencil")
	ccs, scs := tlsPair(t)
	for _, tc := range []struct {
		name string
		cm   msasl.Mechanism
		user string
		pass string
		tls  bool
		ok   bool
	}{
		{"SCRAM-SHA-1", msasl.ScramSha1, "juliet", "pencil", false, true},
		{"SCRAM-SHA-256", msasl.ScramSha256, "juliet", "pencil", false, true},
		{"SCRAM-SHA-1-PLUS", msasl.ScramSha1Plus, "juliet", "pencil", true, true},
		{"SCRAM-SHA-256-PLUS", msasl.ScramSha256Plus, "juliet", "pencil", true, true},
		{"SCRAM-SHA-256", msasl.ScramSha256, "juliet", "wrong", false, false},
		{"SCRAM-SHA-256", msasl.ScramSha256, "romeo", "pencil", false, false},
		{"SCRAM-SHA-1-PLUS", msasl.ScramSha1Plus, "juliet", "wrong", true, false},
		{"PLAIN", msasl.Plain, "juliet", "pencil", true, true},
		{"PLAIN", msasl.Plain, "juliet", "nope", true, false},
	} {
		t.Run(tc.name+"/"+tc.user+"/"+tc.pass, func(t *testing.T) {
			var c, s *tls.ConnectionState
			if tc.tls {
				c, s = &ccs, &scs
			}
			err := run(t, tc.cm, tc.name, tc.user, tc.pass, stored, c, s)
			if tc.ok && err != nil {
				t.Fatalf("login failed: %v", err)
			}
			if !tc.ok {
				var f *Failure
				if !errors.As(err, &f) || f.Condition != "not-authorized" {
					t.Fatalf("err = %v, want not-authorized", err)
				}
			}
		})
	}
}

func TestSHA512Vectors(t *testing.T) {
	// No independent client for SHA-512 here: check our own keys derive like RFC 5802 says.
	c, err := creds.DeriveWithSalt("pencil", store.SHA256, []byte("salt"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.StoredKey) != 32 || len(c.ServerKey) != 32 {
		t.Fatalf("key sizes %d %d", len(c.StoredKey), len(c.ServerKey))
	}
	c5, _ := creds.DeriveWithSalt("pencil", store.SHA512, []byte("salt"), 4096)
	if len(c5.StoredKey) != 64 {
		t.Fatalf("sha-512 stored key %d bytes", len(c5.StoredKey))
	}
}

func TestMalformed(t *testing.T) {
	_, scs := tlsPair(t)
	for _, tc := range []struct {
		mech, in, cond string
		cb             bool
	}{
		{"SCRAM-SHA-256", "x,,n=a,r=abc", "malformed-request", false},
		{"SCRAM-SHA-256", "n,,r=abc", "malformed-request", false},
		{"SCRAM-SHA-256", "n,,n=a", "malformed-request", false},
		{"SCRAM-SHA-256", "n,,m=ext,n=a,r=abc", "malformed-request", false},
		{"SCRAM-SHA-256", "n,,n=a=2X,r=abc", "malformed-request", false},
		{"SCRAM-SHA-256", "n,,n=a,r=", "malformed-request", false},
		{"SCRAM-SHA-256", "p=tls-exporter,,n=a,r=abc", "malformed-request", false},
		{"SCRAM-SHA-256", "y,,n=a,r=abc", "not-authorized", true},
		{"SCRAM-SHA-256-PLUS", "n,,n=a,r=abc", "malformed-request", true},
		{"SCRAM-SHA-256-PLUS", "p=tls-unique,,n=a,r=abc", "malformed-request", true},
		{"SCRAM-SHA-256", "n,a=b,n=a,r=abc", "invalid-authzid", false},
		{"SCRAM-SHA-256", "n,,n=a,r=a\xffb", "malformed-request", false},
		{"PLAIN", "justone", "malformed-request", false},
		{"PLAIN", "x\x00juliet\x00pw", "invalid-authzid", false},
	} {
		var cb func(string) ([]byte, bool)
		if tc.cb {
			cb = cbFunc(scs)
		}
		s, err := NewServer(tc.mech, cb)
		if err != nil {
			t.Fatalf("%s: %v", tc.mech, err)
		}
		_, _, err = s.Step([]byte(tc.in))
		var f *Failure
		if !errors.As(err, &f) || f.Condition != tc.cond {
			t.Errorf("%s %q: err = %v, want %s", tc.mech, tc.in, err, tc.cond)
		}
	}
	if _, err := NewServer("DIGEST-MD5", nil); err == nil {
		t.Error("unknown mechanism accepted")
	}
	if _, err := NewServer("SCRAM-SHA-256-PLUS", nil); err == nil {
		t.Error("-PLUS accepted without channel binding")
	}
}

// TestAnonymous: RFC 4505's one message, absent, empty or trace information of at most
// 255 characters, and nothing after it.
func TestAnonymous(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"", true},
		{"sirhc@example.org", true},
		{strings.Repeat("é", 255), true},
		{strings.Repeat("x", 256), false},
		{"\xff\xfe", false},
		{"a\x00b", false},
	} {
		s, err := NewServer(Anonymous, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, st, err := s.Step([]byte(c.in))
		if got := err == nil && st == NeedAnonymous; got != c.ok {
			t.Errorf("%q: status %v, err %v; want ok %v", c.in, st, err, c.ok)
		}
		if _, _, err := s.Step(nil); err == nil {
			t.Errorf("%q: a second message was taken", c.in)
		}
	}
}

func TestMechanisms(t *testing.T) {
	got := strings.Join(Mechanisms(true, []string{"tls-exporter"}, true), " ")
	if got != "SCRAM-SHA-512-PLUS SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 PLAIN" {
		t.Fatalf("got %s", got)
	}
	if got := strings.Join(Mechanisms(false, nil, true), " "); strings.Contains(got, "PLUS") || strings.Contains(got, "PLAIN") {
		t.Fatalf("plain TCP offers %s", got)
	}
}

func TestFailureXML(t *testing.T) {
	f := &Failure{Condition: "not-authorized", Text: "a<b"}
	want := "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text xml:lang='en'>a&lt;b</text></failure>"
	if got := string(f.AppendXML(nil)); got != want {
		t.Fatalf("got %s", got)
	}
}

func FuzzServer(f *testing.F) {
	for _, s := range []string{"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", "c=biws,r=abc,p=dHp", "p=tls-exporter,,n=a,r=b", "\x00a\x00b"} {
		f.Add("SCRAM-SHA-256", s, "c=biws,r=x,p=AAAA")
	}
	f.Add("HT-SHA-256-NONE", "alice\x00"+string(htMACForTest("a token", "Initiator", nil)), "")
	f.Add("HT-SHA-256-EXPR", "alice\x00"+string(htMACForTest("a token", "Initiator", []byte("cb"))), "")
	f.Add("ANONYMOUS", "a trace", "more")
	f.Fuzz(func(t *testing.T, mech, first, final string) {
		s, err := NewServer(mech, func(string) ([]byte, bool) { return []byte("cb"), true })
		if err != nil {
			return
		}
		s.Advertised(strings.Split(mech+",SCRAM-SHA-1,"+final, ","), strings.Split(first, ","))
		_, st, err := s.Step([]byte(first))
		if err != nil {
			return
		}
		if st == NeedToken {
			_, _, err := s.ResumeToken([]byte("a token"), nil)
			i := strings.IndexByte(first, 0)
			proof := first[i+1:]
			if err == nil && proof != string(htMACForTest("a token", "Initiator", nil)) && proof != string(htMACForTest("a token", "Initiator", []byte("cb"))) {
				t.Fatal("HT proof accepted for the wrong token")
			}
			return
		}
		if st == NeedAnonymous {
			if mech != Anonymous || len(first) > 255*4 {
				t.Fatalf("%s with %d bytes: a guest login", mech, len(first))
			}
			if _, _, err := s.Step([]byte(final)); err == nil {
				t.Fatal("ANONYMOUS took a second message")
			}
			return
		}
		if st == NeedCredentials {
			if _, _, err := s.Resume(store.Credentials{}); err != nil {
				return
			}
			if _, st, err := s.Step([]byte(final)); err == nil && st == Success {
				t.Fatal("unknown user authenticated")
			}
		}
	})
}

func BenchmarkSCRAMSHA256Exchange(b *testing.B) {
	stored := stored3(b, "pencil")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		srv, _ := NewServer("SCRAM-SHA-256", nil)
		srv.Step([]byte("n,,n=juliet,r=rOprNGfwEbeRWgbNEkqO"))
		srv.Resume(stored[store.SHA256])
		// Server-side cost only: a wrong proof still does the full verification.
		srv.Step([]byte("c=biws,r=" + srv.nonce + ",p=" + strings.Repeat("A", 44)))
	}
}

func htMACForTest(token, label string, cb []byte) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(label))
	m.Write(cb)
	return m.Sum(nil)
}

// TestHT: the HT-SHA-256 mechanisms against xmpp.js's vectors (token "hai", user "alice")
// and with channel binding: the binding data is part of both proofs.
func TestHT(t *testing.T) {
	dec := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name, mech string
		cb         []byte
		in         []byte
		tokens     [][]byte
		which      int
		wantOut    []byte
	}{
		{"xmpp.js vector", "HT-SHA-256-NONE", nil, dec("YWxpY2UAjTDYprEwZ8UtOJvMe8ICowR3Q1C/51z1OCeL6saowSI="),
			[][]byte{[]byte("hai")}, 0, dec("fv6IPvIbO5ai0CP+BdOVk+awDbWrtJnEWHTgsM9QKuA=")},
		{"second candidate", "HT-SHA-256-NONE", nil, dec("YWxpY2UAjTDYprEwZ8UtOJvMe8ICowR3Q1C/51z1OCeL6saowSI="),
			[][]byte{[]byte("new"), []byte("hai")}, 1, dec("fv6IPvIbO5ai0CP+BdOVk+awDbWrtJnEWHTgsM9QKuA=")},
		{"wrong token", "HT-SHA-256-NONE", nil, dec("YWxpY2UAjTDYprEwZ8UtOJvMe8ICowR3Q1C/51z1OCeL6saowSI="),
			[][]byte{[]byte("hello")}, -1, nil},
		{"binding", "HT-SHA-256-EXPR", []byte("exporter"), append([]byte("alice\x00"), htMACForTest("hai", "Initiator", []byte("exporter"))...),
			[][]byte{[]byte("hai")}, 0, htMACForTest("hai", "Responder", []byte("exporter"))},
		{"proof without the binding", "HT-SHA-256-EXPR", []byte("exporter"), dec("YWxpY2UAjTDYprEwZ8UtOJvMe8ICowR3Q1C/51z1OCeL6saowSI="),
			[][]byte{[]byte("hai")}, -1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(tc.mech, func(typ string) ([]byte, bool) { return tc.cb, tc.cb != nil && typ == "tls-exporter" })
			if err != nil {
				t.Fatal(err)
			}
			_, st, err := s.Step(tc.in)
			if err != nil || st != NeedToken || s.Username() != "alice" {
				t.Fatalf("step: %v %v %q", st, err, s.Username())
			}
			out, which, err := s.ResumeToken(tc.tokens...)
			if which != tc.which || (err == nil) != (tc.which >= 0) || string(out) != string(tc.wantOut) {
				t.Fatalf("which %d err %v out %x", which, err, out)
			}
		})
	}
	if _, err := NewServer("HT-SHA-256-EXPR", nil); err == nil {
		t.Fatal("EXPR without TLS")
	}
	for _, bad := range []string{"", "alice", "alice\x00short", "\x00" + strings.Repeat("x", 32)} {
		s, _ := NewServer("HT-SHA-256-NONE", nil)
		if _, _, err := s.Step([]byte(bad)); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestDowngradeString(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mechs []string
		cb    []string
		hash  func() hash.Hash
		want  string // base64 of the hash of S
		wantS string
	}{
		// XEP-0474 §5's example (version 0.5.0).
		{"xep example", []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"}, []string{"tls-server-end-point", "tls-exporter"},
			sha1.New, "G6k/rBLDqgOhRRaCuuatSDFkJ08=",
			"SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point"},
		{"no channel binding advertised", []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}, nil,
			sha256.New, "", "PLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-256"},
		{"empty binding list is none", []string{"SCRAM-SHA-1"}, []string{}, sha256.New, "", "SCRAM-SHA-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DowngradeString(tc.mechs, tc.cb)
			if got != tc.wantS {
				t.Fatalf("S = %q, want %q", got, tc.wantS)
			}
			if tc.want != "" {
				h := tc.hash()
				h.Write([]byte(got))
				if b := base64.StdEncoding.EncodeToString(h.Sum(nil)); b != tc.want {
					t.Fatalf("hash = %s, want %s", b, tc.want)
				}
			}
		})
	}
}

// TestDowngradeProtection checks the h attribute of each SCRAM hash against one computed
// here, and that the client's proof signs it: a client that saw h altered (the attacker
// made it match a shortened list) fails the login.
func TestDowngradeProtection(t *testing.T) {
	stored := stored3(t, "pencil")
	mechs := []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"}
	for _, tc := range []struct {
		mech string
		h    store.Hash
		fn   func() hash.Hash
	}{
		{"SCRAM-SHA-1", store.SHA1, sha1.New},
		{"SCRAM-SHA-256", store.SHA256, sha256.New},
		{"SCRAM-SHA-512", store.SHA512, sha512.New},
	} {
		for _, tamper := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tampered=%v", tc.mech, tamper), func(t *testing.T) {
				srv, err := NewServer(tc.mech, nil)
				if err != nil {
					t.Fatal(err)
				}
				srv.Advertised(mechs, nil)
				bare := "n=juliet,r=abcdefghijklmnop"
				if _, st, err := srv.Step([]byte("n,," + bare)); err != nil || st != NeedCredentials {
					t.Fatalf("first: %v %v", st, err)
				}
				first, _, err := srv.Resume(stored[tc.h])
				if err != nil {
					t.Fatal(err)
				}
				sum := tc.fn()
				sum.Write([]byte("SCRAM-SHA-1\x1eSCRAM-SHA-256\x1eSCRAM-SHA-512"))
				want := ",h=" + base64.StdEncoding.EncodeToString(sum.Sum(nil))
				if !strings.HasSuffix(string(first), want) {
					t.Fatalf("server-first %q does not end in %q", first, want)
				}
				seen := string(first)
				if tamper {
					seen = strings.TrimSuffix(seen, want) + ",h=" + base64.StdEncoding.EncodeToString(make([]byte, sum.Size()))
				}
				final := clientFinal(tc.fn, "pencil", stored[tc.h], bare, seen)
				_, st, err := srv.Step([]byte(final))
				if tamper {
					var f *Failure
					if !errors.As(err, &f) || f.Condition != "not-authorized" {
						t.Fatalf("tampered h: %v %v, want not-authorized", st, err)
					}
					return
				}
				if err != nil || st != Success {
					t.Fatalf("final: %v %v", st, err)
				}
			})
		}
	}
}

// clientFinal computes RFC 5802's client-final-message for the server-first the client saw.
func clientFinal(h func() hash.Hash, pass string, c store.Credentials, bare, serverFirst string) string {
	var nonce string
	for _, kv := range strings.Split(serverFirst, ",") {
		if v, ok := strings.CutPrefix(kv, "r="); ok {
			nonce = v
		}
	}
	salted, _ := pbkdf2.Key(h, pass, c.Salt, c.Iter, h().Size())
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	sk := h()
	sk.Write(clientKey)
	without := "c=biws,r=" + nonce
	sig := mac(sk.Sum(nil), bare+","+serverFirst+","+without)
	for i := range clientKey {
		clientKey[i] ^= sig[i]
	}
	return without + ",p=" + base64.StdEncoding.EncodeToString(clientKey)
}
