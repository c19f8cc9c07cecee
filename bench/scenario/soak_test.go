package scenario

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestSoakSmall runs a short soak against a real server in this process: two quiet
// samples after loads with drops and resumes, churn, wrong passwords, malformed streams
// and offline sleepers, and nothing lost.
func TestSoakSmall(t *testing.T) { soakSmall(t, false) }

// TestSoakSmallSplit runs the same soak through an edge (the split deployment): every
// client connects to the edge, which relays to the core over a TLS link.
func TestSoakSmallSplit(t *testing.T) { soakSmall(t, true) }

func soakSmall(t *testing.T, split bool) {
	no := false
	o := vireotest.Options{Registration: true, RequireTLS: &no, AllowPlain: true, RegisterLimit: 1000,
		AuthFailLimit: 1000000} // every tenth churn login offers a wrong password
	if split {
		o.LinkSecret = []byte("the soak's link secret, 16+ bytes")
	}
	srv := vireotest.Start(t, o)
	c2s, tlsAddr, web := srv.C2SAddr(), srv.TLSAddr(), srv.WebAddr()
	if split {
		e := vireotest.StartEdge(t, srv, o.LinkSecret)
		c2s, tlsAddr, web = e.C2SAddr(), e.TLSAddr(), e.WebAddr()
	}
	cfg := loadgen.Config{Addr: c2s, Domain: srv.Domain(), Mode: loadgen.Plain, Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second}
	c := SoakConfig{Stable: 20, Sleepers: 3, Senders: 3, Churners: 2, Rate: 300, Cycles: 3, Load: 1500 * time.Millisecond,
		DropEvery: 100 * time.Millisecond, BadEvery: 100 * time.Millisecond, Settle: 200 * time.Millisecond, Conc: 8,
		TLSAddr: tlsAddr, MUC: "conference." + srv.Domain(), WSAddr: web, WSPath: "/xmpp-websocket"}
	for i := 1; i <= c.Stable+c.Sleepers+c.Senders+c.Churners; i++ {
		if err := loadgen.Register(cfg, "u"+strconv.Itoa(i), "pw"); err != nil {
			t.Fatal(err)
		}
	}
	tg := Target{Name: "vireotest", Cfg: cfg, Prefix: "u", Password: "pw", PID: os.Getpid(), Log: testLog{t},
		Goroutines: func() (int64, error) { return int64(runtime.NumGoroutine()), nil }}
	r, err := Soak(tg, c)
	if err != nil {
		t.Fatal(err)
	}
	d := r.Delivery
	if d.Sent < 500 || d.Delivered != d.Sent || d.AfterResume == 0 {
		t.Errorf("delivery %+v", d)
	}
	if r.Drops < 5 || r.Resumes != r.Drops || r.ChurnLogins < 5 || r.WrongRefused < 1 || r.BadClosed < 5 || r.Collects != c.Sleepers*c.Cycles {
		t.Errorf("result %+v", r)
	}
	if len(r.Points) != c.Cycles+1 {
		t.Errorf("%d samples, want %d", len(r.Points), c.Cycles+1)
	}
	// The test's own process holds client and server: its descriptors and threads are
	// checked all the same (the clients at the quiet samples are the same ones).
	if p := r.Problems(); len(p) > 0 {
		t.Errorf("problems: %v", p)
	}
}

func TestSoakProblems(t *testing.T) {
	for _, c := range []struct {
		name string
		r    SoakResult
		want int
	}{
		{"clean", SoakResult{Drops: 3, Resumes: 3, ChurnLogins: 10, WrongRefused: 1, BadClosed: 4, FDGrowth: 8, ThreadGrowth: -2}, 0},
		{"lost", SoakResult{Delivery: Delivery{Sent: 10, Delivered: 9, Lost: 1}}, 1},
		{"duplicate", SoakResult{Delivery: Delivery{Sent: 10, Delivered: 10, Duplicates: 1}}, 1},
		{"resume failed", SoakResult{Drops: 3, Resumes: 2, ResumeFailures: 1, FirstFailure: "x"}, 2},
		{"churn failed", SoakResult{ChurnFailures: 1}, 1},
		{"wrong password let in", SoakResult{WrongAccepted: 1}, 1},
		{"malformed not closed", SoakResult{BadOther: 1}, 1},
		{"fd leak", SoakResult{FDGrowth: 9}, 1},
		{"thread leak", SoakResult{ThreadGrowth: 20}, 1},
		{"goroutine leak", SoakResult{GoroutineGrowth: 300}, 1},
	} {
		if got := c.r.Problems(); len(got) != c.want {
			t.Errorf("%s: %v, want %d problems", c.name, got, c.want)
		}
	}
}

// testLog sends a scenario's progress lines to the test's log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestGoroutineGrowth: pooled workers make quiet samples swing; a leak raises their floor.
func TestGoroutineGrowth(t *testing.T) {
	pts := func(gs ...int64) []SoakPoint {
		var out []SoakPoint
		for i, g := range gs {
			out = append(out, SoakPoint{Cycle: i + 1, Goroutines: g})
		}
		return out
	}
	for _, c := range []struct {
		name string
		pts  []SoakPoint
		want int64
	}{
		// The samples of a run without a leak (stop 33): first to last says +47.
		{"workers come and go", pts(127, 172, 144, 170, 170, 158, 173, 146, 164, 147, 167, 148, 166, 174), 19},
		{"one per cycle", pts(100, 110, 120, 130, 140, 150), 30},
		{"leak per login", pts(120, 400, 700, 1000), 580},
		{"not reported", pts(0, 0, 0), 0},
		{"one sample", pts(150), 0},
	} {
		if got := goroutineGrowth(c.pts); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
