package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmpp"
	mjid "mellium.im/xmpp/jid"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// melliumLogin logs user in with mellium over direct TLS with mech, and reports the
// error instead of failing.
func melliumLogin(t *testing.T, s *server, user, pass string, mech msasl.Mechanism) error {
	t.Helper()
	ctx := vireotest.Context(t, 10*time.Second)
	conn, err := tls.Dial("tcp", s.eng.Addr("c2s-tls").String(), hostTLS(t, s, "localhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	origin := mjid.MustParse(user + "@localhost/ext")
	sess, err := xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{xmpp.SASL("", pass, mech), xmpp.BindResource()}}
	}))
	if err == nil {
		sess.Close()
	}
	return err
}

// TestIntegrationReloadExternalAuth: [auth] external on the real server, with mellium
// logging in with PLAIN. A reload that names another program switches to it (the old
// one's answers no longer count); a reload naming a program that does not exist fails and
// keeps the one in force; a reload that removes it offers SCRAM again, and the accounts
// the program created no longer log in.
func TestIntegrationReloadExternalAuth(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	dir := t.TempDir()
	script, _ := filepath.Abs("engine/extauth/testdata/auth.py")
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	os.WriteFile(first, []byte("ann@localhost:first pw\n"), 0o600)
	os.WriteFile(second, []byte("ann@localhost:second pw\n"), 0o600)
	auth := func(users string) string {
		return fmt.Sprintf("\n[auth]\nexternal = [\"/usr/bin/python3\", %q, %q]\nexternal_timeout = \"3s\"\n", script, users)
	}
	s, path := vhostServerWith(t, auth(first))
	orig, _ := os.ReadFile(path)
	login := func(pass string, mech msasl.Mechanism, want bool) {
		t.Helper()
		if err := melliumLogin(t, s, "ann", pass, mech); (err == nil) != want {
			t.Fatalf("ann with %q over %s: %v; want success %v", pass, mech.Name, err, want)
		}
	}
	login("first pw", msasl.Plain, true)
	login("second pw", msasl.Plain, false)
	registerIBR(t, s, "localhost", "bob", "bob pw") // a local account beside the program's
	// vireoctl stats shows the program and what it answered (two checks, one registration's
	// question about bob).
	if ea, ok := s.Stats()["external_auth"].(map[string]any); !ok || ea["program"] != "/usr/bin/python3" || ea["answered"] != uint64(3) || ea["failed"] != uint64(0) {
		t.Fatalf("stats: %v", s.Stats()["external_auth"])
	}

	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Replace(string(orig), first, second, 1))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	login("second pw", msasl.Plain, true)
	login("first pw", msasl.Plain, false)

	write(strings.Replace(string(orig), auth(first), "\n[auth]\nexternal = [\"/nonexistent/check-password\"]\n", 1))
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "auth.external") {
		t.Fatalf("reload with a missing program: %v", err)
	}
	login("second pw", msasl.Plain, true)

	// Without it: SCRAM is offered again (bob's keys), and ann, whose account has none,
	// cannot log in.
	write(strings.Replace(string(orig), auth(first), "\n", 1))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := melliumLogin(t, s, "bob", "bob pw", msasl.ScramSha256); err != nil {
		t.Fatalf("bob with SCRAM after the program went: %v", err)
	}
	login("second pw", msasl.Plain, false)
}
