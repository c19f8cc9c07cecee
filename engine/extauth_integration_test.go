package engine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/extauth"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/adhoc"
	"github.com/vireo-im/vireo/store"
)

// TestIntegrationExternalAuth: a site's password program (extauth/testdata/auth.py, the
// ejabberd extauth protocol, run by Debian's python3) checks the accounts the server holds
// no keys for, beside local accounts that keep theirs. Only PLAIN is offered, and SCRAM is
// refused; the first accepted login creates the account; a wrong password, a program that
// fails, registration of a name the program knows and a password change of such an
// account are refused; a FAST token then logs in without the program; and go-sendxmpp, a
// client nobody here wrote, logs in through it and sends a message.
func TestIntegrationExternalAuth(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	dir := t.TempDir()
	prog, usersPath := startAuthScript(t, dir, "ann@localhost:site pw\nzed@localhost:zed pw\nyan@localhost:yan pw\nbob@localhost:site bob\numa@localhost:uma pw\n")
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, External: prog, Registration: true})
	srv.AddUser(t, "bob", "local bob") // a local account: its own keys, never the program's

	// The mechanisms: PLAIN only; a client that picks SCRAM anyway is refused.
	r, feats := sasl2Open(t, srv)
	if !strings.Contains(feats, "<mechanism>PLAIN</mechanism>") || strings.Contains(feats, "SCRAM") {
		t.Fatalf("features: want PLAIN and no SCRAM, got %q", feats)
	}
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1hbm4scj1hYmNk</auth>")
	r.Expect("<invalid-mechanism/>")

	// The first login the program accepts creates the account, without keys.
	if _, err := srv.Store.Accounts().Get("ann@localhost"); err == nil {
		t.Fatal("ann exists before her first login")
	}
	calls := prog.Calls()
	ann := srv.LoginPlain(t, "ann", "site pw", "web")
	if acct, err := srv.Store.Accounts().Get("ann@localhost"); err != nil || !store.NoKeys(acct.Creds) || !acct.External {
		t.Fatalf("ann after her first login: %+v, %v; want an external account without keys", acct, err)
	}
	if prog.Calls() != calls+1 {
		t.Fatalf("program calls %d → %d, want one", calls, prog.Calls())
	}
	// Her password is the site's: a change here is refused.
	ann.Send("<iq type='set' id='pw'><query xmlns='jabber:iq:register'><username>ann</username><password>mine</password></query></iq>")
	ann.Expect("<not-allowed")

	failure := func(user, pass string) string {
		t.Helper()
		r, _ := sasl2Open(t, srv)
		r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + plainResponse(user, pass) + "</auth>")
		return r.Expect("</failure>")
	}
	if got := failure("ann", "wrong"); !strings.Contains(got, "<not-authorized/>") {
		t.Fatalf("a wrong password: %q", got)
	}
	if got := failure("nobody", "x"); !strings.Contains(got, "<not-authorized/>") {
		t.Fatalf("a user nobody knows: %q", got)
	}
	// A program that dies gives no answer: temporary-auth-failure, never success.
	if got := failure("ann", "crash"); !strings.Contains(got, "<temporary-auth-failure/>") {
		t.Fatalf("the program crashed: %q", got)
	}

	// A local account is checked here: bob's site password is not his, and the program is
	// not asked.
	calls = prog.Calls()
	if got := failure("bob", "site bob"); !strings.Contains(got, "<not-authorized/>") {
		t.Fatalf("bob with the site's password: %q", got)
	}
	bob := srv.LoginPlain(t, "bob", "local bob", "pc")
	bob.Send("<presence/>")
	if prog.Calls() != calls {
		t.Fatalf("the program was asked about a local account (%d → %d calls)", calls, prog.Calls())
	}

	// First contact: uma is known to the program but has never logged in. Bob's
	// subscription request and messages wait for the program's answer, then reach her
	// account, created for them, in order; she gets them at her first login. A name the
	// program does not know bounces.
	if _, err := srv.Store.Accounts().Get("uma@localhost"); err == nil {
		t.Fatal("uma exists before anyone wrote to her")
	}
	bob.Send("<presence type='subscribe' to='uma@localhost'/>")
	for i := range 3 {
		bob.Send("<message type='chat' id='first" + string(rune('0'+i)) + "' to='uma@localhost'><body>first contact " + string(rune('0'+i)) + "</body></message>")
	}
	bob.Send("<message type='chat' id='lost' to='nobody@localhost'><body>?</body></message>")
	expectStanza(t, bob, "id='lost'", "type='error'", "<service-unavailable")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		acct, err := srv.Store.Accounts().Get("uma@localhost")
		if err == nil && acct.External {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uma after bob wrote to her: %+v, %v; want an external account", acct, err)
		}
	}
	uma := srv.LoginPlain(t, "uma", "uma pw", "phone")
	uma.Send("<presence/>")
	got := uma.Expect("first contact 2")
	if i0, i1, i2, sub := strings.Index(got, "first contact 0"), strings.Index(got, "first contact 1"), strings.Index(got, "first contact 2"),
		strings.Index(got, "type='subscribe'"); sub < 0 || i0 < 0 || i0 > i1 || i1 > i2 {
		t.Fatalf("uma's first login, want the subscription request and three messages in order: %q", got)
	}
	uma.Never("type='error'")

	// Registration refuses a name the program knows (yan never logged in), and takes one
	// it does not.
	register := func(user string) string { t.Helper(); return registerOpen(t, srv, user) }
	if got := register("yan"); !strings.Contains(got, "<conflict") {
		t.Fatalf("registering a name the program knows: %q", got)
	}
	if got := register("newbie"); !strings.Contains(got, "type='result'") {
		t.Fatalf("registering a free name: %q", got)
	}
	srv.LoginPlain(t, "newbie", "pw of newbie", "x")

	// FAST: a token issued after a PLAIN login through the program logs in with one
	// question to the program, whether the account still exists (no password hashed).
	token := fastToken(t, srv, "ann", "site pw")
	calls = prog.Calls()
	if _, got := fastLogin(t, srv, "HT-SHA-256-NONE", "ann", token, agentID, ""); !strings.HasPrefix(got, "<success") {
		t.Fatalf("FAST login of an external account: %q", got)
	}
	if prog.Calls() != calls+1 {
		t.Fatalf("a FAST login asked the program %d times, want once", prog.Calls()-calls)
	}
	// The site removes ann in its own database: her token no longer logs in.
	siteUsers, _ := os.ReadFile(usersPath)
	os.WriteFile(usersPath, []byte(strings.Replace(string(siteUsers), "ann@localhost:site pw\n", "", 1)), 0o600)
	if _, got := fastLogin(t, srv, "HT-SHA-256-NONE", "ann", token, agentID, ""); !strings.Contains(got, "<credentials-expired") {
		t.Fatalf("FAST login of an account the site removed: %q", got)
	}
	os.WriteFile(usersPath, siteUsers, 0o600)

	// A real client: go-sendxmpp logs zed in (his first login) with PLAIN and sends bob a
	// message.
	if _, err := exec.LookPath("go-sendxmpp"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("go-sendxmpp is not installed (apt-get install go-sendxmpp)")
		}
		t.Skip("go-sendxmpp not installed")
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go-sendxmpp", "-u", "zed@localhost", "-p", "zed pw", "-j", srv.C2SAddr(), "bob@localhost")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+ca, "HOME="+dir)
	cmd.Stdin = strings.NewReader("from the site's database")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go-sendxmpp: %v\n%s", err, out)
	}
	expectStanza(t, bob, "from='zed@localhost/", "from the site")
	cmd = exec.CommandContext(ctx, "go-sendxmpp", "-u", "zed@localhost", "-p", "not zed's", "-j", srv.C2SAddr(), "bob@localhost")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+ca, "HOME="+dir)
	cmd.Stdin = strings.NewReader("never sent")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("go-sendxmpp logged in with a wrong password:\n%s", out)
	}
}

// TestIntegrationExternalManage: with external_manage, the site's program takes what a
// client changes in-band. aioxmpp's XEP-0077 code (testdata/aioxmpp_register.py) signs up
// (tryregister), logs in through the program, changes its password (setpass) and cancels
// its registration (removeuser), and the users file follows each step. A FAST token ends
// with a password change; the program's refusals are not-allowed; a local account still
// changes here without asking the program.
func TestIntegrationExternalManage(t *testing.T) {
	needPython(t, "aioxmpp", "python3-aioxmpp")
	prog, users := startAuthScript(t, t.TempDir(), "ann@localhost:site pw\nlee@localhost:locked\n")
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, External: prog, ExternalManage: true, Registration: true,
		ModuleConfig: func(id string, v any) error {
			if c, ok := v.(*adhoc.Config); ok {
				c.Admins = []string{"root@localhost"}
			}
			return nil
		}})
	file := func() string {
		b, err := os.ReadFile(users)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	runAio(t, srv, "aioxmpp_register.py", []string{"carol@localhost", "carol's secret"},
		"FIELDS True True", "REGISTERED", "INFO registered True carol", "PASSWORD CHANGED", "OLD PASSWORD REFUSED True",
		"NEW PASSWORD WORKS", "CANCELLED", "GONE True", "DONE")
	if strings.Contains(file(), "carol") {
		t.Fatalf("carol is still in the site's users after cancelling: %q", file())
	}
	if _, err := srv.Store.Accounts().Get("carol@localhost"); err == nil {
		t.Fatal("carol's account is still stored after cancelling")
	}

	// A registration creates the account at the site and here, without keys.
	register := func(user string) string { t.Helper(); return registerOpen(t, srv, user) }
	if got := register("dan"); !strings.Contains(got, "type='result'") {
		t.Fatalf("registering dan: %q", got)
	}
	if acct, err := srv.Store.Accounts().Get("dan@localhost"); err != nil || !acct.External || !store.NoKeys(acct.Creds) {
		t.Fatalf("dan after registering: %+v, %v; want an external account without keys", acct, err)
	}
	if !strings.Contains(file(), "dan@localhost:pw of dan\n") {
		t.Fatalf("the site's users after dan registered: %q", file())
	}
	// The operator's tools change a site's account at the site.
	if err := admin.Passwd(adminBackend{srv}, "dan@localhost", "operator's pw", 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(file(), "dan@localhost:operator's pw\n") {
		t.Fatalf("the site's users after vireoctl passwd: %q", file())
	}
	srv.LoginPlain(t, "dan", "operator's pw", "pc")
	if err := admin.DelUser(adminBackend{srv}, "dan@localhost"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.Accounts().Get("dan@localhost"); err == nil || strings.Contains(file(), "dan@") {
		t.Fatalf("dan after vireoctl deluser: %v, %q", err, file())
	}
	// So does XEP-0133.
	srv.AddUser(t, "root", "root pw")
	root := srv.LoginPlain(t, "root", "root pw", "desk")
	if got := register("eve"); !strings.Contains(got, "type='result'") {
		t.Fatalf("registering eve: %q", got)
	}
	mustContain(t, adhocRun(t, root, "change-user-password", "accountjid", "eve@localhost", "password", "set by root"),
		"password of eve@localhost changed")
	if acct, _ := srv.Store.Accounts().Get("eve@localhost"); !strings.Contains(file(), "eve@localhost:set by root\n") || !store.NoKeys(acct.Creds) {
		t.Fatalf("the site's users after XEP-0133 change-user-password: %q; keys here: %v", file(), !store.NoKeys(acct.Creds))
	}
	mustContain(t, adhocRun(t, root, "delete-user", "accountjids", "eve@localhost"), "deleted eve@localhost")
	if _, err := srv.Store.Accounts().Get("eve@localhost"); err == nil || strings.Contains(file(), "eve@") {
		t.Fatalf("eve after XEP-0133 delete-user: %v, %q", err, file())
	}
	if got := register("noel"); !strings.Contains(got, "<not-allowed") {
		t.Fatalf("a registration the site refuses: %q", got)
	}
	if got := register("ann"); !strings.Contains(got, "<conflict") {
		t.Fatalf("registering a name the site has: %q", got)
	}

	// A password change ends the account's FAST tokens.
	token := fastToken(t, srv, "ann", "site pw")
	ann := srv.LoginPlain(t, "ann", "site pw", "web")
	ann.Send("<iq type='set' id='pw'><query xmlns='jabber:iq:register'><username>ann</username><password>new pw</password></query></iq>")
	expectStanza(t, ann, "id='pw'", "type='result'")
	if !strings.Contains(file(), "ann@localhost:new pw\n") {
		t.Fatalf("the site's users after ann's change: %q", file())
	}
	if _, got := fastLogin(t, srv, "HT-SHA-256-NONE", "ann", token, agentID, ""); strings.HasPrefix(got, "<success") {
		t.Fatalf("a FAST token from before the password change still logs in: %q", got)
	}
	srv.LoginPlain(t, "ann", "new pw", "pc")

	// The site refuses: not-allowed, and nothing changes.
	lee := srv.LoginPlain(t, "lee", "locked", "pc")
	lee.Send("<iq type='set' id='pw'><query xmlns='jabber:iq:register'><username>lee</username><password>free</password></query></iq>")
	expectStanza(t, lee, "id='pw'", "<not-allowed")
	lee.Send("<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	expectStanza(t, lee, "id='rm'", "<not-allowed")
	if _, err := srv.Store.Accounts().Get("lee@localhost"); err != nil || !strings.Contains(file(), "lee@localhost:locked\n") {
		t.Fatalf("lee after refused changes: %v, %q", err, file())
	}

	// A local account changes here; the program is not asked.
	srv.AddUser(t, "bob", "local bob")
	bob := srv.LoginPlain(t, "bob", "local bob", "pc")
	calls := prog.Calls()
	bob.Send("<iq type='set' id='pw'><query xmlns='jabber:iq:register'><username>bob</username><password>bob 2</password></query></iq>")
	expectStanza(t, bob, "id='pw'", "type='result'")
	if prog.Calls() != calls {
		t.Fatalf("a local account's change asked the program (%d → %d calls)", calls, prog.Calls())
	}
	srv.LoginPlain(t, "bob", "bob 2", "phone")
}

// registerOpen registers user in-band on a new stream of srv, with the password "pw of
// user", and returns the answer (with its error, if any).
func registerOpen(t *testing.T, srv *vireotest.Server, user string) string {
	t.Helper()
	r, _ := sasl2Open(t, srv)
	r.Send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>" + user + "</username><password>pw of " + user + "</password></query></iq>")
	got := r.Expect("id='reg'")
	if strings.Contains(got, "type='error'") {
		got += r.Expect("</iq>")
	}
	return got
}

// startAuthScript runs extauth/testdata/auth.py under Debian's python3 over a users file
// in dir holding users, and returns the program and the file's path.
func startAuthScript(t *testing.T, dir, users string) (*extauth.Program, string) {
	t.Helper()
	path := filepath.Join(dir, "users")
	if err := os.WriteFile(path, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("extauth/testdata/auth.py")
	prog, err := extauth.Start(extauth.Config{Command: []string{"/usr/bin/python3", script, path},
		Timeout: 3 * time.Second, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog, path
}
