package blocking_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/modules/blocking"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
)

func block(t *testing.T, s *routertest.Sess, verb, id string, jids ...string) {
	t.Helper()
	var items string
	for _, j := range jids {
		items += "<item jid='" + j + "'/>"
	}
	s.Send("<iq type='set' id='" + id + "'><" + verb + " xmlns='urn:xmpp:blocking'>" + items + "</" + verb + "></iq>")
	s.C.Wait(t, "id='"+id+"'", "type='result'")
}

// TestBlockedIQs: XEP-0191 §3.4/§3.5 for IQs. IQ requests from a blocked JID get
// service-unavailable and are not delivered; results and errors are dropped silently. IQ
// requests to a blocked JID get not-acceptable with <blocked/>; results to it are dropped.
func TestBlockedIQs(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := e.Bind("alice", "pc")
	b := e.Bind("bob", "pc")
	c := e.Bind("carol", "pc")
	block(t, a, "block", "bl", "bob@example.org")
	for _, tc := range []struct {
		name      string
		from      *routertest.Sess
		to        *routertest.Sess
		send      string
		wantError string // in the sender's reply; "" means no reply at all
		delivered bool
	}{
		{"get from blocked", b, a, "<iq type='get' id='i1' to='alice@example.org/pc'><query xmlns='urn:example:x'/></iq>", "service-unavailable", false},
		{"set from blocked", b, a, "<iq type='set' id='i2' to='alice@example.org/pc'><query xmlns='urn:example:x'/></iq>", "service-unavailable", false},
		{"get from blocked to bare", b, a, "<iq type='get' id='i3' to='alice@example.org'><vCard xmlns='vcard-temp'/></iq>", "service-unavailable", false},
		{"result from blocked", b, a, "<iq type='result' id='i4' to='alice@example.org/pc'/>", "", false},
		{"get to blocked", a, b, "<iq type='get' id='i5' to='bob@example.org/pc'><query xmlns='urn:example:x'/></iq>", "<blocked xmlns='urn:xmpp:blocking:errors'/>", false},
		{"result to blocked", a, b, "<iq type='result' id='i6' to='bob@example.org/pc'/>", "", false},
		{"get from other", c, a, "<iq type='get' id='i7' to='alice@example.org/pc'><query xmlns='urn:example:x'/></iq>", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.send[strings.Index(tc.send, "id='") : strings.Index(tc.send, "id='")+7]
			tc.from.Send(tc.send)
			if tc.delivered {
				tc.to.C.Wait(t, id)
				return
			}
			if tc.wantError != "" {
				got := tc.from.C.Wait(t, id, "type='error'")
				if !strings.Contains(got, tc.wantError) {
					t.Fatalf("want %s, got %s", tc.wantError, got)
				}
				if tc.from == a && !strings.Contains(got, "not-acceptable") {
					t.Fatalf("want not-acceptable, got %s", got)
				}
			} else {
				tc.from.C.Never(t, id)
			}
			tc.to.C.Never(t, id)
		})
	}
}

// TestBlockPresence: XEP-0191 §3.3/§3.4. Blocking a contact that may see the user's
// presence sends it unavailable presence from each available resource; unblocking sends
// the current presence again. Contacts without a 'from' subscription get nothing; a domain
// block applies to the roster contacts of that domain, a full-JID block to that resource.
func TestBlockPresence(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, func(o *router.Options) {
		o.Domains = append(o.Domains, "example.net")
	})
	for _, u := range []string{"erin@example.net", "frank@example.net"} {
		e.Store.Accounts().Create(store.Account{User: u})
	}
	r := e.Store.Rosters()
	r.Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubFrom})
	r.Put("alice@example.org", store.RosterItem{JID: "carol@example.org", Sub: store.SubNone})
	r.Put("alice@example.org", store.RosterItem{JID: "erin@example.net", Sub: store.SubBoth})
	r.Put("alice@example.org", store.RosterItem{JID: "frank@example.net", Sub: store.SubTo})
	b := e.Bind("bob", "pc")
	c := e.Bind("carol", "pc")
	e.Domain = "example.net"
	er := e.Bind("erin", "pc")
	f := e.Bind("frank", "pc")
	e.Domain = "example.org"
	contacts := map[string]*routertest.Sess{"bob": b, "carol": c, "erin": er, "frank": f}
	for _, s := range contacts {
		s.Send("<presence/>")
	}
	a1 := e.Bind("alice", "pc")
	a2 := e.Bind("alice", "phone")
	for _, s := range []*routertest.Sess{a1, a2} {
		s.Send("<presence><status>here</status></presence>")
	}
	for _, s := range []*routertest.Sess{b, er} {
		for _, res := range []string{"pc", "phone"} {
			s.C.Wait(t, "from='alice@example.org/"+res+"'", "<status>here</status>")
		}
	}
	for _, tc := range []struct {
		name, item string
		unblockAll bool
		to         string   // expected 'to' of the presence sent
		get, never []string // contacts that receive it, and that do not
	}{
		{"bare", "bob@example.org", false, "bob@example.org", []string{"bob"}, []string{"carol", "erin", "frank"}},
		{"unblock all", "bob@example.org", true, "bob@example.org", []string{"bob"}, []string{"carol", "erin", "frank"}},
		{"full", "bob@example.org/pc", false, "bob@example.org/pc", []string{"bob"}, []string{"carol", "erin", "frank"}},
		{"no subscription", "carol@example.org", false, "", nil, []string{"bob", "carol", "erin", "frank"}},
		{"domain", "example.net", false, "erin@example.net", []string{"erin"}, []string{"bob", "carol", "frank"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range contacts {
				s.C.Reset()
			}
			block(t, a1, "block", "b-"+tc.name, tc.item)
			for _, n := range tc.get {
				for _, res := range []string{"pc", "phone"} {
					contacts[n].C.Wait(t, "<presence type='unavailable' from='alice@example.org/"+res+"' to='"+tc.to+"'")
				}
			}
			for _, n := range tc.never {
				contacts[n].C.Never(t, "alice@example.org")
			}
			for _, s := range contacts {
				s.C.Reset()
			}
			if tc.unblockAll {
				block(t, a1, "unblock", "u-"+tc.name)
			} else {
				block(t, a1, "unblock", "u-"+tc.name, tc.item)
			}
			for _, n := range tc.get {
				for _, res := range []string{"pc", "phone"} {
					got := contacts[n].C.Wait(t, "from='alice@example.org/"+res+"'", "<status>here</status>")
					if !strings.Contains(got, "to='"+tc.to+"'") {
						t.Fatalf("presence without to=%s: %s", tc.to, got)
					}
				}
			}
			for _, n := range tc.never {
				contacts[n].C.Never(t, "alice@example.org")
			}
		})
	}
}

// TestNoPresenceBroadcastToBlocked: once blocked, a contact with a 'from' subscription no
// longer gets the user's presence broadcasts (the presence module routes them past the
// outbound hooks); after unblocking it does again.
func TestNoPresenceBroadcastToBlocked(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubFrom})
	b := e.Bind("bob", "pc")
	b.Send("<presence/>")
	a := e.Bind("alice", "pc")
	a.Send("<presence/>")
	b.C.Wait(t, "from='alice@example.org/pc'")
	block(t, a, "block", "bl", "bob@example.org")
	b.C.Wait(t, "type='unavailable'", "from='alice@example.org/pc'")
	a.Send("<presence><status>while blocked</status></presence>")
	b.C.Never(t, "while blocked")
	block(t, a, "unblock", "ub", "bob@example.org")
	b.C.Wait(t, "from='alice@example.org/pc'", "while blocked") // current presence on unblock
	a.Send("<presence><status>after unblock</status></presence>")
	b.C.Wait(t, "from='alice@example.org/pc'", "after unblock")
}

// TestListLearnedAtPresence: a user's block list is read when their initial presence is
// broadcast (on a shard worker), not when their first message is checked, which may run
// on an event loop. A row written behind the module's back after the presence is
// therefore not seen, and one written before it is.
func TestListLearnedAtPresence(t *testing.T) {
	for _, tc := range []struct {
		name      string
		before    bool // the row is written before alice's presence
		delivered bool
	}{
		{"row written after the presence", false, true},
		{"row written before the presence", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := routertest.New(t, []string{"alice", "bob"}, nil)
			a := e.Bind("alice", "pc")
			b := e.Bind("bob", "pc")
			row := func() {
				if err := e.Store.Table("blocklist").Set(store.UserKey("alice@example.org", "bob@example.org"), nil); err != nil {
					t.Fatal(err)
				}
			}
			if tc.before {
				row()
			}
			a.Send("<presence/>")
			a.Send("<iq type='get' id='sync'><blocklist xmlns='urn:xmpp:blocking'/></iq>") // the presence has run
			a.C.Wait(t, "id='sync'")
			if !tc.before {
				row()
			}
			b.Send("<message to='alice@example.org/pc' type='chat' id='m1'><body>hi</body></message>")
			if tc.delivered {
				a.C.Wait(t, "id='m1'")
				return
			}
			b.C.Wait(t, "id='m1'", "service-unavailable")
			a.C.Never(t, "id='m1'")
		})
	}
}

// TestPushes: a block and an unblock reach the account's other session that requested
// the blocklist as pushes (XEP-0191 §3.3, §3.4), each with an id of its own, naming the
// JIDs as the list holds them; a session that never requested it gets none.
func TestPushes(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	phone := e.Bind("alice", "phone")
	other := e.Bind("alice", "other")
	phone.Send("<iq type='get' id='l'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	phone.C.Wait(t, "id='l'", "type='result'")
	block(t, a, "block", "bl", "BOB@Example.org")
	unblock := func() { block(t, a, "unblock", "ub", "bob@example.org") }
	unblock()
	other.C.Never(t, "urn:xmpp:blocking")
	p1 := phone.C.Wait(t, "<block xmlns='urn:xmpp:blocking'><item jid='bob@example.org'/></block>", "type='set'")
	p2 := phone.C.Wait(t, "<unblock xmlns='urn:xmpp:blocking'><item jid='bob@example.org'/></unblock>", "type='set'")
	idOf := func(s string) string {
		i := strings.Index(s, "id='")
		if i < 0 {
			t.Fatalf("push without an id: %s", s)
		}
		return s[i+4 : i+4+strings.IndexByte(s[i+4:], '\'')]
	}
	if idOf(p1) == idOf(p2) {
		t.Fatalf("two pushes share id %q:\n%s\n%s", idOf(p1), p1, p2)
	}
}

var aliceSIDRe = regexp.MustCompile(`<stanza-id xmlns='urn:xmpp:sid:0' id='([^']+)' by='alice@example.org'/>`)

// TestReports: XEP-0377. The server advertises reporting; a block with a report blocks as
// any block does, and the report goes to the abuse desk of [modules.blocking] report_to
// with the reporter, the reason and text, and the reported messages from the reporter's
// archive (only those the reported JID sent); the 0.2 form is understood; a report with no
// known reason is dropped and the block stands.
func TestReports(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol", "abuse"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*blocking.Config); ok {
				c.ReportTo = []string{"abuse@example.org"}
			}
			return nil
		}
	})
	a, b, c, desk := e.Bind("alice", "pc"), e.Bind("bob", "pc"), e.Bind("carol", "pc"), e.Bind("abuse", "desk")
	desk.Send("<presence/>") // available: reports to an absent desk wait offline
	a.Send("<iq type='get' to='example.org' id='info'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='info'", "<feature var='urn:xmpp:reporting:1'/>")

	var ids []string
	for i, s := range []*routertest.Sess{b, c, b} {
		body := fmt.Sprintf("buy now %d", i)
		s.Send("<message to='alice@example.org/pc' type='chat' id='s" + strconv.Itoa(i) + "'><body>" + body + "</body></message>")
		ids = append(ids, aliceSIDRe.FindStringSubmatch(a.C.Wait(t, "<body>"+body+"</body>"))[1])
	}
	a.Send("<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.org'>" +
		"<report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='" + ids[0] + "'/>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='" + ids[1] + "'/>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='" + ids[2] + "'/>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='nonsense'/>" +
		"<text xml:lang='en'>Never came trouble to my house like this &amp; that.</text></report></item></block></iq>")
	a.C.Wait(t, "id='b1'", "type='result'")
	got := desk.C.Wait(t, "from='example.org'", "to='abuse@example.org'", "id='report-")
	for _, want := range []string{
		"<body>alice@example.org reported bob@example.org for spam: Never came trouble to my house like this &amp; that.\n(2 reported messages attached)</body>",
		"<report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'><jid xmlns='urn:xmpp:jid:0'>bob@example.org</jid><text>",
		"<address type='ofrom' jid='alice@example.org'/>",
		"<body>buy now 0</body>", "<body>buy now 2</body>",
		"<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("the abuse desk's report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "buy now 1") {
		t.Fatalf("the report carries carol's message, which bob did not send:\n%s", got)
	}
	b.Send("<message to='alice@example.org/pc' type='chat' id='after'><body>still here</body></message>")
	b.C.Wait(t, "id='after'", "type='error'", "service-unavailable")

	// 0.2, as slixmpp sends it.
	a.Send("<iq type='set' id='b2'><block xmlns='urn:xmpp:blocking'><item jid='carol@example.org'>" +
		"<report xmlns='urn:xmpp:reporting:0'><abuse/><text>rude</text></report></item></block></iq>")
	a.C.Wait(t, "id='b2'", "type='result'")
	desk.C.Wait(t, "<body>alice@example.org reported carol@example.org for abuse: rude</body>", "reason='urn:xmpp:reporting:abuse'")

	// No reason the XEP knows: blocked, not reported.
	desk.C.Reset()
	a.Send("<iq type='set' id='b3'><block xmlns='urn:xmpp:blocking'><item jid='spam.example'>" +
		"<report xmlns='urn:xmpp:reporting:1' reason='urn:example:annoying'/></item></block></iq>")
	a.C.Wait(t, "id='b3'", "type='result'")
	a.Send("<iq type='get' id='l'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	a.C.Wait(t, "id='l'", "<item jid='spam.example'/>")
	desk.C.Never(t, "spam.example")
}

// TestListSizes: a block or unblock request holds at most MaxItems items (each costs a
// store write, and a domain item a pass over the roster); past that, resource-constraint
// and nothing changes.
func TestListSizes(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	a := e.Bind("alice", "pc")
	var items strings.Builder
	for i := range blocking.MaxItems + 1 {
		fmt.Fprintf(&items, "<item jid='spam%d.example'/>", i)
	}
	for _, verb := range []string{"block", "unblock"} {
		a.Send("<iq type='set' id='" + verb + "'><" + verb + " xmlns='urn:xmpp:blocking'>" + items.String() + "</" + verb + "></iq>")
		a.C.Wait(t, "id='"+verb+"'", "type='error'", "<resource-constraint")
	}
	a.Send("<iq type='get' id='list'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	if got := a.C.Wait(t, "id='list'"); strings.Contains(got, "<item") {
		t.Fatalf("the refused block changed the list: %s", got)
	}
}

// TestRevokeWhileBlocked: revoking a blocked contact's subscription takes effect (the
// roster follows, the contact is told): presence does not go back to it when the block
// is lifted.
func TestRevokeWhileBlocked(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth})
	e.Store.Rosters().Put("bob@example.org", store.RosterItem{JID: "alice@example.org", Sub: store.SubBoth})
	b := e.Bind("bob", "pc")
	b.Send("<presence/>")
	a := e.Bind("alice", "pc")
	a.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
	a.C.Wait(t, "id='r'")
	a.Send("<presence/>")
	b.C.Wait(t, "from='alice@example.org/pc'")
	block(t, a, "block", "bl", "bob@example.org")
	a.Send("<presence to='bob@example.org' type='unsubscribed'/>")
	a.C.Wait(t, "jid='bob@example.org'", "subscription='to'")
	b.C.Wait(t, "type='unsubscribed'", "from='alice@example.org'")
	b.C.Reset()
	block(t, a, "unblock", "ub", "bob@example.org")
	a.Send("<presence><status>after</status></presence>")
	a.Send("<iq type='get' id='sync' to='bob@example.org'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='sync'")
	b.C.Never(t, "after")
}

// TestBlockEndsDirectedPresence: XEP-0191 §3.3 for an entity outside the roster that has
// the user's directed presence. Blocking it sends unavailable from that session, once:
// ending the session later sends no second one, and the entity gets nothing else.
func TestBlockEndsDirectedPresence(t *testing.T) {
	e := routertest.New(t, []string{"alice", "carol", "dave"}, nil)
	c := e.Bind("carol", "pc")
	d := e.Bind("dave", "pc")
	c.Send("<presence/>")
	d.Send("<presence/>")
	a := e.Bind("alice", "pc")
	a.Send("<presence/>")
	a.Send("<presence to='carol@example.org'><status>hi</status></presence>")
	a.Send("<presence to='dave@example.org/pc'/>")
	c.C.Wait(t, "from='alice@example.org/pc'", "<status>hi</status>")
	d.C.Wait(t, "from='alice@example.org/pc'")
	c.C.Reset()
	d.C.Reset()
	block(t, a, "block", "b1", "carol@example.org", "dave@example.org")
	c.C.Wait(t, "<presence type='unavailable' from='alice@example.org/pc' to='carol@example.org'")
	d.C.Wait(t, "<presence type='unavailable' from='alice@example.org/pc' to='dave@example.org/pc'")
	c.C.Reset()
	d.C.Reset()
	a.Unbind()
	c.C.Never(t, "alice@example.org")
	d.C.Never(t, "alice@example.org")
}
