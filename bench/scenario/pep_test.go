package scenario

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/xmlstream"
)

func TestCapsVer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		identities []string
		features   []string
		want       string
	}{
		// XEP-0115 §5.2, features given out of order; then the identity alone (sha1 of "client/pc//Exodus 0.9.1<").
		{"xep-0115 example", []string{"client/pc//Exodus 0.9.1"}, []string{"http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps",
			"http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/disco#info"}, "QgayPKawpkPSDYmwT/WM94uAlu0="},
		{"no features", []string{"client/pc//Exodus 0.9.1"}, nil, "1je/wt/WlvjlG+p7Vfy11/9aRoI="},
	} {
		if got := CapsVer(tc.identities, tc.features); got != tc.want {
			t.Errorf("%s: CapsVer = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestUserIndex(t *testing.T) {
	for _, tc := range []struct {
		jid  string
		want int
	}{
		{"user1@localhost", 0}, {"user1000@localhost/res", 999}, {"user12@a.localhost", 11},
		{"user@localhost", -1}, {"user0@localhost", -1}, {"users1@localhost", -1}, {"user1", -1},
		{"bob7@localhost", -1}, {"user7x@localhost", -1}, {"localhost", -1},
	} {
		if got := UserIndex([]byte(tc.jid), "user"); got != tc.want {
			t.Errorf("UserIndex(%q) = %d, want %d", tc.jid, got, tc.want)
		}
	}
}

// scan parses one top-level stanza from raw.
func scan(t *testing.T, raw string) *xmlstream.Stanza {
	t.Helper()
	var st xmlstream.State
	lim := xmlstream.DefaultLimits()
	st.Reset(xmlstream.KindClient, &lim)
	t.Cleanup(st.Release)
	sc := xmlstream.NewScanner()
	in := []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" + raw)
	for len(in) > 0 {
		ev, n, err := sc.Next(&st, in)
		if err != nil {
			t.Fatal(err)
		}
		in = in[n:]
		if ev.Kind == xmlstream.EventElement {
			return ev.Stanza
		}
		if n == 0 {
			break
		}
	}
	t.Fatalf("no stanza in %s", raw)
	return nil
}

func TestDiscoAnswer(t *testing.T) {
	ver := CapsVer([]string{capsIdentity}, capsFeatures)
	for _, tc := range []struct {
		name, in string
		want     []string // substrings of the answer; nil: no answer
	}{
		{"caps query", "<iq type='get' id='c1' from='user2@localhost' to='user1@localhost/r'><query xmlns='http://jabber.org/protocol/disco#info' node='" +
			CapsNode + "#" + ver + "'/></iq>",
			[]string{"type='result' id='c1' to='user2@localhost'", "node='" + CapsNode + "#" + ver + "'", "<feature var='urn:xmpp:avatar:metadata+notify'/>",
				"<identity category='client' type='pc' name='xmppbench'/>"}},
		{"no node", "<iq type='get' id='c2' from='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
			[]string{"id='c2' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'><identity"}},
		{"a result", "<iq type='result' id='c3'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", nil},
		{"items", "<iq type='get' id='c4'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", nil},
		{"a message", "<message from='a@b'><body>http://jabber.org/protocol/disco#info</body></message>", nil},
	} {
		got := discoAnswer(scan(t, tc.in))
		if tc.want == nil {
			if got != nil {
				t.Errorf("%s: answered %s", tc.name, got)
			}
			continue
		}
		if _, err := xmlstream.ParseElement(got, "jabber:client"); err != nil {
			t.Errorf("%s: %s: %v", tc.name, got, err)
		}
		for _, w := range tc.want {
			if !loadgen.Contains(got, w) {
				t.Errorf("%s: answer %s lacks %q", tc.name, got, w)
			}
		}
	}
}

func TestMesh(t *testing.T) {
	for _, n := range []int{2, 5} {
		for i := 0; i < n; i++ {
			m := Mesh(i, n)
			if len(m) != n-1 || m[i] != "" {
				t.Fatalf("Mesh(%d, %d) = %v", i, n, m)
			}
			for j, sub := range m {
				if sub != "both" {
					t.Fatalf("Mesh(%d, %d)[%d] = %q", i, n, j, sub)
				}
			}
		}
	}
}

// TestIntegrationPEPStormSmall runs the storm against an in-process server, the rosters
// made in-band: the server learns the generator's caps and every contact gets every
// publish.
func TestIntegrationPEPStormSmall(t *testing.T) {
	no := false
	srv := vireotest.Start(t, vireotest.Options{Registration: true, RequireTLS: &no, AllowPlain: true, RegisterLimit: 1000})
	cfg := loadgen.Config{Addr: srv.C2SAddr(), Domain: srv.Domain(), Mode: loadgen.Plain, Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second}
	const n = 8
	for i := 1; i <= n; i++ {
		if err := loadgen.Register(cfg, "p"+strconv.Itoa(i), "pw"); err != nil {
			t.Fatal(err)
		}
	}
	r, err := PEPStorm(Target{Name: "vireotest", Cfg: cfg, Prefix: "p", Password: "pw", PID: os.Getpid()}, n, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Subscriptions != n*(n-1) || r.Presences != n*(n-1) || r.CapsQueries < 1 || r.Published != n || r.PublishFails != 0 || r.SetupFails != 0 {
		t.Fatalf("setup: %+v", r)
	}
	if r.Expected != n*(n-1) || r.Unique != r.Expected || r.Delivered < r.Unique || r.Own != n || r.PerSecond <= 0 || r.P99ms <= 0 {
		t.Fatalf("notifications: %+v", r)
	}
}
