package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/vireo-im/vireo/engine/link"
)

// Outbound federation through the edges (Link.S2S): a core on a private network has no
// route to the internet, so its edges open its outbound server-to-server connections.
// The core asks an edge to connect (link.Connect) and gets a net.Conn over the channel
// (linkConn); the s2s code runs TLS, dialback and the stream over it exactly as over a
// socket of its own. The edge only relays bytes: the TLS session runs from the core to the
// peer, so an edge never holds the keys of a federation stream.

// Limits of the relay.
const (
	// maxEdgeOuts bounds the connections an edge holds for its core: outbound federation
	// is one stream per remote domain, plus short dialback checks.
	maxEdgeOuts = 16384
	// edgeOutQueue bounds what waits for a peer's socket at the edge; a peer that reads
	// no more loses its connection rather than the edge its memory.
	edgeOutQueue = 8 << 20
	// linkConnInput bounds what the core holds from a peer its s2s reader has not taken.
	linkConnInput = 8 << 20
	// edgeOutWriteWait bounds one write to a peer's socket.
	edgeOutWriteWait = time.Minute
)

// --- the edge's side ---

// edgeOut is a connection an edge opened for the core.
type edgeOut struct {
	e  *edgeLink
	lc *link.Conn
	id uint32

	mu      sync.Mutex
	nc      net.Conn // nil until connected
	buf     []byte   // from the core, waiting for the socket
	closing bool     // the core sent Close: close once buf is written
	dead    bool     // closed, or the link is gone
	wake    chan struct{}
}

// connect opens a connection for the core (a Connect frame, on the link's reader).
func (e *edgeLink) connect(lc *link.Conn, id uint32, info link.ConnectInfo) error {
	o := &edgeOut{e: e, lc: lc, id: id, wake: make(chan struct{}, 1)}
	e.mu.Lock()
	if e.outs[id] != nil {
		e.mu.Unlock()
		return fmt.Errorf("link: channel %d connected twice", id)
	}
	full := len(e.outs) >= maxEdgeOuts
	if !full {
		e.outs[id] = o
	}
	e.mu.Unlock()
	if full {
		lc.Send(link.Connected, id, link.AppendConnected(nil, "", errors.New("too many connections open for the core")))
		return nil
	}
	go o.run(info)
	return nil
}

func (o *edgeOut) run(info link.ConnectInfo) {
	ctx, cancel := context.WithTimeout(context.Background(), info.Timeout)
	go func() {
		select {
		case <-o.lc.Done():
		case <-o.e.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	d := net.Dialer{KeepAliveConfig: peerKeepAlive(o.e.srv.config())}
	nc, err := d.DialContext(ctx, "tcp", info.Addr)
	cancel()
	if err == nil {
		o.mu.Lock()
		if o.dead {
			err = net.ErrClosed
		} else {
			o.nc = nc
		}
		o.mu.Unlock()
		if err != nil {
			nc.Close()
		}
	}
	if err != nil {
		o.e.forgetOut(o.id)
		o.lc.Send(link.Connected, o.id, link.AppendConnected(nil, "", err))
		return
	}
	o.lc.Send(link.Connected, o.id, link.AppendConnected(nil, nc.RemoteAddr().String(), nil))
	done := make(chan bool, 1)
	go o.writer(done)
	buf := make([]byte, 16<<10)
	for {
		n, err := nc.Read(buf)
		if n > 0 && !o.lc.Send(link.Data, o.id, buf[:n]) {
			break
		}
		if err != nil {
			break
		}
	}
	o.shut()
	flushed := <-done
	o.e.forgetOut(o.id)
	o.lc.Send(link.Closed, o.id, []byte{b2u(flushed)})
}

// writer writes what the core sends, and closes the socket after Close; it reports
// whether everything went out.
func (o *edgeOut) writer(done chan<- bool) {
	for {
		o.mu.Lock()
		b, closing, dead := o.buf, o.closing, o.dead
		o.buf = nil
		o.mu.Unlock()
		if dead {
			done <- len(b) == 0
			return
		}
		if len(b) > 0 {
			o.nc.SetWriteDeadline(time.Now().Add(edgeOutWriteWait))
			if _, err := o.nc.Write(b); err != nil {
				o.shut()
				done <- false
				return
			}
			continue // more may have come meanwhile
		}
		if closing {
			o.shut()
			done <- true
			return
		}
		<-o.wake
	}
}

// shut closes the socket, once; the reader and the writer then end.
func (o *edgeOut) shut() {
	o.mu.Lock()
	nc := o.nc
	first := !o.dead
	o.dead = true
	o.mu.Unlock()
	if first && nc != nil {
		nc.Close()
	}
	o.poke()
}

func (o *edgeOut) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// frame takes a frame of the core's for o (on the link's reader).
func (o *edgeOut) frame(f link.Frame) {
	o.mu.Lock()
	if o.dead {
		o.mu.Unlock()
		return
	}
	over := false
	switch f.Type {
	case link.Data:
		o.buf = append(o.buf, f.Payload...)
		over = len(o.buf) > edgeOutQueue
	case link.Close:
		o.closing = true
		if o.nc == nil {
			o.dead = true // not connected yet: run closes the socket it gets
		}
	}
	o.mu.Unlock()
	if over {
		o.shut()
	}
	o.poke()
}

func (e *edgeLink) forgetOut(id uint32) {
	e.mu.Lock()
	delete(e.outs, id)
	e.mu.Unlock()
}

// outFrame routes a frame on a channel the core opened.
func (e *edgeLink) outFrame(lc *link.Conn, f link.Frame) error {
	switch f.Type {
	case link.Connect:
		info, err := link.ParseConnect(f.Payload)
		if err != nil {
			return err
		}
		return e.connect(lc, f.Chan, info)
	case link.Data, link.Close:
		e.mu.Lock()
		o := e.outs[f.Chan]
		e.mu.Unlock()
		if o != nil {
			o.frame(f)
		}
		return nil
	}
	return fmt.Errorf("link: frame type %d not expected on a core's channel", f.Type)
}

// downOuts closes the connections of a lost link.
func (e *edgeLink) downOuts(outs map[uint32]*edgeOut) {
	for _, o := range outs {
		o.shut()
	}
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// --- the core's side ---

// errNoEdge is the answer to a connection through the edges while none is linked.
var errNoEdge = errors.New("no edge is linked to connect through")

// errLinkLost ends the connections of a link that is gone.
var errLinkLost = errors.New("the edge's link was lost")

// connect opens a TCP connection to addr through one of the linked edges, the one with
// the fewest such connections, within ctx. While no edge is linked (one restarting) it
// waits for one, within ctx.
func (ls *linkServer) connect(ctx context.Context, addr string) (net.Conn, error) {
	var lk *coreLink
	for lk == nil {
		ls.mu.Lock()
		fewest := 0
		for l := range ls.links {
			if n := l.countOuts(); lk == nil || n < fewest {
				lk, fewest = l, n
			}
		}
		joined := ls.joined
		ls.mu.Unlock()
		if lk != nil {
			break
		}
		select {
		case <-joined:
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", addr, errNoEdge)
		}
	}
	c := lk.newOut()
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	if !lk.lc.Send(link.Connect, c.id, link.ConnectInfo{Timeout: timeout, Addr: addr}.Append(nil)) {
		c.fail(errLinkLost)
		return nil, fmt.Errorf("%s through edge %s: %w", addr, lk.name, errLinkLost)
	}
	select {
	case <-c.connected:
		if err := c.readErr(); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s through edge %s: %w", addr, lk.name, err)
		}
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
}

func (lk *coreLink) countOuts() int {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	return len(lk.outs)
}

// newOut numbers a connection of the core's on lk.
func (lk *coreLink) newOut() *linkConn {
	c := &linkConn{lk: lk, connected: make(chan struct{}), notify: make(chan struct{}, 1)}
	lk.mu.Lock()
	for {
		lk.nextOut = (lk.nextOut + 1) &^ link.CoreChan
		if id := lk.nextOut | link.CoreChan; lk.nextOut != 0 && lk.outs[id] == nil {
			c.id = id
			break
		}
	}
	lk.outs[c.id] = c
	lk.mu.Unlock()
	return c
}

// outFrame routes a frame from the edge on a channel the core opened.
func (lk *coreLink) outFrame(f link.Frame) error {
	lk.mu.Lock()
	c := lk.outs[f.Chan]
	if f.Type == link.Closed {
		delete(lk.outs, f.Chan)
	}
	lk.mu.Unlock()
	switch f.Type {
	case link.Connected:
		remote, err := link.ParseConnected(f.Payload)
		if c == nil {
			if err == nil {
				lk.lc.Send(link.Close, f.Chan, nil) // given up on meanwhile
			}
			return nil
		}
		if _, ok := err.(*link.ConnectError); !ok && err != nil {
			return err
		}
		c.up(remote, err)
	case link.Data:
		if c != nil {
			c.input(f.Payload)
		}
	case link.Closed:
		if c != nil {
			c.fail(io.EOF)
		}
	default:
		return fmt.Errorf("link: frame type %d not expected on a core's channel", f.Type)
	}
	return nil
}

// downOuts ends the connections of a lost link.
func (lk *coreLink) downOuts(outs map[uint32]*linkConn) {
	for _, c := range outs {
		c.fail(errLinkLost)
	}
}

// linkConn is a TCP connection an edge holds for the core, as a net.Conn. Writes never
// block (the link queues them); reads wait for the edge's Data, with deadlines.
type linkConn struct {
	lk        *coreLink
	id        uint32
	connected chan struct{} // closed by Connected, or by the failure that came first
	notify    chan struct{}

	settled sync.Once // closes connected

	mu       sync.Mutex
	remote   string
	in       []byte
	err      error // what Read returns once in is empty: io.EOF, or why it failed
	closed   bool
	deadline time.Time
}

func (c *linkConn) up(remote string, err error) {
	if err != nil {
		c.lk.forgetOut(c.id)
		c.fail(err)
		return
	}
	c.mu.Lock()
	c.remote = remote
	c.mu.Unlock()
	c.settled.Do(func() { close(c.connected) })
}

func (lk *coreLink) forgetOut(id uint32) {
	lk.mu.Lock()
	delete(lk.outs, id)
	lk.mu.Unlock()
}

// fail ends the connection with err (io.EOF: the edge closed it), after what was read.
func (c *linkConn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.settled.Do(func() { close(c.connected) })
	c.poke()
}

func (c *linkConn) readErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *linkConn) poke() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *linkConn) input(p []byte) {
	c.mu.Lock()
	over := false
	if c.err == nil && !c.closed {
		c.in = append(c.in, p...) // p aliases the link's read buffer
		over = len(c.in) > linkConnInput
	}
	c.mu.Unlock()
	if over {
		c.fail(errors.New("the peer sends more than the core reads"))
		c.Close()
		return
	}
	c.poke()
}

// Read implements net.Conn.
func (c *linkConn) Read(p []byte) (int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		if len(c.in) > 0 {
			n := copy(p, c.in)
			c.in = c.in[n:]
			if len(c.in) == 0 {
				c.in = nil
			}
			c.mu.Unlock()
			return n, nil
		}
		err, dl := c.err, c.deadline
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		var expired <-chan time.Time
		if !dl.IsZero() {
			wait := time.Until(dl)
			if wait <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		select {
		case <-c.notify:
		case <-expired:
		}
	}
}

// Write implements net.Conn: the bytes are queued on the link at once.
func (c *linkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	closed, err := c.closed, c.err
	c.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	if !c.lk.lc.Send(link.Data, c.id, p) {
		return 0, errLinkLost
	}
	return len(p), nil
}

// Close implements net.Conn: the edge closes the socket once what was written is out.
func (c *linkConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.in = nil
	c.mu.Unlock()
	c.lk.forgetOut(c.id)
	c.lk.lc.Send(link.Close, c.id, nil)
	c.fail(net.ErrClosed)
	return nil
}

// LocalAddr implements net.Conn: the edge that holds the socket.
func (c *linkConn) LocalAddr() net.Addr { return edgeAddr(c.lk.name) }

// RemoteAddr implements net.Conn: the peer's address as the edge reached it.
func (c *linkConn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return edgeAddr(c.remote)
}

// SetDeadline implements net.Conn; only reads wait, so it is the read deadline.
func (c *linkConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *linkConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	c.poke() // a waiting Read takes the new deadline
	return nil
}

// SetWriteDeadline implements net.Conn: writes do not wait.
func (c *linkConn) SetWriteDeadline(time.Time) error { return nil }

// edgeAddr names an end of a connection held by an edge.
type edgeAddr string

func (a edgeAddr) Network() string { return "edge" }
func (a edgeAddr) String() string  { return string(a) }

// viaEdge is the name of the edge that holds nc's socket, or "".
func viaEdge(nc net.Conn) string {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if c, ok := nc.(*linkConn); ok {
		return c.lk.name
	}
	return ""
}
