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

// S2SPairResult is the federation scenario (s2s) on one pair of servers: users on each
// sending one-to-one messages to users on the other. Steps has one entry per repetition.
type S2SPairResult struct {
	Name     string                 `json:"name"` // "vireo-a ↔ vireo-b"
	Versions [2]string              `json:"versions"`
	Domains  [2]string              `json:"domains"`
	Steps    [][]scenario.S2SResult `json:"steps"`
	Errors   []string               `json:"errors,omitempty"`
}

// runS2S starts both servers of p, creates S2SUsers accounts on each, logs them in,
// warms the server-to-server streams up and runs the rate steps Reps times.
func runS2S(p *peers.Pair, s Suite, log io.Writer) S2SPairResult {
	res := S2SPairResult{Name: p.A.Name() + " ↔ " + p.B.Name(), Versions: [2]string{p.A.Version(), p.B.Version()},
		Domains: [2]string{p.DomainA, p.DomainB}}
	fail := func(what string, err error) {
		fmt.Fprintf(log, "  %s: %s: %v\n", res.Name, what, err)
		res.Errors = append(res.Errors, what+": "+err.Error())
	}
	for _, srv := range []peers.Server{p.A, p.B} {
		if err := srv.Start(); err != nil {
			fail("start "+srv.Name(), err)
			return res
		}
		defer srv.Stop()
		if err := srv.AddAccounts(s.S2SUsers); err != nil {
			fail("accounts "+srv.Name(), err)
			return res
		}
	}
	target := func(srv peers.Server, domain string) scenario.Target {
		return scenario.Target{Name: srv.Name(), Prefix: "user", Password: peers.Password, PID: srv.PID(), SourceIPs: s.SourceIPs, Log: log,
			Cfg: loadgen.Config{Addr: srv.Addr(false), Domain: domain, Mode: loadgen.Plain, Mechanism: "SCRAM-SHA-1"}}
	}
	ta, tb := target(p.A, p.DomainA), target(p.B, p.DomainB)
	oa, err := scenario.Connect(ta, s.S2SUsers, s.Conc)
	if err != nil {
		fail("connect "+p.A.Name(), err)
		return res
	}
	defer oa.Close()
	ob, err := scenario.Connect(tb, s.S2SUsers, s.Conc)
	if err != nil {
		fail("connect "+p.B.Name(), err)
		return res
	}
	defer ob.Close()
	if err := scenario.FederationWarmup(oa, ob, 20*time.Second); err != nil {
		fail("warm-up", err)
		return res
	}
	for rep := 0; rep < s.Reps; rep++ {
		fmt.Fprintf(log, "  %s: federation steps %d..%d msgs/s, %d users per side (run %d/%d)\n", res.Name, s.S2SRateStart, s.S2SRateMax, s.S2SUsers, rep+1, s.Reps)
		steps, err := scenario.FederationSteps(ta, tb, oa, ob, s.S2SRateStart, s.S2SRateMax, s.StepDuration, time.Duration(s.P99LimitMs*float64(time.Millisecond)))
		if err != nil {
			fail("federation", err)
		}
		res.Steps = append(res.Steps, steps)
	}
	return res
}

// bestS2S is the highest delivered rate among steps that lost nothing and kept p99
// within limitMs.
func bestS2S(steps []scenario.S2SResult, limitMs float64) (scenario.S2SResult, bool) {
	var best scenario.S2SResult
	ok := false
	for _, m := range steps {
		if m.Loss == 0 && m.P99ms <= limitMs && m.DeliveredPerSec > best.DeliveredPerSec {
			best, ok = m, true
		}
	}
	return best, ok
}

// s2sSection is the federation scenario's part of the report.
func s2sSection(b *strings.Builder, r Report) {
	s := r.Suite
	b.WriteString("\n## Federation (s2s)\n\n| pair | domains | versions |\n|---|---|---|\n")
	for _, pr := range r.S2S {
		fmt.Fprintf(b, "| %s | %s, %s | %s; %s |\n", pr.Name, pr.Domains[0], pr.Domains[1], pr.Versions[0], pr.Versions[1])
	}
	b.WriteString("\n")
	fmt.Fprintf(b, "Two server processes, each with its own domain on its own loopback address, federated through their s2s "+
		"listeners (STARTTLS, dialback: they share the bench's self-signed certificate, so neither validates the other's). "+
		"%s users log in on each; chat messages go from a random user on one side to a random user on the other, half each way, "+
		"so every message crosses one server-to-server stream and is handled by both processes. Steps of %v from %d msgs/s, "+
		"doubling up to %d, stop at the first step that loses a message or passes p99 %.0f ms. "+
		"**Server CPU per message** is each process's CPU time (`/proc/PID/stat`, in 10 ms ticks, so coarse at the low rates) "+
		"over the messages delivered in the step. The generator runs on the same cores as both servers.\n\n",
		num(float64(s.S2SUsers)), s.StepDuration, s.S2SRateStart, s.S2SRateMax, s.P99LimitMs)
	b.WriteString("| pair | run | offered/s | delivered/s | lost | p50 ms | p99 ms | server A µs/msg | server B µs/msg | generator µs/msg |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, pr := range r.S2S {
		for i, steps := range pr.Steps {
			for _, m := range steps {
				fmt.Fprintf(b, "| %s | %d | %d | %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", pr.Name, i+1, m.OfferedRate,
					num(m.DeliveredPerSec), m.Loss, m.P50ms, m.P99ms, m.ServerCPUPerMsgA, m.ServerCPUPerMsgB, m.GenCPUPerMsg)
			}
		}
	}
	b.WriteString("\n| pair | best delivered/s (no loss, p99 within limit) | server A µs/msg | server B µs/msg |\n|---|---|---|---|\n")
	for _, pr := range r.S2S {
		var d, ca, cb []float64
		for _, steps := range pr.Steps {
			if m, ok := bestS2S(steps, s.P99LimitMs); ok {
				d, ca, cb = append(d, m.DeliveredPerSec), append(ca, m.ServerCPUPerMsgA), append(cb, m.ServerCPUPerMsgB)
			}
		}
		fmt.Fprintf(b, "| %s | **%s**%s | %s%s | %s%s |\n", pr.Name, num(median(d)), spread(d),
			num(median(ca)), spread(ca), num(median(cb)), spread(cb))
	}
	for _, pr := range r.S2S {
		for _, e := range pr.Errors {
			fmt.Fprintf(b, "\n- %s: %s\n", pr.Name, e)
		}
	}
}
