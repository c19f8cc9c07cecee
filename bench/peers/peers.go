// Package peers starts the XMPP servers the bench compares — Vireo, Prosody and
// ejabberd — on loopback ports, each from a config kept beside this file, with its own
// data directory under one work directory and the same self-signed certificate, and
// creates the bench accounts (user1..userN, password "password") the way each server
// does it fastest. It does not measure anything: scenarios live in bench/scenario.
package peers

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vireo-im/vireo/engine/config"
)

// Domain is the virtual host every server serves.
const Domain = "localhost"

// Password is every bench account's password.
const Password = "password"

// Server is one XMPP server under test.
type Server interface {
	Name() string
	// Version is the server's version as its package or build reports it.
	Version() string
	// Start prepares the server's config and data directory on first use and starts it;
	// it returns once the plain listener accepts connections.
	Start() error
	// Stop ends the process and waits for it.
	Stop()
	// PID is the process to sample in /proc while the server runs.
	PID() int
	// Addr is the plain-TCP (STARTTLS-capable) or direct-TLS listener.
	Addr(tls bool) string
	// WebSocket is the RFC 7395 endpoint: the HTTP (ws://) or HTTPS (wss://) listener
	// and the path.
	WebSocket(tls bool) (addr, path string)
	// AddAccounts makes sure user1..userN exist (the server is running).
	AddAccounts(n int) error
	// WriteRosters stores, for users 1..n, the rosters given by roster(i) (0-based user
	// index -> subscription) while the server runs with nobody online. It reports false
	// when the server has no such path and rosters must be made in-band.
	WriteRosters(n int, roster func(i int) map[int]string) (bool, error)
	// Settings lists every setting that differs from the server's packaged defaults and why.
	Settings() [][2]string
	// Enable turns on the optional features named (FeatureMAM, FeaturePEP) from the next
	// Start, and the others off; Enable() turns them all off.
	Enable(features ...string)
}

// HeapReporter is a server that reports the heap its last garbage collection found
// reachable (Vireo's go_gc_heap_live_bytes at /metrics): a per-session figure that does
// not move with the collector's cycle as RSS does.
type HeapReporter interface {
	LiveHeap() (int64, error)
}

// GoroutineReporter is a server that reports its number of goroutines (Vireo's
// go_goroutines): the soak's check for goroutines left behind.
type GoroutineReporter interface {
	Goroutines() (int64, error)
}

// Optional features: Prosody and ejabberd load them only for the scenario that measures
// them (-only mam, -only pep), so that archiving and PEP cost nothing in the other
// scenarios' figures. Vireo has both on in every scenario (its defaults).
const (
	FeatureMAM = "mam" // XEP-0313 archiving of one-to-one messages
	FeaturePEP = "pep" // XEP-0163 personal eventing (and XEP-0115 caps where separate)
	// FeatureNoArchive turns archiving off where it is on by default (Vireo), for the
	// plain reference the archive scenario measures its cost against.
	FeatureNoArchive = "no-mam"
	// FeatureGCAtScale runs the collector as it runs with millions of sessions, for the
	// scenarios that measure bytes per session: Vireo's headroom floor
	// (runtime.gc_min_headroom) is off, because at the bench's 2,000 to 16,000 sessions it
	// would be larger than gc_percent of the live heap and keep the collector's proportional
	// headroom out of the slope, which a node with millions of sessions pays.
	FeatureGCAtScale = "gc-at-scale"
	// FeatureGuests adds GuestDomain, a host where anyone logs in as a guest with SASL
	// ANONYMOUS (XEP-0175), for the guest login storm (-only guest).
	FeatureGuests = "guests"
)

// GuestDomain is the guests' host with FeatureGuests.
const GuestDomain = "guest." + Domain

// features is the set Enable keeps, for the config templates.
type features struct{ mam, pep, noMAM, atScale, guests bool }

func (f *features) Enable(names ...string) {
	*f = features{}
	for _, n := range names {
		switch n {
		case FeatureMAM:
			f.mam = true
		case FeaturePEP:
			f.pep = true
		case FeatureNoArchive:
			f.noMAM = true
		case FeatureGCAtScale:
			f.atScale = true
		case FeatureGuests:
			f.guests = true
		}
	}
}

func (f features) vars(m map[string]any) {
	m["MAM"], m["PEP"], m["NoMAM"], m["GCAtScale"], m["Guests"] = f.mam, f.pep, f.noMAM, f.atScale, f.guests
	m["GuestDomain"] = GuestDomain
}

// Env is what the servers share: a work directory and the certificate.
type Env struct {
	Dir        string // each server gets Dir/<name>
	Cert, Key  string // PEM files, ECDSA P-256, for Domain
	Bin        string // directory holding vireo and vireoctl
	SourceRoot string // repository root (for Vireo's version)
}

// NewEnv creates dir and the shared certificate in it.
func NewEnv(dir, bin string) (*Env, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	e := &Env{Dir: dir, Cert: filepath.Join(dir, "localhost.crt"), Key: filepath.Join(dir, "localhost.key"), Bin: bin}
	if _, err := config.EnsureCert(e.Cert, e.Key, []string{Domain}); err != nil {
		return nil, err
	}
	// Prosody and ejabberd run as their own users and must read the key.
	os.Chmod(e.Cert, 0o644)
	os.Chmod(e.Key, 0o644)
	return e, nil
}

// WSPath is the WebSocket endpoint's path on every server (each one's default but
// ejabberd's, which has none).
const WSPath = "/xmpp-websocket"

// ports are a server's loopback listeners: c2s plain and direct TLS, HTTP and HTTPS
// (XMPP over WebSocket).
type ports struct{ plain, tls, web, webTLS int }

func (p ports) Addr(tls bool) string { return addr(p.plain, p.tls, tls) }

func (p ports) WebSocket(tls bool) (string, string) { return addr(p.web, p.webTLS, tls), WSPath }

func (p ports) list() []int { return []int{p.plain, p.tls, p.web, p.webTLS} }

func (p ports) vars() map[string]any {
	return map[string]any{"Plain": p.plain, "TLS": p.tls, "Web": p.web, "WebTLS": p.webTLS, "WSPath": WSPath}
}

// New returns the server called name ("vireo", "prosody" or "ejabberd") with its c2s
// ports; its two web ports are the next free ones above tls.
func New(name string, e *Env, plain, tls int) (Server, error) {
	pp := ports{plain: plain, tls: tls}
	if tls > 0 {
		pp.web = FreePort(tls + 1)
		pp.webTLS = FreePort(pp.web + 1)
	}
	switch name {
	case "vireo":
		return &vireo{env: e, ports: pp}, nil
	case "prosody":
		return &prosody{env: e, ports: pp}, nil
	case "ejabberd":
		return &ejabberd{env: e, ports: pp}, nil
	}
	return nil, fmt.Errorf("peers: unknown server %q (vireo, prosody, ejabberd)", name)
}

// Pair is two servers federated with each other, for the s2s scenario: each serves its
// own domain on its own loopback address and reaches the other through its s2s
// listener.
type Pair struct {
	A, B             Server
	DomainA, DomainB string
}

// NewPair returns a Vireo instance serving a.localhost on 127.0.0.2 and the server
// called name ("vireo", "prosody" or "ejabberd") serving b.localhost on 127.0.0.3, each
// with an s2s listener and a static route to the other (Vireo's [s2s.hosts], a small
// Prosody plugin; ejabberd, which has no such table, runs in a mount namespace whose
// /etc/hosts maps a.localhost to 127.0.0.2, with outgoing_s2s_port at Vireo's s2s port).
// They share the bench certificate (issued for localhost), so each authenticates to the
// other with dialback.
func NewPair(name string, e *Env) (*Pair, error) {
	base := 26222
	mk := func(n, domain, ip string) (ports, *federation) {
		plain := FreePort(base)
		p := ports{plain: plain, tls: FreePort(plain + 1)}
		p.web = FreePort(p.tls + 1)
		p.webTLS = FreePort(p.web + 1)
		f := &federation{name: n, domain: domain, ip: ip, s2s: FreePort(p.webTLS + 1)}
		base = f.s2s + 1
		return p, f
	}
	pa, fa := mk("vireo-a", "a.localhost", "127.0.0.2")
	a := &vireo{env: e, ports: pa, fed: fa}
	var b Server
	var fb *federation
	switch name {
	case "vireo":
		var pb ports
		pb, fb = mk("vireo-b", "b.localhost", "127.0.0.3")
		b = &vireo{env: e, ports: pb, fed: fb}
	case "prosody":
		var pb ports
		pb, fb = mk("prosody-b", "b.localhost", "127.0.0.3")
		b = &prosody{env: e, ports: pb, fed: fb}
	case "ejabberd":
		var pb ports
		pb, fb = mk("ejabberd-b", "b.localhost", "127.0.0.3")
		b = &ejabberd{env: e, ports: pb, fed: fb}
	default:
		return nil, fmt.Errorf("peers: no federation pair for %q (vireo, prosody, ejabberd)", name)
	}
	fa.hosts = map[string]string{fb.domain: net.JoinHostPort(fb.ip, strconv.Itoa(fb.s2s))}
	fb.hosts = map[string]string{fa.domain: net.JoinHostPort(fa.ip, strconv.Itoa(fa.s2s))}
	return &Pair{A: a, B: b, DomainA: fa.domain, DomainB: fb.domain}, nil
}

// Install installs Debian packages for the named servers that are missing, and stops the
// system services the packages may have started, so the bench's own instances get the
// machine to themselves.
func Install(names []string) error {
	var missing []string
	for _, n := range names {
		bin := map[string]string{"prosody": "prosody", "ejabberd": "ejabberdctl"}[n]
		if bin == "" {
			continue
		}
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "installing %s from Debian's packages\n", strings.Join(missing, ", "))
		if out, err := exec.Command("apt-get", "update", "-qq").CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get update: %v: %s", err, out)
		}
		cmd := exec.Command("apt-get", append([]string{"install", "-y", "-qq"}, missing...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get install %v: %v: %s", missing, err, out)
		}
	}
	for _, n := range names {
		if n != "vireo" {
			exec.Command("service", n, "stop").Run()
		}
	}
	return nil
}

// FreePort returns a free loopback TCP port at or above base and below the kernel's
// ephemeral range (32768 and up by default). A port from the ephemeral range could be
// taken by one of the generator's own client sockets between choosing it and starting
// the server minutes later.
func FreePort(base int) int {
	for p := base; p < base+1000 && p < 32768; p++ {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			l.Close()
			return p
		}
	}
	return 0
}

// waitPorts returns once every port accepts connections: servers open their listeners one
// by one, and a run that starts on the TLS port must not race its opening.
func waitPorts(d time.Duration, alive func() bool, host string, ports ...int) error {
	deadline := time.Now().Add(d)
	for _, port := range ports {
		for {
			c, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err == nil {
				c.Close()
				break
			}
			if !alive() {
				return errors.New("peers: server exited during startup")
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("peers: nothing listens on port %d after %v", port, d)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// proc is a started server process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// launch starts cmd with its output in logPath and waits until every port accepts
// connections; on failure the process is stopped.
func launch(cmd *exec.Cmd, logPath string, wait time.Duration, ports ...int) (*proc, error) {
	return launchAt(cmd, logPath, wait, "127.0.0.1", ports...)
}

// launchAt is launch for a server listening on host.
func launchAt(cmd *exec.Cmd, logPath string, wait time.Duration, host string, ports ...int) (*proc, error) {
	p, err := startProc(cmd, logPath)
	if err != nil {
		return nil, err
	}
	if err := waitPorts(wait, p.alive, host, ports...); err != nil {
		p.stop(15 * time.Second)
		return nil, err
	}
	return p, nil
}

func startProc(cmd *exec.Cmd, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group: Stop reaches helpers (su, shells) along with the server.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func pkgVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		return "unknown"
	}
	return pkg + " " + strings.TrimSpace(string(out)) + " (Debian package)"
}
