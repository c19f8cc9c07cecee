package engine_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// mucMamQuery sends an archive query to room on r and returns the results and the IQ
// answer.
func mucMamQuery(t *testing.T, r *vireotest.RawConn, room, qid, inner string) ([]mamResult, string) {
	t.Helper()
	r.Send("<iq type='set' to='" + room + "' id='iq-" + qid + "'><query xmlns='urn:xmpp:mam:2' queryid='" + qid + "'>" + inner + "</query></iq>")
	got := r.Expect("id='iq-" + qid + "'")
	fin := got[strings.LastIndex(got, "<iq "):] + r.Expect("</iq>")
	var out []mamResult
	for _, m := range mamResultRe.FindAllStringSubmatch(got, -1) {
		if m[1] != qid {
			t.Fatalf("result of query %q in the answer to %q", m[1], qid)
		}
		out = append(out, mamResult{id: m[2], stamp: m[3], body: m[4]})
	}
	if n := strings.Count(got, "<result xmlns='urn:xmpp:mam:2'"); n != len(out) || n != strings.Count(got, "from='"+room+"'><result") ||
		n != strings.Count(got, "type='groupchat' id='m") {
		t.Fatalf("results not from the room as groupchat messages of its occupants:\n%s", got)
	}
	return out, fin
}

func resultIDs(rs []mamResult) string {
	var b []string
	for _, r := range rs {
		b = append(b, r.id)
	}
	return strings.Join(b, ",")
}

// TestIntegrationMucMam: a logged, persistent, members-only room archives its messages;
// an occupant pages through the room's archive and gets them in order under the
// stanza-ids the occupants received; a non-member who is not in the room is refused;
// after a restart on the same data directory a member reads the same archive without
// joining; destroying the room deletes its archive.
func TestIntegrationMucMam(t *testing.T) {
	dir := t.TempDir()
	var sids []string
	t.Run("before", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Dir: dir})
		for _, u := range []string{"alice", "bob", "carol"} {
			srv.AddUser(t, u, "secret")
		}
		alice := mucLogin(t, srv, "alice", "pc")
		mucCreate(t, alice, mucRoom, "Alice")
		alice.Send(mucConfig(mucRoom, "cfg", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_membersonly", "1",
			"muc#roomconfig_enablelogging", "1"))
		expectStanza(t, alice, "id='cfg'", "type='result'")
		alice.Send("<iq type='set' to='" + mucRoom + "' id='aff'>" + mucAdmin + "<item affiliation='member' jid='bob@localhost'/></query></iq>")
		expectStanza(t, alice, "id='aff'", "type='result'")
		alice.Send("<iq type='get' to='" + mucRoom + "' id='info'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
		expectStanza(t, alice, "id='info'", "<feature var='urn:xmpp:mam:2'/>")

		bob := mucLogin(t, srv, "bob", "pc")
		bob.Send(mucJoin(mucRoom, "Bob", "jb"))
		expectStanza(t, bob, "id='jb'", "<status code='110'/>", "<status code='170'/>")
		expectStanza(t, bob, "<subject/>")
		for i, who := range []*vireotest.RawConn{alice, bob, alice, bob, alice} {
			body := "m" + string(rune('1'+i))
			who.Send("<message to='" + mucRoom + "' type='groupchat' id='" + body + "'><body>" + body + "</body></message>")
			got := expectStanza(t, bob, "<body>"+body+"</body>")
			m := mucSIDRe.FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("no stanza-id by the room: %s", got)
			}
			sids = append(sids, m[1])
		}

		rs, fin := mucMamQuery(t, bob, mucRoom, "p1", rsmSet("<max>2</max>"))
		if bodies(rs) != "m1,m2" || resultIDs(rs) != strings.Join(sids[:2], ",") || !strings.Contains(fin, "complete='false'") ||
			!strings.Contains(fin, "<count>5</count>") {
			t.Fatalf("page 1: %v, %s (stanza-ids %v)", rs, fin, sids)
		}
		rs, fin = mucMamQuery(t, bob, mucRoom, "p2", rsmSet("<max>2</max><after>"+sids[1]+"</after>"))
		if bodies(rs) != "m3,m4" || resultIDs(rs) != strings.Join(sids[2:4], ",") || !strings.Contains(fin, "complete='false'") {
			t.Fatalf("page 2: %v, %s", rs, fin)
		}
		rs, fin = mucMamQuery(t, bob, mucRoom, "p3", rsmSet("<max>2</max><after>"+sids[3]+"</after>"))
		if bodies(rs) != "m5" || rs[0].id != sids[4] || !strings.Contains(fin, "complete='true'") {
			t.Fatalf("page 3: %v, %s", rs, fin)
		}

		carol := mucLogin(t, srv, "carol", "pc")
		carol.Send("<iq type='set' to='" + mucRoom + "' id='no'><query xmlns='urn:xmpp:mam:2'/></iq>")
		expectStanza(t, carol, "id='no'", "type='error'", "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>")
		alice.Send("</stream:stream>")
		bob.Send("</stream:stream>")
	})
	if len(sids) != 5 {
		t.FailNow()
	}

	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Dir: dir})
	bob := mucLogin(t, srv, "bob", "pc")
	rs, fin := mucMamQuery(t, bob, mucRoom, "after-restart", "")
	if bodies(rs) != "m1,m2,m3,m4,m5" || resultIDs(rs) != strings.Join(sids, ",") || !strings.Contains(fin, "complete='true'") {
		t.Fatalf("after a restart: %v, %s", rs, fin)
	}

	alice := mucLogin(t, srv, "alice", "pc")
	alice.Send("<iq type='set' to='" + mucRoom + "' id='destroy'>" + mucOwner + "<destroy/></query></iq>")
	expectStanza(t, alice, "id='destroy'", "type='result'")
	// Gone with the room: a new room of that name has an empty archive.
	mucCreate(t, alice, mucRoom, "Alice")
	alice.Send(mucConfig(mucRoom, "cfg2", "muc#roomconfig_enablelogging", "1"))
	expectStanza(t, alice, "id='cfg2'", "type='result'")
	rs, fin = mucMamQuery(t, alice, mucRoom, "new", "")
	if len(rs) != 0 || !strings.Contains(fin, "<count>0</count>") {
		t.Fatalf("a new room of the same name: %v, %s", rs, fin)
	}
	var n int
	if err := srv.Store.Table("mam").Scan([]byte(mucRoom+"\x00"), func(_, _ []byte) bool { n++; return true }); err != nil || n != 0 {
		t.Fatalf("rows of the destroyed room's archive left: %d (%v)", n, err)
	}

	// A subject change is archived too, with the stanza-id its occupants got.
	alice.Send("<message to='" + mucRoom + "' type='groupchat' id='subj'><subject>Potions</subject></message>")
	got := expectStanza(t, alice, "<subject>Potions</subject>")
	m := mucSIDRe.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("a subject change without the room's stanza-id: %s", got)
	}
	alice.Send("<iq type='set' to='" + mucRoom + "' id='qs'><query xmlns='urn:xmpp:mam:2' queryid='qs'/></iq>")
	got = expectStanza(t, alice, "id='qs'")
	if !strings.Contains(got, "<subject>Potions</subject>") || !strings.Contains(got, "id='"+m[1]+"'") {
		t.Fatalf("the archive after a subject change: %s", got)
	}
}
