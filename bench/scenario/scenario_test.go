package scenario

import (
	"math"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	var h Histogram
	for i := 100; i >= 1; i-- {
		h.Add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := h.Quantile(tc.q); got != tc.want {
			t.Errorf("q%.2f = %v, want %v", tc.q, got, tc.want)
		}
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
}

func TestFitSlope(t *testing.T) {
	tests := []struct {
		name   string
		xs, ys []float64
		want   float64
	}{
		{"two points: the slope between them", []float64{2000, 16000}, []float64{10e6, 38e6}, 2000},
		{"on a line", []float64{1, 2, 3, 4}, []float64{10, 12, 14, 16}, 2},
		{"noise around a line", []float64{1, 2, 3, 4}, []float64{11, 11, 15, 15}, 1.6},
		{"one point", []float64{5}, []float64{9}, 0},
		{"no spread in x", []float64{3, 3, 3}, []float64{1, 2, 3}, 0},
		{"lengths differ", []float64{1, 2}, []float64{1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FitSlope(tt.xs, tt.ys); math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("FitSlope = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	raw := []byte("1234 (vireo (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0")
	d, err := parseStatCPU(raw)
	if err != nil || d != 3*time.Second {
		t.Fatalf("cpu = %v, %v", d, err)
	}
	if _, err := parseStatCPU([]byte("garbage")); err == nil {
		t.Fatal("garbage parsed")
	}
	self, err := ReadProc(0)
	if err != nil || self.RSS <= 0 {
		t.Fatalf("ReadProc(self) = %+v, %v", self, err)
	}
}

func TestRing(t *testing.T) {
	// Every "to" at i must be a "from" at the contact, as in-band provisioning leaves it.
	const n, r = 50, 7
	for i := 0; i < n; i++ {
		m := Ring(i, n, r)
		if len(m) != 2*r {
			t.Fatalf("user %d: %d contacts, want %d", i, len(m), 2*r)
		}
		for j, sub := range m {
			back := Ring(j, n, r)[i]
			if (sub == "to" && back != "from") || (sub == "from" && back != "to") {
				t.Fatalf("user %d has %d as %q but %d has %d as %q", i, j, sub, j, i, back)
			}
		}
	}
	if m := Ring(0, 4, 2); m[2] != "both" {
		t.Fatalf("overlapping ring: %v", m)
	}
}
