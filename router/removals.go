package router

import (
	"sync"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// removals runs the modules' OnRemoved functions for the store's account removals
// (store.Removals): each record once at a time, and forgotten by the store when every
// function has run, so that a removal the server did not finish before it stopped is
// finished at the next start.
type removals struct {
	mu      sync.Mutex
	running map[string]*store.Removal // users whose removal is queued on their shard → the next one
}

// StartRemovals makes the router finish account removals: those the store recorded
// while the server was not running it (a crash, vireoctl deluser on a stopped server),
// then each one as it happens. Call it once, when the router can reach every
// destination (the server-to-server side included): what the modules send then goes out.
// Without a store that records removals it does nothing.
func (r *Router) StartRemovals() error {
	rs, ok := r.st.(store.Removals)
	if !ok {
		return nil
	}
	r.rm.mu.Lock()
	r.rm.running = make(map[string]*store.Removal)
	r.rm.mu.Unlock()
	rs.OnRemoval(r.removed)
	return rs.PendingRemovals(func(rm store.Removal) bool {
		r.removed(rm)
		return true
	})
}

// removed queues rm's OnRemoved functions on the removed user's shard.
func (r *Router) removed(rm store.Removal) {
	rs, _ := r.st.(store.Removals)
	user, err := jid.Parse(rm.User)
	if err != nil || r.closed.Load() {
		if err != nil {
			r.log.Warn().Str("user", rm.User).Msg("router: dropping the removal record of an unparsable account")
			_ = rs.RemovalDone(rm.User)
		}
		return
	}
	r.rm.mu.Lock()
	if _, busy := r.rm.running[rm.User]; busy {
		// The name was made again and removed again while the first removal runs: the
		// store holds the second record now, so the first must not forget it.
		r.rm.running[rm.User] = &rm
		r.rm.mu.Unlock()
		return
	}
	r.rm.running[rm.User] = nil
	r.rm.mu.Unlock()
	r.runRemoval(rs, user.Bare(), rm)
}

func (r *Router) runRemoval(rs store.Removals, user jid.JID, rm store.Removal) {
	m := module.Removal{User: user, Guest: rm.Guest, Contacts: rm.Contacts}
	o := getOp()
	o.kind = opCall
	o.bare = user
	o.fn = func(c module.Context) {
		for _, f := range r.reg.removed {
			f.v(c, m)
		}
		r.rm.mu.Lock()
		next := r.rm.running[rm.User]
		if next == nil {
			// Under the lock: a removal of the same name recorded from now on is
			// queued anew and keeps its record.
			if err := rs.RemovalDone(rm.User); err != nil {
				r.log.Error().Err(err).Str("user", rm.User).Msg("router: forgetting an account's removal record")
			}
			delete(r.rm.running, rm.User)
		} else {
			r.rm.running[rm.User] = nil
		}
		r.rm.mu.Unlock()
		if next != nil {
			r.runRemoval(rs, user, *next)
		}
	}
	r.shardOf(user.String()).q.pushForce(o)
}
