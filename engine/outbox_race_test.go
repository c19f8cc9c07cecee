package engine

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// loopConn is a gnet.Conn served by a goroutine that plays the event loop: wakes run on
// it in order. Write, which gnet allows on the loop only, writes to one end of a socket
// pair with a small send buffer, retrying what did not fit as gnet would; a reader that
// pauses now and then drains the other end into got and counts it in written. Methods the outbox does
// not use are left to the nil embedded interface.
type loopConn struct {
	gnet.Conn
	ctx     any
	tasks   chan func()
	fd      int
	written atomic.Int64
	mu      sync.Mutex
	got     []byte
}

func newLoopConn(t testing.TB, tasks int) *loopConn {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 2048)
	lc := &loopConn{tasks: make(chan func(), tasks), fd: fds[0]}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for i := 1; ; i++ {
			if i%8 == 0 {
				time.Sleep(200 * time.Microsecond) // a slow reader now and then: writes fall short
			}
			n, err := unix.Read(fds[1], buf)
			if n <= 0 || err != nil {
				return
			}
			lc.mu.Lock()
			lc.got = append(lc.got, buf[:n]...)
			lc.mu.Unlock()
			lc.written.Add(int64(n))
		}
	}()
	t.Cleanup(func() {
		unix.Close(fds[0])
		<-done
		unix.Close(fds[1])
	})
	return lc
}

func (l *loopConn) Context() any          { return l.ctx }
func (l *loopConn) OutboundBuffered() int { return 0 }
func (l *loopConn) Close() error          { return nil }
func (l *loopConn) Write(b []byte) (int, error) {
	for n := 0; n < len(b); {
		m, err := unix.Write(l.fd, b[n:])
		if m > 0 {
			n += m
		}
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			return n, err
		}
		if m <= 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	return len(b), nil
}

// drain runs the wakes still queued, as a loop does before it stops.
func (l *loopConn) drain() {
	for {
		select {
		case f := <-l.tasks:
			f()
		default:
			return
		}
	}
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
	lc := newLoopConn(t, 16)
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
		case <-time.After(time.Millisecond): // the socket's reader counts asynchronously
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
		lc := newLoopConn(t, 1<<16)
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
					lc.drain()
					return
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

// TestOutboxOrder: writers on other goroutines write to a connection while the loop
// flushes the outbox and runs the connection's own code, with and without the coalescer,
// and the socket's reader falls behind now and then. Every writer's records must arrive
// whole, each once, in the order it wrote them.
func TestOutboxOrder(t *testing.T) {
	for _, coalesce := range []time.Duration{0, time.Millisecond} {
		t.Run(coalesce.String(), func(t *testing.T) {
			srv := &Server{}
			srv.cfg.Store(&Config{CoalesceWrites: coalesce, MaxOutbound: 1 << 30})
			l := &listener{srv: srv, kind: &c2s{}}
			lc := newLoopConn(t, 1<<16)
			c := &conn{l: l, gc: lc}
			lc.ctx = c
			c.state.Store(stEstablished)
			const per = 3000
			record := func(w byte, n int) []byte { return fmt.Appendf(nil, "<m w='%c' n='%06d'/>", w, n) }
			size := len(record('A', 0))

			stop := make(chan struct{})
			loopDone := make(chan struct{})
			loopWrote, spin := 0, 0
			go func() { // the loop: wakes, and now and then the connection's own code
				defer close(loopDone)
				for {
					select {
					case f := <-lc.tasks:
						f()
						continue
					case <-stop:
						lc.drain()
						return
					default:
					}
					if spin++; loopWrote < per && spin%8 == 0 {
						c.enterLoop()
						c.asyncWrite(record('L', loopWrote))
						loopWrote++
						c.exitLoop()
					} else {
						runtime.Gosched()
					}
				}
			}()
			var wg sync.WaitGroup
			for _, w := range []byte("ABC") {
				wg.Go(func() {
					for n := range per {
						c.asyncWrite(record(w, n))
						if n%8 == 0 {
							time.Sleep(20 * time.Microsecond) // let the outbox empty now and then
						}
					}
				})
			}
			wg.Wait()
			want := int64(4 * per * size)
			deadline := time.Now().Add(10 * time.Second)
			for lc.written.Load() != want && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			close(stop)
			<-loopDone
			lc.mu.Lock()
			got := slices.Clone(lc.got)
			lc.mu.Unlock()
			if int64(len(got)) != want {
				t.Fatalf("%d of %d bytes reached the socket; %d in the outbox (bits %#x)", len(got), want, c.outboxLen(), c.closing.v.Load()&0xffff)
			}
			next := map[byte]int{}
			for i := 0; i < len(got); i += size {
				r := got[i : i+size]
				var w byte
				var n int
				if _, err := fmt.Sscanf(string(r), "<m w='%c' n='%06d'/>", &w, &n); err != nil || !bytes.Equal(r, record(w, n)) {
					t.Fatalf("record at byte %d is torn: %q", i, r)
				}
				if n != next[w] {
					t.Fatalf("writer %c: record %d arrived where %d was due", w, n, next[w])
				}
				next[w]++
			}
		})
	}
}
