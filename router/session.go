package router

import (
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Session is one bound resource. The fields below gone are owned by the user's shard
// worker. Delivery goes through Session.Send, never straight to the socket, so that a
// session can outlive its connection: Detach takes the Conn away (stream management, a
// phone that lost TCP) and stanzas queue, bounded, until Attach gives it a new Conn or the
// detach timeout hands them to the RFC 6121 rules (other resources, offline storage,
// errors).
type Session struct {
	gone atomic.Bool // Unbind called
	// rateTokens and rateAt are the sender's token bucket (Options.SenderRate): the bytes
	// it may still submit at once (negative: owed), and when the bucket was last filled,
	// in ms since the router started. They sit in what would be padding.
	rateTokens atomic.Int32
	// inflight counts the bytes of this session's stanzas still inside the router; over
	// Options.SenderInflight the engine stops taking more from the client (blocked) until
	// they drain below half of it and the router calls the Conn's Resume.
	inflight atomic.Int64
	blocked  atomic.Bool
	rateAt   atomic.Uint32

	shard *shard
	conn  Conn // nil while detached
	jid   jid.JID
	user  *user

	prio      int8
	available bool
	bits      uint8 // sInterested, sEphemeral: one byte, so that touched fits in padding
	// touched has bit i%8 set for each shard i that the session's stanzas were queued on
	// since its last Barrier (its sender shard's goroutine alone reads and writes it).
	touched uint8
	// rateHeld says the sender is in debt to its token bucket (Router.shape): its client
	// is not read until a timer clears it. It fills padding too.
	rateHeld atomic.Bool
	presence []byte
	values   []kv   // module state; two or three keys at most, so a slice beats a map
	x        *extra // what few sessions need: nil for the common, attached, unfiltered one
}

// extra holds the session state that most sessions never have, behind one pointer.
type extra struct {
	filter func([]byte) bool
	det    *detached // non-nil while detached
}

// detachedQ returns the detached state, or nil.
func (s *Session) detachedQ() *detached {
	if s.x == nil {
		return nil
	}
	return s.x.det
}

func (s *Session) setDetached(d *detached) { s.setExtra(func(x *extra) { x.det = d }, d == nil) }

// setExtra changes the rare state through set; unset says set clears a field, so a
// missing extra needs no allocation. An extra left empty is dropped.
func (s *Session) setExtra(set func(*extra), unset bool) {
	if s.x == nil {
		if unset {
			return
		}
		s.x = &extra{}
	}
	set(s.x)
	if s.x.det == nil && s.x.filter == nil {
		s.x = nil
	}
}

// detached is what a session holds while it has no connection. It exists only then, so an
// attached session pays one pointer for it.
type detached struct {
	queue [][]byte
	// at is when each of queue's stanzas was last tried (Unix nanoseconds): the detach
	// for the stream's unacknowledged ones, the arrival for the rest. A stanza the RFC 6121
	// rules take at the end carries it as its <delay/> (XEP-0198 §4). Negated: a message
	// to the bare JID that a live session of the user took as well (shared), which the
	// end of this one does not hand the user again.
	at    []int64
	bytes int
	// head is how many of queue's first stanzas the stream wrote before it went (its
	// client may have them): a resume skips among those only.
	head int
	gen  uint64 // matches the shard's expiry entry that may end it
}

// shared marks queue[i] as delivered to a live session too.
func (d *detached) shared(i int) {
	if d.at[i] > 0 {
		d.at[i] = -d.at[i]
	}
}

type kv struct{ k, v any }

// Session.bits.
const (
	sInterested uint8 = 1 << iota // requested the roster (RFC 6121 §2.1.6: gets pushes)
	sEphemeral                    // a guest's (SASL ANONYMOUS): the account goes with the session
)

// Ended reports whether the session is over (unbound, or its detach timeout expired).
// Safe for concurrent use.
func (s *Session) Ended() bool { return s.gone.Load() }

// Blocked reports whether the session's client should not be read from until the router
// calls its Conn's Resume. Safe for concurrent use.
func (s *Session) Blocked() bool { return s.blocked.Load() || s.rateHeld.Load() }

// charge counts n bytes of a submitted stanza against the session.
func (s *Session) charge(n int64, limit int64) {
	if s.inflight.Add(n) > limit {
		if h := testHookCharge.Load(); h != nil {
			(*h)()
		}
		s.blocked.Store(true)
		// Credits that ran between the add and the mark (the goroutine can be preempted
		// there for as long as the scheduler likes) found the session unblocked and
		// resumed nothing. If they brought it down to where a credit resumes, nothing
		// in flight is left to resume it: take the mark back. A credit that comes after
		// the mark either resumes or finds it taken back.
		if s.inflight.Load() <= limit/2 {
			s.blocked.CompareAndSwap(true, false)
		}
	}
}

// spend takes n bytes from the session's token bucket, filled at rate bytes a second up
// to burst since its last fill at ms now, and returns how long the sender must wait
// before the bucket is out of debt (0: it is not in debt). Only the goroutine submitting
// for the session calls it.
func (s *Session) spend(n, rate, burst int64, now uint32) time.Duration {
	t := int64(s.rateTokens.Load()) + int64(now-s.rateAt.Load())*rate/1000
	t = min(t, burst) - n
	t = max(t, math.MinInt32)
	s.rateTokens.Store(int32(t))
	s.rateAt.Store(now)
	if t >= 0 {
		return 0
	}
	return time.Duration(-t) * time.Second / time.Duration(rate)
}

// testHookCharge, when set by a test, runs in charge between the count and the mark.
var testHookCharge atomic.Pointer[func()]

// credit gives n bytes back once their op is done, and resumes the client when enough has
// drained. It runs on whichever shard finished the op.
func (s *Session) credit(n int64, limit int64) {
	if s.inflight.Add(-n) <= limit/2 && s.blocked.Load() && s.blocked.CompareAndSwap(true, false) {
		if s.rateHeld.Load() {
			return // in debt to its rate: the shaping timer resumes it
		}
		s.resume()
	}
}

// resume has the session's shard resume its connection (the connection belongs there).
func (s *Session) resume() {
	o := getOp()
	o.kind = opResume
	o.sess = s
	s.shard.q.pushForce(o)
}

var _ module.Session = (*Session)(nil)

// fullB is the full JID as bytes, for stamping 'from' without allocating: a read-only view
// of the JID's own string (no copy kept per session). Nothing may write through it.
func (s *Session) fullB() []byte {
	str := s.jid.String()
	return unsafe.Slice(unsafe.StringData(str), len(str))
}

// JID returns the full JID.
func (s *Session) JID() jid.JID { return s.jid }

// Priority returns the priority of the last available presence.
func (s *Session) Priority() int { return int(s.prio) }

// Available reports whether the session sent available presence.
func (s *Session) Available() bool { return s.available }

// Presence returns the last broadcast presence stanza.
func (s *Session) Presence() []byte { return s.presence }

// Interested reports whether the session requested the roster (RFC 6121 §2.1.6).
func (s *Session) Interested() bool { return s.bits&sInterested != 0 }

// SetInterested marks the session as having requested the roster.
func (s *Session) SetInterested() { s.bits |= sInterested }

// Detached reports whether the session has no connection right now.
func (s *Session) Detached() bool { return s.detachedQ() != nil }

// Ephemeral reports whether the session is a guest's (module.Session).
func (s *Session) Ephemeral() bool { return s.bits&sEphemeral != 0 }

// SetFilter installs the session's outbound filter (module.Session).
func (s *Session) SetFilter(f func([]byte) bool) {
	s.setExtra(func(x *extra) { x.filter = f }, f == nil)
}

// Send writes raw to the session's stream, through the filter if one is set, or queues it
// while the session is detached. It reports false when the stanza could not be taken (the
// session ended, its stream is closing or over its outbound cap, or the detached queue is
// full); the caller then applies the RFC 6121 fallback.
func (s *Session) Send(raw []byte) bool {
	if s.gone.Load() {
		return false
	}
	if s.x != nil && s.x.filter != nil && !s.x.filter(raw) {
		return true
	}
	return s.send(raw)
}

// send bypasses the filter.
func (s *Session) send(raw []byte) bool {
	if d := s.detachedQ(); d != nil {
		lim := s.shard.r.opts.DetachedLimits
		if len(d.queue) >= lim.Stanzas || d.bytes+len(raw) > lim.Bytes {
			return false
		}
		d.queue = append(d.queue, append([]byte(nil), raw...))
		d.at = append(d.at, time.Now().UnixNano())
		d.bytes += len(raw)
		s.countOut(raw)
		return true
	}
	ok := false
	if ns, isNear := s.conn.(NearSender); isNear && s.shard.near != nil {
		ok = ns.SendNear(raw, s.shard.near)
	} else {
		ok = s.conn.Send(raw)
	}
	if !ok {
		return false
	}
	s.countOut(raw)
	return true
}

// countOut counts raw as delivered, on the session's shard.
func (s *Session) countOut(raw []byte) {
	if k, ok := kindOfRaw(raw); ok {
		s.shard.stats.out[k].Add(1)
	}
}

// Close closes the session's stream with cond and ends the session: it is not left
// detached and resumable (XEP-0198) for a client a module meant to cut off (its account
// removed). Safe for concurrent use.
func (s *Session) Close(cond stanza.StreamCondition) {
	o := getOp()
	o.kind = opCloseUser
	o.sess = s
	o.cond = cond
	s.shard.q.pushForce(o)
}

// Value returns per-session module state.
func (s *Session) Value(key any) any {
	for i := range s.values {
		if s.values[i].k == key {
			return s.values[i].v
		}
	}
	return nil
}

// SetValue stores per-session module state; a nil v removes key.
func (s *Session) SetValue(key, v any) {
	for i := range s.values {
		if s.values[i].k == key {
			if v == nil {
				s.values = append(s.values[:i], s.values[i+1:]...)
			} else {
				s.values[i].v = v
			}
			return
		}
	}
	if v != nil {
		s.values = append(s.values, kv{key, v})
	}
}

// AfterWritten implements module.Session.
func (s *Session) AfterWritten(done func(c module.Context, ok bool)) {
	sh := s.shard
	bare := s.jid.Bare()
	back := func(ok bool) {
		o := getOp()
		o.kind = opCall
		o.bare = bare
		// ok stays true when the session ended after the bytes went out: the client
		// has them (a module deletes what it delivered) even if no more can follow.
		o.fn = func(c module.Context) { done(c, ok) }
		sh.q.pushForce(o)
	}
	if s.gone.Load() || s.conn == nil {
		back(false)
		return
	}
	s.conn.Drained(back)
}
