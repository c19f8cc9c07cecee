package engine

import (
	"sync"
	"time"

	"github.com/vireo-im/vireo/engine/webpage"
)

// throttle counts authentication failures per key (client address, account) in
// one-minute windows (RFC 6120 §6.4.5 suggests limiting retries).
type throttle struct {
	mu sync.Mutex
	m  map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newThrottle() *throttle { return &throttle{m: map[string]*window{}} }

// blocked reports whether key reached limit failures in the current window.
func (t *throttle) blocked(key string, limit int, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.m[key]
	if w == nil || now.Sub(w.start) > time.Minute {
		return false
	}
	return w.n >= limit
}

func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	t.windowLocked(key, now).n++
	t.mu.Unlock()
}

// windowLocked returns key's current one-minute window, starting a new one when needed.
func (t *throttle) windowLocked(key string, now time.Time) *window {
	w := t.m[key]
	if w == nil || now.Sub(w.start) > time.Minute {
		if len(t.m) > 100_000 {
			t.gcLocked(now)
		}
		w = &window{start: now}
		t.m[key] = w
	}
	return w
}

func (t *throttle) gcLocked(now time.Time) {
	for k, w := range t.m {
		if now.Sub(w.start) > time.Minute {
			delete(t.m, k)
		}
	}
}

func (t *throttle) gc(now time.Time) {
	t.mu.Lock()
	t.gcLocked(now)
	t.mu.Unlock()
}

// take counts one attempt for key and reports whether it is within limit for the current
// window. Attempts are counted when they start, so clients that pipeline many exchanges
// cannot get more guesses checked than the limit; a success gives its attempt back.
func (t *throttle) take(key string, limit int, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.windowLocked(key, now)
	if w.n >= limit {
		return false
	}
	w.n++
	return true
}

// refund gives back an attempt taken for key.
func (t *throttle) refund(key string) {
	t.mu.Lock()
	if w := t.m[key]; w != nil && w.n > 0 {
		w.n--
	}
	t.mu.Unlock()
}

// addrKey is the throttling key of a client address (webpage.AddrKey).
func addrKey(ip string) string { return webpage.AddrKey(ip) }

// accountGuard slows password guessing against one account without locking its owner out.
// Every attempt counts when it starts (pipelined attempts on many streams all count) and a
// success gives its count back, so the count is the failures plus what is in flight. Past a
// free allowance, attempts wait for a slot; slots are spaced by a step that grows with the
// count (up to maxStep), and each client address has its own lane, so a guesser on other
// addresses never makes the owner wait: the owner's first attempt from an address that has
// not failed gets a slot at once. Only accounts with failures or attempts in flight have
// state here; a successful login leaves nothing behind.
type accountGuard struct {
	mu sync.Mutex
	m  map[string]*acctState
}

type acctState struct {
	start time.Time // counting window
	tries int
	lanes map[string]time.Time // address key -> next free slot
}

const (
	acctFreeTries = 10 // attempts per minute before any wait
	baseStep      = 100 * time.Millisecond
	maxStep       = 5 * time.Second
	maxWait       = 30 * time.Second // beyond this the attempt is refused outright
)

func newAccountGuard() *accountGuard { return &accountGuard{m: map[string]*acctState{}} }

// reserve counts an attempt on acct from addr and returns how long its answer must wait,
// or ok=false when the wait would be too long (temporary-auth-failure; not counted).
func (g *accountGuard) reserve(acct, addr string, now time.Time) (wait time.Duration, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.m[acct]
	if s == nil || now.Sub(s.start) > time.Minute {
		if len(g.m) > 100_000 {
			for k, x := range g.m {
				if now.Sub(x.start) > time.Minute {
					delete(g.m, k)
				}
			}
		}
		s = &acctState{start: now}
		g.m[acct] = s
	}
	s.tries++
	if s.tries <= acctFreeTries {
		return 0, true
	}
	step := min(baseStep<<min((s.tries-acctFreeTries)/5, 10), maxStep)
	if s.lanes == nil {
		s.lanes = map[string]time.Time{}
	}
	slot := s.lanes[addr]
	if slot.Before(now) {
		slot = now
	}
	if slot.Sub(now) > maxWait {
		s.tries--
		return 0, false
	}
	s.lanes[addr] = slot.Add(step)
	return slot.Sub(now), true
}

// succeeded gives back the attempt of a successful login.
func (g *accountGuard) succeeded(acct string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.m[acct]; s != nil {
		if s.tries--; s.tries <= 0 {
			delete(g.m, acct)
		}
	}
}

// rateLog writes at most one line a second for a kind of event that any client can cause
// (failed TLS handshakes), with the number of lines it left out, so the reason is in the
// log without letting a scanner flood it.
type rateLog struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (r *rateLog) log(s *Server, ip string, err error) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.dropped++
		r.mu.Unlock()
		return
	}
	dropped := r.dropped
	r.last, r.dropped = now, 0
	r.mu.Unlock()
	s.log.Info().Str("remote", ip).Err(err).Int("similar_not_logged", dropped).Msg("TLS handshake failed")
}
