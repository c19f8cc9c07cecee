package engine_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/extdisco"
)

// needCoturn returns the paths of coturn's server and test client, skipping the test
// where Debian's coturn is missing (and failing it in CI, which installs it).
func needCoturn(t *testing.T) (string, string) {
	t.Helper()
	srv, err1 := exec.LookPath("turnserver")
	cli, err2 := exec.LookPath("turnutils_uclient")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("coturn is not installed (apt-get install coturn): %v %v", err1, err2)
		}
		t.Skip("coturn not installed (apt-get install coturn)")
	}
	return srv, cli
}

// TestIntegrationExtDiscoCoturn: the TURN credentials a client gets from XEP-0215 work at a
// real TURN server. coturn runs with use-auth-secret and the secret Vireo has; its test
// client allocates a relay with what alice was given and sends data through it. The same
// with a wrong password, and with credentials whose expiry has passed, is refused.
func TestIntegrationExtDiscoCoturn(t *testing.T) {
	turnserver, uclient := needCoturn(t)
	const secret = "shared with coturn"
	port := freeUDPAndTCPPort(t)
	cfg, err := config.Parse([]byte(`domains = ["localhost"]
[[modules.extdisco.services]]
type = "turn"
host = "127.0.0.1"
port = `+strconv.Itoa(port)+`
transport = "udp"
secret = "`+secret+`"
`), "/x/vireo.toml")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	turn := exec.CommandContext(ctx, turnserver, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
		"--listening-port="+strconv.Itoa(port), "--use-auth-secret", "--static-auth-secret="+secret,
		"--realm=localhost", "--no-tls", "--no-dtls", "--no-cli", "--log-file=stdout",
		"--allow-loopback-peers", "--min-port=49152", "--max-port=49300", "--pidfile="+dir+"/turn.pid")
	out, err := turn.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := turn.Start(); err != nil {
		t.Fatal(err)
	}
	defer turn.Wait()
	defer cancel()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		signaled := false
		for sc.Scan() {
			if !signaled && strings.Contains(sc.Text(), "Total General servers") {
				signaled = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("turnserver did not start")
	}

	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, ModuleConfig: cfg.ModuleConfig})
	srv.AddUser(t, "alice", "secret")
	a := srv.LoginPlain(t, "alice", "secret", "phone")
	a.Send("<iq type='get' id='s1' to='localhost'><services xmlns='urn:xmpp:extdisco:2' type='turn'/></iq>")
	got := iqAnswer(a, "s1")
	attr := func(name string) string {
		m := regexp.MustCompile(`\b` + name + `=['"]([^'"]*)['"]`).FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("no %s in %s", name, got)
		}
		return m[1]
	}
	user, pass := attr("username"), attr("password")

	relay := func(user, pass string) string {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, _ := exec.CommandContext(c, uclient, "-y", "-n", "2", "-m", "1", "-u", user, "-w", pass,
			"-p", strconv.Itoa(port), "127.0.0.1").CombinedOutput()
		return string(b)
	}
	if res := relay(user, pass); strings.Contains(res, "Cannot complete Allocation") || !regexp.MustCompile(`tot_recv_msgs=[1-9]`).MatchString(res) {
		t.Fatalf("coturn did not relay with the credentials Vireo gave (%s / %s):\n%s", user, pass, res)
	}
	if res := relay(user, "d3JvbmcgcGFzc3dvcmQ="); !strings.Contains(res, "Cannot complete Allocation") {
		t.Fatalf("coturn took a wrong password:\n%s", res)
	}
	oldUser, oldPass := extdisco.Credentials(secret, "alice@localhost", time.Now().Add(-time.Minute))
	if res := relay(oldUser, oldPass); !strings.Contains(res, "Cannot complete Allocation") {
		t.Fatalf("coturn took credentials that expired a minute ago:\n%s", res)
	}
}

// freeUDPAndTCPPort returns a loopback port free for both UDP and TCP (TURN listens on both).
func freeUDPAndTCPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}
