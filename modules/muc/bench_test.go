package muc_test

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/muc"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// benchCtx is a module.Context whose routing only counts: the room's own cost.
type benchCtx struct {
	module.Context // nil: methods the room does not call on this path panic
	n              int
	bytes          int
	scratch        [2][]byte
	now            time.Time
}

func (c *benchCtx) RouteTo(_ jid.JID, raw []byte) { c.n++; c.bytes += len(raw) }
func (c *benchCtx) Route(raw []byte)              { c.n++; c.bytes += len(raw) }
func (c *benchCtx) Scratch(i int) *[]byte         { return &c.scratch[i&1] }
func (c *benchCtx) Now() time.Time                { return c.now }

// countConn is a router.Conn that counts what it is sent.
type countConn struct{ n atomic.Int64 }

func (c *countConn) Send(b []byte) bool                { c.n.Add(1); return true }
func (c *countConn) Resume()                           {}
func (c *countConn) Drained(f func(bool))              { f(true) }
func (c *countConn) Close(cond stanza.StreamCondition) {}

// BenchmarkFanout measures one groupchat message delivered to every occupant of a room
// (ns/delivery and allocs/delivery are per occupant session reached):
//   - room: the room's work alone (reflection built once, then one start-tag rewrite and
//     one RouteTo per occupant), with routing stubbed out;
//   - router: end to end through the real router and its shards, from the sender's
//     stanza to each recipient's Conn.Send (inbound hooks of the standard modules
//     included).
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run("room/occupants="+strconv.Itoa(n), func(b *testing.B) {
			send := muc.BenchGroupchat(n)
			c := &benchCtx{now: time.Unix(1700000000, 0)}
			send(c) // warm the scratch buffers
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				send(c)
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			d := float64(b.N) * float64(n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/d, "ns/delivery")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/d, "allocs/delivery")
		})
		b.Run("router/occupants="+strconv.Itoa(n), func(b *testing.B) { benchRouter(b, n) })
	}
}

func benchRouter(b *testing.B, n int) {
	st, err := pebblestore.Open(b.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// No join flood control and room for everyone: the room fills as fast as the
	// benchmark can submit.
	cfg := func(id string, v any) error {
		if c, ok := v.(*muc.Config); ok {
			c.FloodOccupants = 1 << 30
			c.DefaultOccupants = 5000 // maxusers of the new room
		}
		return nil
	}
	r, err := router.New(router.Options{Domains: []string{"example.org"}, Store: st, Logger: zerolog.Nop(),
		Shards: 8, ModuleConfig: cfg})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	st.Accounts().Create(store.Account{User: "user0@example.org"})
	const room = "room@conference.example.org"
	conns := make([]*countConn, n)
	for i := range conns {
		conns[i] = &countConn{}
		bare, _ := jid.Parse("user" + strconv.Itoa(i) + "@example.org")
		done := make(chan struct{})
		r.Bind(bare, "r", conns[i], func(*router.Session, error) { close(done) })
		<-done
	}
	total := func() int64 {
		var t int64
		for _, c := range conns {
			t += c.n.Load()
		}
		return t
	}
	wait := func(want int64) {
		for deadline := time.Now().Add(time.Minute); total() < want; {
			if time.Now().After(deadline) {
				b.Fatalf("delivered %d of %d", total(), want)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	user := func(i int) jid.JID {
		j, _ := jid.Parse("user" + strconv.Itoa(i) + "@example.org/r")
		return j
	}
	// user0 creates the room and unlocks it; everyone joins.
	u0 := user(0)
	r.SubmitFrom(u0, []byte("<presence from='user0@example.org/r' to='"+room+"/user0'><x xmlns='http://jabber.org/protocol/muc'/></presence>"))
	r.SubmitFrom(u0, []byte("<iq type='set' id='i' from='user0@example.org/r' to='"+room+"'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"))
	wait(3)
	for i := 1; i < n; i++ {
		p := []byte("<presence from='" + user(i).String() + "' to='" + room + "/user" + strconv.Itoa(i) + "'><x xmlns='http://jabber.org/protocol/muc'><history maxchars='0'/></x></presence>")
		for !r.SubmitFrom(user(i), p) { // a full shard queue drops: retry
			time.Sleep(time.Millisecond)
		}
	}
	// Each join: i presences of others, i broadcasts and the self-presence and subject.
	time.Sleep(100 * time.Millisecond)
	for prev := int64(-1); total() != prev; {
		prev = total()
		time.Sleep(100 * time.Millisecond)
	}
	base := total()
	msg := []byte("<message from='user0@example.org/r' to='" + room + "' type='groupchat' id='m1'><body>Harpier cries: 'tis time, 'tis time.</body></message>")
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for !r.SubmitFrom(u0, msg) {
			time.Sleep(10 * time.Microsecond)
		}
		wait(base + int64(i+1)*int64(n))
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	d := float64(b.N) * float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/d, "ns/delivery")
	// The wall time includes the waits; the process's CPU is what a delivery costs,
	// whatever else the machine runs.
	b.ReportMetric(float64(cpu.Nanoseconds())/d, "cpu-ns/delivery")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/d, "allocs/delivery")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
