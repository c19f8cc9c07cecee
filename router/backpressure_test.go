package router_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// gate is a test module that holds every message for gated@example.org until released, so
// a sender's stanzas pile up inside the router the way they do behind a slow disk.
type gate struct{}

var gateCh = make(chan struct{})
var gateOn atomic.Bool

func init() { module.Register(gate{}) }

func (gate) ModuleInfo() module.Info {
	return module.Info{ID: "test_gate", New: func() module.Module { return gate{} }}
}
func (gate) Provision(r module.Registrar) error {
	// Like a hook that waits for the disk, so messages queue on the shard instead of
	// running on the sender's goroutine.
	r.WaitsForDisk(module.Inbound, module.KindMessage)
	r.Hook(module.Inbound, module.KindMessage, 1, func(c module.Context, p *module.Packet) module.Verdict {
		if gateOn.Load() && strings.HasPrefix(p.To.String(), "gated@") {
			<-gateCh
		}
		return module.Continue
	})
	return nil
}

// TestSenderBackpressure: a sender whose stanzas pile up inside the router is blocked once
// they exceed SenderInflight bytes and resumed when they drain, instead of the router's
// memory growing with whatever it offers.
func TestSenderBackpressure(t *testing.T) {
	gateOn.Store(true)
	defer gateOn.Store(false)
	e := routertest.New(t, []string{"flood", "gated"}, func(o *router.Options) { o.SenderInflight = 8 << 10 })
	g := e.Bind("gated", "r")
	g.Send("<presence/>")
	f := e.Bind("flood", "r")
	body := strings.Repeat("x", 1000)
	sent := 0
	for !f.S.Blocked() && sent < 1000 {
		f.Send("<message to='gated@example.org' type='chat'><body>" + body + "</body></message>")
		sent++
	}
	if !f.S.Blocked() {
		t.Fatalf("sender not blocked after %d KB in flight", sent)
	}
	t.Logf("blocked after %d stanzas (~%d KB) with an 8 KiB limit", sent, sent)
	if f.C.Resumes.Load() != 0 {
		t.Fatal("resumed while still backed up")
	}
	for i := 0; i < sent; i++ {
		gateCh <- struct{}{}
	}
	waitFor(t, func() bool { return f.C.Resumes.Load() == 1 && !f.S.Blocked() })
	g.C.Wait(t, "chat")
	waitFor(t, func() bool { return int(g.C.N.Load()) >= sent })
}

// TestBarrier: a Barrier completes only once the session's stanzas submitted before it
// have been through their recipient's phase (here held by the gate, as by a slow disk),
// and at once when there were none.
func TestBarrier(t *testing.T) {
	gateOn.Store(true)
	defer gateOn.Store(false)
	e := routertest.New(t, []string{"sender", "gated"}, nil)
	g := e.Bind("gated", "r")
	g.Send("<presence/>")
	s := e.Bind("sender", "r")

	done := make(chan bool, 1)
	e.R.Barrier(s.S, func(ok bool) { done <- ok })
	if ok := <-done; !ok {
		t.Fatal("an empty barrier failed")
	}

	for range 3 {
		s.Send("<message to='gated@example.org' type='chat'><body>held</body></message>")
	}
	e.R.Barrier(s.S, func(ok bool) { done <- ok })
	select {
	case <-done:
		for range 3 {
			gateCh <- struct{}{} // let the shard go, or the router cannot close
		}
		t.Fatal("the barrier passed messages still held in their recipient's phase")
	case <-time.After(200 * time.Millisecond):
	}
	for range 3 {
		gateCh <- struct{}{}
	}
	<-done
	if g.C.N.Load() < 3 {
		t.Fatalf("the barrier completed before the messages were delivered (%d)", g.C.N.Load())
	}
}

// TestDetachOfEndedSession: a stream's close that the router sees after its session
// ended (a new bind took the resource while the close was on its way) still hands over
// what the stream wrote and the client never acknowledged: RFC 6121 routes it.
func TestDetachOfEndedSession(t *testing.T) {
	gateOn.Store(true)
	defer gateOn.Store(false)
	e := routertest.New(t, []string{"sender", "gated"}, nil)
	old := e.Bind("gated", "r")
	old.Send("<presence/>")
	s := e.Bind("sender", "r")
	s.Send("<message to='gated@example.org' type='chat' id='hold'><body>holds the shard</body></message>")

	// Queued behind the held message, in this order: a bind of the same resource, which
	// ends the old session, then the old stream's detach.
	nc := &routertest.Conn{}
	bound := make(chan *router.Session, 1)
	e.R.Bind(old.S.JID().Bare(), "r", nc, func(se *router.Session, err error) { bound <- se })
	time.Sleep(50 * time.Millisecond) // the bind's op is queued
	collected := make(chan struct{})
	e.R.DetachWith(old.S, time.Hour, func() [][]byte {
		close(collected)
		return [][]byte{[]byte("<message xmlns='jabber:client' from='sender@example.org/r' to='gated@example.org/r' type='chat' id='unacked'><body>never acknowledged</body></message>")}
	})
	gateCh <- struct{}{}
	<-bound
	select {
	case <-collected:
	case <-time.After(5 * time.Second):
		t.Fatal("the detach of an ended session never collected the stream's unacknowledged stanzas")
	}
	// The new session sent no presence: the message is kept for later (RFC 6121 §8.5.3).
	waitFor(t, func() bool {
		n := 0
		e.Store.Offline().List("gated@example.org", func(m store.OfflineMessage) bool {
			n += strings.Count(string(m.Raw), "id='unacked'")
			return true
		})
		return n == 1 || strings.Contains(nc.All(), "id='unacked'")
	})
}

// TestBarrierAfterBarrier: a Barrier called while the session's previous one still waits
// does not pass before it, though the previous one took the marks of where to wait.
func TestBarrierAfterBarrier(t *testing.T) {
	gateOn.Store(true)
	defer gateOn.Store(false)
	e := routertest.New(t, []string{"sender", "gated"}, nil)
	g := e.Bind("gated", "r")
	g.Send("<presence/>")
	s := e.Bind("sender", "r")
	for range 3 {
		s.Send("<message to='gated@example.org' type='chat'><body>held</body></message>")
	}
	first, second := make(chan bool, 1), make(chan bool, 1)
	e.R.Barrier(s.S, func(ok bool) { first <- ok })
	e.R.Barrier(s.S, func(ok bool) { second <- ok })
	select {
	case <-second:
		for range 3 {
			gateCh <- struct{}{}
		}
		t.Fatal("the second barrier passed messages the first one still waits for")
	case <-time.After(200 * time.Millisecond):
	}
	for range 3 {
		gateCh <- struct{}{}
	}
	<-first
	<-second
	// Both done: the session's entry is gone, and a new barrier passes at once.
	third := make(chan bool, 1)
	e.R.Barrier(s.S, func(ok bool) { third <- ok })
	select {
	case <-third:
	case <-time.After(5 * time.Second):
		t.Fatal("a barrier after two finished ones never completed")
	}
}

// TestCloseSettles: Close lets the work that shards hand each other finish: messages still
// in their sender's phase when the router closes reach their recipient's (offline storage
// here) instead of being queued on a shard that has stopped.
func TestCloseSettles(t *testing.T) {
	var users []string
	for i := range 16 {
		users = append(users, fmt.Sprint("u", i))
	}
	// Queued, not run in place by the sender's shard: as when the recipient's is busy.
	e := routertest.New(t, users, func(o *router.Options) { o.NoInline = true })
	from, to := "", ""
	for _, a := range users {
		for _, b := range users {
			if from == "" && !e.R.SameShard(a+"@example.org", b+"@example.org") {
				from, to = a, b
			}
		}
	}
	s := e.Bind(from, "r")
	release := e.R.HoldShardOf(from + "@example.org")
	const n = 20
	for i := range n {
		s.Send(fmt.Sprintf("<message to='%s@example.org' type='chat' id='m%d'><body>sent as the server stops</body></message>", to, i))
	}
	closed := make(chan error, 1)
	go func() { closed <- e.R.Close() }()
	time.Sleep(100 * time.Millisecond) // Close has begun: the other shards have nothing queued
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	got := 0
	e.Store.Offline().List(to+"@example.org", func(store.OfflineMessage) bool { got++; return true })
	if got != n {
		t.Fatalf("%d of %d messages stored for the offline recipient", got, n)
	}
}

// TestPeerBackpressure: a federated peer's stream whose stanzas pile up inside the router
// is paused once they pass its bound (SubmitFromCharged, four times SenderInflight) and
// resumed when they drain, instead of the recipient's shard queue growing without end.
func TestPeerBackpressure(t *testing.T) {
	gateOn.Store(true)
	defer gateOn.Store(false)
	e := routertest.New(t, []string{"gated"}, func(o *router.Options) { o.SenderInflight = 8 << 10 })
	g := e.Bind("gated", "r")
	g.Send("<presence/>")
	peer := &routertest.Conn{}
	ch := router.NewCharge(peer)
	remote, _ := jid.Parse("remote.example")
	body := strings.Repeat("x", 1000)
	sent, bytes := 0, 0
	for !ch.Blocked() && sent < 1000 {
		raw := fmt.Sprintf("<message from='flood@remote.example' to='gated@example.org' type='chat'><body>%s</body></message>", body)
		if !e.R.SubmitFromCharged(remote, []byte(raw), ch) {
			t.Fatalf("refused after %d", sent)
		}
		sent, bytes = sent+1, bytes+len(raw)
	}
	if !ch.Blocked() || bytes <= 32<<10 {
		t.Fatalf("peer blocked %v after %d KB in flight, with a 32 KiB bound", ch.Blocked(), sent)
	}
	for i := 0; i < sent; i++ {
		gateCh <- struct{}{}
	}
	waitFor(t, func() bool { return peer.Resumes.Load() == 1 && !ch.Blocked() })
}
