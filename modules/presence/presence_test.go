package presence_test

import (
	"strings"
	"testing"
	"time"

	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
)

// TestSelfSubscription: a user is always subscribed to their own presence (RFC 6121
// §4.3.2), so subscription presence to one's own bare JID changes nothing: no roster item,
// no pending request shown at the next login. A subscribe is answered with subscribed on
// the user's behalf.
func TestSelfSubscription(t *testing.T) {
	for _, tc := range []struct {
		typ, reply string // reply: what the sender gets back ("" for nothing)
	}{
		{"subscribe", "type='subscribed'"},
		{"subscribed", ""},
		{"unsubscribe", ""},
		{"unsubscribed", ""},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			e := routertest.New(t, []string{"alice"}, nil)
			a := e.Bind("alice", "pc")
			a.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
			a.C.Wait(t, "id='r'")
			a.Send("<presence/>")
			a.C.Wait(t, "from='alice@example.org/pc'")
			a.C.Reset()
			for _, to := range []string{"alice@example.org", "alice@example.org/pc"} {
				a.Send("<presence to='" + to + "' type='" + tc.typ + "'/>")
			}
			if tc.reply != "" {
				got := a.C.Wait(t, tc.reply)
				if !strings.Contains(got, "from='alice@example.org'") {
					t.Fatalf("reply not from the own bare JID: %s", got)
				}
			}
			time.Sleep(100 * time.Millisecond)
			if got := a.C.All(); strings.Contains(got, "jabber:iq:roster") || strings.Contains(got, "type='"+tc.typ+"'") {
				t.Fatalf("roster push or self-request delivered:\n%s", got)
			}
			if it, err := e.Store.Rosters().Item("alice@example.org", "alice@example.org"); err == nil {
				t.Fatalf("roster item created: %+v", it)
			}
			n := 0
			e.Store.Table("subreq").Scan(store.UserKey("alice@example.org"), func(_, _ []byte) bool { n++; return true })
			if n != 0 {
				t.Fatalf("%d pending requests stored", n)
			}
			a2 := e.Bind("alice", "phone")
			a2.Send("<presence/>")
			a2.C.Wait(t, "from='alice@example.org/phone'")
			a2.C.Never(t, "type='subscribe'")
		})
	}
}
