package engine_test

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// ejabberd as the remote server. Unlike Prosody it cannot be given a route without DNS
// from its configuration: it looks up SRV with inet_res, then the domain's address with
// getaddrinfo(3), which reads /etc/hosts, on outgoing_s2s_port. So the test runs ejabberd
// in a mount namespace of its own (unshare -m, which needs root, as CI runs) where
// /etc/hosts is a bind mount of a file that maps vireo.test to Vireo's address and
// /etc/resolv.conf an empty one (no SRV lookups leave the machine); outgoing_s2s_port is
// Vireo's s2s port. The machine's /etc/hosts is never touched. ejabberd runs as a bare
// Erlang VM (erl -s ejabberd, node nonode@nohost: no epmd left behind), not through
// ejabberdctl, which would switch to the ejabberd user and need a node name.

// ejabberdLibs is the directory that holds ejabberd's OTP application (ERL_LIBS), or "".
func ejabberdLibs() string {
	m, _ := filepath.Glob("/usr/lib/*/ejabberd-*/ebin/ejabberd.app")
	if len(m) == 0 {
		return ""
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(m[0])))
}

// needEjabberd skips the test where Debian's ejabberd (or root, for the mount namespace)
// is missing, and fails it in CI when the package is missing (CI installs it).
func needEjabberd(t *testing.T) (erl, libs string) {
	t.Helper()
	erl, err := exec.LookPath("erl")
	libs = ejabberdLibs()
	_, err2 := exec.LookPath("unshare")
	why, capability := "", false
	switch {
	case err != nil || libs == "":
		why = "ejabberd is not installed (apt-get install ejabberd)"
	case err2 != nil:
		why = "unshare (util-linux) is missing"
	case os.Geteuid() != 0:
		why, capability = "ejabberd's /etc/hosts needs a mount namespace, so root", true
	default:
		if out, err := exec.Command("unshare", "-m", "true").CombinedOutput(); err != nil {
			why = fmt.Sprintf("unshare -m is not permitted here (a container without CAP_SYS_ADMIN?): %v %s", err, out)
			capability = true
		}
	}
	if why != "" {
		// CI installs the packages, so their absence fails there; a machine that withholds
		// the privilege is not something the code can fix, so it skips, saying so.
		if os.Getenv("CI") != "" && !capability {
			t.Fatal(why)
		}
		t.Skip("SKIPPED, ejabberd interop not run: " + why)
	}
	return erl, libs
}

type ejabberdServer struct {
	t        *testing.T
	domain   string
	dir      string
	c2s, s2s string
	*peerProc
	caPEM []byte
}

type ejabberdOptions struct {
	domain, ip string
	pki        *testPKI
	// vireo is Vireo's s2s address; vireoDomain resolves to its host there.
	vireo, vireoDomain string
	trustCA            bool
	// listen, modules and tail are YAML added to the listeners, to the modules and at
	// the end of the configuration.
	listen, modules, tail string
}

func startEjabberd(t *testing.T, o ejabberdOptions) *ejabberdServer {
	t.Helper()
	erl, libs := needEjabberd(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crt, key := o.pki.issue(t, o.domain)
	pemFile := write("server.pem", append(crt, key...))
	ca := write("ca.pem", o.pki.caPEM)
	vhost, vport, _ := net.SplitHostPort(o.vireo)
	hosts := write("hosts", []byte("127.0.0.1 localhost\n"+vhost+" "+o.vireoDomain+"\n"))
	resolv := write("resolv.conf", nil)
	os.MkdirAll(filepath.Join(dir, "spool"), 0o755)
	c2sPort, s2sPort := freePort(t, o.ip), freePort(t, o.ip)
	caLine := ""
	if o.trustCA {
		caLine = fmt.Sprintf("ca_file: %q\n", ca)
	}
	conf := fmt.Sprintf(`# written by engine/ejabberd_test.go
hosts: [%[1]q]
loglevel: debug
log_rotate_count: 0
certfiles: [%[2]q]
%[3]ss2s_use_starttls: required
s2s_dns_timeout: 1
s2s_dns_retries: 1
outgoing_s2s_port: %[4]s
registration_timeout: infinity
auth_method: internal
listen:
  - port: %[5]d
    ip: %[6]q
    module: ejabberd_c2s
    starttls_required: true
  - port: %[7]d
    ip: %[6]q
    module: ejabberd_s2s_in
%[8]saccess_rules:
  register:
    allow: all
modules:
  mod_roster: {}
  mod_disco: {}
  mod_version: {}
  mod_ping: {}
  mod_s2s_dialback: {}
  mod_register:
    access: register
    ip_access: all
%[9]s%[10]s`, o.domain, pemFile, caLine, vport, c2sPort, o.ip, s2sPort, o.listen, o.modules, o.tail)
	cfg := write("ejabberd.yml", []byte(conf))
	e := &ejabberdServer{t: t, domain: o.domain, dir: dir, caPEM: o.pki.caPEM,
		c2s: net.JoinHostPort(o.ip, strconv.Itoa(c2sPort)), s2s: net.JoinHostPort(o.ip, strconv.Itoa(s2sPort))}
	// The shell runs inside the new mount namespace: bind the two files, then become erl.
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf && exec "$2" -noinput -mnesia dir "\"$3\"" -s ejabberd`,
		hosts, resolv, erl, filepath.Join(dir, "spool"))
	cmd.Env = append(os.Environ(), "HOME="+dir, "EJABBERD_CONFIG_PATH="+cfg,
		"EJABBERD_LOG_PATH="+filepath.Join(dir, "ejabberd.log"), "ERL_LIBS="+libs,
		"ERL_CRASH_DUMP="+filepath.Join(dir, "erl_crash.dump"), "ERL_CRASH_DUMP_BYTES=0")
	e.peerProc = startPeer(t, "ejabberd", cmd, filepath.Join(dir, "ejabberd.log"), e.s2s, 60*time.Second) // under load (CI runs packages side by side) the BEAM takes its time
	return e
}

// register creates user@domain with XEP-0077 in-band registration.
func (e *ejabberdServer) register(user, pass string) {
	e.t.Helper()
	r, _ := c2sStart(e.t, e.c2s, e.domain, e.caPEM)
	r.Send("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>" + user +
		"</username><password>" + pass + "</password></query></iq>")
	if got := r.Expect("id='reg1'"); !strings.Contains(got, "type='result'") {
		e.t.Fatalf("ejabberd registration: %q", got)
	}
	r.Conn().Close()
}

func (e *ejabberdServer) login(user, pass, resource string) *vireotest.RawConn {
	e.t.Helper()
	return c2sLogin(e.t, e.c2s, e.domain, e.caPEM, user, pass, resource)
}

// vireoWithEjabberd starts vireo.test (alice) and ejabberd.test (carol).
func vireoWithEjabberd(t *testing.T, trustCA bool) (*vireotest.Server, *ejabberdServer, *syncBuffer) {
	t.Helper()
	return vireoWithEjabberdOpts(t, trustCA, nil, nil)
}

// vireoWithEjabberdOpts is vireoWithEjabberd with ejabberd's and Vireo's options adjusted
// first by eopt and vopt (either may be nil).
func vireoWithEjabberdOpts(t *testing.T, trustCA bool, eopt func(*ejabberdOptions), vopt func(*vireotest.Options)) (*vireotest.Server, *ejabberdServer, *syncBuffer) {
	t.Helper()
	needEjabberd(t)
	pki := newTestPKI(t)
	vip, eip := loopbackIP(), loopbackIP()
	vs2s := net.JoinHostPort(vip, strconv.Itoa(freePort(t, vip)))
	eo := ejabberdOptions{domain: "ejabberd.test", ip: eip, pki: pki, vireo: vs2s,
		vireoDomain: "vireo.test", trustCA: trustCA}
	if eopt != nil {
		eopt(&eo)
	}
	e := startEjabberd(t, eo)
	e.register("carol", "carol secret")
	logs := new(syncBuffer)
	log := zerolog.New(logs).Level(zerolog.DebugLevel)
	certPEM, keyPEM := pki.issue(t, "vireo.test")
	o := vireotest.Options{Domain: "vireo.test", AllowPlain: true, S2S: true, S2SAddr: vs2s,
		S2SSetupTimeout: 3 * time.Second, CertPEM: certPEM, KeyPEM: keyPEM, Logger: &log}
	if trustCA {
		o.S2SCAs = x509.NewCertPool()
		o.S2SCAs.AppendCertsFromPEM(pki.caPEM)
	}
	if vopt != nil {
		vopt(&o)
	}
	v := vireotest.Start(t, o)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("VIREO_TEST_LOGS") != "" {
			t.Logf("vireo log:\n%s", tail([]byte(logs.String()), 20000))
		}
	})
	v.Engine.SetS2SHosts(map[string]string{"ejabberd.test": e.s2s})
	v.AddUser(t, "alice", "alice secret")
	return v, e, logs
}

// TestFederationEjabberd: alice@vireo.test and carol@ejabberd.test (a client of a real
// ejabberd 23.01), dialback both ways (neither trusts the other's certificate):
// subscription to both, presence, chat each way, IQs each way, then ejabberd dies and a
// message to carol bounces.
func TestFederationEjabberd(t *testing.T) {
	v, e, _ := vireoWithEjabberd(t, false)
	alice := v.LoginPlain(t, "alice", "alice secret", "phone")
	carol := e.login("carol", "carol secret", "pc")
	converse(t, alice, carol, "alice@vireo.test/phone", "carol@ejabberd.test/pc")
	var got string

	alice.Send("<iq type='get' id='v1' to='ejabberd.test'><query xmlns='jabber:iq:version'/></iq>")
	if got = alice.Expect("</iq>"); !strings.Contains(got, "type='result'") || !strings.Contains(got, "ejabberd") {
		t.Fatalf("version of ejabberd.test: %q", got)
	}
	carol.Send("<iq type='get' id='d1' to='vireo.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got = carol.Expect("</iq>"); !strings.Contains(got, "type='result'") || !strings.Contains(got, "<identity") {
		t.Fatalf("disco#info of vireo.test: %q", got)
	}
	carol.Send("<iq type='get' id='e2' to='nobody@vireo.test/x'><query xmlns='jabber:iq:version'/></iq>")
	if got = carol.Expect("</iq>"); !strings.Contains(got, "type='error'") || !strings.Contains(got, "id='e2'") {
		t.Fatalf("iq to a missing vireo user: %q", got)
	}

	e.kill()
	alice.Send("<message to='carol@ejabberd.test/pc' id='m3' type='chat'><body>still there?</body></message>")
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
}

// TestFederationEjabberdExternal: both trust the test CA, so both directions use SASL
// EXTERNAL.
func TestFederationEjabberdExternal(t *testing.T) {
	v, e, logs := vireoWithEjabberd(t, true)
	alice := v.LoginPlain(t, "alice", "alice secret", "phone")
	alice.Send("<presence/>")
	carol := e.login("carol", "carol secret", "pc")
	carol.Send("<presence/>")
	alice.Send("<message to='carol@ejabberd.test/pc' id='m1' type='chat'><body>hello carol</body></message>")
	carol.Expect("hello carol")
	carol.Send("<message to='alice@vireo.test/phone' id='m2' type='chat'><body>hi alice</body></message>")
	alice.Expect("hi alice")
	l := logs.String()
	if !strings.Contains(l, "s2s inbound stream authenticated with SASL EXTERNAL") || !strings.Contains(l, "s2s SASL EXTERNAL succeeded") {
		t.Fatalf("vireo did not use SASL EXTERNAL both ways:\n%s", l)
	}
}

// TestFederationEjabberdPush: as TestFederationProsodyPush with ejabberd 23.01's mod_push:
// dave on ejabberd registers push.vireo.test, a component of Vireo, as his app server;
// a message while he is offline makes ejabberd publish a notification, which crosses
// s2s (dialback: Vireo's certificate does not name the component) to the component.
func TestFederationEjabberdPush(t *testing.T) {
	v, e, _ := vireoWithEjabberdOpts(t, false, func(o *ejabberdOptions) {
		o.vireoDomain += " push.vireo.test"                // one /etc/hosts line names both
		o.modules += "  mod_push: {}\n  mod_offline: {}\n" // it notifies for messages stored offline
	}, func(o *vireotest.Options) {
		o.Components = []engine.Component{{Domain: "push.vireo.test", Secret: compSecret}}
	})
	app, _ := componentLogin(t, v, "push.vireo.test", compSecret)
	app.Expect("<handshake/>")
	e.register("dave", "dave secret")

	dave := e.login("dave", "dave secret", "phone")
	enablePush(t, dave, "push.vireo.test", "daves-phone")
	dave.Send("</stream:stream>")
	dave.Conn().Close()

	carol := e.login("carol", "carol secret", "pc")
	carol.Send("<message to='dave@ejabberd.test' type='chat' id='c1'><body>wake up</body></message>")
	// ejabberd publishes from its domain, Prosody too; Vireo from the user's bare JID.
	awaitPublish(t, app, 20*time.Second, "from='ejabberd.test'", "to='push.vireo.test'", "<publish node='daves-phone'>", "urn:xmpp:push:0")
}
