package engine

import (
	"math/rand/v2"
	"sync"
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
				buf = s.load(i, false, buf)
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

// idleListener is a listener with n established connections, each last heard from
// silent (whole seconds) before the time it returns, that the sweep checks and leaves
// alone while pingAfter is more than silent.
func idleListener(tb testing.TB, n int, pingAfter, silent time.Duration) (*listener, time.Time) {
	tb.Helper()
	srv := &Server{}
	srv.cfg.Store(&Config{PreAuthTimeout: time.Minute, PingAfter: pingAfter, PingTimeout: time.Minute, SMAckAfter: time.Minute, SMAckTimeout: time.Minute})
	l := &listener{srv: srv, kind: &c2s{}}
	now := time.Now()
	rel := sinceEpoch(now) - uint32(silent/time.Second)
	for range n {
		c := &conn{l: l}
		c.state.Store(stEstablished)
		c.lastRx.Store(rel)
		l.conns.add(c)
	}
	return l, now
}

// sets counts the listener's warm and cold connections, and fails tb when a connection's
// cold mark disagrees with the set it is in.
func sets(tb testing.TB, l *listener) (warm, cold int) {
	tb.Helper()
	for i := range connShards {
		for _, c := range l.conns.load(i, false, nil) {
			if c.closing.v.Load()&bCold != 0 {
				tb.Fatal("a warm connection is marked cold")
			}
			warm++
		}
		for _, c := range l.conns.load(i, true, nil) {
			if c.closing.v.Load()&bCold == 0 {
				tb.Fatal("a cold connection is not marked cold")
			}
			cold++
		}
	}
	return warm, cold
}

// TestSweepCold: quiet connections leave the every-second sweep after two quiet sweeps,
// come back on a read or write, and come back before their keepalive ping is due.
func TestSweepCold(t *testing.T) {
	tests := []struct {
		name      string
		pingAfter time.Duration
		silent    time.Duration
		sm        bool // one stanza waits for an XEP-0198 ack
		wantCold  bool
	}{
		{"quiet", time.Hour, 0, false, true},
		{"ping due within coldEvery", 20 * time.Second, 15 * time.Second, false, false},
		{"ping due just after coldEvery", 20 * time.Second, 20*time.Second - (coldEvery+1)*time.Second, false, true},
		{"ping due at coldEvery", 20 * time.Second, 20*time.Second - coldEvery*time.Second, false, false},
		{"waiting for an ack", time.Hour, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 500
			l, now := idleListener(t, n, tt.pingAfter, tt.silent)
			if tt.sm {
				for _, c := range l.conns.snapshot() {
					sm := &smState{owner: c, askedAt: sinceEpoch(time.Now())}
					sm.unacked.push([]byte("<message/>"))
					c.sm.Store(sm)
				}
			}
			l.sweep(now)
			if w, c := sets(t, l); w != n || c != 0 {
				t.Fatalf("after one sweep: %d warm, %d cold; want all warm", w, c)
			}
			l.sweep(now)
			w, c := sets(t, l)
			if tt.wantCold && (w != 0 || c != n) || !tt.wantCold && (w != n || c != 0) {
				t.Fatalf("after two sweeps: %d warm, %d cold; want cold %v", w, c, tt.wantCold)
			}
		})
	}
}

// TestSweepColdStir: a read or write brings a cold connection back to every sweep, and
// one stirred between the two quiet sweeps does not go cold.
func TestSweepColdStir(t *testing.T) {
	l, now := idleListener(t, 100, time.Hour, 0)
	all := l.conns.snapshot()
	l.sweep(now)
	all[0].stir() // between the two sweeps: it stays warm
	l.sweep(now)
	if w, c := sets(t, l); w != 1 || c != 99 {
		t.Fatalf("%d warm, %d cold; want 1 warm (the stirred one), 99 cold", w, c)
	}
	for _, c := range all[1:50] {
		c.stir()
	}
	if w, c := sets(t, l); w != 50 || c != 50 {
		t.Fatalf("after 49 stirs: %d warm, %d cold; want 50, 50", w, c)
	}
	l.conns.remove(all[99])
	if w, c := sets(t, l); w != 50 || c != 49 || l.conns.len() != 99 {
		t.Fatalf("after a cold conn closed: %d warm, %d cold, len %d", w, c, l.conns.len())
	}
	l.sweep(now) // the stirred ones are quiet once; a closed one is not brought back
	l.sweep(now)
	if w, c := sets(t, l); w != 0 || c != 99 {
		t.Fatalf("%d warm, %d cold; want all 99 cold", w, c)
	}
}

// TestSweepColdPingOnTime: cold connections come back to the every-second sweep before
// their keepalive ping is due, so none is pinged late.
func TestSweepColdPingOnTime(t *testing.T) {
	const pingAfter = 60 * time.Second
	l, start := idleListener(t, 1000, pingAfter, 0)
	l.sweep(start)
	l.sweep(start)
	if _, c := sets(t, l); c != 1000 {
		t.Fatalf("%d cold, want 1000", c)
	}
	// Second by second up to the last before the ping is due: every connection must be
	// warm by then, where the ping will be sent on time.
	for s := time.Duration(1); s < pingAfter/time.Second; s++ {
		l.sweep(start.Add(s * time.Second))
		if s == pingAfter/time.Second-coldEvery-2 {
			if _, c := sets(t, l); c != 1000 {
				t.Fatalf("%v before the ping is due: %d cold, want all", (coldEvery+2)*time.Second, c)
			}
		}
	}
	if w, c := sets(t, l); w != 1000 || c != 0 {
		t.Fatalf("a second before the ping is due: %d warm, %d cold; want all warm", w, c)
	}
}

// TestSweepColdRace stirs connections while sweeps move them: afterwards every
// connection's mark matches its set (sets checks), and none is lost.
func TestSweepColdRace(t *testing.T) {
	const n = 2000
	l, now := idleListener(t, n, time.Hour, 0)
	all := l.conns.snapshot()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				all[r.IntN(n)].stir()
			}
		}()
	}
	for range 200 {
		l.sweep(now)
	}
	close(stop)
	wg.Wait()
	if w, c := sets(t, l); w+c != n {
		t.Fatalf("%d warm + %d cold, want %d", w, c, n)
	}
	l.sweep(now)
	l.sweep(now)
	if w, c := sets(t, l); w != 0 || c != n {
		t.Fatalf("once left alone: %d warm, %d cold; want all cold", w, c)
	}
}

// TestSweepAllocatesNothing: the timeout sweep runs every second over every connection;
// on an idle node it must leave no garbage (it made 8 bytes per connection per second).
func TestSweepAllocatesNothing(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		pingAfter := time.Hour
		if !quiet {
			pingAfter = coldEvery * time.Second // never quiet: swept every second
		}
		l, now := idleListener(t, 20000, pingAfter, 0)
		l.sweep(now) // grows the buffer once
		l.sweep(now) // and the cold sets
		if a := testing.AllocsPerRun(20, func() { l.sweep(now) }); a != 0 {
			t.Fatalf("sweep of 20,000 idle connections (quiet %v): %.0f allocations, want 0", quiet, a)
		}
		for _, c := range l.sweepBuf[:cap(l.sweepBuf)] {
			if c != nil {
				t.Fatal("the kept buffer holds a connection after the sweep")
			}
		}
	}
}

// BenchmarkSweep walks a million idle connections: at that size they no longer fit the
// cache, as on a dense node (at 100,000 a connection costs half as much). "warm" keeps
// every connection in the every-second sweep (a ping due soon); "quiet" is the idle node,
// where the sweep looks at each connection every coldEvery seconds.
func BenchmarkSweep(b *testing.B) {
	const n = 1000000
	for _, bc := range []struct {
		name      string
		pingAfter time.Duration
	}{{"warm", coldEvery * time.Second}, {"quiet", time.Hour}} {
		b.Run(bc.name, func(b *testing.B) {
			l, now := idleListener(b, n, bc.pingAfter, 0)
			l.sweep(now) // grows the kept buffer
			l.sweep(now) // and moves the quiet ones
			b.ReportAllocs()
			for b.Loop() {
				l.sweep(now)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/conn")
		})
	}
}
