package engine_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// streamsTo lists srv's server-to-server streams with remote.
func streamsTo(srv *vireotest.Server, remote string) []engine.S2SConn {
	var out []engine.S2SConn
	for _, c := range srv.Engine.S2SConns() {
		if c.Remote == remote {
			out = append(out, c)
		}
	}
	return out
}

// oneBidi waits until srv has exactly one stream with remote, in direction dir and
// bidirectional (XEP-0288), and fails the test otherwise.
func oneBidi(t *testing.T, srv *vireotest.Server, remote, dir string) {
	t.Helper()
	var got []engine.S2SConn
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = streamsTo(srv, remote)
		if len(got) == 1 && got[0].Direction == dir && got[0].Bidi {
			return
		}
	}
	t.Fatalf("streams with %s: %+v, want one bidirectional %q stream", remote, got, dir)
}

// TestS2SBidi: two servers that both speak XEP-0288 carry a conversation both ways over
// one connection, with dialback and with SASL EXTERNAL (whose stream restart comes before
// the receiving server's first stanza): the initiating server lists it outbound, the
// other inbound, and neither opens a second. When it ends, the next stanza either way
// opens a new one.
func TestS2SBidi(t *testing.T) {
	for _, tc := range []struct {
		name string
		pair func(t *testing.T) (a, b *vireotest.Server)
		auth string
	}{
		{"dialback", func(t *testing.T) (a, b *vireotest.Server) { return federatedWith(t, nil, nil) }, "dialback"},
		{"external", func(t *testing.T) (a, b *vireotest.Server) {
			a, b, _, _, _ = externalPairWith(t, false)
			a.AddUser(t, "alice", "secret")
			b.AddUser(t, "bob", "secret")
			return a, b
		}, "external"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.pair(t)
			alice := a.LoginPlain(t, "alice", "secret", "phone")
			alice.Send("<presence/>")
			bob := b.LoginPlain(t, "bob", "secret", "pc")
			bob.Send("<presence/>")
			for i := range 3 {
				n := string(rune('1' + i))
				alice.Send("<message to='bob@b.localhost/pc' type='chat' id='a" + n + "'><body>there " + n + "</body></message>")
				bob.Expect("there " + n)
				bob.Send("<message to='alice@a.localhost/phone' type='chat' id='b" + n + "'><body>back " + n + "</body></message>")
				alice.Expect("back " + n)
			}
			oneBidi(t, a, "b.localhost", "out")
			oneBidi(t, b, "a.localhost", "in")
			if c := streamsTo(a, "b.localhost")[0]; c.Auth != tc.auth {
				t.Fatalf("authenticated with %s, want %s", c.Auth, tc.auth)
			}

			// b ends the stream (denying a for a moment): b's next stanza opens its own
			// outbound stream, which a's then uses too.
			setS2SPolicy(t, b, func(c *engine.S2S) { c.Deny = []string{"a.localhost"} })
			for deadline := time.Now().Add(5 * time.Second); len(streamsTo(a, "b.localhost")) > 0 || len(streamsTo(b, "a.localhost")) > 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("streams after b denied a: %+v, %+v", streamsTo(a, "b.localhost"), streamsTo(b, "a.localhost"))
				}
			}
			setS2SPolicy(t, b, func(c *engine.S2S) { c.Deny = nil })
			bob.Send("<message to='alice@a.localhost/phone' type='chat' id='b9'><body>after the end</body></message>")
			alice.Expect("after the end")
			alice.Send("<message to='bob@b.localhost/pc' type='chat' id='a9'><body>and again</body></message>")
			bob.Expect("and again")
			oneBidi(t, b, "a.localhost", "out")
			oneBidi(t, a, "b.localhost", "in")
		})
	}
}

// TestS2SBidiOffer: the feature is offered only once TLS is up, and a server with
// bidirectional streams turned off neither offers it nor takes a request for it.
func TestS2SBidiOffer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noBidi bool
	}{{"on", false}, {"off", true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true, S2SNoBidi: tc.noBidi})
			r := vireotest.DialAddr(t, b.S2SAddr())
			hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='a.localhost' to='b.localhost' version='1.0'>"
			r.Send(hdr)
			if feat := r.Expect("</stream:features>"); strings.Contains(feat, "urn:xmpp:features:bidi") {
				t.Fatalf("bidi offered before TLS: %s", feat)
			}
			r.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
			r.Expect("<proceed")
			r.StartTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "b.localhost"})
			r.Send(hdr)
			feat := r.Expect("</stream:features>")
			if strings.Contains(feat, "<bidi xmlns='urn:xmpp:features:bidi'/>") == tc.noBidi {
				t.Fatalf("features after TLS with bidi %v: %s", !tc.noBidi, feat)
			}
			r.Send("<bidi xmlns='urn:xmpp:bidi'/>")
			if tc.noBidi {
				r.Expect("<not-authorized") // a request for what was not offered
				return
			}
			r.Send("<db:verify from='a.localhost' to='b.localhost' id='x'>key</db:verify>")
			if got := r.Expect("/>"); !strings.Contains(got, "type='invalid'") {
				t.Fatalf("the stream after <bidi/>: %s", got)
			}
		})
	}
}

// TestS2SBidiOutboundChecks: over our outbound stream with XEP-0288 on, a peer's stanza
// reaches our user only when it comes from the domain we connected to and for the domain
// we authenticated; a forged sender ends the stream with invalid-from (RFC 6120 §4.9.3.9)
// and is not delivered. The peer is a scripted server: it offers bidi, takes our dialback
// key without checking it, and must see <bidi/> before <db:result/>.
func TestS2SBidiOutboundChecks(t *testing.T) {
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true})
	a.AddUser(t, "alice", "secret")
	pki := newTestPKI(t)
	crtPEM, keyPEM := pki.issue(t, "c.localhost")
	cert, err := tls.X509KeyPair(crtPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	a.Engine.SetS2SHosts(map[string]string{"c.localhost": ln.Addr().String()})

	type result struct {
		order, spoofErr string
		err             error
	}
	done := make(chan result, 1)
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")
	go func() {
		var r result
		defer func() { done <- r }()
		nc, err := ln.Accept()
		if err != nil {
			r.err = err
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		var conn net.Conn = nc
		var buf []byte
		until := func(sub string) (string, error) {
			b := make([]byte, 4096)
			for !strings.Contains(string(buf), sub) {
				n, err := conn.Read(b)
				if err != nil {
					return string(buf), err
				}
				buf = append(buf, b[:n]...)
			}
			i := strings.Index(string(buf), sub) + len(sub)
			got := string(buf[:i])
			buf = buf[i:]
			return got, nil
		}
		hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='c.localhost' to='a.localhost' id='s1' version='1.0'>"
		step := func(want, send string) bool {
			if _, r.err = until(want); r.err != nil {
				return false
			}
			_, r.err = conn.Write([]byte(send))
			return r.err == nil
		}
		if !step("version='1.0'>", hdr+"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>") ||
			!step("<starttls", "") || !step("/>", "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>") {
			return
		}
		buf = nil
		conn = tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
		if !step("version='1.0'>", hdr+"<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback><bidi xmlns='urn:xmpp:features:bidi'/></stream:features>") {
			return
		}
		if r.order, r.err = until("</db:result>"); r.err != nil {
			return
		}
		if _, r.err = conn.Write([]byte("<db:result from='c.localhost' to='a.localhost' type='valid'/>")); r.err != nil {
			return
		}
		if _, r.err = until("first</body>"); r.err != nil { // alice's message, queued during the set-up
			return
		}
		conn.Write([]byte("<message from='carol@c.localhost/x' to='alice@a.localhost/phone' type='chat'><body>over bidi</body></message>" +
			"<message from='mallory@evil.localhost/x' to='alice@a.localhost/phone' type='chat'><body>spoof</body></message>"))
		r.spoofErr, r.err = until("</stream:stream>")
	}()
	alice.Send("<message to='carol@c.localhost' type='chat'><body>first</body></message>")
	alice.Expect("over bidi")
	r := <-done
	if r.err != nil {
		t.Fatalf("peer script: %v", r.err)
	}
	if i, j := strings.Index(r.order, "<bidi xmlns='urn:xmpp:bidi'/>"), strings.Index(r.order, "<db:result"); i < 0 || i > j {
		t.Fatalf("<bidi/> not before the dialback request: %s", r.order)
	}
	if !strings.Contains(r.spoofErr, "<invalid-from xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>") {
		t.Fatalf("after a forged sender: %q", r.spoofErr)
	}
	alice.Never("spoof")
}

// TestS2SBidiIdle: on the receiving server, what its own users send over a bidirectional
// stream keeps the stream from idling out, though the peer sends nothing back: b's
// stanzas go on over a's stream past b's idle_timeout, and b opens none of its own.
func TestS2SBidiIdle(t *testing.T) {
	// Two seconds: the sweep counts idle time in whole seconds.
	a, b := federatedWith(t, nil, func(o *vireotest.Options) { o.S2SIdleTimeout = 2 * time.Second })
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>opening</body></message>")
	bob.Expect("opening")
	oneBidi(t, b, "a.localhost", "in")
	for i := range 16 { // 4.8 s, more than twice b's idle_timeout
		n := string(rune('a' + i))
		bob.Send("<message to='alice@a.localhost/phone' type='chat'><body>tick " + n + "</body></message>")
		alice.Expect("tick " + n)
		time.Sleep(300 * time.Millisecond)
	}
	oneBidi(t, b, "a.localhost", "in")
}

// TestS2SBidiSlowPeer: a peer that asked for a bidirectional stream and stops reading is
// treated like a full outbound queue: stanzas beyond max_outbound bounce to their senders
// with resource-constraint, and the stream stays up (a slow server is not ended as a slow
// client would be).
func TestS2SBidiSlowPeer(t *testing.T) {
	pki := newTestPKI(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pki.caPEM)
	crt, key := pki.issue(t, "b.localhost")
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true, S2SCAs: pool,
		CertPEM: crt, KeyPEM: key, MaxOutbound: 64 << 10})
	b.AddUser(t, "bob", "secret")
	ccrt, ckey := pki.issue(t, "c.localhost")
	cert, err := tls.X509KeyPair(ccrt, ckey)
	if err != nil {
		t.Fatal(err)
	}
	r, feat := s2sTLS(t, b, "c.localhost", &cert)
	if !strings.Contains(feat, "urn:xmpp:features:bidi") {
		t.Fatalf("features: %s", feat)
	}
	r.Send("<bidi xmlns='urn:xmpp:bidi'/><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
	r.Expect("<success")
	r.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='c.localhost' to='b.localhost' version='1.0'>")
	r.Expect("<stream:features/>")

	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	bob.Send("<message to='carol@c.localhost' id='first' type='chat'><body>first</body></message>")
	r.Expect("id='first'") // over the peer's own stream: c.localhost has no address to dial

	// The peer reads nothing more. Its socket buffers fill, then the stream's outbox.
	body := strings.Repeat("x", 8<<10)
	bounced := false
	for i := 0; i < 4000 && !bounced; i++ {
		bob.Send(fmt.Sprintf("<message to='carol@c.localhost' id='m%d' type='chat'><body>%s</body></message>", i, body))
		if i%16 == 15 {
			if _, err := bob.ReadUntil("<resource-constraint", 20*time.Millisecond); err == nil {
				bounced = true
			}
		}
	}
	if !bounced {
		t.Fatal("no resource-constraint bounce while the peer read nothing")
	}
	oneBidi(t, b, "c.localhost", "in")
}
