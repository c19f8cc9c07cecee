package pebblestore

import (
	"testing"
	"time"

	"github.com/vireo-im/vireo/store"
)

// TestRosterVersionAfterRecreate: an account removed and made again under its name gets
// roster versions its predecessor never had: a client's cached version of the old roster
// must not pass for the new one (RFC 6121 §2.6.3 would answer "up to date").
func TestRosterVersionAfterRecreate(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const user = "alice@example.org"
	fill := func(contacts ...string) uint64 {
		t.Helper()
		var ver uint64
		for _, c := range contacts {
			if ver, err = s.Rosters().Put(user, store.RosterItem{JID: c}); err != nil {
				t.Fatal(err)
			}
		}
		return ver
	}
	if err := s.Accounts().Create(store.Account{User: user, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	old := fill("a@x.example", "b@x.example")
	if err := s.Accounts().Delete(user); err != nil {
		t.Fatal(err)
	}
	if err := s.RemovalDone(user); err != nil { // the removal's cleanup, which frees the name
		t.Fatal(err)
	}
	if err := s.Accounts().Create(store.Account{User: user, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if now := fill("c@x.example", "d@x.example"); now <= old {
		t.Fatalf("the new account's roster is at version %d, the old one's was %d", now, old)
	}
}
