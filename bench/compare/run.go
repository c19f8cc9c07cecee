// Package compare runs the same bench scenarios against several XMPP servers in turn
// (bench/peers starts them), repeats them so that medians can be quoted, and writes the
// result as JSON and as a Markdown report with plots. It owns the order of runs and the
// report; it does not speak XMPP (bench/loadgen) or define scenarios (bench/scenario).
package compare

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/bench/peers"
	"github.com/vireo-im/vireo/bench/scenario"
)

// Suite is what is run against each server.
type Suite struct {
	Name      string `json:"name"`
	Reps      int    `json:"repetitions"`
	IdleSizes []int  `json:"idle_sizes"`
	IdleRate  int    `json:"idle_ramp_rate"`
	Logins    int    `json:"logins_plain"`
	LoginsTLS int    `json:"logins_tls"`
	// ClassicTLS makes the generator offer only classical key exchanges (loadgen.
	// ClassicCurves), the ones Debian 12's Prosody and ejabberd can pick; by default it
	// also offers the X25519MLKEM768 hybrid, which Vireo picks.
	ClassicTLS    bool          `json:"classic_key_exchange,omitempty"`
	Users         int           `json:"messaging_users"`
	RateStart     int           `json:"search_start_rate"`
	RateMax       int           `json:"search_max_rate"`
	StepDuration  time.Duration `json:"search_step_ns"`
	P99LimitMs    float64       `json:"p99_limit_ms"`
	PresenceUsers int           `json:"presence_users"`
	Contacts      int           `json:"presence_contacts"`
	// The resume storm (XEP-0198): sessions dropped at once and resumed, the online users
	// sending to them meanwhile and their rate in all.
	ResumeSessions int `json:"resume_sessions,omitempty"`
	ResumeSenders  int `json:"resume_senders,omitempty"`
	ResumeRate     int `json:"resume_message_rate,omitempty"`
	// WSIdleSizes are the sizes of the WebSocket idle comparison (TCP plain and TLS, ws://
	// and wss://, four fresh processes per repetition); empty: IdleSizes.
	WSIdleSizes []int `json:"websocket_idle_sizes,omitempty"`
	// The federation scenario (s2s): users per server and the rate steps (offered
	// messages per second in all, doubling from S2SRateStart up to S2SRateMax).
	S2SUsers     int `json:"s2s_users,omitempty"`
	S2SRateStart int `json:"s2s_start_rate,omitempty"`
	S2SRateMax   int `json:"s2s_max_rate,omitempty"`
	// The groupchat fan-out (XEP-0045): room sizes (one session per occupant), the
	// fraction of occupants that talk, and the search in delivered stanzas per second
	// (MUCFixed > 0: one step at that rate instead).
	MUCSizes     []int   `json:"muc_sizes,omitempty"`
	MUCTalkers   float64 `json:"muc_talkers,omitempty"`
	MUCRateStart int     `json:"muc_search_start_rate,omitempty"`
	MUCRateMax   int     `json:"muc_search_max_rate,omitempty"`
	MUCFixed     int     `json:"muc_fixed_rate,omitempty"`
	// The archive query scenario (XEP-0313, opt-in: -only mam): MAMUsers online, their
	// archives filled with MAMMessages one-to-one messages between MAMContacts ring
	// contacts each (offered from MAMFillRate/s, adapting), then MAMQueries queries for the
	// last MAMMax messages with one contact, MAMConc in flight.
	MAMUsers    int `json:"mam_users,omitempty"`
	MAMMessages int `json:"mam_messages,omitempty"`
	MAMContacts int `json:"mam_contacts,omitempty"`
	MAMFillRate int `json:"mam_fill_rate,omitempty"`
	MAMQueries  int `json:"mam_queries,omitempty"`
	MAMConc     int `json:"mam_in_flight,omitempty"`
	MAMMax      int `json:"mam_max,omitempty"`
	// MAMPlainMessages is the size of the plain reference: the same fill, before, on a
	// fresh process with archiving off (Vireo's mam module disabled; Prosody and ejabberd
	// without theirs). 0: none.
	MAMPlainMessages int `json:"mam_plain_messages,omitempty"`
	// PEPUsers is the PEP storm's size (XEP-0163, opt-in: -only pep): all mutual contacts.
	PEPUsers int `json:"pep_users,omitempty"`
	// Soak is the soak (opt-in: -only soak): a steady mixed load for many cycles, a quiet
	// sample after each (scenario.SoakConfig).
	Soak      scenario.SoakConfig `json:"soak,omitzero"`
	Conc      int                 `json:"concurrent_logins"`
	SourceIPs int                 `json:"source_ips"`
	// Only, when set, limits the run to these scenarios: idle, login, fast, msg, presence,
	// resume, muc (groupchat fan-out), ws (XMPP over WebSocket: idle next to TCP, messaging), s2s (federation between
	// two processes, run on the pairs given to Run), mam (archive queries), pep (PEP storm), guest (SASL ANONYMOUS logins next to SCRAM ones). The FAST storm (fast) runs Logins logins per phase on plain TCP and
	// LoginsTLS over TLS; the guest storm Logins of each on plain TCP.
	Only []string `json:"only,omitempty"`
}

// optIn are the scenarios that run only when Only names them: at the full sizes their
// setup alone (a million messages archived, a million subscriptions) takes longer than
// the rest of the suite.
var optIn = []string{"mam", "pep", "soak", "guest"}

func (s Suite) runs(scen string) bool {
	if len(s.Only) == 0 {
		return !slices.Contains(optIn, scen)
	}
	return slices.Contains(s.Only, scen)
}

// single reports whether any scenario on a single server runs (anything but s2s).
func (s Suite) single() bool {
	return len(s.Only) == 0 || slices.ContainsFunc(s.Only, func(x string) bool { return x != "s2s" })
}

// Quick is a few minutes per server: enough to see the shape, not to quote.
func Quick() Suite {
	return Suite{Name: "quick", Reps: 1, IdleSizes: []int{1000, 2000, 4000}, IdleRate: 2000, Logins: 2000, LoginsTLS: 1000,
		Users: 500, RateStart: 500, RateMax: 64000, StepDuration: 3 * time.Second, P99LimitMs: 100,
		PresenceUsers: 500, Contacts: 10, ResumeSessions: 2000, ResumeSenders: 20, ResumeRate: 200, WSIdleSizes: []int{1000, 4000},
		S2SUsers: 200, S2SRateStart: 500, S2SRateMax: 16000,
		MUCSizes: []int{10, 100, 1000}, MUCTalkers: 0.1, MUCRateStart: 5000, MUCRateMax: 400000,
		MAMUsers: 200, MAMMessages: 20000, MAMContacts: 4, MAMFillRate: 2000, MAMQueries: 2000, MAMConc: 4, MAMMax: 50, MAMPlainMessages: 20000,
		PEPUsers: 100, Conc: 64, SourceIPs: 4,
		Soak: scenario.SoakConfig{Stable: 500, Sleepers: 20, Senders: 10, Rate: 500, Churners: 4, Cycles: 4, Load: 20 * time.Second,
			DropEvery: 100 * time.Millisecond, BadEvery: 500 * time.Millisecond, Settle: 3 * time.Second}}
}

// Full is the suite the committed results come from.
func Full() Suite {
	return Suite{Name: "full", Reps: 3, IdleSizes: []int{2000, 5500, 9000, 12500, 16000}, IdleRate: 2000, Logins: 5000, LoginsTLS: 3000,
		Users: 1000, RateStart: 500, RateMax: 256000, StepDuration: 5 * time.Second, P99LimitMs: 100,
		PresenceUsers: 1000, Contacts: 20, ResumeSessions: 10000, ResumeSenders: 50, ResumeRate: 500, WSIdleSizes: []int{2000, 8000},
		S2SUsers: 500, S2SRateStart: 500, S2SRateMax: 64000,
		MUCSizes: []int{10, 100, 1000, 10000}, MUCTalkers: 0.1, MUCRateStart: 5000, MUCRateMax: 800000,
		MAMUsers: 10000, MAMMessages: 1000000, MAMContacts: 4, MAMFillRate: 2000, MAMQueries: 10000, MAMConc: 4, MAMMax: 50, MAMPlainMessages: 100000,
		PEPUsers: 1000, Conc: 64, SourceIPs: 4,
		Soak: scenario.SoakConfig{Stable: 5000, Sleepers: 100, Senders: 20, Rate: 1000, Churners: 8, Cycles: 20, Load: 60 * time.Second,
			DropEvery: 50 * time.Millisecond, BadEvery: 200 * time.Millisecond, Settle: 3 * time.Second}}
}

// mamConfig is the suite's archive query scenario.
func (s Suite) mamConfig() scenario.MAMConfig {
	return scenario.MAMConfig{Users: s.MAMUsers, Messages: s.MAMMessages, Contacts: s.MAMContacts, FillRate: s.MAMFillRate,
		Queries: s.MAMQueries, Conc: s.MAMConc, Max: s.MAMMax, LoginConc: s.Conc}
}

// resumeConfig is the suite's resume storm; the probe of detached sessions is half the storm.
func (s Suite) resumeConfig() scenario.ResumeConfig {
	return scenario.ResumeConfig{Sessions: s.ResumeSessions, TopUp: s.ResumeSessions / 2, Senders: s.ResumeSenders,
		Rate: s.ResumeRate, Conc: s.Conc}
}

// mucConfig is the suite's groupchat fan-out.
func (s Suite) mucConfig() scenario.MUCConfig {
	return scenario.MUCConfig{Service: "conference." + peers.Domain, Sizes: s.MUCSizes, Talkers: s.MUCTalkers,
		RateStart: s.MUCRateStart, RateMax: s.MUCRateMax, Fixed: s.MUCFixed, Step: s.StepDuration, LimitMs: s.P99LimitMs, Conc: s.Conc}
}

func (s Suite) accounts() int {
	n := 0
	rc := s.resumeConfig()
	for scen, m := range map[string]int{"idle": s.IdleSizes[len(s.IdleSizes)-1], "login": max(s.Logins, s.LoginsTLS), "fast": max(s.Logins, s.LoginsTLS),
		"msg": s.Users, "presence": s.PresenceUsers,
		"resume": rc.Sessions + rc.TopUp + rc.Senders, "ws": max(s.Users, slices.Max(append([]int{0}, s.WSIdleSizes...))),
		"muc": slices.Max(append([]int{0}, s.MUCSizes...)), "mam": s.MAMUsers, "pep": s.PEPUsers, "guest": s.Logins,
		"soak": s.Soak.Stable + s.Soak.Sleepers + s.Soak.Senders + s.Soak.Churners} {
		if s.runs(scen) {
			n = max(n, m)
		}
	}
	return n
}

// ModerateRate is the offered rate of the moderate messaging step (issue 15: "most servers
// live here").
const ModerateRate = 5000

// ServerResult is everything measured on one server; every slice has one entry per repetition.
type ServerResult struct {
	Name       string                 `json:"name"`
	Version    string                 `json:"version"`
	Settings   [][2]string            `json:"settings"`
	IdlePlain  []scenario.IdleResult  `json:"idle_plain"`
	IdleTLS    []scenario.IdleResult  `json:"idle_tls"`
	LoginPlain []scenario.LoginResult `json:"login_plain"`
	LoginTLS   []scenario.LoginResult `json:"login_tls"`
	// LoginTLSResumed is the TLS login storm again, each connection resuming an earlier
	// one's TLS session.
	LoginTLSResumed []scenario.LoginResult `json:"login_tls_resumed,omitempty"`
	// Moderate is one messaging step at ModerateRate after each rate search: the load most
	// servers live at, where the fixed cost per wake-up shows.
	Moderate []scenario.MsgResult `json:"moderate,omitempty"`
	// FastPlain and FastTLS are the FAST storm: legacy SCRAM, SCRAM over SASL2 with a
	// token request, and FAST logins, one after the other on the same process.
	FastPlain []scenario.FastResult `json:"fast_plain,omitempty"`
	FastTLS   []scenario.FastResult `json:"fast_tls,omitempty"`
	// FastUnsupported says why the server could not run the FAST storm here.
	FastUnsupported string `json:"fast_unsupported,omitempty"`
	// GuestSCRAM and Guest are the guest storm (-only guest): a SCRAM login storm and then
	// as many SASL ANONYMOUS logins on the guests' host, on the same process.
	GuestSCRAM []scenario.LoginResult    `json:"guest_scram,omitempty"`
	Guest      []scenario.LoginResult    `json:"guest,omitempty"`
	Search     [][]scenario.MsgResult    `json:"messaging_search"`
	Presence   []scenario.PresenceResult `json:"presence_storm"`
	// ResumeIdlePlain is the idle scenario at the resume storm's idle sizes without stream
	// management, on a fresh process: what the storm's idle slope with it compares to.
	ResumeIdlePlain []scenario.IdleResult   `json:"resume_idle_plain,omitempty"`
	Resume          []scenario.ResumeResult `json:"resume_storm,omitempty"`
	// ResumeUnsupported says why the server could not run the resume storm here.
	ResumeUnsupported string `json:"resume_unsupported,omitempty"`
	// WebSocket is the XMPP-over-WebSocket scenario (ws).
	WebSocket *WSResult `json:"websocket,omitempty"`
	// MUC is the groupchat fan-out (muc), one entry per repetition.
	MUC []scenario.MUCResult `json:"muc,omitempty"`
	// MAM is the archive query scenario and PEP the PEP storm, one entry per repetition.
	MAM  []scenario.MAMResult  `json:"mam,omitempty"`
	PEP  []scenario.PEPResult  `json:"pep,omitempty"`
	Soak []scenario.SoakResult `json:"soak,omitempty"`
	// SoakProblems lists, per soak run, what it must not have shown (SoakResult.Problems).
	SoakProblems [][]string `json:"soak_problems,omitempty"`
	Errors       []string   `json:"errors,omitempty"`
}

// Report is a whole comparison.
type Report struct {
	Date    string         `json:"date"`
	Machine Machine        `json:"machine"`
	Command string         `json:"command"`
	Suite   Suite          `json:"suite"`
	Servers []ServerResult `json:"servers"`
	// S2S is the federation scenario, one entry per pair.
	S2S      []S2SPairResult `json:"s2s,omitempty"`
	Duration float64         `json:"duration_seconds"`
}

// Machine is what the numbers were measured on.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB int    `json:"memory_gib"`
	Kernel    string `json:"kernel"`
	OS        string `json:"os"`
	Go        string `json:"go"`
	OpenFiles string `json:"open_files_limit"`
}

// Run runs s against each server in turn, then the federation scenario on each pair
// (when s runs s2s); a failed scenario is recorded in the server's (or pair's) Errors and
// the run goes on.
func Run(servers []peers.Server, pairs []*peers.Pair, s Suite, log io.Writer) Report {
	start := time.Now()
	r := Report{Date: start.UTC().Format(time.RFC3339), Machine: ReadMachine(), Command: strings.Join(os.Args, " "), Suite: s}
	for _, srv := range servers {
		if !s.single() {
			break
		}
		fmt.Fprintf(log, "== %s (%s)\n", srv.Name(), srv.Version())
		r.Servers = append(r.Servers, runServer(srv, s, log))
	}
	for _, p := range pairs {
		if !s.runs("s2s") {
			break
		}
		fmt.Fprintf(log, "== %s ↔ %s (federation)\n", p.A.Name(), p.B.Name())
		r.S2S = append(r.S2S, runS2S(p, s, log))
	}
	r.Duration = time.Since(start).Seconds()
	return r
}

// serverTarget is the generator's view of srv: its plain or direct TLS listener, the
// bench accounts, SCRAM-SHA-1, and the server's live heap and goroutines where it reports
// them.
func serverTarget(srv peers.Server, tls bool, sourceIPs int, classicTLS bool, log io.Writer) scenario.Target {
	mode := loadgen.Plain
	if tls {
		mode = loadgen.DirectTLS
	}
	t := scenario.Target{Name: srv.Name(), Prefix: "user", Password: peers.Password, PID: srv.PID(), SourceIPs: sourceIPs, Log: log,
		Cfg: loadgen.Config{Addr: srv.Addr(tls), Domain: peers.Domain, Mode: mode, Mechanism: "SCRAM-SHA-1", ClassicKeyExchange: classicTLS}}
	if hr, ok := srv.(peers.HeapReporter); ok {
		t.LiveHeap = hr.LiveHeap
	}
	if gr, ok := srv.(peers.GoroutineReporter); ok {
		t.Goroutines = gr.Goroutines
	}
	return t
}

func runServer(srv peers.Server, s Suite, log io.Writer) ServerResult {
	res := ServerResult{Name: srv.Name(), Version: srv.Version(), Settings: srv.Settings()}
	fail := func(what string, err error) {
		fmt.Fprintf(log, "  %s: %s: %v\n", srv.Name(), what, err)
		res.Errors = append(res.Errors, what+": "+err.Error())
	}
	target := func(tls bool) scenario.Target { return serverTarget(srv, tls, s.SourceIPs, s.ClassicTLS, log) }
	// Each idle run gets a freshly started server, so the memory curve starts from the
	// same baseline every time.
	restart := func(first bool) bool {
		if !first {
			srv.Stop()
		}
		if err := srv.Start(); err != nil {
			fail("start", err)
			return false
		}
		return true
	}
	if !restart(true) {
		return res
	}
	defer func() { srv.Stop() }()
	fmt.Fprintf(log, "  %s: creating %d accounts\n", srv.Name(), s.accounts())
	if err := srv.AddAccounts(s.accounts()); err != nil {
		fail("accounts", err)
		return res
	}
	srv.Enable(peers.FeatureGCAtScale) // bytes per session as at millions of sessions
	for rep := 0; rep < s.Reps && s.runs("idle"); rep++ {
		for _, tls := range []bool{false, true} {
			if !restart(false) {
				return res
			}
			fmt.Fprintf(log, "  %s: idle density tls=%v %v (run %d/%d)\n", srv.Name(), tls, s.IdleSizes, rep+1, s.Reps)
			ir, err := scenario.Idle(target(tls), s.IdleSizes, s.Conc, s.IdleRate, 3*time.Second)
			if err != nil {
				fail(fmt.Sprintf("idle tls=%v", tls), err)
				continue
			}
			fmt.Fprintf(log, "  %s: %.0f B/session RSS, %.0f B/session PSS\n", srv.Name(), ir.RSSPerSession, ir.PSSPerSession)
			if tls {
				res.IdleTLS = append(res.IdleTLS, ir)
			} else {
				res.IdlePlain = append(res.IdlePlain, ir)
			}
		}
	}
	srv.Enable()
	if s.runs("login") && !restart(false) {
		return res
	}
	for rep := 0; rep < s.Reps && s.runs("login"); rep++ {
		for _, tls := range []bool{false, true} {
			k := s.Logins
			if tls {
				k = s.LoginsTLS
			}
			fmt.Fprintf(log, "  %s: login storm tls=%v, %d logins (run %d/%d)\n", srv.Name(), tls, k, rep+1, s.Reps)
			lr, err := scenario.LoginStorm(target(tls), k, s.Conc)
			if err != nil {
				fail(fmt.Sprintf("login tls=%v", tls), err)
				continue
			}
			fmt.Fprintf(log, "  %s: %.0f logins/s, %d failures, server %.0f µs/login\n", srv.Name(), lr.LoginsPerSecond, lr.Failures, lr.ServerCPUPerLogin)
			if tls {
				res.LoginTLS = append(res.LoginTLS, lr)
			} else {
				res.LoginPlain = append(res.LoginPlain, lr)
			}
		}
		fmt.Fprintf(log, "  %s: login storm tls=resumed, %d logins (run %d/%d)\n", srv.Name(), s.LoginsTLS, rep+1, s.Reps)
		lr, err := scenario.ResumedLoginStorm(target(true), s.LoginsTLS, s.Conc)
		if err != nil {
			fail("login tls=resumed", err)
			continue
		}
		fmt.Fprintf(log, "  %s: %.0f logins/s, %d resumed, %d failures, server %.0f µs/login\n", srv.Name(), lr.LoginsPerSecond, lr.Resumed, lr.Failures, lr.ServerCPUPerLogin)
		res.LoginTLSResumed = append(res.LoginTLSResumed, lr)
	}
	// The FAST storm on a fresh process, as the login storm: its first phase is the same
	// legacy login storm, so the two compare.
	if s.runs("fast") && !restart(false) {
		return res
	}
fast:
	for rep := 0; rep < s.Reps && s.runs("fast"); rep++ {
		for _, tls := range []bool{false, true} {
			k := s.Logins
			if tls {
				k = s.LoginsTLS
			}
			fmt.Fprintf(log, "  %s: FAST storm tls=%v, %d logins per phase (run %d/%d)\n", srv.Name(), tls, k, rep+1, s.Reps)
			fr, err := scenario.FastStorm(target(tls), k, s.Conc)
			if errors.Is(err, scenario.ErrNoFAST) {
				fmt.Fprintf(log, "  %s: no FAST storm: %s\n", srv.Name(), fr.Unsupported)
				res.FastUnsupported = fr.Unsupported
				break fast
			}
			if err != nil {
				fail(fmt.Sprintf("fast tls=%v", tls), err)
				continue
			}
			if tls {
				res.FastTLS = append(res.FastTLS, fr)
			} else {
				res.FastPlain = append(res.FastPlain, fr)
			}
		}
	}
	// The guest storm on a fresh process with a guests' host: SCRAM logins, then as many
	// guest logins (each makes an account, a session and removes both), so the two compare
	// within one run.
	if s.runs("guest") {
		srv.Enable(peers.FeatureGuests)
		if !restart(false) {
			return res
		}
		for rep := 0; rep < s.Reps; rep++ {
			t := target(false)
			fmt.Fprintf(log, "  %s: guest storm: %d SCRAM logins, then %d guest logins (run %d/%d)\n", srv.Name(), s.Logins, s.Logins, rep+1, s.Reps)
			sr, err := scenario.LoginStorm(t, s.Logins, s.Conc)
			if err != nil {
				fail("guest storm: SCRAM", err)
				continue
			}
			t.Cfg.Domain, t.Cfg.Mechanism = peers.GuestDomain, "ANONYMOUS"
			gr, err := scenario.LoginStorm(t, s.Logins, s.Conc)
			if err != nil {
				fail("guest storm: ANONYMOUS", err)
				continue
			}
			fmt.Fprintf(log, "  %s: SCRAM %.0f µs/login, guest %.0f µs/login, %d guest failures\n", srv.Name(), sr.ServerCPUPerLogin, gr.ServerCPUPerLogin, gr.Failures)
			res.GuestSCRAM, res.Guest = append(res.GuestSCRAM, sr), append(res.Guest, gr)
		}
		srv.Enable()
	}
	// A fresh process for the search too: after the login storms some servers carry
	// garbage whose collection shows up as latency spikes.
	if s.runs("msg") && !restart(false) {
		return res
	}
	for rep := 0; rep < s.Reps && s.runs("msg"); rep++ {
		fmt.Fprintf(log, "  %s: messaging rate search, %d users (run %d/%d)\n", srv.Name(), s.Users, rep+1, s.Reps)
		t := target(false)
		o, err := scenario.Connect(t, s.Users, s.Conc)
		if err != nil {
			fail("messaging connect", err)
			continue
		}
		steps, err := scenario.Search(t, o, s.RateStart, s.RateMax, s.StepDuration, time.Duration(s.P99LimitMs*float64(time.Millisecond)))
		if err != nil {
			fail("messaging", err)
		}
		res.Search = append(res.Search, steps)
		fmt.Fprintf(log, "  %s: messaging at a moderate %d/s (run %d/%d)\n", srv.Name(), ModerateRate, rep+1, s.Reps)
		if m, err := scenario.Messaging(t, o, ModerateRate, s.StepDuration); err != nil {
			fail("messaging at a moderate rate", err)
		} else {
			fmt.Fprintf(log, "  %s: delivered %.0f/s lost %d p99 %.1fms server %.1fµs/msg\n", srv.Name(), m.DeliveredPerSec, m.Loss, m.P99ms, m.ServerCPUPerMsg)
			res.Moderate = append(res.Moderate, m)
		}
		o.Close()
	}
	// The resume storm and the idle density without stream management at its idle sizes,
	// each on a fresh process (memory slopes start from the same baseline).
	srv.Enable(peers.FeatureGCAtScale)
	for rep := 0; rep < s.Reps && s.runs("resume"); rep++ {
		rc := s.resumeConfig()
		rc.RampRate = s.IdleRate
		if !restart(false) {
			return res
		}
		fmt.Fprintf(log, "  %s: resume storm, %d sessions, %d senders at %d msgs/s (run %d/%d)\n", srv.Name(), rc.Sessions, rc.Senders, rc.Rate, rep+1, s.Reps)
		rr, err := scenario.ResumeStorm(target(false), rc)
		if errors.Is(err, scenario.ErrNoResume) {
			res.ResumeUnsupported = rr.Unsupported
			break
		}
		if err != nil {
			fail("resume", err)
			continue
		}
		res.Resume = append(res.Resume, rr)
		if !restart(false) {
			return res
		}
		sizes := scenario.ResumeIdleSizes(rc.Sessions)
		fmt.Fprintf(log, "  %s: idle density without stream management %v (run %d/%d)\n", srv.Name(), sizes, rep+1, s.Reps)
		ir, err := scenario.Idle(target(false), sizes, s.Conc, s.IdleRate, cmp.Or(rc.IdleSettle, scenario.DefaultIdleSettle))
		if err != nil {
			fail("resume idle plain", err)
			continue
		}
		res.ResumeIdlePlain = append(res.ResumeIdlePlain, ir)
	}
	if s.runs("ws") {
		wr, ok := runWebSocket(srv, s, target, func() bool { return restart(false) }, fail, log)
		res.WebSocket = &wr
		if !ok {
			return res
		}
	}
	srv.Enable()
	// The groupchat fan-out on a fresh process.
	for rep := 0; rep < s.Reps && s.runs("muc"); rep++ {
		if !restart(false) {
			return res
		}
		fmt.Fprintf(log, "  %s: groupchat fan-out, rooms of %v (run %d/%d)\n", srv.Name(), s.MUCSizes, rep+1, s.Reps)
		mr, err := scenario.MUC(target(false), s.mucConfig())
		if err != nil {
			fail("muc", err)
			continue
		}
		res.MUC = append(res.MUC, mr)
	}
	if s.runs("presence") {
		provisioned, err := srv.WriteRosters(s.PresenceUsers, func(i int) map[int]string { return scenario.Ring(i, s.PresenceUsers, s.Contacts) })
		if err != nil {
			fail("rosters", err)
			return res
		}
		// A fresh start reads rosters written behind the server's back and drops whatever the
		// earlier scenarios left cached.
		if !restart(false) {
			return res
		}
		for rep := 0; rep < s.Reps; rep++ {
			fmt.Fprintf(log, "  %s: presence storm, %d users x %d contacts (run %d/%d)\n", srv.Name(), s.PresenceUsers, s.Contacts, rep+1, s.Reps)
			pr, err := scenario.PresenceStorm(target(false), s.PresenceUsers, s.Contacts, s.Conc, provisioned || rep > 0)
			if err != nil {
				fail("presence", err)
				break
			}
			res.Presence = append(res.Presence, pr)
		}
	}
	// The opt-in scenarios come last: their archives and rosters stay in the data
	// directory, and the presence storm's rosters must not hold the PEP storm's mesh.
	if s.runs("mam") {
		// The plain reference first, so that the archives it would leave behind (none:
		// archiving is off) cannot matter.
		var plain *scenario.MAMFill
		if s.MAMPlainMessages > 0 {
			srv.Enable(peers.FeatureNoArchive)
			if !restart(false) {
				return res
			}
			c := s.mamConfig()
			c.Messages, c.Queries = s.MAMPlainMessages, 0
			fmt.Fprintf(log, "  %s: the archive fill without archiving, %d messages\n", srv.Name(), c.Messages)
			if mr, err := scenario.MAM(target(false), c); err != nil {
				fail("mam plain fill", err)
			} else {
				plain = &mr.Fill
			}
		}
		srv.Enable(peers.FeatureMAM)
		if !restart(false) {
			return res
		}
		for rep := 0; rep < s.Reps; rep++ {
			c := s.mamConfig()
			if rep > 0 {
				c.Messages = 0 // the archives are filled: the repetitions only query
			}
			fmt.Fprintf(log, "  %s: archive queries, %d users, %d messages (run %d/%d)\n", srv.Name(), c.Users, c.Messages, rep+1, s.Reps)
			mr, err := scenario.MAM(target(false), c)
			if err != nil {
				fail("mam", err)
				break
			}
			if rep == 0 {
				mr.Plain = plain
			}
			res.MAM = append(res.MAM, mr)
		}
		srv.Enable()
	}
	if s.runs("pep") {
		srv.Enable(peers.FeaturePEP)
		// Running with PEP before the rosters: ejabberd's shared roster commands come with
		// the module.
		if !restart(false) {
			return res
		}
		provisioned, err := srv.WriteRosters(s.PEPUsers, func(i int) map[int]string { return scenario.Mesh(i, s.PEPUsers) })
		if err != nil {
			fail("pep rosters", err)
			return res
		}
		for rep := 0; rep < s.Reps; rep++ {
			// A fresh process each time: the storm's sessions learn caps and last items anew.
			if !restart(false) {
				return res
			}
			fmt.Fprintf(log, "  %s: PEP storm, %d users, all mutual contacts (run %d/%d)\n", srv.Name(), s.PEPUsers, rep+1, s.Reps)
			pr, err := scenario.PEPStorm(target(false), s.PEPUsers, s.Conc, provisioned || rep > 0)
			if err != nil {
				fail("pep", err)
				break
			}
			res.PEP = append(res.PEP, pr)
		}
		srv.Enable()
	}
	// The soak last, on a fresh process: its figures are growth from cycle to cycle, so
	// the collector runs as it does at scale (Vireo's default headroom floor would let a
	// small heap grow for tens of MiB before the first collection, and report no live heap).
	// Archiving on, as every server ships it for its users: the soak is the load of a
	// production node.
	srv.Enable(peers.FeatureGCAtScale, peers.FeatureMAM)
	defer srv.Enable()
	for rep := 0; rep < s.Reps && s.runs("soak"); rep++ {
		if !restart(false) {
			return res
		}
		c := s.Soak
		c.Conc = s.Conc
		c.TLSAddr = srv.Addr(true)
		c.MUC = "conference." + peers.Domain
		c.WSAddr, c.WSPath = srv.WebSocket(false)
		fmt.Fprintf(log, "  %s: soak, %d cycles of %v: %d stable sessions, %d msgs/s (run %d/%d)\n", srv.Name(), c.Cycles, c.Load, c.Stable, c.Rate, rep+1, s.Reps)
		sr, err := scenario.Soak(target(false), c)
		if err != nil {
			fail("soak", err)
			continue
		}
		res.Soak = append(res.Soak, sr)
		res.SoakProblems = append(res.SoakProblems, sr.Problems())
		for _, p := range sr.Problems() {
			fmt.Fprintf(log, "  %s: soak: %s\n", srv.Name(), p)
		}
	}
	return res
}

// ReadMachine describes this machine from /proc.
func ReadMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		m.MemoryGiB = (kb + 1<<19) >> 20
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Max open files") {
				f := strings.Fields(l)
				if len(f) >= 5 {
					m.OpenFiles = f[3]
				}
			}
		}
	}
	return m
}
