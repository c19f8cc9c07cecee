package engine

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// acceptLoop accepts connections for one listener and hands them to the event loops. It
// owns load shedding: over the global connection limit, or over the per-address limit of
// connections that have not authenticated, a connection is closed at once; when the process
// is out of descriptors (EMFILE, ENFILE) it frees its reserve descriptor to accept and
// close what is queued, backs off, and keeps going. Nothing makes it stop but Close.
func (l *listener) acceptLoop() {
	defer close(l.done)
	s := l.srv
	reserve, _ := os.Open(os.DevNull)
	defer func() {
		if reserve != nil {
			reserve.Close()
		}
	}()
	var backoff time.Duration
	var lastLog time.Time
	for {
		nc, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.acceptErrs.Add(1)
			if now := time.Now(); now.Sub(lastLog) > 10*time.Second {
				lastLog = now
				s.log.Error().Err(err).Str("listener", l.cfg.Name).Int64("accept_errors", s.acceptErrs.Load()).
					Msg("accept failed; shedding connections until it recovers")
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors: use the reserve to take one queued connection off
				// the backlog and close it, so clients are refused rather than left
				// hanging, then take the reserve back.
				if reserve != nil {
					reserve.Close()
					reserve = nil
					if c, err := l.ln.AcceptTCP(); err == nil {
						s.refuse(refusedOutOfFiles)
						c.SetLinger(0)
						c.Close()
					}
					reserve, _ = os.Open(os.DevNull)
				}
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if reason := l.admit(nc); reason >= 0 {
			s.refuse(reason) // counted before the client can see the close
			nc.SetLinger(0)
			nc.Close()
		}
	}
}

// admission applies the limits every new stream meets, whatever carries it (a socket, an
// edge's channel, a BOSH session): the server is not stopping, max_connections, and
// max_unauth_per_addr for the client at ip, counted (unless unlimited) until the stream
// authenticates or closes. It returns -1, or why the stream is refused (refusedShutdown
// ...).
func (s *Server) admission(ip string, unlimited bool) int {
	cfg := s.config()
	if s.stopping.Load() {
		return refusedShutdown
	}
	if max := cfg.MaxConnections; max > 0 && s.open.Load()+s.pending.Load() >= int64(max) {
		return refusedMaxConnections
	}
	if !s.unauth.add(addrKey(ip), cfg.MaxUnauthPerAddr, unlimited) {
		return refusedPerAddress
	}
	return -1
}

// admit applies the connection limits and hands nc to an event loop. It returns -1, or
// why nc was refused (refusedShutdown ...).
func (l *listener) admit(nc *net.TCPConn) int {
	s := l.srv
	cfg := s.config()
	ip := ""
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ip = a.IP.String()
	}
	key := addrKey(ip)
	// A trusted proxy carries many clients: they are counted by the address it names
	// (rekeyClient), not by its own.
	// An edge counts nothing: the core, which sees the stream, applies the limit.
	if reason := s.admission(ip, s.edge != nil || cfg.trusted(ip) || l.cfg.WebSocket && cfg.Web.proxy(ip)); reason >= 0 {
		return reason
	}
	if l.cfg.Kind != KindC2S {
		nc.SetKeepAliveConfig(peerKeepAlive(cfg))
	}
	s.pending.Add(1)
	l.inflight.Add(1)
	ctx := gnet.NewNetConnContext(gnet.NewContext(context.Background(), l), nc)
	ch, err := s.react.eng.Register(ctx)
	if err != nil {
		s.pending.Add(-1)
		l.inflight.Add(-1)
		s.unauth.done(key)
		return refusedRegister
	}
	// gnet duplicates the descriptor on a worker and closes nc; a failure there means
	// OnOpen never runs, so the counts are given back here.
	go func() {
		if r, ok := <-ch; ok && r.Err != nil {
			s.pending.Add(-1)
			l.inflight.Add(-1)
			s.unauth.done(key)
			s.refuse(refusedRegister)
		}
	}()
	return -1
}

// peerKeepAlive is the TCP keepalive of a stream with a server or a component, which gets
// no XEP-0199 pings: a dead peer is found in the time a silent client is (PingAfter, then
// PingTimeout), not in Go's default 15 s that would probe every quiet link four times a
// minute.
func peerKeepAlive(cfg *Config) net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: cfg.PingAfter, Interval: max(cfg.PingTimeout/4, time.Second), Count: 4}
}

// perAddr counts connections per client address (IPv6 per /64) that have not
// authenticated yet.
type perAddr struct {
	mu sync.Mutex
	m  map[string]int32
}

// add counts one for key; it reports false, counting nothing, when key is at limit
// (limit <= 0 or trusted: no limit).
func (p *perAddr) add(key string, limit int, trusted bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]int32{}
	}
	n := p.m[key]
	if limit > 0 && !trusted && int(n) >= limit {
		return false
	}
	p.m[key] = n + 1
	return true
}

func (p *perAddr) done(key string) {
	p.mu.Lock()
	if n := p.m[key]; n <= 1 {
		delete(p.m, key)
	} else {
		p.m[key] = n - 1
	}
	p.mu.Unlock()
}

// authenticated ends c's count as an unauthenticated connection of its address.
func (c *conn) authenticated() {
	if t := c.tls.Load(); t != nil && c.has(fAuthed) {
		t.Authenticated() // channel binding data is needed no more
	}
	if ch, ok := c.gc.(*edgeChan); ok && c.has(fAuthed) {
		ch.tls.Store(nil)
	}
	if c.has(fUnauth) {
		c.clear(fUnauth)
		c.srv().unauth.done(addrKey(c.ip()))
	}
}
