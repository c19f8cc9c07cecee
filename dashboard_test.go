package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/config"
)

// dashServer starts the real server (main's start, the wiring the binary uses) on
// loopback ports, with root@localhost as the administrator; it returns the server and
// the dashboard's base URL.
func dashServer(t *testing.T) (*server, string) {
	t.Helper()
	return dashServerWeb(t, "")
}

// dashServerWeb is dashServer with web added to the [web] table.
func dashServerWeb(t *testing.T, web string) (*server, string) {
	t.Helper()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	toml := fmt.Sprintf(`domains = ["localhost"]
data_dir = %q
log_level = "warn"

[c2s]
listen = []
tls_listen = ["127.0.0.1:%d"]
allow_plain = true

[web]
listen = [%q]
tls_listen = []
%s

[admin]
socket = %q

[s2s]
secret = "do-not-show-this"

[modules.adhoc]
admins = ["root@localhost"]

[modules.upload]
listen = "127.0.0.1:0"
[modules.proxy65]
listen = "127.0.0.1:0"
`, filepath.Join(dir, "data"), freePort(t), addr, web, filepath.Join(dir, "admin.sock"))
	path := filepath.Join(dir, "vireo.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := start(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := admin.AddUser(s, "root@localhost", "root pw", 4096); err != nil {
		t.Fatal(err)
	}
	return s, "http://" + addr + "/admin/"
}

// xmppPlain logs in over the c2s direct-TLS listener with SASL PLAIN and returns the
// server's answer: <success .../> or the <failure/>.
func xmppPlain(t *testing.T, s *server, user, pass string) string {
	t.Helper()
	addr := s.eng.Addr("c2s-tls").String()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}) // the test's own self-signed cert
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
	r := bufio.NewReader(c)
	var got strings.Builder
	readUntil := func(s string) {
		for !strings.Contains(got.String(), s) {
			b, err := r.ReadByte()
			if err != nil {
				t.Fatalf("reading for %q: %v; got %s", s, err, got.String())
			}
			got.WriteByte(b)
		}
	}
	readUntil("</stream:features>")
	got.Reset()
	fmt.Fprintf(c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>",
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)))
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("reading the SASL answer: %v; got %s", err, got.String())
		}
		got.WriteByte(b)
		if g := got.String(); strings.Contains(g, "<success") && b == '>' || strings.Contains(g, "</failure>") {
			return g
		}
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestIntegrationDashboard: with Go's HTTP client and a cookie jar against the real
// server, the administrator logs in with the XMPP password; a form without its CSRF
// token is refused; a user added through the form logs in over XMPP, and once disabled
// through the form is refused with <account-disabled/>.
func TestIntegrationDashboard(t *testing.T) {
	s, base := dashServer(t)
	br := newBrowser(t, base)
	get, post, token := br.get, br.post, br.token

	// Not logged in: the overview sends the browser to the login form.
	code, page := get("")
	if code != 200 || !strings.Contains(page, `action="/admin/login"`) {
		t.Fatalf("anonymous GET: %d\n%s", code, page)
	}
	if code, _ := post("login", url.Values{"csrf": {"forged"}, "jid": {"root@localhost"}, "password": {"root pw"}}); code != http.StatusForbidden {
		t.Fatalf("login with a forged token: %d", code)
	}
	_, page = get("login")
	if code, _ := post("login", url.Values{"csrf": {token(page)}, "jid": {"root@localhost"}, "password": {"wrong"}}); code != http.StatusUnauthorized {
		t.Fatalf("login with a wrong password: %d", code)
	}
	_, page = get("login")
	code, page = post("login", url.Values{"csrf": {token(page)}, "jid": {"root@localhost"}, "password": {"root pw"}})
	if code != 200 || !strings.Contains(page, "sessions online") || !strings.Contains(page, "root@localhost") {
		t.Fatalf("after login: %d\n%s", code, page)
	}
	u, _ := url.Parse(base)
	if cs := br.hc.Jar.Cookies(u); len(cs) != 1 || cs[0].Name != "vireo_admin" {
		t.Fatalf("cookies after login: %v", cs)
	}
	// Without ACME the certificate is the configured file (here the self-signed one a
	// first start writes), in vireoctl stats and on the overview.
	cert := certStatus(t, s, "localhost")
	if cert.Source != "file" || cert.File != s.cfg.TLS.Cert || !cert.SelfSigned || cert.ACME || !cert.NotAfter.After(time.Now()) ||
		!cert.LastAttempt.IsZero() || !cert.NextRenewal.IsZero() {
		t.Errorf("stats: certificate %+v; want the self-signed file %s, no ACME", cert, s.cfg.TLS.Cert)
	}
	for _, want := range []string{"<td>localhost</td><td>file <small>" + cert.File + "</small></td>", "self-signed", "<td>ACME off</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}

	_, page = get("users")
	csrf := token(page)
	add := url.Values{"action": {"add"}, "jid": {"alice@localhost"}, "password": {"alice pw"}}
	if code, _ := post("users", add); code != http.StatusForbidden {
		t.Fatalf("add without the CSRF token: %d", code)
	}
	if _, err := s.store.Accounts().Get("alice@localhost"); err == nil {
		t.Fatal("the refused form created the account")
	}
	add.Set("csrf", csrf)
	if code, page = post("users", add); code != 200 || !strings.Contains(page, "created alice@localhost") {
		t.Fatalf("add: %d\n%s", code, page)
	}
	if got := xmppPlain(t, s, "alice", "alice pw"); !strings.Contains(got, "<success") {
		t.Fatalf("alice cannot log in: %s", got)
	}
	if code, page = post("users", url.Values{"csrf": {csrf}, "action": {"disable"}, "jid": {"alice@localhost"}}); code != 200 || !strings.Contains(page, "disabled alice@localhost") {
		t.Fatalf("disable: %d\n%s", code, page)
	}
	if got := xmppPlain(t, s, "alice", "alice pw"); !strings.Contains(got, "<account-disabled/>") {
		t.Fatalf("disabled alice logs in: %s", got)
	}

	if _, page = get("config"); !strings.Contains(page, "(redacted)") || strings.Contains(page, "do-not-show-this") {
		t.Fatalf("config page:\n%s", page)
	}
	if code, _ := post("logout", url.Values{"csrf": {csrf}}); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := post("users", add); code != http.StatusForbidden {
		t.Fatalf("POST after logout: %d", code)
	}
}

// needChromium returns Debian's Chromium, or skips (fails under CI, which installs it).
func needChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium not installed")
	return ""
}

// TestBrowserDashboard: headless Chromium logs in through the form, opens the users page
// and disables an account with its button; the page is saved to docs/dashboard.png, and
// the overview with its certificate table to docs/dashboard-overview.png (the README shows
// both).
func TestBrowserDashboard(t *testing.T) {
	chrome := needChromium(t)
	s, base := dashServer(t)
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		if err := admin.AddUser(s, u+"@localhost", u+" pw", 4096); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.WindowSize(1200, 720))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	run := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		if _, err := chromedp.Run(bctx, a); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// Waits poll the page with JavaScript, as engine/browser_test.go does: it survives the
	// navigations a form submission causes.
	poll := func(what, js string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](js))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				text, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
				t.Fatalf("%s: not seen (last error %v); page:\n%s", what, err, text)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	run("open", chromedp.Navigate(base))
	poll("login form", `!!document.querySelector('#jid')`)
	run("type JID", chromedp.SendKeys("#jid", "root@localhost"))
	run("type password", chromedp.SendKeys("#password", "root pw"))
	run("submit", chromedp.Click("button[type=submit]"))
	poll("overview", `location.pathname === '/admin/' && !!document.querySelector('.cards')`)
	run("users", chromedp.Navigate(base+"users"))
	poll("users table", `document.body.innerText.includes('bob@localhost')`)
	// Disable bob with the button of his row.
	clicked, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => {
		const row = [...document.querySelectorAll('tr')].find(r => r.cells[0] && r.cells[0].textContent === 'bob@localhost');
		const b = row && [...row.querySelectorAll('button')].find(b => b.textContent === 'Disable');
		if (!b) return false;
		b.click();
		return true;
	})()`))
	if err != nil || !clicked {
		t.Fatalf("no Disable button for bob: %v", err)
	}
	poll("result", `!!document.querySelector('.flash.ok') && document.body.innerText.includes('disabled bob@localhost')`)
	if acc, err := s.store.Accounts().Get("bob@localhost"); err != nil || !acc.Disabled {
		t.Fatalf("bob not disabled: %+v %v", acc, err)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: PNG (lower is JPEG)
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
	}
	if err := os.WriteFile(filepath.Join("docs", "dashboard.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("screenshot written to docs/dashboard.png")

	// An account invitation from the invitations page: its link shows in the flash.
	run("invitations", chromedp.Navigate(base+"invites"))
	poll("invitation form", `!!document.querySelector('input[name=for]')`)
	run("type invitee", chromedp.SendKeys("input[name=for]", "juliet@localhost"))
	run("create", chromedp.Click("form.inline button", chromedp.NodeVisible))
	poll("invitation link", `!!document.querySelector('.flash.ok') && document.body.innerText.includes('xmpp:juliet@localhost?register;preauth=')`)
	if png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)); err == nil {
		shot := filepath.Join(os.TempDir(), "vireo-dashboard-invites.png")
		if os.WriteFile(shot, png, 0o644) == nil {
			t.Logf("screenshot of the invitations page: %s", shot)
		}
	}

	// The overview, with each host's certificate (the README shows it too).
	run("overview again", chromedp.Navigate(base))
	poll("certificate table", `!!document.querySelector('#certs') && document.body.innerText.includes('localhost')`)
	png, err = chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
	}
	if err := os.WriteFile(filepath.Join("docs", "dashboard-overview.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationDashboardVhosts: the virtual hosts page adds a host (only with the
// session's CSRF token) that clients can then reach with its own certificate, and removes
// it after the confirmation box is ticked; both change the config file. A host's own
// settings ([vhosts]) show beside it.
func TestIntegrationDashboardVhosts(t *testing.T) {
	s, base := dashServerWeb(t, "[vhosts.\"chat.test\"]\nmax_accounts = 10\nisolated = true")
	br := newBrowser(t, base)
	br.login()
	post, token := br.post, br.token
	get := func(path string) string { _, p := br.get(path); return p }
	page := get("hosts")
	if !strings.Contains(page, "<td>localhost</td><td>the server's</td>") || !strings.Contains(page, `action="/admin/hosts"`) {
		t.Fatalf("hosts page:\n%s", page)
	}
	csrf := token(page)
	add := url.Values{"action": {"add"}, "domain": {"chat.test"}}
	if code, _ := post("hosts", add); code != http.StatusForbidden {
		t.Fatalf("add without the CSRF token: %d", code)
	}
	if slices.Contains(s.Domains(), "chat.test") {
		t.Fatal("the refused form added the host")
	}
	add.Set("csrf", csrf)
	if code, page := post("hosts", add); code != 200 || !strings.Contains(page, "added chat.test") ||
		!strings.Contains(page, "<td>chat.test</td><td>at most 10 accounts made by users; isolated: its users reach its own users and services only</td>") {
		t.Fatalf("add: %d\n%s", code, page)
	}
	if c, err := config.Load(s.cfg.Path()); err != nil || !slices.Equal(c.Domains, []string{"localhost", "chat.test"}) {
		t.Fatalf("config after add: %v, %v", c, err)
	}
	conn, err := tls.Dial("tcp", s.eng.Addr("c2s-tls").String(), hostTLS(t, s, "chat.test"))
	if err != nil {
		t.Fatalf("TLS for the added host: %v", err)
	}
	conn.Close()
	if code, page := post("hosts", add); code != 200 || !strings.Contains(page, "already a virtual host") {
		t.Fatalf("add twice: %d\n%s", code, page)
	}
	remove := url.Values{"csrf": {csrf}, "action": {"remove"}, "domain": {"chat.test"}}
	if code, page := post("hosts", remove); code != 200 || !strings.Contains(page, "tick the box") {
		t.Fatalf("remove without confirming: %d\n%s", code, page)
	}
	remove.Set("confirm", "yes")
	if code, page := post("hosts", remove); code != 200 || !strings.Contains(page, "removed chat.test") || strings.Contains(page, "<td>chat.test</td>") {
		t.Fatalf("remove: %d\n%s", code, page)
	}
	if c, err := config.Load(s.cfg.Path()); err != nil || !slices.Equal(c.Domains, []string{"localhost"}) {
		t.Fatalf("config after remove: %v, %v", c, err)
	}
	// The administrator's own host cannot go: the next start would refuse the admins list.
	if code, page := post("hosts", add); code != 200 || !strings.Contains(page, "added chat.test") {
		t.Fatalf("add again: %d\n%s", code, page)
	}
	if code, page := post("hosts", url.Values{"csrf": {csrf}, "action": {"remove"}, "domain": {"localhost"}, "confirm": {"yes"}}); code != 200 || !strings.Contains(page, "root@localhost is an administrator") {
		t.Fatalf("remove the administrator's host: %d\n%s", code, page)
	}
	if !slices.Contains(s.Domains(), "localhost") {
		t.Fatal("the refused removal took effect")
	}
	remove.Set("confirm", "yes")
	if code, page := post("hosts", remove); code != 200 || !strings.Contains(page, "removed chat.test") {
		t.Fatalf("remove again: %d\n%s", code, page)
	}
	// The last host has no remove button, and the server refuses it anyway.
	if page := get("hosts"); strings.Contains(page, `value="remove"`) {
		t.Fatalf("remove offered for the last host:\n%s", page)
	}
	if code, page := post("hosts", url.Values{"csrf": {csrf}, "action": {"remove"}, "domain": {"localhost"}, "confirm": {"yes"}}); code != 200 || !strings.Contains(page, "last virtual host") {
		t.Fatalf("remove the last: %d\n%s", code, page)
	}
}

// TestIntegrationDashboardSwitch: with [web] dashboard = false every path under /admin/
// answers as an unknown path does; a reload turns it on and off again, and a session
// from before it was turned off does not survive being turned back on.
func TestIntegrationDashboardSwitch(t *testing.T) {
	s, base := dashServerWeb(t, "dashboard = false")
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	root := strings.TrimSuffix(base, "/admin/")
	// path is from the root of the web listener.
	do := func(method, path string, v url.Values) (int, string) {
		t.Helper()
		var resp *http.Response
		var err error
		if method == http.MethodGet {
			resp, err = hc.Get(root + path)
		} else {
			resp, err = hc.PostForm(root+path, v)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	unknownCode, unknownBody := do(http.MethodGet, "/no-such-page", nil)
	if unknownCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d %q", unknownCode, unknownBody)
	}
	off := func(when string) {
		t.Helper()
		for _, tc := range []struct{ method, path string }{
			{http.MethodGet, "/admin/"}, {http.MethodGet, "/admin/login"}, {http.MethodGet, "/admin/users"},
			{http.MethodPost, "/admin/login"}, {http.MethodGet, "/admin"},
		} {
			code, body := do(tc.method, tc.path, url.Values{"jid": {"root@localhost"}, "password": {"root pw"}})
			if code != unknownCode || body != unknownBody {
				t.Errorf("%s: %s %s: %d %.80q; want %d %q as for an unknown path", when, tc.method, tc.path, code, body, unknownCode, unknownBody)
			}
		}
	}
	setDashboard := func(on bool) {
		t.Helper()
		b, err := os.ReadFile(s.cfg.Path())
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(b), fmt.Sprintf("dashboard = %v", !on), fmt.Sprintf("dashboard = %v", on), 1)
		if err := os.WriteFile(s.cfg.Path(), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	login := func() {
		t.Helper()
		_, page := do(http.MethodGet, "/admin/login", nil)
		m := csrfField.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no login form:\n%s", page)
		}
		code, page := do(http.MethodPost, "/admin/login", url.Values{"csrf": {m[1]}, "jid": {"root@localhost"}, "password": {"root pw"}})
		if code != 200 || !strings.Contains(page, "sessions online") {
			t.Fatalf("login: %d\n%s", code, page)
		}
	}

	off("configured off")
	setDashboard(true)
	login()
	setDashboard(false)
	off("reloaded off")
	setDashboard(true)
	if code, page := do(http.MethodGet, "/admin/", nil); code != 200 || !strings.Contains(page, `action="/admin/login"`) {
		t.Fatalf("back on: the old session still opens the overview: %d\n%s", code, page)
	}
	login()
}

// TestInvitePageWiring: the binary's wiring of XEP-0401 invitation pages: with the
// dashboard off they are still served on the web listener, and vireoctl's invitation (the
// admin op) prints the page under [web] public_url; the page opens there and creates the
// account, which then logs in.
func TestInvitePageWiring(t *testing.T) {
	s, base := dashServerWeb(t, "public_url = \"https://chat.example.org/\"\ndashboard = false")
	web := strings.TrimSuffix(base, "/admin/")
	lines, err := admin.Invite(s, "create", "localhost", "", 0)
	if err != nil || len(lines) != 3 || !strings.HasPrefix(lines[2], "page https://chat.example.org/invite/") {
		t.Fatalf("invite: %q %v", lines, err)
	}
	path := strings.TrimPrefix(lines[2], "page https://chat.example.org")
	if resp, err := http.Get(base); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("dashboard off, /admin/: %v %v", resp, err)
	}
	resp, err := http.Get(web + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "You are invited to localhost") {
		t.Fatalf("page: %d\n%s", resp.StatusCode, body)
	}
	if code, body := postPage(t, web+path, url.Values{"username": {"nurse"}, "password": {"verona nights"}, "password2": {"verona nights"}}); code != 200 ||
		!strings.Contains(body, "nurse@localhost") {
		t.Fatalf("registration: %d\n%s", code, body)
	}
	if got := xmppPlain(t, s, "nurse", "verona nights"); !strings.Contains(got, "<success") {
		t.Fatalf("nurse cannot log in: %s", got)
	}

	// A password reset link, as vireoctl reset makes it, on the same listener.
	lines, err = admin.ResetLink(s, "nurse@localhost", 0)
	if err != nil || !strings.HasPrefix(lines[0], "https://chat.example.org/reset/") {
		t.Fatalf("reset link: %q %v", lines, err)
	}
	if code, body := postPage(t, web+strings.TrimPrefix(lines[0], "https://chat.example.org"), url.Values{"password": {"balcony scene"}, "password2": {"balcony scene"}}); code != 200 ||
		!strings.Contains(body, "Your password is changed") {
		t.Fatalf("reset: %d\n%s", code, body)
	}
	if got := xmppPlain(t, s, "nurse", "balcony scene"); !strings.Contains(got, "<success") {
		t.Fatalf("nurse cannot log in with the new password: %s", got)
	}
}

// postPage posts form to u and returns the status and the page.
func postPage(t *testing.T, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestIntegrationDashboardFederation: the server-to-server page lists the blocked and
// allowed servers and changes them as vireoctl s2s deny|allow does: at once, in the
// config file, behind the CSRF token; a server on both lists is refused.
func TestIntegrationDashboardFederation(t *testing.T) {
	s, base := dashServer(t)
	br := newBrowser(t, base)
	br.login()
	do := func(path string, v url.Values) (int, string) {
		if v == nil {
			return br.get(path)
		}
		return br.post(path, v)
	}
	token := br.token
	_, page := do("s2s", nil)
	if !strings.Contains(page, "Blocked servers") || !strings.Contains(page, `name="list" value="deny"`) {
		t.Fatalf("s2s page:\n%s", page)
	}
	csrf := token(page)
	block := url.Values{"list": {"deny"}, "action": {"add"}, "domain": {"Spam.Example"}}
	if code, _ := do("s2s", block); code != http.StatusForbidden {
		t.Fatalf("block without the CSRF token: %d", code)
	}
	block.Set("csrf", csrf)
	if code, page := do("s2s", block); code != 200 || !strings.Contains(page, "Spam.Example added to the deny list") || !strings.Contains(page, "<td>spam.example</td>") {
		t.Fatalf("block: %d\n%s", code, page)
	}
	if d, _ := s.FederationLists(); !slices.Equal(d, []string{"spam.example"}) {
		t.Fatalf("deny in force: %v", d)
	}
	if c, err := config.Load(running(s).Path()); err != nil || !slices.Equal(c.S2S.Deny, []string{"spam.example"}) {
		t.Fatalf("deny in the file: %v, %v", c, err)
	}
	if code, page := do("s2s", url.Values{"csrf": {csrf}, "list": {"allow"}, "action": {"add"}, "domain": {"spam.example"}}); code != 200 || !strings.Contains(page, "both deny and allow") {
		t.Fatalf("a server on both lists: %d\n%s", code, page)
	}
	if code, page := do("s2s", url.Values{"csrf": {csrf}, "list": {"deny"}, "action": {"remove"}, "domain": {"spam.example"}}); code != 200 || strings.Contains(page, "<td>spam.example</td>") {
		t.Fatalf("unblock: %d\n%s", code, page)
	}
	if d, _ := s.FederationLists(); len(d) != 0 {
		t.Fatalf("deny after unblocking: %v", d)
	}
	if code, _ := do("s2s", url.Values{"csrf": {csrf}, "list": {"mute"}, "action": {"add"}, "domain": {"x.example"}}); code != http.StatusBadRequest {
		t.Fatalf("an unknown list: %d", code)
	}
}

// browser is a dashboard client with its own cookies, as a browser keeps them.
type browser struct {
	t    *testing.T
	hc   *http.Client
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second}, base: base}
}

// get fetches path under the dashboard and returns the status and the page.
func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.hc.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post submits v to path and returns the status and the page it ends on.
func (b *browser) post(path string, v url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.hc.PostForm(b.base+path, v)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// token is the CSRF token of a page's forms.
func (b *browser) token(page string) string {
	b.t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF token in:\n%s", page)
	}
	return m[1]
}

// login logs in as root@localhost, the dashboard tests' administrator.
func (b *browser) login() {
	b.t.Helper()
	_, page := b.get("login")
	if code, page := b.post("login", url.Values{"csrf": {b.token(page)}, "jid": {"root@localhost"}, "password": {"root pw"}}); code != 200 {
		b.t.Fatalf("login: %d\n%s", code, page)
	}
}

// TestIntegrationDashboardHostAdmin: a host's own administrator ([vhosts."<host>".modules.
// adhoc] admins) logs in to the dashboard and manages the accounts and invitations of
// that host only: other hosts' accounts and invitations are neither shown nor touched,
// and the server's pages (overview, hosts, federation, configuration) are not theirs.
func TestIntegrationDashboardHostAdmin(t *testing.T) {
	s, base := dashServerWeb(t, "[vhosts.\"corp.test\".modules.adhoc]\nadmins = [\"boss@corp.test\"]")
	if _, err := admin.Vhost(s, "add", "corp.test"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"boss@corp.test", "dan@corp.test", "eve@localhost"} {
		if err := admin.AddUser(s, u, u+" pw", 4096); err != nil {
			t.Fatal(err)
		}
	}
	lines, err := admin.Invite(s, "create", "localhost", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	localToken := lines[0][strings.LastIndex(lines[0], "=")+1:]

	loginMellium(t, s, "dan", "corp.test", "dan@corp.test pw") // online on corp
	loginMellium(t, s, "eve", "localhost", "eve@localhost pw") // online elsewhere

	// boss lands on the overview of corp alone: its accounts, who is online, its
	// certificate; none of the server's numbers or hosts.
	br := newBrowser(t, base)
	_, page := br.get("login")
	code, page := br.post("login", url.Values{"csrf": {br.token(page)}, "jid": {"boss@corp.test"}, "password": {"boss@corp.test pw"}})
	if code != 200 || !strings.Contains(page, "<title>Overview") {
		t.Fatalf("boss's login lands on: %d\n%s", code, page)
	}
	if !regexp.MustCompile(`<td>corp.test</td><td class="n">2</td><td class="n">1</td>`).MatchString(page) ||
		!strings.Contains(page, `<h2 id="certs">`) || !strings.Contains(page, `<td>corp.test</td><td>file`) {
		t.Errorf("boss's overview lacks corp's row (2 accounts, 1 online) or its certificate:\n%s", page)
	}
	for _, not := range []string{"localhost", "stanzas/s", "Goroutines", "goroutines"} {
		if strings.Contains(page, not) {
			t.Errorf("boss's overview shows %q", not)
		}
	}
	_, page = br.get("users")
	csrf := br.token(page)
	for _, want := range []string{"boss@corp.test", "dan@corp.test", `href="/admin/invites"`} {
		if !strings.Contains(page, want) {
			t.Errorf("boss's users page lacks %s", want)
		}
	}
	for _, not := range []string{"eve@localhost", "root@localhost", `href="/admin/config"`, `href="/admin/hosts"`} {
		if strings.Contains(page, not) {
			t.Errorf("boss's users page shows %s", not)
		}
	}
	for _, p := range []string{"config", "hosts", "s2s"} {
		if code, _ := br.get(p); code != http.StatusForbidden {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	if code, _ := br.post("hosts", url.Values{"csrf": {csrf}, "action": {"add"}, "domain": {"x.test"}}); code != http.StatusForbidden {
		t.Errorf("POST hosts: %d", code)
	}

	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"action": {"delete"}, "jid": {"eve@localhost"}, "confirm": {"yes"}}, "you administer corp.test only"},
		{url.Values{"action": {"passwd"}, "jid": {"root@localhost"}, "password": {"taken over"}}, "you administer corp.test only"},
		{url.Values{"action": {"add"}, "jid": {"mallory@localhost"}, "password": {"pw pw pw"}}, "you administer corp.test only"},
		{url.Values{"action": {"disable"}, "jid": {"dan@corp.test"}}, "disabled dan@corp.test"},
		{url.Values{"action": {"add"}, "jid": {"new@corp.test"}, "password": {"new pw new"}}, "created new@corp.test"},
	} {
		tc.form.Set("csrf", csrf)
		if code, page := br.post("users", tc.form); code != 200 || !strings.Contains(page, tc.want) {
			t.Errorf("%v: %d, no %q in\n%s", tc.form, code, tc.want, page)
		}
	}
	if _, err := s.Store().Accounts().Get("eve@localhost"); err != nil {
		t.Fatal("eve@localhost went")
	}
	if _, err := s.Store().Accounts().Get("mallory@localhost"); err == nil {
		t.Fatal("boss made mallory@localhost")
	}
	if a, _ := s.Store().Accounts().Get("dan@corp.test"); !a.Disabled {
		t.Fatal("dan@corp.test is not disabled")
	}

	_, page = br.get("invites")
	if strings.Contains(page, localToken) {
		t.Fatalf("boss sees localhost's invitation:\n%s", page)
	}
	if _, page := br.post("invites", url.Values{"csrf": {csrf}, "action": {"create"}, "for": {"localhost"}, "ttl": {"1d"}}); !strings.Contains(page, "you administer corp.test only") {
		t.Errorf("an invitation for localhost:\n%s", page)
	}
	if _, page := br.post("invites", url.Values{"csrf": {csrf}, "action": {"revoke"}, "token": {localToken}}); !strings.Contains(page, "no such invitation of corp.test") {
		t.Errorf("revoking localhost's invitation:\n%s", page)
	}
	if _, page := br.post("invites", url.Values{"csrf": {csrf}, "action": {"create"}, "for": {"corp.test"}, "ttl": {"1d"}}); !strings.Contains(page, "invitation for corp.test") {
		t.Errorf("an invitation for corp.test:\n%s", page)
	}

	// The server's administrator still sees every host.
	root := newBrowser(t, base)
	root.login()
	if _, page := root.get("users"); !strings.Contains(page, "eve@localhost") || !strings.Contains(page, "dan@corp.test") {
		t.Fatalf("root's users page:\n%s", page)
	}
	if _, page := root.get("invites"); !strings.Contains(page, localToken) {
		t.Fatal("root does not see localhost's invitation")
	}
}
