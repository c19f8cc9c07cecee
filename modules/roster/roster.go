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
	"fmt"
	"strconv"
	"sync/atomic"
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

func init() { module.Register(new(Roster)) }

// Config is [modules.roster].
type Config struct {
	// MaxItems bounds the items of one roster (default store.DefaultRosterItems); a roster
	// set or a subscription that would add one more gets not-allowed.
	MaxItems int `toml:"max_items"`
	// MaxBytes bounds the names, groups and JIDs of one roster together (default 1 MiB);
	// a roster set that would pass it gets not-allowed. Subscriptions add only a JID, so
	// items times the JID limit bounds what they add.
	MaxBytes int `toml:"max_bytes"`
	// SharedGroupsFile names a file of shared roster groups (shared.go): the members of a
	// group have each other as contacts. Read at start and at each reload.
	SharedGroupsFile string `toml:"shared_groups_file"`
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
type Roster struct {
	settings   atomic.Pointer[module.HostSettings[Config]]
	st         store.Store
	changed    func() // Registrar.RostersChanged
	hadGroups  bool
	privileges func(jid.JID) module.Privileges
}

// conf is the settings in force for the users of host.
func (r *Roster) conf(host string) *Config { return r.settings.Load().For(host) }

// ModuleInfo implements module.Module.
func (*Roster) ModuleInfo() module.Info {
	return module.Info{ID: "roster", New: func() module.Module { return new(Roster) }, PerHost: true}
}

// Provision registers the roster IQs and the versioning feature.
func (r *Roster) Provision(reg module.Registrar) error {
	r.st, r.changed = reg.Store(), reg.RostersChanged
	if err := module.Configure(reg, r); err != nil {
		return err
	}
	reg.IQ(module.IQGet, ns.Roster, "query", r.get)
	reg.IQ(module.IQSet, ns.Roster, "query", r.set)
	// XEP-0356 §4: a component the operator gave roster privileges reads and edits
	// users' rosters by addressing them; anyone else is forbidden.
	r.privileges = reg.Privileges
	reg.IQBare(module.IQGet, ns.Roster, "query", r.privilegedGet)
	reg.IQBare(module.IQSet, ns.Roster, "query", r.privilegedSet)
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
	if e := r.edit(c, user, item, &it, old); e != nil {
		c.Error(iq, e)
		return
	}
	c.Reply(iq, nil)
}

// edit sets it's name and groups from item, checks the roster's bounds and stores it
// (with its push); old is the item it replaces (zero when new).
func (r *Roster) edit(c module.Context, user jid.JID, item xmlstream.Element, it *store.RosterItem, old store.RosterItem) *stanza.Error {
	it.Name = ""
	if v, ok := item.AppendAttr(nil, "name"); ok {
		if len(v) > MaxNameBytes || !utf8.Valid(v) {
			return stanza.New(stanza.NotAcceptable)
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
			return stanza.New(stanza.NotAcceptable)
		}
		if seen[string(name)] {
			return stanza.New(stanza.BadRequest) // §2.3.3: duplicate group
		}
		seen[string(name)] = true
		it.Groups = append(it.Groups, string(name))
	}
	if len(it.Groups) > MaxGroups {
		return stanza.New(stanza.NotAcceptable)
	}
	if grow := itemBytes(*it) - itemBytes(old); grow > 0 {
		total := 0
		if rc, ok := c.(module.RosterLister); ok {
			for _, x := range rc.RosterItems(user) {
				total += itemBytes(x)
			}
		}
		if total+grow > r.conf(user.Domain()).MaxBytes {
			e := stanza.New(stanza.NotAllowed)
			e.Text = "roster is too large"
			return e
		}
	}
	if err := c.SetRosterItem(user, *it); errors.Is(err, store.ErrQuota) {
		// RFC 6121 §2.5.3: a roster-size limit is answered with not-allowed. The store
		// counts and writes atomically; existing items can always be edited.
		e := stanza.New(stanza.NotAllowed)
		e.Text = "roster is full"
		return e
	} else if err != nil {
		return module.StoreError(err)
	}
	return nil
}

// remove deletes an item and cancels subscriptions both ways (RFC 6121 §2.5.2).
func (r *Roster) remove(c module.Context, iq *module.Packet, user, contact jid.JID, old store.RosterItem) {
	ed, ok := c.(module.RosterEditor)
	if !ok {
		c.Error(iq, stanza.New(stanza.FeatureNotImplemented))
		return
	}
	if old.Shared {
		e := stanza.New(stanza.NotAllowed)
		e.Text = "this contact is in a group the server shares; it cannot be removed"
		c.Error(iq, e)
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

// privilegedGet answers a component with roster privileges (XEP-0356 §4.3) with the
// roster of the user it addressed.
func (r *Roster) privilegedGet(c module.Context, iq *module.Packet) {
	if !r.privileges(iq.From).RosterGet() {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	items, ver, err := c.Store().Rosters().Get(iq.To.Bare().String())
	if err != nil {
		c.Error(iq, module.StoreError(err))
		return
	}
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.Roster).Attr("ver", strconv.FormatUint(ver, 10))
	for _, it := range items {
		module.AppendRosterItem(&b, it, false)
	}
	b.End()
	c.Reply(iq, b.B)
}

// privilegedSet applies a component's roster set (XEP-0356 §4.4) to the user it
// addressed: unlike a client, it sets subscription states (a gateway's contacts are
// subscribed both ways from the start), and may send several items at once. Each change
// is pushed to the user's clients. Subscription state set here sends no presence: the
// component keeps its side itself.
func (r *Roster) privilegedSet(c module.Context, iq *module.Packet) {
	if !r.privileges(iq.From).RosterSet() {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	user := iq.To.Bare()
	q, _ := iq.Payload()
	var items []xmlstream.Element
	for it := q.Children(); ; {
		e, ok := it.Next()
		if !ok {
			break
		}
		if string(e.Name()) == "item" && string(e.NS()) == ns.Roster {
			items = append(items, e)
		}
	}
	if len(items) == 0 || len(items) > maxPrivilegedItems {
		c.Error(iq, stanza.New(stanza.BadRequest))
		return
	}
	for _, item := range items {
		jv, _ := item.AppendAttr(nil, "jid")
		contact, err := jid.ParseBytes(jv)
		if err != nil || !contact.IsBare() {
			c.Error(iq, stanza.New(stanza.JIDMalformed))
			return
		}
		old, exists := c.RosterItem(user, contact)
		sub, _ := item.AppendAttr(nil, "subscription")
		if string(sub) == "remove" {
			if !exists {
				continue
			}
			ed, ok := c.(module.RosterEditor)
			if !ok {
				c.Error(iq, stanza.New(stanza.FeatureNotImplemented))
				return
			}
			if err := ed.DeleteRosterItem(user, contact); err != nil {
				c.Error(iq, module.StoreError(err))
				return
			}
			continue
		}
		it := old
		it.JID = contact.String()
		// Without 'subscription' the item is an RFC 6121 §2.3 edit (name, groups): the
		// subscription stays as it is, which the contact's server also believes in.
		if _, given := item.Attr("subscription"); given {
			var ok bool
			if it.Sub, ok = store.ParseSubscription(string(sub)); !ok {
				c.Error(iq, stanza.New(stanza.BadRequest))
				return
			}
		}
		if it.Sub == store.SubTo || it.Sub == store.SubBoth {
			it.Ask = false
		}
		if e := r.edit(c, user, item, &it, old); e != nil {
			c.Error(iq, e)
			return
		}
	}
	c.Reply(iq, nil)
}

// maxPrivilegedItems bounds the items of one privileged roster set.
const maxPrivilegedItems = 1000

var _ module.Reconfigurer = (*Roster)(nil)

// Reconfigure implements module.Reconfigurer: the limits and the shared groups change at
// a reload. A groups file that does not read keeps the groups in force and fails the
// reload. A virtual host's [vhosts."<host>".modules.roster] table gives its users limits
// of their own; the groups file is server-wide (it names each member's host).
func (r *Roster) Reconfigure(rc module.Reconfig) (func(), error) {
	var all *Config
	set, err := module.DecodeSettings(rc, func(host string, cfg *Config) error {
		if cfg.MaxItems < 0 || cfg.MaxBytes < 0 {
			return errors.New("roster: max_items and max_bytes must not be negative")
		}
		if cfg.MaxBytes == 0 {
			cfg.MaxBytes = DefaultMaxBytes
		}
		if host == "" {
			all = cfg
		} else if cfg.SharedGroupsFile != all.SharedGroupsFile {
			return errors.New("roster: shared_groups_file is server-wide: set it in [modules.roster]")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var hostItems map[string]int
	for _, h := range set.Hosts() {
		if hostItems == nil {
			hostItems = map[string]int{}
		}
		hostItems[h] = set.For(h).MaxItems // 0: the default
	}
	var groups *SharedGroups
	w, canWrap := r.st.(store.RosterWrapper)
	if all.SharedGroupsFile != "" {
		if !canWrap {
			return nil, errors.New("roster: this store cannot hold shared groups")
		}
		if groups, err = LoadSharedGroups(all.SharedGroupsFile, rc.Domains); err != nil {
			return nil, fmt.Errorf("roster: shared_groups_file: %w", err)
		}
	}
	return func() {
		r.st.Rosters().SetLimits(all.MaxItems, hostItems) // 0: the default
		if canWrap {
			if groups != nil {
				w.SetRosterWrapper(groups.Wrap)
			} else {
				w.SetRosterWrapper(nil)
			}
		}
		if r.settings.Swap(set) != nil && (groups != nil || r.hadGroups) {
			r.changed() // online users' rosters follow the new groups
		}
		r.hadGroups = groups != nil
	}, nil
}
