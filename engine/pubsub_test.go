package engine_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/pubsub"
)

const psSvc = "pubsub.localhost"

// psIQ sends a pubsub request (ps: the pubsub element with its children) of type typ
// to the service and returns the whole answer.
func psIQ(r *vireotest.RawConn, typ, id, owner, body string) string {
	xmlns := "http://jabber.org/protocol/pubsub"
	if owner != "" {
		xmlns += "#owner"
	}
	return pepIQ(r, id, "<iq type='"+typ+"' id='"+id+"' to='"+psSvc+"'><pubsub xmlns='"+xmlns+"'>"+body+"</pubsub></iq>")
}

func psForm(fields ...string) string {
	return "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>" + strings.Join(fields, "") + "</x>"
}

// subOpts is a submitted pubsub#subscribe_options form with one field.
func subOpts(v, value string) string {
	return "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#subscribe_options</value></field>" +
		pepOpt(v, value) + "</x>"
}

func psPublish(node, id, payload string) string {
	return "<publish node='" + node + "'><item id='" + id + "'>" + payload + "</item></publish>"
}

func psLimits(id string, v any) error {
	if c, ok := v.(*pubsub.Config); ok {
		c.MaxNodes, c.MaxItemSize = 3, 200
	}
	return nil
}

func psOnline(t *testing.T, srv *vireotest.Server, user string) *vireotest.RawConn {
	t.Helper()
	c := srv.LoginPlain(t, user, "secret", "pc")
	c.Send("<presence/>")
	c.Expect("<presence")
	return c
}

// TestIntegrationPubsub drives the XEP-0060 service on pubsub.localhost with raw client
// streams: discovery, create (named, instant, with a configure form, a conflict, the
// max_nodes limit), configure, default, publish (and payload-too-big), items, subscribe
// to an open node with events for publish, retract and purge, an authorize node whose
// subscription an owner approves through the §8.6 form, owner subscriptions and
// affiliations (publisher, outcast, the last owner kept), the user's own lists, delete
// with its notification, and then a restart on the same data directory.
func TestIntegrationPubsub(t *testing.T) {
	dir := t.TempDir()
	const entry = "<entry xmlns='http://www.w3.org/2005/Atom'><title>Hello</title></entry>"
	t.Run("Live", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Dir: dir, ModuleConfig: psLimits})
		for _, u := range []string{"alice", "bob", "carol"} {
			srv.AddUser(t, u, "secret")
		}
		a := psOnline(t, srv, "alice")
		b := psOnline(t, srv, "bob")
		c := psOnline(t, srv, "carol")

		got := pepIQ(a, "d1", "<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
		mustHave(t, "server items", got, "jid='"+psSvc+"'", "name='Publish-Subscribe'")
		got = pepIQ(a, "d2", "<iq type='get' id='d2' to='"+psSvc+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
		mustHave(t, "service info", got, "category='pubsub' type='service'", "pubsub#access-authorize", "pubsub#modify-affiliations")

		// Create: named, again (conflict), instant, with a configure form.
		got = psIQ(a, "set", "c1", "", "<create node='news'/>")
		mustHave(t, "create", got, "type='result'")
		got = psIQ(b, "set", "c2", "", "<create node='news'/>")
		mustHave(t, "create conflict", got, "type='error'", "<conflict")
		got = psIQ(a, "set", "c3", "", "<create/>")
		mustHave(t, "instant", got, "type='result'", "<create node='")
		got = psIQ(a, "set", "c4", "", "<create node='private'/><configure>"+psForm(pepOpt("pubsub#access_model", "authorize"), pepOpt("pubsub#title", "Private"))+"</configure>")
		mustHave(t, "create and configure", got, "type='result'")
		got = psIQ(a, "set", "c5", "", "<create node='fourth'/>")
		mustHave(t, "max_nodes", got, "<policy-violation")
		got = psIQ(a, "set", "c6", "", "<create node='x'/><configure>"+psForm(pepOpt("pubsub#access_model", "roster"))+"</configure>")
		mustHave(t, "unsupported access model", got, "<not-acceptable")

		// Configure and default.
		got = psIQ(a, "get", "g1", "owner", "<configure node='private'/>")
		mustHave(t, "configure get", got, "<configure node='private'>", "<field var='pubsub#access_model' type='list-single'", "<value>authorize</value>", "<value>Private</value>")
		got = psIQ(b, "get", "g2", "owner", "<configure node='private'/>")
		mustHave(t, "configure by another", got, "<forbidden")
		got = psIQ(a, "set", "g3", "owner", "<configure node='news'>"+psForm(pepOpt("pubsub#max_items", "5"), pepOpt("pubsub#send_last_published_item", "never"))+"</configure>")
		mustHave(t, "configure set", got, "type='result'")
		got = psIQ(a, "get", "g4", "owner", "<configure node='news'/>")
		mustHave(t, "configure after set", got, "<value>5</value>", "<value>never</value>")
		got = psIQ(a, "get", "g5", "owner", "<configure node='nope'/>")
		mustHave(t, "configure missing", got, "<item-not-found")
		got = psIQ(b, "get", "g6", "owner", "<default/>")
		mustHave(t, "default", got, "<default>", "<value>open</value>")

		// Subscribe to the open node; publishes reach the subscriber.
		got = psIQ(b, "set", "s1", "", "<subscribe node='news' jid='bob@localhost/pc'/>")
		mustHave(t, "subscribe", got, "subscription='subscribed'", "jid='bob@localhost/pc'")
		got = psIQ(c, "set", "s2", "", "<subscribe node='news' jid='bob@localhost'/>")
		mustHave(t, "subscribe for another", got, "<bad-request", "<invalid-jid")
		got = psIQ(b, "set", "s3", "", "<subscribe node='nope' jid='bob@localhost'/>")
		mustHave(t, "subscribe missing", got, "<item-not-found")

		got = psIQ(a, "set", "p1", "", psPublish("news", "one", entry))
		mustHave(t, "publish", got, "type='result'", "<item id='one'/>")
		ev := b.Expect("</message>")
		mustHave(t, "event", ev, "from='"+psSvc+"'", "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='news'><item id='one'>"+entry)
		got = psIQ(b, "set", "p2", "", psPublish("news", "two", entry))
		mustHave(t, "publish by a subscriber", got, "<forbidden")
		got = psIQ(a, "set", "p3", "", psPublish("news", "big", "<p xmlns='urn:p'>"+strings.Repeat("x", 200)+"</p>"))
		mustHave(t, "big item", got, "<not-acceptable", "<payload-too-big")
		got = psIQ(a, "set", "p4", "", psPublish("nope", "one", entry))
		mustHave(t, "publish to a missing node", got, "<item-not-found")
		got = psIQ(a, "set", "p5", "", psPublish("news", "two", "<p xmlns='urn:p'>2</p>"))
		mustHave(t, "publish two", got, "type='result'")
		b.Expect("<item id='two'>")

		got = psIQ(c, "get", "i1", "", "<items node='news'/>")
		mustHave(t, "items open", got, "<item id='one'>"+entry, "<item id='two'>")
		got = psIQ(c, "get", "i2", "", "<items node='news' max_items='1'/>")
		mustHave(t, "max_items", got, "<item id='two'>")
		mustNotHave(t, "max_items", got, "<item id='one'>")
		got = psIQ(c, "get", "i3", "", "<items node='news'><item id='one'/></items>")
		mustHave(t, "by id", got, "<item id='one'>")
		mustNotHave(t, "by id", got, "<item id='two'>")
		got = psIQ(c, "get", "i4", "", "<items node='nope'/>")
		mustHave(t, "items missing", got, "<item-not-found")

		// XEP-0059 paging of items (XEP-0060 §6.5.4), in publication order by item id.
		got = psIQ(a, "set", "p6", "", psPublish("news", "three", "<p xmlns='urn:p'>3</p>"))
		mustHave(t, "publish three", got, "type='result'")
		b.Expect("<item id='three'>")
		const set = "<set xmlns='http://jabber.org/protocol/rsm'>"
		got = psIQ(c, "get", "r1", "", "<items node='news'/>"+set+"<max>2</max></set>")
		mustHave(t, "first page", got, "<item id='one'>", "<item id='two'>", "</items>"+set+"<first index='0'>one</first><last>two</last><count>3</count></set>")
		mustNotHave(t, "first page", got, "<item id='three'>")
		got = psIQ(c, "get", "r2", "", "<items node='news'/>"+set+"<max>2</max><after>two</after></set>")
		mustHave(t, "next page", got, "<item id='three'>", "<first index='2'>three</first><last>three</last><count>3</count>")
		mustNotHave(t, "next page", got, "<item id='one'>", "<item id='two'>")
		got = psIQ(c, "get", "r3", "", "<items node='news'/>"+set+"<max>1</max><before/></set>")
		mustHave(t, "last page", got, "<item id='three'>", "<first index='2'>three</first>")
		mustNotHave(t, "last page", got, "<item id='two'>")
		got = psIQ(c, "get", "r4", "", "<items node='news'/>"+set+"<max>0</max></set>")
		mustHave(t, "count only", got, "<count>3</count>")
		mustNotHave(t, "count only", got, "<item ", "<first")
		got = psIQ(c, "get", "r5", "", "<items node='news'/>"+set+"<after>gone</after></set>")
		mustHave(t, "after a retracted id", got, "type='error'", "<item-not-found")
		got = psIQ(c, "get", "r6", "", "<items node='news'><item id='one'/></items>"+set+"<max>1</max></set>")
		mustHave(t, "paging ids", got, "<bad-request")

		// Authorize: pending, the owner gets the form, approves, the subscriber is told.
		got = psIQ(b, "set", "s4", "", "<subscribe node='private' jid='bob@localhost'/>")
		mustHave(t, "subscribe authorize", got, "subscription='pending'")
		form := a.Expect("</message>")
		mustHave(t, "approval form", form, "from='"+psSvc+"'", "<value>http://jabber.org/protocol/pubsub#subscribe_authorization</value>", "<value>private</value>", "<value>bob@localhost</value>")
		got = psIQ(b, "get", "s5", "", "<items node='private'/>")
		mustHave(t, "items while pending", got, "<not-authorized", "<not-subscribed")
		got = psIQ(b, "set", "s6", "", "<subscribe node='private' jid='bob@localhost'/>")
		mustHave(t, "subscribe again while pending", got, "<not-authorized", "<pending-subscription")
		approve := "<message to='" + psSvc + "'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#subscribe_authorization</value></field><field var='pubsub#node'><value>private</value></field><field var='pubsub#subscriber_jid'><value>bob@localhost</value></field><field var='pubsub#allow'><value>true</value></field></x></message>"
		c.Send(approve) // not an owner: refused
		mustHave(t, "approval by another", c.Expect("</message>"), "type='error'", "<forbidden")
		a.Send(approve)
		ev = b.Expect("</message>")
		mustHave(t, "approved", ev, "<subscription node='private' jid='bob@localhost' subscription='subscribed'/>")
		got = psIQ(b, "get", "s7", "", "<items node='private'/>")
		mustHave(t, "items once subscribed", got, "type='result'", "<items node='private'")

		// Subscription options (§6.3): bob turns notifications off and on again; carol
		// subscribes with options in the same request (§6.3.7).
		got = pepIQ(a, "x0", "<iq type='get' id='x0' to='"+psSvc+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
		mustHave(t, "options feature", got, "http://jabber.org/protocol/pubsub#subscription-options")
		got = psIQ(b, "get", "x1", "", "<options node='news' jid='bob@localhost/pc'/>")
		mustHave(t, "options", got, "<options node='news' jid='bob@localhost/pc'>", "<value>http://jabber.org/protocol/pubsub#subscribe_options</value>",
			"<field var='pubsub#deliver' type='boolean' label='Enable delivery?'><value>1</value></field>")
		got = psIQ(c, "get", "x2", "", "<options node='news' jid='bob@localhost/pc'/>")
		mustHave(t, "options of another", got, "<forbidden")
		got = psIQ(c, "get", "x3", "", "<options node='news' jid='carol@localhost'/>")
		mustHave(t, "options without a subscription", got, "<unexpected-request", "<not-subscribed")
		got = psIQ(b, "set", "x4", "", "<options node='news' jid='bob@localhost/pc'>"+subOpts("pubsub#digest", "1")+"</options>")
		mustHave(t, "an option not offered", got, "<bad-request", "<invalid-options")
		got = psIQ(b, "set", "x5", "", "<options node='news' jid='bob@localhost/pc'>"+subOpts("pubsub#deliver", "0")+"</options>")
		mustHave(t, "deliver off", got, "type='result'")
		got = psIQ(b, "get", "x6", "", "<options node='news' jid='bob@localhost/pc'/>")
		mustHave(t, "options after", got, "<field var='pubsub#deliver' type='boolean' label='Enable delivery?'><value>0</value></field>")
		got = psIQ(c, "set", "x7", "", "<subscribe node='news' jid='carol@localhost'/><options>"+subOpts("pubsub#deliver", "1")+"</options>")
		mustHave(t, "subscribe with options", got, "subscription='subscribed'", "<subscribe-options/>")
		got = psIQ(a, "set", "x8", "", psPublish("news", "quiet", "<p xmlns='urn:p'>q</p>"))
		mustHave(t, "publish quiet", got, "type='result'")
		c.Expect("<item id='quiet'>")
		b.Never("<item id='quiet'>")
		got = psIQ(b, "set", "x9", "", "<options node='news' jid='bob@localhost/pc'>"+subOpts("pubsub#deliver", "1")+"</options>")
		mustHave(t, "deliver on", got, "type='result'")
		got = psIQ(a, "set", "x10", "", psPublish("news", "loud", "<p xmlns='urn:p'>l</p>"))
		mustHave(t, "publish loud", got, "type='result'")
		b.Expect("<item id='loud'>")
		c.Expect("<item id='loud'>")
		got = psIQ(c, "set", "x11", "", "<unsubscribe node='news' jid='carol@localhost'/>")
		mustHave(t, "carol leaves", got, "type='result'")

		// Owner lists and affiliations.
		got = psIQ(a, "get", "o1", "owner", "<subscriptions node='news'/>")
		mustHave(t, "owner subscriptions", got, "<subscription jid='bob@localhost/pc' subscription='subscribed'/>")
		got = psIQ(b, "get", "o2", "owner", "<subscriptions node='news'/>")
		mustHave(t, "owner subscriptions by another", got, "<forbidden")
		got = psIQ(a, "get", "o3", "owner", "<affiliations node='news'/>")
		mustHave(t, "affiliations", got, "<affiliation jid='alice@localhost' affiliation='owner'/>")
		got = psIQ(a, "set", "o4", "owner", "<affiliations node='news'><affiliation jid='carol@localhost' affiliation='publisher'/></affiliations>")
		mustHave(t, "set publisher", got, "type='result'")
		got = psIQ(c, "set", "o5", "", psPublish("news", "three", "<p xmlns='urn:p'>3</p>"))
		mustHave(t, "publisher publishes", got, "type='result'")
		b.Expect("<item id='three'>")
		got = psIQ(a, "set", "o6", "owner", "<affiliations node='news'><affiliation jid='carol@localhost' affiliation='outcast'/></affiliations>")
		mustHave(t, "set outcast", got, "type='result'")
		got = psIQ(c, "get", "o7", "", "<items node='news'/>")
		mustHave(t, "outcast reads", got, "<forbidden")
		got = psIQ(c, "set", "o8", "", "<subscribe node='news' jid='carol@localhost'/>")
		mustHave(t, "outcast subscribes", got, "<forbidden")
		got = psIQ(a, "set", "o9", "owner", "<affiliations node='news'><affiliation jid='alice@localhost' affiliation='none'/></affiliations>")
		mustHave(t, "last owner", got, "<not-acceptable")
		got = psIQ(b, "get", "u1", "", "<subscriptions/>")
		mustHave(t, "own subscriptions", got, "<subscription node='news' jid='bob@localhost/pc' subscription='subscribed'/>", "<subscription node='private' jid='bob@localhost' subscription='subscribed'/>")
		got = psIQ(a, "get", "u2", "", "<affiliations/>")
		mustHave(t, "own affiliations", got, "<affiliation node='news' affiliation='owner'/>", "<affiliation node='private' affiliation='owner'/>")

		// Node discovery.
		got = pepIQ(c, "d3", "<iq type='get' id='d3' to='"+psSvc+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
		mustHave(t, "service items", got, "node='news'", "node='private' name='Private'")
		// Paged (XEP-0059): two of the three nodes, then the one after the last.
		const rsmSet = "<set xmlns='http://jabber.org/protocol/rsm'>"
		got = pepIQ(c, "d3p", "<iq type='get' id='d3p' to='"+psSvc+"'><query xmlns='http://jabber.org/protocol/disco#items'>"+rsmSet+"<max>2</max></set></query></iq>")
		mustHave(t, "first page", got, "<first index='0'>", "<count>3</count>")
		last := regexp.MustCompile(`<last>([^<]+)</last>`).FindStringSubmatch(got)
		if n := strings.Count(got, "<item "); n != 2 || last == nil {
			t.Fatalf("first page of nodes: %s", got)
		}
		page2 := pepIQ(c, "d3q", "<iq type='get' id='d3q' to='"+psSvc+"'><query xmlns='http://jabber.org/protocol/disco#items'>"+rsmSet+"<max>2</max><after>"+last[1]+"</after></set></query></iq>")
		mustHave(t, "second page", page2, "<first index='2'>", "<count>3</count>")
		if n := strings.Count(page2, "<item "); n != 1 || strings.Contains(got, page2[strings.Index(page2, "node='"):strings.Index(page2, "node='")+12]) {
			t.Fatalf("second page of nodes: %s after %s", page2, got)
		}
		got = pepIQ(b, "d4", "<iq type='get' id='d4' to='"+psSvc+"'><query xmlns='http://jabber.org/protocol/disco#items' node='news'/></iq>")
		mustHave(t, "node items", got, "name='one'", "name='three'")
		got = pepIQ(b, "d5", "<iq type='get' id='d5' to='"+psSvc+"'><query xmlns='http://jabber.org/protocol/disco#info' node='news'/></iq>")
		mustHave(t, "node info", got, "category='pubsub' type='leaf'")
		got = pepIQ(b, "d6", "<iq type='get' id='d6' to='"+psSvc+"'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>")
		mustHave(t, "node info missing", got, "<item-not-found")

		// Retract, purge and delete notify the subscriber.
		got = psIQ(a, "set", "r1", "", "<retract node='news'><item id='one'/></retract>")
		mustHave(t, "retract", got, "type='result'")
		b.Expect("<retract id='one'/>")
		got = psIQ(a, "set", "r2", "", "<retract node='news'><item id='one'/></retract>")
		mustHave(t, "retract again", got, "<item-not-found")
		got = psIQ(a, "set", "r3", "owner", "<purge node='news'/>")
		mustHave(t, "purge", got, "type='result'")
		b.Expect("<purge node='news'/>")
		got = psIQ(a, "set", "r4", "owner", "<delete node='news'/>")
		mustHave(t, "delete", got, "type='result'")
		b.Expect("<delete node='news'/>")
		got = psIQ(b, "get", "r5", "", "<items node='news'/>")
		mustHave(t, "after delete", got, "<item-not-found")
		got = psIQ(b, "set", "r6", "", "<unsubscribe node='private' jid='bob@localhost/pc'/>")
		mustHave(t, "unsubscribe not subscribed", got, "<unexpected-request", "<not-subscribed")

		// The deleted node no longer counts against max_nodes.
		got = psIQ(a, "set", "k1", "", "<create node='kept'/>")
		mustHave(t, "create after delete", got, "type='result'")
		got = psIQ(a, "set", "k2", "", psPublish("kept", "k", entry))
		mustHave(t, "publish kept", got, "type='result'")
	})

	t.Run("Restart", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Dir: dir, ModuleConfig: psLimits})
		a := psOnline(t, srv, "alice")
		b := psOnline(t, srv, "bob")
		got := psIQ(b, "get", "i1", "", "<items node='kept'/>")
		mustHave(t, "items after restart", got, "<item id='k'>"+entry)
		got = psIQ(a, "get", "i2", "owner", "<configure node='private'/>")
		mustHave(t, "config after restart", got, "<value>authorize</value>")
		got = psIQ(a, "get", "i3", "owner", "<subscriptions node='private'/>")
		mustHave(t, "subscription after restart", got, "<subscription jid='bob@localhost' subscription='subscribed'/>")
		got = psIQ(a, "set", "i4", "", "<create node='fourth'/>")
		mustHave(t, "max_nodes after restart", got, "<policy-violation")
		got = psIQ(a, "set", "i5", "", psPublish("private", "p", entry))
		mustHave(t, "publish after restart", got, "type='result'")
		b.Expect("<item id='p'>")
	})
}

func privIQ(r *vireotest.RawConn, typ, id, body string) string {
	return pepIQ(r, id, "<iq type='"+typ+"' id='"+id+"'><query xmlns='jabber:iq:private'>"+body+"</query></iq>")
}

// TestIntegrationBookmarksCompat checks XEP-0402 §5.3 both ways: the account advertises
// urn:xmpp:bookmarks:1#compat; XEP-0048 bookmarks written to private storage become items
// of the urn:xmpp:bookmarks:1 node (with notifications to the owner's other resource),
// items published with XEP-0402 appear in the private storage view, and a new XEP-0048
// list updates changed items and retracts missing ones, leaving unchanged ones alone.
func TestIntegrationBookmarksCompat(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	a := psOnline(t, srv, "alice")
	a2 := srv.LoginPlain(t, "alice", "secret", "phone")
	pepCapsOnline(t, a2, nsBookmarks+"+notify")

	got := pepIQ(a, "d1", "<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	mustHave(t, "account disco", got, "<feature var='urn:xmpp:bookmarks:1#compat'/>")

	// Empty at first: the private storage view answers the empty element.
	got = privIQ(a, "get", "p0", "<storage xmlns='storage:bookmarks'/>")
	mustHave(t, "empty", got, "<storage xmlns='storage:bookmarks'/>")

	legacy := "<storage xmlns='storage:bookmarks'>" +
		"<conference jid='room1@conference.localhost' name='Room 1' autojoin='true'><nick>Al</nick><password>pw</password><pinned xmlns='urn:xmpp:bookmarks-pinning:0'/></conference>" +
		"<conference jid='room2@conference.localhost' name='Room 2'/>" +
		"<url name='Web' url='https://example.org/'/></storage>"
	got = privIQ(a, "set", "p1", legacy)
	mustHave(t, "legacy set", got, "type='result'")
	ev := a2.Expect("<item id='room2@conference.localhost'>")
	mustHave(t, "notification of the first", ev, "<items node='urn:xmpp:bookmarks:1'><item id='room1@conference.localhost'><conference xmlns='urn:xmpp:bookmarks:1' name='Room 1' autojoin='true'><nick>Al</nick><password>pw</password><extensions><pinned xmlns='urn:xmpp:bookmarks-pinning:0'/></extensions></conference>")

	got = pepIQ(a, "i1", pepItems("i1", "", nsBookmarks, ">"))
	mustHave(t, "PEP view", got,
		"<item id='room1@conference.localhost'><conference xmlns='urn:xmpp:bookmarks:1' name='Room 1' autojoin='true'><nick>Al</nick><password>pw</password><extensions><pinned xmlns='urn:xmpp:bookmarks-pinning:0'/></extensions></conference></item>",
		"<item id='room2@conference.localhost'><conference xmlns='urn:xmpp:bookmarks:1' name='Room 2'/></item>")
	got = pepIQ(a, "c1", "<iq type='get' id='c1'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:xmpp:bookmarks:1'/></pubsub></iq>")
	mustHave(t, "node config", got, "<value>whitelist</value>", "<value>never</value>")

	// A XEP-0402 publish (with its §3 publish-options) shows in the private storage view.
	opts := pepOpt("pubsub#persist_items", "true") + pepOpt("pubsub#max_items", "max") + pepOpt("pubsub#send_last_published_item", "never") + pepOpt("pubsub#access_model", "whitelist")
	got = pepIQ(a, "pub-room3@conference.localhost", pepPublish(nsBookmarks, "room3@conference.localhost", "<conference xmlns='urn:xmpp:bookmarks:1' name='Room 3' autojoin='1'><nick>A3</nick></conference>", opts))
	mustHave(t, "XEP-0402 publish", got, "type='result'")
	a2.Expect("<item id='room3@conference.localhost'>")
	a2.Expect("</message>")
	got = privIQ(a, "get", "p2", "<storage xmlns='storage:bookmarks'/>")
	mustHave(t, "private view", got,
		"<storage xmlns='storage:bookmarks'>",
		"<conference jid='room1@conference.localhost' name='Room 1' autojoin='true'><nick>Al</nick><password>pw</password><extensions><pinned xmlns='urn:xmpp:bookmarks-pinning:0'/></extensions></conference>",
		"<conference jid='room2@conference.localhost' name='Room 2'/>",
		"<conference jid='room3@conference.localhost' name='Room 3' autojoin='1'><nick>A3</nick></conference>")

	// A legacy client writes its list back without room2 and with room1 renamed.
	got = privIQ(a, "set", "p3", "<storage xmlns='storage:bookmarks'>"+
		"<conference jid='room1@conference.localhost' name='Room One' autojoin='true'><nick>Al</nick><password>pw</password><extensions><pinned xmlns='urn:xmpp:bookmarks-pinning:0'/></extensions></conference>"+
		"<conference jid='room3@conference.localhost' name='Room 3' autojoin='1'><nick>A3</nick></conference></storage>")
	mustHave(t, "legacy rewrite", got, "type='result'")
	ev = a2.Expect("</message>")
	mustHave(t, "retraction", ev, "<retract id='room2@conference.localhost'/>")
	ev = a2.Expect("</message>")
	mustHave(t, "update", ev, "<item id='room1@conference.localhost'><conference xmlns='urn:xmpp:bookmarks:1' name='Room One'")
	a2.Never("room3@conference.localhost") // unchanged: no notification
	got = pepIQ(a, "i2", pepItems("i2", "", nsBookmarks, ">"))
	mustHave(t, "PEP after rewrite", got, "name='Room One'", "room3@conference.localhost")
	mustNotHave(t, "PEP after rewrite", got, "room2@conference.localhost")
}
