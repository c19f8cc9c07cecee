package pep_test

import (
	"crypto/sha1"
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/modules/pubsub"
	_ "github.com/vireo-im/vireo/modules/standard" // disco, for the account's features
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
)

// TestBookmarksCompatPEP: XEP-0402 §5.3 #compat-pep. The PEP node storage:bookmarks
// (XEP-0048 §3.3) is the XEP-0402 node seen through XEP-0048: a list published there
// becomes XEP-0402 items (with their notifications), a XEP-0402 bookmark shows in the
// list, each change tells the owner's resources that want it (storage:bookmarks+notify in
// their XEP-0115 caps, which the server resolves) the new list once, and the node is the
// owner's alone.
func TestBookmarksCompatPEP(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "legacy")
	advertise(t, a, "Legacy", "storage:bookmarks+notify") // a XEP-0048 client
	a2 := e.Bind("alice", "modern")
	advertise(t, a2, "Modern", "urn:xmpp:bookmarks:1+notify") // a XEP-0402 client
	a.Send("<iq type='get' id='d' to='alice@example.org'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='d'", "urn:xmpp:bookmarks:1#compat-pep", "urn:xmpp:bookmarks:1#compat'")

	// No bookmarks yet: the node is not there.
	items := "<iq type='get' id='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='storage:bookmarks'/></pubsub></iq>"
	a.Send(strings.Replace(items, "%s", "g0", 1))
	a.C.Wait(t, "id='g0'", "<item-not-found")

	// XEP-0048 §3.3's publish, with its publish-options.
	a.Send("<iq type='set' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='storage:bookmarks'><item id='current'>" +
		"<storage xmlns='storage:bookmarks'><conference name='Council' autojoin='true' jid='council@conference.example.org'><nick>alice</nick></conference>" +
		"<conference jid='tea@conference.example.org'/></storage></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
		"<field var='pubsub#persist_items'><value>true</value></field><field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub></iq>")
	a.C.Wait(t, "id='p1'", "type='result'", "<publish node='storage:bookmarks'><item id='current'/>")
	// The modern client hears of each XEP-0402 item; the legacy one of the list, once.
	a2.C.Wait(t, "<items node='urn:xmpp:bookmarks:1'><item id='council@conference.example.org'>", "<nick>alice</nick>")
	a2.C.Wait(t, "<items node='urn:xmpp:bookmarks:1'><item id='tea@conference.example.org'>")
	a.C.Wait(t, "<items node='storage:bookmarks'><item id='current'><storage xmlns='storage:bookmarks'>", "tea@conference.example.org")
	if n := strings.Count(a.C.All(), "<items node='storage:bookmarks'>"); n != 1 {
		t.Fatalf("%d list notifications for one list", n)
	}
	a.Send("<iq type='get' id='g1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>")
	a.C.Wait(t, "id='g1'", "<item id='council@conference.example.org'><conference xmlns='urn:xmpp:bookmarks:1' name='Council' autojoin='true'><nick>alice</nick>",
		"<item id='tea@conference.example.org'>")

	// A bookmark the modern client adds shows in the list, and the list is announced.
	a2.C.Reset()
	a2.Send("<iq type='set' id='p2'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='cafe@conference.example.org'>" +
		"<conference xmlns='urn:xmpp:bookmarks:1' name='Cafe'/></item></publish></pubsub></iq>")
	a2.C.Wait(t, "id='p2'", "type='result'")
	a.C.Wait(t, "<items node='storage:bookmarks'><item id='current'>", "<conference jid='cafe@conference.example.org' name='Cafe'", "council@conference.example.org")
	a.Send(strings.Replace(items, "%s", "g2", 1))
	a.C.Wait(t, "id='g2'", "<items node='storage:bookmarks'><item id='current'><storage xmlns='storage:bookmarks'>",
		"<conference jid='cafe@conference.example.org' name='Cafe'/>", "<conference jid='council@conference.example.org' name='Council' autojoin='true'><nick>alice</nick></conference>")

	// A shorter list retracts what it leaves out.
	a2.C.Reset()
	a.Send("<iq type='set' id='p3'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='storage:bookmarks'><item id='current'>" +
		"<storage xmlns='storage:bookmarks'><conference jid='tea@conference.example.org'/></storage></item></publish></pubsub></iq>")
	a.C.Wait(t, "id='p3'", "type='result'")
	a2.C.Wait(t, "<retract id='cafe@conference.example.org'/>", "<retract id='council@conference.example.org'/>")
	a2.C.Never(t, "<items node='storage:bookmarks'>") // it did not ask for the list

	// Not a XEP-0048 list; other operations; other users.
	for _, tc := range []struct{ who, req, want string }{
		{"alice", "<publish node='storage:bookmarks'><item id='current'><x xmlns='urn:other'/></item></publish>", "<invalid-payload"},
		{"alice", "<retract node='storage:bookmarks'><item id='current'/></retract>", "<feature-not-implemented"},
		{"bob", "<items node='storage:bookmarks'/>", "<closed-node"},
	} {
		s := a
		to := ""
		if tc.who == "bob" {
			s, to = e.Bind("bob", "pc"), " to='alice@example.org'"
		}
		s.Send("<iq type='" + map[bool]string{true: "get", false: "set"}[strings.HasPrefix(tc.req, "<items")] + "' id='x'" + to +
			"><pubsub xmlns='http://jabber.org/protocol/pubsub'>" + tc.req + "</pubsub></iq>")
		s.C.Wait(t, "id='x'", "type='error'", tc.want)
		s.C.Reset()
	}
}

// TestBookmarksLegacyNodeMigrated: a storage:bookmarks node a XEP-0048 client stored
// before the node became a view is folded into the XEP-0402 node at the first bookmarks
// request: conferences it lacks are added, the ones it has stay as they are, and the old
// node goes.
func TestBookmarksLegacyNodeMigrated(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	nodes := pubsub.Nodes{T: e.Store.Table("pep")}
	const o = "alice@example.org"
	cfg := pubsub.DefaultConfig(pubsub.Policy{MaxItems: 100, Access: pubsub.PEPAccess})
	cfg.MaxItems, cfg.Access = 100, pubsub.AccessWhitelist // as XEP-0402 §3 asks for the bookmarks node
	if err := nodes.Publish(o, "urn:xmpp:bookmarks:1", cfg, true, "tea@conference.example.org",
		[]byte("<conference xmlns='urn:xmpp:bookmarks:1' name='Tea (newer)'/>")); err != nil {
		t.Fatal(err)
	}
	if err := nodes.Publish(o, "storage:bookmarks", cfg, true, "current", []byte("<storage xmlns='storage:bookmarks'>"+
		"<conference jid='tea@conference.example.org' name='Tea (older)'/><conference jid='old@conference.example.org' name='Old' autojoin='true'/></storage>")); err != nil {
		t.Fatal(err)
	}
	a := e.Bind("alice", "pc")
	a.Send("<iq type='get' id='g'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>")
	got := a.C.Wait(t, "id='g'")
	for _, want := range []string{"<item id='old@conference.example.org'><conference xmlns='urn:xmpp:bookmarks:1' name='Old' autojoin='true'/>", "name='Tea (newer)'"} {
		if !strings.Contains(got, want) {
			t.Fatalf("after the migration, no %q in %s", want, got)
		}
	}
	if strings.Contains(got, "Tea (older)") {
		t.Fatalf("the older copy replaced the XEP-0402 item: %s", got)
	}
	if _, exists, _ := nodes.Config(o, "storage:bookmarks"); exists {
		t.Fatal("the old node stayed")
	}
}

// advertise makes s available with XEP-0115 caps naming features (the ver of §5.2 for a
// client/pc identity called name) and answers the server's disco#info query for them.
func advertise(t *testing.T, s *routertest.Sess, name string, features ...string) {
	t.Helper()
	features = append([]string{"http://jabber.org/protocol/caps"}, features...)
	slices.Sort(features)
	in := "client/pc//" + name + "<"
	var feats strings.Builder
	for _, f := range features {
		in += f + "<"
		feats.WriteString("<feature var='" + f + "'/>")
	}
	sum := sha1.Sum([]byte(in))
	ver := base64.StdEncoding.EncodeToString(sum[:])
	node := "urn:example:" + strings.ToLower(name)
	s.Send("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='" + node + "' ver='" + ver + "'/></presence>")
	q := s.C.Wait(t, "<iq type='get'", "node='"+node+"#"+ver+"'")
	qid := regexp.MustCompile(`id='([^']+)'`).FindStringSubmatch(q)[1]
	s.Send("<iq type='result' id='" + qid + "' to='" + s.S.JID().Bare().String() + "'><query xmlns='http://jabber.org/protocol/disco#info' node='" + node + "#" + ver + "'>" +
		"<identity category='client' type='pc' name='" + name + "'/>" + feats.String() + "</query></iq>")
}

// TestBookmarksKeptPrivate: the bookmarks node a client creates without publish-options is
// private (room passwords), and XEP-0048 or XEP-0049 bookmarks never go into a bookmarks
// node others may read: that fails with precondition-not-met (XEP-0223 §3).
func TestBookmarksKeptPrivate(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth})
	a := e.Bind("alice", "pc")
	b := e.Bind("bob", "pc")
	a.Send("<iq type='set' id='p0'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='tea@conference.example.org'>" +
		"<conference xmlns='urn:xmpp:bookmarks:1' name='Tea'/></item></publish></pubsub></iq>")
	a.C.Wait(t, "id='p0'", "type='result'")
	b.Send("<iq type='get' id='r' to='alice@example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>")
	b.C.Wait(t, "id='r'", "type='error'")

	// A node made readable on purpose takes no XEP-0048 bookmarks.
	a.Send("<iq type='set' id='cf'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:xmpp:bookmarks:1'>" +
		"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>" +
		"<field var='pubsub#access_model'><value>presence</value></field></x></configure></pubsub></iq>")
	a.C.Wait(t, "id='cf'", "type='result'")
	a.Send("<iq type='set' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='storage:bookmarks'><item id='current'>" +
		"<storage xmlns='storage:bookmarks'><conference jid='x@conference.example.org'><password>pw</password></conference></storage></item></publish>" +
		"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
		"<field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub></iq>")
	a.C.Wait(t, "id='p1'", "type='error'", "precondition-not-met")
	a.Send("<iq type='set' id='p2'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='y@conference.example.org'><password>pw2</password></conference></storage></query></iq>")
	a.C.Wait(t, "id='p2'", "type='error'")
	b.C.Never(t, "pw")
}
