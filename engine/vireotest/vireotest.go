// Package vireotest runs a complete Vireo server in-process for tests: a real Pebble store
// in a temporary directory, the router with every built-in module, and the engine on free
// loopback ports with a self-signed certificate. It also has raw-socket helpers for tests
// that must send what no client library would.
package vireotest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/modules/antispam"
	"github.com/vireo-im/vireo/modules/module"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Options tune the test server; the zero value is a sensible default.
type Options struct {
	Domain     string // default "localhost"
	Loops      int    // event loops; default 2, so that connections land on different loops
	RequireTLS *bool  // default true
	AllowPlain bool
	// External checks the passwords of accounts without keys (engine.Config.External).
	External engine.PasswordChecker
	// ExternalManage sends in-band account changes to External (engine.Config.ExternalManage).
	ExternalManage bool
	Registration   bool
	// RegistrationCaptcha asks open registrations for an XEP-0158 CAPTCHA.
	RegistrationCaptcha bool
	ReservedNames       []string // refused by registration (engine.Config.ReservedNames)
	AdminJIDs           []string // likewise (engine.Config.AdminJIDs)
	// Anonymous opens Domain to guests (engine.Config.AnonymousDomains); AnonymousS2S lets
	// them reach other servers.
	Anonymous, AnonymousS2S bool
	PreAuthTimeout          time.Duration
	MaxOutbound             int
	MaxStanza               int
	AuthFailLimit           int
	PingAfter               time.Duration
	PingTimeout             time.Duration
	Components              []engine.Component // opens a component listener when set
	// S2S opens a server-to-server listener ("s2s"); Federate points servers at each other.
	S2S       bool
	S2SSecret []byte // the dialback secret; default random
	// S2SSetupTimeout bounds an outbound stream's setup; default the engine's.
	S2SSetupTimeout time.Duration
	// S2SAddr is the s2s listener's address; default a free port on 127.0.0.1.
	S2SAddr string
	// S2SDirectTLS also opens an XEP-0368 direct TLS s2s listener ("s2s-tls") on a free
	// port on 127.0.0.1, or on S2SDirectTLSAddr; FederateDirectTLS points servers at it.
	S2SDirectTLS     bool
	S2SDirectTLSAddr string
	// S2SCAs are the roots peer servers' certificates are checked against for SASL
	// EXTERNAL (engine.S2S.CAs); nil: dialback only.
	S2SCAs *x509.CertPool
	// S2SRequireValidCerts refuses outbound streams to peers whose certificate does not
	// validate (engine.S2S.RequireValidCerts).
	S2SRequireValidCerts bool
	// S2SIdleTimeout closes idle s2s streams; default the engine's (10 minutes).
	S2SIdleTimeout time.Duration
	// S2SNoBidi turns XEP-0288 bidirectional streams off (engine.S2S.NoBidi): a stream per
	// direction.
	S2SNoBidi bool
	// S2SBackoffMin and S2SBackoffMax bound the reconnect back-off; default the engine's.
	S2SBackoffMin, S2SBackoffMax time.Duration
	// S2SResolver answers DNS for domains Federate did not list; default NoDNS, so that
	// tests never look up a name on the network.
	S2SResolver engine.S2SResolver
	// CertPEM and KeyPEM are the server's certificate chain and key (say, issued by a
	// test CA); default a self-signed certificate for Domain.
	CertPEM, KeyPEM []byte
	RegisterLimit   int
	Trusted         []netip.Prefix
	MaxConns        int
	ResumeTimeout   time.Duration
	SMAckAfter      time.Duration
	SMAckTimeout    time.Duration
	// CoalesceWrites is engine.Config.CoalesceWrites (0: the engine's default).
	CoalesceWrites time.Duration
	MaxUnauthAddr  int
	Dir            string // data directory; default t.TempDir()
	Logger         *zerolog.Logger
	// ModuleConfig decodes [modules.<id>] for the modules (router.Options.ModuleConfig);
	// nil leaves every module at its defaults.
	ModuleConfig func(id string, v any) error
	Web          engine.Web // web listener settings (origins, public URL)
	// Controller is what modules get as the process (reload, shutdown); nil: none.
	Controller module.Controller
	// SenderRate and SenderBurst shape what one session sends (router.Options); 0: off.
	SenderRate, SenderBurst int
	// WebURL is what modules get as the web listener's public URL (router.Options.WebURL).
	WebURL     func(domain string) string
	WebTLSAddr string // the HTTPS web listener's address; default a free loopback port
	// LinkSecret opens a TLS link listener ("link") for edges (StartEdge) on a free
	// loopback port.
	LinkSecret []byte
	// LinkS2S sends outbound federation through the linked edges (engine.Link.S2S).
	LinkS2S bool
}

// Server is a running test server.
type Server struct {
	Engine *engine.Server
	Router *router.Router
	Store  store.Store
	Dir    string
	// CertPEM is the server's self-signed certificate, for clients that need a CA file.
	CertPEM []byte
	KeyPEM  []byte
	domain  string
	stopped sync.Once
	pool    *x509.CertPool
	tlsCfg  *tls.Config
}

// Start runs a server until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Domain == "" {
		o.Domain = "localhost"
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	log := zerolog.Nop()
	if o.Logger != nil {
		log = *o.Logger
	}
	certPEM, keyPEM := o.CertPEM, o.KeyPEM
	if certPEM == nil {
		var err error
		if certPEM, keyPEM, err = config.SelfSigned([]string{o.Domain}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	st, err := pebblestore.Open(o.Dir+"/db", pebblestore.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	requireTLS := true
	if o.RequireTLS != nil {
		requireTLS = *o.RequireTLS
	}
	lim := xmlstream.DefaultLimits()
	if o.MaxStanza > 0 {
		lim.MaxStanza = o.MaxStanza
	}
	// As the real server: XEP-0368 ALPN on c2s (the web listeners must still speak HTTP).
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"xmpp-client"}}
	var resolver engine.S2SResolver = NoDNS{}
	if o.S2SResolver != nil {
		resolver = o.S2SResolver
	}
	rt, err := router.New(router.Options{Domains: []string{o.Domain}, Store: st, Logger: log, Shards: 8,
		ModuleConfig: moduleConfig(o.ModuleConfig), DataDir: o.Dir, TLS: tlsCfg, Controller: o.Controller, WebURL: o.WebURL,
		SenderRate: o.SenderRate, SenderBurst: o.SenderBurst})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	webTLS := "127.0.0.1:0"
	if o.WebTLSAddr != "" {
		webTLS = o.WebTLSAddr
	}
	ls := []engine.Listener{{Name: "c2s", Addr: "127.0.0.1:0"}, {Name: "c2s-tls", Addr: "127.0.0.1:0", DirectTLS: true},
		{Name: "web", Addr: "127.0.0.1:0", WebSocket: true}, {Name: "web-tls", Addr: webTLS, WebSocket: true, DirectTLS: true}}
	if len(o.Components) > 0 {
		ls = append(ls, engine.Listener{Name: "component", Addr: "127.0.0.1:0", Kind: engine.KindComponent})
	}
	if o.S2S {
		addr := "127.0.0.1:0"
		if o.S2SAddr != "" {
			addr = o.S2SAddr
		}
		ls = append(ls, engine.Listener{Name: "s2s", Addr: addr, Kind: engine.KindS2S})
	}
	if o.S2SDirectTLS {
		addr := "127.0.0.1:0"
		if o.S2SDirectTLSAddr != "" {
			addr = o.S2SDirectTLSAddr
		}
		ls = append(ls, engine.Listener{Name: "s2s-tls", Addr: addr, Kind: engine.KindS2S, DirectTLS: true})
	}
	var link engine.Link
	if o.LinkSecret != nil {
		link = engine.Link{Listen: []string{"127.0.0.1:0"}, Secret: o.LinkSecret, S2S: o.LinkS2S,
			TLS: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13}}
	}
	if o.External != nil {
		rt.SetExternalUsers(o.External.UserExists)
	}
	eng, err := engine.New(engine.Config{
		Domains:          []string{o.Domain},
		Listeners:        ls,
		Components:       o.Components,
		RegisterLimit:    o.RegisterLimit,
		Trusted:          o.Trusted,
		MaxConnections:   o.MaxConns,
		ResumeTimeout:    o.ResumeTimeout,
		SMAckAfter:       o.SMAckAfter,
		SMAckTimeout:     o.SMAckTimeout,
		CoalesceWrites:   o.CoalesceWrites,
		MaxUnauthPerAddr: o.MaxUnauthAddr,
		Web:              o.Web,
		S2S: engine.S2S{Secret: o.S2SSecret, SetupTimeout: o.S2SSetupTimeout, CAs: o.S2SCAs,
			RequireValidCerts: o.S2SRequireValidCerts, IdleTimeout: o.S2SIdleTimeout,
			BackoffMin: o.S2SBackoffMin, BackoffMax: o.S2SBackoffMax, Resolver: resolver, DNSLoopback: true, NoBidi: o.S2SNoBidi},
		Link:                link,
		TLS:                 tlsCfg,
		RequireTLS:          requireTLS,
		AllowPlain:          o.AllowPlain,
		External:            o.External,
		ExternalManage:      o.ExternalManage,
		Registration:        o.Registration,
		RegistrationCaptcha: o.RegistrationCaptcha,
		ReservedNames:       o.ReservedNames,
		AdminJIDs:           o.AdminJIDs,
		AnonymousDomains:    anonymous(o),
		AnonymousS2S:        o.AnonymousS2S,
		PreAuthTimeout:      o.PreAuthTimeout,
		MaxOutbound:         o.MaxOutbound,
		Limits:              lim,
		Store:               st,
		Router:              rt,
		Logger:              log,
		AuthFailLimit:       o.AuthFailLimit,
		PingAfter:           o.PingAfter,
		PingTimeout:         o.PingTimeout,
		Loops:               cmp.Or(o.Loops, 2),
	})
	if err == nil {
		err = eng.Start()
	}
	if err == nil {
		err = rt.StartRemovals() // as the server does once it can reach every destination
	}
	if err != nil {
		rt.Close()
		st.Close()
		t.Fatal(err)
	}
	s := &Server{Engine: eng, Router: rt, Store: st, Dir: o.Dir, CertPEM: certPEM, KeyPEM: keyPEM, domain: o.Domain, pool: pool, tlsCfg: tlsCfg}
	t.Cleanup(s.Stop)
	return s
}

func anonymous(o Options) []string {
	if !o.Anonymous {
		return nil
	}
	return []string{o.Domain}
}

// moduleConfig moves the listeners modules open of their own (the upload module's HTTPS
// listener) to a free loopback port unless the test's own config names one, so that tests
// run side by side and beside a real server.
func moduleConfig(user func(id string, v any) error) func(id string, v any) error {
	return func(id string, v any) error {
		if l, ok := v.(interface{ SetDefaultListen(string) }); ok {
			l.SetDefaultListen("127.0.0.1:0")
		}
		if a, ok := v.(*antispam.Config); ok {
			// Federation tests send from strangers at speed; the limits are their own
			// test's subject, which sets them (as SenderRate for shaping).
			a.PerSender, a.PerDomain = 0, 0
		}
		if user == nil {
			return nil
		}
		return user(id, v)
	}
}

// Stop shuts everything down; Start registers it with t.Cleanup.
func (s *Server) Stop() {
	s.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Engine.Shutdown(ctx)
		s.Router.Close()
		s.Store.Close()
	})
}

// Domain is the served domain.
func (s *Server) Domain() string { return s.domain }

// C2SAddr is the STARTTLS listener.
func (s *Server) C2SAddr() string { return s.Engine.Addr("c2s").String() }

// ComponentAddr is the XEP-0114 listener's address (with Options.Components).
func (s *Server) ComponentAddr() string { return s.Engine.Addr("component").String() }

// NoDNS is an engine.S2SResolver that knows no names: every lookup fails as if the
// domain did not exist.
type NoDNS struct{}

// LookupSRV implements engine.S2SResolver.
func (NoDNS) LookupSRV(_ context.Context, _, _, name string) (string, []*net.SRV, error) {
	return "", nil, &net.DNSError{Err: "no such host (vireotest.NoDNS)", Name: name, IsNotFound: true}
}

// LookupHost implements engine.S2SResolver.
func (NoDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host (vireotest.NoDNS)", Name: host, IsNotFound: true}
}

// S2SAddr is the server-to-server listener's address (with Options.S2S).
func (s *Server) S2SAddr() string { return s.Engine.Addr("s2s").String() }

// Federate makes every server in servers (started with Options.S2S) reach the others'
// domains through their s2s listeners, with a static host table instead of DNS.
func Federate(servers ...*Server) {
	for _, s := range servers {
		hosts := map[string]string{}
		for _, p := range servers {
			if p != s {
				hosts[p.domain] = p.S2SAddr()
			}
		}
		s.Engine.SetS2SHosts(hosts)
	}
}

// S2STLSAddr is the direct TLS server-to-server listener's address (with
// Options.S2SDirectTLS).
func (s *Server) S2STLSAddr() string { return s.Engine.Addr("s2s-tls").String() }

// FederateDirectTLS is Federate through the direct TLS s2s listeners (XEP-0368): every
// server in servers (started with Options.S2SDirectTLS) reaches the others with TLS from
// the first byte.
func FederateDirectTLS(servers ...*Server) {
	for _, s := range servers {
		hosts := map[string]string{}
		for _, p := range servers {
			if p != s {
				hosts[p.domain] = engine.S2SDirectTLSScheme + p.S2STLSAddr()
			}
		}
		s.Engine.SetS2SHosts(hosts)
	}
}

// TLSAddr is the direct-TLS listener.
func (s *Server) TLSAddr() string { return s.Engine.Addr("c2s-tls").String() }

// WebAddr and WebTLSAddr are the web listeners (WebSocket, host-meta), plain and HTTPS.
func (s *Server) WebAddr() string    { return s.Engine.Addr("web").String() }
func (s *Server) WebTLSAddr() string { return s.Engine.Addr("web-tls").String() }

// CertPool trusts the server's certificate.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// ClientTLS returns a client config that trusts the server.
func (s *Server) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: s.pool, ServerName: jid.ToASCII(s.domain), MinVersion: tls.VersionTLS12}
}

// AddUser creates local@domain with password (low iteration count: tests only).
func (s *Server) AddUser(t testing.TB, local, password string) string {
	t.Helper()
	keys, err := creds.DeriveAll(password, creds.MinIter)
	if err != nil {
		t.Fatal(err)
	}
	user := local + "@" + s.domain
	// A name removed just before is taken again once the removal's cleanup is done
	// (store.ErrRemoving), as a client's registration would be.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := s.Store.Accounts().Create(store.Account{User: user, Creds: keys, Created: time.Now()})
		if err == nil {
			return user
		}
		if !errors.Is(err, store.ErrRemoving) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// Befriend makes the local users a and b each other's contacts, each subscribed to the
// other's presence (roster items with subscription both). name is what a's roster calls b
// ("" for nothing).
func (s *Server) Befriend(t testing.TB, a, b, name string) {
	t.Helper()
	for _, it := range []struct{ user, contact, name string }{{a, b, name}, {b, a, ""}} {
		item := store.RosterItem{JID: it.contact + "@" + s.domain, Name: it.name, Sub: store.SubBoth}
		if _, err := s.Store.Rosters().Put(it.user+"@"+s.domain, item); err != nil {
			t.Fatal(err)
		}
	}
}

// RawConn is a plain socket with send/expect helpers.
type RawConn struct {
	t   testing.TB
	c   net.Conn
	buf bytes.Buffer
}

// NewRawConn wraps a connection the test dialed itself (closed at the test's end).
func NewRawConn(t testing.TB, c net.Conn) *RawConn {
	t.Cleanup(func() { c.Close() })
	return &RawConn{t: t, c: c}
}

// Dial opens a raw connection to the STARTTLS listener.
func (s *Server) Dial(t testing.TB) *RawConn {
	t.Helper()
	return DialAddr(t, s.C2SAddr())
}

// DialAddr opens a raw TCP connection to addr.
func DialAddr(t testing.TB, addr string) *RawConn {
	t.Helper()
	return DialFrom(t, addr, "")
}

// DialFrom opens a raw TCP connection to addr from the local address ip ("" for any).
func DialFrom(t testing.TB, addr, ip string) *RawConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &RawConn{t: t, c: c}
}

// Conn returns the underlying connection.
func (r *RawConn) Conn() net.Conn { return r.c }

// Send writes s.
func (r *RawConn) Send(s string) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

// StartTLS upgrades the raw connection (after <proceed/> was read).
func (r *RawConn) StartTLS(cfg *tls.Config) {
	r.t.Helper()
	tc := tls.Client(r.c, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("tls: %v", err)
	}
	tc.SetDeadline(time.Time{})
	r.c = tc
	r.buf.Reset()
}

// Expect reads until substr has arrived and returns everything read so far; it fails the
// test after 5 s or if the connection closes first.
func (r *RawConn) Expect(substr string) string {
	r.t.Helper()
	got, err := r.readUntil(substr, 5*time.Second)
	if err != nil {
		r.t.Fatalf("expecting %q: %v; got %q", substr, err, got)
	}
	return got
}

// Unread puts s back in front of what is still to be read: a helper that waited for one
// answer hands back what came before it, for the test's next Expect.
func (r *RawConn) Unread(s string) {
	rest := append([]byte(s), r.buf.Bytes()...)
	r.buf.Reset()
	r.buf.Write(rest)
}

// ReadUntil is Expect without failing the test (for use from other goroutines).
func (r *RawConn) ReadUntil(substr string, d time.Duration) (string, error) {
	return r.readUntil(substr, d)
}

// readUntil searches what is buffered in place: a reader that falls behind a flood holds
// megabytes, and copying them for every stanza looked for made it quadratic, slow enough
// that the server rightly cut it off as a slow reader.
func (r *RawConn) readUntil(substr string, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	want := []byte(substr)
	var p []byte
	for {
		if i := bytes.Index(r.buf.Bytes(), want); i >= 0 {
			return string(r.buf.Next(i + len(want))), nil
		}
		if p == nil {
			p = make([]byte, 32<<10)
		}
		r.c.SetReadDeadline(deadline)
		n, err := r.c.Read(p)
		r.buf.Write(p[:n])
		if err != nil {
			return r.buf.String(), err
		}
	}
}

// ExpectClosed reads until the server closes the connection and returns what it sent.
func (r *RawConn) ExpectClosed() string {
	r.t.Helper()
	got, err := r.readUntil("\x00never\x00", 10*time.Second)
	if err == nil {
		r.t.Fatalf("connection still open")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		r.t.Fatalf("connection not closed within 10 s; got %q", got)
	}
	return got
}

// DialTLS opens a raw connection to the direct-TLS listener.
func (s *Server) DialTLS(t testing.TB) *RawConn {
	t.Helper()
	return s.DialTLSFrom(t, "")
}

// TryDialTLSFrom is DialTLSFrom that returns the error (a refused connection fails its
// TLS handshake) instead of failing the test.
func (s *Server) TryDialTLSFrom(t testing.TB, ip string) (*RawConn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := tls.DialWithDialer(d, "tcp", s.TLSAddr(), s.ClientTLS())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &RawConn{t: t, c: c}, nil
}

// DialTLSFrom is DialTLS from the local address ip (another 127.0.0.x stands in for
// another client address).
func (s *Server) DialTLSFrom(t testing.TB, ip string) *RawConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	c, err := tls.DialWithDialer(d, "tcp", s.TLSAddr(), s.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &RawConn{t: t, c: c}
}

// Header is the client stream header for the test domain.
func (s *Server) Header() string {
	return "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + s.domain + "' version='1.0'>"
}

// LoginPlain logs in over direct TLS with SASL PLAIN (the server must allow PLAIN) and
// binds resource; it returns the raw connection after the bind result.
func (s *Server) LoginPlain(t testing.TB, user, pass, resource string) *RawConn {
	t.Helper()
	r := s.AuthPlain(t, user, pass)
	r.Send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource + "</resource></bind></iq>")
	r.Expect("</iq>")
	return r
}

// AuthPlain logs in over direct TLS with SASL PLAIN and restarts the stream; it returns
// the raw connection after the post-authentication features (before bind).
func (s *Server) AuthPlain(t testing.TB, user, pass string) *RawConn {
	t.Helper()
	r := s.DialTLS(t)
	r.Send(s.Header())
	r.Expect("</stream:features>")
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "</auth>")
	r.Expect("<success")
	r.Send(s.Header())
	r.Expect("</stream:features>")
	return r
}

// Never fails the test if substr arrives within 300 ms.
func (r *RawConn) Never(substr string) {
	r.t.Helper()
	if got, err := r.readUntil(substr, 300*time.Millisecond); err == nil {
		r.t.Fatalf("unexpectedly received %q: %q", substr, got)
	}
}

// FreePort returns a TCP port on ip that was free a moment ago, for a server a test starts
// on it. It is below the kernel's ephemeral range (32768 and up by default): a port from
// that range can be handed to a listener on ":0" (the upload module's) or to any process's
// outgoing socket between choosing it and binding it. The search starts at a random place,
// so that packages testing in parallel rarely try the same port.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	const lo, n = 20000, 12768 // [20000, 32768)
	start := rand.IntN(n)
	for i := range n {
		p := lo + (start+i)%n
		if l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p))); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatalf("no free port on %s below the ephemeral range", ip)
	return 0
}

// Context is the context for a mellium call (a session's negotiation, a Send): it ends at
// its deadline d or when the test ends, never as soon as the call returns. mellium watches
// the context in a goroutine that sets the connection's deadline in the past once the
// context is done; cancelled right after the call, that goroutine can see both its own stop
// and the context done, pick the deadline, and fail the session's next read or write with
// "i/o timeout" (it did in CI: TestIntegrationAdhocFederation).
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
