package antispam

import (
	"fmt"
	"testing"
	"time"
)

// TestAllow: one sender's budget, many senders' shared domain budget, the minute turning
// over, refused attempts counting, and a full table starting over rather than growing.
func TestAllow(t *testing.T) {
	m := &Mod{cfg: Config{PerSender: 3, PerDomain: 5}, senders: map[string]*window{}, domains: map[string]*window{}}
	t0 := time.Date(2026, 12, 6, 12, 0, 10, 0, time.UTC)
	for i, want := range []bool{true, true, true, false, false} {
		if got := m.allow("spam@x.example", "x.example", t0); got != want {
			t.Fatalf("message %d: %v, want %v", i, got, want)
		}
	}
	// The domain has had 5: a second account of it is refused at once.
	if m.allow("other@x.example", "x.example", t0) {
		t.Fatal("the domain's budget did not hold")
	}
	// Another server is not affected.
	if !m.allow("friend@y.example", "y.example", t0) {
		t.Fatal("another domain refused")
	}
	// The next minute starts afresh.
	if !m.allow("spam@x.example", "x.example", t0.Add(time.Minute)) {
		t.Fatal("the next minute refused")
	}
	// Off: no limit of that kind.
	off := &Mod{cfg: Config{PerSender: 0, PerDomain: 2}, senders: map[string]*window{}, domains: map[string]*window{}}
	for i := range 2 {
		if !off.allow(fmt.Sprintf("u%d@z.example", i), "z.example", t0) {
			t.Fatalf("sender limit off: message %d refused", i)
		}
	}
	if off.allow("u9@z.example", "z.example", t0) {
		t.Fatal("the domain limit did not hold with the sender limit off")
	}
	// Bounded: a wave of new senders never grows the table past maxTracked.
	big := &Mod{cfg: Config{PerSender: 1}, senders: map[string]*window{}, domains: map[string]*window{}}
	for i := range maxTracked + 10 {
		big.allow(fmt.Sprintf("s%d@w.example", i), "w.example", t0)
	}
	if n := len(big.senders); n > maxTracked {
		t.Fatalf("%d windows kept", n)
	}
}

// BenchmarkAllow: the cost a counted stranger's message pays.
func BenchmarkAllow(b *testing.B) {
	m := &Mod{cfg: Config{PerSender: 1 << 30, PerDomain: 1 << 30}, senders: map[string]*window{}, domains: map[string]*window{}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.allow("spam@x.example", "x.example", now)
	}
}
