package engine_test

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

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
	fuzzListener(f, webSeeds(), func(s *vireotest.Server) string { return s.WebAddr() })
}

// c2sSeeds are what a client sends before and while it logs in, pipelined.
func c2sSeeds() []string {
	const hdr = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
	plain := "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGZ1enoAZnV6eiBwdw==</auth>"
	return []string{
		hdr,
		hdr + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x01\x00\x05hello",
		hdr + plain + hdr + "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq><presence/></stream:stream>",
		hdr + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1mdXp6LHI9YWJjZGVm</auth><response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9YWJjZGVmLHA9QUFBQQ==</response><abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
		hdr + "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGZ1enoAZnV6eiBwdw==</initial-response><user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>f</software></user-agent><bind xmlns='urn:xmpp:bind2:0'><tag>t</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/><enable xmlns='urn:xmpp:carbons:2'/><inactive xmlns='urn:xmpp:csi:0'/></bind><request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>",
		hdr + "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>ZnV6egBBQUFB</initial-response><fast xmlns='urn:xmpp:fast:0' count='1'/><user-agent id='x'/></authenticate>",
		hdr + "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>new</username><password>pw</password></query></iq>",
		hdr + "<enable xmlns='urn:xmpp:sm:3' resume='true'/><resume xmlns='urn:xmpp:sm:3' previd='abc' h='5'/><r xmlns='urn:xmpp:sm:3'/>",
		hdr + "<message to='fuzz@localhost'><body>before auth</body></message>",
		"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='unknown.example' version='2.0'>",
		"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'><stream:stream>",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	}
}

// FuzzC2SInput writes any bytes to a client listener (STARTTLS port, plain allowed): stream
// headers, SASL and SASL2, registration, pipelined logins; then half-closes. The server
// must close the connection in time, and nothing may have panicked.
func FuzzC2SInput(f *testing.F) {
	fuzzListener(f, c2sSeeds(), func(s *vireotest.Server) string { return s.C2SAddr() })
}

// s2sRawSeeds are what a peer server sends before its stream is authenticated.
func s2sRawSeeds() []string {
	const hdr = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='a.localhost' to='localhost' version='1.0'>"
	return []string{
		hdr,
		hdr + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
		hdr + "<db:result from='a.localhost' to='localhost'>0123456789abcdef</db:result>",
		hdr + "<db:verify from='a.localhost' to='localhost' id='x'>0123</db:verify>",
		hdr + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
		hdr + "<bidi xmlns='urn:xmpp:bidi'/><db:result from='a.localhost' to='localhost'>0123</db:result>",
		hdr + "<message from='alice@a.localhost' to='fuzz@localhost'><body>early</body></message>",
		"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>",
		"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='' to='conference.localhost' version='1.0'></stream:stream>",
	}
}

// FuzzS2SInput writes any bytes to the server-to-server listener before authentication
// (stream headers, STARTTLS, dialback, SASL EXTERNAL) and half-closes: the server must
// close the connection in time, and nothing may have panicked.
func FuzzS2SInput(f *testing.F) {
	fuzzListener(f, s2sRawSeeds(), func(s *vireotest.Server) string { return s.S2SAddr() })
}

// fuzzListener runs a server (federation on, plain c2s allowed, one account), and for
// each input dials the listener addr names, writes the input and half-closes: the server
// must close within 10 s, and no handler may have recovered from a panic.
func fuzzListener(f *testing.F, seeds []string, addr func(*vireotest.Server) string) {
	panics, log := fuzzSetup(f, seeds)
	srv := vireotest.Start(f, vireotest.Options{AllowPlain: true, S2S: true, Logger: log})
	srv.AddUser(f, "fuzz", "fuzz pw")
	a := addr(srv)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := net.DialTimeout("tcp", a, 5*time.Second)
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
