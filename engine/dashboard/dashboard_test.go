package dashboard

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/metrics"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// fakeBackend is a store in a temporary directory and a per-address attempt counter
// with the engine throttle's contract (counted at the start, refunded on success).
type fakeBackend struct {
	st     store.Store
	certs  []admin.CertStatus
	admins []string
	hosts  map[string][]string // HostAdmins
	limit  int
	mu     sync.Mutex
	tries  map[string]int
	closed []string
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) Store() store.Store { return f.st }
func (f *fakeBackend) Domains() []string  { return []string{"example.org"} }
func (f *fakeBackend) CloseUser(b jid.JID) {
	f.mu.Lock()
	f.closed = append(f.closed, b.String())
	f.mu.Unlock()
}
func (f *fakeBackend) Reload() error { return nil }
func (f *fakeBackend) Stats() map[string]any {
	return map[string]any{"uptime_s": int64(10), "accounts": 2}
}
func (f *fakeBackend) Modules() []string    { return nil }
func (f *fakeBackend) DataDir() string      { return "" }
func (f *fakeBackend) Version() string      { return "test" }
func (*fakeBackend) WebURL(d string) string { return "https://" + d + ":5443" }
func (f *fakeBackend) Counters() metrics.Counters {
	return metrics.Counters{Online: 3, Routed: 42, Shards: 8}
}
func (f *fakeBackend) S2SLinks() []Link {
	return []Link{{Local: "example.org", Remote: "peer.example", Up: true}}
}
func (f *fakeBackend) Admins() []string { return f.admins }
func (f *fakeBackend) HostAdmins() map[string][]string {
	if f.hosts == nil {
		return map[string][]string{}
	}
	return f.hosts
}
func (f *fakeBackend) Certs() []admin.CertStatus { return f.certs }
func (f *fakeBackend) Config() (string, error) {
	return "domains = [\"example.org\"]\nsecret = \"(redacted)\"\n", nil
}
func (f *fakeBackend) LoginSucceeded(ip string) { f.mu.Lock(); f.tries[ip]--; f.mu.Unlock() }
func (f *fakeBackend) LoginAttempt(ip string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tries[ip] >= f.limit {
		return false
	}
	f.tries[ip]++
	return true
}

func newBackend(t *testing.T) *fakeBackend {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for u, pw := range map[string]string{"root@example.org": "root pw", "bob@example.org": "bob pw"} {
		keys, err := creds.DeriveAll(pw, creds.MinIter)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Accounts().Create(store.Account{User: u, Creds: keys}); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeBackend{st: st, admins: []string{"root@example.org"}, limit: 5, tries: map[string]int{}}
}

// client drives the handler like a browser: cookies kept, redirects not followed.
type client struct {
	t    *testing.T
	h    http.Handler
	tls  bool
	addr string // the client's address; 192.0.2.1 (another machine) when empty
	jar  map[string]*http.Cookie
}

func newClient(t *testing.T, h http.Handler) *client {
	return &client{t: t, h: h, jar: map[string]*http.Cookie{}, tls: true}
}

func (c *client) do(method, path string, form url.Values, hdr ...string) *http.Response {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, path, body)
	r.RemoteAddr = "192.0.2.1:1234"
	if c.addr != "" {
		r.RemoteAddr = c.addr
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	if c.tls {
		r.TLS = &tls.ConnectionState{}
	}
	for _, k := range c.jar {
		r.AddCookie(k)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	resp := w.Result()
	for _, k := range resp.Cookies() {
		if k.MaxAge < 0 {
			delete(c.jar, k.Name)
		} else {
			c.jar[k.Name] = k
		}
	}
	return resp
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func bodyOf(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// formToken GETs path and returns the page and its CSRF token.
func (c *client) formToken(path string) (string, string) {
	c.t.Helper()
	page := bodyOf(c.do("GET", path, nil))
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("no CSRF token on %s:\n%s", path, page)
	}
	return page, m[1]
}

func (c *client) login(user, pw string) *http.Response {
	c.t.Helper()
	_, tok := c.formToken("/admin/login")
	return c.do("POST", "/admin/login", url.Values{"csrf": {tok}, "jid": {user}, "password": {pw}})
}

// TestDashboardSessions: ids are 128 random bits; sessions expire when idle and at their
// maximum age however busy; dropUser ends all of a user's; the table is bounded.
func TestDashboardSessions(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := newSessions(func() time.Time { return now })
	id := s.create("a@x", [32]byte{})
	if len(id) != 22 || id == s.create("a@x", [32]byte{}) {
		t.Fatalf("id %q: want 22 characters (128 bits), unique", id)
	}
	got, ok := s.get(id)
	if !ok || got.user != "a@x" || len(got.csrf) != 22 || got.csrf == id {
		t.Fatalf("get = %+v, %v", got, ok)
	}
	now = now.Add(SessionIdle - time.Second)
	if _, ok := s.get(id); !ok {
		t.Fatal("expired before its idle time")
	}
	now = now.Add(SessionIdle - time.Second) // used a moment ago: still alive
	if _, ok := s.get(id); !ok {
		t.Fatal("use did not extend the session")
	}
	now = now.Add(SessionIdle)
	if _, ok := s.get(id); ok {
		t.Fatal("idle session still valid")
	}

	busy := s.create("b@x", [32]byte{})
	for end := now.Add(SessionMax); now.Before(end.Add(-time.Minute)); now = now.Add(10 * time.Minute) {
		if _, ok := s.get(busy); !ok {
			t.Fatalf("busy session ended early at %v", now)
		}
	}
	now = now.Add(10 * time.Minute)
	if _, ok := s.get(busy); ok {
		t.Fatal("session outlived SessionMax")
	}

	a, b := s.create("c@x", [32]byte{}), s.create("c@x", [32]byte{})
	s.dropUser("c@x")
	if _, ok := s.get(a); ok {
		t.Fatal("dropUser left a session")
	}
	if _, ok := s.get(b); ok {
		t.Fatal("dropUser left a session")
	}
	for range MaxSessions + 10 {
		s.create("d@x", [32]byte{})
	}
	if n := s.len(); n > MaxSessions {
		t.Fatalf("%d sessions, bound %d", n, MaxSessions)
	}
}

// TestDashboardLoginCookie: a login with the XMPP password opens a session whose cookie is
// HttpOnly, SameSite=Strict, Secure on TLS; bad passwords, non-administrators and
// disabled administrators get the same refusal; logout ends the session.
func TestDashboardLoginCookie(t *testing.T) {
	b := newBackend(t)
	d := New(b, zerolog.Nop(), nil)
	c := newClient(t, d)
	if resp := c.do("GET", "/admin/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/login" {
		t.Fatalf("anonymous overview: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Over plain HTTP from another machine, no password is taken.
	c.tls = false
	for _, resp := range []*http.Response{c.do("GET", "/admin/login", nil),
		c.do("POST", "/admin/login", url.Values{"jid": {"root@example.org"}, "password": {"root pw"}})} {
		if body := bodyOf(resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "HTTPS only") {
			t.Fatalf("login page over plain HTTP: %d %s", resp.StatusCode, body)
		}
	}
	if c.jar[SessionCookie] != nil {
		t.Fatal("a session over plain HTTP")
	}
	c.tls = true
	for _, bad := range [][2]string{{"root@example.org", "wrong"}, {"bob@example.org", "bob pw"}, {"nobody@example.org", "x"}} {
		resp := c.login(bad[0], bad[1])
		if body := bodyOf(resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, errLogin) {
			t.Fatalf("login %v: %d", bad, resp.StatusCode)
		}
	}
	resp := c.login("root@example.org", "root pw")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
		t.Fatalf("login: %d %s", resp.StatusCode, bodyOf(resp))
	}
	k := c.jar[SessionCookie]
	if k == nil || !k.HttpOnly || !k.Secure || k.SameSite != http.SameSiteStrictMode || k.Path != "/admin/" || len(k.Value) != 22 {
		t.Fatalf("session cookie = %+v", k)
	}
	page := bodyOf(c.do("GET", "/admin/", nil))
	for _, want := range []string{"sessions online", "<b>3</b>", "root@example.org"} {
		if !strings.Contains(page, want) {
			t.Fatalf("overview lacks %q:\n%s", want, page)
		}
	}
	if page := bodyOf(c.do("GET", "/admin/config", nil)); !strings.Contains(page, "(redacted)") {
		t.Fatalf("config page:\n%s", page)
	}
	if page := bodyOf(c.do("GET", "/admin/s2s", nil)); !strings.Contains(page, "peer.example") {
		t.Fatalf("s2s page:\n%s", page)
	}
	_, tok := c.formToken("/admin/users")
	if resp := c.do("POST", "/admin/logout", url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp := c.do("GET", "/admin/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("session alive after logout")
	}

	// Plain HTTP from this machine (an SSH tunnel, a proxy that terminated TLS): no
	// Secure flag (the browser would drop the cookie).
	c2 := newClient(t, d)
	c2.tls, c2.addr = false, "127.0.0.1:40000"
	c2.login("root@example.org", "root pw")
	if k := c2.jar[SessionCookie]; k == nil || k.Secure {
		t.Fatalf("cookie over plain HTTP = %+v", k)
	}
	// A disabled administrator is logged out at the next request.
	b.st.Accounts().SetDisabled("root@example.org", true)
	if resp := c2.do("GET", "/admin/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("a disabled administrator's session still works")
	}
	if resp := c2.login("root@example.org", "root pw"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a disabled administrator logged in: %d", resp.StatusCode)
	}
}

// TestDashboardCSRF: every POST needs the session's token (the login form its
// double-submit cookie), and a POST from another origin is refused.
func TestDashboardCSRF(t *testing.T) {
	b := newBackend(t)
	c := newClient(t, New(b, zerolog.Nop(), nil))

	if resp := c.do("POST", "/admin/login", url.Values{"jid": {"root@example.org"}, "password": {"root pw"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without the form's token: %d", resp.StatusCode)
	}
	_, tok := c.formToken("/admin/login")
	if resp := c.do("POST", "/admin/login", url.Values{"csrf": {tok + "x"}, "jid": {"root@example.org"}, "password": {"root pw"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login with a wrong token: %d", resp.StatusCode)
	}
	c.login("root@example.org", "root pw")
	_, tok = c.formToken("/admin/users")
	add := url.Values{"action": {"add"}, "jid": {"eve@example.org"}, "password": {"pw"}}
	if resp := c.do("POST", "/admin/users", add); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without token: %d", resp.StatusCode)
	}
	add.Set("csrf", "AAAAAAAAAAAAAAAAAAAAAA")
	if resp := c.do("POST", "/admin/users", add); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with a wrong token: %d", resp.StatusCode)
	}
	add.Set("csrf", tok)
	if resp := c.do("POST", "/admin/users", add, "Origin", "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin POST: %d", resp.StatusCode)
	}
	if _, err := b.st.Accounts().Get("eve@example.org"); err == nil {
		t.Fatal("a refused POST created the account")
	}
	if resp := c.do("POST", "/admin/users", add, "Origin", "http://example.com"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin POST with the token: %d %s", resp.StatusCode, bodyOf(resp))
	}
	if _, err := b.st.Accounts().Get("eve@example.org"); err != nil {
		t.Fatalf("account not created: %v", err)
	}
	if page := bodyOf(c.do("GET", "/admin/users?q=eve", nil)); !strings.Contains(page, "created eve@example.org") || strings.Contains(page, "bob@example.org") {
		t.Fatalf("users page after add (prefix eve):\n%s", page)
	}
}

// TestDashboardRateLimit: password attempts count against the backend's per-address
// budget; past it the form answers 429 without checking the password; a success gives
// its attempt back.
func TestDashboardRateLimit(t *testing.T) {
	b := newBackend(t)
	b.limit = 3
	c := newClient(t, New(b, zerolog.Nop(), nil))
	c.login("root@example.org", "root pw")
	if b.tries["192.0.2.1"] != 0 {
		t.Fatalf("a success kept its attempt: %d", b.tries["192.0.2.1"])
	}
	for i := range 3 {
		if resp := c.login("root@example.org", "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	resp := c.login("root@example.org", "root pw")
	if body := bodyOf(resp); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many login attempts") {
		t.Fatalf("over the limit: %d", resp.StatusCode)
	}
}

// TestDashboardUsers: disable closes the sessions and sets the flag, enable clears it,
// delete needs the confirmation box, and an administrator cannot disable or delete
// their own account.
func TestDashboardUsers(t *testing.T) {
	b := newBackend(t)
	c := newClient(t, New(b, zerolog.Nop(), nil))
	c.login("root@example.org", "root pw")
	_, tok := c.formToken("/admin/users")
	post := func(v url.Values) string {
		t.Helper()
		v.Set("csrf", tok)
		if resp := c.do("POST", "/admin/users", v); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%v: %d %s", v, resp.StatusCode, bodyOf(resp))
		}
		return bodyOf(c.do("GET", "/admin/users", nil))
	}
	if p := post(url.Values{"action": {"disable"}, "jid": {"bob@example.org"}}); !strings.Contains(p, "disabled bob@example.org") || !strings.Contains(p, "Re-enable") {
		t.Fatalf("after disable:\n%s", p)
	}
	if acc, _ := b.st.Accounts().Get("bob@example.org"); !acc.Disabled || len(b.closed) != 1 {
		t.Fatalf("disable: flag %v, sessions closed %v", acc.Disabled, b.closed)
	}
	post(url.Values{"action": {"enable"}, "jid": {"bob@example.org"}})
	if acc, _ := b.st.Accounts().Get("bob@example.org"); acc.Disabled {
		t.Fatal("enable did not clear the flag")
	}
	if p := post(url.Values{"action": {"disable"}, "jid": {"root@example.org"}}); !strings.Contains(p, "cannot disable your own account") {
		t.Fatalf("self-disable:\n%s", p)
	}
	if p := post(url.Values{"action": {"delete"}, "jid": {"bob@example.org"}}); !strings.Contains(p, "tick the box") {
		t.Fatalf("delete without confirmation:\n%s", p)
	}
	post(url.Values{"action": {"passwd"}, "jid": {"bob@example.org"}, "password": {"new pw"}})
	if acc, _ := b.st.Accounts().Get("bob@example.org"); !creds.VerifyPlain(acc.Creds[store.SHA256], store.SHA256, "new pw") {
		t.Fatal("password not reset")
	}
	post(url.Values{"action": {"delete"}, "jid": {"bob@example.org"}, "confirm": {"yes"}})
	if _, err := b.st.Accounts().Get("bob@example.org"); err == nil {
		t.Fatal("not deleted")
	}
}

// TestDashboardCerts: the overview lists each host's certificate: source, issuer,
// expiry, and with ACME the last order (its error escaped) and the next.
func TestDashboardCerts(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := newBackend(t)
	b.certs = []admin.CertStatus{
		{Host: "example.org", Source: "acme", Issuer: "Pebble Intermediate CA 1a2b", NotAfter: now.Add(60 * 24 * time.Hour),
			ACME: true, LastAttempt: now.Add(-2 * time.Hour), NextRenewal: now.Add(30 * 24 * time.Hour)},
		{Host: "chat.example", Source: "file", File: "/srv/vireo/data/certs/chat.example.crt", Issuer: "chat.example", SelfSigned: true,
			NotAfter: now.Add(-time.Hour), ACME: true, LastAttempt: now.Add(-5 * time.Minute), LastError: "new order: <rejected>",
			Failures: 3, NextRenewal: now.Add(4 * time.Minute)},
		{Host: "plain.example", Source: "file", File: "/etc/vireo/cert.pem", Issuer: "R11", NotAfter: now.Add(10 * 24 * time.Hour)},
	}
	c := newClient(t, New(b, zerolog.Nop(), func() time.Time { return now }))
	if resp := c.login("root@example.org", "root pw"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	page := bodyOf(c.do("GET", "/admin/", nil))
	for _, want := range []string{
		`<h2 id="certs">Certificates</h2>`,
		`<td>example.org</td><td>acme</td>`,
		`Pebble Intermediate CA 1a2b`,
		`2026-04-30 12:00 UTC (in 60d)`,
		`2026-03-01 10:00 UTC (2h ago) ok`,
		`2026-03-31 12:00 UTC (in 30d)`,
		`<td>chat.example</td><td>file <small>/srv/vireo/data/certs/chat.example.crt</small></td>`,
		`chat.example <span class="off">self-signed</span>`,
		`<td class="off">2026-03-01 11:00 UTC (1h ago)</td>`,
		`failed 3 times in a row: new order: &lt;rejected&gt;`,
		`2026-03-01 12:04 UTC (in 4m)`,
		`<td>plain.example</td><td>file <small>/etc/vireo/cert.pem</small></td>`,
		`<td>ACME off</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if t.Failed() {
		i := strings.Index(page, `<h2 id="certs">`)
		t.Logf("page from the certificates on:\n%s", page[max(i, 0):])
	}
}

func TestWhen(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "–"},
		{now.Add(42 * time.Second), "2026-03-01 12:00 UTC (in 42s)"},
		{now.Add(-3*time.Hour - 5*time.Minute), "2026-03-01 08:55 UTC (3h5m ago)"},
		{now.Add(47 * time.Hour), "2026-03-03 11:00 UTC (in 47h)"},
		{now.Add(89*24*time.Hour + time.Hour), "2026-05-29 13:00 UTC (in 89d)"},
		{now.In(time.FixedZone("X", 3600)).Add(time.Hour), "2026-03-01 13:00 UTC (in 1h)"},
	} {
		if got := when(tc.t, now); got != tc.want {
			t.Errorf("when(%s) = %q; want %q", tc.t, got, tc.want)
		}
	}
}

// TestDashboardInvites: the invitations page makes an account invitation whose link the
// flash shows (and which store/invites accepts), lists the open ones, revokes one, and
// says why it refuses a host that is not served.
func TestDashboardInvites(t *testing.T) {
	b := newBackend(t)
	c := newClient(t, New(b, zerolog.Nop(), nil))
	c.login("root@example.org", "root pw")
	_, tok := c.formToken("/admin/invites")
	post := func(v url.Values) string {
		t.Helper()
		v.Set("csrf", tok)
		if resp := c.do("POST", "/admin/invites", v); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%v: %d %s", v, resp.StatusCode, bodyOf(resp))
		}
		return bodyOf(c.do("GET", "/admin/invites", nil))
	}
	p := post(url.Values{"action": {"create"}, "for": {"juliet@example.org"}, "ttl": {"7d"}})
	m := regexp.MustCompile(`xmpp:juliet@example\.org\?register;preauth=([A-Za-z0-9]+)`).FindStringSubmatch(p)
	if m == nil || !strings.Contains(p, "<td>juliet@example.org</td><td>operator</td>") ||
		!strings.Contains(p, "https://example.org:5443/invite/"+m[1]) || !strings.Contains(p, `<a href="https://example.org:5443/invite/`+m[1]+`">open</a>`) {
		t.Fatalf("after create:\n%s", p)
	}
	if inv, err := invites.Check(b.st.Table(invites.Table), m[1], time.Now()); err != nil || inv.Username != "juliet" {
		t.Fatalf("the token: %+v %v", inv, err)
	}
	if p := post(url.Values{"action": {"create"}, "for": {"x@elsewhere.example"}, "ttl": {"1d"}}); !strings.Contains(p, "not served here") {
		t.Fatalf("a host not served:\n%s", p)
	}
	if resp := c.do("POST", "/admin/invites", url.Values{"csrf": {tok}, "action": {"create"}, "for": {"example.org"}, "ttl": {"1y"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unknown lifetime: %d", resp.StatusCode)
	}
	if p := post(url.Values{"action": {"revoke"}, "token": {m[1]}}); !strings.Contains(p, "invitation revoked") || !strings.Contains(p, "No open invitation.") {
		t.Fatalf("after revoke:\n%s", p)
	}
}

// TestDashboardHostAdminRank: a host's administrator may not change the accounts of
// those with more rights on its own domain (a server administrator, an administrator of
// another host), whose password or reset link would give it those rights; other accounts
// of its host it may.
func TestDashboardHostAdminRank(t *testing.T) {
	b := newBackend(t)
	b.hosts = map[string][]string{"example.org": {"bob@example.org"}, "other.org": {"carol@example.org"}}
	for _, u := range []string{"carol@example.org", "dave@example.org"} {
		if err := b.st.Accounts().Create(store.Account{User: u}); err != nil {
			t.Fatal(err)
		}
	}
	d := New(b, zerolog.Nop(), nil)
	c := newClient(t, d)
	if resp := c.login("bob@example.org", "bob pw"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's login: %d %s", resp.StatusCode, bodyOf(resp))
	}
	_, tok := c.formToken("/admin/users")
	for _, tc := range []struct{ action, jid, want string }{
		{"passwd", "root@example.org", "administers more than you do"},
		{"resetlink", "root@example.org", "administers more than you do"},
		{"delete", "root@example.org", "administers more than you do"},
		{"passwd", "carol@example.org", "administers more than you do"},
		{"passwd", "dave@example.org", "password of dave@example.org changed"},
	} {
		c.do("POST", "/admin/users", url.Values{"csrf": {tok}, "action": {tc.action}, "jid": {tc.jid}, "password": {"taken over"}, "confirm": {"yes"}})
		if page := bodyOf(c.do("GET", "/admin/users", nil)); !strings.Contains(page, tc.want) {
			t.Errorf("%s %s: no %q in\n%s", tc.action, tc.jid, tc.want, page)
		}
	}
	if _, err := b.st.Accounts().Get("root@example.org"); err != nil {
		t.Fatal("root's account went")
	}
	// An invitation for a named account makes it: not one the configuration names a
	// server administrator (whose account does not exist yet).
	b.admins = append(b.admins, "boss@example.org")
	_, tok = c.formToken("/admin/invites")
	for _, tc := range []struct{ jid, want string }{
		{"boss@example.org", "needs a server administrator"},
		{"carol2@example.org", "invitation for carol2@example.org"},
	} {
		c.do("POST", "/admin/invites", url.Values{"csrf": {tok}, "action": {"create"}, "for": {tc.jid}, "ttl": {"1d"}})
		if page := bodyOf(c.do("GET", "/admin/invites", nil)); !strings.Contains(page, tc.want) {
			t.Errorf("invitation for %s: no %q in\n%s", tc.jid, tc.want, page)
		}
	}
	// A server administrator's password reset link is not shown to bob (he would take
	// the account with it); a plain user's of his host is.
	root, err := invites.CreateReset(b.st.Table(invites.Table), mustJID(t, "root@example.org"), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dave, err := invites.CreateReset(b.st.Table(invites.Table), mustJID(t, "dave@example.org"), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	page := bodyOf(c.do("GET", "/admin/invites", nil))
	if strings.Contains(page, root.Token) || !strings.Contains(page, dave.Token) {
		t.Errorf("reset links shown to a host's administrator: root's %v, dave's %v", strings.Contains(page, root.Token), strings.Contains(page, dave.Token))
	}
}

func mustJID(t *testing.T, s string) jid.JID {
	t.Helper()
	j, err := jid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestDashboardSessionEndsAtPasswordChange: a session ends when the account's password
// changes (its owner taking it back after a theft, or a reset link), as its FAST tokens
// do; a login with the new one works.
func TestDashboardSessionEndsAtPasswordChange(t *testing.T) {
	b := newBackend(t)
	d := New(b, zerolog.Nop(), nil)
	c := newClient(t, d)
	if resp := c.login("root@example.org", "root pw"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if resp := c.do("GET", "/admin/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the change: %d", resp.StatusCode)
	}
	if err := admin.Passwd(b, "root@example.org", "new root pw", 0); err != nil {
		t.Fatal(err)
	}
	if resp := c.do("GET", "/admin/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a session from before the password change: %d", resp.StatusCode)
	}
	if resp := c.login("root@example.org", "new root pw"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with the new password: %d", resp.StatusCode)
	}
	if resp := c.do("GET", "/admin/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the new login: %d", resp.StatusCode)
	}
}
