package muc_test

import (
	"regexp"
	"strings"
	"testing"

	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router/routertest"
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
