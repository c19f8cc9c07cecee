package router

import (
	"sync"
)

// pool runs blocking or slow work (store lookups for logins, PBKDF2 for PLAIN, in-band
// registration and password changes) off the event loops and shard workers. There is one
// per server so that everything that hashes shares one bound: when the queue is full the
// caller refuses (temporary-auth-failure, resource-constraint) rather than piling up
// goroutines during a storm.
type pool struct {
	q    chan func()
	wg   sync.WaitGroup
	mu   sync.RWMutex
	done bool
}

func newPool(n, depth int) *pool {
	p := &pool{q: make(chan func(), depth)}
	for i := 0; i < n; i++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for f := range p.q {
				f()
			}
		}()
	}
	return p
}

// submit queues f; it reports false when the queue is full or stopped.
func (p *pool) submit(f func()) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.done {
		return false
	}
	select {
	case p.q <- f:
		return true
	default:
		return false
	}
}

func (p *pool) stop() {
	p.mu.Lock()
	if !p.done {
		p.done = true
		close(p.q)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Go runs f on the server's bounded worker pool; false when it is saturated or stopped.
// Safe for concurrent use.
func (r *Router) Go(f func()) bool { return r.work.submit(f) }
