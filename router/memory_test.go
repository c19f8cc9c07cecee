package router_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/vireo-im/vireo/router/routertest"
)

// BenchmarkSessionBytes measures the router's own heap per bound session with presence,
// and what detaching adds (on detach the engine frees its connection, gnet's and the TLS
// state, which are most of an idle session). Run with -benchtime=1x.
func BenchmarkSessionBytes(b *testing.B) {
	t := b
	const n = 5000
	var users []string
	for i := 0; i < n; i++ {
		users = append(users, fmt.Sprintf("u%d", i))
	}
	e := routertest.New(t, users, nil)
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h0 := heap()
	var ss []*routertest.Sess
	for _, u := range users {
		s := e.Bind(u, "r")
		s.Send("<presence/>")
		ss = append(ss, s)
	}
	time.Sleep(200 * time.Millisecond) // presence handled
	h1 := heap()
	for _, s := range ss {
		e.R.Detach(s.S, time.Hour)
	}
	time.Sleep(200 * time.Millisecond)
	h2 := heap()
	for b.Loop() {
	}
	b.ReportMetric(float64(int64(h1-h0))/n, "B/session")
	b.ReportMetric(float64(int64(h2)-int64(h1))/n, "B/detach")
}
