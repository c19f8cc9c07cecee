package router

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// serviceTable is the service domains modules claimed. It is never changed once
// published: SetDomains builds a new one, so shards read it without a lock.
type serviceTable struct {
	byDomain map[string]*module.Service
	list     []module.Service  // in claim order, for disco#items
	owner    map[string]string // domain → the module that claimed it
}

// syncServices makes the services of the served hosts follow what they turn off
// (SetHostModules): a service module turned off on a host loses its services there
// (after its OnStop function said goodbye for that host, when notify: XEP-0045 status 332
// to its rooms' occupants) and forgets the host (HostWatcher.RemoveHost); one turned on
// gets them (HostWatcher.AddHost). A service that cannot be made is logged and left out.
// Called with hostsMu held.
func (r *Router) syncServices(notify bool) {
	tbl := r.svc.Load()
	hosts := slices.Sorted(maps.Keys(*r.domains.Load()))
	have := map[[2]string]bool{} // (module, host) with services
	for _, sv := range tbl.list {
		if sv.Host != "" {
			have[[2]string{tbl.owner[sv.Domain], sv.Host}] = true
		}
	}
	byDomain, list, owner := tbl.byDomain, tbl.list, tbl.owner
	changed := false
	clone := func() {
		if !changed {
			changed = true
			byDomain, list, owner = maps.Clone(byDomain), slices.Clone(list), maps.Clone(owner)
		}
	}
	for _, m := range r.mods {
		w, ok := m.(module.HostWatcher)
		if !ok {
			continue
		}
		id := m.ModuleInfo().ID
		for _, h := range hosts {
			off := r.view(h).disabled(id)
			switch {
			case off && have[[2]string{id, h}]:
				if notify {
					r.notifyStop(h, time.Now().Add(StopWait), id)
				}
				clone()
				gone := func(d string, sv *module.Service) bool { return sv.Host == h && owner[d] == id }
				list = slices.DeleteFunc(list, func(sv module.Service) bool { return gone(sv.Domain, &sv) })
				maps.DeleteFunc(byDomain, gone)
				// Published before the module forgets the host: no stanza reaches a
				// service it no longer has.
				r.svc.Store(&serviceTable{byDomain: byDomain, list: list, owner: owner})
				changed = false
				w.RemoveHost(h)
			case !off && !have[[2]string{id, h}]:
				svcs, err := w.AddHost(h)
				if err != nil {
					r.log.Error().Err(err).Str("host", h).Str("module", id).Msg("a service turned back on could not be made")
					continue
				}
				for _, sv := range svcs {
					sd, err := jid.PrepareDomain(sv.Domain)
					if err != nil || byDomain[sd] != nil || r.isLocal(sd) || sv.Handler == nil {
						r.log.Error().Str("host", h).Str("module", id).Str("service", sv.Domain).Msg("a service turned back on is in use or invalid")
						continue
					}
					clone()
					sv.Domain, sv.Host = sd, h
					byDomain[sd] = &sv
					list = append(list, sv)
					owner[sd] = id
				}
			}
		}
	}
	if changed {
		r.svc.Store(&serviceTable{byDomain: byDomain, list: list, owner: owner})
	}
	r.infoGen.Add(1)
}

// SetDomains replaces the served virtual hosts (a reload, or a host added or removed at
// runtime). A new host gets the services of every module.HostWatcher before it becomes
// local, so conference.<host> answers as soon as its users can log in. For a removed host
// the modules' OnStop functions run first, while it is still served (waiting at most
// StopWait for what they send: XEP-0045 status 332 to the occupants of its rooms); then it
// stops being local, loses its services, and its users' sessions are closed with
// host-gone (RFC 6120 §4.9.3.6), detached ones ended. Its data stays in the store. On
// error nothing changes. Safe for concurrent use.
func (r *Router) SetDomains(d []string) error {
	if len(d) == 0 {
		return errors.New("router: no domains")
	}
	r.hostsMu.Lock()
	defer r.hostsMu.Unlock()
	old := *r.domains.Load()
	next := make(map[string]bool, len(d))
	for _, h := range d {
		next[h] = true
	}
	tbl := r.svc.Load()
	byDomain := maps.Clone(tbl.byDomain)
	list := slices.Clone(tbl.list)
	owner := maps.Clone(tbl.owner)
	var added []string
	for _, h := range d {
		if old[h] {
			continue
		}
		if byDomain[h] != nil {
			return fmt.Errorf("router: %s is a service domain", h)
		}
		added = append(added, h)
	}
	var asked []module.HostWatcher
	undo := func() {
		for _, h := range added {
			for _, w := range asked {
				if !r.view(h).disabled(w.(module.Module).ModuleInfo().ID) {
					w.RemoveHost(h)
				}
			}
		}
	}
	for _, m := range r.mods {
		w, ok := m.(module.HostWatcher)
		if !ok {
			continue
		}
		asked = append(asked, w)
		id := m.ModuleInfo().ID
		for _, h := range added {
			if r.view(h).disabled(id) {
				continue // the host does without the module's services
			}
			svcs, err := w.AddHost(h)
			if err != nil {
				undo()
				return fmt.Errorf("router: host %s: module %s: %w", h, m.ModuleInfo().ID, err)
			}
			for _, sv := range svcs {
				sd, err := jid.PrepareDomain(sv.Domain)
				if err == nil && (byDomain[sd] != nil || next[sd] || sv.Handler == nil) {
					err = errors.New("already in use")
				}
				if err != nil {
					undo()
					return fmt.Errorf("router: host %s: service %s of module %s: %w", h, sv.Domain, m.ModuleInfo().ID, err)
				}
				sv.Domain, sv.Host = sd, h
				byDomain[sd] = &sv
				owner[sd] = id
				list = append(list, sv)
			}
		}
	}
	var removed []string
	for h := range old {
		if !next[h] {
			removed = append(removed, h)
		}
	}
	slices.Sort(removed)
	// Nothing fails from here on. The modules say goodbye for a removed host's services
	// (XEP-0045 status 332 to their rooms' occupants) while the host and its services are
	// still served, so that their stanzas still reach every recipient, the host's own
	// users and other servers' included.
	deadline := time.Now().Add(StopWait)
	for _, h := range removed {
		r.notifyStop(h, deadline, "")
	}
	r.svc.Store(&serviceTable{byDomain: byDomain, list: list, owner: owner})
	r.infoGen.Add(1)
	r.storeDomains(d)
	if len(removed) == 0 {
		return nil
	}
	gone := func(sv *module.Service) bool { return sv.Host != "" && !next[sv.Host] }
	// A module made services for a removed host unless the host turned it off then.
	made := map[[2]string]bool{}
	for _, sv := range list {
		if gone(&sv) {
			made[[2]string{owner[sv.Domain], sv.Host}] = true
		}
	}
	byDomain = maps.Clone(byDomain) // the one published above is read by the shards
	maps.DeleteFunc(byDomain, func(_ string, sv *module.Service) bool { return gone(sv) })
	list = slices.DeleteFunc(slices.Clone(list), func(sv module.Service) bool { return gone(&sv) })
	r.svc.Store(&serviceTable{byDomain: byDomain, list: list, owner: owner})
	r.infoGen.Add(1)
	for _, h := range removed {
		for _, m := range r.mods {
			id := m.ModuleInfo().ID
			if w, ok := m.(module.HostWatcher); ok && (made[[2]string{id, h}] || !r.view(h).disabled(id)) {
				w.RemoveHost(h)
			}
		}
		r.closeHost(h, stanza.HostGone)
	}
	return nil
}

// closeHost closes every session of host's users with cond, on their shards.
func (r *Router) closeHost(host string, cond stanza.StreamCondition) {
	d, err := jid.Parse(host)
	if err != nil || r.closed.Load() {
		return
	}
	for _, s := range r.shards {
		o := getOp()
		o.kind = opCloseHost
		o.bare = d
		o.cond = cond
		s.q.pushForce(o)
	}
}
