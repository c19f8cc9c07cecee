package compare

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/bench/scenario"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0.0", 12.34: "12.3", 100: "100", 1234: "1,234", 1234567.4: "1,234,567", -4321: "-4,321"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}

func steps(rates ...float64) []scenario.MsgResult {
	var out []scenario.MsgResult
	for i, r := range rates {
		m := scenario.MsgResult{OfferedRate: int(r), DeliveredPerSec: r, P50ms: 1, P99ms: 10 + float64(i)}
		if i == len(rates)-1 {
			m.P99ms = 500 // the failing step that ends a search
		}
		out = append(out, m)
	}
	return out
}

// sample is a report shaped like a real one, with three runs that disagree.
func sample() Report {
	idle := func(perSession float64) scenario.IdleResult {
		r := scenario.IdleResult{RSSPerSession: perSession, PSSPerSession: perSession, LiveHeapPerSession: perSession / 4}
		for _, n := range []int{1000, 4000} {
			p := scenario.IdlePoint{Sessions: n}
			p.Server.RSS = int64(10<<20 + float64(n)*perSession)
			r.Points = append(r.Points, p)
		}
		return r
	}
	login := func(rate float64) scenario.LoginResult {
		return scenario.LoginResult{Logins: 100, LoginsPerSecond: rate, ServerCPUPerLogin: 1e6 / rate}
	}
	resume := func(rate float64, lost int64) scenario.ResumeResult {
		return scenario.ResumeResult{Sessions: 2000, ResumesPerSecond: rate, ServerCPUPerResume: 1e6 / rate, P50ms: 20, P99ms: 40,
			IdleRSSPerSession: 2800, IdleLiveHeapPerSession: 600, DetachedRSSPerSession: 1900, QueuedBetween: 700, QueuedBytesBetween: 70 << 10, DetachedSeconds: 6.5,
			Delivery: scenario.Delivery{Sent: 1000, Delivered: 1000 - lost, AfterResume: 900, Lost: lost}}
	}
	fast := func(legacy, sasl2, fst float64) scenario.FastResult {
		f := scenario.FastResult{Logins: 100, Mechanism: "SCRAM-SHA-1", FastMechanism: scenario.FastMechanism,
			Legacy: login(legacy), SASL2: login(sasl2), FAST: login(fst)}
		f.CPUvsLegacy, f.CPUvsSASL2 = legacy/fst, sasl2/fst // CPU per login is 1e6/rate here
		f.RateVsLegacy, f.RateVsSASL2 = fst/legacy, fst/sasl2
		f.Stream = login(2 * fst)
		f.AboveFloorVsLegacy = (1e6/fst - 1e6/(2*fst)) / (1e6/legacy - 1e6/(2*fst))
		f.Quick = login(1.5 * fst)
		f.QuickVsLegacy = legacy / (1.5 * fst)
		return f
	}
	return Report{Suite: Quick(), Servers: []ServerResult{
		{Name: "alpha", Version: "1",
			IdlePlain: []scenario.IdleResult{idle(2000), idle(1800), idle(2600)}, IdleTLS: []scenario.IdleResult{idle(9000)},
			LoginPlain: []scenario.LoginResult{login(4000), login(3000), login(5000)}, LoginTLS: []scenario.LoginResult{login(900)},
			Search:   [][]scenario.MsgResult{steps(500, 1000, 2000), steps(500, 1000, 2000, 4000, 8000), steps(500, 1000, 2000, 4000)},
			Presence: []scenario.PresenceResult{{Unique: 5000, Delivered: 5100, PerSecond: 20000}},
			Resume:   []scenario.ResumeResult{resume(2000, 0), resume(1000, 2), resume(4000, 0)}, ResumeIdlePlain: []scenario.IdleResult{idle(2100)},
			FastPlain: []scenario.FastResult{fast(3000, 2000, 8000), fast(3200, 2100, 8000), fast(2800, 1900, 6000)},
			FastTLS:   []scenario.FastResult{fast(1000, 800, 1500)},
			Settings:  [][2]string{{"`x`", "because"}}},
		{Name: "beta", Version: "2", Errors: []string{"idle tls=true: refused"}, FastUnsupported: "loadgen: not offered by the server: no SASL2",
			IdlePlain: []scenario.IdleResult{idle(30000)}, LoginPlain: []scenario.LoginResult{login(300)},
			Search: [][]scenario.MsgResult{steps(500, 1000)}, ResumeUnsupported: "server sent <failed/>\nno resumption"},
	}}
}

func TestMarkdownQuotesMedians(t *testing.T) {
	md := Markdown(sample(), map[string]string{"messaging": "m.png"})
	for _, want := range []string{
		// Median of three idle runs, with the range; the live heap column.
		"| alpha | plain | **2,000** (1,800–2,600) | 2,000 (1,800–2,600) | 500 (450–650) |",
		"| alpha | plain | **4,000** (3,000–5,000)", // median login rate
		"| alpha | **2,000** (1,000–4,000)",         // highest passing rate of the median search run
		"| beta | TLS 1.3 | — |",                    // no TLS run: a dash, not a zero
		"- beta: idle tls=true: refused",
		"![messaging](m.png)",
		"| `x` | because |",
		"## Resume storm (XEP-0198)",
		"| alpha | **2,000** (1,000–4,000) | 500 (250–1,000) |",              // median resumes/s and CPU per resume
		"| beta | not supported here: server sent <failed/> no resumption |", // a reason, not a number
		"| alpha | 3,000 | 2,998 | 2,700 | **2** | **0** |",                  // delivery summed over the runs
		"| alpha | 2,100 | **2,800** (2,800–2,800) | +700 | **1,900** (1,900–1,900) | 700 (70.0 KiB) |", // SM above plain: the one paired run
		"alpha's live heap (`go_gc_heap_live_bytes`, fitted over the same samples) with stream management above without, each run: +75 bytes per session.",
		"## FAST logins (XEP-0484) next to SCRAM",
		"| alpha | plain | legacy SCRAM-SHA-1 | **3,000** (2,800–3,200) | **333** (312–357) |",
		"| alpha | plain | FAST HT-SHA-256-NONE + Bind2 | **8,000** (6,000–8,000) | **125** (125–167) |",
		"| alpha | plain | **0.40** (0.38–0.47) | **0.27** (0.25–0.31) | 0.26 (0.25–0.32) | 0.25 (0.23–0.30) | 2.50× (2.14–2.67) | 3.81× (3.16–4.00) | yes; yes |",
		"| alpha | plain | FAST as a quick start | **12,000** (9,000–12,000) |",
		"| alpha | plain | stream only (no login) | **16,000** (12,000–16,000) |",
		"| alpha | TLS 1.3 | **0.67** | **0.44** | 0.53 | 0.50 | 1.50× | 1.88× | **no**; yes |",
		"| beta | — | not supported here: loadgen: not offered by the server: no SASL2 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestWriteDrawsPlots(t *testing.T) {
	dir := t.TempDir()
	if err := Write(sample(), dir, "cmp"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cmp.json", "cmp.md", "cmp-idle_plain.png", "cmp-idle_tls.png", "cmp-logins.png", "cmp-messaging.png"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".png") && !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", f)
		}
	}
	r, err := Load(filepath.Join(dir, "cmp.json"))
	if err != nil || len(r.Servers) != 2 || r.Servers[0].Search[1][4].DeliveredPerSec != 8000 {
		t.Fatalf("round trip: %v %+v", err, r.Servers)
	}
}

func TestAccountsCoverTheResumeStorm(t *testing.T) {
	s := Full()
	s.Only = []string{"resume"}
	if got := s.accounts(); got != 10000+5000+50 {
		t.Fatalf("accounts = %d", got)
	}
	s.Only = []string{"fast"}
	if got := s.accounts(); got != 5000 {
		t.Fatalf("accounts for the FAST storm = %d", got)
	}
	s.Only = []string{"msg"}
	if got := s.accounts(); got != s.Users {
		t.Fatalf("accounts without resume = %d", got)
	}
}

func TestOldReportsHaveNoResumeSection(t *testing.T) {
	r := sample()
	r.Suite.ResumeSessions = 0 // a report from before the scenario existed
	if md := Markdown(r, nil); strings.Contains(md, "Resume storm") {
		t.Fatal("resume section in a report without the scenario")
	}
}

// TestOnlyLeavesOutTheOtherScenarios: a run of some scenarios reports and draws only those.
func TestOnlyLeavesOutTheOtherScenarios(t *testing.T) {
	r := sample()
	r.Suite.Only = []string{"resume"}
	dir := t.TempDir()
	if err := Write(r, dir, "only"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "only.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"## Idle sessions", "## Login storm", "## FAST logins", "## One-to-one", "## Presence storm"} {
		if strings.Contains(string(b), absent) {
			t.Errorf("report has %q", absent)
		}
	}
	if !strings.Contains(string(b), "## Resume storm") {
		t.Error("report lacks the resume storm")
	}
	if pngs, _ := filepath.Glob(filepath.Join(dir, "*.png")); len(pngs) != 0 {
		t.Errorf("plots drawn: %v", pngs)
	}
}

func TestMarkdownS2S(t *testing.T) {
	step := func(rate int, deliv float64, p99, a, b float64) scenario.S2SResult {
		return scenario.S2SResult{UsersPerSide: 100, OfferedRate: rate, Sent: int64(deliv * 3), Delivered: int64(deliv * 3),
			DeliveredPerSec: deliv, P50ms: 1, P99ms: p99, ServerCPUPerMsgA: a, ServerCPUPerMsgB: b}
	}
	r := Report{Suite: Suite{Name: "quick", Reps: 2, Only: []string{"s2s"}, S2SUsers: 100, S2SRateStart: 500, S2SRateMax: 4000,
		StepDuration: 3 * time.Second, P99LimitMs: 100},
		S2S: []S2SPairResult{{Name: "vireo-a ↔ vireo-b", Domains: [2]string{"a.localhost", "b.localhost"}, Versions: [2]string{"v1", "v1"},
			Steps: [][]scenario.S2SResult{
				{step(500, 500, 10, 100, 110), step(1000, 990, 20, 80, 90), step(2000, 1900, 150, 70, 70)},
				{step(500, 500, 10, 100, 100), step(1000, 1000, 30, 60, 70), step(2000, 2000, 90, 50, 60)},
			}, Errors: []string{"warm-up: slow"}},
			{Name: "vireo-a ↔ ejabberd-b", Domains: [2]string{"a.localhost", "b.localhost"}, Versions: [2]string{"v1", "ejabberd 23.01-1 (Debian package)"},
				Steps: [][]scenario.S2SResult{
					{step(500, 500, 20, 60, 300), step(1000, 700, 900, 50, 400)},
					{step(500, 500, 30, 70, 320), step(1000, 1000, 80, 40, 250), step(2000, 1200, 2000, 30, 260)},
				}}}}
	md := Markdown(r, nil)
	for _, want := range []string{
		"## Federation (s2s)",
		"| vireo-a ↔ vireo-b | a.localhost, b.localhost | v1; v1 |",
		"| vireo-a ↔ vireo-b | 1 | 2000 | 1,900 | 0 | 1.0 | 150.0 | 70.0 | 70.0 | 0.0 |",
		// best passing step of each run: 990/s and 2,000/s; their median and range
		"| vireo-a ↔ vireo-b | **1,495** (990–2,000) | 65.0 (50.0–80.0) | 75.0 (60.0–90.0) |",
		"- vireo-a ↔ vireo-b: warm-up: slow",
		// a second pair, another B side: its own rows and its own best step
		"| vireo-a ↔ ejabberd-b | a.localhost, b.localhost | v1; ejabberd 23.01-1 (Debian package) |",
		"| vireo-a ↔ ejabberd-b | 2 | 2000 | 1,200 | 0 | 1.0 | 2000.0 | 30.0 | 260.0 | 0.0 |",
		"| vireo-a ↔ ejabberd-b | **750** (500–1,000) | 50.0 (40.0–60.0) | 275 (250–300) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
	if strings.Contains(md, "| server | version |") {
		t.Error("an s2s-only report lists single servers")
	}
}

func TestMarkdownAims(t *testing.T) {
	r := sample()
	r.Servers[0].Name, r.Servers[1].Name = "vireo", "ejabberd"
	md := Markdown(r, nil)
	for _, want := range []string{
		"## Against the aims (issue 15)",
		"| idle plain session with presence, bytes (worst run) | 2,600 B (1,800–2,600) | ≤ 2,048 every run | no |", // the worst run decides
		"| idle TLS 1.3 session, bytes (RSS slope, worst run) | 9,000 B | ≤ 6,144 every run | no | — |",            // ejabberd had no TLS run
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(md, "moderate") {
		t.Error("a moderate-rate row without a moderate run")
	}
	r.Servers = r.Servers[1:] // no Vireo: no aims table
	if strings.Contains(Markdown(r, nil), "Against the aims") {
		t.Error("aims without Vireo")
	}
}

// TestOptInScenarios: the archive queries and the PEP storm run only when named, and the
// accounts cover them then.
func TestOptInScenarios(t *testing.T) {
	for _, tc := range []struct {
		only     []string
		scen     string
		runs     bool
		accounts int
	}{
		{nil, "mam", false, 0}, {nil, "pep", false, 0}, {nil, "msg", true, 0},
		{[]string{"mam"}, "mam", true, 10000}, {[]string{"pep"}, "pep", true, 1000},
		{[]string{"pep"}, "mam", false, 1000}, {[]string{"mam", "msg"}, "msg", true, 10000},
	} {
		s := Full()
		s.Only = tc.only
		if got := s.runs(tc.scen); got != tc.runs {
			t.Errorf("Only %v: runs(%s) = %v", tc.only, tc.scen, got)
		}
		if tc.accounts > 0 && s.accounts() != tc.accounts {
			t.Errorf("Only %v: accounts = %d, want %d", tc.only, s.accounts(), tc.accounts)
		}
	}
	if md := Markdown(sampleMAMPEP(nil), nil); strings.Contains(md, "## Archive queries") || strings.Contains(md, "## PEP storm") {
		t.Error("opt-in sections in a report whose run did not name them")
	}
}

// sampleMAMPEP is a report of the archive queries and the PEP storm, three runs on alpha
// and none on beta.
func sampleMAMPEP(only []string) Report {
	mam := func(p50, p99, cpu float64, fails int) scenario.MAMResult {
		return scenario.MAMResult{Users: 200, Contacts: 4, Max: 50, Conc: 4, Queries: 1000, Failures: fails, Results: 49000, PerQuery: 49,
			P50ms: p50, P90ms: p50 * 2, P99ms: p99, QueriesPerSec: 1e6 / cpu, ServerCPUPerQuery: cpu, GenCPUPerQuery: 40}
	}
	pep := func(rate, cpu float64) scenario.PEPResult {
		return scenario.PEPResult{Users: 100, Expected: 9900, Unique: 9900, Delivered: 9900, Published: 100, CapsQueries: 1,
			LoginSeconds: 3.5, PerSecond: rate, ServerCPUPerNotify: cpu, GenCPUPerNotify: 3, P50ms: 20, P99ms: 80}
	}
	r := Report{Suite: Quick(), Servers: []ServerResult{
		{Name: "alpha", Version: "1", Moderate: []scenario.MsgResult{{ServerCPUPerMsg: 8}},
			MAM: []scenario.MAMResult{mam(1.5, 9, 400, 0), mam(1.2, 7, 300, 2), mam(2, 12, 500, 0)},
			PEP: []scenario.PEPResult{pep(50000, 4), pep(40000, 5), pep(60000, 3)}},
		{Name: "beta", Version: "2"},
	}}
	r.Servers[0].MAM[0].Fill = scenario.MAMFill{Sent: 20000, Delivered: 20000, PerSecond: 5000, ServerCPUPerMsg: 21.5}
	r.Servers[0].MAM[0].Plain = &scenario.MAMFill{Sent: 20000, Delivered: 20000, PerSecond: 9000, ServerCPUPerMsg: 9.25}
	r.Servers[0].MAM[1].FirstFailure = "query refused: <iq type='error'/>"
	r.Servers[0].PEP[2].PublishErrorFirst = "publish refused: <iq type='error'/>"
	r.Servers[0].PEP[2].PublishFails, r.Servers[0].PEP[1].SetupFails = 3, 2
	r.Servers[0].PEP[0].Subscriptions, r.Servers[0].PEP[0].SubscribeSeconds = 9900, 2.5
	r.Suite.Only = only
	return r
}

func TestMarkdownMAMAndPEP(t *testing.T) {
	md := Markdown(sampleMAMPEP([]string{"mam", "pep"}), nil)
	for _, want := range []string{
		"## Archive queries (XEP-0313)",
		"200 users online; the archives are filled through the server with 20,000 one-to-one chat messages, each user writing with 4 ring contacts",
		"a pair shares about 50.0 messages",
		"RSM `<max>50</max><before/>`",
		// the fill next to the plain reference and the messaging scenario's figure
		"| alpha | 5,000 | **21.5** | 9,000 | 9.2 | 8.0 | 20,000 / 20,000 |",
		"| beta | — | — | — | — | — | — |",
		"the same fill of 20,000 messages is the plain reference",
		// medians of three runs, ranges, failures summed
		"| alpha | 3,000 | 49.0 | **1.50** (1.20–2.00) | 3.00 | **9.00** (7.00–12.00) | 2,500 | **400** (300–500) | 40.0 | 2 |",
		"alpha's first failed query: query refused: &lt;iq type='error'/>",
		"## PEP storm (XEP-0163)",
		"100 users, every one a mutual contact of every other",
		"9,900 expected",
		"| alpha | **50,000** (40,000–60,000) | **4.00** (3.00–5.00) | 3.00 | 20.0 | 80.0 | 9,900 / 9,900 | 3 (and 2 first publishes, five tries each) | 1.0 | 3.5 | 9,900 subscriptions in-band in 2.5 s |",
		"| beta | — |",
		"alpha's first refused publish: publish refused: &lt;iq type='error'/>",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, absent := range []string{"## Idle sessions", "## One-to-one", "## Presence storm"} {
		if strings.Contains(md, absent) {
			t.Errorf("report has %q", absent)
		}
	}
}
