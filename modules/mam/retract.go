package mam

import (
	"bytes"
	"time"

	"github.com/vireo-im/vireo/modules/muc"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// retractScan and retractAge bound how far back in one conversation a retraction looks
// for the message it names: people retract what they just sent, and a stream of
// retractions (cheap to send) must not make the server read an archive of years for each.
const (
	retractScan = 50
	retractAge  = 7 * 24 * time.Hour
)

// retract applies a retraction (XEP-0424) in user's archive: the message that contact
// sent (out false) or that user sent to contact (out true), named by its 'id' or
// origin-id (§6.1: the id of the message in a one-to-one chat), among the newest
// retractScan of the conversation's last retractAge, becomes a tombstone with the
// retraction's id (§5),
// as the archive of the retraction itself follows it. Both must come from the same bare
// JID (§6), which the direction and the conversation's JID ensure.
func (m *Mod) retract(user, contact jid.JID, out bool, target, retraction string, at time.Time) {
	key := user.String()
	prefix := withPrefix(key, contact)
	needle := []byte(target)
	var hit sid.ID
	var rec record
	found := false
	seen := 0
	oldest := sid.IDFloor(at.Add(-retractAge))
	lo := append(append([]byte(nil), prefix...), oldest[:]...)
	err := m.a.t.ScanRange(lo, prefixEnd(prefix), true, func(k, _ []byte) bool {
		if seen++; seen > retractScan || len(k) != len(prefix)+len(hit) {
			return false
		}
		var id sid.ID
		copy(id[:], k[len(prefix):])
		r, err := m.a.get(key, id)
		if err != nil || r.out != out || !bytes.Contains(r.raw, needle) {
			return true
		}
		if e, err := xmlstream.ParseElement(r.raw, ns.Client); err == nil && muc.Names(e, target) && muc.RetractedID(e) == "" {
			hit, rec, found = id, r, true
			return false
		}
		return true
	})
	if err != nil || !found {
		if err != nil {
			m.logFailure(err, "mam: find a retracted message")
		}
		return
	}
	remote, err := jid.Parse(rec.remote)
	if err != nil {
		return
	}
	op := store.Op{Key: msgKey(key, hit), Val: encode(rec.out, remote, muc.Tombstone(rec.raw, retraction, "", at))}
	if m.a.sync {
		err = m.a.t.Apply(op)
	} else {
		err = m.a.t.ApplyLazy(op)
	}
	if err != nil {
		m.logFailure(err, "mam: retract a message")
	}
}
