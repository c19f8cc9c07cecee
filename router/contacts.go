package router

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// contactPresence holds the components with XEP-0356's roster presence privilege (§7.4)
// and what they were last sent of each of the users' contacts on other servers (the users'
// own sessions go to them as managed_entity presence). A presence that reaches several
// users goes to them once (§8, rule 2), and a component that connects later gets every
// contact still available (rule 1). Nothing is kept while no component has the privilege.
type contactPresence struct {
	w       atomic.Pointer[[]jid.JID]
	mu      sync.Mutex
	last    map[string]contactSeen // by the contact's full JID
	perBare map[string]int         // resources in last, by the contact's bare JID
	puts    int
}

type contactSeen struct {
	raw  []byte // the presence, without 'to'
	at   int64  // Unix seconds it was last changed
	gone int64  // Unix seconds it became unavailable; 0 while available
}

// contactGrace is how long an unavailable contact is remembered, so that the copies of its
// unavailable presence to other users are recognised; then it is forgotten.
const contactGrace = 60 // seconds

// Bounds of what is remembered. Another server can claim any number of resources for its
// users and need never say they went; past these a new contact resource is passed on but
// not remembered (a copy of it to another user may then go twice, and a component that
// connects later does not get it), and a full table first forgets the available ones
// unchanged for a day.
const (
	maxContactsSeen   = 100_000
	maxSeenPerContact = module.MaxResources
	contactStale      = 24 * 60 * 60 // seconds
)

// forgetLocked drops key (bare is its bare JID). Call with c.mu held.
func (c *contactPresence) forgetLocked(key, bare string) {
	delete(c.last, key)
	if n := c.perBare[bare] - 1; n > 0 {
		c.perBare[bare] = n
	} else {
		delete(c.perBare, bare)
	}
}

// roomLocked reports whether a new resource of bare may be remembered, sweeping a full
// table first. Call with c.mu held.
func (c *contactPresence) roomLocked(bare string, now int64) bool {
	if c.perBare[bare] >= maxSeenPerContact {
		return false
	}
	if len(c.last) >= maxContactsSeen {
		for k, v := range c.last {
			if v.gone != 0 && now-v.gone > contactGrace || v.gone == 0 && now-v.at > contactStale {
				b, _, _ := strings.Cut(k, "/")
				c.forgetLocked(k, b)
			}
		}
	}
	return len(c.last) < maxContactsSeen
}

func (c *contactPresence) set(w *[]jid.JID) {
	c.w.Store(w)
	if w == nil {
		c.mu.Lock()
		c.last, c.perBare = nil, nil
		c.mu.Unlock()
	}
}

// contactPresence sends p, a presence from another server that a local user accepted
// (available or unavailable, from someone on the user's roster whose presence the user
// sees), to the components with the roster presence privilege, unless they had it already.
func (s *shard) contactPresence(p *module.Packet, u *user) {
	c := &s.r.contactWatchers
	w := c.w.Load()
	if w == nil || p.From.IsZero() || s.r.isLocal(p.From.Domain()) || p.Type != "" && p.Type != "unavailable" {
		return
	}
	s.ctx.set(nil, u)
	if it, ok := s.ctx.RosterItem(u.bare, p.From.Bare()); !ok || it.Sub != store.SubTo && it.Sub != store.SubBoth {
		return // a directed presence, not a contact's
	}
	raw := xmlstream.SetAttrs(nil, p.Raw, xmlstream.AttrSet{Name: "to", Remove: true})
	if !c.note(p.From.String(), p.From.Bare().String(), raw, p.Type == "unavailable", time.Now().Unix()) {
		return
	}
	for _, comp := range *w {
		s.r.route(xmlstream.SetAttrs(nil, raw, xmlstream.AttrSet{Name: "to", Value: []byte(comp.String())}))
	}
}

// note remembers raw, the presence of the contact resource key (bare its bare JID), and
// reports whether it is news for the components: false when they were sent the same
// already. A resource past the bounds is news but not remembered.
func (c *contactPresence) note(key, bare string, raw []byte, unavailable bool, now int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen, had := c.last[key]
	if had && bytes.Equal(seen.raw, raw) {
		return false
	}
	if c.last == nil {
		c.last, c.perBare = map[string]contactSeen{}, map[string]int{}
	}
	if had || c.roomLocked(bare, now) {
		seen = contactSeen{raw: raw, at: now}
		if unavailable {
			seen.gone = now
		}
		c.last[key] = seen
		if !had {
			c.perBare[bare]++
		}
	}
	if c.puts++; c.puts%1024 == 0 {
		for k, v := range c.last {
			if v.gone != 0 && now-v.gone > contactGrace {
				b, _, _ := strings.Cut(k, "/")
				c.forgetLocked(k, b)
			}
		}
	}
	return true
}

// replayContacts sends component every contact on another server that is available now.
func (r *Router) replayContacts(component jid.JID) {
	c := &r.contactWatchers
	c.mu.Lock()
	var out [][]byte
	for _, v := range c.last {
		if v.gone == 0 {
			out = append(out, xmlstream.SetAttrs(nil, v.raw, xmlstream.AttrSet{Name: "to", Value: []byte(component.String())}))
		}
	}
	c.mu.Unlock()
	for _, b := range out {
		r.route(b)
	}
}
