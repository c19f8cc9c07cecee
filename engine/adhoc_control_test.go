package engine_test

import (
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	msasl "mellium.im/sasl"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/adhoc"
	"github.com/vireo-im/vireo/modules/module"
)

// fakeController records what the XEP-0133 reload and shutdown commands ask of the
// process; the test process itself is never stopped.
type fakeController struct {
	mu       sync.Mutex
	reloads  int
	shutdown chan string
}

var _ module.Controller = (*fakeController)(nil)

func (f *fakeController) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return nil
}

func (f *fakeController) Shutdown(msg string) { f.shutdown <- msg }

func controlServer(t *testing.T, ctl module.Controller) *vireotest.Server {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Controller: ctl, ModuleConfig: func(id string, v any) error {
		if c, ok := v.(*adhoc.Config); ok {
			c.Admins = []string{"admin@localhost"}
		}
		return nil
	}})
	srv.AddUser(t, "admin", "admin pw")
	srv.AddUser(t, "bob", "bob pw")
	return srv
}

// legacyPlain runs a RFC 6120 SASL PLAIN exchange and returns the server's answer.
func legacyPlain(t *testing.T, srv *vireotest.Server, user, pass string) string {
	t.Helper()
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "</auth>")
	got := r.Expect("</")
	return got + r.Expect(">")
}

// TestIntegrationAdhocDisableUser: disable-user ends the account's sessions and every
// login path (legacy SASL PLAIN and SCRAM, SASL2, a FAST token issued before) is refused
// with <account-disabled/>, while a wrong password still gets <not-authorized/>;
// reenable-user lets the account in again, FAST token included.
func TestIntegrationAdhocDisableUser(t *testing.T) {
	srv := controlServer(t, nil)
	admin := srv.LoginPlain(t, "admin", "admin pw", "desk")

	// A FAST token for bob, from a SASL2 login, and a live session.
	token := fastToken(t, srv, "bob", "bob pw")
	bob := srv.LoginPlain(t, "bob", "bob pw", "phone")
	bob.Send("<presence/>")

	mustContain(t, adhocRun(t, admin, "disable-user", "accountjids", "bob@localhost"), "status='completed'", "disabled bob@localhost")
	bob.ExpectClosed()

	if got := legacyPlain(t, srv, "bob", "bob pw"); !strings.Contains(got, "<account-disabled/>") {
		t.Fatalf("legacy PLAIN of a disabled account: %s", got)
	}
	if got := legacyPlain(t, srv, "bob", "wrong"); !strings.Contains(got, "<not-authorized/>") {
		t.Fatalf("a wrong password reveals the account state: %s", got)
	}
	if _, err := loginDirectTLS(t, srv, "bob", "bob pw", "r", msasl.ScramSha256); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("SCRAM-SHA-256 of a disabled account: %v", err)
	}
	s2, _ := sasl2Open(t, srv)
	s2.Send(authenticate("PLAIN", plainResponse("bob", "bob pw"), userAgent(agentID)))
	if got := s2.Expect("</failure>"); !strings.Contains(got, "<account-disabled") {
		t.Fatalf("SASL2 PLAIN of a disabled account: %s", got)
	}
	if _, got := fastLogin(t, srv, "HT-SHA-256-NONE", "bob", token, agentID, ""); !strings.Contains(got, "<account-disabled") {
		t.Fatalf("FAST token of a disabled account: %s", got)
	}
	// An administrator cannot lock themselves out; an unknown account is reported.
	mustContain(t, adhocRun(t, admin, "disable-user", "accountjids", "admin@localhost"), "you cannot disable your own account")
	mustContain(t, adhocRun(t, admin, "disable-user", "accountjids", "nobody@localhost"), "account nobody@localhost does not exist")

	mustContain(t, adhocRun(t, admin, "reenable-user", "accountjids", "bob@localhost"), "re-enabled bob@localhost")
	srv.LoginPlain(t, "bob", "bob pw", "phone")
	if _, got := fastLogin(t, srv, "HT-SHA-256-NONE", "bob", token, agentID, ""); !strings.HasPrefix(got, "<success") {
		t.Fatalf("FAST token after reenable: %s", got)
	}
}

// TestIntegrationAdhocReload: reload goes to the process's module.Controller; without one
// the command is not implemented.
func TestIntegrationAdhocReload(t *testing.T) {
	ctl := &fakeController{shutdown: make(chan string, 1)}
	srv := controlServer(t, ctl)
	admin := srv.LoginPlain(t, "admin", "admin pw", "desk")
	mustContain(t, adhocRun(t, admin, "reload"), "status='completed'", "configuration reloaded")
	ctl.mu.Lock()
	n := ctl.reloads
	ctl.mu.Unlock()
	if n != 1 {
		t.Fatalf("Reload called %d times", n)
	}
	bob := srv.LoginPlain(t, "bob", "bob pw", "r")
	mustContain(t, adhocRun(t, bob, "reload"), "<forbidden")

	bare := controlServer(t, nil)
	a2 := bare.LoginPlain(t, "admin", "admin pw", "desk")
	mustContain(t, adhocRun(t, a2, "reload"), "type='error'", "<feature-not-implemented")
}

// TestIntegrationAdhocShutdown: the announcement reaches the online users first, then the
// process's shutdown hook is called with the reason.
func TestIntegrationAdhocShutdown(t *testing.T) {
	ctl := &fakeController{shutdown: make(chan string, 1)}
	srv := controlServer(t, ctl)
	admin := srv.LoginPlain(t, "admin", "admin pw", "desk")
	bob := srv.LoginPlain(t, "bob", "bob pw", "r")
	bob.Send("<presence/>")
	bob.Expect("<presence")

	start := time.Now()
	got := adhocRun(t, admin, "shutdown", "delay", "0", "announcement", "back in five minutes")
	mustContain(t, got, "status='completed'", "shutdown announced to 1 sessions")
	bob.Expect("<body>back in five minutes</body>")
	select {
	case msg := <-ctl.shutdown:
		if !strings.Contains(msg, "admin@localhost") || !strings.Contains(msg, "back in five minutes") {
			t.Fatalf("shutdown reason = %q", msg)
		}
		if d := time.Since(start); d < adhoc.ShutdownGrace/2 {
			t.Fatalf("shutdown after %v, before the announcement had time to leave", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the shutdown hook was not called")
	}
	mustContain(t, adhocRun(t, admin, "shutdown", "delay", "soon"), "delay must be a number")
}

// TestIntegrationAdhocEndUserSession: XEP-0133 end-user-session. A full JID ends that one
// session with <policy-violation/> and leaves the account's others; a bare JID ends them
// all; the account itself stays, so its owner logs in again. The administrator cannot end
// the session the command comes from.
func TestIntegrationAdhocEndUserSession(t *testing.T) {
	srv := controlServer(t, nil)
	admin := srv.LoginPlain(t, "admin", "admin pw", "desk")
	phone := srv.LoginPlain(t, "bob", "bob pw", "phone")
	laptop := srv.LoginPlain(t, "bob", "bob pw", "laptop")

	mustContain(t, adhocRun(t, admin, "end-user-session", "accountjids", "bob@localhost/phone"), "status='completed'", "ended the sessions of bob@localhost/phone")
	if got := phone.ExpectClosed(); !strings.Contains(got, "<policy-violation") {
		t.Fatalf("the ended session got no policy-violation: %q", got)
	}
	laptop.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	laptop.Expect("id='p1'") // the account's other session goes on

	mustContain(t, adhocRun(t, admin, "end-user-session", "accountjids", "bob@localhost"), "ended the sessions of bob@localhost")
	laptop.ExpectClosed()
	srv.LoginPlain(t, "bob", "bob pw", "phone") // the account is untouched

	mustContain(t, adhocRun(t, admin, "end-user-session", "accountjids", "admin@localhost/desk"), "you cannot end the session you are sending from")
	mustContain(t, adhocRun(t, admin, "end-user-session", "accountjids", "admin@localhost"), "you cannot end the session you are sending from")
	mustContain(t, adhocRun(t, admin, "end-user-session", "accountjids", "bob@elsewhere.example"), "is not served here")
	bob := srv.LoginPlain(t, "bob", "bob pw", "r2")
	mustContain(t, adhocRun(t, bob, "end-user-session"), "<forbidden")
	admin.Send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
	admin.Expect("id='p2'")
}

// policyController is a Controller that also holds the federation policy
// (module.Federation) the way the process does, applied with Server.Reload, without
// the config file (main's tests cover the file), and records restarts.
type policyController struct {
	fakeController
	srv      *vireotest.Server
	restarts chan string
}

var (
	_ module.Federation = (*policyController)(nil)
	_ module.Restarter  = (*policyController)(nil)
)

func (p *policyController) FederationLists() (deny, allow []string) {
	c := p.srv.Engine.Config()
	return c.S2S.Deny, c.S2S.Allow
}

func (p *policyController) SetFederationList(allow bool, domains []string) ([]string, error) {
	cfg := p.srv.Engine.Config()
	if allow {
		cfg.S2S.Allow = domains
	} else {
		cfg.S2S.Deny = domains
	}
	return domains, p.srv.Engine.Reload(cfg)
}

func (p *policyController) Restart(msg string) { p.restarts <- msg }

// TestIntegrationSlixmppBlacklist: slixmpp's XEP-0050 plugin runs XEP-0133 edit-blacklist
// (§4.11): the form shows the list in force as a jid-multi field, the list it submits is
// the policy at once, and its message to the blacklisted server bounces with not-allowed.
func TestIntegrationSlixmppBlacklist(t *testing.T) {
	needSlixmpp(t)
	ctl := &policyController{restarts: make(chan string, 1)}
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, S2S: true, Controller: ctl, ModuleConfig: func(id string, v any) error {
		if c, ok := v.(*adhoc.Config); ok {
			c.Admins = []string{"slix@localhost"}
		}
		return nil
	}})
	ctl.srv = srv
	srv.AddUser(t, "slix", "py secret")
	cfg := srv.Engine.Config()
	cfg.S2S.Deny = []string{"old.example"}
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	runSlix(t, srv, "slixmpp_blacklist.py", "LIST old.example", "STAGE completed", "NOTE info blacklist set: 3 entries",
		"BOUNCE x@spam.example not-allowed")
	if d := srv.Engine.Config().S2S.Deny; strings.Join(d, " ") != "old.example spam.example *.bad.example" {
		t.Fatalf("deny = %v", d)
	}
}

// TestIntegrationAdhocRestartAnnounced: XEP-0133 restart (§4.30) tells every available
// session, then asks the process to restart; a process that cannot restart answers
// feature-not-implemented, as do the blacklist, whitelist, welcome and admin-list
// commands of one that holds no federation policy or settings.
func TestIntegrationAdhocRestartAnnounced(t *testing.T) {
	ctl := &policyController{restarts: make(chan string, 1)}
	srv := controlServer(t, ctl)
	ctl.srv = srv
	admin := srv.LoginPlain(t, "admin", "admin pw", "desk")
	bob := srv.LoginPlain(t, "bob", "bob pw", "phone")
	bob.Send("<presence/>")
	bob.Expect("<presence")
	mustContain(t, adhocRun(t, admin, "restart", "delay", "0", "announcement", "Upgrading"), "status='completed'", "restart announced to 1 sessions")
	bob.Expect("Server restart</subject>")
	select {
	case msg := <-ctl.restarts:
		if !strings.Contains(msg, "restart by admin@localhost: Upgrading") {
			t.Fatalf("restart reason %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no restart")
	}
	mustContain(t, adhocRun(t, admin, "restart", "delay", "soon"), "type='error'", "delay must be a number")

	plain := controlServer(t, &fakeController{shutdown: make(chan string, 1)})
	admin = plain.LoginPlain(t, "admin", "admin pw", "desk")
	for _, node := range []string{"restart", "edit-blacklist", "edit-whitelist", "set-welcome", "edit-admin"} {
		mustContain(t, adhocRun(t, admin, node, "announcement", "x"), "type='error'", "<feature-not-implemented")
	}
	mustContain(t, adhocRun(t, admin, "delete-welcome"), "type='error'", "<feature-not-implemented") // no form: at once
}

// TestIntegrationDisableBeforeBind: a stream that authenticated before its account was
// disabled cannot bind after it (it would come back as the session the disabling ended);
// one that authenticated before an operator merely ended the account's sessions still
// binds, and so does a login after the account is enabled again.
func TestIntegrationDisableBeforeBind(t *testing.T) {
	srv := controlServer(t, nil)
	admin := srv.LoginPlain(t, "admin", "admin pw", "desk")
	bind := "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>late</resource></bind></iq>"

	kicked := srv.AuthPlain(t, "bob", "bob pw")
	mustContain(t, adhocRun(t, admin, "end-user-session", "accountjids", "bob@localhost"), "ended the sessions of bob@localhost")
	kicked.Send(bind)
	mustContain(t, kicked.Expect("</iq>"), "<jid>bob@localhost/late</jid>")

	early := srv.AuthPlain(t, "bob", "bob pw")
	mustContain(t, adhocRun(t, admin, "disable-user", "accountjids", "bob@localhost"), "status='completed'", "disabled bob@localhost")
	kicked.ExpectClosed()
	early.Send(bind)
	if got := early.ExpectClosed(); strings.Contains(got, "<jid>") || !strings.Contains(got, "<not-authorized") {
		t.Fatalf("a bind after the account was disabled: %q", got)
	}
	mustContain(t, adhocRun(t, admin, "reenable-user", "accountjids", "bob@localhost"), "status='completed'")
	r := srv.AuthPlain(t, "bob", "bob pw")
	r.Send(bind)
	mustContain(t, r.Expect("</iq>"), "<jid>bob@localhost/late</jid>")
}
