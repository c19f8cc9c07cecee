// Package dashboard is the web administration console served under /admin/ on the web
// listener (engine.Mount): an overview of the numbers /metrics exports and of each virtual
// host's certificate (with ACME, its renewal), account management, virtual hosts, the
// server-to-server links and the effective configuration. [web] dashboard turns it off
// (main mounts it or not).
//
// Who may log in: the administrators of [modules.adhoc] admins, with their XMPP password,
// checked against the account's stored SCRAM keys (store/creds); no password is kept
// anywhere else. Attempts count against the same per-address budget as XMPP logins
// (Backend.LoginAttempt). A login opens a server-side session (session.go) named by a
// random 128-bit id in a cookie that is HttpOnly, SameSite=Strict and, on TLS listeners,
// Secure. Every POST form carries the session's CSRF token (the login form a
// double-submit token of its own), and a POST whose Origin is another site is refused.
// Account, virtual host and invitation operations are those of the admin socket
// (engine/admin).
//
// Pages are server-rendered with html/template and use no JavaScript. Handlers run off
// the event loops, one goroutine per request (engine.Mount); the password check
// (PBKDF2) runs there too.
package dashboard

import (
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/metrics"
	"github.com/vireo-im/vireo/engine/webpage"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Prefix is where the dashboard is mounted.
const Prefix = "/admin/"

// Cookie names. The login cookie carries the login form's CSRF token before there is a
// session.
const (
	SessionCookie = "vireo_admin"
	LoginCookie   = "vireo_admin_login"
)

// MaxUsersShown bounds the users page; a prefix narrows it.
const MaxUsersShown = 200

// Link is one server-to-server stream.
type Link struct {
	Inbound bool
	Bidi    bool // XEP-0288: it carries stanzas both ways
	Local   string
	Remote  string
	Up      bool
}

// Backend is what the dashboard needs from the running server. Every method must be safe
// for concurrent use.
type Backend interface {
	admin.Backend
	// Counters are the numbers GET /metrics exports.
	Counters() metrics.Counters
	// S2SLinks lists the server-to-server streams.
	S2SLinks() []Link
	// LoginAttempt counts a password attempt from ip and reports whether it may go on;
	// LoginSucceeded gives a successful one back.
	LoginAttempt(ip string) bool
	LoginSucceeded(ip string)
	// Admins are the bare JIDs allowed in (the XEP-0133 administrators).
	Admins() []string
	// Config is the effective configuration, secrets redacted.
	Config() (string, error)
	// Certs reports each virtual host's certificate, and with ACME its renewal.
	Certs() []admin.CertStatus
}

// HostSettings is a Backend that describes what each virtual host's own settings
// (config [vhosts]) change, for the hosts page: domain -> a line for people.
type HostSettings interface {
	HostSettings() map[string]string
}

// HostAdmins is a Backend whose virtual hosts may have administrators of their own
// ([vhosts."<host>".modules.adhoc] admins): they log in to see an overview of their
// hosts and manage their accounts and invitations, and see nothing else.
type HostAdmins interface {
	// HostAdmins maps a host to its own administrators (bare JIDs).
	HostAdmins() map[string][]string
}

// Dashboard is the http.Handler of the console.
type Dashboard struct {
	b    Backend
	log  zerolog.Logger
	now  func() time.Time
	sess *sessions
	rate struct {
		sync.Mutex
		t      time.Time
		routed int64
	}
}

var _ http.Handler = (*Dashboard)(nil)

// New returns the dashboard for b. now is the clock (nil: time.Now).
func New(b Backend, log zerolog.Logger, now func() time.Time) *Dashboard {
	if now == nil {
		now = time.Now
	}
	return &Dashboard{b: b, log: log, now: now, sess: newSessions(now)}
}

// ServeHTTP implements http.Handler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	webpage.Harden(w.Header())
	if r.Method == http.MethodPost && !webpage.SameOrigin(r) {
		http.Error(w, "cross-origin form refused", http.StatusForbidden)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(Prefix, "/"))
	switch path {
	case "", "/":
		if path == "" {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		d.authed(w, r, http.MethodGet, func(w http.ResponseWriter, r *http.Request, s session, id string) {
			if s.hosts != nil {
				d.hostOverview(w, r, s, id)
				return
			}
			d.overview(w, r, s, id)
		})
	case "/login":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			d.loginForm(w, r, "", http.StatusOK)
		case http.MethodPost:
			d.login(w, r)
		default:
			methodNotAllowed(w, "GET, POST")
		}
	case "/logout":
		d.authed(w, r, http.MethodPost, d.logout)
	case "/users":
		if r.Method == http.MethodPost {
			d.authed(w, r, http.MethodPost, d.usersPost)
			return
		}
		d.authed(w, r, http.MethodGet, d.users)
	case "/hosts":
		if r.Method == http.MethodPost {
			d.authed(w, r, http.MethodPost, d.serverOnly(d.hostsPost))
			return
		}
		d.authed(w, r, http.MethodGet, d.serverOnly(d.hosts))
	case "/invites":
		if r.Method == http.MethodPost {
			d.authed(w, r, http.MethodPost, d.invitesPost)
			return
		}
		d.authed(w, r, http.MethodGet, d.invites)
	case "/s2s":
		if r.Method == http.MethodPost {
			d.authed(w, r, http.MethodPost, d.serverOnly(d.s2sPost))
			return
		}
		d.authed(w, r, http.MethodGet, d.serverOnly(d.s2s))
	case "/config":
		d.authed(w, r, http.MethodGet, d.serverOnly(d.config))
	default:
		http.NotFound(w, r)
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// current is the request's live session, if any, with its id.
func (d *Dashboard) current(r *http.Request) (session, string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return session{}, "", false
	}
	s, ok := d.sess.get(c.Value)
	if !ok {
		return session{}, "", false
	}
	// The account may have lost its rights since the login.
	server, hosts := d.rights(s.user)
	if !server && len(hosts) == 0 {
		d.sess.drop(c.Value)
		return session{}, "", false
	}
	s.hosts = hosts
	if acc, err := d.b.Store().Accounts().Get(s.user); err != nil || acc.Disabled || keysOf(acc) != s.keys {
		// Gone, disabled, or its password changed (by its owner after a theft, or by a
		// reset link): the session ends with what it proved.
		d.sess.drop(c.Value)
		return session{}, "", false
	}
	return s, c.Value, true
}

// keysOf identifies acc's credentials (session.keys).
func keysOf(acc store.Account) [32]byte {
	h := sha256.New()
	for _, c := range acc.Creds {
		h.Write(c.StoredKey)
		h.Write([]byte{0})
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// rights says whether user is one of the server's administrators, and otherwise which
// hosts it administers (none: it may not log in).
func (d *Dashboard) rights(user string) (server bool, hosts []string) {
	if slices.Contains(d.b.Admins(), user) {
		return true, nil
	}
	if ha, ok := d.b.(HostAdmins); ok {
		for h, admins := range ha.HostAdmins() {
			if slices.Contains(admins, user) {
				hosts = append(hosts, h)
			}
		}
		slices.Sort(hosts)
	}
	return false, hosts
}

// outranks reports whether s may change the account j: a server administrator any, a
// host's administrator those whose administrative rights it holds too (a plain user, or
// an administrator of hosts it manages).
func (d *Dashboard) outranks(s session, j string) bool {
	if s.hosts == nil {
		return true
	}
	b, err := jid.Parse(j)
	if err != nil {
		return true // refused as malformed by the operation itself
	}
	server, hosts := d.rights(b.Bare().String())
	if server {
		return false
	}
	for _, h := range hosts {
		if !slices.Contains(s.hosts, h) {
			return false
		}
	}
	return true
}

// manages reports whether s may act on domain: every domain for the server's
// administrators, their hosts for a host's.
func (s session) manages(domain string) bool {
	return s.hosts == nil || slices.Contains(s.hosts, domain)
}

// serverOnly is p for the server's administrators; a host's gets 403.
func (d *Dashboard) serverOnly(p page) page {
	return func(w http.ResponseWriter, r *http.Request, s session, id string) {
		if s.hosts == nil {
			p(w, r, s, id)
			return
		}
		http.Error(w, "for the server's administrators only", http.StatusForbidden)
	}
}

// domainOf is the domain of a JID or domain typed into a form ("" when it is neither).
func domainOf(s string) string {
	j, err := jid.Parse(strings.TrimSpace(s))
	if err != nil {
		return ""
	}
	return j.Domain()
}

type page func(w http.ResponseWriter, r *http.Request, s session, id string)

// authed runs p for a logged-in administrator with the method allowed; a POST must carry
// the session's CSRF token. Without a session, GETs go to the login form.
func (d *Dashboard) authed(w http.ResponseWriter, r *http.Request, method string, p page) {
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		methodNotAllowed(w, method)
		return
	}
	s, id, ok := d.current(r)
	if !ok {
		if r.Method == http.MethodPost {
			http.Error(w, "not logged in", http.StatusForbidden)
			return
		}
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
		return
	}
	if r.Method == http.MethodPost && !tokenEqual(r.PostFormValue("csrf"), s.csrf) {
		d.log.Warn().Str("user", s.user).Str("remote", clientIP(r)).Msg("dashboard: POST without its CSRF token refused")
		http.Error(w, "missing or wrong CSRF token; reload the page", http.StatusForbidden)
		return
	}
	p(w, r, s, id)
}

func (d *Dashboard) cookie(r *http.Request, name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode}
}

// insecure refuses to take an administrator's password over plain HTTP from another
// machine: anyone on the path would read it, and the session cookie after it.
func insecure(w http.ResponseWriter) {
	http.Error(w, "the dashboard takes passwords over HTTPS only (or from this machine): open it on the web listener's https:// address",
		http.StatusForbidden)
}

// loginForm shows the form with a fresh double-submit token.
func (d *Dashboard) loginForm(w http.ResponseWriter, r *http.Request, msg string, code int) {
	if !webpage.Secure(r) {
		insecure(w)
		return
	}
	tok := newToken()
	http.SetCookie(w, d.cookie(r, LoginCookie, tok, Prefix+"login", 3600))
	d.render(w, code, "login", data{Title: "Log in", CSRF: tok, Flash: msg})
}

// errLogin is the one answer for every refused login, so the form says nothing about
// which accounts exist, are disabled or are administrators.
const errLogin = "Wrong JID or password, or not an administrator."

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	if !webpage.Secure(r) {
		insecure(w)
		return
	}
	c, err := r.Cookie(LoginCookie)
	if err != nil || !tokenEqual(r.PostFormValue("csrf"), c.Value) {
		d.loginForm(w, r, "The form expired; please try again.", http.StatusForbidden)
		return
	}
	ip := clientIP(r)
	if !d.b.LoginAttempt(ip) {
		d.log.Info().Str("remote", ip).Msg("dashboard: login refused, too many attempts")
		d.loginForm(w, r, "Too many login attempts from your address; try again in a minute.", http.StatusTooManyRequests)
		return
	}
	user, keys, ok := d.check(r.PostFormValue("jid"), r.PostFormValue("password"))
	if !ok {
		d.log.Info().Str("remote", ip).Str("jid", r.PostFormValue("jid")).Msg("dashboard: login failed")
		d.loginForm(w, r, errLogin, http.StatusUnauthorized)
		return
	}
	d.b.LoginSucceeded(ip)
	id := d.sess.create(user, keys)
	d.log.Info().Str("user", user).Str("remote", ip).Msg("dashboard: login")
	http.SetCookie(w, d.cookie(r, LoginCookie, "", Prefix+"login", -1))
	http.SetCookie(w, d.cookie(r, SessionCookie, id, Prefix, int(SessionMax/time.Second)))
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// check verifies password against the account's stored SCRAM-SHA-256 keys and that the
// account is an enabled administrator; it returns the bare JID and its keys (keysOf). A
// name without an account costs the same key derivation as a wrong password, so that the
// answer's time does not tell which accounts exist.
func (d *Dashboard) check(j, password string) (string, [32]byte, bool) {
	bare, err := jid.Parse(strings.TrimSpace(j))
	if err != nil || bare.Local() == "" || !bare.IsBare() || password == "" || len(password) > 1023 {
		creds.VerifyPlain(absent(), store.SHA256, password)
		return "", [32]byte{}, false
	}
	user := bare.String()
	acc, err := d.b.Store().Accounts().Get(user)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			d.log.Error().Err(err).Str("user", user).Msg("dashboard: read account")
		}
		creds.VerifyPlain(absent(), store.SHA256, password)
		return "", [32]byte{}, false
	}
	if !creds.VerifyPlain(acc.Creds[store.SHA256], store.SHA256, password) {
		return "", [32]byte{}, false
	}
	server, hosts := d.rights(user)
	return user, keysOf(acc), !acc.Disabled && (server || len(hosts) > 0)
}

// absent stands in for the keys of an account that does not exist (check); derived at
// its first use.
var absent = sync.OnceValue(func() store.Credentials {
	c, _ := creds.Derive("no account has this password", store.SHA256, creds.DefaultIter)
	return c
})

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, s session, id string) {
	d.sess.drop(id)
	http.SetCookie(w, d.cookie(r, SessionCookie, "", Prefix, -1))
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// overview shows the numbers of /metrics, the Go heap, and stanzas a second since the
// previous view (or since start).
func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, s session, _ string) {
	c := d.b.Counters()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := d.b.Stats()
	now := d.now()
	d.rate.Lock()
	var rate float64
	over := ""
	if dt := now.Sub(d.rate.t); !d.rate.t.IsZero() && dt >= time.Second && dt < 10*time.Minute {
		rate = float64(c.Routed-d.rate.routed) / dt.Seconds()
		over = "over the last " + dt.Round(time.Second).String()
	} else if up, _ := st["uptime_s"].(int64); up > 0 {
		rate = float64(c.Routed) / float64(up)
		over = "average since start"
	}
	if dt := now.Sub(d.rate.t); d.rate.t.IsZero() || dt >= time.Second {
		d.rate.t, d.rate.routed = now, c.Routed
	}
	d.rate.Unlock()
	d.render(w, http.StatusOK, "overview", data{Title: "Overview", User: s.user, CSRF: s.csrf, Flash: s.flash, FlashOK: s.flashOK,
		Overview: &overviewData{C: c, Rate: rate, RateOver: over, HeapInuse: ms.HeapInuse, Sys: ms.Sys,
			Goroutines: runtime.NumGoroutine(), GCs: ms.NumGC, Stats: st, Sessions: d.sess.len(),
			Certs: d.b.Certs(), Now: now}})
}

// hostRow is one virtual host on a host administrator's overview.
type hostRow struct {
	Host     string
	Accounts int
	Online   int    // accounts with a session now; -1 when the backend cannot tell
	Settings string // what its [vhosts] table sets, in words ("" for none)
}

// hostOverview is the overview of a host's own administrators: for each of their hosts,
// its accounts, the accounts online now, its own settings and its certificate; none of
// the server's numbers.
func (d *Dashboard) hostOverview(w http.ResponseWriter, r *http.Request, s session, _ string) {
	rows := make([]hostRow, 0, len(s.hosts))
	at := map[string]int{}
	for _, h := range s.domains(d.b.Domains()) {
		at[h] = len(rows)
		rows = append(rows, hostRow{Host: h, Online: -1})
	}
	flash, ok := s.flash, s.flashOK
	// One pass over the accounts, as the users page and XEP-0133's counts make.
	if err := d.b.Store().Accounts().List(func(u string) bool {
		if i, mine := at[domainOf(u)]; mine {
			rows[i].Accounts++
		}
		return true
	}); err != nil {
		flash, ok = "Could not count the accounts: "+err.Error(), false
	}
	if l, can := d.b.(admin.OnlineLister); can {
		if users, err := l.OnlineUsers(); err == nil {
			for i := range rows {
				rows[i].Online = 0
			}
			for _, u := range users {
				if i, mine := at[domainOf(u)]; mine {
					rows[i].Online++
				}
			}
		}
	}
	if hs, can := d.b.(HostSettings); can {
		set := hs.HostSettings()
		for i := range rows {
			rows[i].Settings = set[rows[i].Host]
		}
	}
	certs := slices.DeleteFunc(d.b.Certs(), func(c admin.CertStatus) bool { _, mine := at[c.Host]; return !mine })
	d.render(w, http.StatusOK, "hostoverview", data{Title: "Overview", User: s.user, CSRF: s.csrf, Flash: flash, FlashOK: ok,
		HostAdmin: true, HostRows: rows, Overview: &overviewData{Certs: certs, Now: d.now()}})
}

type overviewData struct {
	C              metrics.Counters
	Rate           float64
	RateOver       string
	HeapInuse, Sys uint64
	Goroutines     int
	GCs            uint32
	Stats          map[string]any
	Sessions       int
	Certs          []admin.CertStatus
	Now            time.Time // for "in 3 days" beside the certificates' dates
}

// userRow is one account on the users page.
type userRow struct {
	JID      string
	Disabled bool
	Self     bool
}

func (d *Dashboard) users(w http.ResponseWriter, r *http.Request, s session, _ string) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	var rows []userRow
	more := false
	st := d.b.Store()
	err := st.Accounts().List(func(u string) bool {
		if !strings.HasPrefix(u, q) || !s.manages(domainOf(u)) {
			return true
		}
		if len(rows) == MaxUsersShown {
			more = true
			return false
		}
		rows = append(rows, userRow{JID: u, Self: u == s.user})
		return true
	})
	for i := range rows {
		if acc, err := st.Accounts().Get(rows[i].JID); err == nil {
			rows[i].Disabled = acc.Disabled
		}
	}
	flash, ok := s.flash, s.flashOK
	if err != nil {
		flash, ok = "Could not list the accounts: "+err.Error(), false
	}
	d.render(w, http.StatusOK, "users", data{Title: "Users", User: s.user, CSRF: s.csrf, Flash: flash, FlashOK: ok,
		Query: q, Users: rows, More: more, Domains: s.domains(d.b.Domains()), HostAdmin: s.hosts != nil})
}

// usersPost runs one account operation, leaves its result as the next page's message and
// sends the browser back to the list (POST, redirect, GET).
func (d *Dashboard) usersPost(w http.ResponseWriter, r *http.Request, s session, id string) {
	action, j, pw := r.PostFormValue("action"), strings.TrimSpace(r.PostFormValue("jid")), r.PostFormValue("password")
	var err error
	var done string
	self := false
	if b, perr := jid.Parse(j); perr == nil && b.String() == s.user {
		self = true
	}
	if !s.manages(domainOf(j)) {
		err = errors.New("you administer " + strings.Join(s.hosts, ", ") + " only")
		action = "refused"
	} else if !self && !d.outranks(s, j) {
		// Its password or a reset link would give its rights: those of the server's
		// administrators, or of hosts this administrator does not manage.
		err = errors.New(j + " administers more than you do; ask a server administrator")
		action = "refused"
	}
	switch action {
	case "refused":
	case "add":
		err, done = admin.AddUser(d.b, j, pw, 0), "created "+j
	case "passwd":
		err, done = admin.Passwd(d.b, j, pw, 0), "password of "+j+" changed"
	case "disable", "delete":
		if self {
			err = errors.New("you cannot " + action + " your own account here")
			break
		}
		if action == "delete" {
			if r.PostFormValue("confirm") != "yes" {
				err = errors.New("tick the box to confirm deleting " + j)
				break
			}
			err, done = admin.DelUser(d.b, j), "deleted "+j
		} else {
			err, done = admin.SetDisabled(d.b, j, true), "disabled "+j
		}
		if err == nil {
			d.sess.dropUser(j)
		}
	case "enable":
		err, done = admin.SetDisabled(d.b, j, false), "re-enabled "+j
	case "resetlink":
		var lines []string
		if lines, err = admin.ResetLink(d.b, j, 0); err == nil {
			done = "password reset link for " + j + " (" + lines[1] + "), send it to its owner: " + lines[0]
		}
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	d.flashResult(id, err, done)
	d.log.Info().Str("admin", s.user).Str("action", action).Str("jid", j).Bool("ok", err == nil).Msg("dashboard: account operation")
	http.Redirect(w, r, Prefix+"users?q="+url.QueryEscape(r.PostFormValue("q")), http.StatusSeeOther)
}

// flashResult shows the outcome of a form on the page the browser is sent back to: err's
// text, or done.
func (d *Dashboard) flashResult(id string, err error, done string) {
	if err != nil {
		d.sess.setFlash(id, err.Error(), false)
	} else {
		d.sess.setFlash(id, done, true)
	}
}

func (d *Dashboard) hosts(w http.ResponseWriter, r *http.Request, s session, _ string) {
	_, edit := d.b.(admin.HostManager)
	var set map[string]string
	if hs, ok := d.b.(HostSettings); ok {
		set = hs.HostSettings()
	}
	d.render(w, http.StatusOK, "hosts", data{Title: "Virtual hosts", User: s.user, CSRF: s.csrf, Flash: s.flash, FlashOK: s.flashOK,
		Domains: d.b.Domains(), CanEditHosts: edit, HostSettings: set})
}

// hostsPost adds or removes a virtual host (admin.Vhost, as vireoctl vhost does) and sends
// the browser back to the list with the result.
func (d *Dashboard) hostsPost(w http.ResponseWriter, r *http.Request, s session, id string) {
	action, domain := r.PostFormValue("action"), strings.TrimSpace(r.PostFormValue("domain"))
	var err error
	var done string
	switch action {
	case "add":
		_, err = admin.Vhost(d.b, action, domain)
		done = "added " + domain
	case "remove":
		if r.PostFormValue("confirm") != "yes" {
			err = errors.New("tick the box to confirm removing " + domain)
			break
		}
		_, err = admin.Vhost(d.b, action, domain)
		done = "removed " + domain + "; its users' sessions were closed"
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	d.flashResult(id, err, done)
	d.log.Info().Str("admin", s.user).Str("action", action).Str("domain", domain).Bool("ok", err == nil).Msg("dashboard: virtual host operation")
	http.Redirect(w, r, Prefix+"hosts", http.StatusSeeOther)
}

// inviteTTLs are the lifetimes the invitations page offers.
var inviteTTLs = map[string]time.Duration{"1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

// invites lists the invitations still valid (store/invites), the operator's and the users'.
func (d *Dashboard) invites(w http.ResponseWriter, r *http.Request, s session, _ string) {
	list, err := invites.List(d.b.Store().Table(invites.Table), time.Now())
	if err != nil {
		http.Error(w, "reading the invitations: "+err.Error(), http.StatusInternalServerError)
		return
	}
	list = slices.DeleteFunc(list, func(inv invites.Invite) bool {
		// A link for a named account (a password reset, an account invitation) is that
		// account: one whose rights s does not hold is not shown, or a host's
		// administrator could use a server administrator's reset link.
		return !s.manages(inv.Domain) || inv.Username != "" && !d.outranks(s, inv.Username+"@"+inv.Domain)
	})
	pages := map[string]string{}
	for _, inv := range list {
		if u := inv.PageURL(d.b.WebURL(inv.Domain)); u != "" {
			pages[inv.Token] = u
		}
	}
	d.render(w, http.StatusOK, "invites", data{Title: "Invitations", User: s.user, CSRF: s.csrf, Flash: s.flash, FlashOK: s.flashOK,
		Invites: list, Pages: pages, Now: time.Now(), Domains: s.domains(d.b.Domains()), HostAdmin: s.hosts != nil})
}

// invitesPost creates an account invitation (admin.Invite, as vireoctl invite does) or
// revokes one, and sends the browser back to the list; a new invitation's link is in the
// flash, to copy.
func (d *Dashboard) invitesPost(w http.ResponseWriter, r *http.Request, s session, id string) {
	action := r.PostFormValue("action")
	var err error
	var done string
	switch action {
	case "create":
		target := strings.TrimSpace(r.PostFormValue("for"))
		ttl, ok := inviteTTLs[r.PostFormValue("ttl")]
		if !ok {
			http.Error(w, "unknown lifetime", http.StatusBadRequest)
			return
		}
		var lines []string
		if !s.manages(domainOf(target)) {
			err = errors.New("you administer " + strings.Join(s.hosts, ", ") + " only")
		} else if strings.Contains(target, "@") && !d.outranks(s, target) {
			// An invitation for a named account makes it: one the configuration names an
			// administrator of more than s's hosts would make its holder one.
			err = errors.New("an invitation for " + target + " needs a server administrator")
		} else if lines, err = admin.Invite(d.b, "create", target, "", ttl); err == nil {
			done = "invitation for " + target + " (" + lines[1] + "): " + lines[0]
			if len(lines) > 2 { // the landing page, where the server has a web listener
				done += " — " + lines[2]
			}
		}
	case "revoke":
		token := r.PostFormValue("token")
		if s.hosts != nil && !d.managesInvite(s, token) {
			err = errors.New("no such invitation of " + strings.Join(s.hosts, ", "))
			break
		}
		_, err = admin.Invite(d.b, "revoke", "", token, 0)
		done = "invitation revoked"
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	d.flashResult(id, err, done)
	d.log.Info().Str("admin", s.user).Str("action", action).Bool("ok", err == nil).Msg("dashboard: invitation")
	http.Redirect(w, r, Prefix+"invites", http.StatusSeeOther)
}

// managesInvite reports whether the open invitation token is for one of s's hosts.
func (d *Dashboard) managesInvite(s session, token string) bool {
	list, err := invites.List(d.b.Store().Table(invites.Table), time.Now())
	if err != nil {
		return false
	}
	return slices.ContainsFunc(list, func(inv invites.Invite) bool { return inv.Token == token && s.manages(inv.Domain) })
}

// domains are those of all that s manages.
func (s session) domains(all []string) []string {
	if s.hosts == nil {
		return all
	}
	return slices.DeleteFunc(slices.Clone(all), func(d string) bool { return !s.manages(d) })
}

func (d *Dashboard) s2s(w http.ResponseWriter, r *http.Request, s session, _ string) {
	dt := data{Title: "Server-to-server", User: s.user, CSRF: s.csrf, Flash: s.flash, FlashOK: s.flashOK, Links: d.b.S2SLinks()}
	if f, ok := d.b.(admin.FederationEditor); ok {
		dt.CanEditFederation = true
		dt.Deny, dt.Allow = f.FederationLists()
	}
	d.render(w, http.StatusOK, "s2s", dt)
}

// s2sPost adds a domain to, or removes one from, the federation's deny or allow list
// (admin.Federation, as vireoctl s2s deny|allow does) and sends the browser back.
func (d *Dashboard) s2sPost(w http.ResponseWriter, r *http.Request, s session, id string) {
	list, action, domain := r.PostFormValue("list"), r.PostFormValue("action"), strings.TrimSpace(r.PostFormValue("domain"))
	if (list != "deny" && list != "allow") || (action != "add" && action != "remove") {
		http.Error(w, "unknown list or action", http.StatusBadRequest)
		return
	}
	_, err := admin.Federation(d.b, list, action, domain)
	verb := map[string]string{"add": "added to", "remove": "removed from"}[action]
	d.flashResult(id, err, domain+" "+verb+" the "+list+" list")
	d.log.Info().Str("admin", s.user).Str("list", list).Str("action", action).Str("domain", domain).Bool("ok", err == nil).Msg("dashboard: federation list operation")
	http.Redirect(w, r, Prefix+"s2s", http.StatusSeeOther)
}

func (d *Dashboard) config(w http.ResponseWriter, r *http.Request, s session, _ string) {
	text, err := d.b.Config()
	if err != nil {
		text = "could not render the configuration: " + err.Error()
	}
	d.render(w, http.StatusOK, "config", data{Title: "Configuration", User: s.user, CSRF: s.csrf, Config: text})
}
