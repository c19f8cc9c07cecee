package engine_test

import (
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// directPair starts a.localhost and b.localhost with STARTTLS and direct TLS s2s
// listeners, reaching each other over direct TLS (XEP-0368), alice on a and bob on b.
func directPair(t *testing.T) (a, b *vireotest.Server) {
	t.Helper()
	direct := func(o *vireotest.Options) { o.S2SDirectTLS, o.S2SNoBidi = true, true } // a stream each way
	a, b = federatedWith(t, direct, direct)
	vireotest.FederateDirectTLS(a, b)
	return a, b
}

// TestS2SDirectTLS: two servers reach each other over XEP-0368 direct TLS in both
// directions, and both list the streams as such.
func TestS2SDirectTLS(t *testing.T) {
	a, b := directPair(t)
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>over direct tls</body></message>")
	bob.Expect("over direct tls")
	bob.Send("<message to='alice@a.localhost/phone' type='chat'><body>and back</body></message>")
	alice.Expect("and back")
	for _, s := range []struct {
		srv    *vireotest.Server
		remote string
	}{{a, "b.localhost"}, {b, "a.localhost"}} {
		conns := waitS2S(t, s.srv, 5*time.Second, s.srv.Domain()+" lists both directions", func(c []engine.S2SConn) bool { return len(c) == 2 })
		for _, dir := range []string{"in", "out"} {
			c, ok := findS2S(conns, s.remote, dir)
			if !ok || !c.DirectTLS || c.TLS != "1.3" || c.Auth != "dialback" {
				t.Fatalf("%s %s stream to %s: %+v (%v)", s.srv.Domain(), dir, s.remote, c, ok)
			}
		}
	}
	// The STARTTLS listener still serves, and its streams are not listed as direct TLS.
	r := s2sLogin(t, b)
	r.Send("<message from='alice@a.localhost/x' to='bob@b.localhost/pc' type='chat'><body>starttls still</body></message>")
	bob.Expect("starttls still")
	conns := waitS2S(t, b, 5*time.Second, "the STARTTLS stream listed", func(c []engine.S2SConn) bool { return len(c) == 3 })
	n := 0
	for _, c := range conns {
		if c.Direction == "in" && !c.DirectTLS {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("want one inbound STARTTLS stream: %+v", conns)
	}
}

// TestS2SDirectTLSRaw: on the direct TLS listener the handshake comes first, ALPN
// xmpp-server is agreed, the features offer no STARTTLS, and a <starttls/> is refused
// (XEP-0368 §3: STARTTLS MUST NOT be used over direct TLS).
func TestS2SDirectTLSRaw(t *testing.T) {
	_, b := directPair(t)
	hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='a.localhost' to='b.localhost' version='1.0'>"
	r := vireotest.DialAddr(t, b.S2STLSAddr())
	r.StartTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "b.localhost", NextProtos: []string{"xmpp-server"}})
	if p := r.Conn().(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "xmpp-server" {
		t.Fatalf("ALPN %q", p)
	}
	r.Send(hdr)
	feat := r.Expect("</stream:features>")
	if strings.Contains(feat, "starttls") || !strings.Contains(feat, "urn:xmpp:features:dialback") {
		t.Fatalf("features on direct TLS: %q", feat)
	}
	r.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if got := r.ExpectClosed(); !strings.Contains(got, "<failure") {
		t.Fatalf("starttls inside direct TLS: %q", got)
	}
	// A client that asks for another protocol is refused in the handshake.
	c, err := tls.Dial("tcp", b.S2STLSAddr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"xmpp-client"}})
	if err == nil {
		c.Close()
		t.Fatal("handshake with ALPN xmpp-client succeeded on the s2s listener")
	}
}

// TestS2SDirectTLSSRV: a domain found through DNS is dialed at its _xmpps-server target
// with TLS first when that ranks ahead, and at its _xmpp-server target with STARTTLS when
// the direct TLS ones fail, one refusing the connection and one not speaking TLS
// (XEP-0368 §3: one merged list).
func TestS2SDirectTLSSRV(t *testing.T) {
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true, S2SDirectTLS: true})
	c := vireotest.Start(t, vireotest.Options{Domain: "c.localhost", AllowPlain: true, S2S: true})
	port := func(addr string) uint16 {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return uint16(n)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	dns := tableDNS{
		srv: map[string][]*net.SRV{"b.localhost": {{Target: "xmpp.b.test.", Port: port(b.S2SAddr()), Priority: 10}},
			"c.localhost": {{Target: "xmpp.c.test.", Port: port(c.S2SAddr()), Priority: 10}}},
		direct: map[string][]*net.SRV{"b.localhost": {{Target: "xmpp.b.test.", Port: port(b.S2STLSAddr()), Priority: 5}},
			"c.localhost": {{Target: "xmpp.c.test.", Port: port(dead), Priority: 5},
				{Target: "xmpp.c.test.", Port: port(c.S2SAddr()), Priority: 6}}},
		hosts: map[string][]string{"xmpp.b.test": {"127.0.0.1"}, "xmpp.c.test": {"127.0.0.1"}},
	}
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true, S2SResolver: dns})
	// b and c answer dialback through their tables.
	b.Engine.SetS2SHosts(map[string]string{"a.localhost": a.S2SAddr()})
	c.Engine.SetS2SHosts(map[string]string{"a.localhost": a.S2SAddr()})
	a.AddUser(t, "alice", "secret")
	b.AddUser(t, "bob", "secret")
	c.AddUser(t, "carol", "secret")
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	for _, tc := range []struct {
		srv    *vireotest.Server
		user   string
		direct bool
	}{{b, "bob", true}, {c, "carol", false}} {
		peer := tc.srv.LoginPlain(t, tc.user, "secret", "pc")
		peer.Send("<presence/>")
		alice.Send("<message to='" + tc.user + "@" + tc.srv.Domain() + "/pc' type='chat'><body>found by SRV</body></message>")
		peer.Expect("found by SRV")
		if o, ok := findS2S(a.Engine.S2SConns(), tc.srv.Domain(), "out"); !ok || o.DirectTLS != tc.direct {
			t.Fatalf("a's stream to %s: %+v (%v), want direct TLS %v", tc.srv.Domain(), o, ok, tc.direct)
		}
	}
}
