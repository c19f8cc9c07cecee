package engine_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationExtDisco: XEP-0215 from a logged-in client's side, configured as in
// vireo.toml. The server advertises the feature, lists its STUN and TURN services (all of
// them, or one type), and hands out TURN credentials that coturn's use-auth-secret would
// accept: a username that carries its expiry and a password that is the HMAC-SHA1 of it
// under the shared secret, checked here independently of the module's code.
func TestIntegrationExtDisco(t *testing.T) {
	const secret = "coturn static-auth-secret"
	cfg, err := config.Parse([]byte(`domains = ["localhost"]
[modules.extdisco]
ttl = "1h"
[[modules.extdisco.services]]
type = "stun"
host = "stun.localhost"
port = 3478
transport = "udp"
[[modules.extdisco.services]]
type = "turn"
host = "turn.localhost"
port = 3478
transport = "udp"
secret = "`+secret+`"
[[modules.extdisco.services]]
type = "turns"
host = "turn.localhost"
port = 5349
transport = "tcp"
secret = "`+secret+`"
`), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, ModuleConfig: cfg.ModuleConfig})
	srv.AddUser(t, "alice", "secret")
	a := srv.LoginPlain(t, "alice", "secret", "phone")

	a.Send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got := iqAnswer(a, "d1"); !strings.Contains(got, "urn:xmpp:extdisco:2") {
		t.Fatalf("extdisco:2 not advertised: %s", got)
	}

	a.Send("<iq type='get' id='s1' to='localhost'><services xmlns='urn:xmpp:extdisco:2'/></iq>")
	all := iqAnswer(a, "s1")
	if n := strings.Count(all, "<service "); n != 3 {
		t.Fatalf("want the 3 services, got %d: %s", n, all)
	}
	start := time.Now()
	svc := regexp.MustCompile(`<service [^>]*type=['"]turn['"][^>]*/>`).FindString(all)
	attr := func(el, name string) string {
		m := regexp.MustCompile(`\b` + name + `=['"]([^'"]*)['"]`).FindStringSubmatch(el)
		if m == nil {
			t.Fatalf("no %s in %s", name, el)
		}
		return m[1]
	}
	user, pass := attr(svc, "username"), attr(svc, "password")
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(user))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); pass != want {
		t.Fatalf("password %q is not HMAC-SHA1(secret, %q) = %q", pass, user, want)
	}
	expUnix, who, _ := strings.Cut(user, ":")
	exp, err := strconv.ParseInt(expUnix, 10, 64)
	if err != nil || who != "alice@localhost" {
		t.Fatalf("username %q: want <expiry>:alice@localhost", user)
	}
	if d := time.Unix(exp, 0).Sub(start); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("credentials valid for %v, want the configured hour", d)
	}
	if e, err := time.Parse(time.RFC3339, attr(svc, "expires")); err != nil || e.Unix() != exp {
		t.Fatalf("expires=%q does not match the username's %d", attr(svc, "expires"), exp)
	}
	if attr(svc, "restricted") != "1" || attr(svc, "host") != "turn.localhost" || attr(svc, "port") != "3478" || attr(svc, "transport") != "udp" {
		t.Fatalf("turn service attributes: %s", svc)
	}
	stun := regexp.MustCompile(`<service [^>]*type=['"]stun['"][^>]*/>`).FindString(all)
	if stun == "" || strings.Contains(stun, "password") {
		t.Fatalf("the STUN service needs no credentials: %s", all)
	}

	// One type only (§3.2).
	a.Send("<iq type='get' id='s2'><services xmlns='urn:xmpp:extdisco:2' type='turns'/></iq>")
	if got := iqAnswer(a, "s2"); strings.Count(got, "<service ") != 1 || !strings.Contains(got, "port='5349'") {
		t.Fatalf("type='turns' query: %s", got)
	}
	// Credentials for one service (§3.3), and for one that is not configured.
	a.Send("<iq type='get' id='c1' to='localhost'><credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.localhost' type='turn'/></credentials></iq>")
	if got := iqAnswer(a, "c1"); !strings.Contains(got, "<credentials") || strings.Count(got, "<service ") != 1 || !strings.Contains(got, "password=") {
		t.Fatalf("credentials: %s", got)
	}
	a.Send("<iq type='get' id='c2'><credentials xmlns='urn:xmpp:extdisco:2'><service host='elsewhere.example' type='turn'/></credentials></iq>")
	if got := iqAnswer(a, "c2"); !strings.Contains(got, "item-not-found") {
		t.Fatalf("unknown service: %s", got)
	}
	a.Send("<iq type='get' id='c3'><credentials xmlns='urn:xmpp:extdisco:2'/></iq>")
	if got := iqAnswer(a, "c3"); !strings.Contains(got, "bad-request") {
		t.Fatalf("credentials without a service: %s", got)
	}
}

// answer reads the whole answer to the IQ with id.
func iqAnswer(r *vireotest.RawConn, id string) string {
	return r.Expect("id='"+id+"'") + r.Expect("</iq>")
}

// TestIntegrationExtDiscoOff: with no services configured the server neither advertises
// XEP-0215 nor answers it as if it had nothing.
func TestIntegrationExtDiscoOff(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	a := srv.LoginPlain(t, "alice", "secret", "phone")
	a.Send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got := iqAnswer(a, "d1"); strings.Contains(got, "extdisco") {
		t.Fatalf("extdisco advertised without services: %s", got)
	}
	a.Send("<iq type='get' id='s1'><services xmlns='urn:xmpp:extdisco:2'/></iq>")
	if got := iqAnswer(a, "s1"); !strings.Contains(got, "service-unavailable") {
		t.Fatalf("want service-unavailable: %s", got)
	}
}
