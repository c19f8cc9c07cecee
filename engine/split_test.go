package engine_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmpp"
	mjid "mellium.im/xmpp/jid"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/link"
	"github.com/vireo-im/vireo/engine/vireotest"
)

var linkSecret = []byte("a link secret of more than 16 bytes")

// splitPair starts a core with o and a link listener, and an edge linked to it. Accounts
// added to the core after it returns are usable through the edge.
func splitPair(t *testing.T, o vireotest.Options) (*vireotest.Server, *vireotest.Edge) {
	t.Helper()
	o.LinkSecret = linkSecret
	core := vireotest.Start(t, o)
	return core, vireotest.StartEdge(t, core, linkSecret)
}

// TestSplitRelay runs the split deployment: clients connect to an edge, which relays
// their streams over a TLS link to the core. Direct TLS and STARTTLS both end at the
// edge; the core authenticates, binds and routes.
func TestSplitRelay(t *testing.T) {
	core, edge := splitPair(t, vireotest.Options{AllowPlain: true})
	core.AddUser(t, "alice", "pw-alice")
	core.AddUser(t, "bob", "pw-bob")

	// alice: direct TLS.
	a := edge.AuthPlain(t, "alice", "pw-alice")
	a.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
	a.Expect("alice@localhost/r")

	// bob: STARTTLS on the plain listener.
	b := edge.Dial(t)
	b.Send(core.Header())
	f := b.Expect("</stream:features>")
	if !strings.Contains(f, "<starttls") {
		t.Fatalf("no STARTTLS offered through the edge: %q", f)
	}
	b.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	b.Expect("<proceed")
	b.StartTLS(core.ClientTLS())
	b.Send(core.Header())
	f = b.Expect("</stream:features>")
	if !strings.Contains(f, "SCRAM-SHA-256-PLUS") {
		t.Fatalf("no channel binding offered after STARTTLS at the edge: %q", f)
	}
	b.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGJvYgBwdy1ib2I=</auth>")
	b.Expect("<success")
	b.Send(core.Header())
	b.Expect("</stream:features>")
	b.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
	b.Expect("bob@localhost/r")

	a.Send("<message to='bob@localhost/r' id='m1' type='chat'><body>hello through the edge</body></message>")
	b.Expect("hello through the edge")
	b.Send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	b.Expect("id='p1'")

	// A wrong password is refused by the core, through the edge.
	w := edge.DialTLS(t)
	w.Send(core.Header())
	w.Expect("</stream:features>")
	w.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGJvYgB3cm9uZw==</auth>")
	w.Expect("not-authorized")

	// Malformed XML gets the core's stream error and the edge closes the socket.
	m := edge.Dial(t)
	m.Send(core.Header() + "<message><body></message>")
	if got := m.ExpectClosed(); !strings.Contains(got, "not-well-formed") {
		t.Fatalf("malformed XML through the edge: %q", got)
	}

	b.Send("</stream:stream>")
	b.ExpectClosed()
}

// TestSplitMellium logs in two mellium.im/xmpp clients through an edge, with SCRAM and
// channel binding to the TLS the edge terminated (STARTTLS and direct TLS), and has them
// chat.
func TestSplitMellium(t *testing.T) {
	core, edge := splitPair(t, vireotest.Options{})
	core.AddUser(t, "alice", "alice secret")
	core.AddUser(t, "bob", "bob secret")

	ctx := vireotest.Context(t, 10*time.Second)
	conn, err := net.Dial("tcp", edge.C2SAddr())
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmpp.NewClientSession(ctx, mjid.MustParse("alice@localhost/laptop"), conn,
		xmpp.StartTLS(core.ClientTLS()), xmpp.SASL("", "alice secret", msasl.ScramSha256Plus), xmpp.BindResource())
	if err != nil {
		t.Fatalf("alice over STARTTLS at the edge with SCRAM-SHA-256-PLUS: %v", err)
	}
	t.Cleanup(func() { s.Close(); conn.Close() })
	alice := &client{s: s}

	cfg := core.ClientTLS()
	cfg.MinVersion = tls.VersionTLS13
	tc, err := tls.Dial("tcp", edge.TLSAddr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	origin := mjid.MustParse("bob@localhost/phone")
	bs, err := xmpp.NewSession(ctx, origin.Domain(), origin, tc, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{xmpp.SASL("", "bob secret", msasl.ScramSha1Plus), xmpp.BindResource()}}
	}))
	if err != nil {
		t.Fatalf("bob over direct TLS at the edge with SCRAM-SHA-1-PLUS: %v", err)
	}
	t.Cleanup(func() { bs.Close(); tc.Close() })
	bob := &client{s: bs}
	alice.serve(t)
	bob.serve(t)
	aj, bj := s.LocalAddr().String(), bs.LocalAddr().String()
	alice.send(t, "<message to='"+bj+"' type='chat' id='m1'><body>hi bob</body></message>")
	bob.waitFor(t, "hi bob", `from="`+aj+`"`)
	bob.send(t, "<message to='"+aj+"' type='chat' id='m2'><body>hello alice</body></message>")
	alice.waitFor(t, "hello alice", `from="`+bj+`"`)
}

// TestSplitEdgeLost: when an edge goes away its clients' sessions detach at the core as
// if their sockets had dropped. A client with stream management resumes through another
// edge and gets every message sent meanwhile, once.
func TestSplitEdgeLost(t *testing.T) {
	core, edge := splitPair(t, vireotest.Options{AllowPlain: true})
	core.AddUser(t, "alice", "pw-alice")
	core.AddUser(t, "bob", "pw-bob")

	a := edge.AuthPlain(t, "alice", "pw-alice")
	a.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>")
	a.Expect("</iq>")
	a.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	en := a.Expect("/>")
	i := strings.Index(en, "id='")
	if i < 0 {
		t.Fatalf("no resumption id: %q", en)
	}
	id := en[i+4:]
	id = id[:strings.IndexByte(id, '\'')]

	// bob is connected to the core directly: the two deployments mix.
	b := core.LoginPlain(t, "bob", "pw-bob", "desk")
	b.Send("<message to='alice@localhost/phone' id='m1' type='chat'><body>before</body></message>")
	a.Expect("before")

	edge.Stop()
	a.ExpectClosed()
	for n := 2; n <= 4; n++ {
		b.Send(fmt.Sprintf("<message to='alice@localhost/phone' id='m%d' type='chat'><body>during %d</body></message>", n, n))
	}
	b.Never("<error") // queued for the detached session, not bounced

	edge2 := vireotest.StartEdge(t, core, linkSecret)
	a2 := edge2.AuthPlain(t, "alice", "pw-alice")
	a2.Send("<resume xmlns='urn:xmpp:sm:3' h='1' previd='" + id + "'/>")
	a2.Expect("<resumed")
	got := a2.Expect("during 4</body>")
	for n := 2; n <= 4; n++ {
		if c := strings.Count(got, fmt.Sprintf("during %d</body>", n)); c != 1 {
			t.Fatalf("message %d arrived %d times after the resume: %q", n, c, got)
		}
	}
	if strings.Contains(got, "before") {
		t.Fatalf("an acknowledged message came again: %q", got)
	}
}

// TestSplitWeb: the edge's web listeners relay HTTP to the core, which serves WebSocket
// (RFC 7395) and BOSH there as on its own listeners.
func TestSplitWeb(t *testing.T) {
	// Loopback is trusted, as for a TLS-terminating proxy: PLAIN is offered over ws://.
	core := vireotest.Start(t, vireotest.Options{LinkSecret: linkSecret, AllowPlain: true,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	core.AddUser(t, "alice", "pw-alice")
	edge := vireotest.StartEdge(t, core, linkSecret)

	w := wsOpen(t, edge.WebAddr())
	w.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")
	w.expect("</stream:features>")
	w.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3LWFsaWNl</auth>")
	w.expect("<success")
	w.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")
	w.expect("</stream:features>")
	w.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>")
	w.expect("alice@localhost/web")

	b := core.LoginPlain(t, "alice", "pw-alice", "desk")
	b.Send("<message to='alice@localhost/web' id='m1' type='chat'><body>to the browser</body></message>")
	w.expect("to the browser")

	res, err := http.Get("http://" + core.WebAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "\nvireo_edge_links 1\n") || !strings.Contains(string(body), "\nvireo_edge_channels 1\n") {
		t.Fatalf("the core's metrics do not count the edge and its WebSocket client:\n%s", body)
	}

	code, _, resp := boshPost(t, "http://"+edge.WebAddr()+"/http-bind", "<body "+boshNS+
		" rid='1000' to='localhost' hold='1' wait='5' ver='1.11' xmpp:version='1.0'/>")
	if code != 200 || bodyAttrs(resp)["sid"] == "" {
		t.Fatalf("BOSH through the edge: %d %s", code, resp)
	}
}

// TestIntegrationStanzaJSEdge: StanzaJS over secure WebSocket to an edge.
func TestIntegrationStanzaJSEdge(t *testing.T) {
	runStanzaJSOn(t, vireotest.Options{AllowPlain: true, LinkSecret: linkSecret}, func(srv *vireotest.Server) string {
		e := vireotest.StartEdge(t, srv, linkSecret)
		_, port, _ := strings.Cut(e.WebTLSAddr(), ":")
		return "wss://localhost:" + port + "/xmpp-websocket"
	})
}

// TestSplitWrongSecret: an edge that does not know the link secret is refused by the core,
// and refuses its clients (closes their sockets) rather than hold them.
func TestSplitWrongSecret(t *testing.T) {
	core := vireotest.Start(t, vireotest.Options{LinkSecret: linkSecret})
	edge := vireotest.StartEdge(t, core, []byte("not the secret the core has"))
	r := edge.Dial(t)
	r.Send(core.Header())
	if got := r.ExpectClosed(); got != "" {
		t.Fatalf("an edge without a link answered: %q", got)
	}
	if n := core.Engine.Stats().Open; n != 0 {
		t.Fatalf("%d streams open at the core", n)
	}
}

// splitFederation federates a with b, which a reaches through a new edge of b's (b was
// started with linkSecret), and logs in alice@a (resource phone) and bob@b (pc).
func splitFederation(t *testing.T, a, b *vireotest.Server) (*vireotest.Edge, *vireotest.RawConn, *vireotest.RawConn) {
	t.Helper()
	vireotest.Federate(a, b)
	edge := vireotest.StartEdge(t, b, linkSecret)
	a.Engine.SetS2SHosts(map[string]string{"b.localhost": edge.S2SAddr()}) // a reaches b through b's edge
	a.AddUser(t, "alice", "secret")
	b.AddUser(t, "bob", "secret")
	return edge, a.LoginPlain(t, "alice", "secret", "phone"), b.LoginPlain(t, "bob", "secret", "pc")
}

// TestSplitS2S: a remote server's stream comes in through the edge and is authenticated
// (dialback) and served by the core; the core's own outbound stream answers.
func TestSplitS2S(t *testing.T) {
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true, S2SSecret: []byte("secret-a")})
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true, LinkSecret: linkSecret})
	_, alice, bob := splitFederation(t, a, b)
	alice.Send("<message to='bob@b.localhost/pc' id='m1' type='chat'><body>over the edge</body></message>")
	if got := bob.Expect("</message>"); !strings.Contains(got, "over the edge") || !strings.Contains(got, "from='alice@a.localhost/phone'") {
		t.Fatalf("bob got %q", got)
	}
	bob.Send("<message to='alice@a.localhost/phone' id='m2' type='chat'><body>and back</body></message>")
	alice.Expect("and back")
	if n := b.Engine.Stats().S2SIn; n != 1 {
		t.Fatalf("b's core counts %d inbound s2s streams, want the one through its edge", n)
	}
	in := waitS2S(t, b, 5*time.Second, "inbound listed", func(c []engine.S2SConn) bool { _, ok := findS2S(c, "a.localhost", "in"); return ok })
	if c, _ := findS2S(in, "a.localhost", "in"); c.TLS == "" || c.DirectTLS || c.Via != t.Name() {
		t.Fatalf("the inbound stream through the edge is listed as %+v, want the STARTTLS it did at the edge", c)
	}
}

// TestSplitS2SOutbound: a core that federates through its edges (Link.S2S) has an edge
// open its outbound connection; TLS and dialback run from the core to the peer through
// it, and the peer's dialback check comes back in through the edge. A peer the edge
// cannot reach gets the sender an error, and with the edge gone the stream ends and the
// next edge carries the next one.
func TestSplitS2SOutbound(t *testing.T) {
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true, S2SSecret: []byte("secret-a")})
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true, LinkSecret: linkSecret, LinkS2S: true,
		S2SSetupTimeout: 5 * time.Second})
	edge, alice, bob := splitFederation(t, a, b)

	bob.Send("<message to='alice@a.localhost/phone' id='m1' type='chat'><body>out through the edge</body></message>")
	if got := alice.Expect("</message>"); !strings.Contains(got, "out through the edge") || !strings.Contains(got, "from='bob@b.localhost/pc'") {
		t.Fatalf("alice got %q", got)
	}
	out := waitS2S(t, b, 5*time.Second, "outbound listed", func(c []engine.S2SConn) bool { _, ok := findS2S(c, "a.localhost", "out"); return ok })
	if c, _ := findS2S(out, "a.localhost", "out"); c.Via != t.Name() || c.TLS != "1.3" || c.Auth != "dialback" {
		t.Fatalf("b's outbound stream: %+v, want TLS 1.3 and dialback through edge %q", c, t.Name())
	}
	alice.Send("<message to='bob@b.localhost/pc' id='m2' type='chat'><body>and back in</body></message>")
	bob.Expect("and back in")
	rec := httptest.NewRecorder()
	edge.Engine.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if m := rec.Body.String(); !strings.Contains(m, "\nvireo_edge_core_connections 1\n") {
		t.Fatalf("the edge does not count the connection it holds for the core:\n%s", m)
	}

	// A peer the edge cannot reach: the sender gets an error, not silence.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	b.Engine.SetS2SHosts(map[string]string{"a.localhost": a.S2SAddr(), "c.localhost": deadAddr})
	bob.Send("<message to='carol@c.localhost' id='m3' type='chat'><body>nobody there</body></message>")
	if got := bob.Expect("</error>"); !strings.Contains(got, "id='m3'") || !strings.Contains(got, "remote-server-not-found") {
		t.Fatalf("a message to an unreachable peer: %q", got)
	}

	// The edge goes away: the stream it held ends; a second edge carries the next one.
	edge.Stop()
	waitS2S(t, b, 10*time.Second, "outbound gone with its edge", func(c []engine.S2SConn) bool { _, ok := findS2S(c, "a.localhost", "out"); return !ok })
	edge2 := vireotest.StartEdge(t, b, linkSecret)
	a.Engine.SetS2SHosts(map[string]string{"b.localhost": edge2.S2SAddr()})
	bob.Send("<message to='alice@a.localhost/phone' id='m4' type='chat'><body>through the second edge</body></message>")
	alice.Expect("through the second edge")
}

// TestSplitConnectRelay: a connection an edge holds for the core carries bytes both ways
// intact and in order, across many frames; a peer that stops reading loses its
// connection at the edge's bound instead of growing the edge's memory, and the core's
// reader sees the end.
func TestSplitConnectRelay(t *testing.T) {
	core, edge := splitPair(t, vireotest.Options{})
	ctx := vireotest.Context(t, 20*time.Second)

	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	nc, err := engine.ConnectThroughEdge(ctx, core.Engine, echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3<<20)
	for i := range want {
		want[i] = byte(i*7 + i>>11)
	}
	go func() {
		for p := want; len(p) > 0; p = p[min(len(p), 100_000):] {
			nc.Write(p[:min(len(p), 100_000)])
		}
	}()
	nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(nc, got); err != nil {
		t.Fatalf("echo through the edge: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the echo through the edge differs from what was sent")
	}
	nc.Close()

	// A peer that accepts and never reads.
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := sink.Accept()
		if err == nil {
			held <- c
		}
	}()
	nc, err = engine.ConnectThroughEdge(ctx, core.Engine, sink.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		select {
		case c := <-held:
			c.Close()
		default:
		}
	}()
	chunk := make([]byte, 64<<10)
	for range 32 << 20 / len(chunk) {
		if _, err := nc.Write(chunk); err != nil {
			break
		}
	}
	nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a peer that does not read: the core's read ends with %v, want EOF from the edge's close", err)
	}
	scrape := func() string {
		rec := httptest.NewRecorder()
		edge.Engine.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(scrape(), "\nvireo_edge_core_connections 0\n"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the edge still counts the connection:\n%s", scrape())
		}
	}
}

// TestSplitS2SOutboundNoEdge: a core that federates through its edges and has none
// linked waits for one for the stream's setup time, then bounces the message.
func TestSplitS2SOutboundNoEdge(t *testing.T) {
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true, LinkSecret: linkSecret, LinkS2S: true,
		S2SSetupTimeout: time.Second})
	b.Engine.SetS2SHosts(map[string]string{"a.localhost": "127.0.0.1:1"})
	b.AddUser(t, "bob", "secret")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<message to='alice@a.localhost' id='m1' type='chat'><body>no edge</body></message>")
	if got := bob.Expect("</error>"); !strings.Contains(got, "id='m1'") || !strings.Contains(got, "type='error'") {
		t.Fatalf("a message with no edge to leave by: %q", got)
	}
}

// TestSplitS2SExternal: the certificate a remote server presents to the edge reaches the
// core, which lets it authenticate with SASL EXTERNAL (XEP-0178).
func TestSplitS2SExternal(t *testing.T) {
	pki := newTestPKI(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pki.caPEM)
	start := func(domain string, secret []byte) *vireotest.Server {
		crt, key := pki.issue(t, domain)
		return vireotest.Start(t, vireotest.Options{Domain: domain, AllowPlain: true, S2S: true, S2SCAs: pool,
			S2SRequireValidCerts: true, CertPEM: crt, KeyPEM: key, LinkSecret: secret})
	}
	a, b := start("a.localhost", nil), start("b.localhost", linkSecret)
	_, alice, bob := splitFederation(t, a, b)
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>valid chain via the edge</body></message>")
	bob.Expect("valid chain via the edge")
	in := waitS2S(t, b, 5*time.Second, "inbound listed", func(c []engine.S2SConn) bool { _, ok := findS2S(c, "a.localhost", "in"); return ok })
	if c, _ := findS2S(in, "a.localhost", "in"); c.Auth != "external" || !c.CertValid {
		t.Fatalf("inbound stream through the edge: %+v", c)
	}
}

// TestSplitLinkHandshakeBound: connections to the link listener that never authenticate
// are bounded; past the bound they are closed at once, and an edge links once they are gone.
func TestSplitLinkHandshakeBound(t *testing.T) {
	core := vireotest.Start(t, vireotest.Options{LinkSecret: linkSecret})
	var idle []net.Conn
	for range 40 {
		c, err := net.Dial("tcp", core.Engine.Addr("link").String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	var closed atomic.Int32
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err == io.EOF {
				closed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := closed.Load(); n < 40-32 {
		t.Fatalf("%d of 40 idle link connections closed at once, want at least 8", n)
	}
	for _, c := range idle {
		c.Close()
	}
	// The edge's first attempt may still find the bound full; it tries again.
	if !edgeServes(core, vireotest.StartEdge(t, core, linkSecret)) {
		t.Fatal("the edge did not link after the idle connections went")
	}
}

// edgeServes reports whether edge answers a stream header within 10 s: it linked to core.
func edgeServes(core *vireotest.Server, edge *vireotest.Edge) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", edge.C2SAddr())
		if err != nil {
			return false
		}
		io.WriteString(c, core.Header())
		c.SetReadDeadline(time.Now().Add(time.Second))
		b, _ := io.ReadAll(io.LimitReader(c, 64))
		c.Close()
		if strings.Contains(string(b), "<stream:stream") {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSplitLinkHandshakePerAddr: a host that holds link connections open without a word
// gets a few handshake slots, not all of them: an edge from another address links while
// it still holds them.
func TestSplitLinkHandshakePerAddr(t *testing.T) {
	core := vireotest.Start(t, vireotest.Options{LinkSecret: linkSecret})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.52")}}
	var idle []net.Conn
	for range 40 {
		c, err := d.Dial("tcp", core.Engine.Addr("link").String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(200 * time.Millisecond) // all accepted, the extra ones refused
	if !edgeServes(core, vireotest.StartEdge(t, core, linkSecret)) {
		t.Fatal("the edge did not link while another host held link connections open")
	}
	for _, c := range idle {
		c.Close()
	}
}

// TestSplitEdgeMetrics: an edge reports its connections and its link, and nothing of
// sessions, which are the core's.
func TestSplitEdgeMetrics(t *testing.T) {
	core, edge := splitPair(t, vireotest.Options{AllowPlain: true})
	core.AddUser(t, "alice", "pw-alice")
	edge.AuthPlain(t, "alice", "pw-alice")
	scrape := func() string {
		rec := httptest.NewRecorder()
		edge.Engine.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	got := scrape()
	for _, want := range []string{"\nvireo_edge_link_up 1\n", "\nvireo_connections_open 1\n", "\nvireo_tls_connections 1\n",
		"vireo_tls_handshakes_total{result=\"ok\"} 1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in the edge's metrics:\n%s", strings.TrimSpace(want), got)
		}
	}
	if strings.Contains(got, "vireo_sessions_online") {
		t.Errorf("the edge reports sessions:\n%s", got)
	}
	core.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(scrape(), "\nvireo_edge_link_up 0\n") {
		if time.Now().After(deadline) {
			t.Fatalf("the link is still reported up after the core stopped:\n%s", scrape())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSplitOversized: the core's stanza limit holds for a client behind an edge; the
// stream ends with policy-violation and the edge closes the socket.
func TestSplitOversized(t *testing.T) {
	core, edge := splitPair(t, vireotest.Options{AllowPlain: true, MaxStanza: 64 << 10})
	core.AddUser(t, "alice", "pw-alice")
	a := edge.AuthPlain(t, "alice", "pw-alice")
	a.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	a.Expect("</iq>")
	// Written on its own goroutine: the edge may close the socket before all of it is
	// written (a broken pipe then is the point, not a failure).
	go a.Conn().Write([]byte("<message to='alice@localhost'><body>" + strings.Repeat("x", 200<<10) + "</body></message>"))
	if got := a.ExpectClosed(); !strings.Contains(got, "policy-violation") {
		t.Fatalf("oversized stanza through the edge: %q", got)
	}
}

// TestIntegrationSlixmppSMEdge: Debian's slixmpp logs in through an edge over STARTTLS,
// enables stream management, loses its TCP connection and resumes through the edge.
func TestIntegrationSlixmppSMEdge(t *testing.T) {
	needSlixmpp(t)
	core, edge := splitPair(t, vireotest.Options{})
	core.AddUser(t, "slix", "py secret")
	runSlixAt(t, core, edge.C2SAddr(), "slixmpp_sm.py", "ENABLED True", "RESUMED", "ECHO")
}

// TestSplitBindingBeforeFeatures: the first features a client gets over TLS at an edge
// already offer channel binding, however fast it sends its stream header after the
// handshake. Were the header to reach the core before the edge's TLSUp, the core would
// offer SCRAM without -PLUS, and refuse the client that then says it could have bound
// (slixmpp did, once, under load).
func TestSplitBindingBeforeFeatures(t *testing.T) {
	core, edge := splitPair(t, vireotest.Options{})
	cfg := core.ClientTLS()
	for i := range 50 {
		c, err := tls.Dial("tcp", edge.TLSAddr(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, core.Header())
		r := vireotest.NewRawConn(t, c)
		if f := r.Expect("</stream:features>"); !strings.Contains(f, "SCRAM-SHA-256-PLUS") {
			t.Fatalf("connection %d: features without channel binding: %q", i, f)
		}
		c.Close()
	}
}

// TestSplitSTARTTLSInjection: what a client sends in the clear behind <starttls/> (in the
// same write, so the edge relays it before it starts TLS) is not taken as the start of
// the stream over TLS (STARTTLS command injection, CVE-2011-0411): a login and a bind
// pipelined there get nothing, and the client never sees their answers.
func TestSplitSTARTTLSInjection(t *testing.T) {
	no := false
	core, edge := splitPair(t, vireotest.Options{AllowPlain: true, RequireTLS: &no})
	core.AddUser(t, "bob", "pw-bob")
	b := edge.Dial(t)
	b.Send(core.Header())
	b.Expect("</stream:features>")
	b.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + core.Header() +
		"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGJvYgBwdy1ib2I=</auth>")
	got := b.Expect("<proceed")
	if strings.Contains(got, "success") || strings.Contains(got, "features") {
		t.Fatalf("the core answered what came behind <starttls/> in the clear: %q", got)
	}
	b.StartTLS(core.ClientTLS())
	b.Send(core.Header())
	f := b.Expect("</stream:features>")
	if !strings.Contains(f, "<mechanisms") {
		t.Fatalf("after TLS: the stream does not start anew: %q", f)
	}
	b.Never("<success")
}

// TestSplitLinksBounded: the core keeps a few links per edge name (an edge relinks while
// the core has not yet noticed its last link is gone), not as many as one opens: each may
// hold a queue of bytes.
func TestSplitLinksBounded(t *testing.T) {
	core := vireotest.Start(t, vireotest.Options{LinkSecret: linkSecret})
	open := func() net.Conn {
		c, err := tls.Dial("tcp", core.Engine.Addr("link").String(), core.ClientTLS())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := link.Dial(c, linkSecret, "greedy"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	alive := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
	for i := range 4 {
		if c := open(); !alive(c) {
			t.Fatalf("link %d refused", i+1)
		}
	}
	if c := open(); alive(c) {
		t.Fatal("a fifth link of one edge name was kept")
	}
}

// TestSplitS2SFederationOff: a core that does not federate refuses a peer's stream that
// its edge, configured on its own, still takes and relays: host-unknown, as if no
// domain were served to peers.
func TestSplitS2SFederationOff(t *testing.T) {
	core, edge := splitPair(t, vireotest.Options{Domain: "b.localhost"})
	r := vireotest.DialAddr(t, edge.S2SAddr())
	r.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
		"xmlns:db='jabber:server:dialback' to='b.localhost' from='a.localhost' version='1.0'>")
	if got := r.ExpectClosed(); !strings.Contains(got, "<host-unknown") {
		t.Fatalf("a peer's stream to a core that does not federate: %q", got)
	}
	if n := core.Engine.Stats().S2SIn; n != 0 {
		t.Fatalf("%d inbound s2s streams", n)
	}
}
