package engine_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestWebMount: a standard http.Handler mounted on the web listener gets the method, path,
// query, headers, form body and client address, and its status, headers (two cookies)
// and body come back; HEAD gets no body; a panic is a 500; other paths keep their routes.
func TestWebMount(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dash/panic" {
			panic("boom")
		}
		http.SetCookie(w, &http.Cookie{Name: "a", Value: "1", HttpOnly: true})
		http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
		w.Header().Set("X-Seen", r.Method+" "+r.URL.Path+" q="+r.URL.Query().Get("q")+" form="+r.PostFormValue("f")+
			" ua="+r.Header.Get("User-Agent")+" tls="+map[bool]string{true: "yes", false: "no"}[r.TLS != nil]+" ip="+strings.Split(r.RemoteAddr, ":")[0])
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "hello from the handler")
	})
	srv := vireotest.Start(t, vireotest.Options{Web: engine.Web{Mounts: []engine.Mount{{Prefix: "/dash/", Handler: h}}}})
	base := "http://" + srv.WebAddr()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}

	resp, err := hc.PostForm(base+"/dash/x?q=a%20b", url.Values{"f": {"v&w"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(body) != "hello from the handler" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Seen"); got != "POST /dash/x q=a b form=v&w ua=Go-http-client/1.1 tls=no ip=127.0.0.1" {
		t.Fatalf("handler saw %q", got)
	}
	u, _ := url.Parse(base + "/dash/")
	if cs := jar.Cookies(u); len(cs) != 2 {
		t.Fatalf("cookies = %v", cs)
	}

	resp, err = hc.Head(base + "/dash")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || len(body) != 0 || resp.ContentLength != int64(len("hello from the handler")) {
		t.Fatalf("HEAD: %d %q length %d", resp.StatusCode, body, resp.ContentLength)
	}

	resp, err = hc.Get(base + "/dash/panic")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("panic: %d", resp.StatusCode)
	}

	// TLS listener: the handler sees r.TLS (for Secure cookies).
	tc := &http.Client{Transport: &http.Transport{TLSClientConfig: srv.ClientTLS()}}
	resp, err = tc.Get("https://" + srv.WebTLSAddr() + "/dash/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Seen"); !strings.Contains(got, "tls=yes") {
		t.Fatalf("over TLS the handler saw %q", got)
	}

	resp, err = hc.Get(base + "/.well-known/host-meta")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Seen") != "" {
		t.Fatalf("host-meta: %d", resp.StatusCode)
	}
	if resp, err = hc.Get(base + "/dashboard"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("/dashboard (not under /dash/): %v %v", resp.StatusCode, err)
	}
}

// TestWebLoginAttempt: LoginAttempt shares the per-address budget of XMPP logins
// (AuthFailLimit a minute); a success gives its attempt back.
func TestWebLoginAttempt(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AuthFailLimit: 3, AllowPlain: true})
	for i := range 3 {
		if !srv.Engine.LoginAttempt("192.0.2.7") {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if srv.Engine.LoginAttempt("192.0.2.7") {
		t.Fatal("fourth attempt allowed")
	}
	if !srv.Engine.LoginAttempt("192.0.2.8") {
		t.Fatal("another address is limited too")
	}
	srv.Engine.LoginSucceeded("192.0.2.7")
	if !srv.Engine.LoginAttempt("192.0.2.7") {
		t.Fatal("a success did not give its attempt back")
	}
	// XMPP logins draw on the same budget: after three web attempts from 127.0.0.1,
	// a SASL exchange from there is refused.
	for range 3 {
		srv.Engine.LoginAttempt("127.0.0.1")
	}
	if got := legacyPlain(t, srv, "nobody", "x"); !strings.Contains(got, "<temporary-auth-failure/>") {
		t.Fatalf("XMPP login after the web used the budget: %s", got)
	}
}
