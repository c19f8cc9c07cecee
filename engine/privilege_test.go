package engine_test

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
)

// privilegeServer starts a server with two components: gw.localhost, a gateway with
// roster and message privileges (and an IQ namespace), and plain.localhost with none;
// alice and bob are contacts, and alice has two clients online with carbons on.
func privilegeServer(t *testing.T) (srv *vireotest.Server, pc, phone, bob *vireotest.RawConn) {
	t.Helper()
	srv = vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Components: []engine.Component{
		{Domain: "gw.localhost", Secret: compSecret, Privileges: module.Privileges{Roster: "both", Message: "outgoing",
			IQ: map[string]string{"http://jabber.org/protocol/pubsub": "set"}}},
		{Domain: "plain.localhost", Secret: compSecret},
	}})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "alice", "bob", "")
	bob = srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	pc = srv.LoginPlain(t, "alice", "secret", "pc")
	phone = srv.LoginPlain(t, "alice", "secret", "phone")
	for i, c := range []*vireotest.RawConn{pc, phone} {
		id := "c" + string(rune('0'+i))
		c.Send("<iq type='set' id='" + id + "'><enable xmlns='urn:xmpp:carbons:2'/></iq><iq type='get' id='r" + id + "'><query xmlns='jabber:iq:roster'/></iq><presence/>")
		c.Expect("id='r" + id + "'")
	}
	return srv, pc, phone, bob
}

// TestIntegrationSlixmppPrivilege: XEP-0356 with slixmpp's plugin as the gateway
// (testdata/slixmpp_privilege.py). The server announces the gateway's privileges when it
// connects; the gateway reads alice's roster, adds its contact to it (which alice's
// clients get as a roster push) and sends bob a message as alice, which bob gets from
// alice's bare JID, both of alice's clients get as a sent carbon, and her archive keeps.
func TestIntegrationSlixmppPrivilege(t *testing.T) {
	needSlixmpp(t)
	srv, pc, phone, bob := privilegeServer(t)
	host, port, _ := net.SplitHostPort(srv.ComponentAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/slixmpp_privilege.py", "gw.localhost", compSecret,
		host, port, "alice@localhost", "bob@localhost").CombinedOutput()
	if err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, out)
	}
	for _, want := range []string{"PRIVILEGES both outgoing", "ROSTER bob@localhost", "ROSTER SET", "PUPPET both Puppet Gateway", "SENT"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("slixmpp output lacks %q:\n%s", want, out)
		}
	}
	for _, c := range []*vireotest.RawConn{pc, phone} {
		got, _ := c.ReadUntil("sent on the other network", 10*time.Second)
		for _, want := range []string{"<item jid='puppet@gw.localhost' name='Puppet' subscription='both'><group>Gateway</group></item>",
			"<sent xmlns='urn:xmpp:carbons:2'>", "from='alice@localhost'"} {
			if !strings.Contains(got, want) {
				t.Fatalf("alice's client lacks %q: %s", want, got)
			}
		}
	}
	got, _ := bob.ReadUntil("sent on the other network", 10*time.Second)
	got = got[strings.LastIndex(got, "<message"):] + bob.Expect("</message>")
	if !strings.Contains(got, `from="alice@localhost"`) || !strings.Contains(got, "<stanza-id") {
		t.Fatalf("bob's copy: %s", got)
	}
	pc.Send("<iq type='set' id='mam'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>")
	if got, _ := pc.ReadUntil("id='mam'", 10*time.Second); !strings.Contains(got, "sent on the other network") {
		t.Fatalf("alice's archive lacks the message: %s", got)
	}
}

// TestIntegrationPrivilegeRaw: XEP-0356 on raw streams. A component without privileges
// is announced nothing and gets forbidden for a roster get and a message as a user; the
// privileged gateway gets forbidden for a message as a remote user or as a full JID,
// bad-request for a privilege that forwards nothing, and item-not-found for an account
// that does not exist. Its IQs as a user (§6) are refused outside the granted namespace
// and type, for remote users and for an inner 'from' of someone else; granted, a
// bookmark reaches alice's PEP and a node is created on the pubsub service, and each
// answer comes back wrapped, as the answer to the gateway's own id.
func TestIntegrationPrivilegeRaw(t *testing.T) {
	srv, _, _, _ := privilegeServer(t)
	plain, _ := componentLogin(t, srv, "plain.localhost", compSecret)
	plain.Expect("<handshake/>")
	plain.Send("<iq type='get' id='r1' from='plain.localhost' to='alice@localhost'><query xmlns='jabber:iq:roster'/></iq>")
	if got := plain.Expect("</iq>"); !strings.Contains(got, "<forbidden") {
		t.Fatalf("roster get without the privilege: %s", got)
	}
	as := func(from string) string {
		return "<message from='gw.localhost' to='localhost' id='m'><privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' from='" + from + "' to='bob@localhost' type='chat'><body>as " + from + "</body></message></forwarded></privilege></message>"
	}
	plain.Send(strings.ReplaceAll(as("alice@localhost"), "from='gw.localhost'", "from='plain.localhost'"))
	if got := plain.Expect("</message>"); !strings.Contains(got, "<forbidden") {
		t.Fatalf("a message as a user without the privilege: %s", got)
	}
	plain.Never("privilege xmlns") // announced nothing

	gw, _ := componentLogin(t, srv, "gw.localhost", compSecret)
	gw.Expect("<handshake/>")
	if got := gw.Expect("</message>"); !strings.Contains(got, "<perm access='roster' type='both' push='true'/>") ||
		!strings.Contains(got, "<perm access='message' type='outgoing'/>") ||
		!strings.Contains(got, "<namespace ns='http://jabber.org/protocol/pubsub' type='set'/>") {
		t.Fatalf("the announcement: %s", got)
	}
	for _, tc := range []struct{ from, want string }{
		{"mallory@elsewhere.example", "<forbidden"},
		{"alice@localhost/pc", "<forbidden"},
		{"nobody@localhost", "<item-not-found"},
	} {
		gw.Send(as(tc.from))
		if got := gw.Expect("</message>"); !strings.Contains(got, tc.want) {
			t.Fatalf("a message as %s: %s", tc.from, got)
		}
	}
	gw.Send("<message from='gw.localhost' to='localhost' id='e'><privilege xmlns='urn:xmpp:privilege:2'/></message>")
	if got := gw.Expect("</message>"); !strings.Contains(got, "<bad-request") {
		t.Fatalf("a privilege without a message: %s", got)
	}

	// §6: IQs as a user, in the granted namespace and type only.
	privIQ := func(outer, to, typ, inner string) string {
		return "<iq type='" + typ + "' id='" + outer + "' from='gw.localhost' to='" + to + "'><privileged_iq xmlns='urn:xmpp:privilege:2'>" +
			"<iq xmlns='jabber:client' type='" + typ + "' id='in-" + outer + "'" + inner + "</iq></privileged_iq></iq>"
	}
	for _, tc := range []struct{ name, stanza, want string }{
		{"another namespace", privIQ("p1", "alice@localhost", "get", "><query xmlns='jabber:iq:roster'/>"), "<forbidden"},
		{"a get where set is granted", privIQ("p2", "alice@localhost", "get", "><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='x'/></pubsub>"), "<forbidden"},
		{"a remote user", privIQ("p3", "mallory@elsewhere.example", "set", "><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='x'/></pubsub>"), "<forbidden"},
		{"as someone else", privIQ("p4", "alice@localhost", "set", " from='bob@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='x'/></pubsub>"), "<forbidden"},
		{"no such account", privIQ("p5", "nobody@localhost", "set", "><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='x'/></pubsub>"), "<item-not-found"},
	} {
		gw.Send(tc.stanza)
		if got := gw.Expect("</iq>"); !strings.Contains(got, tc.want) || !strings.Contains(got, "type='error'") {
			t.Fatalf("%s: %s", tc.name, got)
		}
	}
	// Granted: a bookmark published to alice's own PEP (the server answers as her
	// account), and a node created on the pubsub service (the service answers her).
	bookmark := "><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='room@conference.localhost'>" +
		"<conference xmlns='urn:xmpp:bookmarks:1' name='Gateway room' autojoin='true'/></item></publish>" +
		"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
		"<field var='pubsub#persist_items'><value>true</value></field><field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub>"
	gw.Send(privIQ("b1", "alice@localhost", "set", bookmark))
	got := gw.Expect("</privilege></iq>")
	for _, want := range []string{"type='result'", "id='b1'", "from='alice@localhost'", "<privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'><iq ", "id='in-b1'"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the bookmark's answer lacks %q: %s", want, got)
		}
	}
	pc := srv.LoginPlain(t, "alice", "secret", "desk")
	pc.Send("<iq type='get' id='bm'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>")
	if got, _ := pc.ReadUntil("id='bm'", 5*time.Second); !strings.Contains(got+pc.Expect("</iq>"), "Gateway room") {
		t.Fatalf("alice's bookmarks: %s", got)
	}
	gw.Send(privIQ("c1", "alice@localhost", "set", " to='pubsub.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='gw-news'/></pubsub>"))
	if got := gw.Expect("</privilege></iq>"); !strings.Contains(got, "type='result'") || !strings.Contains(got, "id='c1'") || !strings.Contains(got, "from='pubsub.localhost'") {
		t.Fatalf("the service's answer: %s", got)
	}
	// To one of alice's own resources: its answer, to her bare JID, comes back too.
	gw.Send(privIQ("f1", "alice@localhost", "set", " to='alice@localhost/desk'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='x'/></pubsub>"))
	mustHave(t, "the request at alice's resource", pc.Expect("</iq>"), "id='in-f1'", "from='alice@localhost'")
	pc.Send("<iq type='result' id='in-f1' to='alice@localhost'/>")
	mustHave(t, "her resource's answer", gw.Expect("</privilege></iq>"), "type='result'", "id='f1'", "id='in-f1'")
}

// TestIntegrationPrivilegePresence: a component with the managed_entity presence
// privilege gets, when it connects, the presence of everyone online, then every session's
// available and unavailable presence as it happens (a session that just goes away too);
// a component without it gets none.
func TestIntegrationPrivilegePresence(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Components: []engine.Component{
		{Domain: "watch.localhost", Secret: compSecret, Privileges: module.Privileges{Presence: "managed_entity"}},
		{Domain: "plain.localhost", Secret: compSecret},
	}})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	alice := srv.LoginPlain(t, "alice", "secret", "pc")
	alice.Send("<presence><status>here before</status></presence>")
	alice.Expect("from='alice@localhost/pc'")

	plain, _ := componentLogin(t, srv, "plain.localhost", compSecret)
	plain.Expect("<handshake/>")
	w, _ := componentLogin(t, srv, "watch.localhost", compSecret)
	w.Expect("<handshake/>")
	if got := w.Expect("</message>"); !strings.Contains(got, "<perm access='presence' type='managed_entity'/>") {
		t.Fatalf("the announcement: %s", got)
	}
	got, _ := w.ReadUntil("here before", 5*time.Second)
	if !strings.Contains(got, "from='alice@localhost/pc'") || !strings.Contains(got, "to='watch.localhost'") {
		t.Fatalf("who was online: %s", got)
	}
	bob := srv.LoginPlain(t, "bob", "secret", "phone")
	bob.Send("<presence><show>away</show></presence>")
	if got, _ := w.ReadUntil("<show>away</show>", 5*time.Second); !strings.Contains(got, "from='bob@localhost/phone'") {
		t.Fatalf("bob's presence: %s", got)
	}
	bob.Send("<presence type='unavailable'/>")
	if got, _ := w.ReadUntil("type='unavailable'", 5*time.Second); !strings.Contains(got[strings.LastIndex(got, "<presence"):]+w.Expect(">"), "from='bob@localhost/phone'") {
		t.Fatalf("bob's unavailable: %s", got)
	}
	alice.Conn().Close() // gone without a word: the server's unavailable
	if got, _ := w.ReadUntil("type='unavailable'", 5*time.Second); !strings.Contains(got[strings.LastIndex(got, "<presence"):]+w.Expect(">"), "alice@localhost/pc") {
		t.Fatalf("alice's end: %s", got)
	}
	plain.Never("<presence")
}

// TestIntegrationPrivilegeRosterPush: a component that may read rosters gets a roster push
// from the user's bare JID for each change to any user's roster (XEP-0356 §4.4): an item
// the user adds, a subscription another user's request changes, a removal. One with
// roster_push off, or with roster = set, gets none; the announcements say which.
func TestIntegrationPrivilegeRosterPush(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Components: []engine.Component{
		{Domain: "gw.localhost", Secret: compSecret, Privileges: module.Privileges{Roster: "get"}},
		{Domain: "quiet.localhost", Secret: compSecret, Privileges: module.Privileges{Roster: "both", NoRosterPush: true}},
		{Domain: "writer.localhost", Secret: compSecret, Privileges: module.Privileges{Roster: "set"}},
	}})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	comps := map[string]*vireotest.RawConn{}
	for domain, want := range map[string]string{
		"gw.localhost":     "<perm access='roster' type='get' push='true'/>",
		"quiet.localhost":  "<perm access='roster' type='both' push='false'/>",
		"writer.localhost": "<perm access='roster' type='set'/>",
	} {
		c, _ := componentLogin(t, srv, domain, compSecret)
		c.Expect("<handshake/>")
		mustHave(t, domain+" announcement", c.Expect("</message>"), want)
		comps[domain] = c
	}
	gw := comps["gw.localhost"]
	alice := srv.LoginPlain(t, "alice", "secret", "pc")
	alice.Send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq><presence/>")
	alice.Expect("id='r0'")

	push := func(what, from string, want ...string) {
		t.Helper()
		got := gw.Expect("</iq>")
		mustHave(t, what, got, append([]string{"type='set'", "from='" + from + "'", "to='gw.localhost'", "<query xmlns='jabber:iq:roster' ver='"}, want...)...)
		id := regexp.MustCompile(`id='([^']+)'`).FindStringSubmatch(got)[1]
		gw.Send("<iq type='result' id='" + id + "' from='gw.localhost' to='" + from + "'/>")
	}
	alice.Send("<iq type='set' id='a1'><query xmlns='jabber:iq:roster'><item jid='carol@example.org' name='Carol'><group>Friends</group></item></query></iq>")
	alice.Expect("id='a1'")
	push("an added item", "alice@localhost", "jid='carol@example.org'", "name='Carol'", "<group>Friends</group>")

	// bob asks to see alice's presence: his roster gets her, pending out.
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence to='alice@localhost' type='subscribe'/>")
	push("bob's subscription request", "bob@localhost", "jid='alice@localhost'", "ask='subscribe'")
	alice.Expect("type='subscribe'")
	// alice approves: each roster changes, on its own shard (either push may come first).
	alice.Send("<presence to='bob@localhost' type='subscribed'/>")
	got := gw.Expect("</iq>") + gw.Expect("</iq>")
	mustHave(t, "the approval", got, "from='alice@localhost'", "jid='bob@localhost' subscription='from'",
		"from='bob@localhost'", "jid='alice@localhost' subscription='to'")

	alice.Send("<iq type='set' id='a2'><query xmlns='jabber:iq:roster'><item jid='carol@example.org' subscription='remove'/></query></iq>")
	alice.Expect("id='a2'")
	push("a removal", "alice@localhost", "jid='carol@example.org'", "subscription='remove'")

	// The component's answers went nowhere: no error came back to it.
	gw.Never("type='error'")
	comps["quiet.localhost"].Never("jabber:iq:roster")
	comps["writer.localhost"].Never("jabber:iq:roster")

	// A set without 'subscription' renames the item and keeps its subscription (RFC 6121
	// §2.3): alice still shares her presence with bob.
	w := comps["writer.localhost"]
	w.Send("<iq type='set' id='w1' from='writer.localhost' to='alice@localhost'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'/></query></iq>")
	mustHave(t, "the rename", w.Expect("id='w1'"), "type='result'")
	alice.Send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
	mustHave(t, "alice's roster after the rename", alice.Expect("id='r1'")+alice.Expect("</iq>"), "jid='bob@localhost'", "name='Bob'", "subscription='from'")
}

// TestIntegrationPrivilegeRosterPresence: a component with the roster presence privilege
// (XEP-0356 §7.4) gets the presence of the users' contacts on another server once, however
// many users have the contact (§8 rule 2), even while those users are offline; not a
// directed presence from someone off the roster; the users' own presence (implied
// managed_entity); and when it connects again, every contact still available (rule 1).
func TestIntegrationPrivilegeRosterPresence(t *testing.T) {
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true, S2SSecret: []byte("secret-a"),
		Components: []engine.Component{{Domain: "gw.a.localhost", Secret: compSecret,
			Privileges: module.Privileges{Roster: "get", NoRosterPush: true, Presence: "roster"}}}})
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true})
	vireotest.Federate(a, b)
	for _, u := range []string{"juliet", "nurse", "carol"} {
		a.AddUser(t, u, "secret")
	}
	b.AddUser(t, "romeo", "secret")
	for _, u := range []string{"juliet", "nurse"} {
		if _, err := a.Store.Rosters().Put(u+"@a.localhost", store.RosterItem{JID: "romeo@b.localhost", Sub: store.SubTo}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Store.Rosters().Put("romeo@b.localhost", store.RosterItem{JID: u + "@a.localhost", Sub: store.SubFrom}); err != nil {
			t.Fatal(err)
		}
	}
	gw, _ := componentLogin(t, a, "gw.a.localhost", compSecret)
	gw.Expect("<handshake/>")
	mustHave(t, "the announcement", gw.Expect("</message>"), "<perm access='presence' type='roster'/>")

	romeo := b.LoginPlain(t, "romeo", "secret", "orchard")
	romeo.Send("<presence><status>under the balcony</status></presence>")
	got := gw.Expect("</presence>")
	mustHave(t, "romeo's presence", got, "from='romeo@b.localhost/orchard'", "to='gw.a.localhost'", "under the balcony")
	// carol does not have romeo on her roster: his directed presence to her is not a
	// contact's. Both copies of his broadcast came in; the component had one.
	romeo.Send("<presence to='carol@a.localhost'><status>hello carol</status></presence>")
	gw.Never("<presence")

	juliet := a.LoginPlain(t, "juliet", "secret", "balcony")
	juliet.Send("<presence/>")
	mustHave(t, "juliet's own presence", gw.Expect("/>"), "from='juliet@a.localhost/balcony'")
	// Her initial presence probed romeo: his answer to her is what the component had.
	juliet.Expect("under the balcony")
	gw.Never("under the balcony")

	// Connecting again, the component gets who is available: juliet, and romeo.
	gw.Conn().Close()
	// Until the server has seen the close, the domain is taken (<conflict/>): again.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		gw, _ = componentLogin(t, a, "gw.a.localhost", compSecret)
		got, err := gw.ReadUntil("<handshake/>", 2*time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the component's second login: %v: %q", err, got)
		}
		gw.Conn().Close()
	}
	gw.Expect("</message>")
	// The two come from different places (the router's record of contacts, juliet's
	// shard): in either order.
	got = ""
	for !strings.Contains(got, "under the balcony") || !strings.Contains(got, "from='juliet@a.localhost/balcony'") ||
		!strings.HasSuffix(got, "/>") && !strings.HasSuffix(got, "</presence>") {
		got += gw.Expect(">")
	}
	mustHave(t, "the replay", got, "from='romeo@b.localhost/orchard'")

	romeo.Send("<presence type='unavailable'/>")
	mustHave(t, "romeo leaving", gw.Expect("/>"), "from='romeo@b.localhost/orchard'", "type='unavailable'")
	gw.Never("romeo@b.localhost")
}

// TestIntegrationComponentSubdomains: a component's subdomains are its own only when
// nothing else serves them. An unprivileged component under a privileged one's domain
// gets none of its privileges, and the privileged one may not send as the other.
func TestIntegrationComponentSubdomains(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Components: []engine.Component{
		{Domain: "gw.localhost", Secret: compSecret, Privileges: module.Privileges{Roster: "both"}},
		{Domain: "irc.gw.localhost", Secret: compSecret},
	}})
	srv.AddUser(t, "alice", "secret")
	irc, _ := componentLogin(t, srv, "irc.gw.localhost", compSecret)
	irc.Expect("<handshake/>")
	irc.Send("<iq type='get' id='r1' from='irc.gw.localhost' to='alice@localhost'><query xmlns='jabber:iq:roster'/></iq>")
	if got := irc.Expect("</iq>"); !strings.Contains(got, "<forbidden") {
		t.Fatalf("the roster of alice to a component under a privileged one: %s", got)
	}
	gw, _ := componentLogin(t, srv, "gw.localhost", compSecret)
	gw.Expect("<handshake/>")
	gw.Send("<message from='someone@irc.gw.localhost' to='alice@localhost' type='chat'><body>as the other</body></message>")
	if got := gw.ExpectClosed(); !strings.Contains(got, "<invalid-from") {
		t.Fatalf("a message as another component's JID: %s", got)
	}
	// Nor from a domain under the other's: that is the other's to speak for, its
	// privileges included.
	gw, _ = componentLogin(t, srv, "gw.localhost", compSecret)
	gw.Expect("<handshake/>")
	gw.Send("<iq type='get' id='r2' from='x.irc.gw.localhost' to='alice@localhost'><query xmlns='jabber:iq:roster'/></iq>")
	if got := gw.ExpectClosed(); !strings.Contains(got, "<invalid-from") {
		t.Fatalf("an IQ from under another component's domain: %s", got)
	}
	// A subdomain of its own that nothing else serves is the component's both ways: an
	// answer to it comes back to the component, not out to federation.
	gw, _ = componentLogin(t, srv, "gw.localhost", compSecret)
	gw.Expect("<handshake/>")
	alice := srv.LoginPlain(t, "alice", "secret", "pc")
	gw.Send("<message from='bot@rooms.gw.localhost' to='alice@localhost/pc' type='chat' id='s1'><body>from a subdomain</body></message>")
	alice.Expect("from a subdomain")
	alice.Send("<message to='bot@rooms.gw.localhost' type='chat' id='s2'><body>answer</body></message>")
	mustHave(t, "the answer to the subdomain", gw.Expect("answer"), "to='bot@rooms.gw.localhost'")
	irc.Send("<iq type='get' id='i1' from='irc.gw.localhost' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	irc.Expect("id='i1'")
	alice.Send("<message to='bot@x.irc.gw.localhost' type='chat' id='s3'><body>to the other</body></message>")
	mustHave(t, "a message under the other component", irc.Expect("</message>"), "to='bot@x.irc.gw.localhost'")
}

// TestIntegrationComponentReload: a reload that takes a connected component out of the
// configuration ends its stream with host-gone, and one that changes its secret with
// not-authorized; the route goes with the stream. A component may not take a domain a
// module's service has.
func TestIntegrationComponentReload(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Components: []engine.Component{
		{Domain: "gone.localhost", Secret: compSecret},
		{Domain: "rekeyed.localhost", Secret: compSecret},
		{Domain: "kept.localhost", Secret: compSecret},
		{Domain: "pubsub.localhost", Secret: compSecret},
	}})
	conns := map[string]*vireotest.RawConn{}
	for _, d := range []string{"gone.localhost", "rekeyed.localhost", "kept.localhost"} {
		c, _ := componentLogin(t, srv, d, compSecret)
		c.Expect("<handshake/>")
		conns[d] = c
	}
	r := vireotest.DialAddr(t, srv.ComponentAddr())
	r.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='pubsub.localhost'>")
	mustHave(t, "a component on a service's domain", r.ExpectClosed(), "<host-unknown")

	cfg := srv.Engine.Config()
	cfg.Components = []engine.Component{{Domain: "rekeyed.localhost", Secret: "another secret"}, {Domain: "kept.localhost", Secret: compSecret}}
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	mustHave(t, "the removed component", conns["gone.localhost"].ExpectClosed(), "<host-gone")
	mustHave(t, "the component with a new secret", conns["rekeyed.localhost"].ExpectClosed(), "<not-authorized")
	k := conns["kept.localhost"]
	k.Send("<iq type='get' id='p' from='kept.localhost' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	mustHave(t, "the kept component", k.Expect("id='p'"), "type='result'")
}
