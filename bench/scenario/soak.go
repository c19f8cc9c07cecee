package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/xmlstream"
)

// SoakConfig describes a soak: a server kept under a mixed, steady load for several
// cycles, each followed by a quiet sample, to find what only time shows: memory, file
// descriptors or threads that grow from cycle to cycle, messages lost under faults,
// logins that start failing.
//
// Accounts, in order: Stable, Sleepers, Senders, Churners (prefix1 onwards).
type SoakConfig struct {
	// Stable sessions stay logged in for the whole run with stream management and
	// resumption; they receive most of the traffic, and the faulter drops their TCP
	// connections and resumes them.
	Stable int
	// Sleepers are offline during the load: what is sent to them is stored, and each
	// logs in after every cycle to collect it.
	Sleepers int
	Senders  int // online users without stream management that send all the tracked traffic
	Rate     int // tracked messages per second, in all, during the load
	// Churners are concurrent loops of login, presence, roster query and logout, each on
	// its own account; every tenth attempt offers a wrong password and must be refused.
	Churners int
	Cycles   int           // load periods; a quiet sample after each
	Load     time.Duration // length of a load period
	// DropEvery is the mean time between two TCP drops (over all the stable sessions);
	// each dropped session resumes at once. 0: no drops.
	DropEvery time.Duration
	// BadEvery is the time between two connections that send malformed XML and must be
	// closed with a stream error. 0: none.
	BadEvery time.Duration
	Settle   time.Duration // quiet wait before each sample (default 3 s)
	Conc     int           // logins in flight while the stable sessions log in
	// TLSAddr, when set, is the server's direct TLS address (XEP-0368): every fourth
	// stable session (and its resumptions) and every other churn login use it, so that
	// TLS streams are dropped, resumed and churned too.
	TLSAddr string `json:"tls_addr,omitempty"`
	// MUC, when set, is a XEP-0045 service: a sender keeps a room open there, and every
	// churn login joins it, says something, sees it echoed and leaves.
	MUC string `json:"muc_service,omitempty"`
	// WSAddr and WSPath, when set, are the server's plain XMPP-over-WebSocket endpoint
	// (RFC 7395): every third churn login goes there.
	WSAddr string `json:"ws_addr,omitempty"`
	WSPath string `json:"ws_path,omitempty"`
}

// churnCfg is churn attempt n's connection: TCP, direct TLS and WebSocket in turn (those
// the soak has).
func (c *SoakConfig) churnCfg(t Target, i, n int) loadgen.Config {
	switch n % 3 {
	case 1:
		return c.cfg(t, i, true)
	case 2:
		if c.WSAddr != "" {
			cfg := t.cfgFor(i)
			cfg.Addr, cfg.WSPath, cfg.Mode = c.WSAddr, c.WSPath, loadgen.Plain
			return cfg
		}
	}
	return c.cfg(t, i, false)
}

// cfg is account i's connection: direct TLS when tls and the soak has a TLS address.
func (c *SoakConfig) cfg(t Target, i int, tls bool) loadgen.Config {
	cfg := t.cfgFor(i)
	if tls && c.TLSAddr != "" {
		cfg.Addr, cfg.Mode = c.TLSAddr, loadgen.DirectTLS
	}
	return cfg
}

// SoakPoint is a sample of the server at a quiet moment: after a cycle's load has
// stopped, every message has arrived and the churn has logged out.
type SoakPoint struct {
	Cycle      int      `json:"cycle"` // 0: before the first load
	Server     ProcStat `json:"server"`
	FDs        int      `json:"open_files"`
	Threads    int      `json:"threads"`
	LiveHeap   int64    `json:"server_live_heap_bytes,omitempty"`
	Goroutines int64    `json:"server_goroutines,omitempty"` // where the server reports them
}

// SoakResult is what a soak found.
type SoakResult struct {
	Stable   int     `json:"stable_sessions"`
	Sleepers int     `json:"sleepers"`
	Senders  int     `json:"senders"`
	Churners int     `json:"churners"`
	Rate     int     `json:"offered_per_second"`
	Cycles   int     `json:"cycles"`
	LoadSecs float64 `json:"load_seconds_per_cycle"`
	Seconds  float64 `json:"seconds"` // the whole run, logins to the last sample

	Points []SoakPoint `json:"points"`
	// Growth per cycle, fitted over the samples after cycle 1 (the first load fills
	// caches and pools that later ones reuse): what a leak looks like.
	RSSPerCycle      float64 `json:"rss_bytes_per_cycle"`
	LiveHeapPerCycle float64 `json:"live_heap_bytes_per_cycle,omitempty"`
	// FDGrowth and ThreadGrowth compare the last sample with cycle 1's.
	FDGrowth     int `json:"open_files_growth"`
	ThreadGrowth int `json:"threads_growth"`
	// GoroutineGrowth compares the floors of the two halves of the samples after cycle
	// 1 (goroutineGrowth), where the server reports goroutines.
	GoroutineGrowth int64 `json:"goroutines_growth"`

	Delivery       Delivery `json:"delivery"` // every tracked message, to stable sessions and sleepers
	Drops          int      `json:"drops"`
	Resumes        int      `json:"resumes"`
	ResumeFailures int      `json:"resume_failures"`
	Collects       int      `json:"sleeper_logins"` // sleepers' logins to collect stored messages
	ChurnLogins    int      `json:"churn_logins"`
	ChurnFailures  int      `json:"churn_failures"`
	WrongRefused   int      `json:"wrong_passwords_refused"`
	WrongAccepted  int      `json:"wrong_passwords_accepted"`
	BadClosed      int      `json:"bad_input_closed_with_stream_error"`
	BadOther       int      `json:"bad_input_other"`          // no stream error, or the connection stayed open
	ServerCPUPerS  float64  `json:"server_cpu_ms_per_second"` // during the load periods
	FirstFailure   string   `json:"first_failure,omitempty"`
}

// Problems lists what a soak must not show: loss, misrouting, a failed resume or login,
// a wrong password let in, malformed input not answered by a stream error, and file
// descriptors or threads that grow between quiet samples. Memory growth is reported
// (RSSPerCycle, LiveHeapPerCycle) rather than judged: a store's memtable and caches grow
// for a while on a healthy server, and only a run of many cycles tells them from a leak.
func (r SoakResult) Problems() []string {
	var p []string
	d := r.Delivery
	if d.Lost > 0 || d.Misrouted > 0 || d.Bounced > 0 {
		p = append(p, fmt.Sprintf("delivery: %d lost, %d misrouted, %d bounced of %d", d.Lost, d.Misrouted, d.Bounced, d.Sent))
	}
	if d.Duplicates > 0 {
		p = append(p, fmt.Sprintf("delivery: %d duplicates", d.Duplicates))
	}
	if r.ResumeFailures > 0 {
		p = append(p, fmt.Sprintf("%d of %d resumes failed", r.ResumeFailures, r.Drops))
	}
	if r.ChurnFailures > 0 {
		p = append(p, fmt.Sprintf("%d of %d churn logins failed", r.ChurnFailures, r.ChurnLogins+r.ChurnFailures))
	}
	if r.WrongAccepted > 0 {
		p = append(p, fmt.Sprintf("%d wrong passwords accepted", r.WrongAccepted))
	}
	if r.BadOther > 0 {
		p = append(p, fmt.Sprintf("%d malformed streams not closed with a stream error", r.BadOther))
	}
	// A few descriptors come and go with the store's files and the runtime's threads
	// with blocking system calls; growth beyond that, cycle after cycle, is a leak.
	if r.FDGrowth > 8 {
		p = append(p, fmt.Sprintf("open files grew by %d", r.FDGrowth))
	}
	if r.ThreadGrowth > 8 {
		p = append(p, fmt.Sprintf("threads grew by %d", r.ThreadGrowth))
	}
	// Timers and pooled workers come and go; a goroutine per session or per login left
	// behind shows as hundreds.
	if r.GoroutineGrowth > 32 {
		p = append(p, fmt.Sprintf("goroutines grew by %d", r.GoroutineGrowth))
	}
	if r.FirstFailure != "" && len(p) > 0 {
		p = append(p, "first failure: "+r.FirstFailure)
	}
	return p
}

// soakSlot is one stable session; mu serialises the faulter's drop and resume with the
// end of the run.
type soakSlot struct {
	mu   sync.Mutex
	s    *loadgen.Session
	done chan struct{} // closed when s's reader stops
}

// Soak runs the soak described by c against t.
func Soak(t Target, c SoakConfig) (SoakResult, error) {
	if c.Settle <= 0 {
		c.Settle = 3 * time.Second
	}
	if c.Conc < 1 {
		c.Conc = 16
	}
	r := SoakResult{Stable: c.Stable, Sleepers: c.Sleepers, Senders: c.Senders, Churners: c.Churners, Rate: c.Rate,
		Cycles: c.Cycles, LoadSecs: c.Load.Seconds()}
	if c.Stable < 1 || c.Senders < 1 || c.Rate <= 0 || c.Cycles < 2 || c.Load <= 0 {
		return r, errors.New("scenario: a soak needs stable sessions, a sender, a rate, two cycles and a load period")
	}
	start := time.Now()
	sleepFrom := c.Stable
	sendFrom := sleepFrom + c.Sleepers
	churnFrom := sendFrom + c.Senders
	var firstErr firstError

	// Senders record bounces (a full offline store, an unknown user) as failures.
	k := newTracker(int(float64(c.Rate)*c.Load.Seconds()*float64(c.Cycles)*1.2) + 1024)
	k.waiting = make([]atomic.Int64, sendFrom)
	senders, fails, err := t.dialMany(sendFrom, sendFrom+c.Senders, c.Conc, 0, "sender", true)
	if fails > 0 {
		closeAll(senders)
		return r, fmt.Errorf("scenario: %d of %d senders failed to log in: %w", fails, c.Senders, err)
	}
	room := ""
	if c.MUC != "" {
		room = "soak" + strings.TrimSuffix(seqPrefix, "-") + "@" + c.MUC
		if err := openRoom(senders[0], room); err != nil {
			closeAll(senders)
			return r, fmt.Errorf("scenario: soak room %s: %w", room, err)
		}
	}
	var sendWG sync.WaitGroup
	readBounces(k, senders, &sendWG)
	defer func() { endAll(senders, &sendWG) }()

	stableTLS := func(i int) bool { return i%4 == 3 }
	ss, fails, err := t.dialManyCfg(0, c.Stable, c.Conc, "soak", func(i int) loadgen.Config { return c.cfg(t, i, stableTLS(i)) }, enableSM)
	if fails > 0 {
		dropAll(ss)
		return r, fmt.Errorf("scenario: %d of %d stable sessions failed to log in: %w", fails, c.Stable, err)
	}
	slots := make([]*soakSlot, c.Stable)
	for i, s := range ss {
		slots[i] = &soakSlot{s: s, done: make(chan struct{})}
		go soakReader(k, i, s, false, slots[i].done)
	}
	defer func() {
		for _, sl := range slots {
			sl.mu.Lock()
			if sl.s != nil {
				sl.s.EndStream()
				select {
				case <-sl.done:
				case <-time.After(5 * time.Second):
				}
				sl.s.Drop()
				<-sl.done
				sl.s.Release()
				sl.s = nil
			}
			sl.mu.Unlock()
		}
	}()

	jids := make([]string, sendFrom)
	var targets []int
	for i, s := range ss {
		jids[i] = s.JID
		targets = append(targets, i)
	}
	for i := sleepFrom; i < sendFrom; i++ {
		// Bare: stored for the sleeper while it is offline (RFC 6121 §8.5.2.2.1). Each
		// sleeper gets about as much as a stable session.
		jids[i] = t.user(i) + "@" + t.Cfg.Domain
		targets = append(targets, i)
	}

	sample := func(cycle int) error {
		time.Sleep(c.Settle)
		st, err := t.readProc()
		if err != nil {
			return err
		}
		p := SoakPoint{Cycle: cycle, Server: st, FDs: countFDs(t.PID), Threads: countThreads(t.PID), LiveHeap: t.liveHeap()}
		if t.Goroutines != nil {
			if n, err := t.Goroutines(); err == nil {
				p.Goroutines = n
			}
		}
		r.Points = append(r.Points, p)
		t.logf("  %s: soak cycle %d quiet: RSS %.1f MiB, live heap %.1f MiB, %d open files, %d threads, %d goroutines", t.Name, cycle,
			float64(st.RSS)/(1<<20), float64(p.LiveHeap)/(1<<20), p.FDs, p.Threads, p.Goroutines)
		return nil
	}
	if err := sample(0); err != nil {
		return r, err
	}
	var loadTime, loadCPU time.Duration

	var drops, resumes, resumeFails, collects, churnOK, churnFail, wrongOK, wrongBad, badClosed, badOther atomic.Int64
	for cycle := 1; cycle <= c.Cycles; cycle++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		t0 := time.Now()
		cpu0, _ := t.readProc()
		trafficWG := traffic(k, senders, jids, targets, c.Rate, stop)
		if c.DropEvery > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(cycle), 0x50a4))
				for {
					// Exponential gaps: drops come in clusters and lulls, as a cell network's do.
					gap := time.Duration(rng.ExpFloat64() * float64(c.DropEvery))
					select {
					case <-stop:
						return
					case <-time.After(gap):
					}
					i := rng.IntN(len(slots))
					drops.Add(1)
					if err := t.dropAndResume(c.cfg(t, i, stableTLS(i)), i, slots[i], k); err != nil {
						resumeFails.Add(1)
						firstErr.set(fmt.Errorf("resume %s: %w", t.user(i), err))
					} else {
						resumes.Add(1)
					}
				}
			}()
		}
		for w := 0; w < c.Churners; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				i := churnFrom + w
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					if n%10 == 9 {
						switch err := t.wrongPassword(i); {
						case err == nil:
							wrongOK.Add(1)
						case errors.Is(err, errLetIn):
							wrongBad.Add(1)
						default:
							churnFail.Add(1)
							firstErr.set(fmt.Errorf("wrong password for %s: %w", t.user(i), err))
						}
						continue
					}
					if err := t.churn(c.churnCfg(t, i, n), i, room, c.Churners, n); err != nil {
						churnFail.Add(1)
						firstErr.set(fmt.Errorf("churn %s: %w", t.user(i), err))
						time.Sleep(100 * time.Millisecond)
						continue
					}
					churnOK.Add(1)
				}
			}()
		}
		if c.BadEvery > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tk := time.NewTicker(c.BadEvery)
				defer tk.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tk.C:
					}
					if err := t.badInput(); err != nil {
						badOther.Add(1)
						firstErr.set(fmt.Errorf("malformed stream: %w", err))
					} else {
						badClosed.Add(1)
					}
				}
			}()
		}
		time.Sleep(c.Load)
		close(stop)
		trafficWG.Wait()
		wg.Wait()
		loadTime += time.Since(t0)
		cpu1, _ := t.readProc()
		loadCPU += cpu1.CPU - cpu0.CPU

		// The sleepers log in, take what was stored for them, and leave.
		for i := sleepFrom; i < sendFrom; i++ {
			if err := t.collect(i, k); err != nil {
				firstErr.set(fmt.Errorf("sleeper %s: %w", t.user(i), err))
			}
			collects.Add(1)
		}
		if !waitDelivered(k, 30*time.Second) {
			t.logf("  %s: soak cycle %d: messages still missing after 30 s", t.Name, cycle)
		}
		d := k.tally()
		t.logf("  %s: soak cycle %d: %d sent, %d delivered, %d lost, %d dup; %d drops, %d resumed; %d churn logins, %d failed; %d malformed closed",
			t.Name, cycle, d.Sent, d.Delivered, d.Lost, d.Duplicates, drops.Load(), resumes.Load(), churnOK.Load(), churnFail.Load(), badClosed.Load())
		if err := sample(cycle); err != nil {
			return r, err
		}
	}
	r.ServerCPUPerS = float64(loadCPU.Milliseconds()) / loadTime.Seconds()
	r.Delivery = k.tally()
	if d := r.Delivery; d.Lost > 0 || d.Duplicates > 0 {
		t.logDeliveryFaults(k, sleepFrom)
	}
	r.Drops, r.Resumes, r.ResumeFailures = int(drops.Load()), int(resumes.Load()), int(resumeFails.Load())
	r.Collects = int(collects.Load())
	r.ChurnLogins, r.ChurnFailures = int(churnOK.Load()), int(churnFail.Load())
	r.WrongRefused, r.WrongAccepted = int(wrongOK.Load()), int(wrongBad.Load())
	r.BadClosed, r.BadOther = int(badClosed.Load()), int(badOther.Load())
	if err := firstErr.get(); err != nil {
		r.FirstFailure = err.Error()
	}
	r.soakTrends()
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// logDeliveryFaults logs the first ten messages that never arrived or arrived twice, and
// whom they were for: where to start looking.
func (t Target) logDeliveryFaults(k *tracker, sleepFrom int) {
	n := 0
	for seq := range k.next.Load() {
		to, got := int(k.to[seq].Load())-1, k.got[seq].Load()
		if to < 0 || got == 1 {
			continue
		}
		kind := "stable session"
		if to >= sleepFrom {
			kind = "sleeper"
		}
		t.logf("  %s: message %d to %s (%s) arrived %d times", t.Name, seq, t.user(to), kind, got)
		if n++; n == 10 {
			return
		}
	}
}

// soakTrends fits the growth per cycle over the quiet samples from cycle 1 on.
func (r *SoakResult) soakTrends() {
	var xs, rss, live []float64
	for _, p := range r.Points {
		if p.Cycle < 1 {
			continue
		}
		xs = append(xs, float64(p.Cycle))
		rss = append(rss, float64(p.Server.RSS))
		if p.LiveHeap > 0 {
			live = append(live, float64(p.LiveHeap))
		}
	}
	if len(xs) < 2 {
		return
	}
	r.RSSPerCycle = FitSlope(xs, rss)
	if len(live) == len(xs) {
		r.LiveHeapPerCycle = FitSlope(xs, live)
	}
	first, last := r.Points[1], r.Points[len(r.Points)-1]
	r.FDGrowth, r.ThreadGrowth = last.FDs-first.FDs, last.Threads-first.Threads
	r.GoroutineGrowth = goroutineGrowth(r.Points[1:])
}

// goroutineGrowth compares the fewest goroutines the server had at a quiet moment in the
// second half of the samples with the fewest in the first half. Pooled workers that
// expire when idle make any one sample swing by dozens (127 to 174 in one run without a
// leak), so two single samples say little; a goroutine left behind per session or per
// login raises the floor, cycle after cycle. 0 when the server does not report them.
func goroutineGrowth(pts []SoakPoint) int64 {
	if len(pts) < 2 {
		return 0
	}
	floor := func(ps []SoakPoint) int64 {
		m := int64(-1)
		for _, p := range ps {
			if p.Goroutines <= 0 {
				return -1
			}
			if m < 0 || p.Goroutines < m {
				m = p.Goroutines
			}
		}
		return m
	}
	half := len(pts) / 2
	a, b := floor(pts[:half]), floor(pts[half:])
	if a < 0 || b < 0 {
		return 0
	}
	return b - a
}

// soakReader is stormReader with a channel that says when it stopped.
func soakReader(k *tracker, i int, s *loadgen.Session, resumed bool, done chan struct{}) {
	var wg sync.WaitGroup
	wg.Add(1)
	stormReader(k, i, s, resumed, &wg)
	close(done)
}

// dropAndResume closes stable session i's connection without a word, as a phone losing
// its network does, waits for its reader to stop, and resumes the session on a new one.
func (t Target) dropAndResume(cfg loadgen.Config, i int, sl *soakSlot, k *tracker) error {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.s == nil {
		return nil
	}
	prev := sl.s
	prev.Drop()
	<-sl.done
	s, err := loadgen.Resume(cfg, t.user(i), t.Password, prev)
	if err != nil {
		// Keep the account online all the same, so that the run goes on and what the
		// lost session held reaches this one (RFC 6121: another resource of the user).
		s2, err2 := loadgen.Dial(cfg, t.user(i), t.Password, "soak")
		if err2 == nil {
			err2 = enableSM(s2)
		}
		if err2 != nil {
			sl.s = nil
			return fmt.Errorf("%w; and a new login: %v", err, err2)
		}
		s = s2
	}
	prev.Release()
	sl.s, sl.done = s, make(chan struct{})
	go soakReader(k, i, s, true, sl.done)
	return err
}

// churn is one short session: login, initial presence, a roster query answered, a
// contact added and removed, a visit to the room when there is one (join, no more
// occupants than can be there, a message seen echoed, leave or not), and a clean logout
// that the server closes.
func (t Target) churn(cfg loadgen.Config, i int, room string, churners, n int) (err error) {
	s, err := loadgen.Dial(cfg, t.user(i), t.Password, "churn")
	if err != nil {
		return err
	}
	defer s.Close()
	// A churn takes well under a second; a reply that has not come in churnWait never
	// will, and the run reports it (which step, which transport, when) instead of waiting
	// without end.
	start := time.Now()
	s.SetDeadline(start.Add(churnWait))
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w (attempt %d over %s, began %s)", err, n, churnTransport(cfg), start.UTC().Format(time.RFC3339Nano))
		}
	}()
	if err := s.Send([]byte("<presence/><iq type='get' id='soak-roster'><query xmlns='jabber:iq:roster'/></iq>")); err != nil {
		return err
	}
	st, err := await(s, func(st *xmlstream.Stanza) bool {
		id, _ := st.Attr("id")
		return string(st.Name) == "iq" && string(id) == "soak-roster"
	})
	if err != nil {
		return fmt.Errorf("waiting for the roster: %w", err)
	}
	if typ, _ := st.Attr("type"); string(typ) != "result" {
		return fmt.Errorf("roster query: %s", st.Raw)
	}
	// A contact added and removed again: two durable roster writes and their pushes
	// (RFC 6121 §2.3, §2.5), so that roster state comes and goes with the churn.
	peer := t.user(i+1000003) + "@" + cfg.Domain
	for _, q := range []struct{ id, item string }{
		{"soak-radd", "<item jid='" + peer + "' name='soak'/>"},
		{"soak-rdel", "<item jid='" + peer + "' subscription='remove'/>"},
	} {
		s.Send([]byte("<iq type='set' id='" + q.id + "'><query xmlns='jabber:iq:roster'>" + q.item + "</query></iq>"))
		st, err := await(s, func(st *xmlstream.Stanza) bool {
			id, _ := st.Attr("id")
			return string(st.Name) == "iq" && string(id) == q.id
		})
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", q.id, err)
		}
		if typ, _ := st.Attr("type"); string(typ) != "result" {
			return fmt.Errorf("roster set: %s", st.Raw)
		}
	}
	if room != "" {
		nick := room + "/" + t.user(i) + "-" + strconv.Itoa(n)
		others, joined, err := joinRoomSelf(s, nick)
		if err != nil {
			return err
		}
		// The keeper and the other churn loops, one session each, are all that can be in
		// the room: more is an occupant whose session ended and who stayed.
		if others > churners {
			return fmt.Errorf("%s holds %d other occupants; at most %d can be there", room, others, churners)
		}
		id := "soak-muc-" + strconv.Itoa(n)
		s.Send([]byte("<message type='groupchat' to='" + room + "' id='" + id + "'><body>churn " + strconv.Itoa(n) + "</body></message>"))
		var seen []string // what came instead, for a report when the echo does not
		st, err := await(s, func(st *xmlstream.Stanza) bool {
			if string(st.Name) == "message" && string(st.ID) == id {
				return true
			}
			raw := string(st.Raw)
			if len(raw) > 300 {
				raw = raw[:300] + "…"
			}
			if seen = append(seen, raw); len(seen) > 6 {
				seen = seen[1:]
			}
			return false
		})
		if err != nil {
			return fmt.Errorf("waiting for the room's echo as %s: %w; joined with %q; received meanwhile: %q", nick, err, joined, seen)
		}
		if typ, _ := st.Attr("type"); string(typ) == "error" {
			return fmt.Errorf("groupchat message: %s", st.Raw)
		}
		// Every other visit leaves the room as a client does; the rest just log out, and
		// the server must take them out of the room (XEP-0045 §7.14).
		if n%2 == 0 {
			s.Send([]byte("<presence type='unavailable' to='" + nick + "'/>"))
			if _, err := await(s, func(st *xmlstream.Stanza) bool {
				typ, _ := st.Attr("type")
				return string(st.Name) == "presence" && string(typ) == "unavailable" && isSelf(st.Raw)
			}); err != nil {
				return fmt.Errorf("waiting to leave the room: %w", err)
			}
		}
	}
	if err := s.EndStream(); err != nil {
		return err
	}
	for {
		if _, err := s.Next(); err != nil {
			return nil // the server closed the stream
		}
	}
}

// churnWait bounds one churn session.
const churnWait = time.Minute

// churnTransport names cfg's transport for a failure report.
func churnTransport(cfg loadgen.Config) string {
	switch {
	case cfg.WSPath != "":
		return "WebSocket"
	case cfg.Mode == loadgen.DirectTLS:
		return "direct TLS"
	}
	return "TCP"
}

// await reads s until a stanza matches.
func await(s *loadgen.Session, match func(*xmlstream.Stanza) bool) (*xmlstream.Stanza, error) {
	for {
		st, err := s.Next()
		if err != nil {
			return nil, err
		}
		if match(st) {
			return st, nil
		}
	}
}

// isSelf reports whether a presence from a room is the occupant's own (status 110, XEP-0045
// §7.2.3); servers quote attributes as they like.
func isSelf(raw []byte) bool {
	return loadgen.Contains(raw, "code='110'") || loadgen.Contains(raw, "code=\"110\"")
}

// joinRoom enters the room as nick (room/nick) without history and waits for the
// self-presence. It returns how many other occupants the room announced before it (their
// presence comes first, XEP-0045 §7.2.3).
func joinRoom(s *loadgen.Session, nick string) (int, error) {
	n, _, err := joinRoomSelf(s, nick)
	return n, err
}

// joinRoomSelf is joinRoom that also returns the self-presence (or what came before it,
// for a report) that ended the join.
func joinRoomSelf(s *loadgen.Session, nick string) (int, []string, error) {
	room, _, _ := strings.Cut(nick, "/")
	var seen []string
	s.Send([]byte("<presence to='" + nick + "'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"))
	others := 0
	st, err := await(s, func(st *xmlstream.Stanza) bool {
		if string(st.Name) != "presence" {
			return false
		}
		from, _ := st.Attr("from")
		if strings.HasPrefix(string(from), room+"/") && (isSelf(st.Raw) || isError(st.Raw)) {
			seen = append(seen, string(st.Raw))
		}
		if string(from) == nick && (isSelf(st.Raw) || isError(st.Raw)) {
			return true
		}
		if typ, _ := st.Attr("type"); len(typ) == 0 && strings.HasPrefix(string(from), room+"/") {
			others++
		}
		return false
	})
	if err != nil {
		return 0, seen, fmt.Errorf("joining %s: %w", nick, err)
	}
	if isError(st.Raw) {
		return 0, seen, fmt.Errorf("joining %s: %s", nick, st.Raw)
	}
	return others, seen, nil
}

// openRoom creates room with s as its owner, staying in it, and accepts the default
// configuration (XEP-0045 §10.1.2, an instant room) so that others can join.
func openRoom(s *loadgen.Session, room string) error {
	if _, err := joinRoom(s, room+"/keeper"); err != nil {
		return err
	}
	s.Send([]byte("<iq type='set' to='" + room + "' id='soak-room'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"))
	st, err := await(s, func(st *xmlstream.Stanza) bool {
		id, _ := st.Attr("id")
		return string(st.Name) == "iq" && string(id) == "soak-room"
	})
	if err != nil {
		return err
	}
	if typ, _ := st.Attr("type"); string(typ) != "result" {
		return fmt.Errorf("instant room: %s", st.Raw)
	}
	return nil
}

// wrongPassword logs in with a wrong password: nil when the server refused it with
// not-authorized (RFC 6120 §6.5.10), errLetIn when it let it in.
func (t Target) wrongPassword(i int) error {
	s, err := loadgen.Dial(t.cfgFor(i), t.user(i), t.Password+"-wrong", "churn")
	if err == nil {
		s.Close()
		return errLetIn
	}
	if strings.Contains(err.Error(), "not-authorized") {
		return nil
	}
	return err
}

var errLetIn = errors.New("a wrong password was accepted")

// badInput opens a stream and sends a stanza that is not well-formed XML: the server must
// answer with a stream error (RFC 6120 §4.9.3.13) and close the connection.
func (t Target) badInput() error {
	cfg := t.cfgFor(0)
	d := net.Dialer{Timeout: 5 * time.Second}
	if cfg.LocalAddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(cfg.LocalAddr)}
	}
	c, err := d.Dial("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" +
		cfg.Domain + "' version='1.0'><message><body>not closed</message>")); err != nil {
		return err
	}
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for got.Len() < 1<<16 {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			if !bytes.Contains(got.Bytes(), []byte("stream:error")) && !bytes.Contains(got.Bytes(), []byte(":error")) {
				return fmt.Errorf("closed without a stream error (%v): %.200q", err, got.Bytes())
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return fmt.Errorf("stream error but the connection stayed open: %.200q", got.Bytes())
			}
			return nil
		}
	}
	return errors.New("no end of the stream after 64 KiB")
}

// collect logs sleeper i in, reads until everything sent to it so far has arrived (or 10 s
// of silence), and logs out.
func (t Target) collect(i int, k *tracker) error {
	s, err := loadgen.Dial(t.cfgFor(i), t.user(i), t.Password, "sleeper")
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go soakReader(k, i, s, false, done)
	if err := s.Send([]byte("<presence/>")); err != nil {
		s.Drop()
		<-done
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && k.missingFor(i) > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	s.EndStream()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	s.Drop()
	<-done
	s.Release()
	return nil
}

// missingFor counts the messages sent to session i that have not arrived.
func (k *tracker) missingFor(i int) int { return int(k.waiting[i].Load()) }

// waitDelivered waits until every message sent has arrived, up to max.
func waitDelivered(k *tracker, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for {
		d := k.tally()
		if d.Lost == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countFDs is the number of open files of process pid (0: this one).
func countFDs(pid int) int {
	es, err := os.ReadDir(procDir(pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(es)
}

// countThreads is the number of threads of process pid (0: this one).
func countThreads(pid int) int {
	st, err := os.ReadFile(procDir(pid) + "/status")
	if err != nil {
		return -1
	}
	return int(statusKB(st, "Threads:"))
}
