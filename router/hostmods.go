package router

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/vireo-im/vireo/modules/module"
)

// hostView is what one virtual host keeps of the modules when it turns some of them off
// ([vhosts."<host>"] modules_disabled): the hooks, stream features and Bind2 inline
// features of the others, filtered once so that a stanza's path only picks the list.
type hostView struct {
	off         map[string]bool
	hooks       [2][3][]hookEntry // [phase][kind]
	streamFeats [2][]byte         // [module.Stage]
	bind2Feats  []string
}

// disabled reports whether the module id is off on the view's host; a nil view (a host
// that turns nothing off) has every module on.
func (v *hostView) disabled(id string) bool { return v != nil && v.off[id] }

// hostModules are the views of the hosts that turn something off; Router.hostMods is nil
// while none does, so a stanza pays one atomic load for the feature.
type hostModules map[string]*hostView

// everyHost are the modules a host cannot do without: discovery, presence and the
// roster are RFC 6120/6121's own, and the other modules build on them.
var everyHost = map[string]bool{"disco": true, "presence": true, "roster": true}

// SetHostModules turns modules off on some virtual hosts: off maps a host to the IDs of
// the modules its users and the stanzas addressed to it do without. Their IQs are
// answered service-unavailable there, their hooks, session callbacks, stream features,
// top-level elements and Bind2 features skipped, and the host's disco#info (HostInfo)
// leaves out their features, identities and forms. A service module turned off loses
// its services on the host (conference.<host>: the rooms' occupants are told, XEP-0045
// status 332, as when the host goes), and gets them back when turned on again. An
// unknown module, or one every host needs, is an error and nothing changes. Modules not
// enabled on the server are ignored. Safe for concurrent use.
func (r *Router) SetHostModules(off map[string][]string) error {
	views, err := r.hostViews(off)
	if err != nil {
		return err
	}
	r.hostsMu.Lock()
	defer r.hostsMu.Unlock()
	if len(views) == 0 {
		r.hostMods.Store(nil)
	} else {
		r.hostMods.Store(&views)
	}
	r.syncServices(r.shards != nil) // none yet while New provisions: nobody to tell
	return nil
}

// CheckHostModules reports the error SetHostModules would return for off, changing
// nothing.
func (r *Router) CheckHostModules(off map[string][]string) error {
	_, err := r.hostViews(off)
	return err
}

func (r *Router) hostViews(off map[string][]string) (hostModules, error) {
	enabled := map[string]bool{}
	for _, m := range r.mods {
		enabled[m.ModuleInfo().ID] = true
	}
	views := hostModules{}
	for host, ids := range off {
		v := &hostView{off: map[string]bool{}}
		for _, id := range ids {
			if _, ok := module.Lookup(id); !ok {
				return nil, fmt.Errorf("vhosts.%q: modules_disabled: no module %q", host, id)
			}
			if everyHost[id] {
				return nil, fmt.Errorf("vhosts.%q: modules_disabled: every host needs module %q", host, id)
			}
			if enabled[id] {
				v.off[id] = true
			}
		}
		if len(v.off) == 0 {
			continue
		}
		r.reg.fill(v)
		views[host] = v
	}
	return views, nil
}

// fill filters the registrations for v, whose off set is complete.
func (g *registry) fill(v *hostView) {
	for ph := range g.hooks {
		for k := range g.hooks[ph] {
			v.hooks[ph][k] = slices.DeleteFunc(slices.Clone(g.hooks[ph][k]), func(h hookEntry) bool { return v.off[h.id] })
		}
	}
	for st := range g.featParts {
		for _, p := range g.featParts[st] {
			if !v.off[p.id] {
				v.streamFeats[st] = append(v.streamFeats[st], p.v...)
			}
		}
	}
	for _, f := range g.bind2Feats {
		keep := false
		for k, id := range g.bind2Owner {
			if k.ns == f && !v.off[id] {
				keep = true
			}
		}
		if keep {
			v.bind2Feats = append(v.bind2Feats, f)
		}
	}
}

// view returns host's view: nil when it turns nothing off.
func (r *Router) view(host string) *hostView {
	if m := r.hostMods.Load(); m != nil {
		return (*m)[host]
	}
	return nil
}

// hostInfoCache is one host's HostInfo as of a generation of Router.infoGen.
type hostInfoCache struct {
	gen  uint64
	info *module.HostInfo
}

// HostInfo is the disco#info and disco#items of the server as host shows them: the
// identities, features and forms of the modules on there, and the services of the host
// and of the whole server. The same pointer comes back until the modules, forms or
// services change, so callers may cache what they derive from it.
func (r *Router) HostInfo(host string) *module.HostInfo {
	gen := r.infoGen.Load()
	if c, ok := r.hostInfos.Load(host); ok && c.(*hostInfoCache).gen == gen {
		return c.(*hostInfoCache).info
	}
	info := r.reg.hostInfo(host, r.view(host))
	if r.svc.Load() != nil {
		// Only once provisioning is over: a host's list before it would be cached empty.
		r.hostInfos.Store(host, &hostInfoCache{gen: gen, info: info})
	}
	return info
}

func (g *registry) hostInfo(host string, v *hostView) *module.HostInfo {
	info := &module.HostInfo{}
	for i, id := range g.identities {
		if !v.disabled(g.identOwners[i]) {
			info.Identities = append(info.Identities, id)
		}
	}
	if v == nil {
		info.Features = g.features
	} else {
		seen := map[string]bool{}
		for _, f := range g.featOwners {
			if !v.off[f.id] && !seen[f.v] {
				seen[f.v] = true
				info.Features = append(info.Features, f.v)
			}
		}
		sort.Strings(info.Features)
	}
	g.formMu.Lock()
	owners := maps.Clone(g.formOwner)
	g.formMu.Unlock()
	own := g.hostFormsOf(host)
	for _, f := range g.infoForms() {
		if x, ok := own[f.Type]; ok {
			f = x
		}
		if len(f.Fields) > 0 && !v.disabled(owners[f.Type]) {
			info.Forms = append(info.Forms, f)
		}
	}
	// A host may have a form the server-wide disco#info lacks.
	added := false
	for t, f := range own {
		if len(f.Fields) > 0 && !v.disabled(owners[t]) && !slices.ContainsFunc(g.infoForms(), func(x module.Form) bool { return x.Type == t }) {
			info.Forms, added = append(info.Forms, f), true
		}
	}
	if added {
		slices.SortFunc(info.Forms, func(a, b module.Form) int { return strings.Compare(a.Type, b.Type) })
	}
	if t := g.r.svc.Load(); t != nil {
		for _, sv := range t.list {
			if sv.Host == "" || sv.Host == host {
				info.Services = append(info.Services, sv)
			}
		}
		// The same order whatever order the modules claimed them in (hosts added at a
		// reload or at start).
		slices.SortStableFunc(info.Services, func(a, b module.Service) int { return strings.Compare(a.Domain, b.Domain) })
	}
	info.Ver = module.CapsVer(info.Identities, info.Features, info.Forms...)
	return info
}

// CapsVerFor is the XEP-0115 verification string of host's disco#info.
func (r *Router) CapsVerFor(host string) string {
	if r.view(host) == nil && r.reg.hostFormsOf(host) == nil {
		return r.CapsVer()
	}
	return r.HostInfo(host).Ver
}

// StreamFeaturesFor returns what the modules on host add to <stream:features> at stage
// (read-only).
func (r *Router) StreamFeaturesFor(host string, stage module.Stage) []byte {
	if v := r.view(host); v != nil && int(stage) < len(v.streamFeats) {
		return v.streamFeats[stage]
	}
	return r.StreamFeatures(stage)
}

// Bind2FeaturesFor lists the namespaces of the inline Bind2 features of the modules on
// host.
func (r *Router) Bind2FeaturesFor(host string) []string {
	if v := r.view(host); v != nil {
		return v.bind2Feats
	}
	return r.reg.bind2Feats
}

// HostView names the set of modules host runs: "" for every enabled one, the host itself
// when it turns some off. Callers key what they build from the modules (stream
// features) by it.
func (r *Router) HostView(host string) string {
	if r.view(host) != nil {
		return host
	}
	return ""
}
