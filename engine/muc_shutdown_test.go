package engine_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
)

// XEP-0045 status 332: occupants are told that they are out of the room when its service
// goes away — a virtual host removed while the server runs, or a graceful shutdown —
// before the server closes their streams (or, for other servers' users, its
// server-to-server streams).

// mucGone is what the self-presence of an occupant removed with 332 holds.
func mucGone(occupant string) []string {
	return []string{"from='" + occupant + "'", "type='unavailable'", "role='none'",
		"<status code='110'/>", "<status code='332'/>"}
}

// mucJoined joins room as nick from c and waits for the self-presence.
func mucJoined(t *testing.T, c *vireotest.RawConn, room, nick, id string) {
	t.Helper()
	c.Send(mucJoin(room, nick, id))
	expectStanza(t, c, "id='"+id+"'", "from='"+room+"/"+nick+"'", "<status code='110'/>")
}

// TestIntegrationMucVhostRemoved: removing a virtual host takes its conference service
// away; an occupant of one of its rooms from the remaining host gets the unavailable
// presence with 332 from that room and stays connected, in its room on the remaining
// host, where nobody hears of it; the removed host's own occupant gets 332 before its
// stream ends with host-gone.
func TestIntegrationMucVhostRemoved(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	keys, err := creds.DeriveAll("secret", creds.MinIter)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.Accounts().Create(store.Account{User: "dave@other.example", Creds: keys, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	setDomains(t, srv, "localhost", "other.example")

	alice := mucLogin(t, srv, "alice", "pc")
	bob := mucLogin(t, srv, "bob", "pc")
	mucCreate(t, alice, mucRoom, "Alice")
	mucJoined(t, bob, mucRoom, "Bob", "j1")
	expectStanza(t, alice, "from='"+mucRoom+"/Bob'")

	const hall = "hall@conference.other.example"
	mucCreate(t, alice, hall, "Alice")
	dave := srv.DialTLS(t)
	header := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='other.example' version='1.0'>"
	dave.Send(header)
	dave.Expect("</stream:features>")
	dave.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00dave\x00secret")) + "</auth>")
	dave.Expect("<success")
	dave.Send(header)
	dave.Expect("</stream:features>")
	dave.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>pc</resource></bind></iq>")
	dave.Expect("dave@other.example/pc")
	dave.Send("<presence/>")
	mucJoined(t, dave, hall, "Dave", "j2")
	expectStanza(t, alice, "from='"+hall+"/Dave'")

	setDomains(t, srv, "localhost")
	got := expectStanza(t, alice, mucGone(hall+"/Alice")...)
	if !strings.Contains(got, "affiliation='owner'") || !strings.Contains(got, "jid='alice@localhost/pc'") {
		t.Fatalf("alice's 332 presence: %s", got)
	}
	out := dave.Expect("<host-gone")
	if s, at := stanzaWith(out, mucGone(hall+"/Dave")...); s == "" || at > strings.Index(out, "<host-gone") {
		t.Fatalf("dave: no 332 presence before host-gone: %q", out)
	}
	dave.ExpectClosed()
	alice.Never("code='332'")
	bob.Never("code='332'")

	// Alice is still in the room of the remaining host, and still connected.
	alice.Send("<message to='" + mucRoom + "' type='groupchat' id='g1'><body>still here</body></message>")
	expectStanza(t, bob, "from='"+mucRoom+"/Alice'", "still here")
	expectStanza(t, alice, "id='g1'", "still here")
}

// TestIntegrationMucShutdown: on a graceful shutdown every occupant gets its unavailable
// self-presence with 332 before the stream ends with system-shutdown.
func TestIntegrationMucShutdown(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	alice := mucLogin(t, srv, "alice", "pc")
	bob := mucLogin(t, srv, "bob", "pc")
	mucCreate(t, alice, mucRoom, "Alice")
	mucJoined(t, bob, mucRoom, "Bob", "j1")
	expectStanza(t, alice, "from='"+mucRoom+"/Bob'")

	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Engine.Shutdown(ctx)
	}()
	for _, c := range []struct {
		conn *vireotest.RawConn
		nick string
	}{{alice, "Alice"}, {bob, "Bob"}} {
		out := c.conn.Expect("<system-shutdown")
		if s, _ := stanzaWith(out, mucGone(mucRoom+"/"+c.nick)...); s == "" {
			t.Fatalf("%s: no 332 presence before system-shutdown: %q", c.nick, out)
		}
		c.conn.ExpectClosed()
	}
	<-done
}

// TestIntegrationMucShutdownFederated: an occupant on another server, whose session
// outlives ours, gets the 332 presence over server-to-server before the server stops.
func TestIntegrationMucShutdownFederated(t *testing.T) {
	a, b := federated(t)
	// b reaches a's conference service at a's s2s listener, as DNS would tell it.
	b.Engine.SetS2SHosts(map[string]string{"a.localhost": a.S2SAddr(), "conference.a.localhost": a.S2SAddr()})
	const room = "hall@conference.a.localhost"
	alice := a.LoginPlain(t, "alice", "secret", "pc")
	alice.Send("<presence/>")
	mucCreate(t, alice, room, "Alice")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	mucJoined(t, bob, room, "Bob", "j1")
	expectStanza(t, alice, "from='"+room+"/Bob'")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.Engine.Shutdown(ctx)
	got := expectStanza(t, bob, mucGone(room+"/Bob")...)
	if !strings.Contains(got, "jid='bob@b.localhost/pc'") {
		t.Fatalf("bob's 332 presence: %s", got)
	}
	out := alice.Expect("<system-shutdown")
	if s, _ := stanzaWith(out, mucGone(room+"/Alice")...); s == "" {
		t.Fatalf("alice: no 332 presence before system-shutdown: %q", out)
	}
	// Bob's own server goes on.
	bob.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	expectStanza(t, bob, "id='p1'", "type='result'")
}
