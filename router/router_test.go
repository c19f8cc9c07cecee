package router_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/jid"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// conn records what the router sends to one stream. The engine is the real Conn; this one
// stands in for the socket so routing can be checked stanza by stanza.
type conn struct {
	mu     sync.Mutex
	got    []string
	closed stanza.StreamCondition
	n      atomic.Int64
}

func (c *conn) Send(b []byte) bool {
	c.mu.Lock()
	c.got = append(c.got, string(b))
	c.mu.Unlock()
	c.n.Add(1)
	return true
}

func (c *conn) Close(cond stanza.StreamCondition) {
	c.mu.Lock()
	c.closed = cond
	c.mu.Unlock()
}

func (c *conn) all() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.got, "\n")
}

func (c *conn) wait(t *testing.T, substr string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if s := c.all(); strings.Contains(s, substr) {
			return s
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("never received %q; got:\n%s", substr, c.all())
	return ""
}

func (c *conn) never(t *testing.T, substr string) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	if s := c.all(); strings.Contains(s, substr) {
		t.Fatalf("unexpectedly received %q:\n%s", substr, s)
	}
}

type env struct {
	t  testing.TB
	r  *router.Router
	st store.Store
	sc *xmlstream.Scanner
}

func newEnv(t testing.TB) *env {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.Options{Domains: []string{"example.org"}, Store: st, Logger: zerolog.Nop(), Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); st.Close() })
	for _, u := range []string{"alice", "bob", "carol"} {
		st.Accounts().Create(store.Account{User: u + "@example.org"})
	}
	return &env{t: t, r: r, st: st, sc: xmlstream.NewScanner()}
}

type sess struct {
	s  *router.Session
	c  *conn
	xs xmlstream.State
	e  *env
}

func (e *env) bind(user, res string) *sess {
	e.t.Helper()
	bare, _ := jid.Parse(user + "@example.org")
	c := &conn{}
	done := make(chan *router.Session, 1)
	e.r.Bind(bare, res, c, func(s *router.Session, err error) {
		if err != nil {
			e.t.Error(err)
		}
		done <- s
	})
	s := &sess{s: <-done, c: c, e: e}
	lim := xmlstream.DefaultLimits()
	s.xs.Reset(xmlstream.KindClient, &lim)
	e.sc.Next(&s.xs, []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>"))
	return s
}

// send submits raw XML as if the session's client sent it.
func (s *sess) send(raw string) {
	s.e.t.Helper()
	in := []byte(raw)
	for len(in) > 0 {
		ev, n, err := s.e.sc.Next(&s.xs, in)
		if err != nil {
			s.e.t.Fatalf("scan %q: %v", raw, err)
		}
		in = in[n:]
		if ev.Kind == xmlstream.EventElement && !s.e.r.Submit(s.s, ev.Stanza) {
			s.e.t.Fatalf("Submit refused %q", raw)
		}
		if ev.Kind == xmlstream.EventNone {
			break
		}
	}
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	a := e.bind("alice", "pc")
	b1 := e.bind("bob", "phone")
	b2 := e.bind("bob", "laptop")
	b1.send("<presence><priority>5</priority></presence>")
	b2.send("<presence><priority>1</priority></presence>")
	b1.c.wait(t, "bob@example.org/laptop") // b2's presence reached b1
	for _, tc := range []struct {
		name, send string
		to         *conn
		want       string
		not        *conn
	}{
		{"full JID", "<message to='bob@example.org/laptop' id='1' type='chat'><body>one</body></message>", b2.c, "<body>one</body>", b1.c},
		{"bare JID to highest priority", "<message to='bob@example.org' type='chat'><body>two</body></message>", b1.c, "<body>two</body>", b2.c},
		{"unavailable resource falls back to bare", "<message to='bob@example.org/gone' type='chat'><body>three</body></message>", b1.c, "<body>three</body>", nil},
		{"headline to all available", "<message to='bob@example.org' type='headline'><body>four</body></message>", b2.c, "<body>four</body>", nil},
		{"from is stamped", "<message to='bob@example.org/phone' from='mallory@evil.example'><body>five</body></message>", b1.c, "from='alice@example.org/pc'", nil},
		{"unknown local user", "<message to='nobody@example.org' id='u1' type='chat'><body>x</body></message>", a.c, "service-unavailable", nil},
		{"remote domain", "<message to='x@remote.example' id='r1'><body>x</body></message>", a.c, "remote-server-not-found", nil},
		{"malformed to", "<message to='a@b@c' id='m1'><body>x</body></message>", a.c, "jid-malformed", nil},
		{"unknown iq namespace", "<iq type='get' id='q1'><query xmlns='urn:example:none'/></iq>", a.c, "id='q1'", nil},
		{"iq to full JID", "<iq type='get' id='q2' to='bob@example.org/phone'><query xmlns='urn:example:p2p'/></iq>", b1.c, "id='q2'", nil},
		{"iq to offline resource", "<iq type='get' id='q3' to='bob@example.org/gone'><query xmlns='urn:example:p2p'/></iq>", a.c, "id='q3'", nil},
		{"groupchat to bare", "<message to='bob@example.org' type='groupchat' id='g1'><body>x</body></message>", a.c, "id='g1'", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.send(tc.send)
			tc.to.wait(t, tc.want)
			if tc.not != nil {
				tc.not.never(t, tc.want)
			}
		})
	}
	// Errors are never answered with errors.
	before := len(strings.Split(a.c.all(), "\n"))
	a.send("<message to='nobody@example.org' type='error' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	time.Sleep(50 * time.Millisecond)
	if after := len(strings.Split(a.c.all(), "\n")); after != before {
		t.Fatalf("an error was answered: %s", a.c.all())
	}
}

func TestOrdering(t *testing.T) {
	e := newEnv(t)
	a := e.bind("alice", "pc")
	b := e.bind("bob", "phone")
	const n = 2000
	for i := 0; i < n; i++ {
		a.send(fmt.Sprintf("<message to='bob@example.org/phone' id='%d'><body>%d</body></message>", i, i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.c.n.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if len(b.c.got) != n {
		t.Fatalf("got %d of %d", len(b.c.got), n)
	}
	for i, s := range b.c.got {
		if !strings.Contains(s, fmt.Sprintf("id='%d'", i)) {
			t.Fatalf("message %d out of order: %s", i, s)
		}
	}
}

func TestSubscriptionToBoth(t *testing.T) {
	e := newEnv(t)
	a := e.bind("alice", "pc")
	b := e.bind("bob", "phone")
	a.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
	b.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
	a.c.wait(t, "id='r0'")
	a.send("<presence/>")
	b.send("<presence/>")
	a.send("<presence to='bob@example.org' type='subscribe'/>")
	b.c.wait(t, "type='subscribe'")
	a.c.wait(t, "ask='subscribe'") // roster push with pending ask
	b.send("<presence to='alice@example.org' type='subscribed'/>")
	a.c.wait(t, "subscription='to'")
	b.send("<presence to='alice@example.org' type='subscribe'/>")
	a.c.wait(t, "type='subscribe'")
	a.send("<presence to='bob@example.org' type='subscribed'/>")
	a.c.wait(t, "subscription='both'")
	b.c.wait(t, "subscription='both'")
	it, err := e.st.Rosters().Item("alice@example.org", "bob@example.org")
	if err != nil || it.Sub != store.SubBoth {
		t.Fatalf("stored item %+v %v", it, err)
	}
	// Presence now flows both ways, and unavailable on unbind.
	b.send("<presence><show>away</show></presence>")
	a.c.wait(t, "<show>away</show>")
	e.r.Unbind(b.s)
	a.c.wait(t, "<presence type='unavailable' from='bob@example.org/phone' to='alice@example.org'/>")
}

func TestRosterSetAndVersion(t *testing.T) {
	e := newEnv(t)
	a1 := e.bind("alice", "one")
	a2 := e.bind("alice", "two")
	a1.send("<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>")
	a2.send("<iq type='get' id='g2'><query xmlns='jabber:iq:roster'/></iq>")
	a2.c.wait(t, "id='g2'")
	a1.send("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='carol@example.org' name='Carol'><group>Friends</group></item></query></iq>")
	a1.c.wait(t, "id='s1'")
	a2.c.wait(t, "<group>Friends</group>") // push to the other interested resource
	for _, tc := range []struct{ body, want string }{
		{"<item jid='carol@example.org'><group>a</group><group>a</group></item>", "bad-request"},
		{"<item jid='a@b@c'/>", "jid-malformed"},
		{"<item jid='x@example.org'/><item jid='y@example.org'/>", "bad-request"},
		{"<item jid='alice@example.org'/>", "not-allowed"},
		{"<item jid='nobody@example.org' subscription='remove'/>", "item-not-found"},
	} {
		a1.send("<iq type='set' id='bad'><query xmlns='jabber:iq:roster'>" + tc.body + "</query></iq>")
		got := a1.c.wait(t, tc.want)
		_ = got
	}
	items, ver, _ := e.st.Rosters().Get("alice@example.org")
	if len(items) != 1 {
		t.Fatalf("bad sets changed the roster: %+v", items)
	}
	a1.send(fmt.Sprintf("<iq type='get' id='v1'><query xmlns='jabber:iq:roster' ver='%d'/></iq>", ver))
	got := a1.c.wait(t, "id='v1'")
	if strings.Contains(got[strings.LastIndex(got, "id='v1'"):], "<item") {
		t.Fatalf("up-to-date version still got items: %s", got)
	}
}

func TestOfflineQuota(t *testing.T) {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.Options{Domains: []string{"example.org"}, Store: st, Logger: zerolog.Nop(),
		ModuleConfig: func(id string, v any) error {
			if q, ok := v.(interface{ SetDefaultQuota(int) }); ok {
				q.SetDefaultQuota(3)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Close(); st.Close() }()
	st.Accounts().Create(store.Account{User: "alice@example.org"})
	st.Accounts().Create(store.Account{User: "bob@example.org"})
	e := &env{t: t, r: r, st: st, sc: xmlstream.NewScanner()}
	a := e.bind("alice", "pc")
	for i := 0; i < 4; i++ {
		a.send(fmt.Sprintf("<message to='bob@example.org' type='chat' id='o%d'><body>%d</body></message>", i, i))
	}
	a.c.wait(t, "id='o3'")
	if !strings.Contains(a.c.all(), "service-unavailable") {
		t.Fatalf("over-quota message not refused: %s", a.c.all())
	}
	if n, _ := st.Offline().Count("bob@example.org"); n != 3 {
		t.Fatalf("stored %d, want 3", n)
	}
	// A chat-state-only message is not stored.
	a.send("<message to='bob@example.org' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	time.Sleep(200 * time.Millisecond) // let it reach bob's shard while he is offline
	b := e.bind("bob", "phone")
	b.send("<presence/>")
	b.c.wait(t, "<body>2</body>")
	if strings.Contains(b.c.all(), "composing") {
		t.Fatal("chat state was stored offline")
	}
}

func BenchmarkQueue(b *testing.B) {
	b.Run("mpsc", func(b *testing.B) { router.BenchmarkMPSC(b) })
	b.Run("chan", func(b *testing.B) { router.BenchmarkChan(b) })
}

// BenchmarkChatDelivery measures one chat message from a client stanza to the recipient's
// Conn: Submit, outbound phase, forward between shards, inbound phase, delivery.
func BenchmarkChatDelivery(b *testing.B) {
	e := newEnv(b)
	a := e.bind("alice", "pc")
	bob := e.bind("bob", "phone")
	bob.c.mu.Lock()
	bob.c.got = nil
	bob.c.mu.Unlock()
	counter := &countConn{}
	_ = counter
	msg := []byte("<message to='bob@example.org/phone' type='chat' id='x'><body>hello, this is a chat message</body></message>")
	// Swap bob's capture for a counter so the benchmark measures the router, not the test.
	bob2 := e.bindCounting("bob", "bench")
	msg = []byte("<message to='bob@example.org/bench' type='chat' id='x'><body>hello, this is a chat message</body></message>")
	for i := 0; i < 1000; i++ { // warm pools and caches
		a.submitRaw(msg)
	}
	waitCount(bob2, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.submitRaw(msg)
		if i%1024 == 1023 {
			waitCount(bob2, int64(1000+i-2048))
		}
	}
	waitCount(bob2, int64(1000+b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

type countConn struct{ n atomic.Int64 }

func (c *countConn) Send([]byte) bool             { c.n.Add(1); return true }
func (c *countConn) Close(stanza.StreamCondition) {}

func (e *env) bindCounting(user, res string) *countConn {
	bare, _ := jid.Parse(user + "@example.org")
	c := &countConn{}
	done := make(chan struct{})
	e.r.Bind(bare, res, c, func(*router.Session, error) { close(done) })
	<-done
	return c
}

func waitCount(c *countConn, n int64) {
	for c.n.Load() < n {
		time.Sleep(50 * time.Microsecond)
	}
}

func (s *sess) submitRaw(raw []byte) {
	in := raw
	for len(in) > 0 {
		ev, n, err := s.e.sc.Next(&s.xs, in)
		if err != nil {
			panic(err)
		}
		in = in[n:]
		if ev.Kind == xmlstream.EventElement {
			for !s.e.r.Submit(s.s, ev.Stanza) {
				time.Sleep(10 * time.Microsecond)
			}
		}
	}
}
