package engine

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/vireo-im/vireo/engine/link"
	"github.com/vireo-im/vireo/engine/metrics"
	"github.com/vireo-im/vireo/engine/tlsconn"
)

// The edge's end of the split deployment: a server built by NewEdge runs the listeners,
// the event loops and TLS as the all-in-one server does, and relays each connection's
// plaintext over a link to the core instead of parsing it. It holds no store, no router
// and no credentials, so it can sit in a DMZ; what it keeps per client is the socket and
// the TLS state.

// Edge configures a server that relays its clients to a core.
type Edge struct {
	// Core is the core's link address; Secret its shared secret; Name how this edge
	// appears in the core's logs.
	Core   string
	Secret []byte
	Name   string
	// TLS, when set, makes the link TLS (tls.Dial with this client config).
	TLS *tls.Config
}

// linkBackoff bounds the wait between attempts to reach the core.
const (
	linkBackoffMin = 100 * time.Millisecond
	linkBackoffMax = 5 * time.Second
)

// edgeLink is an edge server's link to the core and the channel of each connection.
type edgeLink struct {
	srv  *Server
	cfg  Edge
	stop chan struct{}
	done chan struct{}
	// tried is closed when the first attempt to link has ended, either way.
	tried chan struct{}

	mu    sync.Mutex
	lc    *link.Conn // nil while the core cannot be reached
	next  uint32
	ids   map[*conn]uint32
	conns map[uint32]*conn
	outs  map[uint32]*edgeOut // connections held for the core (split_out.go)
}

// NewEdge prepares an edge server: cfg's listeners (c2s and web kinds), TLS, limits and
// loops, relayed to the core that e names. Start opens them once the link is up.
func NewEdge(cfg Config, e Edge) (*Server, error) {
	if e.Core == "" || len(e.Secret) == 0 {
		return nil, errors.New("engine: an edge needs the core's address and the link secret")
	}
	if len(cfg.Domains) == 0 {
		cfg.Domains = []string{"edge.invalid"} // names nothing: the core answers stream headers
	}
	cfg.defaults()
	s := &Server{log: cfg.Logger}
	if err := s.apply(&cfg); err != nil {
		return nil, err
	}
	s.throttle = newThrottle()
	s.sms = newSMTable()
	s.edge = &edgeLink{srv: s, cfg: e, stop: make(chan struct{}), done: make(chan struct{}), tried: make(chan struct{}),
		ids: map[*conn]uint32{}, conns: map[uint32]*conn{}, outs: map[uint32]*edgeOut{}}
	ls, err := s.newListeners(&cfg, cfg.Listeners)
	if err != nil {
		return nil, err
	}
	s.lset.Store(&listenerSet{active: ls})
	s.metrics = metrics.NewRegistry(s.edgeCounters)
	return s, nil
}

// run keeps the link to the core up until stop.
func (e *edgeLink) run() {
	defer close(e.done)
	backoff := linkBackoffMin
	first := true
	var lastWarn time.Time
	for {
		lc, err := e.dial()
		if err == nil {
			backoff = linkBackoffMin
			e.mu.Lock()
			e.lc = lc
			e.mu.Unlock()
		}
		if first {
			close(e.tried)
			first = false
		}
		if err == nil {
			e.srv.log.Info().Str("core", e.cfg.Core).Msg("linked to the core")
			err = lc.Read(e.frame)
			e.down(lc)
			e.srv.log.Warn().Err(err).Str("core", e.cfg.Core).Msg("link to the core lost; its clients are closed")
		} else if now := time.Now(); now.Sub(lastWarn) >= time.Minute {
			// Retried every few seconds: said once a minute.
			lastWarn = now
			e.srv.log.Warn().Err(err).Str("core", e.cfg.Core).Msg("cannot link to the core; clients are refused until it can")
		}
		select {
		case <-e.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, linkBackoffMax)
	}
}

func (e *edgeLink) dial() (*link.Conn, error) {
	d := net.Dialer{Timeout: link.HandshakeTimeout, KeepAlive: 15 * time.Second}
	nc, err := d.Dial("tcp", e.cfg.Core)
	if err != nil {
		return nil, err
	}
	if e.cfg.TLS != nil {
		nc = tls.Client(nc, e.cfg.TLS)
	}
	if err := link.Dial(nc, e.cfg.Secret, e.cfg.Name); err != nil {
		nc.Close()
		return nil, err
	}
	lc := link.NewConn(nc)
	go func() {
		select {
		case <-e.stop:
			lc.Close(nil)
		case <-lc.Done():
		}
	}()
	return lc, nil
}

// down closes every client of a lost link: the core has ended their streams.
func (e *edgeLink) down(lc *link.Conn) {
	e.mu.Lock()
	if e.lc == lc {
		e.lc = nil
	}
	conns, outs := e.conns, e.outs
	e.conns = map[uint32]*conn{}
	e.ids = map[*conn]uint32{}
	e.outs = map[uint32]*edgeOut{}
	e.mu.Unlock()
	for _, c := range conns {
		c.closeNow()
	}
	e.downOuts(outs)
}

// open gives a new connection its channel; false when the core cannot be reached.
func (e *edgeLink) open(c *conn) bool {
	info := link.OpenInfo{Kind: link.KindC2S}
	switch {
	case c.l.cfg.WebSocket:
		info.Kind = link.KindWeb
	case c.l.cfg.Kind == KindS2S:
		info.Kind = link.KindS2S
	}
	if c.l.cfg.DirectTLS {
		info.Flags |= link.FlagDirectTLS
	}
	if a := c.gc.RemoteAddr(); a != nil {
		info.Remote = a.String()
	}
	e.mu.Lock()
	lc := e.lc
	if lc == nil {
		e.mu.Unlock()
		return false
	}
	// Ids wrap after 2^31 connections, below the core's own (link.CoreChan): one still in
	// use (or 0) is skipped.
	e.next = (e.next + 1) &^ link.CoreChan
	for e.next == 0 || e.conns[e.next] != nil {
		e.next = (e.next + 1) &^ link.CoreChan
	}
	id := e.next
	e.ids[c] = id
	e.conns[id] = c
	e.mu.Unlock()
	// Sent outside the lock: the send may write to the link itself. The loop that runs
	// this connection sends its Data only after this returns, so Open comes first.
	return lc.Send(link.Open, id, info.Append(nil))
}

// send sends a frame of c's channel.
func (e *edgeLink) send(c *conn, t byte, p []byte) {
	e.mu.Lock()
	id, ok := e.ids[c]
	lc := e.lc
	e.mu.Unlock()
	if ok && lc != nil && !lc.Send(t, id, p) && t == link.Data {
		c.closeNow() // the link refused the bytes (full): the stream cannot go on without them
	}
}

// data relays plaintext from the client (on its loop).
func (e *edgeLink) data(c *conn, p []byte) { e.send(c, link.Data, p) }

// tlsUp tells the core what the client's finished handshake binds to, and drops it here.
func (e *edgeLink) tlsUp(c *conn, t *tlsconn.Conn) {
	inf := t.Info()
	info := link.TLSInfo{Version: inf.Version, Suite: inf.CipherSuite, ServerName: t.ServerName()}
	info.Exporter, _ = t.Exporter()
	switch {
	case c.l.cfg.WebSocket:
		info.Exporter = nil // a browser cannot bind to its TLS (cbTypes)
	case c.l.cfg.Kind == KindS2S:
		for _, crt := range t.PeerCertificates() {
			info.PeerCerts = append(info.PeerCerts, crt.Raw)
		}
		if !info.Fits() {
			info.PeerCerts = nil
		}
	case !t.Info().DidResume: // see conn.cbTypes
		info.EndPoint, _ = endPoint(e.srv.config(), info.ServerName)
	}
	e.send(c, link.TLSUp, info.Append(nil))
	t.Authenticated()
}

// closed tells the core that c's socket is gone (on the loop, from onClose).
func (e *edgeLink) closed(c *conn) {
	e.mu.Lock()
	id, ok := e.ids[c]
	delete(e.ids, c)
	delete(e.conns, id)
	lc := e.lc
	e.mu.Unlock()
	if ok && lc != nil {
		lc.Send(link.Closed, id, []byte{b2u(c.has(fFlushed))})
	}
}

// frame handles one frame from the core, on the link's reading goroutine.
func (e *edgeLink) frame(f link.Frame) error {
	e.mu.Lock()
	lc := e.lc
	var c *conn
	if f.Chan&link.CoreChan == 0 {
		c = e.conns[f.Chan]
	}
	e.mu.Unlock()
	if f.Chan&link.CoreChan != 0 {
		return e.outFrame(lc, f)
	}
	switch f.Type {
	case link.Data:
		if c != nil {
			c.writeRaw(f.Payload)
			c.stir()
		}
	case link.Close:
		if c != nil {
			c.closeAfterWrites()
		}
	case link.StartTLS:
		if c == nil {
			return nil
		}
		proceed := append([]byte(nil), f.Payload...)
		if c.gc.Wake(func(gnet.Conn, error) error {
			if c.closing.Load() || c.tls.Load() != nil {
				return nil
			}
			c.enterLoop()
			defer c.exitLoop()
			c.writeRaw(proceed)
			c.startTLS()
			return nil
		}) != nil {
			c.closeNow()
		}
	case link.Drain:
		if len(f.Payload) != 4 {
			return errors.New("link: bad drain payload")
		}
		seq := binary.BigEndian.Uint32(f.Payload)
		answer := func(ok bool) {
			b := append(binary.BigEndian.AppendUint32(make([]byte, 0, 5), seq), b2u(ok))
			if lc != nil {
				lc.Send(link.Drained, f.Chan, b)
			}
		}
		if c == nil {
			answer(false) // closed here already: what was pending may not have gone out
			return nil
		}
		c.Drained(answer)
	default:
		return errors.New("link: frame not expected from the core")
	}
	return nil
}

// edgeCounters snapshots an edge's counters for a metrics scrape.
func (s *Server) edgeCounters() metrics.Counters {
	e := s.Stats()
	m := metrics.Counters{Edge: true, ConnsOpen: e.Open, TLS: e.TLS, Refused: e.Refused, AcceptErrors: e.AcceptErrors,
		TLSHandshakes: [2]int64{s.counts.tls[0].Load(), s.counts.tls[1].Load()}, RefusedBy: make(map[string]int64, nRefused)}
	for i, r := range refusedReasons {
		m.RefusedBy[r] = s.counts.refused[i].Load()
	}
	s.edge.mu.Lock()
	lc := s.edge.lc
	m.CoreConns = int64(len(s.edge.outs))
	s.edge.mu.Unlock()
	if lc != nil && lc.Err() == nil {
		m.LinkUp, m.LinkQueued = true, int64(lc.Queued())
	}
	return m
}

// MetricsHandler serves the server's Prometheus metrics over HTTP: an edge has no web
// listener of its own to serve them on (its web listeners relay to the core), so its
// process serves this on a listener of the operator's choosing.
func (s *Server) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctype, body, err := metrics.Render(s.metrics, r.Header.Get("Accept"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.Write(body)
	})
}
