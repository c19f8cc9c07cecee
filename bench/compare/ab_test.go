package compare

import (
	"io"
	"math"
	"strings"
	"testing"
)

func TestABStats(t *testing.T) {
	for _, tc := range []struct {
		name         string
		a, b         []float64
		mean, lo, hi float64
		median       float64
		bLower       int
	}{
		{name: "same", a: []float64{100, 120, 140}, b: []float64{100, 120, 140}, mean: 1, lo: 1, hi: 1, median: 1},
		// ratios 0.9, 0.8, 1.0: mean 0.9, sd 0.1, t(2) 4.303, half 4.303*0.1/sqrt(3)
		{name: "spread", a: []float64{100, 100, 100}, b: []float64{90, 80, 100}, mean: 0.9, lo: 0.9 - 0.24844, hi: 0.9 + 0.24844, median: 0.9, bLower: 2},
		{name: "one pair", a: []float64{200}, b: []float64{150}, mean: 0.75, lo: 0.75, hi: 0.75, median: 0.75, bLower: 1},
		{name: "uneven lengths", a: []float64{100, 100}, b: []float64{110}, mean: 1.1, lo: 1.1, hi: 1.1, median: 1.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := ABResult{A: tc.a, B: tc.b}.Stats()
			for _, c := range []struct {
				what      string
				got, want float64
			}{{"mean", st.Mean, tc.mean}, {"lo", st.Lo, tc.lo}, {"hi", st.Hi, tc.hi}, {"median", st.Median, tc.median}} {
				if math.Abs(c.got-c.want) > 1e-4 {
					t.Errorf("%s = %.5f, want %.5f", c.what, c.got, c.want)
				}
			}
			if st.BLower != tc.bLower {
				t.Errorf("B lower in %d pairs, want %d", st.BLower, tc.bLower)
			}
		})
	}
}

func TestABMarkdown(t *testing.T) {
	r := ABResult{Config: ABConfig{Workload: "login", Logins: 6000, Conc: 64, BinA: "/a", BinB: "/b"}, Unit: "server CPU µs per login",
		A: []float64{150, 160}, B: []float64{135, 144}}
	md := r.Markdown()
	for _, want := range []string{"**B/A = 0.900**", "B cost less in 2 of 2 pairs", "| 2 | 160.0 | 144.0 | 0.900 |", "6000 plain-TCP logins"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestABRefusesBadConfig(t *testing.T) {
	for _, c := range []ABConfig{{Workload: "tsl", Pairs: 5}, {Workload: "login", Pairs: 0}} {
		if _, err := AB(c, io.Discard); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
