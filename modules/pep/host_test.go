package pep_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/pep"
	"github.com/vireo-im/vireo/modules/pubsub"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
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

// publishOpen publishes text to the open node urn:example:open of s's account (made open
// by the publish options the first time) and waits for the result.
func publishOpen(t *testing.T, s *routertest.Sess, id, text string) {
	t.Helper()
	s.Send("<iq type='set' id='" + id + "'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:example:open'><item><n xmlns='urn:example:n'>" + text + "</n></item></publish>" +
		"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
		"<field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub></iq>")
	s.C.Wait(t, "id='"+id+"'", "type='result'")
}

// TestSubscriptionsBounded: a contact subscribing to a PEP node (with the full JIDs it
// likes) is held to pubsub.MaxSubscriptionsPerUser, as on the pubsub service.
func TestSubscriptionsBounded(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	publishOpen(t, a, "p", "")
	b := e.Bind("bob", "pc")
	for i := range pubsub.MaxSubscriptionsPerUser + 1 {
		b.Send(fmt.Sprintf("<iq type='set' id='s%d' to='alice@example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='urn:example:open' jid='bob@example.org/r%d'/></pubsub></iq>", i, i))
		got := b.C.Wait(t, fmt.Sprintf("id='s%d'", i))
		if ok := strings.Contains(got, "type='result'"); ok != (i < pubsub.MaxSubscriptionsPerUser) {
			t.Fatalf("subscription %d: %s", i, got)
		}
	}
	// Subscribing again a JID already subscribed is no new subscription.
	b.Send("<iq type='set' id='again' to='alice@example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='urn:example:open' jid='bob@example.org/r0'/></pubsub></iq>")
	b.C.Wait(t, "id='again'", "type='result'")
}

// TestAccountRemoved: a removed account's explicit subscriptions to its contacts' nodes
// go with it; a guest may not subscribe to another account's node at all.
func TestAccountRemoved(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	e.Store.Accounts().Create(store.Account{User: "guest1@example.org", Anonymous: true})
	a := e.Bind("alice", "pc")
	publishOpen(t, a, "p", "")
	const sub = "<iq type='set' id='s' to='alice@example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='urn:example:open' jid='%s'/></pubsub></iq>"
	g := e.BindGuest("guest1", "web")
	g.Send(fmt.Sprintf(sub, "guest1@example.org/web"))
	g.C.Wait(t, "id='s'", "type='error'", "<forbidden", "guests may not subscribe")
	b := e.Bind("bob", "pc")
	b.Send(fmt.Sprintf(sub, "bob@example.org/pc"))
	b.C.Wait(t, "id='s'", "type='result'")
	nodes := pubsub.Nodes{T: e.Store.Table("pep")}
	if got := nodes.SubscriptionsOf("alice@example.org", "urn:example:open", "bob@example.org"); len(got) != 1 {
		t.Fatalf("bob's subscriptions before: %v", got)
	}
	e.Store.Rosters().Put("bob@example.org", store.RosterItem{JID: "alice@example.org", Sub: store.SubTo})
	if err := e.Store.Accounts().Delete("bob@example.org"); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		if len(nodes.SubscriptionsOf("alice@example.org", "urn:example:open", "bob@example.org")) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("bob's subscription outlived his account")
}

// TestBlockedSubscriberNotNotified: a contact the owner blocks gets no notification of
// the owner's publishes, subscribed or not (XEP-0163 §4.3.3).
func TestBlockedSubscriberNotNotified(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := e.Bind("alice", "pc")
	publishOpen(t, a, "p1", "first")
	const sub = "<iq type='set' id='s' to='alice@example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='urn:example:open' jid='%s'/></pubsub></iq>"
	b, c := e.Bind("bob", "pc"), e.Bind("carol", "pc")
	b.Send(fmt.Sprintf(sub, "bob@example.org/pc"))
	b.C.Wait(t, "id='s'", "type='result'")
	c.Send(fmt.Sprintf(sub, "carol@example.org/pc"))
	c.C.Wait(t, "id='s'", "type='result'")
	a.Send("<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.org'/></block></iq>")
	a.C.Wait(t, "id='b'", "type='result'")
	publishOpen(t, a, "p2", "second")
	c.C.Wait(t, "second")
	b.C.Never(t, "second")
}

// TestPEPListsAndUnsubscribe: a member named with capitals is the member the JID prepares
// to (whitelist access holds for it), unsubscribing without a subscription is an error
// (XEP-0060 §6.2.3.4), and a subscribed member hears of the node's deletion.
func TestPEPListsAndUnsubscribe(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:example:wl'><item id='i'><n xmlns='urn:example:n'>secret</n></item></publish>" +
		"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
		"<field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub></iq>")
	a.C.Wait(t, "id='p'", "type='result'")
	a.Send("<iq type='set' id='m'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='urn:example:wl'>" +
		"<affiliation jid='Bob@Example.ORG' affiliation='member'/></affiliations></pubsub></iq>")
	a.C.Wait(t, "id='m'", "type='result'")
	b := e.Bind("bob", "pc")
	b.Send("<iq type='get' id='g' to='alice@example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:wl'/></pubsub></iq>")
	b.C.Wait(t, "id='g'", "type='result'", "secret")
	b.Send("<iq type='set' id='u' to='alice@example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><unsubscribe node='urn:example:wl' jid='bob@example.org/pc'/></pubsub></iq>")
	b.C.Wait(t, "id='u'", "type='error'", "<unexpected-request", "<not-subscribed")

	// A member subscribed to the node hears of its deletion (XEP-0060 §8.4.2), though
	// the membership goes with the node.
	b.Send("<iq type='set' id='s' to='alice@example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='urn:example:wl' jid='bob@example.org/pc'/></pubsub></iq>")
	b.C.Wait(t, "id='s'", "type='result'")
	a.Send("<iq type='set' id='d'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='urn:example:wl'/></pubsub></iq>")
	a.C.Wait(t, "id='d'", "type='result'")
	b.C.Wait(t, "<delete node='urn:example:wl'")
}

// TestOwnResourcesNotify: the owner's resources are subscribers like a contact's
// (XEP-0163 §4.3.2): one whose caps ask for a node gets its notifications and, when it
// becomes available, the node's last item (caps resolved then, or known before); one
// that does not ask gets neither. A node's deletion reaches its explicit subscribers.
func TestOwnResourcesNotify(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	advertise(t, a, "Pc", "urn:example:open+notify")
	plain := e.Bind("alice", "plain")
	plain.Send("<presence/>")
	publishOpen(t, a, "p1", "first")
	a.C.Wait(t, "to='alice@example.org/pc'", "<items node='urn:example:open'>", "first")
	plain.C.Never(t, "first")

	late := e.Bind("alice", "late") // caps the server has not seen: resolved first
	advertise(t, late, "Late", "urn:example:open+notify")
	late.C.Wait(t, "<items node='urn:example:open'>", "first")
	again := e.Bind("alice", "again") // the same caps, known already
	sum := regexp.MustCompile(`<c xmlns='http://jabber.org/protocol/caps'[^>]*/>`).FindString(late.C.All())
	if sum == "" {
		t.Fatal("no caps in late's own presence")
	}
	again.Send("<presence>" + sum + "</presence>")
	again.C.Wait(t, "<items node='urn:example:open'>", "first")
	again.Send("<presence><show>away</show>" + sum + "</presence>") // not initial: nothing again
	time.Sleep(100 * time.Millisecond)
	if n := strings.Count(again.C.All(), "<items node='urn:example:open'>"); n != 1 {
		t.Fatalf("%d last-item notifications for one available period", n)
	}

	b := e.Bind("bob", "pc")
	b.Send("<iq type='set' id='s' to='alice@example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='urn:example:open' jid='bob@example.org/pc'/></pubsub></iq>")
	b.C.Wait(t, "id='s'", "type='result'")
	a.Send("<iq type='set' id='d'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='urn:example:open'/></pubsub></iq>")
	a.C.Wait(t, "id='d'", "type='result'")
	b.C.Wait(t, "<delete node='urn:example:open'")
	a.C.Wait(t, "<delete node='urn:example:open'")
}
