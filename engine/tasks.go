package engine

import (
	"sync"

	"github.com/panjf2000/gnet/v2"
)

// taskQueue runs a transport's callbacks one at a time, in the order they were queued, as
// a gnet loop runs a connection's: the transports that are not gnet connections (a BOSH
// session, an edge's channel) give their conn this in place of a loop. A goroutine runs
// while callbacks are waiting and ends when none is left, so an idle transport holds
// none. Safe for concurrent use; the zero value is ready.
type taskQueue struct {
	mu      sync.Mutex
	q       []gnet.AsyncCallback
	running bool
	dead    bool // last was called: add fails, as Wake on a closed socket does
	// hold, when set, is held while callbacks run (a BOSH session's lock, which its HTTP
	// requests take too).
	hold sync.Locker
}

// add queues cb; false once last has been called.
func (t *taskQueue) add(cb gnet.AsyncCallback) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead {
		return false
	}
	t.enqueueLocked(cb)
	return true
}

// last queues cb as the final callback: nothing queued after it runs.
func (t *taskQueue) last(cb gnet.AsyncCallback) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dead = true
	t.enqueueLocked(cb)
}

func (t *taskQueue) enqueueLocked(cb gnet.AsyncCallback) {
	t.q = append(t.q, cb)
	if !t.running {
		t.running = true
		go t.run()
	}
}

func (t *taskQueue) run() {
	for {
		t.mu.Lock()
		q := t.q
		t.q = nil
		if len(q) == 0 {
			t.running = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		if t.hold != nil {
			t.hold.Lock()
		}
		for _, cb := range q {
			if cb != nil {
				cb(nil, nil)
			}
		}
		if t.hold != nil {
			t.hold.Unlock()
		}
	}
}
