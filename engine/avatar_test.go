package engine_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"image"
	"image/png"
	"strconv"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
)

const (
	nsAvatarData = "urn:xmpp:avatar:data"
	nsAvatarMeta = "urn:xmpp:avatar:metadata"
	nsConversion = "urn:xmpp:pep-vcard-conversion:0"
)

// avatarPNG is a real w×h PNG (so the server can tell its size), its base64 and its
// XEP-0084 id.
func avatarPNG(t *testing.T, w, h int) (raw []byte, b64, id string) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	raw = buf.Bytes()
	sum := sha1.Sum(raw)
	return raw, base64.StdEncoding.EncodeToString(raw), hex.EncodeToString(sum[:])
}

// avatarPair starts a server with alice and bob, mutual contacts, and carol, nobody's.
func avatarPair(t *testing.T) *vireotest.Server {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	for _, u := range []string{"alice", "bob", "carol"} {
		srv.AddUser(t, u, "secret")
	}
	srv.Befriend(t, "alice", "bob", "")
	return srv
}

// TestIntegrationAvatarDisco: the account advertises XEP-0398 §2's feature, to its owner
// and to its contacts; to a stranger the account's disco#info is service-unavailable
// (XEP-0030 §8).
func TestIntegrationAvatarDisco(t *testing.T) {
	srv := avatarPair(t)
	a := srv.LoginPlain(t, "alice", "secret", "pc")
	got := pepIQ(a, "d1", "<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	mustHave(t, "own account", got, "type='result'", "<feature var='"+nsConversion+"'/>")
	b := srv.LoginPlain(t, "bob", "secret", "x")
	got = pepIQ(b, "d2", "<iq type='get' id='d2' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	mustHave(t, "a contact", got, "type='result'", "<feature var='"+nsConversion+"'/>")
	c := srv.LoginPlain(t, "carol", "secret", "x")
	got = pepIQ(c, "d3", "<iq type='get' id='d3' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	mustHave(t, "a stranger", got, "type='error'", "<service-unavailable")
}

// TestIntegrationAvatarPEPToVCard: alice publishes a XEP-0084 avatar (data, then metadata
// whose first <info/> points to a URL); her vCard gets the PHOTO (XEP-0398 §3.1), her
// other vCard fields stay, and the presence she sends afterwards carries the hash, also
// when her client sent an empty x, but not when it sent an empty <photo/> (§4).
func TestIntegrationAvatarPEPToVCard(t *testing.T) {
	srv := avatarPair(t)
	_, b64, id := avatarPNG(t, 4, 3)

	a := srv.LoginPlain(t, "alice", "secret", "pc")
	a.Send("<presence/>")
	a.Expect("<presence")
	got := pepIQ(a, "v0", "<iq type='set' id='v0'><vCard xmlns='vcard-temp'><FN>Alice</FN><NICKNAME>al</NICKNAME></vCard></iq>")
	mustHave(t, "vcard without photo", got, "type='result'")
	b := srv.LoginPlain(t, "bob", "secret", "phone")
	b.Send("<presence/>")
	got = b.Expect("from='alice@localhost/pc'")
	mustNotHave(t, "no avatar yet", got, "<photo>")

	got = pepIQ(a, "pub-"+id, pepPublish(nsAvatarData, id, "<data xmlns='"+nsAvatarData+"'>"+b64+"</data>", ""))
	mustHave(t, "publish data", got, "type='result'")
	meta := "<metadata xmlns='" + nsAvatarMeta + "'>" +
		"<info bytes='999' id='0000000000000000000000000000000000000000' type='image/png' url='https://example.org/a.png'/>" +
		"<info bytes='" + strconv.Itoa(len(b64)*3/4) + "' id='" + id + "' type='image/png' width='4' height='3'/></metadata>"
	got = pepIQ(a, "pub-m"+id, "<iq type='set' id='pub-m"+id+"'>"+pepPublish(nsAvatarMeta, id, meta, "")[len("<iq type='set' id='pub-"+id+"'>"):])
	mustHave(t, "publish metadata", got, "type='result'")

	got = pepIQ(b, "g1", "<iq type='get' id='g1' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>")
	mustHave(t, "bob reads the vCard", got, "type='result'", "<FN>Alice</FN>", "<NICKNAME>al</NICKNAME>",
		"<PHOTO><TYPE>image/png</TYPE><BINVAL>"+b64+"</BINVAL></PHOTO>")

	update := "<x xmlns='vcard-temp:x:update'><photo>" + id + "</photo></x>"
	a.Send("<presence><status>new face</status></presence>")
	got = b.Expect("</presence>")
	mustHave(t, "broadcast presence", got, "from='alice@localhost/pc'", "new face", update)

	a.Send("<presence><status>empty x</status><x xmlns='vcard-temp:x:update'/></presence>")
	got = b.Expect("</presence>")
	mustHave(t, "empty x replaced", got, "empty x", update)
	mustNotHave(t, "empty x replaced", got, "<x xmlns='vcard-temp:x:update'/>")

	a.Send("<presence><status>not ready</status><x xmlns='vcard-temp:x:update'><photo/></x></presence>")
	got = b.Expect("</presence>")
	mustHave(t, "empty photo kept", got, "not ready", "<photo/>")
	mustNotHave(t, "empty photo kept", got, "<photo>"+id)

	// Directed presence (a MUC join, XEP-0398 §4) gets the hash too.
	c := srv.LoginPlain(t, "carol", "secret", "x")
	a.Send("<presence to='carol@localhost/x'><status>direct</status></presence>")
	got = c.Expect("</presence>")
	mustHave(t, "directed presence", got, "direct", update)

	// A MUC join is a directed presence too: the room passes the hash on to occupants.
	mucCreate(t, c, "faces@conference.localhost", "Carol")
	a.Send(mucJoin("faces@conference.localhost", "Alice", "join"))
	got = expectStanza(t, c, "from='faces@conference.localhost/Alice'")
	mustHave(t, "MUC join", got, update)
	expectStanza(t, a, "id='join'", "<status code='110'/>")

	// The vCard write did not come back to PEP as a second publication (the server's own
	// metadata would have no url info).
	got = pepIQ(a, "i1", pepItems("i1", "", nsAvatarMeta, ">"))
	mustHave(t, "metadata untouched", got, "url='https://example.org/a.png'")

	// Disabling the avatar (XEP-0084 §4.5) removes the PHOTO.
	got = pepIQ(a, "pub-off", pepPublish(nsAvatarMeta, "off", "<metadata xmlns='"+nsAvatarMeta+"'/>", ""))
	mustHave(t, "disable", got, "type='result'")
	got = pepIQ(b, "g2", "<iq type='get' id='g2' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>")
	mustHave(t, "vCard after disable", got, "<FN>Alice</FN>")
	mustNotHave(t, "vCard after disable", got, "<PHOTO>")
	a.Send("<presence><status>faceless</status></presence>")
	got = b.Expect("</presence>")
	mustNotHave(t, "presence after disable", got, "<photo>")
}

// TestIntegrationAvatarVCardToPEP: alice's legacy client sets a vCard with a PHOTO; the
// server publishes the XEP-0084 data and metadata items (XEP-0398 §3.2), bob (+notify)
// gets the metadata event, the metadata node is created with the PEP defaults (presence
// access: carol cannot read it) while the data node alice had made whitelist stays so;
// setting the same vCard again publishes nothing.
func TestIntegrationAvatarVCardToPEP(t *testing.T) {
	srv := avatarPair(t)
	_, b64, id := avatarPNG(t, 2, 5)
	raw, _ := base64.StdEncoding.DecodeString(b64)

	a := srv.LoginPlain(t, "alice", "secret", "pc")
	pepCapsOnline(t, a, nsAvatarData+"+notify", nsAvatarMeta+"+notify")
	got := pepIQ(a, "pub-old", pepPublish(nsAvatarData, "old", "<data xmlns='"+nsAvatarData+"'>AAAA</data>", pepOpt("pubsub#access_model", "whitelist")))
	mustHave(t, "whitelist data node", got, "type='result'")
	a.Expect("</message>")

	b := srv.LoginPlain(t, "bob", "secret", "phone")
	pepCapsOnline(t, b, nsAvatarMeta+"+notify")
	c := srv.LoginPlain(t, "carol", "secret", "x")

	card := "<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>" + b64 + "</BINVAL></PHOTO></vCard>"
	got = pepIQ(a, "v1", "<iq type='set' id='v1'>"+card+"</iq>")
	mustHave(t, "vcard set", got, "type='result'")

	info := "<info bytes='" + strconv.Itoa(len(raw)) + "' id='" + id + "' type='image/png' width='2' height='5'/>"
	got = b.Expect("</message>")
	mustHave(t, "bob's notification", got, "from='alice@localhost' to='bob@localhost/phone'",
		"<items node='"+nsAvatarMeta+"'><item id='"+id+"'><metadata xmlns='"+nsAvatarMeta+"'>"+info+"</metadata>")
	got = a.Expect("<items node='" + nsAvatarMeta + "'>")
	mustHave(t, "alice's own notifications", got, "<items node='"+nsAvatarData+"'><item id='"+id+"'>")

	got = pepIQ(a, "i1", pepItems("i1", "", nsAvatarData, "><item id='"+id+"'/>"))
	mustHave(t, "data item", got, "<item id='"+id+"'><data xmlns='"+nsAvatarData+"'>"+b64+"</data></item>")
	got = pepIQ(b, "i2", pepItems("i2", "alice@localhost", nsAvatarMeta, ">"))
	mustHave(t, "bob reads metadata", got, "type='result'", info)
	got = pepIQ(b, "i3", pepItems("i3", "alice@localhost", nsAvatarData, ">"))
	mustHave(t, "data node stays whitelist", got, "type='error'", "<closed-node")
	got = pepIQ(c, "i4", pepItems("i4", "alice@localhost", nsAvatarMeta, ">"))
	mustHave(t, "metadata has the PEP default access", got, "type='error'", "<presence-subscription-required")
	got = pepIQ(a, "cf", "<iq type='get' id='cf'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='"+nsAvatarData+"'/></pubsub></iq>")
	mustHave(t, "data node config", got, "<value>whitelist</value>")

	// The same vCard again (legacy clients set it at every login): nothing is published.
	got = pepIQ(a, "v2", "<iq type='set' id='v2'>"+card+"</iq>")
	mustHave(t, "vcard set again", got, "type='result'")
	b.Never("<message")

	// The vCard itself is stored as sent, and the presence carries the hash.
	got = pepIQ(b, "g", "<iq type='get' id='g' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>")
	mustHave(t, "vCard", got, card)
	a.Send("<presence><status>hi</status></presence>")
	got = b.Expect("</presence>")
	mustHave(t, "presence hash", got, "<photo>"+id+"</photo>")

	// A vCard without PHOTO removes the avatar: presence says so with an empty <photo/>
	// (XEP-0153 §4.3), or contacts would keep showing the old one.
	got = pepIQ(a, "v3", "<iq type='set' id='v3'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>")
	mustHave(t, "vcard without photo", got, "type='result'")
	a.Send("<presence><status>no avatar</status></presence>")
	got = b.Expect("no avatar")
	got += b.Expect("</presence>")
	mustHave(t, "presence after the removal", got, "<x xmlns='vcard-temp:x:update'><photo/></x>")
}
