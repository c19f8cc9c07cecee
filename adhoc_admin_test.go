package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/config"
)

const adminNS = "http://jabber.org/protocol/admin"

// iqAnswer waits for the answer to the IQ with id and returns it (mellium re-encodes what
// it receives, attributes in double quotes).
func (c *xmppClient) iqAnswer(t *testing.T, id string) string {
	t.Helper()
	return c.answer(t, "iq", id)
}

// answer waits for the stanza named name with id and returns it whole.
func (c *xmppClient) answer(t *testing.T, name, id string) string {
	t.Helper()
	mark := `id="` + id + `"`
	c.waitFor(t, mark)
	c.mu.Lock()
	g := c.got.String()
	c.mu.Unlock()
	i := strings.Index(g, mark)
	start := strings.LastIndex(g[:i], "<"+name)
	end := strings.Index(g[i:], "</"+name+">")
	if start < 0 {
		t.Fatalf("no %s answers %s: %s", name, id, g)
	}
	if end < 0 {
		return g[start:]
	}
	return g[start : i+end+len("</"+name+">")]
}

var sessionID = regexp.MustCompile(`sessionid="([^"]+)"`)

// adhoc runs an XEP-0133 command in two stages, execute then submit with fields (a var
// may repeat for several values), and returns both answers.
func (c *xmppClient) adhoc(t *testing.T, host, node string, fields ...[2]string) (form, done string) {
	t.Helper()
	id := fmt.Sprintf("%s-%d", node, time.Now().UnixNano())
	c.send(t, "<iq type='set' id='"+id+"-1' to='"+host+"'><command xmlns='http://jabber.org/protocol/commands' node='"+adminNS+"#"+node+"' action='execute'/></iq>")
	form = c.iqAnswer(t, id+"-1")
	if strings.Contains(form, `status="completed"`) {
		return "", form // a command without a form is done at once
	}
	m := sessionID.FindStringSubmatch(form)
	if m == nil {
		t.Fatalf("%s: no session in %s", node, form)
	}
	x := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + adminNS + "</value></field>"
	byVar := map[string][]string{}
	var order []string
	for _, f := range fields {
		if _, ok := byVar[f[0]]; !ok {
			order = append(order, f[0])
		}
		byVar[f[0]] = append(byVar[f[0]], f[1])
	}
	for _, v := range order {
		x += "<field var='" + v + "'>"
		for _, val := range byVar[v] {
			x += "<value>" + val + "</value>"
		}
		x += "</field>"
	}
	c.send(t, "<iq type='set' id='"+id+"-2' to='"+host+"'><command xmlns='http://jabber.org/protocol/commands' node='"+adminNS+"#"+node+
		"' sessionid='"+m[1]+"' action='complete'>"+x+"</x></command></iq>")
	return form, c.iqAnswer(t, id+"-2")
}

// bounced waits for the error that answers the message with id, and checks its condition.
func (c *xmppClient) bounced(t *testing.T, id, cond string) {
	t.Helper()
	if m := c.answer(t, "message", id); !strings.Contains(m, `type="error"`) || !strings.Contains(m, "<"+cond) {
		t.Fatalf("answer to %s is no %s error: %s", id, cond, m)
	}
}

func mustHave(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// adminServer is vhostServer's config with federation on and admin@localhost an
// administrator; it returns the started server and the config path.
func adminServer(t *testing.T) (*server, string) {
	t.Helper()
	return vhostServerWith(t, fmt.Sprintf(`
[s2s]
# Federation, with the operator's own words, which the commands must keep.
enabled = true
listen = ["127.0.0.1:%d"]

[modules.adhoc]
admins = ["admin@localhost"]
`, freePort(t)))
}

// addAdmin creates admin@localhost as an operator does (admin is a reserved name, which
// in-band registration refuses).
func addAdmin(t *testing.T, s *server) {
	t.Helper()
	if err := admin.AddUser(s, "admin@localhost", "admin pw", 0); err != nil {
		t.Fatal(err)
	}
}

// adminSession is adminServer with the accounts admin and bob registered and the
// administrator logged in with mellium.
func adminSession(t *testing.T) (*server, string, *xmppClient) {
	t.Helper()
	s, path := adminServer(t)
	addAdmin(t, s) // a reserved name: the operator creates it
	registerIBR(t, s, "localhost", "bob", "bob pw")
	return s, path, loginMellium(t, s, "admin", "localhost", "admin pw")
}

// TestIntegrationAdhocFederation: XEP-0133 edit-blacklist and edit-whitelist (§4.11,
// §4.12) on the real server. The form shows the list in force; a submitted list is
// written to the config file ([s2s] deny or allow, domains prepared, every other line as
// the operator wrote it) and applies at once: messages to a blacklisted server, or to one
// off a whitelist, bounce with not-allowed. Entries that are not servers, and a domain on
// both lists, are refused and change nothing; the file survives a restart as the policy.
func TestIntegrationAdhocFederation(t *testing.T) {
	s, path, root := adminSession(t)
	before, _ := os.ReadFile(path)

	form, done := root.adhoc(t, "localhost", "edit-blacklist", [2]string{"blacklistjids", "Spam.Example"}, [2]string{"blacklistjids", "*.bad.example"})
	mustHave(t, "blacklist form", form, `var="blacklistjids"`, `type="jid-multi"`, "Edit Blacklist", `status="executing"`)
	mustHave(t, "blacklist set", done, `status="completed"`, "blacklist set: 2 entries")
	after, _ := os.ReadFile(path)
	want := strings.Replace(string(before), "[s2s]\n", "[s2s]\ndeny = [\"spam.example\", \"*.bad.example\"]\n", 1)
	if string(after) != want {
		t.Fatalf("config file after edit-blacklist:\n%s\nwant:\n%s", after, want)
	}
	// In force: a message to either bounces with not-allowed (RFC 6120 §8.3.3.10).
	root.send(t, "<message to='x@spam.example' id='m1' type='chat'><body>hi</body></message>")
	root.send(t, "<message to='y@deep.bad.example' id='m2' type='chat'><body>hi</body></message>")
	root.bounced(t, "m1", "not-allowed")
	root.bounced(t, "m2", "not-allowed")
	// The form shows the list in force.
	form, _ = root.adhoc(t, "localhost", "edit-blacklist", [2]string{"blacklistjids", "spam.example"}, [2]string{"blacklistjids", "*.bad.example"})
	mustHave(t, "blacklist form", form, ">spam.example</value><value xmlns=\"jabber:x:data\">*.bad.example</value></field>")

	// Refused, nothing changed: a user's JID, a domain on both lists, a name that is no domain.
	for _, tc := range []struct {
		node, field, value, why string
	}{
		{"edit-blacklist", "blacklistjids", "eve@evil.example", "is not a server"},
		{"edit-whitelist", "whitelistjids", "spam.example", "both deny and allow"},
		{"edit-whitelist", "whitelistjids", "no domain", "no domain"},
	} {
		_, done := root.adhoc(t, "localhost", tc.node, [2]string{tc.field, tc.value})
		mustHave(t, tc.node+" "+tc.value, done, `status="completed"`, `type="error"`, tc.why)
	}
	if now, _ := os.ReadFile(path); string(now) != string(after) {
		t.Fatalf("a refused edit changed the file:\n%s", now)
	}

	// A whitelist: only the servers on it (and not blacklisted).
	_, done = root.adhoc(t, "localhost", "edit-whitelist", [2]string{"whitelistjids", "friends.example"})
	mustHave(t, "whitelist set", done, "whitelist set: 1 entries")
	if d, a := s.FederationLists(); strings.Join(d, ",") != "spam.example,*.bad.example" || strings.Join(a, ",") != "friends.example" {
		t.Fatalf("lists in force: deny %v, allow %v", d, a)
	}
	root.send(t, "<message to='z@stranger.example' id='m3' type='chat'><body>hi</body></message>")
	root.bounced(t, "m3", "not-allowed")

	// bob is no administrator.
	bob := loginMellium(t, s, "bob", "localhost", "bob pw")
	bob.send(t, "<iq type='set' id='b1' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='"+adminNS+"#edit-blacklist' action='execute'/></iq>")
	mustHave(t, "bob's edit-blacklist", bob.iqAnswer(t, "b1"), `type="error"`, "forbidden")

	// The policy is the file's: a restart keeps it.
	closeOnce(s)
	s = startVhost(t, path)
	if d, a := s.FederationLists(); strings.Join(d, ",") != "spam.example,*.bad.example" || strings.Join(a, ",") != "friends.example" {
		t.Fatalf("after a restart: deny %v, allow %v", d, a)
	}
	// Emptied, the whitelist no longer limits.
	root = loginMellium(t, s, "admin", "localhost", "admin pw")
	_, done = root.adhoc(t, "localhost", "edit-whitelist")
	mustHave(t, "whitelist emptied", done, "whitelist set: 0 entries")
	if _, a := s.FederationLists(); len(a) != 0 {
		t.Fatalf("allow after emptying: %v", a)
	}

	// vireoctl s2s deny add, through the admin socket: in force at once, and in the file.
	resp, err := admin.Call(running(s).Admin.Socket, admin.Request{Op: "federation", List: "deny", Action: "add", Domain: "CLI.example"})
	if err != nil || resp.Error != "" || strings.Join(resp.Lines, ",") != "spam.example,*.bad.example,cli.example" {
		t.Fatalf("federation add: %v %+v", err, resp)
	}
	root.send(t, "<message to='x@cli.example' id='m4' type='chat'><body>hi</body></message>")
	root.bounced(t, "m4", "not-allowed")
	if c, err := config.Load(path); err != nil || strings.Join(c.S2S.Deny, ",") != "spam.example,*.bad.example,cli.example" {
		t.Fatalf("deny in the file: %v, %v", c, err)
	}
}

// TestIntegrationAdhocRestart: XEP-0133 restart (§4.30) on the real binary. Every
// available session gets the announcement, the streams end with system-shutdown, and
// the same process serves again, with the accounts and the config it had.
func TestIntegrationAdhocRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	vireo, ctl := buildBinaries(t)
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := filepath.Join(dir, "vireo.toml")
	toml := fmt.Sprintf(`domains = ["localhost"]
data_dir = %q
[c2s]
listen = []
tls_listen = ["127.0.0.1:%d"]
[web]
listen = []
tls_listen = []
[modules.adhoc]
admins = ["admin@localhost"]
[modules.upload]
listen = "127.0.0.1:0"
[modules.proxy65]
listen = "127.0.0.1:0"
`, filepath.Join(dir, "data"), port)
	if err := os.WriteFile(cfgPath, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"admin", "bob"} {
		if out, err := exec.Command(ctl, "-config", cfgPath, "adduser", u+"@localhost", u+" pw").CombinedOutput(); err != nil {
			t.Fatalf("adduser: %v\n%s", err, out)
		}
	}
	cmd, lines := startLogged(t, vireo, cfgPath)
	waitFor(t, lines, "vireo is serving")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	tc := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}

	bob := loginMelliumAt(t, addr, tc, "bob", "localhost", "bob pw")
	bob.send(t, "<presence/>")
	admin := loginMelliumAt(t, addr, tc, "admin", "localhost", "admin pw")
	form, done := admin.adhoc(t, "localhost", "restart", [2]string{"delay", "0"}, [2]string{"announcement", "Back in a moment."})
	mustHave(t, "restart form", form, `var="delay"`, `var="announcement"`, "Time delay before restarting")
	mustHave(t, "restart", done, `status="completed"`, "restart announced to 1 sessions; restarting in 1 s")
	bob.waitFor(t, ">Server restart</subject>", ">Back in a moment.</body>")
	select {
	case err := <-bob.done:
		if err == nil || !strings.Contains(err.Error(), "system-shutdown") {
			t.Logf("bob's stream ended: %v", err) // mellium may report the close as EOF
		}
	case <-time.After(15 * time.Second):
		t.Fatal("bob's stream did not end")
	}
	waitFor(t, lines, "restarting")
	waitFor(t, lines, "vireo is serving")
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the process is gone: %v", err)
	}
	// The same process, serving again: bob logs in.
	bob = loginMelliumAt(t, addr, tc, "bob", "localhost", "bob pw")
	bob.send(t, "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	mustHave(t, "ping after the restart", bob.iqAnswer(t, "p1"), `type="result"`)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// TestIntegrationReloadModules: a reload changes the settings of modules that take them
// while running: an administrator added to [modules.adhoc] admins runs XEP-0133 commands
// at once, one removed no longer does, and the welcome message ([modules.welcome]) greets
// the next account with its new words. A module table the module refuses fails the
// reload as a whole, and what ran before stays.
func TestIntegrationReloadModules(t *testing.T) {
	s, path := adminServer(t)
	orig, _ := os.ReadFile(path)
	addAdmin(t, s) // a reserved name: the operator creates it
	registerIBR(t, s, "localhost", "bob", "bob pw")
	bob := loginMellium(t, s, "bob", "localhost", "bob pw")
	run := func(c *xmppClient, id string) string {
		c.send(t, "<iq type='set' id='"+id+"' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='"+adminNS+"#get-online-users-num' action='execute'/></iq>")
		return c.iqAnswer(t, id)
	}
	mustHave(t, "bob before", run(bob, "r1"), `type="error"`, "forbidden")

	edited := strings.Replace(string(orig), `admins = ["admin@localhost"]`, `admins = ["bob@localhost"]`, 1) +
		"[modules.welcome]\nmessage = \"Welcome aboard.\"\nsubject = \"Hello\"\n"
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	mustHave(t, "bob after", run(bob, "r2"), `type="result"`, `status="completed"`)
	root := loginMellium(t, s, "admin", "localhost", "admin pw")
	mustHave(t, "admin after", run(root, "r3"), `type="error"`, "forbidden")
	registerIBR(t, s, "localhost", "newcomer", "new pw")
	newcomer := loginMellium(t, s, "newcomer", "localhost", "new pw")
	newcomer.send(t, "<presence/>")
	newcomer.waitFor(t, ">Hello</subject>", ">Welcome aboard.</body>")

	// Refused: an administrator on a domain not served. Nothing changes.
	bad := strings.Replace(edited, `admins = ["bob@localhost"]`, `admins = ["eve@elsewhere.example"]`, 1)
	os.WriteFile(path, []byte(bad), 0o600)
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "not served here") {
		t.Fatalf("reload with a bad admin: %v", err)
	}
	mustHave(t, "bob after the refused reload", run(bob, "r4"), `type="result"`)
}

// TestIntegrationReloadServices: the limits of the upload, SOCKS5 proxy, pubsub and PEP
// services and the XEP-0157 contact addresses change at a reload, for sessions already
// open: a file above the new max_file_size is refused and the service's disco#info names
// the new size, the proxy names its new address and port, a second node is over the new
// max_nodes, a PEP item above the new max_item_size is refused, and the server's
// disco#info (and the stream features' caps) carry the new abuse address.
func TestIntegrationReloadServices(t *testing.T) {
	s, path := adminServer(t)
	orig, _ := os.ReadFile(path)
	registerIBR(t, s, "localhost", "bob", "bob pw")
	registerIBR(t, s, "localhost", "carol", "carol pw") // never online: her messages are stored
	bob := loginMellium(t, s, "bob", "localhost", "bob pw")
	ask := func(id, raw string) string {
		bob.send(t, raw)
		return bob.iqAnswer(t, id)
	}
	slot := func(id string) string {
		return ask(id, "<iq type='get' id='"+id+"' to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='5000' content-type='text/plain'/></iq>")
	}
	streamhost := func(id string) string {
		return ask(id, "<iq type='get' id='"+id+"' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>")
	}
	create := func(id, node string) string {
		return ask(id, "<iq type='set' id='"+id+"' to='pubsub.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='"+node+"'/></pubsub></iq>")
	}
	publish := func(id string) string {
		return ask(id, "<iq type='set' id='"+id+"'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:test:big'><item id='1'><big xmlns='urn:test:big'>"+
			strings.Repeat("x", 500)+"</big></item></publish></pubsub></iq>")
	}
	serverInfo := func(id string) string {
		return ask(id, "<iq type='get' id='"+id+"' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	}
	mustHave(t, "slot before", slot("u1"), `type="result"`, "<put ")
	mustHave(t, "streamhost before", streamhost("p1"), `host="proxy.localhost"`)
	mustHave(t, "first node", create("c1", "one"), `type="result"`)
	mustHave(t, "second node before", create("c2", "two"), `type="result"`)
	mustHave(t, "PEP item before", publish("e1"), `type="result"`)
	if info := serverInfo("i1"); strings.Contains(info, "abuse-addresses") {
		t.Fatalf("abuse address before it was configured: %s", info)
	}
	capsBefore := s.rt.CapsVer()

	edited := strings.Replace(string(orig), "[modules.upload]\nlisten = \"127.0.0.1:0\"\n", "[modules.upload]\nlisten = \"127.0.0.1:0\"\nmax_file_size = 1000\n", 1)
	edited = strings.Replace(edited, "[modules.proxy65]\nlisten = \"127.0.0.1:0\"\n", "[modules.proxy65]\nlisten = \"127.0.0.1:0\"\naddress = \"192.0.2.7\"\nport = 7777\n", 1)
	tables := "[modules.pubsub]\nmax_nodes = 2\n[modules.pep]\nmax_item_size = 300\n[modules.contact]\nabuse = [\"mailto:abuse@localhost\"]\n" +
		"[modules.offline]\nquota = 2\n"
	edited += tables
	if edited == string(orig)+tables {
		t.Fatalf("the upload and proxy65 tables were not edited:\n%s", edited)
	}
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	mustHave(t, "slot after", slot("u2"), `type="error"`, "the largest is 1000 bytes")
	mustHave(t, "upload info after", ask("u3", "<iq type='get' id='u3' to='upload.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
		`var="max-file-size"><value xmlns="jabber:x:data">1000</value>`)
	mustHave(t, "streamhost after", streamhost("p2"), `host="192.0.2.7"`, `port="7777"`)
	mustHave(t, "third node after", create("c3", "three"), `type="error"`, "as many nodes as allowed")
	mustHave(t, "PEP item after", publish("e2"), `type="error"`, "payload-too-big")
	mustHave(t, "server info after", serverInfo("i2"), `var="abuse-addresses"`, ">mailto:abuse@localhost</value>")
	if s.rt.CapsVer() == capsBefore {
		t.Fatal("the caps verification string did not change with the server's disco#info")
	}
	for i := range 3 {
		bob.send(t, fmt.Sprintf("<message to='carol@localhost' id='o%d' type='chat'><body>%d</body></message>", i, i))
	}
	bob.bounced(t, "o2", "service-unavailable")
	bob.mu.Lock()
	if g := bob.got.String(); strings.Contains(g, `id="o0"`) || strings.Contains(g, `id="o1"`) { // bob sends from no other resource
		t.Fatalf("a message within the offline quota bounced: %s", g)
	}
	bob.mu.Unlock()

	// A bad value fails the reload, and what was in force stays.
	os.WriteFile(path, []byte(strings.Replace(edited, "max_file_size = 1000", "max_file_size = 1000\nquota = -5", 1)), 0o600)
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("reload with a bad quota: %v", err)
	}
	mustHave(t, "slot after the refused reload", slot("u4"), `type="error"`, "the largest is 1000 bytes")
}

// TestIntegrationAdhocSettings: XEP-0133 set-welcome, delete-welcome and edit-admin
// (§4.27–§4.29) write [modules.welcome] message and [modules.adhoc] admins to the config
// file (the rest of it as it was) and are in force at once: the next account gets the
// new welcome, none after it is deleted, and a new administrator runs commands. The
// admin list must keep its sender; the forms show what is in force; a reload after them
// changes nothing.
func TestIntegrationAdhocSettings(t *testing.T) {
	s, path, root := adminSession(t)
	before, _ := os.ReadFile(path)

	_, done := root.adhoc(t, "localhost", "set-welcome", [2]string{"welcome", "Welcome to \"localhost\"."}, [2]string{"welcome", "Be kind."})
	mustHave(t, "set-welcome", done, `status="completed"`, "welcome message set")
	after, _ := os.ReadFile(path)
	if want := string(before) + "\n[modules.welcome]\nmessage = \"Welcome to \\\"localhost\\\".\\nBe kind.\"\n"; string(after) != want {
		t.Fatalf("config after set-welcome:\n%s", after)
	}
	registerIBR(t, s, "localhost", "newcomer", "new pw")
	n := loginMellium(t, s, "newcomer", "localhost", "new pw")
	n.send(t, "<presence/>")
	n.waitFor(t, "Welcome to &#34;localhost&#34;.\nBe kind.</body>")
	form, _ := root.adhoc(t, "localhost", "set-welcome", [2]string{"welcome", "Welcome again."})
	mustHave(t, "set-welcome form", form, "Welcome to &#34;localhost&#34;.</value>", ">Be kind.</value>")

	_, done = root.adhoc(t, "localhost", "delete-welcome")
	mustHave(t, "delete-welcome", done, `status="completed"`, "welcome message deleted")
	registerIBR(t, s, "localhost", "late", "late pw")
	late := loginMellium(t, s, "late", "localhost", "late pw")
	late.send(t, "<presence/>")
	late.send(t, "<iq type='get' id='ping' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	late.iqAnswer(t, "ping")
	time.Sleep(200 * time.Millisecond)
	late.mu.Lock()
	if g := late.got.String(); strings.Contains(g, "Welcome") {
		t.Fatalf("welcomed after delete-welcome: %s", g)
	}
	late.mu.Unlock()

	// edit-admin: the form lists the administrators; a list without the sender is refused.
	form, done = root.adhoc(t, "localhost", "edit-admin", [2]string{"adminjids", "bob@localhost"})
	mustHave(t, "edit-admin form", form, `var="adminjids"`, ">admin@localhost</value>")
	mustHave(t, "edit-admin without the sender", done, `type="error"`, "the list must keep you")
	_, done = root.adhoc(t, "localhost", "edit-admin", [2]string{"adminjids", "admin@localhost"}, [2]string{"adminjids", "Bob@localhost"})
	mustHave(t, "edit-admin", done, `status="completed"`, "admin list set: 2 administrators")
	if got, _ := os.ReadFile(path); !strings.Contains(string(got), "[modules.adhoc]\nadmins = [\"admin@localhost\", \"bob@localhost\"]\n") {
		t.Fatalf("config after edit-admin:\n%s", got)
	}
	bob := loginMellium(t, s, "bob", "localhost", "bob pw")
	bob.send(t, "<iq type='set' id='b1' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='"+adminNS+"#get-online-users-num' action='execute'/></iq>")
	mustHave(t, "bob, an administrator now", bob.iqAnswer(t, "b1"), `status="completed"`)
	_, done = root.adhoc(t, "localhost", "edit-admin", [2]string{"adminjids", "admin@localhost"}, [2]string{"adminjids", "eve@elsewhere.example"})
	mustHave(t, "edit-admin, a domain not served", done, `type="error"`, "not served here")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	bob.send(t, "<iq type='set' id='b2' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='"+adminNS+"#get-online-users-num' action='execute'/></iq>")
	mustHave(t, "bob after a reload", bob.iqAnswer(t, "b2"), `status="completed"`)
}
