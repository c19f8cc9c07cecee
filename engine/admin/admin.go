// Package admin owns the local administration endpoint: a Unix socket that only local users
// with file access can reach, speaking one JSON request and one JSON response per line, and
// the account operations behind it. vireoctl uses the same operations directly on the store
// when the server is stopped. It must not accept network connections.
package admin

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/store/pie"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Request is one admin command.
type Request struct {
	Op       string `json:"op"` // adduser, deluser, passwd, disable, enable, users, inactive, bulkadd, stats, reload, modules, backup, export, import, s2s, federation, vhost, invite, reset, message, announce, sessions
	JID      string `json:"jid,omitempty"`
	Password string `json:"password,omitempty"`
	Domain   string `json:"domain,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
	Count    int    `json:"count,omitempty"`
	Iter     int    `json:"iter,omitempty"`
	Path     string `json:"path,omitempty"` // backup, export, import: absolute path
	// List is the federation op's list: "deny" or "allow".
	List string `json:"list,omitempty"`
	// Action is what the vhost and federation ops do with Domain: list, add or remove; what the invite
	// op does: create (for JID: a domain, or the user@domain it reserves), list, or
	// revoke (Token).
	Action string `json:"action,omitempty"`
	// TTL is how long an invitation lasts (invites.DefaultTTL when 0).
	TTL   time.Duration `json:"ttl,omitempty"`
	Token string        `json:"token,omitempty"`
	// Split makes export write a directory of files, one per account (ExportSplit).
	Split bool `json:"split,omitempty"`
	// Partial makes the users op list only accounts without some hash's SCRAM keys.
	Partial bool `json:"partial,omitempty"`
	// Days is the inactive op's threshold; Delete makes it delete what it lists.
	Days   int  `json:"days,omitempty"`
	Delete bool `json:"delete,omitempty"`
	// From, To, Type, Subject and Body are the message op's message.
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Type    string `json:"type,omitempty"`
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body,omitempty"`
	// For names the server an export is written for (pie.ParseFlavour): "" for standard
	// XEP-0227, "ejabberd" (or "ejabberd-sha256", "ejabberd-sha512") for ejabberd.
	For string `json:"for,omitempty"`
}

// Response answers a Request. Error is empty on success.
type Response struct {
	Error string         `json:"error,omitempty"`
	Users []string       `json:"users,omitempty"`
	Stats map[string]any `json:"stats,omitempty"`
	Lines []string       `json:"lines,omitempty"`
	Count int            `json:"count,omitempty"`
	// Manifest describes the backup a backup request wrote.
	Manifest *Manifest `json:"manifest,omitempty"`
	// Sessions are an account's sessions (op sessions).
	Sessions []Session `json:"sessions,omitempty"`
	// S2S lists the live server-to-server streams (op s2s).
	S2S []S2SConn `json:"s2s,omitempty"`
	// Rooms lists the chat rooms (op rooms).
	Rooms []module.RoomInfo `json:"rooms,omitempty"`
	// Certs reports each virtual host's certificate (op stats, from a CertReporter).
	Certs []CertStatus `json:"certs,omitempty"`
	// Listeners are the listening addresses, and those a reload closed that still carry
	// connections (op stats, from a ListenerReporter).
	Listeners []ListenerStatus `json:"listeners,omitempty"`
}

// ListenerStatus is one listener, as stats reports it.
type ListenerStatus struct {
	Name      string `json:"name"` // c2s, c2s-tls, web, web-tls, s2s, s2s-tls, component
	Addr      string `json:"addr"`
	Accepting bool   `json:"accepting"` // false: closed by a reload, its connections go on
	Conns     int    `json:"conns"`
}

// ListenerReporter is what a running server's Backend adds to answer stats with Listeners.
type ListenerReporter interface {
	Listeners() []ListenerStatus
}

// S2SConn is one live server-to-server stream, as the s2s op lists it.
type S2SConn struct {
	Local     string  `json:"local"`
	Remote    string  `json:"remote"`
	Direction string  `json:"direction"`      // "in" or "out"
	Auth      string  `json:"auth"`           // "dialback" or "external"
	TLS       string  `json:"tls"`            // TLS version, "1.3"; "" without TLS
	CertValid bool    `json:"cert_valid"`     // out: the peer's certificate validated for Remote
	DirectTLS bool    `json:"direct_tls"`     // TLS from the first byte (XEP-0368), not STARTTLS
	Via       string  `json:"via,omitempty"`  // the edge that holds the socket (split deployment)
	IdleS     float64 `json:"idle_s"`         // seconds since the stream last carried something
	Bidi      bool    `json:"bidi,omitempty"` // XEP-0288: it carries stanzas both ways
}

// RoomLister is what a running server's Backend adds for the rooms op.
type RoomLister interface {
	Rooms() ([]module.RoomInfo, error)
}

// S2SLister is what a running server's Backend adds for the s2s op; a stopped server's
// backend lacks it.
type S2SLister interface {
	S2SConns() []S2SConn
}

// Backend is what the admin operations need from a running (or stopped) server.
type Backend interface {
	Store() store.Store
	Domains() []string
	// CloseUser ends every session of a deleted account; nil-safe no-op when offline.
	CloseUser(bare jid.JID)
	// Reload re-reads the configuration; offline backends return an error.
	Reload() error
	Stats() map[string]any
	Modules() []string
	// DataDir is the server's data_dir, whose key files a backup copies.
	DataDir() string
	// Version names the program and its version, for backup manifests.
	Version() string
	// WebURL is the public base URL of the web listener for pages about domain ("" when
	// none), for the links to invitation pages.
	WebURL(domain string) string
}

// SiteAccounts is implemented by backends whose accounts a site's program may keep
// (engine Config.External with ExternalManage): the change of such an account goes to
// the program, and handled is false for every other account, which changes here.
type SiteAccounts interface {
	SitePassword(user, password string) (handled bool, err error)
	SiteRemove(user string) (handled bool, err error)
}

// MaxLine bounds one request line so a local client cannot make the server buffer without
// end. It holds a message op at its limits (MaxMessageText of body and of subject), each
// character escaped by JSON as six bytes at worst.
const MaxLine = 12*MaxMessageText + 4096

// Do runs one request against b.
func Do(b Backend, r Request) Response {
	var err error
	var resp Response
	switch r.Op {
	case "adduser":
		err = AddUser(b, r.JID, r.Password, r.Iter)
	case "deluser":
		err = DelUser(b, r.JID)
	case "passwd":
		err = Passwd(b, r.JID, r.Password, r.Iter)
	case "disable":
		err = SetDisabled(b, r.JID, true)
	case "enable":
		err = SetDisabled(b, r.JID, false)
	case "users":
		if r.Partial {
			resp.Users, err = PartialKeyUsers(b.Store(), r.Domain)
		} else {
			resp.Users, err = Users(b.Store(), r.Domain)
		}
	case "inactive":
		resp.Lines, resp.Count, err = Inactive(b, r.Domain, r.Days, r.Delete, time.Now())
	case "bulkadd":
		resp.Count, err = BulkAdd(b, r.Prefix, r.Domain, r.Password, r.Count, r.Iter)
	case "stats":
		resp.Stats = b.Stats()
		if c, ok := b.(CertReporter); ok {
			resp.Certs = c.Certs()
		}
		if l, ok := b.(ListenerReporter); ok {
			resp.Listeners = l.Listeners()
		}
	case "reload":
		err = b.Reload()
	case "modules":
		resp.Lines = b.Modules()
	case "backup":
		resp.Manifest, err = Backup(b, r.Path)
	case "export":
		var f pie.Flavour
		if f, err = pie.ParseFlavour(r.For); err != nil {
			break
		}
		if r.Split {
			resp.Count, err = ExportSplit(b, r.Path, f)
		} else {
			resp.Count, err = Export(b, r.Path, f)
		}
	case "import":
		resp.Count, resp.Lines, err = Import(b, r.Path)
	case "vhost":
		resp.Lines, err = Vhost(b, r.Action, r.Domain)
	case "federation":
		resp.Lines, err = Federation(b, r.List, r.Action, r.Domain)
	case "invite":
		resp.Lines, err = Invite(b, r.Action, r.JID, r.Token, r.TTL)
	case "reset":
		resp.Lines, err = ResetLink(b, r.JID, r.TTL)
	case "announce":
		resp.Count, err = Announce(b, r.Domain, r.Subject, r.Body)
	case "sessions":
		resp.Sessions, err = Sessions(b, r.JID)
	case "message":
		var id string
		if id, err = Message(b, r.From, r.To, r.Type, r.Subject, r.Body); err == nil {
			resp.Lines = []string{id}
		}
	case "s2s":
		l, ok := b.(S2SLister)
		if !ok {
			err = errors.New("s2s needs a running server")
			break
		}
		resp.S2S = l.S2SConns()
	case "rooms":
		l, ok := b.(RoomLister)
		if !ok {
			err = errors.New("rooms needs a running server")
			break
		}
		resp.Rooms, err = l.Rooms()
		if err == nil && r.Domain != "" {
			resp.Rooms = slices.DeleteFunc(resp.Rooms, func(x module.RoomInfo) bool {
				_, d, _ := strings.Cut(x.JID, "@")
				return d != r.Domain
			})
		}
	default:
		err = fmt.Errorf("unknown command %q", r.Op)
	}
	if err != nil {
		resp.Error = err.Error()
	}
	return resp
}

func bareJID(b Backend, s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%q: %w", s, err)
	}
	if j.Local() == "" || !j.IsBare() {
		return jid.JID{}, fmt.Errorf("%q: want user@domain", s)
	}
	if slices.Contains(b.Domains(), j.Domain()) {
		return j, nil
	}
	return jid.JID{}, fmt.Errorf("%q: domain %s is not served here (domains: %s)", s, j.Domain(), strings.Join(b.Domains(), ", "))
}

func checkPassword(p string) error {
	if len(p) < 1 || len(p) > 1023 {
		return errors.New("password must be 1 to 1023 bytes")
	}
	return nil
}

func credentials(password string, iter int) ([3]store.Credentials, error) {
	if iter <= 0 {
		iter = creds.DefaultIter
	}
	return creds.DeriveAll(password, iter)
}

// AddUser creates an account; it fails if the account exists.
func AddUser(b Backend, j, password string, iter int) error {
	bare, err := bareJID(b, j)
	if err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	creds, err := credentials(password, iter)
	if err != nil {
		return err
	}
	err = b.Store().Accounts().Create(store.Account{User: bare.String(), Creds: creds, Created: time.Now().UTC()})
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%s already exists", bare)
	}
	return err
}

// DelUser removes an account with all its data and closes its sessions; an account a
// site's program keeps and changes (SiteAccounts) is removed at the site too.
func DelUser(b Backend, j string) error { return delUser(b, j, true) }

// delUser is DelUser, at the site too only when site is set (an inactive account pruned
// here stays the site's).
func delUser(b Backend, j string, site bool) error {
	bare, err := bareJID(b, j)
	if err != nil {
		return err
	}
	if _, err := b.Store().Accounts().Get(bare.String()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s does not exist", bare)
		}
		return err
	}
	if sa, ok := b.(SiteAccounts); ok && site {
		if handled, err := sa.SiteRemove(bare.String()); handled {
			if err == nil {
				b.CloseUser(bare)
			}
			return err
		}
	}
	b.CloseUser(bare)
	if err := b.Store().Accounts().Delete(bare.String()); err != nil {
		return err
	}
	// Again after the delete: a login that passed between the first close and the
	// delete found the account, and its session must not outlive it.
	b.CloseUser(bare)
	return nil
}

// Passwd replaces an account's credentials; an account a site's program keeps and changes
// (SiteAccounts) gets its new password at the site.
func Passwd(b Backend, j, password string, iter int) error {
	bare, err := bareJID(b, j)
	if err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	if _, err := b.Store().Accounts().Get(bare.String()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s does not exist", bare)
		}
		return err
	}
	if sa, ok := b.(SiteAccounts); ok {
		if handled, err := sa.SitePassword(bare.String(), password); handled {
			return err
		}
	}
	creds, err := credentials(password, iter)
	if err != nil {
		return err
	}
	return b.Store().Accounts().SetCredentials(bare.String(), creds)
}

// SetDisabled disables an account (its sessions end, and it cannot log in until it is
// enabled again) or enables it. Its data stays.
func SetDisabled(b Backend, j string, disabled bool) error {
	bare, err := bareJID(b, j)
	if err != nil {
		return err
	}
	err = b.Store().Accounts().SetDisabled(bare.String(), disabled)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s does not exist", bare)
	}
	if err == nil && disabled {
		// After the flag is durable: a login racing with this sees it.
		b.CloseUser(bare)
	}
	return err
}

// Users lists accounts, optionally of one domain, sorted.
func Users(st store.Store, domain string) ([]string, error) {
	var out []string
	err := st.Accounts().List(func(u string) bool {
		if domain == "" || strings.HasSuffix(u, "@"+domain) {
			out = append(out, u)
		}
		return true
	})
	sort.Strings(out)
	return out, err
}

// PartialKeyUsers lists the accounts, optionally of one domain, that lack some hash's
// SCRAM keys (store.PartialKeys): imported from a server that kept one hash, and not yet
// given the others by a PLAIN login, a password change or an XEP-0480 upgrade. Their users
// log in with SCRAM-SHA-1 (or PLAIN) until then; a client that insists on SCRAM-SHA-256
// and does not name its account in the stream header fails.
func PartialKeyUsers(st store.Store, domain string) ([]string, error) {
	users, err := Users(st, domain)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range users {
		a, err := st.Accounts().Get(u)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		if store.PartialKeys(a.Creds) {
			out = append(out, u)
		}
	}
	return out, nil
}

// BulkAdd creates prefix1..prefixN@domain with one password, spreading PBKDF2 over the
// cores; the credentials are derived once and shared, since the accounts exist only for load
// tests. Existing accounts are left alone. It returns how many it created.
func BulkAdd(b Backend, prefix, domain, password string, count, iter int) (int, error) {
	if count <= 0 || count > 10_000_000 {
		return 0, errors.New("count must be 1..10000000")
	}
	if domain == "" {
		domain = b.Domains()[0]
	}
	if prefix == "" {
		prefix = "user"
	}
	if err := checkPassword(password); err != nil {
		return 0, err
	}
	creds, err := credentials(password, iter)
	if err != nil {
		return 0, err
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		first   error
	)
	workers := runtime.GOMAXPROCS(0)
	next := make(chan int, 256)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := range next {
				bare, err := bareJID(b, fmt.Sprintf("%s%d@%s", prefix, i, domain))
				if err == nil {
					err = b.Store().Accounts().Create(store.Account{User: bare.String(), Creds: creds, Created: time.Now().UTC()})
				}
				if err == nil {
					n++
				} else if !errors.Is(err, store.ErrExists) {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			created += n
			mu.Unlock()
		}()
	}
	for i := 1; i <= count; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return created, first
}

// Serve listens on the Unix socket at path (mode 0600) and answers requests until the
// returned listener is closed.
func Serve(path string, b Backend, log zerolog.Logger) (net.Listener, error) {
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin socket %s is in use: is another vireo running?", path)
	}
	os.Remove(path)
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveConn(c, b, log)
		}
	}()
	return ln, nil
}

func serveConn(c net.Conn, b Backend, log zerolog.Logger) {
	defer c.Close()
	defer func() {
		if r := recover(); r != nil {
			log.Error().Interface("panic", r).Msg("admin request panicked")
		}
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), MaxLine)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var r Request
		var resp Response
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			resp = Do(b, r)
			log.Info().Str("op", r.Op).Str("jid", r.JID).Str("path", r.Path).Str("action", r.Action).Str("domain", r.Domain).Bool("ok", resp.Error == "").Msg("admin command")
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		// An answer rather than a closed socket, which the client would take for a
		// server that is not there.
		enc.Encode(Response{Error: fmt.Sprintf("request longer than %d bytes", MaxLine)})
	}
}

// Call sends one request to the server listening at path.
func Call(path string, r Request) (Response, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return Response{}, err
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(r); err != nil {
		return Response{}, err
	}
	var resp Response
	dec := json.NewDecoder(bufio.NewReader(c))
	if err := dec.Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("admin reply: %w", err)
	}
	return resp, nil
}
