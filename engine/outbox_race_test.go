package engine

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// loopConn is a gnet.Conn served by a goroutine that plays the event loop: wakes run on
// it in order, and Write, which gnet allows on the loop only, counts what reached the
// socket. Methods the outbox does not use are left to the nil embedded interface.
type loopConn struct {
	gnet.Conn
	ctx     any
	tasks   chan func()
	written atomic.Int64
}

func (l *loopConn) Context() any          { return l.ctx }
func (l *loopConn) OutboundBuffered() int { return 0 }
func (l *loopConn) Close() error          { return nil }
func (l *loopConn) Write(b []byte) (int, error) {
	l.written.Add(int64(len(b)))
	return len(b), nil
}
func (l *loopConn) Wake(cb gnet.AsyncCallback) error {
	l.tasks <- func() { cb(l, nil) }
	return nil
}

// TestOutboxJoinLoopLeaving: the interleaving that lost bytes, made to happen. The outbox
// waits for the coalescer's tick while the loop runs the connection's code; a writer on
// another goroutine appends to it and, as it joins the loop's flush, the loop leaves
// (having seen the wait, it leaves the bytes to the tick). Every byte must reach the
// socket all the same.
func TestOutboxJoinLoopLeaving(t *testing.T) {
	srv := &Server{}
	srv.cfg.Store(&Config{CoalesceWrites: time.Millisecond, MaxOutbound: 1 << 30})
	l := &listener{srv: srv, kind: &c2s{}}
	lc := &loopConn{tasks: make(chan func(), 16)}
	c := &conn{l: l, gc: lc}
	lc.ctx = c
	c.state.Store(stEstablished)

	// Bytes of a burst wait for the tick; then the loop starts on the connection.
	waiting := []byte("<message>waiting</message>")
	c.out = writePool.Get()
	c.out.B = append(c.out.B[:0], waiting...)
	c.closing.v.Or(bOutLater)
	srv.coalesce.add(c, time.Millisecond)
	c.enterLoop()

	left := false
	hook := func() {
		if !left {
			left = true
			c.exitLoop()
		}
	}
	testHookJoinLoop.Store(&hook)
	defer testHookJoinLoop.Store(nil)
	joined := []byte("<message>joined</message>")
	c.asyncWrite(joined)
	if !left {
		t.Fatal("the writer never joined the loop's flush: the test no longer tests the race")
	}

	want := int64(len(waiting) + len(joined))
	deadline := time.After(5 * time.Second)
	for lc.written.Load() != want {
		select {
		case f := <-lc.tasks: // the tick's flush, run on the loop
			f()
		case <-deadline:
			t.Fatalf("%d of %d bytes reached the socket; %d stuck in the outbox (bits %#x)",
				lc.written.Load(), want, c.outboxLen(), c.closing.v.Load()&0xff)
		}
	}
}

// TestOutboxNoLostFlush: bytes written to a connection always leave its outbox, however
// a writer on another goroutine (a shard delivering a room's fan-out) interleaves with
// the event loop running the connection's own code. A writer that found the outbox
// waiting for the coalescer's tick while the loop ran joined the loop's flush and
// cleared the wait; if the loop had just left, having seen the wait and left the bytes
// to the tick, nobody flushed them again. Every later byte then joined them, and the
// connection went silent for good, pings and its own close included (the soak's lost
// room echo).
func TestOutboxNoLostFlush(t *testing.T) {
	srv := &Server{}
	srv.cfg.Store(&Config{CoalesceWrites: time.Millisecond, MaxOutbound: 1 << 30})
	l := &listener{srv: srv, kind: &c2s{}}
	for round := range 200 {
		lc := &loopConn{tasks: make(chan func(), 1<<16)}
		c := &conn{l: l, gc: lc}
		lc.ctx = c
		c.state.Store(stEstablished)
		stop := make(chan struct{})
		loopDone := make(chan struct{})
		var sent atomic.Int64
		var busy atomic.Bool // the connection's own code runs until the writers are done
		busy.Store(true)
		go func() { // the loop: wakes, and the connection's own code now and then
			defer close(loopDone)
			for {
				select {
				case f := <-lc.tasks:
					f()
				case <-stop:
					for {
						select {
						case f := <-lc.tasks:
							f()
						default:
							return
						}
					}
				default:
					if !busy.Load() {
						select {
						case f := <-lc.tasks:
							f()
						case <-stop:
						}
						continue
					}
					c.enterLoop()
					if round%2 == 0 {
						b := []byte("<r/>")
						sent.Add(int64(len(b)))
						c.asyncWrite(b)
					}
					c.exitLoop()
				}
			}
		}()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				b := []byte("<message>fan-out</message>")
				for range 2000 {
					sent.Add(int64(len(b)))
					c.asyncWrite(b)
				}
			})
		}
		wg.Wait()
		busy.Store(false)
		// Quiet now: the coalescer's tick and the loop have everything they need to
		// flush what is left.
		deadline := time.Now().Add(5 * time.Second)
		for lc.written.Load() != sent.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		close(stop)
		<-loopDone
		if w, s := lc.written.Load(), sent.Load(); w != s {
			t.Fatalf("round %d: %d of %d bytes reached the socket; %d stuck in the outbox (bits %#x)",
				round, w, s, c.outboxLen(), c.closing.v.Load()&0xff)
		}
	}
}
