package engine_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// federatedWith is federated with each server's options adjusted by opt (nil: none).
// noBidi makes a server open a stream per direction (no XEP-0288), for tests of each
// direction's stream.
func noBidi(o *vireotest.Options) { o.S2SNoBidi = true }

func federatedWith(t *testing.T, optA, optB func(*vireotest.Options)) (a, b *vireotest.Server) {
	t.Helper()
	oa := vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true, S2SSecret: []byte("secret-a")}
	ob := vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true}
	if optA != nil {
		optA(&oa)
	}
	if optB != nil {
		optB(&ob)
	}
	a, b = vireotest.Start(t, oa), vireotest.Start(t, ob)
	vireotest.Federate(a, b)
	a.AddUser(t, "alice", "secret")
	b.AddUser(t, "bob", "secret")
	return a, b
}

// findS2S returns the stream to remote in direction dir among conns.
func findS2S(conns []engine.S2SConn, remote, dir string) (engine.S2SConn, bool) {
	for _, c := range conns {
		if c.Remote == remote && c.Direction == dir {
			return c, true
		}
	}
	return engine.S2SConn{}, false
}

// waitS2S polls srv's stream list until cond holds, for up to d.
func waitS2S(t *testing.T, srv *vireotest.Server, d time.Duration, what string, cond func([]engine.S2SConn) bool) []engine.S2SConn {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c := srv.Engine.S2SConns()
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; streams %+v", what, d, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func expectBounce(t *testing.T, c *vireotest.RawConn, id, cond string) {
	t.Helper()
	got := c.Expect("</message>")
	if !strings.Contains(got, "type='error'") || !strings.Contains(got, cond) || !strings.Contains(got, "id='"+id+"'") {
		t.Fatalf("want %s for %s: %q", cond, id, got)
	}
}

// TestS2SCertPolicy: peers with self-signed certificates are reached with dialback and
// listed as such; with require_valid_certs the same peer is refused and the stanza bounces.
func TestS2SCertPolicy(t *testing.T) {
	a, b := federatedWith(t, nil, nil)
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>self-signed ok</body></message>")
	bob.Expect("self-signed ok")
	out, ok := findS2S(a.Engine.S2SConns(), "b.localhost", "out")
	if !ok || out.Auth != "dialback" || out.CertValid || out.TLS == "" || out.Local != "a.localhost" {
		t.Fatalf("outbound stream: %+v (%v)", out, ok)
	}
	in := waitS2S(t, b, 5*time.Second, "inbound listed", func(c []engine.S2SConn) bool { _, ok := findS2S(c, "a.localhost", "in"); return ok })
	if c, _ := findS2S(in, "a.localhost", "in"); c.Auth != "dialback" || c.Local != "b.localhost" || c.TLS == "" {
		t.Fatalf("inbound stream: %+v", c)
	}
	if st := a.Engine.Stats(); st.S2SOut != 1 || st.S2SIn != 0 {
		t.Fatalf("a stats: %+v", st)
	}

	c := vireotest.Start(t, vireotest.Options{Domain: "c.localhost", AllowPlain: true, S2S: true, S2SRequireValidCerts: true})
	c.AddUser(t, "carol", "secret")
	vireotest.Federate(c, b)
	carol := c.LoginPlain(t, "carol", "secret", "x")
	carol.Send("<message to='bob@b.localhost/pc' id='v1' type='chat'><body>strict</body></message>")
	expectBounce(t, carol, "v1", "remote-server-not-found")
	bob.Never("strict")
	if n := len(c.Engine.S2SConns()); n != 0 {
		t.Fatalf("c lists %d streams after a refusal", n)
	}
}

// TestS2SCertPolicyValid: with certificates from a CA both trust, require_valid_certs
// lets the stream up, and it is listed as validated and authenticated with EXTERNAL.
func TestS2SCertPolicyValid(t *testing.T) {
	pki := newTestPKI(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pki.caPEM)
	start := func(domain string) *vireotest.Server {
		crt, key := pki.issue(t, domain)
		return vireotest.Start(t, vireotest.Options{Domain: domain, AllowPlain: true, S2S: true, S2SCAs: pool,
			S2SRequireValidCerts: true, CertPEM: crt, KeyPEM: key})
	}
	a, b := start("a.localhost"), start("b.localhost")
	vireotest.Federate(a, b)
	a.AddUser(t, "alice", "secret")
	b.AddUser(t, "bob", "secret")
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>valid chain</body></message>")
	bob.Expect("valid chain")
	out, ok := findS2S(a.Engine.S2SConns(), "b.localhost", "out")
	if !ok || out.Auth != "external" || !out.CertValid || out.TLS != "1.3" {
		t.Fatalf("outbound stream: %+v (%v)", out, ok)
	}
	in := waitS2S(t, b, 5*time.Second, "inbound listed", func(c []engine.S2SConn) bool { _, ok := findS2S(c, "a.localhost", "in"); return ok })
	if c, _ := findS2S(in, "a.localhost", "in"); c.Auth != "external" || !c.CertValid {
		t.Fatalf("inbound stream: %+v", c)
	}
}

// tableDNS is an engine.S2SResolver from tables: _xmpp-server._tcp records (srv) and
// _xmpps-server._tcp ones (direct, XEP-0368) by domain, addresses by host.
type tableDNS struct {
	srv    map[string][]*net.SRV
	direct map[string][]*net.SRV
	hosts  map[string][]string
}

func (d tableDNS) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if r, ok := d.srv[name]; ok && service == "xmpp-server" && proto == "tcp" {
		return "", r, nil
	}
	if r, ok := d.direct[name]; ok && service == "xmpps-server" && proto == "tcp" {
		return "", r, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (d tableDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	if r, ok := d.hosts[host]; ok {
		return r, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestS2SSRV: a domain missing from the host table is reached through its SRV record;
// the first target has no address and is skipped.
func TestS2SSRV(t *testing.T) {
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true})
	_, port, _ := net.SplitHostPort(b.S2SAddr())
	p, _ := strconv.Atoi(port)
	dns := tableDNS{
		srv: map[string][]*net.SRV{"b.localhost": {{Target: "missing.b.test.", Port: 1, Priority: 1},
			{Target: "xmpp.b.test.", Port: uint16(p), Priority: 2}}},
		hosts: map[string][]string{"xmpp.b.test": {"127.0.0.1"}},
	}
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true, S2SResolver: dns})
	b.Engine.SetS2SHosts(map[string]string{"a.localhost": a.S2SAddr()}) // b answers dialback through its table
	a.AddUser(t, "alice", "secret")
	b.AddUser(t, "bob", "secret")
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>found by SRV</body></message>")
	bob.Expect("found by SRV")
	// A domain the resolver does not know bounces.
	alice.Send("<message to='x@nx.localhost' id='n1' type='chat'><body>?</body></message>")
	expectBounce(t, alice, "n1", "remote-server-not-found")
}

// TestS2SIdleClose: streams idle for idle_timeout are closed on both servers, and the
// next stanza opens new ones.
func TestS2SIdleClose(t *testing.T) {
	logs := new(syncBuffer)
	log := zerolog.New(logs)
	idle := func(o *vireotest.Options) { o.S2SIdleTimeout = time.Second; o.S2SNoBidi = true } // a stream each way
	a, b := federatedWith(t, func(o *vireotest.Options) { idle(o); o.Logger = &log }, idle)
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>first</body></message>")
	bob.Expect("first")
	bob.Send("<message to='alice@a.localhost/phone' type='chat'><body>reply</body></message>")
	alice.Expect("reply")
	if n := len(a.Engine.S2SConns()); n != 2 {
		t.Fatalf("a lists %d streams, want in and out: %+v", n, a.Engine.S2SConns())
	}
	none := func(c []engine.S2SConn) bool { return len(c) == 0 }
	waitS2S(t, a, 5*time.Second, "a's streams closed", none)
	waitS2S(t, b, 5*time.Second, "b's streams closed", none)
	if l := logs.String(); !strings.Contains(l, "s2s outbound stream idle, closing") && !strings.Contains(l, "s2s inbound stream closed") {
		t.Fatalf("a's log shows no idle close:\n%s", l)
	}
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>after idle</body></message>")
	bob.Expect("after idle")
	bob.Send("<message to='alice@a.localhost/phone' type='chat'><body>back again</body></message>")
	alice.Expect("back again")
}

// TestS2SIdlePeerCloses: only the receiving server closes idle streams; the sender's
// outbound stream, ended by the peer, is retired without bouncing anything, and the next
// stanza goes over a new one.
func TestS2SIdlePeerCloses(t *testing.T) {
	a, b := federatedWith(t, nil, func(o *vireotest.Options) { o.S2SIdleTimeout = time.Second })
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' id='p1' type='chat'><body>before</body></message>")
	bob.Expect("before")
	waitS2S(t, a, 5*time.Second, "a's outbound retired after b closed it", func(c []engine.S2SConn) bool {
		_, ok := findS2S(c, "b.localhost", "out")
		return !ok
	})
	alice.Send("<message to='bob@b.localhost/pc' id='p2' type='chat'><body>after</body></message>")
	bob.Expect("after")
	alice.Never("type='error'")
}

// TestS2SIdleInbound: a peer's stream silent for idle_timeout ends with a bare
// </stream:stream>, not a stream error.
func TestS2SIdleInbound(t *testing.T) {
	_, b := federatedWith(t, nil, func(o *vireotest.Options) { o.S2SIdleTimeout = time.Second })
	r := s2sLogin(t, b)
	start := time.Now()
	got := r.ExpectClosed()
	if !strings.Contains(got, "</stream:stream>") || strings.Contains(got, "stream:error") {
		t.Fatalf("idle close: %q", got)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

// TestS2SBackoff: after a failed stream the domain is not dialed again until the back-off
// has passed; meanwhile stanzas bounce at once with remote-server-timeout.
func TestS2SBackoff(t *testing.T) {
	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true,
		S2SBackoffMin: 3 * time.Second, S2SBackoffMax: 8 * time.Second})
	a.AddUser(t, "alice", "secret")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	a.Engine.SetS2SHosts(map[string]string{"down.localhost": dead})
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<message to='d@down.localhost' id='b1' type='chat'><body>1</body></message>")
	expectBounce(t, alice, "b1", "remote-server-not-found")
	t0 := time.Now()
	alice.Send("<message to='d@down.localhost' id='b2' type='chat'><body>2</body></message>")
	expectBounce(t, alice, "b2", "remote-server-timeout")
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("bounce during back-off took %v", d) // not a dial's setup timeout
	}
	// The first wait is 1.5-3 s (margins for a busy machine); once it has passed the
	// domain is dialed again. The
	// server now answers: the stream comes up (the peer refuses the stanza's stream with
	// a stream error, which is a failed setup again, so the wait doubles).
	time.Sleep(3*time.Second + 100*time.Millisecond)
	accepted := make(chan struct{}, 4)
	ln, err = net.Listen("tcp", dead)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", dead, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	alice.Send("<message to='d@down.localhost' id='b3' type='chat'><body>3</body></message>")
	expectBounce(t, alice, "b3", "remote-server-not-found")
	select {
	case <-accepted:
	default:
		t.Fatal("not dialed again after the back-off")
	}
	alice.Send("<message to='d@down.localhost' id='b4' type='chat'><body>4</body></message>")
	expectBounce(t, alice, "b4", "remote-server-timeout")
	select {
	case <-accepted:
		t.Fatal("dialed during the second back-off")
	default:
	}
}

// adminBackend serves a vireotest server over the admin socket, as main's server does.
type adminBackend struct{ s *vireotest.Server }

func (b adminBackend) Store() store.Store    { return b.s.Store }
func (b adminBackend) Domains() []string     { return []string{b.s.Domain()} }
func (b adminBackend) CloseUser(jid.JID)     {}
func (b adminBackend) Reload() error         { return nil }
func (b adminBackend) Modules() []string     { return nil }
func (b adminBackend) DataDir() string       { return "" }
func (b adminBackend) Version() string       { return "test" }
func (adminBackend) WebURL(string) string    { return "" }
func (b adminBackend) Stats() map[string]any { return map[string]any{"engine": b.s.Engine.Stats()} }
func (b adminBackend) SitePassword(user, pw string) (bool, error) {
	return b.s.Engine.SitePassword(user, pw)
}
func (b adminBackend) SiteRemove(user string) (bool, error) { return b.s.Engine.SiteRemove(user) }
func (b adminBackend) S2SConns() []admin.S2SConn {
	var out []admin.S2SConn
	for _, c := range b.s.Engine.S2SConns() {
		out = append(out, admin.S2SConn{Local: c.Local, Remote: c.Remote, Direction: c.Direction, Auth: c.Auth,
			TLS: c.TLS, CertValid: c.CertValid, IdleS: c.Idle.Seconds()})
	}
	return out
}

// TestS2SAdmin: the s2s admin op lists the live streams and stats counts them.
func TestS2SAdmin(t *testing.T) {
	a, b := federatedWith(t, noBidi, noBidi)
	dir, err := os.MkdirTemp("", "vs2s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")
	ln, err := admin.Serve(sock, adminBackend{a}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	resp, err := admin.Call(sock, admin.Request{Op: "s2s"})
	if err != nil || resp.Error != "" || len(resp.S2S) != 0 {
		t.Fatalf("before any traffic: %+v %v", resp, err)
	}

	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>hi</body></message>")
	bob.Expect("hi")
	bob.Send("<message to='alice@a.localhost/phone' type='chat'><body>hey</body></message>")
	alice.Expect("hey")
	waitS2S(t, a, 5*time.Second, "both directions", func(c []engine.S2SConn) bool { return len(c) == 2 })

	resp, err = admin.Call(sock, admin.Request{Op: "s2s"})
	if err != nil || resp.Error != "" || len(resp.S2S) != 2 {
		t.Fatalf("s2s: %+v %v", resp, err)
	}
	for i, dir := range []string{"in", "out"} {
		c := resp.S2S[i]
		if c.Remote != "b.localhost" || c.Local != "a.localhost" || c.Direction != dir || c.Auth != "dialback" ||
			c.TLS == "" || c.IdleS < 0 || c.IdleS > 5 {
			t.Fatalf("stream %d: %+v", i, c)
		}
	}
	resp, err = admin.Call(sock, admin.Request{Op: "stats"})
	if err != nil || resp.Error != "" {
		t.Fatalf("stats: %+v %v", resp, err)
	}
	raw, _ := json.Marshal(resp.Stats["engine"])
	var st struct {
		In  int64 `json:"s2s_in"`
		Out int64 `json:"s2s_out"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || st.In != 1 || st.Out != 1 {
		t.Fatalf("stats engine %s: %v", raw, err)
	}
}

// TestS2SStreamLimits: XEP-0478 across servers. b takes stanzas of up to 8 KiB and says so
// in its stream features; a bounces to its sender, with policy-violation and no 'by', a
// message larger than that instead of sending what b would close the stream over, and
// the stream goes on carrying the ones that fit, in order.
func TestS2SStreamLimits(t *testing.T) {
	a, b := federatedWith(t, nil, func(o *vireotest.Options) { o.MaxStanza = 8192 })
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' id='m1' type='chat'><body>first</body></message>")
	bob.Expect("first")
	alice.Send("<message to='bob@b.localhost/pc' id='big' type='chat'><body>" + strings.Repeat("x", 9000) + "</body></message>")
	alice.Send("<message to='bob@b.localhost/pc' id='m2' type='chat'><body>after</body></message>")
	got := alice.Expect("</message>")
	for _, want := range []string{"id='big'", "type='error'", "<policy-violation", "8192 bytes b.localhost takes"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the bounce lacks %q: %s", want, got)
		}
	}
	if strings.Contains(got, " by=") {
		t.Fatalf("the bounce names this server's policy: %s", got)
	}
	if got := bob.Expect("after"); strings.Contains(got, "xxxx") {
		t.Fatalf("bob got the oversized message: %s", got)
	}
	if _, ok := findS2S(a.Engine.S2SConns(), "b.localhost", "out"); !ok {
		t.Fatalf("the stream to b did not survive: %+v", a.Engine.S2SConns())
	}
}

// TestS2SReloadOnOff: federation turned off by a reload ends the streams between two
// servers and lets nothing out (a message gets an error, not a queue), and its listener
// closes; turned on again, its listener opens and the servers talk again.
func TestS2SReloadOnOff(t *testing.T) {
	a, b := federated(t)
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>before</body></message>")
	bob.Expect("before")

	on := a.Engine.Config()
	off := on
	off.S2S.Enabled, off.S2S.Hosts, off.Listeners = false, nil, nil
	for _, l := range on.Listeners {
		if l.Kind != engine.KindS2S {
			off.Listeners = append(off.Listeners, l)
		}
	}
	addr := a.S2SAddr()
	if err := a.Engine.Reload(off); err != nil {
		t.Fatal(err)
	}
	alice.Send("<message to='bob@b.localhost/pc' id='off' type='chat'><body>while off</body></message>")
	if got := alice.Expect("id='off'") + alice.Expect("</message>"); !strings.Contains(got, "type='error'") {
		t.Fatalf("a message out with federation off: %s", got)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the s2s listener still accepts with federation off")
	}
	bob.Send("<message to='alice@a.localhost/phone' id='in' type='chat'><body>knock</body></message>")
	// Refused at once, or, when another test's listener took the freed port meanwhile
	// (make test runs packages side by side), after b's setup timeout (15 s).
	if got, _ := bob.ReadUntil("id='in'", 40*time.Second); !strings.Contains(got+bob.Expect("</message>"), "type='error'") {
		t.Fatalf("a message in with federation off: %s", got)
	}
	alice.Never("knock")

	if err := a.Engine.Reload(on); err != nil {
		t.Fatal(err)
	}
	vireotest.Federate(a, b) // a's listener has a new port
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>after</body></message>")
	bob.Expect("after")
	// b failed to reach a a moment ago and may still be backing off (2 s at first):
	// retry until its message passes.
	for i := 0; ; i++ {
		bob.Send("<message to='alice@a.localhost/phone' id='wb' type='chat'><body>welcome back</body></message>")
		if got, err := alice.ReadUntil("welcome back", 3*time.Second); err == nil {
			break
		} else if i == 5 {
			t.Fatalf("b never reached a again: %v %s", err, got)
		}
		bob.ReadUntil("id='wb'", time.Second) // its bounce
	}
}
