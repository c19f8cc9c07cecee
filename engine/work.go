package engine

import (
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
