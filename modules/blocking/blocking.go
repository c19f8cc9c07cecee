// Package blocking implements XEP-0191: Blocking Command, with XEP-0377 reports attached
// to a block (report.go).
//
// Blocked JIDs live in the "blocklist" table, one row per (user, jid). A small in-memory
// set of users known to block nobody keeps the per-stanza check off the disk for most
// traffic. Reports are logged and sent to the abuse desk the operator names; they are not
// stored, and nothing here acts on them by itself (no automatic bans).
package blocking

import (
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// MaxItems bounds a block list.
const MaxItems = 1000

func init() { module.Register(new(Mod)) }

// Mod is the module.
type Mod struct {
	t     store.Table
	st    store.Store // its key in lists
	known knownLists
	// pushes numbers the pushes, so that each has an id of its own (RFC 6120 §8.1.3): a
	// client matching answers to requests by id may ignore a repeated one.
	pushes atomic.Uint64
	// reportTo is [modules.blocking] report_to (a reload swaps it); reports numbers the forwarded reports.
	reportTo atomic.Pointer[module.HostSettings[[]jid.JID]]
	reports  atomic.Uint64
	budget   reportBudget
}

// knownLists remembers, per user, whether their block list is empty. Every stanza is
// checked against it, by the event loops and shard workers on every core at once, so it
// is split in stripes that each have their own lock on their own cache line: one shared
// RWMutex made the check slower on two cores than on one (BenchmarkBlocksNobody).
type knownLists struct {
	seed    maphash.Seed
	stripes [knownStripes]knownStripe
}

const (
	knownStripes = 32
	knownMax     = 1 << 20 // users remembered before a stripe starts over
)

type knownStripe struct {
	mu    sync.RWMutex
	empty map[string]bool // user -> their block list is empty
	_     [64 - 24 - 8]byte
}

func (k *knownLists) stripe(user string) *knownStripe {
	return &k.stripes[maphash.String(k.seed, user)%knownStripes]
}

func (k *knownLists) get(user string) (empty, known bool) {
	st := k.stripe(user)
	st.mu.RLock()
	empty, known = st.empty[user]
	st.mu.RUnlock()
	return empty, known
}

func (k *knownLists) set(user string, empty bool) {
	st := k.stripe(user)
	st.mu.Lock()
	if st.empty == nil || len(st.empty) >= knownMax/knownStripes {
		st.empty = map[string]bool{}
	}
	st.empty[user] = empty
	st.mu.Unlock()
}

func (k *knownLists) forget(user string) {
	st := k.stripe(user)
	st.mu.Lock()
	delete(st.empty, user)
	st.mu.Unlock()
}

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "blocking", XEP: 191, New: func() module.Module { return new(Mod) }, PerHost: true}
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: report_to changes at a reload. A host's
// table names who gets the reports of its users.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	set, err := module.DeriveSettings(rc, func(_ string, cfg *Config) (*[]jid.JID, error) {
		to := []jid.JID{}
		for _, s := range cfg.ReportTo {
			j, err := jid.Parse(s)
			if err != nil {
				return nil, fmt.Errorf("blocking: report_to %q: %v", s, err)
			}
			to = append(to, j)
		}
		return &to, nil
	})
	if err != nil {
		return nil, err
	}
	return func() { m.reportTo.Store(set) }, nil
}

// Provision registers handlers and hooks.
func (m *Mod) Provision(r module.Registrar) error {
	if err := module.Configure(r, m); err != nil {
		return err
	}
	m.t = r.Table("blocklist")
	if m.st = r.Store(); m.st != nil {
		lists.Store(m.st, m)
	}
	r.Feature(NSReporting)
	m.known.seed = maphash.MakeSeed()
	r.IQ(module.IQGet, ns.Blocking, "blocklist", m.list)
	r.IQ(module.IQSet, ns.Blocking, "block", m.block)
	r.IQ(module.IQSet, ns.Blocking, "unblock", m.unblock)
	for _, k := range []module.Kind{module.KindMessage, module.KindPresence, module.KindIQ} {
		r.Hook(module.Outbound, k, module.OrderBlocking, m.outbound)
		r.Hook(module.Inbound, k, module.OrderBlocking, m.inbound)
	}
	return nil
}

func (m *Mod) items(user string) []string {
	var out []string
	m.t.Scan(store.UserKey(user), func(k, _ []byte) bool {
		out = append(out, string(k[len(user)+1:]))
		return true
	})
	return out
}

// blocked reports whether user blocks j (full, bare or domain match, XEP-0191 §3.4 / RFC
// 6121 privacy matching).
func (m *Mod) blocked(user string, j jid.JID) bool {
	if m.blocksNobody(user) {
		return false
	}
	for _, cand := range []string{j.String(), j.Bare().String(), j.Domain()} {
		if _, err := m.t.Get(store.UserKey(user, cand)); err == nil {
			return true
		}
	}
	return false
}

// lists maps a server's store to its blocking module, for Blocker: one process may run
// several servers (tests), each with its own store.
var lists sync.Map // store.Store -> *Mod

// Blocker returns what says whether user (a bare JID) blocks j (j, its bare JID or its
// domain on user's list), for modules that send on a user's behalf with Context.Route,
// which skips the user's outbound hooks (the presence broadcast, PEP notifications). It
// always answers false when the blocking module does not run on the server whose store
// is st, or user blocks nobody: one lookup, however many JIDs are asked of. Safe for
// concurrent use.
func Blocker(st store.Store, user string) func(j jid.JID) bool {
	v, ok := lists.Load(st)
	if !ok || v.(*Mod).blocksNobody(user) {
		return func(jid.JID) bool { return false }
	}
	m := v.(*Mod)
	return func(j jid.JID) bool { return m.blocked(user, j) }
}

// Cleanup withdraws the module from Blocker.
func (m *Mod) Cleanup() error {
	if m.st != nil {
		lists.CompareAndDelete(m.st, m)
	}
	return nil
}

// blocksNobody reports whether user's block list is empty, reading it from the store
// the first time.
func (m *Mod) blocksNobody(user string) bool {
	if e, known := m.known.get(user); known {
		return e
	}
	n := len(m.items(user))
	m.known.set(user, n == 0)
	return n == 0
}

func (m *Mod) forget(user string) { m.known.forget(user) }

func (m *Mod) outbound(c module.Context, p *module.Packet) module.Verdict {
	if p.To.IsZero() {
		if p.Kind == module.KindPresence {
			// A broadcast presence runs on a shard worker: learn the sender's list here,
			// so that the check of the messages they send, which may run on an event loop
			// (routed in place), does not read the store there.
			m.blocksNobody(p.From.Bare().String())
		}
		return module.Continue
	}
	if !m.blocked(p.From.Bare().String(), p.To) {
		return module.Continue
	}
	if p.Kind == module.KindPresence && (p.Type == "unsubscribe" || p.Type == "unsubscribed") {
		// Cancelling or revoking a subscription only takes from the blocked entity: the
		// roster must follow (RFC 6121 §3.2.2, §3.3.2), or presence would go back to it
		// as soon as the block is lifted.
		return module.Continue
	}
	// §3.5: messages and IQ requests to a blocked entity are refused with <blocked/>;
	// presence and IQ results and errors (never answered with an error) go nowhere.
	if p.Kind == module.KindMessage || isRequest(p) {
		e := stanza.New(stanza.NotAcceptable)
		e.AppCondition = []byte("<blocked xmlns='" + ns.BlockingErrors + "'/>")
		c.Error(p, e)
	}
	return module.Stop
}

// isRequest reports whether p is an IQ get or set.
func isRequest(p *module.Packet) bool {
	return p.Kind == module.KindIQ && (p.Type == "get" || p.Type == "set")
}

func (m *Mod) inbound(c module.Context, p *module.Packet) module.Verdict {
	if p.From.IsZero() {
		return module.Continue
	}
	if p.Kind == module.KindPresence && p.Type == "" && p.From.Local() != "" && c.IsLocal(p.From.Domain()) &&
		m.blocked(p.From.Bare().String(), p.To) {
		// Available presence from a local user to a JID they block: the presence module
		// broadcasts with Context.Route, which skips the sender's outbound hooks, so the
		// block is enforced here (§3.3). Unavailable passes: the block itself sends it.
		return module.Stop
	}
	if !m.blocked(p.To.Bare().String(), p.From) {
		return module.Continue
	}
	// §3.4: messages and IQ requests from a blocked entity get service-unavailable, as if
	// the user did not exist; presence and IQ results and errors are dropped silently.
	// So are groupchat messages (a room occupant blocked by its nick): a room takes an
	// error from an occupant for a session gone and removes the blocker (XEP-0045 ghost
	// handling), which would let anyone blocked drive the blockers out of the room.
	if p.Kind == module.KindMessage && p.Type != "groupchat" || isRequest(p) {
		c.Error(p, stanza.New(stanza.ServiceUnavailable))
	}
	return module.Stop
}

// listedKey marks a session that requested the blocklist: the pushes are for those
// (XEP-0191 §3.3, §3.4); a client that never asked keeps no list to update.
type listedKey struct{}

func (m *Mod) list(c module.Context, iq *module.Packet) {
	if s := c.Session(); s != nil && s.Value(listedKey{}) == nil {
		s.SetValue(listedKey{}, true)
	}
	var b xmlstream.Builder
	b.Start("blocklist").Attr("xmlns", ns.Blocking)
	for _, j := range m.items(iq.From.Bare().String()) {
		b.Start("item").Attr("jid", j).End()
	}
	b.End()
	c.Reply(iq, b.B)
}

func parseItems(q xmlstream.Element) ([]jid.JID, bool) {
	var out []jid.JID
	for it := q.Children(); ; {
		e, ok := it.Next()
		if !ok {
			return out, true
		}
		if string(e.Name()) != "item" {
			continue
		}
		v, ok := e.AppendAttr(nil, "jid")
		if !ok {
			return nil, false
		}
		j, err := jid.ParseBytes(v)
		if err != nil {
			return nil, false
		}
		out = append(out, j)
	}
}

func (m *Mod) block(c module.Context, iq *module.Packet) {
	q, _ := iq.Payload()
	js, ok := parseItems(q)
	if !ok {
		c.Error(iq, stanza.New(stanza.JIDMalformed))
		return
	}
	if len(js) == 0 {
		c.Error(iq, stanza.New(stanza.BadRequest)) // §3.3: block needs at least one item
		return
	}
	user := iq.From.Bare().String()
	if len(m.items(user))+len(js) > MaxItems {
		c.Error(iq, stanza.New(stanza.ResourceConstraintCond))
		return
	}
	// Contacts that see the user's presence now and will not once blocked.
	var targets []jid.JID
	for _, to := range presenceTargets(c, iq.From.Bare(), js) {
		if !m.blocked(user, to) {
			targets = append(targets, to)
		}
	}
	// One batch: a block is all its items or none (a failure answers the whole request).
	ops := make([]store.Op, 0, len(js))
	for _, j := range js {
		ops = append(ops, store.Op{Key: store.UserKey(user, j.String())})
	}
	if err := m.t.Apply(ops...); err != nil {
		m.forget(user)
		c.Error(iq, module.StoreError(err))
		return
	}
	m.forget(user)
	c.Reply(iq, nil)
	m.push(c, iq, "block", js)
	if reports := reportsOf(q); len(reports) > 0 {
		m.handleReports(c, iq.From, reports)
	}
	// §3.3: the blocked contact gets unavailable presence from each available resource,
	// and so does a blocked entity that has a session's directed presence (a room, a
	// peer outside the roster): blocked, it would otherwise see the user online for good.
	for _, s := range c.Sessions(iq.From.Bare()) {
		sent := map[string]bool{}
		if s.Available() {
			for _, to := range targets {
				sent[to.String()] = true
				routeUnavailable(c, s.JID(), to)
			}
		}
		d, _ := s.Value(module.DirectedPresence).(map[string]bool)
		for to := range d {
			j, err := jid.Parse(to)
			if err != nil || !m.blocked(user, j) {
				continue
			}
			delete(d, to)
			if !sent[to] {
				routeUnavailable(c, s.JID(), j)
			}
		}
	}
}

func routeUnavailable(c module.Context, from, to jid.JID) {
	var b xmlstream.Builder
	b.Start("presence").Attr("type", "unavailable").
		Attr("from", from.String()).Attr("to", to.String()).End()
	c.Route(b.B)
}

// reportsOf returns the XEP-0377 reports of a block request's items, at most maxReports;
// a report in <block/> itself applies to each item without one of its own.
func reportsOf(q xmlstream.Element) []report {
	var out []report
	for it := q.Children(); len(out) < maxReports; {
		e, ok := it.Next()
		if !ok {
			break
		}
		if string(e.Name()) != "item" {
			continue
		}
		v, _ := e.AppendAttr(nil, "jid")
		j, err := jid.ParseBytes(v)
		if err != nil {
			continue
		}
		if r, ok := parseReport(e, j); ok {
			out = append(out, r)
		} else if r, ok := parseReport(q, j); ok {
			// slixmpp puts the report beside the items, in <block/> itself.
			out = append(out, r)
		}
	}
	return out
}

func (m *Mod) unblock(c module.Context, iq *module.Packet) {
	q, _ := iq.Payload()
	js, ok := parseItems(q)
	if !ok {
		c.Error(iq, stanza.New(stanza.JIDMalformed))
		return
	}
	if len(js) > MaxItems { // no list holds more; each item costs a store delete
		c.Error(iq, stanza.New(stanza.ResourceConstraintCond))
		return
	}
	user := iq.From.Bare().String()
	removed := js
	var err error
	if len(js) == 0 {
		for _, v := range m.items(user) {
			if j, err := jid.Parse(v); err == nil {
				removed = append(removed, j)
			}
		}
		err = m.t.DeletePrefix(store.UserKey(user))
	}
	if len(js) > 0 {
		ops := make([]store.Op, 0, len(js))
		for _, j := range js {
			ops = append(ops, store.Op{Key: store.UserKey(user, j.String()), Delete: true})
		}
		err = m.t.Apply(ops...) // all the items or none, as for a block
	}
	m.forget(user)
	if err != nil {
		if module.LogStoreError(err) {
			l := c.Logger()
			l.Error().Err(err).Str("user", user).Msg("blocking: unblock")
		}
		c.Error(iq, module.StoreError(err))
		return
	}
	c.Reply(iq, nil)
	m.push(c, iq, "unblock", js)
	// §3.4: an unblocked contact that may see the user's presence gets the current
	// presence of each available resource (unless another item still blocks it).
	for _, to := range presenceTargets(c, iq.From.Bare(), removed) {
		if m.blocked(user, to) {
			continue
		}
		for _, s := range c.Sessions(iq.From.Bare()) {
			if s.Available() && s.Presence() != nil {
				c.Route(xmlstream.SetAttrs(nil, s.Presence(),
					xmlstream.AttrSet{Name: "from", Value: []byte(s.JID().String())},
					xmlstream.AttrSet{Name: "to", Value: []byte(to.String())}))
			}
		}
	}
}

// presenceTargets returns the JIDs that block items js cover among the contacts allowed
// to see user's presence (subscription from or both): the item itself for a full JID, the
// roster contact for a bare JID, and every roster contact of the domain for a domain.
func presenceTargets(c module.Context, user jid.JID, js []jid.JID) []jid.JID {
	var items []store.RosterItem
	if l, ok := c.(module.RosterLister); ok {
		items = l.RosterItems(user)
	} else {
		items, _, _ = c.Store().Rosters().Get(user.String())
	}
	var out []jid.JID
	seen := map[string]bool{}
	add := func(j jid.JID) {
		if k := j.String(); !seen[k] {
			seen[k] = true
			out = append(out, j)
		}
	}
	var domains map[string]bool
	for _, j := range js {
		if j.Local() != "" {
			if it, ok := c.RosterItem(user, j.Bare()); ok && seesPresence(it) {
				add(j)
			}
			continue
		}
		if !j.IsBare() {
			continue // domain/resource: no roster contact matches
		}
		if domains == nil {
			domains = map[string]bool{}
		}
		domains[j.Domain()] = true
	}
	if domains != nil { // one pass over the roster for every domain item
		for _, it := range items {
			if !seesPresence(it) {
				continue
			}
			if ct, err := jid.Parse(it.JID); err == nil && domains[ct.Domain()] {
				add(ct)
			}
		}
	}
	return out
}

func seesPresence(it store.RosterItem) bool {
	return it.Sub == store.SubFrom || it.Sub == store.SubBoth
}

// push tells the user's other sessions about the change (XEP-0191 §3.3, §3.4).
// push tells the user's sessions that requested the blocklist of a change: op ("block"
// or "unblock") of js, the JIDs as the list keeps them (none: unblock all). It is built
// anew rather than echoed, so it names what the list holds, not the client's spelling.
func (m *Mod) push(c module.Context, iq *module.Packet, op string, js []jid.JID) {
	var payload xmlstream.Builder
	payload.Start(op).Attr("xmlns", ns.Blocking)
	for _, j := range js {
		payload.Start("item").Attr("jid", j.String()).End()
	}
	payload.End()
	for _, s := range c.Sessions(iq.From.Bare()) {
		if s.Value(listedKey{}) == nil {
			continue
		}
		var b xmlstream.Builder
		id := "block-push" + strconv.FormatUint(m.pushes.Add(1), 36)
		b.Start("iq").Attr("type", "set").Attr("id", id).Attr("to", s.JID().String()).Raw(payload.B).End()
		s.Send(b.B)
	}
}
