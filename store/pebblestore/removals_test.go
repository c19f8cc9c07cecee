package pebblestore

import (
	"errors"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
)

// TestRemovalRecords: Accounts.Delete records a removal with the contacts whose
// subscription or request the account had, in the batch that removes it, and tells
// OnRemoval; a guest without contacts leaves no record; RemovalDone forgets one.
func TestRemovalRecords(t *testing.T) {
	s, err := Open("db", Options{Logger: zerolog.Nop(), FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var told []string
	s.OnRemoval(func(rm store.Removal) { told = append(told, rm.User) })
	for _, a := range []store.Account{{User: "a@d"}, {User: "g@d", Anonymous: true},
		{User: "h@d", Anonymous: true}, {User: "lone@d"}} {
		if err := s.Accounts().Create(a); err != nil {
			t.Fatal(err)
		}
	}
	for _, it := range []store.RosterItem{
		{JID: "both@d", Sub: store.SubBoth}, {JID: "to@d", Sub: store.SubTo},
		{JID: "from@d", Sub: store.SubFrom}, {JID: "asked@d", Ask: true},
		{JID: "asking@d", PendingIn: true}, {JID: "none@d"},
	} {
		if _, err := s.Rosters().Put("a@d", it); err != nil {
			t.Fatal(err)
		}
	}
	s.Rosters().Put("h@d", store.RosterItem{JID: "both@d", Sub: store.SubBoth})
	for _, u := range []string{"a@d", "g@d", "h@d", "lone@d"} {
		if err := s.Accounts().Delete(u); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"a@d", "h@d", "lone@d"}; !slices.Equal(told, want) {
		t.Fatalf("OnRemoval told %v, want %v", told, want)
	}
	got := map[string]store.Removal{}
	if err := s.PendingRemovals(func(rm store.Removal) bool { got[rm.User] = rm; return true }); err != nil {
		t.Fatal(err)
	}
	want := []store.RemovedContact{{JID: "asked@d", To: true}, {JID: "asking@d", From: true},
		{JID: "both@d", To: true, From: true}, {JID: "from@d", From: true}, {JID: "to@d", To: true}}
	if rm := got["a@d"]; rm.Guest || !slices.Equal(rm.Contacts, want) {
		t.Errorf("a@d: %+v, want contacts %+v", rm, want)
	}
	if rm, ok := got["h@d"]; !ok || !rm.Guest || len(rm.Contacts) != 1 {
		t.Errorf("h@d: %+v", rm)
	}
	if _, ok := got["g@d"]; ok || len(got) != 3 {
		t.Errorf("records: %+v", got)
	}
	if items, _, _ := s.Rosters().Get("a@d"); len(items) != 0 {
		t.Errorf("roster left: %+v", items)
	}
	for _, u := range []string{"a@d", "h@d", "lone@d"} {
		if err := s.RemovalDone(u); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	s.PendingRemovals(func(store.Removal) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d records after RemovalDone", n)
	}
}

// TestCreateWhileRemoving: a name whose removal record is still there cannot be taken
// again (the old account's cleanup would reach the new one) until RemovalDone.
func TestCreateWhileRemoving(t *testing.T) {
	s, err := Open("db", Options{Logger: zerolog.Nop(), FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := s.Accounts()
	if err := a.Create(store.Account{User: "a@d"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete("a@d"); err != nil {
		t.Fatal(err)
	}
	if err := a.Create(store.Account{User: "a@d"}); !errors.Is(err, store.ErrRemoving) || !errors.Is(err, store.ErrExists) {
		t.Fatalf("Create while the removal is pending = %v", err)
	}
	if err := s.RemovalDone("a@d"); err != nil {
		t.Fatal(err)
	}
	if err := a.Create(store.Account{User: "a@d"}); err != nil {
		t.Fatalf("Create after the removal: %v", err)
	}
}
