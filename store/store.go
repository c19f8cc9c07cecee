// Package store defines Vireo's storage API: accounts with SCRAM keys, rosters with
// versions, offline message queues, and generic per-module tables; its types and errors.
// Implementations (store/pebblestore today, a shared SQL store for clusters later) pass
// the conformance suite in store/storetest.
//
// Every write that the caller acknowledges to a client is durable when the method returns.
// The package holds no state and does no I/O itself.
package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vireo-im/vireo/hist"
)

// Errors.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrQuota    = errors.New("store: quota exceeded")
	ErrCorrupt  = errors.New("store: corrupt")
	ErrClosed   = errors.New("store: closed")
	ErrChanged  = errors.New("store: changed meanwhile")
	// ErrRemoving is Accounts.Create's error for a name whose removal record is still
	// there (Removals): the cleanup of the old account's rows elsewhere (contacts'
	// rosters, rooms, subscriptions) would reach the new one. It is an ErrExists.
	ErrRemoving = fmt.Errorf("%w: the removal of the account of that name is not finished", ErrExists)
	// ErrFull: the disk has no room for the write; it was not applied. Reads still work,
	// and writes work again once space is freed, without a restart.
	ErrFull = errors.New("store: disk full")
)

// Hash names the hash of a SCRAM credential.
type Hash uint8

// Hashes, usable as indexes into Account.Creds.
const (
	SHA1 Hash = iota
	SHA256
	SHA512
)

func (h Hash) String() string {
	switch h {
	case SHA1:
		return "SHA-1"
	case SHA256:
		return "SHA-256"
	case SHA512:
		return "SHA-512"
	}
	return "unknown"
}

// Credentials are the SCRAM keys for one hash (RFC 5802 §3): never the password.
type Credentials struct {
	Salt      []byte
	Iter      int
	StoredKey []byte
	ServerKey []byte
}

// IsZero reports whether c holds no keys.
func (c Credentials) IsZero() bool { return len(c.StoredKey) == 0 }

// Equal reports whether c and o are the same keys.
func (c Credentials) Equal(o Credentials) bool {
	return c.Iter == o.Iter && bytes.Equal(c.Salt, o.Salt) && bytes.Equal(c.StoredKey, o.StoredKey) && bytes.Equal(c.ServerKey, o.ServerKey)
}

// Account is one user account; User is the bare JID "local@domain".
type Account struct {
	User    string
	Creds   [3]Credentials
	Created time.Time
	// Disabled accounts keep their data but cannot log in (XEP-0133 §4.3); the engine
	// refuses them with <account-disabled/> (RFC 6120 §6.5.1).
	Disabled bool `json:",omitempty"`
	// External accounts were created by the first login an operator's program accepted
	// (engine Config.External); while they hold no keys, their password is the program's.
	External bool `json:",omitempty"`
	// Anonymous accounts were made by a SASL ANONYMOUS login (RFC 4505) and go, with all
	// their data, when that login's session ends; nobody can log in to one again. A store
	// need not sync their creation or removal: a crash ends the session anyway.
	Anonymous bool `json:",omitempty"`
}

// Accounts stores accounts.
type Accounts interface {
	Create(a Account) error
	// CreateWith is Create that applies ops to table in the same atomic write: an
	// invitation is spent with the account it made, or neither happens.
	CreateWith(a Account, table string, ops ...Op) error
	Get(user string) (Account, error)
	SetCredentials(user string, creds [3]Credentials) error
	// AddCredentials gives the account the keys in add for the hashes it has none for,
	// provided its keys are still basis (what a login proved the password of): ErrChanged
	// when they are not, so that a login that ran while the password changed cannot bring
	// the old one back.
	AddCredentials(user string, basis, add [3]Credentials) error
	// SetDisabled sets or clears Account.Disabled; ErrNotFound when there is no account.
	SetDisabled(user string, disabled bool) error
	// Delete removes the account and the user's data in every table.
	Delete(user string) error
	// List calls fn with every account but guests' (Account.Anonymous), in order, until
	// fn returns false; Count is how many it lists. Guests lists the guests'.
	List(fn func(user string) bool) error
	Count() (int, error)
	Guests(fn func(user string) bool) error
}

// Removal is what Accounts.Delete leaves behind of an account, for the modules that keep
// rows about it outside its own keys (another user's roster, a pubsub node's
// subscribers): a store that implements Removals keeps one until RemovalDone, so a crash
// between the removal and their cleanup only delays it.
type Removal struct {
	User  string
	Guest bool // the account was a guest's (Account.Anonymous)
	// Contacts are the stored roster's contacts with a subscription either way or a
	// request pending, as the account left them: who should hear that it is gone.
	Contacts []RemovedContact
}

// RemovedContact is one contact of a Removal. To: the user was subscribed to the contact's
// presence or had asked to be (RFC 6121 unsubscribe undoes it); From: the contact was
// subscribed to the user's, or had asked to be (unsubscribed).
type RemovedContact struct {
	JID      string
	To, From bool
}

// Removals is implemented by stores that record account removals (Removal). A guest's
// removal is recorded only when it has contacts: nothing else keeps rows about a guest.
type Removals interface {
	// PendingRemovals calls fn with each removal not yet done, until fn returns false.
	PendingRemovals(fn func(Removal) bool) error
	// RemovalDone forgets user's removal record.
	RemovalDone(user string) error
	// OnRemoval sets what is called, on the goroutine that called Accounts.Delete, after
	// each recorded removal is committed (nil: nothing).
	OnRemoval(fn func(Removal))
}

// NoKeys says whether an account holds no SCRAM keys at all: one whose password only the
// operator's external authentication program checks (engine Config.External).
func NoKeys(c [3]Credentials) bool {
	for _, k := range c {
		if !k.IsZero() {
			return false
		}
	}
	return true
}

// PartialKeys says whether some hashes' SCRAM keys are missing: an account imported from a
// server that kept one hash (Prosody and ejabberd keep SCRAM-SHA-1) has keys for that hash
// only, until its owner's client provides the rest. Accounts with no keys at all are not
// partial.
func PartialKeys(c [3]Credentials) bool {
	some, all := false, true
	for _, k := range c {
		if k.IsZero() {
			all = false
		} else {
			some = true
		}
	}
	return some && !all
}

// PartialKeyCounter is implemented by stores that keep count of the accounts with
// PartialKeys. The engine asks an account's keys before the stream features (to offer the
// mechanisms it can use) only while the count is not zero.
type PartialKeyCounter interface {
	PartialKeyAccounts() int64
}

// Subscription is an RFC 6121 subscription state.
type Subscription uint8

// Subscription states.
const (
	SubNone Subscription = iota
	SubTo
	SubFrom
	SubBoth
)

func (s Subscription) String() string {
	switch s {
	case SubTo:
		return "to"
	case SubFrom:
		return "from"
	case SubBoth:
		return "both"
	}
	return "none"
}

// ParseSubscription reads an RFC 6121 subscription attribute ("" is none); ok is false
// for anything else (remove included).
func ParseSubscription(s string) (sub Subscription, ok bool) {
	switch s {
	case "", "none":
		return SubNone, true
	case "to":
		return SubTo, true
	case "from":
		return SubFrom, true
	case "both":
		return SubBoth, true
	}
	return SubNone, false
}

// RosterItem is one contact in a roster.
type RosterItem struct {
	JID       string
	Name      string
	Sub       Subscription
	Ask       bool // outbound subscribe pending
	PendingIn bool // inbound subscribe pending
	Approved  bool // pre-approved (RFC 6121 §3.4)
	Groups    []string
	// Shared marks a contact that a shared roster group (RosterWrapper) puts on the
	// roster: it is never stored, and export leaves it out.
	Shared bool `json:"-"`
}

// ErrShared refuses to remove a contact a shared roster group puts on the roster.
var ErrShared = errors.New("store: the contact is in a shared roster group")

// RosterWrapper is implemented by stores that let a layer stand between their rosters
// and their readers (shared roster groups): Rosters() returns wrap(the stored rosters),
// or the stored rosters again after SetRosterWrapper(nil). Safe for concurrent use.
type RosterWrapper interface {
	SetRosterWrapper(wrap func(Rosters) Rosters)
	// StoredRosters are the rosters as stored, without the layer (for export).
	StoredRosters() Rosters
}

// DefaultRosterItems is the default roster size limit: large enough for any person's
// contacts, small enough that subscription floods cannot grow a roster without end.
const DefaultRosterItems = 1000

// Rosters stores rosters with a version per roster (RFC 6121 §2.6).
type Rosters interface {
	Get(user string) (items []RosterItem, ver uint64, err error)
	Item(user, contact string) (RosterItem, error)
	// Put adds or replaces an item. Adding an item to a roster that already holds
	// Limit(user) items fails with ErrQuota, atomically with the count; replacing one
	// always works.
	Put(user string, it RosterItem) (ver uint64, err error)
	Delete(user, contact string) (ver uint64, err error)
	Version(user string) (uint64, error)
	// Limit is the most items user's roster may hold. SetLimits sets n for every user
	// (n <= 0 restores DefaultRosterItems) and, in hosts, a limit of its own for the
	// users of a domain (a virtual host's); it is set from the configuration.
	Limit(user string) int
	SetLimits(n int, hosts map[string]int)
}

// OfflineMessage is a stored message.
type OfflineMessage struct {
	ID    uint64
	Stamp time.Time
	Raw   []byte
}

// Quota bounds one user's data in a store: Items entries and Bytes of payload in all.
// Zero fields are unlimited.
type Quota struct {
	Items int
	Bytes int64
	// NoAccount lets Push store for a user without an account: an import writes a
	// user's data before it makes the account. Otherwise Push fails with ErrNotFound
	// when the account is gone, so that a message still in flight when it was deleted
	// does not wait for the next account of that name.
	NoAccount bool
}

// Offline stores messages for users who are not online.
type Offline interface {
	// Push appends a message unless it would take the user's queue past q (counting the
	// stored messages and the total bytes of their Raw); then it fails with ErrQuota. It
	// fails with ErrNotFound when the user has no account (unless q.NoAccount). The
	// checks and the write are atomic with the account's deletion.
	Push(user string, raw []byte, stamp time.Time, q Quota) (id uint64, err error)
	// Bytes is the total size of the user's stored messages.
	Bytes(user string) (int64, error)
	List(user string, fn func(m OfflineMessage) bool) error
	Count(user string) (int, error)
	Delete(user string, ids ...uint64) error
	DeleteAll(user string) error
}

// Op is one write of Table.Apply: Key set to Val, or Key removed when Delete is set.
type Op struct {
	Key, Val []byte
	Delete   bool
}

// Table is a generic keyspace for modules. Every write is durable when it returns, except
// ApplyLazy's. The slices a scan hands to fn are valid during that call only.
type Table interface {
	Get(key []byte) ([]byte, error)
	Set(key, val []byte) error
	Delete(key []byte) error
	Scan(prefix []byte, fn func(key, val []byte) bool) error
	DeletePrefix(prefix []byte) error
	// Apply makes every op, in order, in one atomic write: a row and its index rows
	// change together, for the cost of one sync.
	Apply(ops ...Op) error
	// ApplyLazy is Apply without waiting for the disk: the write is visible at once,
	// survives the process (it is in the log the moment the kernel has it) and becomes
	// durable against power loss with the next synced write of the store. For records
	// nobody was promised, such as a message archive entry beside a delivery, where a sync
	// per record would put a disk flush in every message's path.
	ApplyLazy(ops ...Op) error
	// ScanRange calls fn for each key in [lo, hi), in ascending order or descending when
	// reverse, until fn returns false. A nil hi means no upper bound.
	ScanRange(lo, hi []byte, reverse bool, fn func(key, val []byte) bool) error
}

// UserKey returns user + 0x00 + sub parts joined by 0x00: per-user keys start with it, so
// Accounts.Delete can remove a user's rows from every table with one prefix.
func UserKey(user string, sub ...string) []byte {
	n := len(user) + 1
	for _, s := range sub {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, user...)
	b = append(b, 0)
	b = append(b, strings.Join(sub, "\x00")...)
	return b
}

// Checkpointer is a Store that can copy itself while it serves: Checkpoint writes a
// consistent snapshot, as of one moment between two acknowledged writes, into dir, which
// must not exist. Writes go on during the copy. The snapshot opens as a store of the same
// implementation.
type Checkpointer interface {
	Checkpoint(dir string) error
}

// LazySyncer is a Store that can make its lazy writes (Table.ApplyLazy) durable: SyncLazy
// returns once every lazy write made before the call is on disk, and costs nothing when
// there was none since the last one. The router calls it before the server answers an
// IQ, so that an answer (a ping, say) never acknowledges stanzas whose archive copies a
// crash could still take: one sync per answer instead of one per archived message.
type LazySyncer interface {
	SyncLazy() error
}

// Store is the whole storage API.
// Metrics are what a store counts of its writes, for monitoring.
type Metrics struct {
	Commit        hist.Snapshot // latency of committed write batches
	OfflineWrites int64         // offline messages stored
	ArchiveWrites int64         // writes to the message archive (XEP-0313 MAM)
	// PartialKeyAccounts are the accounts without some hash's SCRAM keys (PartialKeys):
	// an import's progress towards keys for every mechanism.
	PartialKeyAccounts int64
}

// Metered is implemented by stores that count their writes.
type Metered interface {
	// Metrics returns the counts so far. Safe for concurrent use.
	Metrics() Metrics
}

type Store interface {
	Accounts() Accounts
	Rosters() Rosters
	Offline() Offline
	Table(name string) Table
	Close() error
}
