package pep

import (
	"bytes"
	"sync"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pubsub"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// XEP-0402 §5.3 compatibility with XEP-0048 bookmarks: in XEP-0049 private storage (the
// private module's side), and in the PEP node storage:bookmarks (XEP-0048 §3.3;
// legacyPEP), which is no node of its own but a view of the XEP-0402 node.
const (
	// NSBookmarks is the XEP-0402 node and payload namespace.
	NSBookmarks = "urn:xmpp:bookmarks:1"
	// NSLegacyBookmarks is the XEP-0048 namespace of <storage/>.
	NSLegacyBookmarks = "storage:bookmarks"
	// FeatureBookmarksCompat says, on the account, that bookmarks written through either
	// protocol are seen through the other.
	FeatureBookmarksCompat = NSBookmarks + "#compat"
	// FeatureBookmarksCompatPEP says, on the account, that the PEP node storage:bookmarks
	// is the XEP-0402 node seen through XEP-0048.
	FeatureBookmarksCompatPEP = NSBookmarks + "#compat-pep"
	// legacyItem is the id of the one item of the storage:bookmarks node (XEP-0048 §3.3).
	legacyItem = "current"
	// maxLegacyBookmarks bounds the conferences of one XEP-0048 list.
	maxLegacyBookmarks = 1000
)

// bridges maps a server's store to its PEP module, for the private storage module: one
// process may run several servers (tests), each with its own store.
var bridges sync.Map // store.Store -> *Mod

// Bookmarks is the XEP-0402 side of the bookmarks compatibility, for the private storage
// module. Its methods run on the user's shard (the private storage request's Context).
type Bookmarks interface {
	// Legacy returns the user's XEP-0402 bookmarks as a XEP-0048 <storage/> element;
	// ok is false when the user has no bookmarks node.
	Legacy(c module.Context, user jid.JID) (storage []byte, ok bool, err error)
	// SetLegacy makes the user's XEP-0402 bookmarks those of a XEP-0048 <storage/>
	// element: changed and new conferences are published, missing ones retracted, with
	// the notifications of each.
	SetLegacy(c module.Context, user jid.JID, storage xmlstream.Element) *stanza.Error
}

// BookmarksFor returns the PEP module of the server whose store is st, or nil when PEP
// is not enabled there.
func BookmarksFor(st store.Store) Bookmarks {
	if m, ok := bridges.Load(st); ok {
		return m.(*Mod)
	}
	return nil
}

// Cleanup withdraws the module from BookmarksFor.
func (m *Mod) Cleanup() error {
	if m.st != nil {
		bridges.CompareAndDelete(m.st, m)
	}
	return nil
}

// bookmarksConfig is the XEP-0402 §3 node configuration.
func (m *Mod) bookmarksConfig(host string) pubsub.NodeConfig {
	c := pubsub.DefaultConfig(m.policy(host))
	c.MaxItems, c.Access, c.SendLast = m.conf(host).MaxItems, pubsub.AccessWhitelist, pubsub.SendNever
	return c
}

// Legacy implements Bookmarks: each XEP-0402 item cast into the storage:bookmarks
// namespace with its item id as the jid attribute (XEP-0402 §5.3).
func (m *Mod) Legacy(c module.Context, user jid.JID) ([]byte, bool, error) {
	m.migrateLegacyNode(c, user)
	o := user.String()
	_, exists, err := m.nodes.Config(o, NSBookmarks)
	if err != nil || !exists {
		return nil, false, err
	}
	its, err := m.nodes.Items(o, NSBookmarks, 0)
	if err != nil {
		return nil, false, err
	}
	var b xmlstream.Builder
	b.Start("storage").Attr("xmlns", NSLegacyBookmarks)
	for _, it := range its {
		castLegacy(&b, it.ID, it.Payload)
	}
	b.End()
	return b.B, true, nil
}

// castLegacy writes XEP-0402 item id's payload as a XEP-0048 <conference/> (in the
// enclosing storage:bookmarks namespace); payloads that are no XEP-0402 conference are
// skipped.
func castLegacy(b *xmlstream.Builder, id string, payload []byte) {
	e, err := xmlstream.ParseElement(payload, "")
	if err != nil || string(e.NS()) != NSBookmarks || string(e.Name()) != "conference" {
		return
	}
	b.Start("conference").Attr("jid", id)
	copyAttrs(b, e)
	ch := e.Children()
	for x, ok := ch.Next(); ok; x, ok = ch.Next() {
		switch {
		case string(x.NS()) == NSBookmarks && (string(x.Name()) == "nick" || string(x.Name()) == "password"):
			b.Start(string(x.Name())).TextBytes(x.AppendText(nil)).End()
		case string(x.NS()) == NSBookmarks && string(x.Name()) == "extensions":
			b.Start("extensions")
			xc := x.Children()
			for y, ok := xc.Next(); ok; y, ok = xc.Next() {
				b.Raw(y.Raw())
			}
			b.End()
		}
	}
	b.End()
}

func copyAttrs(b *xmlstream.Builder, e xmlstream.Element) {
	for _, a := range []string{"name", "autojoin"} {
		if v, ok := e.AppendAttr(nil, a); ok {
			b.AttrBytes(a, v)
		}
	}
}

// fromLegacy converts one XEP-0048 <conference/> to a XEP-0402 item id and payload;
// children of other namespaces go into <extensions/>. ok is false without a valid jid.
func fromLegacy(e xmlstream.Element) (string, []byte, bool) {
	v, _ := e.AppendAttr(nil, "jid")
	j, err := jid.Parse(string(v))
	if err != nil || !j.IsBare() || j.Local() == "" {
		return "", nil, false
	}
	var b xmlstream.Builder
	b.Start("conference").Attr("xmlns", NSBookmarks)
	copyAttrs(&b, e)
	var ext [][]byte
	ch := e.Children()
	for x, ok := ch.Next(); ok; x, ok = ch.Next() {
		name := string(x.Name())
		switch {
		case string(x.NS()) == NSLegacyBookmarks && (name == "nick" || name == "password"):
			b.Start(name).TextBytes(x.AppendText(nil)).End()
		case string(x.NS()) == NSLegacyBookmarks && name == "extensions":
			xc := x.Children()
			for y, ok := xc.Next(); ok; y, ok = xc.Next() {
				ext = append(ext, y.Raw())
			}
		case string(x.NS()) != NSLegacyBookmarks:
			ext = append(ext, x.Raw())
		}
	}
	if len(ext) > 0 {
		b.Start("extensions")
		for _, x := range ext {
			b.Raw(x)
		}
		b.End()
	}
	b.End()
	return j.String(), b.B, true
}

// SetLegacy implements Bookmarks (XEP-0402 §5.3: the server examines the list and
// updates the individual items, sending updates or retraction notifications as needed).
// <url/> bookmarks have no XEP-0402 form and are not kept.
func (m *Mod) SetLegacy(c module.Context, user jid.JID, storage xmlstream.Element) *stanza.Error {
	m.migrateLegacyNode(c, user)
	return m.setLegacy(c, user, storage, true)
}

// migrateLegacyNode folds a real storage:bookmarks PEP node, which a XEP-0048 client
// stored before that node became a view of the XEP-0402 one (#compat-pep), into the
// XEP-0402 node: the conferences it lacks are added, and the old node goes. It runs
// before the owner's bookmarks are read or written through any of the three ways; without
// such a node it costs one store read. A migration that fails keeps the old node, to be
// tried again.
func (m *Mod) migrateLegacyNode(c module.Context, owner jid.JID) {
	o := owner.String()
	if _, exists, err := m.nodes.Config(o, NSLegacyBookmarks); err != nil || !exists {
		return
	}
	it, ok, err := m.nodes.Last(o, NSLegacyBookmarks)
	if err != nil {
		return
	}
	if ok {
		if e, err := xmlstream.ParseElement(it.Payload, ""); err == nil && string(e.NS()) == NSLegacyBookmarks && string(e.Name()) == "storage" {
			if se := m.setLegacy(c, owner, e, false); se != nil {
				m.log.Debug().Str("user", o).Str("error", string(se.Condition)).Msg("pep: XEP-0048 bookmarks not moved to XEP-0402 yet")
				return
			}
		}
	}
	if err := m.nodes.Remove(o, NSLegacyBookmarks); err != nil && module.LogStoreError(err) {
		m.log.Error().Err(err).Str("user", o).Msg("pep: remove the moved XEP-0048 bookmarks node")
	}
}

// setLegacy is SetLegacy; without sync it only adds the conferences the XEP-0402 node
// lacks (a migration: what is there already is newer), and retracts nothing.
func (m *Mod) setLegacy(c module.Context, user jid.JID, storage xmlstream.Element, sync bool) *stanza.Error {
	type bm struct {
		id      string
		payload []byte
	}
	var want []bm
	seen := map[string]bool{}
	ch := storage.Children()
	for x, ok := ch.Next(); ok; x, ok = ch.Next() {
		if string(x.NS()) != NSLegacyBookmarks || string(x.Name()) != "conference" {
			continue
		}
		id, payload, ok := fromLegacy(x)
		if !ok || seen[id] {
			continue
		}
		if len(want) >= maxLegacyBookmarks {
			return tooManyBookmarks()
		}
		if e := pubsub.CheckPayload(payload, m.conf(user.Domain()).MaxItemSize); e != nil {
			return e
		}
		seen[id] = true
		want = append(want, bm{id, payload})
	}
	o := user.String()
	cfg, exists, err := m.nodes.Config(o, NSBookmarks)
	if err != nil {
		return module.StoreError(err)
	}
	if exists && cfg.Access != pubsub.AccessWhitelist {
		// XEP-0048 and XEP-0049 data is the owner's alone (XEP-0223 §3): not into a node
		// others may read.
		e := pubsub.Err(stanza.ConflictCond, "precondition-not-met")
		e.Text = "the bookmarks node is readable by others; make it whitelist first"
		return e
	}
	if !exists {
		if len(want) == 0 {
			return nil
		}
		if e := m.roomForNode(user); e != nil {
			return e
		}
		cfg = m.bookmarksConfig(user.Domain())
	}
	have, err := m.nodes.Items(o, NSBookmarks, 0)
	if err != nil {
		return module.StoreError(err)
	}
	if !sync {
		had := map[string]bool{}
		for _, it := range have {
			had[it.ID] = true
		}
		kept := want[:0]
		for _, w := range want {
			if !had[w.id] {
				kept = append(kept, w)
			}
		}
		want = kept
		for _, it := range have { // as if the list named them: nothing is retracted
			seen[it.ID] = true
		}
		if len(want) == 0 {
			return nil
		}
	}
	if n := len(want); !sync && n+len(have) > cfg.MaxItems || sync && n > cfg.MaxItems {
		return tooManyBookmarks()
	}
	old := map[string][]byte{}
	for _, it := range have {
		old[it.ID] = it.Payload
	}
	var gone []string
	for _, it := range have {
		if !seen[it.ID] {
			gone = append(gone, it.ID)
		}
	}
	if len(gone) > 0 {
		if _, err := m.nodes.Retract(o, NSBookmarks, gone); err != nil {
			return module.StoreError(err)
		}
		if cfg.NotifyRetract {
			m.notify(c, user, NSBookmarks, cfg, pubsub.RetractEvent(NSBookmarks, gone), m.nodes.Subscribers(user.String(), NSBookmarks))
		}
	}
	create := !exists
	changed := len(gone) > 0
	for _, w := range want {
		if p, ok := old[w.id]; ok && bytes.Equal(p, w.payload) {
			continue
		}
		if err := m.nodes.Publish(o, NSBookmarks, cfg, create, w.id, w.payload); err != nil {
			return module.StoreError(err)
		}
		create, changed = false, true
		m.notify(c, user, NSBookmarks, cfg, pubsub.ItemsEvent(NSBookmarks, pubsub.Item{ID: w.id, Payload: w.payload}), m.nodes.Subscribers(user.String(), NSBookmarks))
	}
	if changed {
		m.legacyChanged(c, user) // once for the list, not per item
	}
	return nil
}

func tooManyBookmarks() *stanza.Error {
	e := stanza.New(stanza.PolicyViolationCond)
	e.Text = "more bookmarks than the bookmarks node keeps"
	return e
}

// legacyPEP answers the owner's requests on the PEP node storage:bookmarks (XEP-0048
// §3.3 over XEP-0223), which is the XEP-0402 node seen through XEP-0048 (XEP-0402 §5.3,
// #compat-pep): its one item, "current", is Legacy's <storage/>, and publishing one sets
// the XEP-0402 items with SetLegacy. Like the XEP-0402 node it is the owner's alone.
// Nothing else (configuring, deleting, subscribing) is offered on it: XEP-0048 clients
// only publish and fetch.
func (m *Mod) legacyPEP(c module.Context, iq *module.Packet, owner jid.JID, isOwner bool, r pubsub.Request) {
	if !isOwner {
		c.Error(iq, DenyError(pubsub.AccessWhitelist))
		return
	}
	switch r.Op {
	case pubsub.OpItems:
		storage, ok, err := m.Legacy(c, owner)
		if err != nil {
			m.fail(c, iq, err)
			return
		}
		if !ok {
			c.Error(iq, notFound())
			return
		}
		var b xmlstream.Builder
		b.Start("pubsub").Attr("xmlns", pubsub.NS).Start("items").Attr("node", NSLegacyBookmarks).
			Start("item").Attr("id", legacyItem).Raw(storage).End().End().End()
		c.Reply(iq, b.B)
	case pubsub.OpPublish:
		e, err := xmlstream.ParseElement(r.Payload, "")
		if err != nil || string(e.NS()) != NSLegacyBookmarks || string(e.Name()) != "storage" {
			c.Error(iq, pubsub.Err(stanza.BadRequest, "invalid-payload"))
			return
		}
		if r.Options != nil && !m.bookmarksConfig(owner.Domain()).Matches(r.Options, m.policy(owner.Domain())) {
			// The bookmarks are kept private (XEP-0223 §3): other publish-options fail.
			pe := pubsub.Err(stanza.ConflictCond, "precondition-not-met")
			pe.Text = "bookmarks are kept with access_model whitelist"
			c.Error(iq, pe)
			return
		}
		if se := m.SetLegacy(c, owner, e); se != nil {
			c.Error(iq, se)
			return
		}
		c.Reply(iq, pubsub.PublishReply(NSLegacyBookmarks, legacyItem))
	default:
		c.Error(iq, pubsub.Err(stanza.FeatureNotImplemented, "unsupported"))
	}
}

// legacyChanged tells the owner's available resources that want it (storage:bookmarks+
// notify in their caps, as XEP-0048 clients advertise) what the storage:bookmarks node
// holds now, after a change of the XEP-0402 node: a client that reads bookmarks through
// XEP-0048 learns of a room another client bookmarked through XEP-0402, and a XEP-0402
// client is not sent its bookmarks twice.
func (m *Mod) legacyChanged(c module.Context, owner jid.JID) {
	var to []module.Session
	for _, s := range c.Sessions(owner) {
		if s.Available() && m.ownWants(s, NSLegacyBookmarks+"+notify") {
			to = append(to, s)
		}
	}
	if len(to) == 0 {
		return
	}
	storage, ok, err := m.Legacy(c, owner)
	if err != nil || !ok {
		return
	}
	event := pubsub.ItemsEvent(NSLegacyBookmarks, pubsub.Item{ID: legacyItem, Payload: storage})
	for _, s := range to {
		s.Send(pubsub.EventMessage(owner, s.JID(), event))
	}
}
