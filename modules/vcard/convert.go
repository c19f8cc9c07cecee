package vcard

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image"
	_ "image/gif" // image.DecodeConfig of the formats clients send (XEP-0084 §4.2 width, height)
	_ "image/jpeg"
	_ "image/png"
	"net/http"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pep"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// XEP-0398: User Avatar to vCard-Based Avatars Conversion, the vCard side. The PEP module
// calls PEPAvatar when the user publishes XEP-0084 metadata (§3.1, PEP to vCard); a vCard
// set with a photo is published to the user's avatar nodes through pep.AvatarsFor (§3.2,
// vCard to PEP). Neither path runs the other (see modules/pep/avatar.go).

// vphoto is a vCard's PHOTO: its TYPE and the decoded BINVAL.
type vphoto struct {
	typ  string
	data []byte
}

// photo returns the card's PHOTO when it has a non-empty, valid BINVAL.
func photo(card xmlstream.Element) (vphoto, bool) {
	ph, ok := card.Child("", "PHOTO")
	if !ok {
		return vphoto{}, false
	}
	bin, ok := ph.Child("", "BINVAL")
	if !ok {
		return vphoto{}, false
	}
	raw, err := pep.DecodeBase64(bin.AppendText(nil))
	if err != nil || len(raw) == 0 {
		return vphoto{}, false
	}
	p := vphoto{data: raw}
	if t, ok := ph.Child("", "TYPE"); ok {
		p.typ = string(bytes.TrimSpace(t.AppendText(nil)))
	}
	return p, true
}

// toPEP publishes the photo of a vCard the user just set as their XEP-0084 avatar
// (XEP-0398 §3.2). The vCard is stored whatever happens here: a failure is only logged.
func (m *Mod) toPEP(c module.Context, user jid.JID, p vphoto, id string) {
	if m.st == nil {
		return
	}
	av := pep.AvatarsFor(m.st)
	if av == nil {
		return
	}
	a := pep.Avatar{ID: id, Type: p.typ, Data: p.data}
	if a.Type == "" {
		// The vCard should say; if it does not, the bytes do (XEP-0084 §4.2: type is
		// REQUIRED).
		a.Type = http.DetectContentType(p.data)
	}
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(p.data)); err == nil {
		a.Width, a.Height = cfg.Width, cfg.Height // only when known (XEP-0084 §4.2)
	}
	if err := av.PublishAvatar(c, user, a); err != nil {
		l := c.Logger()
		l.Warn().Err(err).Str("user", user.String()).Msg("vcard: publish the photo to PEP")
	}
}

// PEPAvatar implements pep.AvatarSink: the user's vCard PHOTO becomes a (TYPE and
// BINVAL), or goes away when a is nil; the other vCard fields stay. The new hash goes to
// the user's sessions, for the presence they send next (XEP-0398 §4). It runs on the
// user's shard.
func (m *Mod) PEPAvatar(c module.Context, user jid.JID, a *pep.Avatar) {
	l := c.Logger()
	key := store.UserKey(user.String())
	old, err := m.cards.Get(key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		l.Error().Err(err).Str("user", user.String()).Msg("vcard: read for the PEP avatar")
		return
	}
	card, changed := withPhoto(old, a)
	if !changed {
		return // nothing new (or the avatar came from this vCard)
	}
	want := ""
	if a != nil {
		want = a.ID
	}
	if len(card) > m.cfg.Load().For(user.Domain()).MaxBytes {
		l.Warn().Str("user", user.String()).Int("bytes", len(card)).Msg("vcard: PEP avatar too large for the vCard")
		return
	}
	if err := m.cards.Set(key, card); err != nil {
		l.Error().Err(err).Str("user", user.String()).Msg("vcard: store the PEP avatar")
		return
	}
	if err := m.hashes.Set(key, []byte(want)); err != nil {
		l.Error().Err(err).Str("user", user.String()).Msg("vcard: store photo hash")
	}
	for _, s := range c.Sessions(user) {
		s.SetValue(hashKey{}, want)
	}
}

// withPhoto returns the stored vCard old (nil: none) with its PHOTO replaced by a, or
// removed when a is nil; changed is false when old already has that photo (by SHA-1).
// The other fields are kept as they are.
func withPhoto(old []byte, a *pep.Avatar) (card []byte, changed bool) {
	var cur xmlstream.Element
	hasCard := false
	if len(old) > 0 {
		var err error
		cur, err = xmlstream.ParseElement(old, ns.VCard)
		hasCard = err == nil
	}
	have, want := "", ""
	if hasCard {
		if p, ok := photo(cur); ok {
			have = pep.AvatarID(p.data)
		}
	}
	if a != nil {
		want = a.ID
	}
	if have == want {
		return old, false
	}
	var b xmlstream.Builder
	b.Start("vCard").Attr("xmlns", ns.VCard)
	if hasCard {
		it := cur.Children()
		for x, ok := it.Next(); ok; x, ok = it.Next() {
			if string(x.Name()) != "PHOTO" {
				b.Raw(x.Raw())
			}
		}
	}
	if a != nil {
		b.Start("PHOTO")
		if a.Type != "" {
			b.Start("TYPE").Text(a.Type).End()
		}
		b.Start("BINVAL").Raw(base64.StdEncoding.AppendEncode(nil, a.Data)).End()
		b.End()
	}
	b.End()
	return b.B, true
}

// Cleanup withdraws the module from the PEP bridge.
func (m *Mod) Cleanup() error {
	if m.st != nil {
		pep.RemoveAvatarSink(m.st, m)
	}
	return nil
}
