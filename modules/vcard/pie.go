package vcard

import (
	"errors"
	"fmt"

	"github.com/vireo-im/vireo/modules/pep"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pie"
	"github.com/vireo-im/vireo/xmlstream"
)

var _ pie.Section = (*Mod)(nil)

// ExportUser implements pie.Section: the stored vCard, as the client set it.
func (*Mod) ExportUser(st store.Store, u *pie.User) error {
	v, err := st.Table("vcard").Get(store.UserKey(u.JID))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vcard: %w", err)
	}
	u.VCard = append([]byte(nil), v...)
	return nil
}

// ImportUser implements pie.Section: it stores the vCard with its photo hash, as a
// vCard set by the user would be, so the avatar hash is in the user's presence at once.
func (*Mod) ImportUser(st store.Store, u *pie.User) error {
	if u.VCard == nil {
		return nil
	}
	card, err := xmlstream.ParseElement(u.VCard, "")
	if err != nil {
		return fmt.Errorf("vcard: %w", err)
	}
	hash := ""
	if ph, ok := photo(card); ok {
		hash = pep.AvatarID(ph.data)
	}
	key := store.UserKey(u.JID)
	if err := st.Table("vcard").Set(key, u.VCard); err != nil {
		return fmt.Errorf("vcard: %w", err)
	}
	if err := st.Table("vcardhash").Set(key, []byte(hash)); err != nil {
		return fmt.Errorf("vcard: photo hash: %w", err)
	}
	return nil
}
