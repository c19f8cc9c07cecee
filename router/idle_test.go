package router_test

import (
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"

	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// BenchmarkIdleSessions builds 20,000 and then 100,000 bound sessions with initial
// presence (every module on, empty rosters) and reports the live heap per session as the
// slope between the two sizes: what the router and the modules keep for an idle session.
// The connection's own bytes (engine conn, gnet, kernel) are not in it. Run with
// IDLE_HEAP_PROFILE=file to write a heap profile while the 100,000 sessions are up (go tool
// pprof -sample_index=inuse_space router.test file).
func BenchmarkIdleSessions(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := routertest.New(b, nil, nil)
		sc := xmlstream.NewScanner()
		lim := xmlstream.DefaultLimits()
		var xs xmlstream.State
		xs.Reset(xmlstream.KindClient, &lim)
		sc.Next(&xs, []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>"))
		ev, _, _ := sc.Next(&xs, []byte("<presence/>"))
		presence := append([]byte(nil), ev.Stanza.Raw...)
		conns := make([]*countConn, 0, 100000)
		sessions := make([]*router.Session, 0, 100000)
		grow := func(to int) uint64 {
			for n := len(conns); n < to; n++ {
				bare, _ := jid.Parse("u" + strconv.Itoa(n) + "@example.org")
				c := &countConn{}
				done := make(chan *router.Session, 1)
				e.R.Bind(bare, "r", c, func(s *router.Session, err error) {
					if err != nil {
						b.Error(err)
					}
					done <- s
				})
				s := <-done
				ev, _, _ := sc.Next(&xs, presence)
				for !e.R.Submit(s, ev.Stanza) {
					runtime.Gosched()
				}
				conns, sessions = append(conns, c), append(sessions, s)
			}
			// Each session gets its own presence back (RFC 6121 §4.2.2): when all have it,
			// every presence has been handled.
			for _, c := range conns {
				for c.n.Load() < 1 {
					runtime.Gosched()
				}
			}
			runtime.GC()
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		small := grow(20000)
		large := grow(100000)
		b.ReportMetric(float64(large-small)/80000, "B/session")
		if path := os.Getenv("IDLE_HEAP_PROFILE"); path != "" {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		runtime.KeepAlive(conns)
		runtime.KeepAlive(sessions)
	}
}
