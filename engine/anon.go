package engine

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/engine/sasl"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Guests: SASL ANONYMOUS (RFC 4505, XEP-0175) on Config.AnonymousDomains.
//
// A guest's login makes an account with a random name, flagged store.Account.Anonymous,
// so that everything that works for an account (roster, private storage, PEP, MAM, rooms,
// stream management) works for a guest without a second code path. The router tells us
// when the guest's session is gone for good (router.SetEphemeralGone; after a detached
// session's resumption window, too), and the account goes with all its data. The store
// keeps guests' accounts out of its account list and count, and lists them apart
// (store.Accounts.Guests), so that the accounts a crash left behind are removed at the
// next start without a scan of every account. Guests get no FAST tokens (the account dies
// with the session), cannot change a password they never had, and reach other servers
// only with Config.AnonymousS2S.

// guestBindWithin is how long a guest's login may go without a session before its account
// is removed: a stream that authenticated and closed, or never bound.
var guestBindWithin atomic.Int64 // nanoseconds; 0: two minutes (the tests shorten it)

func bindWithin() time.Duration {
	if d := guestBindWithin.Load(); d > 0 {
		return time.Duration(d)
	}
	return 2 * time.Minute
}

// anonNameBytes is the randomness of a guest's name: 80 bits, as 16 base32 characters.
const anonNameBytes = 10

var anonEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// anonymousHost says whether domain takes guests.
func (cfg *Config) anonymousHost(domain string) bool {
	return len(cfg.AnonymousDomains) > 0 && slices.Contains(cfg.AnonymousDomains, domain)
}

// isGuest says whether bare is a live guest account of this server. Cheap for everyone on
// a host without guests.
func (s *Server) isGuest(bare jid.JID) bool {
	_, ok := s.guest(bare)
	return ok
}

// guest returns a live guest's bound flag (set once its session is bound). A guest
// stays one after a reload took its host out of anonymous_domains: its account still
// goes when its session ends.
func (s *Server) guest(bare jid.JID) (*atomic.Bool, bool) {
	if bare.IsZero() || s.guestsN.Load() == 0 {
		return nil, false
	}
	v, ok := s.guests.Load(bare.Bare().String())
	if !ok {
		return nil, false
	}
	return v.(*atomic.Bool), true
}

// openRegistration says whether anyone may register on the stream's host: a host for
// guests takes none (an account there would pass for a guest's), though an operator's
// invitation still opens it.
func (c *conn) openRegistration(cfg *Config) bool {
	d := c.domainName()
	return cfg.host(d).Registration && !cfg.anonymousHost(d)
}

// Ephemeral implements router.Ephemeral: the router removes a guest's account when its
// session ends. The router asks at bind, which marks the guest bound.
func (c *conn) Ephemeral() bool {
	if c.bare.IsZero() {
		return false
	}
	bound, ok := c.srv().guest(c.bare)
	if ok {
		bound.Store(true)
	}
	return ok
}

// guestResumable lets a guest resume a guest's detached session (XEP-0198). A guest
// cannot log in to the account it had, only to a new one; the resumption id, secret and
// bound to the old account, is what proves the session its own, as a password would. On
// success the stream takes the old account, and the one its login just made goes.
func (c *conn) guestResumable(id string) (*smState, bool) {
	s := c.srv()
	if c.sess != nil || !s.isGuest(c.bare) {
		return nil, false
	}
	key, _, ok := decodeSMID(id)
	if !ok {
		return nil, false
	}
	sm, ok := s.sms.get(key)
	if !ok || sm.sess == nil {
		return nil, false
	}
	prev := sm.sess.JID().Bare()
	if prev.Domain() != c.bare.Domain() || !s.isGuest(prev) {
		return nil, false
	}
	if _, ok := s.sms.find(id, prev.String()); !ok {
		return nil, false // not the id that account was given
	}
	fresh := c.bare
	c.bare = prev
	s.guestGone(fresh)
	return sm, true
}

// anonLogin finishes an ANONYMOUS exchange: the account is made on the worker pool, then
// the login succeeds on the loop. An address gets as many guest accounts a minute as it
// gets registrations (Config.RegisterLimit); trusted networks are not counted.
func (c *conn) anonLogin() {
	a := c.auth
	cfg := c.srv().config()
	domain := c.domainName()
	if !cfg.anonymousHost(domain) {
		c.authFailed(&sasl.Failure{Condition: "invalid-mechanism"})
		return
	}
	key, now := "anon:"+addrKey(c.ip()), time.Now() // per /64 for IPv6, as SASL failures
	if !cfg.trusted(c.ip()) {
		if c.srv().throttle.blocked(key, cfg.RegisterLimit, now) {
			c.authFailed(&sasl.Failure{Condition: "temporary-auth-failure", Text: "too many guest logins from this address; try again later"})
			return
		}
		c.srv().throttle.fail(key, now)
	}
	if a.v2 != nil {
		a.v2.tokenMech = "" // a token would outlive the account
	}
	s := c.srv()
	var local string
	var err error
	ok := c.offLoop(func() { local, err = s.newGuest(domain) }, func() {
		if c.auth != a {
			return
		}
		if err != nil {
			s.log.Warn().Err(err).Str("domain", domain).Msg("guest account not created")
			c.auth = nil
			c.saslFailure(&sasl.Failure{Condition: "temporary-auth-failure"})
			return
		}
		a.local = local
		c.authSucceeded(nil)
	})
	if !ok {
		c.auth = nil
		c.saslFailure(&sasl.Failure{Condition: "temporary-auth-failure", Text: "server busy"})
	}
}

// newGuest makes a guest account on domain and returns its name. Off the event loops.
func (s *Server) newGuest(domain string) (string, error) {
	for range 3 {
		var b [anonNameBytes]byte
		rand.Read(b[:])
		local := anonEncoding.EncodeToString(b[:])
		user := local + "@" + domain
		// The write does not wait for the disk: a guest's account is promised to nobody
		// (pebblestore syncs no guest account's writes).
		err := s.st.Accounts().Create(store.Account{User: user, Created: time.Now().UTC(), Anonymous: true})
		if errors.Is(err, store.ErrExists) {
			continue // 80 random bits met a name: never, but not a reason to fail
		}
		if err != nil {
			return "", err
		}
		bound := new(atomic.Bool)
		s.guests.Store(user, bound)
		s.guestsN.Add(1)
		// A login that never gets a session (the stream closed before its bind, or never
		// binds) leaves no session end to remove the account: this does.
		time.AfterFunc(bindWithin(), func() {
			if v, ok := s.guests.Load(user); ok && v == bound && !bound.Load() {
				if j, err := jid.Parse(user); err == nil {
					s.guestGone(j)
				}
			}
		})
		return local, nil
	}
	return "", errors.New("engine: no free guest name")
}

// guestGone removes the account of a guest whose session ended (router.SetEphemeralGone,
// on a shard worker): on the worker pool, or a goroutine of its own when the pool is full.
func (s *Server) guestGone(bare jid.JID) {
	user := bare.Bare().String()
	drop := func() {
		if err := s.dropGuest(user); err != nil {
			s.log.Warn().Err(err).Str("user", user).Msg("guest account not removed; the next start removes it")
		}
	}
	if !s.rt.Go(drop) {
		go drop()
	}
}

// dropGuest removes a guest account with its data, unless the account is not a guest's.
func (s *Server) dropGuest(user string) error {
	if _, ok := s.guests.LoadAndDelete(user); ok {
		s.guestsN.Add(-1)
		// newGuest made it as a guest's (Create refuses a name in use): no need to read
		// it to know.
		return s.st.Accounts().Delete(user)
	}
	acct, err := s.st.Accounts().Get(user)
	if errors.Is(err, store.ErrNotFound) || err == nil && !acct.Anonymous {
		return nil // gone already, or not a guest's
	}
	if err != nil {
		return err
	}
	return s.st.Accounts().Delete(user)
}

// sweepGuests removes the guest accounts a crash or a shutdown left behind: their
// sessions are gone with the process. Called before the listeners open.
func (s *Server) sweepGuests() {
	var users []string
	err := s.st.Accounts().Guests(func(user string) bool {
		users = append(users, user)
		return true
	})
	if err != nil {
		s.log.Warn().Err(err).Msg("listing guest accounts")
		return
	}
	n := 0
	for _, u := range users {
		if err := s.dropGuest(u); err == nil {
			n++
		} else {
			s.log.Warn().Err(err).Str("user", u).Msg("guest account not removed")
		}
	}
	if n > 0 {
		s.log.Info().Int("accounts", n).Msg("removed the guest accounts of the last run")
	}
}

// guestS2S refuses a guest's stanza to another server unless Config.AnonymousS2S.
func (s *Server) guestS2S(from jid.JID) error {
	if s.config().AnonymousS2S || !s.isGuest(from) {
		return nil
	}
	e := stanza.New(stanza.NotAllowed)
	e.Text = "Guests cannot reach other servers."
	return e
}
