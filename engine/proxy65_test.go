package engine_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/proxy65"
)

// proxyServer runs a server whose XEP-0065 proxy tells clients to connect to 127.0.0.1
// (the test domain's proxy.localhost need not resolve).
func proxyServer(t *testing.T, tune func(*proxy65.Config)) *vireotest.Server {
	t.Helper()
	return vireotest.Start(t, vireotest.Options{AllowPlain: true, Components: []engine.Component{{Domain: "bot.localhost", Secret: compSecret}},
		ModuleConfig: func(id string, v any) error {
			if c, ok := v.(*proxy65.Config); ok {
				c.Address = "127.0.0.1"
				if tune != nil {
					tune(c)
				}
			}
			return nil
		}})
}

var streamhostRe = regexp.MustCompile(`<streamhost jid='proxy.localhost' host='127.0.0.1' port='(\d+)'/>`)

// socksConnect opens a SOCKS5 connection to the proxy for hash, as a client of XEP-0065
// §6.3.2 does, and returns it with the proxy's reply code.
func socksConnect(t *testing.T, addr, hash string) (net.Conn, byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := append([]byte{5, 2, 0, 2, 5, 1, 0, 3, byte(len(hash))}, hash...) // methods: none, user/pass
	c.Write(append(req, 0, 0))
	var m [2]byte
	if _, err := io.ReadFull(c, m[:]); err != nil || m != [2]byte{5, 0} {
		t.Fatalf("method selection: %v %v", m, err)
	}
	rep := make([]byte, 5)
	if _, err := io.ReadFull(c, rep); err != nil {
		return c, 0xff
	}
	if rep[1] == 0 {
		rest := make([]byte, int(rep[4])+2)
		io.ReadFull(c, rest)
		if string(rest[:len(hash)]) != hash {
			t.Fatalf("BND.ADDR %q, want the request's %q", rest, hash)
		}
	}
	c.SetDeadline(time.Time{})
	return c, rep[1]
}

// TestIntegrationProxy65: the proxy as XEP-0065 describes it, with raw streams and raw
// SOCKS5: found through the server's disco#items, its identity and address; activation
// errors before both parties are there; bytes both ways once active, a half-close passed
// on; a third party for the same stream refused; services and users of other servers
// forbidden.
func TestIntegrationProxy65(t *testing.T) {
	srv := proxyServer(t, nil)
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	alice := srv.LoginPlain(t, "alice", "secret", "desk")

	items := pepIQ(alice, "i1", "<iq type='get' id='i1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	mustHave(t, "server items", items, "<item jid='proxy.localhost' name='SOCKS5 Bytestreams Proxy'/>")
	info := pepIQ(alice, "i2", "<iq type='get' id='i2' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	mustHave(t, "proxy info", info, "<identity category='proxy' type='bytestreams'", "<feature var='http://jabber.org/protocol/bytestreams'/>")
	a := pepIQ(alice, "i3", "<iq type='get' id='i3' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>")
	m := streamhostRe.FindStringSubmatch(a)
	if m == nil {
		t.Fatalf("no streamhost in %q", a)
	}
	addr := "127.0.0.1:" + m[1]

	const sid = "vxf9n471bn46"
	hash := proxy65.Hash(sid, "alice@localhost/desk", "bob@localhost/phone")
	activate := func(id string) string {
		return pepIQ(alice, id, "<iq type='set' id='"+id+"' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams' sid='"+sid+
			"'><activate>bob@localhost/phone</activate></query></iq>")
	}
	mustHave(t, "activation with nobody connected", activate("a1"), "type='error'", "<item-not-found ")
	target, code := socksConnect(t, addr, hash)
	if code != 0 {
		t.Fatalf("target's CONNECT: reply %d", code)
	}
	mustHave(t, "activation with the target alone", activate("a2"), "type='error'", "<not-allowed ")
	requester, code := socksConnect(t, addr, strings.ToUpper(hash)) // hexadecimal in either case
	if code != 0 {
		t.Fatalf("requester's CONNECT: reply %d", code)
	}
	if _, code := socksConnect(t, addr, hash); code != 2 {
		t.Fatalf("a third connection for the stream: reply %d, want 2 (not allowed)", code)
	}
	// Bytes sent before the activation wait in the kernel and are relayed, not lost.
	requester.Write([]byte("early "))
	mustHave(t, "activation", activate("a3"), "type='result'")

	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	go func() {
		requester.Write(payload)
		requester.(*net.TCPConn).CloseWrite()
	}()
	target.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(target) // ends at the requester's half-close
	if err != nil || !bytes.Equal(got, append([]byte("early "), payload...)) {
		t.Fatalf("target read %d bytes (%v), want %d", len(got), err, len(payload)+6)
	}
	target.Write([]byte("thanks"))
	target.(*net.TCPConn).CloseWrite()
	requester.SetDeadline(time.Now().Add(10 * time.Second))
	if back, err := io.ReadAll(requester); err != nil || string(back) != "thanks" {
		t.Fatalf("requester read %q (%v)", back, err)
	}
	mustHave(t, "a second activation", activate("a4"), "type='error'", "<item-not-found ")

	// A component (not a user of this server) may neither ask nor activate.
	comp, _ := componentLogin(t, srv, "bot.localhost", compSecret)
	comp.Expect("<handshake/>")
	comp.Send("<iq type='get' id='c1' from='bot.localhost' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>")
	got2 := comp.Expect("id='c1'")
	got2 += comp.Expect("</iq>")
	mustHave(t, "component", got2, "type='error'", "<forbidden")

	bad := pepIQ(alice, "b1", "<iq type='set' id='b1' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams'><activate>bob@localhost</activate></query></iq>")
	mustHave(t, "activation without sid", bad, "type='error'", "<bad-request")
}

// TestIntegrationProxy65Limits: the waiting connections of one address are bounded, a
// SOCKS5 request that is not a stream hash is refused, and an account's active streams are
// bounded (resource-constraint, wait) and counted again once one ends.
func TestIntegrationProxy65Limits(t *testing.T) {
	srv := proxyServer(t, func(c *proxy65.Config) { c.MaxStreamsPerUser = 1 })
	srv.AddUser(t, "alice", "secret")
	alice := srv.LoginPlain(t, "alice", "secret", "desk")
	m := streamhostRe.FindStringSubmatch(pepIQ(alice, "i", "<iq type='get' id='i' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>"))
	if m == nil {
		t.Fatal("no streamhost")
	}
	addr := "127.0.0.1:" + m[1]

	// Not a hash: address type IPv4.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	c.SetDeadline(time.Now().Add(5 * time.Second))
	rep, _ := io.ReadAll(c)
	if len(rep) < 4 || rep[2] != 5 || rep[3] != 8 {
		t.Fatalf("IPv4 CONNECT: %v, want method 0 then reply 8 (address type not supported)", rep)
	}
	c.Close()

	// 32 connections from one address wait; the next is closed at once. Once their
	// clients close them, the proxy notices (it watches waiting connections) and takes
	// new ones again.
	var waiting []net.Conn
	for i := range 32 {
		c, code := socksConnect(t, addr, proxy65.Hash("w"+strconv.Itoa(i), "x", "y"))
		if code != 0 {
			t.Fatalf("waiting connection %d: reply %d", i, code)
		}
		waiting = append(waiting, c)
	}
	refused := func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{5, 1, 0})
		c.SetDeadline(time.Now().Add(5 * time.Second))
		n, _ := c.Read(make([]byte, 2))
		return n == 0
	}
	if !refused() {
		t.Fatal("the 33rd waiting connection of one address was taken")
	}
	for _, c := range waiting {
		c.Close()
	}
	for i := 0; refused(); i++ {
		if i == 100 {
			t.Fatal("closed waiting connections still count after 2 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	n := 0
	open := func() (net.Conn, net.Conn, string) {
		n++
		sid := "s" + strconv.Itoa(n)
		h := proxy65.Hash(sid, "alice@localhost/desk", "bob@localhost/x")
		t1, c1 := socksConnect(t, addr, h)
		t2, c2 := socksConnect(t, addr, h)
		if c1 != 0 || c2 != 0 {
			t.Fatalf("CONNECT: %d %d", c1, c2)
		}
		iq := pepIQ(alice, sid, "<iq type='set' id='"+sid+"' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams' sid='"+sid+
			"'><activate>bob@localhost/x</activate></query></iq>")
		return t1, t2, iq
	}
	a1, a2, iq := open()
	mustHave(t, "first stream", iq, "type='result'")
	b1, b2, iq := open()
	mustHave(t, "second stream at once", iq, "type='error'", "type='wait'", "<resource-constraint ")
	b1.Close()
	b2.Close()
	a1.Close()
	a2.Close()
	for i := 0; ; i++ {
		c1, c2, iq := open()
		if strings.Contains(iq, "type='result'") {
			break
		}
		c1.Close()
		c2.Close()
		if i == 100 {
			t.Fatalf("a stream after the first ended: %q", iq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIntegrationSlixmppProxy65: slixmpp's XEP-0065 plugin (a client nobody here wrote,
// which only does mediated connections) finds the proxy through disco, and two slixmpp
// clients move 1 MiB through it, with an answer back and the end of the stream seen.
func TestIntegrationSlixmppProxy65(t *testing.T) {
	needSlixmpp(t)
	srv := proxyServer(t, nil)
	srv.AddUser(t, "slix", "py secret")
	srv.AddUser(t, "bob", "bob secret")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := slixCmd(t, ctx, srv, "slixmpp_proxy65.py")
	cmd.Args = append(cmd.Args, "bob@localhost/recv", "bob secret")
	out, err := cmd.CombinedOutput()
	s := string(out)
	if err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, s)
	}
	for _, want := range []string{"PROXY proxy.localhost 127.0.0.1 ", "ACTIVATED", "RECEIVER SAW THE END 1048579"} {
		if !strings.Contains(s, want) {
			t.Fatalf("slixmpp output lacks %q:\n%s", want, s)
		}
	}
}
