package proxy65

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// NS is the XEP-0065 namespace.
const NS = "http://jabber.org/protocol/bytestreams"

// Defaults of [modules.proxy65]; each can be changed there.
const (
	DefaultSubdomain = "proxy"
	// DefaultListen is the SOCKS5 listener; 7777 is ejabberd's port and the one
	// firewall guides for XMPP name.
	DefaultListen = ":7777"
	// DefaultMaxStreams bounds the streams relaying at once (two sockets each).
	DefaultMaxStreams = 1000
	// DefaultMaxStreamsPerUser bounds one account's active streams: a client sends a
	// handful of files at once, not hundreds.
	DefaultMaxStreamsPerUser = 10
	// DefaultMaxPending bounds the connections that negotiated SOCKS5 and wait for the
	// activation (XEP-0065 §10.3: session requests that are never activated).
	DefaultMaxPending = 1000
)

// Fixed bounds.
const (
	// pendingPerAddr bounds the waiting connections of one client address.
	pendingPerAddr = 32
	// pendingTTL is how long a connection waits for its activation: Jingle clients try
	// their candidates before they choose, which takes seconds, not minutes.
	pendingTTL = 2 * time.Minute
	// greetingTimeout bounds the SOCKS5 exchange before a connection waits.
	greetingTimeout = 10 * time.Second
	// relayIdle ends an active stream that moved no byte either way for as long: a
	// client that activated streams and left them open would otherwise hold slots of
	// max_streams (and four sockets' worth of kernel memory) until a restart.
	relayIdle = 10 * time.Minute
	// relayChunk is what one splice round moves at most before the stream's progress is
	// noted.
	relayChunk = 256 << 10
)

func init() { module.Register(new(Mod)) }

// Config is [modules.proxy65].
type Config struct {
	// Subdomain names the service: <subdomain>.<virtual host> for each host.
	Subdomain string `toml:"subdomain"`
	// Name is the service's disco identity name.
	Name string `toml:"name"`
	// Listen is the SOCKS5 listener's address.
	Listen string `toml:"listen"`
	// Address and Port are what <streamhost/> tells clients to connect to: by default
	// the service domain (which needs an A/AAAA record, as `vireo -dns` lists) and the
	// listener's port. Set them behind NAT or a port forward.
	Address string `toml:"address"`
	Port    int    `toml:"port"`
	// MaxStreams and MaxStreamsPerUser bound active streams; MaxPending the connections
	// waiting for activation.
	MaxStreams        int `toml:"max_streams"`
	MaxStreamsPerUser int `toml:"max_streams_per_user"`
	MaxPending        int `toml:"max_pending"`
	// MaxRate bounds each direction of a stream, bytes per second (0: no bound).
	MaxRate int64 `toml:"max_rate"`
	// AllowRemote lets users of other servers use the proxy (by default only this
	// server's users may: an open relay carries anyone's traffic on the operator's link).
	AllowRemote bool `toml:"allow_remote"`
}

// SetDefaultListen sets the listener used when the config names none (test harnesses
// move it to a free loopback port).
func (c *Config) SetDefaultListen(addr string) {
	if c.Listen == "" {
		c.Listen = addr
	}
}

func (c *Config) normalize() error {
	if c.Subdomain == "" {
		c.Subdomain = DefaultSubdomain
	}
	if c.Name == "" {
		c.Name = "SOCKS5 Bytestreams Proxy"
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d: want 1-65535, or 0 for the listener's", c.Port)
	}
	for _, v := range []*int{&c.MaxStreams, &c.MaxStreamsPerUser, &c.MaxPending} {
		if *v < 0 {
			return fmt.Errorf("limits must not be negative")
		}
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.MaxStreamsPerUser == 0 {
		c.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.MaxRate < 0 {
		return fmt.Errorf("max_rate %d: want bytes per second, or 0 for no bound", c.MaxRate)
	}
	return nil
}

// Mod is the module: one proxy service per virtual host, one SOCKS5 listener for all.
type Mod struct {
	cfg  Config                                      // as at start: the listener, subdomain and name hold until a restart
	set  atomic.Pointer[module.HostSettings[Config]] // the settings in force per host; a reload swaps them
	log  zerolog.Logger
	ln   net.Listener
	stop chan struct{}
	wg   sync.WaitGroup // the accept loop, greetings and relays
	idle time.Duration  // relayIdle, shorter in tests

	mu struct {
		sync.Mutex
		closed  bool
		pending map[string]*pair // by stream hash
		waiting int              // connections in pending pairs or greeting
		perAddr map[string]int   // of waiting, by client address
		active  map[*stream]struct{}
		perUser map[string]int // active streams by activating account (bare JID)
	}
}

var (
	_ module.Provisioner = (*Mod)(nil)
	_ module.Cleaner     = (*Mod)(nil)
	_ module.HostWatcher = (*Mod)(nil)
)

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "proxy65", XEP: 65, New: func() module.Module { return new(Mod) }, PerHost: true}
}

// service is proxy.<host>.
type service struct {
	m      *Mod
	host   string // the virtual host it serves
	domain string
	info   []byte // disco#info payload
	addr   atomic.Pointer[addrCache]
}

// addrCache is the bytestreams <query/> with a service's <streamhost/>, for the settings
// it was built from (address and port change at a reload).
type addrCache struct {
	set *Config
	b   []byte
}

// Provision reads [modules.proxy65], opens the listener and claims one service domain per
// virtual host. Without a data directory (a router run alone in tests) the module stays
// off, as the upload module does.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	if err := module.Configure(r, m); err != nil {
		return err
	}
	if r.DataDir() == "" {
		m.log.Debug().Msg("proxy65: no data directory; service off")
		return nil
	}
	ln, err := net.Listen("tcp", m.cfg.Listen)
	if err != nil {
		return fmt.Errorf("proxy65: listen %s: %w", m.cfg.Listen, err)
	}
	m.ln = ln
	m.mu.pending = map[string]*pair{}
	m.mu.perAddr = map[string]int{}
	m.mu.active = map[*stream]struct{}{}
	m.mu.perUser = map[string]int{}
	m.stop = make(chan struct{})
	for _, d := range r.Domains() {
		svcs, err := m.AddHost(d)
		if err != nil {
			ln.Close()
			return err
		}
		r.Service(svcs[0])
	}
	m.wg.Add(1)
	go m.acceptLoop()
	m.log.Info().Str("listen", ln.Addr().String()).Msg("proxy65: serving")
	return nil
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: the limits, max_rate (for streams activated
// after the reload), allow_remote, and the address and port the streamhost names change at
// a reload; the listener, subdomain and name at a restart. A virtual host's
// [vhosts."<host>".modules.proxy65] table gives proxy.<host> its own address, port,
// max_streams_per_user, max_rate and allow_remote; what the one listener shares
// (listen, max_streams, max_pending) and the service's name are server-wide.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	var all *Config
	set, err := module.DecodeSettings(rc, func(host string, cfg *Config) error {
		if err := cfg.normalize(); err != nil {
			return err
		}
		if host == "" {
			all = cfg
		} else if cfg.Subdomain != all.Subdomain || cfg.Name != all.Name || cfg.Listen != all.Listen ||
			cfg.MaxStreams != all.MaxStreams || cfg.MaxPending != all.MaxPending {
			return errors.New("subdomain, name, listen, max_streams and max_pending are server-wide: set them in [modules.proxy65]")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() {
		if m.set.Load() == nil {
			m.cfg = *all
		} else if all.Subdomain != m.cfg.Subdomain || all.Name != m.cfg.Name || all.Listen != m.cfg.Listen {
			m.log.Warn().Msg("proxy65: listen, subdomain and name change at a restart; applying the rest")
		}
		m.set.Store(set)
	}, nil
}

// conf is the server-wide settings in force: the listener's.
func (m *Mod) conf() *Config { return m.set.Load().All() }

// conf is the settings in force for the service: its host's.
func (s *service) conf() *Config { return s.m.set.Load().For(s.host) }

// AddHost implements module.HostWatcher: proxy.<host>, at provisioning and for a host
// added at runtime. Nothing when the module is off.
func (m *Mod) AddHost(host string) ([]module.Service, error) {
	if m.ln == nil {
		return nil, nil
	}
	dom, err := jid.PrepareDomain(m.cfg.Subdomain + "." + host)
	if err != nil {
		return nil, fmt.Errorf("proxy65: subdomain %q: %w", m.cfg.Subdomain, err)
	}
	s := &service{m: m, host: host, domain: dom, info: discoInfo(m.cfg.Name)}
	return []module.Service{{Domain: dom, Name: m.cfg.Name, Handler: s.handle, Host: host}}, nil
}

// RemoveHost implements module.HostWatcher: the router drops the service, and the module
// keeps nothing per host. Streams already relaying go on.
func (m *Mod) RemoveHost(string) {}

// Cleanup closes the listener and every connection, waiting or relaying, and waits for
// their goroutines.
func (m *Mod) Cleanup() error {
	if m.ln == nil {
		return nil
	}
	close(m.stop)
	err := m.ln.Close()
	m.mu.Lock()
	m.mu.closed = true
	for _, p := range m.mu.pending {
		m.dropAll(p)
	}
	for s := range m.mu.active {
		s.close()
	}
	m.mu.Unlock()
	m.wg.Wait()
	return err
}

// discoInfo is a service's disco#info payload.
func discoInfo(name string) []byte {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoInfo)
	b.Start("identity").Attr("category", "proxy").Attr("type", "bytestreams").Attr("name", name).End()
	for _, f := range []string{ns.DiscoInfo, ns.DiscoItems, NS, ns.Ping} {
		b.Start("feature").Attr("var", f).End()
	}
	b.End()
	return b.B
}

// streamhost is the bytestreams <query/> naming this service's address (XEP-0065 §4),
// built once per settings.
func (s *service) streamhost() []byte {
	set := s.conf()
	if c := s.addr.Load(); c != nil && c.set == set {
		return c.b
	}
	host := set.Address
	if host == "" {
		host = s.domain
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String() // RFC 5952 form for IPv6, as XEP-0065 asks
	}
	port := set.Port
	if port == 0 {
		port = s.m.ln.Addr().(*net.TCPAddr).Port
	}
	var a xmlstream.Builder
	a.Start("query").Attr("xmlns", NS)
	a.Start("streamhost").Attr("jid", s.domain).Attr("host", host).Attr("port", strconv.Itoa(port)).End()
	a.End()
	s.addr.Store(&addrCache{set: set, b: a.B})
	return a.B
}

// handle answers what is addressed to proxy.<host>.
func (s *service) handle(c module.Context, p *module.Packet) {
	q, ok := module.LeafService(c, p, s.info)
	if !ok {
		return
	}
	if string(q.NS()) != NS || string(q.Name()) != "query" {
		c.Error(p, stanza.New(stanza.ServiceUnavailable))
		return
	}
	if !s.allowed(c, p.From) {
		e := stanza.New(stanza.Forbidden)
		e.Text = "only users of this server may use its proxy"
		c.Error(p, e)
		return
	}
	if p.Type == "get" {
		c.Reply(p, s.streamhost())
		return
	}
	s.activate(c, p, q)
}

func (s *service) allowed(c module.Context, from jid.JID) bool {
	return s.conf().AllowRemote || from.Local() != "" && c.IsLocal(from.Domain())
}

// activate handles <query sid=…><activate>target</activate></query> (XEP-0065 §6.3.5).
func (s *service) activate(c module.Context, p *module.Packet, q xmlstream.Element) {
	sid, _ := q.AppendAttr(nil, "sid")
	act, ok := q.Child(NS, "activate")
	if !ok || len(sid) == 0 {
		e := stanza.New(stanza.BadRequest)
		e.Text = "an activation needs a sid and an <activate/> with the target's JID"
		c.Error(p, e)
		return
	}
	target, err := jid.ParseBytes(bytes.TrimSpace(act.AppendText(nil)))
	if err != nil {
		c.Error(p, stanza.New(stanza.JIDMalformed))
		return
	}
	// The hash uses the JIDs of the requester's and target's IQ exchange, which may be
	// bare (§6.3.2): the full 'from' first, then its bare form.
	hashes := [2]string{Hash(string(sid), p.From.String(), target.String()), Hash(string(sid), p.From.Bare().String(), target.String())}
	if serr := s.m.activate(hashes, p.From.Bare().String(), s.conf()); serr != nil {
		c.Error(p, serr)
		return
	}
	c.Reply(p, nil)
}

// Hash is a stream's DST.ADDR: SHA1(sid + requester + target), hexadecimal.
func Hash(sid, requester, target string) string {
	h := sha1.New()
	h.Write([]byte(sid))
	h.Write([]byte(requester))
	h.Write([]byte(target))
	return hex.EncodeToString(h.Sum(nil))
}
