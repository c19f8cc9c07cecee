package private_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/modules/private"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
)

// TestQuota: private XML storage has a per-user quota of fragments and bytes
// ([modules.private] max_items, max_bytes). A set past either gets resource-constraint and
// stores nothing; replacing a fragment counts its new size only; another user has room.
func TestQuota(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*private.Config); ok {
				c.MaxItems, c.MaxBytes = 3, 200
			}
			return nil
		}
	})
	frag := func(ns string, n int) string {
		return "<x xmlns='" + ns + "'>" + strings.Repeat("a", n) + "</x>"
	}
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "pc")
	for i, tc := range []struct {
		name, user, frag, want string
		items                  int // alice's stored fragments afterwards
	}{
		{"first", "alice", frag("urn:a", 10), "type='result'", 1},
		{"second", "alice", frag("urn:b", 10), "type='result'", 2},
		{"too many bytes", "alice", frag("urn:c", 150), "resource-constraint", 2},
		{"replace grows within", "alice", frag("urn:b", 100), "type='result'", 2},
		{"replace past the bytes", "alice", frag("urn:b", 160), "resource-constraint", 2},
		{"third", "alice", frag("urn:c", 1), "type='result'", 3},
		{"fourth past the items", "alice", frag("urn:d", 1), "resource-constraint", 3},
		{"replace in a full store", "alice", frag("urn:a", 1), "type='result'", 3},
		{"another user", "bob", frag("urn:d", 100), "type='result'", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := a
			if tc.user == "bob" {
				s = b
			}
			id := fmt.Sprintf("q%d", i)
			s.Send("<iq type='set' id='" + id + "'><query xmlns='jabber:iq:private'>" + tc.frag + "</query></iq>")
			s.C.Wait(t, "id='"+id+"'", tc.want)
			n := 0
			e.Store.Table("private").Scan(store.UserKey("alice@example.org"), func(_, _ []byte) bool { n++; return true })
			if n != tc.items {
				t.Fatalf("alice has %d fragments, want %d", n, tc.items)
			}
		})
	}
	// The refused replacement left the old fragment.
	a.Send("<iq type='get' id='g'><query xmlns='jabber:iq:private'><x xmlns='urn:b'/></query></iq>")
	if got := a.C.Wait(t, "id='g'"); !strings.Contains(got, strings.Repeat("a", 100)+"</x>") {
		t.Fatalf("fragment after a refused replacement: %s", got)
	}
	// XEP-0048 bookmarks whose <url/> part goes to a fragment count too (bob has one
	// fragment of 100 bytes), and a refused set changes nothing, not even the PEP node.
	urls := strings.Repeat("<url name='n' url='https://example.org/a'/>", 5)
	b.Send("<iq type='set' id='bm'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>" +
		"<conference jid='room@conference.example.org'/>" + urls + "</storage></query></iq>")
	b.C.Wait(t, "id='bm'", "resource-constraint")
	b.Send("<iq type='get' id='n'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>")
	if got := b.C.Wait(t, "id='n'"); strings.Contains(got, "room@conference") {
		t.Fatalf("a refused set reached the node: %s", got)
	}
}

// TestLegacyURLBookmarks: XEP-0048 web page bookmarks (<url/>), which XEP-0402 has no
// place for, survive beside the conferences the PEP node holds: a read gives both, the
// node only the conferences, and a list without them drops them.
func TestLegacyURLBookmarks(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	a := e.Bind("alice", "pc")
	set := func(id, inner string) {
		t.Helper()
		a.Send("<iq type='set' id='" + id + "'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>" + inner + "</storage></query></iq>")
		a.C.Wait(t, "id='"+id+"'", "type='result'")
	}
	get := func(id string) string {
		t.Helper()
		a.Send("<iq type='get' id='" + id + "'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>")
		return a.C.Wait(t, "id='"+id+"'")
	}
	conf := "<conference jid='room@conference.example.org' name='Room' autojoin='true'><nick>Al</nick></conference>"
	url := "<url name='Vireo' url='https://example.org/vireo'/>"
	set("s1", conf+url)
	got := get("g1")
	for _, want := range []string{"jid='room@conference.example.org'", "<nick>Al</nick>", url} {
		if !strings.Contains(got, want) {
			t.Fatalf("read lacks %s: %s", want, got)
		}
	}
	a.Send("<iq type='get' id='n1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>")
	if node := a.C.Wait(t, "id='n1'"); !strings.Contains(node, "room@conference.example.org") || strings.Contains(node, "example.org/vireo") {
		t.Fatalf("the XEP-0402 node: %s", node)
	}
	set("s2", conf)
	if got := get("g2"); strings.Contains(got, "<url") || !strings.Contains(got, "room@conference.example.org") {
		t.Fatalf("after a list without urls: %s", got)
	}
	set("s3", url)
	if got := get("g3"); !strings.Contains(got, url) || strings.Contains(got, "room@conference") {
		t.Fatalf("a list of urls only: %s", got)
	}
}
