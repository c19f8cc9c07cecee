package push_test

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/push"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

const app = "push.example"

// env is a router with users alice and bob, an app server attached as a component on
// push.example, a [modules.push] config and a clock the test moves.
type env struct {
	*routertest.Env
	app *routertest.Conn
	now atomic.Int64 // unix nanoseconds
}

func newEnv(t *testing.T, cfg push.Config) *env {
	e := &env{app: &routertest.Conn{}}
	e.now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	e.Env = routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
		o.Now = func() time.Time { return time.Unix(0, e.now.Load()) }
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*push.Config); ok {
				*c = cfg
			}
			return nil
		}
	})
	if err := e.R.AttachComponent(app, e.app); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) advance(d time.Duration) { e.now.Add(int64(d)) }

// registrations lists alice's registrations as stored: jid/node.
func (e *env) registrations(t *testing.T) []string {
	t.Helper()
	var out []string
	err := e.Store.Table("push").Scan(store.UserKey("alice@example.org"), func(k, _ []byte) bool {
		parts := strings.Split(string(k), "\x00")
		out = append(out, parts[1]+"/"+parts[2])
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// iq sends an IQ from s and returns the answer with id.
func iq(t *testing.T, s *routertest.Sess, id, payload string) string {
	t.Helper()
	s.Send("<iq type='set' id='" + id + "'>" + payload + "</iq>")
	return s.C.Wait(t, "id='"+id+"'")
}

func enable(node string) string {
	return "<enable xmlns='urn:xmpp:push:0' jid='" + app + "' node='" + node + "'/>"
}

func TestPushEnableDisable(t *testing.T) {
	e := newEnv(t, push.Config{MaxRegistrations: 3})
	a := e.Bind("alice", "phone")
	for i, tc := range []struct {
		payload string
		want    string // condition, or "result"
		regs    string // registrations afterwards
	}{
		{enable("n1"), "result", "push.example/n1"},
		{enable("n1"), "result", "push.example/n1"}, // again: replaced, not added
		{"<enable xmlns='urn:xmpp:push:0' node='x'/>", "bad-request", "push.example/n1"},
		{"<enable xmlns='urn:xmpp:push:0' jid='" + app + "'/>", "bad-request", "push.example/n1"},
		{"<enable xmlns='urn:xmpp:push:0' jid='" + app + "' node=''/>", "bad-request", "push.example/n1"},
		{"<enable xmlns='urn:xmpp:push:0' jid='a@@b' node='x'/>", "jid-malformed", "push.example/n1"},
		{"<enable xmlns='urn:xmpp:push:0' jid='" + app + "' node='" + strings.Repeat("n", push.MaxNodeBytes+1) + "'/>", "not-acceptable", "push.example/n1"},
		{"<enable xmlns='urn:xmpp:push:0' jid='" + app + "' node='x'><x xmlns='jabber:x:data' type='form'/></enable>", "bad-request", "push.example/n1"},
		{enable("n2"), "result", "push.example/n1 push.example/n2"},
		{"<enable xmlns='urn:xmpp:push:0' jid='other.example' node='n1'/>", "result", "other.example/n1 push.example/n1 push.example/n2"},
		{enable("n3"), "resource-constraint", "other.example/n1 push.example/n1 push.example/n2"}, // the 4th
		{"<disable xmlns='urn:xmpp:push:0' jid='" + app + "' node='n2'/>", "result", "other.example/n1 push.example/n1"},
		{"<disable xmlns='urn:xmpp:push:0' jid='" + app + "' node='gone'/>", "result", "other.example/n1 push.example/n1"},
		{"<disable xmlns='urn:xmpp:push:0' node='n1'/>", "bad-request", "other.example/n1 push.example/n1"},
		{enable("n3"), "result", "other.example/n1 push.example/n1 push.example/n3"},
		// Without a node: every node of that JID, and only of that JID.
		{"<disable xmlns='urn:xmpp:push:0' jid='" + app + "'/>", "result", "other.example/n1"},
		{"<disable xmlns='urn:xmpp:push:0' jid='other.example'/>", "result", ""},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got := iq(t, a, fmt.Sprint("e", i), tc.payload)
			if tc.want == "result" && !strings.Contains(got, "type='result'") || tc.want != "result" && !strings.Contains(got, "<"+tc.want) {
				t.Fatalf("%s: got %s, want %s", tc.payload, got, tc.want)
			}
			if regs := strings.Join(e.registrations(t), " "); regs != tc.regs {
				t.Fatalf("registrations %q, want %q", regs, tc.regs)
			}
		})
	}
	// Another user cannot touch alice's registrations: an IQ to her bare JID is hers to answer.
	b := e.Bind("bob", "pc")
	got := iq(t, b, "x1", "<enable xmlns='urn:xmpp:push:0' jid='"+app+"' node='evil'/>")
	if !strings.Contains(got, "type='result'") || len(e.registrations(t)) != 0 {
		t.Fatalf("bob's enable: %s; alice has %v", got, e.registrations(t))
	}
	b.Send("<iq type='set' id='x2' to='alice@example.org'>" + enable("evil") + "</iq>")
	if got := b.C.Wait(t, "id='x2'"); !strings.Contains(got, "type='error'") || len(e.registrations(t)) != 0 {
		t.Fatalf("bob enabling for alice: %s; alice has %v", got, e.registrations(t))
	}
}

var (
	idRe    = regexp.MustCompile(`<iq type='set' from='alice@example.org' to='push.example' id='(push-[a-z2-7]{26})'>`)
	countRe = regexp.MustCompile(`<field var='message-count'><value>(\d+)</value></field>`)
)

// publishes returns the publishes the app server got since the last call, as
// "node:count".
func (e *env) publishes() []string {
	var out []string
	for _, s := range e.app.Got() {
		node := regexp.MustCompile(`<publish node='([^']*)'>`).FindStringSubmatch(s)
		count := countRe.FindStringSubmatch(s)
		if node == nil || count == nil || !idRe.MatchString(s) {
			out = append(out, "malformed:"+s)
			continue
		}
		out = append(out, node[1]+":"+count[1])
	}
	e.app.Reset()
	return out
}

// sync waits until bob's stanzas so far have been handled in alice's shard: bob pings
// alice's bare JID (disco#info, answered in her shard after his earlier stanzas).
func sync(t *testing.T, b *routertest.Sess, id string) {
	t.Helper()
	b.Send("<iq type='get' id='" + id + "' to='alice@example.org'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	b.C.Wait(t, "id='"+id+"'")
}

func msg(b *routertest.Sess, id, body string) {
	b.Send("<message to='alice@example.org' type='chat' id='" + id + "'><body>" + body + "</body></message>")
}

func TestPushNotifies(t *testing.T) {
	e := newEnv(t, push.Config{MinInterval: "0s"})
	a := e.Bind("alice", "phone")
	iq(t, a, "e1", "<enable xmlns='urn:xmpp:push:0' jid='"+app+"' node='n1'><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"+
		"<field var='secret'><value>s3</value></field></x></enable>")
	a.Send("<presence/>")
	b := e.Bind("bob", "pc")
	b.Send("<presence/>")

	// Awake: nothing is published.
	msg(b, "m1", "one")
	a.C.Wait(t, "id='m1'")
	sync(t, b, "s1")
	if p := e.publishes(); len(p) != 0 {
		t.Fatalf("awake session, yet published %v", p)
	}

	// CSI inactive: every message with a body is published, counted; chat states are not.
	a.Send("<inactive xmlns='urn:xmpp:csi:0'/>")
	a.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.C.Wait(t, "id='p1'")
	msg(b, "m2", "two")
	b.Send("<message to='alice@example.org' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	msg(b, "m3", "three")
	b.Send("<message to='alice@example.org' type='headline'><body>news</body></message>")
	sync(t, b, "s2")
	got := e.app.Got()
	if p := e.publishes(); strings.Join(p, " ") != "n1:1 n1:2" {
		t.Fatalf("inactive: published %v, want n1:1 n1:2", p)
	}
	last := got[len(got)-1]
	for _, want := range []string{
		"<field var='last-message-sender'><value>bob@example.org/pc</value></field>",
		"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s3</value></field></x></publish-options>",
	} {
		if !strings.Contains(last, want) {
			t.Fatalf("publish lacks %s:\n%s", want, last)
		}
	}
	if strings.Contains(last, "last-message-body") || strings.Contains(last, "three") {
		t.Fatalf("body published without include_body:\n%s", last)
	}

	// Offline: the count runs on (nobody has read anything), until the next login.
	a.Unbind()
	msg(b, "m4", "four")
	sync(t, b, "s3")
	if p := e.publishes(); strings.Join(p, " ") != "n1:3" {
		t.Fatalf("offline: published %v, want n1:3", p)
	}
	a = e.Bind("alice", "phone")
	a.Send("<presence/>")
	a.C.Wait(t, "id='m4'") // offline storage hands it over
	a.Unbind()
	msg(b, "m5", "five")
	sync(t, b, "s4")
	if p := e.publishes(); strings.Join(p, " ") != "n1:1" {
		t.Fatalf("after a login: published %v, want n1:1", p)
	}

	// A session that is bound but never sent presence does not read messages...
	a = e.Bind("alice", "bot")
	msg(b, "m6", "six")
	sync(t, b, "s5")
	if p := e.publishes(); strings.Join(p, " ") != "n1:2" {
		t.Fatalf("unavailable session: published %v, want n1:2", p)
	}
	// ... but a user who sends a message has read what came before.
	a.Send("<message to='bob@example.org' type='chat' id='r1'><body>hi</body></message>")
	b.C.Wait(t, "id='r1'")
	msg(b, "m7", "seven")
	sync(t, b, "s6")
	if p := e.publishes(); strings.Join(p, " ") != "n1:1" {
		t.Fatalf("after replying: published %v, want n1:1", p)
	}
}

// TestPushImportant: besides messages with a body, a call proposal (XEP-0353) and an
// encrypted message without a fallback body wake the phone; receipts, markers and chat
// states do not. The same for what a stream left unacknowledged when it went away.
func TestPushImportant(t *testing.T) {
	e := newEnv(t, push.Config{MinInterval: "0s", IncludeBody: true})
	a := e.Bind("alice", "phone")
	iq(t, a, "e1", enable("n1"))
	a.Unbind()
	b := e.Bind("bob", "pc")
	b.Send("<presence/>")
	for i, c := range []struct {
		payload string
		push    bool
	}{
		{"<propose xmlns='urn:xmpp:jingle-message:0' id='call1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>", true},
		{"<propose xmlns='urn:xmpp:jingle-message:1' id='call2'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/></propose>", true},
		{"<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/><payload>AAAA</payload></encrypted>", true},
		{"<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted><body>I sent you an OMEMO encrypted message</body>", true},
		{"<openpgp xmlns='urn:xmpp:openpgp:0'>BASE64</openpgp>", true},
		{"<received xmlns='urn:xmpp:receipts' id='m1'/>", false},
		{"<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>", false},
		{"<active xmlns='http://jabber.org/protocol/chatstates'/>", false},
		{"<body></body>", false},
		{"<propose xmlns='urn:example:not-jmi' id='x'/>", false},
	} {
		b.Send(fmt.Sprintf("<message to='alice@example.org' type='chat' id='i%d'>%s</message>", i, c.payload))
		sync(t, b, fmt.Sprintf("s%d", i))
		raw := e.app.Got()
		if got := e.publishes(); (len(got) > 0) != c.push {
			t.Errorf("%s: published %v, want a publish: %v", c.payload, got, c.push)
		}
		if strings.Contains(c.payload, "axolotl") && (len(raw) == 0 ||
			!strings.Contains(raw[len(raw)-1], "<field var='last-message-body'><value>I sent you an OMEMO")) {
			t.Errorf("the fallback body of an encrypted message is the excerpt: %q", raw)
		}
	}
}

func TestPushIncludeBody(t *testing.T) {
	e := newEnv(t, push.Config{IncludeBody: true, MinInterval: "0s"})
	a := e.Bind("alice", "phone")
	iq(t, a, "e1", enable("n1"))
	a.Unbind()
	b := e.Bind("bob", "pc")
	msg(b, "m1", "wherefore &amp; &lt;b")
	msg(b, "m2", strings.Repeat("é", 400))
	sync(t, b, "s1")
	got := e.app.Got()
	if len(got) != 2 || !strings.Contains(got[0], "<field var='last-message-body'><value>wherefore &amp; &lt;b</value></field>") {
		t.Fatalf("publishes %q", got)
	}
	if !strings.Contains(got[1], "<value>"+strings.Repeat("é", 256)+"</value>") {
		t.Fatalf("long body not cut to 512 bytes: %s", got[1])
	}
}

// TestPushIncludeSender: include_sender = false leaves the sender out of notifications.
func TestPushIncludeSender(t *testing.T) {
	no := false
	e := newEnv(t, push.Config{IncludeSender: &no, MinInterval: "0s"})
	a := e.Bind("alice", "phone")
	iq(t, a, "e1", enable("n1"))
	a.Unbind()
	b := e.Bind("bob", "pc")
	msg(b, "m1", "hello")
	sync(t, b, "s1")
	got := e.app.Got()
	if len(got) != 1 || strings.Contains(got[0], "last-message-sender") || strings.Contains(got[0], "bob@") ||
		!strings.Contains(got[0], "<field var='message-count'>") {
		t.Fatalf("publishes %q", got)
	}
}

func TestPushCoalesces(t *testing.T) {
	e := newEnv(t, push.Config{MinInterval: "10s"})
	a := e.Bind("alice", "phone")
	iq(t, a, "e1", enable("n1"))
	iq(t, a, "e2", enable("n2"))
	a.Unbind()
	b := e.Bind("bob", "pc")
	msg(b, "m1", "1")
	msg(b, "m2", "2")
	sync(t, b, "s1")
	e.advance(9 * time.Second)
	msg(b, "m3", "3")
	sync(t, b, "s2")
	if p := e.publishes(); strings.Join(p, " ") != "n1:1 n2:1" {
		t.Fatalf("burst: published %v, want one per registration", p)
	}
	e.advance(time.Second)
	msg(b, "m4", "4")
	sync(t, b, "s3")
	if p := e.publishes(); strings.Join(p, " ") != "n1:4 n2:4" {
		t.Fatalf("after the interval: published %v, want the count of all four", p)
	}
}

// answer sends the app server's reply to the publish for node in got.
func (e *env) answer(t *testing.T, got []string, node, typ, errXML string) {
	t.Helper()
	for _, s := range got {
		if strings.Contains(s, "<publish node='"+node+"'>") {
			id := idRe.FindStringSubmatch(s)[1]
			from, _ := jid.Parse(app)
			e.R.SubmitFrom(from, []byte("<iq type='"+typ+"' from='"+app+"' to='alice@example.org' id='"+id+"'>"+errXML+"</iq>"))
			return
		}
	}
	t.Fatalf("no publish for %s in %q", node, got)
}

func TestPushAppServerErrors(t *testing.T) {
	e := newEnv(t, push.Config{MinInterval: "0s"})
	a := e.Bind("alice", "phone")
	for _, n := range []string{"ok", "gone", "busy"} {
		iq(t, a, "e-"+n, enable(n))
	}
	a.Unbind()
	b := e.Bind("bob", "pc")
	msg(b, "m1", "1")
	sync(t, b, "s1")
	got := e.app.Got()
	e.app.Reset()
	if len(got) != 3 {
		t.Fatalf("publishes %q", got)
	}
	// An error from someone else with a real id, or from the app server with an id it was
	// never sent, changes nothing.
	b.Send("<iq type='error' to='alice@example.org' id='" + idRe.FindStringSubmatch(got[0])[1] + "'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
	from, _ := jid.Parse(app)
	e.R.SubmitFrom(from, []byte("<iq type='error' from='"+app+"' to='alice@example.org' id='push-guess'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"))
	sync(t, b, "s2")
	if regs := e.registrations(t); len(regs) != 3 {
		t.Fatalf("registrations %v after errors that answer nothing", regs)
	}
	e.answer(t, got, "ok", "result", "")
	e.answer(t, got, "busy", "error", "<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>")
	e.answer(t, got, "gone", "error", "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>")
	deadline := time.Now().Add(5 * time.Second)
	for strings.Join(e.registrations(t), " ") != "push.example/busy push.example/ok" {
		if time.Now().After(deadline) {
			t.Fatalf("registrations %v: want the refused one gone, the rest kept", e.registrations(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
	msg(b, "m2", "2")
	sync(t, b, "s3")
	if p := e.publishes(); strings.Join(p, " ") != "busy:2 ok:2" {
		t.Fatalf("after the errors: published %v", p)
	}
}

// TestPushDetach: a stream-managed session whose connection goes away with messages its
// client never acknowledged notifies them, once.
func TestPushDetach(t *testing.T) {
	e := newEnv(t, push.Config{MinInterval: "0s"})
	a := e.Bind("alice", "phone")
	iq(t, a, "e1", enable("n1"))
	a.Send("<presence/>")
	b := e.Bind("bob", "pc")
	msg(b, "m1", "one")
	msg(b, "m2", "two")
	a.C.Wait(t, "id='m2'")
	unacked := [][]byte{}
	for _, s := range a.C.Got() {
		if strings.Contains(s, "<message") {
			unacked = append(unacked, []byte(s))
		}
	}
	e.R.DetachWith(a.S, time.Minute, func() [][]byte { return unacked })
	msg(b, "m3", "three") // detached: notified on arrival, counted after the two
	sync(t, b, "s1")
	if p := e.publishes(); strings.Join(p, " ") != "n1:2 n1:3" {
		t.Fatalf("published %v, want n1:2 for the unacknowledged, then n1:3", p)
	}
	// Resumed and detached again with everything still unacknowledged: already notified.
	done := make(chan error, 1)
	c2 := &routertest.Conn{}
	e.R.Attach(a.S, c2, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.R.DetachWith(a.S, time.Minute, func() [][]byte { return unacked })
	sync(t, b, "s2")
	if p := e.publishes(); len(p) != 0 {
		t.Fatalf("published %v again", p)
	}
}

// TestPushRegistrationsSurviveRestart: a registration stored before the server starts (a
// restart) is found by the module's in-memory index, so its user is notified.
func TestPushRegistrationsSurviveRestart(t *testing.T) {
	e := &env{app: &routertest.Conn{}}
	e.now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	e.Env = routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*push.Config); ok {
				c.MinInterval = "0s"
			}
			return nil
		}
		// As the previous run left it.
		if err := o.Store.Table("push").Set(store.UserKey("alice@example.org", app, "n9"), []byte{}); err != nil {
			t.Fatal(err)
		}
	})
	if err := e.R.AttachComponent(app, e.app); err != nil {
		t.Fatal(err)
	}
	b := e.Bind("bob", "pc")
	msg(b, "m1", "one") // alice is offline
	sync(t, b, "s1")
	if p := e.publishes(); strings.Join(p, " ") != "n9:1" {
		t.Fatalf("published %v, want n9:1", p)
	}
}

// TestReconfigure: a reload's settings are checked whole; a bad interval is refused.
func TestReconfigure(t *testing.T) {
	m := new(push.Mod)
	with := func(c push.Config) module.Reconfig {
		return module.Reconfig{Decode: func(v any) error { *v.(*push.Config) = c; return nil }}
	}
	if _, err := m.Reconfigure(with(push.Config{MinInterval: "often"})); err == nil {
		t.Fatal("a bad min_interval accepted")
	}
	apply, err := m.Reconfigure(with(push.Config{IncludeBody: true, MinInterval: "0s"}))
	if err != nil || apply == nil {
		t.Fatal(err)
	}
	apply()
}
