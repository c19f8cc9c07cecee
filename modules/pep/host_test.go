package pep_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/modules/pep"
	"github.com/vireo-im/vireo/router/routertest"
)

// TestHostSettings: a virtual host's [vhosts."<host>".modules.pep] table bounds its own
// accounts' nodes and items, and leaves other hosts' accounts on the server-wide limits.
func TestHostSettings(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	with := func(host string, c pep.Config) func() {
		t.Helper()
		apply, err := e.HostSettings("pep", host, func(v any) { *v.(*pep.Config) = c })
		if err != nil {
			t.Fatal(err)
		}
		return apply
	}
	a := e.Bind("alice", "pc")
	publish := func(id, node, text string) {
		a.Send("<iq type='set' id='" + id + "'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='" + node +
			"'><item><note xmlns='urn:example:notes'>" + text + "</note></item></publish></pubsub></iq>")
	}
	with("example.org", pep.Config{MaxNodes: 1, MaxItemSize: 100})()
	publish("p1", "urn:example:one", "short")
	a.C.Wait(t, "id='p1'", "type='result'")
	publish("p2", "urn:example:two", "short")
	a.C.Wait(t, "id='p2'", "type='error'", "<policy-violation", "too many nodes")
	publish("p3", "urn:example:one", strings.Repeat("x", 100))
	a.C.Wait(t, "id='p3'", "type='error'", "<payload-too-big")

	// Another host's table leaves example.org on the server-wide limits.
	with("other.example", pep.Config{MaxNodes: 1, MaxItemSize: 100})()
	publish("p4", "urn:example:two", strings.Repeat("x", 100))
	a.C.Wait(t, "id='p4'", "type='result'")
}
