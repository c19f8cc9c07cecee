package engine

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/vireo-im/vireo/engine/link"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// The core's end of the split deployment (DESIGN.md, deployment 2): edge processes own
// the sockets and TLS of clients and carry their streams over authenticated links
// (engine/link); here each channel of a link is a conn like any other, with an edgeChan as
// its transport. Streams, SASL, sessions and everything after them run here, so an edge
// holds no credentials and no data.

// Link configures the core's link listener.
type Link struct {
	// Listen are the addresses edges connect to: a private network, never the internet.
	Listen []string
	// Secret is shared with every edge; both sides prove they know it.
	Secret []byte
	// TLS, when set, is what the link listener speaks (the server's certificate).
	TLS *tls.Config
	// S2S sends outbound federation through the edges: they open the TCP connections
	// (split_out.go), so this core needs no route to the internet.
	S2S bool
}

// linkServer accepts edges' links and serves their channels.
type linkServer struct {
	srv *Server
	lns []net.Listener
	// c2s and web are the listeners edge channels belong to: their kind, timeouts and
	// registry, as if the client had connected here.
	c2s, web, s2s *listener
	wg            sync.WaitGroup

	mu    sync.Mutex
	links map[*coreLink]struct{}
	// joined is closed, and replaced, when an edge links: outbound connections wait on it
	// while no edge is linked.
	joined chan struct{}
	// pending counts handshakes in progress: a link listener reachable by something that
	// is not an edge must not collect descriptors and goroutines without end.
	pending   atomic.Int32
	pendingBy map[string]int // of pending, by source address; under mu
	// refusedAt and refusedN rate-limit the log of refused handshakes.
	refusedAt atomic.Int64
	refusedN  atomic.Int64
}

// maxLinkHandshakes bounds handshakes in progress on the link listeners: edges connect
// once and stay, so more than a few at a time is someone else. maxLinkHandshakesPerAddr
// bounds them per source address, so that one host that holds connections open without
// a word cannot take every slot and keep the edges out.
const (
	maxLinkHandshakes        = 32
	maxLinkHandshakesPerAddr = 4
)

func newLinkServer(s *Server) *linkServer {
	return &linkServer{srv: s, links: map[*coreLink]struct{}{}, joined: make(chan struct{}),
		c2s: &listener{srv: s, cfg: Listener{Name: "edge-c2s"}, kind: c2s{}},
		web: &listener{srv: s, cfg: Listener{Name: "edge-web", WebSocket: true}, kind: c2s{}},
		s2s: &listener{srv: s, cfg: Listener{Name: "edge-s2s", Kind: KindS2S}, kind: &s2sIn{srv: s}}}
}

func (ls *linkServer) listeners() []*listener { return []*listener{ls.c2s, ls.web, ls.s2s} }

// Bounds of the links the core keeps: an edge links once, and again while the core has
// not yet noticed that its last link is gone, so a few per edge are enough; each link
// may hold its queue of bytes (link.Conn), which an edge that does not read fills.
const (
	maxLinksPerEdge = 4
	maxLinks        = 256
)

// linksOf counts the links of the edge called name. Call with ls.mu held.
func (ls *linkServer) linksOf(name string) int {
	n := 0
	for lk := range ls.links {
		if lk.name == name {
			n++
		}
	}
	return n
}

// takeHandshake counts a handshake from src in progress, unless the bounds are reached.
func (ls *linkServer) takeHandshake(src string) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.pending.Load() >= maxLinkHandshakes || ls.pendingBy[src] >= maxLinkHandshakesPerAddr {
		return false
	}
	if ls.pendingBy == nil {
		ls.pendingBy = map[string]int{}
	}
	ls.pending.Add(1)
	ls.pendingBy[src]++
	return true
}

// doneHandshake ends the count of a handshake from src.
func (ls *linkServer) doneHandshake(src string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.pending.Add(-1)
	if n := ls.pendingBy[src] - 1; n > 0 {
		ls.pendingBy[src] = n
	} else {
		delete(ls.pendingBy, src)
	}
}

func (ls *linkServer) start(cfg Link) error {
	for _, a := range cfg.Listen {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			ls.stop()
			return fmt.Errorf("engine: link listener on %s: %w", a, err)
		}
		ls.lns = append(ls.lns, ln)
		ls.wg.Add(1)
		go ls.accept(ln, cfg)
	}
	return nil
}

// Addr is the first link listener's address.
func (ls *linkServer) addr() net.Addr {
	if len(ls.lns) == 0 {
		return nil
	}
	return ls.lns[0].Addr()
}

func (ls *linkServer) accept(ln net.Listener, cfg Link) {
	defer ls.wg.Done()
	log := ls.srv.log
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Error().Err(err).Msg("link accept failed")
			time.Sleep(100 * time.Millisecond)
			continue
		}
		src := ""
		if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
			src = a.IP.String()
		}
		if !ls.takeHandshake(src) {
			ls.refused(nc.RemoteAddr().String(), "", errors.New("too many handshakes in progress"))
			nc.Close()
			continue
		}
		go func() {
			if cfg.TLS != nil {
				nc = tls.Server(nc, cfg.TLS)
			}
			name, err := link.Accept(nc, cfg.Secret)
			ls.doneHandshake(src)
			if err != nil {
				ls.refused(nc.RemoteAddr().String(), name, err)
				nc.Close()
				return
			}
			lk := &coreLink{srv: ls.srv, ls: ls, name: name, lc: link.NewConn(nc), chans: map[uint32]*edgeChan{},
				outs: map[uint32]*linkConn{}}
			ls.mu.Lock()
			stopping := ls.srv.stopping.Load()
			full := ls.linksOf(name) >= maxLinksPerEdge || len(ls.links) >= maxLinks
			if !stopping && !full {
				ls.links[lk] = struct{}{}
				close(ls.joined)
				ls.joined = make(chan struct{})
			}
			ls.mu.Unlock()
			if full && !stopping {
				ls.refused(nc.RemoteAddr().String(), name, errors.New("too many links"))
			}
			if stopping || full {
				lk.lc.Close(nil)
				return
			}
			log.Info().Str("edge", name).Str("remote", nc.RemoteAddr().String()).Msg("edge linked")
			err = lk.lc.Read(lk.frame)
			lk.down()
			ls.mu.Lock()
			delete(ls.links, lk)
			ls.mu.Unlock()
			log.Warn().Err(err).Str("edge", name).Msg("edge link lost")
		}()
	}
}

// refused logs a refused link handshake: the first, then at most one line (with the
// count) every ten seconds.
func (ls *linkServer) refused(remote, name string, err error) {
	n := ls.refusedN.Add(1)
	now := time.Now().UnixNano()
	last := ls.refusedAt.Load()
	if now-last < int64(10*time.Second) || !ls.refusedAt.CompareAndSwap(last, now) {
		return
	}
	ls.refusedN.Store(0)
	ls.srv.log.Warn().Err(err).Str("remote", remote).Str("edge", name).Int64("refused", n).Msg("edge link refused")
}

// count is the number of links and of their open channels.
func (ls *linkServer) count() (links, chans int64) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for lk := range ls.links {
		links++
		lk.mu.Lock()
		chans += int64(len(lk.chans))
		lk.mu.Unlock()
	}
	return links, chans
}

// stop closes the listeners and every link.
func (ls *linkServer) stop() {
	for _, ln := range ls.lns {
		ln.Close()
	}
	ls.wg.Wait()
	ls.lns = nil
	ls.mu.Lock()
	for lk := range ls.links {
		lk.lc.Close(nil)
	}
	ls.mu.Unlock()
}

// coreLink is one edge's link and its channels.
type coreLink struct {
	srv  *Server
	ls   *linkServer
	name string
	lc   *link.Conn

	mu      sync.Mutex
	chans   map[uint32]*edgeChan
	outs    map[uint32]*linkConn // connections the edge holds for this core (split_out.go)
	nextOut uint32
}

func (lk *coreLink) chanFor(id uint32) *edgeChan {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	return lk.chans[id]
}

func (lk *coreLink) forget(id uint32) *edgeChan {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	ch := lk.chans[id]
	delete(lk.chans, id)
	return ch
}

// frame handles one frame from the edge, on the link's reading goroutine. An error ends
// the link: the edge broke the protocol.
func (lk *coreLink) frame(f link.Frame) error {
	if f.Chan&link.CoreChan != 0 {
		return lk.outFrame(f)
	}
	switch f.Type {
	case link.Open:
		info, err := link.ParseOpen(f.Payload)
		if err != nil {
			return err
		}
		lk.open(f.Chan, info)
	case link.Data:
		if ch := lk.chanFor(f.Chan); ch != nil {
			ch.input(f.Payload)
		}
	case link.TLSUp:
		info, err := link.ParseTLS(f.Payload)
		if err != nil {
			return err
		}
		if ch := lk.chanFor(f.Chan); ch != nil {
			ch.Wake(func(gnet.Conn, error) error {
				ch.tls.Store(&info)
				ch.tlsVer = info.Version
				ch.c.set(fTLS)
				ch.c.clear(fTLSWait)
				return nil
			})
		}
	case link.Closed:
		if ch := lk.forget(f.Chan); ch != nil {
			ch.gone(len(f.Payload) == 1 && f.Payload[0] == 1)
		}
	case link.Drained:
		if len(f.Payload) != 5 {
			return errors.New("link: bad drained payload")
		}
		if ch := lk.chanFor(f.Chan); ch != nil {
			ch.drained(binary.BigEndian.Uint32(f.Payload), f.Payload[4] == 1)
		}
	default:
		return fmt.Errorf("link: frame type %d not expected from an edge", f.Type)
	}
	return nil
}

// open admits a new channel as accept and OnOpen admit a socket: the same limits, counted
// by the client's address as the edge saw it.
func (lk *coreLink) open(id uint32, info link.OpenInfo) {
	s := lk.srv
	cfg := s.config()
	refuse := func(reason int) {
		s.refuse(reason)
		lk.lc.Send(link.Close, id, nil)
	}
	remote, _ := netip.ParseAddrPort(info.Remote) // the zero value when the edge sent no address
	ip := remote.Addr().String()
	l := lk.ls.c2s
	switch info.Kind {
	case link.KindWeb:
		l = lk.ls.web
	case link.KindS2S:
		l = lk.ls.s2s
	}
	if reason := s.admission(ip, cfg.trusted(ip) || l.cfg.WebSocket && cfg.Web.proxy(ip)); reason >= 0 {
		refuse(reason)
		return
	}
	ch := &edgeChan{lk: lk, id: id, remote: remote, direct: info.Flags&link.FlagDirectTLS != 0}
	c := newConn(l, ch)
	ch.c = c
	c.set(fUnauth)
	if l.cfg.WebSocket {
		c.ws = &wsState{}
	}
	if info.Flags&link.FlagDirectTLS != 0 {
		c.set(fTLS) // the edge sends TLSUp before any byte of the stream
	}
	lk.mu.Lock()
	if old := lk.chans[id]; old != nil {
		lk.mu.Unlock()
		s.unauth.done(addrKey(ip))
		lk.lc.Close(fmt.Errorf("link: channel %d opened twice", id))
		return
	}
	lk.chans[id] = ch
	lk.mu.Unlock()
	l.conns.add(c)
	s.open.Add(1)
	if e := s.log.Debug(); e.Enabled() {
		e.Str("edge", lk.name).Str("remote", info.Remote).Msg("open")
	}
}

// down ends every channel of a link that is gone: their bytes in flight may be lost.
func (lk *coreLink) down() {
	lk.mu.Lock()
	chans, outs := lk.chans, lk.outs
	lk.chans = map[uint32]*edgeChan{}
	lk.outs = map[uint32]*linkConn{}
	lk.mu.Unlock()
	for _, ch := range chans {
		ch.gone(false)
	}
	lk.downOuts(outs)
}

// edgeChan is the transport of a conn whose client is connected to an edge. Its conn's
// code runs on a goroutine of the channel's, one callback at a time, in order, like a
// gnet connection's runs on its loop.
type edgeChan struct {
	lk *coreLink
	id uint32
	// tlsVer and direct describe the client's TLS at the edge for listings (S2SConns);
	// set on the channel's goroutine. They fill what would be padding after id.
	tlsVer uint16
	direct bool
	c      *conn
	remote netip.AddrPort // kept as a value: a net.Addr is two more allocations per client
	// tls is what the edge said of the client's TLS handshake, until authentication.
	tls atomic.Pointer[link.TLSInfo]
	// shut is set once the channel is closed from either side; flushed, once it is, tells
	// whether the edge wrote everything before the close.
	shut    atomic.Bool
	flushed atomic.Bool
	// queued is the input waiting for the channel's goroutine: bounded as gnet's inbound
	// buffer and hold bound a socket's, since the link's reader never waits.
	queued atomic.Int64

	tasks  taskQueue
	drains struct {
		sync.Mutex
		seq uint32
		m   map[uint32]func(bool)
	}
}

var _ netConn = (*edgeChan)(nil)

var errChanClosed = errors.New("engine: edge channel closed")

// Next implements netConn: bytes come as Data frames, not from a socket.
func (ch *edgeChan) Next(int) ([]byte, error) { return nil, nil }

// RemoteAddr implements netConn: the client's address as the edge saw it.
func (ch *edgeChan) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(ch.remote) }

// OutboundBuffered implements netConn. The edge bounds what waits for its client
// (max_outbound applies there); the link bounds what waits for the edge.
func (ch *edgeChan) OutboundBuffered() int { return 0 }

// Wake implements netConn: cb runs on the channel's goroutine after the callbacks queued
// before it. Safe for concurrent use; it fails once the channel is closed.
func (ch *edgeChan) Wake(cb gnet.AsyncCallback) error {
	if !ch.tasks.add(cb) {
		return errChanClosed
	}
	return nil
}

// input queues bytes of the client's stream for its conn.
func (ch *edgeChan) input(p []byte) {
	if ch.queued.Add(int64(len(p))) > int64(heldBlockedFactor*ch.c.srv().config().Limits.MaxStanza) {
		// The conn cannot keep up with its client: end the stream as hold would.
		ch.queued.Add(-int64(len(p)))
		ch.c.Close(stanza.PolicyViolation)
		return
	}
	buf := plainPool.Get()
	buf.B = append(buf.B[:0], p...)
	n := int64(len(p))
	if ch.Wake(func(gnet.Conn, error) error {
		c := ch.c
		ch.queued.Add(-n)
		defer c.recoverPanic()
		c.lastRx.Store(sinceEpoch(time.Now()))
		c.pingAt.Store(0)
		c.stir()
		if !c.closing.Load() && !c.has(fTLSWait) { // see onStartTLS
			c.recv(buf.B)
		}
		plainPool.Put(buf)
		return nil
	}) != nil {
		ch.queued.Add(-n)
		plainPool.Put(buf)
	}
}

// AsyncWrite implements netConn: b goes to the edge at once, in call order; cb runs
// before it returns. Safe for concurrent use.
func (ch *edgeChan) AsyncWrite(b []byte, cb gnet.AsyncCallback) error {
	if ch.shut.Load() {
		return errChanClosed
	}
	if len(b) > 0 && !ch.lk.lc.Send(link.Data, ch.id, b) {
		// The link is gone, or full (a burst to many of its clients): this stream lost
		// bytes and ends, and nothing may follow the hole; the others go on. Closed on a
		// goroutine of its own: the caller may hold locks (stream management's) that
		// the close takes.
		if ch.shut.CompareAndSwap(false, true) {
			go ch.shutDown()
		}
		return errChanClosed
	}
	if cb != nil {
		cb(nil, nil)
	}
	return nil
}

// startTLS has the edge write proceed and then run the client's TLS handshake: in one
// frame, so that the client cannot answer proceed before the edge expects TLS.
func (ch *edgeChan) startTLS(proceed []byte) {
	ch.lk.lc.Send(link.StartTLS, ch.id, proceed)
}

// Close implements netConn: the edge closes the client's socket after the bytes sent
// before, and the conn's onClose runs after the callbacks already queued. Safe for
// concurrent use and idempotent.
func (ch *edgeChan) Close() error {
	if !ch.shut.CompareAndSwap(false, true) {
		return nil
	}
	ch.shutDown()
	return nil
}

// shutDown is Close once shut is set.
func (ch *edgeChan) shutDown() {
	ch.lk.forget(ch.id)
	ch.lk.lc.Send(link.Close, ch.id, nil)
	ch.end()
}

// gone ends a channel the edge closed (flushed: everything sent to it was written to the
// client first), or whose link was lost.
func (ch *edgeChan) gone(flushed bool) {
	if !ch.shut.CompareAndSwap(false, true) {
		return
	}
	ch.flushed.Store(flushed)
	ch.end()
}

func (ch *edgeChan) end() {
	ch.c.closing.Store(true)
	ch.tasks.last(func(gnet.Conn, error) error {
		c := ch.c
		c.l.conns.remove(c)
		c.onClose(nil)
		return nil
	})
	ch.drains.Lock()
	m := ch.drains.m
	ch.drains.m = nil
	ch.drains.Unlock()
	for _, f := range m {
		f(ch.flushed.Load())
	}
}

// Drained implements drainer: the edge says whether every byte sent before this call has
// left it for the client's socket.
func (ch *edgeChan) Drained(f func(ok bool)) {
	ch.drains.Lock()
	if ch.shut.Load() {
		ch.drains.Unlock()
		f(ch.flushed.Load())
		return
	}
	ch.drains.seq++
	seq := ch.drains.seq
	if ch.drains.m == nil {
		ch.drains.m = map[uint32]func(bool){}
	}
	ch.drains.m[seq] = f
	ch.drains.Unlock()
	if !ch.lk.lc.Send(link.Drain, ch.id, binary.BigEndian.AppendUint32(nil, seq)) {
		ch.drained(seq, false)
	}
}

func (ch *edgeChan) drained(seq uint32, ok bool) {
	ch.drains.Lock()
	f := ch.drains.m[seq]
	delete(ch.drains.m, seq)
	if len(ch.drains.m) == 0 {
		ch.drains.m = nil
	}
	ch.drains.Unlock()
	if f != nil {
		f(ok)
	}
}

// peerCerts is the certificate chain the peer presented in its TLS handshake, here or at
// the edge, until authentication.
func (c *conn) peerCerts() []*x509.Certificate {
	if ch, ok := c.gc.(*edgeChan); ok {
		t := ch.tls.Load()
		if t == nil {
			return nil
		}
		var certs []*x509.Certificate
		for _, der := range t.PeerCerts {
			crt, err := x509.ParseCertificate(der)
			if err != nil {
				return nil
			}
			certs = append(certs, crt)
		}
		return certs
	}
	if t := c.tls.Load(); t != nil && t.HandshakeComplete() {
		return t.PeerCertificates()
	}
	return nil
}

// cbTypes and binding answer conn's channel-binding questions for a client whose TLS the
// edge terminated.
func (ch *edgeChan) cbTypes() []string {
	t := ch.tls.Load()
	switch {
	case t == nil:
		return nil
	case len(t.Exporter) > 0 && len(t.EndPoint) > 0:
		return []string{"tls-exporter", "tls-server-end-point"}
	case len(t.Exporter) > 0:
		return []string{"tls-exporter"}
	case len(t.EndPoint) > 0:
		return []string{"tls-server-end-point"}
	}
	return nil
}

func (ch *edgeChan) binding(typ string) ([]byte, bool) {
	t := ch.tls.Load()
	if t == nil {
		return nil, false
	}
	switch typ {
	case "tls-exporter":
		return t.Exporter, len(t.Exporter) > 0
	case "tls-server-end-point":
		return t.EndPoint, len(t.EndPoint) > 0
	}
	return nil, false
}

// closeStreams sends system-shutdown to every edge channel's stream.
func (ls *linkServer) closeStreams() {
	for _, l := range ls.listeners() {
		for _, c := range l.snapshot() {
			c.Close(stanza.SystemShutdown)
		}
	}
}
