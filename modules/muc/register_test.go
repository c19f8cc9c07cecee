package muc_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/router/routertest"
)

func registerForm(id, nick string) string {
	return "<iq type='set' to='" + room + "' id='" + id + "'><query xmlns='jabber:iq:register'>" +
		"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + nsMUC + "#register</value></field>" +
		"<field var='muc#register_roomnick'><value>" + nick + "</value></field></x></query></iq>"
}

// TestMUCRegister: XEP-0045 §7.10 and §7.12. Bob gets the registration form, registers a
// nickname and becomes a member; the room then answers <registered/> and the
// x-roomuser-item node with it; Carol cannot register it (conflict) nor enter under it
// (409); an outcast is refused; in a members-only room only members may register;
// <remove/> gives the nickname and the membership up.
func TestMUCRegister(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol", "dave"}, nil)
	a := instantRoom(t, e)
	b := e.Bind("bob", "pc")
	c := e.Bind("carol", "pc")

	b.Send("<iq type='get' to='" + room + "' id='f'><query xmlns='jabber:iq:register'/></iq>")
	b.C.Wait(t, "id='f'", "type='result'", "<value>"+nsMUC+"#register</value>", "var='muc#register_roomnick'", "<required/>")
	b.Send("<iq type='get' to='" + room + "' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	b.C.Wait(t, "id='i'", "<feature var='"+nsMUC+"#register'/>", "<feature var='jabber:iq:register'/>")

	// A submission without a nickname is not acceptable.
	b.Send("<iq type='set' to='" + room + "' id='r0'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
	b.C.Wait(t, "id='r0'", "type='error'", "not-acceptable")
	b.Send(registerForm("r1", "thirdwitch"))
	b.C.Wait(t, "id='r1'", "type='result'")
	b.Send("<iq type='get' to='" + room + "' id='f2'><query xmlns='jabber:iq:register'/></iq>")
	b.C.Wait(t, "id='f2'", "<registered/>", "<username>thirdwitch</username>")
	b.Send("<iq type='get' to='" + room + "' id='n'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>")
	b.C.Wait(t, "id='n'", "<identity category='conference' type='text' name='thirdwitch'/>")
	a.Send("<iq type='get' to='" + room + "' id='m'>" + admin + "<item affiliation='member'/></query></iq>")
	a.C.Wait(t, "id='m'", "jid='bob@example.org'", "nick='thirdwitch'")

	// The nickname is Bob's: Carol can neither register it nor enter with it.
	c.Send(registerForm("r2", "thirdwitch"))
	c.C.Wait(t, "id='r2'", "type='error'", "conflict")
	c.Send(join("thirdwitch", "jc"))
	c.C.Wait(t, "id='jc'", "type='error'", "conflict")
	c.Send("<iq type='get' to='" + room + "' id='n2'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>")
	if got := c.C.Wait(t, "id='n2'"); strings.Contains(got, "<identity") {
		t.Fatalf("x-roomuser-item for an unregistered user: %s", got)
	}
	// Bob enters under it.
	b.Send(join("thirdwitch", "jb"))
	b.C.Wait(t, "id='jb'", "status code='110'", "affiliation='member'")

	// An outcast is refused.
	a.Send("<iq type='set' to='" + room + "' id='ban'>" + admin + "<item affiliation='outcast' jid='dave@example.org'/></query></iq>")
	a.C.Wait(t, "id='ban'", "type='result'")
	d := e.Bind("dave", "pc")
	d.Send(registerForm("r3", "dave"))
	d.C.Wait(t, "id='r3'", "type='error'", "forbidden")

	// Members-only: Carol, not a member, may not register.
	a.Send("<iq type='set' to='" + room + "' id='mo'>" + owner + "<x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE'><value>" + nsMUC + "#roomconfig</value></field>" +
		"<field var='muc#roomconfig_membersonly'><value>1</value></field></x></query></iq>")
	a.C.Wait(t, "id='mo'", "type='result'")
	c.Send(registerForm("r4", "carol"))
	c.C.Wait(t, "id='r4'", "type='error'", "registration-required")

	// Bob gives it up: the nickname is free and he is no longer a member (and leaves the
	// members-only room, status 321).
	b.Send("<iq type='set' to='" + room + "' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	b.C.Wait(t, "id='rm'", "type='result'")
	b.C.Wait(t, "type='unavailable'", "status code='321'")
	b.Send("<iq type='get' to='" + room + "' id='f3'><query xmlns='jabber:iq:register'/></iq>")
	if got := b.C.Wait(t, "id='f3'"); strings.Contains(got, "<registered/>") {
		t.Fatalf("still registered: %s", got)
	}
}

// TestMUCRegisterModerated: in a moderated room, membership (and with it voice) is the
// admins' to grant: a visitor cannot register to give itself voice, while a member may
// still register a nickname.
func TestMUCRegisterModerated(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := instantRoom(t, e)
	configure(t, a, "mod", map[string]string{"muc#roomconfig_moderatedroom": "1"})
	b := e.Bind("bob", "pc")
	b.Send(join("Bob", "jb"))
	b.C.Wait(t, "id='jb'", "status code='110'", "role='visitor'")
	b.Send(registerForm("r1", "Bob"))
	b.C.Wait(t, "id='r1'", "type='error'", "not-allowed")
	a.Send("<iq type='get' to='" + room + "' id='m'>" + admin + "<item affiliation='member'/></query></iq>")
	if got := a.C.Wait(t, "id='m'"); strings.Contains(got, "bob@") {
		t.Fatalf("a visitor registered into membership: %s", got)
	}
	a.Send("<iq type='set' to='" + room + "' id='mem'>" + admin + "<item affiliation='member' jid='carol@example.org'/></query></iq>")
	a.C.Wait(t, "id='mem'", "type='result'")
	c := e.Bind("carol", "pc")
	c.Send(registerForm("r2", "Carol"))
	c.C.Wait(t, "id='r2'", "type='result'")
}
