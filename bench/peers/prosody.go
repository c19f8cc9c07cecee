package peers

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "embed"
)

//go:embed prosody.cfg.lua
var prosodyConf string

//go:embed mod_vireo_bench_hosts.lua
var prosodyHostsPlugin []byte

type prosody struct {
	env *Env
	ports
	features
	dir, cfg string
	p        *proc
	fed      *federation // set on the Prosody of a federation pair (NewPair)
}

func (s *prosody) Name() string {
	if s.fed != nil {
		return s.fed.name
	}
	return "prosody"
}

func (s *prosody) host() string {
	if s.fed != nil {
		return s.fed.ip
	}
	return "127.0.0.1"
}

func (s *prosody) domain() string {
	if s.fed != nil {
		return s.fed.domain
	}
	return Domain
}

// Addr is the plain or direct-TLS c2s listener on the instance's address.
func (s *prosody) Addr(tls bool) string {
	return net.JoinHostPort(s.host(), strconv.Itoa(map[bool]int{false: s.plain, true: s.tls}[tls]))
}

// WebSocket is the ws:// or wss:// endpoint on the instance's address.
func (s *prosody) WebSocket(tls bool) (string, string) {
	return net.JoinHostPort(s.host(), strconv.Itoa(map[bool]int{false: s.web, true: s.webTLS}[tls])), WSPath
}
func (s *prosody) Version() string { return pkgVersion("prosody") }

func (s *prosody) Start() error {
	if s.dir == "" {
		s.dir = filepath.Join(s.env.Dir, s.Name())
		s.cfg = filepath.Join(s.dir, "prosody.cfg.lua")
		if err := os.MkdirAll(s.hostDir("accounts"), 0o755); err != nil {
			return err
		}
		if s.fed != nil {
			if err := os.MkdirAll(filepath.Join(s.dir, "plugins"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(s.dir, "plugins", "mod_vireo_bench_hosts.lua"), prosodyHostsPlugin, 0o644); err != nil {
				return err
			}
		}
	}
	// Rendered at every start: Enable may have changed the modules since the last.
	if err := render(prosodyConf, s.cfg, s.vars()); err != nil {
		return err
	}
	ports := s.list()
	if s.fed != nil {
		ports = append(ports, s.fed.s2s)
	}
	p, err := launchAt(exec.Command("prosody", "--config", s.cfg), filepath.Join(s.dir, "prosody.log"), 30*time.Second, s.host(), ports...)
	s.p = p
	return err
}

func (s *prosody) vars() map[string]any {
	m := s.ports.vars()
	m["Dir"], m["Cert"], m["Key"] = s.dir, s.env.Cert, s.env.Key
	m["Domain"], m["IP"] = Domain, "127.0.0.1"
	if f := s.fed; f != nil {
		hosts := map[string][2]string{}
		for d, a := range f.hosts {
			h, p, _ := net.SplitHostPort(a)
			hosts[d] = [2]string{h, p}
		}
		m["Domain"], m["IP"], m["S2S"], m["Hosts"] = f.domain, f.ip, f.s2s, hosts
	}
	s.features.vars(m)
	return m
}

func (s *prosody) Stop()    { s.p.stop(15 * time.Second); s.p = nil }
func (s *prosody) PID() int { return s.p.cmd.Process.Pid }

// hostDir is Prosody's per-host store directory: util/datamanager encodes every
// non-alphanumeric byte of the host name as %xx ("b.localhost" is "b%2elocalhost").
func (s *prosody) hostDir(store string) string {
	var b strings.Builder
	for _, c := range []byte(s.domain()) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return filepath.Join(s.dir, "data", b.String(), store)
}

// AddAccounts writes internal_hashed account files — what `prosodyctl register` stores,
// SCRAM-SHA-1 with 4096 iterations like every server here — because 16,000 prosodyctl
// calls take hours. Prosody reads account files at login, so this works while it runs.
func (s *prosody) AddAccounts(n int) error {
	salt := "vireobenchsalt01"
	sp, err := pbkdf2.Key(sha1.New, Password, []byte(salt), 4096, sha1.Size)
	if err != nil {
		return err
	}
	mac := func(k []byte, m string) []byte { h := hmac.New(sha1.New, k); h.Write([]byte(m)); return h.Sum(nil) }
	stored := sha1.Sum(mac(sp, "Client Key"))
	body := fmt.Sprintf("return {\n\t[\"iteration_count\"] = 4096;\n\t[\"salt\"] = %q;\n\t[\"stored_key\"] = %q;\n\t[\"server_key\"] = %q;\n};\n",
		salt, hex.EncodeToString(stored[:]), hex.EncodeToString(mac(sp, "Server Key")))
	dir := s.hostDir("accounts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return parallel(n, func(i int) error {
		return os.WriteFile(filepath.Join(dir, fmt.Sprintf("user%d.dat", i+1)), []byte(body), 0o644)
	})
}

// WriteRosters writes mod_roster's files: in-band, Prosody 0.12 made fewer than 2,000
// of 20,000 subscriptions in two minutes (each one rewrites two roster files).
func (s *prosody) WriteRosters(n int, roster func(i int) map[int]string) (bool, error) {
	dir := s.hostDir("roster")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	return true, parallel(n, func(i int) error {
		var b strings.Builder
		b.WriteString("return {\n\t[false] = {\n\t\t[\"version\"] = 1;\n\t\t[\"pending\"] = {};\n\t};\n")
		m := roster(i)
		keys := make([]int, 0, len(m))
		for j := range m {
			keys = append(keys, j)
		}
		sort.Ints(keys)
		for _, j := range keys {
			fmt.Fprintf(&b, "\t[\"user%d@%s\"] = {\n\t\t[\"subscription\"] = %q;\n\t\t[\"groups\"] = {};\n\t};\n", j+1, s.domain(), m[j])
		}
		b.WriteString("};\n")
		return os.WriteFile(filepath.Join(dir, fmt.Sprintf("user%d.dat", i+1)), []byte(b.String()), 0o644)
	})
}

func (s *prosody) Settings() [][2]string {
	return [][2]string{
		{"`interfaces`, `c2s_ports`, `c2s_direct_tls_ports`", "loopback ports chosen by the bench"},
		{"`http_interfaces`, `http_ports`, `https_interfaces`, `https_ports`, `https_ssl`", "loopback HTTP and HTTPS ports chosen by the bench for mod_websocket (at its default `/xmpp-websocket`), with the bench's certificate"},
		{"`data_path`, `pidfile`", "own data directory under the bench's work directory, no system service"},
		{"`run_as_root`, `daemonize = false`", "the bench runs as root in containers and needs the PID"},
		{"`log = { warn = \"*console\" }`", "warnings only: per-event logging costs CPU that the others do not spend"},
		{"`c2s_require_encryption = false`", "the plain-TCP runs measure every server the same way"},
		{"`authentication = \"internal_hashed\"`", "SCRAM keys stored (no hashing per login), like the others"},
		{"`modules_disabled = { \"limits\", \"s2s\" }`, `limits.c2s.rate`", "Debian's mod_limits shapes c2s to 10 kB/s; s2s is not measured"},
		{"`modules_enabled`", "roster, saslauth, tls, disco, ping, presence, posix, carbons, blocklist, vcard_legacy, private, offline, websocket (RFC 7395, not on in Debian's config), smacks (XEP-0198 with resumption, on in Debian's config too, with its defaults: 600 s hibernation, 500-stanza queue): the IM features Vireo has on"},
		{"`certificates`, `ssl`", "the bench's self-signed ECDSA P-256 certificate, the same for all three"},
		{"`Component \"conference.localhost\" \"muc\"`", "the groupchat fan-out needs a MUC service (mod_muc with its defaults: no occupant limit, 20 messages of history)"},
		{"`modules_enabled` plus `mam` (with `-only mam`) or `pep` (with `-only pep`)", "the archive query and PEP storm scenarios, each module with its defaults (mod_mam: every one-to-one message archived, internal storage, pages of up to 50); loaded only for the scenario that measures it, so the other scenarios' figures are as before"},
		{"a second `VirtualHost \"guest.localhost\"` with `authentication = \"anonymous\"` (with `-only guest`)", "the guest login storm: SASL ANONYMOUS (mod_auth_anonymous) on a host of its own, as Vireo and ejabberd have it"},
		{"accounts, rosters", "written as Prosody's own data files before the runs (prosodyctl per account is far too slow; in-band roster provisioning stalls)"},
	}
}

// parallel runs f(0..n-1) on every core.
func parallel(n int, f func(i int) error) error {
	w := runtime.NumCPU() * 4
	errs := make(chan error, w)
	for k := 0; k < w; k++ {
		go func(k int) {
			var first error
			for i := k; i < n; i += w {
				if err := f(i); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}(k)
	}
	var first error
	for k := 0; k < w; k++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func runtimeVersion() string { return runtime.Version() }
