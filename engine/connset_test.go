package engine

import (
	"testing"
	"time"
)

func TestConnSet(t *testing.T) {
	tests := []struct {
		name        string
		add, remove int // remove every conn whose index is a multiple of remove (0: none)
	}{
		{"empty", 0, 0},
		{"one", 1, 0},
		{"one removed", 1, 1},
		{"many", 10000, 0},
		{"many, a third removed", 10000, 3},
		{"many, all removed", 10000, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s connSet
			all := make([]*conn, tt.add)
			want := map[*conn]bool{}
			for i := range all {
				all[i] = &conn{}
				s.add(all[i])
				want[all[i]] = true
			}
			for i, c := range all {
				if tt.remove > 0 && i%tt.remove == 0 {
					s.remove(c)
					s.remove(c) // twice: a BOSH session and its transport may both close
					delete(want, c)
				}
			}
			if n := s.len(); n != len(want) {
				t.Fatalf("len = %d, want %d", n, len(want))
			}
			got := map[*conn]bool{}
			var buf []*conn
			used := 0
			for i := range connShards {
				buf = s.load(i, buf)
				for _, c := range buf {
					if got[c] {
						t.Fatalf("conn in two shards")
					}
					got[c] = true
				}
				if len(buf) > 0 {
					used++
				}
			}
			if len(got) != len(want) {
				t.Fatalf("walk saw %d conns, want %d", len(got), len(want))
			}
			for c := range want {
				if !got[c] {
					t.Fatalf("walk missed a conn")
				}
			}
			if len(want) >= 10*connShards && used < connShards {
				t.Errorf("%d conns landed in %d of %d shards", len(want), used, connShards)
			}
			if snap := s.snapshot(); len(snap) != len(want) {
				t.Errorf("snapshot has %d conns, want %d", len(snap), len(want))
			}
		})
	}
}

// idleListener is a listener with n established, recently active connections that
// the sweep checks and leaves alone.
func idleListener(tb testing.TB, n int) *listener {
	tb.Helper()
	srv := &Server{}
	srv.cfg.Store(&Config{PreAuthTimeout: time.Minute, PingAfter: time.Hour, PingTimeout: time.Minute})
	l := &listener{srv: srv, kind: &c2s{}}
	rel := sinceEpoch(time.Now())
	for range n {
		c := &conn{l: l}
		c.state.Store(stEstablished)
		c.lastRx.Store(rel)
		l.conns.add(c)
	}
	return l
}

// TestSweepAllocatesNothing: the timeout sweep runs every second over every connection;
// on an idle node it must leave no garbage (it made 8 bytes per connection per second).
func TestSweepAllocatesNothing(t *testing.T) {
	l := idleListener(t, 20000)
	l.sweep(time.Now()) // grows the buffer once
	if a := testing.AllocsPerRun(20, func() { l.sweep(time.Now()) }); a != 0 {
		t.Fatalf("sweep of 20,000 idle connections: %.0f allocations, want 0", a)
	}
	for _, c := range l.sweepBuf[:cap(l.sweepBuf)] {
		if c != nil {
			t.Fatal("the kept buffer holds a connection after the sweep")
		}
	}
}

// BenchmarkSweep walks a million idle connections: at that size they no longer fit the
// cache, as on a dense node (at 100,000 a connection costs half as much).
func BenchmarkSweep(b *testing.B) {
	const n = 1000000
	l := idleListener(b, n)
	l.sweep(time.Now()) // grows the kept buffer
	b.ReportAllocs()
	for b.Loop() {
		l.sweep(time.Now())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/conn")
}
