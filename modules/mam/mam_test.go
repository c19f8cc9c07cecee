package mam_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/mam"
	"github.com/vireo-im/vireo/modules/sid"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
)

// env is a router with alice, bob, carol and dave, a [modules.mam] config and a clock that the
// test moves.
type env struct {
	*routertest.Env
	now   atomic.Int64
	start time.Time
}

// nextDay returns noon of a day after every archive id made so far: ids never go back in
// time within a process, so a test whose clock starts before where an earlier one ended
// would get later stamps than its clock says.
func nextDay() time.Time {
	return sid.Next(time.Time{}).Time().Truncate(24 * time.Hour).Add(36 * time.Hour)
}

func newEnv(t *testing.T, cfg mam.Config) *env {
	e := &env{start: nextDay()}
	e.now.Store(e.start.UnixNano())
	e.Env = routertest.New(t, []string{"alice", "bob", "carol", "dave"}, func(o *router.Options) {
		o.Now = func() time.Time { return time.Unix(0, e.now.Load()) }
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*mam.Config); ok {
				*c = cfg
			}
			return nil
		}
	})
	return e
}

func (e *env) advance(d time.Duration) { e.now.Add(int64(d)) }

// at formats the env's start plus d as form values and stamps show it.
func (e *env) at(d time.Duration, layout string) string { return e.start.Add(d).Format(layout) }

const stamp = "2006-01-02T15:04:05.000Z"

// sync waits until what s sent so far has been handled in to's shard: s asks for the
// disco#info of to's bare JID, answered there after s's earlier stanzas.
func sync(t *testing.T, s *routertest.Sess, to, id string) {
	t.Helper()
	s.Send("<iq type='get' id='" + id + "' to='" + to + "@example.org'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	s.C.Wait(t, "id='"+id+"'")
}

var (
	stanzaIDRe = regexp.MustCompile(`<stanza-id xmlns='urn:xmpp:sid:0' id='([0-9a-z]{20})' by='([^']*)'/>`)
	resultRe   = regexp.MustCompile(`<result xmlns='urn:xmpp:mam:2'(?: queryid='[^']*')? id='([0-9a-z]{20})'>`)
	bodyRe     = regexp.MustCompile(`<body>([^<]*)</body>`)
)

// query sends an archive query from s and returns the bodies of the results in the order
// they came, their ids and the IQ answer.
func query(t *testing.T, s *routertest.Sess, id, inner string) (bodies, ids []string, fin string) {
	t.Helper()
	s.C.Reset()
	s.Send("<iq type='set' id='" + id + "'><query xmlns='urn:xmpp:mam:2' queryid='" + id + "'>" + inner + "</query></iq>")
	fin = s.C.Wait(t, "<iq", "id='"+id+"'")
	for _, st := range s.C.Got() {
		if !strings.Contains(st, "queryid='"+id+"'") || !strings.HasPrefix(st, "<message") {
			continue
		}
		body := ""
		if m := bodyRe.FindStringSubmatch(st); m != nil {
			body = m[1]
		}
		bodies = append(bodies, body)
		ids = append(ids, resultRe.FindStringSubmatch(st)[1])
	}
	return bodies, ids, fin
}

func form(fields ...string) string {
	s := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
	for i := 0; i+1 < len(fields); i += 2 {
		s += "<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>"
	}
	return s + "</x>"
}

// TestMamArchivesBothSides: a message is in the sender's and the recipient's archive; the
// recipient's archive id is the stanza-id it received; a retraction is archived without a
// body; chat states, groupchat, errors and no-store messages are not archived.
func TestMamArchivesBothSides(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "phone")
	a.Send("<presence/>")
	b.Send("<presence/>")
	a.Send("<message to='bob@example.org' type='chat' id='m1'><body>one</body></message>")
	a.Send("<message to='bob@example.org' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	a.Send("<message to='bob@example.org' type='chat'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>")
	a.Send("<message to='bob@example.org' type='groupchat'><body>gc</body></message>")
	a.Send("<message to='bob@example.org' type='headline'><body>news</body></message>")
	a.Send("<message to='bob@example.org'><body>two</body><stanza-id xmlns='urn:xmpp:sid:0' id='spoof' by='bob@example.org'/></message>")
	// XEP-0424 §6: a retraction is kept without a body, for clients that catch up later.
	a.Send("<message to='bob@example.org' type='chat' id='r1'><retract xmlns='urn:xmpp:message-retract:1' id='m0'/></message>")
	got := b.C.Wait(t, "<body>two</body>")
	first := b.C.Wait(t, "<body>one</body>")
	m := stanzaIDRe.FindAllStringSubmatch(first+got, -1)
	if len(m) != 2 || m[0][2] != "bob@example.org" || strings.Contains(got, "spoof") {
		t.Fatalf("delivered stanza-ids: %q\n%s\n%s", m, first, got)
	}
	b.C.Wait(t, "id='r1'")

	bodies, ids, fin := query(t, b, "q1", "")
	if strings.Join(bodies, ",") != "one,two," || ids[0] != m[0][1] || ids[1] != m[1][1] {
		t.Fatalf("bob's archive: %v %v, delivered ids %s %s", bodies, ids, m[0][1], m[1][1])
	}
	if !strings.Contains(fin, "<fin xmlns='urn:xmpp:mam:2' complete='true'>") || !strings.Contains(fin, "<count>3</count>") ||
		!strings.Contains(fin, "<first index='0'>"+ids[0]+"</first><last>"+ids[2]+"</last>") {
		t.Fatalf("fin: %s", fin)
	}
	bodies, aids, _ := query(t, a, "q2", "")
	if strings.Join(bodies, ",") != "one,two," || aids[0] == ids[0] {
		t.Fatalf("alice's archive: %v %v", bodies, aids)
	}
	// A result forwards the message as sent, with its time.
	a.C.Reset()
	a.Send("<iq type='set' id='q3'><query xmlns='urn:xmpp:mam:2'/></iq>")
	r := a.C.Wait(t, "<body>one</body>")
	want := "<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='" + e.at(0, stamp) + "'/>" +
		"<message to='bob@example.org' type='chat' id='m1' from='alice@example.org/pc' xmlns='jabber:client'><body>one</body></message></forwarded>"
	if !strings.HasPrefix(r, "<message to='alice@example.org/pc'><result xmlns='urn:xmpp:mam:2' id='") || !strings.Contains(r, want) {
		t.Fatalf("result: %s", r)
	}
}

// TestMamArchivesPayloads: bodiless messages that a client catching up needs are archived
// (an encrypted one without a fallback body, a call proposal and its retraction, a direct
// and a mediated room invitation, a subject); receipts, markers and chat states alone are
// not, and a no-store hint wins over all of them.
func TestMamArchivesPayloads(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "phone")
	a.Send("<presence/>")
	b.Send("<presence/>")
	prev := 0
	for i, c := range []struct {
		payload string
		kept    bool
	}{
		{"<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/><payload>AAAA</payload></encrypted>", true},
		{"<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted>", true},
		{"<openpgp xmlns='urn:xmpp:openpgp:0'>BASE64</openpgp>", true},
		{"<propose xmlns='urn:xmpp:jingle-message:0' id='c1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>", true},
		{"<retract xmlns='urn:xmpp:jingle-message:0' id='c1'/>", true},
		{"<x xmlns='jabber:x:conference' jid='room@conference.example.org'/>", true},
		{"<x xmlns='http://jabber.org/protocol/muc#user'><invite from='carol@example.org'/></x>", true},
		{"<subject>plans</subject>", true},
		{"<received xmlns='urn:xmpp:receipts' id='m1'/>", false},
		{"<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>", false},
		{"<composing xmlns='http://jabber.org/protocol/chatstates'/>", false},
		{"<propose xmlns='urn:xmpp:jingle-message:0' id='c2'/><no-store xmlns='urn:xmpp:hints'/>", false},
	} {
		id := fmt.Sprintf("p%d", i)
		a.Send("<message to='bob@example.org' type='chat' id='" + id + "'>" + c.payload + "</message>")
		b.C.Wait(t, "id='"+id+"'")
		_, ids, _ := query(t, b, "q"+id, "")
		want := prev
		if c.kept {
			want++
		}
		if len(ids) != want {
			t.Errorf("%s: %d messages in bob's archive after it, want %d", c.payload, len(ids), want)
		}
		prev = len(ids)
	}
}

// TestMamPaging drives RSM and the form filters through the router.
func TestMamPaging(t *testing.T) {
	e := newEnv(t, mam.Config{MaxPage: 4})
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "phone")
	c := e.Bind("carol", "x")
	b.Send("<presence/>")
	for i := 0; i < 10; i++ {
		to := "bob"
		if i%3 == 2 {
			to = "carol"
		}
		a.Send(fmt.Sprintf("<message to='%s@example.org' type='chat'><body>%d</body></message>", to, i))
		sync(t, a, "alice", fmt.Sprint("s", i))
		e.advance(time.Minute)
	}
	c.Send("<message to='alice@example.org/pc' type='chat'><body>c</body></message>")
	a.C.Wait(t, "<body>c</body>")
	_, all, _ := query(t, a, "all", "<set xmlns='http://jabber.org/protocol/rsm'><max>100</max></set>")
	if len(all) != 4 {
		t.Fatalf("max_page 4: got %d", len(all))
	}
	for i, tc := range []struct {
		inner, bodies, fin string
	}{
		{"", "0,1,2,3", "complete='false'"},
		{form("with", "bob@example.org"), "0,1,3,4", "<count>7</count>"},
		{form("with", "carol@example.org"), "2,5,8,c", "complete='true'"},
		{form("with", "carol@example.org/x"), "c", "<count>1</count>"},
		{form("with", "carol@example.org/y"), "", "<set xmlns='http://jabber.org/protocol/rsm'><count>0</count></set>"},
		{form("start", e.at(3*time.Minute, time.RFC3339), "end", e.at(5*time.Minute, time.RFC3339)), "3,4,5", "<first index='0'>"},
		{form("end", e.at(3*time.Minute-time.Millisecond, stamp)), "0,1,2", "complete='true'"},
		{form("start", e.at(9*time.Minute+time.Millisecond, stamp)), "c", "<first index='0'>"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set>", "9,c", "<first index='9'>"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>3</max><index>2</index></set>", "2,3,4", "<first index='2'>"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>3</max></set><flip-page/>", "2,1,0", "complete='false'"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set>", "", "<count>11</count>"},
		{form("with", "bob@example.org") + "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set><flip-page/>", "9,7", "complete='false'"},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			bodies, _, fin := query(t, a, fmt.Sprint("p", i), tc.inner)
			if strings.Join(bodies, ",") != tc.bodies || !strings.Contains(fin, tc.fin) {
				t.Fatalf("%s: got %v\n%s\nwant %s, %s", tc.inner, bodies, fin, tc.bodies, tc.fin)
			}
		})
	}
	// Paging forwards with after, then backwards with before, covers everything once.
	var fwd []string
	after := ""
	for {
		set := "<set xmlns='http://jabber.org/protocol/rsm'><max>3</max>" + after + "</set>"
		bodies, ids, fin := query(t, a, "f", set)
		fwd = append(fwd, bodies...)
		if strings.Contains(fin, "complete='true'") {
			break
		}
		after = "<after>" + ids[len(ids)-1] + "</after>"
	}
	var back []string
	before := "<before/>"
	for {
		set := "<set xmlns='http://jabber.org/protocol/rsm'><max>3</max>" + before + "</set>"
		bodies, ids, fin := query(t, a, "b", set)
		back = append(append([]string(nil), bodies...), back...)
		if strings.Contains(fin, "complete='true'") {
			break
		}
		before = "<before>" + ids[0] + "</before>"
	}
	if f, b := strings.Join(fwd, ","), strings.Join(back, ","); f != "0,1,2,3,4,5,6,7,8,9,c" || b != f {
		t.Fatalf("forward %s, backward %s", f, b)
	}
}

// TestMamErrors: ids not in the archive, unknown fields, bad values, someone else's archive.
func TestMamErrors(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "phone")
	a.Send("<message to='bob@example.org' type='chat'><body>x</body></message>")
	sync(t, a, "bob", "s")
	_, bids, _ := query(t, b, "q", "")
	if len(bids) != 1 {
		t.Fatalf("bob has %d", len(bids))
	}
	for i, tc := range []struct{ inner, want string }{
		{"<set xmlns='http://jabber.org/protocol/rsm'><after>" + bids[0] + "</after></set>", "item-not-found"}, // bob's id, alice's archive
		{"<set xmlns='http://jabber.org/protocol/rsm'><before>nope</before></set>", "item-not-found"},
		{form("after-id", "0000000000000000000a"), "item-not-found"},
		{form("ids", bids[0]), "item-not-found"},
		{form("{urn:example}x", "1"), "feature-not-implemented"},
		{form("start", "yesterday"), "bad-request"},
		{form("with", "a@@b"), "jid-malformed"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>", "bad-request"},
		{"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x>", "bad-request"},
	} {
		_, _, fin := query(t, a, fmt.Sprint("e", i), tc.inner)
		if !strings.Contains(fin, "type='error'") || !strings.Contains(fin, "<"+tc.want) {
			t.Errorf("%s: %s, want %s", tc.inner, fin, tc.want)
		}
	}
	// Bob cannot read or configure alice's archive.
	b.C.Reset()
	for i, p := range []string{
		"<iq type='set' id='x%d' to='alice@example.org'><query xmlns='urn:xmpp:mam:2'/></iq>",
		"<iq type='get' id='x%d' to='alice@example.org'><metadata xmlns='urn:xmpp:mam:2'/></iq>",
		"<iq type='set' id='x%d' to='alice@example.org'><prefs xmlns='urn:xmpp:mam:2' default='never'/></iq>",
	} {
		b.Send(fmt.Sprintf(p, i))
		got := b.C.Wait(t, fmt.Sprintf("id='x%d'", i))
		if !strings.Contains(got, "<forbidden") {
			t.Errorf("bob at alice's archive: %s", got)
		}
	}
	if strings.Contains(b.C.All(), "<result xmlns='urn:xmpp:mam:2'") {
		t.Fatalf("bob got archive results:\n%s", b.C.All())
	}
}

// TestMamFormMetadataPrefs: the form, metadata and preferences.
func TestMamFormMetadataPrefs(t *testing.T) {
	e := newEnv(t, mam.Config{})
	e.Store.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth})
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "phone")
	c := e.Bind("carol", "x")
	a.Send("<presence/>")
	a.Send("<iq type='get' id='f'><query xmlns='urn:xmpp:mam:2'/></iq>")
	if got := a.C.Wait(t, "id='f'"); !strings.Contains(got, "var='after-id'") || !strings.Contains(got, "<open/>") {
		t.Fatalf("form: %s", got)
	}
	a.Send("<iq type='get' id='m0'><metadata xmlns='urn:xmpp:mam:2'/></iq>")
	if got := a.C.Wait(t, "id='m0'"); !strings.Contains(got, "<metadata xmlns='urn:xmpp:mam:2'/>") {
		t.Fatalf("empty metadata: %s", got)
	}
	a.Send("<iq type='get' id='g0'><prefs xmlns='urn:xmpp:mam:2'/></iq>")
	if got := a.C.Wait(t, "id='g0'"); !strings.Contains(got, "<prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never/></prefs>") {
		t.Fatalf("default prefs: %s", got)
	}
	a.Send("<iq type='set' id='s0'><prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>carol@example.org</jid></always><never><jid>bob@example.org/phone</jid></never></prefs></iq>")
	want := "<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>carol@example.org</jid></always><never><jid>bob@example.org/phone</jid></never></prefs>"
	if got := a.C.Wait(t, "id='s0'"); !strings.Contains(got, want) {
		t.Fatalf("set prefs: %s", got)
	}
	a.Send("<iq type='set' id='s1'><prefs xmlns='urn:xmpp:mam:2' default='sometimes'/></iq>")
	a.C.Wait(t, "id='s1'", "bad-request")
	// never wins for bob/phone, bob/pc is in the roster, carol is always, dave is none.
	b2, d := e.Bind("bob", "pc"), e.Bind("dave", "x")
	for _, x := range []struct {
		s    *routertest.Sess
		body string
	}{{b, "from phone"}, {b2, "from pc"}, {c, "from carol"}, {d, "from dave"}} {
		x.s.Send("<message to='alice@example.org' type='chat'><body>" + x.body + "</body></message>")
		a.C.Wait(t, x.body) // in alice's archive before the next one
	}
	bodies, ids, _ := query(t, a, "q", "")
	if strings.Join(bodies, ",") != "from pc,from carol" {
		t.Fatalf("with prefs: %v", bodies)
	}
	a.Send("<iq type='get' id='m1'><metadata xmlns='urn:xmpp:mam:2'/></iq>")
	got := a.C.Wait(t, "id='m1'")
	if !strings.Contains(got, "<start id='"+ids[0]+"' timestamp='"+e.at(0, stamp)+"'/><end id='"+ids[1]+"'") {
		t.Fatalf("metadata: %s", got)
	}
}

// TestMamAccountDeletion: deleting the account deletes its archive, and only its own.
func TestMamAccountDeletion(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a := e.Bind("alice", "pc")
	a.Send("<message to='bob@example.org' type='chat'><body>x</body></message>")
	a.Send("<iq type='set' id='s'><prefs xmlns='urn:xmpp:mam:2' default='always'/></iq>")
	a.C.Wait(t, "id='s'")
	b := e.Bind("bob", "phone")
	if _, ids, _ := query(t, b, "q", ""); len(ids) != 1 {
		t.Fatalf("bob has %d", len(ids))
	}
	rows := func(user string) int {
		n := 0
		e.Store.Table("mam").Scan(store.UserKey(user), func(_, _ []byte) bool { n++; return true })
		return n
	}
	if rows("alice@example.org") != 3 { // message, index row, preferences
		t.Fatalf("alice has %d rows", rows("alice@example.org"))
	}
	if err := e.Store.Accounts().Delete("alice@example.org"); err != nil {
		t.Fatal(err)
	}
	if n := rows("alice@example.org"); n != 0 {
		t.Fatalf("%d archive rows survived the account", n)
	}
	if n := rows("bob@example.org"); n != 2 {
		t.Fatalf("bob's archive has %d rows after alice went", n)
	}
}

// TestMamSelfAndHints: a message to one's own account is archived once; a bodiless
// message with a <store/> hint is archived under a stanza-id stamped by the archive.
func TestMamSelfAndHints(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a, a2 := e.Bind("alice", "pc"), e.Bind("alice", "phone")
	a2.Send("<presence/>")
	a.Send("<message to='alice@example.org/phone' type='chat'><body>note to self</body></message>")
	a2.C.Wait(t, "note to self")
	bodies, _, _ := query(t, a, "q1", form("with", "alice@example.org"))
	if strings.Join(bodies, ",") != "note to self" {
		t.Fatalf("self messages: %v", bodies)
	}
	b := e.Bind("bob", "x")
	b.Send("<message to='alice@example.org' type='chat'><received xmlns='urn:xmpp:receipts' id='r1'/><store xmlns='urn:xmpp:hints'/></message>")
	got := a2.C.Wait(t, "urn:xmpp:receipts")
	m := stanzaIDRe.FindStringSubmatch(got)
	if m == nil || m[2] != "alice@example.org" {
		t.Fatalf("stored receipt delivered without a stanza-id: %s", got)
	}
	_, ids, _ := query(t, a, "q2", form("with", "bob@example.org"))
	if len(ids) != 1 || ids[0] != m[1] {
		t.Fatalf("receipt archived as %v, delivered as %s", ids, m[1])
	}
}

// TestMamOffline: a message for an offline user is archived and stored offline; the copy
// delivered at login carries the archive id.
func TestMamOffline(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a := e.Bind("alice", "pc")
	a.Send("<message to='bob@example.org' type='chat'><body>while you were out</body></message>")
	sync(t, a, "bob", "s")
	if n, _ := e.Store.Offline().Count("bob@example.org"); n != 1 {
		t.Fatalf("offline: %d", n)
	}
	b := e.Bind("bob", "phone")
	b.Send("<presence/>")
	got := b.C.Wait(t, "while you were out")
	m := stanzaIDRe.FindStringSubmatch(got)
	_, ids, _ := query(t, b, "q", "")
	if m == nil || len(ids) != 1 || ids[0] != m[1] || !strings.Contains(got, "Offline Storage") {
		t.Fatalf("offline copy %s, archive %v", got, ids)
	}
}

// TestMamFlowControl: a page larger than a batch waits for the connection to write it;
// the IQ result comes after the last message.
func TestMamFlowControl(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a := e.Bind("alice", "pc")
	body := strings.Repeat("z", 4<<10)
	for i := 0; i < 40; i++ {
		a.Send(fmt.Sprintf("<message to='bob@example.org' type='chat'><body>%d %s</body></message>", i, body))
	}
	sync(t, a, "alice", "s")
	bodies, _, fin := query(t, a, "all", "<set xmlns='http://jabber.org/protocol/rsm'><max>40</max></set>")
	if len(bodies) != 40 || !strings.Contains(fin, "complete='true'") {
		t.Fatalf("%d results, %s", len(bodies), fin)
	}
	for i, b := range bodies {
		if !strings.HasPrefix(b, fmt.Sprint(i, " ")) {
			t.Fatalf("result %d is %.8s", i, b)
		}
	}
	if got := a.C.Got(); !strings.Contains(got[len(got)-1], "<fin ") {
		t.Fatalf("the IQ result is not last")
	}
	// A client that does not read gets the first batch only, and no IQ result yet.
	a.C.Reset()
	a.C.HoldDrain.Store(true)
	a.Send("<iq type='set' id='held'><query xmlns='urn:xmpp:mam:2' queryid='held'/></iq>")
	a.C.Wait(t, "queryid='held'")
	time.Sleep(50 * time.Millisecond)
	n := strings.Count(a.C.All(), "queryid='held'")
	if n < 10 || n >= 40 || strings.Contains(a.C.All(), "id='held'><fin") {
		t.Fatalf("%d results before the connection wrote any", n)
	}
	// Pages asked for meanwhile wait behind it, in order, up to a bound: no more parked
	// sends, and nothing of theirs goes out before the held page is written.
	for i := range 9 {
		a.Send(fmt.Sprintf("<iq type='set' id='w%d'><query xmlns='urn:xmpp:mam:2' queryid='w%d'/></iq>", i, i))
	}
	a.C.Wait(t, "id='w8'", "type='error'", "<resource-constraint")
	if got := a.C.All(); strings.Contains(got, "queryid='w0'") || strings.Contains(got, "id='w7'") {
		t.Fatal("a waiting page went out before the held one was written")
	}
}

// TestMamPagesInTurn: pages asked for back to back go out one after the other, each
// whole before the next begins, each with its IQ result.
func TestMamPagesInTurn(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a := e.Bind("alice", "pc")
	body := strings.Repeat("z", 4<<10)
	for i := 0; i < 30; i++ {
		a.Send(fmt.Sprintf("<message to='bob@example.org' type='chat'><body>%d %s</body></message>", i, body))
	}
	sync(t, a, "alice", "s")
	for i := range 3 {
		a.Send(fmt.Sprintf("<iq type='set' id='q%d'><query xmlns='urn:xmpp:mam:2' queryid='q%d'/></iq>", i, i))
	}
	a.C.Wait(t, "id='q2'", "<fin ")
	last := -1
	for _, st := range a.C.Got() {
		for i := range 3 {
			if strings.Contains(st, fmt.Sprintf("queryid='q%d'", i)) || strings.Contains(st, fmt.Sprintf("id='q%d'", i)) {
				if i < last {
					t.Fatalf("page q%d after q%d began", i, last)
				}
				last = i
			}
		}
	}
}

// TestMamRetention: messages older than the retention disappear from queries and
// metadata at once.
func TestMamRetention(t *testing.T) {
	e := newEnv(t, mam.Config{Retention: "1h"})
	a := e.Bind("alice", "pc")
	a.Send("<message to='bob@example.org' type='chat'><body>old</body></message>")
	sync(t, a, "alice", "s1")
	e.advance(50 * time.Minute)
	a.Send("<message to='bob@example.org' type='chat'><body>new</body></message>")
	sync(t, a, "alice", "s2")
	if bodies, _, _ := query(t, a, "q1", ""); strings.Join(bodies, ",") != "old,new" {
		t.Fatalf("before expiry: %v", bodies)
	}
	e.advance(20 * time.Minute)
	bodies, ids, fin := query(t, a, "q2", "")
	if strings.Join(bodies, ",") != "new" || !strings.Contains(fin, "<count>1</count>") {
		t.Fatalf("after expiry: %v %s", bodies, fin)
	}
	a.Send("<iq type='get' id='m'><metadata xmlns='urn:xmpp:mam:2'/></iq>")
	if got := a.C.Wait(t, "id='m'"); !strings.Contains(got, "<start id='"+ids[0]+"'") {
		t.Fatalf("metadata: %s", got)
	}
}

// TestMamSpoofedStanzaID: a stanza-id by='recipient' that the sender put in is never the
// archive id, with a body (sid stamps) or without (the archive stamps): a sender cannot
// choose, and so overwrite, a row of someone else's archive.
func TestMamSpoofedStanzaID(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "x")
	a.Send("<presence/>")
	b.Send("<message to='alice@example.org' type='chat'><body>first</body></message>")
	a.C.Wait(t, "first")
	_, ids, _ := query(t, a, "q1", "")
	victim := ids[0]
	for i, m := range []string{
		"<body>replaced</body>",
		"<received xmlns='urn:xmpp:receipts' id='r'/><store xmlns='urn:xmpp:hints'/>",
	} {
		b.Send(fmt.Sprintf("<message to='alice@example.org' type='chat' id='s%d'>%s<stanza-id xmlns='urn:xmpp:sid:0' id='%s' by='alice@example.org'/></message>", i, m, victim))
		got := a.C.Wait(t, fmt.Sprintf("id='s%d'", i))
		if strings.Contains(got, victim) || len(stanzaIDRe.FindAllString(got, -1)) != 1 {
			t.Fatalf("delivered: %s", got)
		}
	}
	bodies, ids, _ := query(t, a, "q2", "")
	if len(ids) != 3 || ids[0] != victim || bodies[0] != "first" || ids[1] == victim || ids[2] == victim {
		t.Fatalf("archive after spoofing: %v %v", bodies, ids)
	}
}

// TestMamRetract: XEP-0424 §5 in user archives. A retraction of one's own message, named
// by its id or origin-id, leaves a tombstone with the retraction's id in both archives,
// and is archived itself; a retraction of the other party's message, or of an unknown id,
// changes nothing.
func TestMamRetract(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "phone")
	a.Send("<presence/>")
	b.Send("<presence/>")
	a.Send("<message to='bob@example.org' type='chat' id='m1'><body>wrong window</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>")
	a.Send("<message to='bob@example.org' type='chat' id='m2'><body>stays</body></message>")
	b.C.Wait(t, "<body>stays</body>")
	b.Send("<message to='alice@example.org' type='chat' id='x1'><retract xmlns='urn:xmpp:message-retract:1' id='m2'/></message>") // not his
	a.Send("<message to='bob@example.org' type='chat' id='x2'><retract xmlns='urn:xmpp:message-retract:1' id='nope'/></message>")
	a.Send("<message to='bob@example.org' type='chat' id='r1'><retract xmlns='urn:xmpp:message-retract:1' id='o1'/>" +
		"<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/><body>/me retracted a message</body></message>")
	b.C.Wait(t, "id='r1'")
	a.C.Wait(t, "id='x1'")
	for _, s := range []*routertest.Sess{a, b} {
		bodies, _, _ := query(t, s, "q", "")
		if strings.Join(bodies, "|") != "|stays|||/me retracted a message" {
			t.Fatalf("archive bodies %q", bodies)
		}
		s.C.Reset()
		s.Send("<iq type='set' id='q2'><query xmlns='urn:xmpp:mam:2'/></iq>")
		got := s.C.Wait(t, "<iq", "id='q2'")
		all := strings.Join(s.C.Got(), "\n")
		if strings.Contains(all, "wrong window") || !strings.Contains(all, "<retracted xmlns='urn:xmpp:message-retract:1' stamp='") ||
			!strings.Contains(all, "id='r1'/></message>") || !strings.Contains(all, "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>") {
			t.Fatalf("archive after the retraction (%s):\n%s", got, all)
		}
	}
	a.Send("<iq type='get' to='alice@example.org' id='info'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='info'", "<feature var='urn:xmpp:message-retract:1#tombstone'/>")
}

// TestMamStanzaIDOnlyWhenArchived: a message with a body the archive does not keep (a
// headline, a no-store hint) reaches its recipient without a stanza-id by the account,
// which clients would take for an archive id that no query finds.
func TestMamStanzaIDOnlyWhenArchived(t *testing.T) {
	e := newEnv(t, mam.Config{})
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "x")
	a.Send("<presence/>")
	for i, m := range []string{
		"<message to='alice@example.org' type='headline' id='n0'><body>news</body></message>",
		"<message to='alice@example.org' type='chat' id='n1'><body>off the record</body><no-store xmlns='urn:xmpp:hints'/></message>",
		"<message to='alice@example.org' type='chat' id='n2'><body>kept</body></message>",
	} {
		b.Send(m)
		got := a.C.Wait(t, fmt.Sprintf("id='n%d'", i))
		if has := stanzaIDRe.MatchString(got + a.C.Wait(t, "</message>")); has != (i == 2) {
			t.Errorf("message %d: stanza-id %v: %s", i, has, got)
		}
		a.C.Reset()
	}
}

// TestMamSidOffOnHost: on a host that turns the sid module off, a stanza-id the sender put
// in a message is not trusted as the archive id: the archive stamps its own.
func TestMamSidOffOnHost(t *testing.T) {
	e := newEnv(t, mam.Config{})
	if err := e.R.SetHostModules(map[string][]string{"example.org": {"sid"}}); err != nil {
		t.Fatal(err)
	}
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "x")
	a.Send("<presence/>")
	b.Send("<message to='alice@example.org' type='chat'><body>first</body></message>")
	a.C.Wait(t, "first")
	_, ids, _ := query(t, a, "q1", "")
	victim := ids[0]
	b.Send("<message to='alice@example.org' type='chat' id='s1'><body>replaced</body><stanza-id xmlns='urn:xmpp:sid:0' id='" + victim + "' by='alice@example.org'/></message>")
	a.C.Wait(t, "id='s1'")
	bodies, ids, _ := query(t, a, "q2", "")
	if len(ids) != 2 || ids[0] != victim || bodies[0] != "first" || ids[1] == victim {
		t.Fatalf("archive after spoofing: %v %v", bodies, ids)
	}
}

// TestMamPrefsCacheReloadAndRemoval: a user who never stored preferences follows the
// host's default as a reload changes it, though their preferences were read (and cached)
// before; a removed account's stored preferences do not pass to the next account of
// that name.
func TestMamPrefsCacheReloadAndRemoval(t *testing.T) {
	e := newEnv(t, mam.Config{})
	b := e.Bind("bob", "pc")
	getDefault := func(s *routertest.Sess, id string) string {
		t.Helper()
		s.Send("<iq type='get' id='" + id + "'><prefs xmlns='urn:xmpp:mam:2'/></iq>")
		got := s.C.Wait(t, "id='"+id+"'")
		m := regexp.MustCompile(`default='(\w+)'`).FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("no default in %s", got)
		}
		return m[1]
	}
	if d := getDefault(b, "g1"); d != "always" {
		t.Fatalf("default %s", d)
	}
	apply, err := e.HostSettings("mam", "example.org", func(v any) { v.(*mam.Config).Default = "never" })
	if err != nil {
		t.Fatal(err)
	}
	apply()
	if d := getDefault(b, "g2"); d != "never" {
		t.Fatalf("after the reload, default %s, want never", d)
	}

	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='s'><prefs xmlns='urn:xmpp:mam:2' default='roster'/></iq>")
	a.C.Wait(t, "id='s'", "type='result'")
	a.Unbind()
	if err := e.Store.Accounts().Delete("alice@example.org"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := e.Store.Accounts().Create(store.Account{User: "alice@example.org"})
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrRemoving) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	a2 := e.Bind("alice", "pc")
	if d := getDefault(a2, "g3"); d != "never" {
		t.Fatalf("the new alice's default is %s, want the host's (never)", d)
	}
}

// syncCounter counts the store's lazy-write syncs.
type syncCounter struct {
	*pebblestore.Store
	syncs atomic.Int32
}

func (s *syncCounter) SyncLazy() error {
	s.syncs.Add(1)
	return s.Store.SyncLazy()
}

// TestMamQuerySyncsLazyWrites: an archive query's answer goes out past the router's
// IQ answers, yet acknowledges the messages archived lazily before it: they are made
// durable before any result is sent.
func TestMamQuerySyncsLazyWrites(t *testing.T) {
	var sc *syncCounter
	e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
		sc = &syncCounter{Store: o.Store.(*pebblestore.Store)}
		o.Store = sc
	})
	a := e.Bind("alice", "pc")
	b := e.Bind("bob", "pc")
	a.Send("<message to='bob@example.org/pc' type='chat' id='m1'><body>hi</body></message>")
	b.C.Wait(t, "id='m1'")
	before := sc.syncs.Load()
	_, ids, _ := query(t, a, "q1", "")
	if len(ids) != 1 {
		t.Fatalf("%d results", len(ids))
	}
	if sc.syncs.Load() == before {
		t.Fatal("the query was answered without a sync of the lazy writes")
	}
}
