// Command vireo is the Vireo XMPP server.
//
// On first start it writes a commented vireo.toml for this machine's host name, a
// self-signed certificate and an empty database, then serves. SIGHUP reloads the config,
// SIGTERM and SIGINT shut down cleanly.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/acmecert"
	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/engine/dashboard"
	"github.com/vireo-im/vireo/engine/extauth"
	"github.com/vireo-im/vireo/engine/fast"
	"github.com/vireo-im/vireo/engine/invitepage"
	"github.com/vireo-im/vireo/engine/metrics"
	"github.com/vireo-im/vireo/engine/signup"
	"github.com/vireo-im/vireo/engine/webapi"
	"github.com/vireo-im/vireo/modules/adhoc"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/muc"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// ShutdownGrace bounds how long streams get to receive <system-shutdown/> before exit.
const ShutdownGrace = 5 * time.Second

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// Before anything is created: the config, certificates and database are for this
	// user only (Pebble would create its files 0644).
	admin.RestrictUmask()
	fl := flag.NewFlagSet("vireo", flag.ContinueOnError)
	cfgPath := fl.String("config", "vireo.toml", "configuration file (written with defaults if missing)")
	level := fl.String("log-level", "", "override log_level: debug, info, warn, error")
	format := fl.String("log-format", "", "override log_format: console or json")
	check := fl.Bool("t", false, "check the configuration and exit")
	dns := fl.Bool("dns", false, "print the DNS records clients and other servers look for, look each one up, and exit")
	dnsTarget := fl.String("dns-target", "", "with -dns: the host name the SRV records point to (default: each domain itself)")
	if err := fl.Parse(args); err != nil {
		return 2
	}

	firstStart := false
	if _, err := os.Stat(*cfgPath); errors.Is(err, fs.ErrNotExist) {
		domain := config.DetectDomain()
		if err := config.WriteDefault(*cfgPath, domain, true); err != nil {
			fmt.Fprintln(os.Stderr, "vireo:", err)
			return 1
		}
		firstStart = true
		fmt.Fprintf(os.Stderr, "vireo: first start: wrote %s for domain %q (edit it, then restart or reload)\n", *cfgPath, domain)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vireo:", err)
		return 1
	}
	if *level != "" {
		cfg.LogLevel = *level
	}
	if *format != "" {
		cfg.LogFormat = *format
	}
	if *dns {
		services, err := remoteDomains(cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "vireo: %s: %v\n", *cfgPath, err)
			return 1
		}
		if missing := dnsReport(os.Stdout, cfg.DNSRecords(*dnsTarget, services, directHosts(cfg)), net.DefaultResolver, 3*time.Second); missing > 0 {
			return 1
		}
		return 0
	}
	if *check {
		if err := checkModules(cfg); err != nil {
			fmt.Fprintf(os.Stderr, "vireo: %s: %v\n", *cfgPath, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "vireo: %s is valid\n", *cfgPath)
		return 0
	}
	log := newLogger(cfg)
	tuneGC(cfg.Runtime, log)
	if cfg.Edge.Core != "" {
		return runEdge(cfg, *cfgPath, log)
	}
	if a := os.Getenv("VIREO_PPROF"); a != "" {
		// Profiling for performance work: loopback only, off unless asked for.
		go func() {
			if err := http.ListenAndServe(a, nil); err != nil {
				log.Warn().Err(err).Msg("pprof listener")
			}
		}()
	}

	s, err := start(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("start failed")
		return 1
	}
	n, _ := s.store.Accounts().Count()
	log.Info().Strs("domains", cfg.Domains).Strs("c2s", cfg.C2S.Listen).Strs("c2s_tls", cfg.C2S.TLSListen).
		Strs("web", cfg.Web.Listen).Strs("web_tls", cfg.Web.TLSListen).Strs("link", cfg.Link.Listen).Int("accounts", n).Msg("vireo is serving")
	if firstStart || n == 0 {
		fmt.Fprintf(os.Stderr, "\nAdd a user with:\n  bin/vireoctl -config %s adduser alice@%s SECRET\n", *cfgPath, cfg.Domains[0])
		if cfg.C2S.Registration {
			fmt.Fprintln(os.Stderr, "or register from a client (in-band registration is on in this config).")
		}
		fmt.Fprintln(os.Stderr)
	}

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
wait:
	for {
		select {
		case v := <-sig:
			if v == syscall.SIGHUP {
				var lerr *engine.ListenerError
				if err := s.Reload(); errors.As(err, &lerr) {
					log.Error().Err(err).Msg("reload applied, but some listeners are not serving")
				} else if err != nil {
					log.Error().Err(err).Msg("reload failed; keeping the running configuration")
				} else {
					log.Info().Msg("configuration reloaded")
				}
				continue
			}
			log.Info().Str("signal", v.String()).Msg("shutting down")
			break wait
		case msg := <-s.stop:
			log.Info().Str("reason", msg).Msg("shutting down: requested by an administrator")
			break wait
		}
	}
	signal.Stop(sig)
	if err := s.Close(); err != nil {
		log.Error().Err(err).Msg("shutdown")
		return 1
	}
	if s.restart.Load() {
		// XEP-0133 restart: the same program (the file now at its path, so an upgrade
		// installed there starts), arguments and environment, in this process, so a
		// supervisor sees no exit.
		exe, err := os.Executable()
		if err == nil {
			log.Info().Str("program", exe).Msg("stopped; restarting")
			err = syscall.Exec(exe, os.Args, os.Environ())
		}
		log.Error().Err(err).Msg("restart failed")
		return 1
	}
	log.Info().Msg("stopped")
	return 0
}

func newLogger(cfg *config.Config) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	var l zerolog.Logger
	if cfg.LogFormat == "json" {
		l = zerolog.New(os.Stderr)
	} else {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339})
	}
	return l.Level(lvl).With().Timestamp().Logger()
}

// server is the wiring of one all-in-one process.
type server struct {
	mu    sync.Mutex
	cfg   *config.Config
	log   zerolog.Logger
	certs *config.Certs
	store store.Store
	rt    *router.Router
	eng   *engine.Server
	admin net.Listener
	start time.Time
	// fastKey derives XEP-0484 tokens; it lives in its own file beside the database, so
	// a copy of the database alone holds no usable token.
	fastKey []byte
	// stop receives an administrator's shutdown request (module.Controller); run's signal
	// loop takes it like SIGTERM. restart, set before, has run start the program again
	// once stopped (module.Restarter).
	stop    chan string
	restart atomic.Bool
	// dash is the web dashboard, mounted at /admin/ on the web listeners while [web]
	// dashboard is on.
	dash *dashboard.Dashboard
	// invitePage serves XEP-0401 invitation pages on every web listener.
	invitePage *invitepage.Page
	signupPage *signup.Page
	// acme, when [tls] acme is on, obtains and renews certificates in the background;
	// acmeStop ends its loop and acmeDone closes when it has. A reload may turn it on or
	// off (swapACME), under acmeMu and not mu: its loop takes mu to read the hosts.
	acme     atomic.Pointer[acmecert.Manager]
	acmeMu   sync.Mutex
	acmeStop context.CancelFunc
	acmeDone chan struct{}
	// loops is the number of event loops (eventLoops).
	loops int
	// ext runs [auth] external, the operator's password-checking program; nil without one.
	ext *extauth.Program
}

func start(cfg *config.Config, log zerolog.Logger) (*server, error) {
	s := &server{cfg: cfg, log: log, start: time.Now(), stop: make(chan string, 1)}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, err
	}
	created, err := config.EnsureCert(cfg.TLS.Cert, cfg.TLS.Key, cfg.Domains)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn().Str("cert", cfg.TLS.Cert).Msg("generated a self-signed certificate; clients will ask to trust it")
	}
	if err := s.ensureHostCerts(cfg); err != nil {
		return nil, err
	}
	if s.certs, err = config.LoadCerts(cfg); err != nil {
		return nil, err
	}
	st, err := pebblestore.Open(cfg.DBDir(), pebblestore.Options{
		Logger:  log.With().Str("mod", "store").Logger(),
		MinFree: cfg.Store.MinFree,
	})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.DBDir(), err)
	}
	s.store = st
	if s.fastKey, err = fast.LoadKey(filepath.Join(cfg.DataDir, "fast.key")); err != nil {
		st.Close()
		return nil, err
	}
	// A data_dir that existed before (or was made by hand) keeps its mode; say so when it
	// lets other users in, rather than chmod behind the operator's back.
	for _, d := range []string{cfg.DataDir, cfg.DBDir()} {
		if w := admin.ExposedWarning(d); w != "" {
			log.Warn().Str("dir", d).Msg(w)
		}
	}
	// Before the router sizes its worker pool by the processors. Edge links and outbound
	// federation run on Go's own network poller: they need a processor the event loops
	// do not hold.
	s.loops = eventLoops(cfg.Runtime.EventLoops, len(cfg.Link.Listen) > 0 || cfg.S2S.Enabled)
	if err := checkHostModuleTables(cfg); err != nil {
		st.Close()
		return nil, err
	}
	s.rt, err = router.New(s.routerOptions(cfg))
	if err != nil {
		st.Close()
		return nil, err
	}
	s.dash = s.newDashboard()
	s.invitePage = invitepage.New(s, s.log.With().Str("mod", "invitepage").Logger())
	s.signupPage = signup.New(s, s.log.With().Str("mod", "signup").Logger())
	if cfg.TLS.ACME {
		m, err := s.newACME(cfg)
		if err != nil {
			s.rt.Close()
			st.Close()
			return nil, err
		}
		s.useACME(m, cfg)
	}
	if len(cfg.Link.Listen) > 0 && !cfg.Link.UseTLS() {
		log.Warn().Strs("link", cfg.Link.Listen).Msg("edge links are not encrypted (link.tls = false): clients' streams cross them in clear")
	}
	if s.ext, err = startExternal(cfg, s.log); err != nil {
		s.stopACME()
		s.rt.Close()
		st.Close()
		return nil, err
	}
	s.rt.SetExternalUsers(userChecker(s.ext))
	s.eng, err = engine.New(s.engineConfig(cfg))
	if err == nil {
		err = s.eng.Start()
	}
	if err != nil {
		s.stopACME()
		s.rt.Close()
		st.Close()
		if s.ext != nil {
			s.ext.Close()
		}
		return nil, err
	}
	// Only now, with server-to-server streams possible: removals the store recorded while
	// the server was down tell remote contacts too.
	if err := s.rt.StartRemovals(); err != nil {
		log.Error().Err(err).Msg("store: reading the account removals left to finish")
	}
	// Only now: HTTP-01 needs the web listener up. Until the first certificate is issued
	// the listeners serve the configured (self-signed) one.
	s.runACME()
	s.admin, err = admin.Serve(cfg.Admin.Socket, s, log.With().Str("mod", "admin").Logger())
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// newACME makes the ACME manager of cfg.
func (s *server) newACME(cfg *config.Config) (*acmecert.Manager, error) {
	switch {
	case cfg.TLS.ACMEChallenge == acmecert.HTTP01 && len(cfg.Web.Listen) == 0:
		s.log.Warn().Msg("acme: no plain [web] listener to answer http-01 challenges; certificates cannot be issued")
	case cfg.TLS.ACMEChallenge == acmecert.TLSALPN01 && len(cfg.C2S.TLSListen)+len(cfg.Web.TLSListen) == 0:
		s.log.Warn().Msg("acme: no direct-TLS listener to answer tls-alpn-01 challenges; certificates cannot be issued")
	}
	return acmecert.New(acmecert.Options{
		Directory:   cfg.TLS.ACMEDirectory,
		Email:       cfg.TLS.ACMEEmail,
		Roots:       cfg.TLS.ACMERoots,
		Dir:         cfg.ACMEDir(),
		RenewBefore: cfg.TLS.ACMERenewBefore.Duration,
		Names:       s.acmeNames,
		Challenge:   cfg.TLS.ACMEChallenge,
		Logger:      s.log.With().Str("mod", "acme").Logger(),
	})
}

// useACME puts m's certificates in front of the files.
func (s *server) useACME(m *acmecert.Manager, cfg *config.Config) {
	s.acme.Store(m)
	s.certs.SetFirst(m.Certificate)
	if cfg.TLS.ACMEChallenge == acmecert.TLSALPN01 {
		s.certs.SetChallenge(m.ALPNCertificate)
	}
}

// runACME starts the manager's loop, if there is a manager.
func (s *server) runACME() {
	m := s.acme.Load()
	if m == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.acmeStop, s.acmeDone = cancel, make(chan struct{})
	go func() {
		defer close(s.acmeDone)
		m.Run(ctx)
	}()
}

// stopACME ends the manager's loop and waits for it; the manager and its certificates
// stay in use (a shutdown).
func (s *server) stopACME() {
	if s.acmeStop != nil {
		s.acmeStop()
		<-s.acmeDone
		s.acmeStop, s.acmeDone = nil, nil
	}
}

// swapACME replaces the running manager with m (nil: none, the files serve again), at a
// reload that turned ACME on or off or changed how it orders. Certificates already
// obtained stay under data_dir/acme for a manager to take up again. It must not be
// called with s.mu held: the loop it stops may be waiting for s.mu.
func (s *server) swapACME(m *acmecert.Manager, cfg *config.Config) {
	s.stopACME()
	s.acme.Store(nil)
	s.certs.SetFirst(nil)
	s.certs.SetChallenge(nil)
	if m != nil {
		s.useACME(m, cfg)
		s.runACME()
	}
}

// acmeNames lists one certificate per virtual host: the host, then the service domains
// under it that modules claimed (conference., upload., pubsub.) and the XEP-0114
// components under it, which other servers reach over s2s too.
func (s *server) acmeNames() [][]string {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	names := hostNames(cfg.Domains, append(s.rt.ServiceDomains(), componentDomains(cfg)...))
	for _, group := range names {
		for i, n := range group {
			group[i] = jid.ToASCII(n) // what orders, certificates and SNI name
		}
	}
	return names
}

// hostNames groups under each host the names in under that are its subdomains.
func hostNames(hosts, under []string) [][]string {
	var out [][]string
	for _, d := range hosts {
		names := []string{d}
		for _, sv := range under {
			if strings.HasSuffix(sv, "."+d) && !slices.Contains(names, sv) {
				names = append(names, sv)
			}
		}
		out = append(out, names)
	}
	return out
}

// componentDomains lists the XEP-0114 components' domains.
func componentDomains(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Component.Allow))
	for _, a := range cfg.Component.Allow {
		out = append(out, a.Domain)
	}
	return out
}

// remoteDomains lists the domains other servers reach here besides the hosts: the modules'
// services and the components (a push app server, a gateway).
func remoteDomains(cfg *config.Config) ([]string, error) {
	services, err := serviceDomains(cfg)
	if err != nil {
		return nil, err
	}
	for _, d := range componentDomains(cfg) {
		if !slices.Contains(services, d) {
			services = append(services, d)
		}
	}
	return services, nil
}

// checkModules provisions every enabled module with its [modules.*] table against a
// database in memory, as a start would, so that -t catches what only a module checks
// (a TURN service's transport, a contact address that is not a URI) instead of calling
// the file valid and leaving the error to the next start. Modules that need the data
// directory stay off, as they do without one; nothing is opened or written on disk.
func checkModules(cfg *config.Config) error {
	if err := checkHostModuleTables(cfg); err != nil {
		return err
	}
	_, err := serviceDomains(cfg)
	return err
}

// checkHostModuleTables refuses [modules.<id>] tables of modules that do not exist, and
// [vhosts."<host>".modules.<id>] tables of modules that do not exist or take their
// settings server-wide only.
func checkHostModuleTables(cfg *config.Config) error {
	for id := range cfg.Modules {
		if _, ok := module.Lookup(id); !ok && id != "disabled" {
			return fmt.Errorf("modules.%s: no such module (vireoctl modules lists them)", id)
		}
	}
	for _, id := range cfg.HostModuleIDs() {
		info, ok := module.Lookup(id)
		switch {
		case !ok:
			return fmt.Errorf("vhosts.%q.modules.%s: no such module (vireoctl modules lists them)", cfg.HostModuleTables(id)[0], id)
		case !info.PerHost:
			return fmt.Errorf("vhosts.%q.modules.%s: %s has no settings per host; set them in [modules.%s]", cfg.HostModuleTables(id)[0], id, id, id)
		}
	}
	return nil
}

// serviceDomains provisions the enabled modules against a database in memory, as
// checkModules does, and returns the service domains they claim (conference.<domain> …).
func serviceDomains(cfg *config.Config) ([]string, error) {
	st, err := pebblestore.Open("check", pebblestore.Options{Logger: zerolog.Nop(), FS: vfs.NewMem()})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	s := &server{store: st, log: zerolog.Nop()}
	opts := s.routerOptions(cfg)
	opts.DataDir, opts.TLS, opts.Controller = "", nil, nil
	rt, err := router.New(opts)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	return rt.ServiceDomains(), nil
}

// moduleTLS is the TLS configuration modules with listeners of their own get; nil before
// the certificates are loaded (checkModules).
func (s *server) moduleTLS() *tls.Config {
	if s.certs == nil {
		return nil
	}
	return s.certs.TLSConfig()
}

func (s *server) routerOptions(cfg *config.Config) router.Options {
	var enabled []string
	off := map[string]bool{}
	for _, id := range cfg.DisabledModules() {
		off[id] = true
	}
	for _, m := range module.All() {
		if !off[m.ID] {
			enabled = append(enabled, m.ID)
		}
	}
	return router.Options{
		Domains:      cfg.Domains,
		Shards:       cfg.Router.Shards,
		Store:        s.store,
		Modules:      enabled,
		ModuleConfig: moduleConfig(cfg),
		Logger:       s.log.With().Str("mod", "router").Logger(),
		OfflineQuota: cfg.Router.OfflineQuota,
		DataDir:      cfg.DataDir,
		TLS:          s.moduleTLS(),
		Controller:   s,
		WebURL:       s.WebURL,
		NoInline:     !cfg.Router.RouteInPlace,
		SenderRate:   cfg.C2S.MaxRate,
		SenderBurst:  cfg.C2S.MaxBurst,
		HostModules:  hostModules(cfg),
		HostModuleConfig: func(id string) ([]string, func(string, any) error) {
			return hostModuleConfig(cfg, id)
		},
	}
}

// hostModuleConfig is module.Reconfig's Hosts and DecodeHost of module id under cfg.
func hostModuleConfig(cfg *config.Config, id string) ([]string, func(string, any) error) {
	return cfg.HostModuleTables(id), func(host string, v any) error {
		if err := cfg.HostModuleSettings(host, id, v); err != nil {
			return err
		}
		if q, ok := v.(interface{ SetDefaultQuota(int) }); ok {
			q.SetDefaultQuota(cfg.Router.OfflineQuota)
		}
		return nil
	}
}

// hostModules are the router's view of [vhosts] modules_disabled.
func hostModules(cfg *config.Config) map[string][]string {
	var m map[string][]string
	for d, v := range cfg.VHosts {
		if len(v.ModulesDisabled) > 0 {
			if m == nil {
				m = map[string][]string{}
			}
			m[d] = v.ModulesDisabled
		}
	}
	return m
}

// moduleConfig decodes [modules.<id>] and lets router.offline_quota stand in for
// [modules.offline] quota when that is not set (before, router.offline_quota was ignored).
func moduleConfig(cfg *config.Config) func(id string, v any) error {
	return func(id string, v any) error {
		if err := cfg.ModuleSettings(id, v); err != nil {
			return err
		}
		if q, ok := v.(interface{ SetDefaultQuota(int) }); ok {
			q.SetDefaultQuota(cfg.Router.OfflineQuota)
		}
		return nil
	}
}

// hostPolicies are the engine's view of [vhosts]: each table with nothing left unset.
func hostPolicies(cfg *config.Config) map[string]engine.HostPolicy {
	if len(cfg.VHosts) == 0 {
		return nil
	}
	m := make(map[string]engine.HostPolicy, len(cfg.VHosts))
	for d := range cfg.VHosts {
		h := cfg.Host(d)
		m[d] = engine.HostPolicy{Registration: h.Registration, RegistrationCaptcha: h.RegistrationCaptcha,
			MaxAccounts: h.MaxAccounts, NoFederation: !h.Federation, Isolated: h.Isolated}
	}
	return m
}

// clientListeners are the [c2s] and [web] listeners, the same on an all-in-one server, a
// core and an edge.
func clientListeners(cfg *config.Config) []engine.Listener {
	var ls []engine.Listener
	for _, a := range cfg.C2S.Listen {
		ls = append(ls, engine.Listener{Name: "c2s", Addr: a})
	}
	for _, a := range cfg.C2S.TLSListen {
		ls = append(ls, engine.Listener{Name: "c2s-tls", Addr: a, DirectTLS: true})
	}
	for _, a := range cfg.Web.Listen {
		ls = append(ls, engine.Listener{Name: "web", Addr: a, WebSocket: true})
	}
	for _, a := range cfg.Web.TLSListen {
		ls = append(ls, engine.Listener{Name: "web-tls", Addr: a, WebSocket: true, DirectTLS: true})
	}
	return ls
}

func (s *server) engineConfig(cfg *config.Config) engine.Config {
	ls := clientListeners(cfg)
	var comps []engine.Component
	for _, c := range cfg.Component.Allow {
		comps = append(comps, engine.Component{Domain: c.Domain, Secret: c.Secret, Privileges: module.Privileges{
			Roster: c.Privileges.Roster, NoRosterPush: c.Privileges.RosterPush != nil && !*c.Privileges.RosterPush,
			Message: c.Privileges.Message, IQ: c.Privileges.IQ, Presence: c.Privileges.Presence}})
	}
	if len(comps) > 0 {
		// Without a component allowed the port would only ever refuse; keep it closed.
		for _, a := range cfg.Component.Listen {
			ls = append(ls, engine.Listener{Name: "component", Addr: a, Kind: engine.KindComponent})
		}
	}
	var s2s engine.S2S
	if cfg.S2S.Enabled {
		s2s = engine.S2S{Enabled: true, Hosts: cfg.S2S.Hosts, Secret: []byte(cfg.S2S.Secret), CAs: cfg.S2S.CAs,
			RequireValidCerts: cfg.S2S.RequireValidCerts, IdleTimeout: cfg.S2S.IdleTimeout.Duration,
			Deny: cfg.S2S.Deny, Allow: cfg.S2S.Allow, NoBidi: !cfg.S2S.BidiOn(),
			PublicOnly: cfg.S2S.PublicOnly}
		if len(cfg.S2S.Domains) > 0 {
			s2s.Domains = make(map[string]engine.S2SDomain, len(cfg.S2S.Domains))
			for d, p := range cfg.S2S.Domains {
				s2s.Domains[d] = engine.S2SDomain{RequireValidCerts: p.RequireCerts(cfg.S2S.RequireValidCerts),
					NoDialback: p.Dialback == "deny"}
			}
		}
		for _, a := range cfg.S2S.Listen {
			ls = append(ls, engine.Listener{Name: "s2s", Addr: a, Kind: engine.KindS2S})
		}
		for _, a := range cfg.S2S.DirectTLSListen {
			ls = append(ls, engine.Listener{Name: "s2s-tls", Addr: a, Kind: engine.KindS2S, DirectTLS: true})
		}
	}
	lim := xmlstream.DefaultLimits()
	lim.MaxStanza = cfg.C2S.MaxStanza
	var lk engine.Link
	if len(cfg.Link.Listen) > 0 {
		lk = engine.Link{Listen: cfg.Link.Listen, Secret: []byte(cfg.Link.Secret), S2S: cfg.Link.FederateThroughEdges}
		if cfg.Link.UseTLS() {
			lk.TLS = s.certs.TLSConfig().Clone()
			lk.TLS.NextProtos = nil
			lk.TLS.MinVersion = tls.VersionTLS13
		}
	}
	return engine.Config{
		Loops:               s.loops,
		Link:                lk,
		Domains:             cfg.Domains,
		Listeners:           ls,
		TLS:                 s.certs.TLSConfig(),
		RequireTLS:          cfg.C2S.RequireTLS,
		AllowPlain:          cfg.C2S.AllowPlain,
		Registration:        cfg.C2S.Registration,
		RegistrationCaptcha: cfg.C2S.RegistrationCaptcha,
		ReservedNames:       cfg.C2S.ReservedNames,
		AdminJIDs:           adminJIDs(cfg),
		AnonymousDomains:    cfg.C2S.AnonymousDomains,
		AnonymousS2S:        cfg.C2S.AnonymousS2S,
		Hosts:               hostPolicies(cfg),
		PreAuthTimeout:      cfg.C2S.PreAuthTimeout.Duration,
		MaxOutbound:         cfg.C2S.MaxOutbound,
		Limits:              lim,
		Store:               s.store,
		Router:              s.rt,
		Logger:              s.log.With().Str("mod", "engine").Logger(),
		AuthFailLimit:       cfg.C2S.AuthFailuresPerMinute,
		RegisterLimit:       cfg.C2S.RegistrationsPerMin,
		MaxConnections:      cfg.C2S.MaxConnections,
		MaxUnauthPerAddr:    cfg.C2S.MaxUnauthPerAddress,
		Trusted:             cfg.TrustedPrefixes(),
		PingAfter:           cfg.C2S.PingInterval.Duration,
		PingTimeout:         cfg.C2S.PingTimeout.Duration,
		Components:          comps,
		S2S:                 s2s,
		ResumeTimeout:       cfg.C2S.ResumeTimeout.Duration,
		SMAckEvery:          cfg.C2S.SMAckEvery,
		SMAckAfter:          cfg.C2S.SMAckAfter.Duration,
		SMAckTimeout:        cfg.C2S.SMAckTimeout.Duration,
		CoalesceWrites:      coalesceWrites(cfg.C2S.CoalesceWrites.Duration),
		External:            s.external(),
		ExternalManage:      cfg.Auth.ExternalManage,
		FastKey:             s.fastKey,
		FastTTL:             cfg.C2S.FastTokenTTL.Duration,
		Web: engine.Web{
			WSPath:   cfg.Web.WebSocketPath,
			BOSHPath: cfg.Web.BOSHPath,
			PublicWS: cfg.Web.PublicWebSocketURL,
			Origins:  cfg.Web.Origins,
			// Empty: loopback only (engine default).
			MetricsAllow:    cfg.MetricsAllowPrefixes(),
			TrustedProxies:  cfg.TrustedProxyPrefixes(),
			ForwardedHeader: forwardedHeader(cfg.Web.ForwardedHeader),
			BOSHInactivity:  cfg.Web.BOSHInactivity.Duration,
			BOSHWait:        cfg.Web.BOSHWait.Duration,
			Mounts:          s.mounts(cfg),
			ACMEChallenge:   s.acmeChallenge(),
		},
	}
}

// startExternal starts [auth] external, or returns nil when there is none.
func startExternal(cfg *config.Config, log zerolog.Logger) (*extauth.Program, error) {
	a := cfg.Auth
	if len(a.External) == 0 {
		return nil, nil
	}
	p, err := extauth.Start(extauth.Config{Command: a.External, Processes: a.ExternalProcesses,
		Timeout: a.ExternalTimeout.Duration, CacheTTL: a.ExternalCache.Duration,
		Log: log.With().Str("mod", "extauth").Logger()})
	if err != nil {
		return nil, fmt.Errorf("auth.external: %w", err)
	}
	return p, nil
}

// userChecker is the router's question about users the store does not hold yet: nil
// without a program.
func userChecker(p *extauth.Program) router.UserChecker {
	if p == nil {
		return nil
	}
	return p.UserExists
}

// external is the engine's PasswordChecker: nil (not a nil *extauth.Program) without one.
func (s *server) external() engine.PasswordChecker {
	if s.ext == nil {
		return nil
	}
	return s.ext
}

func (s *server) newDashboard() *dashboard.Dashboard {
	return dashboard.New(s, s.log.With().Str("mod", "dashboard").Logger(), nil)
}

// mounts are the handlers cfg puts on the web listeners. The engine looks them up per
// request, so a reload that changes them applies to the next request.
func (s *server) mounts(cfg *config.Config) []engine.Mount {
	m := []engine.Mount{{Prefix: invitepage.Prefix, Handler: s.invitePage}, {Prefix: invites.ResetPath, Handler: s.invitePage},
		{Prefix: signup.Prefix, Handler: s.signupPage}}
	if cfg.Web.Dashboard {
		m = append(m, engine.Mount{Prefix: dashboard.Prefix, Handler: s.dash})
	}
	if len(cfg.Web.APITokens) > 0 {
		api := webapi.New(s, webapi.Config{Tokens: cfg.Web.APITokens, Allow: cfg.APIAllowPrefixes()},
			s.log.With().Str("mod", "api").Logger())
		m = append(m, engine.Mount{Prefix: webapi.Prefix, Handler: api})
	}
	return m
}

// acmeChallenge is the web listener's HTTP-01 responder: the manager in force answers
// (a reload may turn ACME on or off), and without one nothing is pending.
func (s *server) acmeChallenge() func(string) (string, bool) {
	return func(token string) (string, bool) {
		if m := s.acme.Load(); m != nil {
			return m.HTTPChallenge(token)
		}
		return "", false
	}
}

// Reload re-reads the config file and applies what can change without a restart: domains,
// certificates and ACME (on or off, and how it orders), limits, registration, the
// dashboard switch, listeners, federation (on or off, and its policy), the external
// authentication program, and the settings of modules that take them while running
// (module.Reconfigurer). What needs a restart (data_dir, [link], the number of event
// loops, other modules' settings) is logged and kept as it was.
func (s *server) Reload() error {
	// The ACME manager changes after the rest, outside mu (swapACME), and one reload's
	// at a time.
	s.acmeMu.Lock()
	defer s.acmeMu.Unlock()
	s.mu.Lock()
	prev := s.cfg.TLS
	s.mu.Unlock()
	var swap bool
	var lerr *engine.ListenerError
	partial := s.reload(&swap)
	if partial != nil && !errors.As(partial, &lerr) || !swap {
		return partial
	}
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	var m *acmecert.Manager
	if cfg.TLS.ACME {
		// Outside mu: the manager reads the hosts (acmeNames) as it starts.
		var err error
		if m, err = s.newACME(cfg); err != nil {
			// The ACME settings in force stay the old ones, so that the next reload
			// tries again.
			s.mu.Lock()
			cp := *s.cfg
			cp.TLS.ACME, cp.TLS.ACMEEmail, cp.TLS.ACMEDirectory, cp.TLS.ACMEChallenge = prev.ACME, prev.ACMEEmail, prev.ACMEDirectory, prev.ACMEChallenge
			cp.TLS.ACMECARoots, cp.TLS.ACMERenewBefore, cp.TLS.ACMERoots = prev.ACMECARoots, prev.ACMERenewBefore, prev.ACMERoots
			s.cfg = &cp
			s.mu.Unlock()
			return fmt.Errorf("acme: %w (the rest of the configuration applied; the certificates stay as they were)", err)
		}
	}
	s.swapACME(m, cfg)
	if m != nil {
		s.log.Info().Str("directory", cfg.TLS.ACMEDirectory).Msg("acme: on; certificates are ordered now")
	} else {
		s.log.Info().Msg("acme: off; the configured certificates serve")
	}
	return partial
}

// reload is Reload but for the ACME manager: it sets *swap when the manager must change.
func (s *server) reload(swap *bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := config.Load(s.cfg.Path())
	if err != nil {
		return err
	}
	if err := checkHostModuleTables(next); err != nil {
		return err
	}
	if next.DataDir != s.cfg.DataDir {
		s.log.Warn().Msg("data_dir changes need a restart; applying the rest")
		next.DataDir = s.cfg.DataDir
	}
	// Listener changes apply (engine.Server.Reload): new ones open, removed ones stop
	// accepting and keep their connections. Federation policy (deny, allow, domains, hosts,
	// require_valid_certs) applies to new streams; turning federation on opens its
	// listeners and lets stanzas out, turning it off closes them and ends every stream to
	// or from another server.
	if strings.Join(next.Link.Listen, ",") != strings.Join(s.cfg.Link.Listen, ",") || next.Link.Secret != s.cfg.Link.Secret ||
		next.Link.UseTLS() != s.cfg.Link.UseTLS() || next.Link.FederateThroughEdges != s.cfg.Link.FederateThroughEdges {
		s.log.Warn().Msg("[link] changes need a restart; linked edges keep their links")
	}
	// All of [link] waits for the restart: the running configuration (vireoctl config,
	// the next reload's comparison) says what runs.
	next.Link = s.cfg.Link
	if next.Runtime.EventLoops != s.cfg.Runtime.EventLoops {
		s.log.Warn().Msg("runtime.event_loops changes need a restart")
	}
	if next.Admin.Socket != s.cfg.Admin.Socket {
		// vireoctl reads the socket's path from the file: until a restart it finds no
		// server there and works on the file alone.
		s.log.Warn().Str("serving", s.cfg.Admin.Socket).Msg("[admin] socket changes need a restart; vireoctl finds this server at the old path until then")
		next.Admin.Socket = s.cfg.Admin.Socket
	}
	// Modules that can change their settings while they run check them now, before
	// anything changes, and apply them with the rest; the others wait for a restart.
	var applies []func()
	var reconfigured, later []string
	changed := s.cfg.ChangedModules(next)
	if next.Router.OfflineQuota != s.cfg.Router.OfflineQuota && !slices.Contains(changed, "offline") {
		changed = append(changed, "offline") // the default of its quota
	}
	for _, id := range changed {
		hosts, decodeHost := hostModuleConfig(next, id)
		apply, ok, err := s.rt.Reconfigure(id, module.Reconfig{Decode: func(v any) error { return moduleConfig(next)(id, v) },
			Hosts: hosts, DecodeHost: decodeHost, Domains: next.Domains})
		if err != nil {
			return fmt.Errorf("modules.%s: %w", id, err)
		}
		if !ok {
			later = append(later, id)
			continue
		}
		applies, reconfigured = append(applies, apply), append(reconfigured, id)
	}
	if len(later) > 0 {
		s.log.Warn().Strs("modules", later).Msg("[modules] changes need a restart; applying the rest")
	}
	if err := s.rt.CheckHostModules(hostModules(next)); err != nil {
		return err
	}
	// ACME turned on or off, or ordering differently: the manager changes once the rest
	// applied (Reload).
	*swap = s.cfg.TLS.ACMEChanged(next.TLS)
	// A port in use fails the reload here, before the router or the certificates change.
	if err := s.eng.CheckListeners(s.engineConfig(next)); err != nil {
		return err
	}
	if _, err := config.EnsureCert(next.TLS.Cert, next.TLS.Key, next.Domains); err != nil {
		return err
	}
	if err := s.ensureHostCerts(next); err != nil {
		return err
	}
	if err := s.certs.Reload(next); err != nil {
		return err
	}
	s.rt.SetInPlace(next.Router.RouteInPlace)
	s.rt.SetSenderRate(next.C2S.MaxRate, next.C2S.MaxBurst)
	// Before the domains: a host added now gets the services its table leaves it.
	s.rt.SetHostModules(hostModules(next)) // checked above
	if err := s.rt.SetDomains(next.Domains); err != nil {
		s.rt.SetHostModules(hostModules(s.cfg))
		return err
	}
	dash := s.dash
	if next.Web.Dashboard && !s.cfg.Web.Dashboard {
		// Turned back on: the sessions from before it was turned off do not come back
		// with it, since an operator who turned it off may have done so to shut them out.
		s.dash = s.newDashboard()
	}
	// undo puts back what was applied before a later step failed.
	undo := func() {
		s.dash = dash
		s.rt.SetDomains(s.cfg.Domains)
		s.rt.SetHostModules(hostModules(s.cfg))
		s.rt.SetInPlace(s.cfg.Router.RouteInPlace)
		s.rt.SetSenderRate(s.cfg.C2S.MaxRate, s.cfg.C2S.MaxBurst)
		s.certs.Reload(s.cfg)
	}
	// A changed [auth] starts the new program now (one that does not start fails the
	// reload); the old one stops once the engine uses the new one.
	oldExt, extChanged := s.ext, !reflect.DeepEqual(next.Auth, s.cfg.Auth)
	if extChanged {
		ext, err := startExternal(next, s.log)
		if err != nil {
			undo()
			return err
		}
		s.ext = ext
	}
	var partial error
	var lerr *engine.ListenerError
	if err := s.eng.Reload(s.engineConfig(next)); errors.As(err, &lerr) {
		// The engine runs the new configuration, but a listener that takes an old one's
		// port could not be opened once that one closed (an address this host does not
		// have): the rest applies too, so that engine, router and modules agree, and the
		// operator hears which listeners are down.
		partial = err
	} else if err != nil {
		// A listener that could not be opened (a port in use) fails the reload as a
		// whole: what was applied before the engine goes back as it was.
		if extChanged {
			if s.ext != nil {
				s.ext.Close()
			}
			s.ext = oldExt
		}
		undo()
		return err
	}
	if extChanged {
		s.rt.SetExternalUsers(userChecker(s.ext))
		if oldExt != nil {
			oldExt.Close()
		}
	}
	tuneGC(next.Runtime, s.log)
	for _, apply := range applies {
		apply()
	}
	if len(reconfigured) > 0 {
		s.log.Info().Strs("modules", reconfigured).Msg("module settings changed")
	}
	s.cfg = next
	if m := s.acme.Load(); m != nil {
		// New hosts get their certificates now rather than at the next renewal check.
		m.Kick()
	}
	return partial
}

// ensureHostCerts gives the virtual hosts that the configured certificate does not name
// a self-signed one of their own (config.EnsureHostCerts).
func (s *server) ensureHostCerts(cfg *config.Config) error {
	made, err := config.EnsureHostCerts(cfg)
	for _, d := range made {
		cert, _ := cfg.HostCert(d)
		s.log.Warn().Str("domain", d).Str("cert", cert).Msg("generated a self-signed certificate for a virtual host; clients will ask to trust it")
	}
	return err
}

var _ admin.HostManager = (*server)(nil)

// AddHost implements admin.HostManager: domain is served at once (a certificate, its
// service subdomains, logins) and written to the config file the server was started
// with, so a restart keeps it. The file, not the database, holds the hosts: it stays
// the one place an operator reads and edits them, and what `vireo -t`, a reload and
// vireoctl with the server stopped see. Only its domains line is rewritten
// (config.RewriteDomains); a file where that cannot be done safely is refused before
// anything changes.
func (s *server) AddHost(domain string) error { return s.changeHosts(true, domain) }

// RemoveHost implements admin.HostManager: domain's sessions end with host-gone, its
// services stop, and the config file no longer lists it. Its accounts, rooms and
// archives stay in the store, and come back if the host is added again.
func (s *server) RemoveHost(domain string) error { return s.changeHosts(false, domain) }

func (s *server) changeHosts(add bool, domain string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.cfg.Domains
	hosts, d, err := admin.NextHosts(was, add, domain)
	if err != nil {
		return err
	}
	if !add {
		if err := s.cfg.HostRemovalBlocked(d); err != nil {
			return err
		}
	}
	edit, err := config.EditDomains(s.cfg.Path(), hosts)
	if err != nil {
		return err
	}
	if err := s.setHosts(hosts); err != nil {
		return err
	}
	if err := edit.Commit(); err != nil {
		if rerr := s.setHosts(was); rerr != nil {
			s.log.Error().Err(rerr).Msg("vhost: could not restore the previous virtual hosts")
		}
		return fmt.Errorf("write %s: %w", s.cfg.Path(), err)
	}
	s.log.Info().Str("domain", d).Bool("added", add).Strs("domains", hosts).Msg("virtual hosts changed")
	return nil
}

// setHosts serves hosts instead of the running configuration's domains, everything else
// unchanged: certificates first (a new host's first handshake finds its own), then the
// router (services, and closing a removed host's sessions), then the engine. Called with
// s.mu held.
func (s *server) setHosts(hosts []string) error {
	next := *s.cfg
	next.Domains = hosts
	if err := s.ensureHostCerts(&next); err != nil {
		return err
	}
	if err := s.certs.Reload(&next); err != nil {
		return err
	}
	if err := s.rt.SetDomains(hosts); err != nil {
		s.certs.Reload(s.cfg)
		return err
	}
	if err := s.eng.Reload(s.engineConfig(&next)); err != nil {
		s.rt.SetDomains(s.cfg.Domains)
		s.certs.Reload(s.cfg)
		return err
	}
	s.cfg = &next
	if m := s.acme.Load(); m != nil {
		// New hosts and their services get certificates now, not at the next renewal check.
		m.Kick()
	}
	return nil
}

var _ module.Controller = (*server)(nil)

// Shutdown implements module.Controller: run stops the server as on SIGTERM. A second
// request while one is pending is dropped.
func (s *server) Shutdown(msg string) {
	select {
	case s.stop <- msg:
	default:
	}
}

var _ module.Restarter = (*server)(nil)

// Restart implements module.Restarter: run stops the server as on SIGTERM, then starts
// the program again in its place.
func (s *server) Restart(msg string) {
	s.restart.Store(true)
	s.Shutdown(msg)
}

var _ module.Settings = (*server)(nil)

// ModuleSetting implements module.Settings.
func (s *server) ModuleSetting(id, key string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m map[string]any
	if err := s.cfg.ModuleConfig(id, &m); err != nil {
		return nil
	}
	return m[key]
}

// SetModuleSetting implements module.Settings: the config file gets the new line
// (config.EditModuleSetting), the module checks its table as at a reload, and only then is
// the file written and the setting applied. Other edits waiting in the file wait for the
// next reload.
func (s *server) SetModuleSetting(id, key string, value any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit, now, err := config.EditModuleSetting(s.cfg.Path(), id, key, value)
	if err != nil {
		return err
	}
	hosts, decodeHost := hostModuleConfig(now, id)
	apply, ok, err := s.rt.Reconfigure(id, module.Reconfig{Decode: func(v any) error { return moduleConfig(now)(id, v) },
		Hosts: hosts, DecodeHost: decodeHost, Domains: s.cfg.Domains})
	if err != nil {
		return fmt.Errorf("modules.%s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("module %s is not running, or takes its settings only at a restart", id)
	}
	if err := edit.Commit(); err != nil {
		return fmt.Errorf("write %s: %w", s.cfg.Path(), err)
	}
	apply()
	s.cfg = s.cfg.WithModule(id, now)
	s.log.Info().Str("module", id).Str("key", key).Msg("module setting changed")
	return nil
}

var _ module.Federation = (*server)(nil)

// FederationLists implements module.Federation.
func (s *server) FederationLists() (deny, allow []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cfg.S2S.Deny), slices.Clone(s.cfg.S2S.Allow)
}

// SetFederationList implements module.Federation. The list is written to the config file
// the server was started with (config.EditS2SList: that key alone; comments and every
// other line as they were), like the virtual hosts, so the file stays the one place that
// states the policy; it applies as a reload applies it (streams with a domain now refused
// end). A file where that cannot be done safely is refused before anything changes.
func (s *server) SetFederationList(allow bool, domains []string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "deny"
	if allow {
		key = "allow"
	}
	edit, list, err := config.EditS2SList(s.cfg.Path(), key, domains)
	if err != nil {
		return nil, err
	}
	next := *s.cfg
	if allow {
		next.S2S.Allow = list
	} else {
		next.S2S.Deny = list
	}
	if err := s.eng.Reload(s.engineConfig(&next)); err != nil {
		return nil, err
	}
	if err := edit.Commit(); err != nil {
		if rerr := s.eng.Reload(s.engineConfig(s.cfg)); rerr != nil {
			s.log.Error().Err(rerr).Msg("federation: could not restore the previous policy")
		}
		return nil, fmt.Errorf("write %s: %w", s.cfg.Path(), err)
	}
	s.cfg = &next
	s.log.Info().Str("list", key).Strs("domains", list).Msg("federation policy changed")
	return list, nil
}

// Close shuts down in dependency order: no new connections and a clean close for every
// stream first, then the router drains, then storage flushes.
func (s *server) Close() error {
	var errs []error
	if s.admin != nil {
		s.admin.Close()
	}
	s.acmeMu.Lock()
	s.stopACME()
	s.acmeMu.Unlock()
	if s.eng != nil {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
		errs = append(errs, s.eng.Shutdown(ctx))
		cancel()
	}
	if s.rt != nil {
		errs = append(errs, s.rt.Close())
	}
	if s.ext != nil {
		s.ext.Close()
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}

// admin.Backend

func (s *server) Store() store.Store { return s.store }

func (s *server) Domains() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Domains
}

func (s *server) CloseUser(bare jid.JID) { s.rt.CloseUser(bare, stanza.NotAuthorized) }

// SendMessage implements admin.MessageSender: the message is routed as a component's
// would be, from the sender's shard, so that messages from one sender stay in order.
func (s *server) SendMessage(from jid.JID, raw []byte) error {
	if !s.rt.SubmitFrom(from, raw) {
		return errors.New("the server is overloaded; try again")
	}
	return nil
}

// UserSessions implements admin.SessionLister.
func (s *server) UserSessions(bare jid.JID) ([]admin.Session, error) {
	ch := make(chan []module.OnlineSession, 1)
	s.rt.UserSessions(bare, func(l []module.OnlineSession) { ch <- l })
	select {
	case l := <-ch:
		out := make([]admin.Session, 0, len(l))
		for _, o := range l {
			out = append(out, admin.Session{Resource: o.JID.Resource(), Available: o.Available, Priority: o.Priority,
				Detached: o.Detached, Inactive: o.Inactive})
		}
		return out, nil
	case <-time.After(10 * time.Second):
		return nil, errors.New("the user's shard did not answer")
	}
}

// OnlineUsers implements admin.OnlineLister: the accounts with a session now.
func (s *server) OnlineUsers() ([]string, error) {
	ch := make(chan []string, 1)
	s.rt.OnlineUsers(func(u []string) { ch <- u })
	select {
	case u := <-ch:
		return u, nil
	case <-time.After(10 * time.Second):
		return nil, errors.New("the router did not list its sessions within 10 s")
	}
}

func (s *server) Stats() map[string]any {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n, _ := s.store.Accounts().Count()
	s.mu.Lock() // a reload or a host change replaces s.cfg and s.ext
	cfg, ext := s.cfg, s.ext
	s.mu.Unlock()
	st := map[string]any{
		"uptime_s":      int64(time.Since(s.start).Seconds()),
		"accounts":      n,
		"engine":        s.eng.Stats(),
		"router":        s.rt.Stats(),
		"goroutines":    runtime.NumGoroutine(),
		"heap_inuse":    ms.HeapInuse,
		"sys":           ms.Sys,
		"gc_cycles":     ms.NumGC,
		"go_max_procs":  runtime.GOMAXPROCS(0),
		"event_loops":   s.loops,
		"config":        cfg.Path(),
		"domains":       cfg.Domains,
		"version":       Version,
		"registration":  cfg.C2S.Registration,
		"shards":        cfg.Router.Shards,
		"offline_quota": cfg.Router.OfflineQuota,
	}
	if ext != nil {
		st["external_auth"] = map[string]any{"program": ext.Command()[0], "answered": ext.Calls(), "failed": ext.Failures()}
	}
	return st
}

func (s *server) Modules() []string { return moduleLines() }

// Rooms implements admin.RoomLister.
func (s *server) Rooms() ([]module.RoomInfo, error) {
	rooms, ok := s.rt.Rooms()
	if !ok {
		return nil, errors.New("no group chat module runs")
	}
	return rooms, nil
}

// invitepage.Backend (beyond WebURL)

func (s *server) Invitation(token string) (invites.Invite, error) { return s.eng.Invitation(token) }
func (s *server) RegisterInvited(token, username, password, ip string) (string, error) {
	return s.eng.RegisterInvited(token, username, password, ip)
}
func (s *server) ResetPassword(token, password, ip string) (string, error) {
	return s.eng.ResetPassword(token, password, ip)
}

// admin.SiteAccounts: the operator's changes of a site's account go to its program.

func (s *server) SitePassword(user, password string) (bool, error) {
	return s.eng.SitePassword(user, password)
}
func (s *server) SiteRemove(user string) (bool, error) { return s.eng.SiteRemove(user) }

// signup.Backend

func (s *server) SignupSettings(ip string) (bool, []string, bool) { return s.eng.SignupSettings(ip) }
func (s *server) RegisterOpen(domain, username, password, ip string) (string, error) {
	return s.eng.RegisterOpen(domain, username, password, ip)
}

// WebURL is the web listener's public base URL for domain, from the current config.
func (s *server) WebURL(domain string) string {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	return cfg.WebURL(domain)
}

// dashboard.Backend (beyond admin.Backend)

var _ dashboard.Backend = (*server)(nil)

func (s *server) Counters() metrics.Counters  { return s.eng.Counters() }
func (s *server) LoginAttempt(ip string) bool { return s.eng.LoginAttempt(ip) }
func (s *server) LoginSucceeded(ip string)    { s.eng.LoginSucceeded(ip) }

var _ dashboard.HostSettings = (*server)(nil)

// HostSettings implements dashboard.HostSettings: what each [vhosts] table of the running
// configuration sets, in words.
func (s *server) HostSettings() map[string]string {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	return describeHosts(cfg)
}

// describeHosts says in words what each [vhosts] table sets.
func describeHosts(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for d, v := range cfg.VHosts {
		h := cfg.Host(d)
		var parts []string
		if v.Registration != nil {
			parts = append(parts, map[bool]string{true: "registration open", false: "registration closed"}[h.Registration])
		}
		if v.RegistrationCaptcha != nil {
			parts = append(parts, map[bool]string{true: "CAPTCHA at registration", false: "no CAPTCHA at registration"}[h.RegistrationCaptcha])
		}
		if h.MaxAccounts > 0 {
			parts = append(parts, fmt.Sprintf("at most %d accounts made by users", h.MaxAccounts))
		}
		switch {
		case h.Isolated:
			parts = append(parts, "isolated: its users reach its own users and services only")
		case !h.Federation:
			parts = append(parts, "no federation")
		}
		if len(v.ModulesDisabled) > 0 {
			parts = append(parts, "without "+strings.Join(v.ModulesDisabled, ", "))
		}
		if len(v.Modules) > 0 {
			parts = append(parts, "own settings of "+strings.Join(slices.Sorted(maps.Keys(v.Modules)), ", "))
		}
		if len(parts) > 0 {
			out[d] = strings.Join(parts, "; ")
		}
	}
	return out
}

// S2SLinks is S2SConns as the dashboard shows them.
func (s *server) S2SLinks() []dashboard.Link {
	var out []dashboard.Link
	for _, c := range s.eng.S2SConns() {
		out = append(out, dashboard.Link{Inbound: c.Direction == "in", Bidi: c.Bidi, Local: c.Local, Remote: c.Remote, Up: true})
	}
	return out
}

// S2SConns implements admin.S2SLister.
func (s *server) S2SConns() []admin.S2SConn {
	var out []admin.S2SConn
	for _, c := range s.eng.S2SConns() {
		out = append(out, admin.S2SConn{Local: c.Local, Remote: c.Remote, Direction: c.Direction, Auth: c.Auth,
			TLS: c.TLS, CertValid: c.CertValid, DirectTLS: c.DirectTLS, Via: c.Via, IdleS: c.Idle.Seconds(), Bidi: c.Bidi})
	}
	return out
}

// Admins are [modules.adhoc] admins of the running configuration, prepared as the module
// prepares them (it validated them at start or reload).
func (s *server) Admins() []string {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	return admins(cfg)
}

// adminJIDs are every administrator the configuration names, of the server and of its
// hosts (engine.Config.AdminJIDs).
// NamedAdministrators implements module.Administrators.
// The engine's copy: s.mu may be held by a reload that waits for the shard asking.
func (s *server) NamedAdministrators() []string {
	if s.eng == nil {
		return nil
	}
	return s.eng.Config().AdminJIDs
}

// forwardedHeader is web.forwarded_header as engine.Web.ForwardedHeader.
func forwardedHeader(v string) string {
	if strings.EqualFold(v, "forwarded") {
		return engine.ForwardedRFC7239
	}
	return ""
}

func adminJIDs(cfg *config.Config) []string {
	out := admins(cfg)
	add := func(list []string) {
		for _, j := range bareJIDs(list) {
			if !slices.Contains(out, j) {
				out = append(out, j)
			}
		}
	}
	for _, h := range cfg.HostModuleTables("adhoc") {
		var c adhoc.Config
		if err := cfg.HostModuleSettings(h, "adhoc", &c); err == nil {
			add(c.Admins)
		}
	}
	// A MUC service administrator ranks as every room's owner: whoever registered the
	// name first would hold that rank.
	var mc struct {
		Admins []string `toml:"admins"`
	}
	if err := cfg.ModuleConfig("muc", &mc); err == nil {
		add(mc.Admins)
	}
	for _, h := range cfg.HostModuleTables("muc") {
		var c muc.Config
		if err := cfg.HostModuleSettings(h, "muc", &c); err == nil {
			add(c.Admins)
		}
	}
	return out
}

func admins(cfg *config.Config) []string {
	var c adhoc.Config
	if err := cfg.ModuleConfig("adhoc", &c); err != nil {
		return nil
	}
	return bareJIDs(c.Admins)
}

// bareJIDs are the users' bare JIDs of list, normalized; other entries are left out.
func bareJIDs(list []string) []string {
	var out []string
	for _, a := range list {
		if j, err := jid.Parse(a); err == nil && j.Local() != "" && j.IsBare() {
			out = append(out, j.String())
		}
	}
	return out
}

var _ dashboard.HostAdmins = (*server)(nil)

// HostAdmins implements dashboard.HostAdmins: each host's own administrators
// ([vhosts."<host>".modules.adhoc] admins), as the adhoc module has them.
func (s *server) HostAdmins() map[string][]string {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	server := admins(cfg)
	out := map[string][]string{}
	for _, h := range cfg.HostModuleTables("adhoc") {
		var c adhoc.Config
		if err := cfg.HostModuleSettings(h, "adhoc", &c); err != nil {
			continue
		}
		// A table without admins inherits the server's, who need no host of their own.
		if a := slices.DeleteFunc(bareJIDs(c.Admins), func(j string) bool { return slices.Contains(server, j) }); len(a) > 0 {
			out[h] = a
		}
	}
	return out
}

// Config is the running configuration with its secrets redacted.
func (s *server) Config() (string, error) {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	return cfg.Redacted()
}

var _ admin.S2SLister = (*server)(nil)

var _ admin.CertReporter = (*server)(nil)

var _ admin.ListenerReporter = (*server)(nil)

// Listeners implements admin.ListenerReporter: what vireoctl stats shows of the listeners,
// those a reload closed included while they still carry connections.
func (s *server) Listeners() []admin.ListenerStatus {
	var out []admin.ListenerStatus
	for _, l := range s.eng.Listeners() {
		out = append(out, admin.ListenerStatus{Name: l.Name, Addr: l.Addr, Accepting: l.Accepting, Conns: l.Conns})
	}
	return out
}

// Certs implements admin.CertReporter: for each virtual host, the certificate a client
// asking for it gets now, and with ACME how its orders go.
func (s *server) Certs() []admin.CertStatus {
	var out []admin.CertStatus
	for _, d := range s.Domains() {
		leaf, file := s.certs.Served(d)
		c := admin.NewCertStatus(d, file, leaf)
		if m := s.acme.Load(); m != nil {
			st := m.Status(jid.ToASCII(d))
			c.ACME = true
			c.LastAttempt, c.LastError, c.Failures, c.NextRenewal = st.LastAttempt, st.LastError, st.Failures, st.Next
		}
		out = append(out, c)
	}
	return out
}

// DataDir is the data_dir the server opened (a reload does not change it).
func (s *server) DataDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.DataDir
}

func (s *server) Version() string { return "vireo " + Version }

func moduleLines() []string {
	var out []string
	for _, m := range module.All() {
		xep := "-"
		if m.XEP > 0 {
			xep = fmt.Sprintf("XEP-%04d", m.XEP)
		}
		out = append(out, fmt.Sprintf("%-12s %s", m.ID, xep))
	}
	sort.Strings(out)
	return out
}

// Version is the server version, set at build time with -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

// coalesceWrites maps the config's c2s.coalesce_writes, where 0 turns coalescing off, to
// the engine's, where 0 is the default.
func coalesceWrites(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
