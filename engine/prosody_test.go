package engine_test

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// The federation interop tests run Debian's Prosody as the remote server. Prosody must find
// Vireo's s2s listener for vireo.test without DNS (SRV is not available offline, and /etc/hosts
// is not ours to edit). Prosody 0.12 has no static host table, so the test gives it a small
// plugin, mod_vireo_test_hosts below: it replaces net.resolvers.service.new, which mod_s2s
// calls for every outbound stream, with a fixed address for the domains in its table, the
// same thing as Vireo's [s2s.hosts]. That keeps every port free (no fixed 5269), so runs on a
// shared machine do not collide. The alternative, libunbound's hoststxt option pointed at a
// hosts file of the test's own, would still need port 5269, and lua-unbound is optional.

// prosodyHostsPlugin is mod_vireo_test_hosts: `vireo_test_hosts = { ["domain"] = { "ip",
// port } }`, or `{ "ip", port, tls = true }` for an XEP-0368 direct TLS address, which
// Prosody asks for as the xmpps-server service before xmpp-server.
const prosodyHostsPlugin = `local service = require "net.resolvers.service";
local manual = require "net.resolvers.manual";
local hosts = module:get_option("vireo_test_hosts", {});
local orig = service._vireo_orig or service.new;
service._vireo_orig = orig;
service.new = function (hostname, srv, conn_type, extra)
	local to = hosts[hostname];
	if not to then
		return orig(hostname, srv, conn_type, extra);
	end
	if (srv == "xmpps-server") ~= (to.tls == true) then -- the other service: none
		return manual.new({}, conn_type, extra);
	end
	module:log("debug", "static route for %s: %s:%d", hostname, to[1], to[2]);
	return manual.new({ { conn_type or "tcp", to[1], to[2], extra } }, conn_type, extra);
end
function module.unload()
	service.new = orig;
end
`

// needProsody returns the prosody and prosodyctl paths, skipping the test where Debian's
// prosody is missing (and failing it in CI, which installs it).
func needProsody(t *testing.T) (string, string) {
	t.Helper()
	p, err1 := exec.LookPath("prosody")
	ctl, err2 := exec.LookPath("prosodyctl")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("prosody is not installed (apt-get install prosody): %v %v", err1, err2)
		}
		t.Skip("prosody not installed (apt-get install prosody)")
	}
	return p, ctl
}

// prosodyServer is one Prosody process serving a domain on loopback ports of its own.
type prosodyServer struct {
	t         *testing.T
	domain    string
	dir       string
	conf      string
	ctl, bin  string
	c2s, s2s  string // host:port
	s2sTLS    string // host:port of the direct TLS s2s port, with directTLS
	component string // host:port of the component port, with component
	*peerProc
	caPEM []byte // the CA Prosody's certificate chains to, for its clients
}

type prosodyOptions struct {
	domain string
	ip     string
	pki    *testPKI
	// hosts is the static route table: domain -> host:port.
	hosts map[string]string
	// trustCA makes Prosody validate peers against the test CA (else only the system
	// store, where the test CA is not: peer certificates then do not validate).
	trustCA bool
	// directTLS opens an XEP-0368 direct TLS s2s port (prosodyServer.s2sTLS); a hosts
	// address "tls://host:port" is reached with direct TLS.
	directTLS bool
	// modules are enabled beside the ones every test needs.
	modules []string
	// hashed keeps SCRAM keys instead of plaintext passwords (internal_hashed).
	hashed bool
	// component adds an XEP-0114 component push.<domain> (secret compSecret) and a
	// component port (prosodyServer.component).
	component bool
	// bidi keeps Prosody's mod_s2s_bidi (XEP-0288) on; the other tests turn it off so
	// that each direction has a stream of its own.
	bidi bool
}

// freePort finds a free TCP port on ip (vireotest.FreePort).
func freePort(t *testing.T, ip string) int { return vireotest.FreePort(t, ip) }

// startProsody writes a configuration into a temporary directory and runs Prosody in the
// foreground until the test ends.
func startProsody(t *testing.T, o prosodyOptions) *prosodyServer {
	t.Helper()
	bin, ctl := needProsody(t)
	dir := t.TempDir()
	for _, d := range []string{"data", "plugins"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	certPEM, keyPEM := o.pki.issue(t, o.domain)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crt, key, ca := write("server.crt", certPEM), write("server.key", keyPEM), write("ca.pem", o.pki.caPEM)
	write("plugins/mod_vireo_test_hosts.lua", []byte(prosodyHostsPlugin))
	c2sPort, s2sPort := freePort(t, o.ip), freePort(t, o.ip)
	var hosts strings.Builder
	for d, a := range o.hosts {
		rest, direct := strings.CutPrefix(a, "tls://")
		h, p, _ := net.SplitHostPort(rest)
		fmt.Fprintf(&hosts, "\t[%q] = { %q, %s, tls = %v };\n", d, h, p, direct)
	}
	directPorts, s2sTLS := "", ""
	if o.directTLS {
		port := freePort(t, o.ip)
		directPorts, s2sTLS = strconv.Itoa(port), net.JoinHostPort(o.ip, strconv.Itoa(port))
	}
	compPorts, compDef, compAddr := "", "", ""
	if o.component {
		port := freePort(t, o.ip)
		compPorts, compAddr = strconv.Itoa(port), net.JoinHostPort(o.ip, strconv.Itoa(port))
		compDef = fmt.Sprintf("Component %q\n\tcomponent_secret = %q\n", "push."+o.domain, compSecret)
	}
	extra, auth := "", "internal_plain"
	if o.bidi {
		o.modules = append(o.modules, "s2s_bidi")
	}
	for _, m := range o.modules {
		extra += fmt.Sprintf(", %q", m)
	}
	if o.hashed {
		auth = "internal_hashed"
	}
	cafile := ""
	if o.trustCA {
		cafile = fmt.Sprintf("cafile = %q;", ca)
	}
	conf := fmt.Sprintf(`-- written by engine/prosody_test.go
daemonize = false
run_as_root = true
pidfile = %[1]q
data_path = %[2]q
plugin_paths = { %[3]q }
log = { { levels = { min = "debug" }, to = "file", filename = %[4]q } }
interfaces = { %[5]q }
c2s_ports = { %[6]d }
s2s_ports = { %[7]d }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { %[17]s }
component_ports = { %[18]s }
component_interfaces = { %[5]q }
http_ports = { }
https_ports = { }
admin_socket = %[8]q
certificates = %[9]q
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "version", "ping", "presence", "vireo_test_hosts"%[15]s }
modules_disabled = { "offline", "s2s_bidi", "http", "admin_shell" }
authentication = %[16]q
storage = "internal"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
s2s_timeout = 5
s2s_close_timeout = 1
vireo_test_hosts = {
%[10]s}
ssl = { certificate = %[11]q; key = %[12]q; %[13]s }
VirtualHost %[14]q
Component "conference.%[14]s" "muc"
	muc_room_locking = false
%[19]s`, filepath.Join(dir, "prosody.pid"), filepath.Join(dir, "data"), filepath.Join(dir, "plugins"),
		filepath.Join(dir, "prosody.log"), o.ip, c2sPort, s2sPort, filepath.Join(dir, "admin.sock"),
		filepath.Join(dir, "certs"), hosts.String(), crt, key, cafile, o.domain, extra, auth, directPorts, compPorts, compDef)
	if o.bidi {
		conf = strings.Replace(conf, `"s2s_bidi", `, "", 1)
	}
	p := &prosodyServer{t: t, domain: o.domain, dir: dir, conf: write("prosody.cfg.lua", []byte(conf)), ctl: ctl, bin: bin,
		c2s: net.JoinHostPort(o.ip, strconv.Itoa(c2sPort)), s2s: net.JoinHostPort(o.ip, strconv.Itoa(s2sPort)),
		s2sTLS: s2sTLS, component: compAddr, caPEM: o.pki.caPEM}
	p.start()
	return p
}

// start runs Prosody and returns once it serves (again, after kill).
func (p *prosodyServer) start() {
	p.t.Helper()
	// Ready when the c2s port answers.
	p.peerProc = startPeer(p.t, "prosody", exec.Command(p.bin, "--config", p.conf, "-F"), filepath.Join(p.dir, "prosody.log"), p.c2s, 30*time.Second)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// register creates user@domain with prosodyctl.
func (p *prosodyServer) register(user, pass string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p.ctl, "--config", p.conf, "register", user, p.domain, pass).CombinedOutput()
	if err != nil {
		p.t.Fatalf("prosodyctl register: %v: %s", err, out)
	}
}

// login connects a raw client to Prosody's c2s port.
func (p *prosodyServer) login(user, pass, resource string) *vireotest.RawConn {
	p.t.Helper()
	return c2sLogin(p.t, p.c2s, p.domain, p.caPEM, user, pass, resource)
}

// c2sStart opens a client stream to addr for domain and negotiates STARTTLS, trusting
// caPEM; it returns the stream and the stream header to restart with.
func c2sStart(t *testing.T, addr, domain string, caPEM []byte) (*vireotest.RawConn, string) {
	t.Helper()
	hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" +
		domain + "' version='1.0'>"
	r := vireotest.DialAddr(t, addr)
	r.Send(hdr)
	r.Expect("</stream:features>")
	r.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	r.Expect("<proceed")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	r.StartTLS(&tls.Config{RootCAs: pool, ServerName: domain})
	r.Send(hdr)
	r.Expect("</stream:features>")
	return r, hdr
}

// c2sLogin connects a raw client to another server's c2s port: STARTTLS (trusting caPEM),
// SASL PLAIN, bind.
func c2sLogin(t *testing.T, addr, domain string, caPEM []byte, user, pass, resource string) *vireotest.RawConn {
	t.Helper()
	r, hdr := c2sStart(t, addr, domain, caPEM)
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "</auth>")
	r.Expect("<success")
	r.Send(hdr)
	r.Expect("</stream:features>")
	r.Send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource + "</resource></bind></iq>")
	r.Expect("</iq>")
	return r
}

// loopbackIP picks a 127.0.0.x address for this run, so that concurrent runs rarely share
// one (Linux answers on all of 127/8).
func loopbackIP() string {
	return "127.0.0." + strconv.Itoa(2+mrand.IntN(250))
}

// vireoWithProsody starts vireo.test (alice) and prosody.test (bob), each routing the
// other's domain to the other's s2s port. With trustCA both trust the test CA that issued
// their certificates, else neither can validate the other's. The returned buffer is Vireo's
// log.
func vireoWithProsody(t *testing.T, trustCA bool, more ...func(*vireotest.Options)) (*vireotest.Server, *prosodyServer, *syncBuffer) {
	t.Helper()
	return vireoWithProsodyOpts(t, trustCA, nil, more...)
}

// vireoWithProsodyOpts is vireoWithProsody with Prosody's options adjusted by popt first
// (modules, routes).
func vireoWithProsodyOpts(t *testing.T, trustCA bool, popt func(*prosodyOptions), more ...func(*vireotest.Options)) (*vireotest.Server, *prosodyServer, *syncBuffer) {
	t.Helper()
	needProsody(t)
	pki := newTestPKI(t)
	vip, pip := loopbackIP(), loopbackIP()
	vs2s := net.JoinHostPort(vip, strconv.Itoa(freePort(t, vip)))
	po := prosodyOptions{domain: "prosody.test", ip: pip, pki: pki, trustCA: trustCA,
		hosts: map[string]string{"vireo.test": vs2s}}
	if popt != nil {
		popt(&po)
	}
	p := startProsody(t, po)
	p.register("bob", "bob secret")
	logs := new(syncBuffer)
	log := zerolog.New(logs).Level(zerolog.DebugLevel)
	certPEM, keyPEM := pki.issue(t, "vireo.test")
	o := vireotest.Options{Domain: "vireo.test", AllowPlain: true, S2S: true, S2SAddr: vs2s,
		S2SSetupTimeout: 3 * time.Second, CertPEM: certPEM, KeyPEM: keyPEM, Logger: &log}
	if trustCA {
		o.S2SCAs = x509.NewCertPool()
		o.S2SCAs.AppendCertsFromPEM(pki.caPEM)
	}
	for _, f := range more {
		f(&o)
	}
	v := vireotest.Start(t, o)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("VIREO_TEST_LOGS") != "" {
			t.Logf("vireo log:\n%s", tail([]byte(logs.String()), 20000))
		}
	})
	v.Engine.SetS2SHosts(map[string]string{"prosody.test": p.s2s, "conference.prosody.test": p.s2s,
		"nothing.test": p.s2s})
	v.AddUser(t, "alice", "alice secret")
	return v, p, logs
}

// TestFederationProsody runs a conversation between alice@vireo.test (a Vireo client) and
// bob@prosody.test (a client of a real Prosody), with dialback both ways since neither
// server trusts the other's certificate: mutual subscription, presence, chat each way, IQs
// each way, then Prosody dies and a message to bob comes back as an error.
func TestFederationProsody(t *testing.T) {
	v, p, logs := vireoWithProsody(t, false)
	alice := v.LoginPlain(t, "alice", "alice secret", "phone")
	bob := p.login("bob", "bob secret", "pc")
	converse(t, alice, bob, "alice@vireo.test/phone", "bob@prosody.test/pc")
	var got string

	// IQs each way: to the other server, and to the other user's full JID.
	alice.Send("<iq type='get' id='v1' to='prosody.test'><query xmlns='jabber:iq:version'/></iq>")
	if got = alice.Expect("</iq>"); !strings.Contains(got, "type='result'") || !strings.Contains(got, "Prosody") {
		t.Fatalf("version of prosody.test: %q", got)
	}
	bob.Send("<iq type='get' id='d1' to='vireo.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got = bob.Expect("</iq>"); !strings.Contains(got, "type='result'") || !strings.Contains(got, "<identity") {
		t.Fatalf("disco#info of vireo.test: %q", got)
	}
	bob.Send("<iq type='get' id='d2' to='alice@vireo.test/phone'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	got = alice.Expect("</iq>")
	if !strings.Contains(got, "from='bob@prosody.test/pc'") || !strings.Contains(got, "id='d2'") {
		t.Fatalf("alice got %q", got)
	}
	alice.Send("<iq type='result' id='d2' to='bob@prosody.test/pc'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:ping'/></query></iq>")
	if got = bob.Expect("</iq>"); !strings.Contains(got, "urn:xmpp:ping") {
		t.Fatalf("bob got %q", got)
	}

	// Errors come back across: from Prosody for a user it does not have, from Vireo for
	// one it does not have.
	alice.Send("<iq type='get' id='e1' to='nobody@prosody.test'><query xmlns='jabber:iq:version'/></iq>")
	if got = alice.Expect("</iq>"); !strings.Contains(got, "type='error'") || !strings.Contains(got, "id='e1'") {
		t.Fatalf("iq to a missing prosody user: %q", got)
	}
	bob.Send("<iq type='get' id='e2' to='nobody@vireo.test/x'><query xmlns='jabber:iq:version'/></iq>")
	if got = bob.Expect("</iq>"); !strings.Contains(got, "type='error'") || !strings.Contains(got, "id='e2'") ||
		!strings.Contains(got, "from='nobody@vireo.test/x'") {
		t.Fatalf("iq to a missing vireo user: %q", got)
	}

	// Prosody goes away: once Vireo has seen its stream end, the next message to bob comes
	// back to alice as an error. (A stanza written into the stream before that is lost:
	// without stream management between servers nothing tells it apart from one delivered.)
	p.kill()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		up := false
		for _, c := range v.Engine.S2SConns() {
			up = up || c.Remote == "prosody.test" && c.Direction == "out"
		}
		if !up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the outbound stream to prosody.test outlived Prosody by 10 s")
		}
	}
	alice.Send("<message to='bob@prosody.test/pc' id='m3' type='chat'><body>still there?</body></message>")
	got, err := alice.ReadUntil("id='m3'", 10*time.Second)
	if err == nil {
		var more string
		more, err = alice.ReadUntil("</message>", 10*time.Second)
		got += more
	}
	if err != nil || !strings.Contains(got, "type='error'") ||
		!(strings.Contains(got, "remote-server-not-found") || strings.Contains(got, "remote-server-timeout")) {
		t.Fatalf("message to a dead server: %q %v", got, err)
	}
	if l := logs.String(); strings.Contains(l, "EXTERNAL") {
		t.Fatalf("SASL EXTERNAL without a trusted certificate:\n%s", l)
	}
}

// TestFederationProsodyExternal: both servers trust the CA that issued both certificates, so
// each authenticates to the other with SASL EXTERNAL (XEP-0178) instead of dialback, and
// stanzas flow both ways.
func TestFederationProsodyExternal(t *testing.T) {
	v, p, logs := vireoWithProsody(t, true)
	alice := v.LoginPlain(t, "alice", "alice secret", "phone")
	alice.Send("<presence/>")
	bob := p.login("bob", "bob secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@prosody.test/pc' id='m1' type='chat'><body>hello bob</body></message>")
	if got := bob.Expect("</message>"); !strings.Contains(got, "hello bob") || !strings.Contains(got, "from='alice@vireo.test/phone'") {
		t.Fatalf("bob got %q", got)
	}
	bob.Send("<message to='alice@vireo.test/phone' id='m2' type='chat'><body>hi alice</body></message>")
	if got := alice.Expect("</message>"); !strings.Contains(got, "hi alice") || !strings.Contains(got, "from='bob@prosody.test/pc'") {
		t.Fatalf("alice got %q", got)
	}
	l := logs.String()
	if !strings.Contains(l, "s2s inbound stream authenticated with SASL EXTERNAL") || !strings.Contains(l, "s2s SASL EXTERNAL succeeded") {
		t.Fatalf("vireo did not use SASL EXTERNAL both ways:\n%s", l)
	}
	if strings.Contains(l, "dialback") {
		t.Fatalf("dialback despite valid certificates:\n%s", l)
	}
}

// prosodyThroughEdge starts Vireo with an edge that holds its s2s listener, and a Prosody
// that reaches Vireo through the edge, both trusting the test CA; with bidi, Prosody's
// mod_s2s_bidi is on (XEP-0288).
func prosodyThroughEdge(t *testing.T, bidi bool) (*vireotest.Server, *prosodyServer) {
	t.Helper()
	needProsody(t)
	pki := newTestPKI(t)
	certPEM, keyPEM := pki.issue(t, "vireo.test")
	cas := x509.NewCertPool()
	cas.AppendCertsFromPEM(pki.caPEM)
	logs := new(syncBuffer)
	log := zerolog.New(logs).Level(zerolog.DebugLevel)
	v := vireotest.Start(t, vireotest.Options{Domain: "vireo.test", AllowPlain: true, S2S: true, S2SCAs: cas,
		S2SSetupTimeout: 3 * time.Second, CertPEM: certPEM, KeyPEM: keyPEM, Logger: &log, LinkSecret: linkSecret, LinkS2S: true})
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("VIREO_TEST_LOGS") != "" {
			t.Logf("vireo log:\n%s", tail([]byte(logs.String()), 20000))
		}
	})
	edge := vireotest.StartEdge(t, v, linkSecret)
	p := startProsody(t, prosodyOptions{domain: "prosody.test", ip: loopbackIP(), pki: pki, trustCA: true,
		hosts: map[string]string{"vireo.test": edge.S2SAddr()}, bidi: bidi})
	p.register("bob", "bob secret")
	v.Engine.SetS2SHosts(map[string]string{"prosody.test": p.s2s})
	v.AddUser(t, "alice", "alice secret")
	return v, p
}

// TestFederationProsodyBidiThroughEdge: Prosody asks for a bidirectional stream through
// the edge (split deployment); Vireo's answers go back over it, through the edge, and
// Vireo opens no stream of its own.
func TestFederationProsodyBidiThroughEdge(t *testing.T) {
	v, p := prosodyThroughEdge(t, true)
	alice := v.LoginPlain(t, "alice", "alice secret", "phone")
	bob := p.login("bob", "bob secret", "pc")
	converse(t, bob, alice, "bob@prosody.test/pc", "alice@vireo.test/phone")
	var got []engine.S2SConn
	for _, c := range v.Engine.S2SConns() {
		if c.Remote == "prosody.test" {
			got = append(got, c)
		}
	}
	if len(got) != 1 || got[0].Direction != "in" || !got[0].Bidi || got[0].Via != t.Name() {
		t.Fatalf("streams with prosody.test: %+v, want one bidirectional inbound stream through edge %q", got, t.Name())
	}
}

// TestFederationProsodyThroughEdge: Vireo as a split deployment federates with a real
// Prosody through its edge both ways. Prosody's stream comes in at the edge; Vireo's
// outbound stream is opened by the edge (link.federate_through_edges) with TLS from the
// core to Prosody through it. Both servers trust the test CA, so each authenticates to
// the other with SASL EXTERNAL: the certificates cross the edge in both directions.
func TestFederationProsodyThroughEdge(t *testing.T) {
	v, p := prosodyThroughEdge(t, false)
	alice := v.LoginPlain(t, "alice", "alice secret", "phone")
	bob := p.login("bob", "bob secret", "pc")
	converse(t, alice, bob, "alice@vireo.test/phone", "bob@prosody.test/pc")

	conns := waitS2S(t, v, 5*time.Second, "both streams listed", func(c []engine.S2SConn) bool {
		_, in := findS2S(c, "prosody.test", "in")
		_, out := findS2S(c, "prosody.test", "out")
		return in && out
	})
	out, _ := findS2S(conns, "prosody.test", "out")
	in, _ := findS2S(conns, "prosody.test", "in")
	if out.Via != t.Name() || out.Auth != "external" || !out.CertValid {
		t.Fatalf("Vireo's stream to Prosody: %+v, want SASL EXTERNAL through edge %q", out, t.Name())
	}
	if in.Auth != "external" {
		t.Fatalf("Prosody's stream through the edge: %+v, want SASL EXTERNAL", in)
	}
}

// TestFederationProsodyDirectTLS: Vireo and Prosody reach each other only at their XEP-0368
// direct TLS ports (Prosody asks its xmpps-server service first), with dialback, and
// both of Vireo's streams are listed as direct TLS.
func TestFederationProsodyDirectTLS(t *testing.T) {
	needProsody(t)
	pki := newTestPKI(t)
	vip, pip := loopbackIP(), loopbackIP()
	vtls := net.JoinHostPort(vip, strconv.Itoa(freePort(t, vip)))
	p := startProsody(t, prosodyOptions{domain: "prosody.test", ip: pip, pki: pki, directTLS: true,
		hosts: map[string]string{"vireo.test": "tls://" + vtls}})
	p.register("bob", "bob secret")
	logs := new(syncBuffer)
	log := zerolog.New(logs).Level(zerolog.DebugLevel)
	certPEM, keyPEM := pki.issue(t, "vireo.test")
	v := vireotest.Start(t, vireotest.Options{Domain: "vireo.test", AllowPlain: true, S2S: true,
		S2SAddr: net.JoinHostPort(vip, "0"), S2SDirectTLS: true, S2SDirectTLSAddr: vtls,
		S2SSetupTimeout: 3 * time.Second, CertPEM: certPEM, KeyPEM: keyPEM, Logger: &log})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vireo log:\n%s", tail([]byte(logs.String()), 20000))
		}
	})
	v.Engine.SetS2SHosts(map[string]string{"prosody.test": engine.S2SDirectTLSScheme + p.s2sTLS})
	v.AddUser(t, "alice", "alice secret")
	alice := v.LoginPlain(t, "alice", "alice secret", "phone")
	bob := p.login("bob", "bob secret", "pc")
	converse(t, alice, bob, "alice@vireo.test/phone", "bob@prosody.test/pc")
	for _, dir := range []string{"in", "out"} {
		var c engine.S2SConn
		found := false
		for _, x := range v.Engine.S2SConns() {
			if x.Remote == "prosody.test" && x.Direction == dir {
				c, found = x, true
			}
		}
		if !found || !c.DirectTLS || c.Auth != "dialback" || c.TLS == "" {
			t.Fatalf("%s stream: %+v (%v); all: %+v", dir, c, found, v.Engine.S2SConns())
		}
	}
}

// TestFederationProsodyMUC: alice on Vireo joins a room on Prosody's MUC component (a
// second remote domain, so a second stream each way) with bob, and they talk in it; a
// domain Prosody does not serve, routed to it anyway, bounces.
func TestFederationProsodyMUC(t *testing.T) {
	v, p, logs := vireoWithProsody(t, false)
	alice := v.LoginPlain(t, "alice", "alice secret", "phone")
	alice.Send("<presence/>")
	bob := p.login("bob", "bob secret", "pc")
	bob.Send("<presence/>")

	room := "room@conference.prosody.test"
	alice.Send("<presence to='" + room + "/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	if got := alice.Expect("</presence>"); !strings.Contains(got, "from='"+room+"/alice'") || !strings.Contains(got, "code='110'") {
		// The first presence may be another occupant's; self-presence (110) ends the join.
		got += alice.Expect("code='110'")
	}
	bob.Send("<presence to='" + room + "/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	bob.Expect("code='110'")
	alice.Expect("from='" + room + "/bob'")
	alice.Send("<message to='" + room + "' type='groupchat' id='g1'><body>hello room</body></message>")
	if got := bob.Expect("hello room"); !strings.Contains(got, "from='"+room+"/alice'") {
		t.Fatalf("bob got %q", got)
	}
	alice.Expect("hello room") // the room reflects it to the sender too
	bob.Send("<message to='" + room + "' type='groupchat' id='g2'><body>hi from prosody</body></message>")
	if got := alice.Expect("hi from prosody"); !strings.Contains(got, "from='"+room+"/bob'") {
		t.Fatalf("alice got %q", got)
	}

	// Prosody refuses to authenticate us for a domain it does not serve: the stanza bounces.
	alice.Send("<message to='x@nothing.test' id='n1' type='chat'><body>anyone?</body></message>")
	got, err := alice.ReadUntil("id='n1'", 10*time.Second)
	if err == nil {
		var more string
		more, err = alice.ReadUntil("</message>", 10*time.Second)
		got += more
	}
	if err != nil || !strings.Contains(got, "type='error'") || !strings.Contains(got, "remote-server-not-found") {
		t.Fatalf("unserved domain: %q %v", got, err)
	}
	if !strings.Contains(logs.String(), "stream error host-unknown") {
		t.Fatalf("Prosody's stream error is not in the log:\n%s", logs.String())
	}
}

// converse runs the part of a federated conversation every peer test shares: local (a
// Vireo client, localJID its full JID) and remote (a client of the peer server) come
// online, subscribe to each other up to 'both', see each other's presence, and chat each
// way, with every check of those steps made here.
func converse(t *testing.T, local, remote *vireotest.RawConn, localJID, remoteJID string) {
	t.Helper()
	localBare, _, _ := strings.Cut(localJID, "/")
	remoteBare, _, _ := strings.Cut(remoteJID, "/")
	for _, c := range []*vireotest.RawConn{local, remote} {
		c.Send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
		c.Expect("</iq>")
		c.Send("<presence/>")
	}

	// Subscription both ways: local asks, remote approves and asks back, local approves.
	local.Send("<presence to='" + remoteBare + "' type='subscribe'/>")
	got := remote.Expect("type='subscribe'")
	got += remote.Expect(">")
	if !strings.Contains(got, "from='"+localBare+"'") {
		t.Fatalf("the remote user's subscription request: %q", got)
	}
	remote.Send("<presence to='" + localBare + "' type='subscribed'/>")
	remote.Send("<presence to='" + localBare + "' type='subscribe'/>")
	local.Expect("type='subscribed'")
	local.Expect("type='subscribe'")
	local.Send("<presence to='" + remoteBare + "' type='subscribed'/>")
	local.Expect("subscription='both'")
	remote.Expect("subscription='both'")

	// Presence across: each sees the other's next broadcast.
	local.Send("<presence><status>vireo here</status></presence>")
	remote.Expect("vireo here")
	remote.Send("<presence><status>peer here</status></presence>")
	local.Expect("peer here")

	// Chat each way.
	local.Send("<message to='" + remoteBare + "' id='m1' type='chat'><body>hello remote</body></message>")
	got = remote.Expect("hello remote")
	got += remote.Expect("</message>")
	if !strings.Contains(got, "from='"+localJID+"'") {
		t.Fatalf("the remote user got %q", got)
	}
	remote.Send("<message to='" + localJID + "' id='m2' type='chat'><body>hi local</body></message>")
	got = local.Expect("hi local")
	got += local.Expect("</message>")
	if !strings.Contains(got, "from='"+remoteJID+"'") || strings.Contains(got, "jabber:server") {
		t.Fatalf("the local user got %q", got)
	}
}

// TestFederationProsodyPush: the XEP-0357 app server is an XEP-0114 component of Vireo
// (push.vireo.test), and bob's server is a real Prosody with mod_cloud_notify
// (prosody-modules). bob registers the component; while he is offline, carol's message
// makes Prosody publish a notification, which crosses the s2s link to the component's
// domain (dialback, Vireo's certificate does not name it) and reaches the component.
func TestFederationProsodyPush(t *testing.T) {
	if _, err := os.Stat("/usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mod_cloud_notify is not installed (apt-get install prosody-modules)")
		}
		t.Skip("mod_cloud_notify is not installed (apt-get install prosody-modules)")
	}
	var vs2s string
	v, p, _ := vireoWithProsodyOpts(t, false, func(o *prosodyOptions) {
		vs2s = o.hosts["vireo.test"]
		o.hosts["push.vireo.test"] = vs2s
		o.modules = append(o.modules, "cloud_notify")
	}, func(o *vireotest.Options) {
		o.Components = []engine.Component{{Domain: "push.vireo.test", Secret: compSecret}}
	})
	app, _ := componentLogin(t, v, "push.vireo.test", compSecret)
	app.Expect("<handshake/>")
	p.register("carol", "carol secret")

	bob := p.login("bob", "bob secret", "phone")
	enablePush(t, bob, "push.vireo.test", "bobs-phone")
	bob.Send("</stream:stream>")
	bob.Conn().Close()

	carol := p.login("carol", "carol secret", "pc")
	carol.Send("<message to='bob@prosody.test' type='chat' id='c1'><body>wake up</body></message>")
	awaitPublish(t, app, 15*time.Second, "prosody.test", "push.vireo.test", "bobs-phone", "urn:xmpp:push:0", "message-count")
}

// TestFederationProsodyPushOut: the other direction. alice's phone on Vireo registers an app
// server that is a component of a real Prosody (push.prosody.test); while she is offline a
// message makes Vireo publish across s2s to that domain, and the component, connected to
// Prosody over XEP-0114, gets it from her bare JID and answers; its error disables the
// registration.
func TestFederationProsodyPushOut(t *testing.T) {
	v, p, _ := vireoWithProsodyOpts(t, false, func(o *prosodyOptions) { o.component = true })
	v.Engine.SetS2SHosts(map[string]string{"prosody.test": p.s2s, "push.prosody.test": p.s2s})
	v.AddUser(t, "carol", "carol secret")

	// The app server: a raw XEP-0114 component of Prosody.
	app := vireotest.DialAddr(t, p.component)
	app.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='push.prosody.test'>")
	app.Expect("<stream:stream")
	m := regexp.MustCompile(`id=['"]([^'"]+)['"]`).FindStringSubmatch(app.Expect(">"))
	if m == nil {
		t.Fatal("no stream id from Prosody's component port")
	}
	sum := sha1.Sum([]byte(m[1] + compSecret))
	app.Send("<handshake>" + hex.EncodeToString(sum[:]) + "</handshake>")
	app.Expect("<handshake")

	alice := v.LoginPlain(t, "alice", "alice secret", "phone")
	enablePush(t, alice, "push.prosody.test", "alices-phone")
	alice.Send("</stream:stream>")
	alice.ExpectClosed()
	carol := v.LoginPlain(t, "carol", "carol secret", "pc")
	carol.Send("<message to='alice@vireo.test' type='chat' id='c1'><body>wake up</body></message>")
	_, id := awaitPublish(t, app, 15*time.Second, "alice@vireo.test", "push.prosody.test", "<publish node='alices-phone'>",
		"<field var='message-count'><value>1</value></field>")
	refusePush(t, app, "push.prosody.test", "alice@vireo.test", id)
	carol.Send("<message to='alice@vireo.test' type='chat' id='c2'><body>again</body></message>")
	carol.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	carol.Expect("id='p1'")
	app.Never("<publish")
}

// TestFederationProsodyBidi: with Prosody's mod_s2s_bidi on, the conversation runs over a
// single XEP-0288 bidirectional stream whichever server connects first: Vireo lists one
// stream with prosody.test, outbound when Vireo spoke first, inbound when Prosody did, and
// opens no other. (Not tested: Vireo first with dialback. Prosody checks our dialback key
// over its own outbound stream, XEP-0288 §2.2 forbids the same one, and that stream then
// stays; two bidirectional streams, both used, are Prosody's choice there.)
func TestFederationProsodyBidi(t *testing.T) {
	for _, tc := range []struct {
		name       string
		trustCA    bool
		vireoFirst bool
		dir, auth  string
	}{
		{"vireo first, external", true, true, "out", "external"},
		{"prosody first, dialback", false, false, "in", "dialback"},
		{"prosody first, external", true, false, "in", "external"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, p, _ := vireoWithProsodyOpts(t, tc.trustCA, func(o *prosodyOptions) { o.bidi = true })
			alice := v.LoginPlain(t, "alice", "alice secret", "phone")
			bob := p.login("bob", "bob secret", "pc")
			if tc.vireoFirst {
				converse(t, alice, bob, "alice@vireo.test/phone", "bob@prosody.test/pc")
			} else {
				converse(t, bob, alice, "bob@prosody.test/pc", "alice@vireo.test/phone")
			}
			var got []engine.S2SConn
			for _, c := range v.Engine.S2SConns() {
				if c.Remote == "prosody.test" {
					got = append(got, c)
				}
			}
			if len(got) != 1 || got[0].Direction != tc.dir || !got[0].Bidi || got[0].Auth != tc.auth {
				t.Fatalf("streams with prosody.test: %+v, want one bidirectional %s stream (%s)", got, tc.dir, tc.auth)
			}
		})
	}
}
