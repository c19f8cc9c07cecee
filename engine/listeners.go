package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// listenerSet is what the server listens with. A reload that takes a listener away
// stops its accept loop at once but keeps its connections: it moves to retired, where
// the timeout sweep, shutdown and host removal still find them, and leaves when the last
// of them has closed (pruneListeners).
type listenerSet struct {
	active, retired []*listener
}

// listeners returns the listeners that accept connections.
func (s *Server) listeners() []*listener {
	if ls := s.lset.Load(); ls != nil {
		return ls.active
	}
	return nil
}

// allListeners returns every listener that may hold connections: the accepting ones and
// the retired ones.
func (s *Server) allListeners() []*listener {
	ls := s.lset.Load()
	if ls == nil {
		return nil
	}
	if len(ls.retired) == 0 {
		return ls.active
	}
	return append(slices.Clip(ls.active), ls.retired...)
}

// newListeners validates specs and makes their (not yet open) listeners.
func (s *Server) newListeners(cfg *Config, specs []Listener) ([]*listener, error) {
	out := make([]*listener, 0, len(specs))
	for _, l := range specs {
		if l.DirectTLS && cfg.TLS == nil {
			return nil, fmt.Errorf("engine: listener %s needs TLS certificates", l.Name)
		}
		kind := s.kindFor(l)
		if s.edge != nil {
			if l.Kind == KindComponent {
				return nil, errors.New("engine: components connect to the core, not to an edge")
			}
			kind = c2s{} // an edge relays bytes; the core serves the stream
		}
		out = append(out, &listener{srv: s, cfg: l, kind: kind})
	}
	return out, nil
}

// bind opens l's socket. Connections queue in the kernel's backlog until serve starts
// the accept loop.
func (l *listener) bind() error {
	// No TCP keepalive from the listener: Go's default would probe every connection
	// after 15 s of silence, waking an idle phone's radio four times a minute and
	// costing the kernel a probe and its ack per idle connection per 15 s. Clients get
	// XEP-0199 pings after PingAfter instead; server-facing kinds get a slow keepalive
	// in admit.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", strings.TrimPrefix(l.cfg.Addr, "tcp://"))
	if err != nil {
		return fmt.Errorf("engine: listener %s on %s: %w", l.cfg.Name, l.cfg.Addr, err)
	}
	l.ln = ln.(*net.TCPListener)
	l.addr = l.ln.Addr().(*net.TCPAddr)
	l.done = make(chan struct{})
	return nil
}

// serve starts l's accept loop.
func (l *listener) serve() {
	go l.acceptLoop()
	l.srv.log.Debug().Str("listener", l.cfg.Name).Stringer("addr", l.addr).Msg("listening")
}

// stopAccepting closes l's socket and waits for its accept loop to end. Connections it
// accepted stay open.
func (l *listener) stopAccepting() {
	if l.ln != nil {
		l.ln.Close()
		<-l.done
		l.ln = nil
	}
}

// listenerPlan is a reload's change of listeners, bound but not yet serving: commit
// makes it the server's, abort closes what it opened.
type listenerPlan struct {
	s      *Server
	add    []*listener // new, bound by planListeners unless in late
	remove []*listener // no longer configured: retired at commit
	late   []*listener // added on an address a removed listener holds: bound after it closes
	active []*listener // the new active set, in the order of the configuration
}

// planListeners compares specs with the running listeners: a listener whose spec is
// unchanged is kept with its socket and connections, a new one is bound now (so that a
// port in use fails the reload before anything changes), and one no longer named is
// retired at commit.
func (s *Server) planListeners(cfg *Config, specs []Listener) (*listenerPlan, error) {
	s.lsMu.Lock()
	defer s.lsMu.Unlock()
	if s.lsClosed {
		return nil, errors.New("engine: stopping")
	}
	cur := s.listeners()
	fresh, err := s.newListeners(cfg, specs)
	if err != nil {
		return nil, err
	}
	p := &listenerPlan{s: s}
	taken := make([]bool, len(cur))
	for _, n := range fresh {
		found := false
		for i, o := range cur {
			if !taken[i] && o.cfg == n.cfg {
				taken[i], found = true, true
				p.active = append(p.active, o)
				break
			}
		}
		if !found {
			p.add = append(p.add, n)
			p.active = append(p.active, n)
		}
	}
	for i, o := range cur {
		if !taken[i] {
			p.remove = append(p.remove, o)
		}
	}
	held := func(n *listener) bool {
		for _, o := range p.remove {
			if sameAddr(o, n.cfg.Addr) {
				return true
			}
		}
		return false
	}
	for _, n := range p.add {
		if held(n) {
			p.late = append(p.late, n)
			continue
		}
		if err := n.bind(); err != nil {
			p.abort()
			return nil, err
		}
	}
	return p, nil
}

// sameAddr reports whether a listener's configured address names the one l is bound to.
func sameAddr(l *listener, addr string) bool {
	a := strings.TrimPrefix(addr, "tcp://")
	if a == strings.TrimPrefix(l.cfg.Addr, "tcp://") {
		return true
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || l.addr == nil || port != fmt.Sprint(l.addr.Port) {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || ip == nil || ip.IsUnspecified() || l.addr.IP.IsUnspecified() || ip.Equal(l.addr.IP)
}

// abort closes the sockets the plan opened.
func (p *listenerPlan) abort() {
	for _, n := range p.add {
		if n.ln != nil {
			n.ln.Close()
			n.ln = nil
		}
	}
}

// commit starts the new listeners, retires the removed ones and publishes the set. A
// listener that takes over the address of a removed one is bound after that one has
// closed; if that fails, the error says so and the rest of the change stands.
func (p *listenerPlan) commit() error {
	s := p.s
	s.lsMu.Lock()
	defer s.lsMu.Unlock()
	if s.lsClosed {
		p.abort()
		return errors.New("engine: stopping")
	}
	if len(p.add) == 0 && len(p.remove) == 0 {
		return nil
	}
	old := s.lset.Load()
	for _, o := range p.remove {
		o.stopAccepting()
		s.log.Info().Str("listener", o.cfg.Name).Str("addr", o.cfg.Addr).Msg("listener closed by reload; its connections stay")
	}
	var errs []error
	active := p.active[:0:0]
	for _, n := range p.active {
		if slices.Contains(p.late, n) {
			if err := n.bind(); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		active = append(active, n)
	}
	for _, n := range p.add {
		if n.ln != nil {
			n.serve()
			s.log.Info().Str("listener", n.cfg.Name).Stringer("addr", n.addr).Msg("listener opened by reload")
		}
	}
	retired := append(slices.Clip(old.retired), p.remove...)
	s.lset.Store(&listenerSet{active: active, retired: retired})
	return errors.Join(errs...)
}

// pruneListeners lets go of the retired listeners whose connections have all closed.
// It runs on the tick.
func (s *Server) pruneListeners() {
	ls := s.lset.Load()
	if ls == nil || len(ls.retired) == 0 {
		return
	}
	s.lsMu.Lock()
	defer s.lsMu.Unlock()
	ls = s.lset.Load()
	var keep []*listener
	for _, l := range ls.retired {
		if l.inflight.Load() > 0 || !l.conns.empty() {
			keep = append(keep, l)
		}
	}
	if len(keep) != len(ls.retired) {
		s.lset.Store(&listenerSet{active: ls.active, retired: keep})
	}
}

// ListenerInfo describes one listener for the operator (vireoctl stats).
type ListenerInfo struct {
	Name, Addr string
	Accepting  bool // false: a reload closed it; its connections go on
	Conns      int
}

// Listeners lists the accepting listeners, then those a reload closed that still hold
// connections.
func (s *Server) Listeners() []ListenerInfo {
	ls := s.lset.Load()
	if ls == nil {
		return nil
	}
	var out []ListenerInfo
	add := func(l *listener, accepting bool) {
		addr := l.cfg.Addr
		if a := l.addr; a != nil {
			addr = a.String()
		}
		out = append(out, ListenerInfo{Name: l.cfg.Name, Addr: addr, Accepting: accepting, Conns: l.conns.len()})
	}
	for _, l := range ls.active {
		add(l, true)
	}
	for _, l := range ls.retired {
		add(l, false)
	}
	return out
}

// swap applies cfg with its listeners. A listener that cannot be opened fails it before
// anything changes (err); late is the error of one bound after the listener it replaces
// closed (listenerPlan.commit), when the rest has applied.
func (s *Server) swap(cfg *Config) (late, err error) {
	plan, err := s.planListeners(cfg, cfg.Listeners)
	if err != nil {
		return nil, err
	}
	if err := s.apply(cfg); err != nil {
		plan.abort()
		return nil, err
	}
	return plan.commit(), nil
}

// CheckListeners binds, and closes again, the listeners in cfg that are not open yet, so
// that a reload can fail on a port in use before it changes anything else (the server's
// Reload checks again as it applies).
func (s *Server) CheckListeners(cfg Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	plan, err := s.planListeners(&cfg, cfg.Listeners)
	if err != nil {
		return err
	}
	plan.abort()
	return nil
}
