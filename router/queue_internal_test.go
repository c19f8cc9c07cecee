package router

import "testing"

// TestQueueForcedApart: ops forced into a shard's queue (forwards from other shards)
// do not use up the room its own submissions have: past max forced ops, a push still
// goes in; the bound holds for pushes; len counts both, and pops give each back.
func TestQueueForcedApart(t *testing.T) {
	q := newMPSC(4)
	forced := make([]op, 10)
	for i := range forced {
		q.pushForce(&forced[i])
	}
	own := make([]op, 5)
	for i := range 4 {
		if !q.push(&own[i]) {
			t.Fatalf("push %d refused with %d forced ops queued", i, len(forced))
		}
	}
	if q.push(&own[4]) {
		t.Fatal("a push past the bound went in")
	}
	if q.len() != 14 {
		t.Fatalf("len %d, want 14", q.len())
	}
	n := 0
	for q.pop() != nil {
		n++
	}
	if n != 14 || q.len() != 0 || q.count.Load() != 0 || q.forced.Load() != 0 {
		t.Fatalf("popped %d; len %d, count %d, forced %d", n, q.len(), q.count.Load(), q.forced.Load())
	}
	if !q.push(&own[4]) {
		t.Fatal("a push refused on an empty queue")
	}
}
