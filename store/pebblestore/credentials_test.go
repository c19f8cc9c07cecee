package pebblestore

import (
	"testing"

	"github.com/vireo-im/vireo/store"
)

// TestAddCredentials: keys for the missing hashes are added onto the keys a login proved,
// and not when the password changed meanwhile (the old password must not come back).
func TestAddCredentials(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := func(b byte) store.Credentials {
		return store.Credentials{Salt: []byte{b}, Iter: 4096, StoredKey: []byte{b, 1}, ServerKey: []byte{b, 2}}
	}
	imported := [3]store.Credentials{store.SHA1: k(1)}
	if err := s.Accounts().Create(store.Account{User: "a@x", Creds: imported}); err != nil {
		t.Fatal(err)
	}
	add := [3]store.Credentials{store.SHA1: k(9), store.SHA256: k(2), store.SHA512: k(3)}
	if err := s.Accounts().AddCredentials("a@x", imported, add); err != nil {
		t.Fatal(err)
	}
	acc, _ := s.Accounts().Get("a@x")
	if !acc.Creds[store.SHA1].Equal(k(1)) || !acc.Creds[store.SHA256].Equal(k(2)) || !acc.Creds[store.SHA512].Equal(k(3)) {
		t.Fatalf("after adding: %+v", acc.Creds)
	}
	changed := [3]store.Credentials{store.SHA256: k(5)}
	if err := s.Accounts().SetCredentials("a@x", changed); err != nil {
		t.Fatal(err)
	}
	if err := s.Accounts().AddCredentials("a@x", imported, add); err != store.ErrChanged {
		t.Fatalf("adding onto keys that changed: %v, want ErrChanged", err)
	}
	if acc, _ := s.Accounts().Get("a@x"); !acc.Creds[store.SHA256].Equal(k(5)) || !acc.Creds[store.SHA1].IsZero() {
		t.Fatalf("the changed password did not stay: %+v", acc.Creds)
	}
}
