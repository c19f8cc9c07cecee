package scenario

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/xmlstream"
)

// Target is the server under test and its accounts (prefix1..prefixN, one password).
type Target struct {
	Name     string
	Cfg      loadgen.Config
	Prefix   string
	Password string
	PID      int // server process, for /proc sampling
	// Also are more processes of the same server (a split deployment's edges): memory and
	// CPU samples are the sum over PID and these.
	Also []int
	// SourceIPs spreads client sockets over 127.0.0.1..127.0.0.SourceIPs so that no
	// single source address runs out of ephemeral ports.
	SourceIPs int
	Log       io.Writer
	// LiveHeap, when set, reads the heap the server's last collection found reachable;
	// memory samples carry it beside RSS.
	LiveHeap func() (int64, error)
	// Goroutines, when set, reads the server's number of goroutines (the soak samples it).
	Goroutines func() (int64, error)
}

// readProc samples the server: PID, plus the processes in Also.
func (t Target) readProc() (ProcStat, error) {
	s, err := ReadProc(t.PID)
	for _, pid := range t.Also {
		o, oerr := ReadProc(pid)
		if oerr != nil && err == nil {
			err = oerr
		}
		s.RSS += o.RSS
		s.PSS += o.PSS
		s.CPU += o.CPU
	}
	return s, err
}

// liveHeap is t.LiveHeap's reading, 0 when there is none.
func (t Target) liveHeap() int64 {
	if t.LiveHeap == nil {
		return 0
	}
	n, err := t.LiveHeap()
	if err != nil {
		t.logf("  %s: live heap: %v", t.Name, err)
		return 0
	}
	return n
}

// liveSlope fits live heap over sessions when every sample has it (else 0).
func liveSlope(xs []float64, live []int64) float64 {
	ys := make([]float64, len(live))
	for i, l := range live {
		if l <= 0 {
			return 0
		}
		ys[i] = float64(l)
	}
	return FitSlope(xs, ys)
}

func (t Target) cfgFor(i int) loadgen.Config {
	c := t.Cfg
	if t.SourceIPs > 1 {
		c.LocalAddr = "127.0.0." + strconv.Itoa(1+i%t.SourceIPs)
	}
	return c
}

func (t Target) logf(f string, a ...any) {
	if t.Log != nil {
		fmt.Fprintf(t.Log, f+"\n", a...)
	}
}

// progress prints done/failed counts and the rate every two seconds until the returned
// func is called, so that a long ramp shows it is moving.
func (t Target) progress(what string, total int, done, fails *atomic.Int64) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		tk := time.NewTicker(2 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tk.C:
				d := done.Load()
				t.logf("  %s: %s %d/%d (%.0f/s), %d failed", t.Name, what, d, total, float64(d)/time.Since(start).Seconds(), fails.Load())
			}
		}
	}()
	return func() { close(quit); <-finished }
}

// dialMany opens sessions for users from..to-1 with conc workers, at most rate logins
// per second when rate > 0; with presence, each session sends initial presence after
// bind, as a client does.
func (t Target) dialMany(from, to, conc, rate int, res string, presence bool) ([]*loadgen.Session, int, error) {
	var setup func(*loadgen.Session) error
	if presence {
		setup = func(s *loadgen.Session) error { return s.Send([]byte("<presence/>")) }
	}
	return t.dialManyWith(from, to, conc, rate, res, setup)
}

// dialManyWith is dialMany with what each session does after bind (nil: nothing); a
// session whose setup fails is closed and counted as a failure.
func (t Target) dialManyWith(from, to, conc, rate int, res string, setup func(*loadgen.Session) error) ([]*loadgen.Session, int, error) {
	return t.dialManyRate(from, to, conc, rate, res, t.cfgFor, setup)
}

// dialManyCfg is dialManyWith with each account's connection from cfg.
func (t Target) dialManyCfg(from, to, conc int, res string, cfg func(i int) loadgen.Config, setup func(*loadgen.Session) error) ([]*loadgen.Session, int, error) {
	return t.dialManyRate(from, to, conc, 0, res, cfg, setup)
}

func (t Target) dialManyRate(from, to, conc, rate int, res string, cfg func(i int) loadgen.Config, setup func(*loadgen.Session) error) ([]*loadgen.Session, int, error) {
	out := make([]*loadgen.Session, to-from)
	var fails, done atomic.Int64
	var firstErr firstError
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	defer t.progress("sessions up", to-from, &done, &fails)()
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				if rate > 0 {
					time.Sleep(time.Until(start.Add(time.Duration(i-from) * time.Second / time.Duration(rate))))
				}
				s, err := loadgen.Dial(cfg(i), t.Prefix+strconv.Itoa(i+1), t.Password, res)
				if err != nil {
					fails.Add(1)
					firstErr.set(err)
					continue
				}
				if setup != nil {
					if err := setup(s); err != nil {
						s.Close()
						fails.Add(1)
						firstErr.set(err)
						continue
					}
				}
				out[i-from] = s
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return out, int(fails.Load()), firstErr.get()
}

// firstError keeps the first error of many goroutines. (An atomic.Value would panic on
// the second error if its concrete type differed from the first's.)
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func closeAll(ss []*loadgen.Session) {
	for _, s := range ss {
		if s != nil {
			s.Close()
		}
	}
}

// IdlePoint is one step of the idle-density scenario.
type IdlePoint struct {
	Sessions  int      `json:"sessions"`
	Server    ProcStat `json:"server"`
	Generator ProcStat `json:"generator"`
	// LiveHeap is the server's live heap (Target.LiveHeap), 0 if it reports none.
	LiveHeap int64 `json:"server_live_heap_bytes,omitempty"`
}

// IdleResult is the idle-density result: memory at each size and the slope.
type IdleResult struct {
	Points        []IdlePoint `json:"points"`
	RSSPerSession float64     `json:"rss_bytes_per_session"`
	PSSPerSession float64     `json:"pss_bytes_per_session"`
	// GenRSSPerSession is the generator's RSS slope: indicative only, as it moves with
	// the generator's garbage collection (it can come out negative).
	GenRSSPerSession float64 `json:"generator_rss_bytes_per_session"`
	// LiveHeapPerSession is the live heap's slope, where the server reports it.
	LiveHeapPerSession float64 `json:"live_heap_bytes_per_session,omitempty"`
	Failures           int     `json:"failures"`
	LoginsPerSecond    float64 `json:"ramp_logins_per_second"`
}

// Idle ramps to each size in sizes at up to rate logins per second (0: as fast as conc
// logins in flight allow), each session sending initial presence, holds for settle,
// samples the server, and reports bytes per session as the least-squares slope over the
// sizes (FitSlope).
func Idle(t Target, sizes []int, conc, rate int, settle time.Duration) (IdleResult, error) {
	var r IdleResult
	var all []*loadgen.Session
	defer func() { closeAll(all) }()
	have := 0
	var rampTime time.Duration
	for _, n := range sizes {
		start := time.Now()
		ss, fails, err := t.dialMany(have, n, conc, rate, "idle", true)
		rampTime += time.Since(start)
		all = append(all, ss...)
		r.Failures += fails
		if fails > 0 {
			t.logf("  %s: %d failures, first: %v", t.Name, fails, err)
		}
		have = n
		time.Sleep(settle)
		st, err := t.readProc()
		if err != nil {
			return r, err
		}
		gen, _ := ReadProc(0)
		up := n - r.Failures
		r.Points = append(r.Points, IdlePoint{Sessions: up, Server: st, Generator: gen, LiveHeap: t.liveHeap()})
		t.logf("  %s: %d idle sessions, server RSS %.1f MiB PSS %.1f MiB (generator RSS %.1f MiB)", t.Name, up,
			float64(st.RSS)/(1<<20), float64(st.PSS)/(1<<20), float64(gen.RSS)/(1<<20))
	}
	var xs, rss, pss, gen []float64
	var live []int64
	for _, p := range r.Points {
		xs, live = append(xs, float64(p.Sessions)), append(live, p.LiveHeap)
		rss, pss, gen = append(rss, float64(p.Server.RSS)), append(pss, float64(p.Server.PSS)), append(gen, float64(p.Generator.RSS))
	}
	r.RSSPerSession, r.PSSPerSession, r.GenRSSPerSession = FitSlope(xs, rss), FitSlope(xs, pss), FitSlope(xs, gen)
	r.LiveHeapPerSession = liveSlope(xs, live)
	if rampTime > 0 {
		r.LoginsPerSecond = float64(have) / rampTime.Seconds()
	}
	return r, nil
}

// LoginResult is the login-storm result.
type LoginResult struct {
	Logins            int     `json:"logins"`
	Failures          int     `json:"failures"`
	Seconds           float64 `json:"seconds"`
	LoginsPerSecond   float64 `json:"logins_per_second"`
	ServerCPUPerLogin float64 `json:"server_cpu_us_per_login"`
	GenCPUPerLogin    float64 `json:"generator_cpu_us_per_login"`
	FirstFailure      string  `json:"first_failure,omitempty"`
	// Resumed counts the logins whose TLS handshake resumed a session (ResumedLoginStorm).
	Resumed int `json:"resumed,omitempty"`
}

// LoginStorm logs k accounts in as fast as the server takes them (conc at a time), closing
// each session right after bind.
func LoginStorm(t Target, k, conc int) (LoginResult, error) {
	return t.storm("logins", k, conc, func(i int) error {
		s, err := loadgen.Dial(t.cfgFor(i), t.Prefix+strconv.Itoa(i+1), t.Password, "storm"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		s.Close()
		return nil
	})
}

// ResumedLoginStorm is LoginStorm over TLS where a connection resumes the TLS session of an
// earlier one (a ticket, RFC 8446 §2.2), as a phone does that reconnects: conc session
// caches, each used by one login at a time, so every login but the first of each cache
// can skip the full handshake. Resumed counts those that did.
func ResumedLoginStorm(t Target, k, conc int) (LoginResult, error) {
	caches := make(chan tls.ClientSessionCache, conc)
	for range conc {
		caches <- tls.NewLRUClientSessionCache(1)
	}
	var resumed atomic.Int64
	r, err := t.storm("resumed logins", k, conc, func(i int) error {
		cache := <-caches
		defer func() { caches <- cache }()
		cfg := t.cfgFor(i)
		if cfg.TLS != nil {
			cfg.TLS = cfg.TLS.Clone()
		} else {
			cfg.TLS = &tls.Config{InsecureSkipVerify: true, ServerName: cfg.Domain}
		}
		cfg.TLS.ClientSessionCache = cache
		cfg.TLS.VerifyConnection = func(cs tls.ConnectionState) error {
			if cs.DidResume {
				resumed.Add(1)
			}
			return nil
		}
		s, err := loadgen.Dial(cfg, t.Prefix+strconv.Itoa(i+1), t.Password, "storm"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		s.Close()
		return nil
	})
	r.Resumed = int(resumed.Load())
	return r, err
}

// storm runs login(i) for i in 0..k-1, conc at a time, as fast as they complete, and
// measures the rate and the CPU time the server and the generator spent per success.
func (t Target) storm(what string, k, conc int, login func(i int) error) (LoginResult, error) {
	s0, err := t.readProc()
	if err != nil {
		return LoginResult{}, err
	}
	g0, _ := ReadProc(0)
	var next, fails, done atomic.Int64
	var firstErr firstError
	var wg sync.WaitGroup
	stop := t.progress(what, k, &done, &fails)
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= k {
					return
				}
				if err := login(i); err != nil {
					fails.Add(1)
					firstErr.set(err)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	stop()
	s1, _ := t.readProc()
	g1, _ := ReadProc(0)
	ok := k - int(fails.Load())
	r := LoginResult{Logins: ok, Failures: int(fails.Load()), Seconds: el.Seconds(), LoginsPerSecond: float64(ok) / el.Seconds()}
	if err := firstErr.get(); err != nil {
		r.FirstFailure = err.Error()
	}
	if ok > 0 {
		r.ServerCPUPerLogin = float64((s1.CPU - s0.CPU).Microseconds()) / float64(ok)
		r.GenCPUPerLogin = float64((g1.CPU - g0.CPU).Microseconds()) / float64(ok)
	}
	return r, nil
}

// MsgResult is the one-to-one messaging result at one offered rate.
type MsgResult struct {
	Users           int     `json:"users"`
	OfferedRate     int     `json:"offered_per_second"`
	Sent            int64   `json:"sent"`
	Delivered       int64   `json:"delivered"`
	DeliveredPerSec float64 `json:"delivered_per_second"`
	Loss            int64   `json:"lost"`
	P50ms           float64 `json:"p50_ms"`
	P95ms           float64 `json:"p95_ms"`
	P99ms           float64 `json:"p99_ms"`
	ServerCPUPerMsg float64 `json:"server_cpu_us_per_message"`
	GenCPUPerMsg    float64 `json:"generator_cpu_us_per_message"`
}

// Online is a set of connected sessions with readers that time incoming chat messages.
type Online struct {
	ss []*loadgen.Session
	// on, when set, sees every stanza a session reads (before the message timing).
	on    func(s *loadgen.Session, st *xmlstream.Stanza)
	mu    sync.Mutex
	hist  Histogram
	recvd atomic.Int64
	wg    sync.WaitGroup
}

// Connect logs users 1..n in, sends initial presence and starts a reader per session.
func Connect(t Target, n, conc int) (*Online, error) { return ConnectWith(t, n, conc, true, nil) }

// ConnectWith is Connect with a handler for every stanza read; presence says whether
// sessions send initial presence after bind.
func ConnectWith(t Target, n, conc int, presence bool, on func(s *loadgen.Session, st *xmlstream.Stanza)) (*Online, error) {
	ss, fails, err := t.dialMany(0, n, conc, 0, "msg", presence)
	if fails > 0 {
		closeAll(ss)
		return nil, fmt.Errorf("scenario: %d of %d logins failed: %w", fails, n, err)
	}
	o := &Online{ss: ss, on: on}
	for _, s := range ss {
		o.wg.Add(1)
		go o.read(s)
	}
	return o, nil
}

var tsMark = []byte("<body>ts:")

func (o *Online) read(s *loadgen.Session) {
	defer o.wg.Done()
	for {
		st, err := s.Next()
		if err != nil {
			return
		}
		if o.on != nil {
			o.on(s, st)
		}
		if string(st.Name) != "message" {
			continue
		}
		raw := st.Raw
		i := indexOf(raw, tsMark)
		if i < 0 {
			continue
		}
		j := i + len(tsMark)
		k := j
		for k < len(raw) && raw[k] >= '0' && raw[k] <= '9' {
			k++
		}
		ns, err := strconv.ParseInt(string(raw[j:k]), 10, 64)
		if err != nil {
			continue
		}
		d := time.Duration(time.Now().UnixNano() - ns)
		o.mu.Lock()
		o.hist.Add(d)
		o.mu.Unlock()
		o.recvd.Add(1)
	}
}

func indexOf(b, sub []byte) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		if b[i] == sub[0] && string(b[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	return -1
}

// Close ends every session: the streams first, then, once the readers are done with them,
// the connections and the parsers (a parser freed under a running reader is a race).
func (o *Online) Close() { endAll(o.ss, &o.wg) }

// Messaging sends rate chat messages per second between random pairs of o's sessions for
// dur, waits for stragglers, and reports delivery and latency.
func Messaging(t Target, o *Online, rate int, dur time.Duration) (MsgResult, error) {
	if len(o.ss) < 2 || rate <= 0 {
		return MsgResult{}, errors.New("scenario: need 2+ sessions and a positive rate")
	}
	o.mu.Lock()
	o.hist = Histogram{}
	o.mu.Unlock()
	base := o.recvd.Load()
	s0, _ := t.readProc()
	g0, _ := ReadProc(0)
	start := time.Now()
	sent := paced(rate, 4, dur, func(_ int, rng *rand.Rand, buf []byte) ([]byte, *loadgen.Session) {
		a := rng.IntN(len(o.ss))
		b := rng.IntN(len(o.ss) - 1)
		if b >= a {
			b++
		}
		return chatTo(buf, o.ss[b].JID), o.ss[a]
	})
	deadline := time.Now().Add(3 * time.Second)
	for o.recvd.Load()-base < sent.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	s1, _ := t.readProc()
	g1, _ := ReadProc(0)
	delivered := o.recvd.Load() - base
	o.mu.Lock()
	h := o.hist
	o.hist = Histogram{}
	o.mu.Unlock()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r := MsgResult{Users: len(o.ss), OfferedRate: rate, Sent: sent.Load(), Delivered: delivered,
		DeliveredPerSec: float64(delivered) / dur.Seconds(), Loss: sent.Load() - delivered,
		P50ms: ms(h.Quantile(0.5)), P95ms: ms(h.Quantile(0.95)), P99ms: ms(h.Quantile(0.99))}
	_ = el
	if delivered > 0 {
		r.ServerCPUPerMsg = float64((s1.CPU - s0.CPU).Microseconds()) / float64(delivered)
		r.GenCPUPerMsg = float64((g1.CPU - g0.CPU).Microseconds()) / float64(delivered)
	}
	return r, nil
}

// paced sends messages at rate for dur from senders goroutines, each tick of 10 ms sending
// its share; next writes one message (the send time in the body, see chatTo) into buf for
// sender w and names the session that sends it. It returns the counter of messages sent.
func paced(rate, senders int, dur time.Duration, next func(w int, rng *rand.Rand, buf []byte) ([]byte, *loadgen.Session)) *atomic.Int64 {
	var sent atomic.Int64
	const tick = 10 * time.Millisecond
	perTick := float64(rate) * tick.Seconds()
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			buf := make([]byte, 0, 256)
			owed := 0.0
			tk := time.NewTicker(tick)
			defer tk.Stop()
			for now := range tk.C {
				if now.Sub(start) >= dur {
					return
				}
				owed += perTick / float64(senders)
				for ; owed >= 1; owed-- {
					var s *loadgen.Session
					buf, s = next(w, rng, buf[:0])
					if s.Send(buf) == nil {
						sent.Add(1)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	return &sent
}

// chatTo appends a chat message to jid whose body carries the send time, which the
// receiving Online reads to time its delivery.
func chatTo(buf []byte, jid string) []byte {
	buf = append(buf, "<message type='chat' to='"...)
	buf = append(buf, jid...)
	buf = append(buf, "'><body>ts:"...)
	buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
	return append(buf, "</body></message>"...)
}

// Search finds the highest rate at which p99 stays within limit and nothing is lost:
// it doubles the rate from start while steps pass (up to max), then bisects between
// the last passing and the first failing rate until they are within 10%; a step that
// fails is tried once more before it counts as failed. Servers differ
// by 100x here, so a fixed step would be too coarse for one and too slow for another.
// Every step is returned; Best picks the answer.
func Search(t Target, o *Online, start, max int, dur time.Duration, limit time.Duration) ([]MsgResult, error) {
	var out []MsgResult
	pass, fail := 0, 0
	// A step fails only if it fails twice in a row: one collector pause in a 5-second
	// step is enough to push p99 over the limit at a rate the server otherwise sustains.
	step := func(rate int) (bool, error) {
		for try := 0; try < 2; try++ {
			r, err := Messaging(t, o, rate, dur)
			if err != nil {
				return false, err
			}
			out = append(out, r)
			ok := r.Loss == 0 && r.P99ms <= float64(limit.Milliseconds())
			t.logf("  %s: offered %d/s delivered %.0f/s lost %d p50 %.1fms p99 %.1fms server %.1fµs/msg pass=%v",
				t.Name, rate, r.DeliveredPerSec, r.Loss, r.P50ms, r.P99ms, r.ServerCPUPerMsg, ok)
			if ok {
				return true, nil
			}
			o.drain(30 * time.Second)
		}
		return false, nil
	}
	for rate := start; rate <= max; rate *= 2 {
		ok, err := step(rate)
		if err != nil {
			return out, err
		}
		if !ok {
			fail = rate
			break
		}
		pass = rate
	}
	for fail > 0 && fail-pass > pass/10 && fail-pass > 50 {
		mid := (pass + fail) / 2
		ok, err := step(mid)
		if err != nil {
			return out, err
		}
		if ok {
			pass = mid
		} else {
			fail = mid
		}
	}
	return out, nil
}

// Best is the highest delivered rate among steps that kept p99 within limitMs and lost
// nothing (0 when none did).
func Best(steps []MsgResult, limitMs float64) MsgResult {
	var best MsgResult
	for _, m := range steps {
		if m.Loss == 0 && m.P99ms <= limitMs && m.DeliveredPerSec > best.DeliveredPerSec {
			best = m
		}
	}
	return best
}

// drain waits until no message has arrived for a second (or max), so that a backlog
// left by an overloaded step is not counted in the next one.
func (o *Online) drain(max time.Duration) {
	last, since, start := o.recvd.Load(), time.Now(), time.Now()
	for time.Since(since) < time.Second && time.Since(start) < max {
		time.Sleep(50 * time.Millisecond)
		if n := o.recvd.Load(); n != last {
			last, since = n, time.Now()
		}
	}
}
