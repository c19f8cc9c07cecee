package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIntegrationSplitProcesses runs the split deployment as an operator would: a core
// process with only a link listener, an edge process with the client listeners, both
// from their config files. A client logs in and chats through the edge; the core restarts
// and the edge links again by itself.
func TestIntegrationSplitProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	vireo, ctl := buildBinaries(t)
	dir := t.TempDir()
	// Ports on an address of its own: on 127.0.0.1 the other packages' tests, running
	// beside this one, take ports between the pick and the edge's start.
	linkPort, c2sTLS, metricsPort := freePortOn(t, splitIP), freePortOn(t, splitIP), freePortOn(t, splitIP)
	coreCfg, edgeCfg := filepath.Join(dir, "core.toml"), filepath.Join(dir, "edge.toml")
	cert := filepath.Join(dir, "core", "cert.pem")
	os.WriteFile(coreCfg, []byte(fmt.Sprintf(`domains = ["localhost"]
data_dir = %q
[c2s]
listen = []
tls_listen = []
allow_plain = true
[web]
listen = []
tls_listen = []
[component]
listen = []
[link]
listen = ["127.0.0.41:%d"]
secret = "a secret for the link, long enough"
[tls]
cert = %q
key = %q
[modules.upload]
listen = "127.0.0.41:0"
[modules.proxy65]
listen = "127.0.0.41:0"
`, filepath.Join(dir, "core", "data"), linkPort, cert, filepath.Join(dir, "core", "key.pem"))), 0o600)
	os.WriteFile(edgeCfg, []byte(fmt.Sprintf(`domains = ["localhost"]
data_dir = %q
[c2s]
listen = []
tls_listen = ["127.0.0.41:%d"]
[web]
listen = []
tls_listen = []
[edge]
core = "127.0.0.41:%d"
secret = "a secret for the link, long enough"
name = "edge-a"
metrics_listen = "127.0.0.41:%d"
ca_file = %q
server_name = "localhost"
[tls]
cert = %q
key = %q
`, filepath.Join(dir, "edge", "data"), c2sTLS, linkPort, metricsPort, cert, cert, filepath.Join(dir, "core", "key.pem"))), 0o600)

	core, coreLog := startLogged(t, vireo, coreCfg)
	waitFor(t, coreLog, "vireo is serving")
	if out, err := exec.Command(ctl, "-config", coreCfg, "adduser", "alice@localhost", "secret one").CombinedOutput(); err != nil {
		t.Fatalf("adduser: %v\n%s", err, out)
	}
	edge, edgeLog := startLogged(t, vireo, edgeCfg)
	waitFor(t, edgeLog, "vireo edge is serving")
	waitFor(t, coreLog, "edge linked")

	pem, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	login := func() *tls.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.41:%d", c2sTLS), &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		header := "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
		fmt.Fprint(c, header)
		readUntil(t, c, "</stream:features>")
		fmt.Fprintf(c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>",
			base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret one")))
		if got := readUntil(t, c, "<success"); !strings.Contains(got, "<success") {
			t.Fatalf("login through the edge: %q", got)
		}
		fmt.Fprint(c, header)
		readUntil(t, c, "</stream:features>")
		fmt.Fprint(c, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
		readUntil(t, c, "</iq>")
		return c
	}
	c := login()
	fmt.Fprint(c, "<message to='alice@localhost/r' id='m1'><body>round trip</body></message>")
	if got := readUntil(t, c, "round trip"); !strings.Contains(got, "round trip") {
		t.Fatalf("message through the edge: %q", got)
	}

	// The edge's own metrics: its connection and its link.
	res, err := http.Get(fmt.Sprintf("http://127.0.0.41:%d/metrics", metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "\nvireo_edge_link_up 1\n") || !strings.Contains(string(body), "\nvireo_connections_open 1\n") {
		t.Fatalf("edge metrics:\n%s", body)
	}

	// The core stops: its clients are told, through the edge, and the edge waits for it.
	core.Process.Signal(syscall.SIGTERM)
	if got := readUntil(t, c, "system-shutdown"); !strings.Contains(got, "system-shutdown") {
		t.Fatalf("no system-shutdown through the edge: %q", got)
	}
	core.Wait()
	waitFor(t, edgeLog, "link to the core lost")
	_, coreLog = startLogged(t, vireo, coreCfg)
	waitFor(t, coreLog, "edge linked")
	// The core logs the link when its side of the handshake is done; the edge takes
	// clients once its own side is, a moment later.
	waitFor(t, edgeLog, "linked to the core")
	c = login()
	fmt.Fprint(c, "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	if got := readUntil(t, c, "id='p'"); !strings.Contains(got, "type='result'") {
		t.Fatalf("ping after the core came back: %q", got)
	}
	// SIGHUP on the edge opens a listener added to its file; the session it has goes on.
	plain := freePortOn(t, splitIP)
	b, _ := os.ReadFile(edgeCfg)
	os.WriteFile(edgeCfg, []byte(strings.Replace(string(b), "[c2s]\nlisten = []", fmt.Sprintf("[c2s]\nlisten = [\"127.0.0.41:%d\"]", plain), 1)), 0o600)
	edge.Process.Signal(syscall.SIGHUP)
	waitFor(t, edgeLog, "certificates, limits and listeners reloaded")
	pc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.41:%d", plain))
	if err != nil {
		t.Fatalf("the listener added by SIGHUP: %v", err)
	}
	defer pc.Close()
	fmt.Fprint(pc, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
	if got := readUntil(t, pc, "</stream:features>"); !strings.Contains(got, "starttls") {
		t.Fatalf("features through the added edge listener: %q", got)
	}
	fmt.Fprint(c, "<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
	if got := readUntil(t, c, "id='p2'"); !strings.Contains(got, "type='result'") {
		t.Fatalf("ping after the edge's reload: %q", got)
	}

	edge.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- edge.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("edge exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("edge did not stop on SIGTERM")
	}
}

// splitIP is the loopback address TestIntegrationSplitProcesses listens on.
const splitIP = "127.0.0.41"
