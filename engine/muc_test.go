package engine_test

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// XEP-0045 through the whole server: raw clients over TLS, the router, the muc module and
// the store.

const (
	mucRoom  = "coven@conference.localhost"
	mucNS    = "http://jabber.org/protocol/muc"
	mucOwner = "<query xmlns='" + mucNS + "#owner'>"
	mucAdmin = "<query xmlns='" + mucNS + "#admin'>"
)

func mucJoin(room, nick, id string, extra ...string) string {
	return "<presence to='" + room + "/" + nick + "' id='" + id + "'><x xmlns='" + mucNS + "'>" +
		strings.Join(extra, "") + "</x></presence>"
}

// mucConfig is an owner's configuration submission of fields (var, value pairs).
func mucConfig(room, id string, kv ...string) string {
	var b strings.Builder
	b.WriteString("<iq type='set' to='" + room + "' id='" + id + "'>" + mucOwner + "<x xmlns='jabber:x:data' type='submit'>")
	b.WriteString("<field var='FORM_TYPE'><value>" + mucNS + "#roomconfig</value></field>")
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString("<field var='" + kv[i] + "'><value>" + kv[i+1] + "</value></field>")
	}
	b.WriteString("</x></query></iq>")
	return b.String()
}

// stanzaWith returns the stanza (message, presence or iq) in got that holds every sub.
func stanzaWith(got string, subs ...string) (string, int) {
	for i := 0; i < len(got); {
		j := strings.Index(got[i:], "<")
		if j < 0 {
			break
		}
		start := i + j
		var end int
		for _, name := range []string{"message", "presence", "iq"} {
			if strings.HasPrefix(got[start:], "<"+name) {
				if k := strings.Index(got[start:], "</"+name+">"); k >= 0 {
					end = start + k + len(name) + 3
				}
				if k := strings.Index(got[start:], ">"); k > 0 && got[start+k-1] == '/' && (end == 0 || start+k+1 < end) &&
					!strings.Contains(got[start:start+k], "><") {
					end = start + k + 1
				}
				break
			}
		}
		if end == 0 {
			i = start + 1
			continue
		}
		s := got[start:end]
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(s, sub)
		}
		if ok {
			return s, start
		}
		i = end
	}
	return "", -1
}

// expectStanza reads until a stanza holding every sub has arrived and returns it.
func expectStanza(t *testing.T, r *vireotest.RawConn, subs ...string) string {
	t.Helper()
	var got strings.Builder
	for {
		got.WriteString(r.Expect(">"))
		if s, _ := stanzaWith(got.String(), subs...); s != "" {
			return s
		}
	}
}

// mucLogin logs user in with resource res and sends initial presence.
func mucLogin(t *testing.T, srv *vireotest.Server, user, res string) *vireotest.RawConn {
	t.Helper()
	c := srv.LoginPlain(t, user, "secret", res)
	c.Send("<presence/>")
	return c
}

// mucCreate creates room as user c (nick) and accepts the instant configuration.
func mucCreate(t *testing.T, c *vireotest.RawConn, room, nick string) {
	t.Helper()
	c.Send(mucJoin(room, nick, "create"))
	expectStanza(t, c, "id='create'", "<status code='110'/>", "<status code='201'/>", "affiliation='owner'", "role='moderator'")
	expectStanza(t, c, "<subject/>")
	c.Send("<iq type='set' to='" + room + "' id='instant'>" + mucOwner + "<x xmlns='jabber:x:data' type='submit'/></query></iq>")
	expectStanza(t, c, "id='instant'", "type='result'")
}

var mucSIDRe = regexp.MustCompile(`<stanza-id xmlns='urn:xmpp:sid:0' id='([^']+)' by='` + mucRoom + `'/>`)

// TestIntegrationMuc: an instant room, the join order of XEP-0045 §7.1, groupchat
// reflection with the room's stanza-id, a nickname conflict, a nick change (303), a kick
// (307), a ban (301) and destruction.
func TestIntegrationMuc(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true})
	for _, u := range []string{"alice", "bob", "carol"} {
		srv.AddUser(t, u, "secret")
	}
	alice := mucLogin(t, srv, "alice", "pc")
	mucCreate(t, alice, mucRoom, "Alice")

	// The service is in the server's disco#items.
	alice.Send("<iq type='get' id='items' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	expectStanza(t, alice, "id='items'", "<item jid='conference.localhost'")

	alice.Send("<message to='" + mucRoom + "' type='groupchat' id='h1'><body>before bob</body></message>")
	expectStanza(t, alice, "id='h1'", "<body>before bob</body>")

	bob := mucLogin(t, srv, "bob", "pc")
	bob.Send(mucJoin(mucRoom, "Bob", "jb"))
	got := bob.Expect("<subject/>")
	_, ia := stanzaWith(got, "from='"+mucRoom+"/Alice'", "affiliation='owner'", "<occupant-id")
	_, is := stanzaWith(got, "id='jb'", "from='"+mucRoom+"/Bob'", "<status code='110'/>")
	_, ih := stanzaWith(got, "<body>before bob</body>", "<delay xmlns='urn:xmpp:delay' from='"+mucRoom+"'")
	if ia < 0 || is < 0 || ih < 0 || !(ia < is && is < ih) {
		t.Fatalf("join order: occupants %d, self-presence %d, history %d (then the subject):\n%s", ia, is, ih, got)
	}
	expectStanza(t, alice, "from='"+mucRoom+"/Bob'", "jid='bob@localhost/pc'", "role='participant'")

	// Groupchat: reflected to the sender and delivered to everyone with one stanza-id.
	bob.Send("<message to='" + mucRoom + "' type='groupchat' id='g1'><body>hello all</body></message>")
	gb := expectStanza(t, bob, "id='g1'", "<body>hello all</body>")
	ga := expectStanza(t, alice, "id='g1'", "<body>hello all</body>")
	mb, ma := mucSIDRe.FindStringSubmatch(gb), mucSIDRe.FindStringSubmatch(ga)
	if mb == nil || ma == nil || ma[1] != mb[1] || !strings.Contains(ga, "from='"+mucRoom+"/Bob'") {
		t.Fatalf("reflection:\n%s\n%s", gb, ga)
	}

	// Nickname conflict (§7.2.9).
	carol := mucLogin(t, srv, "carol", "pc")
	carol.Send(mucJoin(mucRoom, "Bob", "jc"))
	expectStanza(t, carol, "id='jc'", "type='error'", "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>")

	// Nick change (§7.6).
	bob.Send("<presence to='" + mucRoom + "/Robert' id='nick'/>")
	expectStanza(t, alice, "from='"+mucRoom+"/Bob'", "type='unavailable'", "nick='Robert'", "<status code='303'/>")
	expectStanza(t, alice, "from='"+mucRoom+"/Robert'")
	expectStanza(t, bob, "from='"+mucRoom+"/Robert'", "<status code='110'/>")

	// Kick (§8.2).
	carol.Send(mucJoin(mucRoom, "Carol", "jc2"))
	expectStanza(t, carol, "<subject/>")
	alice.Send("<iq type='set' to='" + mucRoom + "' id='kick'>" + mucAdmin + "<item nick='Carol' role='none'><reason>test</reason></item></query></iq>")
	expectStanza(t, carol, "type='unavailable'", "<status code='307'/>", "<status code='110'/>", "<reason>test</reason>")
	expectStanza(t, alice, "id='kick'", "type='result'")
	expectStanza(t, bob, "from='"+mucRoom+"/Carol'", "type='unavailable'", "<status code='307'/>")

	// Ban (§9.1).
	alice.Send("<iq type='set' to='" + mucRoom + "' id='ban'>" + mucAdmin + "<item affiliation='outcast' jid='bob@localhost'/></query></iq>")
	expectStanza(t, bob, "type='unavailable'", "<status code='301'/>", "affiliation='outcast'")
	expectStanza(t, alice, "id='ban'", "type='result'")
	bob.Send(mucJoin(mucRoom, "Bob", "jb2"))
	expectStanza(t, bob, "id='jb2'", "type='error'", "<forbidden")

	// Destroy (§10.9).
	carol.Send(mucJoin(mucRoom, "Carol", "jc3"))
	expectStanza(t, carol, "<subject/>")
	alice.Send("<iq type='set' to='" + mucRoom + "' id='destroy'>" + mucOwner +
		"<destroy jid='heath@conference.localhost'><reason>moving</reason></destroy></query></iq>")
	expectStanza(t, carol, "type='unavailable'", "<destroy jid='heath@conference.localhost'><reason>moving</reason></destroy>")
	expectStanza(t, alice, "id='destroy'", "type='result'")
	carol.Send("<iq type='get' to='" + mucRoom + "' id='gone'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	expectStanza(t, carol, "id='gone'", "item-not-found")
}

// TestIntegrationMucAccess: the entry errors of XEP-0045 §7.2 (wrong password, banned,
// members-only, full) and who may kick (§8.2).
func TestIntegrationMucAccess(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true})
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		srv.AddUser(t, u, "secret")
	}
	alice := mucLogin(t, srv, "alice", "pc")
	bob := mucLogin(t, srv, "bob", "pc")
	carol := mucLogin(t, srv, "carol", "pc")
	dave := mucLogin(t, srv, "dave", "pc")
	mucCreate(t, alice, mucRoom, "Alice")

	// Password (§7.2.6).
	alice.Send(mucConfig(mucRoom, "pw", "muc#roomconfig_passwordprotectedroom", "1", "muc#roomconfig_roomsecret", "brew"))
	expectStanza(t, alice, "id='pw'", "type='result'")
	bob.Send(mucJoin(mucRoom, "Bob", "b1", "<password>water</password>"))
	expectStanza(t, bob, "id='b1'", "type='error'", "<not-authorized")
	bob.Send(mucJoin(mucRoom, "Bob", "b2", "<password>brew</password>"))
	expectStanza(t, bob, "id='b2'", "<status code='110'/>")
	carol.Send(mucJoin(mucRoom, "Carol", "c1", "<password>brew</password>"))
	expectStanza(t, carol, "<subject/>")

	// A participant may not kick (§8 preamble: forbidden); a moderator without affiliation
	// may not kick an owner (§8.2: not-allowed).
	bob.Send("<iq type='set' to='" + mucRoom + "' id='k1'>" + mucAdmin + "<item nick='Carol' role='none'/></query></iq>")
	expectStanza(t, bob, "id='k1'", "type='error'", "<forbidden")
	alice.Send("<iq type='set' to='" + mucRoom + "' id='mod'>" + mucAdmin + "<item nick='Bob' role='moderator'/></query></iq>")
	expectStanza(t, alice, "id='mod'", "type='result'")
	bob.Send("<iq type='set' to='" + mucRoom + "' id='k2'>" + mucAdmin + "<item nick='Alice' role='none'/></query></iq>")
	expectStanza(t, bob, "id='k2'", "type='error'", "<not-allowed")

	// Banned (§7.2.8).
	alice.Send("<iq type='set' to='" + mucRoom + "' id='ban'>" + mucAdmin + "<item affiliation='outcast' jid='dave@localhost'/></query></iq>")
	expectStanza(t, alice, "id='ban'", "type='result'")
	dave.Send(mucJoin(mucRoom, "Dave", "d1", "<password>brew</password>"))
	expectStanza(t, dave, "id='d1'", "type='error'", "<forbidden")

	// Members-only (§7.2.7): non-members leave with 322 and cannot come back.
	alice.Send(mucConfig(mucRoom, "mo", "muc#roomconfig_membersonly", "1"))
	expectStanza(t, alice, "id='mo'", "type='result'")
	expectStanza(t, carol, "type='unavailable'", "<status code='322'/>")
	carol.Send(mucJoin(mucRoom, "Carol", "c2", "<password>brew</password>"))
	expectStanza(t, carol, "id='c2'", "type='error'", "<registration-required")

	// Full (§7.2.9): service-unavailable of type wait.
	const small = "small@conference.localhost"
	mucCreate(t, alice, small, "Alice")
	alice.Send(mucConfig(small, "max", "muc#roomconfig_maxusers", "2"))
	expectStanza(t, alice, "id='max'", "type='result'")
	carol.Send(mucJoin(small, "Carol", "c3"))
	expectStanza(t, carol, "id='c3'", "<status code='110'/>")
	dave.Send(mucJoin(small, "Dave", "d2"))
	expectStanza(t, dave, "id='d2'", "type='error'", "type='wait'", "<service-unavailable")

	// An occupant whose stream ends leaves (its server's unavailable presence, §7.14).
	carol.Send("</stream:stream>")
	expectStanza(t, alice, "from='"+small+"/Carol'", "type='unavailable'", "role='none'")
}

// TestIntegrationMucRestart: a persistent room keeps its configuration, affiliations and
// subject across a restart of the server on the same data directory; a temporary room
// does not survive its last occupant.
func TestIntegrationMucRestart(t *testing.T) {
	dir := t.TempDir()
	t.Run("before", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Dir: dir})
		for _, u := range []string{"alice", "bob", "carol"} {
			srv.AddUser(t, u, "secret")
		}
		alice := mucLogin(t, srv, "alice", "pc")
		mucCreate(t, alice, mucRoom, "Alice")
		alice.Send(mucConfig(mucRoom, "cfg", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_roomname", "The Coven",
			"muc#roomconfig_membersonly", "1"))
		expectStanza(t, alice, "id='cfg'", "type='result'")
		alice.Send("<iq type='set' to='" + mucRoom + "' id='aff'>" + mucAdmin +
			"<item affiliation='member' jid='bob@localhost' nick='Bobby'/><item affiliation='admin' jid='carol@localhost'/></query></iq>")
		expectStanza(t, alice, "id='aff'", "type='result'")
		alice.Send("<message to='" + mucRoom + "' type='groupchat' id='s'><subject>Spells</subject></message>")
		expectStanza(t, alice, "<subject>Spells</subject>")
		// A temporary room, gone with its last occupant.
		mucCreate(t, alice, "temp@conference.localhost", "Alice")
		alice.Send("<presence to='temp@conference.localhost/Alice' type='unavailable'/>")
		expectStanza(t, alice, "from='temp@conference.localhost/Alice'", "type='unavailable'")
		alice.Send("</stream:stream>")
	})
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Dir: dir})
	bob := mucLogin(t, srv, "bob", "pc")
	bob.Send("<iq type='get' to='conference.localhost' id='items'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	items := expectStanza(t, bob, "id='items'")
	if !strings.Contains(items, "<item jid='"+mucRoom+"' name='The Coven'/>") || strings.Contains(items, "temp@") {
		t.Fatalf("disco#items after restart: %s", items)
	}
	// Bob is still a member of the members-only room, with his reserved nick.
	bob.Send("<iq type='get' to='" + mucRoom + "' id='nick'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>")
	expectStanza(t, bob, "id='nick'", "name='Bobby'")
	bob.Send(mucJoin(mucRoom, "Bobby", "jb"))
	expectStanza(t, bob, "id='jb'", "<status code='110'/>", "affiliation='member'")
	expectStanza(t, bob, "from='"+mucRoom+"/Alice'", "<subject>Spells</subject>")
	carol := mucLogin(t, srv, "carol", "pc")
	carol.Send(mucJoin(mucRoom, "Carol", "jc"))
	expectStanza(t, carol, "id='jc'", "affiliation='admin'", "role='moderator'")
	carol.Send("<iq type='get' to='" + mucRoom + "' id='owners'>" + mucAdmin + "<item affiliation='member'/></query></iq>")
	expectStanza(t, carol, "id='owners'", "jid='bob@localhost'")
	// The temporary room is gone: joining creates it anew.
	carol.Send(mucJoin("temp@conference.localhost", "Carol", "jt"))
	expectStanza(t, carol, "id='jt'", "<status code='201'/>")
}

// TestIntegrationSlixmppMuc: slixmpp's XEP-0045 plugin (a client nobody here wrote) joins a
// room that a raw client created: it gets the occupant list, its self-presence, the
// history and the subject, sees its own groupchat message reflected with the room's
// stanza-id, and receives Alice's; made a moderator, it retracts Alice's message with its
// XEP-0425 plugin (0.2, inside XEP-0422 <apply-to/>) and gets the room's retraction.
func TestIntegrationSlixmppMuc(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "slix", "py secret")
	srv.AddUser(t, "alice", "secret")
	const room = "tea@conference.localhost"
	alice := mucLogin(t, srv, "alice", "pc")
	mucCreate(t, alice, room, "Alice")
	alice.Send("<message to='" + room + "' type='groupchat' id='s'><subject>Tea time</subject></message>")
	expectStanza(t, alice, "<subject>Tea time</subject>")
	alice.Send("<message to='" + room + "' type='groupchat' id='h'><body>kettle on</body></message>")
	expectStanza(t, alice, "id='h'")
	done := make(chan error, 1)
	go func() {
		if _, err := alice.ReadUntil("<body>hello from slix</body>", 40*time.Second); err != nil {
			done <- err
			return
		}
		// Slix is made a moderator, and retracts what alice says next.
		alice.Send("<iq type='set' to='" + room + "' id='role'>" + mucAdmin + "<item nick='Slix' role='moderator'/></query></iq>")
		if _, err := alice.ReadUntil("id='role'", 10*time.Second); err != nil {
			done <- err
			return
		}
		alice.Send("<message to='" + room + "' type='groupchat' id='r'><body>hi slix</body></message>")
		got, err := alice.ReadUntil("<apply-to xmlns='urn:xmpp:fasten:0'", 40*time.Second)
		if err == nil && !strings.Contains(got, "by='"+room+"/Slix'") {
			err = fmt.Errorf("the retraction does not name slix: %s", got)
		}
		done <- err
	}()
	runSlix(t, srv, "slixmpp_muc.py",
		"JOINED "+room+"/Slix 110",
		"OCCUPANTS Alice Slix",
		"HISTORY kettle on",
		"SUBJECT Tea time",
		"REFLECTED "+room+" yes",
		"GOT hi slix",
		"MODERATE OK",
		"MODERATED by "+room+"/Slix reason slix tidies up")
	if err := <-done; err != nil {
		t.Fatalf("alice: %v", err)
	}
}

// TestIntegrationSlixmppRoomAvatar: XEP-0486 room avatars with slixmpp's XEP-0054 plugin.
// An owner publishes the room's vCard with a photo; the other occupant is told (status
// 104); the room's info form carries the photo's SHA-1 and its vCard the photo, for
// slixmpp and, after a restart of the server on the same data, for a user who never
// joined.
func TestIntegrationSlixmppRoomAvatar(t *testing.T) {
	needSlixmpp(t)
	const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
	raw, _ := base64.StdEncoding.DecodeString(png)
	sum := sha1.Sum(raw)
	hash := hex.EncodeToString(sum[:])
	dir := t.TempDir()
	t.Run("set", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Dir: dir})
		srv.AddUser(t, "alice", "secret")
		srv.AddUser(t, "slix", "py secret")
		alice := mucLogin(t, srv, "alice", "pc")
		mucCreate(t, alice, mucRoom, "Alice")
		alice.Send(mucConfig(mucRoom, "cfg", "muc#roomconfig_persistentroom", "1"))
		expectStanza(t, alice, "id='cfg'", "type='result'")
		alice.Send("<iq type='set' to='" + mucRoom + "' id='own'>" + mucAdmin + "<item affiliation='owner' jid='slix@localhost'/></query></iq>")
		expectStanza(t, alice, "id='own'", "type='result'")
		runSlix(t, srv, "slixmpp_roomavatar.py", "PUBLISHED "+hash, "INFO HASH "+hash, "VCARD image/png "+hash)
		expectStanza(t, alice, "type='groupchat'", "<status code='104'/>")
		alice.Send("</stream:stream>")
	})
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Dir: dir})
	srv.AddUser(t, "bob", "secret")
	bob := mucLogin(t, srv, "bob", "pc")
	bob.Send("<iq type='get' to='" + mucRoom + "' id='info'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	expectStanza(t, bob, "id='info'", "var='muc#roominfo_avatarhash'", "<value>"+hash+"</value>")
	bob.Send("<iq type='get' to='" + mucRoom + "' id='vc'><vCard xmlns='vcard-temp'/></iq>")
	expectStanza(t, bob, "id='vc'", "type='result'", "image/png", "<BINVAL>")
}

// TestIntegrationNbxmppMucCaptcha: Gajim's library reads the challenge of a
// CAPTCHA-protected room (its captcha handler's form and its XEP-0231 image checked against
// the cid) and submits the form as Gajim does; the room takes the submission (a wrong
// text here: the right one is TestCaptchaRoom's, in the module) and refuses the join.
func TestIntegrationNbxmppMucCaptcha(t *testing.T) {
	needPython(t, "nbxmpp", "python3-nbxmpp")
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	alice := mucLogin(t, srv, "alice", "pc")
	mucCreate(t, alice, mucRoom, "Alice")
	alice.Send(mucConfig(mucRoom, "cfg", "captcha_protected", "1"))
	expectStanza(t, alice, "id='cfg'", "type='result'")

	bob := mucLogin(t, srv, "bob", "gajim")
	bob.Send(mucJoin(mucRoom, "Bob", "j1"))
	msg := expectStanza(t, bob, "<captcha xmlns='urn:xmpp:captcha'>")
	bob.Send(vireotest.NbxmppCaptcha(t, msg, "WRONG7"))
	expectStanza(t, bob, "id='nbc1'", "type='error'", "<not-acceptable")
	expectStanza(t, bob, "id='j1'", "type='error'", "<not-authorized")
}

// TestIntegrationChannelSearch: a client searches the MUC service of a running server
// with XEP-0433 and finds the public room by a word of its description, with its
// occupants; a private room stays out of it.
func TestIntegrationChannelSearch(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	alice := mucLogin(t, srv, "alice", "pc")
	mucCreate(t, alice, mucRoom, "Alice")
	alice.Send(mucConfig(mucRoom, "cfg", "muc#roomconfig_roomname", "Coven", "muc#roomconfig_roomdesc", "Witches of the heath"))
	expectStanza(t, alice, "id='cfg'", "type='result'")
	mucCreate(t, alice, "secret@conference.localhost", "Alice")
	alice.Send(mucConfig("secret@conference.localhost", "cfg2", "muc#roomconfig_roomdesc", "Heath plans", "muc#roomconfig_publicroom", "0"))
	expectStanza(t, alice, "id='cfg2'", "type='result'")

	alice.Send("<iq type='get' to='conference.localhost' id='s1'><search xmlns='urn:xmpp:channel-search:0:search'><x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE'><value>urn:xmpp:channel-search:0:search-params</value></field><field var='q'><value>HEATH</value></field></x></search></iq>")
	got := expectStanza(t, alice, "id='s1'")
	mustHave(t, "the search", got, "type='result'", "<item address='"+mucRoom+"'>", "<name>Coven</name>", "<nusers>1</nusers>")
	if strings.Contains(got, "secret@") {
		t.Fatalf("a private room in the search: %s", got)
	}
}

// TestIntegrationMucBlockedOccupant: an occupant who blocks another by its room address
// stays in the room when the blocked one writes: the groupchat message is dropped for the
// blocker without an error (which the room takes for a session gone), and a private
// message's error goes back to its sender instead of removing the blocker.
func TestIntegrationMucBlockedOccupant(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true})
	for _, u := range []string{"alice", "bob", "troll"} {
		srv.AddUser(t, u, "secret")
	}
	alice := mucLogin(t, srv, "alice", "pc")
	mucCreate(t, alice, mucRoom, "Alice")
	bob := mucLogin(t, srv, "bob", "pc")
	bob.Send(mucJoin(mucRoom, "Bob", "jb"))
	bob.Expect("<subject/>")
	troll := mucLogin(t, srv, "troll", "pc")
	troll.Send(mucJoin(mucRoom, "Troll", "jt"))
	troll.Expect("<subject/>")
	bob.Send("<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'><item jid='" + mucRoom + "/Troll'/></block></iq>")
	expectStanza(t, bob, "id='blk'", "type='result'")

	troll.Send("<message to='" + mucRoom + "' type='groupchat' id='g1'><body>boo</body></message>")
	expectStanza(t, alice, "id='g1'", "<body>boo</body>")
	troll.Send("<message to='" + mucRoom + "/Bob' type='chat' id='p1'><body>psst</body></message>")
	expectStanza(t, troll, "id='p1'", "type='error'", "from='"+mucRoom+"/Bob'")
	// Bob is still in: his message reaches the room (a removed occupant's is refused).
	bob.Send("<message to='" + mucRoom + "' type='groupchat' id='g2'><body>still here</body></message>")
	expectStanza(t, alice, "id='g2'", "<body>still here</body>")
	if got := expectStanza(t, bob, "id='g2'"); strings.Contains(got, "type='error'") {
		t.Fatalf("bob was removed from the room: %s", got)
	}
}
