package pebblestore

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// guestTables remembers, for each guest account made since the store opened, which tables
// it wrote to, so that its removal seeks those alone. A guest logs in, perhaps chats, and
// goes: clearing its prefix in every table cost one memtable seek per table, a third of a
// guest login's CPU under a storm of them (the memtable then holds every guest's rows and
// tombstones). A guest made before the store opened (a crash's leftover) has no entry,
// and its removal seeks every table.
type guestTables struct {
	n  atomic.Int64 // entries in m: writes check m only while there are some
	mu sync.RWMutex
	m  map[string]*atomic.Uint64 // bare JID -> one bit per table (tableBit), the roster's and offline's
}

// The bits of the roster's and the offline messages' keyspaces; tables share the others.
const (
	rosterBit  = 1 << 62
	offlineBit = 1 << 63
)

// add starts tracking user's tables.
func (g *guestTables) add(user string) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*atomic.Uint64{}
	}
	if _, ok := g.m[user]; !ok {
		g.m[user] = new(atomic.Uint64)
		g.n.Add(1)
	}
	g.mu.Unlock()
}

// take ends tracking user and returns its tables' bits, or ok false when user was not
// tracked.
func (g *guestTables) take(user string) (bits uint64, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.m[user]
	if !ok {
		return 0, false
	}
	delete(g.m, user)
	g.n.Add(-1)
	return b.Load(), true
}

// touch notes a write of key, a table's own key (UserKey layout for per-user rows), to
// table id. Free while no guest is tracked; a map lookup otherwise.
func (g *guestTables) touch(id [2]byte, key []byte) {
	if g.n.Load() == 0 {
		return
	}
	i := bytes.IndexByte(key, 0)
	if i <= 0 {
		return
	}
	g.mu.RLock()
	b := g.m[string(key[:i])]
	g.mu.RUnlock()
	if b != nil {
		b.Or(tableBit(id))
	}
}

// touchUser notes a write to user's roster or offline messages (rosterBit, offlineBit).
func (g *guestTables) touchUser(user string, bit uint64) {
	if g.n.Load() == 0 {
		return
	}
	g.mu.RLock()
	b := g.m[user]
	g.mu.RUnlock()
	if b != nil {
		b.Or(bit)
	}
}

// tableBit is table id's bit: ids that share one are both sought, which is merely slower.
func tableBit(id [2]byte) uint64 { return 1 << ((uint(id[0])<<8 | uint(id[1])) % 62) }
