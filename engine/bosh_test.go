package engine_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// boshClient speaks raw XEP-0124/XEP-0206 over net/http.
type boshClient struct {
	t   *testing.T
	url string
	sid string
	rid uint64
	cl  *http.Client // nil: a client of its own per request, on the default transport
}

func boshPost(t *testing.T, url, body string) (int, http.Header, string) {
	return boshPostWith(t, nil, url, body)
}

func boshPostWith(t *testing.T, cl *http.Client, url, body string) (int, http.Header, string) {
	t.Helper()
	if cl == nil {
		cl = &http.Client{Timeout: 20 * time.Second}
	}
	resp, err := cl.Post(url, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

var boshAttr = regexp.MustCompile(`(\w+(?::\w+)?)='([^']*)'`)

// bodyAttrs returns the attributes of the <body/> start tag of resp.
func bodyAttrs(resp string) map[string]string {
	tag := resp
	if i := strings.IndexByte(tag, '>'); i >= 0 {
		tag = tag[:i]
	}
	m := map[string]string{}
	for _, a := range boshAttr.FindAllStringSubmatch(tag, -1) {
		m[a[1]] = a[2]
	}
	return m
}

const boshNS = "xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'"

// boshCreate opens a session; extra holds more <body/> attributes; wait is 10 s unless
// extra sets it.
func boshCreate(t *testing.T, srv *vireotest.Server, extra string) (*boshClient, string) {
	t.Helper()
	b := &boshClient{t: t, url: "http://" + srv.WebAddr() + "/http-bind", rid: 1000}
	if !strings.Contains(extra, "wait=") {
		extra += " wait='10'"
	}
	code, h, resp := boshPost(t, b.url, "<body "+boshNS+" rid='1000' to='"+srv.Domain()+
		"' hold='1' ver='1.11' xml:lang='en' xmpp:version='1.0' content='text/xml; charset=utf-8'"+extra+"/>")
	if code != 200 || h.Get("Content-Type") != "text/xml; charset=utf-8" || h.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("create: %d %v %s", code, h, resp)
	}
	b.sid = bodyAttrs(resp)["sid"]
	return b, resp
}

// send posts the next request with payload and extra body attributes.
func (b *boshClient) send(attrs, payload string) string {
	b.t.Helper()
	b.rid++
	_, _, resp := boshPostWith(b.t, b.cl, b.url, b.body(b.rid, attrs, payload))
	return resp
}

func (b *boshClient) body(rid uint64, attrs, payload string) string {
	return "<body " + boshNS + " rid='" + strconv.FormatUint(rid, 10) + "' sid='" + b.sid + "'" + attrs + ">" + payload + "</body>"
}

// until sends empty requests until a response contains substr.
func (b *boshClient) until(first, substr string) string {
	b.t.Helper()
	resp := first
	for i := 0; !strings.Contains(resp, substr); i++ {
		if i > 20 {
			b.t.Fatalf("never got %q; last %q", substr, resp)
		}
		resp = b.send("", "")
	}
	return resp
}

func boshServer(t *testing.T, web engine.Web) *vireotest.Server {
	return vireotest.Start(t, vireotest.Options{AllowPlain: true, Web: web,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
}

// boshLogin creates a session, authenticates with PLAIN, restarts and binds resource.
func boshLogin(t *testing.T, srv *vireotest.Server, user, pass, resource string) *boshClient {
	t.Helper()
	b, resp := boshCreate(t, srv, " wait='2'")
	if !strings.Contains(resp, "<mechanism>PLAIN</mechanism>") {
		t.Fatalf("no PLAIN in %s", resp)
	}
	resp = b.send("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))+"</auth>")
	b.until(resp, "<success")
	resp = b.send(" to='"+srv.Domain()+"' xml:lang='en' xmpp:restart='true'", "")
	b.until(resp, "urn:ietf:params:xml:ns:xmpp-bind")
	resp = b.send("", "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"+
		resource+"</resource></bind></iq>")
	b.until(resp, "<jid>"+user+"@"+srv.Domain()+"/"+resource+"</jid>")
	return b
}

func TestBoshSessionCreation(t *testing.T) {
	srv := boshServer(t, engine.Web{})
	_, resp := boshCreate(t, srv, "")
	a := bodyAttrs(resp)
	want := map[string]string{"wait": "10", "hold": "1", "requests": "2", "polling": "2", "inactivity": "60",
		"maxpause": "120", "ver": "1.11", "xmpp:version": "1.0", "from": srv.Domain(), "secure": "true"}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %q, want %q in %s", k, a[k], v, resp)
		}
	}
	if len(a["sid"]) < 16 || a["authid"] == "" {
		t.Errorf("sid %q authid %q", a["sid"], a["authid"])
	}
	// A wait beyond the server's is cut to it, however large (seconds times time.Second
	// overflowed).
	for _, w := range []string{"100000", "9223372037"} {
		if _, resp := boshCreate(t, srv, " wait='"+w+"'"); bodyAttrs(resp)["wait"] != "60" {
			t.Errorf("wait=%s: %s", w, resp)
		}
	}
	if !strings.Contains(resp, "<stream:features") || !strings.Contains(resp, "xmlns:stream='http://etherx.jabber.org/streams'") {
		t.Errorf("no features in the creation response: %s", resp)
	}
}

func TestBoshLoginAndChat(t *testing.T) {
	srv := boshServer(t, engine.Web{})
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	a := boshLogin(t, srv, "alice", "pw", "web")
	bob := srv.LoginPlain(t, "bob", "pw", "tcp")

	// A message from TCP reaches a held request.
	done := make(chan string, 1)
	go func() {
		a.rid++
		_, _, resp := boshPost(t, a.url, a.body(a.rid, "", ""))
		done <- resp
	}()
	time.Sleep(200 * time.Millisecond) // the request is held
	bob.Send("<message to='alice@localhost/web' type='chat' id='m1'><body>hi from tcp</body></message>")
	select {
	case resp := <-done:
		if !strings.Contains(resp, "hi from tcp") || !strings.Contains(resp, "xmlns='jabber:client'") {
			t.Fatalf("held request answered with %s", resp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held request was not answered")
	}

	// A message from BOSH reaches the TCP client.
	resp := a.send("", "<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat' id='m2'><body>hi from bosh</body></message>")
	bob.Expect("hi from bosh")

	// A retransmitted rid gets the same answer again (XEP-0124 §14.3).
	_, _, again := boshPost(t, a.url, a.body(a.rid, "", ""))
	if again != resp {
		t.Fatalf("replay: %q, first %q", again, resp)
	}

	// A rid beyond the window ends the session.
	_, _, resp = boshPost(t, a.url, a.body(a.rid+3, "", ""))
	if at := bodyAttrs(resp); at["type"] != "terminate" || at["condition"] != "item-not-found" {
		t.Fatalf("out-of-window rid: %s", resp)
	}
	_, _, resp = boshPost(t, a.url, a.body(a.rid+1, "", ""))
	if at := bodyAttrs(resp); at["type"] != "terminate" || at["condition"] != "item-not-found" {
		t.Fatalf("after termination: %s", resp)
	}
	// The session is gone: a message to it is not delivered to a dead stream.
	bob.Send("<message to='alice@localhost/web' type='chat' id='m3'><body>late</body></message>")
	waitEstablished(t, srv, 1)
}

func waitEstablished(t *testing.T, srv *vireotest.Server, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Engine.Stats().Established != n {
		if time.Now().After(deadline) {
			t.Fatalf("established = %d, want %d", srv.Engine.Stats().Established, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBoshUnknownSID(t *testing.T) {
	srv := boshServer(t, engine.Web{})
	code, _, resp := boshPost(t, "http://"+srv.WebAddr()+"/http-bind", "<body "+boshNS+" rid='5' sid='nope'/>")
	if at := bodyAttrs(resp); code != 200 || at["type"] != "terminate" || at["condition"] != "item-not-found" {
		t.Fatalf("%d %s", code, resp)
	}
}

func TestBoshTerminate(t *testing.T) {
	srv := boshServer(t, engine.Web{})
	srv.AddUser(t, "alice", "pw")
	a := boshLogin(t, srv, "alice", "pw", "web")
	waitEstablished(t, srv, 1)
	resp := a.send(" type='terminate'", "<presence type='unavailable' xmlns='jabber:client'/>")
	if bodyAttrs(resp)["type"] != "terminate" {
		t.Fatalf("terminate: %s", resp)
	}
	waitEstablished(t, srv, 0)
	resp = a.send("", "")
	if at := bodyAttrs(resp); at["type"] != "terminate" || at["condition"] != "item-not-found" {
		t.Fatalf("after terminate: %s", resp)
	}
}

func TestBoshInactivity(t *testing.T) {
	srv := boshServer(t, engine.Web{BOSHInactivity: time.Second})
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	a := boshLogin(t, srv, "alice", "pw", "web")
	bob := srv.LoginPlain(t, "bob", "pw", "tcp")
	waitEstablished(t, srv, 2)
	time.Sleep(3 * time.Second) // no request held: the session ends
	waitEstablished(t, srv, 1)
	if open := srv.Engine.Stats().Open; open > 2 {
		t.Errorf("open = %d after the session ended", open)
	}
	resp := a.send("", "")
	if at := bodyAttrs(resp); at["type"] != "terminate" {
		t.Fatalf("after inactivity: %s", resp)
	}
	// Like a dropped connection: a message to the bare JID goes to offline storage and
	// comes on the next login.
	bob.Send("<message to='alice@localhost' type='chat' id='o1'><body>while away</body></message>")
	time.Sleep(200 * time.Millisecond)
	a2 := boshLogin(t, srv, "alice", "pw", "web2")
	resp = a2.send("", "<presence xmlns='jabber:client'/>")
	a2.until(resp, "while away")
}

func TestBoshHold(t *testing.T) {
	srv := boshServer(t, engine.Web{})
	srv.AddUser(t, "alice", "pw")
	a := boshLogin(t, srv, "alice", "pw", "web")
	// Request 1 is held; request 2 makes two, over hold='1': 1 comes back empty at once.
	first := make(chan string, 1)
	a.rid++
	r1 := a.rid
	go func() {
		_, _, resp := boshPost(t, a.url, a.body(r1, "", ""))
		first <- resp
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case resp := <-first:
		t.Fatalf("request answered before a second came: %s", resp)
	default:
	}
	second := make(chan string, 1)
	a.rid++
	r2 := a.rid
	go func() {
		_, _, resp := boshPost(t, a.url, a.body(r2, "", ""))
		second <- resp
	}()
	select {
	case resp := <-first:
		if strings.Contains(resp, "<message") || bodyAttrs(resp)["type"] != "" {
			t.Fatalf("released request: %s", resp)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first request was not released")
	}
	// The second is answered after wait (2 s) at the latest, or at once with data: send
	// some by pinging ourselves through a third request.
	resp := a.send("", "<iq type='get' id='p1' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>")
	got := resp + <-second
	if !strings.Contains(got, "id='p1'") {
		t.Fatalf("ping result not in %q", got)
	}
}

func TestBoshBadInput(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, MaxStanza: 8 << 10,
		Web: engine.Web{Origins: []string{"https://chat.example.org"}}})
	url := "http://" + srv.WebAddr() + "/http-bind"
	_, _, resp := boshPost(t, url, "<body "+boshNS+" rid='1' to='localhost'><unclosed></body>")
	if at := bodyAttrs(resp); at["type"] != "terminate" || at["condition"] != "bad-request" {
		t.Fatalf("bad xml: %s", resp)
	}
	_, _, resp = boshPost(t, url, "<body xmlns='jabber:client' rid='1'/>")
	if bodyAttrs(resp)["condition"] != "bad-request" {
		t.Fatalf("wrong namespace: %s", resp)
	}
	code, _, _ := boshPost(t, url, "<body "+boshNS+" rid='1'>"+strings.Repeat("x", 20<<10)+"</body>")
	if code != 413 {
		t.Fatalf("too large: %d", code)
	}
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 405 {
		t.Fatalf("GET: %d", r.StatusCode)
	}
	req, _ := http.NewRequest("OPTIONS", url, nil)
	req.Header.Set("Origin", "https://chat.example.org")
	req.Header.Set("Access-Control-Request-Method", "POST")
	r, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://chat.example.org" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", r.StatusCode, r.Header)
	}
	req, _ = http.NewRequest("POST", url, strings.NewReader("<body "+boshNS+" rid='1'/>"))
	req.Header.Set("Origin", "https://evil.example")
	r, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 403 {
		t.Fatalf("foreign origin: %d", r.StatusCode)
	}
	// host-meta announces the endpoint.
	r, err = http.Get("http://" + srv.WebAddr() + "/.well-known/host-meta")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(b), "rel='urn:xmpp:alt-connections:xbosh' href='http://"+srv.WebAddr()+"/http-bind'") {
		t.Fatalf("host-meta: %s", b)
	}
}

// TestIntegrationStanzaJSBosh: StanzaJS (npm stanza, its fetch-based BOSH transport) logs in
// over https:// BOSH with SCRAM, reads its roster and chats with a TCP client both ways.
func TestIntegrationStanzaJSBosh(t *testing.T) {
	runStanzaJS(t, func(srv *vireotest.Server) string {
		_, port, _ := strings.Cut(srv.WebTLSAddr(), ":")
		return "https://localhost:" + port + "/http-bind"
	})
}

// boshRaw speaks BOSH over one raw TCP connection, to see what a client that reuses its
// connection sees.
type boshRaw struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (b *boshRaw) post(body, extra string) {
	b.t.Helper()
	fmt.Fprintf(b.c, "POST /http-bind HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; charset=utf-8\r\n%sContent-Length: %d\r\n\r\n%s",
		extra, len(body), body)
}

// answer reads one HTTP answer: its Connection header and body.
func (b *boshRaw) answer() (conn, body string) {
	b.t.Helper()
	resp, err := http.ReadResponse(b.br, nil)
	if err != nil {
		b.t.Fatalf("reading an answer: %v", err)
	}
	defer resp.Body.Close()
	p, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.t.Fatalf("answer %d: %v %s", resp.StatusCode, err, p)
	}
	if resp.Close {
		return "close", string(p) // net/http takes "Connection: close" out of the header
	}
	return resp.Header.Get("Connection"), string(p)
}

// TestBoshKeepAlive: successive requests of a session travel on one persistent HTTP/1.1
// connection, pipelined ones included; "Connection: close" ends it.
func TestBoshKeepAlive(t *testing.T) {
	srv := boshServer(t, engine.Web{})
	srv.AddUser(t, "alice", "pw")
	c, err := net.DialTimeout("tcp", srv.WebAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	b := &boshRaw{t: t, c: c, br: bufio.NewReader(c)}
	b.post("<body "+boshNS+" rid='100' to='localhost' hold='1' wait='2' ver='1.11' xmpp:version='1.0'/>", "")
	conn, resp := b.answer()
	sid := bodyAttrs(resp)["sid"]
	if conn != "keep-alive" || sid == "" || !strings.Contains(resp, "<mechanism>PLAIN</mechanism>") {
		t.Fatalf("create: Connection %q, %s", conn, resp)
	}
	body := func(rid int, payload string) string {
		return "<body " + boshNS + " rid='" + strconv.Itoa(rid) + "' sid='" + sid + "'>" + payload + "</body>"
	}
	rid := 101
	b.post(body(rid, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pw"))+"</auth>"), "")
	for conn, resp = b.answer(); !strings.Contains(resp, "<success"); conn, resp = b.answer() {
		rid++
		b.post(body(rid, ""), "")
	}
	if conn != "keep-alive" {
		t.Fatalf("auth answer: Connection %q", conn)
	}
	// Two requests in one write: the second waits unread until the first, held for the
	// wait, is answered, then is read from the same connection (and held in turn).
	start := time.Now()
	fmt.Fprintf(c, "POST /http-bind HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s"+
		"POST /http-bind HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s",
		len(body(rid+1, "")), body(rid+1, ""), len(body(rid+2, "")), body(rid+2, ""))
	for i := 0; i < 2; i++ {
		if conn, resp = b.answer(); conn != "keep-alive" || strings.Contains(resp, "terminate") {
			t.Fatalf("pipelined answer %d: Connection %q, %s", i, conn, resp)
		}
	}
	t.Logf("two pipelined requests answered in %v", time.Since(start))
	rid += 2
	// The last request asks to close.
	rid++
	b.post(body(rid, ""), "Connection: close\r\n")
	if conn, _ = b.answer(); conn != "close" {
		t.Fatalf("Connection %q, want close", conn)
	}
	if n, err := b.br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close: %v %v, want EOF", n, err)
	}
}

// TestHTTPKeepAliveAnswers: answers that end a request cleanly keep a persistent
// connection open: a browser's CORS preflight is followed by its POST on the same
// connection, and refused methods and host-meta (GET and HEAD) do not cost a new
// connection; an HTTP/1.0 request without keep-alive and a malformed request still close.
func TestHTTPKeepAliveAnswers(t *testing.T) {
	srv := boshServer(t, engine.Web{})
	c, err := net.DialTimeout("tcp", srv.WebAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	read := func(method string, wantCode int) *http.Response {
		t.Helper()
		// The method tells the reader that a HEAD answer has no body.
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading an answer: %v", err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantCode {
			t.Fatalf("status %d, want %d", resp.StatusCode, wantCode)
		}
		return resp
	}
	for _, req := range []struct {
		raw  string
		code int
	}{
		{"OPTIONS /http-bind HTTP/1.1\r\nHost: localhost\r\nOrigin: https://chat.example\r\nAccess-Control-Request-Method: POST\r\n\r\n", 204},
		{"GET /http-bind HTTP/1.1\r\nHost: localhost\r\n\r\n", 405},
		{"GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\n\r\n", 200},
		{"HEAD /.well-known/host-meta.json HTTP/1.1\r\nHost: localhost\r\n\r\n", 200},
	} {
		io.WriteString(c, req.raw)
		resp := read(strings.Fields(req.raw)[0], req.code)
		if resp.Close {
			t.Fatalf("%q: the connection was closed", strings.SplitN(req.raw, "\r\n", 2)[0])
		}
		if strings.HasPrefix(req.raw, "HEAD") && resp.ContentLength <= 0 {
			t.Fatalf("HEAD: Content-Length %d, want the GET's", resp.ContentLength)
		}
	}
	b := &boshRaw{t: t, c: c, br: br}
	b.post("<body "+boshNS+" rid='100' to='localhost' hold='1' wait='2' ver='1.11' xmpp:version='1.0'/>", "")
	if conn, resp := b.answer(); conn != "keep-alive" || bodyAttrs(resp)["sid"] == "" {
		t.Fatalf("session creation after the preflight: Connection %q, %s", conn, resp)
	}

	for _, raw := range []string{
		"GET /.well-known/host-meta HTTP/1.0\r\nHost: localhost\r\n\r\n",
		"GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
	} {
		c, err := net.DialTimeout("tcp", srv.WebAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, raw)
		all, err := io.ReadAll(c) // returns at EOF: the server closed
		c.Close()
		if err != nil || !strings.HasPrefix(string(all), "HTTP/1.1 ") {
			t.Fatalf("%q: %v %q", raw, err, all)
		}
	}
}

// TestBoshSessionsDoNotLeak: sessions that end by terminate and sessions abandoned to the
// inactivity timeout leave nothing behind: no session in the server's table, no open
// stream, and no goroutine (each session runs its callbacks on a goroutine of its own while
// it has any).
func TestBoshSessionsDoNotLeak(t *testing.T) {
	srv := boshServer(t, engine.Web{BOSHInactivity: time.Second})
	srv.AddUser(t, "alice", "pw")
	idle := func() { http.DefaultTransport.(*http.Transport).CloseIdleConnections() }
	// One round first, so that pools, the account cache and the HTTP client's own
	// goroutines exist before the baseline.
	a := boshLogin(t, srv, "alice", "pw", "warm")
	a.send(" type='terminate'", "<presence type='unavailable' xmlns='jabber:client'/>")
	waitEstablished(t, srv, 0)
	idle()
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < 30; i++ {
		a := boshLogin(t, srv, "alice", "pw", "t"+strconv.Itoa(i))
		a.send("", "<presence xmlns='jabber:client'/>")
		if resp := a.send(" type='terminate'", "<presence type='unavailable' xmlns='jabber:client'/>"); bodyAttrs(resp)["type"] != "terminate" {
			t.Fatalf("terminate %d: %s", i, resp)
		}
	}
	for i := 0; i < 10; i++ {
		boshLogin(t, srv, "alice", "pw", "a"+strconv.Itoa(i)) // abandoned: ends after 1 s without a request
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		idle()
		n, open, g := engine.BOSHSessions(srv.Engine), srv.Engine.Stats().Open, runtime.NumGoroutine()
		if n == 0 && open == 0 && g <= base+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 40 sessions ended: %d BOSH sessions held, %d streams open, %d goroutines (%d before)", n, open, g, base)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBoshAdmission: a BOSH session is admitted as a TCP stream is: it counts among its
// address's unauthenticated streams (max_unauth_per_addr) until it logs in or ends, so
// an address cannot open sessions without end.
func TestBoshAdmission(t *testing.T) {
	// The limit counts the HTTP connection too: one, kept alive for every request here.
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, MaxUnauthAddr: 3})
	srv.AddUser(t, "alice", "pw")
	url := "http://" + srv.WebAddr() + "/http-bind"
	tr := &http.Transport{MaxConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	cl := &http.Client{Timeout: 20 * time.Second, Transport: tr}
	post := func(body string) string {
		t.Helper()
		resp, err := cl.Post(url, "text/xml; charset=utf-8", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	create := func() map[string]string {
		return bodyAttrs(post("<body " + boshNS + " rid='1' to='" + srv.Domain() + "' hold='1' wait='1' ver='1.11' xmpp:version='1.0'/>"))
	}
	first := create()
	if first["sid"] == "" || create()["sid"] == "" {
		t.Fatal("the first two sessions were refused")
	}
	if at := create(); at["type"] != "terminate" || at["condition"] != "policy-violation" {
		t.Fatalf("a third unauthenticated session: %v", at)
	}
	// A session that ends gives its place back.
	if at := bodyAttrs(post("<body " + boshNS + " rid='2' sid='" + first["sid"] + "' type='terminate'/>")); at["type"] != "terminate" {
		t.Fatalf("terminate: %v", at)
	}
	time.Sleep(100 * time.Millisecond)
	if at := create(); at["sid"] == "" {
		t.Fatalf("a session after one ended: %v", at)
	}
}

// TestBoshEarlyRequestAnswered: a request sent ahead of a gap (rid+2 without rid+1) is
// answered when the session ends, instead of holding its connection for good.
func TestBoshEarlyRequestAnswered(t *testing.T) {
	srv := boshServer(t, engine.Web{BOSHInactivity: time.Second})
	b, _ := boshCreate(t, srv, " wait='2'")
	got := make(chan string, 1)
	go func() {
		cl := &http.Client{Timeout: 15 * time.Second}
		resp, err := cl.Post(b.url, "text/xml; charset=utf-8", strings.NewReader(b.body(b.rid+2, "", "")))
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		got <- string(body)
	}()
	select {
	case resp := <-got:
		if at := bodyAttrs(resp); at["type"] != "terminate" {
			t.Fatalf("the early request: %s", resp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the early request was not answered 10 s after its session's inactivity limit")
	}
}

// TestBoshAuthenticatedConnections: the HTTP connections that carry an authenticated
// session's requests stop counting among their address's unauthenticated connections:
// a few BOSH users behind one address (a NAT) used up the address's allowance and kept
// every other client from there out.
func TestBoshAuthenticatedConnections(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, MaxUnauthAddr: 3})
	srv.AddUser(t, "alice", "pw")
	for i := range 3 {
		// Each user on a kept connection of its own, over HTTPS (PLAIN needs TLS).
		tr := &http.Transport{TLSClientConfig: srv.ClientTLS(), MaxConnsPerHost: 1}
		t.Cleanup(tr.CloseIdleConnections)
		b := &boshClient{t: t, url: "https://" + srv.WebTLSAddr() + "/http-bind", rid: 1000,
			cl: &http.Client{Timeout: 20 * time.Second, Transport: tr}}
		_, _, resp := boshPostWith(t, b.cl, b.url, "<body "+boshNS+" rid='1000' to='"+srv.Domain()+
			"' hold='1' wait='1' ver='1.11' xmpp:version='1.0'/>")
		if b.sid = bodyAttrs(resp)["sid"]; b.sid == "" {
			t.Fatalf("session %d refused: %s", i, resp)
		}
		resp = b.send("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+
			base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pw"))+"</auth>")
		b.until(resp, "<success")
		resp = b.send(" to='"+srv.Domain()+"' xmpp:restart='true'", "")
		b.until(resp, "urn:ietf:params:xml:ns:xmpp-bind")
		resp = b.send("", "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
		b.until(resp, "<jid>alice@")
	}
	// Three kept HTTP connections from 127.0.0.1, all of logged-in sessions: a client
	// from there still gets in.
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
}

// TestBoshLargeStanzaToHeldRequest: a stanza larger than the outbound bound goes out on
// the request the client holds, rather than ending the session as data nobody came for.
func TestBoshLargeStanzaToHeldRequest(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, MaxOutbound: 64 << 10,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	bob := boshLogin(t, srv, "bob", "pw", "web")
	alice := srv.LoginPlain(t, "alice", "pw", "pc")
	got := make(chan string, 1)
	go func() { got <- bob.send("", "") }() // held until something comes
	time.Sleep(300 * time.Millisecond)
	big := strings.Repeat("x", 100<<10)
	alice.Send("<message to='bob@localhost/web' id='big'><body>" + big + "</body></message>")
	select {
	case resp := <-got:
		if strings.Contains(resp, "terminate") || !strings.Contains(resp, big) {
			t.Fatalf("the held request got %d bytes: %.200q", len(resp), resp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held request got nothing")
	}
}
