package engine_test

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// wsSeedFrame is a masked client frame with a zero key, so that the fuzzer's mutations of
// the payload stay readable.
func wsSeedFrame(op byte, fin bool, payload string) string {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	}
	return string(append(append(b, 0, 0, 0, 0), payload...))
}

func webSeeds() []string {
	const open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
	upgrade := wsUpgrade + "Sec-WebSocket-Protocol: xmpp\r\n\r\n"
	body := "<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='localhost' wait='1' hold='1' xml:lang='en' ver='1.6' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>"
	return []string{
		"GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET /.well-known/host-meta.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		"GET /.well-known/host-meta HTTP/1.1\r\nHost: a\r\n\r\nGET /nope?x=%zz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 1.2.3.4, ::1\r\nForwarded: for=\"[::1]\";proto=https\r\n\r\n",
		upgrade + wsSeedFrame(0x1, true, open),
		upgrade + wsSeedFrame(0x1, true, open) + wsSeedFrame(0x1, true, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGZ1enoAZnV6eiBwdw==</auth>"),
		upgrade + wsSeedFrame(0x1, false, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' ") + wsSeedFrame(0x9, true, "ping") +
			wsSeedFrame(0x0, true, "to='localhost' version='1.0'/>") + wsSeedFrame(0x8, true, "\x03\xe8bye"),
		upgrade + wsSeedFrame(0x2, true, open),
		upgrade + wsSeedFrame(0x1, true, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"),
		"POST /http-bind HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body,
		"POST /http-bind HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<body\r\n0\r\n\r\n",
		"OPTIONS /http-bind HTTP/1.1\r\nHost: localhost\r\nOrigin: https://example.org\r\nAccess-Control-Request-Method: POST\r\n\r\n",
	}
}

// FuzzWebInput writes any bytes to the web listener (HTTP, host-meta, BOSH, RFC 7395
// WebSocket) and half-closes: the server must close the connection in time, and nothing may
// have panicked.
func FuzzWebInput(f *testing.F) {
	for _, s := range webSeeds() {
		f.Add([]byte(s))
	}
	var panics panicCounter
	log := zerolog.New(io.Discard).Level(zerolog.ErrorLevel).Hook(&panics)
	srv := vireotest.Start(f, vireotest.Options{AllowPlain: true, Logger: &log})
	srv.AddUser(f, "fuzz", "fuzz pw")
	addr := srv.WebAddr()
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(b) // the server may close before all of it is taken; that is its right
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("after %q: the server kept the connection open 10 s past the client's end", b)
			}
		}
		if m := panics.last(); m != "" {
			t.Fatalf("after %q: %s", b, m)
		}
	})
}
