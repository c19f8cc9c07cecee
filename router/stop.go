package router

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// StopWait bounds how long the server waits, when it stops or removes a virtual host, for
// what the modules send in answer (module.Registrar.OnStop) to be handed on: stopping
// must not hang on a stuck shard or an unreachable peer.
const StopWait = 2 * time.Second

// Flusher is implemented by a Remote that queues what Route accepts (federation). Flush
// returns true once everything queued before the call has been written to its stream or
// given up on (bounced), false when deadline comes first. Safe for concurrent use.
type Flusher interface {
	Flush(deadline time.Time) bool
}

// Stopping tells the modules that the whole server is about to stop (module.Stopping with no
// Host) and waits, until deadline at the latest, for what they send in answer to reach
// the local recipients' shards and the Remote's streams. The engine calls it at the start
// of its shutdown, before it closes any connection. It does nothing after Close.
func (r *Router) Stopping(deadline time.Time) {
	r.hostsMu.Lock()
	defer r.hostsMu.Unlock()
	r.notifyStop("", deadline, "")
}

// notifyStop runs the modules' OnStop functions for host ("" for the whole server) and
// waits, until deadline at the latest: first for the functions they queued on shards
// (Stopping.CallOn), then for a barrier on every shard (a stanza those functions routed to a
// local user is queued on the user's shard ahead of it, and delivered to the session's
// connection when the barrier runs), then for the Remote to write what it queued. Called
// with hostsMu held. With only set, only that module's functions run (a host that turns
// the module off, SetHostModules).
func (r *Router) notifyStop(host string, deadline time.Time, only string) {
	if r.closed.Load() || len(r.reg.stop) == 0 {
		return
	}
	var (
		pending sync.WaitGroup
		queued  atomic.Bool
	)
	call := func(bare jid.JID, fn func(module.Context)) {
		if r.closed.Load() {
			return
		}
		b := bare.Bare()
		pending.Add(1)
		queued.Store(true)
		o := getOp()
		o.kind = opCall
		o.bare = b
		o.to = b // the entity whose Context it is (a service entity: a room)
		o.fn = func(c module.Context) {
			defer pending.Done()
			fn(c)
		}
		r.shardOf(b.String()).q.pushForce(o)
	}
	for _, f := range r.reg.stop {
		if only == "" || f.id == only {
			f.v(module.Stopping{Host: host, CallOn: call})
		}
	}
	if !queued.Load() {
		return
	}
	log := r.log.With().Str("host", host).Logger()
	if !waitGroupUntil(&pending, deadline) {
		log.Warn().Msg("stop notices: shards did not finish in time")
		return
	}
	var barrier sync.WaitGroup
	for _, s := range r.shards {
		barrier.Add(1)
		o := getOp()
		o.kind = opCall
		o.fn = func(module.Context) { barrier.Done() }
		s.q.pushForce(o)
	}
	if !waitGroupUntil(&barrier, deadline) {
		log.Warn().Msg("stop notices: local delivery did not finish in time")
		return
	}
	if rm := r.remote.Load(); rm != nil {
		if f, ok := (*rm).(Flusher); ok && !f.Flush(deadline) {
			log.Warn().Msg("stop notices: server-to-server queues not written in time")
		}
	}
}

// waitGroupUntil waits for wg until deadline; it reports whether wg finished. A goroutine
// is left waiting when it did not; it ends with the work, which the shards do as they drain.
func waitGroupUntil(wg *sync.WaitGroup, deadline time.Time) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
