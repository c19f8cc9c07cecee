package engine

import (
	"sync"
	"time"
)

// The coalescer delays the flush of a connection in a burst, written to twice within a
// tick (connBits.coalesces), so a member of a busy room gets the stanzas of one tick in
// one write(2) rather than one each. On loopback a write costs the server about 3 µs and
// the reader as much again whatever its size up to a few KiB, so at 1,000 occupants the
// system calls were most of a delivery's cost. What a client waits for is never delayed:
// the first two stanzas after a quiet tick go at once, and an IQ (a request's answer, a
// ping) flushes whatever waits with it (conn.urgent). The delay is bounded by the tick, which is
// the config's c2s.coalesce_writes (10 ms by default; 0 turns it off).
type coalescer struct {
	mu    sync.Mutex
	due   []*conn // connections whose outbox waits for the tick
	spare []*conn
	armed bool
}

// add queues c's outbox for the next tick, every from now if none is due. Called once per
// outbox, by whoever made it.
func (co *coalescer) add(c *conn, every time.Duration) {
	co.mu.Lock()
	co.due = append(co.due, c)
	if !co.armed {
		co.armed = true
		time.AfterFunc(every, co.tick)
	}
	co.mu.Unlock()
}

// tick flushes every outbox that waited for it.
func (co *coalescer) tick() {
	co.mu.Lock()
	due := co.due
	co.due, co.spare = co.spare[:0], nil
	co.armed = false
	co.mu.Unlock()
	for i, c := range due {
		c.urgent()
		due[i] = nil
	}
	co.mu.Lock()
	if co.spare == nil && cap(due) <= 1<<16 {
		co.spare = due[:0]
	}
	co.mu.Unlock()
}

// msSinceEpoch is the coalescer's clock: milliseconds since the process started, modulo
// 2^16 (only differences below a tick, which is at most maxCoalesce, are used).
func msSinceEpoch() uint16 { return uint16(time.Since(epoch) / time.Millisecond) }

// coalesceMax is the outbox size at which a waiting connection is flushed at once.
const coalesceMax = 32 << 10

// maxCoalesce bounds the tick, so that it stays well inside the clock's 65 s wrap.
const maxCoalesce = 10 * time.Second
