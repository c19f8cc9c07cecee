package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// freePort returns a loopback port that was free a moment ago (vireotest.FreePort).
func freePort(t *testing.T) int { return freePortOn(t, "127.0.0.1") }

func freePortOn(t *testing.T, ip string) int { return vireotest.FreePort(t, ip) }

func buildBinaries(t *testing.T) (vireo, ctl string) {
	t.Helper()
	dir := t.TempDir()
	vireo, ctl = filepath.Join(dir, "vireo"), filepath.Join(dir, "vireoctl")
	for _, b := range [][2]string{{vireo, "."}, {ctl, "./tools/vireoctl"}} {
		out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	return vireo, ctl
}

// TestIntegrationFirstStart runs the real binary the way the README says: no config yet.
// It must write a config and a certificate, serve TLS with that certificate, accept
// vireoctl while running and while stopped, and exit 0 on SIGTERM after telling clients.
func TestIntegrationFirstStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	vireo, ctl := buildBinaries(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "vireo.toml")

	// First start with -t: writes the default file, checks it, exits.
	out, err := exec.Command(vireo, "-config", cfgPath, "-t").CombinedOutput()
	if err != nil {
		t.Fatalf("vireo -t: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("first start")) {
		t.Fatalf("first start was not announced:\n%s", out)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("generated config does not load: %v", err)
	}
	domain := cfg.Domains[0]

	// Move the listeners to free loopback ports so tests can run beside a real server.
	plain, direct := freePort(t), freePort(t)
	b, _ := os.ReadFile(cfgPath)
	s := strings.Replace(string(b), `listen = ["[::]:5222"]`, fmt.Sprintf(`listen = ["127.0.0.1:%d"]`, plain), 1)
	s = strings.Replace(s, `tls_listen = ["[::]:5223"]`, fmt.Sprintf(`tls_listen = ["127.0.0.1:%d"]`, direct), 1)
	if s == string(b) {
		t.Fatal("generated config has no listen lines to edit")
	}
	s += "\n[modules.upload]\nlisten = \"127.0.0.1:0\"\n[modules.proxy65]\nlisten = \"127.0.0.1:0\"\n"
	os.WriteFile(cfgPath, []byte(s), 0o640)
	// A data_dir that already exists open to everyone (made by hand, or by an installer):
	// the server warns with the chmod to run and creates everything inside it private.
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dataDir, 0o755)

	// vireoctl against the stopped server opens the database directly.
	if out, err := exec.Command(ctl, "-config", cfgPath, "adduser", "alice@"+domain, "secret one").CombinedOutput(); err != nil {
		t.Fatalf("offline adduser: %v\n%s", err, out)
	}

	cmd, lines := startLogged(t, vireo, cfgPath)
	if seen := waitFor(t, lines, "vireo is serving"); !strings.Contains(seen, "chmod -R go-rwx "+dataDir) {
		t.Fatalf("no warning about the world-readable data_dir:\n%s", seen)
	}

	if _, err := os.Stat(cfg.TLS.Cert); err != nil {
		t.Fatalf("no certificate written: %v", err)
	}
	// Direct TLS presents the generated certificate for the domain.
	tc, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", direct), &tls.Config{ServerName: domain, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("direct TLS: %v", err)
	}
	if cn := tc.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != domain {
		t.Fatalf("certificate CN = %q, want %q", cn, domain)
	}
	fmt.Fprintf(tc, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", domain)
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := readUntil(t, tc, "</stream:features>")
	if !strings.Contains(got, "SCRAM-SHA-256") {
		t.Fatalf("features lack SCRAM-SHA-256: %s", got)
	}

	// vireoctl against the running server goes through the admin socket.
	if out, err := exec.Command(ctl, "-config", cfgPath, "adduser", "bob@"+domain, "secret two").CombinedOutput(); err != nil {
		t.Fatalf("online adduser: %v\n%s", err, out)
	}
	out, err = exec.Command(ctl, "-config", cfgPath, "users").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "alice@"+domain) || !strings.Contains(string(out), "bob@"+domain) {
		t.Fatalf("users: %v\n%s", err, out)
	}
	if out, err := exec.Command(ctl, "-config", cfgPath, "adduser", "bob@"+domain, "x").CombinedOutput(); err == nil {
		t.Fatalf("duplicate adduser succeeded:\n%s", out)
	}
	if out, err := exec.Command(ctl, "-config", cfgPath, "stats").CombinedOutput(); err != nil || !strings.Contains(string(out), "accounts") {
		t.Fatalf("stats: %v\n%s", err, out)
	} else if cert := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(domain) + ` +file +\S+Z +acme off +- +` + regexp.QuoteMeta(domain) +
		` \(self-signed\)\n  file ` + regexp.QuoteMeta(cfg.TLS.Cert) + `$`); !cert.Match(out) {
		t.Fatalf("stats: no line for the generated certificate of %s (%s):\n%s", domain, cfg.TLS.Cert, out)
	}
	if out, err := exec.Command(ctl, "-config", cfgPath, "reload").CombinedOutput(); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	// A second plain port, added to the file and reloaded, serves without a restart.
	second := freePort(t)
	b, _ = os.ReadFile(cfgPath)
	edited := strings.Replace(string(b), fmt.Sprintf(`listen = ["127.0.0.1:%d"]`, plain), fmt.Sprintf(`listen = ["127.0.0.1:%d", "127.0.0.1:%d"]`, plain, second), 1)
	os.WriteFile(cfgPath, []byte(edited), 0o640)
	if out, err := exec.Command(ctl, "-config", cfgPath, "reload").CombinedOutput(); err != nil {
		t.Fatalf("reload with a second port: %v\n%s", err, out)
	}
	// A port in use fails the reload, and the rest of that edit (a new domain) is not applied.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	busyPort := busy.Addr().(*net.TCPAddr).Port
	bad := strings.Replace(edited, fmt.Sprintf(`"127.0.0.1:%d"]`, second), fmt.Sprintf(`"127.0.0.1:%d", "127.0.0.1:%d"]`, second, busyPort), 1)
	bad = strings.Replace(bad, fmt.Sprintf("domains = [%q]", domain), fmt.Sprintf("domains = [%q, \"added.example\"]", domain), 1)
	if bad == edited {
		t.Fatal("could not edit the listen and domains lines")
	}
	os.WriteFile(cfgPath, []byte(bad), 0o640)
	if out, err := exec.Command(ctl, "-config", cfgPath, "reload").CombinedOutput(); err == nil || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("reload onto a port in use: %v\n%s", err, out)
	}
	busy.Close()
	os.WriteFile(cfgPath, []byte(edited), 0o640)
	if pc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", second)); err != nil {
		t.Fatal(err)
	} else {
		fmt.Fprint(pc, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='added.example' version='1.0'>")
		if got := readUntil(t, pc, "</stream:stream>"); !strings.Contains(got, "host-unknown") {
			t.Fatalf("a domain from the failed reload is served: %q", got)
		}
		pc.Close()
	}
	if out, err := exec.Command(ctl, "-config", cfgPath, "stats").CombinedOutput(); err != nil ||
		!regexp.MustCompile(fmt.Sprintf(`(?m)^c2s +127\.0\.0\.1:%d +accepting +\d+$`, second)).Match(out) {
		t.Fatalf("stats does not list the port the reload opened: %v\n%s", err, out)
	}
	for _, port := range []int{plain, second} {
		pc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("port %d after the reload: %v", port, err)
		}
		fmt.Fprintf(pc, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", domain)
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if got := readUntil(t, pc, "</stream:features>"); !strings.Contains(got, "starttls") {
			t.Fatalf("port %d after the reload: %q", port, got)
		}
		pc.Close()
	}
	if out, err := exec.Command(ctl, "-config", cfgPath, "s2s").CombinedOutput(); err != nil || !strings.Contains(string(out), "no server-to-server streams") {
		t.Fatalf("s2s: %v\n%s", err, out)
	}

	// SIGTERM: the open stream is told, and the process exits 0.
	cmd.Process.Signal(syscall.SIGTERM)
	tail := readUntil(t, tc, "</stream:stream>")
	if !strings.Contains(tail, "system-shutdown") {
		t.Fatalf("stream closed without system-shutdown: %q", tail)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15 s of SIGTERM")
	}

	// And the accounts are still there when stopped.
	out, err = exec.Command(ctl, "-config", cfgPath, "users").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "bob@"+domain) {
		t.Fatalf("users after stop: %v\n%s", err, out)
	}

	// Nothing the server or vireoctl created is readable by other users.
	n := 0
	filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dataDir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n++
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %04o, readable by others", p, fi.Mode().Perm())
		}
		return nil
	})
	if n < 5 {
		t.Fatalf("only %d paths under %s", n, dataDir)
	}
}

// startLogged runs the binary with cfg and returns its log lines (JSON).
func startLogged(t *testing.T, vireo, cfg string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(vireo, "-config", cfg, "-log-format", "json", "-log-level", "info")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	return cmd, lines
}

// waitFor reads log lines until one contains substr and returns the lines read.
func waitFor(t *testing.T, lines <-chan string, substr string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	var seen strings.Builder
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("server exited before %q; it said:\n%s", substr, seen.String())
			}
			seen.WriteString(l + "\n")
			if strings.Contains(l, substr) {
				return seen.String()
			}
		case <-deadline:
			t.Fatalf("no %q within 30 s; the server said:\n%s", substr, seen.String())
		}
	}
}

func readUntil(t *testing.T, c net.Conn, substr string) string {
	t.Helper()
	var buf bytes.Buffer
	p := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(buf.String(), substr) {
		n, err := c.Read(p)
		buf.Write(p[:n])
		if err != nil {
			break
		}
	}
	return buf.String()
}
