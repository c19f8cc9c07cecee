// Package storetest is the conformance suite every store.Store implementation must pass.
// It owns no implementation; it only drives the API and checks the results.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/vireo-im/vireo/store"
)

// Run runs the suite; open returns a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Accounts", func(t *testing.T) { accounts(t, open(t)) })
	t.Run("Rosters", func(t *testing.T) { rosters(t, open(t)) })
	t.Run("Offline", func(t *testing.T) { offline(t, open(t)) })
	t.Run("Tables", func(t *testing.T) { tables(t, open(t)) })
	t.Run("TableRanges", func(t *testing.T) { tableRanges(t, open(t)) })
	t.Run("DeleteUserData", func(t *testing.T) { deleteUser(t, open(t)) })
	t.Run("RandomRosterOps", func(t *testing.T) { randomRoster(t, open(t)) })
	t.Run("RosterLimit", func(t *testing.T) { rosterLimit(t, open(t)) })
	t.Run("OfflineQuota", func(t *testing.T) { offlineQuota(t, open(t)) })
}

func creds(b byte) [3]store.Credentials {
	var c [3]store.Credentials
	for i := range c {
		c[i] = store.Credentials{Salt: []byte{b, 1}, Iter: 4096, StoredKey: []byte{b, 2}, ServerKey: []byte{b, 3}}
	}
	return c
}

func accounts(t *testing.T, s store.Store) {
	a := s.Accounts()
	if _, err := a.Get("x@y"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get missing = %v", err)
	}
	for _, u := range []string{"b@y", "a@y", "c@z"} {
		if err := a.Create(store.Account{User: u, Creds: creds(u[0]), Created: time.Unix(1, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Create(store.Account{User: "a@y"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate Create = %v", err)
	}
	got, err := a.Get("a@y")
	if err != nil || !bytes.Equal(got.Creds[store.SHA256].StoredKey, []byte{'a', 2}) || got.Creds[1].Iter != 4096 {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if err := a.SetCredentials("a@y", creds('z')); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Get("a@y"); got.Creds[0].Salt[0] != 'z' {
		t.Fatal("SetCredentials not applied")
	}
	if err := a.SetCredentials("nobody@y", creds('z')); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetCredentials missing = %v", err)
	}
	if err := a.SetDisabled("a@y", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Get("a@y"); !got.Disabled || got.Creds[0].Salt[0] != 'z' {
		t.Fatalf("SetDisabled(true) = %+v", got)
	}
	if err := a.SetDisabled("a@y", false); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Get("a@y"); got.Disabled {
		t.Fatal("SetDisabled(false) not applied")
	}
	if err := a.SetDisabled("nobody@y", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetDisabled missing = %v", err)
	}
	var list []string
	a.List(func(u string) bool { list = append(list, u); return true })
	if fmt.Sprint(list) != "[a@y b@y c@z]" {
		t.Fatalf("List = %v", list)
	}
	if n, _ := a.Count(); n != 3 {
		t.Fatalf("Count = %d", n)
	}
	if err := a.Delete("b@y"); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete("b@y"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Delete = %v", err)
	}
	if n, _ := a.Count(); n != 2 {
		t.Fatalf("Count after delete = %d", n)
	}

	// CreateWith: the account and the table's writes together, or neither.
	inv := s.Table("createwith")
	if err := inv.Set([]byte("token"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	spend := []store.Op{{Key: []byte("token"), Delete: true}, {Key: []byte("spent"), Val: []byte("d@y")}}
	if err := a.CreateWith(store.Account{User: "a@y"}, "createwith", spend...); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateWith of an existing account = %v", err)
	}
	if _, err := inv.Get([]byte("token")); err != nil {
		t.Fatalf("a refused CreateWith applied its ops: %v", err)
	}
	if err := a.CreateWith(store.Account{User: "d@y", Creds: creds('d')}, "createwith", spend...); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get("d@y"); err != nil {
		t.Fatalf("CreateWith made no account: %v", err)
	}
	if _, err := inv.Get([]byte("token")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateWith left the deleted row: %v", err)
	}
	if v, err := inv.Get([]byte("spent")); err != nil || string(v) != "d@y" {
		t.Fatalf("CreateWith's set = %q, %v", v, err)
	}
}

func rosters(t *testing.T, s store.Store) {
	r := s.Rosters()
	items, ver, err := r.Get("u@d")
	if err != nil || len(items) != 0 || ver != 0 {
		t.Fatalf("empty roster = %v %d %v", items, ver, err)
	}
	v1, err := r.Put("u@d", store.RosterItem{JID: "b@d", Name: "B", Sub: store.SubBoth, Groups: []string{"g1", "g2"}})
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := r.Put("u@d", store.RosterItem{JID: "a@d", Ask: true})
	if !(v2 > v1 && v1 > 0) {
		t.Fatalf("versions %d %d not increasing", v1, v2)
	}
	items, ver, _ = r.Get("u@d")
	if len(items) != 2 || ver != v2 || items[0].JID != "a@d" || !items[0].Ask || items[1].Sub != store.SubBoth || len(items[1].Groups) != 2 {
		t.Fatalf("Get = %+v ver %d", items, ver)
	}
	if it, err := r.Item("u@d", "b@d"); err != nil || it.Name != "B" {
		t.Fatalf("Item = %+v %v", it, err)
	}
	if _, err := r.Item("u@d", "zz@d"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Item missing = %v", err)
	}
	v3, err := r.Delete("u@d", "a@d")
	if err != nil || v3 <= v2 {
		t.Fatalf("Delete = %d %v", v3, err)
	}
	if _, err := r.Delete("u@d", "a@d"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete missing = %v", err)
	}
	// Another user's roster is separate, even with a name that is a prefix.
	r.Put("u@d2", store.RosterItem{JID: "x@d"})
	items, _, _ = r.Get("u@d")
	if len(items) != 1 {
		t.Fatalf("rosters leak across users: %+v", items)
	}
}

func offline(t *testing.T, s store.Store) {
	o := s.Offline()
	// No account, no queue: a message in flight when the account went is not kept for
	// the next account of that name; an import (NoAccount) writes before the account.
	if _, err := o.Push("u@d", []byte("<message/>"), time.Now(), store.Quota{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Push without an account = %v, want ErrNotFound", err)
	}
	if _, err := o.Push("v@d", []byte("<message/>"), time.Now(), store.Quota{NoAccount: true}); err != nil {
		t.Fatalf("Push with NoAccount: %v", err)
	}
	if err := s.Accounts().Create(store.Account{User: "u@d"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := o.Push("u@d", []byte(fmt.Sprintf("<message id='%d'/>", i)), time.Unix(int64(i), 0), store.Quota{Items: 3}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := o.Push("u@d", []byte("<message/>"), time.Now(), store.Quota{Items: 3}); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("Push over quota = %v", err)
	}
	if n, _ := o.Count("u@d"); n != 3 {
		t.Fatalf("Count = %d", n)
	}
	var ids []uint64
	var raws []string
	o.List("u@d", func(m store.OfflineMessage) bool {
		ids = append(ids, m.ID)
		raws = append(raws, string(m.Raw))
		return true
	})
	if len(ids) != 3 || raws[0] != "<message id='0'/>" || raws[2] != "<message id='2'/>" || !sort.SliceIsSorted(ids, func(a, b int) bool { return ids[a] < ids[b] }) {
		t.Fatalf("List = %v %v", ids, raws)
	}
	if err := o.Delete("u@d", ids[0], ids[1]); err != nil {
		t.Fatal(err)
	}
	if n, _ := o.Count("u@d"); n != 1 {
		t.Fatalf("Count after delete = %d", n)
	}
	id, err := o.Push("u@d", []byte("<message id='new'/>"), time.Now(), store.Quota{Items: 3})
	if err != nil || id <= ids[2] {
		t.Fatalf("ids must keep growing: %d after %d (%v)", id, ids[2], err)
	}
	o.DeleteAll("u@d")
	if n, _ := o.Count("u@d"); n != 0 {
		t.Fatalf("Count after DeleteAll = %d", n)
	}
}

func tables(t *testing.T, s store.Store) {
	a, b := s.Table("vcard"), s.Table("private")
	a.Set(store.UserKey("u@d"), []byte("card"))
	b.Set(store.UserKey("u@d"), []byte("priv"))
	if v, err := a.Get(store.UserKey("u@d")); err != nil || string(v) != "card" {
		t.Fatalf("Get = %q %v", v, err)
	}
	if v, _ := s.Table("private").Get(store.UserKey("u@d")); string(v) != "priv" {
		t.Fatalf("tables overlap: %q", v)
	}
	b.Set(store.UserKey("u@d", "ns1"), []byte("1"))
	b.Set(store.UserKey("u@d", "ns2"), []byte("2"))
	b.Set(store.UserKey("v@d", "ns1"), []byte("3"))
	n := 0
	b.Scan(store.UserKey("u@d"), func(k, v []byte) bool { n++; return true })
	if n != 3 {
		t.Fatalf("Scan saw %d", n)
	}
	b.DeletePrefix(store.UserKey("u@d"))
	if _, err := b.Get(store.UserKey("v@d", "ns1")); err != nil {
		t.Fatal("DeletePrefix removed another user's row")
	}
	if _, err := b.Get(store.UserKey("u@d", "ns1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("DeletePrefix kept a row")
	}
	if err := a.Delete([]byte("absent")); err != nil {
		t.Fatalf("Delete absent = %v", err)
	}
}

// tableRanges covers Table.Apply and Table.ScanRange: bounds, direction, early stop, and
// atomic batches of sets and deletes.
func tableRanges(t *testing.T, s store.Store) {
	tb, other := s.Table("archive"), s.Table("zzz")
	other.Set([]byte("a"), []byte("other table")) // must never show in tb's scans
	var ops []store.Op
	for _, k := range []string{"k1", "k3", "k5", "k7", "k9"} {
		ops = append(ops, store.Op{Key: []byte(k), Val: []byte("v" + k[1:])})
	}
	if err := tb.Apply(ops...); err != nil {
		t.Fatal(err)
	}
	if err := tb.Apply(); err != nil {
		t.Fatalf("empty Apply = %v", err)
	}
	// A lazy write is visible at once, like any other.
	if err := tb.ApplyLazy(store.Op{Key: []byte("k4"), Val: []byte("lazy")}); err != nil {
		t.Fatal(err)
	}
	if v, err := tb.Get([]byte("k4")); err != nil || string(v) != "lazy" {
		t.Fatalf("lazy write: %q %v", v, err)
	}
	tb.Apply(store.Op{Key: []byte("k4"), Delete: true})
	scan := func(lo, hi string, nilHi, reverse bool, limit int) string {
		t.Helper()
		var h []byte
		if !nilHi {
			h = []byte(hi)
		}
		var got []string
		err := tb.ScanRange([]byte(lo), h, reverse, func(k, v []byte) bool {
			got = append(got, string(k)+"="+string(v))
			return len(got) < limit
		})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got)
	}
	for _, tc := range []struct {
		lo, hi         string
		nilHi, reverse bool
		limit          int
		want           string
	}{
		{"k3", "k7", false, false, 99, "[k3=v3 k5=v5]"},
		{"k3", "k7", false, true, 99, "[k5=v5 k3=v3]"},
		{"k2", "k8", false, false, 1, "[k3=v3]"},
		{"k2", "k8", false, true, 1, "[k7=v7]"},
		{"", "", true, false, 99, "[k1=v1 k3=v3 k5=v5 k7=v7 k9=v9]"},
		{"k4", "", true, true, 2, "[k9=v9 k7=v7]"},
		{"k5", "k5", false, false, 99, "[]"},
		{"k7", "k3", false, true, 99, "[]"},
		{"k91", "", true, false, 99, "[]"},
	} {
		if got := scan(tc.lo, tc.hi, tc.nilHi, tc.reverse, tc.limit); got != tc.want {
			t.Errorf("ScanRange(%q, %q, nil=%v, reverse=%v, limit %d) = %s, want %s",
				tc.lo, tc.hi, tc.nilHi, tc.reverse, tc.limit, got, tc.want)
		}
	}
	// Sets and deletes in one batch, applied in order.
	err := tb.Apply(store.Op{Key: []byte("k1"), Delete: true}, store.Op{Key: []byte("k2"), Val: []byte("x")},
		store.Op{Key: []byte("k2"), Val: []byte("v2")}, store.Op{Key: []byte("k9"), Delete: true},
		store.Op{Key: []byte("absent"), Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := scan("", "", true, false, 99); got != "[k2=v2 k3=v3 k5=v5 k7=v7]" {
		t.Fatalf("after Apply: %s", got)
	}
	if v, err := other.Get([]byte("a")); err != nil || string(v) != "other table" {
		t.Fatalf("other table: %q %v", v, err)
	}
}

func deleteUser(t *testing.T, s store.Store) {
	s.Accounts().Create(store.Account{User: "u@d"})
	s.Accounts().Create(store.Account{User: "u@dd"})
	s.Rosters().Put("u@d", store.RosterItem{JID: "c@d"})
	s.Offline().Push("u@d", []byte("<m/>"), time.Now(), store.Quota{Items: 10})
	s.Table("vcard").Set(store.UserKey("u@d"), []byte("x"))
	s.Table("vcard").Set(store.UserKey("u@dd"), []byte("y"))
	if err := s.Accounts().Delete("u@d"); err != nil {
		t.Fatal(err)
	}
	if items, _, _ := s.Rosters().Get("u@d"); len(items) != 0 {
		t.Fatal("roster survived account deletion")
	}
	if n, _ := s.Offline().Count("u@d"); n != 0 {
		t.Fatal("offline survived account deletion")
	}
	if _, err := s.Table("vcard").Get(store.UserKey("u@d")); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("table row survived account deletion")
	}
	if _, err := s.Table("vcard").Get(store.UserKey("u@dd")); err != nil {
		t.Fatal("deleting u@d removed u@dd's data")
	}
}

// randomRoster applies random puts and deletes and checks the store against a map.
func randomRoster(t *testing.T, s store.Store) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	model := map[string]store.RosterItem{}
	var last uint64
	for i := 0; i < 300; i++ {
		c := fmt.Sprintf("c%d@d", rng.IntN(20))
		var ver uint64
		var err error
		if rng.IntN(3) == 0 {
			ver, err = s.Rosters().Delete("u@d", c)
			if _, ok := model[c]; ok != (err == nil) {
				t.Fatalf("seed %d op %d: Delete(%s) = %v, model has %v", seed, i, c, err, ok)
			}
			delete(model, c)
		} else {
			it := store.RosterItem{JID: c, Sub: store.Subscription(rng.IntN(4)), Name: fmt.Sprint(i)}
			ver, err = s.Rosters().Put("u@d", it)
			model[c] = it
		}
		if err == nil {
			if ver <= last {
				t.Fatalf("seed %d: version went from %d to %d", seed, last, ver)
			}
			last = ver
		}
	}
	items, _, _ := s.Rosters().Get("u@d")
	if len(items) != len(model) {
		t.Fatalf("seed %d: %d items, model %d", seed, len(items), len(model))
	}
	for _, it := range items {
		if m := model[it.JID]; m.Name != it.Name || m.Sub != it.Sub {
			t.Fatalf("seed %d: %+v != model %+v", seed, it, m)
		}
	}
}

// rosterLimit: a new item beyond Limit is refused with ErrQuota, replacing an item in a
// full roster works, and a removal makes room again. The limit is per roster.
func rosterLimit(t *testing.T, s store.Store) {
	r := s.Rosters()
	if r.Limit("u@d") != store.DefaultRosterItems {
		t.Fatalf("default Limit = %d, want %d", r.Limit("u@d"), store.DefaultRosterItems)
	}
	r.SetLimits(3, nil)
	t.Cleanup(func() { r.SetLimits(0, nil) })
	for _, tc := range []struct {
		op, contact string
		want        error
	}{
		{"put", "a@d", nil},
		{"put", "b@d", nil},
		{"put", "c@d", nil},
		{"put", "d@d", store.ErrQuota},
		{"put", "b@d", nil}, // replacement
		{"del", "a@d", nil},
		{"put", "d@d", nil},
		{"put", "e@d", store.ErrQuota},
	} {
		var err error
		if tc.op == "put" {
			_, err = r.Put("u@d", store.RosterItem{JID: tc.contact, Name: "n"})
		} else {
			_, err = r.Delete("u@d", tc.contact)
		}
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s %s = %v, want %v", tc.op, tc.contact, err, tc.want)
		}
	}
	if items, _, _ := r.Get("u@d"); len(items) != 3 {
		t.Fatalf("%d items, want 3", len(items))
	}
	if _, err := r.Put("v@d", store.RosterItem{JID: "a@d"}); err != nil {
		t.Fatalf("another user's roster is full too: %v", err)
	}
	// A host's own limit: its users get it, the other hosts' keep the server's.
	r.SetLimits(3, map[string]int{"corp": 1, "big": 0})
	if r.Limit("w@corp") != 1 || r.Limit("u@d") != 3 || r.Limit("x@big") != store.DefaultRosterItems {
		t.Fatalf("limits: corp %d, d %d, big %d", r.Limit("w@corp"), r.Limit("u@d"), r.Limit("x@big"))
	}
	if _, err := r.Put("w@corp", store.RosterItem{JID: "a@d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Put("w@corp", store.RosterItem{JID: "b@d"}); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("a second item past corp's limit: %v", err)
	}
	r.SetLimits(0, nil)
	if r.Limit("u@d") != store.DefaultRosterItems || r.Limit("w@corp") != store.DefaultRosterItems {
		t.Fatalf("SetLimits(0, nil) left %d, %d", r.Limit("u@d"), r.Limit("w@corp"))
	}
}

// offlineQuota: Push checks the message count and the total bytes together; Delete and
// DeleteAll give the bytes back.
func offlineQuota(t *testing.T, s store.Store) {
	o := s.Offline()
	if err := s.Accounts().Create(store.Account{User: "u@d"}); err != nil {
		t.Fatal(err)
	}
	msg := func(n int) []byte { return bytes.Repeat([]byte("x"), n) }
	q := store.Quota{Items: 10, Bytes: 100}
	var ids []uint64
	for _, tc := range []struct {
		size      int
		want      error
		wantBytes int64
	}{
		{40, nil, 40},
		{40, nil, 80},
		{21, store.ErrQuota, 80}, // 101 > 100
		{20, nil, 100},           // exactly at the quota
		{1, store.ErrQuota, 100},
	} {
		id, err := o.Push("u@d", msg(tc.size), time.Unix(1, 0), q)
		if !errors.Is(err, tc.want) {
			t.Fatalf("Push %d bytes = %v, want %v", tc.size, err, tc.want)
		}
		if err == nil {
			ids = append(ids, id)
		}
		if b, _ := o.Bytes("u@d"); b != tc.wantBytes {
			t.Fatalf("after Push %d: Bytes = %d, want %d", tc.size, b, tc.wantBytes)
		}
	}
	if err := o.Delete("u@d", ids[0]); err != nil {
		t.Fatal(err)
	}
	if b, _ := o.Bytes("u@d"); b != 60 {
		t.Fatalf("Bytes after Delete = %d, want 60", b)
	}
	if _, err := o.Push("u@d", msg(40), time.Unix(1, 0), q); err != nil {
		t.Fatalf("Push after Delete = %v", err)
	}
	// Count and bytes both hold: one message over the count is refused however small.
	if _, err := o.Push("u@d", msg(1), time.Unix(1, 0), store.Quota{Items: 3, Bytes: 1000}); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("Push over the count = %v", err)
	}
	o.DeleteAll("u@d")
	if b, _ := o.Bytes("u@d"); b != 0 {
		t.Fatalf("Bytes after DeleteAll = %d", b)
	}
	if _, err := o.Push("u@d", msg(100), time.Unix(1, 0), q); err != nil {
		t.Fatalf("Push after DeleteAll = %v", err)
	}
	if b, _ := o.Bytes("v@d"); b != 0 {
		t.Fatalf("another user's Bytes = %d", b)
	}
}
