package engine_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// contactConfig is a [modules.contact] as an operator writes it in vireo.toml.
const contactConfig = `domains = ["localhost"]
[modules.contact]
abuse = ["mailto:abuse@localhost", "xmpp:abuse@localhost"]
security = ["https://localhost/security.txt"]
external_status = ["https://status.example.net/localhost.json"]
`

// TestIntegrationSlixmppContact: XEP-0157 and XEP-0455 read by Debian's slixmpp from the
// server's disco#info, and the server's XEP-0115 verification string (in its stream
// features) checked by slixmpp's own code against that disco#info, both forms included.
func TestIntegrationSlixmppContact(t *testing.T) {
	needSlixmpp(t)
	cfg, err := config.Parse([]byte(contactConfig), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	srv := vireotest.Start(t, vireotest.Options{ModuleConfig: cfg.ModuleConfig})
	srv.AddUser(t, "slix", "py secret")
	runSlix(t, srv, "slixmpp_contact.py", "CONTACT abuse-addresses mailto:abuse@localhost xmpp:abuse@localhost",
		"CONTACT security-addresses https://localhost/security.txt", "SOS external-status-addresses https://status.example.net/localhost.json", "VER MATCH")
}

// TestIntegrationContactOff: without [modules.contact] the server's disco#info has no form.
func TestIntegrationContactOff(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	a := srv.LoginPlain(t, "alice", "secret", "pc")
	a.Send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got := iqAnswer(a, "d1"); strings.Contains(got, "jabber:x:data") || strings.Contains(got, "serverinfo") {
		t.Fatalf("a contact form without contacts: %s", got)
	}
}
