package pebblestore

import (
	"sync"
	"testing"

	"github.com/vireo-im/vireo/store"
)

// pending reports whether a lazy write waits for a sync.
func (s *Store) pending() bool { return s.synced.Load() < s.lazyN.Load() }

func TestSyncLazy(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SyncLazy(); err != nil || s.pending() {
		t.Fatalf("nothing lazy: %v", err)
	}
	if err := s.Table("t").ApplyLazy(store.Op{Key: []byte("k"), Val: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if !s.pending() {
		t.Fatal("a lazy write is not pending")
	}
	if err := s.SyncLazy(); err != nil || s.pending() {
		t.Fatalf("after SyncLazy: %v, pending %v", err, s.pending())
	}
}

// TestSyncLazyConcurrent: writers that each sync after their lazy write all return with
// their write covered, whatever the interleaving (a sync begun before a write does not
// answer for it). Run with -race.
func TestSyncLazyConcurrent(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if err := s.Table("t").ApplyLazy(store.Op{Key: []byte{byte(w), byte(i)}, Val: []byte("v")}); err != nil {
					t.Error(err)
					return
				}
				n := s.lazyN.Load()
				if err := s.SyncLazy(); err != nil {
					t.Error(err)
					return
				}
				if got := s.synced.Load(); got < n {
					t.Errorf("SyncLazy returned with %d writes synced, before the caller's %d", got, n)
					return
				}
			}
		}()
	}
	wg.Wait()
}
