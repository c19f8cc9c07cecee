// Package fast keeps XEP-0484 FAST tokens: it issues them, rotates them, finds the ones a
// login may use and forgets them. A token belongs to one account and one client (the
// XEP-0388 user-agent id) and to the HT mechanism it was issued for; it expires, and a
// password change or account removal ends it.
//
// What is stored is not the token. Each token is HMAC-SHA-256 over a random salt, the
// account and the client id under a server key that lives outside the database (in its own
// file), and the store holds only the salt, expiry, counter and mechanism. A copy of the
// database alone logs nobody in. The password-change rule needs no hook either: every record
// carries a fingerprint of the account's SCRAM keys at issue, and a record whose fingerprint
// no longer matches the account is dead.
//
// The package does no SASL (engine/sasl checks the HMACs) and talks to no connection.
package fast

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vireo-im/vireo/store"
)

// DefaultTTL is how long a token lives when the configuration does not say.
const DefaultTTL = 14 * 24 * time.Hour

// MaxAgentID bounds the client id a token is filed under.
const MaxAgentID = 256

// Tokens issues and checks tokens in one store table.
type Tokens struct {
	t   store.Table
	key []byte
	ttl time.Duration
	// rows serialises the reads and writes of one account and client's record: two
	// logins with one token and count must not both pass the count check, and a login's
	// write must not bring back what an Issue or Invalidate just replaced.
	rows [64]sync.Mutex
	// gate keeps Forget and IssueSince apart: a token issued by a login that began
	// before a Forget must not be written after it (forgot).
	gate   sync.RWMutex
	forgot struct {
		sync.Mutex
		at    map[string]int64 // user → when Forget last ran, Unix nanoseconds
		prune int              // len(at) at which old entries are dropped
	}
}

// ErrForgotten refuses a token to a login that began before the account's tokens were
// forgotten (a password change the fingerprint cannot see).
var ErrForgotten = errors.New("fast: the account's tokens were forgotten during this login")

// forgotKeep is how long Forget is remembered against logins in flight: far longer than
// one takes.
const forgotKeep = 10 * time.Minute

// lock takes the lock of user and agent's record; the caller unlocks what it returns.
func (k *Tokens) lock(user, agent string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(agent))
	mu := &k.rows[h.Sum32()%uint32(len(k.rows))]
	mu.Lock()
	return mu
}

// New returns a token keeper over t. key is the server secret tokens are derived with (at
// least 32 bytes); ttl is a token's lifetime (DefaultTTL when zero).
func New(t store.Table, key []byte, ttl time.Duration) (*Tokens, error) {
	if len(key) < 32 {
		return nil, errors.New("fast: server key shorter than 32 bytes")
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Tokens{t: t, key: key, ttl: ttl}, nil
}

// TTL is a token's lifetime.
func (k *Tokens) TTL() time.Duration { return k.ttl }

// slot is one token: the salt it is derived from and what limits its use.
type slot struct {
	salt   [16]byte
	expiry int64  // unix seconds; 0 means the slot is empty
	count  uint32 // highest XEP-0484 count seen; a login must send more
	mech   string
}

// Record is what the store holds for one account and client: the current token and the
// one it replaced, which stays valid until the client shows it has the new one.
type Record struct {
	fp        [8]byte
	cur, prev slot
}

// Fingerprint identifies an account's credentials: tokens issued under other credentials
// (before a password change) are void.
func Fingerprint(c store.Credentials) [8]byte {
	h := sha256.Sum256(c.StoredKey)
	var fp [8]byte
	copy(fp[:], h[:])
	return fp
}

func rowKey(user, agent string) []byte { return store.UserKey(user, "fast", agent) }

// ErrNoToken is Login's error when user and agent have no token usable with mech: none
// issued, expired, invalidated or issued under other credentials. XEP-0484 calls it
// credentials-expired; the client logs in another way.
var ErrNoToken = errors.New("fast: no usable token")

// ErrCountUsed is Login's error for a count not above the one the token last saw: a
// replayed login.
var ErrCountUsed = errors.New("fast: count used before")

// Login checks a token login by user from client agent with mech: check gets the up to
// two candidate tokens (current, replaced; an empty one is not usable) and returns which
// one the client proved it holds, or an error, which Login returns. count is the
// XEP-0484 count (0 when the client sent none); fp is the account's current Fingerprint.
// On success the use is recorded, and rotate reports that the client should get a new
// token. The record is locked from the read to the write.
func (k *Tokens) Login(user, agent, mech string, fp [8]byte, count uint32, now time.Time,
	check func(cand [2][]byte) (int, error)) (rotate bool, err error) {
	mu := k.lock(user, agent)
	defer mu.Unlock()
	rec, cand, err := k.lookup(user, agent, mech, fp, now)
	if err != nil {
		return false, err
	}
	if cand[0] == nil && cand[1] == nil {
		return false, ErrNoToken
	}
	which, err := check(cand)
	if err != nil {
		return false, err
	}
	if !rec.countOK(which, count) {
		return false, ErrCountUsed
	}
	return k.used(user, agent, rec, which, count, now)
}

// lookup returns the tokens account user may log in with from client agent using mech: up
// to two candidates, in the order used expects (current, replaced); an empty one is not
// usable. fp is the account's current Fingerprint.
func (k *Tokens) lookup(user, agent, mech string, fp [8]byte, now time.Time) (rec Record, cand [2][]byte, err error) {
	v, err := k.t.Get(rowKey(user, agent))
	if errors.Is(err, store.ErrNotFound) {
		return rec, cand, nil
	}
	if err != nil {
		return rec, cand, err
	}
	if err := rec.decode(v); err != nil {
		return Record{}, cand, err
	}
	if !hmac.Equal(rec.fp[:], fp[:]) {
		return rec, cand, nil
	}
	for i, s := range []*slot{&rec.cur, &rec.prev} {
		if s.expiry > now.Unix() && s.mech == mech {
			cand[i] = k.token(user, agent, s.salt)
		}
	}
	return rec, cand, nil
}

// countOK reports whether a login's XEP-0484 count (0 when the client sent none) may use
// candidate which: a counter, once used, must grow, so a captured login cannot be replayed.
func (r *Record) countOK(which int, count uint32) bool {
	s := r.slot(which)
	return count == 0 && s.count == 0 || count > s.count
}

func (r *Record) slot(which int) *slot {
	if which == 0 {
		return &r.cur
	}
	return &r.prev
}

// used records a login with candidate which and its count: using the current token retires
// the replaced one. It reports whether the token is past half its life and should be
// rotated.
func (k *Tokens) used(user, agent string, rec Record, which int, count uint32, now time.Time) (rotate bool, err error) {
	s := rec.slot(which)
	changed := count > s.count
	if changed {
		s.count = count
	}
	switch {
	case which != 0:
		// The client holds the replaced token: the current one never reached it (the
		// answer that carried it was lost). The token it proved it holds becomes current
		// again, so that the rotation that follows keeps it as the replaced one (XEP-0484:
		// a token stays valid until its successor is used).
		rec.cur, rec.prev, changed = rec.prev, slot{}, true
	case rec.prev.expiry != 0:
		rec.prev, changed = slot{}, true
	}
	rotate = which != 0 || time.Unix(s.expiry, 0).Sub(now) < k.ttl/2
	if !changed {
		return rotate, nil // the usual login writes nothing
	}
	return rotate, k.t.Set(rowKey(user, agent), rec.encode())
}

// Issue makes a new current token for user and agent bound to mech; the current one, if
// still valid, becomes the replaced one. The write is durable before it returns: the token
// is about to be acknowledged to the client.
func (k *Tokens) Issue(user, agent, mech string, fp [8]byte, now time.Time) (token string, expiry time.Time, err error) {
	return k.IssueSince(user, agent, mech, fp, now, now)
}

// IssueSince is Issue for a login that began at since: ErrForgotten if Forget ran for
// user since then. The fingerprint cannot tell a password changed by the site's program
// (an account whose keys the server never holds), so a login that passed the program's
// check with the old password just before the change would otherwise get a token that
// outlives it; a client logging in over and over would hit that window.
func (k *Tokens) IssueSince(user, agent, mech string, fp [8]byte, now, since time.Time) (token string, expiry time.Time, err error) {
	if len(agent) == 0 || len(agent) > MaxAgentID {
		return "", time.Time{}, fmt.Errorf("fast: client id of %d bytes", len(agent))
	}
	k.gate.RLock()
	defer k.gate.RUnlock()
	k.forgot.Lock()
	at, ok := k.forgot.at[user]
	k.forgot.Unlock()
	if ok && at >= since.UnixNano() {
		return "", time.Time{}, ErrForgotten
	}
	mu := k.lock(user, agent)
	defer mu.Unlock()
	var rec Record
	if v, err := k.t.Get(rowKey(user, agent)); err == nil {
		if rec.decode(v) != nil || !hmac.Equal(rec.fp[:], fp[:]) {
			rec = Record{}
		}
	} else if errors.Is(err, store.ErrNotFound) {
		if err := k.prune(user, fp, now); err != nil { // a new client id: room for it
			return "", time.Time{}, err
		}
	} else {
		return "", time.Time{}, err
	}
	if rec.cur.expiry > now.Unix() {
		rec.prev = rec.cur
	} else {
		rec.prev = slot{}
	}
	rec.fp = fp
	rec.cur = slot{mech: mech, expiry: now.Add(k.ttl).Unix()}
	if _, err := rand.Read(rec.cur.salt[:]); err != nil {
		return "", time.Time{}, err
	}
	if err := k.t.Set(rowKey(user, agent), rec.encode()); err != nil {
		return "", time.Time{}, err
	}
	return string(k.token(user, agent, rec.cur.salt)), time.Unix(rec.cur.expiry, 0).UTC(), nil
}

// MaxAgents bounds the client ids one account holds tokens for: each login from a new id
// (a reinstalled app, or a client that makes them up) would otherwise leave a row.
const MaxAgents = 32

// prune deletes user's rows that no longer hold a usable token (expired, or issued under
// other credentials than fp) and, if MaxAgents still remain, the one that expires first,
// making room for a new client id. Called only when a new id is issued a token.
func (k *Tokens) prune(user string, fp [8]byte, now time.Time) error {
	type row struct {
		key    []byte
		expiry int64
	}
	var live []row
	var dead [][]byte
	err := k.t.Scan(rowKey(user, ""), func(key, v []byte) bool {
		var rec Record
		if rec.decode(v) != nil || !hmac.Equal(rec.fp[:], fp[:]) || max(rec.cur.expiry, rec.prev.expiry) <= now.Unix() {
			dead = append(dead, append([]byte(nil), key...))
		} else {
			live = append(live, row{append([]byte(nil), key...), max(rec.cur.expiry, rec.prev.expiry)})
		}
		return true
	})
	if err != nil {
		return err
	}
	if len(live) >= MaxAgents {
		first := slices.MinFunc(live, func(a, b row) int { return cmp.Compare(a.expiry, b.expiry) })
		dead = append(dead, first.key)
	}
	for _, key := range dead {
		if err := k.t.Delete(key); err != nil {
			return err
		}
	}
	return nil
}

// Invalidate forgets every token of user for agent (XEP-0484 invalidate='true').
func (k *Tokens) Invalidate(user, agent string) error {
	mu := k.lock(user, agent)
	defer mu.Unlock()
	return k.t.Delete(rowKey(user, agent))
}

// Forget ends every token of user, for a change of password the fingerprint cannot see
// (one kept by an operator's program).
func (k *Tokens) Forget(user string) error {
	k.gate.Lock()
	defer k.gate.Unlock()
	now := time.Now().UnixNano()
	k.forgot.Lock()
	if k.forgot.at == nil {
		k.forgot.at = map[string]int64{}
	}
	if len(k.forgot.at) >= k.forgot.prune {
		for u, t := range k.forgot.at { // amortized: not a scan per Forget
			if now-t > int64(forgotKeep) {
				delete(k.forgot.at, u)
			}
		}
		k.forgot.prune = max(64, 2*len(k.forgot.at))
	}
	k.forgot.at[user] = now
	k.forgot.Unlock()
	return k.t.DeletePrefix(rowKey(user, ""))
}

func (k *Tokens) token(user, agent string, salt [16]byte) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(agent))
	m.Write([]byte{0})
	m.Write(salt[:])
	sum := m.Sum(nil)
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(sum)))
	base64.RawURLEncoding.Encode(out, sum)
	return out
}

// Record encoding: version 1, fingerprint, then two slots of salt, expiry, count, mechanism
// length and name.
const recVersion = 1

func (r *Record) encode() []byte {
	b := make([]byte, 0, 1+8+2*(16+8+4+1+16))
	b = append(b, recVersion)
	b = append(b, r.fp[:]...)
	for _, s := range []*slot{&r.cur, &r.prev} {
		b = append(b, s.salt[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(s.expiry))
		b = binary.BigEndian.AppendUint32(b, s.count)
		b = append(b, byte(len(s.mech)))
		b = append(b, s.mech...)
	}
	return b
}

var errCorrupt = fmt.Errorf("fast: %w: bad token record", store.ErrCorrupt)

func (r *Record) decode(b []byte) error {
	if len(b) < 9 || b[0] != recVersion {
		return errCorrupt
	}
	copy(r.fp[:], b[1:9])
	b = b[9:]
	for _, s := range []*slot{&r.cur, &r.prev} {
		if len(b) < 16+8+4+1 {
			return errCorrupt
		}
		copy(s.salt[:], b[:16])
		s.expiry = int64(binary.BigEndian.Uint64(b[16:24]))
		s.count = binary.BigEndian.Uint32(b[24:28])
		n := int(b[28])
		b = b[29:]
		if len(b) < n {
			return errCorrupt
		}
		s.mech = string(b[:n])
		b = b[n:]
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}

// LoadKey reads the server key from path, creating it (mode 0600, 32 random bytes) on
// first use.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("fast: %s holds %d bytes, want 32", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fast: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("fast: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadKey(path) // another process made it first
		}
		return nil, fmt.Errorf("fast: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, fmt.Errorf("fast: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("fast: %w", err)
	}
	return key, f.Close()
}
