package router_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
)

// held is a test module whose OnRemoved work for accounts named held* waits on the
// account's shard until released, as a slow cleanup would.
type held struct{}

var (
	heldCh   = make(chan struct{})
	heldRuns atomic.Int32
)

func init() { module.Register(held{}) }

func (held) ModuleInfo() module.Info {
	return module.Info{ID: "test_held", New: func() module.Module { return held{} }}
}
func (held) Provision(r module.Registrar) error {
	r.OnRemoved(func(rm module.Removal) {
		if !strings.HasPrefix(rm.User.String(), "held") {
			return
		}
		rm.CallOn(rm.User, func(module.Context) {
			<-heldCh
			heldRuns.Add(1)
		})
	})
	return nil
}

func pending(t *testing.T, st store.Removals) []string {
	t.Helper()
	var users []string
	if err := st.PendingRemovals(func(rm store.Removal) bool { users = append(users, rm.User); return true }); err != nil {
		t.Fatal(err)
	}
	return users
}

// TestRemovalFinished: a removal's record stays until what the modules queued for it has
// run: a router stopped before that leaves it, and the next start finishes it.
func TestRemovalFinished(t *testing.T) {
	dir := t.TempDir()
	open := func() (*pebblestore.Store, *router.Router) {
		st, err := pebblestore.Open(dir, pebblestore.Options{Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		r, err := router.New(router.Options{Domains: []string{"example.org"}, Store: st, Logger: zerolog.Nop(), Shards: 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.StartRemovals(); err != nil {
			t.Fatal(err)
		}
		return st, r
	}
	st, r := open()
	st.Accounts().Create(store.Account{User: "held@example.org"})
	if err := st.Accounts().Delete("held@example.org"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := pending(t, st); len(got) != 1 {
		t.Fatalf("pending while the cleanup waits: %v", got)
	}
	// Stopped before the cleanup ran (held past the time Close gives the shards to
	// settle): the record stays.
	go func() { time.Sleep(router.StopWait + 200*time.Millisecond); heldCh <- struct{}{} }()
	r.Close()
	if got := pending(t, st); len(got) != 1 {
		t.Fatalf("pending after a stop midway: %v", got)
	}
	st.Close()

	st, r = open()
	defer st.Close()
	defer r.Close()
	before := heldRuns.Load()
	heldCh <- struct{}{}
	for range 300 {
		if len(pending(t, st)) == 0 {
			if heldRuns.Load() != before+1 {
				t.Fatalf("ran %d times at the second start", heldRuns.Load()-before)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the second start did not finish the removal")
}
