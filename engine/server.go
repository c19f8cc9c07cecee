package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Defaults and tunables.
const (
	DefaultPreAuthTimeout = 30 * time.Second
	DefaultMaxOutbound    = 1 << 20
	DefaultAuthFailLimit  = 10
	// PingAfter is how long an established stream may be silent before the server sends an
	// XEP-0199 ping; PingTimeout is how long the answer may take. Mobile clients behind
	// NATs go silent without closing; this finds dead ones within a few minutes.
	PingAfter   = 4 * time.Minute
	PingTimeout = 60 * time.Second
	// tickEvery is the sweep period of the timeout wheel.
	tickEvery = time.Second
	// plainBufSize is the per-loop buffer TLS plaintext is decrypted into.
	plainBufSize = 16 << 10
)

// Listener is one listening address.
type Listener struct {
	Name      string // "c2s", "c2s-tls", "component"
	Addr      string // "127.0.0.1:5222", "[::]:5222", ":0"
	DirectTLS bool
	Kind      ListenerKind
}

// ListenerKind is the kind of stream a listener serves.
type ListenerKind uint8

// Listener kinds.
const (
	KindC2S       ListenerKind = iota // RFC 6120/6121 clients
	KindComponent                     // XEP-0114 external components
)

// Config is what the engine needs from the server configuration.
type Config struct {
	Domains        []string
	Listeners      []Listener
	TLS            *tls.Config
	RequireTLS     bool
	AllowPlain     bool
	Registration   bool
	PreAuthTimeout time.Duration
	MaxOutbound    int
	Limits         xmlstream.Limits
	Loops          int
	Store          store.Store
	Router         *router.Router
	Logger         zerolog.Logger
	AuthFailLimit  int
	// PingAfter is how long an established client stream may be silent before the server
	// pings it; PingTimeout how long the answer may take.
	PingAfter, PingTimeout time.Duration
	// Components may connect on KindComponent listeners.
	Components []Component
	// RegisterLimit is the in-band registrations per client address per minute;
	// addresses in Trusted are exempt.
	RegisterLimit int
	Trusted       []netip.Prefix
}

// trusted reports whether ip is in one of the trusted networks.
func (c *Config) trusted(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (c *Config) defaults() {
	if c.PreAuthTimeout <= 0 {
		c.PreAuthTimeout = DefaultPreAuthTimeout
	}
	if c.MaxOutbound <= 0 {
		c.MaxOutbound = DefaultMaxOutbound
	}
	if c.AuthFailLimit <= 0 {
		c.AuthFailLimit = DefaultAuthFailLimit
	}
	if c.RegisterLimit <= 0 {
		c.RegisterLimit = DefaultAuthFailLimit
	}
	if c.Limits.MaxStanza == 0 {
		c.Limits = xmlstream.DefaultLimits()
	}
	if c.PingAfter <= 0 {
		c.PingAfter = PingAfter
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = PingTimeout
	}
	if c.Loops <= 0 {
		c.Loops = runtime.GOMAXPROCS(0)
	}
}

// Server is the engine: listeners and connections.
type Server struct {
	cfg      atomic.Pointer[Config]
	domains  atomic.Pointer[map[string]bool]
	log      zerolog.Logger
	rt       *router.Router
	st       store.Store
	ls       []*listener
	throttle *throttle
	guard    *accountGuard
	scanners sync.Pool
	stopping atomic.Bool

	open        atomic.Int64
	established atomic.Int64
	tlsConns    atomic.Int64
	authOK      atomic.Int64
	authFail    atomic.Int64
}

// New validates cfg and prepares the listeners; Start opens them.
func New(cfg Config) (*Server, error) {
	if cfg.Router == nil || cfg.Store == nil {
		return nil, errors.New("engine: Router and Store are required")
	}
	if len(cfg.Domains) == 0 {
		return nil, errors.New("engine: no domains")
	}
	cfg.defaults()
	s := &Server{log: cfg.Logger, rt: cfg.Router, st: cfg.Store}
	s.apply(&cfg)
	s.scanners.New = func() any { return xmlstream.NewScanner() }
	s.throttle = newThrottle()
	s.guard = newAccountGuard()
	for _, l := range cfg.Listeners {
		if l.DirectTLS && cfg.TLS == nil {
			return nil, fmt.Errorf("engine: listener %s needs TLS certificates", l.Name)
		}
		s.ls = append(s.ls, &listener{srv: s, cfg: l, kind: s.kindFor(l), conns: map[*conn]struct{}{}})
	}
	s.setComponents(&cfg)
	return s, nil
}

func (s *Server) apply(cfg *Config) {
	m := make(map[string]bool, len(cfg.Domains))
	for _, d := range cfg.Domains {
		m[d] = true
	}
	s.domains.Store(&m)
	s.cfg.Store(cfg)
}

// Reload swaps domains, TLS, limits and flags. Listeners are not changed; existing
// connections keep their negotiated state and see new limits at their next stream.
func (s *Server) Reload(cfg Config) error {
	if len(cfg.Domains) == 0 {
		return errors.New("engine: no domains")
	}
	old := s.cfg.Load()
	cfg.defaults()
	cfg.Listeners = old.Listeners
	cfg.Store, cfg.Router = old.Store, old.Router
	s.apply(&cfg)
	s.setComponents(&cfg)
	return nil
}

func (s *Server) setComponents(cfg *Config) {
	ds := make([]string, 0, len(cfg.Components))
	for _, c := range cfg.Components {
		ds = append(ds, c.Domain)
	}
	s.rt.SetComponents(ds)
}

func (s *Server) config() *Config { return s.cfg.Load() }

func (s *Server) isLocal(d string) bool { return (*s.domains.Load())[d] }

// Start opens every listener and returns once they accept connections.
func (s *Server) Start() error {
	cfg := s.config()
	for _, l := range s.ls {
		addr, err := resolveAddr(l.cfg.Addr)
		if err != nil {
			s.stopListeners()
			return fmt.Errorf("engine: listener %s: %w", l.cfg.Name, err)
		}
		l.addr = addr
		l.ready = make(chan struct{})
		l.exited = make(chan error, 1)
		go func(l *listener) {
			err := gnet.Run(l, "tcp://"+gnetAddr(addr),
				gnet.WithMulticore(true),
				gnet.WithNumEventLoop(cfg.Loops),
				gnet.WithTicker(true),
				gnet.WithTCPNoDelay(gnet.TCPNoDelay),
				gnet.WithReuseAddr(true),
				gnet.WithLogger(gnetLogger{s.log}),
				gnet.WithReadBufferCap(64<<10),
			)
			l.exited <- err
		}(l)
		select {
		case <-l.ready:
		case err := <-l.exited:
			s.stopListeners()
			if err == nil {
				err = errors.New("stopped")
			}
			return fmt.Errorf("engine: listener %s on %s: %w", l.cfg.Name, addr, err)
		case <-time.After(10 * time.Second):
			s.stopListeners()
			return fmt.Errorf("engine: listener %s on %s did not start", l.cfg.Name, addr)
		}
		s.log.Debug().Str("listener", l.cfg.Name).Stringer("addr", addr).Msg("listening")
	}
	return nil
}

// resolveAddr turns a configured address into a concrete TCP address; port 0 is replaced
// by a free port so that tests can ask for one and learn it from Addr.
func resolveAddr(a string) (*net.TCPAddr, error) {
	a = strings.TrimPrefix(a, "tcp://")
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return nil, err
	}
	if port == "0" {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}
	return net.ResolveTCPAddr("tcp", net.JoinHostPort(host, port))
}

// gnetAddr is the address as gnet wants it: gnet makes a socket bound to "::" IPv6-only,
// so the unspecified IPv6 address is passed as ":port", which gnet binds dual-stack, and
// "[::]:5222" in the config serves IPv4 clients too, as operators expect.
func gnetAddr(a *net.TCPAddr) string {
	if a.IP == nil || (a.IP.IsUnspecified() && a.IP.To4() == nil) {
		return ":" + strconv.Itoa(a.Port)
	}
	return a.String()
}

// Addr returns the bound address of the first listener named name.
func (s *Server) Addr(name string) net.Addr {
	for _, l := range s.ls {
		if l.cfg.Name == name && l.addr != nil {
			return l.addr
		}
	}
	return nil
}

// Shutdown stops accepting, sends <system-shutdown/> to every stream, waits for them to
// close (or ctx), and stops the event loops.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.stopping.CompareAndSwap(false, true) {
		return nil
	}
	for _, l := range s.ls {
		for _, c := range l.snapshot() {
			c.Close(stanza.SystemShutdown)
		}
	}
	for s.open.Load() > 0 {
		select {
		case <-ctx.Done():
			s.log.Warn().Int64("open", s.open.Load()).Msg("shutdown: streams still open at the deadline")
			s.stopListeners()
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
	s.stopListeners()
	return nil
}

func (s *Server) stopListeners() {
	for _, l := range s.ls {
		if l.eng.Validate() == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			l.eng.Stop(ctx)
			cancel()
		}
	}
}

// Stats are connection counters.
type Stats struct {
	Open        int64 `json:"open"`
	Established int64 `json:"established"`
	TLS         int64 `json:"tls"`
	AuthOK      int64 `json:"auth_ok"`
	AuthFail    int64 `json:"auth_fail"`
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{Open: s.open.Load(), Established: s.established.Load(), TLS: s.tlsConns.Load(),
		AuthOK: s.authOK.Load(), AuthFail: s.authFail.Load()}
}

// listener is one gnet engine and the registry of its connections (for shutdown and the
// timeout sweep).
type listener struct {
	gnet.BuiltinEventEngine
	srv    *Server
	cfg    Listener
	kind   streamKind
	addr   *net.TCPAddr
	eng    gnet.Engine
	ready  chan struct{}
	exited chan error

	mu    sync.Mutex
	conns map[*conn]struct{}
}

func (l *listener) snapshot() []*conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		out = append(out, c)
	}
	return out
}

// OnBoot implements gnet.EventHandler.
func (l *listener) OnBoot(eng gnet.Engine) gnet.Action {
	l.eng = eng
	close(l.ready)
	return gnet.None
}

// OnOpen implements gnet.EventHandler.
func (l *listener) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := l.srv
	if s.stopping.Load() {
		return nil, gnet.Close
	}
	c := newConn(l, gc)
	gc.SetContext(c)
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	s.open.Add(1)
	s.log.Debug().Str("listener", l.cfg.Name).Str("remote", c.ip).Msg("open")
	if l.cfg.DirectTLS {
		c.startTLS()
	}
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (l *listener) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.None
	}
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	c.onClose(err)
	return gnet.None
}

// OnTraffic implements gnet.EventHandler.
func (l *listener) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.Close
	}
	c.onTraffic()
	return gnet.None
}

// OnTick sweeps the listener's connections for timeouts.
func (l *listener) OnTick() (time.Duration, gnet.Action) {
	l.sweep(time.Now())
	return tickEvery, gnet.None
}

// gnetLogger routes gnet's own logging into zerolog at debug, since gnet logs routine
// events that an operator does not need at info.
type gnetLogger struct{ l zerolog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug().Msgf("gnet: "+f, a...) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug().Msgf("gnet: "+f, a...) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn().Msgf("gnet: "+f, a...) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error().Msgf("gnet: "+f, a...) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error().Msgf("gnet: "+f, a...) }
