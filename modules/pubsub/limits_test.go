package pubsub_test

import (
	"fmt"
	"strings"
	"testing"

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

// TestGuestsCreateNoNodes: a guest (SASL ANONYMOUS) may use the service but not create
// nodes, which would outlive the guest's account.
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
	g.C.Wait(t, "id='s'", "type='result'")
}
