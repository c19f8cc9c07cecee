package engine

import (
	"sync"
	"time"
)

// workers runs the blocking parts of authentication (store reads, PBKDF2) off the event
// loops. The queue is bounded: when it is full the caller answers temporary-auth-failure
// rather than piling up work during a login storm.
type workers struct {
	q    chan func()
	wg   sync.WaitGroup
	once sync.Once
}

func newWorkers(n, depth int) *workers {
	w := &workers{q: make(chan func(), depth)}
	for i := 0; i < n; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for f := range w.q {
				f()
			}
		}()
	}
	return w
}

// submit queues f; it reports false when the queue is full or stopped.
func (w *workers) submit(f func()) (ok bool) {
	defer func() {
		if recover() != nil { // queue closed during shutdown
			ok = false
		}
	}()
	select {
	case w.q <- f:
		return true
	default:
		return false
	}
}

func (w *workers) stop() {
	w.once.Do(func() { close(w.q) })
	w.wg.Wait()
}

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
