package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/storetest"
)

func TestConformanceDisk(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.TempDir(), Options{Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestConformanceMem(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open("db", Options{Logger: zerolog.Nop(), FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestCrashDurability acknowledges writes, then simulates a crash that loses everything
// not synced: every acknowledged write must survive.
func TestCrashDurability(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := Open("db", Options{Logger: zerolog.Nop(), FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Accounts().Create(store.Account{User: "u@d", Creds: [3]store.Credentials{{Salt: []byte{1}, Iter: 4096, StoredKey: []byte{2}, ServerKey: []byte{3}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rosters().Put("u@d", store.RosterItem{JID: "c@d", Sub: store.SubBoth}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := s.Offline().Push("u@d", []byte("<message><body>hi</body></message>"), time.Now(), store.Quota{Items: 100}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Table("vcard").Set(store.UserKey("u@d"), []byte("<vCard/>")); err != nil {
		t.Fatal(err)
	}
	if err := s.Table("mam").Apply(store.Op{Key: store.UserKey("u@d", "1"), Val: []byte("m")},
		store.Op{Key: store.UserKey("u@d", "2"), Val: []byte("i")}); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	s.Close()

	s2, err := Open("db", Options{Logger: zerolog.Nop(), FS: crashed})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Accounts().Get("u@d"); err != nil {
		t.Fatalf("account lost in crash: %v", err)
	}
	if it, err := s2.Rosters().Item("u@d", "c@d"); err != nil || it.Sub != store.SubBoth {
		t.Fatalf("roster lost in crash: %v", err)
	}
	if n, _ := s2.Offline().Count("u@d"); n != 5 {
		t.Fatalf("offline messages after crash: %d, want 5", n)
	}
	if v, err := s2.Table("vcard").Get(store.UserKey("u@d")); err != nil || string(v) != "<vCard/>" {
		t.Fatalf("table row lost in crash: %v", err)
	}
	n := 0
	s2.Table("mam").Scan(store.UserKey("u@d"), func(_, _ []byte) bool { n++; return true })
	if n != 2 {
		t.Fatalf("Apply batch after crash: %d rows, want 2", n)
	}
}

func BenchmarkOfflinePush(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Accounts().Create(store.Account{User: "u@d"}); err != nil {
		b.Fatal(err)
	}
	raw := []byte("<message to='u@d' from='a@d/r' type='chat'><body>hello there</body></message>")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := s.Offline().Push("u@d", raw, time.Now(), store.Quota{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRosterGet(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 100; i++ {
		s.Rosters().Put("u@d", store.RosterItem{JID: string(rune('a'+i%26)) + "x@d" + string(rune('0'+i/26)), Sub: store.SubBoth})
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.Rosters().Get("u@d"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOfflineMetaUpgrade: a queue summary written before the byte quota (16 bytes, no size)
// gets its size summed from the stored messages, so old queues count against the quota.
func TestOfflineMetaUpgrade(t *testing.T) {
	s, err := Open("db", Options{Logger: zerolog.Nop(), FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Accounts().Create(store.Account{User: "u@d"}); err != nil {
		t.Fatal(err)
	}
	o := s.Offline()
	for _, m := range []string{"12345", "1234567890"} {
		if _, err := o.Push("u@d", []byte(m), time.Unix(1, 0), store.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	// Rewrite the summary the way older versions stored it: next id, count.
	old := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 3), 2)
	if err := s.DB().Set(key(pOffMeta, "u@d"), old, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size int
		want error
	}{
		{6, store.ErrQuota}, // 15 + 6 > 20
		{5, nil},
		{1, store.ErrQuota},
	} {
		if _, err := o.Push("u@d", make([]byte, tc.size), time.Unix(1, 0), store.Quota{Bytes: 20}); !errors.Is(err, tc.want) {
			t.Fatalf("Push %d = %v, want %v", tc.size, err, tc.want)
		}
	}
	if n, _ := o.Count("u@d"); n != 3 {
		t.Fatalf("Count = %d, want 3", n)
	}
}

// TestBloomFilters: point lookups of keys a flushed table cannot hold are answered by its
// Bloom filter, without reading its blocks.
func TestBloomFilters(t *testing.T) {
	s, err := Open("db", Options{Logger: zerolog.Nop(), FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tb := s.Table("bloomtest")
	for i := range 1000 {
		if err := tb.Set([]byte(fmt.Sprintf("key%05d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := tb.Get([]byte(fmt.Sprintf("absent%05d", i))); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("absent key: %v", err)
		}
	}
	if m := s.db.Metrics(); m.Filter.Hits == 0 {
		t.Fatalf("no lookup was answered by a filter: %+v", m.Filter)
	}
}

// TestPartialKeyAccounts: the count of accounts that lack some hash's SCRAM keys follows
// every account write, survives a restart, and a database written before the count
// existed gets it from one scan when it is opened.
func TestPartialKeyAccounts(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", Options{Logger: zerolog.Nop(), FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	k := store.Credentials{Salt: []byte("salt"), Iter: 4096, StoredKey: []byte("s"), ServerKey: []byte("k")}
	sha1Only := [3]store.Credentials{store.SHA1: k}
	full := [3]store.Credentials{k, k, k}
	a := s.Accounts()
	step := func(what string, err error, want int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := s.PartialKeyAccounts(); n != want {
			t.Fatalf("after %s: %d partial, want %d", what, n, want)
		}
	}
	step("open", nil, 0)
	step("create full", a.Create(store.Account{User: "full@d", Creds: full}), 0)
	step("create no keys", a.Create(store.Account{User: "none@d"}), 0)
	step("create sha1", a.Create(store.Account{User: "mia@d", Creds: sha1Only}), 1)
	step("create sha1 again", a.Create(store.Account{User: "noah@d", Creds: sha1Only}), 2)
	if err := a.Create(store.Account{User: "mia@d", Creds: sha1Only}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	step("a failed create", nil, 2)
	step("complete mia", a.SetCredentials("mia@d", full), 1)
	step("complete mia again", a.SetCredentials("mia@d", full), 1)
	step("disable noah", a.SetDisabled("noah@d", true), 1)
	step("partial full", a.SetCredentials("full@d", sha1Only), 2)
	step("delete noah", a.Delete("noah@d"), 1)
	step("delete mia", a.Delete("mia@d"), 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open("db", Options{Logger: zerolog.Nop(), FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	step("reopen", nil, 1)
	// A database from before: an account row and no index.
	if err := s.DB().Set(key(pAccount, "old@d"), encodeAccount(store.Account{User: "old@d", Creds: sha1Only}), nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{partialIndexed, key(pPartial, "full@d")} {
		if err := s.DB().Delete(k, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open("db", Options{Logger: zerolog.Nop(), FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	step("reopen an old database", nil, 2)
	step("complete old", s.Accounts().SetCredentials("old@d", full), 1)
}

// TestClearRange: a prefix of a few keys and one of more than maxPointDeletes both go
// whole (point deletions for the first, a range deletion for the second), and the keys
// beside them stay.
func TestClearRange(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tb := s.Table("clear")
	for _, n := range []int{3, maxPointDeletes + 500} {
		prefix := fmt.Sprintf("p%d\x00", n)
		ops := make([]store.Op, 0, n)
		for i := range n {
			ops = append(ops, store.Op{Key: []byte(fmt.Sprintf("%s%05d", prefix, i)), Val: []byte("v")})
		}
		if err := tb.Apply(ops...); err != nil {
			t.Fatal(err)
		}
		if err := tb.Set([]byte(fmt.Sprintf("p%d\x01beside", n)), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := tb.DeletePrefix([]byte(prefix)); err != nil {
			t.Fatal(err)
		}
		left := 0
		tb.Scan([]byte(prefix), func(_, _ []byte) bool { left++; return true })
		if left != 0 {
			t.Errorf("%d keys: %d left after DeletePrefix", n, left)
		}
		if _, err := tb.Get([]byte(fmt.Sprintf("p%d\x01beside", n))); err != nil {
			t.Errorf("%d keys: the key beside the prefix: %v", n, err)
		}
	}
}

// TestGuestAccounts: guests' accounts are in Guests, not in List or Count, wherever they
// fall among the others, and leave the index with their removal.
func TestGuestAccounts(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := s.Accounts()
	for _, u := range []string{"a@x", "b@x", "c@x", "d@x", "e@x"} {
		if err := a.Create(store.Account{User: u, Anonymous: u == "a@x" || u == "c@x" || u == "e@x"}); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(f func(func(string) bool) error) string {
		var out []string
		if err := f(func(u string) bool { out = append(out, u); return true }); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, " ")
	}
	if got := collect(a.List); got != "b@x d@x" {
		t.Fatalf("List: %q", got)
	}
	if got := collect(a.Guests); got != "a@x c@x e@x" {
		t.Fatalf("Guests: %q", got)
	}
	if n, _ := a.Count(); n != 2 {
		t.Fatalf("Count: %d", n)
	}
	if err := a.Delete("c@x"); err != nil {
		t.Fatal(err)
	}
	if got := collect(a.Guests); got != "a@x e@x" {
		t.Fatalf("Guests after a removal: %q", got)
	}
}

// TestDeleteAccountTables: removing an account clears its rows in every table, one
// iterator moved from table to table (clearRanges), whether a table holds a few of them
// or more than maxPointDeletes, and leaves the rows of the accounts beside it.
func TestDeleteAccountTables(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows := map[string]int{"t1": 2, "t2": maxPointDeletes + 10, "t3": 1, "t4": 0}
	for _, u := range []string{"a@x", "b@x", "bb@x"} {
		if err := s.Accounts().Create(store.Account{User: u}); err != nil {
			t.Fatal(err)
		}
		for name, n := range rows {
			var ops []store.Op
			for i := range n {
				ops = append(ops, store.Op{Key: store.UserKey(u, fmt.Sprintf("%05d", i)), Val: []byte("v")})
			}
			if n > 0 {
				if err := s.Table(name).Apply(ops...); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := s.Accounts().Delete("b@x"); err != nil {
		t.Fatal(err)
	}
	count := func(name, u string) int {
		n := 0
		s.Table(name).Scan(store.UserKey(u), func(_, _ []byte) bool { n++; return true })
		return n
	}
	for name, n := range rows {
		if got := count(name, "b@x"); got != 0 {
			t.Errorf("%s: %d rows of the removed account left", name, got)
		}
		for _, u := range []string{"a@x", "bb@x"} {
			if got := count(name, u); got != n {
				t.Errorf("%s: %s has %d rows, want %d", name, u, got, n)
			}
		}
	}
}

// BenchmarkGuestAccount: what a guest login costs the store: its account made and removed,
// on a store with as many tables as the server's modules open.
func BenchmarkGuestAccount(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 24 {
		s.Table(fmt.Sprintf("table%02d", i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u := fmt.Sprintf("guest%08d@g", i)
		if err := s.Accounts().Create(store.Account{User: u, Anonymous: true}); err != nil {
			b.Fatal(err)
		}
		if err := s.Accounts().Delete(u); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeleteGuestTables: a guest's removal seeks only the tables it wrote to since the
// store opened (guestTables), and still leaves none of its rows, whichever way they were
// written; a guest from before the store opened again (a crash's leftover) has every table
// sought.
func TestDeleteGuestTables(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 70 { // more tables than bits: some share one
		s.Table(fmt.Sprintf("t%02d", i))
	}
	write := func(s *Store, u string) {
		s.Table("t01").Set(store.UserKey(u, "x"), []byte("v"))
		s.Table("t66").Apply(store.Op{Key: store.UserKey(u, "y"), Val: []byte("v")})
		s.Table("t33").ApplyLazy(store.Op{Key: store.UserKey(u, "z"), Val: []byte("v")}, store.Op{Key: store.UserKey(u, "zz"), Val: []byte("v")})
		if _, err := s.Rosters().Put(u, store.RosterItem{JID: "friend@y"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Offline().Push(u, []byte("<message/>"), time.Now(), store.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	rowsOf := func(s *Store, u string) int {
		n := 0
		for i := range 70 {
			s.Table(fmt.Sprintf("t%02d", i)).Scan(store.UserKey(u), func(_, _ []byte) bool { n++; return true })
		}
		items, _, _ := s.Rosters().Get(u)
		msgs, _ := s.Offline().Count(u)
		return n + len(items) + msgs
	}
	for _, u := range []string{"g1@x", "g2@x", "old@x", "user@x"} {
		if err := s.Accounts().Create(store.Account{User: u, Anonymous: u != "user@x"}); err != nil {
			t.Fatal(err)
		}
		write(s, u)
	}
	if b := s.guests.m["g2@x"]; b == nil || b.Load() == 0 {
		t.Fatal("the tables g2 wrote to are not on record")
	}
	if err := s.Accounts().Delete("g1@x"); err != nil {
		t.Fatal(err)
	}
	if n := rowsOf(s, "g1@x"); n != 0 {
		t.Errorf("%d rows of a removed guest left", n)
	}
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, u := range []string{"g2@x", "old@x"} {
		if err := s.Accounts().Delete(u); err != nil {
			t.Fatal(err)
		}
		if n := rowsOf(s, u); n != 0 {
			t.Errorf("%d rows left of %s, a guest from before the store opened", n, u)
		}
	}
	if n := rowsOf(s, "user@x"); n != 6 {
		t.Errorf("the user beside the guests has %d rows, want 6", n)
	}
}
