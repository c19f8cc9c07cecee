package engine_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
)

var linkSecret = []byte("a link secret of more than 16 bytes")

// TestSplitRelay runs the split deployment: clients connect to an edge, which relays
// their streams over a TLS link to the core. Direct TLS and STARTTLS both end at the
// edge; the core authenticates, binds and routes.
func TestSplitRelay(t *testing.T) {
	core := vireotest.Start(t, vireotest.Options{LinkSecret: linkSecret, AllowPlain: true})
	core.AddUser(t, "alice", "pw-alice")
	core.AddUser(t, "bob", "pw-bob")
	edge := vireotest.StartEdge(t, core, linkSecret)

	// alice: direct TLS.
	a := edge.DialTLS(t)
	a.Send(core.Header())
	a.Expect("</stream:features>")
	a.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3LWFsaWNl</auth>")
	a.Expect("<success")
	a.Send(core.Header())
	a.Expect("</stream:features>")
	a.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
	a.Expect("alice@localhost/r")

	// bob: STARTTLS on the plain listener.
	b := edge.Dial(t)
	b.Send(core.Header())
	f := b.Expect("</stream:features>")
	if !strings.Contains(f, "<starttls") {
		t.Fatalf("no STARTTLS offered through the edge: %q", f)
	}
	b.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	b.Expect("<proceed")
	b.StartTLS(core.ClientTLS())
	b.Send(core.Header())
	f = b.Expect("</stream:features>")
	if !strings.Contains(f, "SCRAM-SHA-256-PLUS") {
		t.Fatalf("no channel binding offered after STARTTLS at the edge: %q", f)
	}
	b.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGJvYgBwdy1ib2I=</auth>")
	b.Expect("<success")
	b.Send(core.Header())
	b.Expect("</stream:features>")
	b.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
	b.Expect("bob@localhost/r")

	a.Send("<message to='bob@localhost/r' id='m1' type='chat'><body>hello through the edge</body></message>")
	b.Expect("hello through the edge")
	b.Send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	b.Expect("id='p1'")

	// A wrong password is refused by the core, through the edge.
	w := edge.DialTLS(t)
	w.Send(core.Header())
	w.Expect("</stream:features>")
	w.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGJvYgB3cm9uZw==</auth>")
	w.Expect("not-authorized")

	// Malformed XML gets the core's stream error and the edge closes the socket.
	m := edge.Dial(t)
	m.Send(core.Header() + "<message><body></message>")
	if got := m.ExpectClosed(); !strings.Contains(got, "not-well-formed") {
		t.Fatalf("malformed XML through the edge: %q", got)
	}

	b.Send("</stream:stream>")
	b.ExpectClosed()
}
