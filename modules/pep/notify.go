package pep

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pubsub"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// capsEntry is what the server knows of one caps hash and ver.
type capsEntry struct {
	features map[string]bool // nil until verified
	asked    time.Time       // when the pending query went out
	used     time.Time       // when a presence last carried the ver (the cache is LRU)
	waiters  []waiter        // resources that became available while it was pending
}

// waiter is a contact resource, available to owner, whose caps were being resolved.
type waiter struct{ owner, full string }

// capsReadyID is the id of the note that another owner's query resolved a ver: the server
// sends it to itself, as if from the contact's resource, to reach the owner's shard. The
// random part keeps an outsider from sending it (each would make the server send the
// owner's last items again).
var capsReadyID = capsReadyPrefix + strconv.FormatUint(rand.Uint64(), 36)

// capsQuery is a disco#info query in flight.
type capsQuery struct {
	key, hash, ver, owner, full string
	at                          time.Time // when it went out
}

// capsEntryLocked returns the cache entry of key, made (after roomForCapsLocked) when
// there is none, marked used at now. Call with m.mu held.
func (m *Mod) capsEntryLocked(key string, now time.Time) *capsEntry {
	e := m.mu.caps[key]
	if e == nil {
		m.roomForCapsLocked(now)
		e = &capsEntry{}
		m.mu.caps[key] = e
	}
	e.used = now
	return e
}

// roomForCapsLocked makes room in a full caps cache: entries whose query went
// unanswered go first, then the least recently used half. Anyone can send made-up vers
// (a local user, any contact); a flood of them costs queries and churn, never the
// caching of the vers clients use, which their presences keep recent. Call with m.mu
// held.
func (m *Mod) roomForCapsLocked(now time.Time) {
	if len(m.mu.caps) < maxCapsCache {
		return
	}
	for k, e := range m.mu.caps {
		if e.features == nil && now.Sub(e.asked) >= capsRetry {
			delete(m.mu.caps, k)
		}
	}
	if len(m.mu.caps) < maxCapsCache*9/10 {
		return
	}
	// The vers a remembered resource has stay: its presences (a status change) do not
	// look its entry up, so their age says nothing, and without it the resource would get
	// no notification until it changed caps. The rest go least recently used first.
	inUse := map[string]bool{}
	for _, rs := range m.mu.users {
		for _, r := range rs {
			if r.key != "" {
				inUse[r.key] = true
			}
		}
	}
	keys := make([]string, 0, len(m.mu.caps))
	for k := range m.mu.caps {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if inUse[a] != inUse[b] {
			if inUse[a] {
				return 1
			}
			return -1
		}
		return m.mu.caps[a].used.Compare(m.mu.caps[b].used)
	})
	for _, k := range keys[:len(keys)/2] {
		delete(m.mu.caps, k)
	}
}

// queryLocked registers a disco#info query and returns its id, or "" when
// maxCapsQueries are waiting for an answer even after those older than capsRetry (which
// will not come, or come too late to matter) are dropped; that sweep runs at most once a
// second. Call with m.mu held.
func (m *Mod) queryLocked(q capsQuery, now time.Time) string {
	if len(m.mu.queries) >= maxCapsQueries {
		if now.Sub(m.mu.swept) < time.Second {
			return ""
		}
		m.mu.swept = now
		for id, old := range m.mu.queries {
			if now.Sub(old.at) >= capsRetry {
				delete(m.mu.queries, id)
			}
		}
		if len(m.mu.queries) >= maxCapsQueries {
			return ""
		}
	}
	q.at = now
	m.mu.seq++
	id := capsIDPrefix + strconv.FormatUint(m.mu.seq, 10)
	m.mu.queries[id] = q
	return id
}

// resource is a contact's available resource as one owner saw it.
type resource struct {
	at       time.Time       // its last available presence
	key      string          // caps hash + " " + ver; "" without caps
	features map[string]bool // features of an unverified answer, for this resource only
}

const (
	capsIDPrefix    = "pep-caps-"
	capsReadyPrefix = "pep-caps-ready-"
)

// presence records the contacts' available resources and their caps (inbound, on the
// owner's shard). It never stops the presence.
func (m *Mod) presence(c module.Context, pk *module.Packet) module.Verdict {
	if pk.From.IsZero() || pk.From.IsBare() || pk.To.IsZero() || pk.From.Bare().Equal(pk.To.Bare()) {
		return module.Continue
	}
	owner, full := pk.To.Bare().String(), pk.From.String()
	switch pk.Type {
	case "unavailable", "error":
		m.mu.Lock()
		m.forgetLocked(owner, full)
		m.mu.Unlock()
		return module.Continue
	case "":
	default:
		return module.Continue
	}
	// Presence-based delivery goes to contacts (XEP-0163 §4.3.1: a presence subscription
	// from the contact to the owner). Presence from anyone else (a room's occupants, 10,000
	// of them in a big room, each to every other) is not tracked: it would cost memory per
	// pair and send the owner's notifications to occupant JIDs.
	if it, ok := c.RosterItem(pk.To.Bare(), pk.From.Bare()); !ok || it.Sub != store.SubFrom && it.Sub != store.SubBoth {
		return module.Continue
	}
	key := ""
	hash, ver, capsNode, hasCaps := capsOf(pk.Elem())
	if hasCaps {
		key = hash + " " + ver
	}
	m.mu.Lock()
	old, had := m.mu.users[owner][full]
	if had && old.key == key && (key == "" || m.mu.caps[key] != nil) {
		old.at = c.Now() // still there: the last to give way
		if key != "" {
			m.mu.caps[key].used = old.at
		}
		m.mu.Unlock()
		return module.Continue // a status change: nothing new
	}
	m.rememberLocked(owner, full, &resource{key: key, at: c.Now()})
	queryID := ""
	ready := false
	if key != "" {
		now := c.Now()
		e := m.capsEntryLocked(key, now)
		switch {
		case e.features != nil:
			ready = true
		case now.Sub(e.asked) < capsRetry:
			if !had && len(e.waiters) < maxWaiters {
				e.waiters = append(e.waiters, waiter{owner, full})
			}
		default:
			queryID = m.queryLocked(capsQuery{key: key, hash: hash, ver: ver, owner: owner, full: full}, now)
			if queryID != "" {
				e.asked = now
				if !had && len(e.waiters) < maxWaiters {
					e.waiters = append(e.waiters, waiter{owner, full})
				}
			}
		}
	}
	m.mu.Unlock()
	if queryID != "" {
		// XEP-0115 §6.2: ask the resource that advertised the ver, for node#ver.
		var b xmlstream.Builder
		b.Start("iq").Attr("type", "get").Attr("id", queryID).Attr("from", owner).Attr("to", full).
			Start("query").Attr("xmlns", ns.DiscoInfo).Attr("node", capsNode+"#"+ver).End().End()
		c.Route(b.B)
	}
	if ready && !had {
		m.sendLast(c, pk.To.Bare(), pk.From)
	}
	return module.Continue
}

// capsOf returns the caps hash, ver and node of a presence (ok false without valid caps).
func capsOf(e xmlstream.Element) (hash, ver, node string, ok bool) {
	cp, found := e.Child(ns.Caps, "c")
	if !found {
		return "", "", "", false
	}
	h, _ := cp.AppendAttr(nil, "hash")
	v, _ := cp.AppendAttr(nil, "ver")
	n, _ := cp.AppendAttr(nil, "node")
	if len(h) == 0 || len(v) == 0 || len(v) >= 256 || len(n) >= 1024 {
		return "", "", "", false
	}
	return string(h), string(v), string(n), true
}

// ownPresence resolves the caps ver of the owner's resource that broadcasts its presence
// (outbound, on the owner's shard), as presence does a contact's, so that ownWants can
// tell which of the owner's clients want a node's notifications (NODE+notify), and sends
// a newly available one the last items it wants, as a contact's gets them (XEP-0163
// §4.3.2: "to all newly-available resources for each subscriber, including the account
// owner itself"). It never stops the presence.
func (m *Mod) ownPresence(c module.Context, pk *module.Packet) module.Verdict {
	if pk.Type != "" || !pk.To.IsZero() || pk.From.IsBare() {
		return module.Continue
	}
	hash, ver, node, ok := capsOf(pk.Elem())
	if s := c.Session(); s != nil && s.Value(ownFeaturesKey{}) != nil {
		s.SetValue(ownFeaturesKey{}, nil) // its answer was about the caps it had then
	}
	if !ok {
		return module.Continue
	}
	key := hash + " " + ver
	owner, full := pk.From.Bare().String(), pk.From.String()
	now := c.Now()
	m.mu.Lock()
	e := m.capsEntryLocked(key, now)
	features := e.features
	queryID := ""
	if features == nil {
		// The answer sends the last items (capsAnswer's waiters), when this presence is
		// the one that makes the resource available.
		if pk.Initial && len(e.waiters) < maxWaiters {
			e.waiters = append(e.waiters, waiter{owner, full})
		}
		if now.Sub(e.asked) >= capsRetry {
			queryID = m.queryLocked(capsQuery{key: key, hash: hash, ver: ver, owner: owner, full: full}, now)
			if queryID != "" {
				e.asked = now
			}
		}
	}
	m.mu.Unlock()
	if features != nil && pk.Initial {
		m.sendLastFeatures(c, pk.From.Bare(), pk.From, features)
	}
	if queryID == "" {
		return module.Continue
	}
	var b xmlstream.Builder
	b.Start("iq").Attr("type", "get").Attr("id", queryID).Attr("from", owner).Attr("to", pk.From.String()).
		Start("query").Attr("xmlns", ns.DiscoInfo).Attr("node", node+"#"+ver).End().End()
	c.Route(b.B)
	return module.Continue
}

// ownCapsAnswer takes the answer of one of the owner's own resources to ownPresence's
// query (outbound, on the owner's shard: an answer to the account's own bare JID goes
// no further than the Outbound IQ hooks).
func (m *Mod) ownCapsAnswer(c module.Context, pk *module.Packet) module.Verdict {
	if pk.To.IsZero() || !pk.From.Bare().Equal(pk.To.Bare()) {
		return module.Continue
	}
	return m.capsAnswer(c, pk)
}

// ownFeaturesKey is the session value holding the features one of the owner's own
// resources answered ownPresence's query with (map[string]bool).
type ownFeaturesKey struct{}

// ownWants reports whether the owner's session s advertised feature: in its answer to
// ownPresence's query, or in a caps ver verified before; false when its caps are unknown.
func (m *Mod) ownWants(s module.Session, feature string) bool {
	return m.ownFeatures(s)[feature]
}

// ownFeatures returns the features of the owner's session s (nil: unknown).
func (m *Mod) ownFeatures(s module.Session) map[string]bool {
	if f, ok := s.Value(ownFeaturesKey{}).(map[string]bool); ok {
		return f
	}
	p, err := xmlstream.ParseElement(s.Presence(), "jabber:client")
	if err != nil {
		return nil
	}
	hash, ver, _, ok := capsOf(p)
	if !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.mu.caps[hash+" "+ver]; e != nil {
		return e.features
	}
	return nil
}

// capsAnswer takes the answers to the disco#info queries sent for caps (inbound IQ, on the
// owner's shard), and the note that another owner's query resolved a ver.
func (m *Mod) capsAnswer(c module.Context, pk *module.Packet) module.Verdict {
	if (pk.Type != "result" && pk.Type != "error") || !strings.HasPrefix(pk.ID, capsIDPrefix) || !pk.To.IsBare() {
		return module.Continue
	}
	owner := pk.To.Bare()
	if pk.ID == capsReadyID {
		if pk.Type != "result" {
			return module.Stop
		}
		m.mu.Lock()
		r := m.mu.users[owner.String()][pk.From.String()]
		ready := r != nil && m.mu.caps[r.key] != nil && m.mu.caps[r.key].features != nil
		m.mu.Unlock()
		if ready {
			m.sendLast(c, owner, pk.From)
		}
		return module.Stop
	}
	m.mu.Lock()
	q, ok := m.mu.queries[pk.ID]
	if ok && (q.owner != owner.String() || q.full != pk.From.String()) {
		ok = false // not from the resource asked
	} else if ok {
		delete(m.mu.queries, pk.ID)
	}
	m.mu.Unlock()
	if !ok {
		return module.Continue
	}
	var info discoInfo
	valid := false
	if pk.Type == "result" {
		if qe, ok := pk.Elem().Child(ns.DiscoInfo, "query"); ok {
			info, valid = parseDiscoInfo(qe)
		}
	}
	var features map[string]bool
	if valid {
		features = notifyFeatures(info.features)
	}
	verified := false
	if valid {
		v, ok := info.ver(q.hash)
		verified = ok && v == q.ver
	}
	m.mu.Lock()
	e := m.mu.caps[q.key]
	var waiters []waiter
	if e != nil {
		waiters = e.waiters
		e.waiters = nil
		if verified {
			e.features = features
		} else {
			delete(m.mu.caps, q.key) // ask again at the next presence with this ver
		}
	}
	if !verified && features != nil {
		// Trusted for the resource that answered, not for others claiming the same ver.
		if r := m.mu.users[q.owner][q.full]; r != nil {
			r.features = features
		}
	}
	m.mu.Unlock()
	if !verified && features != nil && strings.HasPrefix(q.full, q.owner+"/") {
		// One of the owner's own resources (ownPresence's query) whose ver does not
		// verify: its session keeps what it answered, for ownWants. (A verified ver is in
		// the cache for every session that has it; nothing is kept per session.)
		for _, s := range c.Sessions(owner) {
			if s.JID().String() == q.full {
				s.SetValue(ownFeaturesKey{}, features)
			}
		}
	}
	if !verified && pk.Type == "result" {
		l := c.Logger()
		l.Debug().Str("from", q.full).Str("ver", q.ver).Msg("pep: caps ver does not verify")
	}
	for _, w := range waiters {
		if !verified && (w.owner != q.owner || w.full != q.full) {
			continue
		}
		wf, err := jid.Parse(w.full)
		if err != nil {
			continue
		}
		if w.owner == owner.String() {
			m.sendLast(c, owner, wf)
			continue
		}
		var b xmlstream.Builder
		b.Start("iq").Attr("type", "result").Attr("id", capsReadyID).Attr("from", w.full).Attr("to", w.owner).End()
		c.Route(b.B)
	}
	return module.Stop
}

// features returns the caps features of one of owner's contact resources (nil: unknown).
// Call with m.mu held.
func (m *Mod) featuresLocked(r *resource) map[string]bool {
	if r.features != nil {
		return r.features
	}
	if e := m.mu.caps[r.key]; e != nil {
		return e.features
	}
	return nil
}

// Bounds of the contact resources remembered per owner. A contact's server can claim any
// number of resources and need never say they went (a server that lost its link to us
// does not), so the oldest give way to new ones rather than new ones being refused.
const (
	maxResources           = 5000                // per owner
	maxResourcesPerContact = module.MaxResources // per owner and contact
)

// rememberLocked records r as owner's contact resource full, replacing what was known of
// it. A new one past maxResourcesPerContact makes the contact's oldest go, past
// maxResources the owner's oldest; both scans happen only at a bound. Call with m.mu
// held.
func (m *Mod) rememberLocked(owner, full string, r *resource) {
	rs := m.mu.users[owner]
	if rs == nil {
		rs = map[string]*resource{}
		m.mu.users[owner] = rs
	}
	if _, had := rs[full]; !had {
		contact, _, _ := strings.Cut(full, "/")
		pc := owner + "\x00" + contact
		if m.mu.perContact[pc] >= maxResourcesPerContact {
			m.forgetLocked(owner, oldest(rs, contact+"/"))
		} else if len(rs) >= maxResources {
			m.forgetLocked(owner, oldest(rs, ""))
		}
		m.mu.users[owner] = rs // forgetLocked drops an owner's empty map
		m.mu.perContact[pc]++
	}
	rs[full] = r
}

// oldest returns the full JID in rs starting with prefix whose presence is the oldest.
func oldest(rs map[string]*resource, prefix string) string {
	var full string
	var at time.Time
	for f, r := range rs {
		if strings.HasPrefix(f, prefix) && (full == "" || r.at.Before(at)) {
			full, at = f, r.at
		}
	}
	return full
}

// forgetLocked drops owner's record of the contact resource full. Call with m.mu held.
func (m *Mod) forgetLocked(owner, full string) {
	rs := m.mu.users[owner]
	if _, ok := rs[full]; !ok {
		return
	}
	delete(rs, full)
	if len(rs) == 0 {
		delete(m.mu.users, owner)
	}
	contact, _, _ := strings.Cut(full, "/")
	pc := owner + "\x00" + contact
	if n := m.mu.perContact[pc] - 1; n > 0 {
		m.mu.perContact[pc] = n
	} else {
		delete(m.mu.perContact, pc)
	}
}

// interested lists the contact resources available to owner that want node's
// notifications (NODE+notify in their caps).
func (m *Mod) interested(owner, node string) []string {
	want := node + "+notify"
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for full, r := range m.mu.users[owner] {
		if m.featuresLocked(r)[want] {
			out = append(out, full)
		}
	}
	return out
}

// sendLast sends the resource full (a contact's, or the owner's own) the newest item of
// each of owner's nodes that sends it on presence, that it may read and wants (XEP-0163
// §4.3.2).
func (m *Mod) sendLast(c module.Context, owner, full jid.JID) {
	var f map[string]bool
	if full.Bare().Equal(owner) {
		for _, s := range c.Sessions(owner) {
			if s.JID().Equal(full) {
				f = m.ownFeatures(s)
			}
		}
	} else {
		m.mu.Lock()
		if r := m.mu.users[owner.String()][full.String()]; r != nil {
			f = m.featuresLocked(r)
		}
		m.mu.Unlock()
	}
	m.sendLastFeatures(c, owner, full, f)
}

// sendLastFeatures is sendLast for a resource whose features are f.
func (m *Mod) sendLastFeatures(c module.Context, owner, full jid.JID, f map[string]bool) {
	if f == nil {
		return
	}
	o := owner.String()
	type last struct {
		node string
		cfg  pubsub.NodeConfig
	}
	var todo []last
	m.nodes.List(o, func(node string, cfg pubsub.NodeConfig) bool {
		if cfg.SendLast == pubsub.SendOnSubAndPresence && f[node+"+notify"] {
			todo = append(todo, last{node, cfg})
		}
		return true
	})
	for _, l := range todo {
		if !m.allowed(c, owner, full.Bare(), l.node, l.cfg) {
			continue
		}
		if it, ok, _ := m.nodes.Last(o, l.node); ok {
			c.Route(pubsub.EventMessage(owner, full, pubsub.ItemsEvent(l.node, it)))
		}
	}
}

// maxNotifyFeatures bounds the NODE+notify features kept of one caps answer.
const maxNotifyFeatures = 256

// notifyFeatures is what is kept of a disco#info answer's features: only NODE+notify ones
// are ever asked (XEP-0163 §4.3), and an answer may list thousands of made-up features
// whose hash a client computed to match, each entry in a cache of maxCapsCache. Never
// nil: nil means "not answered".
func notifyFeatures(all []string) map[string]bool {
	m := map[string]bool{}
	for _, f := range all {
		if strings.HasSuffix(f, "+notify") && len(m) < maxNotifyFeatures {
			m[f] = true
		}
	}
	return m
}
