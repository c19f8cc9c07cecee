package engine_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/component"
	mjid "mellium.im/xmpp/jid"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

const compSecret = "s3cret-for-tests"

var streamIDRe = regexp.MustCompile(` id='([^']+)'`)

// componentLogin is a minimal XEP-0114 client: stream header to its domain, then the
// handshake over the stream id the server chose.
func componentLogin(t *testing.T, srv *vireotest.Server, domain, secret string) (*vireotest.RawConn, string) {
	t.Helper()
	r := vireotest.DialAddr(t, srv.ComponentAddr())
	r.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='" + domain + "'>")
	h := r.Expect(">")
	if !strings.Contains(h, "<stream:stream") {
		h += r.Expect("'>")
	}
	m := streamIDRe.FindStringSubmatch(h)
	if m == nil {
		t.Fatalf("no stream id in %q", h)
	}
	if !strings.Contains(h, "xmlns='jabber:component:accept'") || !strings.Contains(h, "from='"+domain+"'") {
		t.Fatalf("header %q: want the component namespace and from='%s'", h, domain)
	}
	sum := sha1.Sum([]byte(m[1] + secret))
	r.Send("<handshake>" + hex.EncodeToString(sum[:]) + "</handshake>")
	return r, m[1]
}

func TestIntegrationComponent(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true,
		Components: []engine.Component{{Domain: "bot.localhost", Secret: compSecret}, {Domain: "gw.localhost", Secret: compSecret}}})
	srv.AddUser(t, "alice", "secret")

	comp, _ := componentLogin(t, srv, "bot.localhost", compSecret)
	comp.Expect("<handshake/>")

	alice := srv.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")

	// User -> component: the stanza arrives with alice's full JID stamped.
	alice.Send("<message to='echo@bot.localhost' id='m1' type='chat'><body>hi bot</body></message>")
	got := comp.Expect("</message>")
	if !strings.Contains(got, "from='alice@localhost/phone'") || !strings.Contains(got, "hi bot") {
		t.Fatalf("component got %q", got)
	}
	// Component -> user, from a JID inside its domain.
	comp.Send("<message from='echo@bot.localhost' to='alice@localhost/phone' type='chat' id='r1'><body>hi alice</body></message>")
	got = alice.Expect("hi alice")
	if !strings.Contains(got, "from='echo@bot.localhost'") {
		t.Fatalf("alice got %q", got)
	}
	alice.Expect("</message>")
	// A stanza that names the component namespace itself reaches the client in jabber:client.
	comp.Send("<message xmlns='jabber:component:accept' from='echo@bot.localhost' to='alice@localhost/phone' type='chat'><body>ns test</body></message>")
	got = alice.Expect("</message>")
	if strings.Contains(got, "jabber:component:accept") || !strings.Contains(got, "ns test") {
		t.Fatalf("alice got %q", got)
	}
	// IQ from the component to the server itself is answered (disco is public).
	comp.Send("<iq type='get' id='d1' from='bot.localhost' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	got = comp.Expect("</iq>")
	if !strings.Contains(got, "type='result'") || !strings.Contains(got, "id='d1'") {
		t.Fatalf("disco from component: %q", got)
	}
	// ... but not the account-only ones: a roster query from a component is refused.
	comp.Send("<iq type='get' id='d2' from='bot.localhost' to='localhost'><query xmlns='jabber:iq:roster'/></iq>")
	if got = comp.Expect("</iq>"); !strings.Contains(got, "service-unavailable") {
		t.Fatalf("roster from component: %q", got)
	}
	// An IQ for a user that does not exist bounces back to the component.
	comp.Send("<iq type='get' id='x1' from='echo@bot.localhost' to='nobody@localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	if got = comp.Expect("</iq>"); !strings.Contains(got, "type='error'") || !strings.Contains(got, "id='x1'") {
		t.Fatalf("bounce: %q", got)
	}

	// A second connection for the same domain is refused with conflict.
	dup, _ := componentLogin(t, srv, "bot.localhost", compSecret)
	if got := dup.ExpectClosed(); !strings.Contains(got, "<conflict") {
		t.Fatalf("second connection: %q", got)
	}
	// Wrong secret: not-authorized and close.
	bad, _ := componentLogin(t, srv, "gw.localhost", "wrong-secret")
	if got := bad.ExpectClosed(); !strings.Contains(got, "<not-authorized") {
		t.Fatalf("wrong secret: %q", got)
	}
	// Unknown component domain: host-unknown.
	unk := vireotest.DialAddr(t, srv.ComponentAddr())
	unk.Send("<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='nope.localhost'>")
	if got := unk.ExpectClosed(); !strings.Contains(got, "<host-unknown") {
		t.Fatalf("unknown domain: %q", got)
	}
	// A configured component that is not connected: service-unavailable for the sender.
	alice.Send("<message to='x@gw.localhost' id='m2' type='chat'><body>anyone?</body></message>")
	if got = alice.Expect("</message>"); !strings.Contains(got, "service-unavailable") {
		t.Fatalf("disconnected component: %q", got)
	}
	// A component may not send as someone else.
	comp.Send("<message from='mallory@localhost' to='alice@localhost' type='chat'><body>spoof</body></message>")
	if got := comp.ExpectClosed(); !strings.Contains(got, "<invalid-from") {
		t.Fatalf("spoofed from: %q", got)
	}
	// Once it is gone its domain is free again.
	comp2, _ := componentLogin(t, srv, "bot.localhost", compSecret)
	comp2.Expect("<handshake/>")
}

// TestIntegrationComponentMellium connects mellium.im/xmpp's XEP-0114 component (a client
// nobody here wrote) and exchanges a message with a user both ways.
func TestIntegrationComponentMellium(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true,
		Components: []engine.Component{{Domain: "mel.localhost", Secret: compSecret}}})
	srv.AddUser(t, "alice", "secret")
	conn, err := net.Dial("tcp", srv.ComponentAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := component.NewSession(ctx, mjid.MustParse("mel.localhost"), []byte(compSecret), conn)
	if err != nil {
		t.Fatalf("mellium component handshake: %v", err)
	}
	comp := &client{s: s}
	comp.serve(t)
	t.Cleanup(func() { s.Close() })

	alice := srv.LoginPlain(t, "alice", "secret", "pc")
	alice.Send("<presence/>")
	alice.Send("<message to='bot@mel.localhost' type='chat' id='m1'><body>hello mellium</body></message>")
	comp.waitFor(t, "hello mellium", "alice@localhost/pc")
	comp.send(t, "<message xmlns='jabber:component:accept' from='bot@mel.localhost' to='alice@localhost/pc' type='chat'><body>hello alice</body></message>")
	got := alice.Expect("</message>")
	if !strings.Contains(got, "bot@mel.localhost") || !strings.Contains(got, "hello alice") || strings.Contains(got, nsComponentAccept) {
		t.Fatalf("alice got %q", got)
	}
}

const nsComponentAccept = "jabber:component:accept"

func TestRewriteComponentNS(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`<message xmlns='jabber:component:accept' to='a'><body xmlns="jabber:component:accept">x</body></message>`,
			`<message xmlns='jabber:client' to='a'><body xmlns="jabber:client">x</body></message>`},
		{`<message to='a'><body>xmlns="jabber:component:accept"</body></message>`,
			`<message to='a'><body>xmlns="jabber:component:accept"</body></message>`},
		{`<message to='a' note='xmlns="jabber:component:accept"'><x xmlns='urn:other'/></message>`,
			`<message to='a' note='xmlns="jabber:component:accept"'><x xmlns='urn:other'/></message>`},
	} {
		if got := string(engine.RewriteComponentNS([]byte(tc.in))); got != tc.want {
			t.Errorf("rewrite(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}
