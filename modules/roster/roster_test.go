package roster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/roster"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
)

// TestOwnJIDItem: every roster item can be removed, including one for the user's own bare
// JID (older versions created it from a self-subscription and then refused to remove it
// with not-allowed, so its pending request came back at every login); the own JID may also
// be set like any contact. Full JIDs are still not roster items.
func TestOwnJIDItem(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	// The stuck state: an item with ask='subscribe' and a pending request from oneself.
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "alice@example.org", Ask: true})
	subreq := e.Store.Table("subreq")
	subreq.Set(store.UserKey("alice@example.org", "alice@example.org"),
		[]byte("<presence type='subscribe' from='alice@example.org' to='alice@example.org'/>"))
	a := e.Bind("alice", "pc")
	a.Send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
	a.C.Wait(t, "id='r0'", "jid='alice@example.org'")
	for _, tc := range []struct {
		name, item, want string
		inRoster         bool
	}{
		{"remove own stuck item", "<item jid='alice@example.org' subscription='remove'/>", "type='result'", false},
		{"remove own again", "<item jid='alice@example.org' subscription='remove'/>", "item-not-found", false},
		{"set own", "<item jid='alice@example.org' name='me'/>", "type='result'", true},
		{"remove own", "<item jid='alice@example.org' subscription='remove'/>", "type='result'", false},
		{"set full JID", "<item jid='bob@example.org/pc'/>", "not-allowed", false},
		{"remove unknown", "<item jid='bob@example.org' subscription='remove'/>", "item-not-found", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.C.Reset()
			a.Send("<iq type='set' id='s'><query xmlns='jabber:iq:roster'>" + tc.item + "</query></iq>")
			a.C.Wait(t, "id='s'", tc.want)
			_, err := e.Store.Rosters().Item("alice@example.org", "alice@example.org")
			if (err == nil) != tc.inRoster {
				t.Fatalf("own item in roster = %v, want %v", err == nil, tc.inRoster)
			}
		})
	}
	// Removing the stuck item cancelled the pending self-request: not shown at login.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := subreq.Get(store.UserKey("alice@example.org", "alice@example.org")); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pending self-subscription request kept")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a2 := e.Bind("alice", "phone")
	a2.Send("<presence/>")
	a2.C.Wait(t, "from='alice@example.org/phone'")
	if got := a2.C.All(); strings.Contains(got, "type='subscribe'") {
		t.Fatalf("self-subscription request shown at login: %s", got)
	}
}

// TestRosterLimit: a roster set that would add an item to a full roster ([modules.roster]
// max_items) gets not-allowed and stores nothing; existing items can still be edited and
// removed, and a removal makes room again.
func TestRosterLimit(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*roster.Config); ok {
				c.MaxItems = 2
			}
			return nil
		}
	})
	a := e.Bind("alice", "pc")
	for i, tc := range []struct {
		name, item, want string
		items            int
	}{
		{"first", "<item jid='a@example.org'/>", "type='result'", 1},
		{"second", "<item jid='b@example.org'/>", "type='result'", 2},
		{"third over the limit", "<item jid='c@example.org'/>", "not-allowed", 2},
		{"edit in a full roster", "<item jid='a@example.org' name='A'/>", "type='result'", 2},
		{"remove", "<item jid='b@example.org' subscription='remove'/>", "type='result'", 1},
		{"room again", "<item jid='c@example.org'/>", "type='result'", 2},
		{"over again", "<item jid='d@example.org'/>", "not-allowed", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("s%d", i)
			a.Send("<iq type='set' id='" + id + "'><query xmlns='jabber:iq:roster'>" + tc.item + "</query></iq>")
			a.C.Wait(t, "id='"+id+"'", tc.want)
			if items, _, _ := e.Store.Rosters().Get("alice@example.org"); len(items) != tc.items {
				t.Fatalf("%d items stored, want %d: %+v", len(items), tc.items, items)
			}
		})
	}
}

// TestRosterBytes: names and groups count against [modules.roster] max_bytes, so a roster
// of big items cannot grow past it by staying under the item limit; editing an item to
// something smaller is always allowed.
func TestRosterBytes(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*roster.Config); ok {
				c.MaxBytes = 8 << 10
			}
			return nil
		}
	})
	a := e.Bind("alice", "pc")
	a.Send("<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>")
	a.C.Wait(t, "id='g'")
	name := strings.Repeat("n", 1000)
	accepted := 0
	for i := 0; i < 20; i++ {
		a.Send(fmt.Sprintf("<iq type='set' id='s%d'><query xmlns='jabber:iq:roster'><item jid='c%d@example.org' name='%s'><group>%s</group></item></query></iq>", i, i, name, name))
		if got := a.C.Wait(t, fmt.Sprintf("id='s%d'", i)); strings.Contains(got, "type='result'") {
			accepted++
		} else if !strings.Contains(got, "not-allowed") {
			t.Fatalf("set %d: %s", i, got)
		}
	}
	items, _, _ := e.Store.Rosters().Get("alice@example.org")
	total := 0
	for _, it := range items {
		total += len(it.JID) + len(it.Name)
		for _, g := range it.Groups {
			total += len(g)
		}
	}
	t.Logf("%d of 20 items of ~2 KB accepted under an 8 KiB roster; %d bytes stored", accepted, total)
	if accepted == 0 || accepted == 20 || total > 8<<10 {
		t.Fatalf("accepted %d items, %d bytes: the byte quota did not hold", accepted, total)
	}
	// Shrinking an item is always allowed.
	a.Send("<iq type='set' id='shrink'><query xmlns='jabber:iq:roster'><item jid='c0@example.org' name='x'/></query></iq>")
	a.C.Wait(t, "id='shrink'", "type='result'")
}

// TestRemoveContactPresence: removing a contact who sees the user's presence tells the
// contact first that each available resource of the user went unavailable, then that the
// subscription is gone (RFC 6121 §3.2.2, via §2.5.2's unsubscribed).
func TestRemoveContactPresence(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth})
	e.Store.Rosters().Put("bob@example.org", store.RosterItem{JID: "alice@example.org", Sub: store.SubBoth})
	b := e.Bind("bob", "pc")
	b.Send("<presence/>")
	a := e.Bind("alice", "pc")
	a.Send("<presence/>")
	b.C.Wait(t, "<presence", "from='alice@example.org/pc'")
	a.Send("<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='bob@example.org' subscription='remove'/></query></iq>")
	a.C.Wait(t, "id='rm'", "type='result'")
	gone := b.C.Wait(t, "type='unavailable'", "from='alice@example.org/pc'")
	b.C.Wait(t, "type='unsubscribed'", "from='alice@example.org'")
	all := b.C.All()
	if strings.Index(all, gone) > strings.Index(all, "type='unsubscribed'") {
		t.Fatalf("unsubscribed came before the unavailable presence:\n%s", all)
	}
}

// TestHostSettings: a virtual host's [vhosts."<host>".modules.roster] table bounds its own
// users' rosters (items in the store, bytes here), other hosts' users keep the server's
// limits, and the shared groups file cannot differ per host.
func TestHostSettings(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	with := func(host string, set func(*roster.Config)) (func(), error) {
		return e.HostSettings("roster", host, func(v any) { set(v.(*roster.Config)) })
	}
	if _, err := with("example.org", func(c *roster.Config) { c.SharedGroupsFile = "/etc/groups.txt" }); err == nil || !strings.Contains(err.Error(), "server-wide") {
		t.Fatalf("a host's own groups file: %v", err)
	}
	apply, err := with("example.org", func(c *roster.Config) { c.MaxItems, c.MaxBytes = 1, 100 })
	if err != nil {
		t.Fatal(err)
	}
	apply()
	a := e.Bind("alice", "pc")
	set := func(id, item string) {
		a.Send("<iq type='set' id='" + id + "'><query xmlns='jabber:iq:roster'>" + item + "</query></iq>")
	}
	set("s1", "<item jid='a@example.org'/>")
	a.C.Wait(t, "id='s1'", "type='result'")
	set("s2", "<item jid='b@example.org'/>")
	a.C.Wait(t, "id='s2'", "not-allowed")
	set("s3", "<item jid='a@example.org' name='"+strings.Repeat("n", 100)+"'/>")
	a.C.Wait(t, "id='s3'", "not-allowed", "roster is too large")

	apply, err = with("other.example", func(c *roster.Config) { c.MaxItems, c.MaxBytes = 1, 100 })
	if err != nil {
		t.Fatal(err)
	}
	apply()
	set("s4", "<item jid='b@example.org' name='"+strings.Repeat("n", 100)+"'/>")
	a.C.Wait(t, "id='s4'", "type='result'")
}

// TestSharedGroupsChangePushed: when the shared groups change (a reload), an online user's
// interested sessions get a roster push for each contact the change adds, changes or
// takes away (RFC 6121 §2.1.6), not only the next roster get.
func TestSharedGroupsChangePushed(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	wrap := func(file string) {
		t.Helper()
		g, err := roster.ParseSharedGroups(strings.NewReader(file), []string{"example.org"})
		if err != nil {
			t.Fatal(err)
		}
		e.Store.(store.RosterWrapper).SetRosterWrapper(g.Wrap)
	}
	wrap("[Team]\nalice@example.org\nbob@example.org\n")
	a := e.Bind("alice", "pc")
	a.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>")
	a.C.Wait(t, "id='r'", "jid='bob@example.org'")
	a.C.Wait(t, "from='alice@example.org/pc'")
	a.C.Reset()
	wrap("[Team]\nalice@example.org\ncarol@example.org\n")
	e.R.RostersChanged()
	a.C.Wait(t, "type='set'", "jabber:iq:roster", "jid='carol@example.org'", "subscription='both'")
	a.C.Wait(t, "type='set'", "jabber:iq:roster", "jid='bob@example.org'", "subscription='remove'")
}
