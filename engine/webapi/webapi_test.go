package webapi

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// backend is a stopped server's: the real store, no sessions.
type backend struct{ st store.Store }

func (b backend) Store() store.Store       { return b.st }
func (backend) Domains() []string          { return []string{"example.org"} }
func (backend) CloseUser(jid.JID)          {}
func (backend) Reload() error              { return errors.New("not running") }
func (backend) Stats() map[string]any      { return nil }
func (backend) Modules() []string          { return nil }
func (backend) DataDir() string            { return "" }
func (backend) Version() string            { return "test" }
func (backend) WebURL(string) (url string) { return "" }

const token = "0123456789abcdef0123456789abcdef"

// TestWho: the address, transport and token checks, with requests as the engine hands
// them over (RemoteAddr the client it trusts, TLS set when the request came over TLS).
func TestWho(t *testing.T) {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := backend{st}
	lan := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		name   string
		allow  []netip.Prefix
		remote string
		tls    bool
		auth   string
		code   int
	}{
		{"loopback", nil, "127.0.0.1:0", false, "Bearer " + token, 200},
		{"loopback v6", nil, "[::1]:0", false, "Bearer " + token, 200},
		{"mapped loopback", nil, "[::ffff:127.0.0.1]:0", false, "Bearer " + token, 200},
		{"lan by default", nil, "10.1.2.3:0", true, "Bearer " + token, 403},
		{"lan allowed, clear", lan, "10.1.2.3:0", false, "Bearer " + token, 403},
		{"lan allowed, tls", lan, "10.1.2.3:0", true, "Bearer " + token, 200},
		{"loopback not in allow", lan, "127.0.0.1:0", false, "Bearer " + token, 403},
		{"other network", lan, "192.0.2.1:0", true, "Bearer " + token, 403},
		{"no token", nil, "127.0.0.1:0", false, "", 401},
		{"basic", nil, "127.0.0.1:0", false, "Basic " + token, 401},
		{"prefix of the token", nil, "127.0.0.1:0", false, "Bearer " + token[:30], 401},
		{"garbage address", nil, "nowhere", false, "Bearer " + token, 403},
	} {
		h := New(b, Config{Tokens: []string{"another-token-of-24-chars!!", token}, Allow: c.allow}, zerolog.Nop())
		r := httptest.NewRequest("POST", "/api/v1/users", strings.NewReader(`{"domain": "example.org"}`))
		r.RemoteAddr = c.remote
		if c.tls {
			r.TLS = &tls.ConnectionState{HandshakeComplete: true}
		}
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var resp admin.Response
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Errorf("%s: not JSON: %q", c.name, w.Body)
		}
		if w.Code != c.code {
			t.Errorf("%s: %d %q, want %d", c.name, w.Code, resp.Error, c.code)
		}
	}
}

// TestOps: what is offered, and what a stopped server answers.
func TestOps(t *testing.T) {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := New(backend{st}, Config{Tokens: []string{token}}, zerolog.Nop())
	do := func(path, body string) (int, admin.Response) {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:0"
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var resp admin.Response
		json.Unmarshal(w.Body.Bytes(), &resp)
		return w.Code, resp
	}
	if code, r := do("/api/v1/adduser", `{"jid": "ann@example.org", "password": "pw"}`); code != 200 || r.Error != "" {
		t.Fatalf("adduser: %d %+v", code, r)
	}
	if code, r := do("/api/v1/users", ""); code != 200 || len(r.Users) != 1 || r.Users[0] != "ann@example.org" {
		t.Fatalf("users with no body: %d %+v", code, r)
	}
	for _, c := range []struct {
		path, body string
		code       int
	}{
		{"/api/v1/adduser", `{"jid": "ann@example.org", "password": "pw"}`, 400}, // exists
		{"/api/v1/message", `{"from": "example.org", "to": "ann@example.org", "body": "x"}`, 400},
		{"/api/v1/bulkadd", `{}`, 404},
		{"/api/v1/import", `{}`, 404},
		{"/api/v2/users", `{}`, 404},
		{"/api/users", `{}`, 404},
		{"/api/v1/users", `[1]`, 400},
		{"/api/v1/users", strings.Repeat(" ", MaxBody+1), 413},
	} {
		if code, r := do(c.path, c.body); code != c.code {
			t.Errorf("%s %.40q: %d %q, want %d", c.path, c.body, code, r.Error, c.code)
		}
	}
	if _, r := do("/api/v1/message", `{"from": "example.org", "to": "ann@example.org", "body": "x"}`); !strings.Contains(r.Error, "running server") {
		t.Errorf("message on a stopped server: %q", r.Error)
	}
}

var _ admin.Backend = backend{}

// FuzzAPI: any path and body from a caller with the token gets a JSON answer with a
// status, never a panic, and an operation the API does not offer never runs.
func FuzzAPI(f *testing.F) {
	st, err := pebblestore.Open(f.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	h := New(backend{st}, Config{Tokens: []string{token}}, zerolog.Nop())
	f.Add("/api/v1/adduser", `{"jid": "ann@example.org", "password": "pw"}`)
	f.Add("/api/v1/users", `{"domain": "example.org"}`)
	f.Add("/api/v1/message", `{"from": "example.org", "to": "x@y", "body": "\u0000"}`)
	f.Add("/api/v1/backup", `{"path": "/tmp"}`)
	f.Add("/api/v1/inactive", `{"days": -1}`)
	f.Add("/api/v1/invite", `{"action": "create", "jid": "example.org", "ttl": -5}`)
	f.Add("/api/v1/users", `{"jid": 5}`)
	f.Fuzz(func(t *testing.T, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " ?#%") {
			return // not a request line the engine would hand over
		}
		if _, err := url.ParseRequestURI(path); err != nil {
			return
		}
		r := httptest.NewRequest("POST", "http://localhost"+path, strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:0"
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var resp admin.Response
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%s %q: not JSON: %q", path, body, w.Body)
		}
		op, _ := strings.CutPrefix(path, Prefix+"v1/")
		if w.Code == 200 && !offered(op) {
			t.Fatalf("%s ran", path)
		}
	})
}
