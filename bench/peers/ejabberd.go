package peers

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "embed"

	"github.com/vireo-im/vireo/bench/loadgen"
)

//go:embed ejabberd.yml
var ejabberdConf string

// ejabberdNode is the Erlang node name, apart from a system ejabberd's; ejabberdPairNode
// is the federation pair's B side's (NewPair), apart from both.
const (
	ejabberdNode     = "vireobench@localhost"
	ejabberdPairNode = "vireobenchb@localhost"
)

type ejabberd struct {
	env *Env
	ports
	features
	dir  string
	p    *proc
	beam int
	// accounts is the highest n AddAccounts made: the @all@ shared roster group holds
	// exactly these.
	accounts int
	// fed is set on the ejabberd of a federation pair (NewPair): b.localhost on 127.0.0.3
	// with an s2s listener, started in a mount namespace whose /etc/hosts routes to the
	// other side.
	fed *federation
}

func (s *ejabberd) Name() string {
	if s.fed != nil {
		return s.fed.name
	}
	return "ejabberd"
}

func (s *ejabberd) Version() string { return pkgVersion("ejabberd") }

func (s *ejabberd) node() string {
	if s.fed != nil {
		return ejabberdPairNode
	}
	return ejabberdNode
}

func (s *ejabberd) host() string {
	if s.fed != nil {
		return s.fed.ip
	}
	return "127.0.0.1"
}

func (s *ejabberd) domain() string {
	if s.fed != nil {
		return s.fed.domain
	}
	return Domain
}

// Addr is the plain or direct-TLS c2s listener on the instance's address.
func (s *ejabberd) Addr(tls bool) string {
	return net.JoinHostPort(s.host(), strconv.Itoa(map[bool]int{false: s.plain, true: s.tls}[tls]))
}

// WebSocket is the ws:// or wss:// endpoint on the instance's address.
func (s *ejabberd) WebSocket(tls bool) (string, string) {
	return net.JoinHostPort(s.host(), strconv.Itoa(map[bool]int{false: s.web, true: s.webTLS}[tls])), WSPath
}

func (s *ejabberd) ctlArgs(args ...string) []string {
	return append([]string{"--node", s.node(),
		"--config", filepath.Join(s.dir, "ejabberd.yml"), "--ctl-config", filepath.Join(s.dir, "ejabberdctl.cfg"),
		"--spool", filepath.Join(s.dir, "spool"), "--logs", filepath.Join(s.dir, "logs")}, args...)
}

func (s *ejabberd) ctl(args ...string) (*exec.Cmd, error) {
	return asEjabberd(exec.Command("ejabberdctl", s.ctlArgs(args...)...))
}

// asEjabberd runs cmd as the ejabberd user when the bench runs as root.
func asEjabberd(cmd *exec.Cmd) (*exec.Cmd, error) {
	// Started by root, ejabberdctl switches to the ejabberd user through su, whose PAM
	// session drops the open-files soft limit to 1,024. Starting it as that user keeps
	// the bench's limit, as the systemd unit's LimitNOFILE would.
	if os.Getuid() == 0 {
		u, err := user.Lookup("ejabberd")
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+u.HomeDir, "USER=ejabberd", "LOGNAME=ejabberd")
	}
	return cmd, nil
}

func (s *ejabberd) Start() error {
	if s.dir == "" {
		s.dir = filepath.Join(s.env.Dir, s.Name())
		for _, d := range []string{"spool", "logs"} {
			if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
				return err
			}
		}
		// Debian's ejabberdctl.cfg would point the config and PID file back at /etc and /run.
		ctlCfg := "ERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0\"\nEJABBERD_PID_PATH=" + filepath.Join(s.dir, "ejabberd.pid") + "\n"
		if err := os.WriteFile(filepath.Join(s.dir, "ejabberdctl.cfg"), []byte(ctlCfg), 0o644); err != nil {
			return err
		}
		if s.fed != nil {
			if err := os.WriteFile(filepath.Join(s.dir, "hosts"), []byte(s.fed.hostsFile()), 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(s.dir, "resolv.conf"), nil, 0o644); err != nil {
				return err
			}
		}
		// ejabberdctl runs the VM as the ejabberd user when started by root.
		exec.Command("chown", "-R", "ejabberd:ejabberd", s.dir).Run()
	}
	// Rendered at every start: Enable may have changed the modules since the last.
	m, err := s.vars()
	if err != nil {
		return err
	}
	if err := render(ejabberdConf, filepath.Join(s.dir, "ejabberd.yml"), m); err != nil {
		return err
	}
	var cmd *exec.Cmd
	if s.fed != nil {
		// The VM starts epmd (Erlang's port mapper daemon) when none runs. Started here,
		// outside the namespace, it is the daemon a single-server ejabberd leaves behind
		// too, not one that keeps the namespace and its bind mounts alive.
		if epmd, err := asEjabberd(exec.Command("epmd", "-daemon")); err == nil {
			epmd.Run()
		}
		cmd, err = s.namespaced("foreground")
	} else {
		cmd, err = s.ctl("foreground")
	}
	if err != nil {
		return err
	}
	ports := s.list()
	if s.fed != nil {
		ports = append(ports, s.fed.s2s)
	}
	// The VM runs under ejabberdctl; a failed start is stopped by its process group.
	p, err := launchAt(cmd, filepath.Join(s.dir, "console.log"), 60*time.Second, s.host(), ports...)
	if err != nil {
		return err
	}
	s.p = p
	s.beam = findProc("beam.smp", s.node())
	if s.beam == 0 {
		s.Stop()
		return errors.New("peers: ejabberd's beam.smp process not found")
	}
	return nil
}

func (s *ejabberd) vars() (map[string]any, error) {
	m := s.ports.vars()
	m["Cert"], m["Key"] = s.env.Cert, s.env.Key
	m["Domain"], m["IP"] = Domain, "127.0.0.1"
	if f := s.fed; f != nil {
		out, err := f.outPort()
		if err != nil {
			return nil, err
		}
		m["Domain"], m["IP"], m["S2S"], m["OutPort"] = f.domain, f.ip, f.s2s, out
	}
	s.features.vars(m)
	return m, nil
}

// namespaced is ejabberdctl with args for the federation side. ejabberd 23.01 has no
// static s2s route: it looks the remote domain's SRV records up with inet_res (the
// nameservers of /etc/resolv.conf), then its address with getaddrinfo(3) (/etc/hosts),
// and dials that address on outgoing_s2s_port. So, as engine/ejabberd_test.go does,
// ejabberd runs in a mount namespace of its own (unshare -m, root) where /etc/hosts is a
// bind mount of a file mapping the other side's domain to its address and
// /etc/resolv.conf an empty one (no lookups leave the machine); outgoing_s2s_port is the
// other side's s2s port. The machine's files are not touched. Inside, setpriv becomes
// the ejabberd user (no PAM session, so the open-files limit stays the bench's) before
// ejabberdctl runs.
func (s *ejabberd) namespaced(args ...string) (*exec.Cmd, error) {
	if os.Getuid() != 0 {
		return nil, errors.New("peers: ejabberd as a federation peer needs root (a mount namespace for its /etc/hosts)")
	}
	u, err := user.Lookup("ejabberd")
	if err != nil {
		return nil, err
	}
	script := `hosts=$0 resolv=$1; shift; mount --bind "$hosts" /etc/hosts && mount --bind "$resolv" /etc/resolv.conf && exec "$@"`
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script,
		filepath.Join(s.dir, "hosts"), filepath.Join(s.dir, "resolv.conf"),
		"setpriv", "--reuid=ejabberd", "--regid=ejabberd", "--init-groups", "--", "ejabberdctl"}, s.ctlArgs(args...)...)...)
	cmd.Env = append(os.Environ(), "HOME="+u.HomeDir, "USER=ejabberd", "LOGNAME=ejabberd")
	return cmd, nil
}

// Stop asks the VM to stop, waits for it, then ends the wrapper.
func (s *ejabberd) Stop() {
	if s.beam > 0 {
		syscall.Kill(s.beam, syscall.SIGTERM)
		for i := 0; i < 300 && syscall.Kill(s.beam, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		syscall.Kill(s.beam, syscall.SIGKILL)
		s.beam = 0
	}
	s.p.stop(10 * time.Second)
	s.p = nil
}

func (s *ejabberd) PID() int { return s.beam }

// AddAccounts registers the accounts in-band (XEP-0077): ejabberdctl starts a VM per call,
// about a second each, and the generator is meant to be able to make its own accounts.
func (s *ejabberd) AddAccounts(n int) error {
	var next, done atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				cfg := loadgen.Config{Addr: s.Addr(false), Domain: s.domain(), LocalAddr: "127.0.0." + strconv.Itoa(1+i%4)}
				err := loadgen.Register(cfg, "user"+strconv.Itoa(i+1), Password)
				if err != nil && !errors.Is(err, loadgen.ErrConflict) {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				if d := done.Add(1); d%4000 == 0 {
					fmt.Fprintf(os.Stderr, "  ejabberd: %d accounts registered (%.0f/s)\n", d, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		s.accounts = max(s.accounts, n)
	}
	return first
}

// WriteRosters has one fast path: a full mesh of every account (the PEP storm's, when it
// runs alone, with PEP enabled) becomes mod_shared_roster's @all@ group, two ejabberdctl
// calls instead of n×(n-1) subscriptions in-band, which take ejabberd 23.01 hours at
// n = 1,000. Any other roster is left to in-band provisioning (false): ejabberd keeps
// rosters in Mnesia.
func (s *ejabberd) WriteRosters(n int, roster func(i int) map[int]string) (bool, error) {
	if !s.pep || n != s.accounts || !isMesh(n, roster) {
		return false, nil
	}
	for _, args := range [][]string{
		{"srg_create", "bench", s.domain(), "bench", "bench", "bench"},
		{"srg_user_add", "@all@", s.domain(), "bench", s.domain()},
	} {
		cmd, err := s.ctl(args...)
		if err != nil {
			return false, err
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return false, fmt.Errorf("ejabberdctl %s: %v: %s", args[0], err, out)
		}
	}
	return true, nil
}

// isMesh reports whether roster gives each of users 0..n-1 every other one as "both"
// (checked on the first, a middle and the last user).
func isMesh(n int, roster func(i int) map[int]string) bool {
	for _, i := range []int{0, n / 2, n - 1} {
		m := roster(i)
		if len(m) != n-1 || m[i] != "" {
			return false
		}
		for _, sub := range m {
			if sub != "both" {
				return false
			}
		}
	}
	return true
}

func (s *ejabberd) Settings() [][2]string {
	rows := [][2]string{
		{"`listen`", "the two c2s listeners and two `ejabberd_http` listeners (plain and `tls: true`) with only `ejabberd_http_ws` at `/xmpp-websocket`, on loopback ports chosen by the bench (no BOSH, API, STUN, MQTT; s2s only on the federation pair's B side); `websocket_ping_interval` and `websocket_timeout` at their defaults (60 s, 300 s)"},
		{"no `shaper` on the c2s listeners", "Debian's `c2s_shaper` (`normal`) holds each client to 3,000 B/s"},
		{"`backlog: 1024` on the c2s listeners", "the default accept backlog of 5 overflows in a login storm and clients stall in SYN retries; Vireo and Prosody listen with 128 or more"},
		{"`cache_size: 100000`", "the default 1,000-entry caches shrink constantly with 16,000 sessions (ejabberd itself logs that the size should be raised)"},
		{"`starttls_required: false`", "the plain-TCP runs measure every server the same way"},
		{"`loglevel: warning`", "Debian's `info` logs every connection; that costs CPU the others do not spend"},
		{"`certfiles`", "the bench's self-signed ECDSA P-256 certificate, the same for all three"},
		{"`auth_scram_hash: sha`", "SCRAM-SHA-1 keys stored, 4,096 iterations, like the others"},
		{"`registration_timeout: infinity`, `mod_register` with `access: register` open", "the generator registers its accounts in-band from loopback"},
		{"`mod_muc` with `max_users: 10000`, `default_room_options: max_users: 10000`", "the groupchat fan-out needs a MUC service; rooms take 200 occupants by default (`max_users_presence` stays at 1,000, so rooms up to that size broadcast presence as the others do)"},
		{"modules", "mod_fail2ban, mod_pres_counter (5 subscriptions a minute), mod_pubsub, mod_mqtt, mod_bosh, mod_http_api, mod_caps, mod_push and the other modules Vireo has no counterpart for are not loaded; kept: blocking (with privacy), carboncopy, disco, last, offline, ping, private, register, roster, stream_mgmt (XEP-0198 with resumption, Debian's `resend_on_timeout: if_offline`), vcard, version"},
		{"`mod_mam` with `default: always` (with `-only mam`)", "the archive query scenario: ejabberd archives nothing by default; Mnesia storage, the default without SQL; loaded only for that scenario"},
		{"a second host, `guest.localhost`, with `host_config` `auth_method: anonymous` and `anonymous_protocol: sasl_anon` (with `-only guest`)", "the guest login storm: SASL ANONYMOUS on a host of its own, as Vireo and Prosody have it"},
		{"`mod_caps`, `mod_pubsub` with the `pep` plugin, `mod_shared_roster` and `mod_admin_extra` (with `-only pep`)", "the PEP storm: PEP is mod_pubsub's pep plugin, and caps say which contacts want +notify; when the storm's users are all the accounts, its full mesh of contacts is an @all@ shared roster group, made with mod_admin_extra's `srg_create` and `srg_user_add` (in-band it takes hours at 1,000 users); loaded only for that scenario"},
		{"`--node vireobench@localhost`, own spool and logs, own ejabberdctl.cfg", "apart from a system ejabberd; Debian's ejabberdctl.cfg would point back at /etc"},
	}
	if s.fed == nil {
		return rows
	}
	return append(rows, [][2]string{
		{"`hosts: [b.localhost]`, every listener on 127.0.0.3, `--node vireobenchb@localhost`, `conference.b.localhost`", "the federation pair's B side (`-only s2s`, `ejabberd-b`): its own domain and loopback address, its own node, spool and logs (`ejabberd-b` in the work directory)"},
		{"an `ejabberd_s2s_in` listener, `mod_s2s_dialback`, `s2s_use_starttls: required`", "federation over STARTTLS with dialback, as the Vireo and Prosody B sides: the bench certificate is self-signed (for localhost), so neither side validates the other's; the listener has ejabberd's defaults (no shaper, no `max_stanza_size`), and `s2s_access` stays open"},
		{"`outgoing_s2s_port` (vireo-a's s2s port), `s2s_dns_timeout: 1`, `s2s_dns_retries: 1`; started in a mount namespace (`unshare -m`) with its own /etc/hosts and an empty /etc/resolv.conf, then `setpriv` to the ejabberd user", "ejabberd 23.01 has no static s2s route: it looks up SRV records (none here) and then the domain with getaddrinfo(3), and dials outgoing_s2s_port; the namespace's /etc/hosts maps a.localhost to 127.0.0.2 (the machine's is untouched), as in engine/ejabberd_test.go"},
	}...)
}

// findProc returns the PID of a process named comm whose command line contains arg.
func findProc(comm, arg string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		c, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		if string(bytes.TrimSpace(c)) != comm {
			continue
		}
		cl, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(cl, []byte(arg)) {
			return pid
		}
	}
	return 0
}
