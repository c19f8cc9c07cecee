package engine_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/engine/vireotest"
)

var pushIDRe = regexp.MustCompile(`<iq type='set' from='alice@localhost' to='push.localhost' id='(push-[a-z2-7]{26})'>`)

// expectPublish reads the next publish the app server gets and checks its node, count and
// sender; it returns the stanza and its id.
func expectPublish(t *testing.T, app *vireotest.RawConn, node, count string) (string, string) {
	t.Helper()
	got := app.Expect("</iq>")
	m := pushIDRe.FindStringSubmatch(got)
	for _, want := range []string{
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='" + node + "'><item><notification xmlns='urn:xmpp:push:0'>",
		"<field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>",
		"<field var='message-count'><value>" + count + "</value></field>",
		"<field var='last-message-sender'><value>bob@localhost/pc</value></field>",
	} {
		if m == nil || !strings.Contains(got, want) {
			t.Fatalf("want a publish to %s with count %s; lacks %q:\n%s", node, count, want, got)
		}
	}
	if strings.Contains(got, "last-message-body") || strings.Contains(got, "secret words") {
		t.Fatalf("the body went to the app server without include_body:\n%s", got)
	}
	return got, m[1]
}

// pushServer starts a server with [modules.push] as vireo.toml gives it (min_interval 0),
// the contacts alice and bob, an XEP-0114 component as the app server on push.localhost,
// and bob logged in and available.
func pushServer(t *testing.T) (*vireotest.Server, *vireotest.RawConn, *vireotest.RawConn) {
	t.Helper()
	cfg, err := config.Parse([]byte("domains = [\"localhost\"]\n[modules.push]\nmin_interval = \"0s\"\n"), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, ModuleConfig: cfg.ModuleConfig,
		Components: []engine.Component{{Domain: "push.localhost", Secret: compSecret}}})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "alice", "bob", "")
	app, _ := componentLogin(t, srv, "push.localhost", compSecret)
	app.Expect("<handshake/>")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	return srv, app, bob
}

// TestIntegrationPush runs XEP-0357 end to end: a real XEP-0114 component is the app
// server, alice registers it over her stream, and messages from bob while she is offline,
// XEP-0352 inactive, or gone with XEP-0198 messages unacknowledged reach it as pubsub
// publishes; an error from the app server disables its registration, and so does
// <disable/>.
func TestIntegrationPush(t *testing.T) {
	srv, app, bob := pushServer(t)

	// The account advertises push; alice registers two nodes, the first with a secret.
	a := srv.LoginPlain(t, "alice", "secret", "phone")
	a.Send("<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got := a.Expect("</iq>"); !strings.Contains(got, "<feature var='urn:xmpp:push:0'/>") {
		t.Fatalf("account disco#info lacks urn:xmpp:push:0: %s", got)
	}
	a.Send("<iq type='set' id='e1'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='n1'>" +
		"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
		"<field var='secret'><value>s3cr3t</value></field></x></enable></iq>")
	a.Send("<iq type='set' id='e2'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='n2'/></iq>")
	if got := a.Expect("id='e2'"); !strings.Contains(got, "type='result' id='e1'") {
		t.Fatalf("enable: %s", got)
	}
	a.Send("<presence/>")
	bob.Expect("from='alice@localhost/phone'")

	// Offline: each message with a body is published to both nodes, counted.
	a.Send("</stream:stream>")
	bob.Expect("type='unavailable'") // her session is gone from her shard
	bob.Send("<message to='alice@localhost' type='chat' id='m1'><body>secret words</body></message>")
	got, id1 := expectPublish(t, app, "n1", "1")
	if !strings.Contains(got, "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s3cr3t</value></field></x></publish-options>") {
		t.Fatalf("publish without the registration's publish-options:\n%s", got)
	}
	got, _ = expectPublish(t, app, "n2", "1")
	if strings.Contains(got, "publish-options") {
		t.Fatalf("publish-options on a registration without a form:\n%s", got)
	}
	app.Send("<iq type='result' from='push.localhost' to='alice@localhost' id='" + id1 + "'/>")
	bob.Send("<message to='alice@localhost' type='chat' id='m2'><body>secret words</body></message>")
	_, id2 := expectPublish(t, app, "n1", "2")
	expectPublish(t, app, "n2", "2")

	// The app server refuses n1: n1 is disabled, n2 goes on. Its disco query to alice's
	// JID is answered in her shard after the error, so the error has been handled then.
	app.Send("<iq type='error' from='push.localhost' to='alice@localhost' id='" + id2 + "'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
	app.Send("<iq type='get' from='push.localhost' to='alice@localhost' id='sync1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	app.Expect("id='sync1'")
	app.Expect("</iq>")
	bob.Send("<message to='alice@localhost' type='chat' id='m3'><body>secret words</body></message>")
	// Publishes for one message go out in key order (n1 before n2): the first one now is n2's.
	expectPublish(t, app, "n2", "3")

	// Back online (the count starts over), then disable n2 and register n3.
	a = srv.LoginPlain(t, "alice", "secret", "phone")
	a.Send("<presence/>")
	a.Expect("id='m3'") // offline storage
	a.Send("<iq type='set' id='x1'><disable xmlns='urn:xmpp:push:0' jid='push.localhost' node='n2'/></iq>")
	a.Expect("id='x1'")
	a.Send("<iq type='set' id='e3'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='n3'/></iq>")
	a.Expect("id='e3'")
	// XEP-0352 inactive: the session is there but nobody looks at it.
	a.Send("<inactive xmlns='urn:xmpp:csi:0'/><iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("id='p1'")
	bob.Send("<message to='alice@localhost' type='chat' id='m4'><body>secret words</body></message>")
	expectPublish(t, app, "n3", "1") // not n2: disabled
	a.Expect("id='m4'")              // delivered all the same

	// Disable without a node: every registration with push.localhost goes.
	a.Send("<iq type='set' id='x2'><disable xmlns='urn:xmpp:push:0' jid='push.localhost'/></iq>")
	if got := a.Expect("id='x2'"); !strings.Contains(got, "type='result'") {
		t.Fatalf("disable: %s", got)
	}
	bob.Send("<message to='alice@localhost' type='chat' id='m5'><body>secret words</body></message>")
	a.Expect("id='m5'")
	app.Never("<iq")

	// Stream management: the connection dies with m6 unacknowledged. That is notified when
	// the session detaches, and m7, which arrives while it is detached, too.
	a.Send("<iq type='set' id='e4'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='n4'/></iq>")
	a.Expect("id='e4'")
	a.Send("<active xmlns='urn:xmpp:csi:0'/>")
	a.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	a.Expect("<enabled xmlns='urn:xmpp:sm:3'")
	bob.Send("<message to='alice@localhost' type='chat' id='m6'><body>secret words</body></message>")
	a.Expect("id='m6'")
	a.Conn().Close()
	expectPublish(t, app, "n4", "1")
	bob.Send("<message to='alice@localhost' type='chat' id='m7'><body>secret words</body></message>")
	expectPublish(t, app, "n4", "2")
	bob.Never("unavailable") // still detached, waiting to be resumed
}

// TestIntegrationPushCall: a call to a phone that is asleep with no connection. Bob's
// XEP-0353 call proposal has no body: it still goes to the app server (the phone must
// ring), waits in offline storage and in alice's archive, and reaches her at her next
// login, where her client learns of the call.
func TestIntegrationPushCall(t *testing.T) {
	srv, app, bob := pushServer(t)
	a := srv.LoginPlain(t, "alice", "secret", "phone")
	a.Send("<iq type='set' id='e1'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='n1'/></iq>")
	a.Expect("id='e1'")
	a.Send("<presence/>")
	bob.Expect("from='alice@localhost/phone'")
	a.Send("</stream:stream>")
	bob.Expect("type='unavailable'")

	bob.Send("<message to='alice@localhost' type='chat' id='call1'><propose xmlns='urn:xmpp:jingle-message:0' id='ca11'>" +
		"<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>")
	expectPublish(t, app, "n1", "1")
	bob.Send("<message to='alice@localhost' type='chat' id='c2'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	app.Never("<iq")

	a = srv.LoginPlain(t, "alice", "secret", "phone")
	a.Send("<presence/>")
	if got := a.Expect("</propose>"); !strings.Contains(got, "id='call1'") {
		t.Fatalf("the call proposal at login: %s", got)
	}
	a.Send("<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>")
	if got := a.Expect("<fin "); !strings.Contains(got, "<propose xmlns='urn:xmpp:jingle-message:0' id='ca11'>") {
		t.Fatalf("alice's archive lacks the call proposal: %s", got)
	}
	a.Never("composing")
}

// TestIntegrationPushAfterAckTimeout: a phone whose TCP died without a word (here: a
// connection that stays open and says nothing) is sent a message and does not answer the
// server's <r/>. After sm_ack_timeout the server takes it for dead, detaches the session,
// and the app server gets the notification: a minute at the default, not the next ping's
// four minutes plus its timeout.
func TestIntegrationPushAfterAckTimeout(t *testing.T) {
	cfg, err := config.Parse([]byte("domains = [\"localhost\"]\n[modules.push]\nmin_interval = \"0s\"\n"), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, ModuleConfig: cfg.ModuleConfig,
		SMAckAfter: time.Second, SMAckTimeout: 2 * time.Second,
		Components: []engine.Component{{Domain: "push.localhost", Secret: compSecret}}})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	app, _ := componentLogin(t, srv, "push.localhost", compSecret)
	app.Expect("<handshake/>")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")

	a := srv.LoginPlain(t, "alice", "secret", "phone")
	a.Send("<iq type='set' id='e1'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='n1'/></iq>")
	a.Expect("id='e1'")
	a.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/><presence/>")
	a.Expect("<presence")
	bob.Send("<message to='alice@localhost/phone' type='chat' id='m1'><body>wake up</body></message>")
	a.Expect("<r xmlns='urn:xmpp:sm:3'/>") // and from here alice says nothing
	sent := time.Now()
	expectPublish(t, app, "n1", "1")
	t.Logf("notified %v after the request went unanswered", time.Since(sent).Round(100*time.Millisecond))
}

// TestIntegrationPushFederated: the app server of most phones lives on another XMPP
// server (Conversations registers p2.siacs.eu). alice on a.localhost registers
// push.b.localhost, an XEP-0114 component of b.localhost; her notifications cross the s2s
// link as pubsub publishes from her bare JID, the component's answers come back the same
// way, and its error disables the registration.
func TestIntegrationPushFederated(t *testing.T) {
	cfg, err := config.Parse([]byte("domains = [\"a.localhost\"]\n[modules.push]\nmin_interval = \"0s\"\n"), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", RequireTLS: no(), AllowPlain: true, S2S: true,
		S2SSecret: []byte("secret-a"), ModuleConfig: cfg.ModuleConfig})
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", RequireTLS: no(), AllowPlain: true, S2S: true,
		Components: []engine.Component{{Domain: "push.b.localhost", Secret: compSecret}}})
	vireotest.Federate(a, b)
	// As DNS would: the component's domain is served at b's s2s address.
	a.Engine.SetS2SHosts(map[string]string{"b.localhost": b.S2SAddr(), "push.b.localhost": b.S2SAddr()})
	a.AddUser(t, "alice", "secret")
	a.AddUser(t, "carol", "secret")
	a.Befriend(t, "alice", "carol", "")
	app, _ := componentLogin(t, b, "push.b.localhost", compSecret)
	app.Expect("<handshake/>")

	alice := a.LoginPlain(t, "alice", "secret", "phone")
	enablePush(t, alice, "push.b.localhost", "fed")
	alice.Send("</stream:stream>")
	carol := a.LoginPlain(t, "carol", "secret", "pc")
	carol.Send("<message to='alice@a.localhost' type='chat' id='f1'><body>ping</body></message>")
	_, id := awaitPublish(t, app, 10*time.Second, "from='alice@a.localhost'", "to='push.b.localhost'", "<publish node='fed'>",
		"<field var='message-count'><value>1</value></field>", "<field var='last-message-sender'><value>carol@a.localhost/pc</value></field>")
	// An error from across the link disables the registration: the next message is not
	// published. The disco query behind it is answered (service-unavailable: the app
	// server is no contact of alice's, XEP-0030 §8) after the error was handled.
	if got := refusePush(t, app, "push.b.localhost", "alice@a.localhost", id); !strings.Contains(got, "from='alice@a.localhost'") {
		t.Fatalf("alice's server did not answer across the link: %s", got)
	}
	carol.Send("<message to='alice@a.localhost' type='chat' id='f2'><body>ping</body></message>")
	carol.Send("<iq type='get' id='c1'><ping xmlns='urn:xmpp:ping'/></iq>")
	carol.Expect("id='c1'")
	app.Never("<publish")
}

// enablePush registers app and node as c's push service (XEP-0357 §5) and checks that
// c's server says result.
func enablePush(t *testing.T, c *vireotest.RawConn, app, node string) {
	t.Helper()
	c.Send("<iq type='set' id='e1'><enable xmlns='urn:xmpp:push:0' jid='" + app + "' node='" + node + "'/></iq>")
	if got := c.Expect("id='e1'") + c.Expect(">"); !strings.Contains(got, "type='result'") {
		t.Fatalf("enable %s %s: %s", app, node, got)
	}
}

// awaitPublish reads the next notification the app server gets, within d, checks that it
// contains each of want, and returns it with its id.
func awaitPublish(t *testing.T, app *vireotest.RawConn, d time.Duration, want ...string) (got, id string) {
	t.Helper()
	got, err := app.ReadUntil("</iq>", d)
	if err != nil {
		t.Fatalf("no notification reached the app server: %v %q", err, got)
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("the app server got %q; lacks %q", got, w)
		}
	}
	if m := regexp.MustCompile(`id=['"]([^'"]+)['"]`).FindStringSubmatch(got); m != nil {
		id = m[1]
	}
	return got, id
}

// refusePush answers the publish id with an error from appDomain, then asks user's
// account for disco#info, which its server answers after it handled the error; it returns
// that answer.
func refusePush(t *testing.T, app *vireotest.RawConn, appDomain, user, id string) string {
	t.Helper()
	app.Send("<iq type='error' from='" + appDomain + "' to='" + user + "' id='" + id + "'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
	app.Send("<iq type='get' from='" + appDomain + "' to='" + user + "' id='sync1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	app.Expect("id='sync1'")
	return app.Expect("</iq>")
}
