package engine

import (
	"net/netip"
	"sync"
	"time"
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
	defer t.mu.Unlock()
	w := t.m[key]
	if w == nil || now.Sub(w.start) > time.Minute {
		if len(t.m) > 100_000 {
			t.gcLocked(now)
		}
		w = &window{start: now}
		t.m[key] = w
	}
	w.n++
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
	w := t.m[key]
	if w == nil || now.Sub(w.start) > time.Minute {
		if len(t.m) > 100_000 {
			t.gcLocked(now)
		}
		w = &window{start: now}
		t.m[key] = w
	}
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

// addrKey is the throttling key of a client address: IPv6 clients usually hold a whole
// /64, so they are counted by it.
func addrKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// accountGuard slows password guessing against one account without locking its owner out.
// Failures against the account make every further attempt from an address the account has
// not logged in from before wait for a slot; slots are spaced by a step that grows with the
// failures (up to maxStep), and each client address has its own lane, so a guesser on other
// addresses never makes the owner wait. Addresses the account logged in from recently skip
// the wait altogether.
type accountGuard struct {
	mu sync.Mutex
	m  map[string]*acctState
}

type acctState struct {
	start time.Time // failure window
	fails int
	lanes map[string]time.Time // address key -> next free slot
	known []string             // recent successful address keys, newest last
}

const (
	acctFreeFails = 10 // failures per minute before any wait
	baseStep      = 100 * time.Millisecond
	maxStep       = 5 * time.Second
	maxWait       = 30 * time.Second // beyond this the attempt is refused outright
	knownAddrs    = 8
)

func newAccountGuard() *accountGuard { return &accountGuard{m: map[string]*acctState{}} }

func (g *accountGuard) state(acct string, now time.Time) *acctState {
	s := g.m[acct]
	if s == nil {
		if len(g.m) > 100_000 {
			for k, x := range g.m {
				if now.Sub(x.start) > time.Minute && len(x.known) == 0 {
					delete(g.m, k)
				}
			}
		}
		s = &acctState{start: now}
		g.m[acct] = s
	}
	if now.Sub(s.start) > time.Minute {
		s.start, s.fails, s.lanes = now, 0, nil
	}
	return s
}

// reserve returns how long an attempt on acct from addr must wait before its result is
// given, or ok=false when the wait would be too long (temporary-auth-failure).
func (g *accountGuard) reserve(acct, addr string, now time.Time) (wait time.Duration, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.state(acct, now)
	for _, k := range s.known {
		if k == addr {
			return 0, true
		}
	}
	if s.fails < acctFreeFails {
		return 0, true
	}
	step := baseStep << min((s.fails-acctFreeFails)/5, 10)
	step = min(step, maxStep)
	if s.lanes == nil {
		s.lanes = map[string]time.Time{}
	}
	slot := s.lanes[addr]
	if slot.Before(now) {
		slot = now
	}
	if slot.Sub(now) > maxWait {
		return 0, false
	}
	s.lanes[addr] = slot.Add(step)
	return slot.Sub(now), true
}

func (g *accountGuard) failed(acct string, now time.Time) {
	g.mu.Lock()
	g.state(acct, now).fails++
	g.mu.Unlock()
}

func (g *accountGuard) succeeded(acct, addr string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.state(acct, now)
	for i, k := range s.known {
		if k == addr {
			s.known = append(s.known[:i], s.known[i+1:]...)
			break
		}
	}
	s.known = append(s.known, addr)
	if len(s.known) > knownAddrs {
		s.known = s.known[1:]
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
