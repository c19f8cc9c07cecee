package hist

import (
	"testing"
	"time"
)

func TestHist(t *testing.T) {
	var h H
	for _, d := range []time.Duration{time.Microsecond, 5 * time.Microsecond, 6 * time.Microsecond, time.Millisecond, 10 * time.Second} {
		h.Observe(d)
	}
	var s Snapshot
	h.AddTo(&s)
	h.AddTo(&s)
	if s.Count() != 10 {
		t.Fatalf("count %d, want 10", s.Count())
	}
	if want := 2 * (12*time.Microsecond + time.Millisecond + 10*time.Second); s.Sum != want {
		t.Fatalf("sum %v, want %v", s.Sum, want)
	}
	c := s.Cumulative()
	for b, want := range map[float64]uint64{5e-6: 4, 1e-5: 6, 1e-3: 8, 2.5: 8} {
		if c[b] != want {
			t.Errorf("le %v: %d, want %d", b, c[b], want)
		}
	}
	if s.Counts[NBuckets-1] != 2 {
		t.Errorf("+Inf bucket %d, want 2", s.Counts[NBuckets-1])
	}
}

func TestHistObserveAllocs(t *testing.T) {
	var h H
	if n := testing.AllocsPerRun(100, func() { h.Observe(time.Millisecond) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	var h H
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.Observe(time.Duration(i&1023) * time.Microsecond)
	}
}
