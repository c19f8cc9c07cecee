package router

import (
	"slices"
	"strings"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// SetAccounts sets what modules change accounts through (module.Registrar Accounts): the
// engine, which knows the operator's password program. Without it (a router run alone),
// modules change the store's keys. Safe for concurrent use.
func (r *Router) SetAccounts(a module.Accounts) {
	if a == nil {
		r.accounts.Store(nil)
		return
	}
	r.accounts.Store(&a)
}

func (m *modReg) Accounts() module.Accounts {
	if a := m.g.r.accounts.Load(); a != nil {
		return *a
	}
	return storeAccounts{m.g.r.opts.Store}
}

// storeAccounts changes local accounts only: SCRAM keys and removal in the store.
type storeAccounts struct{ st store.Store }

func (a storeAccounts) SetPassword(user, password string) error {
	keys, err := creds.DeriveAll(password, creds.DefaultIter)
	if err != nil {
		return err
	}
	return a.st.Accounts().SetCredentials(user, keys)
}

func (a storeAccounts) Remove(user string) error { return a.st.Accounts().Delete(user) }

// SetPrivileges sets the XEP-0356 privileges of components, by component domain (nil:
// none). Safe for concurrent use; the map must not change afterwards.
func (r *Router) SetPrivileges(p map[string]module.Privileges) {
	var w, rw, pw []jid.JID
	for d, pr := range p {
		j, err := jid.Parse(d)
		if err != nil {
			continue
		}
		if pr.UserPresence() {
			w = append(w, j)
		}
		if pr.RosterPresence() {
			pw = append(pw, j)
		}
		if pr.RosterPushes() {
			rw = append(rw, j)
		}
	}
	r.privileges.Store(&p)
	// The presence and roster paths check only these: nil when nobody watches.
	r.watchers.Store(nilIfEmpty(w))
	r.rosterWatchers.Store(nilIfEmpty(rw))
	r.contactWatchers.set(nilIfEmpty(pw))
}

func nilIfEmpty(s []jid.JID) *[]jid.JID {
	if len(s) == 0 {
		return nil
	}
	return &s
}

// Privileges returns what entity's component may do: the privileges of its domain, or of
// the component domain it is a subdomain of (XEP-0114 gives a component its subdomains),
// unless a domain on the way is served by something else.
func (r *Router) Privileges(entity jid.JID) module.Privileges {
	m := r.privileges.Load()
	if m == nil || entity.IsZero() {
		return module.Privileges{}
	}
	for d := entity.Domain(); d != ""; {
		if p, ok := (*m)[d]; ok {
			return p
		}
		if r.isLocal(d) || r.IsService(d) || r.IsComponent(d) {
			// Served by something else (a virtual host's users, a service, another
			// component): a privileged parent domain does not cover it.
			return module.Privileges{}
		}
		_, d, _ = strings.Cut(d, ".")
	}
	return module.Privileges{}
}

func (m *modReg) Privileges(entity jid.JID) module.Privileges { return m.g.r.Privileges(entity) }

// RostersChanged makes every shard read its online users' rosters from the store again
// (module.Registrar RostersChanged), and push what changed to their interested sessions
// (RFC 6121 §2.1.6), such as a shared group's members after a reload.
func (r *Router) RostersChanged() {
	for _, s := range r.shards {
		o := getOp()
		o.kind = opRosters
		s.q.pushForce(o)
	}
}

func (m *modReg) RostersChanged() { m.g.r.RostersChanged() }

// Rooms lists the rooms of the group chat module (module.RoomDirectory); ok is false when
// no module keeps rooms.
func (r *Router) Rooms() (rooms []module.RoomInfo, ok bool) {
	for _, m := range r.mods {
		if d, is := m.(module.RoomDirectory); is {
			return d.Rooms(), true
		}
	}
	return nil, false
}

// rostersChanged reads u's roster again after a change made outside a Context (shared
// roster groups at a reload) and pushes the difference with the roster it had loaded to
// u's interested sessions; a roster not loaded yet is read at its next use.
func (s *shard) rostersChanged(u *user) {
	old, loaded := u.roster, u.rosterLoaded
	u.rosterLoaded, u.roster = false, nil
	if !loaded {
		return
	}
	interested := false
	for _, se := range u.sessions {
		interested = interested || se.Interested()
	}
	if !interested {
		return
	}
	s.ctx.set(nil, u)
	now := s.ctx.roster()
	ver, _ := s.r.st.Rosters().Version(u.key)
	for k, it := range now {
		if was, ok := old[k]; !ok || !sameItem(was, it) {
			s.ctx.pushRoster(u.bare, it, false, ver)
		}
	}
	for k, it := range old {
		if _, ok := now[k]; !ok {
			s.ctx.pushRoster(u.bare, store.RosterItem{JID: it.JID}, true, ver)
		}
	}
}

func sameItem(a, b store.RosterItem) bool {
	return a.JID == b.JID && a.Name == b.Name && a.Sub == b.Sub && a.Ask == b.Ask && a.PendingIn == b.PendingIn &&
		a.Approved == b.Approved && a.Shared == b.Shared && slices.Equal(a.Groups, b.Groups)
}
