package engine_test

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationClientQuirks covers what real clients send that the first slice refused:
// a newline after <starttls/> (go-sendxmpp), whitespace before the XML declaration of the
// restarted stream, and an escaped xml:lang.
func TestIntegrationClientQuirks(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")

	r := srv.Dial(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n")
	r.Expect("<proceed")
	r.Send("\r\n ") // a later write, still before the ClientHello
	r.StartTLS(&tls.Config{RootCAs: srv.CertPool(), ServerName: "localhost"})
	r.Send("\n" + srv.Header())
	r.Expect("</stream:features>")
	r.Send(plainAuth("alice", "secret"))
	r.Expect("<success")
	r.Send("\n  <?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='a&amp;b'>")
	h := r.Expect("</stream:features>")
	if !strings.Contains(h, "xml:lang='a&amp;b'") {
		t.Fatalf("xml:lang not echoed once-escaped: %q", h)
	}
	r.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	r.Expect("id='b'")

	// A mismatched end tag is not-well-formed at once, not at a timeout.
	r.Send("<message><body>x</message>")
	if got := r.ExpectClosed(); !strings.Contains(got, "not-well-formed") {
		t.Fatalf("mismatched end tag: %q", got)
	}
	// A second stream header inside an open stream is an error at once.
	r2 := srv.LoginPlain(t, "alice", "secret", "two")
	r2.Send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
	if got := r2.ExpectClosed(); !strings.Contains(got, "<stream:error>") {
		t.Fatalf("second header: %q", got)
	}
}

// TestIntegrationSASLAcrossSTARTTLS: a SASL exchange begun in the clear does not go on
// after STARTTLS (RFC 6120 §5.4.3.3: what the client said before TLS is discarded). The
// restarted header may name another host, whose account the exchange's keys are not.
func TestIntegrationSASLAcrossSTARTTLS(t *testing.T) {
	no := false
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, RequireTLS: &no})
	srv.AddUser(t, "alice", "secret")
	r := srv.Dial(t)
	r.Send(srv.Header())
	if f := r.Expect("</stream:features>"); !strings.Contains(f, "SCRAM-SHA-256") {
		t.Fatalf("no SASL offered before TLS with require_tls off: %s", f)
	}
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" + base64.StdEncoding.EncodeToString([]byte("n,,n=alice,r=abcdefghijklmnop")) + "</auth>")
	r.Expect("</challenge>")
	r.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	r.Expect("<proceed")
	r.StartTLS(&tls.Config{RootCAs: srv.CertPool(), ServerName: "localhost"})
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString([]byte("c=biws,r=abcdefghijklmnop,p=AAAA")) + "</response>")
	if got := r.Expect("</failure>"); !strings.Contains(got, "<malformed-request") {
		t.Fatalf("the cleartext exchange went on after STARTTLS: %s", got)
	}
}

// TestIntegrationNoCleartextInHandshake: a client that stalls in the middle of its TLS
// handshake is closed at the pre-auth timeout without the stream error written in the
// clear into the TLS stream (everything after <proceed/> is TLS: RFC 6120 §5.4.3.3).
func TestIntegrationNoCleartextInHandshake(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{PreAuthTimeout: time.Second})
	r := srv.Dial(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	r.Expect("<proceed")
	r.Send("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") // the start of a ClientHello
	if got := r.ExpectClosed(); strings.Contains(got, "stream:error") || strings.Contains(got, "</stream:stream>") {
		t.Fatalf("cleartext written into the TLS handshake: %q", got)
	}
}

// TestIntegrationCloseNotifyAnswered: a client that ends its TLS write side with
// close_notify gets the server's close_notify before the socket closes (RFC 8446 §6.1), so
// that it can tell the end from a truncation. Go's client does not tell them apart, so the
// test counts what arrives after its close_notify: one protected record, the alert.
func TestIntegrationCloseNotifyAnswered(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	raw, err := net.Dial("tcp", srv.TLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	cc := &countingConn{Conn: raw}
	tc := tls.Client(cc, srv.ClientTLS())
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(tc, srv.Header())
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), "</stream:features>") {
		n, err := tc.Read(buf)
		if err != nil {
			t.Fatalf("features: %v (%q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	time.Sleep(100 * time.Millisecond) // session tickets and the like have arrived
	before := cc.read.Load()
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(tc); err != nil {
		t.Fatal(err)
	}
	if after := cc.read.Load() - before; after == 0 {
		t.Fatal("the server closed the socket without its close_notify")
	}
}

// countingConn counts the bytes read from the socket.
type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestIntegrationAuthzidDomain: an authzid naming the same user on another domain is
// another account: invalid-authzid (RFC 6120 §6.3.8), not a login as the user here; the
// same account written differently is the account.
func TestIntegrationAuthzidDomain(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	for _, tc := range []struct{ authz, want string }{
		{"alice@elsewhere.example", "<invalid-authzid/>"},
		{"alice@LOCALHOST", "<success"},
		{"alice", "<success"},
	} {
		r := srv.DialTLS(t)
		r.Send(srv.Header())
		r.Expect("</stream:features>")
		r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte(tc.authz+"\x00alice\x00secret")) + "</auth>")
		got, _ := r.ReadUntil(tc.want, 5*time.Second)
		if !strings.Contains(got, tc.want) {
			t.Errorf("authzid %q: want %s, got %q", tc.authz, tc.want, got)
		}
	}
}

// TestIntegrationSASLRetriesPerStream: a stream may fail to authenticate a few times (RFC
// 6120 §6.4.5: 2 to 5 retries); at the fifth failure it ends with policy-violation, whatever
// the per-address budget still allows.
func TestIntegrationSASLRetriesPerStream(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, AuthFailLimit: 100})
	srv.AddUser(t, "alice", "secret")
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	wrong := "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong")) + "</auth>"
	for i := 1; i < 5; i++ {
		r.Send(wrong)
		if got := r.Expect("</failure>"); !strings.Contains(got, "<not-authorized/>") {
			t.Fatalf("failure %d: %q", i, got)
		}
	}
	r.Send(wrong)
	if got := r.ExpectClosed(); !strings.Contains(got, "<not-authorized/>") || !strings.Contains(got, "<policy-violation") {
		t.Fatalf("fifth failure: want not-authorized, then policy-violation: %q", got)
	}
	// A new stream starts with a clean count.
	srv.LoginPlain(t, "alice", "secret", "r")
}
