package router_test

import (
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// where is a test module that records the goroutine on which the inbound phase of each
// message to where@example.org runs.
type where struct{}

var whereG atomic.Int64

func init() { module.Register(where{}) }

func (where) ModuleInfo() module.Info {
	return module.Info{ID: "test_where", New: func() module.Module { return where{} }}
}

func (where) Provision(r module.Registrar) error {
	r.Hook(module.Inbound, module.KindMessage, 1, func(c module.Context, p *module.Packet) module.Verdict {
		if strings.HasPrefix(p.To.String(), "where@") {
			whereG.Store(goid())
		}
		return module.Continue
	})
	return nil
}

func goid() int64 {
	var b [64]byte
	f := strings.Fields(string(b[:runtime.Stack(b[:], false)]))
	id, _ := strconv.ParseInt(f[1], 10, 64)
	return id
}

// TestInline: a message whose shards are idle is routed on the goroutine that submits it
// (the event loop that read it) and delivered before Submit returns; one for a recipient
// without an available session (offline storage waits for the disk) goes through the
// recipient's shard worker, and so does everything with Options.NoInline or after
// SetInPlace(false).
func TestInline(t *testing.T) {
	cases := []struct {
		name     string
		noInline bool
		presence bool
		off      bool // SetInPlace(false) while the router runs (a config reload)
		inline   bool // some of the messages ran on the submitting goroutine
	}{
		{"available", false, true, false, true},
		{"no available session", false, false, false, false},
		{"NoInline", true, true, false, false},
		{"turned off by a reload", false, true, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := routertest.New(t, []string{"sender", "where"}, func(o *router.Options) {
				o.NoInline, o.Modules = tc.noInline, modulesBut("test_gate")
			})
			if tc.off {
				e.R.SetInPlace(false)
			}
			w := e.Bind("where", "r")
			if tc.presence {
				w.Send("<presence/>")
			}
			s := e.Bind("sender", "r")
			me := goid()
			inline := 0
			for i := 0; i < 20; i++ {
				time.Sleep(5 * time.Millisecond) // let the shards go idle
				whereG.Store(0)
				n := w.C.N.Load()
				s.Send("<message to='where@example.org/r' type='chat'><body>" + strconv.Itoa(i) + "</body></message>")
				if whereG.Load() == me {
					inline++
					if w.C.N.Load() != n+1 {
						t.Fatal("routed in place but not delivered when Submit returned")
					}
				}
			}
			if tc.presence {
				w.C.Wait(t, "<body>19</body>")
			}
			t.Logf("%d of 20 in place", inline)
			if tc.inline && inline == 0 {
				t.Fatal("no message was routed in place though the shards were idle")
			}
			if !tc.inline && inline > 0 {
				t.Fatalf("%d messages ran on the submitting goroutine", inline)
			}
		})
	}
}

// TestTryBind: a bind on an idle shard runs on the caller's goroutine and yields a working
// session; one that would replace a bound resource, one on a busy shard and any with
// routing in place turned off are left to Bind, having done nothing.
func TestTryBind(t *testing.T) {
	cases := []struct {
		name     string
		resource string
		prebind  bool // the resource is bound already
		busy     bool // the shard's worker holds it
		off      bool // SetInPlace(false)
		ok       bool
	}{
		{"idle, chosen resource", "phone", false, false, false, true},
		{"idle, server-generated resource", "", false, false, false, true},
		{"resource bound already", "phone", true, false, false, false},
		{"shard busy", "phone", false, true, false, false},
		{"in place turned off", "phone", false, false, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := routertest.New(t, []string{"sender", "where"}, nil)
			if tc.off {
				e.R.SetInPlace(false)
			}
			if tc.prebind {
				e.Bind("where", tc.resource)
			}
			online := e.R.Stats().Online
			if tc.busy {
				release := e.R.HoldShardOf("where@example.org")
				defer release()
			}
			bare, _ := jid.Parse("where@example.org")
			c := &routertest.Conn{}
			s, ok, err := e.R.TryBind(bare, tc.resource, c)
			if ok != tc.ok {
				t.Fatalf("TryBind ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				if s != nil || err != nil || e.R.Stats().Online != online {
					t.Fatalf("refused TryBind did something: %v %v, online %d -> %d", s, err, online, e.R.Stats().Online)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.JID().Bare().String() != "where@example.org" || tc.resource != "" && s.JID().Resource() != tc.resource || s.JID().Resource() == "" {
				t.Fatalf("bound %s", s.JID())
			}
			if e.R.Stats().Online != online+1 {
				t.Fatalf("online %d -> %d", online, e.R.Stats().Online)
			}
			// The session is the router's like any other: it gets a message sent to it.
			snd := e.Bind("sender", "r")
			snd.Send("<message to='" + s.JID().String() + "' type='chat'><body>hi</body></message>")
			c.Wait(t, "<body>hi</body>")
		})
	}
}

// TestTryBindBound: an XEP-0386 bind runs in place only while no module adds to <bound/>
// (MAM's archive metadata reads the disk).
func TestTryBindBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		mods func(*router.Options)
		ok   bool
	}{
		{"with MAM", nil, false},
		{"without MAM", func(o *router.Options) { o.Modules = modulesBut("mam") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := routertest.New(t, []string{"where"}, tc.mods)
			bare, _ := jid.Parse("where@example.org")
			s, bound, ok, err := e.R.TryBindBound(bare, "phone", &routertest.Conn{})
			if ok != tc.ok || err != nil || (s != nil) != tc.ok || bound != nil {
				t.Fatalf("TryBindBound = %v, %q, %v, %v; want ok %v", s, bound, ok, err, tc.ok)
			}
		})
	}
}

// TestStatsRouted: messages count as routed whether they went in place or through the
// workers (the counts are kept per shard and summed).
func TestStatsRouted(t *testing.T) {
	for _, noInline := range []bool{false, true} {
		e := routertest.New(t, []string{"sender", "where"}, func(o *router.Options) {
			o.NoInline, o.Modules = noInline, modulesBut("test_gate")
		})
		w := e.Bind("where", "r")
		w.Send("<presence/>")
		s := e.Bind("sender", "r")
		before := e.R.Stats().Routed
		for i := 0; i < 10; i++ {
			s.Send("<message to='where@example.org/r' type='chat'><body>" + strconv.Itoa(i) + "</body></message>")
		}
		w.C.Wait(t, "<body>9</body>")
		if got := e.R.Stats().Routed - before; got != 10 {
			t.Fatalf("NoInline %v: routed %d, want 10", noInline, got)
		}
	}
}
