package blocking

import (
	"fmt"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pie"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

var _ pie.Section = (*Mod)(nil)

// ExportUser implements pie.Section: the user's block list.
func (*Mod) ExportUser(st store.Store, u *pie.User) error {
	err := st.Table("blocklist").Scan(store.UserKey(u.JID), func(k, _ []byte) bool {
		u.Blocked = append(u.Blocked, string(k[len(u.JID)+1:]))
		return true
	})
	if err != nil {
		return fmt.Errorf("blocking: %w", err)
	}
	return nil
}

// ImportUser implements pie.Section: each blocked JID as a block would store it (the
// JID prepared, as a block request's is). A JID that does not parse is left out, and
// so is what lies beyond MaxItems: the list a user could have made here.
func (*Mod) ImportUser(st store.Store, u *pie.User) error {
	t := st.Table("blocklist")
	n := 0
	for _, s := range u.Blocked {
		j, err := jid.Parse(s)
		if err != nil || n >= MaxItems {
			continue
		}
		if err := t.Set(store.UserKey(u.JID, j.String()), nil); err != nil {
			return fmt.Errorf("blocking: %w", err)
		}
		n++
	}
	return nil
}
