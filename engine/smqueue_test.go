package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestSMQueue: stanzas come back in order, acknowledged ones go, an empty queue holds no
// buffer, and the compaction under a client that always lags keeps the order.
func TestSMQueue(t *testing.T) {
	stanza := func(i int) string { return fmt.Sprintf("<message id='%d'>%s</message>", i, strings.Repeat("x", i%300)) }
	for _, tc := range []struct {
		name       string
		push, drop int // rounds of push, then drop
		rounds     int
		wantLeft   int
	}{
		{"nothing", 0, 0, 1, 0},
		{"all acknowledged", 10, 10, 1, 0},
		{"some left", 10, 7, 1, 3},
		{"lagging client compacts", 50, 40, 40, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q smQueue
			next, oldest := 0, 0
			for r := 0; r < tc.rounds; r++ {
				for i := 0; i < tc.push; i++ {
					q.push([]byte(stanza(next)))
					next++
				}
				q.drop(uint32(tc.drop))
				oldest += tc.drop
			}
			if int(q.len()) != tc.wantLeft {
				t.Fatalf("%d left, want %d", q.len(), tc.wantLeft)
			}
			if q.len() == 0 && q.buf != nil {
				t.Fatal("an empty queue keeps its buffer")
			}
			if q.buf != nil && q.head() > 4096 && int(q.head()) > len(q.buf.B)/2 {
				t.Fatalf("not compacted: head %d of %d", q.head(), len(q.buf.B))
			}
			got := q.take()
			if len(got) != tc.wantLeft || q.buf != nil || q.len() != 0 {
				t.Fatalf("take: %d stanzas, queue %+v", len(got), q)
			}
			for i, b := range got {
				if want := stanza(oldest + i); string(b) != want {
					t.Fatalf("stanza %d: %q, want %q", i, b, want)
				}
			}
		})
	}
}

// BenchmarkSMSent: what stream management adds to every stanza sent (the copy kept until
// acknowledged), with the client acknowledging every 10 as the server asks: no allocation.
func BenchmarkSMSent(b *testing.B) {
	sm := &smState{}
	msg := []byte("<message from='alice@example.org/pc' to='bob@example.org/phone' type='chat' id='m1'><body>hello there</body></message>")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if ask, _ := sm.sentLocked(msg, 10); ask {
			sm.ack(sm.hOut)
		}
	}
}

// TestSMTableIDs: an id finds its session for the account it was made for and for no
// other; a changed character, a truncated id or one for a removed session find nothing.
func TestSMTableIDs(t *testing.T) {
	tab := newSMTable()
	a, b := &smState{}, &smState{}
	ka, kb := tab.add(a), tab.add(b)
	if ka == 0 || kb == 0 || ka == kb {
		t.Fatalf("keys %d, %d", ka, kb)
	}
	ida := tab.id(ka, "alice@example.org")
	if len(ida) != 26 || tab.id(ka, "alice@example.org") != ida {
		t.Fatalf("id %q is not 26 characters or not stable", ida)
	}
	if got, ok := tab.find(ida, "alice@example.org"); !ok || got != a {
		t.Fatalf("find(own id) = %p, %v; want %p", got, ok, a)
	}
	flip := []byte(ida)
	if flip[20] == 'a' {
		flip[20] = 'b'
	} else {
		flip[20] = 'a'
	}
	for _, tc := range []struct{ name, id, account string }{
		{"another account", ida, "mallory@example.org"},
		{"changed", string(flip), "alice@example.org"},
		{"truncated", ida[:25], "alice@example.org"},
		{"not base32", "!" + ida[1:], "alice@example.org"},
		{"other key's MAC", tab.id(kb, "alice@example.org")[:13] + ida[13:], "alice@example.org"},
	} {
		if got, ok := tab.find(tc.id, tc.account); ok {
			t.Errorf("%s: found %p", tc.name, got)
		}
	}
	tab.remove(ka)
	if _, ok := tab.find(ida, "alice@example.org"); ok {
		t.Fatal("a removed session is still found")
	}
	if got, ok := tab.find(tab.id(kb, "bob@example.org"), "bob@example.org"); !ok || got != b {
		t.Fatal("removing one session lost another")
	}
}

// TestSMTableSet: the table's open-addressing parts find every state added and none
// removed, through growth, shrinking and removals from the middle of probe runs; keys
// crowded into one part and onto a few home slots make long runs.
func TestSMTableSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  func(i int) uint64
	}{
		{"random keys", func(i int) uint64 { return rand.Uint64() | 1 }},
		// One part (top bits 0), four home slots: every removal shifts a long run.
		{"crowded", func(i int) uint64 { return uint64(i)<<20 | uint64(i%4+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p smPart
			want := map[uint64]*smState{}
			for round := 0; round < 4; round++ {
				for i := 0; i < 3000; i++ {
					k := tc.key(round*3000 + i)
					if want[k] != nil {
						continue
					}
					sm := &smState{key: k}
					p.insert(sm)
					want[k] = sm
				}
				n := 0
				for k := range want { // remove about two thirds, in map order
					if n++; n%3 != 0 {
						p.delete(k)
						delete(want, k)
					}
				}
				if p.n != len(want) {
					t.Fatalf("round %d: %d held, want %d", round, p.n, len(want))
				}
				for k, sm := range want {
					if got := p.get(k); got != sm {
						t.Fatalf("round %d: key %x lost", round, k)
					}
				}
			}
			for k := range want {
				p.delete(k)
			}
			if p.n != 0 || len(p.slots) > 16 {
				t.Fatalf("emptied: %d held in %d slots", p.n, len(p.slots))
			}
			if p.get(tc.key(1)) != nil {
				t.Fatal("an emptied part still finds a key")
			}
		})
	}
}

// TestSMOneRequestOut: the server has one <r/> out at a time; an <a/> lets it ask again,
// and overdue says how long the one out has gone unanswered.
func TestSMOneRequestOut(t *testing.T) {
	now := sinceEpoch(time.Now())
	sm := &smState{askedAt: now}
	asks := 0
	for range 30 {
		if ask, ok := sm.sentLocked([]byte("<message/>"), 10); !ok {
			t.Fatal("refused")
		} else if ask {
			asks++
		}
	}
	if asks != 1 {
		t.Fatalf("%d requests for 30 stanzas while none was answered, want 1", asks)
	}
	if ask, waiting, unanswered := sm.overdue(now+5, 1); ask || !waiting || unanswered < 4 {
		t.Fatalf("overdue with a request out: ask %v waiting %v unanswered %d", ask, waiting, unanswered)
	}
	if !sm.ack(10) {
		t.Fatal("ack refused")
	}
	// Twenty still unacknowledged and the last request was long ago: ask now.
	if ask, waiting, unanswered := sm.overdue(now+6, 1); !ask || !waiting || unanswered != 0 {
		t.Fatalf("after an answer: ask %v waiting %v unanswered %d", ask, waiting, unanswered)
	}
	if ask, _, unanswered := sm.overdue(now+8, 1); ask || unanswered != 2 {
		t.Fatalf("second request: ask again %v, unanswered %d", ask, unanswered)
	}
	if !sm.ack(30) {
		t.Fatal("ack refused")
	}
	if ask, waiting, unanswered := sm.overdue(now+9, 1); ask || waiting || unanswered != 0 {
		t.Fatalf("all acknowledged: ask %v waiting %v unanswered %d", ask, waiting, unanswered)
	}
	sm.unacked.reset()
}

// TestSMTableExpire: a detached session's entry goes at its second, unless it was resumed
// or detached again since; entries go late behind a later one, never early; the queue
// gives its array back.
func TestSMTableExpire(t *testing.T) {
	tb := newSMTable()
	var sms []*smState
	for i := 0; i < 3000; i++ {
		sm := &smState{}
		sm.key = tb.add(sm)
		sms = append(sms, sm)
	}
	has := func(sm *smState) bool {
		p := tb.part(sm.key)
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.get(sm.key) == sm
	}
	const t0 = 1000
	for i, sm := range sms {
		tb.expireAt(sm, sm.gen, t0+uint32(i/1000)) // 1,000 due at each of t0, t0+1, t0+2
	}
	sms[0].owner = &conn{} // resumed
	sms[1].gen++           // detached again: a later entry decides
	tb.expire(t0 - 1)
	if !has(sms[2]) {
		t.Fatal("removed before its time")
	}
	tb.expire(t0)
	if !has(sms[0]) || !has(sms[1]) || has(sms[2]) || has(sms[999]) || !has(sms[1000]) {
		t.Fatal("at t0: resumed or re-detached entries removed, or due ones kept, or later ones removed")
	}
	// An entry due later holds back one due earlier behind it.
	late, early := &smState{}, &smState{}
	late.key, early.key = tb.add(late), tb.add(early)
	tb.expireAt(late, 0, t0+10)
	tb.expireAt(early, 0, t0+3)
	tb.expire(t0 + 5)
	if has(sms[2999]) || !has(early) {
		t.Fatal("at t0+5: due entries kept, or an entry removed from behind a later one")
	}
	tb.expire(t0 + 10)
	if has(late) || has(early) {
		t.Fatal("at t0+10: entries kept")
	}
	if len(tb.expiring) != 0 || cap(tb.expiring) > 1024 || tb.expHead != 0 {
		t.Fatalf("emptied queue: len %d cap %d head %d", len(tb.expiring), cap(tb.expiring), tb.expHead)
	}
}
