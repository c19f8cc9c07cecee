package engine_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationIDNHost: a host with an internationalized name serves clients that name
// it either way in the stream header (RFC 7622 §3.2: the U-labels are the address; a
// client may send A-labels), over TLS whose SNI and certificate carry its A-labels, and
// its users' addresses come out in U-labels.
func TestIntegrationIDNHost(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{Domain: "bücher.example", AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	bob := srv.LoginPlain(t, "bob", "secret", "desk")
	bob.Send("<presence/>")
	bob.Expect("<presence")
	for _, to := range []string{"xn--bcher-kva.example", "BÜCHER.example"} {
		r := srv.DialTLS(t)
		hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + to + "' version='1.0'>"
		r.Send(hdr)
		if got := r.Expect("</stream:features>"); !strings.Contains(got, "from='bücher.example'") {
			t.Fatalf("to=%s: header %q, want from='bücher.example'", to, got)
		}
		r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
			base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "</auth>")
		r.Expect("<success")
		r.Send(hdr)
		r.Expect("</stream:features>")
		r.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
		if got := r.Expect("</iq>"); !strings.Contains(got, "<jid>alice@bücher.example/r</jid>") {
			t.Fatalf("to=%s: bind %q", to, got)
		}
		// An A-label address reaches the same account.
		r.Send("<message to='bob@xn--bcher-kva.example' type='chat' id='m1'><body>hallo " + to + "</body></message>")
		if got := bob.Expect("hallo " + to); !strings.Contains(got, "from='alice@bücher.example/r'") {
			t.Fatalf("to=%s: delivered %q", to, got)
		}
	}
}
