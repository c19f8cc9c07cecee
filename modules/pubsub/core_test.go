package pubsub

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/rsm"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

var pepPolicy = Policy{MaxItems: 100, Access: PEPAccess}

func TestConfigApply(t *testing.T) {
	for _, tc := range []struct {
		name string
		form Form
		want func(*NodeConfig)
		err  stanza.Condition
	}{
		{"empty", Form{}, func(*NodeConfig) {}, ""},
		{"persist", Form{fieldPersist: {"false"}}, func(c *NodeConfig) { c.Persist = false }, ""},
		{"persist 0", Form{fieldPersist: {"0"}}, func(c *NodeConfig) { c.Persist = false }, ""},
		{"max items", Form{fieldMaxItems: {"10"}}, func(c *NodeConfig) { c.MaxItems = 10 }, ""},
		{"max items max", Form{fieldMaxItems: {"max"}}, func(c *NodeConfig) { c.MaxItems = 100 }, ""},
		{"max items over cap", Form{fieldMaxItems: {"101"}}, nil, stanza.PolicyViolationCond},
		{"max items zero", Form{fieldMaxItems: {"0"}}, nil, stanza.NotAcceptable},
		{"max items junk", Form{fieldMaxItems: {"x"}}, nil, stanza.NotAcceptable},
		{"open", Form{fieldAccess: {"open"}}, func(c *NodeConfig) { c.Access = AccessOpen }, ""},
		{"roster", Form{fieldAccess: {"roster"}}, func(c *NodeConfig) { c.Access = AccessRoster }, ""},
		{"whitelist", Form{fieldAccess: {"whitelist"}}, func(c *NodeConfig) { c.Access = AccessWhitelist }, ""},
		{"authorize", Form{fieldAccess: {"authorize"}}, nil, stanza.NotAcceptable},
		{"send last never", Form{fieldSendLast: {"never"}}, func(c *NodeConfig) { c.SendLast = SendNever }, ""},
		{"send last junk", Form{fieldSendLast: {"always"}}, nil, stanza.NotAcceptable},
		{"notify retract", Form{fieldNotifyRetract: {"0"}}, func(c *NodeConfig) { c.NotifyRetract = false }, ""},
		{"unknown ignored", Form{"pubsub#type": {"x"}, fieldFormType: {nsNodeConfig}}, func(*NodeConfig) {}, ""},
		{"deliver payloads off", Form{fieldDeliverPayloads: {"0"}}, nil, stanza.NotAcceptable},
		{"bookmarks", Form{fieldPersist: {"true"}, fieldMaxItems: {"max"}, fieldSendLast: {"never"}, fieldAccess: {"whitelist"}},
			func(c *NodeConfig) { c.MaxItems, c.SendLast, c.Access = 100, SendNever, AccessWhitelist }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig(pepPolicy)
			e := c.Apply(tc.form, pepPolicy)
			if tc.err != "" {
				if e == nil || e.Condition != tc.err {
					t.Fatalf("Apply = %v, want %s", e, tc.err)
				}
				if c != DefaultConfig(pepPolicy) {
					t.Fatalf("config changed on error: %+v", c)
				}
				return
			}
			if e != nil {
				t.Fatal(e)
			}
			want := DefaultConfig(pepPolicy)
			tc.want(&want)
			if c != want {
				t.Fatalf("got %+v, want %+v", c, want)
			}
		})
	}
}

func TestConfigMatches(t *testing.T) {
	open := DefaultConfig(pepPolicy)
	open.Access = AccessOpen
	full := DefaultConfig(pepPolicy)
	full.MaxItems = 100
	for _, tc := range []struct {
		name string
		cfg  NodeConfig
		form Form
		want bool
	}{
		{"none", DefaultConfig(pepPolicy), Form{}, true},
		{"same access", open, Form{fieldAccess: {"open"}}, true},
		{"other access", open, Form{fieldAccess: {"presence"}}, false},
		{"default vs open", DefaultConfig(pepPolicy), Form{fieldAccess: {"open"}}, false},
		{"max is cap", full, Form{fieldMaxItems: {"max"}}, true},
		{"max not cap", DefaultConfig(pepPolicy), Form{fieldMaxItems: {"max"}}, false},
		{"bad value", DefaultConfig(pepPolicy), Form{fieldPersist: {"maybe"}}, false},
		{"persist same", DefaultConfig(pepPolicy), Form{fieldPersist: {"1"}}, true},
		{"unknown", DefaultConfig(pepPolicy), Form{"pubsub#whatever": {"1"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Matches(tc.form, pepPolicy); got != tc.want {
				t.Fatalf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func openNodes(t *testing.T) Nodes {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return Nodes{T: st.Table("pep")}
}

func ids(its []Item) string {
	var s []string
	for _, it := range its {
		s = append(s, it.ID)
	}
	return strings.Join(s, ",")
}

func TestMaxItemsTrimming(t *testing.T) {
	n := openNodes(t)
	const o, node = "alice@example.org", "urn:test"
	cfg := DefaultConfig(pepPolicy)
	cfg.MaxItems = 3
	for i, tc := range []struct {
		id   string
		want string
	}{
		{"a", "a"}, {"b", "a,b"}, {"c", "a,b,c"}, {"d", "b,c,d"},
		{"c", "b,d,c"}, // republishing an id moves it to the newest
		{"e", "d,c,e"},
	} {
		if err := n.Publish(o, node, cfg, i == 0, tc.id, []byte("<p xmlns='x'>"+tc.id+"</p>")); err != nil {
			t.Fatal(err)
		}
		its, err := n.Items(o, node, 0)
		if err != nil || ids(its) != tc.want {
			t.Fatalf("after %s: %s (%v), want %s", tc.id, ids(its), err, tc.want)
		}
	}
	if its, _ := n.Items(o, node, 2); ids(its) != "c,e" {
		t.Fatalf("newest 2: %s", ids(its))
	}
	if it, ok, _ := n.Item(o, node, "b"); ok {
		t.Fatalf("trimmed item b still indexed: %+v", it)
	}
	if it, ok, _ := n.Item(o, node, "d"); !ok || string(it.Payload) != "<p xmlns='x'>d</p>" {
		t.Fatalf("item d: %+v %v", it, ok)
	}
	if err := n.Trim(o, node, 1); err != nil {
		t.Fatal(err)
	}
	if its, _ := n.Items(o, node, 0); ids(its) != "e" {
		t.Fatalf("after trim: %s", ids(its))
	}
	if it, ok, _ := n.Last(o, node); !ok || it.ID != "e" {
		t.Fatalf("last: %+v", it)
	}
	// Another node whose name extends this one's is separate.
	if err := n.Publish(o, node+"x", cfg, true, "z", []byte("<p xmlns='x'/>")); err != nil {
		t.Fatal(err)
	}
	if its, _ := n.Items(o, node, 0); ids(its) != "e" {
		t.Fatalf("prefix leak: %s", ids(its))
	}
	if c, _ := n.Count(o); c != 2 { // both nodes were created with their configs
		t.Fatalf("count = %d", c)
	}
}

func TestParseRequest(t *testing.T) {
	const ps, own = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>"
	for _, tc := range []struct {
		name, xml string
		set       bool
		op        Op
		err       string
	}{
		{"publish", ps + "<publish node='n'><item id='1'><p xmlns='x'/></item></publish></pubsub>", true, OpPublish, ""},
		{"publish no node", ps + "<publish><item><p xmlns='x'/></item></publish></pubsub>", true, 0, "nodeid-required"},
		{"publish no payload", ps + "<publish node='n'><item id='1'/></publish></pubsub>", true, 0, "payload-required"},
		{"publish two payloads", ps + "<publish node='n'><item><a xmlns='x'/><b xmlns='x'/></item></publish></pubsub>", true, 0, "invalid-payload"},
		{"publish no item", ps + "<publish node='n'/></pubsub>", true, 0, "item-required"},
		{"publish get", ps + "<publish node='n'><item><p xmlns='x'/></item></publish></pubsub>", false, 0, "feature-not-implemented"},
		{"publish options", ps + "<publish node='n'><item><p xmlns='x'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub>", true, OpPublish, ""},
		{"publish options wrong form", ps + "<publish node='n'><item><p xmlns='x'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:x</value></field></x></publish-options></pubsub>", true, 0, "bad-request"},
		{"items", ps + "<items node='n' max_items='5'/></pubsub>", false, OpItems, ""},
		{"items bad max", ps + "<items node='n' max_items='-1'/></pubsub>", false, 0, "bad-request"},
		{"items paged", ps + "<items node='n'/><set xmlns='http://jabber.org/protocol/rsm'><max>5</max></set></pubsub>", false, OpItems, ""},
		{"items bad page", ps + "<items node='n'/><set xmlns='http://jabber.org/protocol/rsm'><max>x</max></set></pubsub>", false, 0, "bad-request"},
		{"items by id paged", ps + "<items node='n'><item id='a'/></items><set xmlns='http://jabber.org/protocol/rsm'/></pubsub>", false, 0, "bad-request"},
		{"retract", ps + "<retract node='n' notify='1'><item id='a'/></retract></pubsub>", true, OpRetract, ""},
		{"retract no item", ps + "<retract node='n'/></pubsub>", true, 0, "item-required"},
		{"two actions", ps + "<items node='n'/><items node='m'/></pubsub>", false, 0, "bad-request"},
		{"create", ps + "<create node='n'/><configure/></pubsub>", true, OpCreate, ""},
		{"subscribe", ps + "<subscribe node='n' jid='a@b'/></pubsub>", true, OpSubscribe, ""},
		{"subscribe no jid", ps + "<subscribe node='n'/></pubsub>", true, 0, "jid-required"},
		{"configure get", own + "<configure node='n'/></pubsub>", false, OpConfigureGet, ""},
		{"configure set", own + "<configure node='n'><x xmlns='jabber:x:data' type='submit'/></configure></pubsub>", true, OpConfigureSet, ""},
		{"configure set no form", own + "<configure node='n'/></pubsub>", true, 0, "bad-request"},
		{"default", own + "<default/></pubsub>", false, OpDefault, ""},
		{"delete", own + "<delete node='n'/></pubsub>", true, OpDelete, ""},
		{"purge", own + "<purge node='n'/></pubsub>", true, OpPurge, ""},
		{"owner publish", own + "<publish node='n'/></pubsub>", true, 0, "feature-not-implemented"},
		{"empty", ps + "</pubsub>", true, 0, "bad-request"},
		{"instant", ps + "<create/></pubsub>", true, OpCreate, ""},
		{"own subscriptions", ps + "<subscriptions/></pubsub>", false, OpSubscriptions, ""},
		{"own affiliations", ps + "<affiliations node='n'/></pubsub>", false, OpAffiliations, ""},
		{"owner affiliations set", own + "<affiliations node='n'><affiliation jid='a@b' affiliation='member'/></affiliations></pubsub>", true, OpOwnerAffiliations, ""},
		{"owner affiliations no node", own + "<affiliations/></pubsub>", false, 0, "nodeid-required"},
		{"owner subscriptions no state", own + "<subscriptions node='n'><subscription jid='a@b'/></subscriptions></pubsub>", true, 0, "bad-request"},
		{"options get", ps + "<options node='n' jid='a@b'/></pubsub>", false, OpOptions, ""},
		{"options set", ps + "<options node='n' jid='a@b'><x xmlns='jabber:x:data' type='submit'/></options></pubsub>", true, OpOptionsSet, ""},
		{"options set no form", ps + "<options node='n' jid='a@b'/></pubsub>", true, 0, "invalid-options"},
		{"options no jid", ps + "<options node='n'/></pubsub>", false, 0, "jid-required"},
		{"options no node", ps + "<options jid='a@b'/></pubsub>", false, 0, "nodeid-required"},
		{"subscribe with options", ps + "<subscribe node='n' jid='a@b'/><options><x xmlns='jabber:x:data' type='submit'/></options></pubsub>", true, OpSubscribe, ""},
		{"options then subscribe", ps + "<options/><subscribe node='n' jid='a@b'/></pubsub>", true, OpSubscribe, ""},
		{"options beside unsubscribe", ps + "<unsubscribe node='n' jid='a@b'/><options/></pubsub>", true, 0, "bad-request"},
		{"options beside items", ps + "<items node='n'/><options/></pubsub>", false, 0, "bad-request"},
		{"two options", ps + "<options node='n' jid='a@b'/><options node='n' jid='a@b'/></pubsub>", false, 0, "bad-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := xmlstream.ParseElement([]byte(tc.xml), "jabber:client")
			if err != nil {
				t.Fatal(err)
			}
			r, serr := ParseRequest(e, tc.set)
			if tc.err != "" {
				if serr == nil || !strings.Contains(string(serr.AppendXML(nil)), tc.err) {
					t.Fatalf("error = %v, want %s", serr, tc.err)
				}
				return
			}
			if serr != nil || r.Op != tc.op {
				t.Fatalf("op %d err %v, want %d", r.Op, serr, tc.op)
			}
		})
	}
}

// TestSubOptions: a stored subscription keeps its state and options apart, values stored
// before options existed read as they did, and the form takes pubsub#deliver and refuses
// what the service does not offer.
func TestSubOptions(t *testing.T) {
	for _, tc := range []struct {
		state string
		o     SubOptions
	}{{SubSubscribed, SubOptions{}}, {SubSubscribed, SubOptions{NoDeliver: true}}, {SubPending, SubOptions{}}, {SubPending, SubOptions{NoDeliver: true}}} {
		if st, o := splitSub(joinSub(tc.state, tc.o)); st != tc.state || o != tc.o {
			t.Fatalf("%s %+v came back as %s %+v", tc.state, tc.o, st, o)
		}
	}
	for v, want := range map[string]string{"": SubSubscribed, "pending": SubPending} {
		if st, o := splitSub([]byte(v)); st != want || o.NoDeliver {
			t.Fatalf("stored %q read as %s %+v", v, st, o)
		}
	}
	formType := []string{subscribeOptionsFormType}
	for _, tc := range []struct {
		name string
		f    Form
		cur  SubOptions
		want SubOptions
		err  bool
	}{
		{"off", Form{fieldFormType: formType, fieldDeliver: {"0"}}, SubOptions{}, SubOptions{NoDeliver: true}, false},
		{"on", Form{fieldDeliver: {"true"}}, SubOptions{NoDeliver: true}, SubOptions{}, false},
		{"empty keeps", Form{}, SubOptions{NoDeliver: true}, SubOptions{NoDeliver: true}, false},
		{"bad value", Form{fieldDeliver: {"maybe"}}, SubOptions{}, SubOptions{}, true},
		{"not offered", Form{"pubsub#digest": {"1"}}, SubOptions{}, SubOptions{}, true},
		{"wrong form", Form{fieldFormType: {nsNodeConfig}}, SubOptions{}, SubOptions{}, true},
	} {
		got, e := ParseSubOptions(tc.f, tc.cur)
		if (e != nil) != tc.err || !tc.err && got != tc.want {
			t.Fatalf("%s: %+v %v", tc.name, got, e)
		}
	}
}

// TestRoomForLists: a node's subscriptions and affiliations stop at MaxListed, whoever
// adds them (a subscriber, or an owner's set of up to maxEntries at once).
func TestRoomForLists(t *testing.T) {
	n := openNodes(t)
	var subs, affs []store.Op
	for i := range MaxListed - 1 {
		j := fmt.Sprintf("u%d@example.org", i)
		subs = append(subs, store.Op{Key: append(subsPrefix("svc", "news"), j...), Val: joinSub(SubSubscribed, SubOptions{})})
		affs = append(affs, AffiliationOps("svc", "news", j, AffMember)...)
	}
	if err := n.T.Apply(subs...); err != nil {
		t.Fatal(err)
	}
	if err := n.T.Apply(affs...); err != nil {
		t.Fatal(err)
	}
	if n.RoomForSubscriptions("svc", "news", 1) != nil || n.RoomForAffiliations("svc", "news", 1) != nil {
		t.Fatal("the last place refused")
	}
	if n.RoomForSubscriptions("svc", "news", 2) == nil || n.RoomForAffiliations("svc", "news", 2) == nil {
		t.Fatal("past MaxListed accepted")
	}
	if e := n.RoomForSubscription("svc", "news", "u1@example.org"); e != nil {
		t.Fatalf("one more subscriber: %v", e)
	}
	if Additions([]Entry{{"a@b", SubSubscribed}, {"c@d", SubNone}, {"e@f", AffOwner}}) != 2 {
		t.Fatal("Additions")
	}
}

// TestSelectBounded: an items answer holds at most maxItemsBytes of payloads (at least one
// item), cut with a <set/>: the newest items without RSM, the start of the page when
// paging forward; and the payloads of the page only are read.
func TestSelectBounded(t *testing.T) {
	n := openNodes(t)
	const o, node = "alice@example.org", "urn:test"
	cfg := DefaultConfig(pepPolicy)
	cfg.MaxItems = 100
	big := "<p xmlns='x'>" + strings.Repeat("y", maxItemsBytes/4) + "</p>"
	for i := range 10 {
		if err := n.Publish(o, node, cfg, i == 0, fmt.Sprint("i", i), []byte(big)); err != nil {
			t.Fatal(err)
		}
	}
	sum := func(its []Item, pg rsm.Page) (total int) {
		for _, it := range its[pg.Lo:pg.Hi] {
			total += len(it.Payload)
		}
		return total
	}
	its, pg, e, err := n.Select(o, Request{Node: node, RSM: rsm.None})
	if err != nil || e != nil || !pg.Set || pg.Hi-pg.Lo != 3 || its[pg.Hi-1].ID != "i9" || sum(its, pg) > maxItemsBytes {
		t.Fatalf("no RSM: page %+v, last %s, %d bytes, %v %v", pg, its[pg.Hi-1].ID, sum(its, pg), e, err)
	}
	if its[0].Payload != nil {
		t.Fatal("a payload outside the page was read")
	}
	its, pg, _, _ = n.Select(o, Request{Node: node, RSM: rsm.Request{Max: 10, Index: -1, After: "i1", HasAfter: true}})
	if pg.Hi-pg.Lo != 3 || its[pg.Lo].ID != "i2" || !pg.Set {
		t.Fatalf("after i1: page %+v, first %s", pg, its[pg.Lo].ID)
	}
	huge := "<p xmlns='x'>" + strings.Repeat("z", maxItemsBytes) + "</p>"
	if err := n.Publish(o, node, cfg, false, "huge", []byte(huge)); err != nil {
		t.Fatal(err)
	}
	its, pg, _, _ = n.Select(o, Request{Node: node, RSM: rsm.None})
	if pg.Hi-pg.Lo != 1 || its[pg.Lo].ID != "huge" || string(its[pg.Lo].Payload) != huge {
		t.Fatalf("one item over the bound: page %+v", pg)
	}
}
