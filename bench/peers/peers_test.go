package peers

import (
	cryptotls "crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/engine/config"
)

// TestREADMEListsSettings keeps README.md in step with what each server reports.
func TestREADMEListsSettings(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"vireo", "prosody", "ejabberd"} {
		s, err := New(n, &Env{}, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Settings()) == 0 {
			t.Errorf("%s lists no settings", n)
		}
		for _, st := range s.Settings() {
			if row := "| " + st[0] + " | " + st[1] + " |"; !strings.Contains(string(b), row) {
				t.Errorf("README.md lacks %s's row %q", n, row)
			}
		}
		// The federation pair's B side (-only s2s) may list more.
		p, err := NewPair(n, &Env{})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range p.B.Settings() {
			if row := "| " + st[0] + " | " + st[1] + " |"; !strings.Contains(string(b), row) {
				t.Errorf("README.md lacks %s's row %q", p.B.Name(), row)
			}
		}
	}
}

// TestEjabberdPairRenders: the ejabberd B side of a federation pair serves b.localhost
// on 127.0.0.3 with an s2s listener, dials Vireo's s2s port, resolves a.localhost from its
// own hosts file and starts in a mount namespace as the ejabberd user; the single-server
// config has none of it.
func TestEjabberdPairRenders(t *testing.T) {
	env := &Env{Dir: t.TempDir(), Cert: "/c", Key: "/k"}
	p, err := NewPair("ejabberd", env)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := p.B.(*ejabberd)
	if !ok || p.B.Name() != "ejabberd-b" || p.DomainB != "b.localhost" || e.node() == ejabberdNode {
		t.Fatalf("B side %T %q %q", p.B, p.B.Name(), p.DomainB)
	}
	a := p.A.(*vireo)
	if ws, _ := e.WebSocket(true); !strings.HasPrefix(e.Addr(false), "127.0.0.3:") || !strings.HasPrefix(ws, "127.0.0.3:") {
		t.Errorf("B side listens on %s, %s", e.Addr(false), ws)
	}
	e.dir = filepath.Join(env.Dir, e.Name())
	m, err := e.vars()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ejabberd.yml")
	if err := render(ejabberdConf, path, m); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	cfg := string(b)
	for _, want := range []string{
		"hosts:\n  - b.localhost\n",
		fmt.Sprintf("  -\n    port: %d\n    ip: \"127.0.0.3\"\n    module: ejabberd_s2s_in\n", e.fed.s2s),
		fmt.Sprintf("\noutgoing_s2s_port: %d\n", a.fed.s2s),
		"\ns2s_use_starttls: required\n",
		"\n  mod_s2s_dialback: {}\n",
		"host: \"conference.b.localhost\"",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("pair config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "127.0.0.1") || strings.Contains(cfg, "<no value>") {
		t.Errorf("pair config:\n%s", cfg)
	}
	if got, want := e.fed.hostsFile(), "127.0.0.1 localhost\n127.0.0.2 a.localhost\n"; got != want {
		t.Errorf("hosts file %q, want %q", got, want)
	}
	if _, err := user.Lookup("ejabberd"); err != nil && os.Getenv("CI") == "" {
		t.Log("the namespaced command is not checked: Debian's ejabberd (its user) is not installed")
		return
	}
	if os.Getuid() == 0 {
		cmd, err := e.namespaced("foreground")
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Join(cmd.Args, " ")
		for _, want := range []string{"unshare -m --propagation private sh -c ", filepath.Join(e.dir, "hosts") + " " + filepath.Join(e.dir, "resolv.conf") + " setpriv --reuid=ejabberd",
			"-- ejabberdctl --node " + ejabberdPairNode + " ", " foreground"} {
			if !strings.Contains(args, want) {
				t.Errorf("command %q lacks %q", args, want)
			}
		}
	}

	// The single server: localhost on 127.0.0.1, no s2s.
	single, _ := New("ejabberd", env, 1, 2)
	m, err = single.(*ejabberd).vars()
	if err != nil {
		t.Fatal(err)
	}
	if err := render(ejabberdConf, path, m); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	cfg = string(b)
	for _, bad := range []string{"s2s", "127.0.0.3", "b.localhost", "<no value>"} {
		if strings.Contains(cfg, bad) {
			t.Errorf("single config has %q:\n%s", bad, cfg)
		}
	}
	if !strings.Contains(cfg, "hosts:\n  - localhost\n") || !strings.Contains(cfg, "host: \"conference.localhost\"") {
		t.Errorf("single config:\n%s", cfg)
	}
}

// TestServersServeTheBench starts each server the bench can run here from its config,
// creates accounts the way the suite does and logs in over plain TCP, direct TLS, ws://
// and wss:// (RFC 7395) with the shared certificate, and exchanges a message over
// WebSocket. Vireo always runs (it is built from this tree); Prosody and
// ejabberd run where their packages are installed (make bench-compare installs them).
// benchEnv builds vireo and vireoctl and makes a work directory with the shared
// certificate; pool trusts that certificate.
func benchEnv(t *testing.T) (env *Env, pool *x509.CertPool) {
	t.Helper()
	bin := t.TempDir()
	for _, b := range []string{"vireo", "vireoctl"} {
		pkg := "../.."
		if b == "vireoctl" {
			pkg = "../../tools/vireoctl"
		}
		if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, b), pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b, err, out)
		}
	}
	// Not t.TempDir: its parent is private, and ejabberd runs as its own user.
	work, err := os.MkdirTemp("", "peers-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	os.Chmod(work, 0o755)
	env, err = NewEnv(work, bin)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pemBytes, _ := os.ReadFile(env.Cert)
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("shared certificate unreadable")
	}
	return env, pool
}

func TestServersServeTheBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	env, pool := benchEnv(t)
	for i, name := range []string{"vireo", "prosody", "ejabberd"} {
		t.Run(name, func(t *testing.T) {
			if name != "vireo" {
				bin := map[string]string{"prosody": "prosody", "ejabberd": "ejabberdctl"}[name]
				if _, err := exec.LookPath(bin); err != nil || os.Getuid() != 0 {
					t.Skipf("%s is not installed here (or not root)", name)
				}
			}
			plain := FreePort(26222 + 100*i)
			srv, err := New(name, env, plain, FreePort(plain+1))
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			if srv.PID() <= 0 || !strings.Contains(srv.Version(), name) {
				t.Fatalf("pid %d, version %q", srv.PID(), srv.Version())
			}
			if err := srv.AddAccounts(3); err != nil {
				t.Fatal(err)
			}
			for _, tls := range []bool{false, true} {
				cfg := loadgen.Config{Addr: srv.Addr(tls), Domain: Domain, Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second,
					TLS: &cryptotls.Config{RootCAs: pool}}
				if tls {
					cfg.Mode = loadgen.DirectTLS
				}
				s, err := loadgen.Dial(cfg, "user3", Password, "t")
				if err != nil {
					t.Fatalf("tls=%v: %v", tls, err)
				}
				s.Close()
				cfg.Addr, cfg.WSPath = srv.WebSocket(tls)
				a, err := loadgen.Dial(cfg, "user1", Password, "ws")
				if err != nil {
					t.Fatalf("WebSocket tls=%v: %v", tls, err)
				}
				b, err := loadgen.Dial(cfg, "user2", Password, "ws")
				if err != nil {
					t.Fatalf("WebSocket tls=%v: %v", tls, err)
				}
				a.Send([]byte("<message xmlns='jabber:client' type='chat' to='" + b.JID + "'><body>over ws</body></message>"))
				for {
					st, err := b.Next()
					if err != nil {
						t.Fatalf("WebSocket tls=%v: %v", tls, err)
					}
					if string(st.Name) == "message" && loadgen.Contains(st.Raw, "over ws") {
						break
					}
				}
				a.Close()
				b.Close()
			}
			if hr, ok := srv.(HeapReporter); ok {
				// Exported and sane (0 until the first collection has run).
				if live, err := hr.LiveHeap(); err != nil || live < 0 || live > 1<<30 {
					t.Fatalf("LiveHeap = %d, %v", live, err)
				}
			} else if name == "vireo" {
				t.Fatal("vireo reports no live heap")
			}
		})
	}
}

func TestLiveHeapParse(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"# HELP go_gc_heap_live_bytes x\n# TYPE go_gc_heap_live_bytes gauge\ngo_gc_heap_live_bytes 1.2345e+07\ngo_goroutines 9\n", 12345000, true},
		{"go_gc_heap_live_bytes_total 5\ngo_gc_heap_live_bytes 42\n", 42, true},
		{"go_goroutines 9\n", 0, false},
		{"go_gc_heap_live_bytes x\n", 0, false},
	}
	for _, tt := range tests {
		got, err := liveHeap(strings.NewReader(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("liveHeap(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestPairFederates starts the federation pair of the s2s scenario and sends a message
// each way between a.localhost and b.localhost.
func TestPairFederates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	env, _ := benchEnv(t)
	for _, name := range []string{"vireo", "prosody", "ejabberd"} {
		t.Run(name, func(t *testing.T) {
			if name != "vireo" {
				bin := map[string]string{"prosody": "prosody", "ejabberd": "ejabberdctl"}[name]
				if _, err := exec.LookPath(bin); err != nil || os.Getuid() != 0 {
					t.Skipf("%s is not installed here (or not root)", name)
				}
			}
			if name == "ejabberd" {
				if out, err := exec.Command("unshare", "-m", "true").CombinedOutput(); err != nil {
					t.Skipf("ejabberd's /etc/hosts needs a mount namespace: unshare -m: %v %s", err, out)
				}
			}
			pairFederates(t, env, name)
		})
	}
}

func pairFederates(t *testing.T, env *Env, name string) {
	p, err := NewPair(name, env)
	if err != nil {
		t.Fatal(err)
	}
	var users []*loadgen.Session
	for _, side := range []struct {
		srv    Server
		domain string
	}{{p.A, p.DomainA}, {p.B, p.DomainB}} {
		if err := side.srv.Start(); err != nil {
			t.Fatal(err)
		}
		defer side.srv.Stop()
		if err := side.srv.AddAccounts(1); err != nil {
			t.Fatal(err)
		}
		s, err := loadgen.Dial(loadgen.Config{Addr: side.srv.Addr(false), Domain: side.domain, Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second},
			"user1", Password, "fed")
		if err != nil {
			t.Fatalf("%s: %v", side.srv.Name(), err)
		}
		defer s.Close()
		users = append(users, s)
	}
	for _, d := range [][2]*loadgen.Session{{users[0], users[1]}, {users[1], users[0]}} {
		d[0].Send([]byte("<message type='chat' to='" + d[1].JID + "'><body>across</body></message>"))
		for {
			st, err := d[1].Next()
			if err != nil {
				t.Fatalf("%s: %v", d[1].JID, err)
			}
			if string(st.Name) == "message" && loadgen.Contains(st.Raw, "across") {
				break
			}
		}
	}
}

// TestEnableRendersOptionalModules: Prosody and ejabberd load mod_mam and mod_pep (mod_caps
// and mod_pubsub's pep plugin) only when the scenario that measures them enables them,
// Vireo archives only when FeatureMAM is enabled too, and a later Enable() takes them out
// again; every rendering is valid in the server's config language where Go
// can check it (Vireo's TOML).
func TestEnableRendersOptionalModules(t *testing.T) {
	for _, tc := range []struct {
		server string
		tmpl   string
		lines  map[string][]string // feature -> what only it adds
	}{
		{"prosody", prosodyConf, map[string][]string{FeatureMAM: {`; "mam"`}, FeaturePEP: {`; "pep"`}}},
		{"ejabberd", ejabberdConf, map[string][]string{FeatureMAM: {"  mod_mam:\n    default: always\n"},
			FeaturePEP: {"  mod_caps: {}\n", "  mod_pubsub:\n    plugins:\n      - flat\n      - pep\n", "  mod_shared_roster: {}\n", "  mod_admin_extra: {}\n"}}},
		{"vireo", vireoConf, nil},
	} {
		for _, on := range [][]string{nil, {FeatureMAM}, {FeaturePEP}, {FeatureNoArchive}, {FeatureMAM, FeaturePEP}, {FeatureGCAtScale}, nil} {
			var f features
			f.Enable(FeatureMAM, FeaturePEP, FeatureNoArchive, FeatureGCAtScale) // what the last scenario left
			f.Enable(on...)
			m := ports{plain: 1, tls: 2, web: 3, webTLS: 4}.vars()
			m["Dir"], m["Cert"], m["Key"], m["Domain"], m["IP"] = "/d", "/c", "/k", Domain, "127.0.0.1"
			f.vars(m)
			path := filepath.Join(t.TempDir(), "cfg")
			if err := render(tc.tmpl, path, m); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			for feat, lines := range tc.lines {
				want := slices.Contains(on, feat)
				for _, l := range lines {
					if strings.Contains(string(b), l) != want {
						t.Errorf("%s with %v: %q present = %v", tc.server, on, l, !want)
					}
				}
			}
			if tc.server == "vireo" {
				c, err := config.Parse(b, path)
				if err != nil {
					t.Fatalf("vireo with %v: %v\n%s", on, err, b)
				}
				if got := c.DisabledModules(); slices.Contains(on, FeatureMAM) == slices.Contains(got, "mam") {
					t.Errorf("vireo with %v: disabled modules %v", on, got)
				}
				if floorOff := c.Runtime.GCMinHeadroom == "0"; floorOff != slices.Contains(on, FeatureGCAtScale) {
					t.Errorf("vireo with %v: gc_min_headroom %q", on, c.Runtime.GCMinHeadroom)
				}
			}
		}
	}
}

func TestIsMesh(t *testing.T) {
	ring := func(i int) map[int]string { return map[int]string{(i + 1) % 5: "to", (i + 4) % 5: "from"} }
	mesh := func(i int) map[int]string {
		m := map[int]string{}
		for j := 0; j < 5; j++ {
			if j != i {
				m[j] = "both"
			}
		}
		return m
	}
	self := func(i int) map[int]string { m := mesh(i); delete(m, (i+1)%5); m[i] = "both"; return m }
	half := func(i int) map[int]string { m := mesh(i); m[(i+1)%5] = "to"; return m }
	for _, tc := range []struct {
		name   string
		roster func(int) map[int]string
		n      int
		want   bool
	}{{"mesh", mesh, 5, true}, {"ring", ring, 5, false}, {"mesh of more users", mesh, 6, false}, {"self", self, 5, false}, {"one-way", half, 5, false}} {
		if got := isMesh(tc.n, tc.roster); got != tc.want {
			t.Errorf("%s: isMesh = %v", tc.name, got)
		}
	}
}

// TestVireoVersionNamesItsBinary: a report names the commit of the binary it ran. One
// from outside the source tree's bin/ without build information is not credited to the
// tree's commit (an A/B against an older build once was).
func TestVireoVersionNamesItsBinary(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "vireo"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	v := &vireo{env: &Env{Bin: other, SourceRoot: root}}
	if got := v.Version(); !strings.Contains(got, "commit unknown") || !strings.Contains(got, other) {
		t.Fatalf("a binary from elsewhere is reported as %q", got)
	}
	v = &vireo{env: &Env{Bin: filepath.Join(root, "bin"), SourceRoot: root}}
	if got := v.Version(); strings.Contains(got, "commit unknown") {
		t.Fatalf("the tree's own binary is reported as %q", got)
	}
}
