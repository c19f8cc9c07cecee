package engine_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// expectMention reads the next publish the app server gets and checks that it is for
// user's node with count, from the room's occupant Alice.
func expectMention(t *testing.T, app *vireotest.RawConn, user, node, count string) {
	t.Helper()
	got := app.Expect("</iq>")
	for _, want := range []string{
		"from='" + user + "@localhost' to='push.localhost'",
		"<publish node='" + node + "'><item><notification xmlns='urn:xmpp:push:0'>",
		"<field var='message-count'><value>" + count + "</value></field>",
		"<field var='last-message-sender'><value>" + mucRoom + "/Alice</value></field>",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("want a publish for %s to %s with count %s; lacks %q:\n%s", user, node, count, want, got)
		}
	}
}

// TestIntegrationMUCMentionPush: members of a members-only room who are away from it are
// notified through XEP-0357 when a groupchat message names them, by reserved nickname as a
// word of the body or by an XEP-0372 reference to their JID, with a real XEP-0114
// component as the app server. A member who is not named, a word that only contains the
// nickname, and a member reading the room are not notified; a member in the room whose
// only session is XEP-0352 inactive is.
func TestIntegrationMUCMentionPush(t *testing.T) {
	cfg, err := config.Parse([]byte("domains = [\"localhost\"]\n[modules.push]\nmin_interval = \"0s\"\n"), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, ModuleConfig: cfg.ModuleConfig,
		Components: []engine.Component{{Domain: "push.localhost", Secret: compSecret}}})
	for _, u := range []string{"alice", "bob", "dave"} {
		srv.AddUser(t, u, "secret")
	}
	app, _ := componentLogin(t, srv, "push.localhost", compSecret)
	app.Expect("<handshake/>")

	alice := mucLogin(t, srv, "alice", "pc")
	mucCreate(t, alice, mucRoom, "Alice")
	alice.Send(mucConfig(mucRoom, "cfg", "muc#roomconfig_membersonly", "1"))
	expectStanza(t, alice, "id='cfg'", "type='result'")
	alice.Send("<iq type='set' to='" + mucRoom + "' id='aff'>" + mucAdmin +
		"<item affiliation='member' jid='bob@localhost' nick='Bobby'/><item affiliation='member' jid='dave@localhost' nick='Dave'/></query></iq>")
	expectStanza(t, alice, "id='aff'", "type='result'")

	// Bob and Dave enable push, then go offline.
	for _, u := range []string{"bob", "dave"} {
		c := srv.LoginPlain(t, u, "secret", "phone")
		c.Send("<iq type='set' id='e'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='" + u + "-node'/></iq>")
		if got := c.Expect("id='e'"); !strings.Contains(got, "type='result'") {
			t.Fatalf("enable: %s", got)
		}
		c.Send("</stream:stream>")
		c.Expect("</stream:stream>")
	}
	say := func(id, inner string) {
		t.Helper()
		alice.Send("<message to='" + mucRoom + "' type='groupchat' id='" + id + "'>" + inner + "</message>")
		expectStanza(t, alice, "id='"+id+"'", "from='"+mucRoom+"/Alice'")
	}
	say("m1", "<body>hello, bobby!</body>")
	expectMention(t, app, "bob", "bob-node", "1")
	// Not a word of its own, and nobody named: nothing. Then a reference to Bob's JID.
	say("m2", "<body>Bobbyx and nobody else</body>")
	say("m3", "<body>look</body><reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:bob@localhost'/>")
	expectMention(t, app, "bob", "bob-node", "2")
	say("m4", "<body>Dave: ping</body>")
	expectMention(t, app, "dave", "dave-node", "1")

	// Bob reads the room: no notification. His only session goes inactive: notified.
	bob := mucLogin(t, srv, "bob", "pc")
	bob.Send(mucJoin(mucRoom, "Bobby", "jb"))
	expectStanza(t, bob, "id='jb'", "<status code='110'/>")
	expectStanza(t, bob, "<subject/>")
	say("m5", "<body>Bobby, welcome back</body>")
	expectStanza(t, bob, "id='m5'")
	bob.Send("<inactive xmlns='urn:xmpp:csi:0'/><iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	expectStanza(t, bob, "id='p1'")
	say("m6", "<body>bobby?</body>")
	expectMention(t, app, "bob", "bob-node", "1") // awake since m3: the count started over
	app.Never("<iq")
}
