package mam_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/mam"
	"github.com/vireo-im/vireo/router/routertest"
)

const (
	mroom  = "den@conference.example.org"
	nsMUC  = "http://jabber.org/protocol/muc"
	realBy = "<x xmlns='" + nsMUC + "#user'><item jid="
)

// roomConfig submits the room's configuration form with fields (var, value pairs).
func roomConfig(t *testing.T, s *routertest.Sess, id string, kv ...string) {
	t.Helper()
	x := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + nsMUC + "#roomconfig</value></field>"
	for i := 0; i+1 < len(kv); i += 2 {
		x += "<field var='" + kv[i] + "'><value>" + kv[i+1] + "</value></field>"
	}
	s.Send("<iq type='set' to='" + mroom + "' id='" + id + "'><query xmlns='" + nsMUC + "#owner'>" + x + "</x></query></iq>")
	s.C.Wait(t, "id='"+id+"'", "type='result'")
}

// roomJoin joins s to the room as nick and waits for the subject that ends the join.
func roomJoin(t *testing.T, s *routertest.Sess, nick string) {
	t.Helper()
	s.Send("<presence to='" + mroom + "/" + nick + "'><x xmlns='" + nsMUC + "'/></presence>")
	s.C.Wait(t, "<subject")
}

// roomQuery queries the room's archive from s: the results' bodies and ids in the order
// they came, the results themselves and the IQ answer.
func roomQuery(t *testing.T, s *routertest.Sess, id, inner string) (bodies, ids, results []string, fin string) {
	t.Helper()
	s.C.Reset()
	s.Send("<iq type='set' to='" + mroom + "' id='" + id + "'><query xmlns='urn:xmpp:mam:2' queryid='" + id + "'>" + inner + "</query></iq>")
	fin = s.C.Wait(t, "<iq", "id='"+id+"'")
	for _, st := range s.C.Got() {
		if !strings.HasPrefix(st, "<message") || !strings.Contains(st, "queryid='"+id+"'") {
			continue
		}
		if !strings.Contains(st, "from='"+mroom+"'") || !strings.Contains(st, "type='groupchat'") {
			t.Fatalf("result not from the room, or not the groupchat message: %s", st)
		}
		body := ""
		if m := bodyRe.FindStringSubmatch(st); m != nil {
			body = m[1]
		}
		bodies = append(bodies, body)
		ids = append(ids, resultRe.FindStringSubmatch(st)[1])
		results = append(results, st)
	}
	return bodies, ids, results, fin
}

// TestMamRoom: a logged room archives its messages under the stanza-ids the occupants
// got; occupants page through them; real JIDs go to the owner only in a semi-anonymous
// room; non-occupants read a public open room and not a members-only one; an unlogged
// room archives nothing; destroying the room deletes its archive.
func TestMamRoom(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a, b, c := e.Bind("alice", "pc"), e.Bind("bob", "pc"), e.Bind("carol", "pc")
	roomJoin(t, a, "Alice")
	roomConfig(t, a, "cfg", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_enablelogging", "1")
	roomJoin(t, b, "Bob")
	a.Send("<iq type='get' to='" + mroom + "' id='info'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='info'", "<feature var='urn:xmpp:mam:2'/>")

	var sent []string
	for i, from := range []*routertest.Sess{a, b, a, b, a} {
		body := "m" + string(rune('1'+i))
		b.C.Reset()
		from.Send("<message to='" + mroom + "' type='groupchat' id='" + body + "'><body>" + body + "</body></message>")
		got := b.C.Wait(t, "<body>"+body+"</body>")
		m := stanzaIDRe.FindStringSubmatch(got)
		if m == nil || m[2] != mroom {
			t.Fatalf("no stanza-id by the room: %s", got)
		}
		sent = append(sent, m[1])
	}

	bodies, ids, res, fin := roomQuery(t, b, "p1", "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set>")
	if !slices.Equal(bodies, []string{"m1", "m2"}) || !slices.Equal(ids, sent[:2]) || !strings.Contains(fin, "complete='false'") ||
		!strings.Contains(fin, "<count>5</count>") || !strings.Contains(fin, "<last>"+sent[1]+"</last>") {
		t.Fatalf("first page: %q %q, %s", bodies, ids, fin)
	}
	if !strings.Contains(res[0], "from='"+mroom+"/Alice'") || strings.Contains(strings.Join(res, ""), realBy) {
		t.Fatalf("a participant of a semi-anonymous room sees: %s", res)
	}
	bodies, ids, _, fin = roomQuery(t, b, "p2", "<set xmlns='http://jabber.org/protocol/rsm'><max>3</max><after>"+sent[1]+"</after></set>")
	if !slices.Equal(bodies, []string{"m3", "m4", "m5"}) || !slices.Equal(ids, sent[2:]) || !strings.Contains(fin, "complete='true'") {
		t.Fatalf("second page: %q %q, %s", bodies, ids, fin)
	}
	bodies, _, _, _ = roomQuery(t, b, "last", "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set>")
	if !slices.Equal(bodies, []string{"m4", "m5"}) {
		t.Fatalf("last page: %q", bodies)
	}
	bodies, _, _, _ = roomQuery(t, b, "with", form("with", mroom+"/Bob"))
	if !slices.Equal(bodies, []string{"m2", "m4"}) {
		t.Fatalf("with one nickname: %q", bodies)
	}
	_, _, res, _ = roomQuery(t, a, "own", "")
	if len(res) != 5 || !strings.Contains(res[1], realBy+"'bob@example.org'/>") {
		t.Fatalf("the owner does not see real JIDs: %q", res)
	}
	bodies, _, res, _ = roomQuery(t, c, "open", "")
	if len(bodies) != 5 || strings.Contains(strings.Join(res, ""), realBy) {
		t.Fatalf("a non-occupant of a public open room: %q", res)
	}
	a.Send("<iq type='get' to='" + mroom + "' id='meta'><metadata xmlns='urn:xmpp:mam:2'/></iq>")
	a.C.Wait(t, "id='meta'", "<start id='"+sent[0]+"'", "<end id='"+sent[4]+"'")

	// Members-only: carol, no member, is refused; bob, made a member, is not.
	a.Send("<iq type='set' to='" + mroom + "' id='mem'><query xmlns='" + nsMUC + "#admin'><item jid='bob@example.org' affiliation='member'/></query></iq>")
	a.C.Wait(t, "id='mem'", "type='result'")
	roomConfig(t, a, "mo", "muc#roomconfig_membersonly", "1")
	c.C.Reset()
	c.Send("<iq type='set' to='" + mroom + "' id='no'><query xmlns='urn:xmpp:mam:2'/></iq>")
	c.C.Wait(t, "id='no'", "type='error'", "<forbidden")
	b.Send("<presence to='" + mroom + "/Bob' type='unavailable'/>")
	b.C.Wait(t, "type='unavailable'")
	if bodies, _, _, _ = roomQuery(t, b, "member", ""); len(bodies) != 5 {
		t.Fatalf("a member out of the room reads %q", bodies)
	}

	// Logging off: nothing more is archived, nor advertised, nor answered.
	roomConfig(t, a, "off", "muc#roomconfig_enablelogging", "0")
	a.Send("<message to='" + mroom + "' type='groupchat' id='m6'><body>m6</body></message>")
	a.C.Wait(t, "<body>m6</body>")
	a.C.Reset()
	a.Send("<iq type='set' to='" + mroom + "' id='q'><query xmlns='urn:xmpp:mam:2'/></iq>")
	a.C.Wait(t, "id='q'", "service-unavailable")
	roomConfig(t, a, "on", "muc#roomconfig_enablelogging", "1")
	if bodies, _, _, _ = roomQuery(t, a, "again", ""); len(bodies) != 5 {
		t.Fatalf("after logging off and on: %q", bodies)
	}

	// Destroyed: the archive goes with the room, and a new room of that name starts empty.
	a.Send("<iq type='set' to='" + mroom + "' id='d'><query xmlns='" + nsMUC + "#owner'><destroy/></query></iq>")
	a.C.Wait(t, "id='d'", "type='result'")
	roomJoin(t, a, "Alice")
	roomConfig(t, a, "cfg2", "muc#roomconfig_enablelogging", "1")
	if bodies, _, _, fin = roomQuery(t, a, "new", ""); len(bodies) != 0 || !strings.Contains(fin, "<count>0</count>") {
		t.Fatalf("a new room of the same name reads %q, %s", bodies, fin)
	}
}

// TestMamRoomPageBytes: a page of a room's archive stops at about mam.RoomPageBytes,
// keeping the messages next to where paging started, and is then not complete.
func TestMamRoomPageBytes(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a := e.Bind("alice", "pc")
	roomJoin(t, a, "Alice")
	roomConfig(t, a, "cfg", "muc#roomconfig_enablelogging", "1")
	big := strings.Repeat("x", 100<<10)
	for i := range 4 {
		body := string(rune('a'+i)) + big
		a.Send("<message to='" + mroom + "' type='groupchat'><body>" + body + "</body></message>")
		a.C.Wait(t, "<body>"+body[:8])
	}
	first := func(bs []string) string {
		var s string
		for _, b := range bs {
			s += b[:1]
		}
		return s
	}
	bodies, ids, _, fin := roomQuery(t, a, "fw", "")
	if first(bodies) != "abc" || !strings.Contains(fin, "complete='false'") || !strings.Contains(fin, "<last>"+ids[2]+"</last>") ||
		!strings.Contains(fin, "<first index='0'>") {
		t.Fatalf("forwards: %q, %s", first(bodies), fin)
	}
	bodies, _, _, fin = roomQuery(t, a, "bw", "<set xmlns='http://jabber.org/protocol/rsm'><before/></set>")
	if first(bodies) != "bcd" || !strings.Contains(fin, "complete='false'") || !strings.Contains(fin, "<first index='1'>") {
		t.Fatalf("backwards: %q, %s", first(bodies), fin)
	}
}

// TestMamRoomModeration: a moderator's XEP-0425 retraction leaves a tombstone in the
// room's archive under the message's id, without its text (and without the sender's real
// JID for a requester who may not see it), and archives the retraction itself after it,
// so a client that read the message earlier learns of the retraction when it catches up.
func TestMamRoomModeration(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "pc")
	roomJoin(t, a, "Alice")
	roomConfig(t, a, "cfg", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_enablelogging", "1")
	roomJoin(t, b, "Bob")
	b.Send("<message to='" + mroom + "' type='groupchat' id='s1'><body>free potions</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>")
	spam := stanzaIDRe.FindStringSubmatch(a.C.Wait(t, "id='s1'"))[1]
	b.Send("<message to='" + mroom + "' type='groupchat' id='s2'><body>honest</body></message>")
	a.C.Wait(t, "id='s2'")
	e.advance(time.Minute)
	a.Send("<iq type='set' to='" + mroom + "' id='mod'><moderate xmlns='urn:xmpp:message-moderate:1' id='" + spam + "'>" +
		"<retract xmlns='urn:xmpp:message-retract:1'/><reason>spam</reason></moderate></iq>")
	a.C.Wait(t, "id='mod'", "type='result'")

	bodies, ids, results, _ := roomQuery(t, b, "q1", "")
	if len(results) != 3 || ids[0] != spam || !slices.Equal(bodies, []string{"", "honest", ""}) {
		t.Fatalf("archive after the retraction: bodies %q ids %q\n%s", bodies, ids, strings.Join(results, "\n"))
	}
	for _, want := range []string{"from='" + mroom + "/Bob'", "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>",
		"<occupant-id xmlns='urn:xmpp:occupant-id:0'", "<retracted xmlns='urn:xmpp:message-retract:1' stamp='" + e.at(time.Minute, stamp) + "'>",
		"by='" + mroom + "/Alice'", "<reason>spam</reason>"} {
		if !strings.Contains(results[0], want) {
			t.Fatalf("tombstone lacks %q: %s", want, results[0])
		}
	}
	if strings.Contains(results[0], "potions") || strings.Contains(results[0], realBy) {
		t.Fatalf("tombstone keeps the text, or shows a participant the real JID: %s", results[0])
	}
	if !strings.Contains(results[2], "<retract xmlns='urn:xmpp:message-retract:1' id='"+spam+"'>") {
		t.Fatalf("the retraction is not archived after the message: %s", results[2])
	}
	// The owner still sees who sent it.
	_, _, results, _ = roomQuery(t, a, "q2", "")
	if !strings.Contains(results[0], realBy+"'bob@example.org'") {
		t.Fatalf("the owner's tombstone lacks the sender's real JID: %s", results[0])
	}
}
