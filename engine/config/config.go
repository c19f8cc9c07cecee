// Package config owns vireo.toml: its schema, defaults, validation and the commented file that
// a first start writes. It must not open sockets or storage; main and vireoctl turn a Config
// into running parts.
package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Duration is a time.Duration that decodes from TOML strings such as "30s".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is the whole vireo.toml.
type Config struct {
	Domains   []string `toml:"domains"`
	DataDir   string   `toml:"data_dir"`
	LogLevel  string   `toml:"log_level"`
	LogFormat string   `toml:"log_format"`

	C2S       C2S       `toml:"c2s"`
	Auth      Auth      `toml:"auth"`
	Web       Web       `toml:"web"`
	Component Component `toml:"component"`
	S2S       S2S       `toml:"s2s"`
	Link      Link      `toml:"link"`
	Edge      Edge      `toml:"edge"`
	TLS       TLS       `toml:"tls"`
	Admin     Admin     `toml:"admin"`
	Router    Router    `toml:"router"`
	Store     Store     `toml:"store"`
	Runtime   Runtime   `toml:"runtime"`

	// VHosts holds what single virtual hosts do differently from the server-wide settings
	// ([vhosts."chat.example.org"]). A table for a domain not in Domains is kept, unused,
	// for when the domain is added again (vireoctl vhost add).
	VHosts map[string]VHost `toml:"vhosts"`

	// Modules holds `disabled` plus one table per module ID, decoded lazily by the module.
	Modules map[string]toml.Primitive `toml:"modules"`

	md   toml.MetaData
	path string
	// modMD decodes the module tables WithModule took from another file's parse.
	modMD map[string]*toml.MetaData
}

// decodeMu serializes PrimitiveDecode: it records the keys it decoded in the metadata,
// which configurations share (WithModule), and a module table may be decoded while
// another is (the dashboard's requests read the administrators).
var decodeMu sync.Mutex

// primitiveDecode decodes the [modules] entry id, p, with the metadata it was parsed with.
func (c *Config) primitiveDecode(id string, p toml.Primitive, v any) error {
	decodeMu.Lock()
	defer decodeMu.Unlock()
	if md, ok := c.modMD[id]; ok {
		return md.PrimitiveDecode(p, v)
	}
	return c.md.PrimitiveDecode(p, v)
}

// WithModule returns a copy of c whose [modules.<id>] table is other's: the running
// configuration after one module's settings were edited in the file and applied alone,
// while whatever else the file now says waits for a reload.
func (c *Config) WithModule(id string, other *Config) *Config {
	cp := *c
	cp.Modules = maps.Clone(c.Modules)
	if cp.Modules == nil {
		cp.Modules = map[string]toml.Primitive{}
	}
	cp.modMD = maps.Clone(c.modMD)
	if cp.modMD == nil {
		cp.modMD = map[string]*toml.MetaData{}
	}
	md := other.md
	if o, ok := other.modMD[id]; ok {
		md = *o
	}
	cp.modMD[id] = &md
	if p, ok := other.Modules[id]; ok {
		cp.Modules[id] = p
	} else {
		delete(cp.Modules, id)
	}
	// The module's host tables come from the same file as its table.
	cp.VHosts = maps.Clone(c.VHosts)
	for h, v := range cp.VHosts {
		if _, ok := v.Modules[id]; ok {
			v.Modules = maps.Clone(v.Modules)
			delete(v.Modules, id)
			cp.VHosts[h] = v
		}
	}
	for h, ov := range other.VHosts {
		p, ok := ov.Modules[id]
		if !ok {
			continue
		}
		if cp.VHosts == nil {
			cp.VHosts = map[string]VHost{}
		}
		v := cp.VHosts[h]
		v.Modules = maps.Clone(v.Modules)
		if v.Modules == nil {
			v.Modules = map[string]toml.Primitive{}
		}
		v.Modules[id] = p
		cp.VHosts[h] = v
	}
	return &cp
}

// C2S configures client listeners and their limits.
type C2S struct {
	Listen       []string `toml:"listen"`
	TLSListen    []string `toml:"tls_listen"`
	RequireTLS   bool     `toml:"require_tls"`
	AllowPlain   bool     `toml:"allow_plain"`
	Registration bool     `toml:"registration"`
	// RegistrationCaptcha makes open in-band registration solve an XEP-0158 CAPTCHA;
	// invitations and trusted networks do without.
	RegistrationCaptcha bool `toml:"registration_captcha"`
	// ReservedNames are the user names in-band registration and invitations that let the
	// invitee choose refuse (RFC 2142's role addresses and the like), so that nobody
	// registers admin@ and speaks for the operator; vireoctl and invitations naming the
	// account still create them.
	ReservedNames []string `toml:"reserved_names"`
	// AnonymousDomains are the virtual hosts that take SASL ANONYMOUS logins (RFC 4505,
	// XEP-0175): guests get a random address there for as long as their session lasts.
	AnonymousDomains []string `toml:"anonymous_domains"`
	// AnonymousS2S lets guests reach other servers; off, they talk to this server's
	// users, rooms and services only (Prosody's disallow_s2s).
	AnonymousS2S   bool     `toml:"anonymous_s2s"`
	PreAuthTimeout Duration `toml:"pre_auth_timeout"`
	MaxStanza      int      `toml:"max_stanza"`
	MaxOutbound    int      `toml:"max_outbound"`
	// MaxRate shapes each client's stanzas after login: MaxBurst bytes at once, then
	// MaxRate bytes a second (0: off).
	MaxRate               int      `toml:"max_rate"`
	MaxBurst              int      `toml:"max_burst"`
	CoalesceWrites        Duration `toml:"coalesce_writes"`
	AuthFailuresPerMinute int      `toml:"auth_failures_per_minute"`
	RegistrationsPerMin   int      `toml:"registrations_per_minute"`
	TrustedNetworks       []string `toml:"trusted_networks"`
	MaxConnections        int      `toml:"max_connections"`
	MaxUnauthPerAddress   int      `toml:"max_unauth_per_address"`
	ResumeTimeout         Duration `toml:"resume_timeout"`
	SMAckEvery            int      `toml:"sm_ack_every"`
	SMAckAfter            Duration `toml:"sm_ack_after"`
	SMAckTimeout          Duration `toml:"sm_ack_timeout"`
	FastTokenTTL          Duration `toml:"fast_token_ttl"`
	PingInterval          Duration `toml:"ping_interval"`
	PingTimeout           Duration `toml:"ping_timeout"`
}

// Auth configures where passwords are checked besides the server's own accounts.
type Auth struct {
	// External is a program and its arguments that checks the passwords of accounts the
	// server holds no keys for, over ejabberd's extauth protocol (engine/extauth); the
	// first login it accepts creates the account here. Empty: local accounts only.
	External []string `toml:"external"`
	// ExternalProcesses copies of it run (default 1), each answering one check at a time.
	ExternalProcesses int `toml:"external_processes"`
	// ExternalTimeout bounds one answer (default 5s).
	ExternalTimeout Duration `toml:"external_timeout"`
	// ExternalCache is how long a successful check is remembered (default 0: never).
	ExternalCache Duration `toml:"external_cache"`
	// ExternalManage sends in-band registrations, password changes and account removals
	// to the program (tryregister, setpass, removeuser) instead of refusing them.
	ExternalManage bool `toml:"external_manage"`
}

// Web configures the web listeners: RFC 7395 XMPP over WebSocket and XEP-0156 host-meta.
type Web struct {
	Listen             []string `toml:"listen"`
	TLSListen          []string `toml:"tls_listen"`
	WebSocketPath      string   `toml:"websocket_path"`
	BOSHPath           string   `toml:"bosh_path"`
	PublicWebSocketURL string   `toml:"public_websocket_url"`
	// PublicURL is where browsers reach the web listener ("https://chat.example.org"),
	// for the pages the server links to (XEP-0401 invitation pages); empty: https:// each
	// domain at the port of the first tls_listen.
	PublicURL string   `toml:"public_url"`
	Origins   []string `toml:"origins"`
	// MetricsAllow lists the networks (CIDR) whose clients may scrape GET /metrics;
	// empty: loopback only.
	MetricsAllow []string `toml:"metrics_allow"`
	// APITokens are the bearer tokens of the HTTP API at /api/v1/ (engine/webapi), for a
	// site's own programs; none: no API. APIAllow lists the networks (CIDR) it answers;
	// empty: loopback only.
	APITokens []string `toml:"api_tokens"`
	APIAllow  []string `toml:"api_allow"`
	// TrustedProxies lists the reverse proxies (CIDR) whose Forwarded / X-Forwarded-*
	// headers name the client address, scheme and host; from anyone else they are ignored.
	// Unset: loopback, as Prosody has it: a proxy on the same host is the common case, and
	// without its word every client it forwards would count as this host, a trusted
	// network exempt from the registration limits. [] trusts none.
	TrustedProxies []string `toml:"trusted_proxies"`
	// ForwardedHeader names the headers trusted_proxies write: "x-forwarded-for" (the
	// default: X-Forwarded-For, -Proto, -Host) or "forwarded" (RFC 7239). The other
	// family is ignored, since a proxy passes a client's own headers on.
	ForwardedHeader string `toml:"forwarded_header"`
	// BOSHInactivity is how long a BOSH session lives without a request (XEP-0124
	// inactivity); BOSHWait the longest a request is held.
	BOSHInactivity Duration `toml:"bosh_inactivity"`
	BOSHWait       Duration `toml:"bosh_wait"`
	// Dashboard serves the administration console at /admin/ on these listeners; off,
	// /admin/ is an unknown path (404) like any other. A reload applies it.
	Dashboard bool `toml:"dashboard"`
}

// Bounds of the BOSH settings: a wait shorter than a few seconds turns long polling into
// polling, and one beyond two minutes outlasts what proxies and browsers keep an idle
// response open for; an inactivity below ten seconds ends the sessions of clients on a
// slow network between two requests, and one above an hour keeps closed tabs online.
const (
	MinBOSHWait       = 5 * time.Second
	MaxBOSHWait       = 120 * time.Second
	MinBOSHInactivity = 10 * time.Second
	MaxBOSHInactivity = time.Hour
)

// Link is the core's side of a split deployment: the listener edge processes connect to.
type Link struct {
	Listen []string `toml:"listen"`
	Secret string   `toml:"secret"`
	// TLS runs the link over TLS with this server's certificate (default true).
	TLS *bool `toml:"tls"`
	// FederateThroughEdges has the linked edges open this core's outbound federation
	// connections, so that the core needs no route to the internet. TLS runs from the
	// core to the peer through the edge.
	FederateThroughEdges bool `toml:"federate_through_edges"`
}

// UseTLS reports whether the link speaks TLS.
func (l Link) UseTLS() bool { return l.TLS == nil || *l.TLS }

// Edge makes this process an edge of a split deployment: its [c2s] and [web] listeners
// are relayed to the core at Core; it opens no database and serves no module.
type Edge struct {
	Core   string `toml:"core"`
	Secret string `toml:"secret"`
	// Name identifies this edge in the core's logs (default the host name).
	Name string `toml:"name"`
	// TLS dials the core with TLS (default true), checking its certificate against CAFile
	// (default the system roots) for ServerName (default the host of Core).
	TLS        *bool  `toml:"tls"`
	CAFile     string `toml:"ca_file"`
	ServerName string `toml:"server_name"`
	// MetricsListen, when set, serves the edge's Prometheus metrics at /metrics on this
	// address (its web listeners relay to the core, whose metrics they would show).
	MetricsListen string `toml:"metrics_listen"`
}

// UseTLS reports whether the link to the core speaks TLS.
func (e Edge) UseTLS() bool { return e.TLS == nil || *e.TLS }

// MinLinkSecret is the shortest link secret accepted: it is all that keeps strangers off
// the core's link listener.
const MinLinkSecret = 16

// Component configures the XEP-0114 listener and the components allowed on it.
type Component struct {
	Listen []string          `toml:"listen"`
	Allow  []ComponentSecret `toml:"allow"`
}

// ComponentSecret is one component's domain and handshake secret, and what it may do
// with the server's accounts.
type ComponentSecret struct {
	Domain     string              `toml:"domain"`
	Secret     string              `toml:"secret"`
	Privileges ComponentPrivileges `toml:"privileges"`
}

// ComponentPrivileges are a component's XEP-0356 privileges over the accounts of every
// virtual host: roster none|get|set|both, message none|outgoing, and iq, a table of payload
// namespaces to get|set|both (IQs it may send as a user, such as a gateway's bookmarks).
type ComponentPrivileges struct {
	Roster string `toml:"roster"`
	// RosterPush (default true) sends a component that reads rosters (get or both) a
	// roster push for each change to a user's roster; false saves the traffic.
	RosterPush *bool             `toml:"roster_push"`
	Message    string            `toml:"message"`
	IQ         map[string]string `toml:"iq"`
	// Presence is none, managed_entity (the presence of every session of the server's
	// users, and at connection who is online) or roster (that, and the same of their
	// contacts on other servers; needs roster = get or both).
	Presence string `toml:"presence"`
}

// S2S configures federation with other servers (RFC 6120 server-to-server, XEP-0220
// dialback). Off unless enabled; listen then defaults to [::]:5269.
type S2S struct {
	Enabled bool     `toml:"enabled"`
	Listen  []string `toml:"listen"`
	// DirectTLSListen are XEP-0368 direct TLS listeners (TLS from the first byte, ALPN
	// xmpp-server), for peers that find them through _xmpps-server._tcp SRV records;
	// none unless set.
	DirectTLSListen []string `toml:"direct_tls_listen"`
	// Secret keys the dialback keys this server hands out; empty: random per start.
	Secret string `toml:"secret"`
	// Hosts maps a remote domain to "host:port", or "tls://host:port" for a server that
	// speaks XEP-0368 direct TLS there, instead of DNS; a domain not listed is found with
	// its _xmpp-server._tcp and _xmpps-server._tcp SRV records, else on port 5269 (RFC
	// 6120 §3.2, XEP-0368).
	Hosts map[string]string `toml:"hosts"`
	// CAFile names the PEM certificates (CAs) that peer servers' certificates are checked
	// against for SASL EXTERNAL (XEP-0178); empty: peers authenticate with dialback only.
	CAFile string `toml:"ca_file"`
	// CAs is CAFile, loaded by Parse.
	CAs *x509.CertPool `toml:"-"`
	// RequireValidCerts refuses outbound streams to peers whose certificate does not
	// validate for their domain against the system roots and CAFile, and accepts
	// dialback from a peer only over a client certificate that validates so; false: they
	// are still reached and authenticated with dialback (XEP-0344). Domains overrides it
	// per remote domain.
	RequireValidCerts bool `toml:"require_valid_certs"`
	// Deny lists remote domains this server does not federate with; Allow, when not
	// empty, the only ones it does. An entry matches its domain exactly; "*.example.org"
	// matches every subdomain of example.org (not example.org itself). Deny wins over
	// Allow.
	Deny  []string `toml:"deny"`
	Allow []string `toml:"allow"`
	// Domains holds the policy for single remote domains ([s2s.domains."example.org"]).
	Domains map[string]S2SDomain `toml:"domains"`
	// IdleTimeout closes inbound and outbound streams that carried nothing for that long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// Bidi, unless false, offers and asks for XEP-0288 bidirectional streams: one
	// connection per peer carries both directions.
	Bidi *bool `toml:"bidi"`
	// PublicOnly refuses to dial private addresses (10/8, 172.16/12, 192.168/16,
	// 100.64/10, fc00::/7) that a remote domain's DNS names; loopback and link-local
	// ones are never dialed. Hosts entries are exempt.
	PublicOnly bool `toml:"public_only"`
}

// BidiOn reports whether bidirectional streams are on (the default).
func (s *S2S) BidiOn() bool { return s.Bidi == nil || *s.Bidi }

// S2SDomain is the federation policy for one remote domain.
type S2SDomain struct {
	// RequireValidCerts overrides [s2s] require_valid_certs for the domain; for it, both
	// ways, a certificate valid for the domain is required (inbound, dialback is accepted
	// only over one).
	RequireValidCerts *bool `toml:"require_valid_certs"`
	// Dialback is "allow" (the default) or "deny": the domain must then authenticate its
	// inbound streams with SASL EXTERNAL (XEP-0178), which needs ca_file.
	Dialback string `toml:"dialback"`
}

// RequireCerts is the domain's require_valid_certs, global the [s2s] value.
func (d S2SDomain) RequireCerts(global bool) bool {
	if d.RequireValidCerts != nil {
		return *d.RequireValidCerts
	}
	return global
}

// VHost is one virtual host's settings; an unset field follows the server-wide one.
type VHost struct {
	// Registration and RegistrationCaptcha override [c2s] registration and
	// registration_captcha on this host: in-band registration and the sign-up page.
	Registration        *bool `toml:"registration"`
	RegistrationCaptcha *bool `toml:"registration_captcha"`
	// MaxAccounts bounds the accounts users create on this host (in-band, on the sign-up
	// page, with an invitation); 0: no bound. The operator's own (vireoctl, the
	// dashboard) are not refused, and count.
	MaxAccounts int `toml:"max_accounts"`
	// Federation, when false, keeps this host and its services (conference.<host>) off
	// federation: its users reach this server's hosts only, and other servers cannot
	// address it. It needs [s2s] enabled to mean anything.
	Federation *bool `toml:"federation"`
	// Isolated keeps the host's users and services to each other: they reach no other
	// host of this server, and no other server (as Prosody's mod_isolate_host): one
	// server for several companies or communities that must not see each other.
	Isolated bool `toml:"isolated"`
	// ModulesDisabled are modules (IDs, as in [modules] disabled) this host does without:
	// its users and the stanzas addressed to it are served as if the modules were not
	// there, and its disco#info leaves them out (as Prosody's modules_disabled in a
	// VirtualHost); a service module (muc, pubsub, upload, proxy65) gives it no service.
	// A reload changes it.
	ModulesDisabled []string `toml:"modules_disabled"`
	// Modules holds the host's own settings of modules that take them per host
	// ([vhosts."<host>".modules.<id>], over [modules.<id>]); decoded by the module.
	Modules map[string]toml.Primitive `toml:"modules"`
}

// Host is the settings of virtual host d, unset fields filled in from the server-wide
// ones.
func (c *Config) Host(d string) ResolvedVHost {
	r := ResolvedVHost{Registration: c.C2S.Registration, RegistrationCaptcha: c.C2S.RegistrationCaptcha, Federation: true}
	v, ok := c.VHosts[d]
	if !ok {
		return r
	}
	if v.Registration != nil {
		r.Registration = *v.Registration
	}
	if v.RegistrationCaptcha != nil {
		r.RegistrationCaptcha = *v.RegistrationCaptcha
	}
	if v.Federation != nil {
		r.Federation = *v.Federation
	}
	r.MaxAccounts, r.Isolated = v.MaxAccounts, v.Isolated
	return r
}

// ResolvedVHost is a VHost with nothing left unset.
type ResolvedVHost struct {
	Registration, RegistrationCaptcha, Federation, Isolated bool
	MaxAccounts                                             int
}

// S2SDirectTLSScheme marks an [s2s.hosts] address that speaks XEP-0368 direct TLS.
const S2SDirectTLSScheme = "tls://"

// DefaultS2SIdleTimeout is [s2s] idle_timeout when not set.
const DefaultS2SIdleTimeout = 10 * time.Minute

// DefaultS2SListen is the s2s listener when [s2s] is enabled without one (RFC 6120 port).
const DefaultS2SListen = "[::]:5269"

// TLS names the certificate and key files (PEM), and turns on automatic certificates
// (ACME, RFC 8555) for every virtual host and its service subdomains.
type TLS struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// ACME obtains certificates from ACMEDirectory, keeps them under data_dir/acme and
	// renews them in the background. Cert and Key stay in use until the first certificate
	// is issued (and for names the CA refuses).
	ACME          bool   `toml:"acme"`
	ACMEEmail     string `toml:"acme_email"`
	ACMEDirectory string `toml:"acme_directory"`
	// ACMEChallenge is "http-01" (answered by the plain [web] listener; the CA connects to
	// port 80) or "tls-alpn-01" (answered by every direct-TLS listener; the CA connects
	// to port 443).
	ACMEChallenge string `toml:"acme_challenge"`
	// ACMECARoots is a PEM file of CAs trusted for the ACME server's own HTTPS (a private
	// CA, a test CA); empty: the system roots.
	ACMECARoots string `toml:"acme_ca_roots"`
	// ACMERenewBefore renews a certificate this long before it expires (at most half its
	// lifetime).
	ACMERenewBefore Duration `toml:"acme_renew_before"`
	// ACMERoots is ACMECARoots, loaded by Parse; nil for the system roots.
	ACMERoots *x509.CertPool `toml:"-"`
}

// ACMEChanged reports whether next's ACME settings differ from t's: on or off, or how
// certificates are ordered.
func (t TLS) ACMEChanged(next TLS) bool {
	return t.ACME != next.ACME || t.ACMEEmail != next.ACMEEmail || t.ACMEDirectory != next.ACMEDirectory ||
		t.ACMEChallenge != next.ACMEChallenge || t.ACMECARoots != next.ACMECARoots || t.ACMERenewBefore != next.ACMERenewBefore
}

// DefaultACMEDirectory is Let's Encrypt's production directory, the [tls] acme_directory
// default.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// DefaultACMERenewBefore is [tls] acme_renew_before when not set: Let's Encrypt's own
// advice for 90-day certificates, leaving weeks of retries before expiry.
const DefaultACMERenewBefore = 30 * 24 * time.Hour

// ACMEDir is where ACME keeps its account key and certificates.
func (c *Config) ACMEDir() string { return filepath.Join(c.DataDir, "acme") }

// Admin configures the local admin endpoint used by vireoctl.
type Admin struct {
	Socket string `toml:"socket"`
}

// Router configures sharding and per-user quotas.
type Router struct {
	Shards       int `toml:"shards"`
	OfflineQuota int `toml:"offline_quota"`
	// RouteInPlace lets a chat message whose shards are idle be routed on the event loop
	// that read it, and a bind run there (router.Router.SetInPlace, TryBind).
	RouteInPlace bool `toml:"route_in_place"`
}

// Store configures the database under data_dir.
type Store struct {
	// MinFree is the free space, in bytes, that writes leave on the file system of
	// data_dir: beyond it clients get resource-constraint (retry later) rather than a
	// server stuck on a full disk. 0 picks 64 MiB (1/16 of a smaller file system); -1
	// turns the guard off.
	MinFree int64 `toml:"min_free"`
}

// Runtime tunes Go's garbage collector and the number of event loops. A server that holds
// mostly idle session state is best bounded by memory, not by a percentage of the live
// heap: with a memory limit the collector lets the heap grow while there is room and works
// harder only near the limit.
type Runtime struct {
	// EventLoops is the number of gnet event loops; 0 (the default) means one per
	// processor Go may use. Fewer leave a processor to the goroutines (accepts, TLS
	// handshakes, store reads): cheaper logins, a lower peak message rate. Read at start
	// only.
	EventLoops int `toml:"event_loops"`
	// MemoryLimit is the soft limit for the Go heap and runtime, as bytes with an optional
	// unit ("12GiB", "800MiB", "2000000000"). "auto" (the default) picks 80% of the
	// cgroup's memory limit or, without one, of physical memory; "off" sets none. The
	// GOMEMLIMIT environment variable, when set, wins.
	MemoryLimit string `toml:"memory_limit"`
	// GCPercent is GOGC: heap growth between collections, in percent of the live heap.
	// The default, 50, keeps an idle session's resident bytes ~17% lower than Go's 100 for
	// ~10% more CPU per archived message (measured; the hot paths barely allocate, so
	// collections stay rare). 0 means Go's default (100); -1 turns proportional collection
	// off, leaving only the memory limit (set one). The GOGC environment variable wins.
	GCPercent int `toml:"gc_percent"`
	// GCMinHeadroom is the least the heap may grow between collections, as bytes with an
	// optional unit; "0" turns it off. A server with few sessions has a live heap of a few
	// MiB, and GCPercent of that made it collect after every megabyte. It stops mattering
	// once GCPercent of the live heap is larger (from ~64 MiB of live heap at the
	// defaults, some 30,000 idle TLS sessions). Ignored when GOGC is set.
	GCMinHeadroom string `toml:"gc_min_headroom"`
}

// ParseBytes reads a size such as "512MiB", "2GB", "1500000" or "0".
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s[:i]), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 512MiB, 8GiB)", s)
	}
	mult := map[string]int64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[strings.ToLower(strings.TrimSpace(s[i:]))]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use KiB, MiB, GiB, TiB, or KB, MB, GB, TB)", s, s[i:])
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// DefaultReservedNames is [c2s] reserved_names unless set: the names of the operator's
// roles (RFC 2142 mailboxes, and what Prosody reserves by default).
var DefaultReservedNames = []string{"admin", "administrator", "root", "hostmaster", "postmaster",
	"webmaster", "abuse", "security", "support", "xmpp"}

// Defaults returns a Config with every option at its safe default for domain.
func Defaults(domain string) *Config {
	return &Config{
		Domains:   []string{domain},
		DataDir:   "data",
		LogLevel:  "info",
		LogFormat: "console",
		Web: Web{
			Listen:         []string{"[::]:5280"},
			TLSListen:      []string{"[::]:5443"},
			WebSocketPath:  "/xmpp-websocket",
			BOSHPath:       "/http-bind",
			BOSHInactivity: Duration{60 * time.Second},
			BOSHWait:       Duration{60 * time.Second},
			Dashboard:      true,
		},
		C2S: C2S{
			Listen:                []string{"[::]:5222"},
			TLSListen:             []string{"[::]:5223"},
			RequireTLS:            true,
			AllowPlain:            true,
			ReservedNames:         slices.Clone(DefaultReservedNames),
			PreAuthTimeout:        Duration{30 * time.Second},
			MaxStanza:             256 << 10,
			MaxOutbound:           1 << 20,
			MaxRate:               64 << 10,
			MaxBurst:              1 << 20,
			CoalesceWrites:        Duration{10 * time.Millisecond},
			AuthFailuresPerMinute: 10,
			RegistrationsPerMin:   10,
			MaxUnauthPerAddress:   64,
			TrustedNetworks:       []string{"127.0.0.0/8", "::1/128"},
			ResumeTimeout:         Duration{300 * time.Second},
			SMAckEvery:            10,
			SMAckAfter:            Duration{time.Second},
			SMAckTimeout:          Duration{60 * time.Second},
			FastTokenTTL:          Duration{14 * 24 * time.Hour},
			PingInterval:          Duration{4 * time.Minute},
			PingTimeout:           Duration{60 * time.Second},
		},
		Component: Component{Listen: []string{"127.0.0.1:5347"}},
		Router:    Router{Shards: 64, OfflineQuota: 1000, RouteInPlace: true},
		Runtime:   Runtime{MemoryLimit: "auto", GCPercent: 50, GCMinHeadroom: "32MiB"},
		TLS: TLS{ACMEDirectory: DefaultACMEDirectory, ACMEChallenge: "http-01",
			ACMERenewBefore: Duration{DefaultACMERenewBefore}},
	}
}

// Load reads and validates the file at path. Relative paths inside it are resolved against
// the file's directory.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, path)
}

// Parse decodes TOML text; path is used to resolve relative paths and in errors.
func Parse(b []byte, path string) (*Config, error) {
	c := Defaults("localhost")
	c.Domains = nil
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(c)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var bad []string
		for _, k := range und {
			// Module tables are the modules' to decode and check (ModuleSettings).
			if len(k) > 0 && k[0] == "modules" || len(k) > 2 && k[0] == "vhosts" && k[2] == "modules" {
				continue
			}
			bad = append(bad, k.String())
		}
		if len(bad) > 0 {
			return nil, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(bad, ", "))
		}
	}
	c.md = md
	c.path = path
	if err := c.normalize(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

func (c *Config) normalize() error {
	if len(c.Domains) == 0 {
		return errors.New("domains: at least one domain is required")
	}
	seen := map[string]bool{}
	for i, d := range c.Domains {
		p, err := jid.PrepareDomain(d)
		if err != nil {
			return fmt.Errorf("domains: %q: %w", d, err)
		}
		if seen[p] {
			return fmt.Errorf("domains: %q listed twice", d)
		}
		seen[p] = true
		c.Domains[i] = p
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error", "trace":
	default:
		return fmt.Errorf("log_level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "console", "json":
	default:
		return fmt.Errorf("log_format: %q is not console or json", c.LogFormat)
	}
	if c.C2S.MaxStanza < 4096 {
		return fmt.Errorf("c2s.max_stanza: %d is below the RFC 6120 minimum of 10000 we round to 4096", c.C2S.MaxStanza)
	}
	if c.C2S.MaxOutbound < c.C2S.MaxStanza {
		return fmt.Errorf("c2s.max_outbound (%d) must hold at least one max_stanza (%d)", c.C2S.MaxOutbound, c.C2S.MaxStanza)
	}
	if d := c.C2S.CoalesceWrites.Duration; d < 0 || d > time.Second {
		return fmt.Errorf("c2s.coalesce_writes: %v is outside 0s (off) to 1s", d)
	}
	if c.C2S.PreAuthTimeout.Duration <= 0 {
		return errors.New("c2s.pre_auth_timeout must be positive")
	}
	if c.C2S.ResumeTimeout.Duration < time.Second || c.C2S.SMAckAfter.Duration < time.Second || c.C2S.SMAckEvery < 1 {
		return errors.New("c2s.resume_timeout and c2s.sm_ack_after must be at least 1s, c2s.sm_ack_every at least 1")
	}
	if c.C2S.SMAckTimeout.Duration < c.C2S.SMAckAfter.Duration {
		return errors.New("c2s.sm_ack_timeout must be at least c2s.sm_ack_after")
	}
	if !strings.HasPrefix(c.Web.BOSHPath, "/") || c.Web.BOSHPath == c.Web.WebSocketPath {
		return fmt.Errorf("web.bosh_path %q must start with / and differ from web.websocket_path", c.Web.BOSHPath)
	}
	if !strings.HasPrefix(c.Web.WebSocketPath, "/") {
		return fmt.Errorf("web.websocket_path %q must start with /", c.Web.WebSocketPath)
	}
	if u := c.Web.PublicWebSocketURL; u != "" && !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
		return fmt.Errorf("web.public_websocket_url %q must be a ws:// or wss:// URL", u)
	}
	if u := c.Web.PublicURL; u != "" {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
			return fmt.Errorf("web.public_url %q must be an http(s) URL without query or fragment", u)
		}
	}
	if c.C2S.FastTokenTTL.Duration < time.Minute {
		return errors.New("c2s.fast_token_ttl must be at least 1m")
	}
	if c.C2S.PingInterval.Duration < time.Second || c.C2S.PingTimeout.Duration < time.Second {
		return errors.New("c2s.ping_interval and c2s.ping_timeout must be at least 1s")
	}
	if c.C2S.MaxConnections < 0 || c.C2S.MaxUnauthPerAddress < 0 {
		return errors.New("c2s.max_connections and c2s.max_unauth_per_address must not be negative")
	}
	if c.C2S.MaxRate < 0 || c.C2S.MaxRate > 1<<30 {
		return fmt.Errorf("c2s.max_rate (%d) must be 0 (off) to 1 GiB a second", c.C2S.MaxRate)
	}
	if c.C2S.MaxRate > 0 && (c.C2S.MaxBurst < c.C2S.MaxStanza || c.C2S.MaxBurst > 1<<30) {
		return fmt.Errorf("c2s.max_burst (%d) must hold at least one max_stanza (%d), and at most 1 GiB", c.C2S.MaxBurst, c.C2S.MaxStanza)
	}
	if c.C2S.RegistrationsPerMin < 0 {
		return errors.New("c2s.registrations_per_minute must not be negative")
	}
	for i, n := range c.C2S.ReservedNames {
		p, err := jid.PrepareLocal(n)
		if err != nil || p == "" {
			return fmt.Errorf("c2s.reserved_names: %q is not a user name", n)
		}
		c.C2S.ReservedNames[i] = p
	}
	for i, d := range c.C2S.AnonymousDomains {
		p, err := jid.PrepareDomain(d)
		if err != nil || !seen[p] {
			return fmt.Errorf("c2s.anonymous_domains: %q is not one of domains", d)
		}
		c.C2S.AnonymousDomains[i] = p
	}
	var vh map[string]VHost
	if len(c.VHosts) > 0 {
		vh = make(map[string]VHost, len(c.VHosts))
	}
	for d, v := range c.VHosts {
		p, err := jid.PrepareDomain(d)
		if err != nil {
			return fmt.Errorf("vhosts: %q: %w", d, err)
		}
		if _, dup := vh[p]; dup {
			return fmt.Errorf("vhosts: %q listed twice", d)
		}
		if v.MaxAccounts < 0 {
			return fmt.Errorf("vhosts.%q: max_accounts must not be negative", d)
		}
		vh[p] = v
	}
	c.VHosts = vh
	for _, n := range c.C2S.TrustedNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			return fmt.Errorf("c2s.trusted_networks: %q: %w", n, err)
		}
	}
	for _, n := range c.Web.MetricsAllow {
		if _, err := netip.ParsePrefix(n); err != nil {
			return fmt.Errorf("web.metrics_allow: %q: %w", n, err)
		}
	}
	switch strings.ToLower(c.Web.ForwardedHeader) {
	case "", "x-forwarded-for", "forwarded":
	default:
		return fmt.Errorf("web.forwarded_header: %q: want \"x-forwarded-for\" or \"forwarded\"", c.Web.ForwardedHeader)
	}
	for _, n := range c.Web.TrustedProxies {
		if _, err := netip.ParsePrefix(n); err != nil {
			return fmt.Errorf("web.trusted_proxies: %q: %w", n, err)
		}
	}
	for _, n := range c.Web.APIAllow {
		if _, err := netip.ParsePrefix(n); err != nil {
			return fmt.Errorf("web.api_allow: %q: %w", n, err)
		}
	}
	for _, tok := range c.Web.APITokens {
		if len(tok) < MinAPIToken {
			return fmt.Errorf("web.api_tokens: a token of %d characters; use at least %d random ones (openssl rand -hex 24)", len(tok), MinAPIToken)
		}
	}
	if w := c.Web.BOSHWait.Duration; w < MinBOSHWait || w > MaxBOSHWait {
		return fmt.Errorf("web.bosh_wait %v must be between %v and %v", w, MinBOSHWait, MaxBOSHWait)
	}
	if i := c.Web.BOSHInactivity.Duration; i < MinBOSHInactivity || i > MaxBOSHInactivity {
		return fmt.Errorf("web.bosh_inactivity %v must be between %v and %v", i, MinBOSHInactivity, MaxBOSHInactivity)
	}
	seenComp := map[string]bool{}
	for i, a := range c.Component.Allow {
		d, err := jid.PrepareDomain(a.Domain)
		if err != nil {
			return fmt.Errorf("component.allow: domain %q: %w", a.Domain, err)
		}
		if seen[d] || seenComp[d] {
			return fmt.Errorf("component.allow: domain %q is listed twice or is a virtual host", a.Domain)
		}
		if len(a.Secret) < 8 {
			return fmt.Errorf("component.allow: the secret of %q must be at least 8 characters", a.Domain)
		}
		p := a.Privileges
		if !slices.Contains([]string{"", "none", "get", "set", "both"}, p.Roster) {
			return fmt.Errorf("component.allow: %q: privileges.roster %q; use none, get, set or both", a.Domain, p.Roster)
		}
		if p.RosterPush != nil && *p.RosterPush && p.Roster != "get" && p.Roster != "both" {
			return fmt.Errorf("component.allow: %q: privileges.roster_push needs roster = get or both", a.Domain)
		}
		if p.Message != "" && p.Message != "none" && p.Message != "outgoing" {
			return fmt.Errorf("component.allow: %q: privileges.message %q; use none or outgoing", a.Domain, p.Message)
		}
		if !slices.Contains([]string{"", "none", "managed_entity", "roster"}, p.Presence) {
			return fmt.Errorf("component.allow: %q: privileges.presence %q; use none, managed_entity or roster", a.Domain, p.Presence)
		}
		if p.Presence == "roster" && p.Roster != "get" && p.Roster != "both" {
			// XEP-0356 §7.4: the roster presence privilege needs the right to read rosters.
			return fmt.Errorf("component.allow: %q: privileges.presence = \"roster\" needs roster = get or both", a.Domain)
		}
		for space, t := range p.IQ {
			if space == "" || !slices.Contains([]string{"get", "set", "both"}, t) {
				return fmt.Errorf("component.allow: %q: privileges.iq %q = %q; name a namespace, and use get, set or both", a.Domain, space, t)
			}
		}
		seenComp[d] = true
		c.Component.Allow[i].Domain = d
	}
	if c.S2S.IdleTimeout.Duration <= 0 {
		c.S2S.IdleTimeout.Duration = DefaultS2SIdleTimeout
	}
	if c.S2S.Enabled && c.S2S.Listen == nil && len(c.Link.Listen) == 0 {
		// A core with edges takes inbound streams through them unless it says otherwise.
		c.S2S.Listen = []string{DefaultS2SListen}
	}
	hosts := make(map[string]string, len(c.S2S.Hosts))
	for d, a := range c.S2S.Hosts {
		pd, err := jid.PrepareDomain(d)
		if err != nil {
			return fmt.Errorf("s2s.hosts: domain %q: %w", d, err)
		}
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(a, S2SDirectTLSScheme)); err != nil {
			return fmt.Errorf("s2s.hosts: %q: %w (want \"host:port\" or \"tls://host:port\")", d, err)
		}
		hosts[pd] = a
	}
	c.S2S.Hosts = hosts
	if err := c.S2S.normalizePolicy(); err != nil {
		return err
	}
	if len(c.Link.Listen) > 0 && len(c.Link.Secret) < MinLinkSecret {
		return fmt.Errorf("link.secret must be at least %d characters", MinLinkSecret)
	}
	if c.Link.FederateThroughEdges && len(c.Link.Listen) == 0 {
		return errors.New("link.federate_through_edges needs link.listen: edges link to this core there")
	}
	if c.Edge.Core != "" {
		if len(c.Link.Listen) > 0 {
			return errors.New("[edge] and [link] listen: a process is an edge or a core, not both")
		}
		if len(c.Edge.Secret) < MinLinkSecret {
			return fmt.Errorf("edge.secret must be at least %d characters", MinLinkSecret)
		}
		if _, _, err := net.SplitHostPort(c.Edge.Core); err != nil {
			return fmt.Errorf("edge.core %q: %w (want \"host:port\")", c.Edge.Core, err)
		}
	}
	if c.Router.Shards <= 0 || c.Router.Shards > 1<<14 {
		return fmt.Errorf("router.shards: %d out of range 1..16384", c.Router.Shards)
	}
	if c.Router.OfflineQuota < 0 {
		return errors.New("router.offline_quota must not be negative")
	}
	switch m := strings.ToLower(strings.TrimSpace(c.Runtime.MemoryLimit)); m {
	case "", "auto", "off":
	default:
		if _, err := ParseBytes(m); err != nil {
			return fmt.Errorf("runtime.memory_limit: %w", err)
		}
	}
	if h := strings.TrimSpace(c.Runtime.GCMinHeadroom); h != "" {
		if _, err := ParseBytes(h); err != nil {
			return fmt.Errorf("runtime.gc_min_headroom: %w", err)
		}
	}
	if c.Runtime.EventLoops < 0 || c.Runtime.EventLoops > 4096 {
		return fmt.Errorf("runtime.event_loops: %d; use 0 for one per processor", c.Runtime.EventLoops)
	}
	if c.Runtime.GCPercent < -1 {
		return fmt.Errorf("runtime.gc_percent: %d; use -1 to turn proportional collection off", c.Runtime.GCPercent)
	}
	if c.Store.MinFree < -1 {
		return fmt.Errorf("store.min_free: %d; use -1 to turn the guard off", c.Store.MinFree)
	}
	base := filepath.Dir(c.path)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	c.DataDir = abs(c.DataDir)
	if c.Auth.ExternalManage && len(c.Auth.External) == 0 {
		return errors.New("auth.external_manage: there is no auth.external program to send the changes to")
	}
	if len(c.Auth.External) > 0 {
		if c.Auth.External[0] == "" {
			return errors.New("auth.external: the first element is the program to run")
		}
		if !c.C2S.AllowPlain {
			return errors.New("auth.external: its accounts log in with SASL PLAIN over TLS; set c2s.allow_plain = true")
		}
		if c.Auth.ExternalProcesses < 0 || c.Auth.ExternalProcesses > 64 {
			return fmt.Errorf("auth.external_processes: %d; use 1 to 64", c.Auth.ExternalProcesses)
		}
		if c.Auth.ExternalTimeout.Duration < 0 || c.Auth.ExternalCache.Duration < 0 {
			return errors.New("auth.external_timeout and auth.external_cache cannot be negative")
		}
		if strings.ContainsRune(c.Auth.External[0], filepath.Separator) {
			c.Auth.External[0] = abs(c.Auth.External[0]) // a bare name is looked up in PATH
		}
	}
	if c.TLS.Cert == "" && c.TLS.Key == "" {
		c.TLS.Cert = filepath.Join(c.DataDir, "certs", c.Domains[0]+".crt")
		c.TLS.Key = filepath.Join(c.DataDir, "certs", c.Domains[0]+".key")
	} else {
		c.TLS.Cert, c.TLS.Key = abs(c.TLS.Cert), abs(c.TLS.Key)
	}
	if c.TLS.ACMECARoots != "" {
		c.TLS.ACMECARoots = abs(c.TLS.ACMECARoots)
		b, err := os.ReadFile(c.TLS.ACMECARoots)
		if err != nil {
			return fmt.Errorf("tls.acme_ca_roots: %w", err)
		}
		c.TLS.ACMERoots = x509.NewCertPool()
		if !c.TLS.ACMERoots.AppendCertsFromPEM(b) {
			return fmt.Errorf("tls.acme_ca_roots: no PEM certificate in %s", c.TLS.ACMECARoots)
		}
	}
	if c.TLS.ACMEChallenge != "http-01" && c.TLS.ACMEChallenge != "tls-alpn-01" {
		return fmt.Errorf("tls.acme_challenge: %q; use \"http-01\" or \"tls-alpn-01\"", c.TLS.ACMEChallenge)
	}
	if c.TLS.ACME && c.TLS.ACMERenewBefore.Duration <= 0 {
		return fmt.Errorf("tls.acme_renew_before: %s; it must be positive", c.TLS.ACMERenewBefore.Duration)
	}
	if c.S2S.CAFile != "" {
		c.S2S.CAFile = abs(c.S2S.CAFile)
		b, err := os.ReadFile(c.S2S.CAFile)
		if err != nil {
			return fmt.Errorf("s2s.ca_file: %w", err)
		}
		c.S2S.CAs = x509.NewCertPool()
		if !c.S2S.CAs.AppendCertsFromPEM(b) {
			return fmt.Errorf("s2s.ca_file: no PEM certificate in %s", c.S2S.CAFile)
		}
	}
	if c.Admin.Socket == "" {
		c.Admin.Socket = filepath.Join(c.DataDir, "admin.sock")
	} else {
		c.Admin.Socket = abs(c.Admin.Socket)
	}
	return nil
}

// normalizePolicy prepares the domains of deny, allow and [s2s.domains] and checks them.
func (s *S2S) normalizePolicy() error {
	prep := func(key string, ds []string) ([]string, error) {
		out := make([]string, 0, len(ds))
		for _, d := range ds {
			base, wild := strings.CutPrefix(d, "*.")
			p, err := jid.PrepareDomain(base)
			if err != nil {
				return nil, fmt.Errorf("s2s.%s: %q: %w", key, d, err)
			}
			if wild {
				p = "*." + p
			}
			out = append(out, p)
		}
		return out, nil
	}
	var err error
	if s.Deny, err = prep("deny", s.Deny); err != nil {
		return err
	}
	if s.Allow, err = prep("allow", s.Allow); err != nil {
		return err
	}
	for _, d := range s.Deny {
		if slices.Contains(s.Allow, d) {
			return fmt.Errorf("s2s: %q is in both deny and allow", d)
		}
	}
	doms := make(map[string]S2SDomain, len(s.Domains))
	for d, p := range s.Domains {
		pd, err := jid.PrepareDomain(d)
		if err != nil {
			return fmt.Errorf("s2s.domains: %q: %w", d, err)
		}
		if _, dup := doms[pd]; dup {
			return fmt.Errorf("s2s.domains: %q is listed twice", d)
		}
		switch p.Dialback {
		case "":
			p.Dialback = "allow"
		case "allow":
		case "deny":
			if s.CAFile == "" {
				// Without CAs SASL EXTERNAL is never offered: the domain could not
				// authenticate at all, which deny says more plainly.
				return fmt.Errorf("s2s.domains.%q: dialback = \"deny\" needs s2s.ca_file (SASL EXTERNAL is offered only with it); to refuse the domain, list it in s2s.deny", d)
			}
		default:
			return fmt.Errorf("s2s.domains.%q: dialback = %q; use \"allow\" or \"deny\"", d, p.Dialback)
		}
		doms[pd] = p
	}
	s.Domains = doms
	return nil
}

// Path is the file the config was loaded from.
func (c *Config) Path() string { return c.path }

// DBDir is where the Pebble database lives.
func (c *Config) DBDir() string { return filepath.Join(c.DataDir, "db") }

// DisabledModules lists the module IDs under [modules] disabled.
func (c *Config) DisabledModules() []string {
	p, ok := c.Modules["disabled"]
	if !ok {
		return nil
	}
	var out []string
	if err := c.primitiveDecode("disabled", p, &out); err != nil {
		return nil
	}
	return out
}

// ModuleConfig decodes the [modules.<id>] table into v; absent tables leave v untouched.
func (c *Config) ModuleConfig(id string, v any) error {
	p, ok := c.Modules[id]
	if !ok {
		return nil
	}
	if err := c.primitiveDecode(id, p, v); err != nil {
		return fmt.Errorf("modules.%s: %w", id, err)
	}
	return nil
}

// ModuleSettings is ModuleConfig for the module that owns the table: v must hold every
// setting the module has, and a key v has no field for is an error naming it (a typo in
// a module's table would otherwise be ignored without a word).
func (c *Config) ModuleSettings(id string, v any) error {
	p, ok := c.Modules[id]
	if !ok {
		return nil
	}
	return c.decodeStrict(id, "modules."+id, p, v)
}

// HostModuleSettings decodes module id's settings on host into v: [modules.<id>], then
// [vhosts."<host>".modules.<id>] over it, both checked as ModuleSettings does.
func (c *Config) HostModuleSettings(host, id string, v any) error {
	if err := c.ModuleSettings(id, v); err != nil {
		return err
	}
	p, ok := c.VHosts[host].Modules[id]
	if !ok {
		return nil
	}
	return c.decodeStrict(id, fmt.Sprintf("vhosts.%q.modules.%s", host, id), p, v)
}

// HostModuleTables lists, sorted, the hosts with a [vhosts."<host>".modules.<id>] table.
func (c *Config) HostModuleTables(id string) []string {
	var out []string
	for h, v := range c.VHosts {
		if _, ok := v.Modules[id]; ok {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// HostModuleIDs lists, sorted, the module IDs with a table under some [vhosts] host.
func (c *Config) HostModuleIDs() []string {
	var out []string
	for _, v := range c.VHosts {
		for id := range v.Modules {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

// decodeStrict decodes p into v and fails on keys v has no field for.
func (c *Config) decodeStrict(id, where string, p toml.Primitive, v any) error {
	if err := c.primitiveDecode(id, p, v); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	var raw map[string]any
	if err := c.primitiveDecode(id, p, &raw); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if k := unknownKey(raw, reflect.TypeOf(v)); k != "" {
		return fmt.Errorf("%s: unknown key %s", where, k)
	}
	return nil
}

// ChangedModules lists the [modules] entries (module tables, and "disabled") that differ
// between c and next, a host's table under [vhosts] included, sorted: modules read their
// tables once, when the server starts, so a reload tells the operator which edits wait
// for a restart.
func (c *Config) ChangedModules(next *Config) []string {
	ids := map[string]bool{}
	for id := range c.Modules {
		ids[id] = true
	}
	for id := range next.Modules {
		ids[id] = true
	}
	for _, id := range append(c.HostModuleIDs(), next.HostModuleIDs()...) {
		ids[id] = true
	}
	var out []string
	for id := range ids {
		var a, b any
		ea, eb := c.ModuleConfig(id, &a), next.ModuleConfig(id, &b)
		if ea != nil || eb != nil || !reflect.DeepEqual(a, b) || !slices.Equal(c.HostModuleTables(id), next.HostModuleTables(id)) {
			out = append(out, id)
			continue
		}
		for _, h := range c.HostModuleTables(id) {
			var a, b any
			ea := c.primitiveDecode(id, c.VHosts[h].Modules[id], &a)
			eb := next.primitiveDecode(id, next.VHosts[h].Modules[id], &b)
			if ea != nil || eb != nil || !reflect.DeepEqual(a, b) {
				out = append(out, id)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// TrustedPrefixes returns c2s.trusted_networks parsed (validated at load).
func (c *Config) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range c.C2S.TrustedNetworks {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// HostRemovalBlocked says why domain may not leave the served hosts: a server-wide
// administrator ([modules.adhoc] admins) has an account there, and the adhoc module
// refuses administrators of hosts not served, so the next start would fail. nil: it may.
func (c *Config) HostRemovalBlocked(domain string) error {
	var a struct {
		Admins []string `toml:"admins"`
	}
	if err := c.ModuleConfig("adhoc", &a); err != nil {
		return nil
	}
	for _, j := range a.Admins {
		if strings.HasSuffix(strings.ToLower(strings.TrimSpace(j)), "@"+domain) {
			return fmt.Errorf("%s is an administrator ([modules.adhoc] admins); remove it from %s first", j, c.Path())
		}
	}
	return nil
}

// TrustedProxyPrefixes returns web.trusted_proxies parsed (validated at load); loopback
// when it is not set.
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	if c.Web.TrustedProxies == nil {
		return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	out := []netip.Prefix{}
	for _, n := range c.Web.TrustedProxies {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// MinAPIToken is the shortest [web] api_tokens entry: a token is a password that a
// network peer may guess, so it must be long and random.
const MinAPIToken = 24

// APIAllowPrefixes returns web.api_allow parsed (validated at load); nil when empty,
// which the API reads as loopback only.
func (c *Config) APIAllowPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range c.Web.APIAllow {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// MetricsAllowPrefixes returns web.metrics_allow parsed (validated at load); nil when
// empty, which the engine reads as loopback only.
func (c *Config) MetricsAllowPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range c.Web.MetricsAllow {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// WebURL is the public base URL of the web listener for pages about domain, without a
// trailing slash: [web] public_url, else https://domain with the port of the first
// tls_listen (none for 443); "" when there is neither.
func (c *Config) WebURL(domain string) string {
	if u := c.Web.PublicURL; u != "" {
		return strings.TrimSuffix(u, "/")
	}
	if len(c.Web.TLSListen) == 0 || domain == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(c.Web.TLSListen[0])
	if err != nil || port == "443" {
		return "https://" + domain
	}
	return "https://" + domain + ":" + port
}
