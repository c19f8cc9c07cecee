package engine_test

import (
	"net"
	"strings"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmpp"
	mjid "mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationAccountRemovedContacts: alice and bob become contacts over the wire, then
// alice cancels her registration (XEP-0077 <remove/>). bob's client hears that she is
// gone: her unavailable presence, then unsubscribe and unsubscribed from her, and a
// roster push with subscription none; his roster, fetched with mellium.im/xmpp, keeps
// her with no subscription. An account made again with the name alice sees none of
// bob's presence, and bob none of hers.
func TestIntegrationAccountRemovedContacts(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "alice pw")
	srv.AddUser(t, "bob", "bob pw")
	a := srv.LoginPlain(t, "alice", "alice pw", "pc")
	b := srv.LoginPlain(t, "bob", "bob pw", "pc")
	subscribeBoth(a, b)
	b.Expect("subscription='both'")
	a.Expect("subscription='both'")

	a.Send("<iq type='set' id='bye'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	a.ExpectClosed()
	// In whatever order they come: the removal and the end of the session run apart.
	got := ""
	for _, want := range []string{"type='unavailable'", "type='unsubscribe'", "type='unsubscribed'", "subscription='none'"} {
		if !strings.Contains(got, want) {
			got += b.Expect(want)
		}
	}

	ctx := vireotest.Context(t, 30*time.Second)
	conn, err := net.Dial("tcp", srv.C2SAddr())
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmpp.NewClientSession(ctx, mjid.MustParse("bob@localhost/mellium"), conn,
		xmpp.StartTLS(srv.ClientTLS()), xmpp.SASL("", "bob pw", msasl.ScramSha256), xmpp.BindResource())
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	t.Cleanup(func() { s.Close(); conn.Close() })
	go s.Serve(nil)
	ri := roster.Fetch(ctx, s)
	var items []roster.Item
	for ri.Next() {
		items = append(items, ri.Item())
	}
	if err := ri.Err(); err != nil {
		t.Fatalf("roster fetch: %v", err)
	}
	ri.Close()
	if len(items) != 1 || items[0].JID.String() != "alice@localhost" || items[0].Subscription != "none" {
		t.Fatalf("bob's roster: %+v", items)
	}

	srv.AddUser(t, "alice", "another pw")
	a2 := srv.LoginPlain(t, "alice", "another pw", "new")
	a2.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>")
	a2.Expect("id='r'")
	b.Never("from='alice@localhost/new'")
	b.Send("<presence><status>here</status></presence>")
	a2.Never("from='bob@localhost/pc'")
}

// TestIntegrationAccountRemovedResumable: an account removed (XEP-0077) from a stream with
// resumption on ends its session at once: not detached and resumable, shown available
// to contacts, and queueing their messages for a name that no longer exists.
func TestIntegrationAccountRemovedResumable(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, ResumeTimeout: 60 * time.Second})
	srv.AddUser(t, "alice", "alice pw")
	srv.AddUser(t, "bob", "bob pw")
	a := srv.LoginPlain(t, "alice", "alice pw", "pc")
	b := srv.LoginPlain(t, "bob", "bob pw", "pc")
	a.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	a.Expect("<enabled")
	subscribeBoth(a, b)
	b.Expect("from='alice@localhost/pc'")
	// A message alice took and never acknowledged: handed back when her session ends,
	// after the account is gone, it is not kept for the next account of her name.
	b.Send("<message to='alice@localhost' type='chat' id='m0'><body>unacked</body></message>")
	a.Expect("id='m0'")

	a.Send("<iq type='set' id='bye'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	a.ExpectClosed()
	b.Expect("type='unavailable'") // within 5 s, not at the resumption timeout
	b.Send("<message to='alice@localhost/pc' type='chat' id='m1'><body>still there?</body></message>")
	if got := b.Expect("id='m1'"); !strings.Contains(got, "type='error'") {
		t.Fatalf("a message to the removed account's resource: %q, want an error", got)
	}
	srv.AddUser(t, "alice", "new alice pw")
	a2 := srv.LoginPlain(t, "alice", "new alice pw", "pc")
	a2.Send("<presence/><iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	if got := a2.Expect("id='p'"); strings.Contains(got, "unacked") {
		t.Fatalf("the new alice got the old one's message: %q", got)
	}
	a2.Never("unacked")
}

// subscribeBoth makes alice (a) and bob (b), both online with rosters requested, each
// other's contacts both ways, by their own subscription stanzas.
func subscribeBoth(a, b *vireotest.RawConn) {
	for _, c := range []*vireotest.RawConn{a, b} {
		c.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>")
		c.Expect("id='r'")
	}
	a.Send("<presence to='bob@localhost' type='subscribe'/>")
	b.Expect("type='subscribe'")
	b.Send("<presence to='alice@localhost' type='subscribed'/><presence to='alice@localhost' type='subscribe'/>")
	a.Expect("type='subscribe'")
	a.Send("<presence to='bob@localhost' type='subscribed'/>")
}
