package signup

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store/invites"
)

type fake struct {
	open    bool
	captcha bool
	made    []string
}

func (f *fake) SignupSettings(string) (bool, []string, bool) {
	return f.open, []string{"a.example", "b.example"}, f.captcha
}

func (f *fake) RegisterOpen(domain, user, _, _ string) (string, error) {
	if user == "full" {
		return "", invites.ErrFull
	}
	f.made = append(f.made, user+"@"+domain)
	return user + "@" + domain, nil
}

// TestRequests: what the page answers before any account is made: the form only where a
// password may travel (HTTPS or loopback), no POST from another site or over plain HTTP,
// the domain chosen among the served ones, and no other paths or methods.
func TestRequests(t *testing.T) {
	f := &fake{open: true}
	p := New(f, zerolog.Nop())
	do := func(method, target, remote, origin string, form url.Values) (int, string) {
		var body *strings.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		} else {
			body = strings.NewReader("")
		}
		r := httptest.NewRequest(method, target, body)
		r.RemoteAddr = remote
		if form != nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	const local, far = "127.0.0.1:5000", "192.0.2.7:5000"
	if code, body := do("GET", "/register", far, "", nil); code != 200 || strings.Contains(body, "<form") || !strings.Contains(body, "over HTTPS") {
		t.Fatalf("plain HTTP from afar: %d %s", code, body)
	}
	if code, body := do("GET", "/register", local, "", nil); code != 200 || !strings.Contains(body, `<select id="domain"`) {
		t.Fatalf("from loopback: %d %s", code, body)
	}
	form := url.Values{"username": {"x"}, "password": {"long enough"}, "password2": {"long enough"}, "domain": {"b.example"}}
	if code, _ := do("POST", "/register", far, "", form); code != http.StatusForbidden {
		t.Fatalf("a password over plain HTTP: %d", code)
	}
	if code, _ := do("POST", "/register", local, "https://evil.example", form); code != http.StatusForbidden {
		t.Fatalf("a post from another site: %d", code)
	}
	if code, body := do("POST", "/register", local, "", form); code != 200 || !strings.Contains(body, "x@b.example") {
		t.Fatalf("sign-up: %d %s", code, body)
	}
	form.Set("domain", "elsewhere.example") // not served: the first one
	if code, body := do("POST", "/register", local, "", form); code != 200 || !strings.Contains(body, "x@a.example") {
		t.Fatalf("an unserved domain: %d %s", code, body)
	}
	form.Set("username", "full") // the host is at its max_accounts
	if code, body := do("POST", "/register", local, "", form); code != http.StatusForbidden || !strings.Contains(body, invites.ErrFull.Error()) {
		t.Fatalf("a full host: %d %s", code, body)
	}
	if code, _ := do("PUT", "/register", local, "", nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", code)
	}
	for _, path := range []string{"/register/other", "/register/captcha/nope.png"} {
		if code, _ := do("GET", path, local, "", nil); code != 404 {
			t.Fatalf("%s: %d", path, code)
		}
	}
	f.open = false
	if code, body := do("GET", "/register", local, "", nil); code != 404 || !strings.Contains(body, "does not take new accounts") {
		t.Fatalf("closed: %d %s", code, body)
	}
	if len(f.made) != 2 {
		t.Fatalf("accounts made: %v", f.made)
	}
}

// TestPending: a CAPTCHA is answered once, the ones handed out stay bounded, and one
// address gets PerAddress forms a minute.
func TestPending(t *testing.T) {
	p := New(&fake{open: true, captcha: true}, zerolog.Nop())
	id := p.challenge("192.0.2.1")
	if id == "" || p.CaptchaText(id) == "" {
		t.Fatal("no challenge")
	}
	if p.take(id) == nil || p.take(id) != nil || p.CaptchaText(id) != "" {
		t.Fatal("a challenge taken twice")
	}
	for i := 1; i < PerAddress; i++ {
		if p.challenge("192.0.2.1") == "" {
			t.Fatalf("form %d refused", i+1)
		}
	}
	if p.challenge("192.0.2.1") != "" {
		t.Fatal("one address past its share")
	}
	if p.challenge("192.0.2.2") == "" {
		t.Fatal("another address refused")
	}
	// An IPv6 client holds its /64: its addresses share one share.
	for i := range PerAddress {
		if p.challenge(fmt.Sprintf("2001:db8::%x", i+1)) == "" {
			t.Fatalf("IPv6 form %d refused", i+1)
		}
	}
	if p.challenge("2001:db8::ffff:1") != "" || p.challenge("2001:db8::abcd") != "" {
		t.Fatal("another address of the same /64 past its share")
	}
	if p.challenge("2001:db8:0:1::1") == "" {
		t.Fatal("another /64 refused")
	}
	if len(p.pending) != 2*PerAddress+1 || len(p.order) > 2*PerAddress+2 {
		t.Fatalf("pending %d, order %d", len(p.pending), len(p.order))
	}
	// A site holds its /48: spread over its /64s, it gets PerNetwork in all (it has
	// PerAddress+1 already), and another site is still served.
	got := PerAddress + 1
	for i := 2; i < 1000; i++ {
		if p.challenge(fmt.Sprintf("2001:db8:0:%x::1", i)) != "" {
			got++
		}
	}
	if got != PerNetwork {
		t.Fatalf("one /48 got %d challenges, want %d", got, PerNetwork)
	}
	if p.challenge("2001:db8:1::1") == "" {
		t.Fatal("another /48 refused")
	}
}
