package mam

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pie"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

var _ pie.Section = (*Mod)(nil)

// importBatch is how many archived messages one write of an import holds: large enough
// that a synced write per batch costs little, small enough to bound the batch's memory.
const importBatch = 256

// ExportUser implements pie.Section: the user's whole archive, oldest first, past
// retention or not (the sweep deletes those rows in its own time).
func (*Mod) ExportUser(st store.Store, u *pie.User) error {
	p := msgPrefix(u.JID)
	var bad error
	err := st.Table("mam").Scan(p, func(k, v []byte) bool {
		var id sid.ID
		if len(k) != len(p)+len(id) {
			return true
		}
		copy(id[:], k[len(p):])
		r, err := decode(v)
		if err != nil {
			bad = err
			return false
		}
		u.Archive = append(u.Archive, pie.Archived{ID: id.String(), Stamp: id.Time(),
			Message: append([]byte(nil), r.raw...)})
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return fmt.Errorf("mam: %w", err)
	}
	return nil
}

// ImportUser implements pie.Section. Each message is archived under an id that depends
// only on it: its own id when it is one of ours that matches its stamp (a Vireo export),
// else the stamp's millisecond with 48 bits of a hash of the exporter's id and the
// message. So the archive keeps the export's order, and importing the same archive again
// writes the same rows instead of adding copies. A message neither from nor to the user
// names no other party to file it under and is skipped.
func (*Mod) ImportUser(st store.Store, u *pie.User) error {
	t := st.Table("mam")
	var ops []store.Op
	for _, a := range u.Archive {
		e, err := xmlstream.ParseElement(a.Message, "")
		if err != nil {
			return fmt.Errorf("mam: archived message %s: %w", a.ID, err)
		}
		from, _ := e.Attr("from")
		to, _ := e.Attr("to")
		fj, _ := jid.Parse(string(from))
		tj, _ := jid.Parse(string(to))
		out := fj.Bare().String() == u.JID
		remote := fj
		if out {
			remote = tj
		} else if tj.Bare().String() != u.JID && !tj.IsZero() {
			continue
		}
		if remote.IsZero() {
			continue
		}
		ab := addOps(u.JID, importID(a), out, remote, a.Message)
		ops = append(ops, ab[:]...)
		if len(ops) >= 2*importBatch {
			if err := t.Apply(ops...); err != nil {
				return fmt.Errorf("mam: %w", err)
			}
			ops = ops[:0]
		}
	}
	if len(ops) > 0 {
		if err := t.Apply(ops...); err != nil {
			return fmt.Errorf("mam: %w", err)
		}
	}
	return nil
}

func importID(a pie.Archived) sid.ID {
	if id, ok := sid.ParseID([]byte(a.ID)); ok && id.Time().Equal(a.Stamp.Truncate(1e6)) {
		return id
	}
	id := sid.IDFloor(a.Stamp)
	h := sha256.New()
	h.Write([]byte(a.ID))
	h.Write([]byte{0})
	h.Write(a.Message)
	sum := h.Sum(nil)
	binary.BigEndian.PutUint16(id[6:8], binary.BigEndian.Uint16(sum))
	copy(id[8:], sum[2:6])
	return id
}
