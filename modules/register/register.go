// Package register implements XEP-0077: In-Band Registration for authenticated users:
// password change and account removal. Account creation before authentication is the
// engine's, since it happens before a session exists.
package register

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func init() { module.Register(new(Mod)) }

var errManaged = errors.New("register: the password is managed elsewhere")

// Mod is the module.
type Mod struct {
	log  zerolog.Logger
	rate rate
}

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "register", XEP: 77, New: func() module.Module { return new(Mod) }}
}

// Provision registers the handlers.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	r.IQ(module.IQGet, ns.Register, "query", m.get)
	r.IQ(module.IQSet, ns.Register, "query", m.set)
	return nil
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
		if err := c.Store().Accounts().Delete(user.String()); err != nil {
			if module.LogStoreError(err) {
				m.log.Error().Err(err).Str("user", user.String()).Msg("register: remove account")
			}
			c.Error(iq, module.StoreError(err))
			return
		}
		c.Reply(iq, nil)
		for _, s := range c.Sessions(user) {
			s.Close(stanza.NotAuthorized)
		}
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
	st := c.Store()
	var err error
	ok := c.Async(func() {
		// An account that logs in through the operator's program (engine
		// Config.External) has its password in the site's database; keys set here would
		// shadow it.
		if acct, gerr := st.Accounts().Get(key); gerr == nil && acct.External && store.NoKeys(acct.Creds) {
			err = errManaged
			return
		}
		var keys [3]store.Credentials
		keys, err = creds.DeriveAll(password, creds.DefaultIter)
		if err == nil {
			err = st.Accounts().SetCredentials(key, keys)
		}
	}, func(c module.Context) {
		m.rate.done(key)
		if err == errManaged {
			e := stanza.New(stanza.NotAllowed)
			e.Text = "this account's password is managed by the site that runs this server"
			c.Error(&req, e)
			return
		}
		if err != nil {
			if module.LogStoreError(err) {
				m.log.Error().Err(err).Str("user", key).Msg("register: change password")
			}
			c.Error(&req, module.StoreError(err))
			return
		}
		c.Reply(&req, nil)
	})
	if !ok {
		m.rate.done(key)
		c.Error(iq, stanza.New(stanza.ResourceConstraintCond))
	}
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
