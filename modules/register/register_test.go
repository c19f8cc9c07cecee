package register_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/register"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store/pebblestore"
)

// TestPasswordChangesAreBounded: a client firing hundreds of in-band password changes gets
// one at a time and a few a minute; the rest are refused with resource-constraint, and the
// hashing runs on the shared bounded pool, not on a goroutine per request.
func TestPasswordChangesAreBounded(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	a := e.Bind("alice", "pc")
	before := runtime.NumGoroutine()
	peak := before
	const n = 400
	for i := 0; i < n; i++ {
		a.Send(fmt.Sprintf("<iq type='set' id='pw%d'><query xmlns='jabber:iq:register'><username>alice</username><password>new secret %d</password></query></iq>", i, i))
		if g := runtime.NumGoroutine(); g > peak {
			peak = g
		}
	}
	a.C.Wait(t, fmt.Sprintf("id='pw%d'", n-1))
	waitAll := func() (ok, refused int) {
		for _, s := range a.C.Got() {
			switch {
			case strings.Contains(s, "type='result'"):
				ok++
			case strings.Contains(s, "resource-constraint"):
				refused++
			}
		}
		return
	}
	ok, refused := 0, 0
	for i := 0; i < 500; i++ {
		if ok, refused = waitAll(); ok+refused == n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d requests: %d changed, %d refused; goroutines %d before, %d at peak", n, ok, refused, before, peak)
	if ok < 1 || ok > 5 {
		t.Fatalf("%d password changes went through, want 1..5 per minute", ok)
	}
	if peak-before > 20 {
		t.Fatalf("goroutines grew by %d during the flood", peak-before)
	}
}

// TestWatchersConfig: watchers must be users' addresses, at most MaxWatchers of them; a
// bad list fails the start and names the module.
func TestWatchersConfig(t *testing.T) {
	many := make([]string, register.MaxWatchers+1)
	for i := range many {
		many[i] = fmt.Sprintf("w%d@example.org", i)
	}
	for _, tc := range []struct {
		watchers []string
		fail     bool
	}{{nil, false}, {[]string{"admin@example.org", "ops@other.example"}, false}, {[]string{"example.org"}, true},
		{[]string{"a b@example.org"}, true}, {many, true}} {
		st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		r, err := router.New(router.Options{Domains: []string{"example.org"}, Store: st, Logger: zerolog.Nop(),
			ModuleConfig: func(id string, v any) error {
				if c, ok := v.(*register.Config); ok {
					c.Watchers = tc.watchers
				}
				return nil
			}})
		if (err != nil) != tc.fail {
			t.Errorf("watchers %v: %v", tc.watchers, err)
		}
		if err == nil {
			r.Close()
		} else if !strings.Contains(err.Error(), "register") {
			t.Errorf("error does not name the module: %v", err)
		}
		st.Close()
	}
}

// TestPasswordChangeEndsOtherSessions: after an in-band password change the account's
// other sessions end with reset (one a thief holds with the old password among them);
// the one that changed it goes on.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	pc := e.Bind("alice", "pc")
	other := e.Bind("alice", "stolen")
	pc.Send("<iq type='set' id='pw'><query xmlns='jabber:iq:register'><username>alice</username><password>a new secret</password></query></iq>")
	pc.C.Wait(t, "id='pw'", "type='result'")
	deadline := time.Now().Add(5 * time.Second)
	for other.C.Closed() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the other session is still open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := other.C.Closed(); got != "reset" {
		t.Fatalf("the other session closed with %q, want reset", got)
	}
	if pc.C.Closed() != "" {
		t.Fatalf("the session that changed the password closed: %q", pc.C.Closed())
	}
}
