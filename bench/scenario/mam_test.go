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

func TestRingContact(t *testing.T) {
	for _, tc := range []struct{ i, k, n, want int }{
		{0, 0, 10, 1}, {0, 1, 10, 9}, {0, 2, 10, 2}, {0, 3, 10, 8},
		{9, 0, 10, 0}, {9, 1, 10, 8}, {5, 3, 10, 3}, {1, 1, 2, 0},
	} {
		if got := RingContact(tc.i, tc.k, tc.n); got != tc.want {
			t.Errorf("RingContact(%d, %d, %d) = %d, want %d", tc.i, tc.k, tc.n, got, tc.want)
		}
	}
	// Contacts are mutual: if j is one of i's, i is one of j's.
	const n, c = 50, 6
	for i := 0; i < n; i++ {
		for k := 0; k < c; k++ {
			j, back := RingContact(i, k, n), false
			for l := 0; l < c; l++ {
				back = back || RingContact(j, l, n) == i
			}
			if !back || j == i {
				t.Fatalf("user %d's contact %d (k=%d) is not mutual", i, j, k)
			}
		}
	}
}

func TestMAMQuery(t *testing.T) {
	raw := MAMQuery(nil, "mq1-7", "user2@localhost", 50)
	e, err := xmlstream.ParseElement(raw, "jabber:client")
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	q, ok := e.Child("urn:xmpp:mam:2", "query")
	if !ok {
		t.Fatalf("no mam:2 query in %s", raw)
	}
	for _, tc := range []struct{ name, want string }{
		{"type", "set"}, {"id", "mq1-7"},
	} {
		if v, _ := e.AppendAttr(nil, tc.name); string(v) != tc.want {
			t.Errorf("iq %s = %q, want %q", tc.name, v, tc.want)
		}
	}
	if v, _ := q.AppendAttr(nil, "queryid"); string(v) != "mq1-7" {
		t.Errorf("queryid = %q", v)
	}
	set, ok := q.Child("http://jabber.org/protocol/rsm", "set")
	if !ok {
		t.Fatal("no RSM set")
	}
	if m, ok := set.Child("http://jabber.org/protocol/rsm", "max"); !ok || string(m.AppendText(nil)) != "50" {
		t.Error("RSM max is not 50")
	}
	if _, ok := set.Child("http://jabber.org/protocol/rsm", "before"); !ok {
		t.Error("no RSM before (last page)")
	}
	if !loadgen.Contains(raw, "<field var='with'><value>user2@localhost</value></field>") {
		t.Errorf("no with field in %s", raw)
	}
}

func TestHasAttr(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want bool
	}{
		{`<result xmlns='urn:xmpp:mam:2' queryid='q1' id='x'>`, true},
		{`<result xmlns="urn:xmpp:mam:2" queryid="q1" id="x">`, true},
		{`<result xmlns='urn:xmpp:mam:2' queryid='q10' id='x'>`, false},
		{`<result xmlns='urn:xmpp:mam:2' id='q1'>`, false},
	} {
		if got := hasAttr([]byte(tc.raw), "queryid", "q1"); got != tc.want {
			t.Errorf("hasAttr(%s) = %v", tc.raw, got)
		}
	}
}

// TestIntegrationMAMSmall fills archives through an in-process server and queries them:
// every message is delivered, and every page is full (each pair has more messages than
// a page) and answered.
func TestIntegrationMAMSmall(t *testing.T) {
	no := false
	srv := vireotest.Start(t, vireotest.Options{Registration: true, RequireTLS: &no, AllowPlain: true, RegisterLimit: 1000})
	cfg := loadgen.Config{Addr: srv.C2SAddr(), Domain: srv.Domain(), Mode: loadgen.Plain, Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second}
	const n = 6
	for i := 1; i <= n; i++ {
		if err := loadgen.Register(cfg, "a"+strconv.Itoa(i), "pw"); err != nil {
			t.Fatal(err)
		}
	}
	// 6 pairs share 480 messages: about 80 each, never fewer than a page of 20.
	r, err := MAM(Target{Name: "vireotest", Cfg: cfg, Prefix: "a", Password: "pw", PID: os.Getpid()}, MAMConfig{
		Users: n, Messages: 480, Contacts: 2, FillRate: 400, Queries: 300, Conc: 3, Max: 20, LoginConc: 4})
	if err != nil {
		t.Fatal(err)
	}
	if f := r.Fill; f.Sent != 480 || f.Delivered != 480 || f.ServerCPUPerMsg <= 0 {
		t.Fatalf("fill: %+v", f)
	}
	// 300 queries, so that their CPU time spans several of /proc's 10 ms ticks (30 took
	// ~25 ms and could measure as none).
	if r.Queries != 300 || r.Failures != 0 || r.Results != 300*20 || r.PerQuery != 20 || r.P99ms <= 0 || r.ServerCPUPerQuery <= 0 {
		t.Fatalf("queries: %+v", r)
	}
}
