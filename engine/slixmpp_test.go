package engine_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/store"
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

// TestIntegrationSlixmppCSI: slixmpp's XEP-0352 plugin finds CSI in the stream features and
// goes inactive; presence and chat states from a contact are held back until a message with
// a body arrives, then come first, only the latest presence.
func TestIntegrationSlixmppCSI(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import slixmpp").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("slixmpp is not installed (apt-get install python3-slixmpp): %v", err)
		}
		t.Skip("python3-slixmpp not installed")
	}
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "slix", "py secret")
	srv.AddUser(t, "bob", "secret")
	srv.Store.Rosters().Put("slix@localhost", store.RosterItem{JID: "bob@localhost", Sub: store.SubBoth})
	srv.Store.Rosters().Put("bob@localhost", store.RosterItem{JID: "slix@localhost", Sub: store.SubBoth})
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")

	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	host, port, _ := net.SplitHostPort(srv.C2SAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/slixmpp_csi.py", "slix@localhost/py", "py secret", host, port, ca)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(d time.Duration) (string, bool) {
		select {
		case l, ok := <-lines:
			return l, ok
		case <-time.After(d):
			return "", false
		}
	}
	for {
		l, ok := next(20 * time.Second)
		if !ok {
			t.Fatal("slixmpp never went inactive")
		}
		if l == "INACTIVE" {
			break
		}
		if strings.HasPrefix(l, "NO CSI") {
			t.Fatal(l)
		}
	}
	for _, show := range []string{"away", "dnd", "xa"} {
		bob.Send("<presence><show>" + show + "</show></presence>")
	}
	bob.Send("<message to='slix@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	if l, ok := next(500 * time.Millisecond); ok {
		t.Fatalf("inactive slixmpp got %q", l)
	}
	bob.Send("<message to='slix@localhost' type='chat'><body>wake up</body></message>")
	var got []string
	for {
		l, ok := next(10 * time.Second)
		if !ok {
			break
		}
		got = append(got, l)
	}
	cmd.Wait()
	want := []string{"PRESENCE bob@localhost xa", "CHATSTATE bob@localhost", "BODY wake up"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("slixmpp saw %q, want %q", got, want)
	}
}

// TestIntegrationSlixmppSM: slixmpp's XEP-0198 plugin enables stream management with
// resumption, loses its TCP connection without closing the stream, connects again and
// resumes the same session.
func TestIntegrationSlixmppSM(t *testing.T) {
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
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/slixmpp_sm.py",
		"slix@localhost/py", "py secret", host, port, ca).CombinedOutput()
	s := string(out)
	if err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, s)
	}
	for _, want := range []string{"ENABLED True", "RESUMED", "ECHO"} {
		if !strings.Contains(s, want) {
			t.Fatalf("slixmpp output lacks %q:\n%s", want, s)
		}
	}
}
