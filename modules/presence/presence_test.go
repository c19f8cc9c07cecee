package presence_test

import (
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/presence"
	"github.com/vireo-im/vireo/modules/roster"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/store/pie"
	"github.com/vireo-im/vireo/xmlstream/jid"
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

// TestSubscriptionRosterLimit: subscription presence cannot grow a roster past the limit
// ([modules.roster] max_items). Each path that would create an item in alice's full roster
// is refused with not-allowed and stores nothing: her subscribe, her pre-approval, her
// approval of a pending request (which stays pending), and an inbound subscribe from a
// contact (refused to the contact instead of kept). Contacts already in the roster are
// not affected.
func TestSubscriptionRosterLimit(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*roster.Config); ok {
				c.MaxItems = 2
			}
			return nil
		}
	})
	const alice = "alice@example.org"
	for _, c := range []string{"x@example.org", "y@example.org"} {
		if _, err := e.Store.Rosters().Put(alice, store.RosterItem{JID: c}); err != nil {
			t.Fatal(err)
		}
	}
	subreq := e.Store.Table("subreq")
	subreq.Set(store.UserKey(alice, "dave@example.org"),
		[]byte("<presence type='subscribe' from='dave@example.org' to='alice@example.org'/>"))
	a := e.Bind("alice", "pc")
	a.Send("<presence/>")
	a.C.Wait(t, "from='alice@example.org/pc'")
	b := e.Bind("bob", "pc")
	b.Send("<presence/>")
	b.C.Wait(t, "from='bob@example.org/pc'")

	for _, tc := range []struct {
		name, from, stanza string
		contact            string // must not be in alice's roster afterwards
	}{
		{"outbound subscribe", "alice", "<presence to='bob@example.org' type='subscribe' id='p1'/>", "bob@example.org"},
		{"outbound pre-approval", "alice", "<presence to='carol@example.org' type='subscribed' id='p2'/>", "carol@example.org"},
		{"outbound approval", "alice", "<presence to='dave@example.org' type='subscribed' id='p3'/>", "dave@example.org"},
		{"inbound subscribe", "bob", "<presence to='alice@example.org' type='subscribe' id='p4'/>", "bob@example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := a
			if tc.from == "bob" {
				s = b
			}
			s.C.Reset()
			s.Send(tc.stanza)
			s.C.Wait(t, "type='error'", "not-allowed")
			if _, err := e.Store.Rosters().Item(alice, tc.contact); err == nil {
				t.Fatalf("item for %s created in a full roster", tc.contact)
			}
			if items, _, _ := e.Store.Rosters().Get(alice); len(items) != 2 {
				t.Fatalf("%d items, want 2", len(items))
			}
		})
	}
	if _, err := subreq.Get(store.UserKey(alice, "bob@example.org")); err == nil {
		t.Fatal("inbound subscribe to a full roster was kept as a pending request")
	}
	if _, err := subreq.Get(store.UserKey(alice, "dave@example.org")); err != nil {
		t.Fatal("a refused approval dropped the pending request")
	}
	b.C.Never(t, "type='subscribe'")
	a.C.Never(t, "from='bob@example.org' type='subscribe'")

	// A contact already in the full roster can still be subscribed to (no new item).
	a.Send("<presence to='x@example.org' type='subscribe'/>")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if it, _ := e.Store.Rosters().Item(alice, "x@example.org"); it.Ask {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("subscribe to a contact already in a full roster was refused")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSubscriptionRequestBytes: a subscription request with a huge status is kept as a
// bare subscribe, so pending requests cannot hold megabytes per user; the user still sees
// the request at login.
func TestSubscriptionRequestBytes(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	b := e.Bind("bob", "pc")
	b.Send("<presence to='alice@example.org' type='subscribe'><status>" + strings.Repeat("s", 50000) + "</status></presence>")
	var stored []byte
	for i := 0; i < 500 && stored == nil; i++ {
		e.Store.Table("subreq").Scan(store.UserKey("alice@example.org"), func(_, v []byte) bool {
			stored = append([]byte(nil), v...)
			return false
		})
		time.Sleep(5 * time.Millisecond)
	}
	if stored == nil || len(stored) > presence.MaxRequestBytes {
		t.Fatalf("stored request of %d bytes (limit %d)", len(stored), presence.MaxRequestBytes)
	}
	a := e.Bind("alice", "pc")
	a.Send("<presence/>")
	a.C.Wait(t, "type='subscribe'", "from='bob@example.org'")
}

// TestLastUnavailable: a probe of a contact whose sessions are all gone is answered with
// the contact's last unavailable presence, status included, from the bare JID and stamped
// with when it was sent (RFC 6121 §4.3.2 (a), XEP-0203). A session that goes while
// another stays available records nothing; a dropped connection records the time alone.
func TestLastUnavailable(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth})
	e.Store.Rosters().Put("bob@example.org", store.RosterItem{JID: "alice@example.org", Sub: store.SubBoth})
	// watch, an available session of alice, hears bob come and go.
	watch := e.Bind("alice", "watch")
	watch.Send("<presence/>")
	if got := watch.C.Wait(t, "from='bob@example.org' "); got != "<presence type='unavailable' from='bob@example.org' to='alice@example.org'/>" {
		t.Fatalf("probe of a contact never seen: %s", got)
	}
	// probe is a new session's initial presence and the answer to its probe of bob.
	probe := func(res string) string {
		t.Helper()
		a := e.Bind("alice", res)
		a.Send("<presence/>")
		got := a.C.Wait(t, "from='bob@example.org' ")
		a.Unbind()
		return got
	}

	pc := e.Bind("bob", "pc")
	pc.Send("<presence><status>working</status></presence>")
	phone := e.Bind("bob", "phone")
	phone.Send("<presence><status>on the go</status></presence>")
	phone.Send("<presence type='unavailable'><status>phone off</status></presence>")
	pc.Send("<presence type='unavailable'><status>gone fishing &amp; back monday</status></presence>")
	watch.C.Wait(t, "from='bob@example.org/pc'", "type='unavailable'", "gone fishing")
	before := time.Now().UTC().Add(-time.Second)
	got := probe("after-logout")
	for _, want := range []string{"type='unavailable'", "<status>gone fishing &amp; back monday</status>",
		"<delay xmlns='urn:xmpp:delay' from='example.org' stamp='"} {
		if !strings.Contains(got, want) {
			t.Fatalf("probe after logout lacks %q: %s", want, got)
		}
	}
	stamp := got[strings.Index(got, "stamp='")+7:]
	when, err := time.Parse(time.RFC3339, stamp[:strings.IndexByte(stamp, '\'')])
	if err != nil || when.Before(before.Truncate(time.Second)) || when.After(time.Now().Add(time.Second)) {
		t.Fatalf("stamp %v (%v) is not the time of the logout", when, err)
	}

	// A connection that drops: the unavailable presence the server sends has no status.
	pc = e.Bind("bob", "pc")
	pc.Send("<presence><status>back</status></presence>")
	watch.C.Wait(t, "from='bob@example.org/pc'", "<status>back</status>")
	pc.Unbind()
	watch.C.Wait(t, "<presence type='unavailable' from='bob@example.org/pc' to='alice@example.org'/>")
	got = probe("after-drop")
	if strings.Contains(got, "<status>") || !strings.Contains(got, "type='unavailable'") || !strings.Contains(got, "<delay ") {
		t.Fatalf("probe after a dropped connection: %s", got)
	}
}

// TestContactInvitation: XEP-0401 §4.1 with XEP-0379 on the inviter's server. Juliet,
// holding romeo's invitation token, pre-approves him and asks for his presence with the
// token: romeo's server approves on his behalf and asks back, so both rosters say both
// and romeo is never asked; the token is spent, so carol's request with it waits for
// romeo as any request does.
func TestContactInvitation(t *testing.T) {
	e := routertest.New(t, []string{"romeo", "juliet", "carol"}, nil)
	r, j, c := e.Bind("romeo", "pc"), e.Bind("juliet", "pc"), e.Bind("carol", "pc")
	for _, s := range []*routertest.Sess{r, j, c} {
		s.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>")
		s.C.Wait(t, "id='r'")
	}
	romeo, _ := jid.Parse("romeo@example.org")
	inv, err := invites.CreateContact(e.Store.Table(invites.Table), romeo, false, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.C.Reset()
	j.Send("<presence type='subscribed' to='romeo@example.org'/>") // RFC 6121 §3.4 pre-approval
	j.Send("<presence type='subscribe' to='romeo@example.org'><preauth xmlns='urn:xmpp:pars:0' token='" + inv.Token + "'/></presence>")
	j.C.Wait(t, "<item jid='romeo@example.org' subscription='both'")
	r.C.Wait(t, "<item jid='juliet@example.org' subscription='both'")
	j.C.Wait(t, "<presence", "from='romeo@example.org/pc'")
	r.C.Never(t, "type='subscribe'")

	c.Send("<presence type='subscribe' to='romeo@example.org'><preauth xmlns='urn:xmpp:pars:0' token='" + inv.Token + "'/></presence>")
	r.C.Wait(t, "type='subscribe'", "from='carol@example.org'")
}

// TestAccountRemoved: removing an account ends its subscriptions on its contacts' side.
// bob (subscribed both ways) loses both directions, carol (subscribed to alice) loses hers,
// dave's unanswered request from alice is dropped and erin's request to alice is answered
// unsubscribed; each online contact gets the roster push. An account made again with the
// name sees nobody's presence. The removal record is gone once done.
func TestAccountRemoved(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol", "dave", "erin"}, nil)
	put := func(user string, it store.RosterItem) {
		t.Helper()
		if _, err := e.Store.Rosters().Put(user+"@example.org", it); err != nil {
			t.Fatal(err)
		}
	}
	const a = "alice@example.org"
	put("alice", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth})
	put("bob", store.RosterItem{JID: a, Sub: store.SubBoth})
	put("alice", store.RosterItem{JID: "carol@example.org", Sub: store.SubFrom})
	put("carol", store.RosterItem{JID: a, Sub: store.SubTo})
	put("alice", store.RosterItem{JID: "erin@example.org", PendingIn: true})
	put("erin", store.RosterItem{JID: a, Ask: true})
	// alice asks dave over the wire, so that dave has the request stored.
	al := e.Bind("alice", "pc")
	al.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
	al.C.Wait(t, "id='r'")
	al.Send("<presence to='dave@example.org' type='subscribe'/>")
	waitFor(t, func() bool {
		_, err := e.Store.Table("subreq").Get(store.UserKey("dave@example.org", a))
		return err == nil
	})
	b := e.Bind("bob", "pc")
	b.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
	b.C.Wait(t, "id='r'")
	b.C.Reset()

	if err := e.Store.Accounts().Delete(a); err != nil {
		t.Fatal(err)
	}
	b.C.Wait(t, "jabber:iq:roster", "jid='alice@example.org'", "subscription='none'")
	waitFor(t, func() bool {
		n := 0
		e.Store.(store.Removals).PendingRemovals(func(store.Removal) bool { n++; return true })
		return n == 0
	})
	// The presences the removal routed reach the contacts' shards in their own time.
	for _, user := range []string{"bob", "carol", "erin"} {
		waitFor(t, func() bool {
			it, err := e.Store.Rosters().Item(user+"@example.org", a)
			return err == nil && it.Sub == store.SubNone && !it.Ask && !it.PendingIn
		})
	}
	waitFor(t, func() bool {
		_, err := e.Store.Table("subreq").Get(store.UserKey("dave@example.org", a))
		return err != nil
	})
	e.Store.Accounts().Create(store.Account{User: a})
	al2 := e.Bind("alice", "new")
	al2.Send("<presence/>")
	al2.C.Wait(t, "from='alice@example.org/new'")
	b.Send("<presence/>")
	al2.C.Never(t, "from='bob@example.org/pc'")
}

// TestAccountRemovedWhileStopped: a removal recorded while no server ran (vireoctl
// deluser on a stopped server, or a crash before the cleanup) is finished at the next
// start.
func TestAccountRemovedWhileStopped(t *testing.T) {
	dir := t.TempDir()
	st, err := pebblestore.Open(dir, pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		st.Accounts().Create(store.Account{User: u + "@example.org"})
	}
	st.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth})
	st.Rosters().Put("bob@example.org", store.RosterItem{JID: "alice@example.org", Sub: store.SubBoth})
	if err := st.Accounts().Delete("alice@example.org"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = pebblestore.Open(dir, pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if it, _ := st.Rosters().Item("bob@example.org", "alice@example.org"); it.Sub != store.SubBoth {
		t.Fatalf("cleaned before the start: %+v", it)
	}
	r, err := router.New(router.Options{Domains: []string{"example.org"}, Store: st, Logger: zerolog.Nop(), Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.StartRemovals(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		it, _ := st.Rosters().Item("bob@example.org", "alice@example.org")
		return it.Sub == store.SubNone
	})
	waitFor(t, func() bool {
		n := 0
		st.PendingRemovals(func(store.Removal) bool { n++; return true })
		return n == 0
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 3 s")
}

// TestBlockedRemoteContact: a remote contact the user blocks (XEP-0191 §3.3) hears no
// more of the user's presence, and is not probed; another remote contact still is.
func TestBlockedRemoteContact(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	rl := &routertest.Remote{}
	e.R.SetRemote(rl)
	for _, c := range []string{"mallory@remote.example", "carol@remote.example"} {
		e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: c, Sub: store.SubBoth})
	}
	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='mallory@remote.example'/></block></iq>")
	a.C.Wait(t, "id='b'", "type='result'")
	a.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence><status>here</status></presence>")
	a.C.Wait(t, "id='r'")
	waitFor(t, func() bool { return len(rl.Matching("to='carol@remote.example")) >= 2 }) // presence and probe
	a.Send("<presence><status>away</status></presence>")
	waitFor(t, func() bool { return len(rl.Matching("to='carol@remote.example")) >= 3 })
	for _, s := range rl.Matching("to='mallory@remote.example") {
		if !strings.Contains(s, "type='unavailable'") {
			t.Errorf("the blocked contact got %s", s)
		}
	}
}

// TestDirectedPresenceEnds: a session that sent directed presence only (a bot joining a
// room), or sent it after going unavailable, ends with unavailable presence to each JID
// that still has it (RFC 6121 §4.6.3), as a session that broadcast its presence does.
func TestDirectedPresenceEnds(t *testing.T) {
	e := routertest.New(t, []string{"bot", "alice"}, nil)
	rl := &routertest.Remote{}
	e.R.SetRemote(rl)
	b := e.Bind("bot", "r1")
	b.Send("<presence to='room@muc.remote.example/bot'/>")
	waitFor(t, func() bool { return len(rl.Matching("to='room@muc.remote.example/bot'")) == 1 })
	b.Unbind()
	waitFor(t, func() bool {
		m := rl.Matching("to='room@muc.remote.example/bot'", "type='unavailable'", "from='bot@example.org/r1'")
		return len(m) == 1
	})

	b2 := e.Bind("bot", "r2")
	b2.Send("<presence/>")
	b2.Send("<presence type='unavailable'/>")
	b2.Send("<presence to='other@muc.remote.example/bot'/>")
	waitFor(t, func() bool { return len(rl.Matching("to='other@muc.remote.example/bot'")) == 1 })
	b2.Unbind()
	waitFor(t, func() bool {
		return len(rl.Matching("to='other@muc.remote.example/bot'", "type='unavailable'")) == 1
	})

	// A session that broadcast its presence: one unavailable to the room, not two.
	b3 := e.Bind("bot", "r3")
	b3.Send("<presence/>")
	b3.Send("<presence to='third@muc.remote.example/bot'/>")
	waitFor(t, func() bool { return len(rl.Matching("to='third@muc.remote.example/bot'")) == 1 })
	b3.Unbind()
	waitFor(t, func() bool { return len(rl.Matching("to='third@muc.remote.example/bot'", "type='unavailable'")) == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := len(rl.Matching("to='third@muc.remote.example/bot'", "type='unavailable'")); n != 1 {
		t.Fatalf("%d unavailable presences to the room, want 1", n)
	}

	// A contact with a 'from' subscription that a session without broadcast presence
	// sent directed presence to: no broadcast ends it, so the session's end does.
	e.Store.Rosters().Put("bot@example.org", store.RosterItem{JID: "bob@remote.example", Sub: store.SubFrom})
	b4 := e.Bind("bot", "r4")
	b4.Send("<presence to='bob@remote.example/x'/>")
	waitFor(t, func() bool { return len(rl.Matching("to='bob@remote.example/x'", "from='bot@example.org/r4'")) == 1 })
	b4.Unbind()
	waitFor(t, func() bool {
		return len(rl.Matching("to='bob@remote.example/x'", "type='unavailable'", "from='bot@example.org/r4'")) == 1
	})
}

// TestSubscriptionTables: RFC 6121 Appendix A and §3, §4.3.2 where they are easy to get
// wrong. A request already pending is not delivered again (A.3.1); a withdrawn one is
// (A.3.3); a contact who unsubscribes gets unavailable from the user's resources (§3.3.3);
// a prober without a subscription gets unsubscribed (§4.3.2); a request from a JID the
// user blocked since is not shown again at login (XEP-0191 §3.3).
func TestSubscriptionTables(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	rl := &routertest.Remote{}
	e.R.SetRemote(rl)
	remote, _ := jid.Parse("remote.example")
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "dave@remote.example", Sub: store.SubBoth})
	a := e.Bind("alice", "pc")
	a.Send("<presence/>")
	a.C.Wait(t, "<presence from='alice@example.org/pc'")

	sub := "<presence from='carol@remote.example' to='alice@example.org' type='subscribe'/>"
	e.R.SubmitFrom(remote, []byte(sub))
	e.R.SubmitFrom(remote, []byte(sub))
	a.C.Wait(t, "from='carol@remote.example'", "type='subscribe'")
	e.R.SubmitFrom(remote, []byte("<presence from='carol@remote.example' to='alice@example.org' type='unsubscribe'/>"))
	a.C.Wait(t, "from='carol@remote.example'", "type='unsubscribe'")
	if n := strings.Count(a.C.All(), "type='subscribe'"); n != 1 {
		t.Fatalf("a pending request delivered %d times", n)
	}

	e.R.SubmitFrom(remote, []byte("<presence from='dave@remote.example' to='alice@example.org' type='unsubscribe'/>"))
	waitFor(t, func() bool {
		return len(rl.Matching("to='dave@remote.example'", "type='unavailable'", "from='alice@example.org/pc'")) == 1
	})

	e.R.SubmitFrom(remote, []byte("<presence from='eve@remote.example/x' to='alice@example.org' type='probe'/>"))
	waitFor(t, func() bool { return len(rl.Matching("to='eve@remote.example'", "type='unsubscribed'")) == 1 })

	a.Unbind()
	e.R.SubmitFrom(remote, []byte("<presence from='mallory@remote.example' to='alice@example.org' type='subscribe'/>"))
	a2 := e.Bind("alice", "phone")
	a2.Send("<presence/>")
	a2.C.Wait(t, "from='mallory@remote.example'", "type='subscribe'")
	a2.Send("<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='mallory@remote.example'/></block></iq>")
	a2.C.Wait(t, "id='b'", "type='result'")
	a2.Unbind()
	a3 := e.Bind("alice", "tablet")
	a3.Send("<presence/>")
	a3.C.Wait(t, "<presence from='alice@example.org/tablet'")
	a3.C.Never(t, "mallory@remote.example")
}

// TestImportedPendingRequest: a request an import says waits (XEP-0227, a roster item
// PendingIn) is shown at login, and approving it answers the contact (RFC 6121 A.2.3),
// instead of being taken for a pre-approval that tells the contact nothing.
func TestImportedPendingRequest(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	rl := &routertest.Remote{}
	e.R.SetRemote(rl)
	it := store.RosterItem{JID: "carol@remote.example", PendingIn: true}
	e.Store.Rosters().Put("alice@example.org", it)
	if err := (&presence.Presence{}).ImportUser(e.Store, &pie.User{JID: "alice@example.org", Roster: []store.RosterItem{it}}); err != nil {
		t.Fatal(err)
	}
	a := e.Bind("alice", "pc")
	a.Send("<presence/>")
	a.C.Wait(t, "from='carol@remote.example'", "type='subscribe'")
	a.Send("<presence to='carol@remote.example' type='subscribed'/>")
	waitFor(t, func() bool { return len(rl.Matching("to='carol@remote.example'", "type='subscribed'")) == 1 })
}

// TestPendingRequestsExported: a request that arrived while the user was offline is in
// the user's XEP-0227 export (§4.9), and an import of that export stores it again.
func TestPendingRequestsExported(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	remote, _ := jid.Parse("remote.example")
	e.R.SubmitFrom(remote, []byte("<presence from='carol@remote.example' to='alice@example.org' type='subscribe'/>"))
	waitFor(t, func() bool {
		_, err := e.Store.Table("subreq").Get(store.UserKey("alice@example.org", "carol@remote.example"))
		return err == nil
	})
	var doc strings.Builder
	if err := pie.ExportUser(&doc, e.Store, "alice@example.org", &presence.Presence{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.String(), "<presence xmlns='jabber:client' type='subscribe' from='carol@remote.example'/>") {
		t.Fatalf("no pending request in the export: %s", doc.String())
	}
	users, err := pie.Parse([]byte(doc.String()))
	if err != nil || len(users) != 1 {
		t.Fatal(err)
	}
	users[0].Password = "pw" // routertest's accounts have no keys, which an import refuses
	e2 := routertest.New(t, nil, nil)
	if r, err := pie.Import(e2.Store, users, []string{"example.org"}, &presence.Presence{}); err != nil || r.Imported != 1 {
		t.Fatalf("import: %+v, %v", r, err)
	}
	if _, err := e2.Store.Table("subreq").Get(store.UserKey("alice@example.org", "carol@remote.example")); err != nil {
		t.Fatalf("the imported request is not waiting: %v", err)
	}
}

// TestSharedContactSubscription: a contact of a shared roster group is subscribed both
// ways by the group's file; an unsubscribe or unsubscribed between the two changes
// nothing (as a roster remove of the contact is refused), rather than leave their cached
// rosters and pushes at odds with what a roster get answers.
func TestSharedContactSubscription(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	g, err := roster.ParseSharedGroups(strings.NewReader("[Team]\nalice@example.org\nbob@example.org\n"), []string{"example.org"})
	if err != nil {
		t.Fatal(err)
	}
	e.Store.(store.RosterWrapper).SetRosterWrapper(g.Wrap)
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "pc")
	for _, s := range []*routertest.Sess{a, b} {
		s.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
		s.C.Wait(t, "id='r'", "subscription='both'")
	}
	a.Send("<presence to='bob@example.org' type='unsubscribe'/>")
	a.Send("<presence to='bob@example.org' type='unsubscribed'/>")
	a.C.Never(t, "type='set'")
	b.C.Never(t, "unsubscribe")
	b.Send("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>")
	b.C.Wait(t, "id='r2'", "jid='alice@example.org'", "subscription='both'")
}

// TestAnswerPastPendingBound: once MaxPendingRequests wait, a further request is shown to
// the available resources without being stored; the user's approval of it is still an
// approval (routed, 'from' in the roster), not a silent pre-approval.
func TestAnswerPastPendingBound(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	rl := &routertest.Remote{}
	e.R.SetRemote(rl)
	remote, _ := jid.Parse("remote.example")
	for i := range presence.MaxPendingRequests { // from many domains: the antispam budget is per domain
		d, _ := jid.Parse(fmt.Sprintf("d%d.example", i))
		e.R.SubmitFrom(d, []byte(fmt.Sprintf("<presence from='spam@d%d.example' to='alice@example.org' type='subscribe'/>", i)))
	}
	a := e.Bind("alice", "pc")
	a.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
	a.C.Wait(t, "id='r'")
	a.Send("<presence/>")
	a.C.Wait(t, "from='spam@d99.example'") // the last, in the store's order
	e.R.SubmitFrom(remote, []byte("<presence from='bob@remote.example' to='alice@example.org' type='subscribe'/>"))
	a.C.Wait(t, "from='bob@remote.example'", "type='subscribe'")
	a.Send("<presence to='bob@remote.example' type='subscribed'/>")
	got := a.C.Wait(t, "jid='bob@remote.example'", "subscription='from'")
	if strings.Contains(got, "approved") {
		t.Fatalf("an approval taken for a pre-approval: %s", got)
	}
	waitFor(t, func() bool { return len(rl.Matching("to='bob@remote.example'", "type='subscribed'")) == 1 })
}
