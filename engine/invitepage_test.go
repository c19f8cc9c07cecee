package engine_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/invitepage"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/adhoc"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// pageBackend is invitepage.Backend over a test server, as main wires it over the real one.
type pageBackend struct {
	eng  atomic.Pointer[engine.Server]
	base atomic.Pointer[string]
}

func (b *pageBackend) Invitation(tok string) (invites.Invite, error) {
	return b.eng.Load().Invitation(tok)
}
func (b *pageBackend) RegisterInvited(tok, user, pw, ip string) (string, error) {
	return b.eng.Load().RegisterInvited(tok, user, pw, ip)
}
func (b *pageBackend) ResetPassword(tok, pw, ip string) (string, error) {
	return b.eng.Load().ResetPassword(tok, pw, ip)
}
func (b *pageBackend) WebURL(string) string {
	if p := b.base.Load(); p != nil {
		return *p
	}
	return ""
}

// inviteServer starts a closed server whose users' contact invitations create accounts
// (contact_invites_register), with the invitation pages on its web listeners; base is the
// HTTPS listener's URL.
func inviteServer(t *testing.T) (srv *vireotest.Server, base string) {
	t.Helper()
	b := new(pageBackend)
	page := invitepage.New(b, zerolog.Nop())
	srv = vireotest.Start(t, vireotest.Options{AllowPlain: true, WebURL: b.WebURL,
		Web: engine.Web{Mounts: []engine.Mount{{Prefix: invitepage.Prefix, Handler: page}, {Prefix: invites.ResetPath, Handler: page}}},
		ModuleConfig: func(id string, v any) error {
			if c, ok := v.(*adhoc.Config); ok {
				c.ContactInvitesRegister = true
			}
			return nil
		}})
	base = "https://" + srv.WebTLSAddr()
	b.eng.Store(srv.Engine)
	b.base.Store(&base)
	return srv, base
}

// ibrInvitation starts inviteServer with romeo logged in (his roster fetched, then more
// sent), and returns the token of the ibr=y contact invitation he made.
func ibrInvitation(t *testing.T, more string) (*vireotest.Server, *vireotest.RawConn, string) {
	t.Helper()
	srv, _ := inviteServer(t)
	srv.AddUser(t, "romeo", "secret")
	romeo := srv.LoginPlain(t, "romeo", "secret", "pc")
	romeo.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>" + more)
	m := regexp.MustCompile(`preauth=([A-Za-z0-9]+);ibr=y`).FindStringSubmatch(contactInvitation(t, romeo))
	if m == nil {
		t.Fatal("no ibr=y invitation")
	}
	return srv, romeo, m[1]
}

// contactInvitation has c run XEP-0401's urn:xmpp:invite#invite and returns the answer.
func contactInvitation(t *testing.T, c *vireotest.RawConn) string {
	t.Helper()
	c.Send("<iq type='set' id='inv' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='urn:xmpp:invite#invite' action='execute'/></iq>")
	got := c.Expect("</iq>")
	for !strings.Contains(got, "id='inv'") {
		got = c.Expect("</iq>")
	}
	return got
}

var pageClient = &http.Client{Timeout: 10 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the test's own certificate

func fetchPage(t *testing.T, method, u string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := pageClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestIntegrationInvitePage: XEP-0401 §3.2 with ibr=y and the landing page. romeo's
// contact invitation carries ibr=y and a landing-url on the HTTPS web listener; the page
// names romeo and offers the form; juliet creates her account there; romeo gets the
// roster push of a mutual subscription, juliet's first login finds romeo in her roster
// subscribed both ways and each sees the other online; the spent link shows as invalid.
// An operator's invitation for a reserved name makes that account whatever name is
// typed; a contact invitation without ibr=y offers and takes no account.
func TestIntegrationInvitePage(t *testing.T) {
	srv, base := inviteServer(t)
	srv.AddUser(t, "romeo", "secret")
	romeo := srv.LoginPlain(t, "romeo", "secret", "pc")
	romeo.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>")
	got := contactInvitation(t, romeo)
	m := regexp.MustCompile(`xmpp:romeo@localhost\?roster;preauth=([A-Za-z0-9]+);ibr=y`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("invitation without ibr=y: %s", got)
	}
	page := base + "/invite/" + m[1]
	if !strings.Contains(got, "<field var='landing-url' type='text-single' label='Invitation page'><value>"+page+"</value>") {
		t.Fatalf("no landing-url %s: %s", page, got)
	}

	code, body := fetchPage(t, "GET", page, nil)
	if code != 200 || !strings.Contains(body, "romeo@localhost invites you to chat") || !strings.Contains(body, `id="create"`) ||
		!strings.Contains(body, `href="xmpp:romeo@localhost?roster;preauth=`+m[1]+`;ibr=y"`) {
		t.Fatalf("page: %d\n%s", code, body)
	}
	form := url.Values{"username": {"Juliet"}, "password": {"balcony!"}, "password2": {"balcony?"}}
	if code, body = fetchPage(t, "POST", page, form); code != 400 || !strings.Contains(body, "the two passwords differ") {
		t.Fatalf("different passwords: %d\n%s", code, body)
	}
	form.Set("password2", "balcony!")
	form.Set("username", "ju liet")
	if code, body = fetchPage(t, "POST", page, form); code != 400 || !strings.Contains(body, invites.ErrBadUsername.Error()) {
		t.Fatalf("a name with a space: %d\n%s", code, body)
	}
	form.Set("username", "Juliet")
	if code, body = fetchPage(t, "POST", page, form); code != 200 || !strings.Contains(body, `<strong id="account">juliet@localhost</strong>`) ||
		!strings.Contains(body, "is already in your contacts") {
		t.Fatalf("registration: %d\n%s", code, body)
	}
	got, _ = romeo.ReadUntil("subscription='both'", 10*time.Second)
	if !strings.Contains(got, "<item jid='juliet@localhost' subscription='both'") {
		t.Fatalf("romeo's roster push: %s", got)
	}
	juliet := srv.LoginPlain(t, "juliet", "balcony!", "phone")
	juliet.Send("<iq type='get' id='jr'><query xmlns='jabber:iq:roster'/></iq>")
	if got := juliet.Expect("</iq>"); !strings.Contains(got, "<item jid='romeo@localhost' subscription='both'") {
		t.Fatalf("juliet's roster: %s", got)
	}
	juliet.Send("<presence/>")
	juliet.Expect("from='romeo@localhost/pc'")
	romeo.Expect("from='juliet@localhost/phone'")
	if code, body = fetchPage(t, "POST", page, form); code == 200 || !strings.Contains(body, "This invitation is not valid") {
		t.Fatalf("the spent link again: %d\n%s", code, body)
	}

	// The operator's invitation reserves its name: the page has no name field.
	inv, err := invites.Create(srv.Store.Table(invites.Table), "localhost", "dora", "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, body = fetchPage(t, "GET", inv.PageURL(base), nil); code != 200 || !strings.Contains(body, "the account <strong>dora@localhost</strong>") ||
		strings.Contains(body, `name="username"`) {
		t.Fatalf("account invitation page: %d\n%s", code, body)
	}
	if code, body = fetchPage(t, "POST", inv.PageURL(base), url.Values{"username": {"mallory"}, "password": {"explorer"}, "password2": {"explorer"}}); code != 200 ||
		!strings.Contains(body, `<strong id="account">dora@localhost</strong>`) {
		t.Fatalf("account invitation: %d\n%s", code, body)
	}
	srv.LoginPlain(t, "dora", "explorer", "web")
	if m := srv.Engine.Counters(); m.RegistrationsBy["invitation_page"] != 2 || m.RegistrationsBy["open"] != 0 {
		t.Fatalf("registrations counted: %v", m.RegistrationsBy)
	}

	// A contact invitation without ibr=y: the page offers no account and takes none.
	romeoJID, _ := jid.Parse("romeo@localhost")
	plain, err := invites.CreateContact(srv.Store.Table(invites.Table), romeoJID, false, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, body = fetchPage(t, "GET", plain.PageURL(base), nil); code != 200 || strings.Contains(body, `id="create"`) || strings.Contains(body, "ibr=y") {
		t.Fatalf("contact-only page: %d\n%s", code, body)
	}
	if code, _ = fetchPage(t, "POST", plain.PageURL(base), url.Values{"username": {"eve"}, "password": {"eavesdrop"}, "password2": {"eavesdrop"}}); code != 403 {
		t.Fatalf("contact-only invitation took a registration: %d", code)
	}
	if _, err := srv.Store.Accounts().Get("eve@localhost"); err == nil {
		t.Fatal("eve was created")
	}
}

// TestIntegrationContactInviteIBR: the same ibr=y invitation redeemed on a stream
// (XEP-0445): the token opens registration of a name of the invitee's choice, and the new
// account starts out as romeo's mutual contact, with romeo told by a roster push.
func TestIntegrationContactInviteIBR(t *testing.T) {
	srv, romeo, token := ibrInvitation(t, "")
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<iq type='set' id='pa'><preauth xmlns='urn:xmpp:pars:0' token='" + token + "'/></iq>")
	if got := r.Expect("id='pa'"); !strings.Contains(got, "type='result'") {
		t.Fatalf("the contact token: %s", got)
	}
	r.Send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>juliet</username><password>balcony</password></query></iq>")
	if got := r.Expect("id='reg'"); !strings.Contains(got, "type='result'") {
		t.Fatalf("registration: %s", got)
	}
	if got, _ := romeo.ReadUntil("subscription='both'", 10*time.Second); !strings.Contains(got, "<item jid='juliet@localhost' subscription='both'") {
		t.Fatalf("romeo's roster push: %s", got)
	}
	if m := srv.Engine.Counters(); m.RegistrationsBy["invitation"] != 1 {
		t.Fatalf("registrations counted: %v", m.RegistrationsBy)
	}
	juliet := srv.LoginPlain(t, "juliet", "balcony", "phone")
	juliet.Send("<iq type='get' id='jr'><query xmlns='jabber:iq:roster'/></iq>")
	if got := juliet.Expect("</iq>"); !strings.Contains(got, "<item jid='romeo@localhost' subscription='both'") {
		t.Fatalf("juliet's roster: %s", got)
	}
}

// TestIntegrationAioxmppContactRegister: aioxmpp, as a client without an account that
// opens romeo's ibr=y link (testdata/aioxmpp_contact_register.py), registers with the
// token on romeo's server and logs in to find romeo already its contact, subscribed both
// ways, and online; neither side is asked anything.
func TestIntegrationAioxmppContactRegister(t *testing.T) {
	needPython(t, "aioxmpp", "python3-aioxmpp")
	srv, romeo, token := ibrInvitation(t, "<presence/>")
	out := runAio(t, srv, "aioxmpp_contact_register.py", []string{"juliet@localhost", "aio secret", "romeo@localhost", token},
		"TOKEN ACCEPTED", "FORM ''", "REGISTERED", "ROSTER both", "SEES ROMEO", "DONE")
	if strings.Contains(out, "ASKED BY") {
		t.Fatalf("juliet was asked:\n%s", out)
	}
	got, _ := romeo.ReadUntil("from='juliet@localhost", 10*time.Second)
	if !strings.Contains(got, "<item jid='juliet@localhost' subscription='both'") || strings.Contains(got, "type='subscribe'") {
		t.Fatalf("romeo's side: %s", got)
	}
}

// TestBrowserInvitePage: the landing page as its reader meets it, in headless Chromium:
// an operator's invitation that leaves the name to the invitee opens over HTTPS, the form
// is filled and sent like a person would, the page says the account is ready, and the
// account logs in over XMPP with the password typed there.
func TestBrowserInvitePage(t *testing.T) {
	chrome := needChromium(t)
	srv, base := inviteServer(t)
	inv, err := invites.Create(srv.Store.Table(invites.Table), "localhost", "", "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.WindowSize(900, 900),
		chromedp.Flag("ignore-certificate-errors", true)) // the test's own certificate
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	b := &converseBrowser{t: t, ctx: bctx, more: func() string { return "" }}
	if _, err := chromedp.Run(bctx, chromedp.Navigate(inv.PageURL(base))); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	b.poll("the form", `!!document.querySelector('#username') && document.title === 'Your invitation to localhost'`)
	b.poll("the xmpp: link", `document.querySelector('#open').getAttribute('href') === '`+inv.URI()+`'`)
	for _, f := range [][2]string{{"#username", "nurse"}, {"#password", "verona nights"}, {"#password2", "verona nights"}} {
		if _, err := chromedp.Run(bctx, chromedp.SendKeys(f[0], f[1])); err != nil {
			t.Fatalf("type %s: %v", f[0], err)
		}
	}
	if _, err := chromedp.Run(bctx, chromedp.Click("#create", chromedp.NodeVisible)); err != nil {
		t.Fatalf("click: %v", err)
	}
	b.poll("account ready", `!!document.querySelector('#account') && document.querySelector('#account').textContent === 'nurse@localhost'`)
	if png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)); err == nil {
		shot := filepath.Join(os.TempDir(), "vireo-invite-page.png")
		if os.WriteFile(shot, png, 0o644) == nil {
			t.Log("screenshot written to", shot)
		}
	}
	srv.LoginPlain(t, "nurse", "verona nights", "phone")
}

// TestIntegrationResetLink: a password reset link. Without a web listener to name the
// page the operator is told so; with one, the link's page (at /reset/, not /invite/)
// takes a new password over HTTPS, the old one stops working and the new one logs in,
// the link is spent, and its token opens no registration on a stream.
func TestIntegrationResetLink(t *testing.T) {
	srv, base := inviteServer(t)
	srv.AddUser(t, "juliet", "old secret")
	if _, err := admin.ResetLink(adminBackend{srv}, "juliet@localhost", 0); err == nil || !strings.Contains(err.Error(), "web listener") {
		t.Fatalf("a reset link with nowhere to serve it: %v", err)
	}
	if _, err := admin.ResetLink(adminBackend{srv}, "nobody@localhost", 0); err == nil {
		t.Fatal("a reset link for an account that does not exist")
	}
	juliet, _ := jid.Parse("juliet@localhost")
	inv, err := invites.CreateReset(srv.Store.Table(invites.Table), juliet, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	page := inv.PageURL(base)
	if !strings.HasPrefix(page, base+"/reset/") {
		t.Fatalf("page %s", page)
	}
	if code, _ := fetchPage(t, "GET", base+"/invite/"+inv.Token, nil); code != 404 {
		t.Fatalf("a reset token at /invite/: %d", code)
	}
	code, body := fetchPage(t, "GET", page, nil)
	if code != 200 || !strings.Contains(body, "New password for juliet@localhost") || strings.Contains(body, `name="username"`) {
		t.Fatalf("reset page: %d\n%s", code, body)
	}
	// Its token is no invitation to register.
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<iq type='set' id='pa'><preauth xmlns='urn:xmpp:pars:0' token='" + inv.Token + "'/></iq>")
	r.Expect("item-not-found")

	form := url.Values{"password": {"new secret"}, "password2": {"new secret"}}
	if code, body = fetchPage(t, "POST", page, form); code != 200 || !strings.Contains(body, `<strong id="account">juliet@localhost</strong>`) ||
		!strings.Contains(body, "Your password is changed") {
		t.Fatalf("reset: %d\n%s", code, body)
	}
	srv.LoginPlain(t, "juliet", "new secret", "phone")
	if m := srv.Engine.Counters(); m.PasswordResets != 1 {
		t.Fatalf("resets counted: %d", m.PasswordResets)
	}
	old := srv.DialTLS(t)
	old.Send(srv.Header())
	old.Expect("</stream:features>")
	old.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00juliet\x00old secret")) + "</auth>")
	old.Expect("<not-authorized/>")
	if code, body = fetchPage(t, "POST", page, form); code == 200 || !strings.Contains(body, "not valid") {
		t.Fatalf("the spent link: %d\n%s", code, body)
	}
}
