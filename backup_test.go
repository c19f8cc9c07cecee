package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/admin"
)

// TestIntegrationBackupRestore runs the real binaries: alice has bob in her roster and a
// message waits offline for bob; vireoctl backs the running server up through the admin
// socket; the server stops; vireoctl restores the backup into a fresh data_dir (after
// refusing while a server runs); a server on it lets alice log in with SCRAM and see bob,
// and bob gets the message, but not the one sent after the backup. Then, stopped, vireoctl
// backs up from the database itself and exports to XEP-0227 for an import elsewhere.
func TestIntegrationBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	vireo, ctl := buildBinaries(t)
	srv := newFaultServer(t, vireo, "")
	srv.start()
	for _, u := range []string{"alice", "bob"} {
		if err := register(srv.addr, u, u+" pw"); err != nil {
			t.Fatal(err)
		}
	}
	x, err := xlogin(srv.addr, "alice", "alice pw", "r")
	if err != nil {
		t.Fatal(err)
	}
	defer x.c.Close()
	// A ping to bob's bare JID is answered after the message before it was stored
	// (see fault_test.go).
	x.send("<iq type='set' id='roster'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'/></query></iq>" +
		"<message to='bob@localhost' type='chat' id='m1'><body>kept in the backup</body></message>" +
		"<iq type='get' id='ack1' to='bob@localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	waitIQ(t, x, "roster", "ack1")

	cfgPath := filepath.Join(srv.dir, "vireo.toml")
	dir := filepath.Join(t.TempDir(), "backups", "b1")
	out, err := exec.Command(ctl, "-config", cfgPath, "backup", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("online backup: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	m, err := admin.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.Version, "vireo ") {
		t.Fatalf("the backup was not taken by the server: %q", m.Version)
	}
	files := map[string]bool{}
	for _, f := range m.Files {
		files[f.Path] = true
	}
	if !files["fast.key"] {
		t.Fatalf("fast.key not in the backup: %v", files)
	}
	if out, err := exec.Command(ctl, "-config", cfgPath, "backup", dir).CombinedOutput(); err == nil {
		t.Fatalf("second backup into the same directory succeeded:\n%s", out)
	}
	x.send("<message to='bob@localhost' type='chat' id='m2'><body>after the backup</body></message>" +
		"<iq type='get' id='ack2' to='bob@localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	waitIQ(t, x, "ack2")
	x.c.Close()

	// A fresh data_dir for the restored server.
	dst := newFaultServer(t, vireo, "")
	dstCfg := dst.writeConfig()
	// While a server answers on the configured socket, restore refuses.
	running := strings.Replace(readFile(t, dstCfg), filepath.Join(dst.dir, "admin.sock"), filepath.Join(srv.dir, "admin.sock"), 1)
	runningCfg := filepath.Join(dst.dir, "running.toml")
	os.WriteFile(runningCfg, []byte(running), 0o600)
	out, err = exec.Command(ctl, "-config", runningCfg, "restore", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "running") {
		t.Fatalf("restore while the server runs: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dst.dir, "data")); err == nil {
		t.Fatal("a refused restore created the data_dir")
	}

	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.exit:
		srv.cmd = nil
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop within 20 s of SIGTERM")
	}

	out, err = exec.Command(ctl, "-config", dstCfg, "restore", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	oldKey, _ := os.ReadFile(filepath.Join(srv.dir, "data", "fast.key"))
	if newKey, _ := os.ReadFile(filepath.Join(dst.dir, "data", "fast.key")); len(oldKey) != 32 || !bytes.Equal(oldKey, newKey) {
		t.Fatal("the restored fast.key differs from the original")
	}

	dst.start()
	a, err := xlogin(dst.addr, "alice", "alice pw", "r")
	if err != nil {
		t.Fatalf("alice after restore: %v", err)
	}
	defer a.c.Close()
	a.send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
	s := waitIQ(t, a, "r")["r"]
	if len(s.Query.Items) != 1 || s.Query.Items[0].JID != "bob@localhost" {
		t.Fatalf("alice's roster after restore: %s", s.Inner)
	}
	b, err := xlogin(dst.addr, "bob", "bob pw", "r")
	if err != nil {
		t.Fatalf("bob after restore: %v", err)
	}
	defer b.c.Close()
	b.send("<presence/><iq type='get' id='done'><ping xmlns='urn:xmpp:ping'/></iq>")
	var bodies []string
	for wait, pinged := 10*time.Second, false; ; {
		s, err := b.next(wait)
		if err != nil && pinged && strings.Contains(err.Error(), "timeout") {
			break
		}
		if err != nil {
			t.Fatalf("bob's offline messages: %v (so far %q)", err, bodies)
		}
		if s.XMLName.Local == "iq" && s.ID == "done" {
			pinged, wait = true, time.Second
		}
		if s.XMLName.Local == "message" {
			bodies = append(bodies, s.Body)
		}
	}
	if len(bodies) != 1 || bodies[0] != "kept in the backup" {
		t.Fatalf("bob got %q after restore, want only the message sent before the backup", bodies)
	}

	// Stopped: vireoctl takes the backup from the database itself.
	dst.cmd.Process.Signal(syscall.SIGTERM)
	<-dst.exit
	dst.cmd = nil
	off := filepath.Join(t.TempDir(), "b2")
	if out, err := exec.Command(ctl, "-config", dstCfg, "backup", off).CombinedOutput(); err != nil {
		t.Fatalf("offline backup: %v\n%s", err, out)
	}
	if m, err := admin.ReadManifest(off); err != nil || !strings.HasPrefix(m.Version, "vireoctl ") {
		t.Fatalf("offline backup manifest: %+v, %v", m, err)
	}

	// XEP-0227 through vireoctl on stopped servers: export, import into a new data_dir.
	file := filepath.Join(t.TempDir(), "export.xml")
	if out, err := exec.Command(ctl, "-config", dstCfg, "export", file).CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	third := newFaultServer(t, vireo, "")
	thirdCfg := third.writeConfig()
	if out, err := exec.Command(ctl, "-config", thirdCfg, "import", file).CombinedOutput(); err != nil || !strings.Contains(string(out), "imported 2 accounts") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	out, err = exec.Command(ctl, "-config", thirdCfg, "users").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "alice@localhost\nbob@localhost") {
		t.Fatalf("users after import: %v\n%s", err, out)
	}
}

// waitIQ reads from x until it has an IQ answer for each id and returns them; an error
// answer fails the test, except for ids starting "ack" (pings to an offline user's bare
// JID, answered service-unavailable: the answer is what counts).
func waitIQ(t *testing.T, x *xconn, ids ...string) map[string]stz {
	t.Helper()
	got := map[string]stz{}
	for len(got) < len(ids) {
		s, err := x.next(10 * time.Second)
		if err != nil {
			t.Fatalf("waiting for %v: %v", ids, err)
		}
		for _, id := range ids {
			if s.XMLName.Local == "iq" && s.ID == id {
				if s.Type != "result" && !strings.HasPrefix(id, "ack") {
					t.Fatalf("iq %s: %s %s", id, s.Type, s.Inner)
				}
				got[id] = s
			}
		}
	}
	return got
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
