package pie

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/store/pebblestore"
)

func openStore(t *testing.T) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop(), MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// offlineRaw is a message as the offline module stores it: no xmlns, a delay appended.
func offlineRaw(body string, stamp time.Time) []byte {
	return []byte(fmt.Sprintf("<message from='alice@example.org/r' to='bob@example.org' type='chat' id='%s'><body>%s</body>"+
		"<delay xmlns='urn:xmpp:delay' from='example.org' stamp='%s'>Offline Storage</delay></message>",
		body, body, stamp.Format("2006-01-02T15:04:05.000Z")))
}

// TestExportImportRoundTrip exports accounts with SCRAM keys, rosters and offline messages,
// imports the document into an empty store and exports that: the two documents are the
// same bytes, and the imported store logs in with the old passwords.
func TestExportImportRoundTrip(t *testing.T) {
	src := openStore(t)
	created := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, u := range []string{"alice@example.org", "bob@example.org", "carol@other.example"} {
		c, err := creds.DeriveAll(u+" pw", creds.MinIter)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Accounts().Create(store.Account{User: u, Creds: c, Created: created}); err != nil {
			t.Fatal(err)
		}
	}
	items := []store.RosterItem{
		{JID: "bob@example.org", Name: "Bob & <Co>", Sub: store.SubBoth, Groups: []string{"Friends", "Work"}},
		{JID: "dave@remote.example", Sub: store.SubNone, Ask: true},
		{JID: "erin@remote.example", Sub: store.SubFrom, Approved: true, PendingIn: true},
	}
	for _, it := range items {
		if _, err := src.Rosters().Put("alice@example.org", it); err != nil {
			t.Fatal(err)
		}
	}
	stamps := []time.Time{time.Date(2026, 3, 1, 10, 0, 0, 123e6, time.UTC), time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC)}
	for i, st := range stamps {
		if _, err := src.Offline().Push("bob@example.org", offlineRaw(fmt.Sprintf("m%d &amp; more", i), st), st, store.Quota{}); err != nil {
			t.Fatal(err)
		}
	}

	var doc bytes.Buffer
	if err := Export(&doc, src); err != nil {
		t.Fatal(err)
	}
	users, err := Parse(doc.Bytes())
	if err != nil {
		t.Fatalf("parse our own export: %v\n%s", err, doc.Bytes())
	}
	if !bytes.Contains(doc.Bytes(), []byte("<presence xmlns='jabber:client' type='subscribe' from='erin@remote.example'/>")) {
		t.Errorf("erin's pending request is not in the export as XEP-0227 §4.9 has it:\n%s", doc.Bytes())
	}
	dst := openStore(t)
	res, err := Import(dst, users, []string{"example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 2 || len(res.Skipped) != 1 || !strings.HasPrefix(res.Skipped[0], "carol@other.example") {
		t.Fatalf("import result %+v; want alice and bob, carol skipped", res)
	}
	if again, err := Import(dst, users, nil); err != nil || again.Imported != 1 || len(again.Skipped) != 2 {
		t.Fatalf("second import: %+v, %v; want existing accounts skipped", again, err)
	}

	for _, u := range []string{"alice@example.org", "bob@example.org"} {
		a, err := src.Accounts().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, err := dst.Accounts().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: account %+v, imported %+v", u, a, b)
		}
		if !creds.VerifyPlain(b.Creds[store.SHA256], store.SHA256, u+" pw") {
			t.Errorf("%s: the password does not verify after import", u)
		}
	}
	got, _, err := dst.Rosters().Get("alice@example.org")
	if err != nil || !reflect.DeepEqual(got, items) {
		t.Fatalf("roster after import: %+v (%v), want %+v", got, err, items)
	}
	var msgs []store.OfflineMessage
	dst.Offline().List("bob@example.org", func(m store.OfflineMessage) bool {
		m.Raw = append([]byte(nil), m.Raw...)
		msgs = append(msgs, m)
		return true
	})
	if len(msgs) != 2 {
		t.Fatalf("%d offline messages after import, want 2", len(msgs))
	}
	for i, m := range msgs {
		if want := offlineRaw(fmt.Sprintf("m%d &amp; more", i), stamps[i]); !bytes.Equal(m.Raw, want) || !m.Stamp.Equal(stamps[i]) {
			t.Errorf("offline %d: %s at %v, want %s at %v", i, m.Raw, m.Stamp, want, stamps[i])
		}
	}

	var doc2 bytes.Buffer
	if err := Export(&doc2, dst); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc.Bytes(), doc2.Bytes()) {
		t.Fatalf("export of the import differs:\n%s\n----\n%s", doc.Bytes(), doc2.Bytes())
	}
	if err := xml.Unmarshal(doc.Bytes(), new(struct{})); err != nil {
		t.Fatalf("export is not well-formed: %v", err)
	}
}

// TestImportOtherServers reads what other servers write: XEP-0227 1.0 with a password
// attribute, and 1.1 with SCRAM-SHA-1 only and an unknown extension element. The 1469
// stamp of the XEP's example is beyond the store's range: the message is stored at the
// import time, its delay element still says 1469.
func TestImportOtherServers(t *testing.T) {
	c, err := creds.Derive("pencil", store.SHA1, 4096)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	doc := `<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='http://www.xmpp.org/extensions/xep-0227.html#ns'>
  <host jid='capulet.example'>
    <user name='juliet' password='s3crEt'>
      <query xmlns='jabber:iq:roster'><item jid='romeo@montague.example' name='Romeo' subscription='both'><group>Friends</group></item></query>
      <offline-messages>
        <message xmlns='jabber:client' from='romeo@montague.example/orchard' to='juliet@capulet.example/balcony' type='chat'>
          <body>Neither, fair saint, if either thee dislike.</body>
          <delay xmlns='urn:xmpp:delay' from='capulet.example' stamp='1469-07-21T00:32:29Z'>Offline Storage</delay>
        </message>
      </offline-messages>
      <vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard>
    </user>
  </host>
</server-data>`
	users, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	doc11 := `<server-data xmlns='urn:xmpp:pie:0'><host jid='montague.example'><user name='romeo'>
<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count>
<salt>` + b64(c.Salt) + `</salt><server-key>` + b64(c.ServerKey) + `</server-key><stored-key>` + b64(c.StoredKey) + `</stored-key></scram-credentials>
<x xmlns='urn:example:unknown'><user name='not-a-user'/></x></user></host></server-data>`
	more, err := Parse([]byte(doc11))
	if err != nil {
		t.Fatal(err)
	}
	// An iteration count no login could afford (PLAIN runs it) is refused.
	huge := strings.Replace(doc11, "<iter-count>4096<", "<iter-count>2000000000<", 1)
	if _, err := Parse([]byte(huge)); err == nil || !strings.Contains(err.Error(), "iteration count") {
		t.Fatalf("an iteration count of 2e9: %v", err)
	}
	st := openStore(t)
	res, err := Import(st, append(users, more...), nil)
	if err != nil || res.Imported != 2 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	j, _ := st.Accounts().Get("juliet@capulet.example")
	if !creds.VerifyPlain(j.Creds[store.SHA256], store.SHA256, "s3crEt") {
		t.Error("juliet's password does not verify")
	}
	r, _ := st.Accounts().Get("romeo@montague.example")
	if !creds.VerifyPlain(r.Creds[store.SHA1], store.SHA1, "pencil") || !r.Creds[store.SHA256].IsZero() {
		t.Errorf("romeo's SCRAM-SHA-1 keys: %+v", r.Creds)
	}
	items, _, _ := st.Rosters().Get("juliet@capulet.example")
	if len(items) != 1 || items[0].Sub != store.SubBoth || items[0].Groups[0] != "Friends" {
		t.Errorf("juliet's roster: %+v", items)
	}
	var raw string
	var stamp time.Time
	st.Offline().List("juliet@capulet.example", func(m store.OfflineMessage) bool { raw, stamp = string(m.Raw), m.Stamp; return true })
	if !strings.HasPrefix(raw, "<message from=") || strings.Contains(raw, "jabber:client") || time.Since(stamp) > time.Minute {
		t.Errorf("juliet's offline message: %q at %v", raw, stamp)
	}

	for _, bad := range []string{
		`<server-data xmlns='urn:xmpp:pie:0'><host jid='a.example'><user name='x@y'/></host></server-data>`,
		`<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='a.xml'/></server-data>`,
		`<other xmlns='urn:xmpp:pie:0'/>`,
		`<server-data xmlns='urn:xmpp:pie:0'><host jid='a.example'><user name='x'>`,
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse accepted %s", bad)
		}
	}
}

// FuzzImportParse feeds Parse arbitrary documents: it must not panic, every offline
// message it accepts is one well-formed <message/> element on its own, as it will be sent,
// and every element it keeps as bytes (vCards, private fragments, item payloads,
// archived messages) is one well-formed element on its own that reads back to the same
// bytes, since it is stored and exported as it is.
func FuzzImportParse(f *testing.F) {
	f.Add([]byte(`<server-data xmlns='urn:xmpp:pie:0'><host jid='a.example'><user name='x' password='p'><offline-messages><message xmlns='jabber:client'><body>hi</body></message></offline-messages></user></host></server-data>`))
	f.Add([]byte(`<server-data xmlns='urn:xmpp:pie:0'><host jid='a.example'><user name='x'><query xmlns='jabber:iq:roster'><item jid='y@a.example' subscription='both'><group>g</group></item></query></user></host></server-data>`))
	f.Add([]byte(`<server-data xmlns='urn:xmpp:pie:0'><host jid='a'><user name='x'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>1</iter-count><salt>AA==</salt><server-key>AAAAAAAAAAAAAAAAAAAAAAAAAAA=</server-key><stored-key>AAAAAAAAAAAAAAAAAAAAAAAAAAA=</stored-key></scram-credentials></user></host></server-data>`))
	f.Add([]byte(`<server-data xmlns='urn:xmpp:pie:0' xmlns:v='vcard-temp'><host jid='a'><user name='x'><v:vCard xml:lang='en'><v:FN>X &amp; Y</v:FN><PHOTO xmlns=''/></v:vCard><query xmlns='jabber:iq:private'><p:prefs xmlns:p='urn:p' xmlns:q='urn:q' q:a='1'><p:c/></p:prefs></query>` +
		`<presence xmlns='jabber:client' type='subscribe' from='z@b'/></user></host></server-data>`))
	f.Add([]byte(`<server-data xmlns='urn:xmpp:pie:0'><host jid='a'><user name='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'><x xmlns='jabber:x:data' type='form'><field var='pubsub#max_items'><value>5</value></field></x></configure>` +
		`<subscriptions node='n'><subscription jid='y@a' subscription='subscribed'/></subscriptions><affiliations node='n'><affiliation jid='y@a' affiliation='member'/></affiliations></pubsub>` +
		`<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item id='1'><e xmlns='urn:e'>t</e></item><item id='2'/></items></pubsub>` +
		`<archive xmlns='urn:xmpp:pie:0#mam'><result xmlns='urn:xmpp:mam:2' id='r1'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/><message xmlns='jabber:client' from='y@a/r' to='x@a'><body>b</body></message></forwarded></result></archive></user></host></server-data>`))
	f.Add([]byte(`<server-data xmlns='urn:xmpp:pie:0'><host jid='a'><user name='x'><query xmlns='jabber:iq:privacy'><list name='d'><item type='jid' value='y@b' action='deny' order='1'/><item type='jid' value='z@b' action='deny' order='2'><message/></item></list><default name='d'/></query></user></host></server-data>`))
	if doc, err := os.ReadFile("testdata/prosody-0.12.xml"); err == nil {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		users, err := Parse(doc)
		if err != nil {
			return
		}
		for _, u := range users {
			for _, m := range u.Offline {
				d := xml.NewDecoder(bytes.NewReader(m.Raw))
				var v struct{ XMLName xml.Name }
				if err := d.Decode(&v); err != nil || v.XMLName.Local != "message" {
					t.Fatalf("offline message %q of %s: %v (%s)", m.Raw, u.JID, err, v.XMLName.Local)
				}
				if _, err := d.Token(); err == nil {
					t.Fatalf("offline message %q of %s: more than one element", m.Raw, u.JID)
				}
			}
			var kept [][]byte
			if u.VCard != nil {
				kept = append(kept, u.VCard)
			}
			kept = append(kept, u.Private...)
			for _, n := range u.PEP {
				for _, it := range n.Items {
					if it.Payload != nil {
						kept = append(kept, it.Payload)
					}
				}
			}
			for _, a := range u.Archive {
				kept = append(kept, a.Message)
			}
			for _, raw := range kept {
				d := xml.NewDecoder(bytes.NewReader(raw))
				se, err := nextStart(d)
				if err != nil {
					t.Fatalf("element %q of %s: %v", raw, u.JID, err)
				}
				again, err := canon(d, se)
				if err != nil || !bytes.Equal(again, raw) {
					t.Fatalf("element %q of %s reads back as %q (%v)", raw, u.JID, again, err)
				}
				if _, err := d.Token(); err == nil {
					t.Fatalf("element %q of %s: more than one element", raw, u.JID)
				}
			}
		}
	})
}

// scramEl is a <scram-credentials/> element of an export.
type scramEl struct {
	Mechanism string `xml:"mechanism,attr"`
	Iter      int    `xml:"iter-count"`
	Salt      string `xml:"salt"`
	ServerKey string `xml:"server-key"`
	StoredKey string `xml:"stored-key"`
}

// scramEls exports st for flavour f and returns the <scram-credentials/> of its users.
func scramEls(t *testing.T, st store.Store, f Flavour) (map[string][]scramEl, []byte) {
	t.Helper()
	var doc bytes.Buffer
	if err := ExportFor(&doc, st, f); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Hosts []struct {
			JID   string `xml:"jid,attr"`
			Users []struct {
				Name  string    `xml:"name,attr"`
				Scram []scramEl `xml:"urn:xmpp:pie:0#scram scram-credentials"`
			} `xml:"user"`
		} `xml:"host"`
	}
	if err := xml.Unmarshal(doc.Bytes(), &v); err != nil {
		t.Fatalf("%v\n%s", err, doc.Bytes())
	}
	out := map[string][]scramEl{}
	for _, h := range v.Hosts {
		for _, u := range h.Users {
			out[u.Name+"@"+h.JID] = u.Scram
		}
	}
	return out, doc.Bytes()
}

// TestExportFlavours: the standard export writes every hash with each field
// base64-encoded once, as XEP-0227 says; the ejabberd flavours write one
// <scram-credentials/>, of the hash asked for (else the account's first), each field
// encoded twice: what ejabberd 23.01's import_piefxis decodes once into the base64 text
// its #scram record keeps. Vireo reads its ejabberd export back to the same keys.
func TestExportFlavours(t *testing.T) {
	st := openStore(t)
	all, err := creds.DeriveAll("dave pw", creds.MinIter)
	if err != nil {
		t.Fatal(err)
	}
	sha1, err := creds.Derive("erin pw", store.SHA1, 4096)
	if err != nil {
		t.Fatal(err)
	}
	st.Accounts().Create(store.Account{User: "dave@example.org", Creds: all})
	st.Accounts().Create(store.Account{User: "erin@example.org", Creds: [3]store.Credentials{store.SHA1: sha1}})
	b64 := base64.StdEncoding.EncodeToString
	mechs := []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"}

	std, doc := scramEls(t, st, Standard)
	if d := std["dave@example.org"]; len(d) != 3 {
		t.Fatalf("standard export: dave has %d <scram-credentials/>, want 3:\n%s", len(d), doc)
	}
	for h, el := range std["dave@example.org"] {
		c := all[h]
		if el.Mechanism != mechs[h] || el.Iter != c.Iter || el.Salt != b64(c.Salt) || el.ServerKey != b64(c.ServerKey) || el.StoredKey != b64(c.StoredKey) {
			t.Errorf("standard export, %s: %+v; want each field base64-encoded once", mechs[h], el)
		}
	}

	for _, tc := range []struct {
		name       string
		dave, erin store.Hash
	}{{"ejabberd", store.SHA1, store.SHA1}, {"ejabberd-sha256", store.SHA256, store.SHA1}, {"ejabberd-sha512", store.SHA512, store.SHA1}} {
		f, err := ParseFlavour(tc.name)
		if err != nil || !f.Ejabberd || f.String() != tc.name {
			t.Fatalf("ParseFlavour(%q) = %+v (%s), %v", tc.name, f, f, err)
		}
		els, doc := scramEls(t, st, f)
		for _, u := range []struct {
			jid string
			h   store.Hash
			c   store.Credentials
		}{{"dave@example.org", tc.dave, all[tc.dave]}, {"erin@example.org", tc.erin, sha1}} {
			e := els[u.jid]
			if len(e) != 1 || e[0].Mechanism != mechs[u.h] {
				t.Fatalf("%s: %s has %+v, want one %s:\n%s", tc.name, u.jid, e, mechs[u.h], doc)
			}
			el, c := e[0], u.c
			if el.Iter != c.Iter || el.Salt != b64([]byte(b64(c.Salt))) || el.ServerKey != b64([]byte(b64(c.ServerKey))) || el.StoredKey != b64([]byte(b64(c.StoredKey))) {
				t.Errorf("%s: %s: %+v; want each field base64-encoded twice", tc.name, u.jid, el)
			}
		}
		users, err := Parse(doc)
		if err != nil || len(users) != 2 {
			t.Fatalf("%s: parse: %+v %v", tc.name, users, err)
		}
		for _, u := range users {
			want := [3]store.Credentials{store.SHA1: sha1}
			if u.JID == "dave@example.org" {
				want = [3]store.Credentials{}
				want[tc.dave] = all[tc.dave]
			}
			if !reflect.DeepEqual(u.Creds, want) {
				t.Errorf("%s: %s read back as %+v, want %+v", tc.name, u.JID, u.Creds, want)
			}
		}
	}

	for _, s := range []string{"", "xep0227"} {
		if f, err := ParseFlavour(s); err != nil || f != Standard || f.String() != "xep0227" {
			t.Errorf("ParseFlavour(%q) = %+v, %v; want Standard", s, f, err)
		}
	}
	if _, err := ParseFlavour("prosody"); err == nil || !strings.Contains(err.Error(), "ejabberd-sha256") {
		t.Errorf("ParseFlavour(prosody): %v", err)
	}
}

// TestImportRefusesBadNames: encoding/xml reads <p:0/> as an element named "0"; written
// into the store it would be XML no client can parse, so the import stops with an error
// that names it.
func TestImportRefusesBadNames(t *testing.T) {
	for _, frag := range []string{
		`<p:0 xmlns:p='urn:x'/>`,
		`<x xmlns='urn:x' xmlns:p='urn:y' p:0='v'/>`,
		`<x xmlns='urn:x'><p:1a xmlns:p='urn:y'/></x>`,
	} {
		doc := `<server-data xmlns='urn:xmpp:pie:0'><host jid='a'><user name='u'>` +
			`<query xmlns='jabber:iq:private'>` + frag + `</query></user></host></server-data>`
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), "not an XML name") {
			t.Errorf("Parse of %s: %v, want an error naming the bad name", frag, err)
		}
	}
}

// TestParsePreparesJIDs: user names and roster JIDs are prepared as logins prepare them
// (RFC 7622); a name no JID can hold is refused.
func TestParsePreparesJIDs(t *testing.T) {
	doc := `<server-data xmlns='urn:xmpp:pie:0'><host jid='Example.ORG'><user name='Alice' password='pw'>
<query xmlns='jabber:iq:roster'><item jid='Bob@Example.ORG' subscription='both'/></query></user></host></server-data>`
	users, err := Parse([]byte(doc))
	if err != nil || len(users) != 1 {
		t.Fatal(users, err)
	}
	if users[0].JID != "alice@example.org" || len(users[0].Roster) != 1 || users[0].Roster[0].JID != "bob@example.org" {
		t.Fatalf("parsed %s with roster %+v", users[0].JID, users[0].Roster)
	}
	bad := strings.Replace(doc, "name='Alice'", "name='al ice'", 1)
	if _, err := Parse([]byte(bad)); err == nil {
		t.Fatal("a user name with a space was taken")
	}
}

// TestImportWhileRemoving: a user whose account of the same name is still being removed
// is skipped before anything of theirs is written: the removal would not take data
// written after it, and the next account of that name would find it.
func TestImportWhileRemoving(t *testing.T) {
	st := openStore(t)
	if err := st.Accounts().Create(store.Account{User: "alice@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Accounts().Delete("alice@example.org"); err != nil { // no removal run: it stays pending
		t.Fatal(err)
	}
	users := []User{{JID: "alice@example.org", Password: "pw",
		Roster:  []store.RosterItem{{JID: "bob@example.org", Sub: store.SubBoth}},
		Offline: []store.OfflineMessage{{Raw: []byte("<message to='alice@example.org'><body>old</body></message>"), Stamp: time.Now()}}}}
	res, err := Import(st, users, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0], "being removed") {
		t.Fatalf("result %+v", res)
	}
	items, _, _ := st.Rosters().Get("alice@example.org")
	n, _ := st.Offline().Count("alice@example.org")
	if len(items) != 0 || n != 0 {
		t.Fatalf("a skipped user's data was written: %d roster items, %d offline messages", len(items), n)
	}
}
