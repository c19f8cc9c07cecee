package engine

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/fast"
	"github.com/vireo-im/vireo/engine/metrics"
	"github.com/vireo-im/vireo/engine/tlsconn"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Defaults and tunables.
const (
	DefaultPreAuthTimeout = 30 * time.Second
	DefaultMaxOutbound    = 1 << 20
	DefaultCoalesceWrites = 10 * time.Millisecond
	DefaultAuthFailLimit  = 10
	// PingAfter is how long an established stream may be silent before the server sends an
	// XEP-0199 ping; PingTimeout is how long the answer may take. Mobile clients behind
	// NATs go silent without closing; this finds dead ones within a few minutes.
	PingAfter   = 4 * time.Minute
	PingTimeout = 60 * time.Second
	// tickEvery is the sweep period of the timeout wheel.
	tickEvery = time.Second
)

// Listener is one listening address.
type Listener struct {
	Name      string // "c2s", "c2s-tls", "component"
	Addr      string // "127.0.0.1:5222", "[::]:5222", ":0"
	DirectTLS bool
	Kind      ListenerKind
	// WebSocket makes this a web listener (web.go): RFC 7395 WebSocket for c2s, and
	// host-meta. With DirectTLS it is HTTPS.
	WebSocket bool
}

// ListenerKind is the kind of stream a listener serves.
type ListenerKind uint8

// Listener kinds.
const (
	KindC2S       ListenerKind = iota // RFC 6120/6121 clients
	KindComponent                     // XEP-0114 external components
	KindS2S                           // RFC 6120 server-to-server (federation), s2s.go
)

// PasswordChecker checks passwords the server does not hold. Its methods block: the engine
// calls them on the worker pool. An error means no answer, not a wrong password.
type PasswordChecker interface {
	CheckPassword(user, domain, password string) (bool, error)
	UserExists(user, domain string) (bool, error)
}

// Config is what the engine needs from the server configuration.
type Config struct {
	Domains      []string
	Listeners    []Listener
	TLS          *tls.Config
	RequireTLS   bool
	AllowPlain   bool
	Registration bool
	// ReservedNames are prepared localparts that registration refuses unless an
	// invitation names the account (config C2S.ReservedNames).
	ReservedNames []string
	// AdminJIDs are the bare JIDs the configuration names administrators (of the server
	// or of a host): registration refuses them unless an invitation names the account,
	// which only an administrator above them makes. Otherwise whoever registered one
	// first, by a host-wide invitation or in-band, would hold those rights.
	AdminJIDs []string
	// AnonymousDomains are the hosts that offer SASL ANONYMOUS (anon.go); AnonymousS2S
	// lets their guests send to other servers.
	AnonymousDomains []string
	AnonymousS2S     bool
	// Hosts holds what single virtual hosts do differently (vhosts.go); a host without
	// an entry follows Registration, RegistrationCaptcha and federation as set above.
	Hosts          map[string]HostPolicy
	PreAuthTimeout time.Duration
	MaxOutbound    int
	Limits         xmlstream.Limits
	Loops          int
	Store          store.Store
	Router         *router.Router
	Logger         zerolog.Logger
	AuthFailLimit  int
	// External checks the passwords of the accounts this server holds no keys for (an
	// operator's program, extauth.Program); nil: only local accounts log in. With it, the
	// only password mechanism offered is PLAIN (over TLS): SCRAM needs keys the server does
	// not have.
	External PasswordChecker
	// ExternalManage sends in-band registrations, password changes and removals of the
	// accounts External keeps to it (when it is an AccountManager); without it they are
	// refused (not-allowed), and registration creates local accounts.
	ExternalManage bool
	// PingAfter is how long an established client stream may be silent before the server
	// pings it; PingTimeout how long the answer may take.
	PingAfter, PingTimeout time.Duration
	// Components may connect on KindComponent listeners.
	Components []Component
	// ResumeTimeout is how long a stream-management session waits for its client to
	// resume it (XEP-0198); the server asks for an acknowledgement after SMAckEvery
	// stanzas, or once stanzas have waited SMAckAfter; a client that leaves that request
	// unanswered and sends nothing for SMAckTimeout is taken for dead.
	ResumeTimeout time.Duration
	SMAckEvery    int
	SMAckAfter    time.Duration
	SMAckTimeout  time.Duration
	// CoalesceWrites is how long bytes for a connection that was just written to may
	// wait to leave with the next ones (coalesce.go): 0 is DefaultCoalesceWrites, below 0
	// off.
	CoalesceWrites time.Duration
	// RegisterLimit is the in-band registrations per client address per minute;
	// addresses in Trusted are exempt.
	RegisterLimit int
	Trusted       []netip.Prefix
	// RegistrationCaptcha makes an open in-band registration solve an XEP-0158 CAPTCHA
	// (an image's text); invitations and Trusted networks do without.
	RegistrationCaptcha bool
	// MaxConnections bounds open connections (0: derived from the process's descriptor
	// limit, leaving room for the database); MaxUnauthPerAddr bounds connections per client
	// address (IPv6 per /64) that have not authenticated yet; Trusted networks are exempt.
	MaxConnections   int
	MaxUnauthPerAddr int
	// FastKey is the server secret XEP-0484 FAST tokens are derived with (32 bytes or
	// more, kept outside the database); without one the engine makes a random key, so
	// tokens do not survive a restart. FastTTL is a token's lifetime.
	FastKey []byte
	FastTTL time.Duration
	// Web configures the web listeners.
	Web Web
	// S2S configures federation; the router's Remote is this server's outbound side when
	// there is a KindS2S listener or a host table.
	S2S S2S
	// Link is the listener of edge processes' links (split_core.go); none without Listen.
	Link Link

	// loopTLS is TLS prepared for connections on the loops (tlsconn.Prepare); webTLS is the
	// same with HTTP's ALPN for the web listeners (TLS announces xmpp-client).
	loopTLS, webTLS *tls.Config
	// s2sTLS is TLS for inbound server-to-server streams: ALPN xmpp-server (XEP-0368; a
	// peer such as Prosody offers only that, and crypto/tls refuses the handshake when
	// no protocol matches), and the peer is asked for its certificate (for SASL
	// EXTERNAL, XEP-0178), which is checked after the handshake, not by crypto/tls.
	s2sTLS *tls.Config
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
	if c.CoalesceWrites == 0 {
		c.CoalesceWrites = DefaultCoalesceWrites
	}
	c.CoalesceWrites = min(c.CoalesceWrites, maxCoalesce)
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
	if c.MaxConnections <= 0 {
		c.MaxConnections = defaultMaxConnections()
	}
	if c.Web.WSPath == "" {
		c.Web.WSPath = DefaultWSPath
	}
	if c.Web.BOSHPath == "" {
		c.Web.BOSHPath = DefaultBOSHPath
	}
	if c.Web.BOSHInactivity <= 0 {
		c.Web.BOSHInactivity = DefaultBOSHInactivity
	}
	if c.Web.BOSHWait <= 0 {
		c.Web.BOSHWait = DefaultBOSHWait
	}
	if len(c.Web.MetricsAllow) == 0 {
		c.Web.MetricsAllow = metrics.DefaultAllow
	}
	if c.ResumeTimeout <= 0 {
		c.ResumeTimeout = DefaultResumeTimeout
	}
	if c.SMAckEvery <= 0 {
		c.SMAckEvery = DefaultSMAckEvery
	}
	if c.SMAckAfter <= 0 {
		c.SMAckAfter = DefaultSMAckAfter
	}
	if c.SMAckTimeout <= 0 {
		c.SMAckTimeout = DefaultSMAckTimeout
	}
	if c.S2S.SetupTimeout <= 0 {
		c.S2S.SetupTimeout = s2sSetupTimeout
	}
	if c.S2S.IdleTimeout <= 0 {
		c.S2S.IdleTimeout = s2sIdleTimeout
	}
	if c.S2S.BackoffMin <= 0 {
		c.S2S.BackoffMin = s2sBackoffMin
	}
	if c.S2S.BackoffMax < c.S2S.BackoffMin {
		c.S2S.BackoffMax = max(s2sBackoffMax, c.S2S.BackoffMin)
	}
}

// fdReserve is the part of the descriptor limit kept for the database, the admin socket,
// outbound connections and the accept loops' reserve.
const fdReserve = 512

func defaultMaxConnections() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2*fdReserve {
		return 1 << 20
	}
	return int(lim.Cur) - fdReserve
}

// Server is the engine: listeners and connections.
type Server struct {
	cfg   atomic.Pointer[Config]
	feats sync.Map // featKey -> []byte: the forms of <stream:features> (c2s.go)
	// invited holds the XEP-0445 invitation each connection flagged fInvited presented
	// (*conn -> invites.Invite): only the few connections that register pay for it.
	// redeeming serializes the registrations that spend one, so that two streams holding
	// the same token cannot both make an account with it.
	invited sync.Map
	// captchas holds the XEP-0158 challenge each connection registering under
	// Config.RegistrationCaptcha was given (captchaState); captchaConns counts its
	// entries, so that closing connections skip it when it is empty.
	captchas     sync.Map
	captchaConns atomic.Int64
	// compCharges holds the router.Charge of each connected component (*conn): a
	// component (a gateway relaying another network's flood) slows down when its
	// stanzas pile up in recipients' shards, as a federated peer does.
	compCharges sync.Map
	redeeming   sync.Mutex
	// saslFails counts the failed authentications of each stream that had one (uint8);
	// saslFailConns its entries, so that closing connections skip it when it is empty.
	saslFails     sync.Map
	saslFailConns atomic.Int64
	// ackWaits holds, for each stream-management state with a Drained call waiting for the
	// client's acknowledgement, those calls (*ackWaiters); ackWaitN counts its entries,
	// so that acks skip it when it is empty.
	ackWaits sync.Map
	ackWaitN atomic.Int64

	featCfg atomic.Pointer[Config]
	tickets ticketKeys
	hosts   atomic.Pointer[hostTable]
	log     zerolog.Logger
	rt      *router.Router
	st      store.Store
	// lset is the listeners: those that accept, and those a reload took away that still
	// hold connections. lsMu serializes its changes (reload, pruning, shutdown).
	lset     atomic.Pointer[listenerSet]
	lsMu     sync.Mutex
	lsClosed bool // set under lsMu by closeAcceptors: no listener opens after it
	// reloadMu serializes reloads: a listener plan is made against the set it commits to.
	reloadMu sync.Mutex
	throttle *throttle
	guard    *accountGuard
	scanners sync.Pool
	stopping atomic.Bool

	react   *reactor
	sockDir string
	unauth  perAddr
	sms     *smTable // resumable XEP-0198 sessions by id
	// coalesce holds the outboxes whose flush waits for the next tick (coalesce.go).
	coalesce coalescer
	bosh     boshRegistry
	// links serves edges' links (nil without Config.Link); edge is set on an edge server
	// (NewEdge), which relays its connections to a core instead of serving them.
	links *linkServer
	edge  *edgeLink
	fast  *fast.Tokens
	s2s   *s2sOut
	// tlsFailLog says why TLS handshakes fail, rate-limited.
	tlsFailLog rateLog
	// metrics is what GET /metrics on the web listeners gathers.
	metrics *prometheus.Registry

	open        atomic.Int64
	pending     atomic.Int64 // accepted, not yet opened on a loop
	acceptErrs  atomic.Int64
	refused     atomic.Int64
	established atomic.Int64
	tlsConns    atomic.Int64
	authOK      atomic.Int64
	authFail    atomic.Int64
	counts      loginCounters

	// Cold fields go last, so that adding one leaves the hot ones above where they were
	// on their cache lines.
	// guests holds the live guest accounts (bare JID -> *atomic.Bool, set once bound; anon.go);
	// guestsN counts them.
	guests  sync.Map
	guestsN atomic.Int64
	// hostCounts are the account counts of hosts with a bound on them (vhosts.go).
	hostCounts hostCounts
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
	if err := s.apply(&cfg); err != nil {
		return nil, err
	}
	s.scanners.New = func() any { return xmlstream.NewScanner() }
	s.throttle = newThrottle()
	s.guard = newAccountGuard()
	s.sms = newSMTable()
	key := cfg.FastKey
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key)
	}
	var err error
	if s.fast, err = fast.New(cfg.Store.Table(fastTable), key, cfg.FastTTL); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	ls, err := s.newListeners(&cfg, cfg.Listeners)
	if err != nil {
		return nil, err
	}
	s.lset.Store(&listenerSet{active: ls})
	s.setComponents(&cfg)
	if len(cfg.Link.Listen) > 0 {
		if len(cfg.Link.Secret) < 16 {
			return nil, errors.New("engine: the link secret must have at least 16 bytes")
		}
		s.links = newLinkServer(s)
	}
	s.metrics = metrics.NewRegistry(s.counters)
	s.rt.SetEphemeralGone(s.guestGone)
	s.s2s = newS2SOut(s, cfg.S2S)
	if federates(&cfg) {
		s.rt.SetRemote(s.s2s)
	}
	s.rt.SetAccounts(s) // a module's password change or removal may need the site's program
	return s, nil
}

func (s *Server) apply(cfg *Config) error {
	hosts, err := s.hosts.Load().with(cfg.Domains)
	if err != nil {
		return err
	}
	if cfg.TLS != nil {
		// A browser offers h2 and http/1.1; with only xmpp-client on offer crypto/tls
		// would refuse the handshake.
		web := cfg.TLS.Clone()
		web.NextProtos = []string{"http/1.1"}
		s2s := cfg.TLS.Clone()
		s2s.NextProtos = []string{"xmpp-server"}
		s2s.ClientAuth = tls.RequestClientCert
		cfg.loopTLS, cfg.webTLS, cfg.s2sTLS = tlsconn.Prepare(cfg.TLS), tlsconn.Prepare(web), tlsconn.Prepare(s2s)
		s.tickets.rotate(time.Now())
		s.tickets.install(cfg.loopTLS, cfg.webTLS, cfg.s2sTLS)
	}
	s.hosts.Store(hosts)
	s.cfg.Store(cfg)
	if s.rt != nil {
		s.rt.SetIsolated(cfg.isolatedHosts())
	}
	return nil
}

// Reload swaps domains, TLS, limits, flags and listeners. Existing connections keep their
// negotiated state and see new limits at their next stream. A listener added is opened, one
// taken away stops accepting while its connections go on, and one unchanged keeps its
// socket; a listener that cannot be opened fails the reload before anything changes.
// Streams for a domain no longer served that have not bound a session yet, and inbound
// server-to-server streams for it, are closed with host-gone (RFC 6120 §4.9.3.6); the
// router closes the bound ones (router.SetDomains).
// ListenerError is Reload's error when the new configuration is in force but some of its
// listeners could not be opened (a port in use, an address this host does not have):
// those that could not are not serving, and the old ones they replace are closed.
type ListenerError struct{ Err error }

func (e *ListenerError) Error() string { return "listeners not opened: " + e.Err.Error() }
func (e *ListenerError) Unwrap() error { return e.Err }

func (s *Server) Reload(cfg Config) error {
	if len(cfg.Domains) == 0 {
		return errors.New("engine: no domains")
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.cfg.Load()
	was := s.hosts.Load()
	cfg.defaults()
	cfg.Store, cfg.Router = old.Store, old.Router
	lerr, err := s.swap(&cfg)
	if err != nil {
		return err
	}
	s.setComponents(&cfg)
	s.dropComponents(old, &cfg)
	switch on := federates(&cfg); {
	case on && !federates(old):
		s.rt.SetRemote(s.s2s)
	case !on && federates(old):
		// Federation turned off: nothing more goes out, and every stream to or from
		// another server ends.
		s.rt.SetRemote(nil)
		s.s2s.enforce(func(string, string) bool { return false })
	default:
		s.s2s.enforce(func(local, remote string) bool {
			return cfg.S2S.allowed(remote) && (local == "" || s.hostFederates(local))
		})
	}
	now := s.hosts.Load()
	for h := range was.local {
		if !now.local[h] {
			s.closeHost(was.index[h])
		}
	}
	if lerr != nil {
		return &ListenerError{Err: lerr}
	}
	return nil
}

// ReloadEdge is an edge's Reload: certificates, limits and listeners (added ones open,
// removed ones stop accepting and keep their connections). Domains are the core's.
func (s *Server) ReloadEdge(cfg Config) error {
	if s.edge == nil {
		return errors.New("engine: not an edge")
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if len(cfg.Domains) == 0 {
		cfg.Domains = s.config().Domains
	}
	cfg.defaults()
	late, err := s.swap(&cfg)
	if err == nil && late != nil {
		return &ListenerError{Err: late}
	}
	return errors.Join(err, late)
}

// closeHost closes, with host-gone, the streams for the host at index i that the router
// does not own: client streams before their session is bound, and inbound
// server-to-server streams. conn.domain is the loop's, so each check runs on the loop.
func (s *Server) closeHost(i uint16) {
	ls := s.allListeners()
	if s.links != nil { // streams its edges relay: their conns hang off pseudo-listeners
		ls = append(slices.Clip(ls), s.links.listeners()...)
	}
	for _, l := range ls {
		if _, ok := l.kind.(*component); ok {
			continue
		}
		_, s2s := l.kind.(*s2sIn)
		for _, c := range l.snapshot() {
			st := c.state.Load()
			if st == stHeader || st == stEstablished && !s2s {
				continue
			}
			c.gc.Wake(func(_ gnet.Conn, err error) error {
				if err == nil && c.domain == i && !c.closing.Load() {
					c.fail(stanza.HostGone, "")
				}
				return nil
			})
		}
	}
}

// hostTable interns the virtual hosts a stream can be for. A conn keeps a 2-byte index
// into names (conn.domain) rather than a string, and an index must keep naming the same
// host while hosts are added and removed at runtime, so names only grows; local says which
// are served now.
type hostTable struct {
	names []string
	index map[string]uint16
	local map[string]bool
}

// with returns a table serving domains; t may be nil.
func (t *hostTable) with(domains []string) (*hostTable, error) {
	n := &hostTable{index: map[string]uint16{}, local: make(map[string]bool, len(domains))}
	if t != nil {
		n.names = t.names
		for k, v := range t.index {
			n.index[k] = v
		}
	}
	for _, d := range domains {
		if _, ok := n.index[d]; !ok {
			if len(n.names) > 1<<16-1 {
				return nil, errors.New("engine: too many virtual hosts since the start; restart to serve more")
			}
			n.index[d] = uint16(len(n.names))
			n.names = append(n.names[:len(n.names):len(n.names)], d)
		}
		n.local[d] = true
	}
	return n, nil
}

func (s *Server) setComponents(cfg *Config) {
	ds := make([]string, 0, len(cfg.Components))
	privs := map[string]module.Privileges{}
	for _, c := range cfg.Components {
		ds = append(ds, c.Domain)
		if !c.Privileges.Zero() {
			privs[c.Domain] = c.Privileges
		}
	}
	s.rt.SetComponents(ds)
	s.rt.SetPrivileges(privs)
}

func (s *Server) config() *Config { return s.cfg.Load() }

// federates says whether cfg talks to other servers: federation is on, static routes
// name some, or a listener takes their streams.
func federates(cfg *Config) bool {
	if len(cfg.S2S.Hosts) > 0 || cfg.S2S.Enabled {
		return true
	}
	for _, l := range cfg.Listeners {
		if l.Kind == KindS2S {
			return true
		}
	}
	return false
}

// Config returns a copy of the running configuration (to change and pass to Reload).
func (s *Server) Config() Config { return *s.config() }

func (s *Server) isLocal(d string) bool { return s.hosts.Load().local[d] }

// servesRemote reports whether a remote server may address d here: a virtual host, a
// module's service (conference.<host>) or an XEP-0114 component (a push app server that
// phones on other servers register, a gateway).
func (s *Server) servesRemote(d string) bool {
	return s.isLocal(d) || s.rt.IsService(d) || s.rt.IsComponent(d)
}

// remoteHost is the virtual host whose s2s streams carry d, a served domain: the host itself,
// a service's host, or for a component the host it is a subdomain of (else the first).
func (s *Server) remoteHost(d string) (string, bool) {
	if s.isLocal(d) {
		return d, true
	}
	if host, ok := s.rt.ServiceHost(d); ok {
		if host == "" {
			host = s.config().Domains[0]
		}
		return host, true
	}
	if !s.rt.IsComponent(d) {
		return "", false
	}
	for i := strings.IndexByte(d, '.'); i >= 0; i = strings.IndexByte(d, '.') {
		d = d[i+1:]
		if s.isLocal(d) {
			return d, true
		}
	}
	return s.config().Domains[0], true
}

// hostIndex is the conn.domain of host, and whether host is served.
func (s *Server) hostIndex(host string) (uint16, bool) {
	t := s.hosts.Load()
	i, ok := t.index[host]
	return i, ok && t.local[host]
}

// Start opens every listener and the event loops, and returns once they accept
// connections.
func (s *Server) Start() error {
	if s.st != nil {
		s.sweepGuests()
	}
	if err := s.startLoops(); err != nil {
		return err
	}
	if e := s.edge; e != nil {
		// Listening starts after the first attempt to link, so that a core that is up
		// serves the first clients; one that is not is retried while clients are refused.
		go e.run()
		<-e.tried
	}
	for _, l := range s.listeners() {
		if err := l.bind(); err != nil {
			s.stopListeners()
			return err
		}
		l.serve()
	}
	if s.links != nil {
		if err := s.links.start(s.config().Link); err != nil {
			s.stopListeners()
			return err
		}
	}
	return nil
}

// startLoops runs the gnet event loops. Connections come to them from our own accept loops
// (listen.go), never from gnet's acceptor: gnet stops the whole engine, and every
// connection on it, on the first accept error it does not expect (EMFILE), and a server
// must shed load there instead. gnet still needs one listening address of its own; it is a
// Unix socket in a private directory that nobody else can reach.
func (s *Server) startLoops() error {
	cfg := s.config()
	dir, err := os.MkdirTemp("", "vireo-loops-")
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	s.sockDir = dir
	s.react = &reactor{srv: s, ready: make(chan struct{}), exited: make(chan error, 1)}
	go func() {
		err := gnet.Run(s.react, "unix://"+filepath.Join(dir, "loops.sock"),
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(cfg.Loops),
			gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithTicker(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLogger{s.log}),
			gnet.WithReadBufferCap(64<<10),
		)
		s.react.exited <- err
	}()
	select {
	case <-s.react.ready:
		// The loops hold the bound socket; its name is needed by nobody from here on.
		// Removing it now leaves nothing in the temporary directory for a process that
		// is killed without a shutdown (gnet's own removal at stop finds nothing).
		os.RemoveAll(dir)
		return nil
	case err := <-s.react.exited:
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("engine: event loops: %w", err)
	case <-time.After(10 * time.Second):
		return errors.New("engine: event loops did not start")
	}
}

// Addr returns the bound address of the first listener named name.
func (s *Server) Addr(name string) net.Addr {
	if name == "link" && s.links != nil {
		return s.links.addr()
	}
	for _, l := range s.listeners() {
		if l.cfg.Name == name && l.addr != nil {
			return l.addr
		}
	}
	return nil
}

// Shutdown stops accepting, lets the modules say goodbye while every stream is still open
// (router.Stopping: XEP-0045 status 332 to the occupants of every room, for at most
// router.StopWait, ctx permitting), sends <system-shutdown/> to every stream, waits for
// them to close (or ctx), and stops the event loops.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.stopping.CompareAndSwap(false, true) {
		return nil
	}
	s.closeAcceptors()
	deadline := time.Now().Add(router.StopWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if s.edge != nil {
		// The core says goodbye to the streams; here only the sockets are closed, once
		// the link is down.
		close(s.edge.stop)
		<-s.edge.done
		s.stopListeners()
		return nil
	}
	s.rt.Stopping(deadline)
	s.s2s.close()
	for _, l := range s.allListeners() {
		for _, c := range l.snapshot() {
			c.Close(stanza.SystemShutdown)
		}
	}
	if s.links != nil {
		s.links.closeStreams()
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
	if s.links != nil {
		s.links.stop()
	}
	return nil
}

func (s *Server) closeAcceptors() {
	s.lsMu.Lock()
	defer s.lsMu.Unlock()
	s.lsClosed = true
	for _, l := range s.listeners() {
		l.stopAccepting()
	}
}

func (s *Server) stopListeners() {
	s.closeAcceptors()
	if s.react != nil && s.react.eng.Validate() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.react.eng.Stop(ctx)
		cancel()
	}
	if s.sockDir != "" {
		os.RemoveAll(s.sockDir)
	}
}

// Stats are connection counters.
type Stats struct {
	Open         int64 `json:"open"`
	AcceptErrors int64 `json:"accept_errors"` // failed accepts (EMFILE ...), shed and survived
	Refused      int64 `json:"refused"`       // connections closed at once: over a limit
	Established  int64 `json:"established"`
	TLS          int64 `json:"tls"`
	AuthOK       int64 `json:"auth_ok"`
	AuthFail     int64 `json:"auth_fail"`
	S2SIn        int64 `json:"s2s_in"`  // authenticated inbound server-to-server streams
	S2SOut       int64 `json:"s2s_out"` // established outbound server-to-server streams
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{Open: s.open.Load(), AcceptErrors: s.acceptErrs.Load(), Refused: s.refused.Load(), Established: s.established.Load(), TLS: s.tlsConns.Load(),
		AuthOK: s.authOK.Load(), AuthFail: s.authFail.Load(), S2SIn: s.s2s.countIn(), S2SOut: s.s2s.countOut()}
}

// counters snapshots the engine's and the router's counters for a metrics scrape.
func (s *Server) counters() metrics.Counters {
	e, r := s.Stats(), s.rt.Stats()
	m := metrics.Counters{ConnsOpen: e.Open, Established: e.Established, TLS: e.TLS, AuthOK: e.AuthOK,
		AuthFail: e.AuthFail, Refused: e.Refused, AcceptErrors: e.AcceptErrors, Online: r.Online,
		Detached: r.Detached, Guests: s.guestsN.Load(), Routed: r.Routed, Dropped: r.Dropped, Shaped: r.Shaped, Queued: int64(r.Queued), Shards: int64(r.Shards)}
	s.metricsExtra(&m)
	if s.links != nil {
		m.Links = true
		m.EdgeLinks, m.EdgeChannels = s.links.count()
	}
	return m
}

// listener is one listening address: our accept loop (listen.go) and the registry of its
// connections (for shutdown and the timeout sweep).
type listener struct {
	srv  *Server
	cfg  Listener
	kind streamKind
	addr *net.TCPAddr
	ln   *net.TCPListener
	done chan struct{} // closed when the accept loop has returned
	// inflight counts connections handed to gnet whose OnOpen has not run: a retired
	// listener is kept until they have landed in conns.
	inflight atomic.Int32

	conns connSet
	// sweepBuf is one shard of conns at a time, kept between sweeps (only the tick
	// goroutine sweeps).
	sweepBuf []*conn
	sweeps   uint64 // sweeps run, for the cold sets' turns
}

func (l *listener) snapshot() []*conn { return l.conns.snapshot() }

// reactor is the gnet event handler of the server's event loops; a connection's listener
// travels to OnOpen as its initial context.
type reactor struct {
	gnet.BuiltinEventEngine
	srv       *Server
	eng       gnet.Engine
	ready     chan struct{}
	readyOnce sync.Once
	exited    chan error
}

// OnBoot implements gnet.EventHandler. gnet calls it before it registers its event loops,
// so readiness is signalled by the first tick, which comes after.
func (r *reactor) OnBoot(eng gnet.Engine) gnet.Action {
	r.eng = eng
	return gnet.None
}

// OnOpen implements gnet.EventHandler.
func (r *reactor) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := r.srv
	l, ok := gc.Context().(*listener)
	if !ok {
		return nil, gnet.Close // a connection to the loops' own socket: nobody should make one
	}
	s.pending.Add(-1)
	l.inflight.Add(-1)
	c := newConn(l, gc)
	c.set(fUnauth) // counted per address at accept, until it authenticates or closes
	if l.cfg.WebSocket && s.edge == nil {
		c.ws = &wsState{} // before the sweep can see the conn
	}
	gc.SetContext(c)
	l.conns.add(c)
	s.open.Add(1)
	if s.stopping.Load() {
		return nil, gnet.Close
	}
	if s.edge != nil && !s.edge.open(c) {
		s.refuse(refusedNoCore)
		return nil, gnet.Close
	}
	if e := s.log.Debug(); e.Enabled() {
		e.Str("listener", l.cfg.Name).Str("remote", c.ip()).Msg("open")
	}
	if l.cfg.DirectTLS {
		c.startTLS()
	}
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (r *reactor) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.None
	}
	c.l.conns.remove(c)
	c.onClose(err)
	return gnet.None
}

// OnTraffic implements gnet.EventHandler.
func (r *reactor) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.Close
	}
	c.onTraffic()
	return gnet.None
}

// OnTick sweeps every listener's connections for timeouts.
func (r *reactor) OnTick() (time.Duration, gnet.Action) {
	r.readyOnce.Do(func() { close(r.ready) })
	now := time.Now()
	for _, l := range r.srv.allListeners() {
		l.sweep(now)
	}
	r.srv.pruneListeners()
	if r.srv.links != nil {
		for _, l := range r.srv.links.listeners() {
			l.sweep(now)
		}
	}
	r.srv.boshSweep(now)
	r.srv.sms.expire(sinceEpoch(now))
	if r.srv.tickets.rotate(now) {
		cfg := r.srv.config()
		r.srv.tickets.install(cfg.loopTLS, cfg.webTLS, cfg.s2sTLS)
	}
	r.srv.throttle.gc(now)
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
