package pie_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/blocking"
	"github.com/vireo-im/vireo/modules/mam"
	"github.com/vireo-im/vireo/modules/pep"
	"github.com/vireo-im/vireo/modules/private"
	"github.com/vireo-im/vireo/modules/pubsub"
	"github.com/vireo-im/vireo/modules/vcard"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/store/pie"
)

// sections are the modules that carry data of their own, as engine/admin finds them.
var sections = []pie.Section{new(vcard.Mod), new(private.Mod), new(pep.Mod), new(mam.Mod), new(blocking.Mod)}

func open(t *testing.T) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop(), MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func parseFile(t *testing.T, name string) []pie.User {
	t.Helper()
	doc, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	users, err := pie.Parse(doc)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return users
}

func archiveRows(t *testing.T, st store.Store, user string) int {
	t.Helper()
	n := 0
	if err := st.Table("mam").Scan(store.UserKey(user), func(_, _ []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestImportProsodyExport imports what Prosody 0.12's prosody-migrator wrote (internal
// storage to mod_storage_xep0227) for alice, whose password is "alice secret": SCRAM-SHA-1
// keys, a roster, a vCard, a private XML fragment, a PEP node with an item and two
// archived messages. Rerunning an import that stopped half way doubles nothing, and
// Vireo's export of the result reads back to the same data.
func TestImportProsodyExport(t *testing.T) {
	users := parseFile(t, "testdata/prosody-0.12.xml")
	if len(users) != 1 || users[0].JID != "alice@prosody.test" {
		t.Fatalf("users %+v", users)
	}
	st := open(t)
	res, err := pie.Import(st, users, []string{"prosody.test"}, sections...)
	if err != nil || res.Imported != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	const u = "alice@prosody.test"
	a, err := st.Accounts().Get(u)
	if err != nil || !creds.VerifyPlain(a.Creds[store.SHA1], store.SHA1, "alice secret") {
		t.Fatalf("alice's SCRAM-SHA-1 keys from Prosody do not verify: %+v %v", a.Creds[store.SHA1], err)
	}
	items, _, _ := st.Rosters().Get(u)
	if len(items) != 1 || items[0].JID != "bob@example.org" || items[0].Name != "Bob" || len(items[0].Groups) != 1 || items[0].Groups[0] != "Friends" {
		t.Errorf("roster %+v", items)
	}
	card, err := st.Table("vcard").Get(store.UserKey(u))
	if err != nil || !bytes.Contains(card, []byte("<FN>Alice Liddell</FN>")) || !bytes.HasPrefix(card, []byte("<vCard xmlns='vcard-temp'>")) {
		t.Errorf("vCard %q %v", card, err)
	}
	prefs, err := st.Table("private").Get(store.UserKey(u, "urn:example:prefs", "prefs"))
	if err != nil || string(prefs) != "<prefs xmlns='urn:example:prefs'><color>blue</color></prefs>" {
		t.Errorf("private fragment %q %v", prefs, err)
	}
	nodes := pubsub.Nodes{T: st.Table("pep")}
	cfg, ok, err := nodes.Config(u, "http://jabber.org/protocol/nick")
	if err != nil || !ok || !cfg.Persist || cfg.Access != pubsub.AccessPresence {
		t.Errorf("nick node config %+v %v %v", cfg, ok, err)
	}
	it, ok, _ := nodes.Item(u, "http://jabber.org/protocol/nick", "current")
	if !ok || string(it.Payload) != "<nick xmlns='http://jabber.org/protocol/nick'>Ally</nick>" {
		t.Errorf("nick item %q %v", it.Payload, ok)
	}
	if n := archiveRows(t, st, u); n != 4 { // two messages, each with its 'with' index row
		t.Errorf("%d archive rows, want 4", n)
	}

	// An import that stopped after writing the data but before creating the account
	// leaves the rows behind; running it again must not double them.
	half := open(t)
	for _, s := range sections {
		if err := s.ImportUser(half, &users[0]); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := pie.Import(half, parseFile(t, "testdata/prosody-0.12.xml"), nil, sections...); err != nil || res.Imported != 1 {
		t.Fatalf("import after a half import: %+v %v", res, err)
	}
	if n := archiveRows(t, half, u); n != 4 {
		t.Errorf("%d archive rows after a half import and a full one, want 4", n)
	}
	if its, _ := (pubsub.Nodes{T: half.Table("pep")}).Items(u, "http://jabber.org/protocol/nick", 0); len(its) != 1 {
		t.Errorf("%d nick items after a half import and a full one, want 1", len(its))
	}

	var doc bytes.Buffer
	if err := pie.Export(&doc, st, sections...); err != nil {
		t.Fatal(err)
	}
	back, err := pie.Parse(doc.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, doc.Bytes())
	}
	if len(back) != 1 || len(back[0].Archive) != 2 || len(back[0].PEP) != 1 || len(back[0].Private) != 1 || back[0].VCard == nil {
		t.Fatalf("export after two imports:\n%s", doc.Bytes())
	}
	for i, m := range back[0].Archive {
		if !bytes.Equal(m.Message, users[0].Archive[i].Message) || !m.Stamp.Equal(users[0].Archive[i].Stamp) {
			t.Errorf("archived message %d: %s at %v, want %s at %v", i, m.Message, m.Stamp, users[0].Archive[i].Message, users[0].Archive[i].Stamp)
		}
	}

	// Vireo's own export imported into another store gives the same export again: the
	// archive ids are kept, and nothing is doubled.
	st2 := open(t)
	if _, err := pie.Import(st2, back, nil, sections...); err != nil {
		t.Fatal(err)
	}
	if _, err := pie.Import(st2, back, nil, sections...); err != nil {
		t.Fatal(err)
	}
	var doc2 bytes.Buffer
	if err := pie.Export(&doc2, st2, sections...); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc.Bytes(), doc2.Bytes()) {
		t.Fatalf("re-import changed the export:\n%s\n----\n%s", doc.Bytes(), doc2.Bytes())
	}
	if !strings.Contains(doc.String(), "<archive xmlns='urn:xmpp:pie:0#mam'><result xmlns='urn:xmpp:mam:2' id='") {
		t.Errorf("archive layout:\n%s", doc.Bytes())
	}
}

// TestImportEjabberdExport imports what ejabberd 23.01's export_piefxis wrote for alice
// (password "alice secret"): a main file that XIncludes one file per host, SCRAM-SHA-1
// fields base64-encoded twice (as ejabberd stores them), a vCard, a roster and a private
// XML fragment. (ejabberd 23.01 exports neither PEP nor archives.)
func TestImportEjabberdExport(t *testing.T) {
	users, err := pie.ParseFile("testdata/ejabberd-23.01/export.xml")
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].JID != "alice@ejabberd.test" {
		t.Fatalf("users %+v", users)
	}
	if _, err := pie.Parse(mustRead(t, "testdata/ejabberd-23.01/export.xml")); err == nil {
		t.Error("Parse followed an XInclude")
	}
	st := open(t)
	if res, err := pie.Import(st, users, []string{"ejabberd.test"}, sections...); err != nil || res.Imported != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	const u = "alice@ejabberd.test"
	a, _ := st.Accounts().Get(u)
	if !creds.VerifyPlain(a.Creds[store.SHA1], store.SHA1, "alice secret") {
		t.Errorf("alice's SCRAM-SHA-1 keys from ejabberd do not verify: %+v", a.Creds[store.SHA1])
	}
	items, _, _ := st.Rosters().Get(u)
	if len(items) != 1 || items[0].JID != "bob@example.org" || items[0].Groups[0] != "Friends" {
		t.Errorf("roster %+v", items)
	}
	if card, err := st.Table("vcard").Get(store.UserKey(u)); err != nil || !bytes.Contains(card, []byte("<FN>Alice Liddell</FN>")) {
		t.Errorf("vCard %q %v", card, err)
	}
	if p, err := st.Table("private").Get(store.UserKey(u, "urn:example:prefs", "prefs")); err != nil || !bytes.Contains(p, []byte("blue")) {
		t.Errorf("private fragment %q %v", p, err)
	}

	// An include must name a file beside the main one.
	dir := t.TempDir()
	main := dir + "/main.xml"
	os.WriteFile(main, []byte(`<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='../etc/passwd'/></server-data>`), 0o600)
	if _, err := pie.ParseFile(main); err == nil || !strings.Contains(err.Error(), "not a file beside it") {
		t.Errorf("include outside the directory: %v", err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBlockListSection: a block list read from privacy lists is stored as the blocking
// module keeps blocks (JIDs prepared, what does not parse left out), and an export
// writes it back as the default privacy list.
func TestBlockListSection(t *testing.T) {
	st := open(t)
	users := []pie.User{{JID: "u@a.example", Password: "p", Blocked: []string{"Spam@B.example", "c.example", "not a jid@@", "x@b/phone"}}}
	if res, err := pie.Import(st, users, nil, sections...); err != nil || res.Imported != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	var got []string
	st.Table("blocklist").Scan(store.UserKey("u@a.example"), func(k, _ []byte) bool {
		got = append(got, string(k[len("u@a.example")+1:]))
		return true
	})
	if strings.Join(got, " ") != "c.example spam@b.example x@b/phone" {
		t.Fatalf("stored blocks %q", got)
	}
	var b bytes.Buffer
	if err := pie.Export(&b, st, sections...); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<query xmlns='jabber:iq:privacy'><list name='Blocked contacts'>", "value='spam@b.example' action='deny'", "<default name='Blocked contacts'/>"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("no %q in the export %s", want, b.String())
		}
	}
	back, err := pie.Parse(b.Bytes())
	if err != nil || strings.Join(back[0].Blocked, " ") != "c.example spam@b.example x@b/phone" {
		t.Fatalf("the export reads back as %q %v", back[0].Blocked, err)
	}
}
