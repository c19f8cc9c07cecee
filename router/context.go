package router

import (
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// shardCtx is the module.Context of one shard; it is reused for every call on that shard's
// worker, so handing it to a module allocates nothing.
type shardCtx struct {
	s    *shard
	sess *Session
	u    *user
	svc  jid.JID // the addressed entity while a service handler runs
	out  []byte
}

var (
	_ module.Context        = (*shardCtx)(nil)
	_ module.DirectRouter   = (*shardCtx)(nil)
	_ module.ShardCaller    = (*shardCtx)(nil)
	_ module.ServerSessions = (*shardCtx)(nil)
)

func (c *shardCtx) set(se *Session, u *user) { c.sess, c.u = se, u }

func (c *shardCtx) Domain() string {
	if c.u != nil {
		return c.u.bare.Domain()
	}
	if !c.svc.IsZero() {
		return c.svc.Domain()
	}
	return *c.s.r.first.Load()
}

func (c *shardCtx) IsLocal(domain string) bool { return c.s.r.isLocal(domain) }

func (c *shardCtx) Session() module.Session {
	if c.sess == nil {
		return nil
	}
	return c.sess
}

func (c *shardCtx) Sessions(bare jid.JID) []module.Session {
	if c.u == nil || !bare.Bare().Equal(c.u.bare) {
		return nil
	}
	c.s.sess = c.s.sess[:0]
	for _, se := range c.u.sessions {
		c.s.sess = append(c.s.sess, se)
	}
	return c.s.sess
}

func (c *shardCtx) Route(raw []byte) { c.s.r.route(raw) }

// RouteTo is Route for a stanza whose 'to' the caller has parsed (module.DirectRouter).
func (c *shardCtx) RouteTo(to jid.JID, raw []byte) {
	o := copyOp(0, raw)
	o.to = to
	c.s.r.forward(o)
}

// RoutePacket is RouteTo for a stanza whose kind, type, id and sender the caller knows
// (module.PacketRouter).
func (c *shardCtx) RoutePacket(p *module.Packet) {
	o := copyOp(0, p.Raw)
	o.to, o.from = p.To, p.From
	o.known, o.pk, o.typ, o.id = true, p.Kind, p.Type, p.ID
	c.s.r.forward(o)
}

// CallOn runs fn on the shard of bare with a Context for that user (module.ShardCaller).
func (c *shardCtx) CallOn(bare jid.JID, fn func(module.Context)) {
	b := bare.Bare()
	o := getOp()
	o.kind = opCall
	o.bare = b
	o.fn = fn
	c.s.r.shardOf(b.String()).q.pushForce(o)
}

func (c *shardCtx) Deliver(p *module.Packet) bool {
	if c.u == nil {
		return false
	}
	return c.s.deliver(p, c.u)
}

// sendTo delivers raw to the full JID to: straight to the session when it belongs to this
// shard's current user, else through the recipient's inbound phase.
func (c *shardCtx) sendTo(to jid.JID, raw []byte) {
	if c.u != nil && to.Bare().Equal(c.u.bare) && !to.IsBare() {
		if se := c.u.find(to.Resource()); se != nil {
			se.Send(raw)
			return
		}
	}
	c.s.r.route(raw)
}

func (c *shardCtx) Reply(iq *module.Packet, payload []byte) {
	b := xmlstream.Builder{B: c.out[:0]}
	b.Start("iq").Attr("type", "result")
	if iq.ID != "" {
		b.Attr("id", iq.ID)
	}
	if !iq.To.IsZero() {
		b.AttrBytes("from", iq.To.AppendTo(c.s.tmp[:0]))
	}
	b.AttrBytes("to", iq.From.AppendTo(c.s.tmp[:0]))
	if len(payload) > 0 {
		b.Raw(payload)
	}
	b.End()
	c.keepOut(b.B)
	if !c.s.r.syncLazy() {
		// What the client sent before this request may not be on disk: no result that
		// says otherwise.
		c.Error(iq, stanza.New(stanza.InternalServerErrorCond))
		return
	}
	c.sendTo(iq.From, b.B)
}

func (c *shardCtx) Error(p *module.Packet, e *stanza.Error) {
	if p.Type == "error" || p.From.IsZero() {
		return // RFC 6120 §8.3.1: never answer an error with an error
	}
	if p.Kind == module.KindIQ && p.Type == "result" {
		return // §8.2.3: nor an IQ result (a relay that failed drops it, as bounce does)
	}
	name := "message"
	switch p.Kind {
	case module.KindPresence:
		name = "presence"
	case module.KindIQ:
		name = "iq"
	}
	id := p.ID
	if id == "" {
		if v, ok := p.Elem().Attr("id"); ok {
			id = string(xmlstream.AppendUnescaped(nil, v))
		}
	}
	b := xmlstream.Builder{B: c.out[:0]}
	b.Start(name).Attr("type", "error")
	if id != "" {
		b.Attr("id", id)
	}
	// A stanza without 'to' was handled for the sender's account; as with Reply, the
	// answer then carries no 'from' (RFC 6120 §8.1.2.1: none, or the account's bare JID).
	if !p.To.IsZero() {
		b.AttrBytes("from", p.To.AppendTo(c.s.tmp[:0]))
	}
	b.AttrBytes("to", p.From.AppendTo(c.s.tmp[:0]))
	b.Raw(e.AppendXML(c.s.tmp[:0]))
	b.End()
	c.keepOut(b.B)
	if p.Kind == module.KindIQ {
		c.s.r.syncLazy()
	}
	c.sendTo(p.From, b.B)
}

func (c *shardCtx) Store() store.Store     { return c.s.r.st }
func (c *shardCtx) Now() time.Time         { return c.s.r.now() }
func (c *shardCtx) Logger() zerolog.Logger { return c.s.r.log }

// roster returns the user's cached roster, loading it at first use. An empty roster stays
// a nil map (rosterLoaded says it was loaded): most idle sessions of new accounts have
// none, and an empty map still costs an allocation per user.
func (c *shardCtx) roster() map[string]store.RosterItem {
	if !c.u.rosterLoaded {
		c.u.rosterLoaded = true
		items, _, err := c.s.r.st.Rosters().Get(c.u.key)
		if err != nil {
			c.s.r.log.Error().Err(err).Str("user", c.u.key).Msg("load roster")
		}
		if len(items) > 0 {
			c.u.roster = make(map[string]store.RosterItem, len(items))
		}
		for _, it := range items {
			c.u.roster[it.JID] = it
		}
	}
	return c.u.roster
}

func (c *shardCtx) RosterItem(user, contact jid.JID) (store.RosterItem, bool) {
	if c.u == nil || !user.Bare().Equal(c.u.bare) {
		it, err := c.s.r.st.Rosters().Item(user.Bare().String(), contact.Bare().String())
		return it, err == nil
	}
	it, ok := c.roster()[contact.Bare().String()]
	return it, ok
}

func (c *shardCtx) SetRosterItem(user jid.JID, it store.RosterItem) error {
	ver, err := c.s.r.st.Rosters().Put(user.Bare().String(), it)
	if err != nil {
		return err
	}
	if c.u != nil && user.Bare().Equal(c.u.bare) {
		m := c.roster()
		if m == nil {
			m = map[string]store.RosterItem{}
			c.u.roster = m
		}
		m[it.JID] = it
	}
	c.pushRoster(user, it, false, ver)
	return nil
}

// DeleteRosterItem removes contact from user's roster and pushes subscription='remove'.
func (c *shardCtx) DeleteRosterItem(user jid.JID, contact jid.JID) error {
	ver, err := c.s.r.st.Rosters().Delete(user.Bare().String(), contact.Bare().String())
	if err != nil {
		return err
	}
	if c.u != nil && user.Bare().Equal(c.u.bare) {
		delete(c.roster(), contact.Bare().String())
	}
	c.pushRoster(user, store.RosterItem{JID: contact.Bare().String()}, true, ver)
	return nil
}

// pushRoster sends a roster push (RFC 6121 §2.1.6) to every interested session of user,
// and to the components that watch rosters (XEP-0356 §4.4), from user's bare JID.
func (c *shardCtx) pushRoster(user jid.JID, it store.RosterItem, remove bool, ver uint64) {
	if w := c.s.r.rosterWatchers.Load(); w != nil {
		for _, comp := range *w {
			c.s.push++
			var b xmlstream.Builder
			b.Start("iq").Attr("type", "set").Attr("id", "push"+strconv.FormatUint(c.s.push, 36)).
				Attr("from", user.Bare().String()).Attr("to", comp.String())
			b.Start("query").Attr("xmlns", "jabber:iq:roster").Attr("ver", strconv.FormatUint(ver, 10))
			module.AppendRosterItem(&b, it, remove)
			b.End().End()
			c.s.r.route(b.B)
		}
	}
	if c.u == nil || !user.Bare().Equal(c.u.bare) {
		return
	}
	for _, se := range c.u.sessions {
		if !se.Interested() {
			continue
		}
		c.s.push++
		b := xmlstream.Builder{B: c.out[:0]}
		b.Start("iq").Attr("type", "set").Attr("id", "push"+strconv.FormatUint(c.s.push, 36)).
			AttrBytes("to", se.fullB())
		b.Start("query").Attr("xmlns", "jabber:iq:roster").Attr("ver", strconv.FormatUint(ver, 10))
		module.AppendRosterItem(&b, it, remove)
		b.End().End()
		c.keepOut(b.B)
		se.Send(b.B)
	}
}

// RosterItems returns the cached roster of the shard's user (store read otherwise).
func (c *shardCtx) RosterItems(user jid.JID) []store.RosterItem {
	if c.u == nil || !user.Bare().Equal(c.u.bare) {
		items, _, _ := c.s.r.st.Rosters().Get(user.Bare().String())
		return items
	}
	m := c.roster()
	out := make([]store.RosterItem, 0, len(m))
	for _, it := range m {
		out = append(out, it)
	}
	return out
}

// Scratch lends the shard's rewrite buffers (module.Scratcher).
func (c *shardCtx) Scratch(i int) *[]byte { return &c.s.scratch[i&1] }

// Async runs job on the worker pool and done back on this shard, for the same user or
// service entity (module.Context).
func (c *shardCtx) Async(job func(), done func(module.Context)) bool {
	r := c.s.r
	var bare, ent jid.JID
	if c.u != nil {
		bare = c.u.bare
	}
	ent = c.svc
	sh := c.s
	return r.Go(func() {
		job()
		o := getOp()
		o.kind = opCall
		o.bare = bare
		o.to = ent
		o.fn = done
		sh.q.pushForce(o)
	})
}

// OnlineSessions implements module.ServerSessions: an op on every shard snapshots its
// sessions (on that shard's worker, which owns them), and the last one to finish sends done
// back to this shard.
func (c *shardCtx) OnlineSessions(done func(module.Context, []module.OnlineSession)) {
	r := c.s.r
	home := c.s
	var bare jid.JID
	if c.u != nil {
		bare = c.u.bare
	}
	ent := c.svc
	var (
		mu  sync.Mutex
		all []module.OnlineSession
	)
	r.onEveryShard(func(sh *shard) {
		var part []module.OnlineSession
		for _, u := range sh.users {
			for _, se := range u.sessions {
				if se.gone.Load() {
					continue
				}
				part = append(part, se.online())
			}
		}
		mu.Lock()
		all = append(all, part...)
		mu.Unlock()
	}, func() {
		b := getOp()
		b.kind = opCall
		b.bare = bare
		b.to = ent
		b.fn = func(c module.Context) { done(c, all) }
		home.q.pushForce(b)
	})
}

// CloseUser implements module.ServerSessions.
func (c *shardCtx) CloseUser(j jid.JID, cond stanza.StreamCondition) {
	c.s.r.CloseUser(j, cond)
}

// maxKeptOut bounds the reply buffer a shard keeps between answers: one large answer (a
// page of big pubsub items) must not hold its size for the life of the process.
const maxKeptOut = 64 << 10

// keepOut keeps b, the answer just built, as the buffer of the next one, unless it grew
// past maxKeptOut.
func (c *shardCtx) keepOut(b []byte) {
	if cap(b) > maxKeptOut {
		c.out = nil
		return
	}
	c.out = b
}
