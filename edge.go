package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/xmlstream"
)

// runEdge serves cfg as an edge of a split deployment ([edge] core is set): the [c2s] and
// [web] listeners, and [s2s] ones when enabled, with [tls], relayed to the core. No database is opened and no module
// runs here; SIGHUP reloads the certificates, the limits and the listeners.
func runEdge(cfg *config.Config, path string, log zerolog.Logger) int {
	e, err := edgeSettings(cfg)
	if err != nil {
		log.Error().Err(err).Msg("edge: bad [edge] settings")
		return 1
	}
	if e.TLS == nil {
		log.Warn().Str("core", e.Core).Msg("the link to the core is not encrypted (edge.tls = false): clients' streams cross it in clear")
	}
	if created, err := config.EnsureCert(cfg.TLS.Cert, cfg.TLS.Key, cfg.Domains); err != nil {
		log.Error().Err(err).Msg("edge: certificate")
		return 1
	} else if created {
		log.Warn().Str("cert", cfg.TLS.Cert).Msg("generated a self-signed certificate; clients will ask to trust it")
	}
	certs, err := config.LoadCerts(cfg)
	if err != nil {
		log.Error().Err(err).Msg("edge: certificates")
		return 1
	}
	loops := eventLoops(cfg.Runtime.EventLoops, true)
	eng, err := engine.NewEdge(edgeEngineConfig(cfg, certs, loops, log), e)
	if err == nil {
		err = eng.Start()
	}
	if err != nil {
		log.Error().Err(err).Msg("edge: start failed")
		return 1
	}
	if a := cfg.Edge.MetricsListen; a != "" {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			log.Error().Err(err).Msg("edge: metrics listener")
			eng.Shutdown(context.Background())
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", eng.MetricsHandler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
	}
	log.Info().Str("core", e.Core).Strs("c2s", cfg.C2S.Listen).Strs("c2s_tls", cfg.C2S.TLSListen).
		Strs("web", cfg.Web.Listen).Strs("web_tls", cfg.Web.TLSListen).Strs("s2s", s2sListen(cfg)).Str("metrics", cfg.Edge.MetricsListen).Msg("vireo edge is serving")
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	for v := range sig {
		if v != syscall.SIGHUP {
			log.Info().Str("signal", v.String()).Msg("shutting down")
			break
		}
		next, err := config.Load(path)
		if err != nil {
			log.Error().Err(err).Msg("reload failed; keeping the running configuration")
			continue
		}
		if err := certs.Reload(next); err != nil {
			log.Error().Err(err).Msg("reload failed; keeping the running configuration")
			continue
		}
		var lerr *engine.ListenerError
		switch err := eng.ReloadEdge(edgeEngineConfig(next, certs, loops, log)); {
		case errors.As(err, &lerr):
			cfg = next
			log.Error().Err(err).Msg("reload applied, but some listeners are not serving")
		case err != nil:
			// The certificates went in first: the running configuration gets its own back.
			if rerr := certs.Reload(cfg); rerr != nil {
				log.Error().Err(rerr).Msg("reload: restoring the running certificates")
			}
			log.Error().Err(err).Msg("reload failed; keeping the running configuration")
		default:
			cfg = next
			log.Info().Msg("certificates, limits and listeners reloaded ([edge] settings need a restart)")
		}
	}
	signal.Stop(sig)
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	eng.Shutdown(ctx)
	log.Info().Msg("stopped")
	return 0
}

// eventLoops is the number of event loops for the [runtime] event_loops setting n (0: one
// per processor). A gnet loop waits for its sockets in epoll_wait holding its processor, so
// with as many loops as processors none is ever idle, and a goroutine the server wakes
// (accepts, TLS handshakes, store reads) waits for the runtime's monitor (sysmon) to take
// a processor back from a waiting loop, after 20 µs; goroutines on Go's own network
// poller wait for sysmon to poll it, every 10 ms. Edge links and outbound federation live
// there, so with spare set (a core with [link], a server with [s2s], every edge) and as
// many loops as processors, Go may use one processor more: through an edge, p50 went from
// 10.4 to 0.9 ms at 1,000 msg/s.
//
// Fewer loops than processors leave a processor free without that. Measured on 2 cores
// with one loop against two (interleaved pairs, bench/results/profile.md "Stop 36"): 12%
// less server CPU per plain login, 7% per TLS login, but a 6-34% lower peak message
// rate, the one loop then being the bottleneck; so it is the operator's choice, not the
// default.
func eventLoops(n int, spare bool) int {
	procs := runtime.GOMAXPROCS(0)
	if n <= 0 {
		n = procs
	}
	if spare && n >= procs {
		runtime.GOMAXPROCS(n + 1)
	}
	return n
}

func s2sListen(cfg *config.Config) []string {
	if !cfg.S2S.Enabled {
		return nil
	}
	return append(append([]string(nil), cfg.S2S.Listen...), cfg.S2S.DirectTLSListen...)
}

// edgeEngineConfig is the engine's configuration of an edge: listeners, certificates and
// the client limits that apply to the bytes it relays.
func edgeEngineConfig(cfg *config.Config, certs *config.Certs, loops int, log zerolog.Logger) engine.Config {
	lim := xmlstream.DefaultLimits()
	lim.MaxStanza = cfg.C2S.MaxStanza
	return engine.Config{
		Loops:          loops,
		Listeners:      edgeListeners(cfg),
		TLS:            certs.TLSConfig(),
		MaxOutbound:    cfg.C2S.MaxOutbound,
		Limits:         lim,
		MaxConnections: cfg.C2S.MaxConnections,
		CoalesceWrites: coalesceWrites(cfg.C2S.CoalesceWrites.Duration),
		Logger:         log.With().Str("mod", "edge").Logger(),
	}
}

// edgeListeners are the client listeners, and the s2s ones when federation is on.
func edgeListeners(cfg *config.Config) []engine.Listener {
	ls := clientListeners(cfg)
	if cfg.S2S.Enabled {
		// Inbound federation; the core dials out to other servers itself.
		for _, a := range cfg.S2S.Listen {
			ls = append(ls, engine.Listener{Name: "s2s", Addr: a, Kind: engine.KindS2S})
		}
		for _, a := range cfg.S2S.DirectTLSListen {
			ls = append(ls, engine.Listener{Name: "s2s-tls", Addr: a, Kind: engine.KindS2S, DirectTLS: true})
		}
	}
	return ls
}

// edgeSettings turns [edge] into the engine's link settings.
func edgeSettings(cfg *config.Config) (engine.Edge, error) {
	e := engine.Edge{Core: cfg.Edge.Core, Secret: []byte(cfg.Edge.Secret), Name: cfg.Edge.Name}
	if e.Name == "" {
		e.Name, _ = os.Hostname()
	}
	if !cfg.Edge.UseTLS() {
		return e, nil
	}
	name := cfg.Edge.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(cfg.Edge.Core)
	}
	e.TLS = &tls.Config{ServerName: name, MinVersion: tls.VersionTLS13}
	if cfg.Edge.CAFile != "" {
		pem, err := os.ReadFile(cfg.Edge.CAFile)
		if err != nil {
			return e, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return e, fmt.Errorf("edge.ca_file %s: no certificate in it", cfg.Edge.CAFile)
		}
		e.TLS.RootCAs = pool
	}
	return e, nil
}
