package router

import (
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Ephemeral accounts (a SASL ANONYMOUS login's) live as long as their one session: the
// engine makes the account, and the router tells it when the session is gone for good
// (after a stream-management detachment expired, too), so that the engine removes the
// account with its data. In between, nothing is kept for a guest who has left: stanzas
// the session held bounce instead of going to offline storage, and stanzas that arrive
// for the account before its removal bounce as for an unknown user.

// Ephemeral is implemented by a Conn whose session belongs to an ephemeral account.
type Ephemeral interface {
	Ephemeral() bool
}

// SetEphemeralGone sets (nil: clears) what runs, on a shard worker, when the last
// session of an ephemeral account ended: f must not block (hand the removal to
// another goroutine). Safe for concurrent use.
func (r *Router) SetEphemeralGone(f func(bare jid.JID)) {
	if f == nil {
		r.ephemeralGone.Store(nil)
		return
	}
	r.ephemeralGone.Store(&f)
}

// isEphemeral says whether c's session belongs to an ephemeral account.
func isEphemeral(c Conn) bool {
	e, ok := c.(Ephemeral)
	return ok && e.Ephemeral()
}

// ephemeralEnded runs when u lost a session: once an ephemeral account has none left,
// the engine hears of it.
func (s *shard) ephemeralEnded(u *user) {
	if !u.ephemeral || len(u.sessions) > 0 {
		return
	}
	if f := s.r.ephemeralGone.Load(); f != nil {
		(*f)(u.bare)
	}
}
