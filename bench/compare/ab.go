package compare

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/vireo-im/vireo/bench/peers"
	"github.com/vireo-im/vireo/bench/scenario"
)

// ABConfig is an interleaved comparison of two Vireo builds on one workload.
//
// On this kind of machine (a VM whose speed drifts by ±15% over an hour) two runs of one
// build made minutes apart differ by more than most changes do, so two builds are only
// comparable run against run, close in time. AB runs both servers at once, idle but for
// the run in progress, and alternates them A B, B A, ... so that drift falls on both
// alike; the figure is the ratio B/A within each pair, whose spread over many pairs gives
// a confidence interval. A few percent become visible in 20 pairs of short runs.
type ABConfig struct {
	BinA, BinB string // directories holding vireo and vireoctl
	Dir        string // work directory
	PortBase   int
	Pairs      int
	// Workload: "login" (plain TCP SCRAM logins), "tls" (direct TLS 1.3 logins), "fast"
	// or "fast-tls" (the FAST storm's FAST phase: Logins per phase, after its SASL2 phase
	// got the tokens), or "msg" (one-to-one messages at Rate between Users online users,
	// Step per run).
	Workload   string
	Logins     int
	Conc       int
	Users      int
	Rate       int
	Step       time.Duration
	SourceIPs  int
	ClassicTLS bool
	SendFrom   bool // clients name their account in the stream header (loadgen.Config.SendFrom)
}

// ABResult is the outcome: server CPU per operation of each build, pair by pair.
type ABResult struct {
	Config   ABConfig  `json:"config"`
	VersionA string    `json:"version_a"`
	VersionB string    `json:"version_b"`
	Unit     string    `json:"unit"`
	A        []float64 `json:"a"`
	B        []float64 `json:"b"`
	Date     string    `json:"date"`
}

// AB starts both builds from bench/peers (each with its own data directory and the
// accounts the workload needs) and runs the pairs.
func AB(c ABConfig, log io.Writer) (ABResult, error) {
	r := ABResult{Config: c, Unit: "server CPU µs per login", Date: time.Now().UTC().Format(time.RFC3339)}
	switch c.Workload {
	case "login", "tls", "fast", "fast-tls", "msg":
	default:
		return r, fmt.Errorf("compare: unknown A/B workload %q (login, tls, fast, fast-tls, msg)", c.Workload)
	}
	if c.Pairs < 1 {
		return r, fmt.Errorf("compare: %d pairs", c.Pairs)
	}
	if c.Workload == "msg" {
		r.Unit = "server CPU µs per message"
	}
	accounts := c.Logins
	if c.Workload == "msg" {
		accounts = c.Users
	}
	var srv [2]peers.Server
	base := c.PortBase
	for i, bin := range []string{c.BinA, c.BinB} {
		env, err := peers.NewEnv(filepath.Join(c.Dir, string(rune('a'+i))), bin)
		if err != nil {
			return r, err
		}
		plain := peers.FreePort(base)
		s, err := peers.New("vireo", env, plain, peers.FreePort(plain+1))
		if err != nil {
			return r, err
		}
		if err := s.Start(); err != nil {
			return r, fmt.Errorf("start %s: %w", bin, err)
		}
		defer s.Stop()
		fmt.Fprintf(log, "  %s: %s, creating %d accounts\n", bin, s.Version(), accounts)
		if err := s.AddAccounts(accounts); err != nil {
			return r, err
		}
		srv[i] = s
		base = plain + 10
	}
	r.VersionA, r.VersionB = srv[0].Version(), srv[1].Version()
	tls := c.Workload == "tls" || c.Workload == "fast-tls"
	target := func(s peers.Server) scenario.Target {
		t := serverTarget(s, tls, c.SourceIPs, c.ClassicTLS, io.Discard)
		t.Cfg.SendFrom = c.SendFrom
		return t
	}
	var online [2]*scenario.Online
	if c.Workload == "msg" {
		for i, s := range srv {
			o, err := scenario.Connect(target(s), c.Users, c.Conc)
			if err != nil {
				return r, err
			}
			defer o.Close()
			online[i] = o
		}
	}
	run := func(i int) (float64, error) {
		t := target(srv[i])
		if c.Workload == "msg" {
			m, err := scenario.Messaging(t, online[i], c.Rate, c.Step)
			if err == nil && m.Loss > 0 {
				err = fmt.Errorf("%d messages lost", m.Loss)
			}
			return m.ServerCPUPerMsg, err
		}
		if strings.HasPrefix(c.Workload, "fast") {
			f, err := scenario.FastStorm(t, c.Logins, c.Conc)
			if err == nil && f.FAST.Failures > 0 {
				err = fmt.Errorf("%d FAST logins failed: %s", f.FAST.Failures, f.FAST.FirstFailure)
			}
			return f.FAST.ServerCPUPerLogin, err
		}
		l, err := scenario.LoginStorm(t, c.Logins, c.Conc)
		if err == nil && l.Failures > 0 {
			err = fmt.Errorf("%d logins failed: %s", l.Failures, l.FirstFailure)
		}
		return l.ServerCPUPerLogin, err
	}
	// One run each first: the first storm on a fresh process warms caches and pools.
	for i := range srv {
		if _, err := run(i); err != nil {
			return r, err
		}
	}
	for p := 0; p < c.Pairs; p++ {
		order := []int{0, 1}
		if p%2 == 1 {
			order = []int{1, 0}
		}
		var v [2]float64
		for _, i := range order {
			x, err := run(i)
			if err != nil {
				return r, err
			}
			v[i] = x
		}
		r.A, r.B = append(r.A, v[0]), append(r.B, v[1])
		fmt.Fprintf(log, "  pair %d/%d: A %.1f  B %.1f  B/A %.3f\n", p+1, c.Pairs, v[0], v[1], v[1]/v[0])
	}
	return r, nil
}

// ABStats summarizes the pairs: the mean of B/A with its 95% confidence interval
// (Student's t), the median ratio, and in how many pairs B cost less.
type ABStats struct {
	N                    int
	MedianA, MedianB     float64
	Mean, Lo, Hi, Median float64
	BLower               int
}

// Stats computes ABStats.
func (r ABResult) Stats() ABStats {
	n := min(len(r.A), len(r.B))
	st := ABStats{N: n}
	if n == 0 {
		return st
	}
	ratios := make([]float64, n)
	for i := range n {
		ratios[i] = r.B[i] / r.A[i]
		st.Mean += ratios[i]
		if r.B[i] < r.A[i] {
			st.BLower++
		}
	}
	st.Mean /= float64(n)
	st.Median, st.MedianA, st.MedianB = median(ratios), median(r.A[:n]), median(r.B[:n])
	st.Lo, st.Hi = st.Mean, st.Mean
	if n > 1 {
		var ss float64
		for _, x := range ratios {
			ss += (x - st.Mean) * (x - st.Mean)
		}
		half := tQuantile(n-1) * math.Sqrt(ss/float64(n-1)) / math.Sqrt(float64(n))
		st.Lo, st.Hi = st.Mean-half, st.Mean+half
	}
	return st
}

// tQuantile is Student's t at 97.5% for df degrees of freedom.
func tQuantile(df int) float64 {
	table := []float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	if df >= 1 && df <= len(table) {
		return table[df-1]
	}
	return 1.96
}

// Markdown is the report: both builds, every pair, and the summary.
func (r ABResult) Markdown() string {
	var b strings.Builder
	st := r.Stats()
	c := r.Config
	fmt.Fprintf(&b, "# A/B: %s\n\nMeasured %s. A: %s (`%s`). B: %s (`%s`).\n\n", r.Unit, r.Date, r.VersionA, c.BinA, r.VersionB, c.BinB)
	switch c.Workload {
	case "msg":
		fmt.Fprintf(&b, "Each run: %d online users on each server, one-to-one messages at %d/s for %s.", c.Users, c.Rate, c.Step)
	case "fast", "fast-tls":
		fmt.Fprintf(&b, "Each run: the FAST storm (%s), %d logins per phase, %d in flight; the figure is its FAST phase (HT-SHA-256-NONE + Bind2).", c.Workload, c.Logins, c.Conc)
	case "tls":
		fmt.Fprintf(&b, "Each run: %d direct TLS 1.3 logins (SCRAM-SHA-1, bind, close), %d in flight.", c.Logins, c.Conc)
	default:
		fmt.Fprintf(&b, "Each run: %d plain-TCP logins (SCRAM-SHA-1, bind, close), %d in flight.", c.Logins, c.Conc)
	}
	b.WriteString(" Both servers run at once; the runs alternate A B, B A, ... so that the machine's drift falls on both alike.\n\n")
	fmt.Fprintf(&b, "**B/A = %.3f** (95%% CI %.3f–%.3f, %d pairs; median %.3f); B cost less in %d of %d pairs. Medians: A %.1f, B %.1f.\n\n",
		st.Mean, st.Lo, st.Hi, st.N, st.Median, st.BLower, st.N, st.MedianA, st.MedianB)
	b.WriteString("| pair | A | B | B/A |\n|---|---|---|---|\n")
	for i := range st.N {
		fmt.Fprintf(&b, "| %d | %.1f | %.1f | %.3f |\n", i+1, r.A[i], r.B[i], r.B[i]/r.A[i])
	}
	return b.String()
}
