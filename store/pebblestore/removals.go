package pebblestore

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/vireo-im/vireo/store"
)

var _ store.Removals = (*Store)(nil)

// removal is what Accounts.Delete records of acc (store.Removal) from its stored roster,
// read under the account's lock before the batch that removes it; record is false for a
// guest without contacts. noRoster says the roster is known to be empty.
func (s *Store) removal(acc store.Account, noRoster bool) (rm store.Removal, record bool, err error) {
	rm = store.Removal{User: acc.User, Guest: acc.Anonymous}
	if !noRoster {
		items, _, err := rosters{s}.Get(acc.User)
		if err != nil && !errors.Is(err, store.ErrCorrupt) {
			return rm, false, err
		}
		for _, it := range items {
			c := store.RemovedContact{JID: it.JID,
				To:   it.Sub == store.SubTo || it.Sub == store.SubBoth || it.Ask,
				From: it.Sub == store.SubFrom || it.Sub == store.SubBoth || it.PendingIn}
			if c.To || c.From {
				rm.Contacts = append(rm.Contacts, c)
			}
		}
	}
	return rm, !acc.Anonymous || len(rm.Contacts) > 0, nil
}

// A removal record is JSON: written once per removed account and read once, at most a
// roster's worth of contacts.
func encodeRemoval(rm store.Removal) []byte {
	b, _ := json.Marshal(rm)
	return b
}

// PendingRemovals implements store.Removals.
func (s *Store) PendingRemovals(fn func(store.Removal) bool) error {
	lo := []byte{pRemoved}
	var derr error
	err := s.scan(lo, prefixEnd(lo), func(k, v []byte) bool {
		var rm store.Removal
		if err := json.Unmarshal(v, &rm); err != nil {
			derr = fmt.Errorf("%w: removal of %s: %v", store.ErrCorrupt, k[1:], err)
			return false
		}
		rm.User = string(k[1:])
		return fn(rm)
	})
	if err == nil {
		err = derr
	}
	return err
}

// RemovalDone implements store.Removals.
func (s *Store) RemovalDone(user string) error {
	b := s.db.NewBatch()
	defer b.Close()
	b.Delete(key(pRemoved, user), nil)
	// Not synced: a crash that loses it only makes the cleanup run again, which finds
	// nothing left to do.
	return s.commitWith(b, true, pebble.NoSync)
}

// OnRemoval implements store.Removals.
func (s *Store) OnRemoval(fn func(store.Removal)) {
	if fn == nil {
		s.onRemoval.Store(nil)
		return
	}
	s.onRemoval.Store(&fn)
}
