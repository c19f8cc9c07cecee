package upload

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// NS is the XEP-0363 namespace.
const NS = "urn:xmpp:http:upload:0"

// Tunables: defaults of [modules.upload]; each can be changed there.
const (
	// DefaultSubdomain names the service of each virtual host: upload.<host>.
	DefaultSubdomain = "upload"
	// DefaultListen is the HTTPS listener (Prosody's mod_http_upload uses the same port).
	DefaultListen = ":5281"
	// DefaultMaxFileSize is the largest file (100 MiB): enough for phone videos, small
	// enough that one upload does not fill a small disk.
	DefaultMaxFileSize = 100 << 20
	// DefaultQuota bounds the bytes one user keeps stored (1 GiB).
	DefaultQuota = 1 << 30
	// DefaultSlotTTL is how long a slot may wait for its PUT: clients upload at once.
	DefaultSlotTTL = 5 * time.Minute
	// DefaultRetention is how long a file is served: chat history older than that rarely
	// gets its attachments opened, and disks are finite.
	DefaultRetention = 30 * 24 * time.Hour
	// maxPendingPerUser bounds one user's unused slots, which hold quota and memory.
	maxPendingPerUser = 32
	// sweepEvery is how often expired files and stale directories are looked for.
	sweepEvery = time.Hour
	// minUploadRate is the slowest PUT body accepted (bytes/s) on top of uploadGrace: a
	// client that trickles bytes would otherwise hold a slot, a goroutine and a file.
	minUploadRate = 16 << 10
	uploadGrace   = time.Minute
)

func init() { module.Register(new(Mod)) }

// Config is [modules.upload].
type Config struct {
	// Subdomain names the service: <subdomain>.<virtual host> for each host.
	Subdomain string `toml:"subdomain"`
	// Name is the service's disco identity name.
	Name string `toml:"name"`
	// Listen is the HTTPS listener's address.
	Listen string `toml:"listen"`
	// PublicURL is the base of the URLs handed out ("https://files.example.org"); empty:
	// https://<service domain>:<listen port>. A path in it ("/upload") is stripped from
	// requests, so a reverse proxy may keep or drop it.
	PublicURL string `toml:"public_url"`
	// MaxFileSize is the largest file in bytes; Quota the bytes one user may keep stored
	// (-1: no quota).
	MaxFileSize int64 `toml:"max_file_size"`
	Quota       int64 `toml:"quota"`
	// SlotTTL ("5m") is how long a slot waits for its PUT; Retention ("720h") how long a
	// file is kept, "0" for ever.
	SlotTTL   string `toml:"slot_ttl"`
	Retention string `toml:"retention"`
}

// SetDefaultListen sets the listener used when the config names none (test harnesses
// move it to a free loopback port).
func (c *Config) SetDefaultListen(addr string) {
	if c.Listen == "" {
		c.Listen = addr
	}
}

// Mod is the module: one upload service per virtual host, one HTTPS listener for all.
type Mod struct {
	cfg    Config                     // as at start: the listener, names and URL hold until a restart
	lim    atomic.Pointer[hostLimits] // the limits in force; a reload swaps them
	log    zerolog.Logger
	t      store.Table
	dir    string // data_dir/upload
	key    []byte
	prefix string // path of the public URL, stripped from requests
	now    func() time.Time
	srv    *http.Server
	ln     net.Listener
	stop   chan struct{}
	done   chan struct{}
	pub    *url.URL // public_url, nil without one
	// active counts HTTP handlers running, so Cleanup returns only when none can still
	// write to the store (which closes after the router).
	active sync.WaitGroup

	mu struct {
		sync.Mutex
		slots    map[string]*slot  // by id, granted and not yet used
		inflight map[string]string // owners of the ids whose PUT is being written
		used     map[string]int64  // stored bytes per owner
		reserved map[string]int64  // bytes of pending and in-flight slots per owner
		pending  map[string]int    // pending slots per owner
		removed  map[string]bool   // removed accounts whose files the sweeper deletes next
		// gone are the removed accounts whose files are not all deleted yet (each on
		// record in the gone table until they are): a PUT of theirs still in flight
		// deletes what it wrote.
		gone map[string]bool
	}
	gone store.Table   // removed accounts whose files are to go: survives a crash
	wake chan struct{} // the sweeper has removed accounts' files to delete
}

var (
	_ module.Provisioner = (*Mod)(nil)
	_ module.Cleaner     = (*Mod)(nil)
	_ http.Handler       = (*Mod)(nil)
)

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "upload", XEP: 363, New: func() module.Module { return new(Mod) }, PerHost: true}
}

// limits are the settings that change at a reload.
type limits struct {
	maxFileSize, quota int64
	slotTTL            time.Duration
	retention          time.Duration // 0: for ever
	info               []byte        // every service's disco#info: it names max-file-size
}

// service is upload.<host>.
type service struct {
	m      *Mod
	host   string // the virtual host whose users may ask
	domain string
	base   string // URL base without trailing slash
}

// Provision reads [modules.upload], loads the key and the per-user usage, opens the
// listener and claims one service domain per virtual host. Without a data directory or TLS
// configuration (a router run alone in tests) the module stays off.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	if err := module.Configure(r, m); err != nil {
		return err
	}
	if r.DataDir() == "" || r.TLSConfig() == nil {
		m.log.Debug().Msg("upload: no data directory or TLS configuration; service off")
		return nil
	}
	if err := m.open(r.DataDir(), r.Table("upload"), r.Table("uploadgone")); err != nil {
		return err
	}
	tc := r.TLSConfig().Clone()
	tc.NextProtos = nil // http.Server adds h2 and http/1.1
	ln, err := net.Listen("tcp", m.cfg.Listen)
	if err != nil {
		return fmt.Errorf("upload: listen %s: %w", m.cfg.Listen, err)
	}
	m.ln = ln
	var pub *url.URL
	if m.cfg.PublicURL != "" {
		pub, _ = url.Parse(m.cfg.PublicURL) // checked in normalize
		m.prefix = strings.TrimSuffix(pub.Path, "/")
	}
	m.pub = pub
	for _, d := range r.Domains() {
		svcs, err := m.AddHost(d)
		if err != nil {
			ln.Close()
			return err
		}
		r.Service(svcs[0])
	}
	m.srv = &http.Server{
		Handler:           m,
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          stdlog.New(debugWriter{m.log}, "", 0),
	}
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go func() {
		if err := m.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error().Err(err).Msg("upload: HTTPS listener stopped")
		}
	}()
	m.wake = make(chan struct{}, 1)
	r.OnRemoved(m.removed)
	go m.sweeper()
	m.log.Info().Str("listen", ln.Addr().String()).Msg("upload: serving")
	return nil
}

// removed has the files of a removed account deleted (module.Registrar.OnRemoved): what
// a user shared goes with the account, as its archive does. The sweeper deletes them, a
// whole batch of removals in one pass over the records.
func (m *Mod) removed(rm module.Removal) {
	owner := rm.User.String()
	// On record first: the removal is forgotten once this returns, and a crash before
	// the sweeper ran would leave the files served for good.
	if err := m.gone.Set([]byte(owner), nil); err != nil && module.LogStoreError(err) {
		m.log.Error().Err(err).Str("user", owner).Msg("upload: note a removed account")
	}
	m.mu.Lock()
	for id, sl := range m.mu.slots {
		if sl.owner == owner {
			m.dropSlotLocked(id, sl) // no PUT after the account went
		}
	}
	if m.mu.removed == nil {
		m.mu.removed = map[string]bool{}
	}
	m.mu.removed[owner] = true
	m.mu.gone[owner] = true
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: max_file_size, quota, slot_ttl and
// retention change at a reload (a shorter retention expires files at the next sweep);
// the listener, subdomain, name and public_url at a restart. A host's table sets the
// four limits for its users (their slots on upload.<host>, and their files' retention).
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	var all Config
	set, err := module.DeriveSettings(rc, func(host string, cfg *Config) (*limits, error) {
		l, err := cfg.limits()
		switch {
		case err != nil:
			return nil, err
		case host == "":
			all = *cfg
		case cfg.Subdomain != all.Subdomain || cfg.Name != all.Name || cfg.Listen != all.Listen || cfg.PublicURL != all.PublicURL:
			return nil, errors.New("listen, subdomain, name and public_url are server-wide: set them in [modules.upload]")
		}
		return l, nil
	})
	if err != nil {
		return nil, err
	}
	return func() {
		if m.lim.Load() == nil {
			m.cfg = all
		} else if all.Subdomain != m.cfg.Subdomain || all.Name != m.cfg.Name || all.Listen != m.cfg.Listen || all.PublicURL != m.cfg.PublicURL {
			m.log.Warn().Msg("upload: listen, subdomain, name and public_url change at a restart; applying the rest")
		}
		hl := &hostLimits{HostSettings: set}
		for _, l := range append([]*limits{set.All()}, hostsOf(set)...) {
			l.info = discoInfo(m.cfg.Name, l.maxFileSize)
			hl.maxSlotTTL = max(hl.maxSlotTTL, l.slotTTL)
		}
		m.lim.Store(hl)
	}, nil
}

// hostLimits are the limits in force: the server's, and those of hosts with their own.
type hostLimits struct {
	*module.HostSettings[limits]
	maxSlotTTL time.Duration // the longest slot_ttl of all
}

// hostsOf lists the limits of the hosts with their own.
func hostsOf(set *module.HostSettings[limits]) []*limits {
	var out []*limits
	for _, h := range set.Hosts() {
		out = append(out, set.For(h))
	}
	return out
}

// conf is the limits in force for the users of host (and its upload.<host>).
func (m *Mod) conf(host string) *limits { return m.lim.Load().For(host) }

// ownerHost is the host of a bare JID that owns files.
func ownerHost(owner string) string {
	_, h, _ := strings.Cut(owner, "@")
	return h
}

var _ module.HostWatcher = (*Mod)(nil)

// AddHost implements module.HostWatcher: upload.<host>, at provisioning and for a host
// added at runtime. Nothing when the module is off (no listener).
func (m *Mod) AddHost(host string) ([]module.Service, error) {
	if m.ln == nil {
		return nil, nil
	}
	dom, err := jid.PrepareDomain(m.cfg.Subdomain + "." + host)
	if err != nil {
		return nil, fmt.Errorf("upload: subdomain %q: %w", m.cfg.Subdomain, err)
	}
	s := &service{m: m, host: host, domain: dom}
	if m.pub != nil {
		s.base = strings.TrimSuffix(m.pub.String(), "/")
	} else {
		s.base = "https://" + dom
		if _, port, _ := net.SplitHostPort(m.ln.Addr().String()); port != "443" {
			s.base += ":" + port
		}
	}
	return []module.Service{{Domain: dom, Name: m.cfg.Name, Handler: s.handle, Host: host}}, nil
}

// RemoveHost implements module.HostWatcher: the router drops the service, and the module
// keeps nothing per host. Stored files stay, and their download URLs keep working: they
// name no host the HTTPS listener checks.
func (m *Mod) RemoveHost(string) {}

// open prepares the file area, the key and the usage counts: everything but the network.
func (m *Mod) open(dataDir string, t, gone store.Table) error {
	m.t, m.gone = t, gone
	m.dir = filepath.Join(dataDir, "upload")
	if m.now == nil {
		m.now = time.Now
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	key, err := loadKey(filepath.Join(dataDir, "upload.key"))
	if err != nil {
		return err
	}
	m.key = key
	m.mu.slots = map[string]*slot{}
	m.mu.inflight = map[string]string{}
	m.mu.gone = map[string]bool{}
	m.mu.removed = map[string]bool{}
	if err := gone.Scan(nil, func(k, _ []byte) bool {
		m.mu.gone[string(k)] = true // the sweeper's first pass deletes their files
		m.mu.removed[string(k)] = true
		return true
	}); err != nil {
		return fmt.Errorf("upload: read removed accounts: %w", err)
	}
	m.mu.used = map[string]int64{}
	m.mu.reserved = map[string]int64{}
	m.mu.pending = map[string]int{}
	err = t.Scan(nil, func(k, v []byte) bool {
		if rec, ok := parseRecord(v); ok {
			m.mu.used[rec.owner] += rec.size
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("upload: read file records: %w", err)
	}
	return nil
}

// Cleanup stops the listener (letting uploads in progress finish for a few seconds) and
// the sweeper.
func (m *Mod) Cleanup() error {
	if m.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if err != nil {
		// Uploads still running: cut them off; their handlers fail at the next read.
		m.srv.Close()
	}
	m.active.Wait()
	close(m.stop)
	<-m.done
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return err
}

// limits checks the whole table and returns its limits.
func (c *Config) limits() (*limits, error) {
	if err := c.normalize(); err != nil {
		return nil, err
	}
	l := &limits{maxFileSize: c.MaxFileSize, quota: c.Quota}
	var err error
	if l.slotTTL, err = parseDuration("slot_ttl", c.SlotTTL, DefaultSlotTTL); err != nil {
		return nil, err
	}
	if l.retention, err = parseDuration("retention", c.Retention, DefaultRetention); err != nil {
		return nil, err
	}
	return l, nil
}

func (c *Config) normalize() error {
	if c.Subdomain == "" {
		c.Subdomain = DefaultSubdomain
	}
	if c.Name == "" {
		c.Name = "HTTP File Upload"
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = DefaultMaxFileSize
	}
	if c.Quota == 0 {
		c.Quota = DefaultQuota
	}
	if c.Quota < -1 {
		return fmt.Errorf("quota %d: want bytes, or -1 for none", c.Quota)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("public_url %q: want an http(s) URL without query", c.PublicURL)
		}
	}
	return nil
}

func parseDuration(key, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a duration such as \"5m\"", key, s)
	}
	return d, nil
}

// debugWriter sends net/http's own log lines (TLS handshake errors from scanners) to
// debug level.
type debugWriter struct{ log zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// handle is the module.ServiceHandler of upload.<host>, on the service domain's shard.
func (s *service) handle(c module.Context, p *module.Packet) {
	q, ok := module.LeafService(c, p, s.m.conf(s.host).info)
	if !ok {
		return
	}
	if p.Type == "get" && string(q.NS()) == NS && string(q.Name()) == "request" {
		s.request(c, p, q)
		return
	}
	c.Error(p, stanza.New(stanza.ServiceUnavailable))
}

// request answers a slot request (XEP-0363 §4, errors §5).
func (s *service) request(c module.Context, p *module.Packet, q xmlstream.Element) {
	if p.From.Domain() != s.host || p.From.Local() == "" {
		e := stanza.New(stanza.Forbidden)
		e.Text = "only users of " + s.host + " may upload here"
		c.Error(p, e)
		return
	}
	// A guest (SASL ANONYMOUS) is a new name at every login, each with a quota of its
	// own, and its files would outlive it: the quota would bound nothing.
	if acc, err := c.Store().Accounts().Get(p.From.Bare().String()); err != nil || acc.Anonymous {
		e := stanza.New(stanza.Forbidden)
		e.Text = "guests may not upload files"
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			e = module.StoreError(err)
		}
		c.Error(p, e)
		return
	}
	req, serr := ParseRequest(q)
	if serr != nil {
		c.Error(p, serr)
		return
	}
	sl, serr := s.m.grant(p.From.Bare().String(), req, c.Now())
	if serr != nil {
		c.Error(p, serr)
		return
	}
	c.Reply(p, slotXML(s.base+"/"+sl.id+"/"+url.PathEscape(sl.name), token(s.m.key, sl)))
}

// grant checks the size and the owner's quota and records a new slot.
func (m *Mod) grant(owner string, req Request, now time.Time) (*slot, *stanza.Error) {
	lim := m.conf(ownerHost(owner))
	if req.Size > lim.maxFileSize {
		return nil, fileTooLarge(lim.maxFileSize)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.pending[owner] >= maxPendingPerUser {
		m.expireLocked(now)
		if m.mu.pending[owner] >= maxPendingPerUser {
			e := stanza.New(stanza.ResourceConstraintCond)
			e.Text = "too many unused upload slots; use or let them expire first"
			return nil, e
		}
	}
	if q := lim.quota; q >= 0 && m.mu.used[owner]+m.mu.reserved[owner]+req.Size > q {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Type = stanza.Wait
		e.Text = "upload quota of " + strconv.FormatInt(q, 10) + " bytes exceeded; older files expire with time"
		return nil, e
	}
	sl := &slot{id: newSlotID(), name: req.Filename, ctype: req.ContentType, owner: owner,
		size: req.Size, expires: now.Add(lim.slotTTL)}
	m.mu.slots[sl.id] = sl
	m.mu.pending[owner]++
	m.mu.reserved[owner] += sl.size
	return sl, nil
}

// expireLocked drops the slots whose time is up, releasing what they reserved.
func (m *Mod) expireLocked(now time.Time) {
	for id, sl := range m.mu.slots {
		if !now.Before(sl.expires) {
			m.dropSlotLocked(id, sl)
		}
	}
}

// dropSlotLocked forgets a pending slot and its reservation.
func (m *Mod) dropSlotLocked(id string, sl *slot) {
	delete(m.mu.slots, id)
	m.mu.pending[sl.owner]--
	if m.mu.pending[sl.owner] <= 0 {
		delete(m.mu.pending, sl.owner)
	}
	m.releaseLocked(sl.owner, sl.size)
}

func (m *Mod) releaseLocked(owner string, n int64) {
	m.mu.reserved[owner] -= n
	if m.mu.reserved[owner] <= 0 {
		delete(m.mu.reserved, owner)
	}
}

// fileTooLarge is XEP-0363 §5's not-acceptable with the limit.
func fileTooLarge(max int64) *stanza.Error {
	e := stanza.New(stanza.NotAcceptable)
	e.Text = "file too large; the largest is " + strconv.FormatInt(max, 10) + " bytes"
	e.AppCondition = []byte("<file-too-large xmlns='" + NS + "'><max-file-size>" +
		strconv.FormatInt(max, 10) + "</max-file-size></file-too-large>")
	return e
}

// slotXML is the §4 answer: the same URL for PUT and GET, the token in a header.
func slotXML(u, auth string) []byte {
	var b xmlstream.Builder
	b.Start("slot").Attr("xmlns", NS)
	b.Start("put").Attr("url", u)
	b.Start("header").Attr("name", "Authorization").Text(auth).End()
	b.End()
	b.Start("get").Attr("url", u).End()
	b.End()
	return b.B
}

// discoInfo is a service's disco#info (XEP-0363 §2), with the XEP-0128 form that
// announces max-file-size.
func discoInfo(name string, maxFileSize int64) []byte {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoInfo)
	b.Start("identity").Attr("category", "store").Attr("type", "file").Attr("name", name).End()
	for _, f := range []string{ns.DiscoInfo, ns.DiscoItems, NS, ns.Ping} {
		b.Start("feature").Attr("var", f).End()
	}
	b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "result")
	b.Start("field").Attr("var", "FORM_TYPE").Attr("type", "hidden").Start("value").Text(NS).End().End()
	b.Start("field").Attr("var", "max-file-size").Start("value").Text(strconv.FormatInt(maxFileSize, 10)).End().End()
	b.End()
	b.End()
	return b.B
}
