package engine_test

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// tmuxTerm is a terminal client running in a detached tmux session of its own tmux
// server: the test types into it and reads its screen, as a user would.
type tmuxTerm struct {
	t      *testing.T
	socket string
}

// startTerm runs command (with env) in a 200x50 tmux window.
func startTerm(t *testing.T, env []string, command ...string) *tmuxTerm {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed (apt-get install tmux)")
		}
		t.Skip("tmux not installed")
	}
	tm := &tmuxTerm{t: t, socket: fmt.Sprintf("vireo-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	args := []string{"new-session", "-d", "-x", "200", "-y", "50", "env"}
	args = append(append(args, env...), command...)
	if out, err := tm.tmux(args...); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	t.Cleanup(func() { tm.tmux("kill-server") })
	return tm
}

func (tm *tmuxTerm) tmux(args ...string) ([]byte, error) {
	return exec.Command("tmux", append([]string{"-L", tm.socket}, args...)...).CombinedOutput()
}

// screen is what the window shows now.
func (tm *tmuxTerm) screen() string {
	out, _ := tm.tmux("capture-pane", "-p", "-J")
	return string(out)
}

// waitFor waits up to 20 s for text to appear on the screen.
func (tm *tmuxTerm) waitFor(text string) {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := tm.screen()
		if strings.Contains(s, text) {
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the terminal never showed %q; it shows:\n%s", text, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// typeLine types line and Enter.
func (tm *tmuxTerm) typeLine(line string) {
	tm.t.Helper()
	if out, err := tm.tmux("send-keys", "-l", line); err != nil {
		tm.t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
	if out, err := tm.tmux("send-keys", "Enter"); err != nil {
		tm.t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
}

// needTool skips the test where Debian's pkg (which provides bin) is missing, and fails it
// in CI, which installs it.
func needTool(t *testing.T, bin, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (apt-get install %s)", bin, pkg)
		}
		t.Skip(pkg + " not installed")
	}
}

// certSHA1 is the SHA-1 fingerprint of the first certificate in pemBytes, lower-case hex.
func certSHA1(t *testing.T, pemBytes []byte) string {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		t.Fatal("no certificate in PEM")
	}
	sum := sha1.Sum(b.Bytes)
	return hex.EncodeToString(sum[:])
}

// TestIntegrationProfanity drives Debian's profanity (a terminal client on libstrophe) in
// tmux, as a user at a terminal would: it connects over STARTTLS, trusting the server's
// certificate as "/tls always" would have, logs in with SCRAM and shows its contact bob
// online; a message typed in it reaches bob, bob's offline message and answer appear on its
// screen, as do carbons of alice's phone's chat with bob, a file goes through HTTP upload, it joins bob's room and talks there, its OMEMO
// keys land in PEP where bob can read them, it blocks and reports a spammer to the abuse
// desk (XEP-0377), and /quit takes alice offline for bob.
func TestIntegrationProfanity(t *testing.T) {
	needTool(t, "profanity", "profanity")
	srv := reportingServer(t)
	srv.AddUser(t, "alice", "term secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "alice", "bob", "Bob")
	bob := mucLogin(t, srv, "bob", "pc")
	mucCreate(t, bob, mucRoom, "Bob")
	bob.Send("<message to='alice@localhost' type='chat' id='t0'><body>sent while you were offline</body></message>")
	bob.Send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>") // the offline copy is stored before the answer
	expectStanza(t, bob, "id='sync'")

	term := startProfanity(t, srv, "alice", "term secret")
	term.waitFor("alice@localhost/term logged in successfully")
	expectStanza(t, bob, "<presence", "from='alice@localhost/term'")
	term.waitFor("Bob")

	term.typeLine("/msg bob@localhost hello from a terminal")
	expectStanza(t, bob, "from='alice@localhost/term'", "<body>hello from a terminal</body>")
	term.waitFor("sent while you were offline") // the offline message, in bob's window
	bob.Send("<message to='alice@localhost/term' type='chat' id='t1'><body>hello terminal, bob here</body></message>")
	term.waitFor("hello terminal, bob here")

	// XEP-0280 carbons, which profanity enables: alice's phone talks with bob, and the
	// terminal shows both sides.
	phone := srv.LoginPlain(t, "alice", "term secret", "phone")
	phone.Send("<presence/>")
	bob.Send("<message to='alice@localhost/phone' type='chat' id='c1'><body>for the phone only</body></message>")
	expectStanza(t, phone, "id='c1'")
	phone.Send("<message to='bob@localhost' type='chat' id='c2'><body>answered from the phone</body></message>")
	expectStanza(t, bob, "id='c2'")
	term.waitFor("for the phone only")
	term.waitFor("answered from the phone")

	// A file through XEP-0363: profanity finds upload.localhost, PUTs over HTTPS (trusting
	// the certificate it was told to) and sends bob the link.
	file := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(file, []byte("from the terminal\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	term.typeLine("/sendfile " + file)
	got := expectStanza(t, bob, "from='alice@localhost/term'", "/notes.txt</body>")
	if m := regexp.MustCompile(`<body>(https://[^<]+)</body>`).FindStringSubmatch(got); m == nil {
		t.Fatalf("no link in %s", got)
	} else {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: srv.ClientTLS()}}
		if code, b, _ := httpDo(t, hc, "GET", m[1], "", "", nil, -1); code != 200 || string(b) != "from the terminal\n" {
			t.Fatalf("GET %s: %d %q", m[1], code, b)
		}
	}

	// A room bob made: profanity joins (with a nick of its own choosing) and talks.
	term.typeLine("/join " + mucRoom)
	joined := expectStanza(t, bob, "<presence", "from='"+mucRoom+"/")
	nick := regexp.MustCompile(`from='` + mucRoom + `/([^']+)'`).FindStringSubmatch(joined)[1]
	term.waitFor("You have joined the room")
	term.typeLine("hello room")
	// (libstrophe quotes attributes with ", and the room passes type on as sent.)
	expectStanza(t, bob, "from='"+mucRoom+"/"+nick+"'", "groupchat", "<body>hello room</body>")

	// OMEMO (XEP-0384 0.3, as Conversations speaks it): profanity generates its keys and
	// publishes its bundle and device list to PEP, open to anyone. Its first device list
	// goes out only when fetching the list fails with the XEP-0086 code 404
	// (stanza.Condition.LegacyCode).
	term.typeLine("/win 1")
	term.typeLine("/omemo gen")
	term.waitFor("Your Device ID is ")
	m := regexp.MustCompile(`Your Device ID is (\d+)`).FindStringSubmatch(term.screen())
	if m == nil {
		t.Fatalf("no device id on the screen:\n%s", term.screen())
	}
	const devicelist = "eu.siacs.conversations.axolotl.devicelist"
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		id := fmt.Sprintf("dl%d", i)
		bob.Send("<iq type='get' to='alice@localhost' id='" + id + "'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='" + devicelist + "'/></pubsub></iq>")
		got := expectStanza(t, bob, "id='"+id+"'")
		if strings.Contains(got, "type='result'") && strings.Contains(got, `<device id="`+m[1]+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's device list never listed device %s: %s", m[1], got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	bob.Send("<iq type='get' to='alice@localhost' id='bundle'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='eu.siacs.conversations.axolotl.bundles:" + m[1] + "'/></pubsub></iq>")
	expectStanza(t, bob, "id='bundle'", "type='result'", "<identityKey>")

	// A spammer: alice blocks and reports it (XEP-0377), which profanity offers only when
	// the server advertises reporting; the abuse desk gets the report, and the spammer's
	// next message bounces.
	srv.AddUser(t, "mallory", "secret")
	desk := abuseDesk(t, srv)
	mallory := srv.LoginPlain(t, "mallory", "secret", "bot")
	mallory.Send("<message to='alice@localhost' type='chat' id='sp1'><body>cheap potions</body></message>")
	term.waitFor("chat message: mallory@localhost/bot")
	term.typeLine("/blocked report-spam mallory@localhost Very annoying guy")
	got = expectStanza(t, desk, "from='localhost'", "<report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'>")
	for _, want := range []string{"<jid xmlns='urn:xmpp:jid:0'>mallory@localhost</jid>", "Very annoying guy", "jid='alice@localhost'"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the abuse desk's report lacks %q: %s", want, got)
		}
	}
	mallory.Send("<message to='alice@localhost/term' type='chat' id='sp2'><body>more potions</body></message>")
	expectStanza(t, mallory, "id='sp2'", "type='error'", "service-unavailable")

	term.typeLine("/quit")
	expectStanza(t, bob, "from='alice@localhost/term'", "type='unavailable'")
}

// startProfanity runs profanity for user@localhost (resource "term") against srv's
// STARTTLS listener, trusting the server's certificate as "/tls always" would have.
func startProfanity(t *testing.T, srv *vireotest.Server, user, password string) *tmuxTerm {
	t.Helper()
	home := t.TempDir()
	data := filepath.Join(home, "data", "profanity")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.C2SAddr())
	j := user + "@localhost"
	account := "[" + j + "]\nenabled=true\njid=" + j + "\nserver=" + host + "\nport=" + port +
		"\nresource=term\npassword=" + password + "\ntls.policy=force\n"
	// profanity's own trust store: what "/tls always" writes for an accepted certificate.
	files := map[string]string{
		"accounts": account,
		"tlscerts": "[" + certSHA1(t, srv.CertPEM) + "]\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(data, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return startTerm(t, []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_DATA_HOME=" + filepath.Join(home, "data"), "TERM=xterm-256color"},
		"profanity", "-a", j)
}

// TestIntegrationProfanityMuc: a room run from profanity's room commands, as its owner
// would: /join creates it locked, /room accept unlocks it with the defaults, and bob
// (raw) sees the subject, his role raised, his kick with its reason, his ban and the
// refused rejoin; carol sees the room destroyed.
func TestIntegrationProfanityMuc(t *testing.T) {
	needTool(t, "profanity", "profanity")
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "term secret")
	srv.AddUser(t, "bob", "secret")
	srv.AddUser(t, "carol", "secret")
	bob := mucLogin(t, srv, "bob", "pc")
	carol := mucLogin(t, srv, "carol", "pc")
	const room = "den@conference.localhost"

	term := startProfanity(t, srv, "alice", "term secret")
	term.waitFor("alice@localhost/term logged in successfully")
	term.typeLine("/join " + room + " nick Alice")
	term.waitFor("Room locked, requires configuration")
	bob.Send(mucJoin(room, "Bob", "early"))
	expectStanza(t, bob, "id='early'", "type='error'", "item-not-found") // locked (§10.1.1)
	term.typeLine("/room accept")
	term.waitFor("Room unlocked")

	bob.Send(mucJoin(room, "Bob", "jb"))
	expectStanza(t, bob, "id='jb'", "<status code='110'/>")
	term.typeLine("/subject set Potions and spells")
	expectStanza(t, bob, "from='"+room+"/Alice'", "<subject>Potions and spells</subject>")
	term.typeLine("/role set moderator Bob")
	expectStanza(t, bob, "<presence", "from='"+room+"/Bob'", "role='moderator'")
	term.typeLine("/affiliation set member carol@localhost")
	term.typeLine("/affiliation list member")
	term.waitFor("carol@localhost")
	term.typeLine("/kick Bob mind your manners")
	got := expectStanza(t, bob, "type='unavailable'", "<status code='307'/>")
	if !strings.Contains(got, "<reason>mind your manners</reason>") {
		t.Fatalf("kick without its reason: %s", got)
	}
	bob.Send(mucJoin(room, "Bob", "jb2"))
	expectStanza(t, bob, "id='jb2'", "<status code='110'/>")
	term.typeLine("/ban bob@localhost selling potions")
	got = expectStanza(t, bob, "type='unavailable'", "<status code='301'/>")
	if !strings.Contains(got, "affiliation='outcast'") {
		t.Fatalf("ban: %s", got)
	}
	bob.Send(mucJoin(room, "Bob", "jb3"))
	expectStanza(t, bob, "id='jb3'", "type='error'", "forbidden")

	carol.Send(mucJoin(room, "Carol", "jc"))
	expectStanza(t, carol, "id='jc'", "affiliation='member'")
	term.typeLine("/room destroy")
	expectStanza(t, carol, "type='unavailable'", "<destroy")
	term.typeLine("/quit")
}

// TestIntegrationMcabber drives Debian's mcabber (a terminal client on another library,
// loudmouth) in tmux: it connects over STARTTLS checking the certificate against the test
// server's, logs in, exchanges messages with bob, and joins bob's room and talks there.
func TestIntegrationMcabber(t *testing.T) {
	needTool(t, "mcabber", "mcabber")
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "term secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "alice", "bob", "Bob")
	bob := mucLogin(t, srv, "bob", "pc")
	mucCreate(t, bob, mucRoom, "Bob")

	home := t.TempDir()
	dir := filepath.Join(home, ".mcabber")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(home, "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.C2SAddr())
	rc := "set jid = alice@localhost\nset password = term secret\nset resource = mc\nset server = " + host +
		"\nset port = " + port + "\nset tls = 1\nset ssl_verify = 1\nset ssl_ca = " + ca + "\n"
	if err := os.WriteFile(filepath.Join(dir, "mcabberrc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	term := startTerm(t, []string{"HOME=" + home, "TERM=xterm-256color"}, "mcabber")
	term.waitFor("Connection established.")
	expectStanza(t, bob, "<presence", "from='alice@localhost/mc")
	term.waitFor("Bob")

	term.typeLine("/say_to bob@localhost hello from mcabber")
	expectStanza(t, bob, "from='alice@localhost/mc", "<body>hello from mcabber</body>")
	bob.Send("<message to='alice@localhost' type='chat' id='t1'><body>hello mcabber, bob here</body></message>")
	// Select the buddy with unread messages, and Enter on an empty line opens its chat.
	term.typeLine("/roster unread_first")
	term.typeLine("")
	term.waitFor("hello mcabber, bob here")

	// A room bob made: mcabber joins as "mcab" and talks in it. The room's history
	// arrives first; bob's line must be on the screen.
	bob.Send("<message to='" + mucRoom + "' type='groupchat' id='r0'><body>welcome to the coven</body></message>")
	expectStanza(t, bob, "id='r0'")
	term.typeLine("/room join " + mucRoom + " mcab")
	expectStanza(t, bob, "<presence", "from='"+mucRoom+"/mcab'")
	term.waitFor(`You have joined ` + mucRoom + ` as "mcab"`)
	term.typeLine("/roster unread_first") // the room, with its history unread
	term.typeLine("")
	term.waitFor("welcome to the coven")
	term.typeLine("hello from the terminal room")
	expectStanza(t, bob, "from='"+mucRoom+"/mcab'", "groupchat", "<body>hello from the terminal room</body>")

	// loudmouth writes attributes in double quotes, and the server passes them on as sent.
	term.typeLine("/quit")
	expectStanza(t, bob, "from='alice@localhost/mc", `type="unavailable"`)
}
