package invitepage

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store/invites"
)

// fake is a Backend with one invitation per token; RegisterInvited records its calls.
type fake struct {
	invs  map[string]invites.Invite
	err   error // what Invitation returns for an unknown token (default ErrInvalid)
	calls []string
}

func (f *fake) Invitation(tok string) (invites.Invite, error) {
	if inv, ok := f.invs[tok]; ok {
		return inv, nil
	}
	if f.err != nil {
		return invites.Invite{}, f.err
	}
	return invites.Invite{}, invites.ErrInvalid
}

func (f *fake) RegisterInvited(tok, user, pw, ip string) (string, error) {
	f.calls = append(f.calls, tok+" "+user+" "+ip)
	if user == "taken" {
		return "", invites.ErrNameTaken
	}
	if user == "full" {
		return "", invites.ErrFull
	}
	if user == "broken" {
		return "", errors.New("disk on fire")
	}
	return user + "@example.org", nil
}

func (f *fake) ResetPassword(tok, pw, ip string) (string, error) {
	f.calls = append(f.calls, tok+" reset "+ip)
	return "juliet@example.org", nil
}

func (f *fake) WebURL(d string) string { return "https://" + d + ":5443" }

// TestPage: the page's answers by transport, method and backend outcome. A password is
// taken over TLS or from loopback only; plain HTTP from elsewhere is sent to the HTTPS
// page; a cross-site POST is refused; backend errors are shown as the user's to fix or
// as a failure without detail.
func TestPage(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	f := &fake{invs: map[string]invites.Invite{
		"acct":    {Token: "acct", Domain: "example.org", Expires: exp},
		"contact": {Token: "contact", Domain: "example.org", Inviter: "romeo@example.org", Contact: true, Expires: exp},
		"ibr":     {Token: "ibr", Domain: "example.org", Inviter: "romeo@example.org", Contact: true, Register: true, Expires: exp},
		"reset":   {Token: "reset", Domain: "example.org", Username: "juliet", Reset: true, Expires: exp},
	}}
	p := New(f, zerolog.Nop())
	form := url.Values{"username": {"juliet"}, "password": {"balcony1"}, "password2": {"balcony1"}}
	tests := []struct {
		name, method, path, remote string
		tls                        bool
		origin                     string
		form                       url.Values
		code                       int
		want, not                  []string
		registered                 bool
	}{
		{name: "unknown token", method: "GET", path: "/invite/nope", remote: "203.0.113.5:1", tls: true, code: 404, want: []string{"This invitation is not valid"}},
		{name: "no token", method: "GET", path: "/invite/", remote: "203.0.113.5:1", tls: true, code: 404},
		{name: "nested path", method: "GET", path: "/invite/acct/x", remote: "203.0.113.5:1", tls: true, code: 404},
		{name: "account over TLS", method: "GET", path: "/invite/acct", remote: "203.0.113.5:1", tls: true, code: 200,
			want: []string{"You are invited to example.org", `name="username"`, "2 January 2030, 03:04 UTC", `href="xmpp:example.org?register;preauth=acct"`}},
		{name: "account over plain HTTP from afar", method: "GET", path: "/invite/acct", remote: "203.0.113.5:1", code: 200,
			want: []string{`href="https://example.org:5443/invite/acct"`}, not: []string{`name="password"`}},
		{name: "account over plain HTTP from loopback", method: "GET", path: "/invite/acct", remote: "[::1]:1", code: 200, want: []string{`name="password"`}},
		{name: "contact only", method: "GET", path: "/invite/contact", remote: "203.0.113.5:1", tls: true, code: 200,
			want: []string{"romeo@example.org invites you to chat"}, not: []string{`name="password"`, "ibr=y"}},
		{name: "contact only POST", method: "POST", path: "/invite/contact", remote: "203.0.113.5:1", tls: true, form: form, code: 403},
		{name: "plain HTTP POST", method: "POST", path: "/invite/acct", remote: "203.0.113.5:1", form: form, code: 403},
		{name: "cross-site POST", method: "POST", path: "/invite/acct", remote: "203.0.113.5:1", tls: true, origin: "https://evil.example", form: form, code: 403},
		{name: "register", method: "POST", path: "/invite/ibr", remote: "203.0.113.5:1", tls: true, origin: "https://example.org", form: form, code: 200,
			want: []string{`<strong id="account">juliet@example.org</strong>`, "romeo@example.org</strong> is already in your contacts"}, registered: true},
		{name: "taken", method: "POST", path: "/invite/acct", remote: "203.0.113.5:1", tls: true,
			form: url.Values{"username": {"taken"}, "password": {"balcony1"}, "password2": {"balcony1"}}, code: 400,
			want: []string{invites.ErrNameTaken.Error(), `value="taken"`}, registered: true},
		{name: "host full", method: "POST", path: "/invite/acct", remote: "203.0.113.5:1", tls: true,
			form: url.Values{"username": {"full"}, "password": {"balcony1"}, "password2": {"balcony1"}}, code: 403,
			want: []string{invites.ErrFull.Error()}, registered: true},
		{name: "store failure", method: "POST", path: "/invite/acct", remote: "203.0.113.5:1", tls: true,
			form: url.Values{"username": {"broken"}, "password": {"balcony1"}, "password2": {"balcony1"}}, code: 500,
			want: []string{"could not be created now"}, not: []string{"disk on fire"}, registered: true},
		{name: "reset link", method: "GET", path: "/reset/reset", remote: "203.0.113.5:1", tls: true, code: 200,
			want: []string{"New password for juliet@example.org", `name="password2"`}, not: []string{`name="username"`, "xmpp:"}},
		{name: "reset link at /invite/", method: "GET", path: "/invite/reset", remote: "203.0.113.5:1", tls: true, code: 404},
		{name: "invitation at /reset/", method: "GET", path: "/reset/acct", remote: "203.0.113.5:1", tls: true, code: 404},
		{name: "reset over plain HTTP from afar", method: "GET", path: "/reset/reset", remote: "203.0.113.5:1", code: 200,
			want: []string{`href="https://example.org:5443/reset/reset"`}, not: []string{`name="password"`}},
		{name: "reset", method: "POST", path: "/reset/reset", remote: "203.0.113.5:1", tls: true, form: form, code: 200,
			want: []string{"Your password is changed", `<strong id="account">juliet@example.org</strong>`}, registered: true},
		{name: "PUT", method: "PUT", path: "/invite/acct", remote: "203.0.113.5:1", tls: true, code: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.calls = nil
			var r *http.Request
			if tt.form != nil {
				r = httptest.NewRequest(tt.method, "https://example.org"+tt.path, strings.NewReader(tt.form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				r = httptest.NewRequest(tt.method, "https://example.org"+tt.path, nil)
			}
			r.Host = "example.org"
			r.RemoteAddr = tt.remote
			if !tt.tls {
				r.TLS = nil
			} else if r.TLS == nil {
				r.TLS = &tls.ConnectionState{HandshakeComplete: true}
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d\n%s", w.Code, tt.code, body)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("missing %q in\n%s", s, body)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(body, s) {
					t.Errorf("unexpected %q in\n%s", s, body)
				}
			}
			if (len(f.calls) > 0) != tt.registered {
				t.Errorf("RegisterInvited calls: %q", f.calls)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q", got)
			}
		})
	}

	// A store failure reading the invitation is not "invalid".
	bad := New(&fake{err: errors.New("disk on fire")}, zerolog.Nop())
	w := httptest.NewRecorder()
	bad.ServeHTTP(w, httptest.NewRequest("GET", "https://example.org/invite/x", nil))
	if w.Code != 500 || strings.Contains(w.Body.String(), "disk on fire") {
		t.Fatalf("store failure: %d %s", w.Code, w.Body.String())
	}
}
