package pebblestore

import (
	"testing"

	"github.com/vireo-im/vireo/store"
)

func TestSyncLazy(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SyncLazy(); err != nil || s.lazy.Load() {
		t.Fatalf("nothing lazy: %v", err)
	}
	if err := s.Table("t").ApplyLazy(store.Op{Key: []byte("k"), Val: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if !s.lazy.Load() {
		t.Fatal("a lazy write is not pending")
	}
	if err := s.SyncLazy(); err != nil || s.lazy.Load() {
		t.Fatalf("after SyncLazy: %v, pending %v", err, s.lazy.Load())
	}
}
