package router_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// TestSetDomainsServices: a host added at runtime gets the services of the modules that
// follow hosts (MUC, pubsub) before its users can reach it; a removed one loses them and
// its users' sessions end with host-gone, while the other host's go on.
func TestSetDomainsServices(t *testing.T) {
	e := newEnv(t)
	a := e.Bind("alice", "pc")
	before := e.R.ServiceDomains()
	if slices.Contains(before, "conference.new.example") || !slices.Contains(before, "conference.example.org") {
		t.Fatalf("services at start: %v", before)
	}
	for _, tc := range []struct {
		name    string
		domains []string
	}{
		{"none", nil},
		{"a service domain", []string{"example.org", "conference.example.org"}},
		{"whose service is a host", []string{"example.org", "x.example", "conference.x.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.R.SetDomains(tc.domains); err == nil {
				t.Fatalf("SetDomains(%v) accepted", tc.domains)
			}
			if !slices.Equal(e.R.ServiceDomains(), before) {
				t.Fatalf("a refused change left services: %v", e.R.ServiceDomains())
			}
		})
	}

	if err := e.R.SetDomains([]string{"example.org", "new.example"}); err != nil {
		t.Fatal(err)
	}
	if got := e.R.ServiceDomains(); !slices.Contains(got, "conference.new.example") || !slices.Contains(got, "pubsub.new.example") {
		t.Fatalf("services after the add: %v", got)
	}
	a.Send("<iq type='get' id='d1' to='conference.new.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='d1'", "type='result'", "category='conference'")
	// XEP-0030 §4: each host lists its own services and the server's.
	a.Send("<iq type='get' id='i1' to='new.example'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	a.C.Wait(t, "id='i1'", "jid='conference.new.example'", "jid='rooms.example.org'")
	a.Send("<iq type='get' id='i0' to='example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if got := a.C.Wait(t, "id='i0'", "jid='conference.example.org'"); strings.Contains(got, "new.example") {
		t.Fatalf("example.org lists another host's services: %s", got)
	}

	e.Store.Accounts().Create(store.Account{User: "dave@new.example"})
	dave := bind(t, e.R, "dave@new.example", "phone")
	a.Send("<message to='dave@new.example/phone' type='chat' id='m1'><body>hi dave</body></message>")
	dave.Wait(t, "hi dave")

	if err := e.R.SetDomains([]string{"example.org"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for dave.Closed() != stanza.HostGone {
		if time.Now().After(deadline) {
			t.Fatalf("dave's stream closed with %q, want host-gone", dave.Closed())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if a.C.Closed() != "" {
		t.Fatalf("alice on the remaining host closed with %q", a.C.Closed())
	}
	if slices.Contains(e.R.ServiceDomains(), "conference.new.example") {
		t.Fatalf("services after the removal: %v", e.R.ServiceDomains())
	}
	a.Send("<iq type='get' id='d2' to='conference.new.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='d2'", "remote-server-not-found")
	a.Send("<iq type='get' id='i2' to='example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if got := a.C.Wait(t, "id='i2'"); strings.Contains(got, "new.example") {
		t.Fatalf("disco#items after the removal: %s", got)
	}
	// Added again, the host serves as before.
	if err := e.R.SetDomains([]string{"example.org", "new.example"}); err != nil {
		t.Fatal(err)
	}
	a.Send("<iq type='get' id='d3' to='conference.new.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='d3'", "type='result'")
}

func bind(t *testing.T, r *router.Router, user, res string) *routertest.Conn {
	t.Helper()
	bare, err := jid.Parse(user)
	if err != nil {
		t.Fatal(err)
	}
	c := &routertest.Conn{}
	done := make(chan error, 1)
	r.Bind(bare, res, c, func(_ *router.Session, err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return c
}
