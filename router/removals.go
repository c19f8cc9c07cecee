package router

import (
	"sync"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// removals finishes the store's account removals (store.Removals) on a goroutine of its
// own, one removal at a time: the modules' OnRemoved functions may read much of the store
// there (a service's subscriptions) without holding up any shard, and change what lives
// on shards through Removal.CallOn. A removal's record is forgotten once every function
// and everything it queued has run, so a removal the server did not finish before it
// stopped is finished at the next start.
type removals struct {
	mu     sync.Mutex
	queue  []store.Removal
	queued map[string]bool // users in queue
	wake   chan struct{}
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
	r.rm.queued = map[string]bool{}
	r.rm.wake = make(chan struct{}, 1)
	r.rm.mu.Unlock()
	rs.OnRemoval(r.removed)
	err := rs.PendingRemovals(func(rm store.Removal) bool {
		r.removed(rm)
		return true
	})
	r.wg.Add(1)
	go r.removalLoop(rs)
	return err
}

// removed queues rm; a later record of the same account replaces one still queued.
func (r *Router) removed(rm store.Removal) {
	r.rm.mu.Lock()
	defer r.rm.mu.Unlock()
	if r.rm.queued[rm.User] {
		for i := range r.rm.queue {
			if r.rm.queue[i].User == rm.User {
				r.rm.queue[i] = rm
			}
		}
		return
	}
	r.rm.queued[rm.User] = true
	r.rm.queue = append(r.rm.queue, rm)
	select {
	case r.rm.wake <- struct{}{}:
	default:
	}
}

func (r *Router) removalLoop(rs store.Removals) {
	defer r.wg.Done()
	for {
		r.rm.mu.Lock()
		var rm store.Removal
		next := len(r.rm.queue) > 0
		if next {
			rm = r.rm.queue[0]
			r.rm.queue[0] = store.Removal{}
			r.rm.queue = r.rm.queue[1:]
			delete(r.rm.queued, rm.User)
		}
		r.rm.mu.Unlock()
		if !next {
			select {
			case <-r.stopTick:
				return
			case <-r.rm.wake:
				continue
			}
		}
		if !r.finish(rs, rm) {
			return
		}
	}
}

// finish runs the modules' OnRemoved functions for rm and waits for what they queued on
// shards; false when the router stopped first (the record stays for the next start).
func (r *Router) finish(rs store.Removals, rm store.Removal) bool {
	user, err := jid.Parse(rm.User)
	if err != nil {
		r.log.Warn().Str("user", rm.User).Msg("router: dropping the removal record of an unparsable account")
		_ = rs.RemovalDone(rm.User)
		return true
	}
	var wg sync.WaitGroup
	m := module.Removal{User: user.Bare(), Guest: rm.Guest, Contacts: rm.Contacts,
		CallOn: func(bare jid.JID, fn func(module.Context)) {
			wg.Add(1)
			b := bare.Bare()
			o := getOp()
			o.kind = opCall
			o.bare = b
			o.fn = func(c module.Context) {
				defer wg.Done()
				fn(c)
			}
			r.shardOf(b.String()).q.pushForce(o)
		}}
	for _, f := range r.reg.removed {
		f.v(m)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-r.stopTick:
		return false
	}
	// Under the lock: a removal of the same name queued meanwhile keeps its record.
	r.rm.mu.Lock()
	defer r.rm.mu.Unlock()
	if !r.rm.queued[rm.User] {
		if err := rs.RemovalDone(rm.User); err != nil {
			r.log.Error().Err(err).Str("user", rm.User).Msg("router: forgetting an account's removal record")
		}
	}
	return true
}
