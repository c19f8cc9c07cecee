package link

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// MaxQueued bounds what one side may queue for its peer. Past it a Data frame is refused
// (Send reports false and its sender ends that one channel): a burst to many clients of
// one edge (a large room's fan-out) costs the channels it would overflow, not every
// client the link carries. Control frames, a few bytes per channel, always go.
const MaxQueued = 64 << 20

// stuckAfter is how long a write to the peer may make no progress before the link is
// taken for stuck and closed, and its channels with it (their clients reconnect and
// resume elsewhere). A variable for tests.
var stuckAfter = 30 * time.Second

// writeChunk is what one write, with its own deadline, hands the socket: progress is
// measured per chunk, so a large queue on a slow but moving link is not taken for stuck.
const writeChunk = 256 << 10

// PingEvery is how often an idle link is probed; a link that answers nothing for
// 3*PingEvery is closed.
const PingEvery = 10 * time.Second

// ErrStuck closes a link whose peer stopped reading.
var ErrStuck = errors.New("link: peer does not read")

// Conn is an authenticated link: a writer that batches frames from many goroutines into
// few system calls, and a reader loop. Safe for concurrent use.
type Conn struct {
	nc   net.Conn
	mu   sync.Mutex
	buf  []byte // frames waiting for the writer
	wake chan struct{}
	done chan struct{}
	err  error
	once sync.Once

	lastRx time.Time // read by the pinger only under mu
	stuck  time.Duration
}

// NewConn wraps an authenticated connection and starts its writer.
func NewConn(nc net.Conn) *Conn {
	c := &Conn{nc: nc, wake: make(chan struct{}, 1), done: make(chan struct{}), lastRx: time.Now(), stuck: stuckAfter}
	go c.writer()
	go c.pinger()
	return c
}

// Send queues one frame (p at most MaxPayload bytes; Data of any length is split). It
// reports false when the link is closed, or for a Data frame that would take the queue
// past MaxQueued: the sender must then end that channel, whose stream lost bytes.
func (c *Conn) Send(t byte, ch uint32, p []byte) bool {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return false
	}
	if t == Data {
		if len(c.buf)+len(p) > MaxQueued {
			c.mu.Unlock()
			return false
		}
		c.buf = AppendData(c.buf, ch, p)
	} else {
		c.buf = Append(c.buf, t, ch, p)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// Queued is how many bytes wait for the writer.
func (c *Conn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf)
}

func (c *Conn) writer() {
	var spare []byte
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		// Two buffers take turns: Send appends to one while the other is written.
		c.mu.Lock()
		b := c.buf
		c.buf = spare[:0]
		c.mu.Unlock()
		if len(b) == 0 {
			spare = b
			continue
		}
		if err := c.write(b); err != nil {
			c.Close(err)
			return
		}
		if cap(b) > 1<<20 {
			b = nil // a burst's buffer is not kept for an idle link
		}
		spare = b
	}
}

// write writes b in chunks, each of which must go within stuckAfter.
func (c *Conn) write(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), writeChunk)
		c.nc.SetWriteDeadline(time.Now().Add(c.stuck))
		if _, err := c.nc.Write(b[:n]); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return ErrStuck
			}
			return err
		}
		b = b[n:]
	}
	return nil
}

func (c *Conn) pinger() {
	t := time.NewTicker(PingEvery)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			c.mu.Lock()
			silent := now.Sub(c.lastRx)
			c.mu.Unlock()
			if silent > 3*PingEvery {
				c.Close(errors.New("link: peer silent"))
				return
			}
			c.Send(Ping, 0, nil)
		}
	}
}

// Close ends the link with err (nil: a local close). Idempotent.
func (c *Conn) Close(err error) {
	c.once.Do(func() {
		if err == nil {
			err = net.ErrClosed
		}
		c.mu.Lock()
		c.err = err
		c.buf = nil
		c.mu.Unlock()
		close(c.done)
		c.nc.Close()
	})
}

// Err is why the link closed, nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the link is.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Read calls f for every frame until the link fails or closes, answering Pings itself,
// and returns why it stopped. f runs on the reading goroutine; its frame's payload is
// valid only during the call.
func (c *Conn) Read(f func(Frame) error) error {
	buf := make([]byte, 0, 128<<10)
	for {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
		n, err := c.nc.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			c.mu.Lock()
			c.lastRx = time.Now()
			c.mu.Unlock()
		}
		buf = buf[:len(buf)+n]
		off := 0
		for {
			fr, m, perr := Parse(buf[off:])
			if perr == ErrShort {
				break
			}
			if perr != nil {
				c.Close(perr)
				return perr
			}
			off += m
			switch fr.Type {
			case Ping:
				c.Send(Pong, 0, nil)
			case Pong:
			default:
				if ferr := f(fr); ferr != nil {
					c.Close(ferr)
					return ferr
				}
			}
		}
		buf = buf[:copy(buf, buf[off:])]
		if cap(buf) > 256<<10 && len(buf) < 128<<10 {
			buf = append(make([]byte, 0, 128<<10), buf...)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			c.Close(err)
			if e := c.Err(); e != nil {
				return e
			}
			return err
		}
	}
}
