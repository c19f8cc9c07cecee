package disco_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/modules/module"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
)

// TestCapsNodeQuery: XEP-0115 §6.2 — a disco#info query to the caps node '<node>#<ver>'
// is answered like a plain disco#info, with the node echoed; other nodes are unknown.
func TestCapsNodeQuery(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<iq type='get' id='plain'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	plain := a.C.Wait(t, "id='plain'")
	capsNode := module.CapsNode + "#" + e.R.CapsVer()
	for _, tc := range []struct {
		name, to, node string
		ok             bool
	}{
		{"caps node", "", capsNode, true},
		{"caps node to domain", "example.org", capsNode, true},
		{"wrong ver", "", module.CapsNode + "#AAAA", false},
		{"bare caps node", "", module.CapsNode, false},
		{"unknown node", "", "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.C.Reset()
			to := ""
			if tc.to != "" {
				to = " to='" + tc.to + "'"
			}
			a.Send("<iq type='get' id='n'" + to + "><query xmlns='http://jabber.org/protocol/disco#info' node='" + tc.node + "'/></iq>")
			got := a.C.Wait(t, "id='n'")
			if !tc.ok {
				if !strings.Contains(got, "item-not-found") {
					t.Fatalf("want item-not-found, got %s", got)
				}
				return
			}
			if !strings.Contains(got, "type='result'") || !strings.Contains(got, "node='"+capsNode+"'") {
				t.Fatalf("want result echoing node %s, got %s", capsNode, got)
			}
			// Same identities and features as the plain query.
			if body(got) != strings.Replace(body(plain), "<query xmlns='http://jabber.org/protocol/disco#info'>",
				"<query xmlns='http://jabber.org/protocol/disco#info' node='"+capsNode+"'>", 1) {
				t.Fatalf("caps node answer differs from plain disco#info:\n%s\n%s", got, plain)
			}
		})
	}
}

// body returns the <query> element of an IQ result.
func body(iq string) string {
	i := strings.Index(iq, "<query")
	j := strings.LastIndex(iq, "</query>")
	if i < 0 || j < 0 {
		return iq
	}
	return iq[i : j+len("</query>")]
}

// TestAccountInfo: the account's disco#info (to a bare JID, by the owner or by a contact
// it shares its presence with) has the account identity and the features that apply to
// accounts, like XEP-0359 (every message to the account carries <stanza-id
// by='account'/>) and XEP-0313 (the account's archive, which clients look for there).
// Anyone else gets service-unavailable (XEP-0030 §8), and a node it does not describe
// item-not-found.
func TestAccountInfo(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "mallory"}, nil)
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubFrom})
	a := e.Bind("alice", "pc")
	b := e.Bind("bob", "pc")
	m := e.Bind("mallory", "pc")
	for _, tc := range []struct {
		name  string
		s     *routertest.Sess
		query string
		want  []string
	}{
		{"own account", a, "", []string{"type='result'", "category='account'", "var='urn:xmpp:sid:0'", "var='urn:xmpp:mam:2'", "var='urn:xmpp:mam:2#extended'"}},
		{"a contact", b, "", []string{"type='result'", "category='account'", "var='urn:xmpp:mam:2'"}},
		{"a stranger", m, "", []string{"type='error'", "<service-unavailable"}},
		{"a node", a, " node='urn:example:nothing'", []string{"type='error'", "<item-not-found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.C.Reset()
			tc.s.Send("<iq type='get' id='ai' to='alice@example.org'><query xmlns='http://jabber.org/protocol/disco#info'" + tc.query + "/></iq>")
			got := tc.s.C.Wait(t, "id='ai'")
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("missing %s in %s", want, got)
				}
			}
		})
	}
}
