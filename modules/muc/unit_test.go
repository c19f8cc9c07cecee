package muc

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
	"github.com/vireo-im/vireo/xmlstream/xmltest"
)

func TestDefaultRole(t *testing.T) {
	for _, tc := range []struct {
		a         affiliation
		moderated bool
		want      role
	}{
		{affNone, false, roleParticipant},
		{affNone, true, roleVisitor},
		{affMember, true, roleParticipant},
		{affMember, false, roleParticipant},
		{affAdmin, true, roleModerator},
		{affOwner, false, roleModerator},
		{affOutcast, false, roleNone},
	} {
		if got := defaultRole(tc.a, tc.moderated); got != tc.want {
			t.Errorf("defaultRole(%s, moderated=%v) = %s, want %s", tc.a, tc.moderated, got, tc.want)
		}
	}
}

// TestCheckRole walks the role transitions of XEP-0045 §5.1.3 with the restrictions of
// §8.2–§8.4 and §9.6–§9.7.
func TestCheckRole(t *testing.T) {
	const ok = stanza.Condition("")
	for _, tc := range []struct {
		name   string
		aa     affiliation
		ar     role
		ta     affiliation
		tr     role
		nr     role
		expect stanza.Condition
	}{
		{"participant kicks", affNone, roleParticipant, affNone, roleParticipant, roleNone, stanza.Forbidden},
		{"visitor grants voice", affMember, roleVisitor, affNone, roleVisitor, roleParticipant, stanza.Forbidden},
		{"moderator kicks participant", affNone, roleModerator, affNone, roleParticipant, roleNone, ok},
		{"moderator kicks visitor", affMember, roleModerator, affNone, roleVisitor, roleNone, ok},
		{"member moderator kicks admin", affMember, roleModerator, affAdmin, roleModerator, roleNone, stanza.NotAllowed},
		{"admin kicks owner", affAdmin, roleModerator, affOwner, roleModerator, roleNone, stanza.NotAllowed},
		{"owner kicks admin", affOwner, roleModerator, affAdmin, roleModerator, roleNone, ok},
		{"moderator kicks member", affNone, roleModerator, affMember, roleParticipant, roleNone, stanza.NotAllowed},
		{"moderator grants voice", affNone, roleModerator, affNone, roleVisitor, roleParticipant, ok},
		{"admin revokes voice", affAdmin, roleModerator, affMember, roleParticipant, roleVisitor, ok},
		{"revoke voice from admin", affOwner, roleModerator, affAdmin, roleModerator, roleVisitor, stanza.NotAllowed},
		{"revoke voice at own level", affMember, roleModerator, affMember, roleParticipant, roleVisitor, stanza.NotAllowed},
		{"moderator grants moderator", affMember, roleModerator, affNone, roleParticipant, roleModerator, stanza.Forbidden},
		{"admin grants moderator", affAdmin, roleModerator, affNone, roleParticipant, roleModerator, ok},
		{"admin revokes moderator", affAdmin, roleModerator, affMember, roleModerator, roleParticipant, ok},
		{"moderator revokes moderator", affMember, roleModerator, affNone, roleModerator, roleParticipant, stanza.Forbidden}, // §9 preamble: not an admin
		{"admin revokes admin's moderator", affAdmin, roleModerator, affAdmin, roleModerator, roleParticipant, stanza.NotAllowed},
		{"no change", affNone, roleModerator, affOwner, roleModerator, roleModerator, ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkRole(tc.aa, tc.ar, tc.ta, tc.tr, tc.nr); got != tc.expect {
				t.Fatalf("got %q, want %q", got, tc.expect)
			}
		})
	}
}

// TestCheckAffiliation walks the affiliation transitions of XEP-0045 §5.2.3 with the
// restrictions of §9 and §10.
func TestCheckAffiliation(t *testing.T) {
	const ok = stanza.Condition("")
	for _, tc := range []struct {
		name       string
		aa, ta, na affiliation
		self       bool
		owners     int
		expect     stanza.Condition
	}{
		{"member bans", affMember, affNone, affOutcast, false, 1, stanza.Forbidden},
		{"admin bans none", affAdmin, affNone, affOutcast, false, 1, ok},
		{"admin bans member", affAdmin, affMember, affOutcast, false, 1, ok},
		{"admin grants membership", affAdmin, affNone, affMember, false, 1, ok},
		{"admin revokes membership", affAdmin, affMember, affNone, false, 1, ok},
		{"admin lifts ban", affAdmin, affOutcast, affNone, false, 1, ok},
		{"admin bans owner", affAdmin, affOwner, affOutcast, false, 1, stanza.NotAllowed},
		{"admin bans admin", affAdmin, affAdmin, affOutcast, false, 1, stanza.NotAllowed},
		{"admin grants admin", affAdmin, affMember, affAdmin, false, 1, stanza.Forbidden},
		{"admin grants owner", affAdmin, affNone, affOwner, false, 1, stanza.Forbidden},
		{"owner grants admin", affOwner, affMember, affAdmin, false, 1, ok},
		{"owner grants owner", affOwner, affNone, affOwner, false, 1, ok},
		{"owner revokes admin", affOwner, affAdmin, affMember, false, 1, ok},
		{"owner bans admin", affOwner, affAdmin, affOutcast, false, 1, ok},
		{"owner bans self", affOwner, affOwner, affOutcast, true, 2, stanza.ConflictCond},
		{"admin bans self", affAdmin, affAdmin, affOutcast, true, 1, stanza.ConflictCond}, // §9.1: conflict, whoever bans itself
		{"last owner steps down", affOwner, affOwner, affAdmin, true, 1, stanza.ConflictCond},
		{"one of two owners steps down", affOwner, affOwner, affAdmin, true, 2, ok},
		{"owner revokes other owner", affOwner, affOwner, affNone, false, 2, ok},
		{"no change", affAdmin, affMember, affMember, false, 1, ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkAffiliation(tc.aa, tc.ta, tc.na, tc.self, tc.owners); got != tc.expect {
				t.Fatalf("got %q, want %q", got, tc.expect)
			}
		})
	}
}

func TestRoleAfter(t *testing.T) {
	for _, tc := range []struct {
		old, na   affiliation
		cur       role
		moderated bool
		want      role
	}{
		{affNone, affAdmin, roleParticipant, false, roleModerator},
		{affAdmin, affMember, roleModerator, true, roleParticipant},
		{affAdmin, affNone, roleModerator, true, roleVisitor},
		{affNone, affMember, roleVisitor, true, roleParticipant},
		{affMember, affNone, roleParticipant, true, roleParticipant},
		{affNone, affNone, roleModerator, false, roleModerator}, // a "mere" moderator stays one
	} {
		if got := roleAfter(tc.old, tc.na, tc.cur, tc.moderated); got != tc.want {
			t.Errorf("roleAfter(%s→%s, %s, moderated=%v) = %s, want %s", tc.old, tc.na, tc.cur, tc.moderated, got, tc.want)
		}
	}
}

func entries(h *history) []string {
	var out []string
	for i := 0; i < h.n; i++ {
		out = append(out, string(h.at(i).raw))
	}
	return out
}

func TestHistoryRing(t *testing.T) {
	var h history
	t0 := time.Unix(1000, 0)
	for i := 0; i < 7; i++ {
		h.add(histEntry{raw: []byte{byte('a' + i)}, at: t0.Add(time.Duration(i) * time.Second), chars: 10}, 5)
	}
	if got := strings.Join(entries(&h), ""); got != "cdefg" {
		t.Fatalf("ring = %q, want cdefg", got)
	}
	h.resize(3)
	if got := strings.Join(entries(&h), ""); got != "efg" {
		t.Fatalf("after resize(3) = %q, want efg", got)
	}
	h.resize(6)
	h.add(histEntry{raw: []byte("h"), at: t0.Add(7 * time.Second), chars: 10}, 6)
	if got := strings.Join(entries(&h), ""); got != "efgh" {
		t.Fatalf("after resize(6) and add = %q, want efgh", got)
	}
	h.add(histEntry{raw: []byte("x")}, 0)
	if h.n != 0 {
		t.Fatalf("history length 0 keeps %d entries", h.n)
	}

	// Bytes: large messages push out the oldest before the count does; one larger than
	// the bound alone stays, alone.
	big := func(c byte, n int) histEntry { return histEntry{raw: bytes.Repeat([]byte{c}, n)} }
	for _, c := range []byte("abcdef") {
		h.add(big(c, maxHistoryBytes/4), 200)
	}
	if got := strings.Join(entries(&h), ""); h.n != 4 || h.bytes != maxHistoryBytes || got[0] != 'c' {
		t.Fatalf("%d entries, %d bytes, oldest %q", h.n, h.bytes, got[:1])
	}
	h.add(big('g', maxHistoryBytes+1), 200)
	if h.n != 1 || h.bytes != maxHistoryBytes+1 {
		t.Fatalf("after an oversized one: %d entries, %d bytes", h.n, h.bytes)
	}
	h.add(big('h', 10), 200)
	if h.n != 1 || h.bytes != 10 {
		t.Fatalf("after a small one: %d entries, %d bytes", h.n, h.bytes)
	}
}

// TestHistoryLimits checks XEP-0045 §7.2.14: the smallest history meeting every limit,
// whole stanzas only.
func TestHistoryLimits(t *testing.T) {
	var h history
	now := time.Unix(10000, 0)
	// Ten messages, one a minute, the last one a minute ago; 100 chars each.
	for i := 0; i < 10; i++ {
		h.add(histEntry{raw: []byte{byte('0' + i)}, at: now.Add(time.Duration(i-10) * time.Minute), chars: 100}, 20)
	}
	l := func(f func(*histLimits)) histLimits {
		x := noLimits()
		f(&x)
		return x
	}
	for _, tc := range []struct {
		name  string
		lim   histLimits
		extra int
		want  int // messages sent
	}{
		{"none", noLimits(), 0, 10},
		{"maxstanzas", l(func(x *histLimits) { x.maxStanzas = 3 }), 0, 3},
		{"maxstanzas 0", l(func(x *histLimits) { x.maxStanzas = 0 }), 0, 0},
		{"maxstanzas above", l(func(x *histLimits) { x.maxStanzas = 50 }), 0, 10},
		{"maxchars 0", l(func(x *histLimits) { x.maxChars = 0 }), 0, 0},
		{"maxchars whole stanzas", l(func(x *histLimits) { x.maxChars = 350 }), 0, 3},
		{"maxchars counts to", l(func(x *histLimits) { x.maxChars = 350 }), 20, 2},
		{"seconds", l(func(x *histLimits) { x.seconds = 150 }), 0, 2},
		{"since", l(func(x *histLimits) { x.since = now.Add(-4 * time.Minute) }), 0, 4},
		{"since future", l(func(x *histLimits) { x.since = now.Add(time.Hour) }), 0, 0},
		{"smallest of all", l(func(x *histLimits) { x.maxStanzas = 5; x.seconds = 600; x.maxChars = 250 }), 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.n - h.pick(tc.lim, now, tc.extra); got != tc.want {
				t.Fatalf("sent %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseHistory(t *testing.T) {
	x, err := xmlstream.ParseElement([]byte("<x xmlns='"+NS+"'><history maxstanzas='5' maxchars='x' seconds='-1' since='2020-01-02T03:04:05Z'/></x>"), "")
	if err != nil {
		t.Fatal(err)
	}
	l := parseHistory(x)
	if l.maxStanzas != 5 || l.maxChars != -1 || l.seconds != -1 || !l.since.Equal(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("parseHistory = %+v", l)
	}
}

func form(fields string) string {
	return "<x xmlns='" + ns.DataForms + "' type='submit'><field var='FORM_TYPE'><value>" + NSRoomConf +
		"</value></field>" + fields + "</x>"
}

func field(name string, values ...string) string {
	s := "<field var='" + name + "'>"
	for _, v := range values {
		s += "<value>" + v + "</value>"
	}
	return s + "</field>"
}

// TestParseConfigForm covers the muc#roomconfig fields of XEP-0045 §15.5.3.
func TestParseConfigForm(t *testing.T) {
	lim := formLimits{maxUsers: 100, maxHistory: 50}
	base := roomConfig{Public: true, MaxUsers: 20, AllowPM: pmAnyone, History: 20}
	for _, tc := range []struct {
		name  string
		form  string
		check func(c configForm) bool
		err   stanza.Condition
	}{
		{"empty submit keeps everything", "<x xmlns='jabber:x:data' type='submit'/>",
			func(c configForm) bool { return c.cfg == base && !c.hasOwners }, ""},
		{"booleans and text", form(field(fRoomName, "Cave") + field(fPersistent, "1") + field(fPublic, "false") +
			field(fMembersOnly, "true") + field(fModerated, "1") + field(fAllowInvites, "1") + field(fChangeSubject, "1")),
			func(c configForm) bool {
				x := c.cfg
				return x.Name == "Cave" && x.Persistent && !x.Public && x.MembersOnly && x.Moderated && x.AllowInvites && x.ChangeSubject
			}, ""},
		{"password", form(field(fPwProtected, "1") + field(fSecret, "s3")),
			func(c configForm) bool { return c.cfg.PasswordProtected && c.cfg.Password == "s3" }, ""},
		{"password dropped when not protected", form(field(fSecret, "s3")),
			func(c configForm) bool { return c.cfg.Password == "" }, ""},
		{"protected without password", form(field(fPwProtected, "1")), nil, stanza.NotAcceptable},
		{"maxusers", form(field(fMaxUsers, "50")), func(c configForm) bool { return c.cfg.MaxUsers == 50 }, ""},
		{"maxusers none", form(field(fMaxUsers, "none")), func(c configForm) bool { return c.cfg.MaxUsers == 0 }, ""},
		{"maxusers above service", form(field(fMaxUsers, "500")), nil, stanza.NotAcceptable},
		{"maxusers not a number", form(field(fMaxUsers, "many")), nil, stanza.BadRequest},
		{"whois", form(field(fWhois, "anyone")), func(c configForm) bool { return c.cfg.WhoisAnyone }, ""},
		{"whois unknown", form(field(fWhois, "none")), nil, stanza.NotAcceptable},
		{"allowpm", form(field(fAllowPM, "moderators")), func(c configForm) bool { return c.cfg.AllowPM == pmModerators }, ""},
		{"allowpm unknown", form(field(fAllowPM, "friends")), nil, stanza.NotAcceptable},
		{"history", form(field(fHistory, "5")), func(c configForm) bool { return c.cfg.History == 5 }, ""},
		{"history alt name", form(field(fHistoryAlt, "7")), func(c configForm) bool { return c.cfg.History == 7 }, ""},
		{"history above", form(field(fHistory, "51")), nil, stanza.NotAcceptable},
		{"bad boolean", form(field(fPersistent, "yes")), nil, stanza.BadRequest},
		{"owners", form(field(fOwners, "a@example.org/res", "b@example.org")),
			func(c configForm) bool {
				return c.hasOwners && len(c.owners) == 2 && c.owners[0] == "a@example.org" && !c.hasAdmins
			}, ""},
		{"no owners", form(field(fOwners)), nil, stanza.NotAcceptable},
		{"bad owner", form(field(fOwners, "@@")), nil, stanza.JIDMalformed},
		{"wrong FORM_TYPE", "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:x</value></field></x>", nil, stanza.BadRequest},
		{"not a submit", "<x xmlns='jabber:x:data' type='form'/>", nil, stanza.BadRequest},
		{"unknown fields ignored", form(field("x-custom", "1")), func(c configForm) bool { return c.cfg == base }, ""},
		{"long value", form(field(fRoomName, strings.Repeat("n", maxFieldBytes+1))), nil, stanza.NotAcceptable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := xmlstream.ParseElement([]byte(tc.form), "")
			if err != nil {
				t.Fatal(err)
			}
			got, e := parseConfigForm(x, base, lim)
			switch {
			case tc.err != "" && (e == nil || e.Condition != tc.err):
				t.Fatalf("error %v, want %s", e, tc.err)
			case tc.err == "" && e != nil:
				t.Fatalf("unexpected error %v", e)
			case tc.check != nil && !tc.check(got):
				t.Fatalf("config %+v", got)
			}
		})
	}
}

func TestCheckNick(t *testing.T) {
	for nick, want := range map[string]stanza.Condition{
		"thirdwitch":                   "",
		"Ünïcödé":                      "",
		"  ":                           stanza.JIDMalformed,
		"\u200b":                       stanza.JIDMalformed,
		strings.Repeat("n", 200):       stanza.NotAcceptable,
		"a b":                          "",
		string([]byte{0xff, 'a', 'b'}): stanza.JIDMalformed,
	} {
		if got := checkNick(nick); got != want {
			t.Errorf("checkNick(%q) = %q, want %q", nick, got, want)
		}
	}
}

// FuzzRoomConfig feeds arbitrary submitted forms (client input) to the parser: it must
// not panic, and what it accepts must respect the service bounds.
func FuzzRoomConfig(f *testing.F) {
	f.Add(form(field(fRoomName, "Cave") + field(fMaxUsers, "10")))
	f.Add(form(field(fPwProtected, "1") + field(fSecret, "pw") + field(fOwners, "a@b", "c@d/e")))
	f.Add("<x xmlns='jabber:x:data' type='submit'/>")
	f.Add(form(field(fHistory, "99999999999999999999") + field(fWhois, "anyone")))
	f.Add(form(field(fCaptcha, "1") + field(fMembersOnly, "0")))
	lim := formLimits{maxUsers: 100, maxHistory: 50}
	f.Fuzz(func(t *testing.T, s string) {
		x, err := xmlstream.ParseElement([]byte(s), "")
		if err != nil {
			return
		}
		got, e := parseConfigForm(x, roomConfig{AllowPM: pmAnyone}, lim)
		if e != nil {
			return
		}
		c := got.cfg
		if c.MaxUsers < 0 || c.MaxUsers > lim.maxUsers || c.History < 0 || c.History > lim.maxHistory {
			t.Fatalf("accepted out-of-bounds config %+v", c)
		}
		if c.PasswordProtected && c.Password == "" {
			t.Fatalf("accepted a protected room without password")
		}
		if got.hasOwners && len(got.owners) == 0 {
			t.Fatalf("accepted an empty owner list")
		}
		switch c.AllowPM {
		case pmAnyone, pmParticipants, pmModerators, pmNone:
		default:
			t.Fatalf("allowpm %q", c.AllowPM)
		}
	})
}

// TestSenderStamp: the fan-out's insertion of 'to' writes what xmlstream.SetAttrs writes.
func TestSenderStamp(t *testing.T) {
	to, _ := jid.Parse("juliet@example.org/balcony")
	for _, raw := range []string{
		"<message from='r@c/n' type='groupchat' id='a>b'><body>x</body></message>",
		`<message from="r@c/n" id='q"'><body/></message>`,
		"<presence from='r@c/n'/>",
		"<presence from='r@c/n' />",
		"<iq type='get' from='r@c/n' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
	} {
		c := &stampCtx{}
		s := newSender(c)
		s.to(to, []byte(raw))
		s.to(to, []byte(raw)) // a second recipient of the same template (new slice: recomputed)
		want := string(xmlstream.SetAttrs(nil, []byte(raw), xmlstream.AttrSet{Name: "to", Value: []byte(to.String())}))
		if c.got != want {
			t.Errorf("stamp(%s)\n got %s\nwant %s", raw, c.got, want)
		}
		if tagCut([]byte(raw)) < 0 {
			t.Errorf("tagCut(%s) < 0", raw)
		}
	}
	if tagCut([]byte("<message from='x")) != -1 || tagCut([]byte("x")) != -1 {
		t.Error("tagCut accepted an incomplete tag")
	}
}

type stampCtx struct {
	module.Context
	got string
}

func (c *stampCtx) Route(raw []byte) { c.got = string(raw) }

// FuzzModeration: whatever a client sends as a moderation request, and whatever message
// the room finds under the id, the request parses or is refused, and the tombstone is one
// well-formed message that keeps none of the message's other children.
func FuzzModeration(f *testing.F) {
	f.Add("<moderate xmlns='"+NSModerate+"' id='s1'><retract xmlns='"+NSRetract+"'/><reason>spam</reason></moderate>",
		"<message type='groupchat' from='r@c/n' id='x'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='r@c'/></message>")
	f.Add("<apply-to xmlns='"+NSFasten+"' id='s1'><moderate xmlns='"+NSModerate0+"'><retract xmlns='"+NSRetract0+"'/></moderate></apply-to>",
		"<message xmlns='jabber:client'><html xmlns='http://jabber.org/protocol/xhtml-im'><body>x</body></html><delay xmlns='urn:xmpp:delay' stamp='now'/></message>")
	f.Add("<moderate xmlns='"+NSModerate+"'/>", "<message/>")
	ojid, _ := jid.Parse("r@c/mod")
	by := &occupant{ojid: ojid, id: "occ"}
	at := time.Unix(1e9, 0)
	f.Fuzz(func(t *testing.T, req, msg string) {
		if q, ok := xmltest.IQPayload([]byte(req)); ok {
			if m, ok, e := parseModeration(q); ok && e == nil && (m.id == "" || len(m.reason) > maxReasonBytes) {
				t.Fatalf("accepted %+v", m)
			}
		}
		m, ok := xmltest.Stanza([]byte(msg))
		if !ok {
			return
		}
		tomb := tombstone(m.Raw(), by, "r1", "why", at)
		e, err := xmlstream.ParseElement(tomb, ns.Client)
		if err != nil || string(e.Name()) != "message" {
			t.Fatalf("tombstone of %q is not a message: %v\n%s", msg, err, tomb)
		}
		n := 0
		for it := e.Children(); ; {
			ch, ok := it.Next()
			if !ok {
				break
			}
			switch string(ch.Name()) {
			case "retracted":
				n++
			case "occupant-id", "stanza-id", "origin-id", "delay", "x":
			default:
				t.Fatalf("tombstone keeps <%s/>:\n%s", ch.Name(), tomb)
			}
		}
		if n != 1 {
			t.Fatalf("%d <retracted/> in\n%s", n, tomb)
		}
	})
}

// FuzzChannelSearch: whatever a client sends as an XEP-0433 search, the service answers
// with a well-formed result or form, or with an error, over a directory of three rooms.
func FuzzChannelSearch(f *testing.F) {
	sub := func(fields string) string {
		return "<search xmlns='" + NSSearch + "'><x xmlns='jabber:x:data' type='submit'>" + fields + "</x></search>"
	}
	f.Add("<search xmlns='" + NSSearch + "'/>")
	f.Add(sub("<field var='q'><value>xmpp talk</value></field><field var='sinaddress'><value>0</value></field>"))
	f.Add(sub("<field var='all'><value>true</value></field><field var='min_users'><value>0</value></field><field var='key'><value>" + orderAddress + "</value></field>"))
	f.Add("<search xmlns='" + NSSearch + "'><set xmlns='http://jabber.org/protocol/rsm'><max>1</max><after>1</after></set>" +
		"<x xmlns='jabber:x:data' type='submit'><field var='all'><value>1</value></field><field var='types'><value>xep-0369</value><value>xep-0045</value></field></x></search>")
	s := &service{}
	s.dir.rooms = map[string]*dirEntry{
		"a@c":      {name: "XMPP", public: true, occupants: 3, card: dirCard{desc: "talk", open: true}},
		"b@c":      {name: "", public: true, occupants: 1, card: dirCard{lang: "de", nonAnon: true}},
		"hidden@c": {name: "XMPP", occupants: 9},
	}
	f.Fuzz(func(t *testing.T, req string) {
		q, err := xmlstream.ParseElement([]byte(req), "")
		if err != nil {
			return
		}
		out, e := s.search(q)
		if e != nil {
			return
		}
		if _, err := xmlstream.ParseElement(out, ""); err != nil {
			t.Fatalf("%q: malformed answer %q", req, out)
		}
		if strings.Contains(string(out), "hidden@c") {
			t.Fatalf("%q: a private room in %q", req, out)
		}
	})
}
