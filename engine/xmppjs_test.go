package engine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationXmppJS runs xmpp.js (@xmpp/client 0.14 from npm, a client nobody here
// wrote) against the server: SASL2 with SCRAM-SHA-1, Bind2 with stream management and a
// FAST token in one round trip over STARTTLS; a login with the token alone; and a resume
// inside SASL2 after the TCP connection is cut, with the message sent meanwhile delivered.
// .ci/run installs the package (npm ci in testdata/js).
func TestIntegrationXmppJS(t *testing.T) {
	dir := needNodePackage(t, "@xmpp/client")
	srv := vireotest.Start(t, vireotest.Options{})
	srv.AddUser(t, "js", "js secret")
	srv.AddUser(t, "peer", "peer secret")
	_, port, _ := strings.Cut(srv.C2SAddr(), ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "interop.mjs", port, srv.Domain(), "js", "js secret", "peer", "peer secret")
	cmd.Dir = dir
	// The client verifies the server's certificate: the test's CA is added, nothing is
	// switched off.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+ca)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK js@localhost/js/") {
		t.Fatalf("xmpp.js: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// needNodePackage returns testdata/js when node and the npm package pkg are installed
// there (.ci/run does it); otherwise it skips, or fails under CI.
func needNodePackage(t *testing.T, pkg string) string {
	t.Helper()
	dir, _ := filepath.Abs("testdata/js")
	_, nodeErr := exec.LookPath("node")
	_, pkgErr := os.Stat(filepath.Join(dir, "node_modules", pkg))
	if nodeErr != nil || pkgErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node or %s missing: run npm ci in engine/testdata/js", pkg)
		}
		t.Skipf("node or %s missing (npm ci in engine/testdata/js)", pkg)
	}
	return dir
}
