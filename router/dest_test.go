package router_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// rooms is a test module that owns the service domain rooms.example.org, the way MUC will
// own conference.<domain>: rooms are not accounts, and each room's state is touched only on
// its own shard (checked: no two handler calls for one room ever overlap).
type rooms struct {
	mu     sync.Mutex
	inside map[string]bool
	seen   map[string][]string // room -> message ids, in handling order
}

var testRooms = &rooms{inside: map[string]bool{}, seen: map[string][]string{}}

func init() { module.Register(testRooms) }

func (*rooms) ModuleInfo() module.Info {
	return module.Info{ID: "test_rooms", New: func() module.Module { return testRooms }}
}

func (m *rooms) Provision(r module.Registrar) error {
	r.Service(module.Service{Domain: "rooms.example.org", Name: "Test rooms", Handler: m.handle})
	return nil
}

func (m *rooms) handle(c module.Context, p *module.Packet) {
	room := p.To.Bare().String()
	m.mu.Lock()
	if m.inside[room] {
		m.mu.Unlock()
		panic("two handler calls for one room at once: service state is not sharded by entity")
	}
	m.inside[room] = true
	id, _ := p.Elem().Attr("id")
	m.seen[room] = append(m.seen[room], string(id))
	m.mu.Unlock()
	defer func() { m.mu.Lock(); m.inside[room] = false; m.mu.Unlock() }()
	switch p.Kind {
	case module.KindIQ:
		if p.Type == "get" || p.Type == "set" {
			c.Reply(p, []byte("<query xmlns='urn:test:rooms'/>"))
		}
	case module.KindMessage:
		if txt := body(p); strings.HasPrefix(txt, "packet") {
			// What a room's fan-out does: the router is told kind, type and sender and
			// does not parse them out of the stanza again.
			to := p.From
			if txt == "packet remote" {
				to, _ = jid.Parse("someone@elsewhere.example/x")
			}
			var b xmlstream.Builder
			b.Start("message").Attr("from", room+"/bot").Attr("to", to.String()).Attr("type", "chat").
				Start("body").Text("told " + txt).End().End()
			bot, _ := jid.Parse(room + "/bot")
			c.(module.PacketRouter).RoutePacket(&module.Packet{Raw: b.B, Kind: module.KindMessage, Type: "chat", From: bot, To: to})
			return
		}
		var b xmlstream.Builder
		b.Start("message").Attr("from", room+"/bot").Attr("to", p.From.String()).Attr("type", "chat").
			Start("body").Text("echo " + body(p)).End().End()
		c.Route(b.B)
	}
}

func body(p *module.Packet) string {
	b, _ := p.Elem().Child("", "body")
	return string(b.AppendText(nil))
}

type fakeRemote struct {
	mu  sync.Mutex
	got []string
	err error
}

func (f *fakeRemote) Route(from, to jid.JID, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.got = append(f.got, from.String()+" -> "+to.String()+": "+string(raw))
	return nil
}

func TestResolverDestinations(t *testing.T) {
	testRooms.mu.Lock()
	testRooms.seen = map[string][]string{}
	testRooms.mu.Unlock()
	e := newEnv(t)
	a := e.Bind("alice", "pc")
	a.Send("<presence/>")

	// A service entity receives stanzas without being an account, and answers through
	// the same resolver.
	a.Send("<message to='lobby@rooms.example.org' type='chat'><body>hello</body></message>")
	a.C.Wait(t, "from='lobby@rooms.example.org/bot'", "echo hello")
	a.Send("<iq type='get' id='q1' to='lobby@rooms.example.org'><query xmlns='urn:test:rooms'/></iq>")
	a.C.Wait(t, "id='q1'", "type='result'", "from='lobby@rooms.example.org'")
	// The service domain is in the server's disco#items.
	a.Send("<iq type='get' id='i1' to='example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	a.C.Wait(t, "id='i1'", "jid='rooms.example.org'", "name='Test rooms'")

	// Many senders, many rooms: every room sees its messages one at a time, in order per sender.
	var wg sync.WaitGroup
	for _, u := range []string{"bob", "carol"} {
		s := e.Bind(u, "x")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				s.Send("<message to='r" + string(rune('a'+i%5)) + "@rooms.example.org' id='" + u + string(rune('0'+i/5)) + "'><body/></message>")
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		testRooms.mu.Lock()
		n := 0
		for r, ids := range testRooms.seen {
			if strings.HasPrefix(r, "r") {
				n += len(ids)
			}
		}
		testRooms.mu.Unlock()
		if n == 100 || time.Now().After(deadline) {
			if n != 100 {
				t.Fatalf("rooms saw %d of 100 messages", n)
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	testRooms.mu.Lock()
	for r, ids := range testRooms.seen {
		if !strings.HasPrefix(r, "r") {
			continue
		}
		last := map[byte]string{}
		for _, id := range ids {
			if p := last[id[0]]; p > id {
				t.Errorf("%s: %q handled after %q", r, id, p)
			}
			last[id[0]] = id
		}
	}
	testRooms.mu.Unlock()

	// A remote domain with no Remote: remote-server-not-found.
	a.Send("<message to='someone@elsewhere.example' id='r1' type='chat'><body>x</body></message>")
	a.C.Wait(t, "id='r1'", "remote-server-not-found")
	// With a Remote, it goes there; its errors come back as stanza errors.
	rm := &fakeRemote{}
	e.R.SetRemote(rm)
	a.Send("<message to='someone@elsewhere.example' id='r2' type='chat'><body>over there</body></message>")
	waitFor(t, func() bool { rm.mu.Lock(); defer rm.mu.Unlock(); return len(rm.got) == 1 })
	if !strings.Contains(rm.got[0], "alice@example.org/pc -> someone@elsewhere.example") {
		t.Fatalf("remote got %q", rm.got[0])
	}
	rm.mu.Lock()
	rm.err = stanza.New(stanza.RemoteServerTimeout)
	rm.mu.Unlock()
	a.Send("<message to='someone@elsewhere.example' id='r3' type='chat'><body>x</body></message>")
	a.C.Wait(t, "id='r3'", "remote-server-timeout")
	// Modules' Route goes through the same resolver: an IQ error from the service to a
	// remote JID reaches the Remote too.
	rm.mu.Lock()
	rm.err = nil
	rm.mu.Unlock()
	if e.R.IsService("example.org") || !e.R.IsService("rooms.example.org") {
		t.Fatal("IsService")
	}

	// A module that says what it routes (module.PacketRouter): to a local user, and to a
	// remote one, whose Remote gets the sender the module named.
	a.Send("<message to='lobby@rooms.example.org' type='chat'><body>packet</body></message>")
	a.C.Wait(t, "from='lobby@rooms.example.org/bot'", "told packet")
	a.Send("<message to='lobby@rooms.example.org' type='chat'><body>packet remote</body></message>")
	waitFor(t, func() bool { rm.mu.Lock(); defer rm.mu.Unlock(); return len(rm.got) == 2 })
	if !strings.Contains(rm.got[1], "lobby@rooms.example.org/bot -> someone@elsewhere.example/x") || !strings.Contains(rm.got[1], "told packet remote") {
		t.Fatalf("remote got %q", rm.got[1])
	}
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dup modules register the same IQ; they are only provisioned when a test names them.
type dup struct{ id string }

func (d dup) ModuleInfo() module.Info {
	return module.Info{ID: d.id, New: func() module.Module { return d }}
}
func (d dup) Provision(r module.Registrar) error {
	if !dupOn.Load() {
		return nil
	}
	r.IQ(module.IQGet, "urn:test:dup", "q", func(c module.Context, p *module.Packet) {})
	return nil
}

var dupOn atomic.Bool

func init() {
	module.Register(dup{"test_dup_a"})
	module.Register(dup{"test_dup_b"})
}

func TestDuplicateIQIsAStartupError(t *testing.T) {
	st := routertest.New(t, nil, nil).Store
	dupOn.Store(true)
	defer dupOn.Store(false)
	_, err := router.New(router.Options{Domains: []string{"example.org"}, Store: st,
		Modules: []string{"test_dup_a", "test_dup_b"}})
	if err == nil || !strings.Contains(err.Error(), "urn:test:dup") {
		t.Fatalf("err = %v, want a duplicate registration error naming the IQ", err)
	}
}

func TestDetachedSession(t *testing.T) {
	e := newEnv(t)
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth})
	e.Store.Rosters().Put("bob@example.org", store.RosterItem{JID: "alice@example.org", Sub: store.SubBoth})
	b := e.Bind("bob", "pc")
	b.Send("<presence/>")
	a := e.Bind("alice", "phone")
	a.Send("<presence/>")
	b.C.Wait(t, "from='alice@example.org/phone'")
	b.C.Reset() // the answer to bob's own probe may carry an unavailable from before alice was on

	// Detached: stanzas queue, contacts see no change.
	e.R.Detach(a.S, time.Hour)
	b.Send("<message to='alice@example.org/phone' id='d1' type='chat'><body>one</body></message>")
	b.Send("<message to='alice@example.org' id='d2' type='chat'><body>two</body></message>")
	a.C.Never(t, "id='d1'")
	b.C.Never(t, "unavailable")

	// Re-attached to a new connection: the queue comes first, in order, then live traffic.
	c2 := &routertest.Conn{}
	done := make(chan error, 1)
	e.R.Attach(a.S, c2, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.Send("<message to='alice@example.org/phone' id='d3' type='chat'><body>three</body></message>")
	c2.Wait(t, "id='d3'")
	got := c2.All()
	if i1, i2, i3 := strings.Index(got, "id='d1'"), strings.Index(got, "id='d2'"), strings.Index(got, "id='d3'"); i1 < 0 || i1 > i2 || i2 > i3 {
		t.Fatalf("order after attach:\n%s", got)
	}
	// Attaching a session that is not detached fails.
	e.R.Attach(a.S, c2, func(err error) { done <- err })
	if err := <-done; err == nil {
		t.Fatal("attach of an attached session succeeded")
	}

	// Detached until it expires: messages go to offline storage, IQs get errors, and only
	// then do contacts see unavailable.
	e.R.Detach(a.S, 300*time.Millisecond)
	b.Send("<message to='alice@example.org/phone' id='d4' type='chat'><body>for later</body></message>")
	// Copies made for this one session go nowhere else (sessionCopy).
	b.Send("<message to='alice@example.org/phone' id='c4' type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
		"<message xmlns='jabber:client' to='alice@example.org/desk' type='chat'><body>copy</body></message></forwarded></received></message>")
	b.Send("<message to='alice@example.org/phone' id='r4'><result xmlns='urn:xmpp:mam:2' queryid='q' id='x'><forwarded xmlns='urn:xmpp:forward:0'>" +
		"<message xmlns='jabber:client' type='chat'><body>archived</body></message></forwarded></result></message>")
	b.Send("<iq to='alice@example.org/phone' id='q4' type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
	b.C.Never(t, "unavailable")
	b.C.Wait(t, "id='q4'", "type='error'", "service-unavailable")
	b.C.Wait(t, "type='unavailable'", "from='alice@example.org/phone'")
	var stored []string
	e.Store.Offline().List("alice@example.org", func(m store.OfflineMessage) bool {
		stored = append(stored, string(m.Raw))
		return true
	})
	if len(stored) != 1 || !strings.Contains(stored[0], "for later") {
		t.Fatalf("offline after expiry: %q", stored)
	}
	// The ended session cannot be resumed.
	e.R.Attach(a.S, c2, func(err error) { done <- err })
	var se *stanza.Error
	if err := <-done; !errors.As(err, &se) || se.Condition != stanza.ItemNotFound {
		t.Fatalf("attach after expiry: %v", err)
	}

	// The count of detached sessions comes back to zero on every path: attach, expiry,
	// a detach without resumption (a clean close), and a detach of a detached session.
	a2 := e.Bind("alice", "tablet")
	e.R.Detach(a2.S, 0)
	a3 := e.Bind("alice", "watch")
	e.R.Detach(a3.S, time.Hour)
	waitFor(t, func() bool { return e.R.Stats().Detached == 1 })
	e.R.Detach(a3.S, time.Hour)
	e.R.Detach(a3.S, 0)
	waitFor(t, func() bool { return e.R.Stats().Detached == 0 })
}

// TestUndeliverableFallsBack: a session that refuses a message (its stream is closing or
// over its cap) does not lose it: another resource gets it, else offline storage.
func TestUndeliverableFallsBack(t *testing.T) {
	e := newEnv(t)
	b := e.Bind("bob", "pc")
	a1 := e.Bind("alice", "phone")
	a1.Send("<presence><priority>5</priority></presence>")
	a2 := e.Bind("alice", "pc")
	a2.Send("<presence><priority>1</priority></presence>")
	a1.C.Wait(t, "alice@example.org/pc")
	a1.C.Refuse.Store(true)
	b.Send("<message to='alice@example.org' id='u1' type='chat'><body>hi</body></message>")
	a2.C.Wait(t, "id='u1'")
	a2.C.Refuse.Store(true)
	b.Send("<message to='alice@example.org/phone' id='u2' type='chat'><body>later</body></message>")
	waitFor(t, func() bool {
		n := 0
		e.Store.Offline().List("alice@example.org", func(store.OfflineMessage) bool { n++; return true })
		return n == 1
	})
	b.C.Never(t, "id='u2'") // stored, so no error for the sender
}

// TestDetachExpiryGenerations: each detachment ends by its own time only. A session that
// came back and left again with a longer window is not ended by the first one's, and a
// short window that comes after a long one still ends on time.
func TestDetachExpiryGenerations(t *testing.T) {
	e := newEnv(t)
	a := e.Bind("alice", "phone")
	done := make(chan error, 1)
	e.R.Detach(a.S, 200*time.Millisecond)
	c2 := &routertest.Conn{}
	e.R.Attach(a.S, c2, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.R.Detach(a.S, time.Hour)
	b := e.Bind("bob", "pc")
	e.R.Detach(b.S, 100*time.Millisecond) // after a's hour, due long before it
	waitFor(t, func() bool { return b.S.Ended() })
	time.Sleep(time.Second)
	if a.S.Ended() {
		t.Fatal("the first detachment's time ended the second")
	}
	if n := e.R.Stats().Detached; n != 1 {
		t.Fatalf("%d detached, want 1", n)
	}
}

// TestNoErrorForResults: an IQ result that cannot be delivered (no such server, an
// isolated host, a component that is not there) is dropped: RFC 6120 §8.2.3 lets no IQ
// result be answered, and two servers would bounce errors for ever. A request there still
// gets its error.
func TestNoErrorForResults(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<iq type='result' id='r1' to='someone@elsewhere.example/x'/>")
	a.Send("<iq type='get' id='g1' to='someone@elsewhere.example/x'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.C.Wait(t, "id='g1'", "remote-server-not-found")
	if strings.Contains(a.C.All(), "id='r1'") {
		t.Fatalf("an IQ result was answered: %s", a.C.All())
	}
}

// TestResumeSkipsOnlyWhatWasWritten: a stream's unacknowledged stanzas beyond the detached
// queue's bounds (bytes here) follow RFC 6121 at once; a resume's h then counts stanzas
// the queue does not hold, and must skip only among those it does, not into a smaller
// stanza that arrived while detached and still fit.
func TestResumeSkipsOnlyWhatWasWritten(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) { o.DetachedLimits.Bytes = 1000 })
	b := e.Bind("bob", "pc")
	a := e.Bind("alice", "phone")
	a.Send("<presence/>")
	var unacked [][]byte
	for i := range 5 {
		unacked = append(unacked, []byte(fmt.Sprintf("<message from='bob@example.org/pc' to='alice@example.org/phone' id='u%d' type='chat'><body>%s</body></message>",
			i, strings.Repeat("x", 250))))
	}
	e.R.DetachWith(a.S, time.Hour, func() [][]byte { return unacked })
	b.Send("<message to='alice@example.org/phone' id='later' type='chat'><body>while away</body></message>")
	time.Sleep(100 * time.Millisecond)
	c2 := &routertest.Conn{}
	done := make(chan error, 1)
	e.R.AttachSkip(a.S, c2, 5, func(err error) { done <- err }) // the client had all five
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c2.Wait(t, "id='later'")
	if got := c2.All(); strings.Contains(got, "id='u") {
		t.Fatalf("resent what the client had: %s", got)
	}
}

// TestCloseUserEnds: CloseUser ends the sessions at once, attached or detached, so a
// stream with XEP-0198 resumption cannot leave its session resumable and available.
func TestCloseUserEnds(t *testing.T) {
	e := newEnv(t)
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth})
	e.Store.Rosters().Put("bob@example.org", store.RosterItem{JID: "alice@example.org", Sub: store.SubBoth})
	b := e.Bind("bob", "pc")
	b.Send("<presence/>")
	a := e.Bind("alice", "phone")
	a.Send("<presence/>")
	d := e.Bind("alice", "desk")
	b.C.Wait(t, "from='alice@example.org/phone'")
	e.R.Detach(d.S, time.Hour)
	e.R.CloseUser(a.S.JID().Bare(), stanza.NotAuthorized)
	b.C.Wait(t, "type='unavailable'", "from='alice@example.org/phone'")
	waitFor(t, func() bool { return a.S.Ended() && d.S.Ended() })
	if a.C.Closed() != stanza.NotAuthorized {
		t.Fatalf("stream closed with %q", a.C.Closed())
	}
	done := make(chan error, 1)
	e.R.Attach(a.S, &routertest.Conn{}, func(err error) { done <- err })
	if err := <-done; err == nil {
		t.Fatal("a closed user's session was resumed")
	}
}

// TestAttachToDeadStream: an attach whose new stream refuses the queue (gone already)
// ends the session: the rest of the queue follows RFC 6121, and contacts see it leave,
// rather than the session staying attached to a stream that will not unbind it.
func TestAttachToDeadStream(t *testing.T) {
	e := newEnv(t)
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth})
	e.Store.Rosters().Put("bob@example.org", store.RosterItem{JID: "alice@example.org", Sub: store.SubBoth})
	b := e.Bind("bob", "pc")
	b.Send("<presence/>")
	a := e.Bind("alice", "phone")
	a.Send("<presence/>")
	b.C.Wait(t, "from='alice@example.org/phone'")
	e.R.Detach(a.S, time.Hour)
	b.Send("<message to='alice@example.org/phone' id='q1' type='chat'><body>queued</body></message>")
	queued := make(chan bool)
	e.R.Barrier(b.S, func(bool) { close(queued) }) // the message is in alice's queue
	<-queued
	dead := &routertest.Conn{}
	dead.Refuse.Store(true)
	done := make(chan error, 1)
	e.R.Attach(a.S, dead, func(err error) { done <- err })
	if err := <-done; err == nil {
		t.Fatal("attach to a stream that refuses everything succeeded")
	}
	if !a.S.Ended() {
		t.Fatal("the session stayed bound to the dead stream")
	}
	b.C.Wait(t, "type='unavailable'", "from='alice@example.org/phone'")
	waitFor(t, func() bool {
		n := 0
		e.Store.Offline().List("alice@example.org", func(store.OfflineMessage) bool { n++; return true })
		return n == 1
	})
}

// TestIQToSessionThatRefuses: an IQ request to a full JID whose session takes nothing
// (detached, its queue full) is answered service-unavailable, not lost.
func TestIQToSessionThatRefuses(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) { o.DetachedLimits.Stanzas = 1 })
	b := e.Bind("bob", "pc")
	a := e.Bind("alice", "phone")
	e.R.Detach(a.S, time.Hour)
	b.Send("<message to='alice@example.org/phone' id='m1' type='chat'><body>fills the queue</body></message>")
	b.Send("<iq type='get' id='q1' to='alice@example.org/phone'><ping xmlns='urn:xmpp:ping'/></iq>")
	b.C.Wait(t, "id='q1'", "type='error'", "service-unavailable")
}

// TestMessageWithoutToUndeliverable: a message without 'to' is the account's own (RFC
// 6120 §10.3.1); when the resource that takes it cannot deliver it, it follows RFC 6121
// to offline storage like any other, instead of bouncing for want of an address.
func TestMessageWithoutToUndeliverable(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) { o.DetachedLimits.Stanzas = 1 })
	a := e.Bind("alice", "pc")
	phone := e.Bind("bob", "phone")
	phone.Send("<presence/>")
	desk := e.Bind("bob", "desk") // no presence: no candidate for its own account's messages
	e.R.Detach(phone.S, time.Hour)
	a.Send("<message to='bob@example.org/phone' id='m1' type='chat'><body>fills the queue</body></message>")
	desk.Send("<message id='note' type='chat'><body>a note to self</body></message>")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n, _ := e.Store.Offline().Count("bob@example.org"); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the note was not stored; desk got: %s", desk.C.All())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if strings.Contains(desk.C.All(), "type='error'") {
		t.Fatalf("the note bounced: %s", desk.C.All())
	}
}

// TestBareMessageTwoDetached: a message to the bare JID that only detached sessions took
// is handed on once when they all expire: not again to the one still detached that holds
// its own copy, and not lost when the one that answered for it expires first.
func TestBareMessageTwoDetached(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	phone := e.Bind("bob", "phone")
	tablet := e.Bind("bob", "tablet")
	phone.Send("<presence/>")
	tablet.Send("<presence/>")
	e.R.Detach(phone.S, 50*time.Millisecond)
	e.R.Detach(tablet.S, time.Hour)
	a.Send("<message to='bob@example.org' id='m1' type='chat'><body>to both</body></message>")
	a.Send("<iq type='get' id='sync' to='bob@example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	a.C.Wait(t, "id='sync'")
	waitFor(t, func() bool { return phone.S.Ended() })
	c := &routertest.Conn{}
	done := make(chan error, 1)
	e.R.Attach(tablet.S, c, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Wait(t, "id='m1'")
	time.Sleep(50 * time.Millisecond)
	if n := strings.Count(c.All(), "id='m1'"); n != 1 {
		t.Fatalf("the tablet got the message %d times:\n%s", n, c.All())
	}
	if n, _ := e.Store.Offline().Count("bob@example.org"); n != 0 {
		t.Fatalf("%d offline copies beside the tablet's", n)
	}
}
