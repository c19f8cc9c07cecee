// Package register implements XEP-0077: In-Band Registration for authenticated users:
// password change and account removal. Account creation before authentication is the
// engine's, since it happens before a session exists; this package tells the operator's
// watchers ([modules.register] watchers) of every account made, as ejabberd's
// registration_watchers and Prosody's mod_watchregistrations do.
package register

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func init() { module.Register(new(Mod)) }

// Config is [modules.register].
type Config struct {
	// Watchers get a chat message from the account's host for every account made in-band,
	// on a web page, or by a site's first login: who, how, and from which address.
	// Accounts the operator makes (vireoctl, the dashboard, XEP-0133) are not reported.
	Watchers []string `toml:"watchers"`
}

// MaxWatchers bounds the list: each registration sends one message to each.
const MaxWatchers = 32

// Mod is the module.
type Mod struct {
	log      zerolog.Logger
	rate     rate
	accounts func() module.Accounts
	watchers atomic.Pointer[module.HostSettings[[]jid.JID]]
}

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "register", XEP: 77, New: func() module.Module { return new(Mod) }, PerHost: true}
}

// Provision registers the handlers.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	m.accounts = r.Accounts
	if err := module.Configure(r, m); err != nil {
		return err
	}
	r.IQ(module.IQGet, ns.Register, "query", m.get)
	r.IQ(module.IQSet, ns.Register, "query", m.set)
	r.OnRegistered(m.notify)
	return nil
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: the new watchers hear of the accounts made
// after the reload. A host's table names the watchers of the accounts made on it.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	set, err := module.DeriveSettings(rc, func(_ string, cfg *Config) (*[]jid.JID, error) {
		if len(cfg.Watchers) > MaxWatchers {
			return nil, fmt.Errorf("watchers: at most %d", MaxWatchers)
		}
		ws := make([]jid.JID, 0, len(cfg.Watchers))
		for _, w := range cfg.Watchers {
			j, err := jid.Parse(w)
			if err != nil || j.Local() == "" {
				return nil, fmt.Errorf("watchers: %q is not a user's address", w)
			}
			ws = append(ws, j)
		}
		return &ws, nil
	})
	if err != nil {
		return nil, err
	}
	return func() { m.watchers.Store(set) }, nil
}

// notify tells each watcher of the account r made, from the account's host.
func (m *Mod) notify(c module.Context, r module.Registration) {
	ws := m.watchers.Load().For(r.User.Domain())
	if ws == nil || len(*ws) == 0 {
		return
	}
	text := "New account " + r.User.String()
	switch r.Via {
	case module.RegInBand:
		text += ", registered in-band"
	case module.RegWeb:
		text += ", registered on the web"
	case module.RegSite:
		text += ", known to the site's password program"
	}
	if !r.Inviter.IsZero() {
		text += ", invited by " + r.Inviter.String()
	}
	if r.Addr != "" {
		text += ", from " + r.Addr
	}
	text += "."
	for _, w := range *ws {
		var b xmlstream.Builder
		b.Start("message").Attr("type", "chat").Attr("from", r.User.Domain()).Attr("to", w.String()).
			Attr("id", "reg-"+r.User.String()).Start("body").Text(text).End().End()
		c.Route(b.B)
	}
}

func (m *Mod) get(c module.Context, iq *module.Packet) {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.Register).Start("registered").End().
		Start("username").Text(iq.From.Local()).End().Start("password").End().End()
	c.Reply(iq, b.B)
}

func (m *Mod) set(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && iq.To.Local() != "" {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	q, _ := iq.Payload()
	user := iq.From.Bare()
	if _, ok := q.Child(ns.Register, "remove"); ok {
		// XEP-0077 §3.2: the account is gone before the answer (a failed delete is an
		// error, not a silent success), then the sessions end.
		m.remove(c, iq, user)
		return
	}
	u, okU := q.Child(ns.Register, "username")
	p, okP := q.Child(ns.Register, "password")
	if !okU || !okP {
		c.Error(iq, stanza.New(stanza.BadRequest))
		return
	}
	if !strings.EqualFold(string(u.AppendText(nil)), user.Local()) {
		c.Error(iq, stanza.New(stanza.NotAuthorizedCond))
		return
	}
	password := string(p.AppendText(nil))
	if password == "" || len(password) > 1023 {
		c.Error(iq, stanza.New(stanza.NotAcceptable))
		return
	}
	// PBKDF2 for three hashes takes tens of milliseconds: it runs on the server's bounded
	// worker pool, one change at a time per account and a few a minute, so no account can
	// keep the pool busy.
	key := user.String()
	if !m.rate.take(key, c.Now()) {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Text = "too many password changes; try again later"
		c.Error(iq, e)
		return
	}
	req := *iq
	req.Raw = nil
	accounts := m.accounts()
	var err error
	ok := c.Async(func() { err = accounts.SetPassword(key, password) }, func(c module.Context) {
		m.rate.done(key)
		if m.failed(c, &req, err, "change password") {
			return
		}
		c.Reply(&req, nil)
		// The account's other sessions end (as Prosody's do): one a thief holds with
		// the old password would otherwise stay, and could change it back.
		for _, s := range c.Sessions(req.From.Bare()) {
			if !s.JID().Equal(req.From) {
				s.Close(stanza.Reset)
			}
		}
	})
	if !ok {
		m.rate.done(key)
		c.Error(iq, stanza.New(stanza.ResourceConstraintCond))
	}
}

// remove deletes the account (which, for an account a site keeps, asks the site first),
// answers, and ends its sessions.
func (m *Mod) remove(c module.Context, iq *module.Packet, user jid.JID) {
	req := *iq
	req.Raw = nil
	accounts := m.accounts()
	var err error
	ok := c.Async(func() { err = accounts.Remove(user.String()) }, func(c module.Context) {
		if m.failed(c, &req, err, "remove account") {
			return
		}
		c.Reply(&req, nil)
		for _, s := range c.Sessions(user) {
			s.Close(stanza.NotAuthorized)
		}
	})
	if !ok {
		c.Error(iq, stanza.New(stanza.ResourceConstraintCond))
	}
}

// failed answers req with the error err maps to, if any: not-allowed when the site that
// keeps the account refused, the store's error otherwise.
func (m *Mod) failed(c module.Context, req *module.Packet, err error, what string) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, module.ErrGuest) {
		e := stanza.New(stanza.NotAllowed)
		e.Text = "a guest account has no password; register an account to keep one"
		c.Error(req, e)
		return true
	}
	if errors.Is(err, module.ErrManaged) {
		e := stanza.New(stanza.NotAllowed)
		e.Text = "this account is managed by the site that runs this server"
		c.Error(req, e)
		return true
	}
	if module.LogStoreError(err) {
		m.log.Error().Err(err).Str("user", req.From.Bare().String()).Msg("register: " + what)
	}
	c.Error(req, module.StoreError(err))
	return true
}

// rate allows one password change in flight per account and at most perMinute a minute.
type rate struct {
	mu sync.Mutex
	m  map[string]*window
}

type window struct {
	start    time.Time
	n        int
	inFlight bool
}

const perMinute = 5

func (r *rate) take(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*window{}
	}
	w := r.m[key]
	if w == nil || now.Sub(w.start) > time.Minute {
		if w != nil && w.inFlight {
			return false
		}
		if len(r.m) > 10000 {
			for k, x := range r.m {
				if !x.inFlight && now.Sub(x.start) > time.Minute {
					delete(r.m, k)
				}
			}
		}
		w = &window{start: now}
		r.m[key] = w
	}
	if w.inFlight || w.n >= perMinute {
		return false
	}
	w.n++
	w.inFlight = true
	return true
}

func (r *rate) done(key string) {
	r.mu.Lock()
	if w := r.m[key]; w != nil {
		w.inFlight = false
	}
	r.mu.Unlock()
}
