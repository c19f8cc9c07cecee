package compare

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/bench/peers"
	"github.com/vireo-im/vireo/bench/scenario"
)

// WSIdle is one repetition of the WebSocket idle comparison: the idle scenario at the
// same sizes over plain TCP, direct TLS, ws:// and wss://, each on a fresh process.
type WSIdle struct {
	TCPPlain scenario.IdleResult `json:"tcp_plain"`
	TCPTLS   scenario.IdleResult `json:"tcp_tls"`
	WSPlain  scenario.IdleResult `json:"ws_plain"`
	WSTLS    scenario.IdleResult `json:"ws_tls"`
}

// WSResult is the WebSocket scenario on one server: idle bytes per session over
// WebSocket next to TCP, and the messaging rate search over WebSocket next to TCP, each
// search on a fresh process.
type WSResult struct {
	Idle      []WSIdle               `json:"idle,omitempty"`
	SearchWS  [][]scenario.MsgResult `json:"messaging_search_ws,omitempty"`
	SearchTCP [][]scenario.MsgResult `json:"messaging_search_tcp,omitempty"`
	// Unsupported says why the server could not be measured over WebSocket here.
	Unsupported string `json:"unsupported,omitempty"`
}

// runWebSocket runs the WebSocket scenario; restart starts a fresh server process.
func runWebSocket(srv peers.Server, s Suite, target func(tls bool) scenario.Target, restart func() bool,
	fail func(string, error), log io.Writer) (WSResult, bool) {
	var res WSResult
	wsTarget := func(tls bool) scenario.Target {
		t := target(tls)
		t.Cfg.Addr, t.Cfg.WSPath = srv.WebSocket(tls)
		return t
	}
	if !restart() {
		return res, false
	}
	// One login over each kind first: a server that cannot do it is reported as such.
	for _, tls := range []bool{false, true} {
		cfg := wsTarget(tls).Cfg
		cfg.Timeout = 10 * time.Second
		ss, err := loadgen.Dial(cfg, "user1", peers.Password, "probe")
		if err != nil {
			res.Unsupported = fmt.Sprintf("login over %s failed: %v", wsScheme(tls), err)
			fmt.Fprintf(log, "  %s: no WebSocket runs: %s\n", srv.Name(), res.Unsupported)
			return res, true
		}
		ss.Close()
	}
	sizes := s.WSIdleSizes
	if len(sizes) == 0 {
		sizes = s.IdleSizes
	}
	for rep := 0; rep < s.Reps; rep++ {
		var one WSIdle
		for _, k := range []struct {
			name string
			t    func(bool) scenario.Target
			tls  bool
			dst  *scenario.IdleResult
		}{
			{"TCP plain", target, false, &one.TCPPlain},
			{"TCP TLS", target, true, &one.TCPTLS},
			{"ws://", wsTarget, false, &one.WSPlain},
			{"wss://", wsTarget, true, &one.WSTLS},
		} {
			// The target after the restart: it carries the new process's PID.
			if !restart() {
				return res, false
			}
			fmt.Fprintf(log, "  %s: idle density over %s %v (run %d/%d)\n", srv.Name(), k.name, sizes, rep+1, s.Reps)
			ir, err := scenario.Idle(k.t(k.tls), sizes, s.Conc, s.IdleRate, 3*time.Second)
			if err != nil {
				fail("websocket idle "+k.name, err)
			}
			fmt.Fprintf(log, "  %s: %s %.0f B/session RSS, %.0f B/session PSS, %d failures\n", srv.Name(), k.name, ir.RSSPerSession, ir.PSSPerSession, ir.Failures)
			*k.dst = ir
		}
		res.Idle = append(res.Idle, one)
	}
	for rep := 0; rep < s.Reps; rep++ {
		for _, ws := range []bool{true, false} {
			if !restart() {
				return res, false
			}
			t, what := target(false), "TCP"
			if ws {
				t, what = wsTarget(false), "ws://"
			}
			fmt.Fprintf(log, "  %s: messaging rate search over %s, %d users (run %d/%d)\n", srv.Name(), what, s.Users, rep+1, s.Reps)
			o, err := scenario.Connect(t, s.Users, s.Conc)
			if err != nil {
				fail("websocket messaging connect over "+what, err)
				continue
			}
			steps, err := scenario.Search(t, o, s.RateStart, s.RateMax, s.StepDuration, time.Duration(s.P99LimitMs*float64(time.Millisecond)))
			o.Close()
			if err != nil {
				fail("websocket messaging over "+what, err)
			}
			if ws {
				res.SearchWS = append(res.SearchWS, steps)
			} else {
				res.SearchTCP = append(res.SearchTCP, steps)
			}
		}
	}
	return res, true
}

func wsScheme(tls bool) string {
	if tls {
		return "wss://"
	}
	return "ws://"
}

// wsSection renders the WebSocket scenario.
func wsSection(b *strings.Builder, r Report) {
	s := r.Suite
	sizes := s.WSIdleSizes
	if len(sizes) == 0 {
		sizes = s.IdleSizes
	}
	b.WriteString("\n## XMPP over WebSocket (RFC 7395)\n\n")
	fmt.Fprintf(b, "The idle scenario (authenticated, bound sessions with initial presence, ramped at up to %d logins/s, 3 s hold) at %v "+
		"over plain TCP, direct TLS, ws:// and wss:// to the same server, each on a freshly started process; bytes per session are the "+
		"least-squares RSS slope over the sizes. WebSocket sessions are the generator's own RFC 7395 client (`bench/loadgen/ws.go`): "+
		"HTTP/1.1 upgrade with subprotocol xmpp, one element per masked text frame, at each server's `/xmpp-websocket` on its own HTTP and HTTPS "+
		"loopback ports (Vireo `[web]`, Prosody `mod_websocket`, ejabberd `ejabberd_http_ws`).\n\n", s.IdleRate, sizes)
	b.WriteString("| server | TCP plain B/session | ws:// B/session | ws − TCP | direct TLS B/session | wss:// B/session | wss − TLS | failures |\n|---|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		w := sv.WebSocket
		if w == nil {
			continue
		}
		if w.Unsupported != "" {
			fmt.Fprintf(b, "| %s | not measured: %s | | | | | | |\n", sv.Name, oneLine(w.Unsupported))
			continue
		}
		if len(w.Idle) == 0 {
			fmt.Fprintf(b, "| %s | — | — | — | — | — | — | — |\n", sv.Name)
			continue
		}
		get := func(f func(WSIdle) scenario.IdleResult) []float64 {
			return collect(w.Idle, func(x WSIdle) float64 { return f(x).RSSPerSession })
		}
		tp := get(func(x WSIdle) scenario.IdleResult { return x.TCPPlain })
		tt := get(func(x WSIdle) scenario.IdleResult { return x.TCPTLS })
		wp := get(func(x WSIdle) scenario.IdleResult { return x.WSPlain })
		wt := get(func(x WSIdle) scenario.IdleResult { return x.WSTLS })
		dp := make([]float64, len(w.Idle))
		dt := make([]float64, len(w.Idle))
		fails := 0
		for i, x := range w.Idle {
			dp[i], dt[i] = wp[i]-tp[i], wt[i]-tt[i]
			fails += x.TCPPlain.Failures + x.TCPTLS.Failures + x.WSPlain.Failures + x.WSTLS.Failures
		}
		fmt.Fprintf(b, "| %s | %s%s | %s%s | **%s**%s | %s%s | %s%s | **%s**%s | %d |\n", sv.Name,
			num(median(tp)), spread(tp), num(median(wp)), spread(wp), signed(median(dp)), spread(dp),
			num(median(tt)), spread(tt), num(median(wt)), spread(wt), signed(median(dt)), spread(dt), fails)
	}
	b.WriteString("\nThe difference is taken within each run and its median quoted. PSS slopes and every point (RSS, PSS at each size, generator RSS) are in the JSON.\n")

	fmt.Fprintf(b, "\n### One-to-one messaging over WebSocket\n\n%d online users over ws:// (and, on another fresh process, over plain TCP), "+
		"the rate search of the messaging scenario (steps of %v, p99 ≤ %.0f ms, no loss). The table gives each transport's highest passing "+
		"rate (median run) and the latency and CPU at that rate.\n\n", s.Users, s.StepDuration, s.P99LimitMs)
	b.WriteString("| server | transport | highest rate msgs/s | p50 ms | p99 ms | server CPU µs/msg | generator CPU µs/msg |\n|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		w := sv.WebSocket
		if w == nil || w.Unsupported != "" {
			continue
		}
		for _, k := range []struct {
			name   string
			search [][]scenario.MsgResult
		}{{"ws://", w.SearchWS}, {"TCP", w.SearchTCP}} {
			var bests []scenario.MsgResult
			for _, steps := range k.search {
				bests = append(bests, scenario.Best(steps, s.P99LimitMs))
			}
			mi := medianRun(bests)
			if mi < 0 {
				fmt.Fprintf(b, "| %s | %s | — | — | — | — | — |\n", sv.Name, k.name)
				continue
			}
			m := bests[mi]
			rates := collect(bests, func(m scenario.MsgResult) float64 { return m.DeliveredPerSec })
			fmt.Fprintf(b, "| %s | %s | **%s**%s | %.2f | %.2f | %.1f | %.1f |\n", sv.Name, k.name, num(m.DeliveredPerSec), spread(rates), m.P50ms, m.P99ms, m.ServerCPUPerMsg, m.GenCPUPerMsg)
		}
	}
	b.WriteString("\nEvery step of each search is in the JSON (`websocket.messaging_search_ws`, `messaging_search_tcp`).\n")
}

func signed(x float64) string {
	if x > 0 {
		return "+" + num(x)
	}
	return num(x)
}
