package loadgen

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/sasl"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/xmlstream"
)

// TestHT checks the HT-SHA-256 messages against values computed apart (Python's hmac)
// and against the server's own HT mechanism.
func TestHT(t *testing.T) {
	cb32 := make([]byte, 32)
	for i := range cb32 {
		cb32[i] = byte(i)
	}
	for _, tc := range []struct {
		user, token    string
		cb             []byte
		initiator, rsp string // hex HMAC-SHA-256
	}{
		{"user1", "tok-abc", nil,
			"69dc01302df4326f5ab4791ff89e2c92a8ebcf59cf1c09369146684feb1e2c2a",
			"9a401601cd24ca1afbed524e2ca43c9b2577ba82aaa52399a80dcfa8935ce564"},
		{"alice", "WW91IGZvdW5kIG1l", nil,
			"a08f5f68b406a9c7c0f69b3dcd511b93f06f3beff19caab21af0e32f23529e92",
			"708812655b3b3baca5de4f1632f4d421fb2e3f83cfcbb661d89dd79e94835566"},
		{"bob", "t", cb32, // a channel binding (as -EXPR mixes in) goes after the label
			"1d55ad400da5459657e283e069b85329c6612b28b06b4ec53c05be35cbe5735c",
			"1f13e7232314aaac37a46563ae018f8504370f94274728c32228fa153fe81f8c"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			in := HTInitial(tc.user, tc.token, tc.cb)
			user, mac, ok := bytes.Cut(in, []byte{0})
			if !ok || string(user) != tc.user || hex.EncodeToString(mac) != tc.initiator {
				t.Fatalf("initial response %q, want %s NUL %s", in, tc.user, tc.initiator)
			}
			if got := hex.EncodeToString(HTResponder(tc.token, tc.cb)); got != tc.rsp {
				t.Fatalf("responder %s, want %s", got, tc.rsp)
			}
			if tc.cb != nil {
				return
			}
			// The server's HT-SHA-256-NONE accepts the message and proves itself the same way.
			srv, err := sasl.NewServer("HT-SHA-256-NONE", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, st, err := srv.Step(in); err != nil || st != sasl.NeedToken || srv.Username() != tc.user {
				t.Fatalf("server step: %v %v %q", st, err, srv.Username())
			}
			out, which, err := srv.ResumeToken([]byte("other"), []byte(tc.token))
			if err != nil || which != 1 || !bytes.Equal(out, HTResponder(tc.token, nil)) {
				t.Fatalf("server: %x %d %v", out, which, err)
			}
		})
	}
}

func TestAgentID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for _, tc := range []struct {
		seed uint64
		n    int
	}{{0, 0}, {0, 1}, {1, 0}, {42, 4999}, {1 << 63, 1}} {
		id := AgentID(tc.seed, tc.n)
		if !uuid.MatchString(id) {
			t.Errorf("AgentID(%d, %d) = %q, not UUID-shaped", tc.seed, tc.n, id)
		}
		if id != AgentID(tc.seed, tc.n) {
			t.Errorf("AgentID(%d, %d) not stable", tc.seed, tc.n)
		}
		if seen[id] {
			t.Errorf("AgentID(%d, %d) = %q again", tc.seed, tc.n, id)
		}
		seen[id] = true
	}
}

func elem(t *testing.T, raw string) xmlstream.Element {
	t.Helper()
	e, err := xmlstream.ParseElement([]byte(raw), "jabber:client")
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return e
}

func TestParseSASL2Success(t *testing.T) {
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name, raw string
		want      SASL2Result
		err       string
	}{
		{"Vireo after SCRAM with Bind2 and a token",
			"<success xmlns='urn:xmpp:sasl:2'><additional-data>dj1hYmM=</additional-data>" +
				"<authorization-identifier>user1@localhost/bench/ABC</authorization-identifier>" +
				"<bound xmlns='urn:xmpp:bind:0'/>" +
				"<token xmlns='urn:xmpp:fast:0' expiry='2027-01-02T03:04:05Z' token='s3cr&amp;t'/></success>",
			SASL2Result{AdditionalData: []byte("v=abc"), AuthzID: "user1@localhost/bench/ABC", Bound: true, Token: "s3cr&t", Expiry: exp}, ""},
		{"bound with SM enabled inside, prefixed",
			"<s:success xmlns:s='urn:xmpp:sasl:2'><s:authorization-identifier>a@b/c</s:authorization-identifier>" +
				"<bound xmlns='urn:xmpp:bind:0'><enabled xmlns='urn:xmpp:sm:3' id='x' resume='true'/></bound></s:success>",
			SASL2Result{AuthzID: "a@b/c", Bound: true}, ""},
		{"no bind: bare JID",
			"<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>a@b</authorization-identifier></success>",
			SASL2Result{AuthzID: "a@b"}, ""},
		{"bound in the wrong namespace is not bound",
			"<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>a@b</authorization-identifier><bound/></success>",
			SASL2Result{AuthzID: "a@b"}, ""},
		{"no authorization identifier",
			"<success xmlns='urn:xmpp:sasl:2'><additional-data>dj1hYmM=</additional-data></success>", SASL2Result{}, "authorization identifier"},
		{"RFC 6120 success", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1hYmM=</success>", SASL2Result{}, "not a SASL2 success"},
		{"bad base64",
			"<success xmlns='urn:xmpp:sasl:2'><additional-data>!!</additional-data><authorization-identifier>a@b</authorization-identifier></success>",
			SASL2Result{}, "additional-data"},
		{"token without token",
			"<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>a@b</authorization-identifier><token xmlns='urn:xmpp:fast:0' expiry='2027-01-02T03:04:05Z'/></success>",
			SASL2Result{}, "without a token"},
		{"token with a bad expiry",
			"<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>a@b</authorization-identifier><token xmlns='urn:xmpp:fast:0' expiry='soon' token='t'/></success>",
			SASL2Result{}, "expiry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSASL2Success(elem(t, tc.raw))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got.AdditionalData) != string(tc.want.AdditionalData) || got.AuthzID != tc.want.AuthzID || got.Bound != tc.want.Bound ||
				got.Token != tc.want.Token || !got.Expiry.Equal(tc.want.Expiry) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseSASL2FailureAndOffer(t *testing.T) {
	for _, tc := range []struct{ raw, cond, text string }{
		{"<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>", "not-authorized", ""},
		{"<failure xmlns='urn:xmpp:sasl:2'><credentials-expired xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><text>gone</text></failure>", "credentials-expired", "gone"},
		{"<failure xmlns='urn:xmpp:sasl:2'/>", "undefined-condition", ""},
	} {
		f := ParseSASL2Failure(elem(t, tc.raw))
		if f.Condition != tc.cond || f.Text != tc.text {
			t.Errorf("%s: %+v", tc.raw, f)
		}
	}
	for _, tc := range []struct {
		raw  string
		ok   bool
		want SASL2Offer
	}{
		{"<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms>" +
			"<authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism><inline>" +
			"<bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:sm:3'/></inline></bind>" +
			"<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast><sm xmlns='urn:xmpp:sm:3'/></inline></authentication></stream:features>",
			true, SASL2Offer{Mechanisms: []string{"SCRAM-SHA-1", "PLAIN"}, FAST: []string{"HT-SHA-256-NONE"}, Bind2: true}},
		{"<stream:features xmlns:stream='http://etherx.jabber.org/streams'><authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism></authentication></stream:features>",
			true, SASL2Offer{Mechanisms: []string{"PLAIN"}}},
		{"<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>",
			false, SASL2Offer{}},
	} {
		got, ok := ParseSASL2Offer(elem(t, tc.raw))
		if ok != tc.ok || strings.Join(got.Mechanisms, ",") != strings.Join(tc.want.Mechanisms, ",") ||
			strings.Join(got.FAST, ",") != strings.Join(tc.want.FAST, ",") || got.Bind2 != tc.want.Bind2 {
			t.Errorf("offer %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
		}
	}
}

func TestAuthenticateElement(t *testing.T) {
	l := SASL2Login{Agent: "d4565fa7-4d72-4749-b3d3-740edbf87770", Bind: true, Tag: "bench", RequestToken: "HT-SHA-256-NONE"}
	got := string(l.authenticate("SCRAM-SHA-1", []byte("n,,n=u,r=x")))
	want := "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'><initial-response>biwsbj11LHI9eA==</initial-response>" +
		"<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>vireo-bench</software></user-agent>" +
		"<bind xmlns='urn:xmpp:bind:0'><tag>bench</tag></bind><request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := string(SASL2Login{}.authenticate("PLAIN", nil)); got != "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>=</initial-response></authenticate>" {
		t.Fatalf("empty: %s", got)
	}
}

// TestSASL2AndFAST logs in against a real server over SASL2 with SCRAM, Bind2 and a token
// request, then with the token (HT-SHA-256-NONE on plain TCP, -EXPR over TLS too), and
// is refused with a wrong token or another client's id.
func TestSASL2AndFAST(t *testing.T) {
	no := false
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: &no, AllowPlain: true,
		// FAST on plain TCP: from a trusted network only (loopback, as c2s.trusted_networks has it by default).
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	srv.AddUser(t, "bencher", "s3cret")
	agent := AgentID(7, 1)
	for _, c := range []struct {
		name      string
		mode      Mode
		addr      string
		mech, tok string
	}{
		{"plain", Plain, srv.C2SAddr(), "SCRAM-SHA-1", "HT-SHA-256-NONE"},
		{"starttls", StartTLS, srv.C2SAddr(), "SCRAM-SHA-256", "HT-SHA-256-NONE"},
		{"direct TLS, EXPR", DirectTLS, srv.TLSAddr(), "SCRAM-SHA-256", "HT-SHA-256-EXPR"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Addr: c.addr, Domain: srv.Domain(), Mode: c.mode, Mechanism: c.mech, Timeout: 10 * time.Second}
			l := SASL2Login{Agent: agent, Bind: true, Tag: "bench", RequestToken: c.tok}
			s, r, err := DialSASL2(cfg, "bencher", "s3cret", l)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Bound || !strings.HasPrefix(s.JID, "bencher@"+srv.Domain()+"/bench/") || r.Token == "" || r.Expiry.Before(time.Now()) {
				t.Fatalf("SASL2 login: %q %+v", s.JID, r)
			}
			jid := s.JID
			// The session is usable at once, without a restart.
			s.Send([]byte("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"))
			if st, err := s.expect("iq"); err != nil || string(st.Type) != "result" {
				t.Fatalf("ping: %v", err)
			}
			s.Close()

			l.RequestToken = ""
			f, fr, err := DialFAST(cfg, "bencher", r.Token, c.tok, l)
			if err != nil {
				t.Fatal(err)
			}
			if f.JID != jid || fr.Token != "" {
				t.Fatalf("FAST login: %q (want %q) %+v", f.JID, jid, fr)
			}
			f.Close()

			// Quick start: header and <authenticate/> in one write, FAST and SCRAM alike.
			q := l
			q.QuickStart = true
			if c.mode == StartTLS {
				if _, _, err := DialFAST(cfg, "bencher", r.Token, c.tok, q); err == nil {
					t.Fatal("quick start over STARTTLS")
				}
			} else {
				f, _, err := DialFAST(cfg, "bencher", r.Token, c.tok, q)
				if err != nil {
					t.Fatalf("FAST quick start: %v", err)
				}
				if f.JID != jid {
					t.Fatalf("FAST quick start bound %q, want %q", f.JID, jid)
				}
				f.Send([]byte("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>"))
				if st, err := f.expect("iq"); err != nil || string(st.Type) != "result" {
					t.Fatalf("ping after a quick start: %v", err)
				}
				f.Close()
				s, _, err := DialSASL2(cfg, "bencher", "s3cret", q)
				if err != nil {
					t.Fatalf("SCRAM quick start: %v", err)
				}
				if s.JID != jid {
					t.Fatalf("SCRAM quick start bound %q, want %q", s.JID, jid)
				}
				s.Close()
			}

			var fe *FailureError
			if _, _, err := DialFAST(cfg, "bencher", r.Token+"x", c.tok, l); !errors.As(err, &fe) || fe.Condition != "not-authorized" {
				t.Fatalf("wrong token: %v", err)
			}
			other := l
			other.Agent = AgentID(7, 2)
			if _, _, err := DialFAST(cfg, "bencher", r.Token, c.tok, other); !errors.As(err, &fe) || fe.Condition != "credentials-expired" {
				t.Fatalf("other client: %v", err)
			}
		})
	}
	// No Bind2: the session binds the RFC 6120 way after <success/>.
	cfg := Config{Addr: srv.C2SAddr(), Domain: srv.Domain(), Mode: StartTLS, Mechanism: "PLAIN", Timeout: 10 * time.Second} // PLAIN only over TLS
	s, r, err := DialSASL2(cfg, "bencher", "s3cret", SASL2Login{Tag: "legacy"})
	if err != nil || r.Bound || s.JID != "bencher@"+srv.Domain()+"/legacy" {
		t.Fatalf("without Bind2: %v %+v", err, r)
	}
	s.Close()
	if _, _, err := DialSASL2(cfg, "bencher", "wrong", SASL2Login{}); err == nil {
		t.Fatal("wrong password logged in")
	}
	if o, err := ProbeSASL2(cfg); err != nil || !has(o.FAST, "HT-SHA-256-NONE") || !o.Bind2 {
		t.Fatalf("probe: %+v %v", o, err)
	}
}
