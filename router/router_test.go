package router_test

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// newEnv runs every module but test_gate, which waits on its hook as a slow disk would and
// so keeps messages off the in-place path that production takes (runInline).
func newEnv(t testing.TB) *routertest.Env {
	return routertest.New(t, []string{"alice", "bob", "carol"}, func(o *router.Options) { o.Modules = modulesBut("test_gate") })
}

func modulesBut(ids ...string) []string {
	var out []string
	for _, m := range module.All() {
		if !slices.Contains(ids, m.ID) {
			out = append(out, m.ID)
		}
	}
	return out
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	a := e.Bind("alice", "pc")
	b1 := e.Bind("bob", "phone")
	b2 := e.Bind("bob", "laptop")
	b1.Send("<presence><priority>5</priority></presence>")
	b2.Send("<presence><priority>1</priority></presence>")
	b1.C.Wait(t, "bob@example.org/laptop") // b2's presence reached b1
	for _, tc := range []struct {
		name, send string
		to         *routertest.Conn
		want       string
		not        *routertest.Conn
	}{
		{"full JID", "<message to='bob@example.org/laptop' id='1' type='chat'><body>one</body></message>", b2.C, "<body>one</body>", b1.C},
		{"bare JID to highest priority", "<message to='bob@example.org' type='chat'><body>two</body></message>", b1.C, "<body>two</body>", b2.C},
		{"unavailable resource falls back to bare", "<message to='bob@example.org/gone' type='chat'><body>three</body></message>", b1.C, "<body>three</body>", nil},
		{"headline to all available", "<message to='bob@example.org' type='headline'><body>four</body></message>", b2.C, "<body>four</body>", nil},
		{"from is stamped", "<message to='bob@example.org/phone' from='mallory@evil.example'><body>five</body></message>", b1.C, "from='alice@example.org/pc'", nil},
		{"unknown local user", "<message to='nobody@example.org' id='u1' type='chat'><body>x</body></message>", a.C, "service-unavailable", nil},
		{"remote domain", "<message to='x@remote.example' id='r1'><body>x</body></message>", a.C, "remote-server-not-found", nil},
		{"malformed to", "<message to='a@b@c' id='m1'><body>x</body></message>", a.C, "jid-malformed", nil},
		{"unknown iq namespace", "<iq type='get' id='q1'><query xmlns='urn:example:none'/></iq>", a.C, "id='q1'", nil},
		{"iq to full JID", "<iq type='get' id='q2' to='bob@example.org/phone'><query xmlns='urn:example:p2p'/></iq>", b1.C, "id='q2'", nil},
		{"iq to offline resource", "<iq type='get' id='q3' to='bob@example.org/gone'><query xmlns='urn:example:p2p'/></iq>", a.C, "id='q3'", nil},
		{"groupchat to bare", "<message to='bob@example.org' type='groupchat' id='g1'><body>x</body></message>", a.C, "id='g1'", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.Send(tc.send)
			tc.to.Wait(t, tc.want)
			if tc.not != nil {
				tc.not.Never(t, tc.want)
			}
		})
	}
	// Errors are never answered with errors.
	before := len(strings.Split(a.C.All(), "\n"))
	a.Send("<message to='nobody@example.org' type='error' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	time.Sleep(50 * time.Millisecond)
	if after := len(strings.Split(a.C.All(), "\n")); after != before {
		t.Fatalf("an error was answered: %s", a.C.All())
	}
}

func TestOrdering(t *testing.T) {
	e := newEnv(t)
	a := e.Bind("alice", "pc")
	b := e.Bind("bob", "phone")
	const n = 2000
	for i := 0; i < n; i++ {
		a.Send(fmt.Sprintf("<message to='bob@example.org/phone' id='%d'><body>%d</body></message>", i, i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.C.N.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := b.C.Got()
	if len(got) != n {
		t.Fatalf("got %d of %d", len(got), n)
	}
	for i, s := range got {
		if !strings.Contains(s, fmt.Sprintf("id='%d'", i)) {
			t.Fatalf("message %d out of order: %s", i, s)
		}
	}
}

func TestSubscriptionToBoth(t *testing.T) {
	e := newEnv(t)
	a := e.Bind("alice", "pc")
	b := e.Bind("bob", "phone")
	a.Send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
	b.Send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
	a.C.Wait(t, "id='r0'")
	a.Send("<presence/>")
	b.Send("<presence/>")
	a.Send("<presence to='bob@example.org' type='subscribe'/>")
	b.C.Wait(t, "type='subscribe'")
	a.C.Wait(t, "ask='subscribe'") // roster push with pending ask
	b.Send("<presence to='alice@example.org' type='subscribed'/>")
	a.C.Wait(t, "subscription='to'")
	b.Send("<presence to='alice@example.org' type='subscribe'/>")
	a.C.Wait(t, "type='subscribe'")
	a.Send("<presence to='bob@example.org' type='subscribed'/>")
	a.C.Wait(t, "subscription='both'")
	b.C.Wait(t, "subscription='both'")
	it, err := e.Store.Rosters().Item("alice@example.org", "bob@example.org")
	if err != nil || it.Sub != store.SubBoth {
		t.Fatalf("stored item %+v %v", it, err)
	}
	// Presence now flows both ways, and unavailable on unbind.
	b.Send("<presence><show>away</show></presence>")
	a.C.Wait(t, "<show>away</show>")
	b.Unbind()
	a.C.Wait(t, "<presence type='unavailable' from='bob@example.org/phone' to='alice@example.org'/>")
}

func TestRosterSetAndVersion(t *testing.T) {
	e := newEnv(t)
	a1 := e.Bind("alice", "one")
	a2 := e.Bind("alice", "two")
	a1.Send("<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>")
	a2.Send("<iq type='get' id='g2'><query xmlns='jabber:iq:roster'/></iq>")
	a2.C.Wait(t, "id='g2'")
	a1.Send("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='carol@example.org' name='Carol'><group>Friends</group></item></query></iq>")
	a1.C.Wait(t, "id='s1'")
	a2.C.Wait(t, "<group>Friends</group>") // push to the other interested resource
	for _, tc := range []struct{ body, want string }{
		{"<item jid='carol@example.org'><group>a</group><group>a</group></item>", "bad-request"},
		{"<item jid='a@b@c'/>", "jid-malformed"},
		{"<item jid='x@example.org'/><item jid='y@example.org'/>", "bad-request"},
		{"<item jid='alice@example.org/x'/>", "not-allowed"},
		{"<item jid='nobody@example.org' subscription='remove'/>", "item-not-found"},
	} {
		a1.Send("<iq type='set' id='bad'><query xmlns='jabber:iq:roster'>" + tc.body + "</query></iq>")
		got := a1.C.Wait(t, tc.want)
		_ = got
	}
	items, ver, _ := e.Store.Rosters().Get("alice@example.org")
	if len(items) != 1 {
		t.Fatalf("bad sets changed the roster: %+v", items)
	}
	a1.Send(fmt.Sprintf("<iq type='get' id='v1'><query xmlns='jabber:iq:roster' ver='%d'/></iq>", ver))
	got := a1.C.Wait(t, "id='v1'")
	if strings.Contains(got[strings.LastIndex(got, "id='v1'"):], "<item") {
		t.Fatalf("up-to-date version still got items: %s", got)
	}
}

func TestOfflineQuota(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if q, ok := v.(interface{ SetDefaultQuota(int) }); ok {
				q.SetDefaultQuota(3)
			}
			return nil
		}
	})
	a := e.Bind("alice", "pc")
	for i := 0; i < 4; i++ {
		a.Send(fmt.Sprintf("<message to='bob@example.org' type='chat' id='o%d'><body>%d</body></message>", i, i))
	}
	a.C.Wait(t, "id='o3'")
	if !strings.Contains(a.C.All(), "service-unavailable") {
		t.Fatalf("over-quota message not refused: %s", a.C.All())
	}
	if n, _ := e.Store.Offline().Count("bob@example.org"); n != 3 {
		t.Fatalf("stored %d, want 3", n)
	}
	// A chat-state-only message is not stored.
	a.Send("<message to='bob@example.org' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	time.Sleep(200 * time.Millisecond) // let it reach bob's shard while he is offline
	b := e.Bind("bob", "phone")
	b.Send("<presence/>")
	b.C.Wait(t, "<body>2</body>")
	if strings.Contains(b.C.All(), "composing") {
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
	noArchive := func(b *testing.B) *routertest.Env {
		// Every module but MAM: the cost of routing itself.
		return routertest.New(b, []string{"alice", "bob", "carol"}, func(o *router.Options) { o.Modules = modulesBut("mam", "test_gate") })
	}
	b.Run("archive", func(b *testing.B) { benchChat(b, newEnv(b), 0) })
	b.Run("no-archive", func(b *testing.B) { benchChat(b, noArchive(b), 0) })
	// The sender's token bucket checked on every message, never in debt: its cost alone.
	b.Run("no-archive-shaped", func(b *testing.B) {
		benchChat(b, routertest.New(b, []string{"alice", "bob", "carol"}, func(o *router.Options) {
			o.Modules = modulesBut("mam", "test_gate")
			o.SenderRate, o.SenderBurst = 1<<30, 1<<30
		}), 0)
	})
	// At a moderate 5,000 messages per second nothing is shared between messages: each one
	// pays the wake-ups of the shard goroutines and the store's log writer by itself.
	b.Run("archive-5000/s", func(b *testing.B) { benchChat(b, newEnv(b), 5000) })
	b.Run("no-archive-5000/s", func(b *testing.B) { benchChat(b, noArchive(b), 5000) })
}

// benchChat sends b.N messages as fast as they go, or at rate per second when rate > 0.
func benchChat(b *testing.B, e *routertest.Env, rate int) {
	a := e.Bind("alice", "pc")
	sink := bindCounting(e, "bob", "bench")
	msg := []byte("<message to='bob@example.org/bench' type='chat' id='x'><body>hello, this is a chat message</body></message>")
	lim := xmlstream.DefaultLimits()
	var xs xmlstream.State
	xs.Reset(xmlstream.KindClient, &lim)
	sc := xmlstream.NewScanner()
	sc.Next(&xs, []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>"))
	submit := func() {
		ev, _, err := sc.Next(&xs, msg)
		if err != nil || ev.Kind != xmlstream.EventElement {
			b.Fatalf("scan: %v", err)
		}
		for !e.R.Submit(a.S, ev.Stanza) {
			time.Sleep(10 * time.Microsecond)
		}
	}
	for i := 0; i < 1000; i++ { // warm pools and caches
		submit()
	}
	waitCount(sink, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
		submit()
		if i%1024 == 1023 {
			waitCount(sink, int64(1000+i-2048))
		}
	}
	waitCount(sink, int64(1000+b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// CPU time of the whole process (every goroutine, the store's compactions included) per
	// message: what a server pays, and steady when other processes share the machine.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the user plus system CPU time this process has used, in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

type countConn struct{ n atomic.Int64 }

func (c *countConn) Send([]byte) bool             { c.n.Add(1); return true }
func (c *countConn) Resume()                      {}
func (c *countConn) Drained(f func(bool))         { f(true) }
func (c *countConn) Close(stanza.StreamCondition) {}

// bindCounting binds user/res to a countConn and makes it available, so that messages
// reach it as they reach a client that sent its initial presence.
func bindCounting(e *routertest.Env, user, res string) *countConn {
	bare, _ := jid.Parse(user + "@example.org")
	c := &countConn{}
	done := make(chan *router.Session, 1)
	e.R.Bind(bare, res, c, func(s *router.Session, _ error) { done <- s })
	se := <-done
	lim := xmlstream.DefaultLimits()
	var xs xmlstream.State
	xs.Reset(xmlstream.KindClient, &lim)
	sc := xmlstream.NewScanner()
	sc.Next(&xs, []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>"))
	if ev, _, err := sc.Next(&xs, []byte("<presence/>")); err == nil && ev.Kind == xmlstream.EventElement {
		e.R.Submit(se, ev.Stanza)
	}
	for c.n.Load() == 0 { // the echo of its presence: it is available
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	c.n.Store(0)
	return c
}

func waitCount(c *countConn, n int64) {
	for c.n.Load() < n {
		time.Sleep(50 * time.Microsecond)
	}
}

// TestAnswersForTheAccount: the answer to an IQ without 'to', which the server handles for
// the sender's account, carries no 'from' (RFC 6120 §8.1.2.1 allows none or the bare JID),
// a result and an error alike; an IQ to the server's domain is answered from the domain.
func TestAnswersForTheAccount(t *testing.T) {
	e := newEnv(t)
	a := e.Bind("alice", "pc")
	for _, tc := range []struct {
		id, payload, want string
	}{
		{"r1", "<query xmlns='jabber:iq:roster'/>", "type='result'"},
		{"r2", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='none-such'/></pubsub>", "<item-not-found"},
		{"r3", "<query xmlns='urn:example:none'/>", "<service-unavailable"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			a.Send("<iq type='get' id='" + tc.id + "'>" + tc.payload + "</iq>")
			got := a.C.Wait(t, "id='"+tc.id+"'", tc.want)
			if strings.Contains(got, "from=") {
				t.Fatalf("answer for the account has a 'from': %s", got)
			}
		})
	}
	a.Send("<iq type='get' id='r4' to='example.org'><query xmlns='urn:example:none'/></iq>")
	a.C.Wait(t, "id='r4'", "from='example.org'", "<service-unavailable")
}

// TestOnlineUsers: the accounts with a session, once each however many resources they
// bind, from every shard; an account whose last session ended is not among them.
func TestOnlineUsers(t *testing.T) {
	e := newEnv(t)
	e.Bind("alice", "a")
	e.Bind("alice", "b")
	e.Bind("bob", "a")
	c := e.Bind("carol", "a")
	c.Unbind()
	got := make(chan []string, 1)
	e.R.OnlineUsers(func(u []string) { got <- u })
	select {
	case u := <-got:
		slices.Sort(u)
		if !slices.Equal(u, []string{"alice@example.org", "bob@example.org"}) {
			t.Fatalf("online users %q", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnlineUsers never answered")
	}
}
