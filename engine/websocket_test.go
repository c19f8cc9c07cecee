package engine_test

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	mjid "mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	mws "mellium.im/xmpp/websocket"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/store"
)

// wsClient is a deliberately small RFC 6455 client for the cases no library sends: bad
// handshakes, unmasked, binary, oversized and fragmented frames.
type wsClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

const wsUpgrade = "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

// wsHTTP sends a raw request head on a new connection and returns the response head.
func wsHTTP(t *testing.T, addr, head string) (*wsClient, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, head)
	w := &wsClient{t: t, c: c, br: bufio.NewReader(c)}
	var resp strings.Builder
	for {
		l, err := w.br.ReadString('\n')
		resp.WriteString(l)
		if err != nil || l == "\r\n" {
			return w, resp.String()
		}
	}
}

func wsOpen(t *testing.T, addr string) *wsClient {
	t.Helper()
	w, resp := wsHTTP(t, addr, wsUpgrade+"Sec-WebSocket-Protocol: xmpp\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 101 ") || !strings.Contains(resp, "Sec-WebSocket-Protocol: xmpp") ||
		!strings.Contains(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") { // RFC 6455 §1.3's example
		t.Fatalf("upgrade: %q", resp)
	}
	return w
}

func (w *wsClient) frame(op byte, fin, mask bool, payload []byte) {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	p := append([]byte(nil), payload...)
	if mask {
		var key [4]byte
		rand.Read(key[:])
		b = append(b, key[:]...)
		for i := range p {
			p[i] ^= key[i&3]
		}
	}
	// A write error is not the test's verdict: the server may close first on purpose, and
	// what it sent before closing is what the test reads.
	w.c.Write(append(b, p...))
}

func (w *wsClient) send(s string) { w.frame(0x1, true, true, []byte(s)) }

// read returns the next frame's opcode and payload.
func (w *wsClient) read() (byte, string) {
	w.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		w.t.Fatalf("reading a frame: %v", err)
	}
	if h[1]&0x80 != 0 {
		w.t.Fatal("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		io.ReadFull(w.br, e[:])
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		io.ReadFull(w.br, e[:])
		n = binary.BigEndian.Uint64(e[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(w.br, p); err != nil {
		w.t.Fatalf("reading a payload: %v", err)
	}
	return h[0] & 0x0f, string(p)
}

// expect reads text messages until one contains substr.
func (w *wsClient) expect(substr string) string {
	w.t.Helper()
	for {
		op, p := w.read()
		if op == 0x8 {
			w.t.Fatalf("closed (code %d %q) while expecting %q", binary.BigEndian.Uint16([]byte(p + "\x00\x00")[:2]), p, substr)
		}
		if strings.Contains(p, substr) {
			return p
		}
	}
}

// expectClose reads until the close frame and returns its code.
func (w *wsClient) expectClose() (uint16, string) {
	w.t.Helper()
	var texts []string
	for {
		op, p := w.read()
		if op == 0x8 {
			if len(p) < 2 {
				return 0, strings.Join(texts, "")
			}
			return binary.BigEndian.Uint16([]byte(p[:2])), strings.Join(texts, "") + p[2:]
		}
		texts = append(texts, p)
	}
}

const wsOpenEl = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"

// TestWebSocketFraming: RFC 7395 framing on a raw connection: <open/> answered with <open/>
// and features that declare their namespaces and offer no STARTTLS; login; a stanza split
// over continuation frames; ping/pong; <close/> answered with <close/> and a close frame.
func TestWebSocketFraming(t *testing.T) {
	// Loopback is a trusted network: a TLS-terminating reverse proxy would connect from it.
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	srv.AddUser(t, "alice", "secret")
	w := wsOpen(t, srv.WebAddr())
	w.send(wsOpenEl)
	open := w.expect("<open ")
	for _, want := range []string{"xmlns='urn:ietf:params:xml:ns:xmpp-framing'", "from='localhost'", "version='1.0'", " id='"} {
		if !strings.Contains(open, want) || strings.Contains(open, "stream:stream") {
			t.Fatalf("open lacks %q: %q", want, open)
		}
	}
	feats := w.expect("<stream:features")
	if !strings.Contains(feats, "xmlns:stream='http://etherx.jabber.org/streams'") || strings.Contains(feats, "starttls") ||
		!strings.Contains(feats, "<mechanism>PLAIN</mechanism>") { // loopback counts as a TLS-terminating proxy
		t.Fatalf("features: %q", feats)
	}
	w.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "</auth>")
	w.expect("<success")
	w.send(wsOpenEl) // RFC 7395 §3.5: the restart is a new <open/>
	w.expect("<open ")
	w.expect("urn:ietf:params:xml:ns:xmpp-bind")
	// A stanza in three frames.
	msg := "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>"
	w.frame(0x1, false, true, []byte(msg[:10]))
	w.frame(0x9, true, true, []byte("between fragments")) // control frames may interleave
	w.frame(0x0, false, true, []byte(msg[10:50]))
	w.frame(0x0, true, true, []byte(msg[50:]))
	if op, p := w.read(); op != 0xA || p != "between fragments" {
		t.Fatalf("pong: %x %q", op, p)
	}
	if got := w.expect("id='b1'"); !strings.HasPrefix(got, "<iq xmlns='jabber:client'") || !strings.Contains(got, "alice@localhost/web") {
		t.Fatalf("bind result must carry its namespace: %q", got)
	}
	w.send("<message xmlns='jabber:client' to='alice@localhost/web' id='self'><body>to myself</body></message>")
	if got := w.expect("id='self'"); !strings.HasPrefix(got, "<message xmlns='jabber:client'") {
		t.Fatalf("routed stanza without namespace: %q", got)
	}
	// "xmlns=" inside an attribute's value (a sender chooses ids and room nicknames)
	// declares nothing: the stanza still gets its namespace.
	tcp := srv.LoginPlain(t, "alice", "secret", "tcp") // its stanzas carry no xmlns of their own
	tcp.Send("<message to='alice@localhost/web' id='a xmlns=b'><body>to myself</body></message>")
	if got := w.expect("xmlns=b"); !strings.HasPrefix(got, "<message xmlns='jabber:client'") {
		t.Fatalf("routed stanza with xmlns= in an id, without namespace: %q", got)
	}
	w.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	w.expect("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	if code, _ := w.expectClose(); code != 1000 {
		t.Fatalf("close code %d", code)
	}
}

// TestWebSocketBadInput: every broken handshake and frame gets the RFC's answer.
func TestWebSocketBadInput(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{MaxStanza: 4096,
		Web: engine.Web{Origins: []string{"https://chat.example.org"}}})
	for _, tc := range []struct{ name, head, want string }{
		{"no subprotocol", wsUpgrade + "\r\n", "HTTP/1.1 400 "},
		{"other subprotocol", wsUpgrade + "Sec-WebSocket-Protocol: mqtt\r\n\r\n", "HTTP/1.1 400 "},
		{"old version", strings.Replace(wsUpgrade, "Version: 13", "Version: 8", 1) + "Sec-WebSocket-Protocol: xmpp\r\n\r\n", "HTTP/1.1 426 "},
		{"bad key", strings.Replace(wsUpgrade, "dGhlIHNhbXBsZSBub25jZQ==", "short", 1) + "Sec-WebSocket-Protocol: xmpp\r\n\r\n", "HTTP/1.1 400 "},
		{"no upgrade", "GET /xmpp-websocket HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 426 "},
		{"post", "POST /xmpp-websocket HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 "},
		{"origin", wsUpgrade + "Sec-WebSocket-Protocol: xmpp\r\nOrigin: https://evil.example\r\n\r\n", "HTTP/1.1 403 "},
		{"unknown path", "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 "},
		{"not http", "HELLO\r\n\r\n", "HTTP/1.1 400 "},
		{"huge head", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 9000) + "\r\n\r\n", "HTTP/1.1 431 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp := wsHTTP(t, srv.WebAddr(), tc.head)
			if !strings.HasPrefix(resp, tc.want) {
				t.Fatalf("got %q, want %s", resp, tc.want)
			}
		})
	}
	t.Run("allowed origin", func(t *testing.T) {
		_, resp := wsHTTP(t, srv.WebAddr(), wsUpgrade+"Sec-WebSocket-Protocol: xmpp\r\nOrigin: https://chat.example.org\r\n\r\n")
		if !strings.HasPrefix(resp, "HTTP/1.1 101 ") {
			t.Fatalf("got %q", resp)
		}
	})
	for _, tc := range []struct {
		name string
		send func(w *wsClient)
		code uint16
		text string
	}{
		{"unmasked", func(w *wsClient) { w.frame(0x1, true, false, []byte(wsOpenEl)) }, 1002, ""},
		{"binary", func(w *wsClient) { w.frame(0x2, true, true, []byte(wsOpenEl)) }, 1003, ""},
		{"oversized", func(w *wsClient) { w.send(wsOpenEl); w.frame(0x1, true, true, make([]byte, 10000)) }, 1009, ""},
		{"oversized in pieces", func(w *wsClient) { // the stanza limit speaks first: an XMPP error
			w.send(wsOpenEl)
			w.frame(0x1, false, true, []byte("<message><body>"))
			for i := 0; i < 5; i++ {
				w.frame(0x0, false, true, []byte(strings.Repeat("a", 2000)))
			}
		}, 1000, "policy-violation"},
		{"continuation first", func(w *wsClient) { w.frame(0x0, true, true, []byte(wsOpenEl)) }, 1002, ""},
		{"reserved bits", func(w *wsClient) { w.frame(0x1|0x40, true, true, []byte(wsOpenEl)) }, 1002, ""},
		{"long ping", func(w *wsClient) { w.frame(0x9, true, true, make([]byte, 126)) }, 1002, ""},
		{"malformed XML", func(w *wsClient) { w.send(wsOpenEl); w.send("<message><body></message>") }, 1000, "not-well-formed"},
		// RFC 6455 §8.1: a text frame that is not UTF-8 fails the connection with 1007,
		// after the XMPP stream error that says why.
		{"invalid UTF-8", func(w *wsClient) { w.send(wsOpenEl); w.send("<message><body>\xff\xfe</body></message>") }, 1007, "not-well-formed"},
		{"stream header instead of open", func(w *wsClient) {
			w.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
		}, 1000, "bad-format"},
		{"wrong framing namespace", func(w *wsClient) { w.send("<open xmlns='urn:example' to='localhost' version='1.0'/>") }, 1000, "bad-format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := wsOpen(t, srv.WebAddr())
			tc.send(w)
			code, text := w.expectClose()
			if code != tc.code || !strings.Contains(text, tc.text) {
				t.Fatalf("close %d %q, want %d with %q", code, text, tc.code, tc.text)
			}
		})
	}
}

// TestIntegrationWebSocketMellium: XEP-0156 host-meta (XML and JSON, with CORS) over the
// HTTPS listener names the WebSocket endpoint; mellium.im/xmpp's WebSocket client (a client
// nobody here wrote) connects there with SCRAM, binds, and chats with a TCP client both ways.
func TestIntegrationWebSocketMellium(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "alice secret")
	srv.AddUser(t, "bob", "bob secret")
	// Offering h2 and http/1.1 as browsers do: the web listener must answer ALPN with http/1.1.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: srv.ClientTLS(), ForceAttemptHTTP2: true}}
	base := "https://" + srv.WebTLSAddr()
	want := "wss://" + srv.WebTLSAddr() + "/xmpp-websocket"
	resp, err := hc.Get(base + "/.well-known/host-meta")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(string(body), "<Link rel='urn:xmpp:alt-connections:websocket' href='"+want+"'/>") {
		t.Fatalf("host-meta: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, err = hc.Get(base + "/.well-known/host-meta.json")
	if err != nil {
		t.Fatal(err)
	}
	var hm struct{ Links []struct{ Rel, Href string } }
	err = json.NewDecoder(resp.Body).Decode(&hm)
	resp.Body.Close()
	// WebSocket first, then BOSH (bosh_test.go checks that one).
	if err != nil || len(hm.Links) != 2 || hm.Links[0].Href != want {
		t.Fatalf("host-meta.json: %v %+v", err, hm)
	}

	ctx := vireotest.Context(t, 15*time.Second)
	d := mws.Dialer{Origin: "https://localhost", TLSConfig: srv.ClientTLS()}
	conn, err := d.DialDirect(ctx, hm.Links[0].Href)
	if err != nil {
		t.Fatal(err)
	}
	j := mjid.MustParse("alice@localhost/web")
	// mws.NewSession decides "secure" from the Origin's scheme rather than the URL's, so
	// the session is made with mellium's WebSocket negotiator and marked secure here.
	s, err := xmpp.NewSession(ctx, j.Domain(), j, conn, xmpp.Secure, mws.Negotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{xmpp.SASL("", "alice secret", msasl.ScramSha256), xmpp.BindResource()}}
	}))
	if err != nil {
		t.Fatalf("mellium over WebSocket: %v", err)
	}
	defer s.Close()
	alice := &client{s: s}
	alice.serve(t)
	full := s.LocalAddr().String()
	if !strings.HasPrefix(full, "alice@localhost/") {
		t.Fatalf("bound as %q", full)
	}
	bob := srv.LoginPlain(t, "bob", "bob secret", "pc")
	bob.Send("<message to='" + full + "' type='chat' id='w1'><body>hello web</body></message>")
	alice.waitFor(t, "bob@localhost/pc", "hello web")
	err = s.Send(ctx, stanza.Message{To: mjid.MustParse("bob@localhost/pc"), Type: stanza.ChatMessage}.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData("hello tcp")), xml.StartElement{Name: xml.Name{Local: "body"}})))
	if err != nil {
		t.Fatal(err)
	}
	bob.Expect("hello tcp")
}

// TestIntegrationStanzaJS: StanzaJS (npm stanza, a client nobody here wrote) logs in over
// wss:// with SCRAM, reads its roster and chats with a TCP client both ways.
func TestIntegrationStanzaJS(t *testing.T) {
	runStanzaJS(t, func(srv *vireotest.Server) string {
		_, port, _ := strings.Cut(srv.WebTLSAddr(), ":")
		return "wss://localhost:" + port + "/xmpp-websocket"
	})
}

// runStanzaJS runs testdata/js/stanza.mjs as stan@localhost over the transport URL that
// url gives (StanzaJS picks WebSocket or BOSH by its scheme) and chats with bob over TCP.
func runStanzaJS(t *testing.T, url func(srv *vireotest.Server) string) {
	runStanzaJSOn(t, vireotest.Options{AllowPlain: true}, url)
}

func runStanzaJSOn(t *testing.T, o vireotest.Options, url func(srv *vireotest.Server) string) {
	dir := needNodePackage(t, "stanza")
	srv := vireotest.Start(t, o)
	srv.AddUser(t, "stan", "stan secret")
	srv.AddUser(t, "bob", "bob secret")
	srv.Store.Rosters().Put("stan@localhost", store.RosterItem{JID: "bob@localhost", Sub: store.SubBoth})
	bob := srv.LoginPlain(t, "bob", "bob secret", "pc")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	ctx := vireotest.Context(t, 45*time.Second)
	cmd := exec.CommandContext(ctx, "node", "stanza.mjs", url(srv), "stan@localhost", "stan secret", "bob@localhost/pc")
	cmd.Dir = dir
	// The certificate is checked against the test CA; localhost is the test listener's
	// 127.0.0.1, not ::1.
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+ca, "NODE_OPTIONS=--dns-result-order=ipv4first")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got, err := bob.ReadUntil("hello from stanza", 20*time.Second)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no message from stanza: %v\n%s", err, out.String())
	}
	from := regexp.MustCompile(`from='(stan@localhost/[^']+)'`).FindStringSubmatch(got)
	if from == nil {
		t.Fatalf("message without the sender's full JID: %q", got)
	}
	bob.Send("<message to='" + from[1] + "' type='chat'><body>hello stanza</body></message>")
	err = cmd.Wait()
	if err != nil || !strings.Contains(out.String(), "ROSTER bob@localhost") || !strings.Contains(out.String(), "OK stan@localhost/") {
		t.Fatalf("stanza: %v\n%s", err, out.String())
	}
}

// TestIntegrationStanzaServices runs StanzaJS's service calls over wss:// one after
// another (testdata/js/stanza_services.mjs): disco, ping, time, version, carbons, stream
// management, blocking, vCard, an upload slot, a message archive search, a room bob made,
// a XEP-0402 bookmark and a PEP avatar.
func TestIntegrationStanzaServices(t *testing.T) {
	dir := needNodePackage(t, "stanza")
	srv := uploadServer(t, vireotest.Options{})
	srv.AddUser(t, "stan", "stan secret")
	srv.AddUser(t, "bob", "secret")
	bob := mucLogin(t, srv, "bob", "pc")
	mucCreate(t, bob, mucRoom, "Bob")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	_, port, _ := strings.Cut(srv.WebTLSAddr(), ":")
	ctx := vireotest.Context(t, 90*time.Second)
	cmd := exec.CommandContext(ctx, "node", "stanza_services.mjs", "wss://localhost:"+port+"/xmpp-websocket", "stan@localhost", "stan secret", mucRoom)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+ca, "NODE_OPTIONS=--dns-result-order=ipv4first")
	out, err := cmd.CombinedOutput()
	s := string(out)
	if err != nil || !strings.Contains(s, "DONE 0") {
		t.Fatalf("stanza: %v\n%s", err, s)
	}
	for _, want := range []string{"OK muc", "OK archive", "OK bookmarks", "OK stream management", "OK avatar"} {
		if !strings.Contains(s, want) {
			t.Fatalf("stanza output lacks %q:\n%s", want, s)
		}
	}
	expectStanza(t, bob, "from='"+mucRoom+"/stan'", "<body>tea from stanza</body>")
}

// TestWebShutdownHTTP: at shutdown a kept-alive HTTP connection of the web listener (not
// a WebSocket) is closed without a word; before, it got WebSocket frames its client
// cannot read.
func TestWebShutdownHTTP(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	w, resp := wsHTTP(t, srv.WebAddr(), "OPTIONS /http-bind HTTP/1.1\r\nHost: localhost\r\nOrigin: https://x.example\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 204") {
		t.Fatalf("OPTIONS: %q", resp)
	}
	srv.Stop()
	rest, _ := io.ReadAll(w.br)
	if len(rest) != 0 {
		t.Fatalf("an HTTP connection got at shutdown: %q", rest)
	}
}

// TestWebSocketMessagesApart: the size limit is per message. Two messages that are each
// within it pass, however much came before (the check had counted the last message's
// bytes against the next one's first frame).
func TestWebSocketMessagesApart(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, MaxStanza: 8192,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	srv.AddUser(t, "alice", "secret")
	w := wsOpen(t, srv.WebAddr())
	w.send(wsOpenEl)
	w.expect("<stream:features")
	w.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "</auth>")
	w.expect("<success")
	w.send(wsOpenEl)
	w.expect("urn:ietf:params:xml:ns:xmpp-bind")
	w.send("<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>")
	w.expect("id='b1'")
	for i, n := range []int{8000, 5000, 8000} {
		id := fmt.Sprintf("m%d", i)
		w.send("<message xmlns='jabber:client' to='alice@localhost/web' id='" + id + "'><body>" + strings.Repeat("x", n-120) + "</body></message>")
		w.expect("id='" + id + "'")
	}
}

// TestWebSocketUpgradeLate: the pre-auth time of a WebSocket stream counts from its
// upgrade, not from the first request of the keep-alive connection it came on (a reverse
// proxy reuses its upstream connections).
func TestWebSocketUpgradeLate(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{PreAuthTimeout: 3 * time.Second})
	c, err := net.DialTimeout("tcp", srv.WebAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	w := &wsClient{t: t, c: c, br: bufio.NewReader(c)}
	for range 2 {
		io.WriteString(w.c, "GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\n\r\n")
		resp, err := http.ReadResponse(w.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("host-meta: %s", resp.Status)
		}
		time.Sleep(time.Second)
	}
	io.WriteString(w.c, wsUpgrade+"Sec-WebSocket-Protocol: xmpp\r\n\r\n")
	if resp, err := http.ReadResponse(w.br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	time.Sleep(1500 * time.Millisecond) // past the connection's pre-auth time, within the stream's
	w.send(wsOpenEl)
	w.expect("<stream:features")
}

// TestHTTPHeadKeepAlive: a HEAD is answered with a GET's header and no content, found or
// not, so the next response on the kept connection parses (RFC 9110 §9.3.2).
func TestHTTPHeadKeepAlive(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{})
	c, err := net.DialTimeout("tcp", srv.WebAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/nothing", "/.well-known/host-meta", "/nothing"} {
		io.WriteString(c, "HEAD "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
		head, _ := http.NewRequest("HEAD", "http://localhost"+path, nil)
		resp, err := http.ReadResponse(br, head)
		if err != nil {
			t.Fatalf("HEAD %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.ContentLength <= 0 {
			t.Fatalf("HEAD %s: length %d, want a GET's", path, resp.ContentLength)
		}
	}
	io.WriteString(c, "GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET after the HEADs: %v %v", resp, err)
	}
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "<XRD") {
		t.Fatalf("GET after the HEADs: %q", b)
	}
}
