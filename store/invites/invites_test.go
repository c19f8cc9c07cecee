package invites_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// openTable is the invitations table of a new Pebble store, closed with the test.
func openTable(t *testing.T) store.Table {
	t.Helper()
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.Table(invites.Table)
}

// TestLifecycle: an invitation on real Pebble: its token checks until it expires or is
// redeemed, a reserved name stays reserved meanwhile, and listing drops what expired.
func TestLifecycle(t *testing.T) {
	tb := openTable(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

	open, err := invites.Create(tb, "example.org", "", "", 0, now)
	if err != nil || len(open.Token) != 24 || open.URI() != "xmpp:example.org?register;preauth="+open.Token {
		t.Fatalf("open invitation %+v: %v", open, err)
	}
	named, err := invites.Create(tb, "example.org", "Juliet", "romeo@example.org", time.Hour, now)
	if err != nil || named.Username != "juliet" || !strings.HasPrefix(named.URI(), "xmpp:juliet@example.org?register;preauth=") {
		t.Fatalf("named invitation %+v: %v", named, err)
	}
	if _, err := invites.Create(tb, "example.org", "juliet", "", 0, now); err == nil {
		t.Fatal("a second invitation reserved the same name")
	}
	if _, err := invites.Create(tb, "example.org", "bad name", "", 0, now); err == nil {
		t.Fatal("an invalid username was accepted")
	}
	if _, err := invites.Create(tb, "example.org", "", "", invites.MaxTTL+time.Hour, now); err == nil {
		t.Fatal("an invitation beyond MaxTTL was accepted")
	}

	got, err := invites.Check(tb, named.Token, now.Add(time.Minute))
	if err != nil || got.Username != "juliet" || got.Inviter != "romeo@example.org" {
		t.Fatalf("check: %+v %v", got, err)
	}
	for _, bad := range []string{"", "nope", strings.Repeat("x", 200)} {
		if _, err := invites.Check(tb, bad, now); !errors.Is(err, invites.ErrInvalid) {
			t.Fatalf("token %q: %v", bad, err)
		}
	}
	if tok, ok := invites.Reserved(tb, "juliet@example.org", now); !ok || tok != named.Token {
		t.Fatal("juliet is not reserved")
	}
	// Expired: neither the token nor the reservation holds.
	later := now.Add(2 * time.Hour)
	if _, err := invites.Check(tb, named.Token, later); !errors.Is(err, invites.ErrInvalid) {
		t.Fatalf("expired token: %v", err)
	}
	if _, ok := invites.Reserved(tb, "juliet@example.org", later); ok {
		t.Fatal("an expired invitation still reserves its name")
	}
	list, err := invites.List(tb, later)
	if err != nil || len(list) != 1 || list[0].Token != open.Token {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := invites.Check(tb, named.Token, now); !errors.Is(err, invites.ErrInvalid) {
		t.Fatal("listing kept the expired invitation")
	}
	// Redeemed: gone.
	if err := invites.Redeem(tb, open); err != nil {
		t.Fatal(err)
	}
	if _, err := invites.Check(tb, open.Token, now); !errors.Is(err, invites.ErrInvalid) {
		t.Fatal("a redeemed token still checks")
	}
	if err := invites.Revoke(tb, open.Token); !errors.Is(err, invites.ErrInvalid) {
		t.Fatalf("revoking a redeemed token: %v", err)
	}
}

// TestContactLimit: one account has at most MaxContact contact invitations out; a used or
// expired one makes room again.
func TestContactLimit(t *testing.T) {
	tb := openTable(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	romeo, _ := jid.Parse("romeo@example.org")
	var first invites.Invite
	for i := 0; i < invites.MaxContact; i++ {
		inv, err := invites.CreateContact(tb, romeo, false, time.Hour, now)
		if err != nil {
			t.Fatalf("invitation %d: %v", i, err)
		}
		if i == 0 {
			first = inv
		}
	}
	if first.URI() != "xmpp:romeo@example.org?roster;preauth="+first.Token || !first.Contact || first.Registers() {
		t.Fatalf("contact invitation %+v", first)
	}
	if first.PageURL("") != "" || first.PageURL("https://chat.example.org") != "https://chat.example.org/invite/"+first.Token {
		t.Fatalf("page URL %q", first.PageURL("https://chat.example.org"))
	}
	if _, err := invites.CreateContact(tb, romeo, false, time.Hour, now); !errors.Is(err, invites.ErrTooMany) {
		t.Fatalf("one too many: %v", err)
	}
	juliet, _ := jid.Parse("juliet@example.org")
	ibr, err := invites.CreateContact(tb, juliet, true, time.Hour, now)
	if err != nil {
		t.Fatalf("another account's: %v", err)
	}
	if ibr.URI() != "xmpp:juliet@example.org?roster;preauth="+ibr.Token+";ibr=y" || !ibr.Registers() {
		t.Fatalf("ibr=y invitation %+v: %s", ibr, ibr.URI())
	}
	if got, err := invites.Check(tb, ibr.Token, now); err != nil || !got.Register || !got.Contact {
		t.Fatalf("stored ibr=y invitation %+v %v", got, err)
	}
	if err := invites.Redeem(tb, first); err != nil {
		t.Fatal(err)
	}
	if _, err := invites.CreateContact(tb, romeo, false, time.Hour, now); err != nil {
		t.Fatalf("after one was used: %v", err)
	}
	if _, err := invites.CreateContact(tb, romeo, false, time.Hour, now.Add(2*time.Hour)); err != nil {
		t.Fatalf("after all expired: %v", err)
	}
}

// TestReset: a password reset link names an existing account, reserves nothing (the
// name is taken already), creates no account, lives a day by default, and has its own
// page address.
func TestReset(t *testing.T) {
	tb := openTable(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	juliet, _ := jid.Parse("juliet@example.org")
	inv, err := invites.CreateReset(tb, juliet, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Reset || inv.Registers() || inv.JID() != "juliet@example.org" || !inv.Expires.Equal(now.Add(invites.ResetTTL)) {
		t.Fatalf("reset link %+v", inv)
	}
	if got := inv.PageURL("https://chat.example.org"); got != "https://chat.example.org/reset/"+inv.Token {
		t.Fatalf("page %s", got)
	}
	if _, held := invites.Reserved(tb, "juliet@example.org", now); held {
		t.Fatal("a reset link reserved the name")
	}
	if got, err := invites.Check(tb, inv.Token, now); err != nil || !got.Reset {
		t.Fatalf("stored: %+v %v", got, err)
	}
	if _, err := invites.CreateReset(tb, jid.JID{}, 0, now); err == nil {
		t.Fatal("a reset link for no account")
	}
}

// TestForget: a removed account's contact invitations and reset links are revoked; the
// others' invitations, and an operator's invitation reserving the name, stay.
func TestForget(t *testing.T) {
	tb := openTable(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	juliet, _ := jid.Parse("juliet@example.org")
	romeo, _ := jid.Parse("romeo@example.org")
	must := func(inv invites.Invite, err error) invites.Invite {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	gone := []invites.Invite{must(invites.CreateContact(tb, juliet, false, 0, now)),
		must(invites.CreateContact(tb, juliet, true, 0, now)), must(invites.CreateReset(tb, juliet, 0, now))}
	kept := []invites.Invite{must(invites.CreateContact(tb, romeo, false, 0, now)), must(invites.CreateReset(tb, romeo, 0, now)),
		must(invites.Create(tb, "example.org", "juliet", "", 0, now))}
	if err := invites.Forget(tb, "juliet@example.org"); err != nil {
		t.Fatal(err)
	}
	for _, inv := range gone {
		if _, err := invites.Check(tb, inv.Token, now); err == nil {
			t.Errorf("%+v outlived its account", inv)
		}
	}
	for _, inv := range kept {
		if _, err := invites.Check(tb, inv.Token, now); err != nil {
			t.Errorf("%+v revoked: %v", inv, err)
		}
	}
	if list, err := invites.List(tb, now); err != nil || len(list) != len(kept) {
		t.Errorf("%d invitations listed (%v), want %d", len(list), err, len(kept))
	}
}
