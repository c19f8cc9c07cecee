// Package pebblestore implements the store API on one embedded Pebble database. Every
// write that is acknowledged to a client is committed with pebble.Sync. It owns the key
// layout (keys.go); it must not know about XMPP beyond the store types.
//
// A full disk must not reach Pebble, which takes a failed WAL write as fatal and retries a
// failed flush without pause: writes are refused with store.ErrFull while the free space
// is under a reserve, and a ballast file covers a disk that fills up between two checks
// (space.go).
package pebblestore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/hist"
	"github.com/vireo-im/vireo/store"
)

// Options configure Open.
type Options struct {
	Logger    zerolog.Logger
	CacheSize int64  // block cache bytes; default 64 MiB
	FS        vfs.FS // default the OS file system (tests pass vfs.NewCrashableMem())
	// MinFree is the free space, in bytes, that writes leave on the file system; a
	// write that would go below it fails with store.ErrFull. 0 means DefaultMinFree, or
	// 1/16 of a smaller file system; negative disables the guard and the ballast.
	MinFree int64
}

// Store is a Pebble-backed store.Store.
type Store struct {
	db    *pebble.DB
	log   zerolog.Logger
	cache *pebble.Cache
	seed  maphash.Seed
	locks [64]sync.Mutex // per-user read-modify-write (versions, offline counters)

	rosterLimit atomic.Int64
	// rosterHostLimits are the virtual hosts with a roster limit of their own (nil: none).
	rosterHostLimits atomic.Pointer[map[string]int]
	// rosterWrap stands between the rosters and their readers (SetRosterWrapper).
	rosterWrap atomic.Pointer[func(store.Rosters) store.Rosters]

	space    *space
	broken   atomic.Pointer[error] // set when Pebble panicked in a commit: no more writes
	bgErrors atomic.Int64          // Pebble background errors (failed flushes, compactions)
	// lazyN counts lazy writes; synced is the count the last finished sync covered
	// (SyncLazy): a caller waits for a sync that began after the writes it answers for.
	lazyN, synced atomic.Uint64
	partial       atomic.Int64 // accounts with store.PartialKeys (pPartial rows)

	tmu    sync.Mutex
	tables map[string]*table
	nextT  uint16
	// guests are the tables each guest account made since opening wrote to (guests.go).
	guests guestTables
	// onRemoval is store.Removals' OnRemoval.
	onRemoval atomic.Pointer[func(store.Removal)]

	// For Metrics: commit latency, and the offline and archive (MAM) writes.
	commitLat     hist.H
	offlineWrites atomic.Int64
	archiveWrites atomic.Int64
}

// ArchiveTable is the table whose writes count as archive (XEP-0313 MAM) writes.
const ArchiveTable = "mam"

var _ store.Metered = (*Store)(nil)

// Metrics implements store.Metered. Safe for concurrent use.
func (s *Store) Metrics() store.Metrics {
	m := store.Metrics{OfflineWrites: s.offlineWrites.Load(), ArchiveWrites: s.archiveWrites.Load(),
		PartialKeyAccounts: s.partial.Load()}
	s.commitLat.AddTo(&m.Commit)
	return m
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database in dir. On the OS file system a new dir is
// created 0700 so that no other user can read the keys in it, whatever the umask; an
// existing one keeps its mode (main warns when it is open to others).
func Open(dir string, o Options) (*Store, error) {
	if o.FS == nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 64 << 20
	}
	s := &Store{log: o.Logger, seed: maphash.MakeSeed(), tables: map[string]*table{}}
	fs := o.FS
	if fs == nil {
		fs = vfs.Default
	}
	s.space = newSpace(fs, dir, o.MinFree, o.Logger)
	if s.space.min > 0 {
		s.space.start()
		fs = vfs.OnDiskFull(fs, s.space.release)
	} else {
		fs.Remove(s.space.path()) // a ballast from a run with the guard on
	}
	cache := pebble.NewCache(o.CacheSize)
	opts := &pebble.Options{
		Cache: cache,
		// Archives make the store write-heavy: larger memtables and a larger base level
		// mean fewer flushes and less rewriting of the same bytes by compactions (the
		// defaults, 4 MiB and 64 MiB, suit a read-mostly embedded store).
		MemTableSize:  64 << 20,
		LBaseMaxBytes: 512 << 20,
		Logger:        pebbleLogger{o.Logger, new(sync.Map)},
		EventListener: events(o.Logger, &s.bgErrors),
		FS:            fs,
	}
	// Logins, roster and preference reads are point lookups: a Bloom filter per table
	// (10 bits a key, ~1% false positives) lets a Get skip the tables of every level that
	// cannot hold the key instead of reading their index and data blocks. Tables written
	// before have none and are read as before.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		cache.Unref()
		return nil, err
	}
	s.db, s.cache = db, cache
	s.rosterLimit.Store(store.DefaultRosterItems)
	if err := s.loadTables(); err != nil {
		db.Close()
		cache.Unref()
		return nil, err
	}
	if err := s.loadPartial(); err != nil {
		db.Close()
		cache.Unref()
		return nil, err
	}
	return s, nil
}

// partialIndexed marks a database whose pPartial rows are complete. One written before
// they existed gets them from a scan of its accounts, once.
var partialIndexed = key(pMeta, "partial-keys-indexed")

// loadPartial counts the accounts with partial keys, indexing them first if need be.
func (s *Store) loadPartial() error {
	if _, err := s.get(partialIndexed); errors.Is(err, store.ErrNotFound) {
		b := s.db.NewBatch()
		defer b.Close()
		err := s.scan([]byte{pAccount}, prefixEnd([]byte{pAccount}), func(k, v []byte) bool {
			if acc, err := decodeAccount(v); err == nil && store.PartialKeys(acc.Creds) {
				b.Set(key(pPartial, string(k[1:])), nil, nil)
			}
			return true
		})
		if err != nil {
			return err
		}
		b.Set(partialIndexed, []byte{1}, nil)
		if err := s.commit(b, false); err != nil {
			return fmt.Errorf("pebblestore: index accounts with partial keys: %w", err)
		}
	} else if err != nil {
		return err
	}
	n := int64(0)
	err := s.scan([]byte{pPartial}, prefixEnd([]byte{pPartial}), func(_, _ []byte) bool { n++; return true })
	s.partial.Store(n)
	return err
}

// PartialKeyAccounts implements store.PartialKeyCounter.
func (s *Store) PartialKeyAccounts() int64 { return s.partial.Load() }

// setAccount writes acc (whose previous keys were before, when wasPartial) with its
// pPartial row in the same batch, and keeps the count.
func (a accounts) setAccount(acc store.Account, wasPartial bool) error {
	return a.setAccountWith(acc, wasPartial, nil, nil)
}

// setAccountWith is setAccount that also applies ops to t in the same batch.
func (a accounts) setAccountWith(acc store.Account, wasPartial bool, t *table, ops []store.Op) error {
	b := a.s.db.NewBatch()
	defer b.Close()
	b.Set(key(pAccount, acc.User), encodeAccount(acc), nil)
	for _, op := range ops {
		if op.Delete {
			b.Delete(t.k(op.Key), nil)
		} else {
			t.s.guests.touch(t.id, op.Key)
			b.Set(t.k(op.Key), op.Val, nil)
		}
	}
	if acc.Anonymous {
		b.Set(key(pGuest, acc.User), nil, nil)
	}
	partial := store.PartialKeys(acc.Creds)
	switch {
	case partial && !wasPartial:
		b.Set(key(pPartial, acc.User), nil, nil)
	case !partial && wasPartial:
		b.Delete(key(pPartial, acc.User), nil)
	}
	if err := a.s.commitWith(b, false, accountSync(acc)); err != nil {
		return err
	}
	switch {
	case partial && !wasPartial:
		a.s.partial.Add(1)
	case !partial && wasPartial:
		a.s.partial.Add(-1)
	}
	return nil
}

// Close flushes and closes the database. On a full disk it does not flush (the flush
// could not finish); the WAL holds every acknowledged write.
func (s *Store) Close() error {
	var err error
	if s.broken.Load() == nil && s.space.check(0, false) == nil {
		err = s.db.Flush()
	}
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	s.cache.Unref()
	return err
}

// commit applies b with pebble.Sync if the disk has room for it; shrink marks a batch that
// only removes data, which may use half of the reserve. A full disk fails with
// store.ErrFull and leaves the database as it was.
func (s *Store) commit(b *pebble.Batch, shrink bool) (err error) {
	return s.commitWith(b, shrink, pebble.Sync)
}

func (s *Store) commitWith(b *pebble.Batch, shrink bool, opts *pebble.WriteOptions) (err error) {
	if p := s.broken.Load(); p != nil {
		return *p
	}
	if err := s.space.check(int64(b.Len()), shrink); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			// Pebble panics when it cannot write its WAL, and leaves its commit
			// pipeline wedged: a later commit would block for good. Fail writes fast
			// until a restart instead; reads keep working.
			e := fmt.Errorf("pebblestore: database cannot write, restart needed: %v", r)
			s.broken.CompareAndSwap(nil, &e)
			err = e
			s.log.Error().Err(err).Msg("store: refusing all writes")
		}
	}()
	start := time.Now()
	err = b.Commit(opts)
	s.commitLat.Observe(time.Since(start))
	if err != nil && isENOSPC(err) {
		err = fmt.Errorf("%w: %w", store.ErrFull, err)
	}
	return err
}

// set commits one key.
func (s *Store) set(k, v []byte) error {
	b := s.db.NewBatch()
	defer b.Close()
	b.Set(k, v, nil)
	return s.commit(b, false)
}

// DB exposes the database for tests and tools.
func (s *Store) DB() *pebble.DB { return s.db }

func (s *Store) lock(user string) *sync.Mutex {
	return &s.locks[maphash.String(s.seed, user)%uint64(len(s.locks))]
}

func (s *Store) get(k []byte) ([]byte, error) {
	v, c, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	c.Close()
	return out, nil
}

func (s *Store) scan(lower, upper []byte, fn func(k, v []byte) bool) error {
	return s.scanDir(lower, upper, false, fn)
}

// scanDir is scan from the upper end down when reverse is set.
func (s *Store) scanDir(lower, upper []byte, reverse bool, fn func(k, v []byte) bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	first, next := it.First, it.Next
	if reverse {
		first, next = it.Last, it.Prev
	}
	for ok := first(); ok; ok = next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if !fn(it.Key(), v) {
			break
		}
	}
	return it.Close()
}

// Accounts implements store.Store.
func (s *Store) Accounts() store.Accounts { return accounts{s} }

// Rosters implements store.Store.
func (s *Store) Rosters() store.Rosters {
	if w := s.rosterWrap.Load(); w != nil {
		return (*w)(rosters{s})
	}
	return rosters{s}
}

var _ store.RosterWrapper = (*Store)(nil)

// StoredRosters implements store.RosterWrapper.
func (s *Store) StoredRosters() store.Rosters { return rosters{s} }

// SetRosterWrapper implements store.RosterWrapper.
func (s *Store) SetRosterWrapper(wrap func(store.Rosters) store.Rosters) {
	if wrap == nil {
		s.rosterWrap.Store(nil)
		return
	}
	s.rosterWrap.Store(&wrap)
}

// Offline implements store.Store.
func (s *Store) Offline() store.Offline { return offline{s} }

// --- accounts ---

type accounts struct{ s *Store }

func (a accounts) Create(acc store.Account) error { return a.CreateWith(acc, "") }

func (a accounts) CreateWith(acc store.Account, tname string, ops ...store.Op) error {
	var t *table
	if len(ops) > 0 {
		t = a.s.Table(tname).(*table)
	}
	if acc.User == "" {
		return errors.New("pebblestore: empty user")
	}
	mu := a.s.lock(acc.User)
	mu.Lock()
	defer mu.Unlock()
	k := key(pAccount, acc.User)
	if _, err := a.s.get(k); err == nil {
		return store.ErrExists
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if _, err := a.s.get(key(pRemoved, acc.User)); err == nil {
		return store.ErrRemoving
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if acc.Anonymous {
		a.s.guests.add(acc.User)
	}
	err := a.setAccountWith(acc, false, t, ops)
	if err != nil && acc.Anonymous {
		a.s.guests.take(acc.User)
	}
	return err
}

func (a accounts) Get(user string) (store.Account, error) {
	v, err := a.s.get(key(pAccount, user))
	if err != nil {
		return store.Account{}, err
	}
	acc, err := decodeAccount(v)
	if err != nil {
		return store.Account{}, fmt.Errorf("%w: account %s: %v", store.ErrCorrupt, user, err)
	}
	return acc, nil
}

func (a accounts) SetCredentials(user string, creds [3]store.Credentials) error {
	return a.setCreds(user, func(cur *[3]store.Credentials) error {
		*cur = creds
		return nil
	})
}

func (a accounts) AddCredentials(user string, basis, add [3]store.Credentials) error {
	return a.setCreds(user, func(cur *[3]store.Credentials) error {
		for h := range cur {
			if !cur[h].Equal(basis[h]) {
				return store.ErrChanged
			}
		}
		for h := range cur {
			if cur[h].IsZero() {
				cur[h] = add[h]
			}
		}
		return nil
	})
}

// setCreds changes user's credentials with change, under the account's lock.
func (a accounts) setCreds(user string, change func(cur *[3]store.Credentials) error) error {
	mu := a.s.lock(user)
	mu.Lock()
	defer mu.Unlock()
	acc, err := a.Get(user)
	if err != nil {
		return err
	}
	was := store.PartialKeys(acc.Creds)
	if err := change(&acc.Creds); err != nil {
		return err
	}
	return a.setAccount(acc, was)
}

func (a accounts) SetDisabled(user string, disabled bool) error {
	mu := a.s.lock(user)
	mu.Lock()
	defer mu.Unlock()
	acc, err := a.Get(user)
	if err != nil {
		return err
	}
	if acc.Disabled == disabled {
		return nil
	}
	acc.Disabled = disabled
	return a.s.set(key(pAccount, user), encodeAccount(acc))
}

func (a accounts) Delete(user string) error {
	mu := a.s.lock(user)
	mu.Lock()
	defer mu.Unlock()
	acc, err := a.Get(user)
	if err != nil {
		return err
	}
	b := a.s.db.NewBatch()
	defer b.Close()
	b.Delete(key(pAccount, user), nil)
	if acc.Anonymous {
		b.Delete(key(pGuest, user), nil)
	}
	partial := store.PartialKeys(acc.Creds)
	if partial {
		b.Delete(key(pPartial, user), nil)
	}
	b.Delete(key(pRosterVer, user), nil)
	b.Delete(key(pOffMeta, user), nil)
	// A guest made since the store opened has its tables, roster and offline messages
	// on record (guests.go): only those are sought.
	bits, tracked := a.s.guests.take(user)
	rm, record, err := a.s.removal(acc, tracked && bits&rosterBit == 0)
	if err != nil {
		return err
	}
	if record {
		b.Set(key(pRemoved, user), encodeRemoval(rm), nil)
	}
	a.s.tmu.Lock()
	ranges := make([][2][]byte, 0, 2+len(a.s.tables))
	for _, p := range []struct {
		prefix byte
		bit    uint64
	}{{pRoster, rosterBit}, {pOffline, offlineBit}} {
		if tracked && bits&p.bit == 0 {
			continue
		}
		lo, hi := userRange(p.prefix, user)
		ranges = append(ranges, [2][]byte{lo, hi})
	}
	for _, t := range a.s.tables {
		if tracked && bits&tableBit(t.id) == 0 {
			continue
		}
		lo := t.k(store.UserKey(user))
		ranges = append(ranges, [2][]byte{lo, prefixEnd(lo)})
	}
	a.s.tmu.Unlock()
	slices.SortFunc(ranges, func(x, y [2][]byte) int { return bytes.Compare(x[0], y[0]) })
	if err := a.s.clearRanges(b, ranges); err != nil {
		return err
	}
	if err := a.s.commitWith(b, true, accountSync(acc)); err != nil {
		return err
	}
	if partial {
		a.s.partial.Add(-1)
	}
	if fn := a.s.onRemoval.Load(); record && fn != nil {
		(*fn)(rm)
	}
	return nil
}

// accountSync is how an account's writes reach the disk: a guest's account
// (store.Account.Anonymous) is promised to nobody and dies with its session, which a crash
// ends anyway, so its creation and removal do not wait for a sync; every other account's
// do.
func accountSync(acc store.Account) *pebble.WriteOptions {
	if acc.Anonymous {
		return pebble.NoSync
	}
	return pebble.Sync
}

// List walks the accounts and the guests' index side by side (both in user order) and
// leaves out the accounts the index names: one pass, however many accounts there are.
func (a accounts) List(fn func(user string) bool) error {
	glo := []byte{pGuest}
	g, err := a.s.db.NewIter(&pebble.IterOptions{LowerBound: glo, UpperBound: prefixEnd(glo)})
	if err != nil {
		return err
	}
	more := g.First()
	lo := []byte{pAccount}
	err = a.s.scan(lo, prefixEnd(lo), func(k, _ []byte) bool {
		user := k[1:]
		for more && bytes.Compare(g.Key()[1:], user) < 0 {
			more = g.Next()
		}
		if more && bytes.Equal(g.Key()[1:], user) {
			return true // a guest
		}
		return fn(string(user))
	})
	if cerr := g.Close(); err == nil {
		err = cerr
	}
	return err
}

func (a accounts) Guests(fn func(user string) bool) error {
	lo := []byte{pGuest}
	return a.s.scan(lo, prefixEnd(lo), func(k, _ []byte) bool { return fn(string(k[1:])) })
}

func (a accounts) Count() (int, error) {
	n := 0
	err := a.List(func(string) bool { n++; return true })
	return n, err
}

// --- rosters ---

type rosters struct{ s *Store }

func (r rosters) Get(user string) ([]store.RosterItem, uint64, error) {
	ver, err := r.Version(user)
	if err != nil {
		return nil, 0, err
	}
	var items []store.RosterItem
	lo, hi := userRange(pRoster, user)
	var derr error
	err = r.s.scan(lo, hi, func(_, v []byte) bool {
		var it store.RosterItem
		if derr = json.Unmarshal(v, &it); derr != nil {
			return false
		}
		items = append(items, it)
		return true
	})
	if err == nil && derr != nil {
		err = fmt.Errorf("%w: roster of %s: %v", store.ErrCorrupt, user, derr)
	}
	return items, ver, err
}

func (r rosters) Item(user, contact string) (store.RosterItem, error) {
	v, err := r.s.get(key(pRoster, user, contact))
	if err != nil {
		return store.RosterItem{}, err
	}
	var it store.RosterItem
	if err := json.Unmarshal(v, &it); err != nil {
		return it, fmt.Errorf("%w: roster item: %v", store.ErrCorrupt, err)
	}
	return it, nil
}

func (r rosters) Version(user string) (uint64, error) {
	v, err := r.s.get(key(pRosterVer, user))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: roster version of %s", store.ErrCorrupt, user)
	}
	return binary.BigEndian.Uint64(v), nil
}

func (r rosters) Limit(user string) int {
	if hosts := r.s.rosterHostLimits.Load(); hosts != nil {
		if i := strings.IndexByte(user, '@'); i >= 0 {
			if n, ok := (*hosts)[user[i+1:]]; ok {
				return n
			}
		}
	}
	return int(r.s.rosterLimit.Load())
}

func (r rosters) SetLimits(n int, hosts map[string]int) {
	if n <= 0 {
		n = store.DefaultRosterItems
	}
	var own *map[string]int
	if len(hosts) > 0 {
		m := make(map[string]int, len(hosts))
		for h, l := range hosts {
			if l <= 0 {
				l = store.DefaultRosterItems
			}
			m[h] = l
		}
		own = &m
	}
	r.s.rosterHostLimits.Store(own)
	r.s.rosterLimit.Store(int64(n))
}

// write applies f under the user's lock and bumps the roster version; f may refuse.
func (r rosters) write(user string, shrink bool, f func(b *pebble.Batch) error) (uint64, error) {
	r.s.guests.touchUser(user, rosterBit)
	mu := r.s.lock(user)
	mu.Lock()
	defer mu.Unlock()
	ver, err := r.Version(user)
	if err != nil {
		return 0, err
	}
	if ver == 0 {
		// A roster's first version is the time, in microseconds: one a deleted account of
		// the same name reached stays below it, so a client's cached version of that
		// roster never matches this one (RFC 6121 §2.6: a version names the contents).
		ver = uint64(time.Now().UnixMicro())
	}
	ver++
	b := r.s.db.NewBatch()
	defer b.Close()
	if err := f(b); err != nil {
		return 0, err
	}
	b.Set(key(pRosterVer, user), binary.BigEndian.AppendUint64(nil, ver), nil)
	if err := r.s.commit(b, shrink); err != nil {
		return 0, err
	}
	return ver, nil
}

func (r rosters) Put(user string, it store.RosterItem) (uint64, error) {
	if it.JID == "" {
		return 0, errors.New("pebblestore: roster item without jid")
	}
	v, err := json.Marshal(it)
	if err != nil {
		return 0, err
	}
	k := key(pRoster, user, it.JID)
	return r.write(user, false, func(b *pebble.Batch) error {
		if _, err := r.s.get(k); err == nil {
			b.Set(k, v, nil) // a replacement never grows the roster
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// A new item: count under the lock, so that concurrent Puts cannot pass the
		// limit together. Rosters are small and new items rare; no counter to keep.
		limit, n := r.Limit(user), 0
		lo, hi := userRange(pRoster, user)
		if err := r.s.scan(lo, hi, func(_, _ []byte) bool { n++; return n < limit }); err != nil {
			return err
		}
		if n >= limit {
			return store.ErrQuota
		}
		b.Set(k, v, nil)
		return nil
	})
}

func (r rosters) Delete(user, contact string) (uint64, error) {
	if _, err := r.Item(user, contact); err != nil {
		return 0, err
	}
	return r.write(user, true, func(b *pebble.Batch) error {
		b.Delete(key(pRoster, user, contact), nil)
		return nil
	})
}

// --- offline ---

type offline struct{ s *Store }

// offMeta is a user's offline queue summary: the next message id, the number of stored
// messages and the sum of their sizes (Raw, without the stamp).
type offMeta struct{ next, count, bytes uint64 }

// meta reads the summary. Databases written before the byte quota keep 16 bytes (no
// size); the size is then summed from the messages once and stored at the next write.
func (o offline) meta(user string) (offMeta, error) {
	v, err := o.s.get(key(pOffMeta, user))
	if errors.Is(err, store.ErrNotFound) {
		return offMeta{next: 1}, nil
	}
	if err != nil {
		return offMeta{}, err
	}
	if len(v) != 16 && len(v) != 24 {
		return offMeta{}, fmt.Errorf("%w: offline meta of %s", store.ErrCorrupt, user)
	}
	m := offMeta{next: binary.BigEndian.Uint64(v), count: binary.BigEndian.Uint64(v[8:])}
	if len(v) == 24 {
		m.bytes = binary.BigEndian.Uint64(v[16:])
		return m, nil
	}
	lo, hi := userRange(pOffline, user)
	err = o.s.scan(lo, hi, func(_, v []byte) bool {
		if len(v) >= 8 {
			m.bytes += uint64(len(v) - 8)
		}
		return true
	})
	return m, err
}

func (m offMeta) val() []byte {
	b := make([]byte, 0, 24)
	b = binary.BigEndian.AppendUint64(b, m.next)
	b = binary.BigEndian.AppendUint64(b, m.count)
	return binary.BigEndian.AppendUint64(b, m.bytes)
}

func msgKey(user string, id uint64) []byte {
	k := append(key(pOffline, user), 0)
	return binary.BigEndian.AppendUint64(k, id)
}

func (o offline) Push(user string, raw []byte, stamp time.Time, q store.Quota) (uint64, error) {
	o.s.guests.touchUser(user, offlineBit)
	mu := o.s.lock(user)
	mu.Lock()
	defer mu.Unlock()
	if !q.NoAccount {
		// Under the lock Delete takes: a message that was in flight when the account
		// went (a session's unacknowledged stanzas, handed back at its end) is not
		// kept for whoever registers the name next.
		if _, err := o.s.get(key(pAccount, user)); err != nil {
			return 0, err
		}
	}
	m, err := o.meta(user)
	if err != nil {
		return 0, err
	}
	if q.Items > 0 && m.count >= uint64(q.Items) {
		return 0, store.ErrQuota
	}
	if q.Bytes > 0 && m.bytes+uint64(len(raw)) > uint64(q.Bytes) {
		return 0, store.ErrQuota
	}
	next := m.next
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(raw)), uint64(stamp.UnixNano()))
	v = append(v, raw...)
	b := o.s.db.NewBatch()
	defer b.Close()
	b.Set(msgKey(user, next), v, nil)
	b.Set(key(pOffMeta, user), offMeta{next + 1, m.count + 1, m.bytes + uint64(len(raw))}.val(), nil)
	if err := o.s.commit(b, false); err != nil {
		return 0, err
	}
	o.s.offlineWrites.Add(1)
	return next, nil
}

func (o offline) List(user string, fn func(m store.OfflineMessage) bool) error {
	lo, hi := userRange(pOffline, user)
	return o.s.scan(lo, hi, func(k, v []byte) bool {
		if len(k) < 8 || len(v) < 8 {
			return true
		}
		id := binary.BigEndian.Uint64(k[len(k)-8:])
		st := time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
		return fn(store.OfflineMessage{ID: id, Stamp: st, Raw: v[8:]})
	})
}

func (o offline) Count(user string) (int, error) {
	m, err := o.meta(user)
	return int(m.count), err
}

func (o offline) Bytes(user string) (int64, error) {
	m, err := o.meta(user)
	return int64(m.bytes), err
}

func (o offline) Delete(user string, ids ...uint64) error {
	mu := o.s.lock(user)
	mu.Lock()
	defer mu.Unlock()
	m, err := o.meta(user)
	if err != nil {
		return err
	}
	b := o.s.db.NewBatch()
	defer b.Close()
	for _, id := range ids {
		k := msgKey(user, id)
		if v, err := o.s.get(k); err == nil {
			b.Delete(k, nil)
			if m.count > 0 {
				m.count--
			}
			if n := uint64(max(len(v)-8, 0)); m.bytes >= n {
				m.bytes -= n
			} else {
				m.bytes = 0
			}
		}
	}
	b.Set(key(pOffMeta, user), m.val(), nil)
	return o.s.commit(b, true)
}

func (o offline) DeleteAll(user string) error {
	mu := o.s.lock(user)
	mu.Lock()
	defer mu.Unlock()
	m, err := o.meta(user)
	if err != nil {
		return err
	}
	lo, hi := userRange(pOffline, user)
	b := o.s.db.NewBatch()
	defer b.Close()
	if err := o.s.clearRange(b, lo, hi); err != nil {
		return err
	}
	b.Set(key(pOffMeta, user), offMeta{next: m.next}.val(), nil)
	return o.s.commit(b, true)
}

// --- generic tables ---

type table struct {
	s    *Store
	id   [2]byte
	name string
	reg  atomic.Bool // the name -> id row is stored
}

func (t *table) k(k []byte) []byte {
	b := make([]byte, 0, 3+len(k))
	b = append(b, pTable, t.id[0], t.id[1])
	return append(b, k...)
}

func (s *Store) loadTables() error {
	lo := []byte{pTableName}
	return s.scan(lo, prefixEnd(lo), func(k, v []byte) bool {
		if len(v) == 2 {
			t := &table{s: s, id: [2]byte{v[0], v[1]}, name: string(k[1:])}
			t.reg.Store(true)
			s.tables[string(k[1:])] = t
			if id := binary.BigEndian.Uint16(v); id >= s.nextT {
				s.nextT = id + 1
			}
		}
		return true
	})
}

// Table returns the keyspace name, creating it on first use.
func (s *Store) Table(name string) store.Table {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if t, ok := s.tables[name]; ok {
		return t
	}
	if s.nextT == 0 {
		s.nextT = 1
	}
	t := &table{s: s, name: name}
	binary.BigEndian.PutUint16(t.id[:], s.nextT)
	// Without room on the disk the name is stored with the table's first write, so
	// that the id is never used without being on record.
	if err := t.write(func(*pebble.Batch) {}, false); err != nil {
		s.log.Error().Err(err).Str("table", name).Msg("register table")
	}
	s.nextT++
	s.tables[name] = t
	return t
}

func (t *table) Get(k []byte) ([]byte, error) { return t.s.get(t.k(k)) }
func (t *table) Set(k, v []byte) error {
	t.s.guests.touch(t.id, k)
	return t.write(func(b *pebble.Batch) { b.Set(t.k(k), v, nil) }, false)
}

func (t *table) Delete(k []byte) error {
	return t.write(func(b *pebble.Batch) { b.Delete(t.k(k), nil) }, true)
}

// write commits what f adds to a batch, with the table's name row if it is not stored yet.
func (t *table) write(f func(b *pebble.Batch), shrink bool) error {
	return t.writeWith(func(b *pebble.Batch) error { f(b); return nil }, shrink, pebble.Sync)
}

// writeWith commits what f adds to a batch, unless f fails: then nothing of it.
func (t *table) writeWith(f func(b *pebble.Batch) error, shrink bool, opts *pebble.WriteOptions) error {
	b := t.s.db.NewBatch()
	defer b.Close()
	reg := t.reg.Load()
	if !reg {
		b.Set(key(pTableName, t.name), t.id[:], nil)
		shrink = false
	}
	if err := f(b); err != nil {
		return err
	}
	if err := t.s.commitWith(b, shrink, opts); err != nil {
		return err
	}
	if !reg {
		t.reg.Store(true)
	}
	if t.name == ArchiveTable {
		t.s.archiveWrites.Add(1)
	}
	return nil
}

func (t *table) Scan(prefix []byte, fn func(k, v []byte) bool) error {
	lo := t.k(prefix)
	return t.s.scan(lo, prefixEnd(lo), func(k, v []byte) bool { return fn(k[3:], v) })
}

func (t *table) DeletePrefix(prefix []byte) error {
	lo := t.k(prefix)
	// All or nothing: a scan that fails part way commits none of the deletes it added.
	return t.writeWith(func(b *pebble.Batch) error { return t.s.clearRange(b, lo, prefixEnd(lo)) }, true, pebble.Sync)
}

// maxPointDeletes is how many keys clearRange deletes one by one before it writes a range
// deletion instead.
const maxPointDeletes = 1024

// clearRange adds to b the deletion of every key in [lo, hi). A few keys, the usual case
// (a guest's account, a user's offline messages, a small node), get a point deletion each:
// a range deletion in the memtable makes every read fragment all of the memtable's range
// deletions again until it is flushed, so a range deletion per guest login slowed every
// read of the server (BenchmarkLogin/guest: 5.7 ms and 4 MB a login). Beyond
// maxPointDeletes keys one range deletion is cheaper.
func (s *Store) clearRange(b *pebble.Batch, lo, hi []byte) error {
	return s.clearRanges(b, [][2][]byte{{lo, hi}})
}

// clearRanges is clearRange for several ranges, in ascending order, with one iterator
// moved from range to range (SetBounds): an account's removal clears a range per table,
// and making an iterator costs more than moving one.
func (s *Store) clearRanges(b *pebble.Batch, ranges [][2][]byte) error {
	if len(ranges) == 0 {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: ranges[0][0], UpperBound: ranges[0][1]})
	if err != nil {
		return err
	}
	var keys [][]byte
	for i, r := range ranges {
		if i > 0 {
			it.SetBounds(r[0], r[1])
		}
		keys = keys[:0]
		many := false
		for ok := it.First(); ok; ok = it.Next() {
			if len(keys) == maxPointDeletes {
				many = true
				break
			}
			keys = append(keys, append([]byte(nil), it.Key()...))
		}
		if err := it.Error(); err != nil {
			it.Close()
			return err
		}
		if many {
			err = b.DeleteRange(r[0], r[1], nil)
		} else {
			for _, k := range keys {
				if err = b.Delete(k, nil); err != nil {
					break
				}
			}
		}
		if err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// Apply commits ops in one synced batch; a batch of deletes only may use half of the
// disk reserve, like Delete.
func (t *table) Apply(ops ...store.Op) error { return t.apply(ops, pebble.Sync) }

// ApplyLazy commits ops without a sync (store.Table).
func (t *table) ApplyLazy(ops ...store.Op) error {
	err := t.apply(ops, pebble.NoSync)
	if err == nil {
		t.s.lazyN.Add(1)
	}
	return err
}

// SyncLazy implements store.LazySyncer: a synced empty log record flushes the log, and with
// it every write before it. Pebble commits concurrent syncs together. It returns once a
// sync that began after every lazy write so far has finished: not while another caller's
// sync, begun before some of them, is still running.
func (s *Store) SyncLazy() error {
	target := s.lazyN.Load()
	if s.synced.Load() >= target {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	b.LogData(nil, nil)
	if err := s.commit(b, true); err != nil { // a sync that adds nothing: the reserve may serve
		return err
	}
	for {
		cur := s.synced.Load()
		if cur >= target || s.synced.CompareAndSwap(cur, target) {
			return nil
		}
	}
}

func (t *table) apply(ops []store.Op, opts *pebble.WriteOptions) error {
	if len(ops) == 0 {
		return nil
	}
	shrink := true
	for _, op := range ops {
		shrink = shrink && op.Delete
		if !op.Delete {
			t.s.guests.touch(t.id, op.Key)
		}
	}
	return t.writeWith(func(b *pebble.Batch) error {
		for _, op := range ops {
			if op.Delete {
				b.Delete(t.k(op.Key), nil)
			} else {
				b.Set(t.k(op.Key), op.Val, nil)
			}
		}
		return nil
	}, shrink, opts)
}

func (t *table) ScanRange(lo, hi []byte, reverse bool, fn func(k, v []byte) bool) error {
	if hi != nil && bytes.Compare(lo, hi) >= 0 {
		return nil
	}
	l := t.k(lo)
	var h []byte
	if hi == nil {
		h = prefixEnd(l[:3])
	} else {
		h = t.k(hi)
	}
	return t.s.scanDir(l, h, reverse, func(k, v []byte) bool { return fn(k[3:], v) })
}
