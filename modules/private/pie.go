package private

import (
	"fmt"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pie"
	"github.com/vireo-im/vireo/xmlstream"
)

var _ pie.Section = (*Mod)(nil)

// ExportUser implements pie.Section: every stored fragment.
func (*Mod) ExportUser(st store.Store, u *pie.User) error {
	err := st.Table("private").Scan(store.UserKey(u.JID), func(_, v []byte) bool {
		u.Private = append(u.Private, append([]byte(nil), v...))
		return true
	})
	if err != nil {
		return fmt.Errorf("private: %w", err)
	}
	return nil
}

// ImportUser implements pie.Section: each fragment under its namespace and name, as a
// set would store it. The per-user quota is not applied: the data was accepted once.
func (*Mod) ImportUser(st store.Store, u *pie.User) error {
	for _, p := range u.Private {
		e, err := xmlstream.ParseElement(p, "")
		if err != nil {
			return fmt.Errorf("private: %w", err)
		}
		if reserved(string(e.NS())) {
			continue
		}
		key := store.UserKey(u.JID, string(e.NS()), string(e.Name()))
		if err := st.Table("private").Set(key, p); err != nil {
			return fmt.Errorf("private: %w", err)
		}
	}
	return nil
}
