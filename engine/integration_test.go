package engine_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	mjid "mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// client is a mellium session with everything it receives captured as XML text.
type client struct {
	s    *xmpp.Session
	mu   sync.Mutex
	got  strings.Builder
	done chan struct{}
}

func (c *client) serve(t *testing.T) {
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		c.s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var b strings.Builder
			e := xml.NewEncoder(&b)
			e.EncodeToken(*start)
			xmlstream.Copy(e, r)
			e.EncodeToken(start.End())
			e.Flush()
			c.mu.Lock()
			c.got.WriteString(b.String())
			c.mu.Unlock()
			return nil
		}))
	}()
}

func (c *client) waitFor(t *testing.T, substr ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		g := c.got.String()
		c.mu.Unlock()
		all := true
		for _, s := range substr {
			if !strings.Contains(g, s) {
				all = false
			}
		}
		if all {
			return g
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("did not receive %q; got %s", substr, c.got.String())
	return ""
}

func (c *client) send(t *testing.T, raw string) {
	t.Helper()
	ctx := vireotest.Context(t, 5*time.Second)
	d := xml.NewDecoder(strings.NewReader(raw))
	if err := c.s.Send(ctx, d); err != nil {
		t.Fatalf("send %s: %v", raw, err)
	}
}

func loginSTARTTLS(t *testing.T, srv *vireotest.Server, user, pass, res string, mech msasl.Mechanism) *client {
	t.Helper()
	ctx := vireotest.Context(t, 10*time.Second)
	conn, err := net.Dial("tcp", srv.C2SAddr())
	if err != nil {
		t.Fatal(err)
	}
	j := mjid.MustParse(user + "@" + srv.Domain() + "/" + res)
	s, err := xmpp.NewClientSession(ctx, j, conn,
		xmpp.StartTLS(srv.ClientTLS()),
		xmpp.SASL("", pass, mech),
		xmpp.BindResource(),
	)
	if err != nil {
		conn.Close()
		t.Fatalf("login %s over STARTTLS: %v", user, err)
	}
	c := &client{s: s}
	t.Cleanup(func() { s.Close(); conn.Close() })
	return c
}

func loginDirectTLS(t *testing.T, srv *vireotest.Server, user, pass, res string, mech msasl.Mechanism) (*client, error) {
	t.Helper()
	ctx := vireotest.Context(t, 10*time.Second)
	cfg := srv.ClientTLS()
	cfg.MinVersion = tls.VersionTLS13
	conn, err := tls.Dial("tcp", srv.TLSAddr(), cfg)
	if err != nil {
		return nil, err
	}
	origin := mjid.MustParse(user + "@" + srv.Domain() + "/" + res)
	s, err := xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{xmpp.SASL("", pass, mech), xmpp.BindResource()}}
	}))
	if err != nil {
		conn.Close()
		return nil, err
	}
	t.Cleanup(func() { s.Close(); conn.Close() })
	return &client{s: s}, nil
}

// TestIntegrationLoginAndChat: STARTTLS + SCRAM-SHA-256 and direct TLS + SCRAM-SHA-1-PLUS
// with mellium.im/xmpp, then a chat message both ways through the router.
//
// It runs with two event loops (alice and bob on different ones, routed across) and with
// one, as [runtime] event_loops = 1 configures.
func TestIntegrationLoginAndChat(t *testing.T) {
	for _, loops := range []int{2, 1} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) { testLoginAndChat(t, loops) })
	}
}

func testLoginAndChat(t *testing.T, loops int) {
	srv := vireotest.Start(t, vireotest.Options{Loops: loops})
	srv.AddUser(t, "alice", "alice secret")
	srv.AddUser(t, "bob", "bob secret")

	alice := loginSTARTTLS(t, srv, "alice", "alice secret", "laptop", msasl.ScramSha256)
	bob, err := loginDirectTLS(t, srv, "bob", "bob secret", "phone", msasl.ScramSha1Plus)
	if err != nil {
		t.Fatalf("bob over direct TLS with SCRAM-SHA-1-PLUS: %v", err)
	}
	if got := bob.s.LocalAddr().Bare().String(); got != "bob@localhost" {
		t.Fatalf("bound JID = %s", got)
	}
	aliceJID := alice.s.LocalAddr().String()
	bobJID := bob.s.LocalAddr().String()
	alice.serve(t)
	bob.serve(t)
	alice.send(t, "<presence/>")
	bob.send(t, "<presence/>")
	alice.waitFor(t, aliceJID) // own presence reflected
	alice.send(t, "<message to='bob@localhost' type='chat' id='m1'><body>hi bob &amp; co</body></message>")
	got := bob.waitFor(t, "hi bob &amp; co")
	if !strings.Contains(got, `from="`+aliceJID+`"`) {
		t.Fatalf("message not stamped with the sender's full JID: %s", got)
	}
	bob.send(t, "<message to='"+aliceJID+"' type='chat' id='m2'><body>hello alice</body></message>")
	alice.waitFor(t, "hello alice", `from="`+bobJID+`"`)
	// Unknown namespaces to the server get service-unavailable (RFC 6120 §8.4).
	alice.send(t, "<iq type='get' id='q1'><query xmlns='urn:example:nothing'/></iq>")
	alice.waitFor(t, "service-unavailable")
}

func TestIntegrationWrongPassword(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{})
	srv.AddUser(t, "alice", "right")
	if _, err := loginDirectTLS(t, srv, "alice", "wrong", "r", msasl.ScramSha256); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if _, err := loginDirectTLS(t, srv, "nobody", "x", "r", msasl.ScramSha256); err == nil {
		t.Fatal("login of an unknown user succeeded")
	}
	if _, err := loginDirectTLS(t, srv, "alice", "right", "r", msasl.ScramSha256); err != nil {
		t.Fatalf("correct login after failures: %v", err)
	}
}

func TestIntegrationOfflineDelivery(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{})
	srv.AddUser(t, "alice", "a")
	srv.AddUser(t, "carol", "c")
	alice := loginSTARTTLS(t, srv, "alice", "a", "pc", msasl.ScramSha256)
	alice.serve(t)
	alice.send(t, "<message to='carol@localhost' type='chat' id='off1'><body>while you were out</body></message>")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := srv.Store.Offline().Count("carol@localhost"); n == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, _ := srv.Store.Offline().Count("carol@localhost"); n != 1 {
		t.Fatalf("offline count = %d", n)
	}
	carol := loginSTARTTLS(t, srv, "carol", "c", "phone", msasl.ScramSha256)
	carol.serve(t)
	carol.send(t, "<presence/>")
	got := carol.waitFor(t, "while you were out", "urn:xmpp:delay")
	if !strings.Contains(got, "stamp=") {
		t.Fatalf("no delay stamp: %s", got)
	}
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := srv.Store.Offline().Count("carol@localhost"); n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("delivered offline message was not deleted")
}

func TestIntegrationConflict(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "a")
	first := srv.LoginPlain(t, "alice", "a", "same")
	second := srv.LoginPlain(t, "alice", "a", "same")
	got := first.ExpectClosed()
	if !strings.Contains(got, "<conflict") {
		t.Fatalf("first stream closed without <conflict/>: %q", got)
	}
	second.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	second.Expect("id='p'")
}

var _ = io.EOF
var _ = stanza.Message{}

// TestIntegrationTLSResumption: a client that reconnects resumes its TLS session with the
// ticket it was given (no certificate, no signature), also after a config reload, and the
// resumed connection logs in.
func TestIntegrationTLSResumption(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	cfg := srv.ClientTLS()
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i, step := range []string{"first", "resumed", "after reload"} {
		if step == "after reload" {
			if err := srv.Engine.Reload(srv.Engine.Config()); err != nil {
				t.Fatal(err)
			}
		}
		c, err := tls.Dial("tcp", srv.TLSAddr(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ConnectionState().DidResume; got != (i > 0) {
			t.Fatalf("%s connection: resumed %v", step, got)
		}
		r := vireotest.NewRawConn(t, c)
		r.Send(srv.Header())
		// A resumed session served no certificate: the client would bind to the first
		// handshake's, which a renewal since may have replaced, so tls-server-end-point
		// is offered after full handshakes only (RFC 5929 §4.1, XEP-0440).
		feats := r.Expect("</stream:features>")
		if !strings.Contains(feats, "<channel-binding type='tls-exporter'/>") ||
			strings.Contains(feats, "tls-server-end-point") != (i == 0) {
			t.Fatalf("%s connection: channel bindings in %s", step, feats)
		}
		// Go's client takes the ticket from the first read after the handshake; log in so
		// the session carries data both ways on the record layer.
		r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
			base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "</auth>")
		r.Expect("<success")
		c.Close()
	}
}
