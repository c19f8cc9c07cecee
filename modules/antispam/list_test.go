package antispam_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/antispam"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// TestBlockedDomainsFile: accounts of a listed server, and of its subdomains, reach only
// local users who added them; others' messages and subscription requests vanish without
// an answer. A change to the file applies within a minute; a start with a file that
// cannot be read fails.
func TestBlockedDomainsFile(t *testing.T) {
	list := filepath.Join(t.TempDir(), "spam-domains.txt")
	if err := os.WriteFile(list, []byte("# known spam\nSpam.Example.\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC).UnixNano())
	e := routertest.New(t, []string{"bob"}, func(o *router.Options) {
		o.Now = func() time.Time { return time.Unix(0, clock.Load()) }
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*antispam.Config); ok {
				c.BlockedDomainsFile = list
			}
			return nil
		}
	})
	if _, err := e.Store.Rosters().Put("bob@example.org", store.RosterItem{JID: "friend@spam.example", Sub: store.SubBoth}); err != nil {
		t.Fatal(err)
	}
	bob := e.Bind("bob", "pc")
	bob.Send("<presence/>")
	submit := func(from, id, payload string) {
		j, _ := jid.Parse(from)
		raw := "<message from='" + from + "' to='bob@example.org/pc' id='" + id + "' type='chat'>" + payload + "</message>"
		if !e.R.SubmitFrom(j, []byte(raw)) {
			t.Fatal("submit refused")
		}
	}
	send := func(from, id string) { submit(from, id, "<body>hi</body>") }
	// mark sends a chat state (no body: never held back) after what from sent, and waits
	// for it: one sender's stanzas keep their order.
	mark := func(from, id string) {
		submit(from, id, "<active xmlns='http://jabber.org/protocol/chatstates'/>")
		bob.C.Wait(t, "id='"+id+"'")
	}
	send("bot@spam.example/x", "b1")
	send("bot@chat.spam.example/x", "b2")
	send("friend@spam.example/x", "f1")
	send("someone@other.example/x", "o1")
	j, _ := jid.Parse("fan@spam.example")
	e.R.SubmitFrom(j, []byte("<presence from='fan@spam.example' to='bob@example.org' type='subscribe'/>"))
	send("bot@spam.example/x", "b3")
	bob.C.Wait(t, "id='f1'")
	bob.C.Wait(t, "id='o1'")
	mark("bot@spam.example/x", "m1")
	mark("bot@chat.spam.example/x", "m2")
	mark("fan@spam.example", "m3")
	got := bob.C.All()
	for _, id := range []string{"b1", "b2", "b3"} {
		if strings.Contains(got, "id='"+id+"'") {
			t.Errorf("%s from a listed server arrived", id)
		}
	}
	if strings.Contains(got, "type='subscribe'") {
		t.Error("a listed server's subscription request arrived")
	}

	// other.example joins the list: it applies once a minute has passed.
	if err := os.WriteFile(list, []byte("spam.example\nother.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	os.Chtimes(list, later, later)
	send("someone@other.example/x", "o2")
	bob.C.Wait(t, "id='o2'")
	clock.Add(int64(61 * time.Second))
	send("someone@other.example/x", "o3")
	mark("someone@other.example/x", "m4")
	send("friend@spam.example/x", "f2")
	bob.C.Wait(t, "id='f2'")
	if strings.Contains(bob.C.All(), "id='o3'") {
		t.Error("the list's change did not apply after a minute")
	}
}

// TestBlockedDomainsFileMissing: a start with a list that cannot be read fails, naming it.
func TestBlockedDomainsFileMissing(t *testing.T) {
	err := provisionErr(t, func(c *antispam.Config) { c.BlockedDomainsFile = filepath.Join(t.TempDir(), "none.txt") })
	if err == nil || !strings.Contains(err.Error(), "blocked_domains_file") {
		t.Fatalf("start with a missing list: %v", err)
	}
}

// provisionErr starts a router with [modules.antispam] set by set and returns its error.
func provisionErr(t *testing.T, set func(*antispam.Config)) error {
	t.Helper()
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := router.New(router.Options{Domains: []string{"example.org"}, Store: st, Logger: zerolog.Nop(),
		ModuleConfig: func(id string, v any) error {
			if c, ok := v.(*antispam.Config); ok {
				set(c)
			}
			return nil
		}})
	if err == nil {
		r.Close()
	}
	return err
}
