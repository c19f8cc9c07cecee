package engine_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/store"
)

// TestIntegrationAioxmpp: Debian's python3-aioxmpp (a second Python client with its own
// stream, SASL and XEP-0198 code, nobody here wrote it) verifies the certificate over
// STARTTLS, logs in with SCRAM, gets the roster and stream management with resumption, and
// exchanges messages with bob. Then it loses its TCP connection without a word; bob sends
// while the session is detached, aioxmpp reconnects and resumes on its own, and gets that
// message exactly once. Bob never sees alice go offline.
func TestIntegrationAioxmpp(t *testing.T) {
	needPython(t, "aioxmpp", "python3-aioxmpp")
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "aio secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "alice", "bob", "")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// aioxmpp connects through a proxy whose connections the test resets.
	px := newCutProxy(t, srv.C2SAddr())
	cmd := aioCmd(t, ctx, srv, px.Addr(), "aioxmpp_sm.py", "alice@localhost", "aio secret")
	lines := startLines(t, cmd)
	var seen []string
	// expect reads lines until one starts with want and returns it.
	expect := func(want string) string {
		t.Helper()
		for {
			l, ok := lines.next(30 * time.Second)
			if !ok {
				t.Fatalf("aioxmpp never printed %q; it printed:\n%s", want, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if strings.HasPrefix(l, "FAILED") {
				t.Fatalf("aioxmpp: %s\n%s", l, strings.Join(seen, "\n"))
			}
			if strings.HasPrefix(l, want) {
				return l
			}
		}
	}

	expect("BOUND alice@localhost/")
	expect("SM True True")
	expect("ROSTER bob@localhost both")
	bob.Expect("hello from aioxmpp")
	bob.Send("<message to='alice@localhost' type='chat' id='m1'><body>hello aioxmpp</body></message>")
	expect("GOT bob@localhost hello aioxmpp")
	expect("CUT ME")
	px.Cut()
	expect("SUSPENDED")
	bob.Send("<message to='alice@localhost' type='chat' id='m2'><body>while you were away</body></message>")
	expect("RESUMED True")
	got := bob.Expect("back again")
	if strings.Contains(got, "unavailable") {
		t.Fatalf("bob saw alice go offline while her session was detached:\n%s", got)
	}
	bob.Send("<message to='alice@localhost' type='chat' id='m3'><body>bye</body></message>")
	expect("DONE")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("aioxmpp: %v\n%s", err, strings.Join(seen, "\n"))
	}
	n := 0
	for _, l := range seen {
		if l == "GOT bob@localhost while you were away" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the message sent while detached arrived %d times:\n%s", n, strings.Join(seen, "\n"))
	}
	// Only now that aioxmpp closed its stream does alice go offline.
	bob.Expect("type='unavailable'")
}

// cutProxy forwards TCP connections to a server until Cut resets them, as a phone's
// network does when it changes.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*net.TCPConn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c.(*net.TCPConn), s.(*net.TCPConn))
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
			go func() { io.Copy(c, s); c.(*net.TCPConn).CloseWrite() }()
		}
	}()
	return p
}

// Addr is where clients connect.
func (p *cutProxy) Addr() string { return p.ln.Addr().String() }

// Cut resets every connection made so far, on both sides.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.SetLinger(0) // close sends RST
		c.Close()
	}
	p.conns = nil
}

// lineReader hands out a process's stdout line by line, with a timeout per line.
type lineReader chan string

// startLines starts cmd (stderr to the test's) and reads its stdout by lines.
func startLines(t *testing.T, cmd *exec.Cmd) lineReader {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(lineReader, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

// next is the next line, or false when none came within d or the output ended.
func (l lineReader) next(d time.Duration) (string, bool) {
	select {
	case s, ok := <-l:
		return s, ok
	case <-time.After(d):
		return "", false
	}
}

// needPython skips the test where Debian's python3 lacks module (and fails it in CI, which
// installs pkg).
func needPython(t *testing.T, module, pkg string) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import "+module).Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (apt-get install %s): %v", module, pkg, err)
		}
		t.Skip(pkg + " not installed")
	}
}

// TestIntegrationAioxmppServices runs aioxmpp's service clients one after another
// (testdata/aioxmpp_services.py): disco, ping, version, carbons, blocking, vCard,
// bookmarks in private XML storage, a PEP avatar, an upload slot, the ad-hoc command list,
// a room bob made (join, talk, hear bob, read the configuration) and a pubsub node's
// life. aioxmpp validates every answer against its typed model, so a malformed answer
// fails its step as a wrong one would.
func TestIntegrationAioxmppServices(t *testing.T) {
	needPython(t, "aioxmpp", "python3-aioxmpp")
	srv := uploadServer(t, vireotest.Options{})
	srv.AddUser(t, "alice", "aio secret")
	srv.AddUser(t, "bob", "secret")
	bob := mucLogin(t, srv, "bob", "pc")
	const room = "tea@conference.localhost"
	mucCreate(t, bob, room, "Bob")

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := aioCmd(t, ctx, srv, srv.C2SAddr(), "aioxmpp_services.py", "alice@localhost", "aio secret")
	lines := startLines(t, cmd)
	// Bob greets alice when her nick joins his room.
	go func() {
		if _, err := bob.ReadUntil("from='"+room+"/al'", 100*time.Second); err == nil {
			bob.Conn().SetWriteDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(bob.Conn(), "<message to='"+room+"' type='groupchat' id='g1'><body>hi al</body></message>")
		}
	}()
	var seen []string
	for {
		l, ok := lines.next(60 * time.Second)
		if !ok {
			break
		}
		seen = append(seen, l)
	}
	out := strings.Join(seen, "\n")
	if err := cmd.Wait(); err != nil || !strings.Contains(out, "DONE 0 failed") {
		t.Fatalf("aioxmpp: %v\n%s", err, out)
	}
	for _, want := range []string{"OK muc", "OK muc owner", "OK pubsub", "OK blocking", "OK avatar (PEP)", "OK bookmarks (private XML)", "JOINED al"} {
		if !strings.Contains(out, want) {
			t.Fatalf("aioxmpp output lacks %q:\n%s", want, out)
		}
	}
}

// TestIntegrationAioxmppSubscription: two aioxmpp clients become contacts the RFC 6121
// way (a roster set, subscribe, approve, subscribe back, approve), see each other online,
// and part again when alice removes bob: bob sees her resources go unavailable before the
// subscription goes (RFC 6121 §3.2.2; testdata/aioxmpp_subscribe.py).
func TestIntegrationAioxmppSubscription(t *testing.T) {
	srv := aioPair(t)
	runAio(t, srv, "aioxmpp_subscribe.py", []string{"alice@localhost", "bob@localhost", "aio secret"},
		"BOB ASKED BY alice@localhost", "ALICE ASKED BY bob@localhost", "ROSTERS both both Bob", "PRESENCE BOTH WAYS",
		"REMOVED None", "DONE")
	// Bob keeps alice in his roster, subscribed to nothing (RFC 6121 §3.2.3, §3.3.3).
	if items, _, err := srv.Store.Rosters().Get("bob@localhost"); err != nil || len(items) != 1 || items[0].Sub != store.SubNone {
		t.Fatalf("bob's stored roster after alice removed him: %v %v", items, err)
	}
}

// TestIntegrationAioxmppRegistration: an account's life through aioxmpp's XEP-0077 code
// (testdata/aioxmpp_register.py): sign-up before login, the registration read back, a
// password change (the old password then fails), and cancellation (no login after it).
func TestIntegrationAioxmppRegistration(t *testing.T) {
	needPython(t, "aioxmpp", "python3-aioxmpp")
	srv := vireotest.Start(t, vireotest.Options{Registration: true})
	runAio(t, srv, "aioxmpp_register.py", []string{"carol@localhost", "carol's secret"},
		"FIELDS True True", "REGISTERED", "INFO registered True carol", "PASSWORD CHANGED", "OLD PASSWORD REFUSED True",
		"NEW PASSWORD WORKS", "CANCELLED", "GONE True", "DONE")
	if _, err := srv.Store.Accounts().Get("carol@localhost"); err == nil {
		t.Fatal("carol's account is still stored after cancelling")
	}
}

// TestIntegrationAioxmppInvite: an operator's invitation (XEP-0401, as vireoctl invite
// makes it) redeemed through aioxmpp's registration code on a closed server
// (testdata/aioxmpp_invite.py): refused without the token, then XEP-0445 <preauth/>, the
// form with the reserved name filled in, registration, and a login.
func TestIntegrationAioxmppInvite(t *testing.T) {
	needPython(t, "aioxmpp", "python3-aioxmpp")
	srv := vireotest.Start(t, vireotest.Options{})
	lines, err := admin.Invite(adminBackend{srv}, "create", "dora@localhost", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimPrefix(lines[0], "xmpp:dora@localhost?register;preauth=")
	runAio(t, srv, "aioxmpp_invite.py", []string{"dora@localhost", "explorer", token},
		"CLOSED not-authorized", "TOKEN ACCEPTED", "FORM dora", "REGISTERED", "LOGGED IN dora@localhost", "DONE")
}

// TestIntegrationAioxmppContactInvite: XEP-0401 §4.1. romeo (raw) runs the contact
// invitation command; aioxmpp follows the link as a client does (testdata/
// aioxmpp_contact_invite.py): pre-approval, then a subscription request with the token
// (XEP-0379), which romeo's server approves and answers on his behalf. Both rosters end
// at both, and romeo, who never approved anything, was never asked.
func TestIntegrationAioxmppContactInvite(t *testing.T) {
	needPython(t, "aioxmpp", "python3-aioxmpp")
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "romeo", "secret")
	srv.AddUser(t, "juliet", "aio secret")
	romeo := srv.LoginPlain(t, "romeo", "secret", "pc")
	romeo.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>")
	romeo.Send("<iq type='set' id='inv' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='urn:xmpp:invite#invite' action='execute'/></iq>")
	got := romeo.Expect("</iq>")
	for !strings.Contains(got, "id='inv'") {
		got = romeo.Expect("</iq>")
	}
	m := regexp.MustCompile(`xmpp:romeo@localhost\?roster;preauth=([A-Za-z0-9]+)`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("invitation: %s", got)
	}
	out := runAio(t, srv, "aioxmpp_contact_invite.py", []string{"juliet@localhost", "aio secret", "romeo@localhost", m[1]},
		"ASKED WITH TOKEN", "ROSTER both", "SEES ROMEO", "DONE")
	if strings.Contains(out, "ASKED BY") {
		t.Fatalf("juliet's pre-approval was not honoured:\n%s", out)
	}
	got, _ = romeo.ReadUntil("subscription='both'", 10*time.Second)
	if !strings.Contains(got, "<item jid='juliet@localhost' subscription='both'") || strings.Contains(got, "type='subscribe'") {
		t.Fatalf("romeo's side: %s", got)
	}
}

// TestIntegrationAioxmppOffline: what waits for a user who is away, through two aioxmpp
// clients (testdata/aioxmpp_offline.py): a subscription request and three messages, all
// delivered at bob's next login, the messages in order and stamped (XEP-0203); alice comes
// back to a roster that says "to" and sees bob online.
func TestIntegrationAioxmppOffline(t *testing.T) {
	srv := aioPair(t)
	runAio(t, srv, "aioxmpp_offline.py", []string{"alice@localhost", "bob@localhost", "aio secret"},
		"BOB ASKED BY alice@localhost", "BOB GOT while you were away 1 delayed", "BOB GOT while you were away 3 delayed",
		"ORDER True", "ALICE ROSTER to", "ALICE SEES BOB", "DONE")
}

// TestIntegrationAioxmppMuc: a room's life through two aioxmpp clients, which track
// occupants, roles and affiliations from the status codes they are sent
// (testdata/aioxmpp_muc.py): creation, a join seen by both, the topic, a nick change, a
// private message, a kick with its reason, and a ban that refuses the rejoin.
func TestIntegrationAioxmppMuc(t *testing.T) {
	srv := aioPair(t)
	runAio(t, srv, "aioxmpp_muc.py", []string{"alice@localhost", "bob@localhost", "aio secret", "salon@conference.localhost"},
		"ALICE owner moderator", "BOB none participant seen as Bob", "BOB SEES ['Alice', 'Bob']",
		"TOPIC tea at five by Alice", "NICK Bob -> Robert bob now Robert", "PRIVATE just between us from Alice marked True",
		"BOB EXIT LeaveMode.KICKED mind your manners", "ALICE SAW LeaveMode.KICKED",
		"OUTCASTS ['bob@localhost']", "BANNED JOIN REFUSED forbidden", "DONE")
}

// aioPair skips without aioxmpp, else starts a server with alice and bob, whose password
// is "aio secret", for scripts that play both.
func aioPair(t *testing.T) *vireotest.Server {
	t.Helper()
	needPython(t, "aioxmpp", "python3-aioxmpp")
	srv := vireotest.Start(t, vireotest.Options{})
	srv.AddUser(t, "alice", "aio secret")
	srv.AddUser(t, "bob", "aio secret")
	return srv
}

// aioCmd is Debian's python3 running testdata/script against addr (a STARTTLS listener),
// trusting srv's certificate: the script gets HOST PORT CAFILE, then args (testdata/aiorun.py).
func aioCmd(t *testing.T, ctx context.Context, srv *vireotest.Server, addr, script string, args ...string) *exec.Cmd {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	return exec.CommandContext(ctx, "/usr/bin/python3", append([]string{"testdata/" + script, host, port, ca}, args...)...)
}

// runAio runs script against srv's STARTTLS listener to the end and checks that it
// succeeded and printed every line in want; it returns the output.
func runAio(t *testing.T, srv *vireotest.Server, script string, args []string, want ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	out, err := aioCmd(t, ctx, srv, srv.C2SAddr(), script, args...).CombinedOutput()
	s := string(out)
	if err != nil {
		t.Fatalf("aioxmpp %s: %v\n%s", script, err, s)
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Fatalf("aioxmpp %s printed no %q:\n%s", script, w, s)
		}
	}
	return s
}
