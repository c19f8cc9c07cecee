// Command xmppbench runs the bench suite's scenarios against an XMPP server.
//
// Against a running server:
//
//	xmppbench -addr 127.0.0.1:5222 -domain localhost -pid PID -scenario idle -sizes 2000,16000
//
// Or let it start Vireo itself (a fresh config and database in a temporary directory):
//
//	xmppbench -vireo bin/vireo -vireoctl bin/vireoctl -suite quick -out bench/results
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/bench/scenario"
)

func main() {
	var (
		addr     = flag.String("addr", "127.0.0.1:5222", "server address")
		domain   = flag.String("domain", "localhost", "XMPP domain")
		mode     = flag.String("tls", "plain", "plain, starttls or direct")
		mech     = flag.String("mech", "SCRAM-SHA-1", "SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN")
		prefix   = flag.String("prefix", "user", "account name prefix (accounts prefix1..prefixN)")
		password = flag.String("password", "password", "account password")
		pid      = flag.Int("pid", 0, "server PID for /proc sampling")
		scen     = flag.String("scenario", "idle", "idle, login, msg, search or presence")
		contacts = flag.Int("contacts", 20, "presence: roster size per user")
		sizes    = flag.String("sizes", "2000,16000", "idle: session counts")
		logins   = flag.Int("logins", 5000, "login: number of logins")
		users    = flag.Int("users", 1000, "msg/search: online users")
		rate     = flag.Int("rate", 5000, "msg: messages per second; search: start rate")
		step     = flag.Int("step", 5000, "search: rate step")
		maxRate  = flag.Int("max-rate", 100000, "search: highest rate tried")
		dur      = flag.Duration("duration", 10*time.Second, "msg/search: duration per step")
		conc     = flag.Int("conc", 64, "concurrent logins")
		srcIPs   = flag.Int("source-ips", 4, "spread client sockets over 127.0.0.1..N")
		vireo    = flag.String("vireo", "", "path to the vireo binary: start it for a suite")
		vireoctl = flag.String("vireoctl", "", "path to vireoctl (with -vireo)")
		suite    = flag.String("suite", "quick", "with -vireo: quick or full")
		out      = flag.String("out", "", "directory for JSON and Markdown results")
	)
	flag.Parse()
	if *vireo != "" {
		if err := runSuite(*vireo, *vireoctl, *suite, *out, *conc, *srcIPs); err != nil {
			fmt.Fprintln(os.Stderr, "xmppbench:", err)
			os.Exit(1)
		}
		return
	}
	t := scenario.Target{Name: *addr, Prefix: *prefix, Password: *password, PID: *pid, SourceIPs: *srcIPs, Log: os.Stderr,
		Cfg: loadgen.Config{Addr: *addr, Domain: *domain, Mode: parseMode(*mode), Mechanism: *mech}}
	var res any
	var err error
	switch *scen {
	case "idle":
		res, err = scenario.Idle(t, parseSizes(*sizes), *conc, 3*time.Second)
	case "login":
		res, err = scenario.LoginStorm(t, *logins, *conc)
	case "presence":
		res, err = scenario.PresenceStorm(t, *users, *contacts, *conc)
	case "msg", "search":
		var o *scenario.Online
		o, err = scenario.Connect(t, *users, *conc)
		if err == nil {
			if *scen == "msg" {
				res, err = scenario.Messaging(t, o, *rate, *dur)
			} else {
				res, err = scenario.Search(t, o, *rate, *step, *maxRate, *dur, 100*time.Millisecond)
			}
			o.Close()
		}
	default:
		err = fmt.Errorf("unknown scenario %q", *scen)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmppbench:", err)
		os.Exit(1)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(b))
}

func parseMode(s string) loadgen.Mode {
	switch s {
	case "starttls":
		return loadgen.StartTLS
	case "direct":
		return loadgen.DirectTLS
	}
	return loadgen.Plain
}

func parseSizes(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is a Vireo process started for the suite.
type server struct {
	cmd        *exec.Cmd
	plain, tls int
}

func startVireo(bin, ctl, dir string, accounts int) (*server, error) {
	cfg := filepath.Join(dir, "vireo.toml")
	s := &server{plain: freePort(), tls: freePort()}
	text := fmt.Sprintf(`domains = ["localhost"]
data_dir = "data"
log_level = "warn"
[c2s]
listen = ["127.0.0.1:%d"]
tls_listen = ["127.0.0.1:%d"]
require_tls = false
allow_plain = true
auth_failures_per_minute = 1000000
max_outbound = 4194304
`, s.plain, s.tls)
	if err := os.WriteFile(cfg, []byte(text), 0o640); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "db")); err != nil {
		out, err := exec.Command(ctl, "-config", cfg, "bulkadd", "-prefix", "user", "-count", strconv.Itoa(accounts), "-password", "password", "-iter", "4096").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("bulkadd: %v: %s", err, out)
		}
	}
	s.cmd = exec.Command(bin, "-config", cfg)
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.plain)); err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("vireo did not start")
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
	}
}

// Report is the suite's JSON output.
type Report struct {
	Machine   string                 `json:"machine"`
	Date      string                 `json:"date"`
	Command   string                 `json:"command"`
	IdlePlain scenario.IdleResult    `json:"idle_plain"`
	IdleTLS   scenario.IdleResult    `json:"idle_tls"`
	Login     []scenario.LoginResult `json:"login_plain"`
	LoginTLS  []scenario.LoginResult `json:"login_tls"`
	Search    []scenario.MsgResult   `json:"messaging_search"`
}

func runSuite(bin, ctl, suite, outDir string, conc, srcIPs int) error {
	sizes := []int{1000, 4000}
	logins, users, reps := 2000, 500, 1
	rateStart, rateStep, rateMax := 5000, 5000, 60000
	if suite == "full" {
		sizes = []int{2000, 16000}
		logins, users, reps = 5000, 1000, 3
		rateStart, rateStep, rateMax = 10000, 10000, 200000
	}
	dir, err := os.MkdirTemp("", "xmppbench-vireo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	accounts := sizes[len(sizes)-1]
	if logins > accounts {
		accounts = logins
	}
	rep := Report{Machine: fmt.Sprintf("%s/%s, %d cores", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		Date: time.Now().UTC().Format(time.RFC3339), Command: strings.Join(os.Args, " ")}
	target := func(s *server, mode loadgen.Mode, port int) scenario.Target {
		return scenario.Target{Name: "vireo", Prefix: "user", Password: "password", PID: s.cmd.Process.Pid, SourceIPs: srcIPs, Log: os.Stderr,
			Cfg: loadgen.Config{Addr: fmt.Sprintf("127.0.0.1:%d", port), Domain: "localhost", Mode: mode, Mechanism: "SCRAM-SHA-1"}}
	}
	for _, m := range []struct {
		mode loadgen.Mode
		tls  bool
	}{{loadgen.Plain, false}, {loadgen.DirectTLS, true}} {
		s, err := startVireo(bin, ctl, dir, accounts)
		if err != nil {
			return err
		}
		port := s.plain
		if m.tls {
			port = s.tls
		}
		fmt.Fprintf(os.Stderr, "idle density (tls=%v) %v\n", m.tls, sizes)
		r, err := scenario.Idle(target(s, m.mode, port), sizes, conc, 3*time.Second)
		if err != nil {
			s.stop()
			return err
		}
		if m.tls {
			rep.IdleTLS = r
		} else {
			rep.IdlePlain = r
		}
		for i := 0; i < reps; i++ {
			fmt.Fprintf(os.Stderr, "login storm (tls=%v) %d\n", m.tls, logins)
			lr, err := scenario.LoginStorm(target(s, m.mode, port), logins, conc)
			if err != nil {
				s.stop()
				return err
			}
			fmt.Fprintf(os.Stderr, "  %.0f logins/s, %d failures, server %.0f µs/login\n", lr.LoginsPerSecond, lr.Failures, lr.ServerCPUPerLogin)
			if m.tls {
				rep.LoginTLS = append(rep.LoginTLS, lr)
			} else {
				rep.Login = append(rep.Login, lr)
			}
		}
		if !m.tls {
			fmt.Fprintf(os.Stderr, "messaging search with %d users\n", users)
			t := target(s, m.mode, port)
			o, err := scenario.Connect(t, users, conc)
			if err != nil {
				s.stop()
				return err
			}
			rep.Search, err = scenario.Search(t, o, rateStart, rateStep, rateMax, 5*time.Second, 100*time.Millisecond)
			o.Close()
			if err != nil {
				s.stop()
				return err
			}
		}
		s.stop()
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if outDir == "" {
		fmt.Println(string(b))
		return nil
	}
	os.MkdirAll(outDir, 0o755)
	if err := os.WriteFile(filepath.Join(outDir, "vireo-"+suite+".json"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, "vireo-"+suite+".md"), []byte(markdown(rep, suite)), 0o644)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	c := append([]float64(nil), xs...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c[len(c)/2]
}

func markdown(r Report, suite string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Vireo bench suite (%s)\n\nMachine: %s. Date: %s.\nCommand: `%s`\n\n", suite, r.Machine, r.Date, r.Command)
	b.WriteString("Generator and server share the machine; CPU per operation is read from /proc for both.\n\n")
	b.WriteString("## Idle sessions (bytes per session = slope between the two sizes)\n\n| transport | sessions | server RSS | server PSS | RSS/session | PSS/session |\n|---|---|---|---|---|---|\n")
	for _, x := range []struct {
		name string
		r    scenario.IdleResult
	}{{"plain", r.IdlePlain}, {"TLS", r.IdleTLS}} {
		for _, p := range x.r.Points {
			fmt.Fprintf(&b, "| %s | %d | %.1f MiB | %.1f MiB | %.0f B | %.0f B |\n", x.name, p.Sessions,
				float64(p.Server.RSS)/(1<<20), float64(p.Server.PSS)/(1<<20), x.r.RSSPerSession, x.r.PSSPerSession)
		}
	}
	b.WriteString("\n## Login storm (SCRAM-SHA-1)\n\n| transport | runs | median logins/s | median server µs/login | median generator µs/login | failures |\n|---|---|---|---|---|---|\n")
	for _, x := range []struct {
		name string
		rs   []scenario.LoginResult
	}{{"plain", r.Login}, {"TLS", r.LoginTLS}} {
		var lps, scpu, gcpu []float64
		fails := 0
		for _, l := range x.rs {
			lps = append(lps, l.LoginsPerSecond)
			scpu = append(scpu, l.ServerCPUPerLogin)
			gcpu = append(gcpu, l.GenCPUPerLogin)
			fails += l.Failures
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.0f | %d |\n", x.name, len(x.rs), median(lps), median(scpu), median(gcpu), fails)
	}
	b.WriteString("\n## One-to-one messaging (rate search, p99 limit 100 ms, no loss)\n\n| offered/s | delivered/s | lost | p50 ms | p95 ms | p99 ms | server µs/msg | generator µs/msg |\n|---|---|---|---|---|---|---|---|\n")
	best := 0.0
	for _, m := range r.Search {
		fmt.Fprintf(&b, "| %d | %.0f | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", m.OfferedRate, m.DeliveredPerSec, m.Loss, m.P50ms, m.P95ms, m.P99ms, m.ServerCPUPerMsg, m.GenCPUPerMsg)
		if m.Loss == 0 && m.P99ms <= 100 && m.DeliveredPerSec > best {
			best = m.DeliveredPerSec
		}
	}
	fmt.Fprintf(&b, "\nHighest one-to-one rate with p99 <= 100 ms and no loss: **%.0f messages/s**.\n", best)
	return b.String()
}
