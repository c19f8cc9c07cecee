package engine

import (
	"fmt"
	"testing"
	"time"
)

// TestBackoffBounded: the back-off table of unreachable domains does not grow without
// end. Once it has doubled since its last sweep, domains whose wait ended more than
// BackoffMax ago go; a table of recent failures past maxBackoff starts over.
func TestBackoffBounded(t *testing.T) {
	o := &s2sOut{}
	o.mu.backoff = map[string]*retryState{}
	const max = time.Hour
	old, recent := time.Now().Add(-2*max), time.Now().Add(time.Minute)
	add := func(n int, until time.Time, prefix string) {
		for i := range n {
			o.sweepBackoffLocked(max)
			o.mu.backoff[fmt.Sprintf("%s%d.example", prefix, i)] = &retryState{fails: 1, until: until}
		}
	}
	add(backoffSweepAt, old, "old")
	add(10, recent, "new")
	if n := len(o.mu.backoff); n != 10 {
		t.Fatalf("%d entries after the sweep, want the 10 recent ones", n)
	}
	// Recent failures only: kept until the table reaches maxBackoff, then it starts over.
	add(maxBackoff, recent, "flood")
	if n := len(o.mu.backoff); n >= maxBackoff {
		t.Fatalf("%d entries", n)
	}
}

// TestOutQueueBytes: what waits for one remote domain is bounded in bytes as well as in
// stanzas; one stanza always fits an empty queue, and taking stanzas out makes room.
func TestOutQueueBytes(t *testing.T) {
	p := &outPeer{o: &s2sOut{}, q: make(chan []byte, s2sQueueMax)}
	big := make([]byte, 256<<10)
	n := 0
	for p.enqueue(big) == enqueued {
		n++
	}
	if n != s2sQueueBytes/len(big) {
		t.Fatalf("%d stanzas of %d bytes queued, want %d", n, len(big), s2sQueueBytes/len(big))
	}
	p.dequeued(<-p.q)
	if p.enqueue(big) != enqueued {
		t.Fatal("no room after one was taken")
	}
	huge := &outPeer{o: &s2sOut{}, q: make(chan []byte, s2sQueueMax)}
	if huge.enqueue(make([]byte, s2sQueueBytes+1)) != enqueued {
		t.Fatal("a stanza over the bound refused by an empty queue")
	}
}

// TestOpensPerUser: one account's stanzas open at most s2sOpensPerUser new outbound
// streams per window; other accounts keep their own budget, and the window resets it.
func TestOpensPerUser(t *testing.T) {
	o := &s2sOut{}
	now := time.Now()
	for i := range s2sOpensPerUser {
		if !o.openAllowedLocked("walker@example.org", now) {
			t.Fatalf("open %d refused under the budget", i)
		}
	}
	if o.openAllowedLocked("walker@example.org", now) {
		t.Fatal("an open past the budget")
	}
	if !o.openAllowedLocked("other@example.org", now) {
		t.Fatal("another account shares the budget")
	}
	if !o.openAllowedLocked("walker@example.org", now.Add(s2sOpensWindow)) {
		t.Fatal("the budget did not come back with a new window")
	}
}
