package peers

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	_ "embed"
)

//go:embed vireo.toml
var vireoConf string

// vireo archives (XEP-0313, default "always") only when FeatureMAM is enabled, like the
// peers, so that the other scenarios measure the same work on every server; PEP is on in
// every scenario, as its defaults have it (it costs nothing unless used).
type vireo struct {
	env *Env
	ports
	features
	dir, cfg string
	p        *proc
	// fed is set on the instances of a federation pair (NewPair); nil: the single
	// instance serving Domain on 127.0.0.1.
	fed *federation
}

// federation is one instance's side of a Vireo pair: its domain, loopback address, s2s
// port, and the peer's s2s address for [s2s.hosts].
type federation struct {
	name, domain, ip string
	s2s              int
	hosts            map[string]string
}

// hostsFile is an /etc/hosts that maps each peer domain to its address, for a server
// that finds its peers with getaddrinfo(3) (ejabberd), and keeps localhost.
func (f *federation) hostsFile() string {
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	for _, d := range slices.Sorted(maps.Keys(f.hosts)) {
		h, _, _ := net.SplitHostPort(f.hosts[d])
		fmt.Fprintf(&b, "%s %s\n", h, d)
	}
	return b.String()
}

// outPort is the s2s port every peer listens on, for a server that dials all remote
// domains on one port (ejabberd's outgoing_s2s_port).
func (f *federation) outPort() (int, error) {
	port := 0
	for d, a := range f.hosts {
		_, ps, err := net.SplitHostPort(a)
		if err != nil {
			return 0, fmt.Errorf("peers: %s: %v", d, err)
		}
		p, _ := strconv.Atoi(ps)
		if port != 0 && p != port {
			return 0, fmt.Errorf("peers: the peers of %s listen on different s2s ports (%d, %d); ejabberd dials one", f.domain, port, p)
		}
		port = p
	}
	if port == 0 {
		return 0, fmt.Errorf("peers: %s has no peer", f.domain)
	}
	return port, nil
}

func (v *vireo) host() string {
	if v.fed != nil {
		return v.fed.ip
	}
	return "127.0.0.1"
}

// Addr is the plain or direct-TLS c2s listener on the instance's address.
func (v *vireo) Addr(tls bool) string {
	return net.JoinHostPort(v.host(), strconv.Itoa(map[bool]int{false: v.plain, true: v.tls}[tls]))
}

// WebSocket is the ws:// or wss:// endpoint on the instance's address.
func (v *vireo) WebSocket(tls bool) (string, string) {
	return net.JoinHostPort(v.host(), strconv.Itoa(map[bool]int{false: v.web, true: v.webTLS}[tls])), WSPath
}

// LiveHeap implements HeapReporter: a scrape of /metrics on the plain web listener
// (loopback is in the default metrics_allow).
func (v *vireo) LiveHeap() (int64, error) { return v.metric("go_gc_heap_live_bytes") }

// Goroutines implements GoroutineReporter, from the same scrape.
func (v *vireo) Goroutines() (int64, error) { return v.metric("go_goroutines") }

func (v *vireo) metric(name string) (int64, error) {
	addr, _ := v.WebSocket(false)
	return Metric("http://"+addr+"/metrics", name)
}

// Metric reads the unlabelled metric name from a Prometheus endpoint (a server that is
// already running: xmppbench -metrics-url).
func Metric(url, name string) (int64, error) {
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("peers: GET /metrics: %s", resp.Status)
	}
	return metric(resp.Body, name)
}

// liveHeap finds go_gc_heap_live_bytes in a Prometheus text exposition.
func liveHeap(r io.Reader) (int64, error) { return metric(r, "go_gc_heap_live_bytes") }

// metric finds the unlabelled metric name in a Prometheus text exposition.
func metric(r io.Reader, name string) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("peers: %s %q: %w", name, v, err)
			}
			return int64(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("peers: no %s at /metrics", name)
}

func (v *vireo) Name() string {
	if v.fed != nil {
		return v.fed.name
	}
	return "vireo"
}

func (v *vireo) Version() string {
	bin := filepath.Join(v.env.Bin, "vireo")
	// The commit the binary was built from when it says (go build in a clone); else the
	// source tree's, but only for the binary built there: a binary from elsewhere
	// (-bin, an A/B against an older build) must not be reported as the tree's commit.
	if bi, err := buildinfo.ReadFile(bin); err == nil {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) >= 7 {
			rev = rev[:7]
			if dirty {
				rev += "-dirty"
			}
			return "vireo " + rev + " (" + bi.GoVersion + ")"
		}
	}
	abs, _ := filepath.Abs(v.env.Bin)
	if root, _ := filepath.Abs(v.env.SourceRoot); abs != filepath.Join(root, "bin") {
		return "vireo (binary from " + v.env.Bin + ", commit unknown)"
	}
	out, err := exec.Command("git", "-C", v.env.SourceRoot, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "vireo (unknown commit)"
	}
	return "vireo " + strings.TrimSpace(string(out)) + " (" + runtimeVersion() + ")"
}

func (v *vireo) Start() error {
	if v.dir == "" {
		v.dir = filepath.Join(v.env.Dir, v.Name())
		v.cfg = filepath.Join(v.dir, "vireo.toml")
		if err := os.MkdirAll(v.dir, 0o755); err != nil {
			return err
		}
	}
	// Rendered at every start: Enable may have changed the modules since the last.
	if err := render(vireoConf, v.cfg, v.vars()); err != nil {
		return err
	}
	ports := v.list()
	if v.fed != nil {
		ports = append(ports, v.fed.s2s)
	}
	p, err := launchAt(exec.Command(filepath.Join(v.env.Bin, "vireo"), "-config", v.cfg), filepath.Join(v.dir, "vireo.log"), 30*time.Second, v.host(), ports...)
	v.p = p
	return err
}

func (v *vireo) vars() map[string]any {
	m := v.ports.vars()
	m["Dir"], m["Cert"], m["Key"] = v.dir, v.env.Cert, v.env.Key
	m["Domain"], m["IP"] = Domain, "127.0.0.1"
	if f := v.fed; f != nil {
		m["Domain"], m["IP"], m["S2S"], m["Hosts"] = f.domain, f.ip, f.s2s, f.hosts
	}
	v.features.vars(m)
	return m
}

func (v *vireo) Stop()    { v.p.stop(15 * time.Second); v.p = nil }
func (v *vireo) PID() int { return v.p.cmd.Process.Pid }
func (v *vireo) Settings() [][2]string {
	return [][2]string{
		{"`listen`, `tls_listen`, `data_dir`", "loopback ports chosen by the bench, own data directory"},
		{"`[web] listen`, `tls_listen`", "loopback ports chosen by the bench (WebSocket at the default `/xmpp-websocket`; loopback is a trusted network by default, so plain ws:// counts as encrypted)"},
		{"`[modules.upload] listen`, `[modules.proxy65] listen`", "free loopback ports (file upload and the SOCKS5 proxy are not benchmarked)"},
		{"`[modules] disabled = [\"mam\"]` except with `-only mam`", "archiving is on by default; the peers' bench configs load their MAM modules only for the archive scenario, so every other scenario measures the same work on all three (the archive scenario reports Vireo's cost with and without it)"},
		{"a second domain, `guest.localhost`, in `anonymous_domains` (with `-only guest`)", "the guest login storm: SASL ANONYMOUS on a host of its own, as Prosody and ejabberd have it; loopback is a trusted network by default, so the storm's guest logins are not throttled"},
		{"`require_tls = false`, `allow_plain = true`", "the plain-TCP runs measure every server the same way"},
		{"`auth_failures_per_minute = 1000000`", "storms come from four loopback addresses; the brute-force throttle is not measured"},
		{"`max_outbound = 4194304`", "the rate search overloads servers on purpose; a slow session is not cut off at the default 1 MiB"},
		{"`[modules.antispam]` limits `0`", "the federation scenario sends from remote accounts its recipients never added, at full speed; by default 20 such messages a minute per sender (200 per server) get through"},
		{"`max_rate = 0`", "no shaping of what one client sends (64 KiB/s after a 1 MiB burst by default), as ejabberd's shaper is removed: the rate search and the groupchat fan-out send faster from one client"},
		{"`log_level = \"warn\"`", "as the generated config (quiet by default)"},
		{"`[tls] cert`, `key`", "the bench's self-signed ECDSA P-256 certificate, the same for all three"},
		{"`[modules.muc] default_occupants = 10000`, `max_occupants = 10000`, `flood_occupants = 100000`", "the groupchat fan-out fills rooms of up to 10,000 occupants as fast as they join: rooms take that many (200 by default, at most 5,000), and large-room join flood control (10 joins/s from 200 occupants) is off"},
		{"`[runtime] gc_min_headroom = \"0\"` in the idle, resume, WebSocket and soak scenarios", "the default floor of 32 MiB between collections is larger than `gc_percent` (50%) of the live heap up to ~64 MiB, so at the bench's sizes it would keep the collector's headroom out of the bytes-per-session slopes; a node with millions of sessions pays that headroom, and the slopes include it; the soak needs collections to tell growth from garbage. The other scenarios run with the default"},
		{"accounts", "`vireoctl bulkadd` over the admin socket, SCRAM-SHA-1/256 keys with 4,096 iterations"},
	}
}

// AddAccounts uses vireoctl bulkadd on the running server (the admin socket), with the
// SCRAM iteration count every server here uses.
func (v *vireo) AddAccounts(n int) error {
	out, err := exec.Command(filepath.Join(v.env.Bin, "vireoctl"), "-config", v.cfg, "bulkadd", "-prefix", "user",
		"-count", strconv.Itoa(n), "-password", Password, "-iter", "4096").CombinedOutput()
	if err != nil {
		return fmt.Errorf("vireoctl bulkadd: %v: %s", err, out)
	}
	return nil
}

// WriteRosters is not offered: Vireo's rosters are made in-band, which it takes at full speed.
func (v *vireo) WriteRosters(int, func(int) map[int]string) (bool, error) { return false, nil }

func addr(plain, tls int, wantTLS bool) string {
	if wantTLS {
		return fmt.Sprintf("127.0.0.1:%d", tls)
	}
	return fmt.Sprintf("127.0.0.1:%d", plain)
}

func render(tmpl, path string, vars map[string]any) error {
	t, err := template.New(filepath.Base(path)).Parse(tmpl)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, vars); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
