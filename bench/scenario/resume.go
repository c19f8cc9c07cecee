package scenario

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/xmlstream"
)

// ResumeConfig describes a resume storm (XEP-0198).
type ResumeConfig struct {
	Sessions int // N sessions with stream management that are dropped at once and resumed
	// TopUp is the detached-density probe: after the storm's drop, this many more
	// sessions log in with stream management and are dropped at once too, so that the
	// server holds two sizes of detached sessions before anyone reconnects (default
	// Sessions/2). They are resumed and closed after the storm, outside its numbers.
	TopUp   int
	Senders int // online users without stream management sending to the N
	Rate    int // messages per second, in all, to the N (bounded, steady)
	Conc    int // logins and resumptions in flight
	// RampRate caps logins per second while the N log in (0: as fast as Conc allows),
	// like the idle scenario's ramp.
	RampRate int
	Settle   time.Duration // wait before each memory sample (default 3 s)
	// IdleSettle is the wait before each sample of the idle sessions (default 7 s): past
	// the server's first acknowledgement request, until which it rightly keeps copies
	// of the presence echo and the roster (Vireo asks 1 s after unacknowledged stanzas;
	// peers within seconds too).
	IdleSettle time.Duration
	Lead       time.Duration // traffic before the drop (default 1 s)
	Tail       time.Duration // traffic after the last <resumed/> (default 1 s)
}

// MemPoint is a memory sample at a count of sessions.
type MemPoint struct {
	Sessions int      `json:"sessions"`
	Server   ProcStat `json:"server"`
	LiveHeap int64    `json:"server_live_heap_bytes,omitempty"` // Target.LiveHeap, 0 if none
}

// ResumeResult is the resume-storm result.
type ResumeResult struct {
	Sessions int `json:"sessions"`
	Senders  int `json:"senders"`
	Rate     int `json:"offered_per_second"`
	// Unsupported says why the server could not run the scenario (no stream management
	// with resumption); nothing else is set then.
	Unsupported string `json:"unsupported,omitempty"`

	// Idle sessions with stream management on (enabled with resumption, initial presence):
	// the RSS slope fitted over ResumeIdleSizes(Sessions), as in the idle scenario.
	IdlePoints        []MemPoint `json:"sm_idle_points"`
	IdleRSSPerSession float64    `json:"sm_idle_rss_bytes_per_session"`
	IdlePSSPerSession float64    `json:"sm_idle_pss_bytes_per_session"`
	// IdleLiveHeapPerSession is the live heap's slope over the same samples, where the
	// server reports it.
	IdleLiveHeapPerSession float64 `json:"sm_idle_live_heap_bytes_per_session,omitempty"`
	LoginFailures          int     `json:"login_failures"`

	// Detached sessions: samples after the drop of the N and after the drop of TopUp more,
	// before any reconnect; the slope between them. Messages keep arriving for the N
	// meanwhile: QueuedBetween is how many (QueuedBytesBetween their size on the wire)
	// were sent to detached sessions between the two samples, so part of the slope.
	DetachedPoints        []MemPoint `json:"detached_points"`
	DetachedRSSPerSession float64    `json:"detached_rss_bytes_per_session"`
	DetachedPSSPerSession float64    `json:"detached_pss_bytes_per_session"`
	QueuedBetween         int64      `json:"messages_sent_between_detached_samples"`
	QueuedBytesBetween    int64      `json:"message_bytes_sent_between_detached_samples"`
	DetachedSeconds       float64    `json:"detached_seconds"` // from the drop to the first reconnect

	// The storm: every one of the N reconnects, authenticates and resumes, Conc at a time.
	// Seconds runs from the first connect to the last <resumed/>.
	Resumed            int     `json:"resumed"`
	Failures           int     `json:"resume_failures"`
	FirstFailure       string  `json:"first_failure,omitempty"`
	Seconds            float64 `json:"seconds"`
	ResumesPerSecond   float64 `json:"resumes_per_second"`
	ServerCPUPerResume float64 `json:"server_cpu_us_per_resume"`
	GenCPUPerResume    float64 `json:"generator_cpu_us_per_resume"`
	P50ms              float64 `json:"resume_p50_ms"`
	P99ms              float64 `json:"resume_p99_ms"`
	// Resent counts stanzas the generator sent again because <resumed h=…/> did not cover
	// them (0 when the server counted what it received).
	Resent int `json:"client_stanzas_resent"`

	// Delivery of every message sent to the N, deduplicated by id: Lost were never seen,
	// Duplicates are arrivals beyond the first, AfterResume arrived first on a resumed
	// stream (queued while detached, or unacknowledged at the drop).
	Delivery Delivery `json:"delivery"`
}

// Delivery counts messages by unique sequence number.
type Delivery struct {
	Sent        int64 `json:"sent"`
	Delivered   int64 `json:"delivered"`
	Lost        int64 `json:"lost"`
	Duplicates  int64 `json:"duplicates"`
	AfterResume int64 `json:"delivered_after_resume"`
	Misrouted   int64 `json:"misrouted"` // arrived at another session than addressed
	Bounced     int64 `json:"bounced"`   // error messages back at the senders
}

// tracker records, per message sequence number, who it was sent to and how often it
// arrived. Sequence numbers are dense from 0; capacity bounds the run.
type tracker struct {
	to          []atomic.Int32 // addressee index + 1; 0: not sent (or the send failed)
	got         []atomic.Uint32
	next        atomic.Int64
	afterResume atomic.Int64
	misrouted   atomic.Int64
	bounced     atomic.Int64
	bytes       atomic.Int64 // wire bytes of the messages sent
	// waiting, when set (by index of addressee), counts messages sent to each and not
	// arrived yet, so that a wait for one addressee does not scan every message.
	waiting []atomic.Int64
}

func newTracker(capacity int) *tracker {
	return &tracker{to: make([]atomic.Int32, capacity), got: make([]atomic.Uint32, capacity)}
}

// take reserves the next sequence number, or reports false when the run is at capacity.
func (k *tracker) take() (int, bool) {
	n := k.next.Add(1) - 1
	if n >= int64(len(k.to)) {
		k.next.Add(-1)
		return 0, false
	}
	return int(n), true
}

func (k *tracker) sent(seq, to, size int) {
	k.to[seq].Store(int32(to) + 1)
	k.bytes.Add(int64(size))
	if k.waiting != nil {
		k.waiting[to].Add(1)
	}
}

// unsent takes back a message whose write failed.
func (k *tracker) unsent(seq, size int) {
	if to := int(k.to[seq].Swap(0)) - 1; to >= 0 && k.waiting != nil {
		k.waiting[to].Add(-1)
	}
	k.bytes.Add(-int64(size))
}

// recv records that session by got message seq; resumed says it came on a resumed stream.
func (k *tracker) recv(seq, by int, resumed bool) {
	if seq < 0 || seq >= len(k.got) {
		k.misrouted.Add(1)
		return
	}
	if to := int(k.to[seq].Load()) - 1; to != by {
		k.misrouted.Add(1)
	}
	if k.got[seq].Add(1) == 1 {
		if resumed {
			k.afterResume.Add(1)
		}
		if to := int(k.to[seq].Load()) - 1; to >= 0 && k.waiting != nil {
			k.waiting[to].Add(-1)
		}
	}
}

// sentCount is how many messages were sent so far (for progress and quiescence).
func (k *tracker) sentCount() int64 {
	var n int64
	for i := range k.next.Load() {
		if k.to[i].Load() != 0 {
			n++
		}
	}
	return n
}

func (k *tracker) tally() Delivery {
	var d Delivery
	for i := range k.next.Load() {
		g := int64(k.got[i].Load())
		if k.to[i].Load() == 0 && g == 0 {
			continue // never sent
		}
		d.Sent++
		if g == 0 {
			d.Lost++
			continue
		}
		d.Delivered++
		d.Duplicates += g - 1
	}
	d.AfterResume = k.afterResume.Load()
	d.Misrouted = k.misrouted.Load()
	d.Bounced = k.bounced.Load()
	return d
}

// seqPrefix starts the id of every storm message: "rs", a tag of this process, and "-".
// The tag keeps messages of an earlier run against the same server (left in offline
// storage by sessions that ended before they arrived, and delivered at the next login)
// from being counted as this run's: same sequence number, other id.
var seqPrefix = "rs" + strconv.FormatUint(uint64(time.Now().UnixNano())%(36*36*36*36), 36) + "-"

// parseSeq reads the sequence number from a message id seqPrefix+"<digits>".
func parseSeq(id []byte) (int, bool) {
	if len(id) <= len(seqPrefix) || string(id[:len(seqPrefix)]) != seqPrefix || len(id) > len(seqPrefix)+9 {
		return 0, false
	}
	n := 0
	for _, c := range id[len(seqPrefix):] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func appendMessage(buf []byte, to string, seq int) []byte {
	buf = append(buf, "<message type='chat' to='"...)
	buf = append(buf, to...)
	buf = append(buf, "' id='"...)
	buf = append(buf, seqPrefix...)
	buf = strconv.AppendInt(buf, int64(seq), 10)
	buf = append(buf, "'><body>resume storm "...)
	buf = strconv.AppendInt(buf, int64(seq), 10)
	return append(buf, "</body></message>"...)
}

// readBounces reads each sender until its connection goes, counting the error messages
// that come back (a full offline store, an unknown user) as bounced.
func readBounces(k *tracker, senders []*loadgen.Session, wg *sync.WaitGroup) {
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				st, err := s.Next()
				if err != nil {
					return
				}
				if st.Kind() == xmlstream.KindMessage && string(st.Type) == "error" {
					k.bounced.Add(1)
				}
			}
		}()
	}
}

// stormReader reads a session of the N until its connection goes, recording messages.
func stormReader(k *tracker, i int, s *loadgen.Session, resumed bool, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		st, err := s.Next()
		if err != nil {
			return
		}
		if st.Kind() != xmlstream.KindMessage {
			continue
		}
		if seq, ok := parseSeq(st.ID); ok {
			k.recv(seq, i, resumed)
		}
	}
}

// traffic is the senders' loop: rate messages per second in all, spread over the senders,
// addressed in turn to each of targets (indexes into jids), until stop is closed or the
// tracker is full.
func traffic(k *tracker, senders []*loadgen.Session, jids []string, targets []int, rate int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	const tick = 10 * time.Millisecond
	per := float64(rate) * tick.Seconds() / float64(len(senders))
	for _, snd := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(tick)
			defer tk.Stop()
			buf := make([]byte, 0, 256)
			owed := 0.0
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
				}
				for owed += per; owed >= 1; owed-- {
					seq, ok := k.take()
					if !ok {
						return
					}
					to := targets[seq%len(targets)]
					buf = appendMessage(buf[:0], jids[to], seq)
					// Recorded before the write: the message can arrive before Send returns.
					k.sent(seq, to, len(buf))
					if snd.Send(buf) != nil {
						k.unsent(seq, len(buf))
					}
				}
			}
		}()
	}
	return &wg
}

func (t Target) user(i int) string { return t.Prefix + strconv.Itoa(i+1) }

// enableSM is the setup of every session of the storm: stream management with
// resumption, then initial presence (counted, as a client counts what it sends).
func enableSM(s *loadgen.Session) error {
	if err := s.EnableSM(true); err != nil {
		return err
	}
	return s.SendStanza([]byte("<presence/>"))
}

// endAll ends the streams of ss cleanly, so that the server ends the sessions rather than
// keeping them for resumption, waits up to five seconds for the server to close them
// (readers see that), then closes every connection and frees the parsers.
func endAll(ss []*loadgen.Session, readers *sync.WaitGroup) {
	for _, s := range ss {
		if s != nil {
			s.EndStream()
		}
	}
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	dropAll(ss)
	<-done
	for _, s := range ss {
		if s != nil {
			s.Release()
		}
	}
}

// dropAll closes every connection at once, without ending the streams.
func dropAll(ss []*loadgen.Session) {
	for _, s := range ss {
		if s != nil {
			s.Drop()
		}
	}
}

func (t Target) sample(what string, n int) (MemPoint, error) {
	st, err := t.readProc()
	if err != nil {
		return MemPoint{}, err
	}
	t.logf("  %s: %d %s, server RSS %.1f MiB PSS %.1f MiB", t.Name, n, what, float64(st.RSS)/(1<<20), float64(st.PSS)/(1<<20))
	return MemPoint{Sessions: n, Server: st, LiveHeap: t.liveHeap()}, nil
}

// memSlope fits RSS, PSS and (where every sample has it) the live heap over sessions.
func memSlope(ps ...MemPoint) (rss, pss, live float64) {
	var xs, rs, ss []float64
	var ls []int64
	for _, p := range ps {
		xs, rs, ss, ls = append(xs, float64(p.Sessions)), append(rs, float64(p.Server.RSS)), append(ss, float64(p.Server.PSS)), append(ls, p.LiveHeap)
	}
	return FitSlope(xs, rs), FitSlope(xs, ss), liveSlope(xs, ls)
}

// ResumeIdleSteps is the number of equal steps by which the resume storm's sessions log
// in, with a memory sample after each: the idle slope with stream management is fitted
// over them.
const ResumeIdleSteps = 8

// DefaultIdleSettle is ResumeConfig.IdleSettle's default.
const DefaultIdleSettle = 7 * time.Second

// ResumeIdleSizes are the session counts at the storm's idle samples (the plain idle
// reference runs at the same ones).
func ResumeIdleSizes(n int) []int {
	out := make([]int, ResumeIdleSteps)
	for i := range out {
		out[i] = (i + 1) * n / ResumeIdleSteps
	}
	return out
}

// ErrNoResume is ResumeStorm's answer when the server offers no resumable stream management.
var ErrNoResume = errors.New("scenario: no XEP-0198 resumption")

// ResumeStorm runs the resume storm with accounts 1..N for the storm, N+1..N+TopUp for
// the detached-density probe and the next Senders for the senders:
//
//  1. the senders log in (no stream management); the N log in, enable stream management
//     with resumption and send initial presence, in ResumeIdleSteps steps with a memory sample
//     after each (idle bytes per session with stream management);
//  2. the senders start: Rate messages per second to the N in turn, each with a unique
//     id; after Lead every one of the N connections is closed at once, without a stream
//     close, so the server keeps the sessions detached; a memory sample after Settle;
//  3. TopUp more sessions log in with stream management and are dropped at once as well;
//     a second sample after Settle (bytes per detached session: the slope);
//  4. every one of the N reconnects, authenticates and resumes with the h it counted,
//     Conc at a time, and reads on: resumes per second, server CPU per resume;
//  5. the senders go on for Tail, stop, and the run waits until every message has
//     arrived or nothing has arrived for 5 s: sent, delivered, lost, duplicates.
func ResumeStorm(t Target, c ResumeConfig) (ResumeResult, error) {
	n := c.Sessions
	if c.TopUp <= 0 {
		c.TopUp = n / 2
	}
	if c.Settle <= 0 {
		c.Settle = 3 * time.Second
	}
	if c.IdleSettle <= 0 {
		c.IdleSettle = DefaultIdleSettle
	}
	if c.Lead <= 0 {
		c.Lead = time.Second
	}
	if c.Tail <= 0 {
		c.Tail = time.Second
	}
	r := ResumeResult{Sessions: n, Senders: c.Senders, Rate: c.Rate}
	if n < 2 || c.Senders < 1 || c.Rate <= 0 || c.Conc < 1 {
		return r, errors.New("scenario: resume storm needs 2+ sessions, a sender, a rate and a concurrency")
	}
	// Probe with the first account: a server without resumption is reported, not failed.
	if s, err := loadgen.Dial(t.cfgFor(0), t.user(0), t.Password, "probe"); err != nil {
		return r, err
	} else {
		err := s.EnableSM(true)
		s.Close()
		if err != nil {
			r.Unsupported = err.Error()
			t.logf("  %s: %v", t.Name, err)
			return r, fmt.Errorf("%w: %v", ErrNoResume, err)
		}
	}

	// 1. Senders, then the N in ResumeIdleSteps steps.
	sendFrom := n + c.TopUp
	senders, fails, err := t.dialMany(sendFrom, sendFrom+c.Senders, c.Conc, 0, "sender", true)
	if fails > 0 {
		closeAll(senders)
		return r, fmt.Errorf("scenario: %d of %d senders failed to log in: %w", fails, c.Senders, err)
	}
	k := newTracker(c.Rate*600 + 1024) // ten minutes of traffic at most
	var sendWG sync.WaitGroup
	readBounces(k, senders, &sendWG)
	defer func() { endAll(senders, &sendWG) }()

	ss := make([]*loadgen.Session, n)
	var readWG sync.WaitGroup
	// Whatever way the run ends, no session is left open; closing one twice is harmless.
	defer func() { endAll(ss, &readWG) }()
	from := 0
	for _, to := range ResumeIdleSizes(n) {
		got, fails, err := t.dialManyWith(from, to, c.Conc, c.RampRate, "rs", enableSM)
		copy(ss[from:], got)
		r.LoginFailures += fails
		if fails > 0 {
			t.logf("  %s: %d failures, first: %v", t.Name, fails, err)
		}
		// Each session reads from now on, as an idle client does: it answers the
		// server's <r/> (Next does) and its pings. Idle means past the server's first
		// ack request (Vireo asks 1 s after unacknowledged stanzas; peers within seconds
		// too): until the client has acknowledged its presence echo and roster, the
		// server rightly keeps copies. (Before stop 23 nobody read here, so no ack ever
		// came and the sample held every session's copies.)
		for i := from; i < to; i++ {
			if ss[i] != nil {
				readWG.Add(1)
				go stormReader(k, i, ss[i], false, &readWG)
			}
		}
		time.Sleep(c.IdleSettle)
		p, err := t.sample("idle sessions with stream management", to-r.LoginFailures)
		if err != nil {
			return r, err
		}
		r.IdlePoints = append(r.IdlePoints, p)
		from = to
	}
	r.IdleRSSPerSession, r.IdlePSSPerSession, r.IdleLiveHeapPerSession = memSlope(r.IdlePoints...)
	jids := make([]string, n)
	var targets []int // the sessions that logged in
	for i, s := range ss {
		if s == nil {
			continue
		}
		jids[i] = s.JID
		targets = append(targets, i)
	}

	// 2. Traffic, then the drop.
	stop := make(chan struct{})
	stopOnce := sync.OnceFunc(func() { close(stop) })
	if len(targets) < 2 {
		return r, fmt.Errorf("scenario: only %d of %d sessions logged in", len(targets), n)
	}
	sendLoop := traffic(k, senders, jids, targets, c.Rate, stop)
	defer func() { stopOnce(); sendLoop.Wait() }()
	time.Sleep(c.Lead)
	dropped := time.Now()
	dropAll(ss)
	readWG.Wait()
	for _, s := range ss {
		if s != nil {
			s.Release()
		}
	}
	t.logf("  %s: %d connections dropped at once", t.Name, n-r.LoginFailures)
	time.Sleep(c.Settle)
	p1, err := t.sample("detached sessions", n-r.LoginFailures)
	if err != nil {
		return r, err
	}
	sent1, bytes1 := k.sentCount(), k.bytes.Load()

	// 3. The detached-density probe.
	probe, pfails, perr := t.dialManyWith(n, n+c.TopUp, c.Conc, c.RampRate, "rs", enableSM)
	var probeWG sync.WaitGroup
	defer func() { endAll(probe, &probeWG) }()
	if pfails > 0 {
		t.logf("  %s: detached probe: %d failures, first: %v", t.Name, pfails, perr)
	}
	dropAll(probe)
	time.Sleep(c.Settle)
	p2, err := t.sample("detached sessions", n-r.LoginFailures+c.TopUp-pfails)
	if err != nil {
		return r, err
	}
	r.QueuedBetween, r.QueuedBytesBetween = k.sentCount()-sent1, k.bytes.Load()-bytes1
	r.DetachedPoints = []MemPoint{p1, p2}
	r.DetachedRSSPerSession, r.DetachedPSSPerSession, _ = memSlope(p1, p2)

	// 4. The storm.
	resumed, rfails := t.resumeAll(k, ss, 0, c.Conc, &r, &readWG, dropped)
	r.Resumed, r.Failures = resumed, rfails

	// 5. Tail and drain.
	time.Sleep(c.Tail)
	stopOnce()
	sendLoop.Wait()
	want := k.sentCount()
	last, lastChange, start := int64(-1), time.Now(), time.Now()
	for time.Since(lastChange) < 5*time.Second && time.Since(start) < time.Minute {
		d := k.tally()
		if d.Delivered >= want {
			break
		}
		if d.Delivered != last {
			last, lastChange = d.Delivered, time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Delivery = k.tally()
	t.logf("  %s: %d messages sent to the dropped sessions, %d delivered (%d after resume), %d lost, %d duplicates, %d misrouted, %d bounced",
		t.Name, r.Delivery.Sent, r.Delivery.Delivered, r.Delivery.AfterResume, r.Delivery.Lost, r.Delivery.Duplicates, r.Delivery.Misrouted, r.Delivery.Bounced)
	endAll(ss, &readWG)

	// The probe's sessions are resumed and closed (deferred) so that none is left detached.
	var probeRes ResumeResult
	if ok, _ := t.resumeAll(newTracker(1), probe, n, c.Conc, &probeRes, &probeWG, time.Now()); ok < len(probe)-pfails {
		t.logf("  %s: %d of %d probe sessions resumed for cleanup", t.Name, ok, len(probe)-pfails)
	}
	return r, nil
}

// resumeAll resumes every dropped session of ss (users base+i), conc at a time, starts a
// reader on each, and fills the storm's numbers in r. It returns how many resumed and
// how many failed.
func (t Target) resumeAll(k *tracker, ss []*loadgen.Session, base, conc int, r *ResumeResult, readWG *sync.WaitGroup, dropped time.Time) (int, int) {
	var next, done, fails atomic.Int64
	var firstErr firstError
	var mu sync.Mutex
	var hist Histogram
	var last time.Time
	total := 0
	for _, s := range ss {
		if s != nil {
			total++
		}
	}
	s0, _ := t.readProc()
	g0, _ := ReadProc(0)
	start := time.Now()
	r.DetachedSeconds = start.Sub(dropped).Seconds()
	stop := t.progress("resumed", total, &done, &fails)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ss) {
					return
				}
				prev := ss[i]
				if prev == nil {
					continue
				}
				t0 := time.Now()
				s, err := loadgen.Resume(t.cfgFor(base+i), t.user(base+i), t.Password, prev)
				if err != nil {
					fails.Add(1)
					firstErr.set(err)
					continue
				}
				now := time.Now()
				mu.Lock()
				hist.Add(now.Sub(t0))
				if now.After(last) {
					last = now
				}
				r.Resent += s.SM().Resent
				mu.Unlock()
				ss[i] = s
				done.Add(1)
				readWG.Add(1)
				go stormReader(k, base+i, s, true, readWG)
			}
		}()
	}
	wg.Wait()
	s1, _ := t.readProc()
	g1, _ := ReadProc(0)
	stop()
	ok := int(done.Load())
	if err := firstErr.get(); err != nil {
		r.FirstFailure = err.Error()
	}
	if ok > 0 {
		el := last.Sub(start)
		r.Seconds = el.Seconds()
		r.ResumesPerSecond = float64(ok) / el.Seconds()
		r.ServerCPUPerResume = float64((s1.CPU - s0.CPU).Microseconds()) / float64(ok)
		r.GenCPUPerResume = float64((g1.CPU - g0.CPU).Microseconds()) / float64(ok)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		r.P50ms, r.P99ms = ms(hist.Quantile(0.5)), ms(hist.Quantile(0.99))
	}
	t.logf("  %s: %d resumed, %d failed in %.2fs (%.0f/s, server %.0f µs/resume, p50 %.1f ms, p99 %.1f ms)%s",
		t.Name, ok, fails.Load(), r.Seconds, r.ResumesPerSecond, r.ServerCPUPerResume, r.P50ms, r.P99ms, firstFailure(r.FirstFailure))
	return ok, int(fails.Load())
}

func firstFailure(s string) string {
	if s == "" {
		return ""
	}
	return "; first failure: " + s
}
