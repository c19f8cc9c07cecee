package router

import (
	"bytes"
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
	w    atomic.Pointer[[]jid.JID]
	mu   sync.Mutex
	last map[string]contactSeen // by the contact's full JID
	puts int
}

type contactSeen struct {
	raw  []byte // the presence, without 'to'
	gone int64  // Unix seconds it became unavailable; 0 while available
}

// contactGrace is how long an unavailable contact is remembered, so that the copies of its
// unavailable presence to other users are recognised; then it is forgotten.
const contactGrace = 60 // seconds

func (c *contactPresence) set(w *[]jid.JID) {
	c.w.Store(w)
	if w == nil {
		c.mu.Lock()
		c.last = nil
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
	key := p.From.String()
	now := time.Now().Unix()
	c.mu.Lock()
	if seen, ok := c.last[key]; ok && bytes.Equal(seen.raw, raw) {
		c.mu.Unlock()
		return
	}
	if c.last == nil {
		c.last = map[string]contactSeen{}
	}
	seen := contactSeen{raw: raw}
	if p.Type == "unavailable" {
		seen.gone = now
	}
	c.last[key] = seen
	if c.puts++; c.puts%1024 == 0 {
		for k, v := range c.last {
			if v.gone != 0 && now-v.gone > contactGrace {
				delete(c.last, k)
			}
		}
	}
	c.mu.Unlock()
	for _, comp := range *w {
		s.r.route(xmlstream.SetAttrs(nil, raw, xmlstream.AttrSet{Name: "to", Value: []byte(comp.String())}))
	}
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
