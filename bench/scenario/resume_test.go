package scenario

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/engine/vireotest"
)

func TestParseSeq(t *testing.T) {
	for _, c := range []struct {
		id   string
		want int
		ok   bool
	}{
		{seqPrefix + "0", 0, true},
		{seqPrefix + "42", 42, true},
		{seqPrefix + "999999999", 999999999, true},
		{seqPrefix + "1000000000", 0, false}, // longer than any run's sequence
		{seqPrefix, 0, false},
		{"", 0, false},
		{"rs42", 0, false}, // another run's
		{"ts42", 0, false},
		{seqPrefix + "4x2", 0, false},
		{seqPrefix + "-1", 0, false},
		{strings.ToUpper(seqPrefix) + "42", 0, false},
	} {
		got, ok := parseSeq([]byte(c.id))
		if got != c.want || ok != c.ok {
			t.Errorf("parseSeq(%q) = %d, %v; want %d, %v", c.id, got, ok, c.want, c.ok)
		}
	}
}

func TestAppendMessageCarriesSeq(t *testing.T) {
	m := string(appendMessage(nil, "user7@localhost/rs", 1234))
	if m != "<message type='chat' to='user7@localhost/rs' id='"+seqPrefix+"1234'><body>resume storm 1234</body></message>" {
		t.Fatalf("message %s", m)
	}
	id := m[strings.Index(m, "id='")+4:]
	id = id[:strings.IndexByte(id, '\'')]
	if n, ok := parseSeq([]byte(id)); !ok || n != 1234 {
		t.Fatalf("id %q -> %d %v", id, n, ok)
	}
}

// event is one step of a tracker's life in TestTrackerTally.
type event struct {
	op      string // send, fail (a send whose write failed), recv
	seq, to int
	resumed bool
}

func TestTrackerTally(t *testing.T) {
	send := func(seq, to int) event { return event{op: "send", seq: seq, to: to} }
	for _, c := range []struct {
		name   string
		events []event
		want   Delivery
	}{
		{name: "nothing", want: Delivery{}},
		{name: "all delivered once, two after resume",
			events: []event{send(0, 1), send(1, 2), send(2, 1), {op: "recv", seq: 0, to: 1}, {op: "recv", seq: 1, to: 2, resumed: true}, {op: "recv", seq: 2, to: 1, resumed: true}},
			want:   Delivery{Sent: 3, Delivered: 3, AfterResume: 2}},
		{name: "lost and duplicated",
			events: []event{send(0, 0), send(1, 0), send(2, 0), {op: "recv", seq: 0}, {op: "recv", seq: 0, resumed: true}, {op: "recv", seq: 0, resumed: true}, {op: "recv", seq: 2}},
			want:   Delivery{Sent: 3, Delivered: 2, Lost: 1, Duplicates: 2}},
		{name: "a duplicate after resume of one seen before is not delivered after resume",
			events: []event{send(0, 3), {op: "recv", seq: 0, to: 3}, {op: "recv", seq: 0, to: 3, resumed: true}},
			want:   Delivery{Sent: 1, Delivered: 1, Duplicates: 1}},
		{name: "a failed write is not sent, unless it arrives anyway",
			events: []event{send(0, 0), {op: "fail", seq: 0}, send(1, 0), {op: "fail", seq: 1}, {op: "recv", seq: 1}},
			want:   Delivery{Sent: 1, Delivered: 1, Misrouted: 1}},
		{name: "wrong session and unknown sequence numbers are misrouted",
			events: []event{send(0, 4), {op: "recv", seq: 0, to: 5}, {op: "recv", seq: 99, to: 4}},
			want:   Delivery{Sent: 1, Delivered: 1, Misrouted: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := newTracker(8)
			for _, e := range c.events {
				switch e.op {
				case "send":
					seq, ok := k.take()
					if !ok || seq != e.seq {
						t.Fatalf("take = %d, %v; want %d", seq, ok, e.seq)
					}
					k.sent(seq, e.to, 100)
				case "fail":
					k.unsent(e.seq, 100)
				case "recv":
					k.recv(e.seq, e.to, e.resumed)
				}
			}
			if got := k.tally(); got != c.want {
				t.Errorf("tally = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestTrackerCapacity(t *testing.T) {
	k := newTracker(3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]bool{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seq, ok := k.take()
				if !ok {
					return
				}
				k.sent(seq, 0, 10)
				mu.Lock()
				seen[seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 3 || k.sentCount() != 3 || k.bytes.Load() != 30 {
		t.Fatalf("seen %v, sent %d, bytes %d", seen, k.sentCount(), k.bytes.Load())
	}
	if _, ok := k.take(); ok {
		t.Fatal("took past capacity")
	}
}

func TestMemSlope(t *testing.T) {
	a := MemPoint{Sessions: 5000}
	a.Server.RSS, a.Server.PSS = 40<<20, 38<<20
	b := MemPoint{Sessions: 10000}
	b.Server.RSS, b.Server.PSS = 40<<20+5000*2048, 38<<20+5000*1024
	if rss, pss, _ := memSlope(a, b); rss != 2048 || pss != 1024 {
		t.Fatalf("slope %v %v", rss, pss)
	}
	// A middle sample above the line pulls the fit less than it would a two-point slope.
	m := MemPoint{Sessions: 7500}
	m.Server.RSS, m.Server.PSS = 40<<20+2500*2048+1<<20, 38<<20+2500*1024
	if rss, pss, _ := memSlope(a, m, b); rss != 2048 || pss != 1024 {
		t.Fatalf("fitted slope %v %v, want 2048 1024", rss, pss)
	}
	if got := ResumeIdleSizes(10000); !slices.Equal(got, []int{1250, 2500, 3750, 5000, 6250, 7500, 8750, 10000}) {
		t.Fatalf("ResumeIdleSizes(10000) = %v", got)
	}
}

func TestFirstErrorKeepsTheFirstOfAnyType(t *testing.T) {
	var f firstError
	if f.get() != nil {
		t.Fatal("empty")
	}
	first := errors.New("first")
	f.set(first)
	f.set(fmt.Errorf("wrapped: %w", first)) // another concrete type: must not panic
	if f.get() != first {
		t.Fatalf("got %v", f.get())
	}
}

// TestResumeStormSmall runs the whole scenario against an in-process server: every
// session resumes and every message arrives exactly once.
func TestResumeStormSmall(t *testing.T) {
	no := false
	srv := vireotest.Start(t, vireotest.Options{Registration: true, RequireTLS: &no, AllowPlain: true, RegisterLimit: 1000})
	cfg := loadgen.Config{Addr: srv.C2SAddr(), Domain: srv.Domain(), Mode: loadgen.Plain, Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second}
	const n, topUp, senders = 40, 20, 3
	for i := 1; i <= n+topUp+senders; i++ {
		if err := loadgen.Register(cfg, "u"+strconv.Itoa(i), "pw"); err != nil {
			t.Fatal(err)
		}
	}
	tg := Target{Name: "vireotest", Cfg: cfg, Prefix: "u", Password: "pw", PID: os.Getpid()}
	r, err := ResumeStorm(tg, ResumeConfig{Sessions: n, TopUp: topUp, Senders: senders, Rate: 400, Conc: 8,
		Settle: 100 * time.Millisecond, IdleSettle: 500 * time.Millisecond, Lead: 300 * time.Millisecond, Tail: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := r.Delivery
	if r.Resumed != n || r.Failures != 0 || r.LoginFailures != 0 || r.Resent != 0 {
		t.Fatalf("resumed %d, failures %d+%d, resent %d: %s", r.Resumed, r.Failures, r.LoginFailures, r.Resent, r.FirstFailure)
	}
	if d.Sent < 100 || d.Delivered != d.Sent || d.Lost != 0 || d.Duplicates != 0 || d.Misrouted != 0 || d.Bounced != 0 || d.AfterResume == 0 {
		t.Fatalf("delivery %+v", d)
	}
	if len(r.IdlePoints) != ResumeIdleSteps || len(r.DetachedPoints) != 2 || r.DetachedPoints[1].Sessions != n+topUp || r.ResumesPerSecond <= 0 {
		t.Fatalf("result %+v", r)
	}
}
