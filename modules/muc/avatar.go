package muc

import (
	"bytes"
	"errors"
	"strings"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pep"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// roomVCard is a room's vCard-temp (XEP-0054), which carries its avatar (XEP-0486).
// Clients show the avatar in room lists and bookmarks before joining, so the room's
// muc#roominfo form names it by hash; the vCard itself is fetched only when the hash is
// not one the client has.
type roomVCard struct {
	hashes []string // SHA-1 (hex) of each PHOTO's data, in document order
	// card is the vCard while the room is not stored (temporary, or locked): a stored
	// room's lives in the store alone, read when asked for, so that rooms kept loaded do
	// not each hold an image.
	card []byte
}

var emptyVCard = []byte("<vCard xmlns='" + NSVCard + "'/>")

// getVCard answers a vCard request to the room (XEP-0486 §3.4): anyone the room answers
// disco#info may fetch it.
func (r *room) getVCard(c module.Context, p *module.Packet) {
	switch {
	case r.vcard == nil:
		c.Reply(p, emptyVCard)
	case r.vcard.card != nil:
		c.Reply(p, r.vcard.card)
	default:
		v, err := r.svc.m.t.Get(keyVCard(r.key))
		if errors.Is(err, store.ErrNotFound) {
			c.Reply(p, emptyVCard)
			return
		}
		if err != nil {
			c.Error(p, module.StoreError(err))
			return
		}
		_, card := splitVCard(v)
		c.Reply(p, card)
	}
}

// setVCard sets or, with an empty vCard, removes the room's vCard (XEP-0486 §3.2): owners
// only, bounded by max_vcard_bytes, written before the result for a stored room. The
// occupants are told with status 104, as for a configuration change, when the avatar
// changed.
func (r *room) setVCard(c module.Context, p *module.Packet, q xmlstream.Element) {
	if !r.isOwner(p.From) {
		c.Error(p, errBy(r.jid, stanza.Forbidden, "only owners set the room's vCard"))
		return
	}
	card := q.Raw()
	if len(card) > r.svc.conf().MaxVCardBytes {
		c.Error(p, errBy(r.jid, stanza.NotAcceptable, "vCard too large"))
		return
	}
	hashes, err := photoHashes(q)
	if err != nil {
		c.Error(p, errBy(r.jid, stanza.BadRequest, err.Error()))
		return
	}
	var next *roomVCard
	if it := q.Children(); hasElement(&it) {
		next = &roomVCard{hashes: hashes, card: bytes.Clone(card)}
	}
	if r.stored() {
		if err := r.saveVCard(next); err != nil {
			if module.LogStoreError(err) {
				r.svc.m.log.Error().Err(err).Str("room", r.key).Msg("muc: store vCard")
			}
			c.Error(p, module.StoreError(err))
			return
		}
	}
	changed := !sameHashes(r.vcard, next)
	r.vcard = next
	c.Reply(p, nil)
	if changed && !r.locked {
		snd := newSender(c)
		var b xmlstream.Builder
		b.Start("message").Attr("type", "groupchat").Attr("from", r.key)
		b.Start("x").Attr("xmlns", NSUser).Start("status").Attr("code", itoa(codeConfigChange)).End().End()
		b.End()
		for _, o := range r.occ {
			for _, s := range o.sess {
				snd.to(s, b.B)
			}
		}
	}
}

// stored reports whether the room is in the store: persistent, and configured.
func (r *room) stored() bool { return r.cfg.Persistent && !r.locked }

// saveVCard writes v (nil: deletes the room's vCard) and leaves v holding the hashes
// alone: a stored room's vCard is read from the store.
func (r *room) saveVCard(v *roomVCard) error {
	if v == nil {
		err := r.svc.m.t.Delete(keyVCard(r.key))
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		return err
	}
	val := append([]byte(strings.Join(v.hashes, " ")+"\n"), v.card...)
	if err := r.svc.m.t.Set(keyVCard(r.key), val); err != nil {
		return err
	}
	v.card = nil
	return nil
}

// splitVCard parses a stored value: the photo hashes, a newline, the vCard.
func splitVCard(v []byte) (hashes []string, card []byte) {
	h, card, _ := bytes.Cut(v, []byte{'\n'})
	return strings.Fields(string(h)), card
}

func sameHashes(a, b *roomVCard) bool {
	var ha, hb []string
	if a != nil {
		ha = a.hashes
	}
	if b != nil {
		hb = b.hashes
	}
	return a == nil == (b == nil) && strings.Join(ha, " ") == strings.Join(hb, " ")
}

// photoHashes returns the SHA-1 of each PHOTO's BINVAL (XEP-0486 §3.3 hashes them all);
// a BINVAL that is not base64 is an error, a PHOTO without one (an EXTVAL) has none.
func photoHashes(card xmlstream.Element) ([]string, error) {
	var hashes []string
	it := card.Children()
	for {
		ph, ok := it.Next()
		if !ok {
			return hashes, nil
		}
		if string(ph.Name()) != "PHOTO" {
			continue
		}
		bin, ok := ph.Child("", "BINVAL")
		if !ok {
			continue
		}
		raw, err := pep.DecodeBase64(bin.AppendText(nil))
		if err != nil || len(raw) == 0 {
			return nil, errors.New("a PHOTO's BINVAL is not base64 data")
		}
		hashes = append(hashes, pep.AvatarID(raw))
	}
}

// hasElement reports whether it yields an element.
func hasElement(it *xmlstream.ChildIter) bool {
	_, ok := it.Next()
	return ok
}
