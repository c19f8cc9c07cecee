package router

import (
	"sync/atomic"
)

// mpsc is an unbounded-by-structure, bounded-by-count multi-producer single-consumer queue
// after Dmitry Vyukov's intrusive MPSC node-based queue
// (1024cores.net, "Intrusive MPSC node-based queue"): a producer swaps itself in as the new
// head with one atomic exchange and then links the previous head to it; the single consumer
// walks from the tail. Producers never wait on each other or on the consumer. Between the
// exchange and the link a pop may see an unlinked node and report empty for a moment; the
// producer's signal wakes the consumer again, so nothing is lost.
//
// The queue is bounded by an atomic count so one flooding producer cannot grow memory
// without limit; a push over the bound fails and the caller sheds load.
type mpsc struct {
	head  atomic.Pointer[op] // producers swap here
	_     [56]byte           // keep the consumer's fields off the producers' cache line
	tail  *op                // consumer only
	stub  op
	count atomic.Int64 // ops queued with push: what max bounds
	// forced counts the ops queued with pushForce (forwards from other shards, unbinds):
	// bounded upstream (each sender's in-flight bytes), they must not use up the room of
	// this shard's own clients, whose stanzas would then be refused and their streams
	// closed for traffic they did not send.
	forced atomic.Int64
	max    int64
	// sleeping is set by the consumer before it parks on wake; a producer signals only
	// then, so the common path (a busy consumer) costs producers no channel operation.
	// Both sides use sequentially consistent atomics (store flag, then load queue; swap
	// queue, then load flag), so one of them always sees the other (Dekker).
	sleeping atomic.Bool
	wake     chan struct{} // 1-slot signal
}

func newMPSC(max int) *mpsc {
	q := &mpsc{max: int64(max), wake: make(chan struct{}, 1)}
	q.head.Store(&q.stub)
	q.tail = &q.stub
	return q
}

// push appends o; it fails when the queue holds max ops. Safe for concurrent producers.
func (q *mpsc) push(o *op) bool {
	if q.count.Add(1) > q.max {
		q.count.Add(-1)
		return false
	}
	q.pushNode(o)
	q.signal()
	return true
}

func (q *mpsc) signal() {
	if q.sleeping.Load() && q.sleeping.CompareAndSwap(true, false) {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// empty reports whether nothing is queued or being linked. Consumer only.
func (q *mpsc) empty() bool {
	return q.tail.next.Load() == nil && q.tail == q.head.Load()
}

// park blocks the consumer until a producer signals or quit closes; it returns false on quit.
func (q *mpsc) park(quit <-chan struct{}) bool {
	q.sleeping.Store(true)
	if !q.empty() {
		q.sleeping.Store(false)
		return true
	}
	select {
	case <-q.wake:
		return true
	case <-quit:
		q.sleeping.Store(false)
		return false
	}
}

// pushForce appends o even over the bound: for ops that must not be dropped (unbind,
// forwards between shards, whose loss would break ordering or leak sessions).
func (q *mpsc) pushForce(o *op) {
	o.forced = true
	q.forced.Add(1)
	q.pushNode(o)
	q.signal()
}

func (q *mpsc) pushNode(o *op) {
	o.next.Store(nil)
	prev := q.head.Swap(o)
	prev.next.Store(o)
}

// pop removes the oldest op or returns nil. Consumer only.
func (q *mpsc) pop() *op {
	tail := q.tail
	next := tail.next.Load()
	if tail == &q.stub {
		if next == nil {
			return nil
		}
		q.tail = next
		tail = next
		next = next.next.Load()
	}
	if next != nil {
		q.tail = next
		q.uncount(tail)
		return tail
	}
	if tail != q.head.Load() {
		return nil // a producer is between swap and link; its signal follows
	}
	q.pushNode(&q.stub)
	next = tail.next.Load()
	if next != nil {
		q.tail = next
		q.uncount(tail)
		return tail
	}
	return nil
}

func (q *mpsc) uncount(o *op) {
	if o.forced {
		o.forced = false
		q.forced.Add(-1)
	} else {
		q.count.Add(-1)
	}
}

func (q *mpsc) len() int { return int(q.count.Load() + q.forced.Load()) }
