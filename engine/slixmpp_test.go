package engine_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationSlixmpp logs in with Debian's python3-slixmpp (a client nobody here
// wrote) over STARTTLS, binds, fetches the roster and gets a message to itself.
func TestIntegrationSlixmpp(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{})
	srv.AddUser(t, "slix", "py secret")
	runSlix(t, srv, "slixmpp_login.py", "BOUND slix@localhost/py", "ECHO slix@localhost/py")
}

// TestIntegrationSlixmppCSI: slixmpp's XEP-0352 plugin finds CSI in the stream features and
// goes inactive; presence and chat states from a contact are held back until a message with
// a body arrives, then come first, only the latest presence.
func TestIntegrationSlixmppCSI(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "slix", "py secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "slix", "bob", "")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := slixCmd(t, ctx, srv, "slixmpp_csi.py")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(d time.Duration) (string, bool) {
		select {
		case l, ok := <-lines:
			return l, ok
		case <-time.After(d):
			return "", false
		}
	}
	for {
		l, ok := next(20 * time.Second)
		if !ok {
			t.Fatal("slixmpp never went inactive")
		}
		if l == "INACTIVE" {
			break
		}
		if strings.HasPrefix(l, "NO CSI") {
			t.Fatal(l)
		}
	}
	for _, show := range []string{"away", "dnd", "xa"} {
		bob.Send("<presence><show>" + show + "</show></presence>")
	}
	bob.Send("<message to='slix@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	if l, ok := next(500 * time.Millisecond); ok {
		t.Fatalf("inactive slixmpp got %q", l)
	}
	bob.Send("<message to='slix@localhost' type='chat'><body>wake up</body></message>")
	var got []string
	for {
		l, ok := next(10 * time.Second)
		if !ok {
			break
		}
		got = append(got, l)
	}
	cmd.Wait()
	want := []string{"PRESENCE bob@localhost xa", "CHATSTATE bob@localhost", "BODY wake up"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("slixmpp saw %q, want %q", got, want)
	}
}

// TestIntegrationSlixmppSM: slixmpp's XEP-0198 plugin enables stream management with
// resumption, loses its TCP connection without closing the stream, connects again and
// resumes the same session.
func TestIntegrationSlixmppSM(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{})
	srv.AddUser(t, "slix", "py secret")
	runSlix(t, srv, "slixmpp_sm.py", "ENABLED True", "RESUMED", "ECHO")
}

// needSlixmpp skips the test where Debian's python3-slixmpp is missing (and fails it in CI,
// which installs it).
func needSlixmpp(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import slixmpp").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("slixmpp is not installed (apt-get install python3-slixmpp): %v", err)
		}
		t.Skip("python3-slixmpp not installed")
	}
}

// slixCmd is the command that runs testdata/script as slix@localhost/py against srv's
// STARTTLS listener, trusting srv's certificate.
func slixCmd(t *testing.T, ctx context.Context, srv *vireotest.Server, script string) *exec.Cmd {
	return slixCmdAt(t, ctx, srv, srv.C2SAddr(), script)
}

// slixCmdAt is slixCmd against addr (an edge's listener) instead of srv's own.
func slixCmdAt(t *testing.T, ctx context.Context, srv *vireotest.Server, addr, script string) *exec.Cmd {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	host, port, _ := net.SplitHostPort(addr)
	return exec.CommandContext(ctx, "/usr/bin/python3", "testdata/"+script, "slix@localhost/py", "py secret", host, port, ca)
}

// runSlix runs script to the end and checks that its output has every line of want.
func runSlix(t *testing.T, srv *vireotest.Server, script string, want ...string) {
	t.Helper()
	runSlixAt(t, srv, srv.C2SAddr(), script, want...)
}

// runSlixOut is runSlix returning the script's output.
func runSlixOut(t *testing.T, srv *vireotest.Server, script string, want ...string) string {
	t.Helper()
	return runSlixAt(t, srv, srv.C2SAddr(), script, want...)
}

// runSlixAt is runSlix against addr; it returns the script's output.
func runSlixAt(t *testing.T, srv *vireotest.Server, addr, script string, want ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := slixCmdAt(t, ctx, srv, addr, script).CombinedOutput()
	s := string(out)
	if err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, s)
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Fatalf("slixmpp output lacks %q:\n%s", w, s)
		}
	}
	return s
}

// TestIntegrationSlixmppPep: slixmpp's XEP-0084 and XEP-0172 plugins (on XEP-0163) publish
// an avatar and a nickname to the account's PEP nodes, get the metadata notification and
// read the items back.
func TestIntegrationSlixmppPep(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{})
	srv.AddUser(t, "slix", "py secret")
	runSlix(t, srv, "slixmpp_pep.py", "PUBLISHED", "NOTIFIED", "AVATAR OK", "NICK Slix")
}

// TestIntegrationSlixmppBookmarks: slixmpp's XEP-0048 plugin on PEP (XEP-0223 storage, its
// caps with storage:bookmarks+notify) against XEP-0402 §5.3 #compat-pep: its list becomes
// XEP-0402 items, a XEP-0402 bookmark published beside it shows in the list it is notified
// of and reads back.
func TestIntegrationSlixmppBookmarks(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{})
	srv.AddUser(t, "slix", "py secret")
	runSlix(t, srv, "slixmpp_bookmarks.py", "COMPAT-PEP", "STORED", "LIST council@conference.localhost",
		"LIST cafe@conference.localhost,council@conference.localhost", "READ Cafe,Council")
}

// TestIntegrationSlixmppPubsub: slixmpp's XEP-0060 plugin finds pubsub.localhost in the
// server's disco#items, creates a configured node, subscribes, publishes and gets the
// event, reads its subscription's options and turns delivery off (XEP-0060 §6.3), reads
// the item and the configuration back, and deletes the node (with its event).
func TestIntegrationSlixmppPubsub(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{})
	srv.AddUser(t, "slix", "py secret")
	runSlix(t, srv, "slixmpp_pubsub.py", "SERVICE pubsub.localhost", "CREATED slix-news", "SUBSCRIPTION subscribed",
		"EVENT pubsub.localhost first {urn:example:news}entry Hello from slixmpp", "DELIVER True", "DELIVER False", "ITEMS OK",
		"PAGES first,second|third", "CONFIG OK", "DELETED slix-news")
}

// TestIntegrationSlixmppSASL2: slixmpp (whose Debian version has no plugins for these)
// logs in over XEP-0388 SASL2 with Bind2, gets a XEP-0484 FAST token, has its XEP-0198
// plugin enable stream management from the features after <success/>, and registers a
// XEP-0357 app server with a raw IQ; then it logs in again with the token in one round
// trip. The app server, a real component, is notified of a message while it is offline.
func TestIntegrationSlixmppSASL2(t *testing.T) {
	needSlixmpp(t)
	cfg, err := config.Parse([]byte("domains = [\"localhost\"]\n[modules.push]\nmin_interval = \"0s\"\n"), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, ModuleConfig: cfg.ModuleConfig,
		Components: []engine.Component{{Domain: "push.localhost", Secret: compSecret}}})
	srv.AddUser(t, "slix", "py secret")
	srv.AddUser(t, "bob", "secret")
	app, _ := componentLogin(t, srv, "push.localhost", compSecret)
	app.Expect("<handshake/>")

	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := slixCmd(t, ctx, srv, "slixmpp_sasl2.py")
		cmd.Args = append(cmd.Args, args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("slixmpp %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	const agent = "d7f1c6a4-2b0e-4c55-9a6e-1f3b8e2c7d90"
	out := run(agent)
	for _, want := range []string{"SASL2 PLAIN bound as slix@localhost/", "SM ENABLED True", "PUSH ENABLED result"} {
		if !strings.Contains(out, want) {
			t.Fatalf("first login lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`TOKEN (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no FAST token:\n%s", out)
	}
	out = run(agent, m[1])
	for _, want := range []string{"SASL2 HT-SHA-256-NONE bound as slix@localhost/", "FAST PROOF ok", "SM ENABLED True", "ECHO"} {
		if !strings.Contains(out, want) {
			t.Fatalf("FAST login lacks %q:\n%s", want, out)
		}
	}
	// The token is bound to the user agent it was issued to.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := slixCmd(t, ctx, srv, "slixmpp_sasl2.py")
	cmd.Args = append(cmd.Args, "00000000-0000-4000-8000-000000000000", m[1])
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "SASL2 FAILED") {
		t.Fatalf("a token from another user agent: %v\n%s", err, b)
	}

	// slix is offline now: bob's message reaches the app server slixmpp registered.
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<message to='slix@localhost' type='chat' id='p1'><body>ping the phone</body></message>")
	// (slix's own "fast echo" may come first: its FAST session sent no presence, so it was
	// not a session that counts as reading.)
	for i := 0; ; i++ {
		got := app.Expect("</iq>")
		if !strings.Contains(got, "<publish node='slix-node'>") {
			t.Fatalf("app server got: %s", got)
		}
		if strings.Contains(got, "<value>bob@localhost/pc</value>") {
			break
		}
		if i == 2 {
			t.Fatalf("no notification of bob's message; last: %s", got)
		}
		id := regexp.MustCompile(`id='([^']+)'`).FindStringSubmatch(got)
		app.Send("<iq type='result' from='push.localhost' to='slix@localhost' id='" + id[1] + "'/>")
	}
}

// TestIntegrationSlixmppServices runs slixmpp's plugins one after another
// (testdata/slixmpp_services.py): disco, ping, version, time, last activity of a contact
// who left, carbons, blocking, a report to the abuse desk with its XEP-0377 plugin (the
// 0.2 form), vCard, private storage, XEP-0048 bookmarks in it, XEP-0223 private PEP, and a
// password change.
func TestIntegrationSlixmppServices(t *testing.T) {
	needSlixmpp(t)
	srv := reportingServer(t)
	desk := abuseDesk(t, srv)
	srv.AddUser(t, "slix", "py secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "slix", "bob", "")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	bob.Send("<presence type='unavailable'><status>off</status></presence></stream:stream>")
	bob.ExpectClosed()
	runSlix(t, srv, "slixmpp_services.py", "OK last activity", "OK block and report", "OK private PEP (XEP-0223)", "OK change password", "DONE 0")
	desk.Expect("<body>slix@localhost reported spammer@example.org for spam: buy potions</body>")
}
