package engine_test

import (
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestS2SDialbackVerifyMute: the authoritative server a dialback is verified with
// (XEP-0220 §2.3) may be the claiming server's own and never answer. The verification
// gives up within the setup timeout: the claim is invalid, and neither the goroutine nor
// the socket it dialed stays behind, however often the peer tries.
func TestS2SDialbackVerifyMute(t *testing.T) {
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", S2S: true, S2SSetupTimeout: 400 * time.Millisecond})
	pki := newTestPKI(t)
	certPEM, keyPEM := pki.issue(t, "evil.localhost")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	evil := fakePeer(t, &tls.Config{Certificates: []tls.Certificate{cert}}, func(c net.Conn) {
		// The stream opens as any server's would; <db:verify/> is never answered.
		if _, err := c.Read(make([]byte, 4096)); err != nil {
			return
		}
		io.WriteString(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "+
			"xmlns:db='jabber:server:dialback' id='mute' from='evil.localhost' to='b.localhost' version='1.0'><stream:features/>")
		io.Copy(io.Discard, c)
	})
	b.Engine.SetS2SHosts(map[string]string{"evil.localhost": "tls://" + evil})
	claim := func() {
		t.Helper()
		r, _ := s2sOpen(t, b, "evil.localhost")
		start := time.Now()
		r.Send("<db:result from='evil.localhost' to='b.localhost'>0123456789abcdef</db:result>")
		if got := r.ExpectClosed(); !strings.Contains(got, "type='invalid'") {
			t.Fatalf("a claim the authoritative server never confirmed: %q", got)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the verification took %v", d)
		}
	}
	settle := func(limit int) int {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > limit && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		return runtime.NumGoroutine()
	}
	claim() // starts what stays anyway (the TLS handshake workers)
	before := settle(0)
	const claims = 6
	for range claims {
		claim()
	}
	// Each claim left a goroutine and a socket (two goroutines with the fake server's)
	// before the fix; now none.
	if n := settle(before + 2); n > before+2 {
		t.Fatalf("%d goroutines after %d claims, %d before", n, claims, before)
	}
}

// TestS2SMaxOutPeers: outbound streams are bounded (one per pair of domains); a stanza
// that would need one more is refused with resource-constraint at once, and the remotes
// already being reached are not affected.
func TestS2SMaxOutPeers(t *testing.T) {
	t.Cleanup(engine.SetMaxOutPeers(2))
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true, S2SSetupTimeout: 5 * time.Second})
	a.AddUser(t, "alice", "secret")
	mute := fakePeer(t, nil, nil) // accepts, never speaks: streams stay in setup
	a.Engine.SetS2SHosts(map[string]string{"d1.localhost": mute, "d2.localhost": mute, "d3.localhost": mute})
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	for _, d := range []string{"d1", "d2"} {
		alice.Send("<message to='x@" + d + ".localhost' id='" + d + "' type='chat'><body>hi</body></message>")
	}
	alice.Send("<message to='x@d3.localhost' id='d3' type='chat'><body>hi</body></message>")
	got := alice.Expect("</message>")
	if !strings.Contains(got, "id='d3'") || !strings.Contains(got, "resource-constraint") {
		t.Fatalf("the third remote: %q", got)
	}
	alice.Send("<message to='y@d1.localhost' id='d1b' type='chat'><body>again</body></message>")
	alice.Never("id='d1b'") // queued on d1's stream, which is still being set up
}

// TestAnswersNotAnswered: before login, an IQ result or error a client sends where the
// server expects a request (registration, an invitation's token) is dropped, not answered
// with bad-request (RFC 6120 §8.2.3); a request of a wrong type still gets bad-request.
func TestAnswersNotAnswered(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{Registration: true})
	r, _ := sasl2Open(t, srv)
	r.Send("<iq type='result' id='a1'><query xmlns='jabber:iq:register'/></iq>")
	r.Send("<iq type='error' id='a2'><preauth xmlns='urn:xmpp:pars:0' token='x'/></iq>")
	r.Send("<iq type='get' id='a3'><preauth xmlns='urn:xmpp:pars:0' token='x'/></iq>")
	got := r.Expect("id='a3'")
	if strings.Contains(got, "id='a1'") || strings.Contains(got, "id='a2'") {
		t.Fatalf("an answer was answered: %q", got)
	}
	if rest := r.Expect("</iq>"); !strings.Contains(got+rest, "<bad-request") {
		t.Fatalf("a get where a set belongs: %q", got+rest)
	}
}

// TestS2SDialbackVerifyBounded: a peer that claims a domain and hangs up, over and over,
// makes this server dial the claimed domain's server at most a few times at once (each
// verification lasts until the setup timeout): claims past the bound fail at once.
func TestS2SDialbackVerifyBounded(t *testing.T) {
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", S2S: true, S2SSetupTimeout: 5 * time.Second})
	var dials atomic.Int32
	mute := fakePeer(t, nil, func(c net.Conn) {
		dials.Add(1)
		io.Copy(io.Discard, c) // never answers
	})
	b.Engine.SetS2SHosts(map[string]string{"evil.localhost": mute})
	for range 12 {
		r, _ := s2sOpen(t, b, "evil.localhost")
		r.Send("<db:result from='evil.localhost' to='b.localhost'>0123456789abcdef</db:result>")
		r.Conn().Close()
	}
	time.Sleep(time.Second)
	if n := dials.Load(); n > 4 {
		t.Fatalf("%d verifications dialed at once for one claimed domain, want at most 4", n)
	}
}

// TestS2SInboundPerPair: one domain pair keeps at most four authenticated inbound
// streams; a fifth closes the oldest, so a peer cannot take the server's connections.
func TestS2SInboundPerPair(t *testing.T) {
	_, b := federated(t)
	var rs []*vireotest.RawConn
	for range 5 {
		rs = append(rs, s2sLogin(t, b))
	}
	if got := rs[0].ExpectClosed(); !strings.HasSuffix(got, "</stream:stream>") {
		t.Fatalf("the oldest stream: %q", got)
	}
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	for i, r := range rs[1:] {
		r.Send("<message from='alice@a.localhost/x' to='bob@b.localhost/pc' type='chat'><body>on " + string(rune('1'+i)) + "</body></message>")
		bob.Expect("on " + string(rune('1'+i)))
	}
}
