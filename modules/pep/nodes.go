package pep

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/vireo-im/vireo/store"
)

// Keys in the "pep" table, all under store.UserKey(owner), so that deleting an account
// deletes its nodes:
//
//	owner \0 n \0 \0 node              -> NodeConfig (JSON)
//	owner \0 i \0 node \0 seq(8, BE)   -> item id \0 payload
//	owner \0 x \0 node \0 item id      -> seq(8, BE)
//	owner \0 s \0 node \0 jid          -> "" (an explicit subscription)
//
// seq orders a node's items by publication; the newest has the highest.
type nodes struct{ t store.Table }

func nodeKey(owner, node string) []byte { return store.UserKey(owner, "n", "", node) }
func nodesPrefix(owner string) []byte   { return store.UserKey(owner, "n", "", "") }
func itemsPrefix(owner, node string) []byte {
	return store.UserKey(owner, "i", node, "")
}
func idxPrefix(owner, node string) []byte { return store.UserKey(owner, "x", node, "") }
func subsPrefix(owner, node string) []byte {
	return store.UserKey(owner, "s", node, "")
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
}

func decodeItem(k, v []byte) (Item, bool) {
	i := bytes.IndexByte(v, 0)
	if i < 0 || len(k) < 8 {
		return Item{}, false
	}
	return Item{ID: string(v[:i]), Payload: append([]byte(nil), v[i+1:]...),
		seq: binary.BigEndian.Uint64(k[len(k)-8:])}, true
}

// config returns a node's configuration; ok is false when the node does not exist.
func (n nodes) config(owner, node string) (NodeConfig, bool, error) {
	v, err := n.t.Get(nodeKey(owner, node))
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

func configOp(owner, node string, c NodeConfig) store.Op {
	v, _ := json.Marshal(c)
	return store.Op{Key: nodeKey(owner, node), Val: v}
}

// list calls fn for each of owner's nodes, in name order.
func (n nodes) list(owner string, fn func(node string, c NodeConfig) bool) error {
	p := nodesPrefix(owner)
	return n.t.Scan(p, func(k, v []byte) bool {
		var c NodeConfig
		if json.Unmarshal(v, &c) != nil {
			return true
		}
		return fn(string(k[len(p):]), c)
	})
}

func (n nodes) count(owner string) (int, error) {
	c := 0
	err := n.t.Scan(nodesPrefix(owner), func(_, _ []byte) bool { c++; return true })
	return c, err
}

// items returns the node's items, oldest first: the newest max when max > 0.
func (n nodes) items(owner, node string, max int) ([]Item, error) {
	var out []Item
	p := itemsPrefix(owner, node)
	err := n.t.ScanRange(p, prefixEnd(p), max > 0, func(k, v []byte) bool {
		if it, ok := decodeItem(k, v); ok {
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

// last returns the newest item.
func (n nodes) last(owner, node string) (Item, bool, error) {
	its, err := n.items(owner, node, 1)
	if err != nil || len(its) == 0 {
		return Item{}, false, err
	}
	return its[0], true, nil
}

// item returns the item with id.
func (n nodes) item(owner, node, id string) (Item, bool, error) {
	s, err := n.t.Get(append(idxPrefix(owner, node), id...))
	if errors.Is(err, store.ErrNotFound) {
		return Item{}, false, nil
	}
	if err != nil || len(s) != 8 {
		return Item{}, false, err
	}
	k := seqKey(itemsPrefix(owner, node), binary.BigEndian.Uint64(s))
	v, err := n.t.Get(k)
	if errors.Is(err, store.ErrNotFound) {
		return Item{}, false, nil
	}
	if err != nil {
		return Item{}, false, err
	}
	it, ok := decodeItem(k, v)
	return it, ok, nil
}

// publish stores an item (replacing one with the same id), drops the oldest beyond the
// node's max_items and writes cfg, in one atomic write. Items of a node that does not
// persist them are not stored.
func (n nodes) publish(owner, node string, cfg NodeConfig, create bool, id string, payload []byte) error {
	var ops []store.Op
	if create {
		ops = append(ops, configOp(owner, node, cfg))
	}
	if !cfg.Persist {
		if len(ops) == 0 {
			return nil
		}
		return n.t.Apply(ops...)
	}
	p := itemsPrefix(owner, node)
	old, err := n.items(owner, node, 0)
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
	return n.t.Apply(ops...)
}

// trim drops the oldest items beyond max (after max_items was lowered).
func (n nodes) trim(owner, node string, max int) error {
	old, err := n.items(owner, node, 0)
	if err != nil || len(old) <= max {
		return err
	}
	var ops []store.Op
	for _, it := range old[:len(old)-max] {
		ops = append(ops, store.Op{Key: seqKey(itemsPrefix(owner, node), it.seq), Delete: true},
			store.Op{Key: append(idxPrefix(owner, node), it.ID...), Delete: true})
	}
	return n.t.Apply(ops...)
}

// retract removes the items with ids and reports which existed.
func (n nodes) retract(owner, node string, ids []string) ([]string, error) {
	var ops []store.Op
	var gone []string
	for _, id := range ids {
		it, ok, err := n.item(owner, node, id)
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
	return gone, n.t.Apply(ops...)
}

// purge removes every item of a node.
func (n nodes) purge(owner, node string) error {
	if err := n.t.DeletePrefix(itemsPrefix(owner, node)); err != nil {
		return err
	}
	return n.t.DeletePrefix(idxPrefix(owner, node))
}

// remove deletes a node with its items and subscriptions.
func (n nodes) remove(owner, node string) error {
	if err := n.t.Delete(nodeKey(owner, node)); err != nil {
		return err
	}
	if err := n.purge(owner, node); err != nil {
		return err
	}
	return n.t.DeletePrefix(subsPrefix(owner, node))
}

func (n nodes) subscribe(owner, node, j string, on bool) error {
	k := append(subsPrefix(owner, node), j...)
	if on {
		return n.t.Set(k, nil)
	}
	return n.t.Delete(k)
}

func (n nodes) subscribers(owner, node string) []string {
	var out []string
	p := subsPrefix(owner, node)
	n.t.Scan(p, func(k, _ []byte) bool {
		out = append(out, string(k[len(p):]))
		return len(out) < 1000
	})
	return out
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
