package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationSlixmppMucMam: room history from the archive with slixmpp (a client
// nobody here wrote). Its XEP-0045 plugin creates a room (logged from the start: status 170
// beside 110 and 201) and submits the owner form made persistent, members-only and
// logged, and makes bob a member; bob joins (status 170) and
// the owner and bob exchange five messages; bob's rejoin with the plugin's
// <history maxstanzas='2'/> brings the last two; the XEP-0313 plugin pages through the
// room's archive with RSM max 2 and gets all five in order, under the stanza-ids bob got
// live; carol, neither member nor occupant, may neither join nor read the archive.
func TestIntegrationSlixmppMucMam(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{})
	for _, u := range []string{"slix", "bob", "carol"} {
		srv.AddUser(t, u, "py secret")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	b, err := slixCmd(t, ctx, srv, "slixmpp_mucmam.py").CombinedOutput()
	s := string(b)
	if err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, s)
	}
	// Lines by their first word (slixmpp 1.8.3 prints a stray line for every message
	// during a join: that is not ours).
	lines := map[string][]string{}
	for _, l := range strings.Split(s, "\n") {
		w, rest, _ := strings.Cut(l, " ")
		lines[w] = append(lines[w], rest)
	}
	one := func(w, want string) {
		t.Helper()
		if got := lines[w]; len(got) != 1 || got[0] != want {
			t.Fatalf("%s: %q, want %q\n%s", w, got, want, s)
		}
	}
	one("CREATED", "110 170 201")
	one("FIELDS", "muc#roomconfig_enablelogging muc#roomconfig_membersonly muc#roomconfig_persistentroom")
	one("FEATURES", "muc_membersonly muc_persistent urn:xmpp:mam:2")
	one("JOINED", "110 170")
	one("HISTORY", "m4 m5")
	one("PAGES", "2/5 2/5 1/5")
	if got := lines["CAROL"]; strings.Join(got, "|") != "JOIN registration-required|MAM forbidden" {
		t.Fatalf("carol: %q\n%s", got, s)
	}
	live, archive := lines["LIVE"], lines["ARCHIVE"]
	want := []string{"Slix m1", "Bob m2", "Slix m3", "Bob m4", "Slix m5"}
	if len(live) != len(want) || len(archive) != len(want) {
		t.Fatalf("live %q, archive %q\n%s", live, archive, s)
	}
	seen := map[string]bool{}
	for i, w := range want {
		id, rest, _ := strings.Cut(live[i], " ")
		if id == "" || seen[id] || rest != w || archive[i] != live[i] {
			t.Fatalf("message %d: live %q, archive %q, want <stanza-id> %s\n%s", i, live[i], archive[i], w, s)
		}
		seen[id] = true
	}
}

// TestIntegrationSlixmppRoomList: slixmpp browses a room list longer than its page with
// its XEP-0059 iterator (testdata/slixmpp_rooms.py): three pages of 10, 10 and 3 public
// rooms, each with its first room, index and the count, every room once and in order.
func TestIntegrationSlixmppRoomList(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "slix", "py secret")
	srv.AddUser(t, "alice", "secret")
	a := srv.LoginPlain(t, "alice", "secret", "pc")
	for i := range 23 {
		r := fmt.Sprintf("room%02d@conference.localhost", i)
		a.Send("<presence to='" + r + "/Alice' id='j" + r + "'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
		a.Expect("id='j" + r + "'")
		a.Send("<iq type='set' to='" + r + "' id='c" + r + "'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
		a.Expect("id='c" + r + "'")
	}
	runSlix(t, srv, "slixmpp_rooms.py",
		"PAGE 10 first room00@conference.localhost index 0 count 23",
		"PAGE 10 first room10@conference.localhost index 10 count 23",
		"PAGE 3 first room20@conference.localhost index 20 count 23",
		"ROOMS 23 pages in order True distinct True", "DONE")
}
