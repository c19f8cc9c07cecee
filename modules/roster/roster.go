// Package roster implements RFC 6121 §2: roster get, set and remove, groups, pushes to
// interested resources, and roster versioning (XEP-0237 as folded into RFC 6121 §2.6).
//
// Subscription state is not changed here: the presence module owns it. A roster set may
// only edit names and groups, or remove an item (which also cancels subscriptions). Every
// item can be removed, the user's own bare JID included.
package roster

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Limits that keep one account from bloating storage. The number of items is the store's
// limit (store.Rosters.Limit), set from [modules.roster] max_items, so that every path
// creating items (roster set here, subscriptions in the presence module) meets it.
const (
	MaxGroups    = 32   // groups per item
	MaxNameBytes = 1024 // name and group length (not-acceptable above)
)

func init() { module.Register(Roster{}) }

// Config is [modules.roster].
type Config struct {
	// MaxItems bounds the items of one roster (default store.DefaultRosterItems); a roster
	// set or a subscription that would add one more gets not-allowed.
	MaxItems int `toml:"max_items"`
	// MaxBytes bounds the names, groups and JIDs of one roster together (default 1 MiB);
	// a roster set that would pass it gets not-allowed. Subscriptions add only a JID, so
	// items times the JID limit bounds what they add.
	MaxBytes int `toml:"max_bytes"`
}

// DefaultMaxBytes is the default of [modules.roster] max_bytes.
const DefaultMaxBytes = 1 << 20

func itemBytes(it store.RosterItem) int {
	n := len(it.JID) + len(it.Name)
	for _, g := range it.Groups {
		n += len(g)
	}
	return n
}

// Roster is the roster module.
type Roster struct{ cfg Config }

// ModuleInfo implements module.Module.
func (Roster) ModuleInfo() module.Info {
	return module.Info{ID: "roster", New: func() module.Module { return new(Roster) }}
}

// Provision registers the roster IQs and the versioning feature.
func (r *Roster) Provision(reg module.Registrar) error {
	if err := reg.Config(&r.cfg); err != nil {
		return err
	}
	if r.cfg.MaxItems < 0 || r.cfg.MaxBytes < 0 {
		return errors.New("roster: max_items and max_bytes must not be negative")
	}
	if r.cfg.MaxBytes == 0 {
		r.cfg.MaxBytes = DefaultMaxBytes
	}
	reg.Store().Rosters().SetLimit(r.cfg.MaxItems) // 0: the default
	reg.IQ(module.IQGet, ns.Roster, "query", r.get)
	reg.IQ(module.IQSet, ns.Roster, "query", r.set)
	reg.Feature(ns.RosterVer)
	reg.StreamFeature(module.PostAuth, "<ver xmlns='"+ns.RosterVer+"'/>")
	return nil
}

func (r *Roster) get(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && !iq.To.Equal(iq.From.Bare()) {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	user := iq.From.Bare().String()
	items, ver, err := c.Store().Rosters().Get(user)
	if err != nil {
		c.Error(iq, stanza.New(stanza.InternalServerErrorCond))
		return
	}
	if s := c.Session(); s != nil {
		if is, ok := s.(module.InterestSetter); ok {
			is.SetInterested()
		}
	}
	q, _ := iq.Payload()
	verS := strconv.FormatUint(ver, 10)
	if v, ok := q.Attr("ver"); ok && string(v) == verS && ver != 0 {
		// RFC 6121 §2.6.3: up to date, empty result; pushes follow.
		c.Reply(iq, nil)
		return
	}
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.Roster).Attr("ver", verS)
	for _, it := range items {
		module.AppendRosterItem(&b, it, false)
	}
	b.End()
	c.Reply(iq, b.B)
}

func (r *Roster) set(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && !iq.To.Equal(iq.From.Bare()) {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	q, _ := iq.Payload()
	// RFC 6121 §2.3.3: exactly one item.
	var item xmlstream.Element
	n := 0
	for it := q.Children(); ; {
		e, ok := it.Next()
		if !ok {
			break
		}
		if string(e.Name()) == "item" && string(e.NS()) == ns.Roster {
			item = e
		}
		n++
	}
	if n != 1 || item.Raw() == nil {
		c.Error(iq, stanza.New(stanza.BadRequest))
		return
	}
	jv, ok := item.AppendAttr(nil, "jid")
	if !ok {
		c.Error(iq, stanza.New(stanza.BadRequest))
		return
	}
	contact, err := jid.ParseBytes(jv)
	if err != nil {
		c.Error(iq, stanza.New(stanza.JIDMalformed))
		return
	}
	user := iq.From.Bare()
	if !contact.IsBare() {
		// Full JIDs are not roster items (RFC 6121 §2.1.2.1 uses bare JIDs). The user's own
		// bare JID is an item like any other, so that one created by older versions (from a
		// self-subscription) can be removed.
		e := stanza.New(stanza.NotAllowed)
		e.Type = stanza.Modify
		c.Error(iq, e)
		return
	}
	old, exists := c.RosterItem(user, contact)
	if sub, ok := item.Attr("subscription"); ok && string(sub) == "remove" {
		if !exists {
			c.Error(iq, stanza.New(stanza.ItemNotFound))
			return
		}
		r.remove(c, iq, user, contact, old)
		return
	}
	// Clients may echo subscription and ask; anything but none/remove from a client is ignored
	// (RFC 6121 §2.1.2.5), and state never comes from the client.
	it := old
	it.JID = contact.String()
	it.Name = ""
	if v, ok := item.AppendAttr(nil, "name"); ok {
		if len(v) > MaxNameBytes || !utf8.Valid(v) {
			c.Error(iq, stanza.New(stanza.NotAcceptable))
			return
		}
		it.Name = string(v)
	}
	it.Groups = nil
	seen := map[string]bool{}
	for gi := item.Children(); ; {
		g, ok := gi.Next()
		if !ok {
			break
		}
		if string(g.Name()) != "group" {
			continue
		}
		name := g.AppendText(nil)
		if len(bytes.TrimSpace(name)) == 0 || len(name) > MaxNameBytes {
			c.Error(iq, stanza.New(stanza.NotAcceptable))
			return
		}
		if seen[string(name)] {
			c.Error(iq, stanza.New(stanza.BadRequest)) // §2.3.3: duplicate group
			return
		}
		seen[string(name)] = true
		it.Groups = append(it.Groups, string(name))
	}
	if len(it.Groups) > MaxGroups {
		c.Error(iq, stanza.New(stanza.NotAcceptable))
		return
	}
	if grow := itemBytes(it) - itemBytes(old); grow > 0 {
		total := 0
		if rc, ok := c.(module.RosterLister); ok {
			for _, x := range rc.RosterItems(user) {
				total += itemBytes(x)
			}
		}
		if total+grow > r.cfg.MaxBytes {
			e := stanza.New(stanza.NotAllowed)
			e.Text = "roster is too large"
			c.Error(iq, e)
			return
		}
	}
	if err := c.SetRosterItem(user, it); errors.Is(err, store.ErrQuota) {
		// RFC 6121 §2.5.3: a roster-size limit is answered with not-allowed. The store
		// counts and writes atomically; existing items can always be edited.
		e := stanza.New(stanza.NotAllowed)
		e.Text = "roster is full"
		c.Error(iq, e)
		return
	} else if err != nil {
		c.Error(iq, module.StoreError(err))
		return
	}
	c.Reply(iq, nil)
}

// remove deletes an item and cancels subscriptions both ways (RFC 6121 §2.5.2).
func (r *Roster) remove(c module.Context, iq *module.Packet, user, contact jid.JID, old store.RosterItem) {
	ed, ok := c.(module.RosterEditor)
	if !ok {
		c.Error(iq, stanza.New(stanza.FeatureNotImplemented))
		return
	}
	if err := ed.DeleteRosterItem(user, contact); err != nil {
		c.Error(iq, module.StoreError(err))
		return
	}
	c.Reply(iq, nil)
	send := func(typ string) {
		var b xmlstream.Builder
		b.Start("presence").Attr("type", typ).Attr("from", user.String()).Attr("to", contact.String()).End()
		c.Route(b.B)
	}
	if old.Sub == store.SubTo || old.Sub == store.SubBoth || old.Ask {
		send("unsubscribe")
	}
	if old.Sub == store.SubFrom || old.Sub == store.SubBoth {
		// RFC 6121 §3.2.2: while the contact still sees the user's presence, each of the
		// user's available resources goes unavailable for it, then the subscription goes.
		for _, s := range c.Sessions(user) {
			if s.Available() {
				var b xmlstream.Builder
				b.Start("presence").Attr("type", "unavailable").Attr("from", s.JID().String()).Attr("to", contact.String()).End()
				c.Route(b.B)
			}
		}
		send("unsubscribed")
	}
}
