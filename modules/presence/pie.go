package presence

import (
	"fmt"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pie"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

var _ pie.Section = (*Presence)(nil)

// ExportUser implements pie.Section: the subscription requests that wait for the user
// (XEP-0227 §4.9), but for those of roster items marked PendingIn, which the roster's
// export writes.
func (*Presence) ExportUser(st store.Store, u *pie.User) error {
	items, _, err := st.Rosters().Get(u.JID)
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	marked := map[string]bool{}
	for _, it := range items {
		if it.PendingIn {
			marked[it.JID] = true
		}
	}
	prefix := store.UserKey(u.JID)
	err = st.Table("subreq").Scan(prefix, func(k, _ []byte) bool {
		if j := string(k[len(prefix):]); !marked[j] {
			u.Pending = append(u.Pending, j)
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	return nil
}

// ImportUser implements pie.Section: a request the file says waits (a roster item marked
// PendingIn) is stored as one that arrived while the user was offline, so that it is shown
// at the next login and the user's approval answers it (RFC 6121 A.2.3) instead of being
// taken for a pre-approval.
func (*Presence) ImportUser(st store.Store, u *pie.User) error {
	user, err := jid.Parse(u.JID)
	if err != nil {
		return nil
	}
	t := st.Table("subreq")
	n := 0
	for _, it := range u.Roster {
		if !it.PendingIn || n >= MaxPendingRequests {
			continue
		}
		contact, err := jid.Parse(it.JID)
		if err != nil {
			continue
		}
		if err := t.Set(store.UserKey(user.String(), contact.String()), simple("subscribe", contact.Bare(), user.Bare())); err != nil {
			return fmt.Errorf("presence: %w", err)
		}
		n++
	}
	return nil
}
