package main

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/admin"
)

// TestIntegrationVHostModules: [vhosts."<host>"] modules_disabled through the real
// server, its config file and a real client (mellium): the host's users get
// service-unavailable from the modules it turned off and its disco#info and disco#items
// leave them out, while the other host keeps them; a reload brings back what it no
// longer lists, the room service included.
func TestIntegrationVHostModules(t *testing.T) {
	s, path := vhostServerWith(t, `
[vhosts."corp.localhost"]
modules_disabled = ["mam", "version", "muc"]
`)
	if r := vhost(t, s, "add", "corp.localhost"); r.Error != "" {
		t.Fatal(r.Error)
	}
	registerIBR(t, s, "localhost", "pia", "pia-pass-1")
	registerIBR(t, s, "corp.localhost", "cal", "cal-pass-1")
	pia := loginMellium(t, s, "pia", "localhost", "pia-pass-1")
	cal := loginMellium(t, s, "cal", "corp.localhost", "cal-pass-1")

	mustIn, mustOut := textChecks(t)
	version := `<iq type="get" id="%s"><query xmlns="jabber:iq:version"/></iq>`
	mam := `<iq type="set" id="%s"><query xmlns="urn:xmpp:mam:2" queryid="q"/></iq>`
	info := `<iq type="get" id="%s" to="%s"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`
	items := `<iq type="get" id="%s" to="%s"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`
	ask := func(c *xmppClient, id, format string, args ...any) string {
		t.Helper()
		c.send(t, fmt.Sprintf(format, append([]any{id}, args...)...))
		return c.iqAnswer(t, id)
	}

	mustIn("version on corp", ask(cal, "v1", version), `type="error"`, "service-unavailable")
	mustIn("version on localhost", ask(pia, "v2", version), `type="result"`, "<name")
	mustIn("MAM on corp", ask(cal, "m1", mam), "service-unavailable")
	mustIn("MAM on localhost", ask(pia, "m2", mam), `type="result"`)
	corpInfo := ask(cal, "d1", info, "corp.localhost")
	mustIn("corp's disco#info", corpInfo, "jabber:iq:roster", "urn:xmpp:carbons:2")
	mustOut("corp's disco#info", corpInfo, "jabber:iq:version", "urn:xmpp:mam:2")
	mustIn("localhost's disco#info", ask(pia, "d2", info, "localhost"), "jabber:iq:version", "urn:xmpp:mam:2")
	mustOut("corp's account", ask(cal, "d3", info, "cal@corp.localhost"), "urn:xmpp:mam:2")
	mustOut("corp's services", ask(cal, "i1", items, "corp.localhost"), "conference.")
	mustIn("localhost's services", ask(pia, "i2", items, "localhost"), "conference.localhost")
	mustIn("corp's rooms", ask(cal, "r1", info, "conference.corp.localhost"), `type="error"`)

	// A reload: version and the room service come back on corp.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(b), `modules_disabled = ["mam", "version", "muc"]`, `modules_disabled = ["mam"]`, 1)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	mustIn("version on corp after the reload", ask(cal, "v3", version), `type="result"`)
	mustIn("MAM on corp after the reload", ask(cal, "m3", mam), "service-unavailable")
	mustIn("corp's services after the reload", ask(cal, "i3", items, "corp.localhost"), "conference.corp.localhost")
	mustIn("corp's rooms after the reload", ask(cal, "r2", info, "conference.corp.localhost"), `type="result"`, "http://jabber.org/protocol/muc")

	// A wrong module name fails the reload, and nothing of it applies.
	bad := strings.Replace(conf, `modules_disabled = ["mam"]`, `modules_disabled = ["mma"]`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), `"mma"`) {
		t.Fatalf("reload with an unknown module: %v", err)
	}
	mustIn("MAM on corp after the failed reload", ask(cal, "m4", mam), "service-unavailable")
}

// TestIntegrationVHostModuleSettings: [vhosts."<host>".modules.<id>] tables through the
// real server, its config file and a real client (mellium): the host's newcomers get its
// own welcome message, its disco#info its own contact addresses, its upload service its
// own file size limit, its users their own offline quota and archiving default and its
// own administrators, while the other host keeps the server's; a reload changes a host's table; a table with a key the
// module lacks, or for a module without settings per host, fails the reload and changes
// nothing.
func TestIntegrationVHostModuleSettings(t *testing.T) {
	s, path := vhostServerWith(t, `
[modules.welcome]
message = "Welcome to the server."
[modules.contact]
abuse = ["mailto:abuse@localhost"]
support = ["https://localhost/help"]

[vhosts."corp.localhost".modules.welcome]
message = "Welcome to Corp."
[vhosts."corp.localhost".modules.contact]
abuse = ["mailto:it@corp.localhost"]
[vhosts."corp.localhost".modules.upload]
max_file_size = 1000
[vhosts."corp.localhost".modules.offline]
quota = 2
[vhosts."corp.localhost".modules.mam]
default = "never"
[vhosts."corp.localhost".modules.adhoc]
admins = ["cal@corp.localhost"]
[vhosts."corp.localhost".modules.pep]
max_nodes = 1
[vhosts."corp.localhost".modules.pubsub]
max_item_size = 200
[vhosts."corp.localhost".modules.proxy65]
address = "192.0.2.7"
port = 7777
`)
	if r := vhost(t, s, "add", "corp.localhost"); r.Error != "" {
		t.Fatal(r.Error)
	}
	registerIBR(t, s, "localhost", "pia", "pia-pass-1")
	// cal, an administrator the configuration names, is the operator's to create: nobody
	// may register the name first (engine.Config.AdminJIDs).
	if err := admin.AddUser(s, "cal@corp.localhost", "cal-pass-1", 0); err != nil {
		t.Fatal(err)
	}
	registerIBR(t, s, "corp.localhost", "dan", "dan-pass-1") // stays offline
	registerIBR(t, s, "localhost", "eve", "eve-pass-1")      // stays offline
	pia := loginMellium(t, s, "pia", "localhost", "pia-pass-1")
	cal := loginMellium(t, s, "cal", "corp.localhost", "cal-pass-1")
	pia.send(t, "<presence/>") // offline messages come with the first presence
	cal.send(t, "<presence/>")
	pia.waitFor(t, "Welcome to the server.")
	// The host's own welcome, for one who registered there (cal was made by the operator).
	registerIBR(t, s, "corp.localhost", "fay", "fay-pass-1")
	fay := loginMellium(t, s, "fay", "corp.localhost", "fay-pass-1")
	fay.send(t, "<presence/>")
	fay.waitFor(t, "Welcome to Corp.")

	mustIn, mustOut := textChecks(t)
	ask := func(c *xmppClient, id, format string, args ...any) string {
		t.Helper()
		c.send(t, fmt.Sprintf(format, append([]any{id}, args...)...))
		return c.iqAnswer(t, id)
	}
	info := `<iq type="get" id="%s" to="%s"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`
	prefs := `<iq type="get" id="%s"><prefs xmlns="urn:xmpp:mam:2"/></iq>`

	// The welcome of one host is not the other's.
	mustOut("pia's messages", pia.text(), "Welcome to Corp.")
	mustOut("cal's messages", cal.text(), "Welcome to the server.")

	// Contact addresses: corp's abuse address replaces the server's, its support stays.
	corp := ask(cal, "d1", info, "corp.localhost")
	mustIn("corp's disco#info", corp, "mailto:it@corp.localhost", "https://localhost/help")
	mustOut("corp's disco#info", corp, "mailto:abuse@localhost")
	local := ask(pia, "d2", info, "localhost")
	mustIn("localhost's disco#info", local, "mailto:abuse@localhost")
	mustOut("localhost's disco#info", local, "it@corp.localhost")

	// Upload: the file size limit each service announces.
	mustIn("upload.corp", ask(cal, "u1", info, "upload.corp.localhost"), ">1000</value>")
	mustIn("upload.localhost", ask(pia, "u2", info, "upload.localhost"), ">104857600</value>")
	cal.send(t, `<iq type="get" id="u3" to="upload.corp.localhost"><request xmlns="urn:xmpp:http:upload:0" filename="a.bin" size="2000"/></iq>`)
	mustIn("a slot above corp's limit", cal.iqAnswer(t, "u3"), "not-acceptable", "file-too-large")

	// Offline quota: dan@corp keeps his welcome and one message, the second bounces;
	// eve@localhost keeps both.
	for i, to := range []string{"dan@corp.localhost", "dan@corp.localhost", "eve@localhost", "eve@localhost"} {
		pia.send(t, fmt.Sprintf(`<message type="chat" id="o%d" to="%s"><body>hello %d</body></message>`, i, to, i))
	}
	pia.send(t, `<iq type="get" id="ping1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	pia.iqAnswer(t, "ping1")
	pia.waitFor(t, `id="o1"`)
	mustIn("the second message to dan", pia.answer(t, "message", "o1"), `type="error"`, "service-unavailable")
	mustOut("pia's answers", pia.text(), `id="o0"`, `id="o2"`, `id="o3"`)

	// MAM: corp's users archive nothing by default.
	mustIn("cal's preferences", ask(cal, "p1", prefs), `default="never"`)
	mustIn("pia's preferences", ask(pia, "p2", prefs), `default="always"`)

	// PEP: cal may have one node, pia more.
	pep := `<iq type="set" id="%s"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="%s"><item><n xmlns="urn:example:n">x</n></item></publish></pubsub></iq>`
	for i, node := range []string{"urn:example:one", "urn:example:two"} {
		mustIn("pia's PEP node "+node, ask(pia, fmt.Sprintf("e%d", i), pep, node), `type="result"`)
	}
	mustIn("cal's first PEP node", ask(cal, "e2", pep, "urn:example:one"), `type="result"`)
	mustIn("cal's second PEP node", ask(cal, "e3", pep, "urn:example:two"), "policy-violation", "too many nodes")

	// Pubsub: pubsub.corp takes items of 200 bytes at most, pubsub.localhost larger.
	item := `<iq type="set" id="%s" to="%s"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="news"><item><entry xmlns="http://www.w3.org/2005/Atom">` +
		strings.Repeat("x", 300) + `</entry></item></publish></pubsub></iq>`
	create := `<iq type="set" id="%s" to="%s"><pubsub xmlns="http://jabber.org/protocol/pubsub"><create node="news"/></pubsub></iq>`
	mustIn("news on pubsub.corp", ask(cal, "s3", create, "pubsub.corp.localhost"), `type="result"`)
	mustIn("news on pubsub.localhost", ask(pia, "s4", create, "pubsub.localhost"), `type="result"`)
	mustIn("a large item on pubsub.corp", ask(cal, "s1", item, "pubsub.corp.localhost"), "not-acceptable", "payload-too-big")
	mustIn("a large item on pubsub.localhost", ask(pia, "s2", item, "pubsub.localhost"), `type="result"`)

	// SOCKS5 proxy: proxy.corp names corp's own address, proxy.localhost the listener.
	streamhost := `<iq type="get" id="%s" to="%s"><query xmlns="http://jabber.org/protocol/bytestreams"/></iq>`
	mustIn("proxy.corp's streamhost", ask(cal, "x1", streamhost, "proxy.corp.localhost"), `host="192.0.2.7"`, `port="7777"`)
	mustOut("proxy.localhost's streamhost", ask(pia, "x2", streamhost, "proxy.localhost"), "192.0.2.7", `port="7777"`)

	// cal administers corp: its commands on accounts, not the server's.
	cmds := `<iq type="get" id="%s" to="%s"><query xmlns="http://jabber.org/protocol/disco#items" node="http://jabber.org/protocol/commands"/></iq>`
	corpCmds := ask(cal, "a1", cmds, "corp.localhost")
	mustIn("cal's commands on corp", corpCmds, "admin#add-user", "admin#get-registered-users-list")
	mustOut("cal's commands on corp", corpCmds, "admin#restart", "admin#edit-admin")
	mustOut("cal's commands on localhost", ask(cal, "a2", cmds, "localhost"), "admin#")
	cal.send(t, `<iq type="set" id="a3" to="corp.localhost"><command xmlns="http://jabber.org/protocol/commands" node="http://jabber.org/protocol/admin#disable-user" action="complete"><x xmlns="jabber:x:data" type="submit"><field var="accountjids"><value>eve@localhost</value></field></x></command></iq>`)
	mustIn("cal disabling eve@localhost", cal.iqAnswer(t, "a3"), "you administer corp.localhost only")

	// The caps hash in each host's stream features is its own disco#info's.
	corpVer, localVer := boundCapsVer(t, s, "corp.localhost", "cal", "cal-pass-1"), boundCapsVer(t, s, "localhost", "pia", "pia-pass-1")
	if corpVer == localVer || corpVer != s.rt.CapsVerFor("corp.localhost") || localVer != s.rt.CapsVer() {
		t.Fatalf("caps ver in the features: corp %q, localhost %q; the router's %q, %q", corpVer, localVer, s.rt.CapsVerFor("corp.localhost"), s.rt.CapsVer())
	}

	// A reload changes corp's contact address.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(b), `abuse = ["mailto:it@corp.localhost"]`, `abuse = ["mailto:help@corp.localhost"]`, 1)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	corp = ask(cal, "d3", info, "corp.localhost")
	mustIn("corp's disco#info after the reload", corp, "mailto:help@corp.localhost")
	mustOut("corp's disco#info after the reload", corp, "mailto:it@corp.localhost")
	if v := boundCapsVer(t, s, "corp.localhost", "cal", "cal-pass-1"); v == corpVer || v != s.rt.CapsVerFor("corp.localhost") {
		t.Fatalf("corp's caps ver after the reload: %q (before %q)", v, corpVer)
	}

	// A key the module lacks, or a module without settings per host, fails the reload.
	for _, tc := range []struct{ edit, want string }{
		{strings.Replace(conf, "quota = 2\n", "quota = 2\nquotaa = 2\n", 1), "unknown key quotaa"},
		{conf + "\n[vhosts.\"corp.localhost\".modules.version]\nname = \"x\"\n", "no settings per host"},
		{conf + "\n[modules.versoin]\n", "no such module"},
		{strings.Replace(conf, `message = "Welcome to Corp."`, `mesage = "Welcome to Corp."`, 1), "unknown key mesage"},
	} {
		if err := os.WriteFile(path, []byte(tc.edit), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("reload: %v, want an error with %q", err, tc.want)
		}
	}
	mustIn("corp's disco#info after the failed reloads", ask(cal, "d4", info, "corp.localhost"), "mailto:help@corp.localhost")
}

// boundCapsVer logs user in over direct TLS with SASL PLAIN and returns the XEP-0115
// ver of the stream features after authentication.
func boundCapsVer(t *testing.T, s *server, host, user, pass string) string {
	t.Helper()
	c, err := tls.Dial("tcp", s.eng.Addr("c2s-tls").String(), hostTLS(t, s, host))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x := &xmlConn{t: t, c: c}
	header := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + host + "' version='1.0'>"
	x.send(header)
	x.until("</stream:features>")
	x.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "</auth>")
	x.until("<success")
	x.send(header)
	f := x.until("</stream:features>")
	m := regexp.MustCompile(`ver='([^']+)'`).FindStringSubmatch(f)
	if m == nil {
		t.Fatalf("no caps in %s", f)
	}
	return m[1]
}

// textChecks returns checks that text has, or has none of, some substrings.
func textChecks(t *testing.T) (in, out func(what, got string, subs ...string)) {
	in = func(what, got string, subs ...string) {
		t.Helper()
		for _, sub := range subs {
			if !strings.Contains(got, sub) {
				t.Fatalf("%s: no %q in %s", what, sub, got)
			}
		}
	}
	out = func(what, got string, subs ...string) {
		t.Helper()
		for _, sub := range subs {
			if strings.Contains(got, sub) {
				t.Fatalf("%s: %q in %s", what, sub, got)
			}
		}
	}
	return in, out
}
