package engine_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
)

var (
	boundMetaRe = regexp.MustCompile(`<bound xmlns='urn:xmpp:bind:0'><metadata xmlns='urn:xmpp:mam:2'><start id='([^']+)' timestamp='[^']+'/><end id='([^']+)' timestamp='[^']+'/></metadata>`)
	stanzaIDRe  = regexp.MustCompile(`<stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='([^']+)'/>|<stanza-id xmlns='urn:xmpp:sid:0' id='([^']+)' by='alice@localhost'/>`)
)

// TestIntegrationBind2MAMMetadata: XEP-0386 §3.2, the <bound/> of a Bind2 login carries
// XEP-0313's <metadata/> of the user's archive as it is at binding: empty for a new
// account, then the first and the last archived message, whose ids are the stanza-ids the
// messages arrived with.
func TestIntegrationBind2MAMMetadata(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")

	a, _ := sasl2Open(t, srv)
	a.Send(authenticate("PLAIN", plainResponse("alice", "secret"), userAgent(agentID)+
		"<bind xmlns='urn:xmpp:bind:0'><tag>phone</tag></bind>"))
	success := a.Expect("</success>")
	if !strings.Contains(success, "<bound xmlns='urn:xmpp:bind:0'><metadata xmlns='urn:xmpp:mam:2'/></bound>") {
		t.Fatalf("no empty archive metadata in <bound/>: %q", success)
	}
	a.Expect("</stream:features>")
	a.Send("<presence/>")

	bob := srv.LoginPlain(t, "bob", "secret", "desk")
	var ids []string
	for _, body := range []string{"first", "second"} {
		bob.Send("<message to='alice@localhost' type='chat'><body>" + body + "</body></message>")
		got := a.Expect("<body>" + body + "</body>")
		got += a.Expect("</message>")
		m := stanzaIDRe.FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("no stanza-id for alice's archive: %q", got)
		}
		ids = append(ids, m[1]+m[2])
	}

	a2, _ := sasl2Open(t, srv)
	a2.Send(authenticate("PLAIN", plainResponse("alice", "secret"), userAgent("laptop-agent")+
		"<bind xmlns='urn:xmpp:bind:0'><tag>laptop</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"))
	success = a2.Expect("</success>")
	m := boundMetaRe.FindStringSubmatch(success)
	if m == nil {
		t.Fatalf("no archive metadata in <bound/>: %q", success)
	}
	if m[1] != ids[0] || m[2] != ids[1] {
		t.Fatalf("metadata start/end %s/%s, want the messages' stanza-ids %s/%s", m[1], m[2], ids[0], ids[1])
	}
	if enableRe.FindStringSubmatch(success) == nil {
		t.Fatalf("stream management not enabled beside the metadata: %q", success)
	}
}
