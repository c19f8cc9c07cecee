package engine_test

import (
	"bytes"
	"context"
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

// TestIntegrationSendxmpp drives Debian's go-sendxmpp (a command-line client built on
// another Go XMPP library, go-xmpp) as a script or cron job would: a message over
// STARTTLS and over direct TLS (XEP-0368), both checking the certificate; a file through
// XEP-0363 upload; a message to a room (XEP-0045); listening for messages; XEP-0373
// OpenPGP end to end, with both keys published to and fetched from PEP; and a wrong
// password, which must fail with a non-zero exit.
func TestIntegrationSendxmpp(t *testing.T) {
	if _, err := exec.LookPath("go-sendxmpp"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("go-sendxmpp is not installed (apt-get install go-sendxmpp)")
		}
		t.Skip("go-sendxmpp not installed")
	}
	srv := uploadServer(t, vireotest.Options{})
	srv.AddUser(t, "alice", "send secret")
	srv.AddUser(t, "bob", "secret")
	bob := mucLogin(t, srv, "bob", "pc")

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// run is go-sendxmpp as alice with args; Go's crypto/x509 trusts SSL_CERT_FILE alone,
	// so certificates are checked against the test server's (no -n).
	// Each user has a home of their own, for their OpenPGP keys.
	command := func(ctx context.Context, user, password, stdin string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "go-sendxmpp", append([]string{"-u", user + "@localhost", "-p", password, "-j", srv.C2SAddr()}, args...)...)
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+ca, "HOME="+filepath.Join(dir, user))
		cmd.Stdin = strings.NewReader(stdin)
		return cmd
	}
	run := func(stdin string, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := command(ctx, "alice", "send secret", stdin, args...).CombinedOutput()
		return string(out), err
	}
	mustRun := func(stdin string, args ...string) string {
		t.Helper()
		out, err := run(stdin, args...)
		if err != nil {
			t.Fatalf("go-sendxmpp %v: %v\n%s", args, err, out)
		}
		return out
	}

	mustRun("over starttls", "-j", srv.C2SAddr(), "bob@localhost")
	expectStanza(t, bob, "from='alice@localhost/", "<body>over starttls</body>")
	mustRun("over direct tls", "-t", "-j", srv.TLSAddr(), "bob@localhost")
	expectStanza(t, bob, "from='alice@localhost/", "<body>over direct tls</body>")

	// A file: go-sendxmpp finds upload.localhost, gets a slot, PUTs the file over HTTPS and
	// sends bob the download URL.
	file := filepath.Join(dir, "note.txt")
	content := []byte("uploaded by go-sendxmpp\n")
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun("", "-j", srv.C2SAddr(), "-h", file, "bob@localhost")
	got := expectStanza(t, bob, "from='alice@localhost/", "<body>https://localhost:")
	m := regexp.MustCompile(`<body>(https://[^<]+)</body>`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no download URL in %s", got)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: srv.ClientTLS()}}
	code, b, _ := httpDo(t, hc, "GET", m[1], "", "", nil, -1)
	if code != 200 || !bytes.Equal(b, content) {
		t.Fatalf("GET %s: %d %q", m[1], code, b)
	}

	// A room bob made: go-sendxmpp joins with its alias and says its line.
	mucCreate(t, bob, mucRoom, "Bob")
	mustRun("to the room", "-j", srv.C2SAddr(), "-c", "-a", "sender", mucRoom)
	expectStanza(t, bob, "from='"+mucRoom+"/sender'", "type='groupchat'", "<body>to the room</body>")

	// Listening: go-sendxmpp prints what it is sent until it is stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lcmd := command(ctx, "alice", "send secret", "", "-l")
	lines := startLines(t, lcmd)
	defer lcmd.Process.Kill()
	// Its session comes online with initial presence; bob is not subscribed, so he
	// sends to alice's bare JID until the listener is there to print it.
	deadline := time.Now().Add(20 * time.Second)
	for heard := false; !heard; {
		if time.Now().After(deadline) {
			t.Fatal("go-sendxmpp -l printed nothing")
		}
		bob.Send("<message to='alice@localhost' type='chat'><body>are you listening</body></message>")
		if l, ok := lines.next(time.Second); ok {
			if !strings.Contains(l, "are you listening") || !strings.Contains(l, "bob@localhost") {
				t.Fatalf("go-sendxmpp -l printed %q", l)
			}
			heard = true
		}
	}
	lcmd.Process.Kill()
	lcmd.Wait()

	// XEP-0373 OpenPGP: each side makes a key and publishes it to PEP, open to anyone;
	// alice encrypts to the key she fetches from bob's PEP, and bob's listener fetches
	// hers to check the signature and prints the clear text. The server carries only
	// ciphertext.
	for _, u := range [][2]string{{"alice", "send secret"}, {"bob", "secret"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := command(ctx, u[0], u[1], "", "--ox-genprivkey-x25519", "--ox-passphrase", "pp").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s's OpenPGP key: %v\n%s", u[0], err, out)
		}
	}
	ocmd := command(ctx, "bob", "secret", "", "-l", "--ox", "--ox-passphrase", "pp")
	olines := startLines(t, ocmd)
	defer ocmd.Process.Kill()
	deadline = time.Now().Add(30 * time.Second)
	for heard := false; !heard; {
		if time.Now().After(deadline) {
			t.Fatal("bob's go-sendxmpp -l --ox printed nothing")
		}
		mustRun("only for bob", "--ox", "--ox-passphrase", "pp", "bob@localhost")
		got := expectStanza(t, bob, "from='alice@localhost/", "<openpgp xmlns=\"urn:xmpp:openpgp:0\">")
		if strings.Contains(got, "only for bob") {
			t.Fatalf("the clear text went through the server: %s", got)
		}
		if l, ok := olines.next(2 * time.Second); ok {
			if !strings.Contains(l, "only for bob") {
				t.Fatalf("bob's go-sendxmpp -l --ox printed %q", l)
			}
			heard = true
		}
	}
	ocmd.Process.Kill()
	ocmd.Wait()

	if out, err := run("never sent", "-p", "wrong", "-j", srv.C2SAddr(), "bob@localhost"); err == nil {
		t.Fatalf("a wrong password succeeded:\n%s", out)
	} else if !strings.Contains(strings.ToLower(out), "auth") && !strings.Contains(out, "not-authorized") {
		t.Fatalf("a wrong password: %v, output without a reason:\n%s", err, out)
	}
	bob.Never("never sent")
}
