package fast

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
)

func newTokens(t *testing.T) (*Tokens, store.Store) {
	t.Helper()
	st, err := pebblestore.Open(filepath.Join(t.TempDir(), "db"), pebblestore.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k, err := New(st.Table("fast"), bytes.Repeat([]byte{7}, 32), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return k, st
}

const (
	user  = "alice@example.org"
	agent = "d4565fa7-4d72-4749-b3d3-740edbf87770"
	mech  = "HT-SHA-256-NONE"
)

var fp = Fingerprint(store.Credentials{StoredKey: []byte("keys of the current password")})

func TestLifecycle(t *testing.T) {
	k, _ := newTokens(t)
	now := time.Unix(1_800_000_000, 0)
	tok1, exp, err := k.Issue(user, agent, mech, fp, now)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(time.Hour)) || len(tok1) != 43 {
		t.Fatalf("token %q expiry %v", tok1, exp)
	}
	rec, cand, err := k.lookup(user, agent, mech, fp, now)
	if err != nil || string(cand[0]) != tok1 || cand[1] != nil {
		t.Fatalf("lookup after issue: %q %q %v", cand[0], cand[1], err)
	}
	// Rotation: the new token is current, the old one stays usable until the new one is used.
	tok2, _, err := k.Issue(user, agent, mech, fp, now.Add(time.Minute))
	if err != nil || tok2 == tok1 {
		t.Fatalf("rotate: %q %v", tok2, err)
	}
	rec, cand, _ = k.lookup(user, agent, mech, fp, now.Add(time.Minute))
	if string(cand[0]) != tok2 || string(cand[1]) != tok1 {
		t.Fatalf("after rotation: %q %q", cand[0], cand[1])
	}
	if rot, err := k.used(user, agent, rec, 0, 0, now.Add(2*time.Minute)); err != nil || rot {
		t.Fatalf("a young current token needs no rotation: %v %v", rot, err)
	}
	_, cand, _ = k.lookup(user, agent, mech, fp, now.Add(2*time.Minute))
	if string(cand[0]) != tok2 || cand[1] != nil {
		t.Fatalf("using the current token retires the old one: %q %q", cand[0], cand[1])
	}
	rec, _, _ = k.lookup(user, agent, mech, fp, now.Add(2*time.Minute))
	if rot, _ := k.used(user, agent, rec, 0, 0, now.Add(40*time.Minute)); !rot {
		t.Fatal("a token past half its life should be rotated")
	}
	if err := k.Invalidate(user, agent); err != nil {
		t.Fatal(err)
	}
	if _, cand, _ = k.lookup(user, agent, mech, fp, now); cand[0] != nil {
		t.Fatal("invalidated token still usable")
	}
}

// TestRotationLost: a rotation whose <success/> the client never got leaves it with the
// replaced token; each login with that one rotates again, and the token it holds stays
// valid through any number of lost answers (XEP-0484: a token is not invalidated until
// its successor is used).
func TestRotationLost(t *testing.T) {
	k, _ := newTokens(t)
	now := time.Unix(1_800_000_000, 0)
	held, _, err := k.Issue(user, agent, mech, fp, now)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if _, _, err := k.Issue(user, agent, mech, fp, now.Add(40*time.Minute)); err != nil { // lost
		t.Fatal(err)
	}
	for i := range 4 { // the last answer gets through
		at := now.Add(time.Duration(41+i) * time.Minute)
		rec, cand, _ := k.lookup(user, agent, mech, fp, at)
		which := -1
		for j, c := range cand {
			if string(c) == held {
				which = j
			}
		}
		if which < 0 {
			t.Fatalf("login %d: the token the client holds is gone", i)
		}
		rot, err := k.used(user, agent, rec, which, uint32(i+1), at)
		if err != nil || !rot {
			t.Fatalf("login %d with the replaced token: rotate %v, %v", i, rot, err)
		}
		if got, _, err = k.Issue(user, agent, mech, fp, at); err != nil {
			t.Fatal(err)
		}
	}
	// The client has the last one: using it retires the old one.
	rec, cand, _ := k.lookup(user, agent, mech, fp, now.Add(50*time.Minute))
	if string(cand[0]) != got || string(cand[1]) != held {
		t.Fatalf("after the last rotation: %q %q", cand[0], cand[1])
	}
	k.used(user, agent, rec, 0, 0, now.Add(51*time.Minute))
	if _, cand, _ := k.lookup(user, agent, mech, fp, now.Add(51*time.Minute)); string(cand[0]) != got || cand[1] != nil {
		t.Fatalf("using the new token retires the old: %q %q", cand[0], cand[1])
	}
}

func TestNotUsable(t *testing.T) {
	k, st := newTokens(t)
	now := time.Unix(1_800_000_000, 0)
	if _, _, err := k.Issue(user, agent, mech, fp, now); err != nil {
		t.Fatal(err)
	}
	other := Fingerprint(store.Credentials{StoredKey: []byte("keys of a new password")})
	for _, tc := range []struct {
		name        string
		user, agent string
		mech        string
		fp          [8]byte
		at          time.Time
	}{
		{"expired", user, agent, mech, fp, now.Add(time.Hour)},
		{"password changed", user, agent, mech, other, now},
		{"other mechanism", user, agent, "HT-SHA-256-EXPR", fp, now},
		{"other client", user, "another-agent", mech, fp, now},
		{"other account", "bob@example.org", agent, mech, fp, now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cand, err := k.lookup(tc.user, tc.agent, tc.mech, tc.fp, tc.at)
			if err != nil || cand[0] != nil || cand[1] != nil {
				t.Fatalf("usable: %q %q %v", cand[0], cand[1], err)
			}
		})
	}
	// Removing the account removes its tokens with every other per-user row.
	if err := st.Accounts().Create(store.Account{User: user}); err != nil {
		t.Fatal(err)
	}
	if err := st.Accounts().Delete(user); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Table("fast").Get(rowKey(user, agent)); err != store.ErrNotFound {
		t.Fatalf("token row after account removal: %v", err)
	}
}

func TestCount(t *testing.T) {
	k, _ := newTokens(t)
	now := time.Unix(1_800_000_000, 0)
	k.Issue(user, agent, mech, fp, now)
	for _, tc := range []struct {
		count uint32
		ok    bool
	}{{0, true}, {5, true}, {5, false}, {4, false}, {0, false}, {6, true}} {
		rec, _, _ := k.lookup(user, agent, mech, fp, now)
		if got := rec.countOK(0, tc.count); got != tc.ok {
			t.Fatalf("count %d: ok %v, want %v", tc.count, got, tc.ok)
		}
		if got := rec.countOK(0, tc.count); got {
			if _, err := k.used(user, agent, rec, 0, tc.count, now); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := (&Record{cur: slot{mech: mech, expiry: 5}}).encode()
	for i := 0; i < len(good); i++ {
		var r Record
		if err := r.decode(good[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
	var r Record
	if err := r.decode(good); err != nil || r.cur.mech != mech {
		t.Fatalf("round trip: %v %+v", err, r)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add((&Record{cur: slot{mech: mech, expiry: 5}}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if r.decode(b) == nil && !bytes.Equal(r.encode(), b) {
			t.Fatalf("decode/encode differ")
		}
	})
}

func TestLoadKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "fast.key")
	a, err := LoadKey(p)
	if err != nil || len(a) != 32 {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	b, err := LoadKey(p)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatal("key changed between loads")
	}
	os.WriteFile(p, []byte("short"), 0o600)
	if _, err := LoadKey(p); err == nil {
		t.Fatal("short key accepted")
	}
}

// TestAgentsBounded: tokens for a new client id first clear the account's rows that hold
// no usable token (expired, or from before a password change), and the account keeps
// tokens for at most MaxAgents ids: the one that expires first gives way.
func TestAgentsBounded(t *testing.T) {
	k, st := newTokens(t)
	now := time.Unix(1_800_000_000, 0)
	rows := func() int {
		n := 0
		st.Table("fast").Scan(rowKey(user, ""), func(_, _ []byte) bool { n++; return true })
		return n
	}
	old := Fingerprint(store.Credentials{StoredKey: []byte("keys of the old password")})
	for i := range 5 {
		if _, _, err := k.Issue(user, fmt.Sprint("stale-", i), mech, old, now); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, _, err := k.Issue(user, fmt.Sprint("expired-", i), mech, fp, now.Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range MaxAgents + 3 {
		if _, _, err := k.Issue(user, fmt.Sprint("app-", i), mech, fp, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if n := rows(); n != MaxAgents {
		t.Fatalf("%d rows, want %d", n, MaxAgents)
	}
	for i, want := range map[int]bool{0: false, 2: false, 3: true, MaxAgents + 2: true} {
		if _, cand, _ := k.lookup(user, fmt.Sprint("app-", i), mech, fp, now); (cand[0] != nil) != want {
			t.Errorf("app-%d usable: %v, want %v", i, cand[0] != nil, want)
		}
	}
	// Another token for an id it has is no new id: nothing is evicted.
	if _, _, err := k.Issue(user, fmt.Sprint("app-", MaxAgents+2), mech, fp, now.Add(time.Hour/2)); err != nil || rows() != MaxAgents {
		t.Fatalf("rotation: %v, %d rows", err, rows())
	}
}

// holds is a Login check for a client that holds tok, after pause.
func holds(tok string, pause time.Duration) func([2][]byte) (int, error) {
	return func(cand [2][]byte) (int, error) {
		time.Sleep(pause)
		for i, c := range cand {
			if string(c) == tok {
				return i, nil
			}
		}
		return -1, errors.New("not-authorized")
	}
}

// TestLoginConcurrent: logins racing with one token and count (a replay of a captured
// login beside the real one) pass once; an Issue during a login is not undone by the
// login's write.
func TestLoginConcurrent(t *testing.T) {
	k, _ := newTokens(t)
	now := time.Unix(1_800_000_000, 0)
	tok, _, err := k.Issue(user, agent, mech, fp, now)
	if err != nil {
		t.Fatal(err)
	}
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := k.Login(user, agent, mech, fp, 5, now, holds(tok, 2*time.Millisecond))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrCountUsed):
				replayed.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != 7 {
		t.Fatalf("8 logins with count 5: %d passed, %d refused as replays", ok.Load(), replayed.Load())
	}

	// A login whose check is slow, and an Issue that lands meanwhile: the new token stays.
	done := make(chan error)
	go func() {
		_, err := k.Login(user, agent, mech, fp, 6, now, holds(tok, 20*time.Millisecond))
		done <- err
	}()
	time.Sleep(5 * time.Millisecond)
	tok2, _, err := k.Issue(user, agent, mech, fp, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := k.Login(user, agent, mech, fp, 0, now, holds(tok2, 0)); err != nil {
		t.Fatalf("the token issued during a login: %v", err)
	}
	if _, err := k.Login(user, agent, mech, fp, 0, now, holds("never issued", 0)); err == nil {
		t.Fatal("a login with a token never issued passed")
	}
}

// TestForgetDuringLogin: a login that began before the account's tokens were forgotten
// (a password the site's program keeps, changed meanwhile) gets no token: it proved the
// old password, and the fingerprint, the same for every such account, would not end it.
// A login that began after gets one.
func TestForgetDuringLogin(t *testing.T) {
	k, _ := newTokens(t)
	var fp [8]byte // an account without keys: one fingerprint for every password
	began := time.Now()
	time.Sleep(time.Millisecond)
	if err := k.Forget("site@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.IssueSince("site@example.org", "phone", "HT-SHA-256-NONE", fp, time.Now(), began); !errors.Is(err, ErrForgotten) {
		t.Fatalf("a token for a login that began before the forget: %v", err)
	}
	if _, _, err := k.IssueSince("site@example.org", "phone", "HT-SHA-256-NONE", fp, time.Now(), time.Now()); err != nil {
		t.Fatalf("a login after the forget: %v", err)
	}
	if _, _, err := k.IssueSince("other@example.org", "phone", "HT-SHA-256-NONE", fp, time.Now(), began); err != nil {
		t.Fatalf("another account: %v", err)
	}
}
