package router

import (
	"crypto/tls"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

type iqKey struct {
	t         module.IQType
	ns, local string
}

type hookEntry struct {
	order int
	h     module.Hook
	id    string // the module's, for [vhosts] modules_disabled (hostmods.go)
}

// owned is a registration with the ID of the module that made it, so that a host that
// turns the module off (hostmods.go) can leave it out.
type owned[T any] struct {
	id string
	v  T
}

// registry collects what modules register. It is written during provisioning only and
// read-only afterwards, so shard workers read it without locks.
type registry struct {
	r           *Router
	iq          map[iqKey]module.IQHandler
	iqBare      map[iqKey]module.IQHandler
	nonza       map[nonzaKey]module.NonzaHandler
	bind2       map[nonzaKey]module.NonzaHandler
	bind2Feats  []string                   // namespaces of the Bind2 inline features, in registration order
	public      map[string]bool            // IQ namespaces answered for senders that are not local users
	services    map[string]*module.Service // claimed at provisioning; Router.svc after
	serviceList []module.Service
	hooks       [2][3][]hookEntry // [phase][kind]
	waits       [2][3]bool        // [phase][kind]: some hook may wait for the disk (WaitsForDisk)
	features    []string
	identities  []module.Identity
	// owners say which module made each registration (hostmods.go): features as
	// registered (before sorting), identities in the order of identities, the IQ,
	// nonza and Bind2 keys, the forms' FORM_TYPEs, the stream features' parts.
	featOwners  []owned[string]
	identOwners []string
	iqOwner     map[iqKey]string
	iqBareOwner map[iqKey]string
	nonzaOwner  map[nonzaKey]string
	bind2Owner  map[nonzaKey]string
	formOwner   map[string]string // guarded by formMu: a reload may add a form
	formMu      sync.Mutex
	featParts   [2][]owned[string] // [module.Stage]
	svcOwner    map[string]string  // service domain → module
	// forms are the InfoForm registrations, sorted by FORM_TYPE; copied on every change
	// (a reload may replace one: Reconfig.InfoForm), so a slice once read stays valid.
	forms atomic.Pointer[[]module.Form]
	// hostForms are the forms single hosts show instead of the server-wide ones
	// (Reconfig.HostInfoForms): host → FORM_TYPE → form; replaced whole on a change.
	hostForms     atomic.Pointer[map[string]map[string]module.Form]
	streamFeats   [2][]byte // [module.Stage] concatenated children of <stream:features>
	sessEnd       []owned[func(module.Context, module.Session)]
	avail         []owned[func(module.Context, module.Session)]
	bound         []owned[func(module.Context, module.Session) []byte]
	detach        []owned[func(module.Context, module.Session, [][]byte)]
	resumed       []owned[func(module.Context, module.Session)]
	registered    []owned[func(module.Context, module.Registration)]
	removed       []owned[func(module.Removal)]
	undeliverable []owned[module.Undeliverable]
	stop          []owned[func(module.Stopping)]
	discoNodes    map[string]module.IQHandler // DiscoNode registrations
	errs          []error                     // duplicate registrations, reported by provision
}

type nonzaKey struct{ ns, local string }

func newRegistry(r *Router) *registry {
	return &registry{r: r, iq: map[iqKey]module.IQHandler{}, iqBare: map[iqKey]module.IQHandler{},
		nonza: map[nonzaKey]module.NonzaHandler{}, bind2: map[nonzaKey]module.NonzaHandler{}, public: map[string]bool{}, services: map[string]*module.Service{},
		iqOwner: map[iqKey]string{}, iqBareOwner: map[iqKey]string{}, nonzaOwner: map[nonzaKey]string{},
		bind2Owner: map[nonzaKey]string{}, formOwner: map[string]string{}, svcOwner: map[string]string{}}
}

func (g *registry) dup(id, what string) {
	g.errs = append(g.errs, fmt.Errorf("module %s: %s is already registered", id, what))
}

func (g *registry) freeze() {
	for ph := range g.hooks {
		for k := range g.hooks[ph] {
			hs := g.hooks[ph][k]
			sort.SliceStable(hs, func(a, b int) bool { return hs[a].order < hs[b].order })
		}
	}
	g.r.svc.Store(&serviceTable{byDomain: g.services, list: g.serviceList, owner: g.svcOwner})
	sort.Strings(g.features)
	out := g.features[:0]
	for i, f := range g.features {
		if i == 0 || f != g.features[i-1] {
			out = append(out, f)
		}
	}
	g.features = out
}

func (g *registry) forModule(id string) module.Registrar { return &modReg{g: g, id: id} }

// Features returns the sorted, de-duplicated disco features.
func (g *registry) Features() []string { return g.features }

// modReg is one module's view of the registry.
type modReg struct {
	g  *registry
	id string
}

func (t iqKey) String() string {
	typ := "get"
	if t.t == module.IQSet {
		typ = "set"
	}
	return fmt.Sprintf("IQ %s {%s}%s", typ, t.ns, t.local)
}

func (m *modReg) IQ(t module.IQType, ns, local string, h module.IQHandler) {
	k := iqKey{t, ns, local}
	if _, ok := m.g.iq[k]; ok {
		m.g.dup(m.id, k.String())
		return
	}
	m.g.iq[k] = h
	m.g.iqOwner[k] = m.id
	m.Feature(ns)
}

func (m *modReg) IQBare(t module.IQType, ns, local string, h module.IQHandler) {
	k := iqKey{t, ns, local}
	if _, ok := m.g.iqBare[k]; ok {
		m.g.dup(m.id, "bare-JID "+k.String())
		return
	}
	m.g.iqBare[k] = h
	m.g.iqBareOwner[k] = m.id
}

func (m *modReg) Public(ns string) { m.g.public[ns] = true }

func (m *modReg) WaitsForDisk(ph module.Phase, k module.Kind) { m.g.waits[ph][k] = true }

func (m *modReg) Nonza(ns, local string, h module.NonzaHandler) {
	k := nonzaKey{ns, local}
	if _, ok := m.g.nonza[k]; ok {
		m.g.dup(m.id, "nonza {"+ns+"}"+local)
		return
	}
	m.g.nonza[k] = h
	m.g.nonzaOwner[k] = m.id
}

func (m *modReg) Bound(f func(module.Context, module.Session) []byte) {
	m.g.bound = append(m.g.bound, owned[func(module.Context, module.Session) []byte]{m.id, f})
}

func (m *modReg) Bind2(ns, local string, h module.NonzaHandler) {
	k := nonzaKey{ns, local}
	if _, ok := m.g.bind2[k]; ok {
		m.g.dup(m.id, "Bind2 inline {"+ns+"}"+local)
		return
	}
	m.g.bind2[k] = h
	m.g.bind2Owner[k] = m.id
	for _, f := range m.g.bind2Feats {
		if f == ns {
			return
		}
	}
	m.g.bind2Feats = append(m.g.bind2Feats, ns)
}

func (m *modReg) StreamFeature(stage module.Stage, xml string) {
	if int(stage) < len(m.g.streamFeats) {
		m.g.streamFeats[stage] = append(m.g.streamFeats[stage], xml...)
		m.g.featParts[stage] = append(m.g.featParts[stage], owned[string]{m.id, xml})
	}
}

func (m *modReg) Service(s module.Service) {
	d, err := jid.PrepareDomain(s.Domain)
	if err != nil || s.Handler == nil {
		m.g.errs = append(m.g.errs, fmt.Errorf("module %s: service %q: bad domain or nil handler", m.id, s.Domain))
		return
	}
	s.Domain = d
	if _, ok := m.g.services[d]; ok || m.g.r.isLocal(d) {
		m.g.dup(m.id, "service domain "+d)
		return
	}
	m.g.services[d] = &s
	m.g.svcOwner[d] = m.id
	m.g.serviceList = append(m.g.serviceList, s)
}

func (m *modReg) Services() []module.Service {
	if t := m.g.r.svc.Load(); t != nil {
		return t.list
	}
	return m.g.serviceList
}

func (m *modReg) DiscoNode(node string, h module.IQHandler) {
	if _, ok := m.g.discoNodes[node]; ok || node == "" || h == nil {
		m.g.dup(m.id, "disco node "+node)
		return
	}
	if m.g.discoNodes == nil {
		m.g.discoNodes = map[string]module.IQHandler{}
	}
	m.g.discoNodes[node] = h
}

func (m *modReg) DiscoNodeHandler(node string) (module.IQHandler, bool) {
	h, ok := m.g.discoNodes[node]
	return h, ok
}
func (m *modReg) Domains() []string { return append([]string(nil), m.g.r.opts.Domains...) }

func (m *modReg) OnStop(f func(module.Stopping)) {
	m.g.stop = append(m.g.stop, owned[func(module.Stopping)]{m.id, f})
}

func (m *modReg) OnUndeliverable(f module.Undeliverable) {
	m.g.undeliverable = append(m.g.undeliverable, owned[module.Undeliverable]{m.id, f})
}

func (m *modReg) Hook(ph module.Phase, k module.Kind, order int, h module.Hook) {
	m.g.hooks[ph][k] = append(m.g.hooks[ph][k], hookEntry{order, h, m.id})
}

func (m *modReg) Feature(ns string) {
	m.g.features = append(m.g.features, ns)
	m.g.featOwners = append(m.g.featOwners, owned[string]{m.id, ns})
}

func (m *modReg) InfoForm(f module.Form) {
	for _, x := range m.g.infoForms() {
		if x.Type == f.Type {
			m.g.dup(m.id, "disco#info form "+f.Type)
			return
		}
	}
	m.g.setInfoForm(m.id, f)
}

func (m *modReg) InfoForms() []module.Form { return m.g.infoForms() }

func (m *modReg) HostInfoForms(typ string, byHost map[string]module.Form) {
	m.g.setHostInfoForms(m.id, typ, byHost)
}

func (m *modReg) HostConfig() ([]string, func(host string, v any) error) {
	if f := m.g.r.opts.HostModuleConfig; f != nil {
		return f(m.id)
	}
	return nil, nil
}

func (m *modReg) HostInfo(host string) *module.HostInfo { return m.g.r.HostInfo(host) }

func (g *registry) infoForms() []module.Form {
	if p := g.forms.Load(); p != nil {
		return *p
	}
	return nil
}

// setInfoForm adds f, or replaces the form of its FORM_TYPE; a form without fields
// removes it. Provisioning and reloads call it one at a time.
func (g *registry) setInfoForm(id string, f module.Form) {
	g.formMu.Lock()
	if _, ok := g.formOwner[f.Type]; !ok {
		g.formOwner[f.Type] = id
	}
	g.formMu.Unlock()
	var out []module.Form
	for _, x := range g.infoForms() {
		if x.Type != f.Type {
			out = append(out, x)
		}
	}
	if len(f.Fields) > 0 {
		out = append(out, f)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Type < out[b].Type })
	g.forms.Store(&out)
	g.r.infoGen.Add(1)
}

// setHostInfoForms replaces the per-host forms of FORM_TYPE typ with byHost.
func (g *registry) setHostInfoForms(id, typ string, byHost map[string]module.Form) {
	g.formMu.Lock()
	defer g.formMu.Unlock()
	if _, ok := g.formOwner[typ]; !ok {
		g.formOwner[typ] = id
	}
	next := map[string]map[string]module.Form{}
	if p := g.hostForms.Load(); p != nil {
		for h, fs := range *p {
			for t, f := range fs {
				if t != typ {
					if next[h] == nil {
						next[h] = map[string]module.Form{}
					}
					next[h][t] = f
				}
			}
		}
	}
	for h, f := range byHost {
		f.Type = typ
		if next[h] == nil {
			next[h] = map[string]module.Form{}
		}
		next[h][typ] = f
	}
	g.hostForms.Store(&next)
	g.r.infoGen.Add(1)
}

// hostFormsOf returns the forms host shows instead of the server-wide ones, by FORM_TYPE.
func (g *registry) hostFormsOf(host string) map[string]module.Form {
	if p := g.hostForms.Load(); p != nil {
		return (*p)[host]
	}
	return nil
}

func (m *modReg) Identity(category, typ, name string) {
	m.g.identities = append(m.g.identities, module.Identity{Category: category, Type: typ, Name: name})
	m.g.identOwners = append(m.g.identOwners, m.id)
}

func (m *modReg) DataDir() string               { return m.g.r.opts.DataDir }
func (m *modReg) Controller() module.Controller { return m.g.r.opts.Controller }
func (m *modReg) TLSConfig() *tls.Config        { return m.g.r.opts.TLS }

func (m *modReg) WebURL(domain string) string {
	if f := m.g.r.opts.WebURL; f != nil {
		return f(domain)
	}
	return ""
}
func (m *modReg) Table(name string) store.Table { return m.g.r.st.Table(name) }
func (m *modReg) Store() store.Store            { return m.g.r.st }
func (m *modReg) Logger() zerolog.Logger        { return m.g.r.log.With().Str("mod", m.id).Logger() }

func (m *modReg) Config(v any) error {
	if m.g.r.opts.ModuleConfig == nil {
		return nil
	}
	return m.g.r.opts.ModuleConfig(m.id, v)
}

func (m *modReg) Features() []string            { return m.g.features }
func (m *modReg) Identities() []module.Identity { return m.g.identities }

func (m *modReg) OnSessionEnd(f func(module.Context, module.Session)) {
	m.g.sessEnd = append(m.g.sessEnd, owned[func(module.Context, module.Session)]{m.id, f})
}

func (m *modReg) OnAvailable(f func(module.Context, module.Session)) {
	m.g.avail = append(m.g.avail, owned[func(module.Context, module.Session)]{m.id, f})
}

func (m *modReg) OnDetach(f func(module.Context, module.Session, [][]byte)) {
	m.g.detach = append(m.g.detach, owned[func(module.Context, module.Session, [][]byte)]{m.id, f})
}

func (m *modReg) OnResumed(f func(module.Context, module.Session)) {
	m.g.resumed = append(m.g.resumed, owned[func(module.Context, module.Session)]{m.id, f})
}

func (m *modReg) OnRegistered(f func(module.Context, module.Registration)) {
	m.g.registered = append(m.g.registered, owned[func(module.Context, module.Registration)]{m.id, f})
}

func (m *modReg) OnRemoved(f func(module.Removal)) {
	m.g.removed = append(m.g.removed, owned[func(module.Removal)]{m.id, f})
}

// IQKey names one registered IQ handler.
type IQKey struct {
	Set       bool
	NS, Local string
}

// IQHandlers lists the server's IQ handlers (for tests that every advertised feature is
// answered).
func (r *Router) IQHandlers() []IQKey {
	var out []IQKey
	for k := range r.reg.iq {
		out = append(out, IQKey{Set: k.t == module.IQSet, NS: k.ns, Local: k.local})
	}
	return out
}

// CapsVer is the XEP-0115 verification string of the server's disco#info, computed once
// per set of forms.
func (r *Router) CapsVer() string {
	forms := r.reg.forms.Load()
	if c := r.caps.Load(); c != nil && c.forms == forms {
		return c.ver
	}
	var fs []module.Form
	if forms != nil {
		fs = *forms
	}
	c := &capsCache{forms: forms, ver: module.CapsVer(r.reg.identities, r.reg.features, fs...)}
	r.caps.Store(c)
	return c.ver
}

// capsCache is the verification string of one set of forms.
type capsCache struct {
	forms *[]module.Form
	ver   string
}

// StreamFeatures returns what modules add to <stream:features> at stage (read-only).
func (r *Router) StreamFeatures(stage module.Stage) []byte {
	if int(stage) < len(r.reg.streamFeats) {
		return r.reg.streamFeats[stage]
	}
	return nil
}

// Bind2Features lists the namespaces of the inline features modules offer in XEP-0386
// Bind2 requests.
func (r *Router) Bind2Features() []string { return r.reg.bind2Feats }

// HasNonza reports whether a module handles the top-level element {ns}local.
func (r *Router) HasNonza(ns, local []byte) bool {
	_, ok := r.reg.nonza[nonzaKey{string(ns), string(local)}]
	return ok
}
