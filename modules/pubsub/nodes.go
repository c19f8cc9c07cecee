package pubsub

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Nodes stores the nodes of pubsub services in one table. owner names the service: a
// user's bare JID for PEP (table "pep", keys under store.UserKey(owner), so that deleting
// an account deletes its nodes) or a service domain (table "pubsub"):
//
//	owner \0 n \0 \0 node              -> NodeConfig (JSON)
//	owner \0 i \0 node \0 seq(8, BE)   -> item id \0 payload
//	owner \0 x \0 node \0 item id      -> seq(8, BE)
//	owner \0 s \0 node \0 jid          -> "" (subscribed) or "pending"
//	owner \0 a \0 node \0 bare jid     -> affiliation (services only; PEP has its owner)
//	owner \0 c \0 bare jid \0 node     -> "" (the nodes a JID owns, for max_nodes)
//
// seq orders a node's items by publication; the newest has the highest. The methods do
// no locking: each service runs all requests for one owner on one shard.
type Nodes struct{ T store.Table }

func nodeKey(owner, node string) []byte { return store.UserKey(owner, "n", "", node) }
func nodesPrefix(owner string) []byte   { return store.UserKey(owner, "n", "", "") }
func itemsPrefix(owner, node string) []byte {
	return store.UserKey(owner, "i", node, "")
}
func idxPrefix(owner, node string) []byte { return store.UserKey(owner, "x", node, "") }
func subsPrefix(owner, node string) []byte {
	return store.UserKey(owner, "s", node, "")
}
func affPrefix(owner, node string) []byte { return store.UserKey(owner, "a", node, "") }
func createdKey(owner, j, node string) []byte {
	return store.UserKey(owner, "c", j, node)
}

func seqKey(prefix []byte, seq uint64) []byte {
	k := make([]byte, len(prefix), len(prefix)+8)
	copy(k, prefix)
	return binary.BigEndian.AppendUint64(k, seq)
}

// Item is one stored item.
type Item struct {
	ID      string
	Payload []byte
	seq     uint64
	size    int // of the payload (decodeItemKey reads only that)
}

func decodeItem(k, v []byte) (Item, bool) {
	it, ok := decodeItemKey(k, v)
	if ok {
		it.Payload = append([]byte(nil), v[len(v)-it.size:]...)
	}
	return it, ok
}

// decodeItemKey is decodeItem without the payload: its size instead.
func decodeItemKey(k, v []byte) (Item, bool) {
	i := bytes.IndexByte(v, 0)
	if i < 0 || len(k) < 8 {
		return Item{}, false
	}
	return Item{ID: string(v[:i]), seq: binary.BigEndian.Uint64(k[len(k)-8:]), size: len(v) - i - 1}, true
}

// Config returns a node's configuration; ok is false when the node does not exist.
func (n Nodes) Config(owner, node string) (NodeConfig, bool, error) {
	v, err := n.T.Get(nodeKey(owner, node))
	if errors.Is(err, store.ErrNotFound) {
		return NodeConfig{}, false, nil
	}
	if err != nil {
		return NodeConfig{}, false, err
	}
	var c NodeConfig
	if err := json.Unmarshal(v, &c); err != nil {
		return NodeConfig{}, false, store.ErrCorrupt
	}
	return c, true, nil
}

// ConfigOp is the write that stores a node's configuration.
func ConfigOp(owner, node string, c NodeConfig) store.Op {
	v, _ := json.Marshal(c)
	return store.Op{Key: nodeKey(owner, node), Val: v}
}

// List calls fn for each of owner's nodes, in name order.
func (n Nodes) List(owner string, fn func(node string, c NodeConfig) bool) error {
	p := nodesPrefix(owner)
	return n.T.Scan(p, func(k, v []byte) bool {
		var c NodeConfig
		if json.Unmarshal(v, &c) != nil {
			return true
		}
		return fn(string(k[len(p):]), c)
	})
}

// Count counts owner's nodes.
func (n Nodes) Count(owner string) (int, error) {
	c := 0
	err := n.T.Scan(nodesPrefix(owner), func(_, _ []byte) bool { c++; return true })
	return c, err
}

// Items returns the node's items, oldest first: the newest max when max > 0.
func (n Nodes) Items(owner, node string, max int) ([]Item, error) {
	return n.items(owner, node, max, true)
}

// items is Items; without payloads, it keeps each one's size instead.
func (n Nodes) items(owner, node string, max int, payloads bool) ([]Item, error) {
	var out []Item
	p := itemsPrefix(owner, node)
	err := n.T.ScanRange(p, prefixEnd(p), max > 0, func(k, v []byte) bool {
		decode := decodeItemKey
		if payloads {
			decode = decodeItem
		}
		if it, ok := decode(k, v); ok {
			out = append(out, it)
		}
		return max <= 0 || len(out) < max
	})
	if max > 0 {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, err
}

// Last returns the newest item.
func (n Nodes) Last(owner, node string) (Item, bool, error) {
	its, err := n.Items(owner, node, 1)
	if err != nil || len(its) == 0 {
		return Item{}, false, err
	}
	return its[0], true, nil
}

// Item returns the item with id.
func (n Nodes) Item(owner, node, id string) (Item, bool, error) {
	s, err := n.T.Get(append(idxPrefix(owner, node), id...))
	if errors.Is(err, store.ErrNotFound) {
		return Item{}, false, nil
	}
	if err != nil || len(s) != 8 {
		return Item{}, false, err
	}
	k := seqKey(itemsPrefix(owner, node), binary.BigEndian.Uint64(s))
	v, err := n.T.Get(k)
	if errors.Is(err, store.ErrNotFound) {
		return Item{}, false, nil
	}
	if err != nil {
		return Item{}, false, err
	}
	it, ok := decodeItem(k, v)
	return it, ok, nil
}

// Publish stores an item (replacing one with the same id), drops the oldest beyond the
// node's max_items and writes cfg, in one atomic write. Items of a node that does not
// persist them are not stored.
func (n Nodes) Publish(owner, node string, cfg NodeConfig, create bool, id string, payload []byte) error {
	var ops []store.Op
	if create {
		ops = append(ops, ConfigOp(owner, node, cfg))
	}
	if !cfg.Persist {
		if len(ops) == 0 {
			return nil
		}
		return n.T.Apply(ops...)
	}
	p := itemsPrefix(owner, node)
	old, err := n.Items(owner, node, 0)
	if err != nil {
		return err
	}
	var seq uint64 = 1
	if len(old) > 0 {
		seq = old[len(old)-1].seq + 1
	}
	keep := old[:0:0]
	for _, it := range old {
		if it.ID == id {
			ops = append(ops, store.Op{Key: seqKey(p, it.seq), Delete: true})
			continue
		}
		keep = append(keep, it)
	}
	for len(keep) >= cfg.MaxItems && len(keep) > 0 {
		ops = append(ops, store.Op{Key: seqKey(p, keep[0].seq), Delete: true},
			store.Op{Key: append(idxPrefix(owner, node), keep[0].ID...), Delete: true})
		keep = keep[1:]
	}
	v := make([]byte, 0, len(id)+1+len(payload))
	v = append(append(append(v, id...), 0), payload...)
	ops = append(ops, store.Op{Key: seqKey(p, seq), Val: v},
		store.Op{Key: append(idxPrefix(owner, node), id...), Val: binary.BigEndian.AppendUint64(nil, seq)})
	return n.T.Apply(ops...)
}

// Trim drops the oldest items beyond max (after max_items was lowered).
func (n Nodes) Trim(owner, node string, max int) error {
	old, err := n.Items(owner, node, 0)
	if err != nil || len(old) <= max {
		return err
	}
	var ops []store.Op
	for _, it := range old[:len(old)-max] {
		ops = append(ops, store.Op{Key: seqKey(itemsPrefix(owner, node), it.seq), Delete: true},
			store.Op{Key: append(idxPrefix(owner, node), it.ID...), Delete: true})
	}
	return n.T.Apply(ops...)
}

// Retract removes the items with ids and reports which existed.
func (n Nodes) Retract(owner, node string, ids []string) ([]string, error) {
	var ops []store.Op
	var gone []string
	for _, id := range ids {
		it, ok, err := n.Item(owner, node, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		gone = append(gone, id)
		ops = append(ops, store.Op{Key: seqKey(itemsPrefix(owner, node), it.seq), Delete: true},
			store.Op{Key: append(idxPrefix(owner, node), id...), Delete: true})
	}
	if len(ops) == 0 {
		return nil, nil
	}
	return gone, n.T.Apply(ops...)
}

// Purge removes every item of a node.
func (n Nodes) Purge(owner, node string) error {
	if err := n.T.DeletePrefix(itemsPrefix(owner, node)); err != nil {
		return err
	}
	return n.T.DeletePrefix(idxPrefix(owner, node))
}

// Remove deletes a node with its items, subscriptions and affiliations. The node's
// configuration and its affiliations go last, in one batch: a crash or a failed write on
// the way leaves a node that still exists, with its owners, to be deleted again, never
// rows a node of the same name made later would inherit (items, subscribers, an owner).
func (n Nodes) Remove(owner, node string) error {
	if err := n.Purge(owner, node); err != nil {
		return err
	}
	if err := n.T.DeletePrefix(subsPrefix(owner, node)); err != nil {
		return err
	}
	var ops []store.Op
	for j := range n.Affiliations(owner, node) {
		ops = append(ops, AffiliationOps(owner, node, j, AffNone)...)
	}
	ops = append(ops, store.Op{Key: nodeKey(owner, node), Delete: true})
	if err := n.T.Apply(ops...); err != nil {
		return err
	}
	// Rows of affiliations Affiliations did not list (none are expected).
	return n.T.DeletePrefix(affPrefix(owner, node))
}

// Subscription states (XEP-0060 §4.2). A subscription stored before states existed has
// an empty value and counts as subscribed.
const (
	SubNone       = "none"
	SubPending    = "pending"
	SubSubscribed = "subscribed"
)

// Subscribe adds (on) or removes the subscription of j to a node, subscribed.
func (n Nodes) Subscribe(owner, node, j string, on bool) error {
	if on {
		return n.SetSubscription(owner, node, j, SubSubscribed)
	}
	return n.SetSubscription(owner, node, j, SubNone)
}

// SetSubscription sets j's subscription state, keeping its options (an approved pending
// subscription keeps what was asked with it); SubNone removes it with them.
func (n Nodes) SetSubscription(owner, node, j, state string) error {
	k := append(subsPrefix(owner, node), j...)
	if state == SubNone {
		return n.T.Delete(k)
	}
	_, o, err := n.SubOptions(owner, node, j)
	if err != nil {
		return err
	}
	return n.T.Set(k, joinSub(state, o))
}

// Subscription returns j's subscription state (SubNone without one).
func (n Nodes) Subscription(owner, node, j string) (string, error) {
	v, err := n.T.Get(append(subsPrefix(owner, node), j...))
	if errors.Is(err, store.ErrNotFound) {
		return SubNone, nil
	}
	if err != nil {
		return SubNone, err
	}
	return subState(v), nil
}

func subState(v []byte) string {
	st, _ := splitSub(v)
	return st
}

// MaxListed bounds the subscriptions and affiliations one node lists or notifies.
const MaxListed = 10000

// Subscriptions returns every subscription of a node by JID.
func (n Nodes) Subscriptions(owner, node string) map[string]string {
	out := map[string]string{}
	p := subsPrefix(owner, node)
	n.T.Scan(p, func(k, v []byte) bool {
		out[string(k[len(p):])] = subState(v)
		return len(out) < MaxListed
	})
	return out
}

// SubscriptionsOf returns the subscriptions to a node of bare JID bare and of its full
// JIDs, by JID: a scan of the rows that start with bare, not of the node's.
func (n Nodes) SubscriptionsOf(owner, node, bare string) map[string]string {
	out := map[string]string{}
	p := subsPrefix(owner, node)
	n.T.Scan(append(p[:len(p):len(p)], bare...), func(k, v []byte) bool {
		if j := string(k[len(p):]); j == bare || strings.HasPrefix(j, bare+"/") {
			out[j] = subState(v)
		}
		return len(out) < MaxListed
	})
	return out
}

// MaxSubscriptionsPerUser bounds one user's subscriptions to one node (each names a full
// JID of the user's, or the bare one).
const MaxSubscriptionsPerUser = module.MaxResources

// RoomForSubscription returns the error for a new subscription of bare JID bare (or one of
// its full JIDs) to a node that would pass a bound: MaxSubscriptionsPerUser of the user's
// own, or MaxListed in all (what one publish notifies). Anyone a node's access model
// admits may subscribe, from another server too, and every subscription is stored.
func (n Nodes) RoomForSubscription(owner, node, bare string) *stanza.Error {
	if len(n.SubscriptionsOf(owner, node, bare)) >= MaxSubscriptionsPerUser {
		e := stanza.New(stanza.PolicyViolationCond)
		e.Text = "too many subscriptions of yours to this node"
		return e
	}
	return n.RoomForSubscriptions(owner, node, 1)
}

// RoomForSubscriptions and RoomForAffiliations return resource-constraint when a node's
// subscriptions or affiliations, with adding more, would pass MaxListed: what one publish
// notifies and a list shows. Every path that stores them asks first (a subscriber, and an
// owner who sets them).
func (n Nodes) RoomForSubscriptions(owner, node string, adding int) *stanza.Error {
	return n.roomFor(subsPrefix(owner, node), adding, "subscriptions")
}

// RoomForAffiliations: see RoomForSubscriptions.
func (n Nodes) RoomForAffiliations(owner, node string, adding int) *stanza.Error {
	return n.roomFor(affPrefix(owner, node), adding, "affiliations")
}

func (n Nodes) roomFor(prefix []byte, adding int, what string) *stanza.Error {
	c := 0
	n.T.Scan(prefix, func(_, _ []byte) bool { c++; return c < MaxListed })
	if c+adding > MaxListed {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Text = "this node has as many " + what + " as it can list"
		return e
	}
	return nil
}

// Additions counts the entries of an owner's set that are not "none": what the set may
// add at most.
func Additions(entries []Entry) int {
	n := 0
	for _, e := range entries {
		if e.Value != SubNone && e.Value != AffNone {
			n++
		}
	}
	return n
}

// Subscribers lists the JIDs subscribed (not pending) to a node that take notifications
// (not pubsub#deliver false).
func (n Nodes) Subscribers(owner, node string) []string {
	var out []string
	p := subsPrefix(owner, node)
	n.T.Scan(p, func(k, v []byte) bool {
		if st, o := splitSub(v); st == SubSubscribed && !o.NoDeliver {
			out = append(out, string(k[len(p):]))
		}
		return len(out) < MaxListed
	})
	return out
}

// Affiliations (XEP-0060 §4.1).
const (
	AffOwner     = "owner"
	AffPublisher = "publisher"
	AffMember    = "member"
	AffNone      = "none"
	AffOutcast   = "outcast"
)

// Affiliation returns the affiliation of bare JID j with a node (AffNone without one).
func (n Nodes) Affiliation(owner, node, j string) (string, error) {
	v, err := n.T.Get(append(affPrefix(owner, node), j...))
	if errors.Is(err, store.ErrNotFound) {
		return AffNone, nil
	}
	if err != nil {
		return AffNone, err
	}
	return string(v), nil
}

// Affiliations returns every affiliation of a node by bare JID.
func (n Nodes) Affiliations(owner, node string) map[string]string {
	out := map[string]string{}
	p := affPrefix(owner, node)
	n.T.Scan(p, func(k, v []byte) bool {
		out[string(k[len(p):])] = string(v)
		return len(out) < MaxListed
	})
	return out
}

// AffiliationOps returns the writes that set bare JID j's affiliation (AffNone removes
// it) and keep the owners' node index; apply them with others in one batch.
func AffiliationOps(owner, node, j, aff string) []store.Op {
	k := append(affPrefix(owner, node), j...)
	if aff == AffNone {
		return []store.Op{{Key: k, Delete: true}, {Key: createdKey(owner, j, node), Delete: true}}
	}
	ops := []store.Op{{Key: k, Val: []byte(aff)}}
	if aff == AffOwner {
		return append(ops, store.Op{Key: createdKey(owner, j, node), Val: nil})
	}
	return append(ops, store.Op{Key: createdKey(owner, j, node), Delete: true})
}

// Owned counts the nodes bare JID j owns on service owner.
func (n Nodes) Owned(owner, j string) (int, error) {
	c := 0
	err := n.T.Scan(store.UserKey(owner, "c", j, ""), func(_, _ []byte) bool { c++; return true })
	return c, err
}

// prefixEnd is the first key after every key starting with p.
func prefixEnd(p []byte) []byte {
	e := append([]byte(nil), p...)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] < 0xff {
			e[i]++
			return e[:i+1]
		}
	}
	return nil
}

// Forget removes what service owner keeps about bare JID bare: its subscriptions and
// those of its full JIDs on every node, and its affiliations other than owner. It reads
// every subscription and affiliation of the service, so it is for an account's removal
// (module.Registrar.OnRemoved), not for a request. OwnedNodes lists the nodes bare owns,
// which Forget leaves to the caller.
func (n Nodes) Forget(owner, bare string) error {
	var ops []store.Op
	flush := func() error {
		err := n.T.Apply(ops...)
		ops = ops[:0]
		return err
	}
	var err error
	for _, kind := range []string{"s", "a"} {
		p := store.UserKey(owner, kind, "") // owner \0 kind \0
		serr := n.T.Scan(p, func(k, v []byte) bool {
			_, j, ok := bytes.Cut(k[len(p):], []byte{0})
			if !ok || !bytes.HasPrefix(j, []byte(bare)) || (len(j) > len(bare) && j[len(bare)] != '/') {
				return true
			}
			if kind == "a" && string(v) == AffOwner {
				return true
			}
			ops = append(ops, store.Op{Key: append([]byte(nil), k...), Delete: true})
			if len(ops) >= 512 {
				err = flush()
			}
			return err == nil
		})
		if err == nil {
			err = serr
		}
		if err == nil && len(ops) > 0 {
			err = flush()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// OwnedNodes lists the nodes bare JID j owns on service owner.
func (n Nodes) OwnedNodes(owner, j string) ([]string, error) {
	var out []string
	p := store.UserKey(owner, "c", j, "")
	err := n.T.Scan(p, func(k, _ []byte) bool {
		out = append(out, string(k[len(p):]))
		return true
	})
	return out, err
}
