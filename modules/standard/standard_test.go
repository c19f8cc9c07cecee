package standard_test

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
)

// hookOnly are features implemented by hooks rather than by IQ handlers of their own
// namespace (urn:xmpp:bookmarks:1#compat is the jabber:iq:private handler's, XEP-0402 §5.3;
// urn:xmpp:pep-vcard-conversion:0 the vCard and PEP handlers', XEP-0398 §2;
// urn:xmpp:reporting:1 the blocking handler's, XEP-0377 §5; urn:xmpp:message-retract:1
// the archive's hook, XEP-0424 §2).
var hookOnly = map[string]bool{
	"urn:xmpp:sid:0": true, "urn:xmpp:hints": true, "msgoffline": true,
	"urn:xmpp:features:rosterver": true, "urn:xmpp:features:pre-approval": true,
	"urn:xmpp:bookmarks:1#compat": true, "urn:xmpp:bookmarks:1#compat-pep": true, "urn:xmpp:pep-vcard-conversion:0": true,
	"urn:xmpp:reporting:1": true, "urn:xmpp:message-retract:1": true, "urn:xmpp:message-retract:1#tombstone": true,
	"http://jabber.org/protocol/rsm": true, // the <set/> inside the archive's and PEP's queries
}

// TestEveryFeatureIsHandled: disco lists exactly what is implemented. Each feature is
// either an IQ namespace with a handler that answers (not service-unavailable) or a
// hook-implemented one from the list above.
func TestEveryFeatureIsHandled(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	info := a.C.Wait(t, "id='d'")
	handled := map[string]bool{}
	for _, k := range e.R.IQHandlers() {
		handled[k.NS] = true
	}
	for _, f := range e.R.Features() {
		if !strings.Contains(info, "var='"+f+"'") {
			t.Errorf("feature %s registered but not in disco#info", f)
		}
		// A '#' sub-feature (urn:xmpp:mam:2#extended, pubsub#publish-options) belongs to
		// the handlers of its namespace.
		base, _, _ := strings.Cut(f, "#")
		if !handled[f] && !handled[base] && !hookOnly[f] {
			t.Errorf("feature %s advertised without a handler", f)
		}
	}
	for i, k := range e.R.IQHandlers() {
		if k.Set {
			continue
		}
		id := "q" + string(rune('a'+i))
		a.Send("<iq type='get' id='" + id + "'><" + k.Local + " xmlns='" + k.NS + "'/></iq>")
		got := a.C.Wait(t, "id='"+id+"'")
		if strings.Contains(got, "service-unavailable") || strings.Contains(got, "feature-not-implemented") {
			t.Errorf("get {%s}%s: %s", k.NS, k.Local, got)
		}
	}
	if !strings.Contains(info, "category='server'") {
		t.Fatalf("no server identity: %s", info)
	}
}

func TestSimpleQueries(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	a := e.Bind("alice", "pc")
	for _, tc := range []struct{ send, want string }{
		{"<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>", "type='result'"},
		{"<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>", "<name>Vireo</name>"},
		{"<iq type='get' id='t1'><time xmlns='urn:xmpp:time'/></iq>", "<utc>"},
		{"<iq type='get' id='l1'><query xmlns='jabber:iq:last'/></iq>", "seconds="},
		{"<iq type='get' id='i1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "disco#items"},
		{"<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>", "<registered/>"},
		{"<iq type='get' id='n1'><query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>", "item-not-found"},
	} {
		a.Send(tc.send)
		id := tc.send[strings.Index(tc.send, "id='"):]
		id = id[:strings.Index(id[4:], "'")+5]
		a.C.Wait(t, id, tc.want)
	}
}

func TestLastActivity(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	b := e.Bind("bob", "pc")
	b.Send("<presence/>")
	b.Unbind()
	a := e.Bind("alice", "pc")
	a.Send("<iq type='get' id='x' to='bob@example.org'><query xmlns='jabber:iq:last'/></iq>")
	a.C.Wait(t, "id='x'", "forbidden")
	// With a subscription ('from' on bob's side) alice may ask.
	e.Store.Rosters().Put("bob@example.org", store.RosterItem{JID: "alice@example.org", Sub: store.SubFrom})
	a.Send("<iq type='get' id='y' to='bob@example.org'><query xmlns='jabber:iq:last'/></iq>")
	a.C.Wait(t, "id='y'", "seconds='")
}

func TestVCardAndAvatarHash(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	photo := base64.StdEncoding.EncodeToString([]byte("not really a png"))
	a.Send("<iq type='set' id='s'><vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>" + photo + "</BINVAL></PHOTO></vCard></iq>")
	a.C.Wait(t, "id='s'", "type='result'")
	b := e.Bind("bob", "pc")
	b.Send("<iq type='get' id='g' to='alice@example.org'><vCard xmlns='vcard-temp'/></iq>")
	b.C.Wait(t, "id='g'", "<FN>Alice</FN>")
	a.Send("<presence/>")
	// sha1("not really a png")
	a.C.Wait(t, "<photo>", "vcard-temp:x:update")
	big := strings.Repeat("x", 70<<10)
	a.Send("<iq type='set' id='big'><vCard xmlns='vcard-temp'><NOTE>" + big + "</NOTE></vCard></iq>")
	a.C.Wait(t, "id='big'", "not-acceptable")
	b.Send("<iq type='get' id='g2' to='alice@example.org'><vCard xmlns='vcard-temp'/></iq>")
	if got := b.C.Wait(t, "id='g2'"); strings.Contains(got, "xxxx") {
		t.Fatal("oversized vCard was stored")
	}
}

func TestPrivateStorage(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='s'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs></query></iq>")
	a.C.Wait(t, "id='s'", "type='result'")
	a.Send("<iq type='get' id='g'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>")
	a.C.Wait(t, "id='g'", "<theme>dark</theme>")
	a.Send("<iq type='set' id='bad'><query xmlns='jabber:iq:private'><x xmlns='jabber:client'/></query></iq>")
	a.C.Wait(t, "id='bad'", "not-acceptable")
}

func TestBlocking(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	a2 := e.Bind("alice", "phone")
	b := e.Bind("bob", "pc")
	a2.Send("<iq type='get' id='l'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	a2.C.Wait(t, "id='l'", "type='result'")
	a.Send("<iq type='set' id='bl'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.org'/></block></iq>")
	a.C.Wait(t, "id='bl'", "type='result'")
	a2.C.Wait(t, "<block xmlns='urn:xmpp:blocking'>") // push to the other resource, which keeps the list
	b.Send("<message to='alice@example.org/pc' type='chat' id='m1'><body>hi</body></message>")
	b.C.Wait(t, "id='m1'", "service-unavailable")
	a.C.Never(t, "<body>hi</body>")
	a.Send("<message to='bob@example.org/pc' type='chat' id='m2'><body>yo</body></message>")
	a.C.Wait(t, "id='m2'", "urn:xmpp:blocking:errors")
	a.Send("<iq type='get' id='list'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	a.C.Wait(t, "id='list'", "jid='bob@example.org'")
	a.Send("<iq type='set' id='ub'><unblock xmlns='urn:xmpp:blocking'/></iq>")
	a.C.Wait(t, "id='ub'", "type='result'")
	b.Send("<message to='alice@example.org/pc' type='chat' id='m3'><body>again</body></message>")
	a.C.Wait(t, "<body>again</body>")
}

func TestCarbons(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a1 := e.Bind("alice", "pc")
	a2 := e.Bind("alice", "phone")
	b := e.Bind("bob", "pc")
	carbonsOn(t, a1, a2)
	a2.C.Wait(t, "from='alice@example.org/pc'")
	a1.Send("<message to='bob@example.org/pc' type='chat' id='s1'><body>sent copy</body></message>")
	b.C.Wait(t, "sent copy")
	got := a2.C.Wait(t, "<sent xmlns='urn:xmpp:carbons:2'>", "sent copy")
	if !strings.Contains(got, "xmlns='jabber:client'") {
		t.Fatalf("forwarded message without its namespace: %s", got)
	}
	b.Send("<message to='alice@example.org/pc' type='chat' id='r1'><body>received copy</body></message>")
	a1.C.Wait(t, "received copy")
	a2.C.Wait(t, "<received xmlns='urn:xmpp:carbons:2'>", "received copy")
	b.Send("<message to='alice@example.org/pc' type='chat' id='p1'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>")
	a1.C.Wait(t, "secret")
	a2.C.Never(t, "secret")
	// A receipt or a marker of type normal syncs the other devices too (XEP-0280 §6).
	b.Send("<message to='alice@example.org/pc' id='rc'><received xmlns='urn:xmpp:receipts' id='s1'/></message>")
	a2.C.Wait(t, "<received xmlns='urn:xmpp:carbons:2'>", "urn:xmpp:receipts")
	b.Send("<message to='alice@example.org/pc' id='mk'><displayed xmlns='urn:xmpp:chat-markers:0' id='s1'/></message>")
	a2.C.Wait(t, "<received xmlns='urn:xmpp:carbons:2'>", "urn:xmpp:chat-markers:0")
	// A room's private message to one occupant's full JID is for that resource only.
	b.Send("<message to='alice@example.org/pc' type='chat' id='pm'><body>whisper</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>")
	a1.C.Wait(t, "whisper")
	a2.C.Never(t, "whisper")
	// One the user sends in a room is copied: the other resources show the conversation.
	a1.Send("<message to='bob@example.org/pc' type='chat' id='pm2'><body>whisper back</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>")
	a2.C.Wait(t, "<sent xmlns='urn:xmpp:carbons:2'>", "whisper back")
}

func TestStanzaID(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	b := e.Bind("bob", "pc")
	// The claim goes however the address is spelled (XEP-0359 §4 compares prepared
	// addresses, as clients do).
	for i, by := range []string{"bob@example.org", "Bob@example.org", "bob@EXAMPLE.org."} {
		body := fmt.Sprintf("<body>one %d</body>", i)
		a.Send("<message to='bob@example.org/pc' type='chat'>" + body + "<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='" + by + "'/></message>")
		got := b.C.Wait(t, body)
		if strings.Contains(got, "forged") {
			t.Fatalf("spoofed stanza-id by %s kept: %s", by, got)
		}
		if !strings.Contains(got, "<stanza-id xmlns='urn:xmpp:sid:0' id='") || !strings.Contains(got, "by='bob@example.org'") {
			t.Fatalf("no stanza-id: %s", got)
		}
	}
}

func TestRegisterPasswordAndRemove(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	e.Store.Accounts().SetCredentials("alice@example.org", [3]store.Credentials{})
	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='pw'><query xmlns='jabber:iq:register'><username>alice</username><password>new secret</password></query></iq>")
	a.C.Wait(t, "id='pw'", "type='result'")
	acc, err := e.Store.Accounts().Get("alice@example.org")
	if err != nil || acc.Creds[store.SHA256].Iter == 0 {
		t.Fatalf("credentials not changed: %+v %v", acc, err)
	}
	a.Send("<iq type='set' id='wrong'><query xmlns='jabber:iq:register'><username>mallory</username><password>x</password></query></iq>")
	a.C.Wait(t, "id='wrong'", "not-authorized")
	a.Send("<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	a.C.Wait(t, "id='rm'", "type='result'")
	deadline := time.Now().Add(5 * time.Second)
	for a.C.Closed() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if a.C.Closed() == "" {
		t.Fatal("session not closed after account removal")
	}
	if _, err := e.Store.Accounts().Get("alice@example.org"); err == nil {
		t.Fatal("account still exists")
	}
}

var _ = module.IQGet

// TestSubscriptionFlood: pending inbound subscription requests are capped per user, so a
// flood from many JIDs cannot fill the store.
func TestSubscriptionFlood(t *testing.T) {
	e := routertest.New(t, []string{"alice", "mallory"}, nil)
	m := e.Bind("mallory", "pc")
	// The server stamps every request with the sender's bare JID, so one client makes
	// one pending request; the other 499 are written straight into the table below.
	m.Send("<presence to='alice@example.org' type='subscribe'/>")
	t1 := e.Store.Table("subreq")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		t1.Scan(store.UserKey("alice@example.org"), func(_, _ []byte) bool { n++; return true })
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Fill up to the cap from other (fake) contacts, then one more must not be stored.
	for i := 0; i < 499; i++ {
		t1.Set(store.UserKey("alice@example.org", "x"+strings.Repeat("y", i%5)+string(rune('a'+i%26))+"@z"+strconv.Itoa(i)), []byte("<presence/>"))
	}
	e.Store.Accounts().Create(store.Account{User: "late@example.org"})
	l := e.Bind("late", "pc")
	l.Send("<presence to='alice@example.org' type='subscribe'/>")
	time.Sleep(200 * time.Millisecond)
	if _, err := t1.Get(store.UserKey("alice@example.org", "late@example.org")); err == nil {
		t.Fatal("subscription request stored beyond the cap")
	}
}

// TestCarbonCarriesArchiveID: a message the archive keeps without a body (a receipt with
// a store hint) reaches the user's other resource as a received carbon carrying the
// archive's stanza-id, as the addressed resource gets it (XEP-0313, XEP-0280).
func TestCarbonCarriesArchiveID(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a1, a2 := e.Bind("alice", "pc"), e.Bind("alice", "phone")
	carbonsOn(t, a1, a2)
	b := e.Bind("bob", "pc")
	b.Send("<message to='alice@example.org/pc' id='r1'><received xmlns='urn:xmpp:receipts' id='x'/><store xmlns='urn:xmpp:hints'/></message>")
	direct := a1.C.Wait(t, "id='r1'") + a1.C.Wait(t, "</message>")
	copy := a2.C.Wait(t, "<received xmlns='urn:xmpp:carbons:2'>") + a2.C.Wait(t, "</message>")
	re := regexp.MustCompile(`<stanza-id xmlns='urn:xmpp:sid:0' id='([^']+)' by='alice@example.org'/>`)
	d, c := re.FindStringSubmatch(direct), re.FindStringSubmatch(copy)
	if d == nil || c == nil || d[1] != c[1] {
		t.Fatalf("archive id: delivered %s\ncarbon %s", direct, copy)
	}
}

// TestSentCarbonCarriesArchiveID: the copy of a sent message that reaches the sender's
// other resource carries the id of the sender's archive row (clients dedupe their catch-up
// with it, as for received copies), not one the sending client made up; the recipient's
// copy does not get the sender's archive id.
func TestSentCarbonCarriesArchiveID(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a1, a2 := e.Bind("alice", "pc"), e.Bind("alice", "phone")
	carbonsOn(t, a1, a2)
	b := e.Bind("bob", "pc")
	a1.Send("<message to='bob@example.org/pc' type='chat' id='s1'><body>hello</body><stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='alice@example.org'/></message>")
	b.C.Wait(t, "<body>hello</body>")
	copy := a2.C.Wait(t, "<sent xmlns='urn:xmpp:carbons:2'>")
	re := regexp.MustCompile(`<stanza-id xmlns='urn:xmpp:sid:0' id='([^']+)' by='alice@example.org'/>`)
	c := re.FindAllStringSubmatch(copy, -1)
	if len(c) != 1 || c[0][1] == "forged" {
		t.Fatalf("sent carbon: want one stanza-id of the archive, got %s", copy)
	}
	a2.Send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='f'/></iq>")
	res := a2.C.Wait(t, "<result xmlns='urn:xmpp:mam:2' queryid='f'", "hello")
	if !strings.Contains(res, "id='"+c[0][1]+"'") {
		t.Fatalf("carbon's id %s is not the archive row's: %s", c[0][1], res)
	}
	// A message the archive does not keep (no body, no store hint) is copied without one.
	a1.Send("<message to='bob@example.org/pc' type='chat' id='s2'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	copy = a2.C.Wait(t, "<sent xmlns='urn:xmpp:carbons:2'>", "id='s2'")
	if strings.Contains(copy, "stanza-id") {
		t.Fatalf("carbon of an unarchived message has an archive id: %s", copy)
	}
}

// TestStanzaIDSpoofNested: a forged stanza-id is cut where it is a child of the message,
// even when a copy of its bytes sits earlier inside another child.
func TestStanzaIDSpoofNested(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	b := e.Bind("bob", "pc")
	forged := "<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='bob@example.org'/>"
	a.Send("<message to='bob@example.org/pc' type='chat'><x xmlns='urn:example'>" + forged + "</x><body>two</body>" + forged + "</message>")
	got := b.C.Wait(t, "<body>two</body>")
	if n := strings.Count(got, forged); n != 1 || !strings.Contains(got, "<x xmlns='urn:example'>"+forged+"</x>") {
		t.Fatalf("forged top-level stanza-id kept (or the nested copy cut): %s", got)
	}
}

// TestStoredPayloadsDeclarePrefixes: a payload kept and served apart from the <iq> it came
// in (a vCard, private XML, a PEP item) brings the prefixes the client declared on the
// <iq> along: served without them, it would be a stream error for its reader's parser
// (RFC 6120 §4.9.3.2), another user's or another server's.
func TestStoredPayloadsDeclarePrefixes(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a, b := e.Bind("alice", "pc"), e.Bind("bob", "pc")
	a.Send("<iq type='set' id='v' xmlns:v='vcard-temp'><v:vCard><v:FN>Alice</v:FN></v:vCard></iq>")
	a.C.Wait(t, "id='v'", "type='result'")
	b.Send("<iq type='get' id='g' to='alice@example.org'><vCard xmlns='vcard-temp'/></iq>")
	b.C.Wait(t, "id='g'", "<v:vCard xmlns='jabber:client' xmlns:v='vcard-temp'><v:FN>Alice</v:FN></v:vCard>")

	a.Send("<iq type='set' id='s' xmlns:p='urn:example:prefs'><query xmlns='jabber:iq:private'><p:prefs><p:theme>dark</p:theme></p:prefs></query></iq>")
	a.C.Wait(t, "id='s'", "type='result'")
	a.Send("<iq type='get' id='r'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>")
	a.C.Wait(t, "id='r'", "<p:prefs xmlns='jabber:iq:private' xmlns:p='urn:example:prefs'><p:theme>dark</p:theme></p:prefs>")

	a.Send("<iq type='set' id='p' xmlns:x='urn:example:x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:example:x'><item id='1'><x:data>hi</x:data></item></publish>" +
		"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
		"<field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub></iq>")
	a.C.Wait(t, "id='p'", "type='result'")
	b.Send("<iq type='get' id='i' to='alice@example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:x'/></pubsub></iq>")
	b.C.Wait(t, "id='i'", "<item id='1'><x:data xmlns='http://jabber.org/protocol/pubsub' xmlns:x='urn:example:x'>hi</x:data></item>")
}

// TestVCardOfServer: a vCard get addressed to the server is not answered with the
// requester's own vCard (XEP-0054 §3.2: 'to' names whose): none is kept for the server.
func TestVCardOfServer(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>")
	a.C.Wait(t, "id='v'", "type='result'")
	a.Send("<iq type='get' id='own'><vCard xmlns='vcard-temp'/></iq>")
	a.C.Wait(t, "id='own'", "<FN>Alice</FN>")
	a.Send("<iq type='get' id='srv' to='example.org'><vCard xmlns='vcard-temp'/></iq>")
	if got := a.C.Wait(t, "id='srv'"); !strings.Contains(got, "item-not-found") || strings.Contains(got, "Alice") {
		t.Fatalf("server's vCard: %s", got)
	}
}

// carbonsOn enables carbons on each session and makes it available.
func carbonsOn(t *testing.T, ss ...*routertest.Sess) {
	t.Helper()
	for _, s := range ss {
		s.Send("<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
		s.C.Wait(t, "id='c'", "type='result'")
		s.Send("<presence/>")
	}
}
