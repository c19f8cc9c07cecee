package pubsub_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
)

// TestSubscriptionsPerUser: one user's subscriptions to one node are bounded (a
// subscription names any full JID of the sender's), and the user's subscriptions list
// shows exactly theirs, for one node or all.
func TestSubscriptionsPerUser(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='c' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='news'/></pubsub></iq>")
	a.C.Wait(t, "id='c'", "type='result'")
	sub := func(s *routertest.Sess, id, j string) string {
		s.Send("<iq type='set' id='" + id + "' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='news' jid='" + j + "'/></pubsub></iq>")
		return s.C.Wait(t, "id='"+id+"'")
	}
	for i := range 32 {
		if got := sub(a, fmt.Sprint("s", i), fmt.Sprintf("alice@example.org/r%d", i)); !strings.Contains(got, "type='result'") {
			t.Fatalf("subscription %d: %s", i, got)
		}
	}
	if got := sub(a, "s32", "alice@example.org/r32"); !strings.Contains(got, "<policy-violation") {
		t.Fatalf("the 33rd subscription: %s", got)
	}
	b := e.Bind("bob", "pc")
	if got := sub(b, "b1", "bob@example.org"); !strings.Contains(got, "type='result'") {
		t.Fatalf("bob's subscription: %s", got)
	}
	for _, node := range []string{" node='news'", ""} {
		b.Send("<iq type='get' id='l' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions" + node + "/></pubsub></iq>")
		got := b.C.Wait(t, "id='l'")
		if !strings.Contains(got, "jid='bob@example.org' subscription='subscribed'") || strings.Contains(got, "alice") {
			t.Fatalf("bob's subscriptions%s: %s", node, got)
		}
		b.C.Reset()
	}
	a.Send("<iq type='get' id='l' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions node='news'/></pubsub></iq>")
	if got := a.C.Wait(t, "id='l'"); strings.Count(got, "<subscription ") != 32 || strings.Contains(got, "bob") {
		t.Fatalf("alice's subscriptions: %d\n%s", strings.Count(got, "<subscription "), got)
	}
}

// TestGuestsCreateNoNodes: a guest (SASL ANONYMOUS) may read the service's nodes but
// neither create nodes nor subscribe, which would outlive the guest's account.
func TestGuestsCreateNoNodes(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	e.Store.Accounts().Create(store.Account{User: "guest1@example.org", Anonymous: true})
	g := e.Bind("guest1", "web")
	g.Send("<iq type='set' id='c' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='spam'/></pubsub></iq>")
	g.C.Wait(t, "id='c'", "type='error'", "<forbidden", "guests may not create nodes")
	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='c' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='news'/></pubsub></iq>")
	a.C.Wait(t, "id='c'", "type='result'")
	g.Send("<iq type='set' id='s' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='news' jid='guest1@example.org/web'/></pubsub></iq>")
	g.C.Wait(t, "id='s'", "type='error'", "<forbidden", "guests may not subscribe")
	g.Send("<iq type='get' id='i' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='news'/></pubsub></iq>")
	g.C.Wait(t, "id='i'", "type='result'")
	if subs := e.Store.Table("pubsub"); subs != nil {
		n := 0
		subs.Scan(store.UserKey("pubsub.example.org", "s", ""), func(_, _ []byte) bool { n++; return true })
		if n != 0 {
			t.Fatalf("%d subscriptions stored", n)
		}
	}
}

// TestAccountRemoved: a removed account leaves nothing on the service. The node it alone
// owned is deleted (its subscriber is told), the node it owned with bob stays with bob,
// and its subscriptions and its publisher affiliation are gone; an account made again
// with the name owns, follows and may publish nothing.
func TestAccountRemoved(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	const ps = "<iq type='set' id='%s' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub%s'>%s</pubsub></iq>"
	do := func(s *routertest.Sess, id, owner, body string) {
		t.Helper()
		s.Send(fmt.Sprintf(ps, id, owner, body))
		s.C.Wait(t, "id='"+id+"'", "type='result'")
	}
	a, b, c := e.Bind("alice", "pc"), e.Bind("bob", "pc"), e.Bind("carol", "pc")
	do(a, "c1", "", "<create node='mine'/>")
	do(a, "c2", "", "<create node='shared'/>")
	do(a, "o2", "#owner", "<affiliations node='shared'><affiliation jid='bob@example.org' affiliation='owner'/></affiliations>")
	do(b, "c3", "", "<create node='bobs'/>")
	do(b, "o3", "#owner", "<affiliations node='bobs'><affiliation jid='alice@example.org' affiliation='publisher'/></affiliations>")
	do(a, "s3", "", "<subscribe node='bobs' jid='alice@example.org/pc'/>")
	do(a, "s2", "", "<subscribe node='shared' jid='alice@example.org'/>")
	do(c, "s1", "", "<subscribe node='mine' jid='carol@example.org/pc'/>")

	if err := e.Store.Accounts().Delete("alice@example.org"); err != nil {
		t.Fatal(err)
	}
	c.C.Wait(t, "<delete node='mine'")
	waitRemoved(t, e)
	e.Store.Accounts().Create(store.Account{User: "alice@example.org"})
	a = e.Bind("alice", "new")
	for _, q := range []struct{ id, owner, body, want string }{
		{"l1", "", "<subscriptions/>", "<subscriptions/>"},
		{"l2", "", "<affiliations/>", "<affiliations/>"},
		{"p1", "", "<publish node='bobs'><item id='x'><x xmlns='t'/></item></publish>", "<forbidden"},
		{"p2", "", "<publish node='shared'><item id='x'><x xmlns='t'/></item></publish>", "<forbidden"},
		{"g1", "", "<items node='mine'/>", "<item-not-found"},
	} {
		typ := "get"
		if strings.HasPrefix(q.body, "<publish") {
			typ = "set"
		}
		a.Send(strings.Replace(fmt.Sprintf(ps, q.id, q.owner, q.body), "type='set'", "type='"+typ+"'", 1))
		if got := a.C.Wait(t, "id='"+q.id+"'"); !strings.Contains(got, q.want) {
			t.Errorf("%s: %s", q.body, got)
		}
	}
	get := func(id, owner, body string) string {
		return strings.Replace(fmt.Sprintf(ps, id, owner, body), "type='set'", "type='get'", 1)
	}
	b.Send(get("a2", "#owner", "<affiliations node='shared'/>"))
	if got := b.C.Wait(t, "id='a2'"); !strings.Contains(got, "jid='bob@example.org' affiliation='owner'") || strings.Contains(got, "alice") {
		t.Errorf("shared's affiliations: %s", got)
	}
	b.Send(get("s2", "#owner", "<subscriptions node='bobs'/>"))
	if got := b.C.Wait(t, "id='s2'"); strings.Contains(got, "alice") || !strings.Contains(got, "<subscriptions node='bobs'") {
		t.Errorf("bobs' subscriptions: %s", got)
	}
}

func waitRemoved(t *testing.T, e *routertest.Env) {
	t.Helper()
	for range 300 {
		n := 0
		e.Store.(store.Removals).PendingRemovals(func(store.Removal) bool { n++; return true })
		if n == 0 {
			time.Sleep(50 * time.Millisecond) // what the removal queued on the service's shard
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the removal was not finished in 3 s")
}

// TestItemsNotThere: asking for items that do not exist gets an empty <items/>, not an
// error (XEP-0060 §6.5.9.11).
func TestItemsNotThere(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='c' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='news'/></pubsub></iq>")
	a.C.Wait(t, "id='c'", "type='result'")
	a.Send("<iq type='get' id='g' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='news'><item id='nope'/></items></pubsub></iq>")
	if got := a.C.Wait(t, "id='g'"); !strings.Contains(got, "type='result'") || strings.Contains(got, "<item ") {
		t.Fatalf("items that do not exist: %s", got)
	}
}

// TestNotifyRechecksAccess: a subscription made while a node was open, or while its
// subscriber was a member, gets no items once the node is closed to it (XEP-0060 §4.5):
// notifications are sent to those who may read the node now.
func TestNotifyRechecksAccess(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := e.Bind("alice", "pc")
	const ps = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>"
	a.Send("<iq type='set' id='c' to='pubsub.example.org'>" + ps + "<create node='n'/></pubsub></iq>")
	a.C.Wait(t, "id='c'", "type='result'")
	b, c := e.Bind("bob", "pc"), e.Bind("carol", "pc")
	for _, s := range []*routertest.Sess{b, c} {
		s.Send("<presence/>") // events to a bare JID go to its available resources
		s.Send("<iq type='set' id='s' to='pubsub.example.org'>" + ps + "<subscribe node='n' jid='" + s.S.JID().Bare().String() + "'/></pubsub></iq>")
		s.C.Wait(t, "id='s'", "subscription='subscribed'")
	}
	publish := func(id, text string) {
		a.Send("<iq type='set' id='" + id + "' to='pubsub.example.org'>" + ps + "<publish node='n'><item><entry xmlns='urn:example'>" + text + "</entry></item></publish></pubsub></iq>")
		a.C.Wait(t, "id='"+id+"'", "type='result'")
	}
	publish("p1", "open")
	b.C.Wait(t, "open")
	// Whitelist: carol a member, bob not.
	a.Send("<iq type='set' id='cf' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'>" +
		"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>" +
		"<field var='pubsub#access_model'><value>whitelist</value></field></x></configure></pubsub></iq>")
	a.C.Wait(t, "id='cf'", "type='result'")
	a.Send("<iq type='set' id='af' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'>" +
		"<affiliation jid='carol@example.org' affiliation='member'/></affiliations></pubsub></iq>")
	a.C.Wait(t, "id='af'", "type='result'")
	publish("p2", "members only")
	c.C.Wait(t, "members only")
	b.C.Never(t, "members only")
	// Carol no longer a member.
	a.Send("<iq type='set' id='af2' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'>" +
		"<affiliation jid='carol@example.org' affiliation='none'/></affiliations></pubsub></iq>")
	a.C.Wait(t, "id='af2'", "type='result'")
	publish("p3", "after carol")
	c.C.Never(t, "after carol")
}

// TestWhitelistNodeNotListed: the service's disco#items lists a whitelisted node to its
// owner and members only; open nodes to everyone.
func TestWhitelistNodeNotListed(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='c1' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='public'/></pubsub></iq>")
	a.C.Wait(t, "id='c1'", "type='result'")
	a.Send("<iq type='set' id='c2' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='secret-plans'/><configure>" +
		"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>" +
		"<field var='pubsub#access_model'><value>whitelist</value></field></x></configure></pubsub></iq>")
	a.C.Wait(t, "id='c2'", "type='result'")
	a.Send("<iq type='set' id='af' to='pubsub.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='secret-plans'>" +
		"<affiliation jid='bob@example.org' affiliation='member'/></affiliations></pubsub></iq>")
	a.C.Wait(t, "id='af'", "type='result'")
	list := func(s *routertest.Sess) string {
		s.Send("<iq type='get' id='d' to='pubsub.example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
		got := s.C.Wait(t, "id='d'")
		s.C.Reset()
		return got
	}
	for _, tc := range []struct {
		s      *routertest.Sess
		secret bool
	}{{a, true}, {e.Bind("bob", "pc"), true}, {e.Bind("carol", "pc"), false}} {
		got := list(tc.s)
		if !strings.Contains(got, "node='public'") || strings.Contains(got, "secret-plans") != tc.secret {
			t.Fatalf("%s's listing: %s", tc.s.S.JID(), got)
		}
	}
}
