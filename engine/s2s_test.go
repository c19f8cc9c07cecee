package engine_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// federated starts a.localhost and b.localhost with s2s listeners pointed at each other,
// alice on a and bob on b.
func federated(t testing.TB) (a, b *vireotest.Server) {
	t.Helper()
	a = vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true, S2SSecret: []byte("secret-a")})
	b = vireotest.Start(t, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true})
	vireotest.Federate(a, b)
	a.AddUser(t, "alice", "secret")
	b.AddUser(t, "bob", "secret")
	return a, b
}

func TestS2SChatBothWays(t *testing.T) {
	a, b := federated(t)
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")

	// The first stanza starts the outbound stream; those sent meanwhile wait in its queue
	// and arrive in order.
	alice.Send("<message to='bob@b.localhost' id='m1' type='chat'><body>hello bob</body></message>")
	for _, m := range []string{"q-one", "q-two", "q-three"} {
		alice.Send("<message xmlns='jabber:client' to='bob@b.localhost/pc' type='chat'><body>" + m + "</body></message>")
	}
	got := bob.Expect("hello bob")
	got += bob.Expect("</message>")
	if !strings.Contains(got, "from='alice@a.localhost/phone'") {
		t.Fatalf("bob got %q", got)
	}
	got = bob.Expect("q-three")
	if i, j := strings.Index(got, "q-one"), strings.Index(got, "q-two"); i < 0 || j < i || strings.Contains(got, "jabber:server") {
		t.Fatalf("queued during setup: %q", got)
	}
	bob.Send("<message to='alice@a.localhost/phone' id='m2' type='chat'><body>hi alice</body></message>")
	got = alice.Expect("hi alice")
	got += alice.Expect("</message>")
	if !strings.Contains(got, "from='bob@b.localhost/pc'") || strings.Contains(got, "jabber:server") {
		t.Fatalf("alice got %q", got)
	}
	// Several in a row over the established streams, in order.
	for _, m := range []string{"one", "two", "three"} {
		alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>" + m + "</body></message>")
	}
	got = bob.Expect("three")
	if i, j := strings.Index(got, "one"), strings.Index(got, "two"); i < 0 || j < i {
		t.Fatalf("order: %q", got)
	}
}

func TestS2SIQ(t *testing.T) {
	a, _ := federated(t)
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<iq type='get' id='d1' to='b.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	got := alice.Expect("</iq>")
	if !strings.Contains(got, "type='result'") || !strings.Contains(got, "id='d1'") || !strings.Contains(got, "from='b.localhost'") {
		t.Fatalf("disco#info across: %q", got)
	}
	// An IQ for a user b does not have comes back as an error, across both streams.
	alice.Send("<iq type='get' id='d2' to='nobody@b.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got = alice.Expect("</iq>"); !strings.Contains(got, "type='error'") || !strings.Contains(got, "id='d2'") {
		t.Fatalf("iq to a missing remote user: %q", got)
	}
}

func TestS2SBounce(t *testing.T) {
	a, b := federated(t)
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	// A domain nobody serves: remote-server-not-found at once.
	alice.Send("<message to='carol@c.localhost' id='u1' type='chat'><body>anyone?</body></message>")
	got := alice.Expect("</message>")
	if !strings.Contains(got, "type='error'") || !strings.Contains(got, "remote-server-not-found") || !strings.Contains(got, "id='u1'") {
		t.Fatalf("unknown domain: %q", got)
	}
	// A listed domain whose server is down: the queued stanza bounces when the dial fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	a.Engine.SetS2SHosts(map[string]string{"b.localhost": b.S2SAddr(), "down.localhost": dead})
	alice.Send("<message to='dave@down.localhost' id='u2' type='chat'><body>hello?</body></message>")
	got = alice.Expect("</message>")
	if !strings.Contains(got, "type='error'") || !strings.Contains(got, "remote-server-not-found") || !strings.Contains(got, "id='u2'") {
		t.Fatalf("server down: %q", got)
	}
}

// s2sOpen opens a raw s2s stream to b.localhost from domain from, over STARTTLS, and
// returns it with the features after TLS.
func s2sOpen(t testing.TB, b *vireotest.Server, from string) (*vireotest.RawConn, string) {
	t.Helper()
	hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='" + from + "' to='b.localhost' version='1.0'>"
	r := vireotest.DialAddr(t, b.S2SAddr())
	r.Send(hdr)
	r.Expect("</stream:features>")
	r.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	r.Expect("<proceed")
	r.StartTLS(&tls.Config{InsecureSkipVerify: true})
	r.Send(hdr)
	return r, r.Expect("</stream:features>")
}

// s2sLogin opens a raw s2s stream to b claiming a.localhost, with a key made from a's
// secret, so that b's check with a succeeds.
func s2sLogin(t testing.TB, b *vireotest.Server) *vireotest.RawConn {
	t.Helper()
	r, h := s2sOpen(t, b, "a.localhost")
	m := streamIDRe.FindStringSubmatch(h)
	if m == nil {
		t.Fatalf("no stream id in %q", h)
	}
	r.Send("<db:result from='a.localhost' to='b.localhost'>" + engine.DialbackKey([]byte("secret-a"), "b.localhost", "a.localhost", m[1]) + "</db:result>")
	if got := r.Expect("/>"); !strings.Contains(got, "type='valid'") {
		t.Fatalf("dialback: %q", got)
	}
	return r
}

func TestS2SInboundChecks(t *testing.T) {
	_, b := federated(t)
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")

	r := s2sLogin(t, b)
	r.Send("<message from='alice@a.localhost/x' to='bob@b.localhost/pc' type='chat'><body>raw ok</body></message>")
	bob.Expect("raw ok")
	r.Send("<message from='mallory@evil.localhost' to='bob@b.localhost' type='chat'><body>forged</body></message>")
	if got := r.ExpectClosed(); !strings.Contains(got, "<invalid-from") {
		t.Fatalf("forged from: %q", got)
	}
	bob.Never("forged")

	r = s2sLogin(t, b)
	r.Send("<message from='alice@a.localhost' to='someone@elsewhere.localhost' type='chat'><body>relay</body></message>")
	if got := r.ExpectClosed(); !strings.Contains(got, "<host-unknown") {
		t.Fatalf("non-local to: %q", got)
	}

	// A stream carries the pair it authenticated: a domain of b's it did not prove it
	// for (a service here) is as unknown as another server's.
	r = s2sLogin(t, b)
	r.Send("<presence from='alice@a.localhost/x' to='room@conference.b.localhost/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	if got := r.ExpectClosed(); !strings.Contains(got, "<host-unknown") {
		t.Fatalf("to a domain the stream was not authenticated for: %q", got)
	}

	// The peer's stream error ends the stream: ours closes, without an error in answer
	// (RFC 6120 §4.9.1.1).
	r = s2sLogin(t, b)
	r.Send("<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
	if got := r.ExpectClosed(); strings.Contains(got, "<stream:error") || !strings.HasSuffix(got, "</stream:stream>") {
		t.Fatalf("the peer's stream error answered with %q", got)
	}

	// A wrong key is refused.
	r = vireotest.DialAddr(t, b.S2SAddr())
	hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='a.localhost' to='b.localhost' version='1.0'>"
	r.Send(hdr)
	r.Expect("</stream:features>")
	r.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	r.Expect("<proceed")
	r.StartTLS(&tls.Config{InsecureSkipVerify: true})
	r.Send(hdr)
	r.Expect("</stream:features>")
	r.Send("<db:result from='a.localhost' to='b.localhost'>0123456789abcdef</db:result>")
	if got := r.ExpectClosed(); !strings.Contains(got, "type='invalid'") {
		t.Fatalf("bad key: %q", got)
	}
	// Stanzas before dialback are refused.
	r = vireotest.DialAddr(t, b.S2SAddr())
	r.Send(hdr)
	r.Expect("</stream:features>")
	r.Send("<message from='alice@a.localhost' to='bob@b.localhost'><body>early</body></message>")
	if got := r.ExpectClosed(); !strings.Contains(got, "<not-authorized") {
		t.Fatalf("before dialback: %q", got)
	}
}

func TestS2SRewriteNS(t *testing.T) {
	in := `<message xmlns='jabber:client' to='b@b.localhost'><body>xmlns='jabber:client'</body></message>`
	want := `<message xmlns='jabber:server' to='b@b.localhost'><body>xmlns='jabber:client'</body></message>`
	out := engine.RewriteXMLNS([]byte(in), "jabber:client", "jabber:server")
	if string(out) != want {
		t.Fatalf("to s2s: %s", out)
	}
	if back := engine.RewriteXMLNS(out, "jabber:server", "jabber:client"); string(back) != in {
		t.Fatalf("back: %s", back)
	}
}

// TestS2STimeout: a peer that accepts the connection and never answers; the queued stanza
// bounces with remote-server-timeout once the setup deadline passes.
func TestS2STimeout(t *testing.T) {
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true,
		S2SSetupTimeout: 300 * time.Millisecond})
	a.AddUser(t, "alice", "secret")
	a.Engine.SetS2SHosts(map[string]string{"mute.localhost": fakePeer(t, nil, nil)})
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<message to='x@mute.localhost' id='t1' type='chat'><body>hello?</body></message>")
	got := alice.Expect("</message>")
	if !strings.Contains(got, "type='error'") || !strings.Contains(got, "remote-server-timeout") || !strings.Contains(got, "id='t1'") {
		t.Fatalf("mute server: %q", got)
	}
}

// fakePeer listens on loopback (with TLS when tc is set) for a peer server that a test
// plays: serve runs for each connection, in a goroutine, and closes it; nil keeps the
// connection open and silent until the test ends. It returns the address.
func fakePeer(t *testing.T, tc *tls.Config, serve func(net.Conn)) string {
	t.Helper()
	var ln net.Listener
	var err error
	if tc != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tc)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if serve == nil {
				t.Cleanup(func() { c.Close() })
				continue
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

// externalPair starts a.localhost and b.localhost with certificates from one test CA that
// both trust for SASL EXTERNAL, federated; it returns the CA too and each server's log.
func externalPair(t *testing.T) (a, b *vireotest.Server, pki *testPKI, alog, blog *syncBuffer) {
	t.Helper()
	return externalPairWith(t, true) // a stream each way
}

// externalPairWith is externalPair with XEP-0288 bidirectional streams on or off.
func externalPairWith(t *testing.T, noBidi bool) (a, b *vireotest.Server, pki *testPKI, alog, blog *syncBuffer) {
	t.Helper()
	pki = newTestPKI(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pki.caPEM)
	start := func(domain string) (*vireotest.Server, *syncBuffer) {
		logs := new(syncBuffer)
		log := zerolog.New(logs).Level(zerolog.DebugLevel)
		crt, key := pki.issue(t, domain)
		return vireotest.Start(t, vireotest.Options{Domain: domain, AllowPlain: true, S2S: true, S2SCAs: pool,
			CertPEM: crt, KeyPEM: key, Logger: &log, S2SNoBidi: noBidi}), logs
	}
	a, alog = start("a.localhost")
	b, blog = start("b.localhost")
	vireotest.Federate(a, b)
	return a, b, pki, alog, blog
}

// s2sTLS opens a raw s2s stream to srv claiming from, up to the features after STARTTLS,
// presenting cert (if any) as the client certificate; it returns the stream and those
// features.
func s2sTLS(t *testing.T, srv *vireotest.Server, from string, cert *tls.Certificate) (*vireotest.RawConn, string) {
	t.Helper()
	hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='" +
		from + "' to='" + srv.Domain() + "' version='1.0'>"
	r := vireotest.DialAddr(t, srv.S2SAddr())
	r.Send(hdr)
	r.Expect("</stream:features>")
	r.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	r.Expect("<proceed")
	cfg := &tls.Config{InsecureSkipVerify: true}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	r.StartTLS(cfg)
	r.Send(hdr)
	return r, r.Expect("</stream:features>")
}

func TestS2SExternal(t *testing.T) {
	a, b, pki, alog, blog := externalPair(t)
	a.AddUser(t, "alice", "secret")
	b.AddUser(t, "bob", "secret")
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")

	// Server to server: each outbound stream authenticates with EXTERNAL, no dialback.
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>via external</body></message>")
	bob.Expect("via external")
	bob.Send("<message to='alice@a.localhost/phone' type='chat'><body>and back</body></message>")
	alice.Expect("and back")
	for _, l := range []string{alog.String(), blog.String()} {
		if !strings.Contains(l, "s2s SASL EXTERNAL succeeded") || !strings.Contains(l, "authenticated with SASL EXTERNAL") {
			t.Fatalf("no EXTERNAL:\n%s", l)
		}
	}

	pair := func(domain string) *tls.Certificate {
		crt, key := pki.issue(t, domain)
		c, err := tls.X509KeyPair(crt, key)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	// Raw: a certificate valid for the claimed domain gets EXTERNAL offered; an
	// authorization identity that is not that domain is refused, the right one accepted.
	cert := pair("c.localhost")
	r, feat := s2sTLS(t, b, "c.localhost", cert)
	if !strings.Contains(feat, "<mechanism>EXTERNAL</mechanism>") || !strings.Contains(feat, "urn:xmpp:features:dialback") {
		t.Fatalf("features with a valid certificate: %q", feat)
	}
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>" + base64.StdEncoding.EncodeToString([]byte("a.localhost")) + "</auth>")
	if got := r.Expect("</failure>"); !strings.Contains(got, "<invalid-authzid/>") {
		t.Fatalf("foreign authzid: %q", got)
	}
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
	r.Expect("<success")
	r.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='c.localhost' to='b.localhost' version='1.0'>")
	if got := r.Expect("<stream:features/>"); strings.Contains(got, "mechanism") {
		t.Fatalf("features after EXTERNAL: %q", got)
	}
	r.Send("<message from='carol@c.localhost/x' to='bob@b.localhost/pc' type='chat'><body>carol here</body></message>")
	bob.Expect("carol here")
	r.Send("<message from='mallory@a.localhost/x' to='bob@b.localhost/pc' type='chat'><body>forged</body></message>")
	if got := r.ExpectClosed(); !strings.Contains(got, "<invalid-from") {
		t.Fatalf("forged from after EXTERNAL: %q", got)
	}

	// Not offered: a certificate for another domain, no certificate, or one the CAs did
	// not issue; and an <auth/> then is refused without ending the stream.
	self, key, err := config.SelfSigned([]string{"c.localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := tls.X509KeyPair(self, key)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*tls.Certificate{"other domain": pair("d.localhost"), "none": nil, "untrusted": &untrusted} {
		r, feat := s2sTLS(t, b, "c.localhost", c)
		if strings.Contains(feat, "EXTERNAL") {
			t.Fatalf("%s: EXTERNAL offered: %q", name, feat)
		}
		r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
		if got := r.Expect("</failure>"); !strings.Contains(got, "invalid-mechanism") {
			t.Fatalf("%s: auth: %q", name, got)
		}
	}
	// Our own domain is never accepted from outside, even with its certificate.
	if _, feat := s2sTLS(t, b, "b.localhost", pair("b.localhost")); strings.Contains(feat, "EXTERNAL") {
		t.Fatalf("EXTERNAL offered for our own domain: %q", feat)
	}
}

// TestS2SPeerStreamError: a peer that answers our stream header with a stream error (as
// Prosody does with host-unknown for a domain it does not serve); the queued stanza
// bounces with remote-server-not-found and the log names the condition.
func TestS2SPeerStreamError(t *testing.T) {
	logs := new(syncBuffer)
	log := zerolog.New(logs)
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true, Logger: &log})
	a.AddUser(t, "alice", "secret")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1024)
		c.Read(buf)
		c.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' id='x1' from='nope.localhost' version='1.0'>" +
			"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>not here</text></stream:error></stream:stream>"))
		c.Read(buf)
	}()
	a.Engine.SetS2SHosts(map[string]string{"nope.localhost": ln.Addr().String()})
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<message to='x@nope.localhost' id='h1' type='chat'><body>hello?</body></message>")
	got := alice.Expect("</message>")
	if !strings.Contains(got, "type='error'") || !strings.Contains(got, "remote-server-not-found") || !strings.Contains(got, "id='h1'") {
		t.Fatalf("bounce: %q", got)
	}
	if l := logs.String(); !strings.Contains(l, "stream error host-unknown: not here") {
		t.Fatalf("log: %s", l)
	}
}

// TestS2SBurst: a burst pipelined in one write crosses an established federation stream,
// where the writer gathers what queued up into shared writes, complete and in order.
func TestS2SBurst(t *testing.T) {
	a, b := federated(t)
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>setup</body></message>")
	bob.Expect("<body>setup</body>")

	const n = 500 // under the per-domain queue bound (s2sQueueMax)
	var burst strings.Builder
	for i := range n {
		fmt.Fprintf(&burst, "<message to='bob@b.localhost/pc' type='chat'><body>b%d</body></message>", i)
	}
	alice.Send(burst.String())
	for i := range n {
		got, err := bob.ReadUntil(fmt.Sprintf("<body>b%d</body>", i), 20*time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if strings.Count(got, "<body>") != 1 {
			t.Fatalf("message %d arrived after a later one: %q", i, got)
		}
	}
}
