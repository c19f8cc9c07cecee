package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationCSI checks XEP-0352 on a real stream: the feature is offered after SASL,
// <inactive/> holds back presence and chat states, a message with a body flushes them
// first, an unknown top-level element is still a stream error.
func TestIntegrationCSI(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "alice", "bob", "")

	a := srv.DialTLS(t)
	a.Send(srv.Header())
	a.Expect("</stream:features>")
	a.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>")
	a.Expect("<success")
	a.Send(srv.Header())
	if f := a.Expect("</stream:features>"); !strings.Contains(f, "<csi xmlns='urn:xmpp:csi:0'/>") {
		t.Fatalf("post-auth features lack csi: %q", f)
	}
	a.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq><presence/>")
	a.Expect("id='b'")

	b := srv.LoginPlain(t, "bob", "secret", "pc")
	b.Send("<presence/>")
	a.Expect("from='bob@localhost/pc'")

	a.Send("<inactive xmlns='urn:xmpp:csi:0'/><iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("id='p1'")
	for _, st := range []string{"away", "dnd", "xa"} {
		b.Send("<presence><show>" + st + "</show></presence>")
	}
	b.Send("<message to='alice@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	// Nothing may arrive while inactive.
	a.Conn().SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	p := make([]byte, 512)
	if n, _ := a.Conn().Read(p); n > 0 {
		t.Fatalf("inactive client got %q", p[:n])
	}
	b.Send("<message to='alice@localhost' type='chat' id='wake'><body>wake up</body></message>")
	got := a.Expect("wake up")
	iXA, iState, iBody := strings.Index(got, "<show>xa</show>"), strings.Index(got, "composing"), strings.Index(got, "wake up")
	if iXA < 0 || iState < 0 || iXA > iBody || iState > iBody {
		t.Fatalf("flush order wrong:\n%s", got)
	}
	if strings.Contains(got, "<show>away</show>") || strings.Contains(got, "<show>dnd</show>") {
		t.Fatalf("stale presence flushed:\n%s", got)
	}
	a.Send("<active xmlns='urn:xmpp:csi:0'/>")
	b.Send("<presence><show>chat</show></presence>")
	a.Expect("<show>chat</show>")

	// An element nobody registered is still an error.
	a.Send("<bogus xmlns='urn:example:nothing'/>")
	if got := a.ExpectClosed(); !strings.Contains(got, "unsupported-stanza-type") {
		t.Fatalf("unknown nonza: %q", got)
	}
}

// TestIntegrationCSIResumed: a resumed stream is active (XEP-0352 §5.2): presence held
// while the old stream was inactive arrives after the resume, and new presence is not
// held.
func TestIntegrationCSIResumed(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "alice", "bob", "")
	b := srv.LoginPlain(t, "bob", "secret", "pc")
	b.Send("<presence/>")
	a, id := loginSM(t, srv, "alice", "phone")
	a.Send("<presence/>")
	a.Expect("from='bob@localhost/pc'")
	a.Send("<inactive xmlns='urn:xmpp:csi:0'/><iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("id='p1'")
	b.Send("<presence><show>away</show></presence>") // held
	a.Never("<show>away</show>")
	a.Conn().Close()

	r := srv.AuthPlain(t, "alice", "secret")
	r.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
	r.Expect("<resumed")
	r.Expect("<show>away</show>")
	b.Send("<presence><show>dnd</show></presence>")
	r.Expect("<show>dnd</show>")
}
