package engine_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmpp"
	mjid "mellium.im/xmpp/jid"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pie"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// XEP-0227 with the peers' own tools: users made in the peer by real clients, exported
// by the peer's exporter, imported into Vireo by the code behind vireoctl import, and the
// other way. Prosody's exporter is prosody-migrator (internal storage to and from
// mod_storage_xep0227); its XEP-0227 side reads and writes the fixed data directory
// /var/lib/prosody, so it runs in a mount namespace of its own (unshare -m, root, as
// ejabberd does) where a directory of the test is bound there.

// testBackend is the admin backend of a test server.
var _ admin.Backend = testBackend{}

type testBackend struct{ v *vireotest.Server }

func (b testBackend) Store() store.Store  { return b.v.Store }
func (b testBackend) Domains() []string   { return []string{b.v.Domain()} }
func (testBackend) CloseUser(jid.JID)     {}
func (testBackend) Reload() error         { return nil }
func (testBackend) Stats() map[string]any { return nil }
func (testBackend) Modules() []string     { return nil }
func (testBackend) DataDir() string       { return "" }
func (testBackend) Version() string       { return "test" }
func (testBackend) WebURL(string) string  { return "" }

// mountNSBlocked says why the test cannot make a mount namespace here, or "".
func mountNSBlocked() string {
	if _, err := exec.LookPath("unshare"); err != nil {
		return "unshare (util-linux) is missing"
	}
	if os.Geteuid() != 0 {
		return "a mount namespace needs root"
	}
	if out, err := exec.Command("unshare", "-m", "true").CombinedOutput(); err != nil {
		return fmt.Sprintf("unshare -m is not permitted here (a container without CAP_SYS_ADMIN?): %v %s", err, out)
	}
	return ""
}

// noErrors sends requests and then a version query to the server domain, and fails the test if anything
// before the version answer (marker) is an error: the peer answers a session's requests
// in order.
func noErrors(t *testing.T, r *vireotest.RawConn, domain, marker string, reqs ...string) string {
	t.Helper()
	r.Send(strings.Join(reqs, "") + "<iq type='get' id='ver' to='" + domain + "'><query xmlns='jabber:iq:version'/></iq>")
	got := r.Expect(marker)
	if strings.Contains(got, "type='error'") || strings.Contains(got, `type="error"`) {
		t.Fatalf("a request failed: %s", got)
	}
	return got
}

// TestPIEProsody: alice and bob of a real Prosody 0.12 (SCRAM-SHA-1 keys only) with a
// roster, a vCard, a private XML fragment, a PEP nickname and a message in their archives;
// prosody-migrator exports them, Vireo imports the files, both log in with their
// passwords (PLAIN, and SCRAM-SHA-1 by a mellium client) and find their data. Then dave
// and erin, exported by Vireo one file each, go into Prosody with prosody-migrator, and
// log in to Prosody with their passwords; dave finds his vCard and roster.
func TestPIEProsody(t *testing.T) {
	needProsody(t)
	migrator, err := exec.LookPath("prosody-migrator")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prosody-migrator is missing (apt-get install prosody)")
		}
		t.Skip("prosody-migrator is missing (apt-get install prosody)")
	}
	if why := mountNSBlocked(); why != "" {
		t.Skip("SKIPPED, Prosody XEP-0227 interop not run: " + why)
	}
	if _, err := os.Stat("/var/lib/prosody"); err != nil {
		t.Skip("SKIPPED: /var/lib/prosody, where prosody-migrator keeps XEP-0227 files, is missing")
	}
	p := startProsody(t, prosodyOptions{domain: "prosody.test", ip: loopbackIP(), pki: newTestPKI(t), hashed: true,
		modules: []string{"vcard", "private", "pep", "mam"}})
	p.register("alice", "alice secret")
	p.register("bob", "bob secret")
	bob := p.login("bob", "bob secret", "pc")
	alice := p.login("alice", "alice secret", "pc")
	noErrors(t, alice, p.domain, "<name>Prosody</name>",
		"<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>al</NICKNAME></vCard></iq>",
		"<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@prosody.test' name='Bob'><group>Friends</group></item></query></iq>",
		"<iq type='set' id='p1'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><color>blue</color></prefs></query></iq>",
		"<iq type='set' id='n1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Ally</nick></item></publish></pubsub></iq>",
		"<message to='bob@prosody.test/pc' type='chat' id='m1'><body>hello bob</body></message>")
	bob.Expect("hello bob</body>")
	p.kill()

	// Prosody's internal storage to XEP-0227 files, one per user.
	out := t.TempDir()
	mcfg := filepath.Join(p.dir, "migrator.cfg.lua")
	back := filepath.Join(p.dir, "data")
	os.WriteFile(mcfg, []byte(fmt.Sprintf(`local stores = { "accounts", "roster", "vcard", "private", "archive-archive", "pep-pubsub" }
input { type = "internal"; path = %[1]q; hosts = { ["prosody.test"] = stores } }
output { type = "xep0227" }
back_in { type = "xep0227"; hosts = { ["prosody.test"] = stores } }
back_out { type = "internal"; path = %[1]q }
`, back)), 0o644)
	migrate := func(dir, from, to string, flags string) {
		t.Helper()
		cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
			`mount --bind "$0" /var/lib/prosody && exec "$1" --root $5 --config="$2" "$3" "$4"`, dir, migrator, mcfg, from, to, flags)
		if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "Done!") {
			files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
			for _, f := range files {
				doc, _ := os.ReadFile(f)
				t.Logf("%s:\n%s", f, doc)
			}
			t.Fatalf("prosody-migrator %s %s: %v\n%s", from, to, err, b)
		}
	}
	migrate(out, "input", "output", "")

	v := vireotest.Start(t, vireotest.Options{Domain: "prosody.test", AllowPlain: true})
	for _, u := range []string{"alice", "bob"} {
		f := filepath.Join(out, u+"@prosody.test.xml")
		n, skipped, err := admin.Import(testBackend{v}, f)
		if err != nil || n != 1 {
			doc, _ := os.ReadFile(f)
			t.Fatalf("import %s: %d %v %v\n%s", f, n, skipped, err, doc)
		}
	}
	va := v.LoginPlain(t, "alice", "alice secret", "pc")
	// bob's account came with Prosody's SCRAM-SHA-1 keys only: a client that prefers
	// SCRAM-SHA-256 and names its account, as Conversations does, is offered SHA-1.
	if err := loginStrongestFirst(t, v, "bob", "bob secret"); err != nil {
		t.Fatalf("bob, preferring SCRAM-SHA-256, after the import: %v", err)
	}
	loginSTARTTLS(t, v, "bob", "bob secret", "m", msasl.ScramSha1)
	va.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
	va.Expect("<group>Friends</group>")
	va.Send("<iq type='get' id='v'><vCard xmlns='vcard-temp'/></iq>")
	va.Expect("<FN>Alice Liddell</FN>")
	va.Send("<iq type='get' id='p'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>")
	va.Expect("<color>blue</color>")
	va.Send("<iq type='get' id='n'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='http://jabber.org/protocol/nick'/></pubsub></iq>")
	va.Expect("Ally</nick>")
	va.Send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>")
	va.Expect("hello bob</body>")
	if got := va.Expect("</iq>"); !strings.Contains(got, "<fin") || strings.Contains(got, "type='error'") {
		t.Fatalf("archive query: %s", got)
	}

	// The other way: Vireo's export, one file per account as Prosody's XEP-0227
	// storage wants it (vireoctl export -split).
	v2 := vireotest.Start(t, vireotest.Options{Domain: "prosody.test", AllowPlain: true})
	v2.AddUser(t, "dave", "dave secret")
	v2.AddUser(t, "erin", "erin secret")
	d := v2.LoginPlain(t, "dave", "dave secret", "pc")
	d.Send("<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Dave Bowman</FN></vCard></iq>")
	d.Expect("id='v1'")
	d.Send("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='alice@prosody.test' name='Alice'/></query></iq>")
	d.Expect("id='r1'")
	d.Send("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>")
	d.Expect("id='r2'")
	in := filepath.Join(t.TempDir(), "split")
	if n, err := admin.ExportSplit(testBackend{v2}, in, pie.Standard); err != nil || n != 2 {
		t.Fatalf("export -split: %d %v", n, err)
	}
	// --keep-going: Prosody 0.12's XEP-0227 archive store fails on the host-wide
	// archive (user nil) that the migrator asks every store for, before the users.
	migrate(in, "back_in", "back_out", "--keep-going")
	p.start()
	pd := p.login("dave", "dave secret", "pc")
	got := noErrors(t, pd, p.domain, "<name>Prosody</name>",
		"<iq type='get' id='v2'><vCard xmlns='vcard-temp'/></iq>",
		"<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>")
	if !strings.Contains(got, "<FN>Dave Bowman</FN>") || !strings.Contains(got, "alice@prosody.test") {
		t.Fatalf("dave's vCard and roster in Prosody: %s", got)
	}
	p.login("erin", "erin secret", "pc")
}

// ejabberdAPI runs an ejabberd command (the ones ejabberdctl runs) through ejabberd's
// own HTTP API, since the test's ejabberd is a bare VM that ejabberdctl cannot reach.
func ejabberdAPI(t *testing.T, addr, cmd, body string) string {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/api/"+cmd, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("ejabberd %s: %v", cmd, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ejabberd %s %s: %s %s", cmd, body, resp.Status, b)
	}
	return string(b)
}

// TestPIEEjabberd: alice of a real ejabberd 23.01 (SCRAM keys) with a roster, a vCard and
// a private XML fragment (23.01 exports neither PEP nor archives), exported by
// export_piefxis (a main file that XIncludes one per host), imported into Vireo by
// admin.Import; alice logs in to Vireo with her password (PLAIN, and SCRAM-SHA-1 with
// mellium) and finds her data. Then dave's and erin's Vireo export for ejabberd (vireoctl
// export -for ejabberd: one SCRAM-SHA-1 key set, fields base64-encoded twice) goes into
// ejabberd by import_piefxis: ejabberd has dave's vCard and roster, and both log in there
// with their passwords, checked against the imported keys (auth_password_format: scram):
// PLAIN, and SCRAM-SHA-1 with mellium, whose client checks ejabberd's server signature
// (the server key). frank's standard export (keys encoded once, as XEP-0227 says) is
// imported too, and his password does not verify there: why the flavour exists.
func TestPIEEjabberd(t *testing.T) {
	needEjabberd(t)
	ip := loopbackIP()
	api := net.JoinHostPort(ip, strconv.Itoa(freePort(t, ip)))
	_, apiPort, _ := net.SplitHostPort(api)
	e := startEjabberd(t, ejabberdOptions{domain: "ejabberd.test", ip: ip, pki: newTestPKI(t),
		vireo: "127.0.0.1:9", vireoDomain: "vireo.invalid",
		listen:  fmt.Sprintf("  - port: %s\n    ip: %q\n    module: ejabberd_http\n    request_handlers:\n      /api: mod_http_api\n", apiPort, ip),
		modules: "  mod_vcard: {}\n  mod_private: {}\n  mod_privacy: {}\n  mod_blocking: {}\n  mod_http_api: {}\n  mod_admin_extra: {}\n",
		tail:    "auth_password_format: scram\napi_permissions:\n  \"loopback\":\n    from: mod_http_api\n    who:\n      ip: 127.0.0.0/8\n    what: \"*\"\n"})
	e.register("alice", "alice secret")
	alice := e.login("alice", "alice secret", "pc")
	noErrors(t, alice, e.domain, "<name>ejabberd</name>",
		"<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>al</NICKNAME></vCard></iq>",
		"<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@ejabberd.test' name='Bob'><group>Friends</group></item></query></iq>",
		"<iq type='set' id='p1'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><color>blue</color></prefs></query></iq>",
		"<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='spammer@elsewhere.test'/></block></iq>")

	out := t.TempDir()
	ejabberdAPI(t, api, "export_piefxis", fmt.Sprintf(`{"dir":%q}`, out))
	files, _ := filepath.Glob(filepath.Join(out, "*.xml"))
	var main string
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), "_") { // the per-host files are NAME_host.xml
			main = f
		}
	}
	if main == "" || len(files) != 2 {
		t.Fatalf("export_piefxis wrote %v", files)
	}

	v := vireotest.Start(t, vireotest.Options{Domain: "ejabberd.test", AllowPlain: true})
	if n, skipped, err := admin.Import(testBackend{v}, main); err != nil || n != 1 {
		for _, f := range files {
			doc, _ := os.ReadFile(f)
			t.Logf("%s:\n%s", f, doc)
		}
		t.Fatalf("import: %d %v %v", n, skipped, err)
	}
	// ejabberd's keys are SCRAM-SHA-1's: a client that prefers SCRAM-SHA-256 and names its
	// account, as Conversations does, is offered SHA-1 (before the PLAIN login below
	// completes the keys).
	if err := loginStrongestFirst(t, v, "alice", "alice secret"); err != nil {
		t.Fatalf("alice, preferring SCRAM-SHA-256, after the import: %v", err)
	}
	va := v.LoginPlain(t, "alice", "alice secret", "pc")
	loginSTARTTLS(t, v, "alice", "alice secret", "m", msasl.ScramSha1)
	va.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
	va.Expect("<group>Friends</group>")
	va.Send("<iq type='get' id='v'><vCard xmlns='vcard-temp'/></iq>")
	va.Expect("<FN>Alice Liddell</FN>")
	va.Send("<iq type='get' id='p'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>")
	va.Expect("<color>blue</color>")
	// ejabberd keeps blocks in the default privacy list, which its export carries.
	va.Send("<iq type='get' id='b'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	mustHave(t, "alice's block list after the import", va.Expect("</blocklist>"), "spammer@elsewhere.test")

	v2 := vireotest.Start(t, vireotest.Options{Domain: "ejabberd.test", AllowPlain: true})
	v2.AddUser(t, "dave", "dave secret")
	v2.AddUser(t, "erin", "erin secret")
	d := v2.LoginPlain(t, "dave", "dave secret", "pc")
	d.Send("<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Dave Bowman</FN></vCard></iq>")
	d.Expect("id='v1'")
	d.Send("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='alice@ejabberd.test' name='Alice'/></query></iq>")
	d.Expect("id='r1'")
	d.Send("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>")
	d.Expect("id='r2'")
	d.Send("<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='mallory@evil.test'/></block></iq>")
	d.Expect("id='b1'")
	f := filepath.Join(t.TempDir(), "vireo.xml")
	ejd, err := pie.ParseFlavour("ejabberd") // vireoctl export -for ejabberd
	if err != nil {
		t.Fatal(err)
	}
	if n, err := admin.Export(testBackend{v2}, f, ejd); err != nil || n != 2 {
		t.Fatalf("export -for ejabberd: %d %v", n, err)
	}
	os.Chmod(f, 0o644)
	ejabberdAPI(t, api, "import_piefxis", fmt.Sprintf(`{"file":%q}`, f))
	if got := ejabberdAPI(t, api, "get_vcard", `{"user":"dave","host":"ejabberd.test","name":"FN"}`); !strings.Contains(got, "Dave Bowman") {
		t.Errorf("dave's vCard in ejabberd: %s", got)
	}
	if got := ejabberdAPI(t, api, "get_roster", `{"user":"dave","host":"ejabberd.test"}`); !strings.Contains(got, "alice@ejabberd.test") {
		t.Errorf("dave's roster in ejabberd: %s", got)
	}
	pd := e.login("dave", "dave secret", "pc") // PLAIN, verified against the stored keys
	got := noErrors(t, pd, e.domain, "<name>ejabberd</name>", "<iq type='get' id='v2'><vCard xmlns='vcard-temp'/></iq>")
	if !strings.Contains(got, "<FN>Dave Bowman</FN>") {
		t.Errorf("dave's vCard, asked by dave in ejabberd: %s", got)
	}
	if got := noErrors(t, pd, e.domain, "</blocklist>", "<iq type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>"); !strings.Contains(got, "mallory@evil.test") {
		t.Errorf("dave's block list in ejabberd after the import: %s", got)
	}
	ejabberdLoginSCRAM(t, e, "dave", "dave secret", "m", msasl.ScramSha1)
	e.login("erin", "erin secret", "pc")
	ejabberdLoginSCRAM(t, e, "erin", "erin secret", "m", msasl.ScramSha1)

	// The standard export: ejabberd takes the account, but not the password.
	v3 := vireotest.Start(t, vireotest.Options{Domain: "ejabberd.test", AllowPlain: true})
	v3.AddUser(t, "frank", "frank secret")
	f3 := filepath.Join(t.TempDir(), "standard.xml")
	if _, err := admin.Export(testBackend{v3}, f3, pie.Standard); err != nil {
		t.Fatal(err)
	}
	os.Chmod(f3, 0o644)
	ejabberdAPI(t, api, "import_piefxis", fmt.Sprintf(`{"file":%q}`, f3))
	r, _ := c2sStart(t, e.c2s, e.domain, e.caPEM)
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00frank\x00frank secret")) + "</auth>")
	// 23.01 base64-decodes the salt it stored, raw bytes here: the session crashes
	// (badarg in ejabberd_auth:is_password_scram_valid/2) and the stream ends.
	got, err = r.ReadUntil("</failure>", 10*time.Second)
	if strings.Contains(got, "<success") || (err != nil && !strings.Contains(got, "</stream:stream>")) {
		t.Errorf("frank's standard (single-encoded) keys in ejabberd 23.01: %q %v; want a SASL failure or the stream's end", got, err)
	}
}

// ejabberdLoginSCRAM logs in to e with mellium over STARTTLS with mech, whose client
// checks the server's signature as well as the server the proof.
func ejabberdLoginSCRAM(t *testing.T, e *ejabberdServer, user, pass, res string, mech msasl.Mechanism) {
	t.Helper()
	ctx := vireotest.Context(t, 10*time.Second)
	conn, err := net.Dial("tcp", e.c2s)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.caPEM)
	s, err := xmpp.NewClientSession(ctx, mjid.MustParse(user+"@"+e.domain+"/"+res), conn,
		xmpp.StartTLS(&tls.Config{RootCAs: pool, ServerName: e.domain}),
		xmpp.SASL("", pass, mech),
		xmpp.BindResource(),
	)
	if err != nil {
		t.Fatalf("%s logs in to ejabberd with %s: %v", user, mech.Name, err)
	}
	s.Close()
}

// TestPIEVireoModules: what Vireo's own modules stored for alice and bob through their
// clients (vCard with a photo, private XML, a PEP node with two items, a chat archived
// on both sides) is exported and imported into a second server, where it reads back the
// same; importing the file a second time changes nothing (the archive query still finds
// one copy of the chat).
func TestPIEVireoModules(t *testing.T) {
	v := vireotest.Start(t, vireotest.Options{Domain: "vireo.test", AllowPlain: true})
	v.AddUser(t, "alice", "alice secret")
	v.AddUser(t, "bob", "bob secret")
	a := v.LoginPlain(t, "alice", "alice secret", "pc")
	b := v.LoginPlain(t, "bob", "bob secret", "pc")
	a.Send("<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Alice &amp; Co</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO></vCard></iq>")
	a.Expect("id='v1'")
	a.Send("<iq type='set' id='p1'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><color>blue</color></prefs></query></iq>")
	a.Expect("id='p1'")
	for i, id := range []string{"one", "two"} {
		a.Send(fmt.Sprintf("<iq type='set' id='n%d'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:example:notes'><item id='%s'><note xmlns='urn:example:notes'>%s</note></item></publish>"+
			"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"+
			"<field var='pubsub#max_items'><value>10</value></field><field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub></iq>", i, id, id))
		if got := a.Expect(fmt.Sprintf("id='n%d'", i)); strings.Contains(got[strings.LastIndex(got, "<iq"):], "type='error'") {
			t.Fatalf("publish: %s", got)
		}
	}
	a.Send("<message to='bob@vireo.test/pc' type='chat' id='m1'><body>hello bob</body></message>")
	b.Expect("hello bob</body>")
	a.Send("<iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>") // syncs the archive's lazy writes
	a.Expect("id='ping'")

	f := filepath.Join(t.TempDir(), "export.xml")
	if n, err := admin.Export(testBackend{v}, f, pie.Standard); err != nil || n != 2 {
		t.Fatalf("export: %d %v", n, err)
	}
	v2 := vireotest.Start(t, vireotest.Options{Domain: "vireo.test", AllowPlain: true})
	for i, want := range []int{2, 0} {
		if n, skipped, err := admin.Import(testBackend{v2}, f); err != nil || n != want {
			t.Fatalf("import %d: %d %v %v", i, n, skipped, err)
		}
	}
	a2 := v2.LoginPlain(t, "alice", "alice secret", "pc")
	a2.Send("<iq type='get' id='v'><vCard xmlns='vcard-temp'/></iq>")
	a2.Expect("<FN>Alice &amp; Co</FN>")
	a2.Send("<presence/>") // the photo hash of the imported vCard is in alice's presence
	a2.Expect("vcard-temp:x:update")
	a2.Send("<iq type='get' id='p'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>")
	a2.Expect("<color>blue</color>")
	a2.Send("<iq type='get' id='n'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:notes'/></pubsub></iq>")
	if got := a2.Expect(">two</note>"); !strings.Contains(got, ">one</note>") {
		t.Fatalf("notes node after import: %s", got)
	}
	a2.Send("<iq type='get' id='c'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:example:notes'/></pubsub></iq>")
	// The access model's value comes before its options, which list every model.
	if got := a2.Expect("</x>"); !strings.Contains(got, "<value>whitelist</value><option>") || !strings.Contains(got, "<value>10</value>") {
		t.Fatalf("notes node configuration after import: %s", got)
	}
	b2 := v2.LoginPlain(t, "bob", "bob secret", "pc")
	b2.Send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>")
	got := b2.Expect("</fin>")
	if strings.Count(got, "hello bob</body>") != 1 || !strings.Contains(got, "<count>1</count>") {
		t.Fatalf("bob's archive after two imports: %s", got)
	}
}
