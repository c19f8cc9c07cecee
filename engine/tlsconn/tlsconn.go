// Package tlsconn runs the standard crypto/tls on bytes that an event loop delivers, so a
// TLS connection needs no goroutine while it is idle.
//
// The handshake cannot be resumed after a "no data yet" return, so it runs in a short-lived
// goroutine whose transport Read blocks until Feed hands it more bytes. After the handshake
// the goroutine ends, and Read decrypts on the caller's goroutine (the event loop): the
// transport's Read then returns a net.Error whose Temporary() is true when it has no bytes.
// crypto/tls treats such an error as "no data yet": it keeps a partial record in its raw
// input buffer and does not poison the connection (Go 1.26 crypto/tls/conn.go,
// readRecordOrCCS). Read maps that error to (0, nil).
//
// It owns the transport adaptor and its buffer of fed ciphertext, which is nil whenever
// everything fed has been consumed. It must not touch sockets: ciphertext leaves through the
// write function the engine passes in.
package tlsconn

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Read and Write after Close.
var ErrClosed = errors.New("tlsconn: closed")

// errNoData is what the transport returns to crypto/tls when the loop has no bytes for it.
type noData struct{}

func (noData) Error() string   { return "tlsconn: no data yet" }
func (noData) Timeout() bool   { return false }
func (noData) Temporary() bool { return true }

var errNoData net.Error = noData{}

// Conn is one server-side TLS connection fed from an event loop.
type Conn struct {
	tc   *tls.Conn
	tr   transport
	done func(error)
	hs   atomic.Bool // handshake finished successfully
	bad  atomic.Bool // handshake failed
}

// transport is the net.Conn that crypto/tls reads from and writes to.
type transport struct {
	mu          sync.Mutex
	cond        sync.Cond
	in          []byte // fed, not yet consumed ciphertext; nil when drained
	handshaking bool
	closed      bool
	write       func([]byte) error
}

// HandshakeTimeout bounds a handshake that a client starts and never finishes.
const HandshakeTimeout = 30 * time.Second

// Server wraps a new server-side TLS connection and starts its handshake goroutine. write
// gets ciphertext and must take ownership (copy) before returning; done is called once when
// the handshake ends, from the handshake goroutine.
func Server(cfg *tls.Config, write func(b []byte) error, done func(err error)) *Conn {
	c := &Conn{done: done}
	c.tr.cond.L = &c.tr.mu
	c.tr.write = write
	c.tr.handshaking = true
	c.tc = tls.Server(&c.tr, cfg)
	go c.handshake()
	return c
}

func (c *Conn) handshake() {
	ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
	stop := context.AfterFunc(ctx, func() {
		c.tr.mu.Lock()
		c.tr.closed = true
		c.tr.cond.Broadcast()
		c.tr.mu.Unlock()
	})
	err := c.tc.HandshakeContext(ctx)
	stop()
	cancel()
	c.tr.mu.Lock()
	c.tr.handshaking = false
	c.tr.mu.Unlock()
	if err == nil {
		c.hs.Store(true)
	} else {
		c.bad.Store(true)
	}
	c.done(err)
}

// Feed hands ciphertext read by the loop to the connection. It copies p.
func (c *Conn) Feed(p []byte) {
	if len(p) == 0 {
		return
	}
	c.tr.mu.Lock()
	if !c.tr.closed {
		c.tr.in = append(c.tr.in, p...)
		if c.tr.handshaking {
			c.tr.cond.Signal()
		}
	}
	c.tr.mu.Unlock()
}

// Read decrypts into p what the fed bytes allow. It returns (0, nil) when it needs more
// ciphertext, and io.EOF after the peer's close_notify. Call it from the loop only, after
// the handshake succeeded.
func (c *Conn) Read(p []byte) (int, error) {
	if !c.hs.Load() {
		return 0, nil
	}
	n, err := c.tc.Read(p)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Temporary() && !ne.Timeout() {
			return n, nil
		}
	}
	return n, err
}

// Write encrypts p into records and passes them to the write function. Safe for
// concurrent use; crypto/tls serializes writers.
func (c *Conn) Write(p []byte) (int, error) {
	if !c.hs.Load() {
		return 0, errors.New("tlsconn: write before handshake")
	}
	return c.tc.Write(p)
}

// HandshakeComplete reports whether the handshake succeeded.
func (c *Conn) HandshakeComplete() bool { return c.hs.Load() }

// HandshakeFailed reports whether the handshake ended with an error.
func (c *Conn) HandshakeFailed() bool { return c.bad.Load() }

// ConnectionState returns the TLS state (for channel binding and logging).
func (c *Conn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// Buffered returns how many fed ciphertext bytes are not consumed yet.
func (c *Conn) Buffered() int {
	c.tr.mu.Lock()
	defer c.tr.mu.Unlock()
	return len(c.tr.in)
}

// Close sends close_notify when the handshake is done and stops a running handshake.
func (c *Conn) Close() error {
	var err error
	if c.hs.Load() {
		err = c.tc.CloseWrite()
	}
	c.tr.mu.Lock()
	c.tr.closed = true
	c.tr.in = nil
	c.tr.cond.Broadcast()
	c.tr.mu.Unlock()
	return err
}

// Release drops the transport buffer when it is drained, so an idle connection keeps no
// ciphertext buffer of its own.
func (c *Conn) Release() {
	c.tr.mu.Lock()
	if len(c.tr.in) == 0 {
		c.tr.in = nil
	}
	c.tr.mu.Unlock()
}

func (t *transport) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.in) == 0 {
		if t.closed {
			return 0, io.EOF
		}
		if !t.handshaking {
			return 0, errNoData
		}
		t.cond.Wait()
	}
	n := copy(p, t.in)
	if n == len(t.in) {
		t.in = t.in[:0]
	} else {
		// Keep the tail at the front so the buffer does not creep forward.
		m := copy(t.in, t.in[n:])
		t.in = t.in[:m]
	}
	return n, nil
}

func (t *transport) Write(p []byte) (int, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	if err := t.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (t *transport) Close() error                     { return nil }
func (t *transport) LocalAddr() net.Addr              { return addr{} }
func (t *transport) RemoteAddr() net.Addr             { return addr{} }
func (t *transport) SetDeadline(time.Time) error      { return nil }
func (t *transport) SetReadDeadline(time.Time) error  { return nil }
func (t *transport) SetWriteDeadline(time.Time) error { return nil }

type addr struct{}

func (addr) Network() string { return "tcp" }
func (addr) String() string  { return "loop" }
