package admin

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/last"
	"github.com/vireo-im/vireo/store"
)

// onlineBackend is testBackend with some accounts online, as a running server reports.
type onlineBackend struct {
	testBackend
	online []string
}

func (b onlineBackend) OnlineUsers() ([]string, error) { return b.online, nil }

// TestInactive: the accounts listed are those whose last session ended before the
// threshold, or that never logged in and were created before it; an account online now,
// one used recently, one created recently, and one with no record and no creation time are
// not; -delete removes exactly the listed ones; a threshold under 30 days is refused.
func TestInactive(t *testing.T) {
	tb := openBackend(t, t.TempDir())
	b := onlineBackend{testBackend: tb, online: []string{"online@example.org"}}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	lastT := tb.st.Table(last.Table)
	for _, a := range []struct {
		user    string
		created time.Time
		ended   time.Time // zero: no record
	}{
		{"gone@example.org", now.AddDate(-3, 0, 0), now.AddDate(-2, 0, 0)},
		{"recent@example.org", now.AddDate(-3, 0, 0), now.AddDate(0, 0, -10)},
		{"never@example.org", now.AddDate(-1, -6, 0), time.Time{}},
		{"new@example.org", now.AddDate(0, 0, -5), time.Time{}},
		{"imported@example.org", time.Time{}, time.Time{}},
		{"online@example.org", now.AddDate(-3, 0, 0), now.AddDate(-2, 0, 0)}, // away long, back now
	} {
		if err := tb.st.Accounts().Create(store.Account{User: a.user, Created: a.created}); err != nil {
			t.Fatal(err)
		}
		if !a.ended.IsZero() {
			if err := lastT.Set(store.UserKey(a.user), binary.BigEndian.AppendUint64(nil, uint64(a.ended.Unix()))); err != nil {
				t.Fatal(err)
			}
		}
	}
	lines, n, err := Inactive(b, "", 365, false, now)
	want := []string{
		"gone@example.org  last session ended 2024-12-06",
		"never@example.org  never logged in, created 2025-06-06",
		"(1 accounts with no record of a session and no creation time left alone)",
	}
	if err != nil || n != 2 || !slices.Equal(lines, want) {
		t.Fatalf("inactive 365: %d %v\n%s", n, err, strings.Join(lines, "\n"))
	}
	if _, _, err := Inactive(b, "", 7, false, now); err == nil {
		t.Fatal("a threshold of a week was accepted")
	}
	if _, _, err := Inactive(b, "elsewhere.net", 365, false, now); err == nil {
		t.Fatal("a domain not served was accepted")
	}
	if lines, n, err := Inactive(b, "", 365, true, now); err != nil || n != 2 {
		t.Fatalf("inactive -delete: %d %v %q", n, err, lines)
	}
	users, _ := Users(tb.st, "")
	if !slices.Equal(users, []string{"imported@example.org", "new@example.org", "online@example.org", "recent@example.org"}) {
		t.Fatalf("left after -delete: %q", users)
	}
	if _, ok, _ := last.Ended(lastT, "gone@example.org"); ok {
		t.Fatal("a deleted account's logout record stayed")
	}
}

// TestPartialKeyUsers: `vireoctl users -partial` lists the accounts that have some hashes'
// SCRAM keys but not all, of every domain or one; complete accounts and accounts with no
// keys are not listed, and one that gets its keys leaves the list.
func TestPartialKeyUsers(t *testing.T) {
	tb := openBackend(t, t.TempDir())
	k := store.Credentials{Salt: []byte("salt"), Iter: 4096, StoredKey: []byte("s"), ServerKey: []byte("k")}
	for _, a := range []struct {
		user  string
		creds [3]store.Credentials
	}{
		{"full@example.org", [3]store.Credentials{k, k, k}},
		{"sha1@example.org", [3]store.Credentials{store.SHA1: k}},
		{"sha256@other.org", [3]store.Credentials{store.SHA256: k}},
		{"none@example.org", [3]store.Credentials{}},
	} {
		if err := tb.st.Accounts().Create(store.Account{User: a.user, Creds: a.creds}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		domain string
		want   []string
	}{
		{"", []string{"sha1@example.org", "sha256@other.org"}},
		{"example.org", []string{"sha1@example.org"}},
		{"nowhere.org", nil},
	} {
		if got, err := PartialKeyUsers(tb.st, tc.domain); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("domain %q: %q %v, want %q", tc.domain, got, err, tc.want)
		}
	}
	if err := tb.st.Accounts().SetCredentials("sha1@example.org", [3]store.Credentials{k, k, k}); err != nil {
		t.Fatal(err)
	}
	if got, _ := PartialKeyUsers(tb.st, ""); !slices.Equal(got, []string{"sha256@other.org"}) {
		t.Fatalf("after completing sha1's keys: %q", got)
	}
}

// comingBack is a backend on which user comes online after the first look.
type comingBack struct {
	testBackend
	user  string
	calls *int
}

func (b comingBack) OnlineUsers() ([]string, error) {
	*b.calls++
	if *b.calls > 1 {
		return []string{b.user}, nil
	}
	return nil, nil
}

// TestInactiveDeleteRechecks: a user who comes back while -delete runs (its list was made
// at the start) keeps the account.
func TestInactiveDeleteRechecks(t *testing.T) {
	defer func(d time.Duration) { onlineRefresh = d }(onlineRefresh)
	onlineRefresh = 0
	tb := openBackend(t, t.TempDir())
	calls := 0
	b := comingBack{testBackend: tb, user: "back@example.org", calls: &calls}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, u := range []string{"back@example.org", "gone@example.org"} {
		if err := tb.st.Accounts().Create(store.Account{User: u, Created: now.AddDate(-2, 0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	lines, n, err := Inactive(b, "", 365, true, now)
	if err != nil || n != 1 {
		t.Fatalf("inactive -delete: %d %v %q", n, err, lines)
	}
	users, _ := Users(tb.st, "")
	if !slices.Equal(users, []string{"back@example.org"}) {
		t.Fatalf("left after -delete: %q (%q)", users, lines)
	}
}
