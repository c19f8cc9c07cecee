package router

import (
	"math"
	"time"
)

// expiryTick is how often the router looks for detached sessions whose resumption time is
// up: a session ends at most this much after its timeout.
const expiryTick = 500 * time.Millisecond

// expiry is one detached session's end, in its shard's heap of them.
type expiry struct {
	at   int64 // nanoseconds on the router's monotonic clock (Router.mono)
	sess *Session
	gen  uint64 // the detachment it ends: a session that came back, or left again, no longer matches
}

// expiries is a shard's detached sessions by the time their resumption window closes, a
// min-heap of 24-byte entries. A runtime timer and its closure per detached session cost
// ~150 bytes, and a mobile-heavy node holds many detached sessions. Only the shard's
// owner touches it; the router's ticker reads the earliest time through shard.nextExpiry.
// An entry whose session came back stays until its time and is dropped then.
type expiries []expiry

func (h *expiries) push(e expiry) {
	*h = append(*h, e)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if q[p].at <= q[i].at {
			break
		}
		q[p], q[i] = q[i], q[p]
		i = p
	}
}

func (h *expiries) pop() expiry {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q[n] = expiry{}
	q = q[:n]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < n && q[l].at < q[small].at {
			small = l
		}
		if r := l + 1; r < n && q[r].at < q[small].at {
			small = r
		}
		if small == i {
			break
		}
		q[i], q[small] = q[small], q[i]
		i = small
	}
	// A storm of detachments leaves a large array behind: give it back once mostly empty.
	if cap(q) > 1024 && n < cap(q)/4 {
		q = append(expiries(nil), q...)
	}
	*h = q
	return top
}

// mono is the router's monotonic clock for expiries.
func (r *Router) mono() int64 { return int64(time.Since(r.started)) }

// noteNext publishes the earliest expiry of s for the ticker (math.MaxInt64: none).
func (s *shard) noteNext() {
	next := int64(math.MaxInt64)
	if len(s.exp) > 0 {
		next = s.exp[0].at
	}
	s.nextExpiry.Store(next)
}

// expireDue ends the detached sessions of s whose time is up (opExpire).
func (s *shard) expireDue() {
	s.expiryAsked.Store(false)
	now := s.r.mono()
	for len(s.exp) > 0 && s.exp[0].at <= now {
		e := s.exp.pop()
		se := e.sess
		if d := se.detachedQ(); d == nil || d.gen != e.gen || se.user == nil {
			continue
		}
		se.gone.Store(true)
		s.end(se)
	}
	s.noteNext()
}

// expireLoop asks each shard that has a detached session past its time to end it.
func (r *Router) expireLoop() {
	defer r.wg.Done()
	t := time.NewTicker(expiryTick)
	defer t.Stop()
	for {
		select {
		case <-r.stopTick:
			return
		case <-t.C:
		}
		now := r.mono()
		for _, s := range r.shards {
			if s.nextExpiry.Load() <= now && s.expiryAsked.CompareAndSwap(false, true) {
				o := getOp()
				o.kind = opExpire
				s.q.pushForce(o)
			}
		}
	}
}
