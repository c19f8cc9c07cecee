package router

import (
	"errors"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// UserChecker says whether an account exists outside the store: the operator's password
// program (engine Config.External), whose users have an account here only from their
// first login on. It blocks; the router calls it on a goroutine of its own.
type UserChecker func(local, domain string) (bool, error)

// Bounds of the stanzas waiting for a UserChecker's answer. A stanza beyond them is
// treated as addressed to no one (RFC 6121 §8.5.1), which a sender flooding unknown names
// deserves and a real first contact (a subscription request, a message) never reaches.
const (
	// ExternalWaitStanzas is the most stanzas held for one unknown user.
	ExternalWaitStanzas = 32
	// ExternalWaitUsers is the most unknown users one shard asks about at once.
	ExternalWaitUsers = 256
	// ExternalNoTTL is how long a shard remembers that the program does not know a user,
	// so that a sender retrying does not ask it again each time.
	ExternalNoTTL = time.Minute
	// externalRetry is how long, after the program failed to answer, stanzas to that user
	// bounce without asking it again.
	externalRetry = time.Second
	// externalNoMax bounds the remembered answers per shard.
	externalNoMax = 4096
)

// SetExternalUsers sets (nil: clears) the UserChecker asked about stanzas to local users
// the store does not know. Safe for concurrent use.
func (r *Router) SetExternalUsers(f UserChecker) {
	if f == nil {
		r.extUsers.Store(nil)
		return
	}
	r.extUsers.Store(&f)
}

// waitExternal holds o, a stanza to bare (key its string) that the store does not know,
// until the UserChecker answered: a user it knows gets an account (created as at a first
// login, and the modules hear of it) and the stanza is then handled as any other, in
// arrival order with the others held for that user; for anyone else they bounce. It
// reports false, with o untouched, when there is no checker, the answer is remembered as
// no, or the bounds are reached. Runs on the shard's goroutine.
func (s *shard) waitExternal(o *op, bare jid.JID, key string) bool {
	f := s.r.extUsers.Load()
	if f == nil {
		return false
	}
	now := s.r.mono()
	if until, ok := s.extNo[key]; ok {
		if now < until {
			return false
		}
		delete(s.extNo, key)
	}
	if q, ok := s.extWait[key]; ok {
		if len(q) >= ExternalWaitStanzas {
			return false
		}
		s.extWait[key] = append(q, o)
		return true
	}
	if len(s.extWait) >= ExternalWaitUsers {
		return false
	}
	if s.extWait == nil {
		s.extWait = map[string][]*op{}
	}
	s.extWait[key] = []*op{o}
	check, r, st := *f, s.r, s.r.st
	// A goroutine, not the shared worker pool: the answer may take the program's timeout,
	// and ExternalWaitUsers bounds how many wait per shard.
	go func() {
		known, err := check(bare.Local(), bare.Domain())
		created := false
		if err == nil && known {
			err = st.Accounts().Create(store.Account{User: key, Created: r.now().UTC(), External: true})
			if errors.Is(err, store.ErrExists) {
				err = nil
			} else {
				created = err == nil
			}
		}
		if err != nil {
			r.log.Warn().Err(err).Str("user", key).Msg("router: no answer about a user of the external program")
		}
		if created {
			r.Registered(module.Registration{User: bare, Via: module.RegSite}) // queued before the stanzas resume
		}
		back := getOp()
		back.kind = opCall
		back.bare = bare
		back.fn = func(module.Context) { s.resumeExternal(key, known && err == nil, err != nil) }
		s.q.pushForce(back)
	}()
	return true
}

// resumeExternal handles the stanzas held for key once the answer is in: with an account
// now, as usual; without, remembered as no (or, when the program failed, for a second),
// so that they bounce. Runs on the shard's goroutine.
func (s *shard) resumeExternal(key string, known, failed bool) {
	held := s.extWait[key]
	delete(s.extWait, key)
	if !known {
		if len(s.extNo) >= externalNoMax {
			now := s.r.mono()
			for k, until := range s.extNo {
				if now >= until {
					delete(s.extNo, k)
				}
			}
			if len(s.extNo) >= externalNoMax {
				clear(s.extNo)
			}
		}
		if s.extNo == nil {
			s.extNo = map[string]int64{}
		}
		ttl := ExternalNoTTL
		if failed {
			ttl = externalRetry
		}
		s.extNo[key] = s.r.mono() + int64(ttl)
	}
	for _, o := range held {
		s.handle(o)
	}
}
