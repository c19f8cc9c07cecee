package pubsub_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/modules/pubsub"
	"github.com/vireo-im/vireo/router/routertest"
)

// TestHostSettings: a virtual host's [vhosts."<host>".modules.pubsub] table bounds the
// nodes and items of its service, leaves other hosts' services on the server-wide limits,
// and cannot rename the service.
func TestHostSettings(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	with := func(host string, c pubsub.Config) (func(), error) {
		return e.HostSettings("pubsub", host, func(v any) { *v.(*pubsub.Config) = c })
	}
	if _, err := with("example.org", pubsub.Config{Subdomain: "news"}); err == nil || !strings.Contains(err.Error(), "server-wide") {
		t.Fatalf("a host's own subdomain: %v", err)
	}
	apply, err := with("example.org", pubsub.Config{MaxNodes: 1, MaxItemSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	apply()
	a := e.Bind("alice", "pc")
	publish := func(id, node, text string) {
		a.Send("<iq type='set' id='" + id + "' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='" + node +
			"'><item><entry xmlns='http://www.w3.org/2005/Atom'>" + text + "</entry></item></publish></pubsub></iq>")
	}
	create := func(id, node string) {
		a.Send("<iq type='set' id='" + id + "' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='" + node + "'/></pubsub></iq>")
	}
	create("c1", "news")
	a.C.Wait(t, "id='c1'", "type='result'")
	create("c2", "blog")
	a.C.Wait(t, "id='c2'", "type='error'", "<policy-violation")
	publish("p1", "news", strings.Repeat("x", 100))
	a.C.Wait(t, "id='p1'", "type='error'", "<payload-too-big")

	apply, err = with("other.example", pubsub.Config{MaxNodes: 1, MaxItemSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	apply()
	create("c3", "blog")
	a.C.Wait(t, "id='c3'", "type='result'")
	publish("p2", "news", strings.Repeat("x", 100))
	a.C.Wait(t, "id='p2'", "type='result'")
}
