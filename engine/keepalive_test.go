package engine_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

var pingRe = regexp.MustCompile(`<iq type='get' id='(vireo-ping-[^']+)'><ping xmlns='urn:xmpp:ping'/></iq>`)

// TestIntegrationKeepalive: XEP-0199 pings from the server to silent clients over direct
// TLS, with ping_after long enough (12 s) that the sweep first stops looking at the
// silent connections every second (tick.go: quiet after two sweeps, looked at every
// eighth) and must bring them back in time. A client that answers stays; one that does
// not is closed with connection-timeout after ping_timeout. Neither is pinged early.
func TestIntegrationKeepalive(t *testing.T) {
	const pingAfter = 12 * time.Second
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, PingAfter: pingAfter, PingTimeout: 2 * time.Second})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	alice := srv.LoginPlain(t, "alice", "secret", "a")
	bob := srv.LoginPlain(t, "bob", "secret", "b")
	silentSince := time.Now() // the bind answers were the last words of either

	// Alice answers. The ping is read with a wide margin: the sweep runs once a second
	// and a busy test machine delays it; what must not happen is a ping before the
	// client has been silent for ping_after.
	got, err := alice.ReadUntil("</iq>", pingAfter+10*time.Second)
	if err != nil {
		t.Fatalf("no ping to a silent client: %v; got %q", err, got)
	}
	if early := time.Since(silentSince); early < pingAfter-time.Second {
		t.Fatalf("pinged after %v of silence, want at least %v", early, pingAfter)
	}
	m := pingRe.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("not a ping: %q", got)
	}
	alice.Send("<iq type='result' id='" + m[1] + "'/>")

	// Bob does not answer.
	got, err = bob.ReadUntil("</iq>", 10*time.Second)
	if err != nil || !pingRe.MatchString(got) {
		t.Fatalf("bob was not pinged: %v; got %q", err, got)
	}
	if got := bob.ExpectClosed(); !strings.Contains(got, "<connection-timeout") {
		t.Fatalf("unanswered ping: closed without connection-timeout: %q", got)
	}

	// Alice's answer kept her session: it still routes.
	alice.Send("<message to='alice@localhost/a' id='m1'><body>still here</body></message>")
	alice.Expect("still here")
	_, _, body := scrape(t, srv.WebAddr(), "127.0.0.1")
	if v := metricValue(t, body, `vireo_connections_timed_out_total{kind="ping"}`); v != 1 {
		t.Fatalf("ping timeouts = %v, want 1 (bob's)", v)
	}
}
