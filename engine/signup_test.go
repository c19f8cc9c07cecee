package engine_test

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/signup"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// signupBackend is signup.Backend over a test server, as main wires it over the real one.
type signupBackend struct{ eng atomic.Pointer[engine.Server] }

func (b *signupBackend) SignupSettings(ip string) (bool, []string, bool) {
	return b.eng.Load().SignupSettings(ip)
}
func (b *signupBackend) RegisterOpen(domain, user, pw, ip string) (string, error) {
	return b.eng.Load().RegisterOpen(domain, user, pw, ip)
}

// signupServer starts a server with the sign-up page on its web listeners; base is the
// HTTPS listener's URL.
func signupServer(t *testing.T, o vireotest.Options) (srv *vireotest.Server, page *signup.Page, base string) {
	t.Helper()
	b := new(signupBackend)
	page = signup.New(b, zerolog.Nop())
	o.AllowPlain = true
	o.Web = engine.Web{Mounts: []engine.Mount{{Prefix: signup.Prefix, Handler: page}}}
	srv = vireotest.Start(t, o)
	b.eng.Store(srv.Engine)
	return srv, page, "https://" + srv.WebTLSAddr()
}

var reSignupChallenge = regexp.MustCompile(`name="challenge" value="([0-9a-f]+)"`)

// TestIntegrationSignupPage: the web sign-up page of an open server creates accounts as
// in-band registration does: a taken or reserved name and a mismatched password are
// refused with the form shown again; the account made logs in over XMPP; with
// registration off the page says so. With registration_captcha the form carries an image
// served beside it, a wrong text is refused with a new image, the right one creates the
// account, a spent image is gone, and one address gets 20 forms a minute.
func TestIntegrationSignupPage(t *testing.T) {
	srv, _, base := signupServer(t, vireotest.Options{Registration: true, ReservedNames: []string{"admin"}})
	srv.AddUser(t, "taken", "secret")
	code, body := fetchPage(t, "GET", base+"/register", nil)
	if code != 200 || !strings.Contains(body, `id="username"`) || strings.Contains(body, "captcha") {
		t.Fatalf("the page: %d %s", code, body)
	}
	post := func(user, pw, pw2 string, extra url.Values) (int, string) {
		t.Helper()
		f := url.Values{"username": {user}, "password": {pw}, "password2": {pw2}, "domain": {"localhost"}}
		for k, v := range extra {
			f[k] = v
		}
		return fetchPage(t, "POST", base+"/register", f)
	}
	for _, tc := range []struct{ user, pw, pw2, want string }{
		{"taken", "long enough", "long enough", "that username is taken"},
		{"admin", "long enough", "long enough", "that username is taken"}, // reserved
		{"newbie", "long enough", "not the same", "the two passwords differ"},
		{"newbie", "short", "short", "choose a password"},
		{"bad name", "long enough", "long enough", "not a valid username"},
	} {
		if code, body := post(tc.user, tc.pw, tc.pw2, nil); code != 400 || !strings.Contains(body, tc.want) {
			t.Fatalf("%s/%q: %d, want 400 with %q: %s", tc.user, tc.pw, code, tc.want, body)
		}
	}
	if code, body := post("newbie", "long enough", "long enough", nil); code != 200 || !strings.Contains(body, `<strong id="account">newbie@localhost</strong>`) {
		t.Fatalf("sign-up: %d %s", code, body)
	}
	srv.LoginPlain(t, "newbie", "long enough", "pc")
	if m := srv.Engine.Counters(); m.RegistrationsBy["web"] != 1 {
		t.Fatalf("registrations: %v", m.RegistrationsBy)
	}

	_, _, cbase := signupServer(t, vireotest.Options{})
	if code, body := fetchPage(t, "GET", cbase+"/register", nil); code != 404 || !strings.Contains(body, "does not take new accounts") {
		t.Fatalf("a closed server's page: %d %s", code, body)
	}

	// With a CAPTCHA.
	srv, page, base := signupServer(t, vireotest.Options{Registration: true, RegistrationCaptcha: true})
	form := func() string {
		t.Helper()
		code, body := fetchPage(t, "GET", base+"/register", nil)
		m := reSignupChallenge.FindStringSubmatch(body)
		if code != 200 || m == nil || !strings.Contains(body, `src="/register/captcha/`+m[1]+`.png"`) {
			t.Fatalf("the CAPTCHA form: %d %s", code, body)
		}
		return m[1]
	}
	id := form()
	resp, err := pageClient.Get(base + "/register/captcha/" + id + ".png")
	if err != nil {
		t.Fatal(err)
	}
	img, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := png.Decode(bytes.NewReader(img)); err != nil || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("the image: %v %s", err, resp.Header.Get("Content-Type"))
	}
	text := page.CaptchaText(id)
	code, body = post("amy", "long enough", "long enough", url.Values{"challenge": {id}, "captcha": {text + "X"}})
	if code != 400 || !strings.Contains(body, "the text of the image was not right") || reSignupChallenge.FindStringSubmatch(body) == nil {
		t.Fatalf("a wrong text: %d %s", code, body)
	}
	if code, _ := fetchPage(t, "GET", base+"/register/captcha/"+id+".png", nil); code != 404 {
		t.Fatalf("a spent image: %d", code)
	}
	if code, _ = post("amy", "long enough", "long enough", url.Values{"challenge": {id}, "captcha": {text}}); code != 400 {
		t.Fatalf("the right text of a spent CAPTCHA: %d", code)
	}
	id = reSignupChallenge.FindStringSubmatch(body)[1] // the form shown again has a new one
	if code, body := post("amy", "long enough", "long enough", url.Values{"challenge": {id}, "captcha": {strings.ToLower(page.CaptchaText(id))}}); code != 200 || !strings.Contains(body, "amy@localhost") {
		t.Fatalf("the right text: %d %s", code, body)
	}
	srv.LoginPlain(t, "amy", "long enough", "pc")
	for range signup.PerAddress - 3 { // three forms so far this minute
		form()
	}
	if code, _ := fetchPage(t, "GET", base+"/register", nil); code != 429 {
		t.Fatalf("form %d from one address: %d, want 429", signup.PerAddress+1, code)
	}
}

// TestBrowserSignupPage: the sign-up page with a CAPTCHA as a person meets it, in headless
// Chromium: the image loads under the page's content security policy, the form is filled
// (the CAPTCHA's text from the server, since the test cannot read it) and sent, and the
// account logs in over XMPP.
func TestBrowserSignupPage(t *testing.T) {
	chrome := needChromium(t)
	srv, page, base := signupServer(t, vireotest.Options{Registration: true, RegistrationCaptcha: true})
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
	if _, err := chromedp.Run(bctx, chromedp.Navigate(base+"/register")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	b.poll("the form", `!!document.querySelector('#username') && document.title === 'Create an account on localhost'`)
	b.poll("the image", `document.querySelector('#captcha-image').complete && document.querySelector('#captcha-image').naturalWidth === 220`)
	id, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('input[name=challenge]').value`))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range [][2]string{{"#username", "webby"}, {"#password", "from the web"}, {"#password2", "from the web"}, {"#captcha", page.CaptchaText(id)}} {
		if _, err := chromedp.Run(bctx, chromedp.SendKeys(f[0], f[1])); err != nil {
			t.Fatalf("type %s: %v", f[0], err)
		}
	}
	if _, err := chromedp.Run(bctx, chromedp.Click("#create", chromedp.NodeVisible)); err != nil {
		t.Fatalf("click: %v", err)
	}
	b.poll("account ready", `!!document.querySelector('#account') && document.querySelector('#account').textContent === 'webby@localhost'`)
	srv.LoginPlain(t, "webby", "from the web", "phone")
}
