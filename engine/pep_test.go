package engine_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pep"
)

// pepIQ sends an IQ with id and returns the server's whole answer to it.
func pepIQ(r *vireotest.RawConn, id, iq string) string {
	r.Send(iq)
	got := r.Expect("id='" + id + "'")
	full := got[strings.LastIndex(got, "<iq "):] + r.Expect(">")
	if !strings.HasSuffix(full, "/>") {
		full += r.Expect("</iq>")
	}
	return full
}

func pepPublish(node, id, payload, options string) string {
	s := "<iq type='set' id='pub-" + id + "'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='" + node + "'><item id='" + id + "'>" + payload + "</item></publish>"
	if options != "" {
		s += "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" + options + "</x></publish-options>"
	}
	return s + "</pubsub></iq>"
}

func pepOpt(v, val string) string { return "<field var='" + v + "'><value>" + val + "</value></field>" }

func pepItems(id, to, node, extra string) string {
	t := ""
	if to != "" {
		t = " to='" + to + "'"
	}
	return "<iq type='get' id='" + id + "'" + t + "><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='" + node + "'" + extra + "</items></pubsub></iq>"
}

func mustHave(t *testing.T, what, got string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(got, s) {
			t.Fatalf("%s: want %q in %q", what, s, got)
		}
	}
}

func mustNotHave(t *testing.T, what, got string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(got, s) {
			t.Fatalf("%s: unexpected %q in %q", what, s, got)
		}
	}
}

var capsQueryRe = regexp.MustCompile(`<iq type='get' id='(pep-caps-\d+)' from='([^']+)' to='([^']+)'><query xmlns='http://jabber.org/protocol/disco#info' node='([^']+)'/></iq>`)

// pepCapsOnline sends available presence with XEP-0115 caps for features from r (jid
// full) and answers the server's disco#info query for that ver.
func pepCapsOnline(t *testing.T, r *vireotest.RawConn, features ...string) {
	t.Helper()
	ids := []module.Identity{{Category: "client", Type: "pc", Name: "test"}}
	features = append([]string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/caps"}, features...)
	ver := module.CapsVer(ids, features)
	r.Send("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://vireo.test/client' ver='" + ver + "'/></presence>")
	got := r.Expect("<query xmlns='http://jabber.org/protocol/disco#info'")
	got += r.Expect("</iq>")
	m := capsQueryRe.FindStringSubmatch(got)
	if m == nil || m[4] != "https://vireo.test/client#"+ver {
		t.Fatalf("no disco#info query for the caps: %q", got)
	}
	ans := "<iq type='result' id='" + m[1] + "' to='" + m[2] + "'><query xmlns='http://jabber.org/protocol/disco#info' node='" + m[4] + "'><identity category='client' type='pc' name='test'/>"
	for _, f := range features {
		ans += "<feature var='" + f + "'/>"
	}
	r.Send(ans + "</query></iq>")
	// The answer is taken on the account's shard, in this stream's order: a round trip
	// behind it makes sure the caps are known before another stream publishes.
	r.Send("<iq type='get' id='caps-known'><ping xmlns='urn:xmpp:ping'/></iq>")
	// What the verified caps brought before the answer (last items) is the test's.
	if got := r.Expect("id='caps-known'"); strings.LastIndex(got, "<iq") > 0 {
		r.Unread(got[:strings.LastIndex(got, "<iq")])
	}
}

const (
	nsNick      = "http://jabber.org/protocol/nick"
	nsOMEMOList = "urn:xmpp:omemo:2:devices"
	nsOMEMOBun  = "urn:xmpp:omemo:2:bundles"
	nsAxoList   = "eu.siacs.conversations.axolotl.devicelist"
	nsBookmarks = "urn:xmpp:bookmarks:1"
)

// TestIntegrationPep: alice publishes on her PEP nodes; bob (a contact with +notify
// caps) gets the last item when he comes online and every later notification; carol (no
// roster relation) reads open nodes (OMEMO) but not presence or whitelist ones; the owner
// retracts, configures, purges and deletes; after a restart on the same data directory
// the persistent items are still there.
func TestIntegrationPep(t *testing.T) {
	dir := t.TempDir()
	devices := "<devices xmlns='" + nsOMEMOList + "'><device id='12345'/></devices>"
	bundle := "<bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>c3BrCg==</spk><spks>c2lnCg==</spks><ik>aWsK</ik><prekeys><pk id='1'>cGsxCg==</pk></prekeys></bundle>"
	axoList := "<list xmlns='eu.siacs.conversations.axolotl'><device id='12345'/></list>"
	nick := "<nick xmlns='" + nsNick + "'>Alice</nick>"

	t.Run("Live", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Dir: dir})
		srv.AddUser(t, "alice", "secret")
		srv.AddUser(t, "bob", "secret")
		srv.AddUser(t, "carol", "secret")
		srv.Befriend(t, "alice", "bob", "")

		a := srv.LoginPlain(t, "alice", "secret", "pc")
		// The owner's resource asks for the nodes whose notifications it expects below.
		pepCapsOnline(t, a, nsNick+"+notify", "urn:test:multi+notify")

		// Account discovery (XEP-0163 §6.1).
		got := pepIQ(a, "d1", "<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
		mustHave(t, "account disco", got, "category='pubsub' type='pep'", "http://jabber.org/protocol/pubsub#publish-options")

		// Publish auto-creates the node; the owner's resource is notified.
		got = pepIQ(a, "pub-n1", pepPublish(nsNick, "n1", nick, ""))
		mustHave(t, "publish nick", got, "type='result'", "<publish node='"+nsNick+"'><item id='n1'/>")
		got = a.Expect("</message>")
		mustHave(t, "own notification", got, "<message type='headline' from='alice@localhost' to='alice@localhost/pc'",
			"<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='"+nsNick+"'><item id='n1'>"+nick)

		// Bob comes online with +notify caps: the server asks for them once, then sends
		// him the last published nick.
		b := srv.LoginPlain(t, "bob", "secret", "phone")
		pepCapsOnline(t, b, nsNick+"+notify", nsOMEMOList+"+notify", nsAxoList+"+notify")
		got = b.Expect("</message>")
		mustHave(t, "last item on presence", got, "from='alice@localhost' to='bob@localhost/phone'", "<item id='n1'>"+nick)

		// A second resource with the same caps: the ver is known, no second query.
		b2 := srv.LoginPlain(t, "bob", "secret", "tablet")
		ver := module.CapsVer([]module.Identity{{Category: "client", Type: "pc", Name: "test"}}, []string{"http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/caps", nsNick + "+notify", nsOMEMOList + "+notify", nsAxoList + "+notify"})
		b2.Send("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://vireo.test/client' ver='" + ver + "'/></presence>")
		got = b2.Expect("<item id='n1'>" + nick)
		mustNotHave(t, "cached caps", got, "http://jabber.org/protocol/disco#info")

		c := srv.LoginPlain(t, "carol", "secret", "x")
		c.Send("<presence/>")
		// Carol, no contact, sends alice directed presence with the same +notify caps (as
		// a room's occupants do, from their occupant JIDs): presence-based delivery is for
		// contacts, so she gets no notifications of alice's nodes, open ones included.
		c.Send("<presence to='alice@localhost/pc'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://vireo.test/client' ver='" + ver + "'/></presence>")
		a.Expect("from='carol@localhost/x'")

		// OMEMO: device lists and bundles, open to anyone.
		open := pepOpt("pubsub#access_model", "open")
		got = pepIQ(a, "pub-current", pepPublish(nsOMEMOList, "current", devices, open))
		mustHave(t, "publish devices", got, "type='result'")
		got = b.Expect("</message>")
		mustHave(t, "devices notification", got, "<items node='"+nsOMEMOList+"'><item id='current'>"+devices)
		c.Never("<message")
		got = pepIQ(a, "pub-12345", pepPublish(nsOMEMOBun, "12345", bundle, open+pepOpt("pubsub#max_items", "max")))
		mustHave(t, "publish bundle", got, "type='result'")
		got = pepIQ(a, "pub-axo", pepPublish(nsAxoList, "axo", axoList, open))
		mustHave(t, "publish axolotl list", got, "type='result'")
		got = b.Expect("<items node='" + nsAxoList + "'>")
		mustNotHave(t, "bob has no bundles+notify", got, nsOMEMOBun)

		got = pepIQ(c, "c1", pepItems("c1", "alice@localhost", nsOMEMOList, ">"))
		mustHave(t, "carol reads devices", got, "type='result'", "<item id='current'>"+devices)
		got = pepIQ(c, "c2", pepItems("c2", "alice@localhost", nsOMEMOBun, "><item id='12345'/>"))
		mustHave(t, "carol reads the bundle", got, "type='result'", "<item id='12345'>"+bundle)
		got = pepIQ(c, "c3", pepItems("c3", "alice@localhost", nsAxoList, ">"))
		mustHave(t, "carol reads the axolotl list", got, axoList)
		// Presence access: carol is no contact.
		got = pepIQ(c, "c4", pepItems("c4", "alice@localhost", nsNick, ">"))
		mustHave(t, "carol reads the nick", got, "type='error'", "<not-authorized", "<presence-subscription-required")
		got = pepIQ(c, "c5", pepItems("c5", "alice@localhost", "urn:nothing", ">"))
		mustHave(t, "missing node", got, "type='error'", "<item-not-found")
		got = pepIQ(c, "c6", "<iq type='set' id='c6' to='alice@localhost'>"+strings.TrimPrefix(pepPublish(nsNick, "x", nick, ""), "<iq type='set' id='pub-x'>"))
		mustHave(t, "carol publishes", got, "type='error'", "<forbidden")
		got = pepIQ(b, "b1", pepItems("b1", "alice@localhost", nsNick, ">"))
		mustHave(t, "bob reads the nick", got, "type='result'", nick)
		c.Never("<message")

		// publish-options that conflict with the node's configuration.
		got = pepIQ(a, "pub-current", pepPublish(nsOMEMOList, "current", devices, pepOpt("pubsub#access_model", "presence")))
		mustHave(t, "precondition", got, "type='error'", "<conflict", "<precondition-not-met xmlns='http://jabber.org/protocol/pubsub#errors'/>")

		// Items: all, by id, max_items; max_items trimming.
		for _, id := range []string{"m1", "m2", "m3"} {
			got = pepIQ(a, "pub-"+id, pepPublish("urn:test:multi", id, "<x xmlns='urn:test'>"+id+"</x>", pepOpt("pubsub#max_items", "2")))
			mustHave(t, "publish "+id, got, "type='result'")
		}
		got = pepIQ(a, "i1", pepItems("i1", "", "urn:test:multi", ">"))
		mustHave(t, "items", got, "<item id='m2'><x xmlns='urn:test'>m2</x></item><item id='m3'>")
		mustNotHave(t, "items", got, "m1")
		got = pepIQ(a, "i2", pepItems("i2", "", "urn:test:multi", " max_items='1'>"))
		mustHave(t, "max_items", got, "<item id='m3'>")
		mustNotHave(t, "max_items", got, "id='m2'")
		got = pepIQ(a, "i3", pepItems("i3", "alice@localhost", "urn:test:multi", "><item id='m2'/>"))
		mustHave(t, "by id", got, "<item id='m2'>")
		mustNotHave(t, "by id", got, "id='m3'")

		// Retract with notify.
		got = pepIQ(a, "r1", "<iq type='set' id='r1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:test:multi' notify='true'><item id='m2'/></retract></pubsub></iq>")
		mustHave(t, "retract", got, "type='result'")
		got = a.Expect("<retract id='m2'/>")
		got = pepIQ(a, "i4", pepItems("i4", "", "urn:test:multi", ">"))
		mustNotHave(t, "after retract", got, "id='m2'")
		got = pepIQ(a, "r2", "<iq type='set' id='r2'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:test:multi'><item id='nope'/></retract></pubsub></iq>")
		mustHave(t, "retract missing", got, "<item-not-found")

		// Configuration.
		got = pepIQ(a, "cf1", "<iq type='get' id='cf1'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='"+nsOMEMOList+"'/></pubsub></iq>")
		mustHave(t, "configure get", got, "<configure node='"+nsOMEMOList+"'>", "var='pubsub#access_model' type='list-single'", "<value>open</value>")
		got = pepIQ(a, "cf2", "<iq type='set' id='cf2'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='"+nsNick+"'><x xmlns='jabber:x:data' type='submit'>"+
			pepOpt("FORM_TYPE", "http://jabber.org/protocol/pubsub#node_config")+pepOpt("pubsub#access_model", "open")+"</x></configure></pubsub></iq>")
		mustHave(t, "configure set", got, "type='result'")
		got = pepIQ(c, "c7", pepItems("c7", "alice@localhost", nsNick, ">"))
		mustHave(t, "nick now open", got, "type='result'", nick)
		got = pepIQ(a, "cf3", "<iq type='set' id='cf3'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='"+nsNick+"'><x xmlns='jabber:x:data' type='submit'>"+
			pepOpt("pubsub#max_items", "1000")+"</x></configure></pubsub></iq>")
		mustHave(t, "max_items above the cap", got, "type='error'", "<policy-violation")
		got = pepIQ(b, "b2", "<iq type='get' id='b2' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='"+nsNick+"'/></pubsub></iq>")
		mustHave(t, "bob configures", got, "<forbidden")

		// Bookmarks: whitelist, only the owner reads them.
		bm := "<conference xmlns='urn:xmpp:bookmarks:1' name='Room' autojoin='true'><nick>al</nick></conference>"
		got = pepIQ(a, "pub-room@muc.localhost", pepPublish(nsBookmarks, "room@muc.localhost", bm,
			pepOpt("pubsub#persist_items", "true")+pepOpt("pubsub#max_items", "max")+pepOpt("pubsub#send_last_published_item", "never")+pepOpt("pubsub#access_model", "whitelist")))
		mustHave(t, "publish bookmark", got, "type='result'")
		got = pepIQ(b, "b3", pepItems("b3", "alice@localhost", nsBookmarks, ">"))
		mustHave(t, "bob reads bookmarks", got, "type='error'", "<not-allowed", "<closed-node")
		got = pepIQ(a, "i5", pepItems("i5", "", nsBookmarks, ">"))
		mustHave(t, "alice reads bookmarks", got, bm)

		// The owner's lists (XEP-0060 §5.6-§5.7, §8.8-§8.9): a whitelist node opens to the
		// members alice lists; publishing stays hers.
		own := func(id, body string) string {
			return "<iq type='set' id='" + id + "'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>" + body + "</pubsub></iq>"
		}
		got = pepIQ(a, "af1", "<iq type='get' id='af1'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='"+nsBookmarks+"'/></pubsub></iq>")
		mustHave(t, "affiliations", got, "<affiliation jid='alice@localhost' affiliation='owner'/>")
		got = pepIQ(a, "af2", own("af2", "<affiliations node='"+nsBookmarks+"'><affiliation jid='bob@localhost' affiliation='publisher'/></affiliations>"))
		mustHave(t, "publisher refused", got, "<not-acceptable")
		got = pepIQ(b, "af3", "<iq type='set' id='af3' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='"+nsBookmarks+
			"'><affiliation jid='bob@localhost' affiliation='member'/></affiliations></pubsub></iq>")
		mustHave(t, "bob makes himself a member", got, "<forbidden")
		got = pepIQ(a, "af4", own("af4", "<affiliations node='"+nsBookmarks+"'><affiliation jid='bob@localhost' affiliation='member'/></affiliations>"))
		mustHave(t, "bob a member", got, "type='result'")
		got = pepIQ(b, "b4", pepItems("b4", "alice@localhost", nsBookmarks, ">"))
		mustHave(t, "a member reads", got, "type='result'", bm)
		got = pepIQ(c, "c9", pepItems("c9", "alice@localhost", nsBookmarks, ">"))
		mustHave(t, "carol still may not", got, "<closed-node")
		got = pepIQ(a, "af5", "<iq type='get' id='af5'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='"+nsBookmarks+"'/></pubsub></iq>")
		mustHave(t, "affiliations after", got, "<affiliation jid='alice@localhost' affiliation='owner'/><affiliation jid='bob@localhost' affiliation='member'/>")
		got = pepIQ(a, "af6", "<iq type='get' id='af6'><pubsub xmlns='http://jabber.org/protocol/pubsub'><affiliations/></pubsub></iq>")
		mustHave(t, "alice's own affiliations", got, "<affiliation node='"+nsBookmarks+"' affiliation='owner'/>")
		got = pepIQ(a, "af7", own("af7", "<affiliations node='"+nsBookmarks+"'><affiliation jid='bob@localhost' affiliation='none'/></affiliations>"))
		mustHave(t, "bob no longer a member", got, "type='result'")
		got = pepIQ(b, "b5", pepItems("b5", "alice@localhost", nsBookmarks, ">"))
		mustHave(t, "a former member", got, "<closed-node")
		got = pepIQ(a, "sb1", own("sb1", "<subscriptions node='"+nsNick+"'><subscription jid='carol@localhost' subscription='subscribed'/></subscriptions>"))
		mustHave(t, "owner subscribes carol", got, "type='result'")
		got = pepIQ(a, "sb2", "<iq type='get' id='sb2'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><subscriptions node='"+nsNick+"'/></pubsub></iq>")
		mustHave(t, "owner subscriptions", got, "<subscription jid='carol@localhost' subscription='subscribed'/>")
		got = pepIQ(a, "sb3", own("sb3", "<subscriptions node='"+nsNick+"'><subscription jid='carol@localhost' subscription='none'/></subscriptions>"))
		mustHave(t, "owner ends it", got, "type='result'")

		// Purge and delete, with notifications.
		got = pepIQ(a, "p1", "<iq type='set' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><purge node='urn:test:multi'/></pubsub></iq>")
		mustHave(t, "purge", got, "type='result'")
		a.Expect("<purge node='urn:test:multi'/>")
		got = pepIQ(a, "i6", pepItems("i6", "", "urn:test:multi", ">"))
		mustHave(t, "after purge", got, "<items node='urn:test:multi'/>")
		got = pepIQ(a, "x1", "<iq type='set' id='x1'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='urn:test:multi'/></pubsub></iq>")
		mustHave(t, "delete", got, "type='result'")
		got = pepIQ(a, "i7", pepItems("i7", "", "urn:test:multi", ">"))
		mustHave(t, "after delete", got, "<item-not-found")
	})

	t.Run("Limits", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, ModuleConfig: func(id string, v any) error {
			if c, ok := v.(*pep.Config); ok {
				c.MaxNodes, c.MaxItemSize, c.MaxItems = 2, 100, 5
			}
			return nil
		}})
		srv.AddUser(t, "dave", "secret")
		d := srv.LoginPlain(t, "dave", "secret", "x")
		for i, want := range []string{"type='result'", "type='result'", "<policy-violation"} {
			id := string(rune('a' + i))
			got := pepIQ(d, "pub-"+id, pepPublish("urn:node:"+id, id, "<p xmlns='urn:p'/>", ""))
			mustHave(t, "node "+id, got, want)
		}
		got := pepIQ(d, "pub-big", pepPublish("urn:node:a", "big", "<p xmlns='urn:p'>"+strings.Repeat("x", 100)+"</p>", ""))
		mustHave(t, "big item", got, "<not-acceptable", "<payload-too-big")
		got = pepIQ(d, "pub-m", pepPublish("urn:node:a", "m", "<p xmlns='urn:p'/>", pepOpt("pubsub#max_items", "6")))
		mustHave(t, "max_items over the cap", got, "type='error'")
	})

	t.Run("Restart", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Dir: dir})
		c := srv.LoginPlain(t, "carol", "secret", "x")
		got := pepIQ(c, "c1", pepItems("c1", "alice@localhost", nsOMEMOList, ">"))
		mustHave(t, "devices after restart", got, "<item id='current'>"+devices)
		got = pepIQ(c, "c2", pepItems("c2", "alice@localhost", nsOMEMOBun, ">"))
		mustHave(t, "bundle after restart", got, "<item id='12345'>"+bundle)
		a := srv.LoginPlain(t, "alice", "secret", "pc")
		got = pepIQ(a, "i1", pepItems("i1", "", nsBookmarks, ">"))
		mustHave(t, "bookmarks after restart", got, "<conference xmlns='urn:xmpp:bookmarks:1' name='Room'")
	})
}
