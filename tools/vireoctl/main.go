// Command vireoctl manages a Vireo server: accounts, statistics, reload. It talks to the
// running server over its local admin socket, or opens the database directly when the
// server is stopped.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/modules/module"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/store/pie"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

const usage = `usage: vireoctl [-config vireo.toml] COMMAND [ARGS]

commands:
  adduser JID PASSWORD     create an account
  deluser JID              remove an account and all its data
  passwd JID PASSWORD      change a password
  disable JID              stop an account from logging in (its sessions end; data stays)
  enable JID               let a disabled account log in again
  users [-partial] [DOMAIN]
                           list accounts; -partial: only those without some hash's
                           SCRAM keys (imported; they log in with SCRAM-SHA-1 or PLAIN)
  inactive [-delete] DAYS [DOMAIN]
                           list the accounts nobody used for DAYS (at least 30): no
                           session now, the last one ended before (XEP-0012 record),
                           or never logged in and created before; -delete removes them
  bulkadd [-prefix user] [-count N] [-password P] [-domain D] [-iter N]
                           create prefix1..prefixN accounts (load tests)
  stats                    server statistics, and each virtual host's certificate:
                           source (acme or file), expiry, ACME orders (server must run)
  reload                   re-read the configuration (server must run)
  message [-type chat|normal|headline] [-subject S] FROM TO [BODY...]
                           send TO (anyone, here or federated) a message from FROM (a
                           served domain, or an account: a site's bot); no BODY reads
                           it from standard input (server must run)
  sessions JID             the account's sessions now: resource, state (available,
                           unavailable, detached, inactive) and priority (server must run)
  announce [-domain D] [-subject S] [BODY...]
                           send every account online (of domain D) a message from its
                           domain: maintenance warnings; no BODY reads standard input
                           (server must run)
  s2s                      live server-to-server streams: domain, direction, auth
                           method, TLS version, idle time (server must run)
  rooms [SERVICE]          the chat rooms (of SERVICE, e.g. conference.example.org):
                           address, occupants, public or hidden, persistent or
                           temporary, name (server must run)
  s2s deny|allow [list | add DOMAIN | remove DOMAIN]
                           the servers never federated with, and (when not empty) the
                           only ones federated with; DOMAIN or *.DOMAIN. A running
                           server applies a change at once (streams with a denied
                           server end); the config file's [s2s] deny or allow is
                           rewritten, comments kept (the file only, when stopped)
  modules                  list built-in modules, with those the config turns off
                           (everywhere, or on the hosts named)
  vhost list               list the virtual hosts
  vhost add DOMAIN         serve DOMAIN (certificate, conference., pubsub. and upload.
                           services) at once, and add it to the config file
  vhost remove DOMAIN      stop serving DOMAIN: its sessions end with host-gone, its
                           data stays; removed from the config file too
                           (with the server stopped, add and remove edit the file only)
  invite [-ttl 168h] DOMAIN|USER@DOMAIN
                           create an account invitation (XEP-0401) and print its
                           xmpp:…?register;preauth=TOKEN link: the invitee's client
                           registers with it (XEP-0445) even where registration is
                           closed; with USER@DOMAIN the name is reserved for the invitee
  invite list              the invitations still valid
  invite revoke TOKEN      withdraw an invitation (or a reset link)
  reset [-ttl 24h] USER@DOMAIN
                           print a password reset link for the account: its page (on
                           the web listener) sets a new password, once; invite list
                           shows the open ones
  backup DIR               write a consistent backup into DIR (new): through the running
                           server, or from the database when it is stopped
  restore DIR              replace data_dir with the backup in DIR (server must be
                           stopped); the old data_dir is kept as data_dir.before-restore-TIME
  export FILE              write accounts, rosters, offline messages, vCards, private
                           XML, PEP nodes and archives to FILE (new) in XEP-0227
                           format, SCRAM keys included
  export -split DIR        the same, one file per account, DIR/user@domain.xml (new):
                           the layout of Prosody's mod_storage_xep0227
  export -for ejabberd FILE
                           the same for ejabberd 23.01's import_piefxis (combines with
                           -split): one SCRAM key set per account, SCRAM-SHA-1 for
                           ejabberd's default auth_scram_hash (sha), salt and keys
                           base64-encoded twice as ejabberd reads them (the standard
                           file's keys do not verify there). -for ejabberd-sha256 or
                           ejabberd-sha512 for auth_scram_hash sha256 or sha512 (an
                           account without keys of that hash gets those it has: PLAIN
                           works there, that SCRAM does not). Default: -for xep0227
  import FILE              create the accounts of a XEP-0227 FILE (Vireo's, Prosody's
                           prosody-migrator, ejabberd's export_piefxis) with their
                           data (existing accounts are kept)
`

// Version is vireoctl's version, set at build time with -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// Opening a stopped server's database may create it: private files, as in vireo.
	admin.RestrictUmask()
	fl := flag.NewFlagSet("vireoctl", flag.ContinueOnError)
	fl.SetOutput(stderr)
	cfgPath := fl.String("config", "vireo.toml", "server configuration file")
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() == 0 {
		fl.Usage()
		return 2
	}
	cmd, rest := fl.Arg(0), fl.Args()[1:]
	if cmd == "modules" {
		// Which modules take settings per host ([vhosts."<host>".modules.<id>]), and
		// what the config does with them, when there is one to read: [modules] disabled,
		// each host's [vhosts] modules_disabled, the hosts with settings of their own.
		cfg, _ := config.Load(*cfgPath)
		for _, m := range module.All() {
			xep := ""
			if m.XEP > 0 {
				xep = fmt.Sprintf("XEP-%04d", m.XEP)
			}
			per := ""
			if m.PerHost {
				per = "per-host"
			}
			fmt.Fprintf(stdout, "%s\n", strings.TrimRight(fmt.Sprintf("%-12s %-9s %-8s %s", m.ID, xep, per, moduleState(cfg, m.ID)), " "))
		}
		return 0
	}
	req, err := parse(cmd, rest)
	if err != nil {
		fmt.Fprintln(stderr, "vireoctl:", err)
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "vireoctl:", err)
		return 1
	}
	if req.Op == "restore" {
		return restore(cfg, req.Path, stdout, stderr)
	}
	resp, err := admin.Call(cfg.Admin.Socket, req)
	if err != nil {
		// No server answering: work on the database directly.
		if req.Op == "stats" || req.Op == "reload" || req.Op == "s2s" || req.Op == "message" || req.Op == "announce" || req.Op == "sessions" || req.Op == "rooms" {
			fmt.Fprintf(stderr, "vireoctl: %s needs a running server (admin socket %s: %v)\n", req.Op, cfg.Admin.Socket, err)
			return 1
		}
		resp, err = offline(cfg, req)
		if err != nil {
			fmt.Fprintln(stderr, "vireoctl:", err)
			return 1
		}
	}
	if resp.Error != "" {
		fmt.Fprintln(stderr, "vireoctl:", resp.Error)
		return 1
	}
	switch req.Op {
	case "users":
		for _, u := range resp.Users {
			fmt.Fprintln(stdout, u)
		}
	case "stats":
		keys := make([]string, 0, len(resp.Stats))
		for k := range resp.Stats {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stdout, "%-14s %v\n", k, resp.Stats[k])
		}
		if len(resp.Listeners) > 0 {
			fmt.Fprintln(stdout)
			printListeners(stdout, resp.Listeners)
		}
		if len(resp.Certs) > 0 {
			fmt.Fprintln(stdout)
			printCerts(stdout, resp.Certs)
		}
	case "s2s":
		printS2S(stdout, resp.S2S)
	case "rooms":
		printRooms(stdout, resp.Rooms)
	case "message":
		fmt.Fprintln(stdout, "sent", strings.Join(resp.Lines, " "))
	case "announce":
		fmt.Fprintf(stdout, "sent to %d accounts online\n", resp.Count)
	case "sessions":
		for _, se := range resp.Sessions {
			state := "available"
			switch {
			case !se.Available:
				state = "unavailable"
			case se.Detached:
				state = "detached"
			case se.Inactive:
				state = "inactive"
			}
			fmt.Fprintf(stdout, "%-30s %-11s priority %d\n", se.Resource, state, se.Priority)
		}
	case "vhost", "federation":
		if req.Action != "list" {
			fmt.Fprintln(stdout, "ok")
		}
		for _, l := range resp.Lines {
			fmt.Fprintln(stdout, l)
		}
	case "invite", "reset":
		if req.Action == "revoke" {
			fmt.Fprintln(stdout, "ok")
		}
		for _, l := range resp.Lines {
			fmt.Fprintln(stdout, l)
		}
	case "inactive":
		for _, l := range resp.Lines {
			fmt.Fprintln(stdout, l)
		}
		if req.Delete {
			fmt.Fprintf(stdout, "deleted %d accounts inactive for %d days\n", resp.Count, req.Days)
		} else {
			fmt.Fprintf(stdout, "%d accounts inactive for %d days (vireoctl inactive -delete %d deletes them)\n", resp.Count, req.Days, req.Days)
		}
	case "bulkadd":
		fmt.Fprintf(stdout, "created %d accounts\n", resp.Count)
	case "export":
		fmt.Fprintf(stdout, "exported %d accounts to %s\n", resp.Count, req.Path)
	case "import":
		for _, l := range resp.Lines {
			fmt.Fprintln(stdout, "skipped", l)
		}
		fmt.Fprintf(stdout, "imported %d accounts from %s\n", resp.Count, req.Path)
	case "backup":
		if m := resp.Manifest; m != nil {
			fmt.Fprintf(stdout, "backup written to %s: %d files, %d bytes (%s)\n", req.Path, len(m.Files), m.Bytes(), m.Version)
		}
	default:
		fmt.Fprintln(stdout, "ok")
	}
	return 0
}

// printS2S writes one line per server-to-server stream under a header.
// printCerts lists the certificates of stats: a line per host, and under it the file
// it was read from and the error of a failed ACME order.
func printCerts(w io.Writer, certs []admin.CertStatus) {
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	const row = "%-28s %-6s %-20s %-20s %-20s %s\n"
	fmt.Fprintf(w, row, "CERTIFICATE", "SOURCE", "NOT AFTER", "LAST ACME ORDER", "NEXT ACME ORDER", "ISSUER")
	for _, c := range certs {
		last, next := "acme off", "-"
		if c.ACME {
			last, next = stamp(c.LastAttempt), stamp(c.NextRenewal)
		}
		issuer := c.Issuer
		if c.SelfSigned {
			issuer += " (self-signed)"
		}
		fmt.Fprintf(w, row, c.Host, c.Source, stamp(c.NotAfter), last, next, issuer)
		if c.File != "" {
			fmt.Fprintf(w, "  file %s\n", c.File)
		}
		if c.LastError != "" {
			fmt.Fprintf(w, "  last order failed (%d in a row): %s\n", c.Failures, c.LastError)
		}
	}
}

func printListeners(w io.Writer, ls []admin.ListenerStatus) {
	fmt.Fprintf(w, "%-10s %-28s %-16s %s\n", "LISTENER", "ADDRESS", "STATE", "CONNECTIONS")
	for _, l := range ls {
		state := "accepting"
		if !l.Accepting {
			state = "closed by reload"
		}
		fmt.Fprintf(w, "%-10s %-28s %-16s %d\n", l.Name, l.Addr, state, l.Conns)
	}
}

func printRooms(w io.Writer, rooms []module.RoomInfo) {
	if len(rooms) == 0 {
		fmt.Fprintln(w, "no rooms")
		return
	}
	fmt.Fprintf(w, "%-40s %9s %-7s %-10s %s\n", "ROOM", "OCCUPANTS", "LISTED", "KIND", "NAME")
	for _, r := range rooms {
		listed, kind := "hidden", "temporary"
		if r.Public {
			listed = "public"
		}
		if r.Persistent {
			kind = "persistent"
		}
		if r.Locked {
			kind = "locked"
		}
		fmt.Fprintf(w, "%-40s %9d %-7s %-10s %s\n", r.JID, r.Occupants, listed, kind, r.Name)
	}
}

func printS2S(w io.Writer, conns []admin.S2SConn) {
	if len(conns) == 0 {
		fmt.Fprintln(w, "no server-to-server streams")
		return
	}
	fmt.Fprintf(w, "%-28s %-4s %-28s %-9s %-4s %-8s %-5s %s\n", "REMOTE", "DIR", "LOCAL", "AUTH", "TLS", "MODE", "CERT", "IDLE")
	for _, c := range conns {
		tlsv, mode, cert := c.TLS, "starttls", "-"
		switch {
		case tlsv == "":
			tlsv, mode = "none", "-"
		case c.DirectTLS:
			mode = "direct" // XEP-0368
		}
		if c.Direction == "out" || c.Auth == "external" {
			cert = "no"
			if c.CertValid {
				cert = "ok"
			}
		}
		idle := (time.Duration(c.IdleS * float64(time.Second))).Truncate(time.Second)
		via := ""
		if c.Via != "" {
			via = " via edge " + c.Via
		}
		if c.Bidi {
			via += " both ways" // XEP-0288: the peer's stanzas to us, or ours to it, use it too
		}
		fmt.Fprintf(w, "%-28s %-4s %-28s %-9s %-4s %-8s %-5s %s%s\n", c.Remote, c.Direction, c.Local, c.Auth, tlsv, mode, cert, idle, via)
	}
}

// bodyArg is a message's text: the words of args, or standard input when there are none.
func bodyArg(args []string) (string, error) {
	if len(args) > 0 {
		return strings.Join(args, " "), nil
	}
	b, err := io.ReadAll(io.LimitReader(os.Stdin, admin.MaxMessageText+1))
	return strings.TrimRight(string(b), "\n"), err
}

func parse(cmd string, args []string) (admin.Request, error) {
	r := admin.Request{Op: cmd}
	need := func(n int, what string) error {
		if len(args) != n {
			return fmt.Errorf("%s: want %s", cmd, what)
		}
		return nil
	}
	switch cmd {
	case "adduser", "passwd":
		if err := need(2, "JID PASSWORD"); err != nil {
			return r, err
		}
		r.JID, r.Password = args[0], args[1]
	case "message":
		fl := flag.NewFlagSet("message", flag.ContinueOnError)
		fl.SetOutput(io.Discard)
		fl.StringVar(&r.Type, "type", "chat", "chat, normal or headline")
		fl.StringVar(&r.Subject, "subject", "", "the subject")
		if err := fl.Parse(args); err != nil {
			return r, fmt.Errorf("message: %w", err)
		}
		args = fl.Args()
		if len(args) < 2 {
			return r, errors.New("message: want FROM TO [BODY...] (no BODY: standard input)")
		}
		r.From, r.To = args[0], args[1]
		var err error
		if r.Body, err = bodyArg(args[2:]); err != nil {
			return r, fmt.Errorf("message: %w", err)
		}
	case "announce":
		fl := flag.NewFlagSet("announce", flag.ContinueOnError)
		fl.SetOutput(io.Discard)
		fl.StringVar(&r.Domain, "domain", "", "only the accounts of this domain")
		fl.StringVar(&r.Subject, "subject", "", "the subject (default Announcement)")
		if err := fl.Parse(args); err != nil {
			return r, fmt.Errorf("announce: %w", err)
		}
		var err error
		if r.Body, err = bodyArg(fl.Args()); err != nil {
			return r, fmt.Errorf("announce: %w", err)
		}
	case "deluser", "disable", "enable", "sessions":
		if err := need(1, "JID"); err != nil {
			return r, err
		}
		r.JID = args[0]
	case "users":
		fl := flag.NewFlagSet("users", flag.ContinueOnError)
		fl.SetOutput(io.Discard)
		fl.BoolVar(&r.Partial, "partial", false, "only accounts without some hash's SCRAM keys")
		if err := fl.Parse(args); err != nil {
			return r, fmt.Errorf("users: %w", err)
		}
		args = fl.Args()
		if len(args) > 1 {
			return r, errors.New("users: at most one DOMAIN")
		}
		if len(args) == 1 {
			r.Domain = args[0]
		}
	case "inactive":
		fl := flag.NewFlagSet("inactive", flag.ContinueOnError)
		fl.SetOutput(io.Discard)
		fl.BoolVar(&r.Delete, "delete", false, "delete the accounts listed")
		if err := fl.Parse(args); err != nil {
			return r, fmt.Errorf("inactive: %w", err)
		}
		args = fl.Args()
		if len(args) < 1 || len(args) > 2 {
			return r, errors.New("inactive: want DAYS [DOMAIN]")
		}
		days, err := strconv.Atoi(args[0])
		if err != nil || days < admin.MinInactiveDays {
			return r, fmt.Errorf("inactive: DAYS %q: want a number of days, at least %d", args[0], admin.MinInactiveDays)
		}
		r.Days = days
		if len(args) == 2 {
			r.Domain = args[1]
		}
	case "s2s":
		if len(args) == 0 {
			break // the live streams
		}
		// s2s deny|allow [list | add DOMAIN | remove DOMAIN]: the federation lists.
		r.Op, r.List, r.Action = "federation", args[0], "list"
		switch {
		case args[0] != "deny" && args[0] != "allow":
			return r, errors.New("s2s: want no arguments, or deny|allow [list | add DOMAIN | remove DOMAIN]")
		case len(args) == 1 || len(args) == 2 && args[1] == "list":
		case len(args) == 3 && (args[1] == "add" || args[1] == "remove"):
			r.Action, r.Domain = args[1], args[2]
		default:
			return r, fmt.Errorf("s2s %s: want list, add DOMAIN or remove DOMAIN", args[0])
		}
	case "stats", "reload":
		if err := need(0, "no arguments"); err != nil {
			return r, err
		}
	case "rooms":
		if len(args) > 1 {
			return r, errors.New("rooms: want [SERVICE]")
		}
		if len(args) == 1 {
			r.Domain = args[0]
		}
	case "vhost":
		switch {
		case len(args) == 1 && args[0] == "list":
		case len(args) == 2 && (args[0] == "add" || args[0] == "remove"):
			r.Domain = args[1]
		default:
			return r, errors.New("vhost: want list, add DOMAIN or remove DOMAIN")
		}
		r.Action = args[0]
	case "invite":
		fl := flag.NewFlagSet("invite", flag.ContinueOnError)
		fl.SetOutput(io.Discard)
		fl.DurationVar(&r.TTL, "ttl", 0, "how long the invitation lasts")
		if err := fl.Parse(args); err != nil {
			return r, fmt.Errorf("invite: %w", err)
		}
		switch args = fl.Args(); {
		case len(args) == 1 && args[0] == "list":
			r.Action = "list"
		case len(args) == 2 && args[0] == "revoke":
			r.Action, r.Token = "revoke", args[1]
		case len(args) == 1 && args[0] != "revoke":
			r.Action, r.JID = "create", args[0]
		default:
			return r, errors.New("invite: want DOMAIN, USER@DOMAIN, list or revoke TOKEN")
		}
	case "reset":
		fl := flag.NewFlagSet("reset", flag.ContinueOnError)
		fl.SetOutput(io.Discard)
		fl.DurationVar(&r.TTL, "ttl", 0, "how long the link lasts")
		if err := fl.Parse(args); err != nil {
			return r, fmt.Errorf("reset: %w", err)
		}
		if args = fl.Args(); len(args) != 1 {
			return r, errors.New("reset: want USER@DOMAIN")
		}
		r.JID = args[0]
	case "bulkadd":
		fl := flag.NewFlagSet("bulkadd", flag.ContinueOnError)
		fl.SetOutput(io.Discard)
		fl.StringVar(&r.Prefix, "prefix", "user", "account name prefix")
		fl.IntVar(&r.Count, "count", 1000, "number of accounts")
		fl.StringVar(&r.Password, "password", "password", "password of every account")
		fl.StringVar(&r.Domain, "domain", "", "domain (default: the first configured)")
		fl.IntVar(&r.Iter, "iter", 4096, "PBKDF2 iterations")
		if err := fl.Parse(args); err != nil {
			return r, fmt.Errorf("bulkadd: %w", err)
		}
	case "backup", "restore", "export", "import":
		what := "DIR"
		if cmd == "export" || cmd == "import" {
			what = "FILE"
		}
		if cmd == "export" {
			fl := flag.NewFlagSet("export", flag.ContinueOnError)
			fl.SetOutput(io.Discard)
			fl.BoolVar(&r.Split, "split", false, "one file per account")
			fl.StringVar(&r.For, "for", "", "the server the file is for")
			if err := fl.Parse(args); err != nil {
				return r, fmt.Errorf("export: %w", err)
			}
			if _, err := pie.ParseFlavour(r.For); err != nil {
				return r, fmt.Errorf("export: -for: %w", err)
			}
			if args = fl.Args(); r.Split {
				what = "DIR"
			}
		}
		if err := need(1, what); err != nil {
			return r, err
		}
		// The server resolves the path, from its own working directory.
		p, err := filepath.Abs(args[0])
		if err != nil {
			return r, err
		}
		r.Path = p
	default:
		return r, fmt.Errorf("unknown command %q (try vireoctl -h)", cmd)
	}
	return r, nil
}

// offlineBackend serves admin operations on a directly opened store.
type offlineBackend struct {
	cfg *config.Config
	st  store.Store
}

func (b offlineBackend) Store() store.Store     { return b.st }
func (b offlineBackend) Domains() []string      { return b.cfg.Domains }
func (b offlineBackend) CloseUser(jid.JID)      {}
func (b offlineBackend) Reload() error          { return errors.New("server is not running") }
func (b offlineBackend) Stats() map[string]any  { return nil }
func (b offlineBackend) Modules() []string      { return nil }
func (b offlineBackend) WebURL(d string) string { return b.cfg.WebURL(d) }
func (b offlineBackend) DataDir() string        { return b.cfg.DataDir }
func (b offlineBackend) Version() string        { return "vireoctl " + Version + " (server stopped)" }

var _ admin.HostManager = offlineBackend{}

// AddHost implements admin.HostManager for a stopped server: the config file only; the
// server makes the host's certificate when it starts.
func (b offlineBackend) AddHost(domain string) error { return b.writeHosts(true, domain) }

// RemoveHost implements admin.HostManager for a stopped server: the config file only.
func (b offlineBackend) RemoveHost(domain string) error { return b.writeHosts(false, domain) }

func (b offlineBackend) writeHosts(add bool, domain string) error {
	hosts, d, err := admin.NextHosts(b.cfg.Domains, add, domain)
	if err != nil {
		return err
	}
	if !add {
		if err := b.cfg.HostRemovalBlocked(d); err != nil {
			return err // as a running server refuses it: the next start would fail
		}
	}
	return config.WriteDomains(b.cfg.Path(), hosts)
}

var _ admin.FederationEditor = offlineBackend{}

// FederationLists implements admin.FederationEditor for a stopped server: the file's.
func (b offlineBackend) FederationLists() (deny, allow []string) {
	return b.cfg.S2S.Deny, b.cfg.S2S.Allow
}

// SetFederationList implements admin.FederationEditor for a stopped server: the config
// file only, checked as a running server checks it.
func (b offlineBackend) SetFederationList(allow bool, domains []string) ([]string, error) {
	key := "deny"
	if allow {
		key = "allow"
	}
	edit, list, err := config.EditS2SList(b.cfg.Path(), key, domains)
	if err != nil {
		return nil, err
	}
	return list, edit.Commit()
}

func offline(cfg *config.Config, req admin.Request) (admin.Response, error) {
	if req.Op == "vhost" || req.Op == "federation" {
		// The config file is all there is to change: the database stays closed.
		return admin.Do(offlineBackend{cfg: cfg}, req), nil
	}
	if req.Op == "backup" {
		// Opening would create an empty database to back up.
		if _, err := os.Stat(cfg.DBDir()); err != nil {
			return admin.Response{}, fmt.Errorf("no database to back up: %w", err)
		}
	}
	st, err := pebblestore.Open(cfg.DBDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		if strings.Contains(err.Error(), "lock") {
			return admin.Response{}, fmt.Errorf("the database %s is locked by a running server whose admin socket %s does not answer", cfg.DBDir(), cfg.Admin.Socket)
		}
		return admin.Response{}, fmt.Errorf("open %s: %w", cfg.DBDir(), err)
	}
	resp := admin.Do(offlineBackend{cfg: cfg, st: st}, req)
	if err := st.Close(); err != nil {
		return resp, err
	}
	return resp, nil
}

// restore replaces data_dir with a backup. It refuses while a server answers on the admin
// socket, and holds the database lock while it works, so that a server whose socket does
// not answer cannot have the database open either.
func restore(cfg *config.Config, from string, stdout, stderr io.Writer) int {
	if _, err := admin.Call(cfg.Admin.Socket, admin.Request{Op: "stats"}); err == nil {
		fmt.Fprintf(stderr, "vireoctl: restore: the server is running (it answers on %s); stop it first\n", cfg.Admin.Socket)
		return 1
	}
	lock, err := pebblestore.LockDir(cfg.DBDir())
	if err != nil {
		fmt.Fprintf(stderr, "vireoctl: restore: %v; stop the server first\n", err)
		return 1
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		lock.Close()
		fmt.Fprintln(stderr, "vireoctl:", err)
		return 1
	}
	m, aside, err := admin.Restore(dataDir, from)
	lock.Close()
	if err != nil {
		fmt.Fprintln(stderr, "vireoctl:", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s (taken %s by %s, %d files) into %s\n", from, m.Time.Format(time.RFC3339), m.Version, len(m.Files), dataDir)
	if aside != "" {
		fmt.Fprintf(stdout, "the previous data_dir is now %s\n", aside)
	}
	return 0
}

// moduleState says where cfg turns module id off and which hosts have their own settings
// of it: "off", "off on a.org, b.org", "own settings on c.org", both joined by "; ", or
// "" (nil cfg: no config read).
func moduleState(cfg *config.Config, id string) string {
	if cfg == nil {
		return ""
	}
	if slices.Contains(cfg.DisabledModules(), id) {
		return "off"
	}
	var hosts, parts []string
	for d, v := range cfg.VHosts {
		if slices.Contains(v.ModulesDisabled, id) {
			hosts = append(hosts, d)
		}
	}
	if len(hosts) > 0 {
		slices.Sort(hosts)
		parts = append(parts, "off on "+strings.Join(hosts, ", "))
	}
	if own := cfg.HostModuleTables(id); len(own) > 0 {
		parts = append(parts, "own settings on "+strings.Join(own, ", "))
	}
	return strings.Join(parts, "; ")
}
