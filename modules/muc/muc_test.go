package muc_test

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/muc"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

const (
	room   = "room@conference.example.org"
	nsMUC  = "http://jabber.org/protocol/muc"
	joinX  = "<x xmlns='" + nsMUC + "'/>"
	owner  = "<query xmlns='" + nsMUC + "#owner'>"
	admin  = "<query xmlns='" + nsMUC + "#admin'>"
	submit = "<x xmlns='jabber:x:data' type='submit'/>"
)

func join(nick, id string, extra ...string) string {
	return "<presence to='" + room + "/" + nick + "' id='" + id + "'><x xmlns='" + nsMUC + "'>" +
		strings.Join(extra, "") + "</x></presence>"
}

// instantRoom creates room with alice as owner (nick Alice) and unlocks it.
func instantRoom(t *testing.T, e *routertest.Env) *routertest.Sess {
	t.Helper()
	a := e.Bind("alice", "pc")
	a.Send(join("Alice", "j1"))
	a.C.Wait(t, "id='j1'", "status code='110'", "status code='201'", "affiliation='owner'", "role='moderator'")
	a.C.Wait(t, "<subject/>")
	a.Send("<iq type='set' to='" + room + "' id='inst'>" + owner + submit + "</query></iq>")
	a.C.Wait(t, "id='inst'", "type='result'")
	a.C.Reset()
	return a
}

// index returns the position of the first stanza holding every sub, or -1.
func index(got []string, subs ...string) int {
	for i, s := range got {
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(s, sub)
		}
		if ok {
			return i
		}
	}
	return -1
}

func TestCreateLockedInstant(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	b := e.Bind("bob", "pc")
	a.Send(join("Alice", "j1"))
	a.C.Wait(t, "status code='201'")
	// Locked: nobody else enters before the owner configures (§7.2.11).
	b.Send(join("Bob", "j2"))
	b.C.Wait(t, "id='j2'", "type='error'", "item-not-found")
	a.Send("<iq type='set' to='" + room + "' id='inst'>" + owner + submit + "</query></iq>")
	a.C.Wait(t, "id='inst'", "type='result'")
	b.C.Reset()
	b.Send(join("Bob", "j3"))
	b.C.Wait(t, "<subject/>")
	got := b.C.Got()
	ia := index(got, "from='"+room+"/Alice'", "affiliation='owner'")
	is := index(got, "id='j3'", "status code='110'", "from='"+room+"/Bob'")
	ij := index(got, "<subject/>")
	if ia < 0 || is < 0 || ij < 0 || !(ia < is && is < ij) {
		t.Fatalf("join order: alice %d, self %d, subject %d:\n%s", ia, is, ij, strings.Join(got, "\n"))
	}
	if strings.Contains(got[ia], "jid=") {
		t.Fatalf("semi-anonymous room showed a real JID to a participant: %s", got[ia])
	}
	if !strings.Contains(got[is], "<occupant-id xmlns='urn:xmpp:occupant-id:0' id='") {
		t.Fatalf("no occupant-id: %s", got[is])
	}
	// Alice (a moderator) sees Bob's real JID.
	a.C.Wait(t, "from='"+room+"/Bob'", "jid='bob@example.org/pc'")
}

var sidRe = regexp.MustCompile(`<stanza-id xmlns='urn:xmpp:sid:0' id='([^']+)' by='` + room + `'/>`)

func TestGroupchatReflection(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "j2"))
	b.C.Wait(t, "<subject/>")
	b.Send("<message to='" + room + "' type='groupchat' id='m1'><body>hello</body></message>")
	ga := a.C.Wait(t, "id='m1'", "<body>hello</body>")
	gb := b.C.Wait(t, "id='m1'", "<body>hello</body>")
	ma, mb := sidRe.FindStringSubmatch(ga), sidRe.FindStringSubmatch(gb)
	if ma == nil || mb == nil || ma[1] != mb[1] {
		t.Fatalf("stanza-id differs or is missing:\n%s\n%s", ga, gb)
	}
	if !strings.Contains(gb, "from='"+room+"/Bob'") || !strings.Contains(gb, "to='bob@example.org/pc'") {
		t.Fatalf("reflection: %s", gb)
	}
	// A non-occupant cannot speak.
	c := e.Bind("alice", "phone")
	c.Send("<message to='" + room + "' type='groupchat' id='m2'><body>x</body></message>")
	c.C.Wait(t, "id='m2'", "type='error'", "not-acceptable")
}

func TestPresenceLifecycle(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "j2"))
	b.C.Wait(t, "<subject/>")

	// §7.2.9 nickname conflict.
	c := e.Bind("carol", "pc")
	c.Send(join("Bob", "j3"))
	c.C.Wait(t, "id='j3'", "type='error'", "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>", "by='"+room+"'", joinX)

	// Multi-session (§7.2.10): the same bare JID may hold the same nick from another resource.
	b2 := e.Bind("bob", "phone")
	b2.Send(join("Bob", "j4"))
	b2.C.Wait(t, "id='j4'", "status code='110'")
	b2.C.Wait(t, "<subject/>")

	// Availability change (§7.7) reaches everyone, the sender's sessions with 110.
	b.Send("<presence to='" + room + "/Bob'><show>away</show></presence>")
	a.C.Wait(t, "from='"+room+"/Bob'", "<show>away</show>")
	b2.C.Wait(t, "<show>away</show>", "status code='110'")

	// Nick change (§7.6): unavailable with 303 and the new nick, then the new presence.
	a.C.Reset()
	b.Send("<presence to='" + room + "/Robert'/>")
	a.C.Wait(t, "from='"+room+"/Bob'", "type='unavailable'", "nick='Robert'", "status code='303'")
	a.C.Wait(t, "from='"+room+"/Robert'", "role='participant'")
	b2.C.Wait(t, "from='"+room+"/Bob'", "status code='110'", "status code='303'")
	// The new nick is taken, the old one free.
	c.Send(join("Robert", "j5"))
	c.C.Wait(t, "id='j5'", "conflict")

	// XEP-0410 self-ping: answered for the occupant's own nick, not-acceptable otherwise.
	b.Send("<iq type='get' id='sp1' to='" + room + "/Robert'><ping xmlns='urn:xmpp:ping'/></iq>")
	b.C.Wait(t, "id='sp1'", "type='result'", "from='"+room+"/Robert'")
	c.Send("<iq type='get' id='sp2' to='" + room + "/Robert'><ping xmlns='urn:xmpp:ping'/></iq>")
	c.C.Wait(t, "id='sp2'", "type='error'", "not-acceptable")

	// Leaving: one session leaves, the occupant stays; the last one leaves, everyone sees it.
	a.C.Reset()
	b2.Send("<presence to='" + room + "/Robert' type='unavailable'/>")
	b2.C.Wait(t, "type='unavailable'", "status code='110'")
	a.C.Never(t, "type='unavailable'")
	b.Send("<presence to='" + room + "/Robert' type='unavailable'><status>bye</status></presence>")
	b.C.Wait(t, "type='unavailable'", "status code='110'", "role='none'")
	a.C.Wait(t, "from='"+room+"/Robert'", "type='unavailable'", "<status>bye</status>", "role='none'")

	// Groupchat 1.0 presence from a non-occupant gets the §7.2.23 kick.
	c.Send("<presence to='" + room + "/Carol'/>")
	c.C.Wait(t, "type='unavailable'", "status code='307'", "status code='333'")
}

func TestOccupantIDStable(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	instantRoom(t, e)
	b := e.Bind("bob", "pc")
	re := regexp.MustCompile(`<occupant-id xmlns='urn:xmpp:occupant-id:0' id='([^']+)'/>`)
	b.Send(join("Bob", "j1"))
	first := re.FindStringSubmatch(b.C.Wait(t, "id='j1'", "status code='110'"))
	b.Send("<presence to='" + room + "/Bob' type='unavailable'/>")
	b.C.Wait(t, "type='unavailable'")
	b.C.Reset()
	b2 := e.Bind("bob", "other")
	b2.Send(join("Bobby", "j2"))
	second := re.FindStringSubmatch(b2.C.Wait(t, "id='j2'", "status code='110'"))
	if first == nil || second == nil || first[1] != second[1] {
		t.Fatalf("occupant ids %v and %v: want the same id for the same bare JID", first, second)
	}
	// A forged occupant-id is replaced.
	b2.Send("<message to='" + room + "' type='groupchat'><body>x</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/></message>")
	got := b2.C.Wait(t, "<body>x</body>")
	if strings.Contains(got, "forged") || !strings.Contains(got, second[1]) {
		t.Fatalf("occupant-id not replaced: %s", got)
	}
}

func TestMessages(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "j2"))
	b.C.Wait(t, "<subject/>")

	// Subject: moderators by default (§8.1); participants are refused.
	b.Send("<message to='" + room + "' type='groupchat' id='s1'><subject>nope</subject></message>")
	b.C.Wait(t, "id='s1'", "type='error'", "forbidden")
	a.Send("<message to='" + room + "' type='groupchat' id='s2'><subject>Spells</subject></message>")
	b.C.Wait(t, "from='"+room+"/Alice'", "<subject>Spells</subject>")
	c := e.Bind("carol", "pc")
	c.Send(join("Carol", "j3"))
	c.C.Wait(t, "<subject>Spells</subject>", "<delay xmlns='urn:xmpp:delay' from='"+room+"'")

	// Private messages (§7.5): delivered with <x/> added; groupchat type refused; unknown nick.
	b.Send("<message to='" + room + "/Carol' type='chat' id='pm1'><body>psst</body></message>")
	pm := c.C.Wait(t, "id='pm1'", "<body>psst</body>")
	if !strings.Contains(pm, "from='"+room+"/Bob'") || !strings.Contains(pm, "<x xmlns='"+nsMUC+"#user'/>") {
		t.Fatalf("private message: %s", pm)
	}
	b.Send("<message to='" + room + "/Carol' type='groupchat' id='pm2'><body>x</body></message>")
	b.C.Wait(t, "id='pm2'", "bad-request")
	b.Send("<message to='" + room + "/Nobody' type='chat' id='pm3'><body>x</body></message>")
	b.C.Wait(t, "id='pm3'", "item-not-found")

	// Moderated room: visitors may not speak (§7.4 forbidden); members get voice.
	a.Send("<iq type='set' to='" + room + "' id='cfg'>" + owner + "<x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE'><value>" + nsMUC + "#roomconfig</value></field>" +
		"<field var='muc#roomconfig_moderatedroom'><value>1</value></field>" +
		"<field var='muc#roomconfig_allowpm'><value>moderators</value></field></x></query></iq>")
	a.C.Wait(t, "id='cfg'", "type='result'")
	b.C.Wait(t, "status code='104'")
	c.Send("<presence to='" + room + "/Carol' type='unavailable'/>")
	c.C.Wait(t, "type='unavailable'", "status code='110'")
	c.Send(join("Carol", "j4"))
	c.C.Wait(t, "id='j4'", "role='visitor'")
	c.Send("<message to='" + room + "' type='groupchat' id='v1'><body>hi</body></message>")
	c.C.Wait(t, "id='v1'", "type='error'", "forbidden")
	b.Send("<message to='" + room + "/Alice' type='chat' id='pm4'><body>x</body></message>")
	b.C.Wait(t, "id='pm4'", "forbidden")

	// Voice request (§7.13) to the moderators, approved (§8.6): Carol gets voice.
	req := "<field var='FORM_TYPE'><value>" + nsMUC + "#request</value></field><field var='muc#role'><value>participant</value></field>"
	c.Send("<message to='" + room + "'><x xmlns='jabber:x:data' type='submit'>" + req + "</x></message>")
	a.C.Wait(t, "<title>Voice request</title>", "<value>carol@example.org/pc</value>", "<value>Carol</value>")
	a.Send("<message to='" + room + "'><x xmlns='jabber:x:data' type='submit'>" + req +
		"<field var='muc#roomnick'><value>Carol</value></field><field var='muc#request_allow'><value>true</value></field></x></message>")
	c.C.Wait(t, "from='"+room+"/Carol'", "role='participant'", "status code='110'", "<actor nick='Alice'/>")
	c.Send("<message to='" + room + "' type='groupchat' id='v2'><body>now I speak</body></message>")
	b.C.Wait(t, "id='v2'", "now I speak")
}

func configure(t *testing.T, a *routertest.Sess, id string, fields map[string]string) {
	t.Helper()
	configureRoom(t, a, room, id, fields)
}

// createRoom has s create roomJID with nick (its join's id idJoin), then submit fields as
// its configuration (idConf).
func createRoom(t *testing.T, s *routertest.Sess, roomJID, nick, idJoin, idConf string, fields map[string]string) {
	t.Helper()
	s.Send("<presence to='" + roomJID + "/" + nick + "' id='" + idJoin + "'><x xmlns='" + nsMUC + "'/></presence>")
	s.C.Wait(t, "id='"+idJoin+"'", "status code='201'")
	configureRoom(t, s, roomJID, idConf, fields)
}

// configureRoom submits fields as roomJID's configuration and waits for the result.
func configureRoom(t *testing.T, a *routertest.Sess, roomJID, id string, fields map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("<iq type='set' to='" + roomJID + "' id='" + id + "'>" + owner + "<x xmlns='jabber:x:data' type='submit'>")
	b.WriteString("<field var='FORM_TYPE'><value>" + nsMUC + "#roomconfig</value></field>")
	for k, v := range fields {
		b.WriteString("<field var='" + k + "'><value>" + v + "</value></field>")
	}
	b.WriteString("</x></query></iq>")
	a.Send(b.String())
	a.C.Wait(t, "id='"+id+"'", "type='result'")
}

func TestConfigDiscoDestroy(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")

	a.Send("<iq type='get' to='" + room + "' id='f1'>" + owner + "</query></iq>")
	form := a.C.Wait(t, "id='f1'", "type='result'")
	for _, f := range []string{"muc#roomconfig_roomname", "muc#roomconfig_roomdesc", "muc#roomconfig_persistentroom",
		"muc#roomconfig_publicroom", "muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom",
		"muc#roomconfig_passwordprotectedroom", "muc#roomconfig_roomsecret", "muc#roomconfig_maxusers",
		"muc#roomconfig_whois", "muc#roomconfig_allowpm", "muc#roomconfig_allowinvites",
		"muc#roomconfig_changesubject", "muc#maxhistoryfetch", "muc#roomconfig_roomowners"} {
		if !strings.Contains(form, "var='"+f+"'") {
			t.Errorf("form lacks %s", f)
		}
	}
	b.Send("<iq type='get' to='" + room + "' id='f2'>" + owner + "</query></iq>")
	b.C.Wait(t, "id='f2'", "forbidden")

	configure(t, a, "c1", map[string]string{"muc#roomconfig_roomname": "Witches", "muc#roomconfig_whois": "anyone",
		"muc#roomconfig_roomdesc": "A dark cave", "muc#roomconfig_persistentroom": "1"})
	a.C.Wait(t, "status code='172'")

	b.Send("<iq type='get' to='" + room + "' id='i1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	info := b.C.Wait(t, "id='i1'")
	for _, f := range []string{"category='conference' type='text' name='Witches'", "var='" + nsMUC + "'",
		"muc_nonanonymous", "muc_persistent", "muc_public", "muc_open", "muc_unmoderated", "muc_unsecured",
		"urn:xmpp:occupant-id:0", nsMUC + "#stable_id", "<value>" + nsMUC + "#roominfo</value>",
		"<field var='muc#roominfo_description' label='Description'><value>A dark cave</value>",
		"<field var='muc#roominfo_occupants' label='Number of occupants'><value>1</value>"} {
		if !strings.Contains(info, f) {
			t.Errorf("room disco#info lacks %q: %s", f, info)
		}
	}
	b.Send("<iq type='get' to='conference.example.org' id='i2'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	b.C.Wait(t, "id='i2'", "<item jid='"+room+"' name='Witches'/>")
	b.Send("<iq type='get' to='conference.example.org' id='i3'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	b.C.Wait(t, "id='i3'", "category='conference'", "var='"+nsMUC+"'")

	// Non-anonymous: status 100 on entry, real JIDs for everyone.
	b.Send(join("Bob", "j2"))
	b.C.Wait(t, "id='j2'", "status code='100'", "status code='110'")
	b.C.Wait(t, "from='"+room+"/Alice'", "jid='alice@example.org/pc'")

	// Hidden rooms leave disco#items.
	configure(t, a, "c2", map[string]string{"muc#roomconfig_publicroom": "0"})
	b.Send("<iq type='get' to='conference.example.org' id='i4'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if got := b.C.Wait(t, "id='i4'"); strings.Contains(got, room) {
		t.Fatalf("hidden room listed: %s", got)
	}

	// Bad forms.
	a.Send("<iq type='set' to='" + room + "' id='c3'>" + owner + "<x xmlns='jabber:x:data' type='submit'>" +
		"<field var='muc#roomconfig_passwordprotectedroom'><value>1</value></field></x></query></iq>")
	a.C.Wait(t, "id='c3'", "not-acceptable")

	// Destroy (§10.9) with an alternate venue and a reason.
	b.Send("<iq type='set' to='" + room + "' id='d0'>" + owner + "<destroy/></query></iq>")
	b.C.Wait(t, "id='d0'", "forbidden")
	a.Send("<iq type='set' to='" + room + "' id='d1'>" + owner + "<destroy jid='other@conference.example.org'><reason>moving</reason></destroy></query></iq>")
	b.C.Wait(t, "type='unavailable'", "<destroy jid='other@conference.example.org'><reason>moving</reason></destroy>")
	a.C.Wait(t, "id='d1'", "type='result'")
	b.Send("<iq type='get' to='conference.example.org' id='i5'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	b.Send("<iq type='get' to='" + room + "' id='i6'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	b.C.Wait(t, "id='i6'", "item-not-found")
}

func TestRolesAndAffiliations(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol", "dave"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	c := e.Bind("carol", "pc")
	b.Send(join("Bob", "j2"))
	b.C.Wait(t, "<subject/>")
	c.Send(join("Carol", "j3"))
	c.C.Wait(t, "<subject/>")

	set := func(s *routertest.Sess, id, item string) {
		s.Send("<iq type='set' to='" + room + "' id='" + id + "'>" + admin + item + "</query></iq>")
	}
	// A participant cannot kick (§8 preamble: forbidden).
	set(b, "k0", "<item nick='Carol' role='none'/>")
	b.C.Wait(t, "id='k0'", "type='error'", "forbidden")
	// Both a role and an affiliation: bad-request (§17.4).
	set(a, "k1", "<item nick='Carol' role='none' affiliation='none'/>")
	a.C.Wait(t, "id='k1'", "bad-request")

	// Kick (§8.2): 307 with actor and reason, to the victim then the others.
	set(a, "k2", "<item nick='Carol' role='none'><reason>out</reason></item>")
	c.C.Wait(t, "type='unavailable'", "status code='307'", "status code='110'", "<actor nick='Alice'/>", "<reason>out</reason>")
	a.C.Wait(t, "id='k2'", "type='result'")
	b.C.Wait(t, "from='"+room+"/Carol'", "type='unavailable'", "status code='307'")

	// Grant moderator to Bob (admin's right), then Bob, a moderator of affiliation none,
	// tries to kick Alice, an owner: not-allowed (§8.2).
	set(a, "m1", "<item nick='Bob' role='moderator'/>")
	a.C.Wait(t, "id='m1'", "type='result'")
	b.C.Wait(t, "from='"+room+"/Bob'", "role='moderator'", "status code='110'")
	set(b, "k3", "<item nick='Alice' role='none'/>")
	b.C.Wait(t, "id='k3'", "not-allowed")

	// Membership and lists.
	set(a, "a1", "<item affiliation='member' jid='carol@example.org' nick='Carol'/>")
	a.C.Wait(t, "id='a1'", "type='result'")
	a.Send("<iq type='get' to='" + room + "' id='l1'>" + admin + "<item affiliation='member'/></query></iq>")
	a.C.Wait(t, "id='l1'", "<item affiliation='member' jid='carol@example.org' nick='Carol'/>")
	b.Send("<iq type='get' to='" + room + "' id='l2'>" + admin + "<item affiliation='owner'/></query></iq>")
	b.C.Wait(t, "id='l2'", "forbidden")
	a.Send("<iq type='get' to='" + room + "' id='l4'>" + owner + "<item affiliation='owner'/></query></iq>")
	a.C.Wait(t, "id='l4'", "<query xmlns='"+nsMUC+"#owner'><item affiliation='owner' jid='alice@example.org'/></query>")
	a.Send("<iq type='get' to='" + room + "' id='l3'>" + admin + "<item role='moderator'/></query></iq>")
	a.C.Wait(t, "id='l3'", "nick='Alice'", "nick='Bob'")
	// Reserved nick (§7.12): someone else may not take it.
	d := e.Bind("dave", "pc")
	d.Send(join("Carol", "j4"))
	d.C.Wait(t, "id='j4'", "conflict")
	c.Send("<iq type='get' to='" + room + "' id='rn'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>")
	c.C.Wait(t, "id='rn'", "name='Carol'")

	// Ban (§9.1): 301, and entry is refused afterwards; banning oneself is a conflict.
	d.Send(join("Dave", "j5"))
	d.C.Wait(t, "id='j5'", "status code='110'")
	set(a, "b1", "<item affiliation='outcast' jid='dave@example.org'><reason>spam</reason></item>")
	d.C.Wait(t, "type='unavailable'", "status code='301'", "affiliation='outcast'")
	a.C.Wait(t, "id='b1'", "type='result'")
	d.Send(join("Dave", "j6"))
	d.C.Wait(t, "id='j6'", "type='error'", "forbidden")
	set(a, "b2", "<item affiliation='outcast' jid='alice@example.org'/>")
	a.C.Wait(t, "id='b2'", "conflict")
	set(b, "b3", "<item affiliation='outcast' jid='carol@example.org'/>")
	b.C.Wait(t, "id='b3'", "forbidden")
	// The last owner cannot step down (§10.4).
	set(a, "o1", "<item affiliation='admin' jid='alice@example.org'/>")
	a.C.Wait(t, "id='o1'", "conflict")

	// Voice (§8.3, §8.4) in a moderated room.
	configure(t, a, "c1", map[string]string{"muc#roomconfig_moderatedroom": "1", "muc#roomconfig_membersonly": "1"})
	// Members-only: Bob, not a member, is removed with 322.
	b.C.Wait(t, "type='unavailable'", "status code='322'")
	d2 := e.Bind("bob", "pc2")
	d2.Send(join("Bob", "j7"))
	d2.C.Wait(t, "id='j7'", "registration-required", joinX)
}

func TestPasswordFullAndInvites(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := instantRoom(t, e)
	configure(t, a, "c1", map[string]string{"muc#roomconfig_passwordprotectedroom": "1",
		"muc#roomconfig_roomsecret": "cauldron", "muc#roomconfig_maxusers": "2"})
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "j1"))
	b.C.Wait(t, "id='j1'", "not-authorized")
	b.Send(join("Bob", "j2", "<password>wrong</password>"))
	b.C.Wait(t, "id='j2'", "not-authorized")
	b.Send(join("Bob", "j3", "<password>cauldron</password>"))
	b.C.Wait(t, "id='j3'", "status code='110'")
	c := e.Bind("carol", "pc")
	c.Send(join("Carol", "j4", "<password>cauldron</password>"))
	c.C.Wait(t, "id='j4'", "type='error'", "service-unavailable", "type='wait'")

	// Mediated invitation (§7.8.2) with the password, and a decline back.
	c.Send("<presence/>") // the invitation goes to the bare JID: an available resource
	b.Send("<message to='" + room + "' id='inv'><x xmlns='" + nsMUC + "#user'><invite to='carol@example.org'><reason>come</reason></invite></x></message>")
	c.C.Wait(t, "from='"+room+"'", "<invite from='bob@example.org'><reason>come</reason></invite>", "<password>cauldron</password>")
	c.Send("<message to='" + room + "' id='dec'><x xmlns='" + nsMUC + "#user'><decline to='bob@example.org/pc'><reason>busy</reason></decline></x></message>")
	b.C.Wait(t, "id='dec'", "<decline from='carol@example.org'><reason>busy</reason></decline>")
	// Declined once: the room carries no second decline, nor one to whomever someone
	// names without an invitation (the room would send messages for anyone).
	c.Send("<message to='" + room + "' id='dec2'><x xmlns='" + nsMUC + "#user'><decline to='bob@example.org'/></x></message>")
	c.C.Wait(t, "id='dec2'", "type='error'", "not-acceptable")
	c.Send("<message to='" + room + "' id='dec3'><x xmlns='" + nsMUC + "#user'><decline to='alice@example.org'/></x></message>")
	c.C.Wait(t, "id='dec3'", "type='error'", "not-acceptable")
	b.C.Never(t, "id='dec2'")
	// One message carries a bounded number of invitations: each goes out from the room.
	var many strings.Builder
	for i := range 11 {
		many.WriteString("<invite to='x" + string(rune('a'+i)) + "@example.net'/>")
	}
	rl := &routertest.Remote{}
	e.R.SetRemote(rl)
	b.Send("<message to='" + room + "' id='many'><x xmlns='" + nsMUC + "#user'>" + many.String() + "</x></message>")
	b.C.Wait(t, "id='many'", "type='error'", "policy-violation")
	if n := len(rl.Matching("<invite")); n != 0 {
		t.Fatalf("%d invitations went out before the refusal", n)
	}
}

func TestHistory(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := instantRoom(t, e)
	for i := 0; i < 25; i++ {
		n := string(rune('a' + i))
		a.Send("<message to='" + room + "' type='groupchat' id='h" + n + "'><body>m" + n + "</body></message>")
	}
	a.C.Wait(t, "id='hy'")
	count := func(got []string) int {
		n := 0
		for _, s := range got {
			if strings.Contains(s, "<body>m") {
				n++
				if !strings.Contains(s, "<delay xmlns='urn:xmpp:delay' from='"+room+"' stamp='") {
					t.Fatalf("history without delay: %s", s)
				}
			}
		}
		return n
	}
	b := e.Bind("bob", "pc")
	for _, tc := range []struct {
		hist string
		want int
	}{
		{"", 20}, // the default history length
		{"<history maxstanzas='3'/>", 3},
		{"<history maxchars='0'/>", 0},
		{"<history seconds='3600'/>", 20},
		{"<history since='2100-01-01T00:00:00Z'/>", 0},
	} {
		b.C.Reset()
		b.Send(join("Bob", "j", tc.hist))
		b.C.Wait(t, "<subject/>")
		got := b.C.Got()
		if n := count(got); n != tc.want {
			t.Errorf("%s: %d history messages, want %d", tc.hist, n, tc.want)
		}
		if tc.want > 0 && index(got, "<body>my</body>") > index(got, "<subject/>") {
			t.Errorf("%s: subject before history", tc.hist)
		}
		b.Send("<presence to='" + room + "/Bob' type='unavailable'/>")
		b.C.Wait(t, "type='unavailable'")
	}
}

// TestTraffic: the room's #traffic node (XEP-0045 §6.7) lists the payload namespaces of
// its history, not what every message carries; a members-only room tells no outsider.
func TestTraffic(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	traffic := func(s *routertest.Sess, id string) string {
		t.Helper()
		s.Send("<iq type='get' to='" + room + "' id='" + id + "'><query xmlns='http://jabber.org/protocol/disco#info' node='" + nsMUC + "#traffic'/></iq>")
		return s.C.Wait(t, "id='"+id+"'")
	}
	if got := traffic(b, "t0"); !strings.Contains(got, "type='result'") || strings.Contains(got, "<feature") {
		t.Fatalf("an empty room's traffic: %s", got)
	}
	a.Send("<message to='" + room + "' type='groupchat' id='m1'><body>hi</body><markable xmlns='urn:xmpp:chat-markers:0'/>" +
		"<origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>")
	a.Send("<message to='" + room + "' type='groupchat' id='m2'><body>re</body><reply xmlns='urn:xmpp:reply:0' id='x'/></message>")
	a.C.Wait(t, "id='m2'")
	got := traffic(b, "t1")
	for _, want := range []string{"node='" + nsMUC + "#traffic'", "<feature var='urn:xmpp:chat-markers:0'/>", "<feature var='urn:xmpp:reply:0'/>"} {
		if !strings.Contains(got, want) {
			t.Fatalf("traffic lacks %s: %s", want, got)
		}
	}
	for _, not := range []string{"jabber:client", "urn:xmpp:sid:0", "urn:xmpp:delay", "urn:xmpp:occupant-id:0"} {
		if strings.Contains(got, "'"+not+"'") {
			t.Fatalf("traffic lists %s: %s", not, got)
		}
	}
	configure(t, a, "mo", map[string]string{"muc#roomconfig_membersonly": "1"})
	if got := traffic(b, "t2"); !strings.Contains(got, "<forbidden") {
		t.Fatalf("an outsider asking a members-only room: %s", got)
	}
}

// TestBoundsAndFlood: [modules.muc] through the server's config decoding: the service name,
// the room bound, join flood control, presence coalescing and the message rate in large
// rooms.
func TestBoundsAndFlood(t *testing.T) {
	cfg, err := config.Parse([]byte(`domains = ["example.org"]
[modules.muc]
subdomain = "chat"
max_rooms = 1
flood_occupants = 2
join_rate = 1
presence_interval = "1h"
message_rate = 1
`), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"u0", "u1", "u2", "u3", "u4"}
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC) // a standing clock: no bucket refills
	e := routertest.New(t, users, func(o *router.Options) {
		o.ModuleConfig = cfg.ModuleConfig
		o.Now = func() time.Time { return at }
	})
	const r = "big@chat.example.org"
	s := make([]*routertest.Sess, len(users))
	for i, u := range users {
		s[i] = e.Bind(u, "pc")
	}
	s[0].Send("<presence to='" + r + "/u0' id='c'><x xmlns='" + nsMUC + "'/></presence>")
	s[0].C.Wait(t, "id='c'", "status code='201'")
	s[0].Send("<iq type='set' to='" + r + "' id='inst'>" + owner + submit + "</query></iq>")
	s[0].C.Wait(t, "id='inst'", "type='result'")
	// max_rooms = 1.
	s[1].Send("<presence to='other@chat.example.org/u1' id='o'><x xmlns='" + nsMUC + "'/></presence>")
	s[1].C.Wait(t, "id='o'", "resource-constraint")
	// One join below flood_occupants, then a burst of two (2 × join_rate), then refused.
	for i := 1; i <= 3; i++ {
		s[i].Send("<presence to='" + r + "/u" + string(rune('0'+i)) + "' id='j'><x xmlns='" + nsMUC + "'/></presence>")
		s[i].C.Wait(t, "id='j'", "status code='110'")
	}
	s[4].Send("<presence to='" + r + "/u4' id='j'><x xmlns='" + nsMUC + "'/></presence>")
	s[4].C.Wait(t, "id='j'", "type='error'", "resource-constraint", "type='wait'")
	// Status changes right after joining are not broadcast in a large room, but kept.
	s[0].C.Reset()
	s[2].Send("<presence to='" + r + "/u2'><show>dnd</show></presence>")
	s[0].C.Never(t, "<show>dnd</show>")
	s[0].Send("<presence to='" + r + "/u0' id='sync'><x xmlns='" + nsMUC + "'/></presence>") // resync
	s[0].C.Wait(t, "from='"+r+"/u2'", "<show>dnd</show>")

	// message_rate = 1: a participant's burst of five goes out, the sixth is refused; the
	// owner (a moderator) is not counted.
	for i := 1; i <= 6; i++ {
		id := "m" + strconv.Itoa(i)
		s[1].Send("<message to='" + r + "' type='groupchat' id='" + id + "'><body>" + id + "</body></message>")
		s[0].Send("<message to='" + r + "' type='groupchat' id='o" + id + "'><body>o" + id + "</body></message>")
	}
	s[1].C.Wait(t, "id='m5'", "<body>m5</body>")
	s[1].C.Wait(t, "id='m6'", "type='error'", "<error type='wait'", "<policy-violation")
	s[1].C.Wait(t, "id='om6'", "<body>om6</body>")
	if strings.Contains(s[2].C.All(), "<body>m6</body>") {
		t.Fatal("the refused message reached the room")
	}
}

// TestGhostAndRelay: an error from an occupant's session removes it (333); IQs between
// occupants are relayed under the room's ids, and the answer comes back.
func TestGhostAndRelay(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "j"))
	b.C.Wait(t, "<subject/>")
	a.Send("<iq type='get' to='" + room + "/Bob' id='v1'><query xmlns='jabber:iq:version'/></iq>")
	req := b.C.Wait(t, "jabber:iq:version", "from='"+room+"/Alice'")
	if strings.Contains(req, "alice@") || strings.Contains(req, "id='v1'") {
		t.Fatalf("relayed IQ reveals the requester: %s", req)
	}
	id := regexp.MustCompile(`id='([^']+)'`).FindStringSubmatch(req)[1]
	b.Send("<iq type='result' to='" + room + "/Alice' id='" + id + "'><query xmlns='jabber:iq:version'><name>x</name></query></iq>")
	got := a.C.Wait(t, "id='v1'", "type='result'", "<name>x</name>")
	if !strings.Contains(got, "from='"+room+"/Bob'") {
		t.Fatalf("answer: %s", got)
	}
	b.Send("<message to='" + room + "' type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	a.C.Wait(t, "from='"+room+"/Bob'", "type='unavailable'", "status code='333'")
}

// fakeArchive records what the room hands the archive seam.
type fakeArchive struct {
	mu     sync.Mutex
	msgs   []muc.Groupchat
	access []muc.Access
	forgot []string
}

func (f *fakeArchive) Append(_ module.Context, m *muc.Groupchat) {
	f.mu.Lock()
	g := *m
	g.Raw = append([]byte(nil), m.Raw...)
	f.msgs = append(f.msgs, g)
	f.mu.Unlock()
}

func (f *fakeArchive) Forget(room jid.JID) error {
	f.mu.Lock()
	f.forgot = append(f.forgot, room.String())
	f.mu.Unlock()
	return nil
}

func (f *fakeArchive) Namespaces() []string { return []string{"urn:xmpp:mam:2"} }

func (f *fakeArchive) Query(c module.Context, room jid.JID, iq *module.Packet, a muc.Access) {
	f.mu.Lock()
	f.access = append(f.access, a)
	f.mu.Unlock()
	if a == muc.NoAccess {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	c.Reply(iq, nil)
}

// TestRoomsLoggedByDefault: with an archive, a new room is logged (its configuration
// form says so) and advertises the archive, as Conversations' compliance test and the
// Compliance Suites' advanced group chat expect.
func TestRoomsLoggedByDefault(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	muc.SetArchive(e.Store, &fakeArchive{})
	t.Cleanup(func() { muc.SetArchive(e.Store, nil) })
	a := instantRoom(t, e)
	a.Send("<iq type='get' to='" + room + "' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='i'", "<feature var='urn:xmpp:mam:2'/>")
	a.Send("<iq type='get' to='" + room + "' id='f'>" + owner + "</query></iq>")
	a.C.Wait(t, "id='f'", "<field var='muc#roomconfig_enablelogging' type='boolean' label='Enable Public Logging?'><value>1</value></field>")
}

// TestArchiveSeam: the seam for XEP-0313 on rooms sees each message a logged room
// reflects once, with its stanza-id and sender, and the archive queries addressed to the
// room with the requester's access; an unlogged room (default_logging = false here; new
// rooms are logged by default) neither archives nor advertises the archive; a room's
// archive is forgotten when the room is created and destroyed.
func TestArchiveSeam(t *testing.T) {
	fa := &fakeArchive{}
	off := false
	e := routertest.New(t, []string{"alice", "bob", "carol"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*muc.Config); ok {
				c.Logging = &off
			}
			return nil
		}
	})
	muc.SetArchive(e.Store, fa)
	t.Cleanup(func() { muc.SetArchive(e.Store, nil) })
	a := instantRoom(t, e)
	a.Send("<message to='" + room + "' type='groupchat' id='m0'><body>not logged</body></message>")
	a.C.Wait(t, "id='m0'")
	a.Send("<iq type='get' to='" + room + "' id='i0'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got := a.C.Wait(t, "id='i0'"); strings.Contains(got, "urn:xmpp:mam:2") {
		t.Fatalf("unlogged room advertises its archive: %s", got)
	}
	a.Send("<iq type='set' to='" + room + "' id='q0'><query xmlns='urn:xmpp:mam:2'/></iq>")
	a.C.Wait(t, "id='q0'", "type='error'", "service-unavailable")

	a.Send("<iq type='set' to='" + room + "' id='cfg'>" + owner + "<x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE'><value>" + nsMUC + "#roomconfig</value></field>" +
		"<field var='muc#roomconfig_enablelogging'><value>1</value></field>" +
		"<field var='muc#roomconfig_publicroom'><value>0</value></field></x></query></iq>")
	a.C.Wait(t, "id='cfg'", "type='result'")
	a.Send("<message to='" + room + "' type='groupchat' id='m1'><body>keep me</body></message>")
	got := a.C.Wait(t, "id='m1'")
	a.Send("<iq type='set' to='" + room + "' id='q1'><query xmlns='urn:xmpp:mam:2'/></iq>")
	a.C.Wait(t, "id='q1'", "type='result'")
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "jb"))
	b.C.Wait(t, "<subject/>")
	b.Send("<iq type='set' to='" + room + "' id='q2'><query xmlns='urn:xmpp:mam:2'/></iq>")
	b.C.Wait(t, "id='q2'", "type='result'")
	cl := e.Bind("carol", "pc")
	cl.Send("<iq type='set' to='" + room + "' id='q3'><query xmlns='urn:xmpp:mam:2'/></iq>")
	cl.C.Wait(t, "id='q3'", "type='error'", "forbidden")
	b.Send("<iq type='get' to='" + room + "' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	b.C.Wait(t, "id='i'", "<feature var='urn:xmpp:mam:2'/>")

	fa.mu.Lock()
	if len(fa.msgs) != 1 || fa.msgs[0].From.String() != room+"/Alice" || fa.msgs[0].Real.String() != "alice@example.org" ||
		strings.Contains(string(fa.msgs[0].Raw), " to=") || !strings.Contains(got, "id='"+fa.msgs[0].ID+"' by='"+room+"'") {
		t.Fatalf("archived %+v; delivered %s", fa.msgs, got)
	}
	want := []muc.Access{muc.JIDAccess, muc.ReadAccess, muc.NoAccess}
	if !slices.Equal(fa.access, want) {
		t.Fatalf("query access %v, want %v (owner, occupant, non-occupant of a hidden room)", fa.access, want)
	}
	if len(fa.forgot) != 1 || fa.forgot[0] != room {
		t.Fatalf("forgotten at creation: %q", fa.forgot)
	}
	fa.mu.Unlock()

	a.Send("<iq type='set' to='" + room + "' id='d'>" + owner + "<destroy/></query></iq>")
	a.C.Wait(t, "id='d'", "type='result'")
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if len(fa.forgot) != 2 {
		t.Fatalf("forgotten: %q, want the room forgotten when destroyed", fa.forgot)
	}
}

// TestJoinPresencesOfEqualLength: a joiner gets every occupant's presence; two of them
// have the same length but start tags of different lengths (one has a child the other's
// longer nickname makes up for), so the room must find each one's start tag again rather
// than reuse where the last one ended.
func TestJoinPresencesOfEqualLength(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol", "dave"}, nil)
	instantRoom(t, e)
	b := e.Bind("bob", "pc")
	b.Send("<presence to='" + room + "/Bobby' id='jb'><x xmlns='" + nsMUC + "'/><show>away</show></presence>")
	b.C.Wait(t, "<subject/>")
	long := "Bobby" + strings.Repeat("c", len("<show>away</show>")) // same length as bob's presence
	c := e.Bind("carol", "pc")
	c.Send(join(long, "jc"))
	c.C.Wait(t, "<subject/>")
	d := e.Bind("dave", "pc")
	d.Send(join("Dave", "jd"))
	d.C.Wait(t, "<subject/>")
	got := d.C.Got()
	for _, want := range []string{
		"<presence from='" + room + "/Bobby' to='dave@example.org/pc'><show>away</show>",
		"<presence from='" + room + "/" + long + "' to='dave@example.org/pc'>",
	} {
		if index(got, want) < 0 {
			t.Errorf("no presence starting %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
}

// TestPresenceBroadcastRoles: muc#roomconfig_presencebroadcast = moderator only. A
// participant's presence reaches nobody but itself; a joiner gets only the moderators';
// a participant made moderator appears to the others, and made participant again leaves
// their list with one unavailable presence; its exit is then not broadcast.
func TestPresenceBroadcastRoles(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := instantRoom(t, e)
	a.Send("<iq type='set' to='" + room + "' id='cfg'>" + owner + "<x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>" +
		"<field var='muc#roomconfig_presencebroadcast'><value>moderator</value></field></x></query></iq>")
	a.C.Wait(t, "id='cfg'", "type='result'")
	a.Send("<iq type='get' to='" + room + "' id='cfg2'>" + owner + "</query></iq>")
	got := a.C.Wait(t, "id='cfg2'")
	if !strings.Contains(got, "var='muc#roomconfig_presencebroadcast' type='list-multi' label='Roles for which Presence is Broadcasted'><value>moderator</value><option") {
		t.Fatalf("form: %s", got)
	}
	a.C.Reset()

	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "jb"))
	b.C.Wait(t, "<subject/>")
	if got := b.C.Got(); index(got, "from='"+room+"/Alice'") < 0 || index(got, "from='"+room+"/Bob'", "status code='110'") < 0 {
		t.Fatalf("bob's join: %v", got)
	}
	c := e.Bind("carol", "pc")
	c.Send(join("Carol", "jc"))
	c.C.Wait(t, "<subject/>")
	if got := c.C.Got(); index(got, "from='"+room+"/Alice'") < 0 || index(got, "from='"+room+"/Bob'") >= 0 {
		t.Fatalf("carol's join: %v", got)
	}
	a.C.Never(t, "from='"+room+"/Bob'")

	// Bob made moderator: everyone sees him now.
	a.Send("<iq type='set' to='" + room + "' id='m1'>" + admin + "<item nick='Bob' role='moderator'/></query></iq>")
	c.C.Wait(t, "from='"+room+"/Bob'", "role='moderator'")
	// Participant again: the others get him leaving their list.
	c.C.Reset()
	a.Send("<iq type='set' to='" + room + "' id='m2'>" + admin + "<item nick='Bob' role='participant'/></query></iq>")
	c.C.Wait(t, "from='"+room+"/Bob'", "type='unavailable'", "role='none'")
	b.C.Wait(t, "from='"+room+"/Bob'", "role='participant'", "status code='110'")
	// His exit is his own business now.
	c.C.Reset()
	b.Send("<presence to='" + room + "/Bob' type='unavailable'/>")
	b.C.Wait(t, "type='unavailable'", "status code='110'")
	c.C.Never(t, "from='"+room+"/Bob'")
}

// TestModerate: XEP-0425 moderated retraction in a room without an archive. A participant
// may not retract; an unknown stanza-id is item-not-found; a moderator's retraction (0.3,
// then 0.2 inside <apply-to/>) reaches every occupant from the room in both versions, with
// who did it and why, and the discussion history keeps a tombstone without the text.
func TestModerate(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "j2"))
	b.C.Wait(t, "<subject/>")
	a.Send("<iq type='get' to='" + room + "' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='i'", "<feature var='urn:xmpp:message-moderate:1'/>", "<feature var='urn:xmpp:message-moderate:0'/>")

	b.Send("<message to='" + room + "' type='groupchat' id='spam1'><body>free potions</body></message>")
	sid1 := sidRe.FindStringSubmatch(a.C.Wait(t, "id='spam1'"))[1]
	b.Send("<message to='" + room + "' type='groupchat' id='ok1'><body>an honest line</body></message>")
	a.C.Wait(t, "id='ok1'")
	moderate := func(id, sid, inner string) string {
		return "<iq type='set' to='" + room + "' id='" + id + "'><moderate xmlns='urn:xmpp:message-moderate:1' id='" + sid + "'>" + inner + "</moderate></iq>"
	}
	retract := "<retract xmlns='urn:xmpp:message-retract:1'/>"

	b.Send(moderate("x1", sid1, retract))
	b.C.Wait(t, "id='x1'", "type='error'", "forbidden")
	a.Send(moderate("x2", "no-such-id", retract))
	a.C.Wait(t, "id='x2'", "type='error'", "item-not-found")
	a.Send(moderate("x3", sid1, "<reason>spam</reason>"))
	a.C.Wait(t, "id='x3'", "type='error'", "feature-not-implemented")
	b.C.Never(t, "message-retract")

	a.Send(moderate("x4", sid1, retract+"<reason>spam &amp; scams</reason>"))
	a.C.Wait(t, "id='x4'", "type='result'")
	for _, s := range []*routertest.Sess{a, b} {
		got := s.C.Wait(t, "<message", "from='"+room+"'", "<retract xmlns='urn:xmpp:message-retract:1' id='"+sid1+"'>")
		for _, want := range []string{
			"<moderated xmlns='urn:xmpp:message-moderate:1' by='" + room + "/Alice'><occupant-id xmlns='urn:xmpp:occupant-id:0' id='",
			"<reason>spam &amp; scams</reason>",
			"<apply-to xmlns='urn:xmpp:fasten:0' id='" + sid1 + "'><moderated xmlns='urn:xmpp:message-moderate:0' by='" + room + "/Alice'>",
			"<retract xmlns='urn:xmpp:message-retract:0'/>",
			"by='" + room + "'/>", // its own stanza-id
		} {
			if !strings.Contains(got, want) {
				t.Fatalf("retraction lacks %q:\n%s", want, got)
			}
		}
	}

	// 0.2: <moderate/> inside <apply-to/>.
	b.Send("<message to='" + room + "' type='groupchat' id='spam2'><body>more potions</body></message>")
	sid2 := sidRe.FindStringSubmatch(a.C.Wait(t, "id='spam2'"))[1]
	a.Send("<iq type='set' to='" + room + "' id='x5'><apply-to xmlns='urn:xmpp:fasten:0' id='" + sid2 + "'>" +
		"<moderate xmlns='urn:xmpp:message-moderate:0'><retract xmlns='urn:xmpp:message-retract:0'/></moderate></apply-to></iq>")
	a.C.Wait(t, "id='x5'", "type='result'")
	b.C.Wait(t, "from='"+room+"'", "<apply-to xmlns='urn:xmpp:fasten:0' id='"+sid2+"'>")

	// Who joins now gets the tombstones in the history, and the honest line.
	c := e.Bind("carol", "pc")
	c.Send(join("Carol", "j3"))
	c.C.Wait(t, "<subject/>")
	got := strings.Join(c.C.Got(), "\n")
	if strings.Contains(got, "potions") || !strings.Contains(got, "an honest line") {
		t.Fatalf("history after retraction:\n%s", got)
	}
	tomb := c.C.Wait(t, "id='spam1'")
	for _, want := range []string{
		"from='" + room + "/Bob'", "<delay xmlns='urn:xmpp:delay'", "id='" + sid1 + "' by='" + room + "'/>",
		"<occupant-id xmlns='urn:xmpp:occupant-id:0'",
		"<retracted xmlns='urn:xmpp:message-retract:1' stamp='",
		"<moderated xmlns='urn:xmpp:message-moderate:1' by='" + room + "/Alice'>",
		"<reason>spam &amp; scams</reason></retracted></message>",
	} {
		if !strings.Contains(tomb, want) {
			t.Fatalf("tombstone lacks %q:\n%s", want, tomb)
		}
	}
}

// TestSelfRetract: XEP-0424 in a room. An occupant's retraction of its own message, named
// by the room's stanza-id or (as Converse.js does) by the id the client gave it, is
// reflected like any message and turns the original into a tombstone in the history, with
// the retraction's id; a retraction of someone else's message changes nothing.
func TestSelfRetract(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "j2"))
	b.C.Wait(t, "<subject/>")
	say := func(s *routertest.Sess, id, inner string) string {
		s.Send("<message to='" + room + "' type='groupchat' id='" + id + "'>" + inner + "</message>")
		return a.C.Wait(t, "id='"+id+"'")
	}
	retract := func(id string) string {
		return "<retract xmlns='urn:xmpp:message-retract:1' id='" + id + "'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/><body>/me retracted a message</body>"
	}
	sidB1 := sidRe.FindStringSubmatch(say(b, "b1", "<body>oops, wrong room</body>"))[1]
	say(b, "b2", "<body>also a mistake</body><origin-id xmlns='urn:xmpp:sid:0' id='o-b2'/>")
	sidA1 := sidRe.FindStringSubmatch(say(a, "a1", "<body>alice stays</body>"))[1]
	say(b, "r1", retract(sidB1))  // by stanza-id
	say(b, "r2", retract("o-b2")) // by the client's own id
	say(b, "r3", retract(sidA1))  // someone else's: only a message

	c := e.Bind("carol", "pc")
	c.Send(join("Carol", "j3"))
	c.C.Wait(t, "<subject/>")
	got := strings.Join(c.C.Got(), "\n")
	for _, gone := range []string{"wrong room", "also a mistake"} {
		if strings.Contains(got, gone) {
			t.Fatalf("history still has %q:\n%s", gone, got)
		}
	}
	if !strings.Contains(got, "alice stays") {
		t.Fatalf("bob's retraction took alice's message:\n%s", got)
	}
	c.C.Wait(t, "id='b1'", "<retracted xmlns='urn:xmpp:message-retract:1' stamp='", "id='r1'/>")
	c.C.Wait(t, "id='b2'", "<origin-id xmlns='urn:xmpp:sid:0' id='o-b2'/>", "id='r2'/>")
	c.C.Wait(t, "id='r3'", "/me retracted a message") // the retractions are history too
}

// TestRoomListPaging: XEP-0045 §6.3 with XEP-0059 on a service with more public rooms than
// one listing holds: without <set/> the first 250 rooms in JID order and a <set/> with
// the count; a client pages forward with after, backward with before, and reads the count
// alone with max 0.
func TestRoomListPaging(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*muc.Config); ok {
				c.MaxRoomsPerUser = 1000 // alice makes them all
			}
			return nil
		}
	})
	a := e.Bind("alice", "pc")
	const n = 260
	for i := range n {
		r := "r" + strconv.Itoa(1000+i) + "@conference.example.org"
		id := strconv.Itoa(i)
		a.Send("<presence to='" + r + "/Alice' id='j" + id + "'>" + joinX + "</presence>")
		a.C.Wait(t, "id='j"+id+"'", "status code='201'")
		a.Send("<iq type='set' to='" + r + "' id='c" + id + "'>" + owner + submit + "</query></iq>")
		a.C.Wait(t, "id='c"+id+"'", "type='result'")
	}
	b := e.Bind("bob", "pc")
	list := func(id, set string) string {
		t.Helper()
		b.Send("<iq type='get' to='conference.example.org' id='" + id + "'><query xmlns='http://jabber.org/protocol/disco#items'>" + set + "</query></iq>")
		return b.C.Wait(t, "id='"+id+"'")
	}
	items := regexp.MustCompile(`<item jid='r(\d+)@`)
	rooms := func(got string) []string {
		var out []string
		for _, m := range items.FindAllStringSubmatch(got, -1) {
			out = append(out, m[1])
		}
		return out
	}
	const rsm = "http://jabber.org/protocol/rsm"
	got := list("l0", "")
	if r := rooms(got); len(r) != 250 || r[0] != "1000" || r[249] != "1249" ||
		!strings.Contains(got, "<set xmlns='"+rsm+"'><first index='0'>r1000@conference.example.org</first><last>r1249@conference.example.org</last><count>260</count></set>") {
		t.Fatalf("first listing (%d rooms): %s", len(r), got)
	}
	got = list("l1", "<set xmlns='"+rsm+"'><max>20</max><after>r1249@conference.example.org</after></set>")
	if r := rooms(got); len(r) != 10 || r[0] != "1250" || !strings.Contains(got, "<first index='250'>") {
		t.Fatalf("after: %v %s", r, got)
	}
	got = list("l2", "<set xmlns='"+rsm+"'><max>5</max><before>r1010@conference.example.org</before></set>")
	if r := rooms(got); !slices.Equal(r, []string{"1005", "1006", "1007", "1008", "1009"}) {
		t.Fatalf("before: %v %s", r, got)
	}
	got = list("l3", "<set xmlns='"+rsm+"'><max>0</max></set>")
	if r := rooms(got); len(r) != 0 || !strings.Contains(got, "<set xmlns='"+rsm+"'><count>260</count></set>") {
		t.Fatalf("count: %s", got)
	}
	if got = list("l4", "<set xmlns='"+rsm+"'><max>many</max></set>"); !strings.Contains(got, "bad-request") {
		t.Fatalf("bad max: %s", got)
	}
}

// TestRoomVCard: XEP-0486. An owner sets the room's vCard (its avatar); occupants are told
// with status 104; anyone, joined or not, sees the photo's SHA-1 in the room's
// muc#roominfo form and fetches the vCard; others may not set it; a vCard too large or
// with a photo that is not base64 is refused; an empty vCard removes the avatar. The
// service advertises vcard-temp.
func TestRoomVCard(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	const photo = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
	raw, _ := base64.StdEncoding.DecodeString(photo)
	sum := sha1.Sum(raw)
	hash := hex.EncodeToString(sum[:])
	card := "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>\n" + photo[:40] + "\n" + photo[40:] + "</BINVAL></PHOTO></vCard>"

	b.Send("<iq type='get' to='conference.example.org' id='s1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	b.C.Wait(t, "id='s1'", "<feature var='vcard-temp'/>")
	b.Send("<iq type='get' to='" + room + "' id='g0'><vCard xmlns='vcard-temp'/></iq>")
	b.C.Wait(t, "id='g0'", "type='result'", "<vCard xmlns='vcard-temp'/>")

	b.Send("<iq type='set' to='" + room + "' id='v0'>" + card + "</iq>")
	b.C.Wait(t, "id='v0'", "type='error'", "<forbidden")
	a.Send("<iq type='set' to='" + room + "' id='v1'>" + card + "</iq>")
	a.C.Wait(t, "id='v1'", "type='result'")
	a.C.Wait(t, "type='groupchat'", "status code='104'")

	b.Send("<iq type='get' to='" + room + "' id='i1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	info := b.C.Wait(t, "id='i1'", "<feature var='vcard-temp'/>")
	if want := "<field var='muc#roominfo_avatarhash' type='text-multi' label='Avatar hash'><value>" + hash + "</value></field>"; !strings.Contains(info, want) {
		t.Fatalf("room info lacks %s: %s", want, info)
	}
	b.Send("<iq type='get' to='" + room + "' id='g1'><vCard xmlns='vcard-temp'/></iq>")
	b.C.Wait(t, "id='g1'", "type='result'", "<BINVAL>", photo[40:])

	// Refused, and the avatar stays.
	a.Send("<iq type='set' to='" + room + "' id='v2'><vCard xmlns='vcard-temp'><PHOTO><BINVAL>not base64!</BINVAL></PHOTO></vCard></iq>")
	a.C.Wait(t, "id='v2'", "type='error'", "<bad-request")
	a.Send("<iq type='set' to='" + room + "' id='v3'><vCard xmlns='vcard-temp'><DESC>" + strings.Repeat("x", muc.DefaultMaxVCard) + "</DESC></vCard></iq>")
	a.C.Wait(t, "id='v3'", "type='error'", "<not-acceptable")
	b.Send("<iq type='get' to='" + room + "' id='i2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	b.C.Wait(t, "id='i2'", hash)

	// An empty vCard removes the avatar: the occupants are told, and the hash goes.
	a.C.Reset()
	a.Send("<iq type='set' to='" + room + "' id='v4'><vCard xmlns='vcard-temp'/></iq>")
	a.C.Wait(t, "id='v4'", "type='result'")
	a.C.Wait(t, "status code='104'")
	b.Send("<iq type='get' to='" + room + "' id='i3'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got := b.C.Wait(t, "id='i3'"); strings.Contains(got, "avatarhash") {
		t.Fatalf("hash after removal: %s", got)
	}
	b.Send("<iq type='get' to='" + room + "' id='g2'><vCard xmlns='vcard-temp'/></iq>")
	b.C.Wait(t, "id='g2'", "type='result'", "<vCard xmlns='vcard-temp'/>")
}

// TestReconfigure: a reload's limits take over at once (the room of one is full for the
// next joiner), and a bad table is refused whole.
func TestReconfigure(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	instantRoom(t, e)
	with := func(c muc.Config) module.Reconfig {
		return module.Reconfig{Decode: func(v any) error { *v.(*muc.Config) = c; return nil }, Domains: []string{"example.org"}}
	}
	if _, ok, err := e.R.Reconfigure("muc", with(muc.Config{PresenceInterval: "soon"})); err == nil || ok {
		t.Fatalf("a bad presence_interval: %v, %v", ok, err)
	}
	if _, ok, err := e.R.Reconfigure("muc", with(muc.Config{DefaultOccupants: 20, MaxOccupants: 10})); err == nil || ok {
		t.Fatalf("default above max: %v, %v", ok, err)
	}
	b := e.Bind("bob", "pc")
	apply, ok, err := e.R.Reconfigure("muc", with(muc.Config{MaxOccupants: 1}))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	apply()
	b.Send(join("Bob", "jb"))
	b.C.Wait(t, "id='jb'", "type='error'", "the room is full")
	apply, _, _ = e.R.Reconfigure("muc", with(muc.Config{}))
	apply()
	b.Send(join("Bob", "jb2"))
	b.C.Wait(t, "id='jb2'", "status code='110'")
}

// TestHostSettings: a host's table sets the limits of its conference.<host> only; a
// table that leaves the server-wide keys alone is taken, one that changes them is not.
func TestHostSettings(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	instantRoom(t, e)
	with := func(host string, c muc.Config) (func(), error) {
		return e.HostSettings("muc", host, func(v any) { *v.(*muc.Config) = c })
	}
	if _, err := with("example.org", muc.Config{Subdomain: "rooms"}); err == nil || !strings.Contains(err.Error(), "server-wide") {
		t.Fatalf("a host's own subdomain: %v", err)
	}
	b := e.Bind("bob", "pc")
	apply, err := with("example.org", muc.Config{MaxOccupants: 1})
	if err != nil {
		t.Fatal(err)
	}
	apply()
	b.Send(join("Bob", "jb"))
	b.C.Wait(t, "id='jb'", "type='error'", "the room is full")
	apply, err = with("other.example", muc.Config{MaxOccupants: 1})
	if err != nil {
		t.Fatal(err)
	}
	apply()
	b.Send(join("Bob", "jb2"))
	b.C.Wait(t, "id='jb2'", "status code='110'")
}

// TestCaptchaRoom: in a CAPTCHA-protected room (ejabberd's captcha_protected field), a user
// without an affiliation who joins gets the challenge message instead of the room: the
// XEP-0158 form (from the join's occupant JID, its presence id as sid) and the image as
// XEP-0231 data whose cid is its SHA-1. A wrong answer is not-acceptable and refuses the
// waiting join with not-authorized; a right one lets the join in without another presence;
// a member is not asked; a spent or unknown challenge is service-unavailable; a user gets
// ten a minute.
func TestCaptchaRoom(t *testing.T) {
	var mu sync.Mutex
	answers := map[string]string{}
	muc.OnCaptcha(func(id, text string) { mu.Lock(); answers[id] = text; mu.Unlock() })
	t.Cleanup(func() { muc.OnCaptcha(nil) })
	// A clock that stands still: the ten-a-minute count below must not meet a new minute.
	at := time.Date(2026, 12, 6, 12, 0, 30, 0, time.UTC)
	e := routertest.New(t, []string{"alice", "bob", "carol"}, func(o *router.Options) { o.Now = func() time.Time { return at } })
	a := instantRoom(t, e)
	configure(t, a, "c1", map[string]string{"captcha_protected": "1"})
	a.Send("<iq type='get' to='" + room + "' id='cfg'>" + owner + "</query></iq>")
	a.C.Wait(t, "id='cfg'", "<field var='captcha_protected' type='boolean'", "<value>1</value>")

	b := e.Bind("bob", "pc")
	challenge := func(id string) (string, string) {
		t.Helper()
		b.C.Reset()
		b.Send(join("Bob", id))
		msg := b.C.Wait(t, "<captcha xmlns='urn:xmpp:captcha'>")
		for _, want := range []string{"from='" + room + "'", "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:captcha</value>",
			"<field var='from' type='hidden'><value>" + room + "/Bob</value>", "<field var='sid' type='hidden'><value>" + id + "</value>",
			"<field var='ocr' type='text-single'", "<uri type='image/png'>cid:sha1+", "<data xmlns='urn:xmpp:bob'"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("the challenge lacks %q: %s", want, msg)
			}
		}
		ch := regexp.MustCompile(`<field var='challenge' type='hidden'><required/><value>([0-9a-f]+)</value>`).FindStringSubmatch(msg)
		if ch == nil {
			t.Fatalf("no challenge id: %s", msg)
		}
		m := regexp.MustCompile(`<data xmlns='urn:xmpp:bob' cid='sha1\+([0-9a-f]+)@bob.xmpp.org'[^>]*>([^<]+)</data>`).FindStringSubmatch(msg)
		png, err := base64.StdEncoding.DecodeString(m[2])
		if sum := sha1.Sum(png); err != nil || hex.EncodeToString(sum[:]) != m[1] {
			t.Fatalf("the image does not match its cid: %v", err)
		}
		if index(b.C.Got(), "status code='110'") >= 0 {
			t.Fatal("bob entered before answering")
		}
		mu.Lock()
		defer mu.Unlock()
		return ch[1], answers[ch[1]]
	}
	answer := func(iq, chID, text string) {
		b.Send("<iq type='set' to='" + room + "' id='" + iq + "'><captcha xmlns='urn:xmpp:captcha'><x xmlns='jabber:x:data' type='submit'>" +
			"<field var='FORM_TYPE'><value>urn:xmpp:captcha</value></field><field var='challenge'><value>" + chID + "</value></field>" +
			"<field var='ocr'><value>" + text + "</value></field></x></captcha></iq>")
	}

	id, text := challenge("j1")
	answer("a1", id, "WRONG1")
	b.C.Wait(t, "id='a1'", "type='error'", "<not-acceptable")
	b.C.Wait(t, "id='j1'", "type='error'", "<not-authorized")
	answer("a2", id, text) // spent
	b.C.Wait(t, "id='a2'", "type='error'", "<service-unavailable")

	id, text = challenge("j2")
	answer("a3", id, text)
	b.C.Wait(t, "id='a3'", "type='result'")
	b.C.Wait(t, "id='j2'", "status code='110'", "from='"+room+"/Bob'")
	a.C.Wait(t, "from='"+room+"/Bob'")

	// Ten CAPTCHAs a minute for one user: bob's phone gets the other eight, then a wait.
	ph := e.Bind("bob", "phone")
	for i := 3; i <= 10; i++ {
		id := "p" + strconv.Itoa(i)
		ph.Send(join("Bob2", id))
		ph.C.Wait(t, "<captcha xmlns='urn:xmpp:captcha'>", "<value>"+id+"</value>")
	}
	ph.Send(join("Bob2", "p11"))
	ph.C.Wait(t, "id='p11'", "type='error'", "<error type='wait'", "<resource-constraint")

	// A member enters at once.
	a.Send("<iq type='set' to='" + room + "' id='m1'>" + admin + "<item jid='carol@example.org' affiliation='member'/></query></iq>")
	a.C.Wait(t, "id='m1'", "type='result'")
	c := e.Bind("carol", "pc")
	c.Send(join("Carol", "j3"))
	c.C.Wait(t, "id='j3'", "status code='110'")
	if strings.Contains(c.C.All(), "urn:xmpp:captcha") {
		t.Fatal("a member was asked a CAPTCHA")
	}
}

// TestChannelSearch: XEP-0433 on the service: the form, a keyword search in name,
// description and address, the minimum of occupants, the sort keys and paging, the
// XEP's errors, and rooms that are private or locked left out.
func TestChannelSearch(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := instantRoom(t, e)
	configure(t, a, "c1", map[string]string{"muc#roomconfig_roomname": "XMPP Talk", "muc#roomconfig_roomdesc": "Servers and clients",
		"muc#roomconfig_lang": "en"})
	const other = "lounge@conference.example.org"
	b := e.Bind("bob", "pc")
	createRoom(t, b, other, "Bob", "l1", "l2", map[string]string{"muc#roomconfig_roomname": "Lounge", "muc#roomconfig_membersonly": "1"})
	b.Send(join("Bobby", "l3")) // bob in the first room too: two there
	b.C.Wait(t, "id='l3'", "status code='110'")
	const hidden = "hidden@conference.example.org"
	c := e.Bind("carol", "pc")
	createRoom(t, c, hidden, "C", "h1", "h2", map[string]string{"muc#roomconfig_roomname": "XMPP secrets", "muc#roomconfig_publicroom": "0"})

	n := 0
	search := func(set string, fields ...string) string {
		t.Helper()
		n++
		id := "s" + strconv.Itoa(n)
		var x strings.Builder
		x.WriteString("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:channel-search:0:search-params</value></field>")
		for i := 0; i+1 < len(fields); i += 2 {
			x.WriteString("<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>")
		}
		x.WriteString("</x>")
		a.Send("<iq type='get' to='conference.example.org' id='" + id + "'><search xmlns='urn:xmpp:channel-search:0:search'>" + set + x.String() + "</search></iq>")
		return a.C.Wait(t, "id='"+id+"'")
	}
	a.Send("<iq type='get' to='conference.example.org' id='f'><search xmlns='urn:xmpp:channel-search:0:search'/></iq>")
	form := a.C.Wait(t, "id='f'", "type='result'")
	for _, v := range []string{"q", "all", "sinname", "sindescription", "sinaddress", "min_users", "types", "key"} {
		if !strings.Contains(form, "var='"+v+"'") {
			t.Fatalf("the form lacks %s: %s", v, form)
		}
	}
	a.Send("<iq type='get' to='conference.example.org' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='d'", "<feature var='urn:xmpp:channel-search:0:search'/>")

	got := search("", "q", "xmpp")
	for _, want := range []string{"<result xmlns='urn:xmpp:channel-search:0:search'>", "<item address='" + room + "'>", "<name>XMPP Talk</name>",
		"<description>Servers and clients</description>", "<language>en</language>", "<nusers>2</nusers>",
		"<service-type>xep-0045</service-type>", "<is-open>true</is-open>", "<anonymity-mode>muc_semianonymous</anonymity-mode>"} {
		if !strings.Contains(got, want) {
			t.Fatalf("search xmpp lacks %q: %s", want, got)
		}
	}
	if strings.Contains(got, "hidden@") || strings.Contains(got, "lounge@") {
		t.Fatalf("search xmpp found a private or unmatched room: %s", got)
	}
	if got := search("", "q", "servers", "sindescription", "false"); strings.Contains(got, "<item") {
		t.Fatalf("a description match with sindescription off: %s", got)
	}
	if got := search("", "q", "lounge"); !strings.Contains(got, "<item address='"+other+"'>") || !strings.Contains(got, "<is-open>false</is-open>") {
		t.Fatalf("search lounge (members-only): %s", got)
	}
	if got := search("", "all", "true", "min_users", "2"); strings.Count(got, "<item ") != 1 {
		t.Fatalf("min_users 2: %s", got)
	}
	// Sorted by occupants (the default), then by address, one per page.
	got = search("<set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set>", "all", "true")
	if !strings.Contains(got, "<item address='"+room+"'>") || !strings.Contains(got, "<count>2</count>") {
		t.Fatalf("the first page by occupants: %s", got)
	}
	got = search("<set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set>", "all", "true", "key", "{urn:xmpp:channel-search:0:order}address")
	if !strings.Contains(got, "<item address='"+other+"'>") {
		t.Fatalf("the first page by address: %s", got)
	}
	got = search("<set xmlns='http://jabber.org/protocol/rsm'><max>1</max><after>"+other+"</after></set>", "all", "true", "key", "{urn:xmpp:channel-search:0:order}address")
	if !strings.Contains(got, "<item address='"+room+"'>") {
		t.Fatalf("the second page by address: %s", got)
	}
	for _, tc := range []struct {
		fields []string
		want   []string
	}{
		{[]string{"all", "true", "q", "x"}, []string{"<not-allowed", "<conflicting-fields"}},
		{[]string{"sinname", "true"}, []string{"<bad-request", "<no-search-conditions"}},
		{[]string{"q", "x", "key", "{urn:example}stars"}, []string{"<feature-not-implemented", "<invalid-sort-key"}},
		{[]string{"q", "x", "types", "xep-0369"}, []string{"<result xmlns='urn:xmpp:channel-search:0:search'/>"}},
	} {
		if got := search("", tc.fields...); !strings.Contains(got, tc.want[0]) || !strings.Contains(got, tc.want[len(tc.want)-1]) {
			t.Fatalf("%v: %s", tc.fields, got)
		}
	}
}

// TestServiceAdmins: [modules.muc] admins are owners of every room (XEP-0045 §5.1): one
// enters a members-only room as owner, and destroys a room someone else made; a wrong
// entry fails the configuration.
func TestServiceAdmins(t *testing.T) {
	cfg, err := config.Parse([]byte(`domains = ["example.org"]
[modules.muc]
admins = ["carol@example.org"]
`), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	e := routertest.New(t, []string{"alice", "bob", "carol"}, func(o *router.Options) { o.ModuleConfig = cfg.ModuleConfig })
	a := instantRoom(t, e)
	configure(t, a, "c1", map[string]string{"muc#roomconfig_membersonly": "1"})
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "j1"))
	b.C.Wait(t, "id='j1'", "type='error'", "<registration-required")
	c := e.Bind("carol", "pc")
	c.Send(join("Carol", "j2"))
	c.C.Wait(t, "id='j2'", "status code='110'", "affiliation='owner'", "role='moderator'")
	// A room admin cannot ban a service administrator, who ranks as an owner.
	a.Send("<iq type='set' to='" + room + "' id='adm'>" + admin + "<item affiliation='admin' jid='bob@example.org'/></query></iq>")
	a.C.Wait(t, "id='adm'", "type='result'")
	b.Send(join("Bob", "j1b"))
	b.C.Wait(t, "id='j1b'", "status code='110'")
	b.Send("<iq type='set' to='" + room + "' id='ban'>" + admin + "<item affiliation='outcast' jid='carol@example.org'/></query></iq>")
	b.C.Wait(t, "id='ban'", "type='error'", "not-allowed")
	c.C.Never(t, "code='301'")
	c.Send("<iq type='set' to='" + room + "' id='d1'>" + owner + "<destroy><reason>spam</reason></destroy></query></iq>")
	c.C.Wait(t, "id='d1'", "type='result'")
	a.C.Wait(t, "type='unavailable'", "<destroy", "<reason>spam</reason>")

	bad, err := config.Parse([]byte("domains = [\"example.org\"]\n[modules.muc]\nadmins = [\"example.org\"]\n"), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := router.New(router.Options{Store: e.Store, Domains: []string{"example.org"}, ModuleConfig: bad.ModuleConfig}); err == nil ||
		!strings.Contains(err.Error(), "admins") {
		t.Fatalf("admins = [a domain]: %v", err)
	}
}

// TestCreateRestricted: create = "admins" leaves room creation to the service's
// administrators; create_hosts leaves it to the users of the hosts listed (a guests' host
// left out), administrators always included; a bad host name fails the start.
func TestCreateRestricted(t *testing.T) {
	for _, tc := range []struct{ conf, who string }{
		{"create = \"admins\"", "carol"},
		{"create_hosts = [\"other.example\"]", "carol"},
		{"create_hosts = [\"Example.ORG\"]", "alice"},
	} {
		cfg, err := config.Parse([]byte("domains = [\"example.org\", \"other.example\"]\n[modules.muc]\nadmins = [\"carol@example.org\"]\n"+tc.conf+"\n"), "/x/vireo.toml")
		if err != nil {
			t.Fatal(err)
		}
		e := routertest.New(t, []string{"alice", "carol"}, func(o *router.Options) { o.ModuleConfig = cfg.ModuleConfig })
		if tc.who != "alice" {
			a := e.Bind("alice", "pc")
			a.Send(join("Alice", "j1"))
			a.C.Wait(t, "id='j1'", "type='error'", "<not-allowed", "room creation is restricted")
		}
		w := e.Bind(tc.who, "pc")
		w.Send(join("Who", "j2"))
		w.C.Wait(t, "id='j2'", "status code='201'", "affiliation='owner'")
	}
	bad, err := config.Parse([]byte("domains = [\"example.org\"]\n[modules.muc]\ncreate_hosts = [\"a b\"]\n"), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := router.New(router.Options{Store: routertest.New(t, nil, nil).Store, Domains: []string{"example.org"}, ModuleConfig: bad.ModuleConfig}); err == nil ||
		!strings.Contains(err.Error(), "create_hosts") {
		t.Fatalf("create_hosts = [a bad name]: %v", err)
	}
}

// TestSessionsPerNick: one user's sessions under one nickname (§7.2.10) are bounded as an
// account's resources are: a remote server claiming ever more resources for its user is
// refused past the bound, rather than growing the occupant for as long as the room lives.
func TestSessionsPerNick(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	instantRoom(t, e)
	rl := &routertest.Remote{}
	e.R.SetRemote(rl)
	const tries = 40
	for i := range tries {
		from, _ := jid.Parse("mallory@remote.example/r" + strconv.Itoa(i))
		raw := "<presence from='" + from.String() + "' to='" + room + "/Mal' id='m" + strconv.Itoa(i) + "'><x xmlns='" + nsMUC + "'/></presence>"
		if !e.R.SubmitFrom(from, []byte(raw)) {
			t.Fatal("submit refused")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rl.Matching("status code='110'"))+len(rl.Matching("type='error'")) < tries && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if in, out := len(rl.Matching("status code='110'")), len(rl.Matching("type='error'", "too many of your sessions")); in != 32 || out != tries-32 {
		t.Fatalf("%d sessions in, %d refused; want 32 and %d", in, out, tries-32)
	}
}

// TestAccountRemoved: removing an account drops its affiliations to persistent rooms and
// the nickname it registered, but not a ban; an account made again with the name is a
// stranger to the room.
func TestAccountRemoved(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol", "dave"}, nil)
	a := instantRoom(t, e)
	configure(t, a, "c1", map[string]string{"muc#roomconfig_persistentroom": "1"})
	set := func(id, item string) {
		t.Helper()
		a.Send("<iq type='set' to='" + room + "' id='" + id + "'>" + admin + item + "</query></iq>")
		a.C.Wait(t, "id='"+id+"'", "type='result'")
	}
	set("s1", "<item affiliation='owner' jid='bob@example.org'/>")
	set("s2", "<item affiliation='member' jid='carol@example.org' nick='Carol'/>")
	set("s3", "<item affiliation='outcast' jid='dave@example.org'/>")
	for _, u := range []string{"bob", "carol", "dave"} {
		if err := e.Store.Accounts().Delete(u + "@example.org"); err != nil {
			t.Fatal(err)
		}
	}
	list := func(aff string) string {
		for range 300 {
			a.C.Reset()
			a.Send("<iq type='get' to='" + room + "' id='l'>" + admin + "<item affiliation='" + aff + "'/></query></iq>")
			got := a.C.Wait(t, "id='l'", "type='result'")
			if !strings.Contains(got, "bob@") && !strings.Contains(got, "carol@") {
				return got
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("the %s list still has a removed account", aff)
		return ""
	}
	list("owner")
	list("member")
	if got := list("outcast"); !strings.Contains(got, "jid='dave@example.org'") {
		t.Fatalf("the ban went with the account: %s", got)
	}
	e.Store.Accounts().Create(store.Account{User: "carol@example.org"})
	c := e.Bind("carol", "pc")
	c.Send(join("Carol", "j2"))
	c.C.Wait(t, "id='j2'", "status code='110'", "affiliation='none'")
}

// TestRoomsPerUser: one user may have max_rooms_per_user rooms of their making at a time,
// and the service max_rooms in all; a room that ends frees its creator's place. The
// service's admins are bound by max_rooms only.
func TestRoomsPerUser(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "root"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*muc.Config); ok {
				c.MaxRooms, c.MaxRoomsPerUser, c.Admins = 5, 2, []string{"root@example.org"}
			}
			return nil
		}
	})
	enter := func(s *routertest.Sess, name, id string) string {
		t.Helper()
		s.Send("<presence to='" + name + "@conference.example.org/me' id='" + id + "'>" + joinX + "</presence>")
		return s.C.Wait(t, "id='"+id+"'")
	}
	a, b, r := e.Bind("alice", "pc"), e.Bind("bob", "pc"), e.Bind("root", "pc")
	for i, name := range []string{"a1", "a2"} {
		if got := enter(a, name, "j"+strconv.Itoa(i)); !strings.Contains(got, "status code='201'") {
			t.Fatalf("alice's room %s: %s", name, got)
		}
	}
	got := enter(a, "a3", "j3")
	if !strings.Contains(got, "type='error'") || !strings.Contains(got, "<resource-constraint") || !strings.Contains(got, "you have created 2 rooms") {
		t.Fatalf("alice's third room: %s", got)
	}
	// Joining an existing room is no creation.
	configureRoom(t, a, "a1@conference.example.org", "inst", map[string]string{"muc#roomconfig_persistentroom": "1"})
	// The creator is stored with a persistent room, for the bound after a restart.
	if v, err := e.Store.Table("muc").Get([]byte("ca1@conference.example.org")); err != nil || !strings.Contains(string(v), `"creator":"alice@example.org"`) {
		t.Fatalf("stored configuration: %s %v", v, err)
	}
	b.Send("<presence to='a1@conference.example.org/bob' id='b0'>" + joinX + "</presence>")
	if got := b.C.Wait(t, "id='b0'"); !strings.Contains(got, "status code='110'") || strings.Contains(got, "type='error'") {
		t.Fatalf("bob joining a1: %s", got)
	}
	for i, name := range []string{"r1", "r2", "r3"} {
		if got := enter(r, name, "r"+strconv.Itoa(i)); !strings.Contains(got, "status code='201'") {
			t.Fatalf("the admin's room %s: %s", name, got)
		}
	}
	got = enter(b, "b1", "b1")
	if !strings.Contains(got, "<resource-constraint") || !strings.Contains(got, "too many rooms") {
		t.Fatalf("a sixth room: %s", got)
	}
	// a2 ends when alice leaves it (temporary): her place and the service's come back.
	a.Send("<presence to='a2@conference.example.org/me' type='unavailable'/>")
	a.C.Wait(t, "from='a2@conference.example.org/me'", "type='unavailable'")
	if got := enter(a, "a4", "j4"); !strings.Contains(got, "status code='201'") {
		t.Fatalf("alice's room after one ended: %s", got)
	}
}

// TestConfigFormLists: an occupant the configuration form's admin list names gets the
// moderator role it brings and the room hears of it (§10.2); lists that together leave no
// owner are refused with conflict (§10), and change nothing.
func TestConfigFormLists(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "jb"))
	b.C.Wait(t, "id='jb'", "role='participant'")
	a.C.Wait(t, "from='"+room+"/Bob'")
	a.C.Reset()
	configure(t, a, "c1", map[string]string{"muc#roomconfig_roomadmins": "bob@example.org"})
	b.C.Wait(t, "from='"+room+"/Bob'", "affiliation='admin'", "role='moderator'", "status code='110'")
	a.C.Wait(t, "from='"+room+"/Bob'", "affiliation='admin'", "role='moderator'")

	// Both lists at once, naming alice, the only owner, an admin: no owner would be left.
	a.C.Reset()
	a.Send("<iq type='set' to='" + room + "' id='c2'>" + owner + "<x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE'><value>" + nsMUC + "#roomconfig</value></field>" +
		"<field var='muc#roomconfig_roomowners'><value>alice@example.org</value></field>" +
		"<field var='muc#roomconfig_roomadmins'><value>alice@example.org</value></field></x></query></iq>")
	a.C.Wait(t, "id='c2'", "type='error'", "<conflict")
	a.Send("<iq type='get' to='" + room + "' id='l'>" + admin + "<item affiliation='owner'/></query></iq>")
	a.C.Wait(t, "id='l'", "jid='alice@example.org'")
}

// TestDomainBanSparesAffiliated: banning a whole domain (§9.1) removes its occupants
// without an affiliation of their own; an admin (and the owner banning) from it stay, as
// their own affiliation lets them back in anyway.
func TestDomainBanSparesAffiliated(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := instantRoom(t, e)
	a.Send("<iq type='set' to='" + room + "' id='ad'>" + admin + "<item affiliation='admin' jid='bob@example.org'/></query></iq>")
	a.C.Wait(t, "id='ad'", "type='result'")
	b, c := e.Bind("bob", "pc"), e.Bind("carol", "pc")
	b.Send(join("Bob", "jb"))
	b.C.Wait(t, "id='jb'", "status code='110'")
	c.Send(join("Carol", "jc"))
	c.C.Wait(t, "id='jc'", "status code='110'")
	b.C.Reset()
	a.Send("<iq type='set' to='" + room + "' id='ban'>" + admin + "<item affiliation='outcast' jid='example.org'/></query></iq>")
	c.C.Wait(t, "type='unavailable'", "status code='301'")
	a.C.Wait(t, "id='ban'", "type='result'")
	b.C.Never(t, "from='"+room+"/Bob' type='unavailable'")
	a.C.Never(t, "from='"+room+"/Alice' type='unavailable'")
}

// TestAdminResultBeforePresence: the moderator who changes a role or an affiliation gets
// the IQ result before the room's new presence (§8.4, §9.3).
func TestAdminResultBeforePresence(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "jb"))
	b.C.Wait(t, "id='jb'", "status code='110'")
	for _, tc := range []struct{ id, item string }{
		{"m1", "<item nick='Bob' role='moderator'/>"},
		{"m2", "<item affiliation='member' jid='bob@example.org'/>"},
	} {
		a.C.Reset()
		a.Send("<iq type='set' to='" + room + "' id='" + tc.id + "'>" + admin + tc.item + "</query></iq>")
		a.C.Wait(t, "id='"+tc.id+"'", "type='result'")
		a.C.Wait(t, "from='"+room+"/Bob'")
		got := a.C.All()
		if r, p := strings.Index(got, "id='"+tc.id+"'"), strings.Index(got, "from='"+room+"/Bob'"); r < 0 || p < 0 || r > p {
			t.Errorf("%s: the presence came before the result:\n%s", tc.id, got)
		}
	}
}

// TestReservedNickRules: a nickname given with an affiliation is a reservation (§7.12):
// an admin cannot change an owner's, and nobody can take one reserved by another, so
// that no one enters a room under its owner's name.
func TestReservedNickRules(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := instantRoom(t, e)
	a.Send("<iq type='set' to='" + room + "' id='r1'>" + admin + "<item affiliation='owner' jid='alice@example.org' nick='Boss'/>" +
		"<item affiliation='admin' jid='carol@example.org'/></query></iq>")
	a.C.Wait(t, "id='r1'", "type='result'")
	c := e.Bind("carol", "pc")
	c.Send("<iq type='set' to='" + room + "' id='r2'>" + admin + "<item affiliation='owner' jid='alice@example.org' nick='x'/></query></iq>")
	c.C.Wait(t, "id='r2'", "type='error'", "not-allowed")
	c.Send("<iq type='set' to='" + room + "' id='r3'>" + admin + "<item affiliation='member' jid='bob@example.org' nick='Boss'/></query></iq>")
	c.C.Wait(t, "id='r3'", "type='error'", "conflict")
	b := e.Bind("bob", "pc")
	b.Send(join("Boss", "jb"))
	b.C.Wait(t, "id='jb'", "type='error'", "conflict")
}
