package engine_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationSlixmpp logs in with Debian's python3-slixmpp (a client nobody here
// wrote) over STARTTLS, binds, fetches the roster and gets a message to itself.
func TestIntegrationSlixmpp(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import slixmpp").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("slixmpp is not installed (apt-get install python3-slixmpp): %v", err)
		}
		t.Skip("python3-slixmpp not installed")
	}
	srv := vireotest.Start(t, vireotest.Options{})
	srv.AddUser(t, "slix", "py secret")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	host, port, _ := net.SplitHostPort(srv.C2SAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/slixmpp_login.py",
		"slix@localhost/py", "py secret", host, port, ca).CombinedOutput()
	s := string(out)
	if err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, s)
	}
	for _, want := range []string{"BOUND slix@localhost/py", "ECHO slix@localhost/py"} {
		if !strings.Contains(s, want) {
			t.Fatalf("slixmpp output lacks %q:\n%s", want, s)
		}
	}
}
