package engine

import (
	"sync"
	"unsafe"
)

// connShards is how many locks a listener's connection registry is split over. The
// timeout sweep walks one shard at a time: it holds one lock for a 64th of the
// connections, and the buffer it copies them into, reused every second, is a 64th of
// them too. Copying all of a million connections' pointers each second made 8 MB of
// garbage a second on an idle node and held the one lock that accept and close also
// take for the whole walk.
const connShards = 64

// connSet is a listener's open connections, for the timeout sweep, shutdown and host
// removal. Safe for concurrent use.
type connSet struct {
	shards [connShards]connShard
}

type connShard struct {
	mu   sync.Mutex
	m    map[*conn]struct{} // swept every second
	cold map[*conn]struct{} // quiet: swept every coldEvery-th second (tick.go)
	// Keeps two shards' locks off one cache line: the loops add and remove at once.
	_ [64 - 24]byte
}

// shardOf spreads connections by address (the collector does not move heap objects):
// Fibonacci hashing, the top six bits.
func shardOf(c *conn) int {
	return int(uint64(uintptr(unsafe.Pointer(c))) * 0x9E3779B97F4A7C15 >> (64 - 6))
}

func (s *connSet) add(c *conn) {
	sh := &s.shards[shardOf(c)]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[*conn]struct{})
	}
	sh.m[c] = struct{}{}
	sh.mu.Unlock()
}

func (s *connSet) remove(c *conn) {
	sh := &s.shards[shardOf(c)]
	sh.mu.Lock()
	delete(sh.m, c)
	delete(sh.cold, c)
	sh.mu.Unlock()
}

// chill moves c to its shard's cold set if it is still in the warm one and nothing has
// stirred it since the sweep marked it quiet. The mark and the move happen under the
// shard's lock, so a stir that clears the cold mark always finds c in the cold set.
func (s *connSet) chill(c *conn) {
	sh := &s.shards[shardOf(c)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[c]; !ok {
		return // closed meanwhile
	}
	for {
		old := c.closing.v.Load()
		if old&bQuiet == 0 {
			return // stirred since the sweep looked
		}
		if c.closing.v.CompareAndSwap(old, old&^bQuiet|bCold) {
			break
		}
	}
	delete(sh.m, c)
	if sh.cold == nil {
		sh.cold = make(map[*conn]struct{})
	}
	sh.cold[c] = struct{}{}
}

// warm moves c back to its shard's warm set, if it is in the cold one.
func (s *connSet) warm(c *conn) {
	sh := &s.shards[shardOf(c)]
	sh.mu.Lock()
	if _, ok := sh.cold[c]; ok {
		delete(sh.cold, c)
		sh.m[c] = struct{}{}
	}
	sh.mu.Unlock()
}

// len counts the connections (a moment's view).
func (s *connSet) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m) + len(sh.cold)
		sh.mu.Unlock()
	}
	return n
}

// load appends shard i's warm (or cold) connections to buf[:0] and returns it. The caller
// clears what it got when done, so that the buffer it keeps does not keep closed
// connections alive.
func (s *connSet) load(i int, cold bool, buf []*conn) []*conn {
	sh := &s.shards[i]
	sh.mu.Lock()
	m := sh.m
	if cold {
		m = sh.cold
	}
	buf = buf[:0]
	for c := range m {
		buf = append(buf, c)
	}
	sh.mu.Unlock()
	return buf
}

// snapshot returns every connection in a new slice: for the rare walks (shutdown, a host
// removed) that may run beside the sweep.
func (s *connSet) snapshot() []*conn {
	var out []*conn
	for i := range s.shards {
		out = append(out, s.load(i, false, nil)...)
		out = append(out, s.load(i, true, nil)...)
	}
	return out
}

// empty reports whether the set holds no connection.
func (s *connSet) empty() bool { return s.len() == 0 }
