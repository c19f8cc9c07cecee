package engine_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationVhostReload: a host added by a reload accepts streams; when it is
// removed, a stream for it that has not bound yet ends with host-gone (RFC 6120
// §4.9.3.6), and one for the remaining host, opened while the host list had another
// order, still authenticates for its own host.
func TestIntegrationVhostReload(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "alice pw")
	header := func(to string) string {
		return "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + to + "' version='1.0'>"
	}

	unknown := srv.DialTLS(t)
	unknown.Send(header("new.example"))
	unknown.Expect("host-unknown")

	setDomains(t, srv, "new.example", "localhost", "other.example")
	gone := srv.DialTLS(t)
	gone.Send(header("new.example"))
	if got := gone.Expect("</stream:features>"); !strings.Contains(got, "from='new.example'") && !strings.Contains(got, `from="new.example"`) {
		t.Fatalf("header for the added host: %s", got)
	}
	kept := srv.DialTLS(t)
	kept.Send(header("localhost"))
	kept.Expect("</stream:features>")

	// localhost moves from second to first, other.example takes its old place.
	setDomains(t, srv, "localhost", "other.example")
	gone.Expect("<host-gone")
	gone.ExpectClosed()
	kept.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00alice pw")) + "</auth>")
	kept.Expect("<success")
	kept.Send(header("localhost"))
	kept.Expect("</stream:features>")
	kept.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	kept.Expect("alice@localhost/")
	again := srv.DialTLS(t)
	again.Send(header("new.example"))
	again.Expect("host-unknown")
}

// setDomains changes srv's virtual hosts as a reload that edits the domains line does:
// the router's host table, then the engine's config.
func setDomains(t *testing.T, srv *vireotest.Server, domains ...string) {
	t.Helper()
	if err := srv.Router.SetDomains(domains); err != nil {
		t.Fatal(err)
	}
	cfg := srv.Engine.Config()
	cfg.Domains = domains
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
}

// TestSplitVhostRemoved: a stream an edge relays for a host that a reload removes ends
// with host-gone, as a direct one does.
func TestSplitVhostRemoved(t *testing.T) {
	core := vireotest.Start(t, vireotest.Options{AllowPlain: true, LinkSecret: linkSecret})
	edge := vireotest.StartEdge(t, core, linkSecret)
	setDomains(t, core, "localhost", "new.example")
	gone := edge.DialTLS(t)
	gone.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='new.example' version='1.0'>")
	gone.Expect("</stream:features>")
	setDomains(t, core, "localhost")
	gone.Expect("<host-gone")
}
