package scenario

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
)

// S2SResult is one step of the federation scenario: users on two servers (two domains)
// sending one-to-one chat messages to users on the other, half each way, so that every
// message crosses a server-to-server stream.
type S2SResult struct {
	UsersPerSide    int     `json:"users_per_side"`
	OfferedRate     int     `json:"offered_per_second"`
	Sent            int64   `json:"sent"`
	Delivered       int64   `json:"delivered"`
	DeliveredPerSec float64 `json:"delivered_per_second"`
	Loss            int64   `json:"lost"`
	P50ms           float64 `json:"p50_ms"`
	P95ms           float64 `json:"p95_ms"`
	P99ms           float64 `json:"p99_ms"`
	// ServerCPUPerMsgA and B are each server's CPU time per delivered message (µs). Each
	// one carries every message once: outbound for the half its users send, inbound for
	// the half they receive.
	ServerCPUPerMsgA float64 `json:"server_a_cpu_us_per_message"`
	ServerCPUPerMsgB float64 `json:"server_b_cpu_us_per_message"`
	GenCPUPerMsg     float64 `json:"generator_cpu_us_per_message"`
}

// FederationWarmup sends one message each way and waits (up to d) until both arrive, so
// that the server-to-server streams (dial, STARTTLS, dialback) are up before a measured
// step.
func FederationWarmup(oa, ob *Online, d time.Duration) error {
	if len(oa.ss) == 0 || len(ob.ss) == 0 {
		return errors.New("scenario: need sessions on both servers")
	}
	base := oa.recvd.Load() + ob.recvd.Load()
	for _, p := range [][2]*Online{{oa, ob}, {ob, oa}} {
		msg := "<message type='chat' to='" + p[1].ss[0].JID + "'><body>ts:" + strconv.FormatInt(time.Now().UnixNano(), 10) + "</body></message>"
		if err := p[0].ss[0].Send([]byte(msg)); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(d)
	for oa.recvd.Load()+ob.recvd.Load()-base < 2 {
		if time.Now().After(deadline) {
			return errors.New("scenario: the warm-up messages did not cross the federation")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Federation sends rate messages per second for dur, each from a random user of one
// server to a random user of the other (the direction alternates at random), waits for
// stragglers and reports delivery, latency and both servers' CPU per message.
func Federation(a, b Target, oa, ob *Online, rate int, dur time.Duration) (S2SResult, error) {
	if len(oa.ss) == 0 || len(ob.ss) == 0 || rate <= 0 {
		return S2SResult{}, errors.New("scenario: need sessions on both servers and a positive rate")
	}
	for _, o := range []*Online{oa, ob} {
		o.mu.Lock()
		o.hist = Histogram{}
		o.mu.Unlock()
	}
	recvd := func() int64 { return oa.recvd.Load() + ob.recvd.Load() }
	base := recvd()
	a0, _ := ReadProc(a.PID)
	b0, _ := ReadProc(b.PID)
	g0, _ := ReadProc(0)
	sent := paced(rate, 4, dur, func(_ int, rng *rand.Rand, buf []byte) ([]byte, *loadgen.Session) {
		from, to := oa, ob
		if rng.IntN(2) == 1 {
			from, to = ob, oa
		}
		s := from.ss[rng.IntN(len(from.ss))]
		return chatTo(buf, to.ss[rng.IntN(len(to.ss))].JID), s
	})
	deadline := time.Now().Add(3 * time.Second)
	for recvd()-base < sent.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	a1, _ := ReadProc(a.PID)
	b1, _ := ReadProc(b.PID)
	g1, _ := ReadProc(0)
	delivered := recvd() - base
	var h Histogram
	for _, o := range []*Online{oa, ob} {
		o.mu.Lock()
		h.Merge(&o.hist)
		o.hist = Histogram{}
		o.mu.Unlock()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r := S2SResult{UsersPerSide: len(oa.ss), OfferedRate: rate, Sent: sent.Load(), Delivered: delivered,
		DeliveredPerSec: float64(delivered) / dur.Seconds(), Loss: sent.Load() - delivered,
		P50ms: ms(h.Quantile(0.5)), P95ms: ms(h.Quantile(0.95)), P99ms: ms(h.Quantile(0.99))}
	if delivered > 0 {
		per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(delivered) }
		r.ServerCPUPerMsgA, r.ServerCPUPerMsgB, r.GenCPUPerMsg = per(a1.CPU-a0.CPU), per(b1.CPU-b0.CPU), per(g1.CPU-g0.CPU)
	}
	return r, nil
}

// FederationSteps runs Federation at start, 2×start, ... up to max, one step of dur
// each, and stops after the first step that loses messages or passes limit at p99
// (after draining its backlog). Every step is returned.
func FederationSteps(a, b Target, oa, ob *Online, start, max int, dur, limit time.Duration) ([]S2SResult, error) {
	var out []S2SResult
	for rate := start; rate <= max; rate *= 2 {
		r, err := Federation(a, b, oa, ob, rate, dur)
		if err != nil {
			return out, err
		}
		out = append(out, r)
		ok := r.Loss == 0 && r.P99ms <= float64(limit.Milliseconds())
		a.logf("  %s↔%s: offered %d/s delivered %.0f/s lost %d p50 %.1fms p99 %.1fms server A %.1fµs/msg B %.1fµs/msg pass=%v",
			a.Name, b.Name, rate, r.DeliveredPerSec, r.Loss, r.P50ms, r.P99ms, r.ServerCPUPerMsgA, r.ServerCPUPerMsgB, ok)
		if !ok {
			oa.drain(30 * time.Second)
			ob.drain(30 * time.Second)
			break
		}
	}
	return out, nil
}
