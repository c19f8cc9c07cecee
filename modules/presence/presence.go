// Package presence implements RFC 6121 §3 and §4: the presence subscription state machine
// (with pre-approval), initial presence broadcast and probes, directed presence, and
// unavailable presence when a session ends.
//
// Subscription state lives in the roster (store.RosterItem); inbound subscription requests
// that the user has not answered are kept in the "subreq" table and shown again at every
// login until answered (RFC 6121 §3.1.3). The last unavailable presence of a user whose
// sessions are all gone is kept in "lastunavail" and answers contacts' probes, stamped
// with when it was sent (RFC 6121 §4.3.2 option (a), XEP-0203): clients show "last seen"
// and the parting status from it. A subscription request carrying the token of one of the
// user's contact invitations (XEP-0401 §4.1, XEP-0379 <preauth/>) is approved and answered
// on the user's behalf, and the token spent. It must not deliver messages or answer IQs.
package presence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/vireo-im/vireo/modules/blocking"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// MaxPendingRequests bounds stored inbound subscription requests per user, so a flood of
// subscribe presences from many JIDs cannot fill the disk; beyond it requests are dropped.
const MaxPendingRequests = 500

// MaxRequestBytes bounds one stored subscription request: a larger one (a long status or
// nickname) is kept as a bare subscribe, so a user's pending requests stay under
// MaxPendingRequests × MaxRequestBytes (1 MiB) whatever the senders put in them.
const MaxRequestBytes = 2048

// MaxLastBytes bounds the children kept of a user's last unavailable presence (a status);
// a larger one is kept as its time alone.
const MaxLastBytes = 1024

func init() { module.Register(new(Presence)) }

// Presence is the presence module.
type Presence struct {
	subreq store.Table
	last   store.Table // user → unix seconds (8 bytes) + the children of their last unavailable presence
	// unkept holds the requests past MaxPendingRequests that went to the user's available
	// resources without being stored: an answer to one is an answer, not a pre-approval.
	// In memory, bounded (maxUnkept); lost at a restart, when its answer is taken for a
	// pre-approval again.
	unkept struct {
		sync.Mutex
		m map[string]struct{} // store.UserKey(user, contact)
	}
}

// maxUnkept bounds Presence.unkept across all users.
const maxUnkept = 10000

// noteUnkept remembers an unstored request of key.
func (p *Presence) noteUnkept(key []byte) {
	p.unkept.Lock()
	defer p.unkept.Unlock()
	if p.unkept.m == nil {
		p.unkept.m = map[string]struct{}{}
	}
	if len(p.unkept.m) >= maxUnkept {
		for k := range p.unkept.m { // any one: the oldest are as good as lost anyway
			delete(p.unkept.m, k)
			break
		}
	}
	p.unkept.m[string(key)] = struct{}{}
}

// pending reports whether a request of key waits for the user's answer (stored, or past
// the bound and shown only), and forgets it when take is set.
func (p *Presence) pending(c module.Context, key []byte, take bool) bool {
	if _, err := p.subreq.Get(key); err == nil {
		if take {
			p.dropRequest(c, key)
		}
		return true
	}
	p.unkept.Lock()
	defer p.unkept.Unlock()
	_, ok := p.unkept.m[string(key)]
	if ok && take {
		delete(p.unkept.m, string(key))
	}
	return ok
}

// ModuleInfo implements module.Module.
func (*Presence) ModuleInfo() module.Info {
	return module.Info{ID: "presence", New: func() module.Module { return new(Presence) }}
}

// Provision registers the hooks.
func (p *Presence) Provision(r module.Registrar) error {
	p.subreq = r.Table("subreq")
	p.last = r.Table("lastunavail")
	r.Hook(module.Outbound, module.KindPresence, module.OrderPresence, p.outbound)
	r.Hook(module.Inbound, module.KindPresence, module.OrderPresence, p.inbound)
	r.Feature(ns.PreApproval)
	r.StreamFeature(module.PostAuth, "<sub xmlns='"+ns.PreApproval+"'/>")
	r.OnRegistered(p.registered)
	r.OnRemoved(p.removed)
	r.OnSessionEnd(p.sessionEnd)
	return nil
}

// sessionEnd sends unavailable presence to the JIDs that still have the session's
// directed presence (RFC 6121 §4.6.3): those of a session that never broadcast its own,
// or sent it after going unavailable, whose end no broadcast of unavailable covers (a
// bot that joined a room with directed presence alone would stay there as a ghost).
func (p *Presence) sessionEnd(c module.Context, s module.Session) {
	d, ok := s.Value(module.DirectedPresence).(map[string]bool)
	if !ok || len(d) == 0 {
		return
	}
	s.SetValue(module.DirectedPresence, nil)
	user := s.JID().Bare()
	blocks := blocking.Blocker(c.Store(), user.String())
	for to := range d {
		if j, err := jid.Parse(to); err == nil && !blocks(j) {
			c.Route(simple("unavailable", s.JID(), j))
		}
	}
}

// removed ends the subscriptions of a removed account, as if its user had cancelled each
// one (RFC 6121 §3.2, §3.3): its contacts' rosters keep no subscription to or from an
// account that is gone, their pending requests from it are dropped, and an account made
// later with the same name sees no one's presence. The contacts' servers do the rest.
// Its contact invitations and password reset links are revoked (invites.Forget).
func (p *Presence) removed(r module.Removal) {
	r.CallOn(r.User, func(c module.Context) {
		if !r.Guest {
			if err := invites.Forget(c.Store().Table(invites.Table), r.User.String()); err != nil && module.LogStoreError(err) {
				l := c.Logger()
				l.Error().Err(err).Str("user", r.User.String()).Msg("presence: revoking a removed account's invitations")
			}
		}
		for _, rc := range r.Contacts {
			contact, err := jid.Parse(rc.JID)
			if err != nil || contact.Equal(r.User) {
				continue
			}
			if rc.To {
				c.Route(simple("unsubscribe", r.User, contact))
			}
			if rc.From {
				c.Route(simple("unsubscribed", r.User, contact))
			}
		}
	})
}

// registered makes an account created with a contact invitation (XEP-0401 §4.1 with
// ibr=y) and its inviter mutual contacts, as the XEP has the server do: the new account's
// roster gets the inviter, subscribed both ways, and the inviter's gets the new account,
// with a roster push to the inviter's sessions (on the inviter's shard). A client that
// then sends the XEP-0379 subscription request anyway finds it approved.
func (p *Presence) registered(c module.Context, r module.Registration) {
	if !r.Contact || r.Inviter.IsZero() || r.Inviter.Equal(r.User) {
		return
	}
	user, inviter := r.User.Bare(), r.Inviter.Bare()
	saveItem(c, user, store.RosterItem{JID: inviter.String(), Sub: store.SubBoth})
	sc, ok := c.(module.ShardCaller)
	if !ok {
		return
	}
	sc.CallOn(inviter, func(c module.Context) {
		it, ok := c.RosterItem(inviter, user)
		if !ok {
			if len(roster(c, inviter)) >= c.Store().Rosters().Limit(inviter.String()) {
				return // the invitee still has the inviter; nothing to make room for here
			}
			it = store.RosterItem{JID: user.String()}
		}
		it.Sub, it.Ask, it.Approved, it.PendingIn = store.SubBoth, false, false, false
		saveItem(c, inviter, it)
		// No presence now: the new account has no session yet, and its first login
		// probes the inviter like any contact's.
		p.dropRequest(c, store.UserKey(inviter.String(), user.String()))
	})
}

func rewrite(raw []byte, from, to jid.JID) []byte {
	return xmlstream.SetAttrs(nil, raw,
		xmlstream.AttrSet{Name: "from", Value: []byte(from.String())},
		xmlstream.AttrSet{Name: "to", Value: []byte(to.String())})
}

func simple(typ string, from, to jid.JID) []byte {
	var b xmlstream.Builder
	b.Start("presence")
	if typ != "" {
		b.Attr("type", typ)
	}
	b.Attr("from", from.String()).Attr("to", to.String()).End()
	return b.B
}

func roster(c module.Context, user jid.JID) []store.RosterItem {
	if l, ok := c.(module.RosterLister); ok {
		return l.RosterItems(user)
	}
	items, _, _ := c.Store().Rosters().Get(user.String())
	return items
}

// rosterFull is the error for a subscription that would add an item to a roster already at
// the store's limit: not-allowed, as for a roster set (RFC 6121 §2.5.3 leaves the size to
// policy; RFC 6120 §8.3.3.9). A contact's request is refused the same way instead of being
// kept, since it could never be approved.
func rosterFull() *stanza.Error {
	e := stanza.New(stanza.NotAllowed)
	e.Text = "roster is full"
	return e
}

// setItem writes a roster item for a subscription presence the user sent, answering the
// user's client with an error when the write fails (roster full or store error).
func setItem(c module.Context, pk *module.Packet, user jid.JID, it store.RosterItem) bool {
	err := c.SetRosterItem(user, it)
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrQuota):
		c.Error(pk, rosterFull())
	default:
		if module.LogStoreError(err) {
			l := c.Logger()
			l.Error().Err(err).Str("user", user.String()).Msg("presence: roster write")
		}
		c.Error(pk, module.StoreError(err))
	}
	return false
}

// saveItem writes a roster change that nobody waits for (an inbound subscription state
// change): a failure cannot be answered, so it is logged.
func saveItem(c module.Context, user jid.JID, it store.RosterItem) {
	if err := c.SetRosterItem(user, it); err != nil {
		l := c.Logger()
		l.Error().Err(err).Str("user", user.String()).Str("contact", it.JID).Msg("presence: roster write")
	}
}

// dropRequest deletes a pending subscription request, logging a failure.
func (p *Presence) dropRequest(c module.Context, key []byte) {
	if err := p.subreq.Delete(key); err != nil {
		l := c.Logger()
		l.Error().Err(err).Msg("presence: delete subscription request")
	}
}

// hasRequest reports whether a request from the contact of key is stored.
func (p *Presence) hasRequest(key []byte) bool {
	_, err := p.subreq.Get(key)
	return err == nil
}

func hasFrom(s store.Subscription) bool { return s == store.SubFrom || s == store.SubBoth }
func hasTo(s store.Subscription) bool   { return s == store.SubTo || s == store.SubBoth }

func (p *Presence) outbound(c module.Context, pk *module.Packet) module.Verdict {
	user := pk.From.Bare()
	if pk.To.IsZero() {
		p.broadcast(c, pk, user)
		return module.Stop
	}
	contact := pk.To.Bare()
	if contact.Equal(user) {
		switch pk.Type {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			p.self(c, pk, user)
			return module.Stop
		}
	}
	if sharedCancel(c, pk.Type, user, contact) {
		return module.Stop
	}
	switch pk.Type {
	case "", "unavailable":
		p.directed(c, pk, user, contact)
		return module.Continue
	case "subscribe":
		it, ok := c.RosterItem(user, contact)
		if !ok {
			it = store.RosterItem{JID: contact.String()}
		}
		if !hasTo(it.Sub) && !it.Ask {
			it.Ask = true
			if !setItem(c, pk, user, it) {
				return module.Stop
			}
		}
		c.Route(rewrite(pk.Raw, user, contact))
	case "subscribed":
		it, ok := c.RosterItem(user, contact)
		if !ok {
			it = store.RosterItem{JID: contact.String()}
		}
		if hasFrom(it.Sub) {
			return module.Stop
		}
		key := store.UserKey(user.String(), contact.String())
		if !p.pending(c, key, false) {
			// No request waiting: this is a pre-approval (RFC 6121 §3.4).
			if !it.Approved {
				it.Approved = true
				setItem(c, pk, user, it)
			}
			return module.Stop
		}
		// The item first: when the roster is full the request stays, to be answered
		// again once there is room.
		it.Sub = addFrom(it.Sub)
		it.PendingIn = false
		if !setItem(c, pk, user, it) {
			return module.Stop
		}
		p.pending(c, key, true)
		c.Route(simple("subscribed", user, contact))
		p.sendCurrent(c, user, contact)
	case "unsubscribe":
		it, ok := c.RosterItem(user, contact)
		if ok && (hasTo(it.Sub) || it.Ask) {
			it.Sub = removeTo(it.Sub)
			it.Ask = false
			saveItem(c, user, it)
		}
		c.Route(simple("unsubscribe", user, contact))
	case "unsubscribed":
		key := store.UserKey(user.String(), contact.String())
		pending := p.pending(c, key, true)
		it, ok := c.RosterItem(user, contact)
		if ok && (hasFrom(it.Sub) || it.Approved || it.PendingIn) {
			was := hasFrom(it.Sub)
			it.Sub = removeFrom(it.Sub)
			it.Approved, it.PendingIn = false, false
			saveItem(c, user, it)
			if was {
				for _, s := range c.Sessions(user) {
					if s.Available() {
						c.Route(simple("unavailable", s.JID(), contact))
					}
				}
			}
			pending = pending || was
		}
		if pending {
			c.Route(simple("unsubscribed", user, contact))
		}
	}
	return module.Stop // probes and errors from clients go nowhere
}

// self handles subscription presence to the user's own JID. A user is always
// subscribed to their own presence (RFC 6121 §4.3.2), so nothing changes: no roster item and
// no pending request; a subscribe is approved on the user's behalf (§3.1.3 lets the server
// answer). A request left by older versions is dropped so it is not shown at every login.
func (p *Presence) self(c module.Context, pk *module.Packet, user jid.JID) {
	p.dropRequest(c, store.UserKey(user.String(), user.String()))
	if s := c.Session(); s != nil && pk.Type == "subscribe" {
		s.Send(simple("subscribed", user, user))
	}
}

// broadcast handles presence without 'to': initial, updated and unavailable presence.
func (p *Presence) broadcast(c module.Context, pk *module.Packet, user jid.JID) {
	s := c.Session()
	initial := false
	if s != nil && pk.Type == "" && pk.Initial {
		initial = true // the router says so: no per-session state for it
	}
	if s != nil && pk.Type == "unavailable" && !othersAvailable(c, user, s) {
		// Kept before anyone hears of it: a contact told the user left and probing at once
		// gets this, not what came before.
		p.keepLast(c, user, pk)
	}
	items := roster(c, user)
	// Context.Route skips the user's outbound hooks: a contact the user blocks (XEP-0191
	// §3.3) is left out here, or a remote one would still see every change.
	blocks := blocking.Blocker(c.Store(), user.String())
	for _, it := range items {
		if !hasFrom(it.Sub) {
			continue
		}
		to, err := jid.Parse(it.JID)
		if err != nil || blocks(to) {
			continue
		}
		c.Route(rewrite(pk.Raw, pk.From, to))
	}
	// The user's own available resources, including the sender (RFC 6121 §4.2.2, §4.5.2).
	for _, o := range c.Sessions(user) {
		if o.Available() || o == s {
			o.Send(rewrite(pk.Raw, pk.From, o.JID()))
		}
	}
	if s != nil {
		if d, ok := s.Value(module.DirectedPresence).(map[string]bool); ok && pk.Type == "unavailable" {
			for to := range d {
				if j, err := jid.Parse(to); err == nil && !blocks(j) {
					c.Route(rewrite(pk.Raw, pk.From, j))
				}
			}
			s.SetValue(module.DirectedPresence, nil)
		}
	}
	if !initial {
		return
	}
	// Probes for the contacts we are subscribed to (RFC 6121 §4.2.2).
	for _, it := range items {
		if !hasTo(it.Sub) {
			continue
		}
		if to, err := jid.Parse(it.JID); err == nil && !blocks(to) {
			c.Route(simple("probe", user, to))
		}
	}
	// The other resources' presence to the new one.
	for _, o := range c.Sessions(user) {
		if o != s && o.Available() && o.Presence() != nil {
			s.Send(rewrite(o.Presence(), o.JID(), s.JID()))
		}
	}
	// Requests that arrived while offline (RFC 6121 §3.1.3).
	prefix := store.UserKey(user.String())
	p.subreq.Scan(prefix, func(k, v []byte) bool {
		// Not from a JID the user blocked since (XEP-0191 §3.3).
		if from, err := jid.Parse(string(k[len(prefix):])); err == nil && blocks(from) {
			return true
		}
		s.Send(v)
		return true
	})
}

// directed tracks directed presence to JIDs outside the subscription (RFC 6121 §4.6) so
// that they get unavailable presence when the session ends.
func (p *Presence) directed(c module.Context, pk *module.Packet, user, contact jid.JID) {
	s := c.Session()
	if s == nil {
		return
	}
	if it, ok := c.RosterItem(user, contact); ok && hasFrom(it.Sub) && s.Available() {
		// The broadcast's unavailable reaches it. A session that is not broadcasting
		// (no initial presence yet, or unavailable since) sends none: it is tracked.
		return
	}
	d, _ := s.Value(module.DirectedPresence).(map[string]bool)
	key := pk.To.String()
	if pk.Type == "" {
		if d == nil {
			d = map[string]bool{}
			s.SetValue(module.DirectedPresence, d)
		}
		if len(d) < 1000 {
			d[key] = true
		}
	} else if d != nil {
		delete(d, key)
	}
}

// sendCurrent sends the presence of user's available resources to contact.
func (p *Presence) sendCurrent(c module.Context, user, contact jid.JID) {
	for _, s := range c.Sessions(user) {
		if s.Available() && s.Presence() != nil {
			c.Route(rewrite(s.Presence(), s.JID(), contact))
		}
	}
}

// invited carries out a contact invitation (XEP-0401 §4.1 with XEP-0379): a subscription
// request that holds the token of an invitation user made is approved as the user would
// approve it, and answered with the user's own request, so both end up subscribed without
// the user doing anything; the token is spent. It reports whether it did.
func (p *Presence) invited(c module.Context, pk *module.Packet, user, contact jid.JID) bool {
	pre, ok := pk.Elem().Child(nsPreauth, "preauth")
	if !ok {
		return false
	}
	token, _ := pre.AppendAttr(nil, "token")
	t := c.Store().Table(invites.Table)
	inv, err := invites.Check(t, string(token), c.Now())
	if err != nil || !inv.Contact || inv.Inviter != user.String() {
		return false
	}
	it, ok := c.RosterItem(user, contact)
	if !ok {
		if len(roster(c, user)) >= c.Store().Rosters().Limit(user.String()) {
			return false
		}
		it = store.RosterItem{JID: contact.String()}
	}
	it.Sub = addFrom(it.Sub)
	it.Approved = false
	if !hasTo(it.Sub) {
		it.Ask = true
	}
	saveItem(c, user, it)
	if err := invites.Redeem(t, inv); err != nil && module.LogStoreError(err) {
		l := c.Logger()
		l.Error().Err(err).Str("user", user.String()).Msg("presence: spend a contact invitation")
	}
	c.Route(simple("subscribed", user, contact))
	p.sendCurrent(c, user, contact)
	if it.Ask {
		c.Route(simple("subscribe", user, contact))
	}
	return true
}

// nsPreauth is XEP-0379's namespace: <preauth token=…/> in a subscription request.
const nsPreauth = "urn:xmpp:pars:0"

func (p *Presence) inbound(c module.Context, pk *module.Packet) module.Verdict {
	if pk.From.IsZero() {
		return module.Stop
	}
	user := pk.To.Bare()
	contact := pk.From.Bare()
	if sharedCancel(c, pk.Type, user, contact) {
		return module.Stop
	}
	switch pk.Type {
	case "subscribe":
		key := store.UserKey(user.String(), contact.String())
		it, ok := c.RosterItem(user, contact)
		if ok && hasFrom(it.Sub) {
			p.dropRequest(c, key) // one stored before is answered: not shown at every login
			c.Route(simple("subscribed", user, contact))
			return module.Stop
		}
		if ok && it.Approved {
			it.Sub = addFrom(it.Sub)
			it.Approved = false
			saveItem(c, user, it)
			p.dropRequest(c, key)
			c.Route(simple("subscribed", user, contact))
			p.sendCurrent(c, user, contact)
			return module.Stop
		}
		if p.invited(c, pk, user, contact) {
			p.dropRequest(c, key)
			return module.Stop
		}
		if !ok && len(roster(c, user)) >= c.Store().Rosters().Limit(user.String()) {
			// Approving would need a new item in a full roster: refuse now rather than
			// keep a request that cannot be granted.
			c.Error(pk, rosterFull())
			return module.Stop
		}
		if _, err := p.subreq.Get(key); err == nil {
			// Already pending: not delivered again (RFC 6121 A.3.1, None + Pending In),
			// or a sender could prompt the user without end.
			return module.Stop
		} else if errors.Is(err, store.ErrNotFound) {
			n := 0
			p.subreq.Scan(store.UserKey(user.String()), func(_, _ []byte) bool { n++; return n < MaxPendingRequests })
			if n >= MaxPendingRequests {
				// Past the bound nothing more is kept, but the available resources still
				// hear of it (§3.1.3): strangers who fill the list do not silence the
				// user's real contacts, and their answer counts as one (unkept).
				p.noteUnkept(key)
				p.toAvailable(c, pk, user, contact)
				return module.Stop
			}
			raw := xmlstream.SetAttrs(nil, pk.Raw,
				xmlstream.AttrSet{Name: "from", Value: []byte(contact.String())},
				xmlstream.AttrSet{Name: "to", Value: []byte(user.String())})
			if len(raw) > MaxRequestBytes {
				raw = simple("subscribe", contact, user)
			}
			if err := p.subreq.Set(key, raw); err != nil {
				if module.LogStoreError(err) {
					l := c.Logger()
					l.Error().Err(err).Str("user", user.String()).Msg("presence: store subscription request")
				}
				return module.Stop
			}
		}
		p.toAvailable(c, pk, user, contact)
	case "subscribed":
		it, ok := c.RosterItem(user, contact)
		if !ok || !it.Ask {
			return module.Stop
		}
		it.Ask = false
		it.Sub = addTo(it.Sub)
		saveItem(c, user, it)
		p.toAvailable(c, pk, user, contact)
	case "unsubscribe":
		key := store.UserKey(user.String(), contact.String())
		pending := p.hasRequest(key)
		if pending {
			p.dropRequest(c, key)
		}
		it, ok := c.RosterItem(user, contact)
		if !ok || !hasFrom(it.Sub) {
			if pending {
				p.toAvailable(c, pk, user, contact) // a request withdrawn (A.3.3, None + Pending In)
			}
			return module.Stop
		}
		it.Sub = removeFrom(it.Sub)
		saveItem(c, user, it)
		p.toAvailable(c, pk, user, contact)
		// §3.3.3: the contact no longer sees the user: unavailable from each of the user's
		// available resources, or it would show them online until they next change.
		for _, s := range c.Sessions(user) {
			if s.Available() {
				c.Route(simple("unavailable", s.JID(), contact))
			}
		}
	case "unsubscribed":
		it, ok := c.RosterItem(user, contact)
		if !ok || (!hasTo(it.Sub) && !it.Ask) {
			return module.Stop
		}
		it.Sub = removeTo(it.Sub)
		it.Ask = false
		saveItem(c, user, it)
		p.toAvailable(c, pk, user, contact)
	case "probe":
		it, ok := c.RosterItem(user, contact)
		if !ok || !hasFrom(it.Sub) {
			// §4.3.2: a prober without a subscription SHOULD hear unsubscribed, so that a
			// roster that lost step with ours finds out (a pre-approval stays).
			if !blocking.Blocker(c.Store(), user.String())(contact) {
				c.Route(simple("unsubscribed", user, contact))
			}
			return module.Stop
		}
		sent := false
		for _, s := range c.Sessions(user) {
			if s.Available() && s.Presence() != nil {
				c.Route(rewrite(s.Presence(), s.JID(), pk.From))
				sent = true
			}
		}
		if !sent {
			c.Route(p.lastUnavailable(c, user, pk.From))
		}
	default:
		return module.Continue // available, unavailable, error: default delivery
	}
	return module.Stop
}

// sharedCancel reports whether typ would cancel a subscription between user and a contact
// of a shared roster group: the group's file says both are subscribed both ways, and a
// roster remove of such a contact is refused as well. Taking it would leave the cached
// roster, its pushes and the other side at odds with what a roster get answers (the
// stored state of a shared item stays the group's).
func sharedCancel(c module.Context, typ string, user, contact jid.JID) bool {
	if typ != "unsubscribe" && typ != "unsubscribed" {
		return false
	}
	it, ok := c.RosterItem(user, contact)
	return ok && it.Shared
}

// othersAvailable reports whether user has an available session other than s.
func othersAvailable(c module.Context, user jid.JID, s module.Session) bool {
	for _, o := range c.Sessions(user) {
		if o != s && o.Available() {
			return true
		}
	}
	return false
}

// keepLast records pk, the unavailable presence of user's last available session, for
// probes while the user is offline. Nobody was promised it: a lazy write.
func (p *Presence) keepLast(c module.Context, user jid.JID, pk *module.Packet) {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 64), uint64(c.Now().Unix()))
	inner := pk.Elem().Inner()
	start := pk.Raw
	if i := bytes.IndexByte(start, '>'); i >= 0 {
		start = start[:i]
	}
	// Children that use a prefix declared on <presence> itself cannot be moved into
	// another stanza as they are; so few clients do that that the time alone is enough.
	if len(inner) <= MaxLastBytes && !bytes.Contains(start, []byte("xmlns:")) {
		v = append(v, inner...)
	}
	if err := p.last.ApplyLazy(store.Op{Key: store.UserKey(user.String()), Val: v}); err != nil && module.LogStoreError(err) {
		l := c.Logger()
		l.Warn().Err(err).Str("user", user.String()).Msg("presence: keep the last unavailable presence")
	}
}

// lastUnavailable is the answer to contact's probe of user, who has no available
// session: the last unavailable presence with its time, or a bare one if none is kept.
func (p *Presence) lastUnavailable(c module.Context, user, contact jid.JID) []byte {
	v, err := p.last.Get(store.UserKey(user.String()))
	if err != nil || len(v) < 8 {
		return simple("unavailable", user, contact)
	}
	var b xmlstream.Builder
	b.Start("presence").Attr("type", "unavailable").Attr("from", user.String()).Attr("to", contact.String())
	b.Raw(v[8:])
	stamp := time.Unix(int64(binary.BigEndian.Uint64(v)), 0).UTC().Format("2006-01-02T15:04:05Z")
	b.Start("delay").Attr("xmlns", ns.Delay).Attr("from", user.Domain()).Attr("stamp", stamp).End()
	b.End()
	return b.B
}

// toAvailable delivers a subscription presence to the user's available resources, with
// the bare JIDs RFC 6121 requires.
func (p *Presence) toAvailable(c module.Context, pk *module.Packet, user, contact jid.JID) {
	raw := rewrite(pk.Raw, contact, user)
	for _, s := range c.Sessions(user) {
		if s.Available() {
			s.Send(raw)
		}
	}
}

func addFrom(s store.Subscription) store.Subscription {
	if hasTo(s) {
		return store.SubBoth
	}
	return store.SubFrom
}

func addTo(s store.Subscription) store.Subscription {
	if hasFrom(s) {
		return store.SubBoth
	}
	return store.SubTo
}

func removeFrom(s store.Subscription) store.Subscription {
	if hasTo(s) {
		return store.SubTo
	}
	return store.SubNone
}

func removeTo(s store.Subscription) store.Subscription {
	if hasFrom(s) {
		return store.SubFrom
	}
	return store.SubNone
}
