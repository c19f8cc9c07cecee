package router

import (
	"bytes"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Detach takes the connection away from s without ending the session: its presence stays
// as it was (contacts see no flapping), and what the router sends it queues, bounded by
// Options.DetachedLimits. After timeout the session ends: queued messages go to another
// resource or offline storage (RFC 6121 §8.5), IQ requests are answered with errors, and
// unavailable presence is broadcast. Attach before then resumes it. Safe from any
// goroutine.
func (r *Router) Detach(s *Session, timeout time.Duration) { r.DetachWith(s, timeout, nil) }

// DetachWith is Detach for a stream that hands over stanzas it wrote but the client never
// acknowledged (XEP-0198). collect runs on the session's shard when the detach takes effect,
// so every stanza the session sent before that point is in what it returns (and nothing
// after: from then on the router queues). What it returns heads the queue, before what
// arrives while detached, and shares its fate (resent on Attach, RFC 6121 on expiry).
func (r *Router) DetachWith(s *Session, timeout time.Duration, collect func() [][]byte) {
	if s == nil {
		return
	}
	if s.gone.Load() {
		// The session ended while its stream was still up (a new bind took its resource,
		// the server ended it): nothing to detach, but what the stream wrote and the
		// client never acknowledged follows RFC 6121 now, and collect lets the stream
		// forget the session.
		if collect != nil {
			o := getOp()
			o.kind = opCall
			o.fn = func(module.Context) { s.shard.endDetached(s, collect(), time.Now().UnixNano()) }
			s.shard.q.pushForce(o)
		}
		return
	}
	o := getOp()
	o.kind = opDetach
	o.sess = s
	o.timeout = timeout
	o.collect = collect
	s.shard.q.pushForce(o)
}

// Attach gives a detached session the connection c. done runs on the shard worker with nil
// when the session is c's now (every queued stanza has been handed to c, in order), or with
// a *stanza.Error (item-not-found) when the session has ended or is attached elsewhere.
func (r *Router) Attach(s *Session, c Conn, done func(error)) { r.AttachSkip(s, c, 0, done) }

// AttachSkip is Attach for a client that already has the first skip queued stanzas
// (XEP-0198 resumption: its h says how many of the unacknowledged ones arrived).
func (r *Router) AttachSkip(s *Session, c Conn, skip int, done func(error)) {
	if s == nil || s.gone.Load() {
		done(stanza.New(stanza.ItemNotFound))
		return
	}
	o := getOp()
	o.kind = opAttach
	o.sess = s
	o.conn = c
	o.skip = skip
	o.fn = func(module.Context) {}
	o.done = func(_ *Session, err error) { done(err) }
	s.shard.q.pushForce(o)
}

// Nonza hands a top-level element that is not a stanza (st.Raw) to the module registered
// for it; it runs in the session's shard, in order with the session's stanzas. It returns
// false when no module handles the element or the shard is overloaded.
func (r *Router) Nonza(s *Session, raw, ns, local []byte) bool {
	if id, ok := r.reg.nonzaOwner[nonzaKey{string(ns), string(local)}]; !ok || r.view(s.jid.Domain()).disabled(id) {
		return false
	}
	if s.gone.Load() || r.closed.Load() {
		return true
	}
	o := copyOp(opNonza, raw)
	o.sess = s
	return r.pushOrDrop(s.shard.q, o)
}

// Bind2Inline hands one inline feature request of an XEP-0386 bind ({ns}local, raw the
// element) to the module that registered it, in s's shard. It reports false when no module
// handles it.
func (r *Router) Bind2Inline(s *Session, raw, ns, local []byte) bool {
	if id, ok := r.reg.bind2Owner[nonzaKey{string(ns), string(local)}]; !ok || r.view(s.jid.Domain()).disabled(id) {
		return false
	}
	if s.gone.Load() || r.closed.Load() {
		return true
	}
	o := copyOp(opBind2, raw)
	o.sess = s
	return r.pushOrDrop(s.shard.q, o)
}

func (s *shard) detach(o *op) {
	se := o.sess
	if se.gone.Load() || se.user == nil {
		// Ended since DetachWith looked (a new bind took the resource): nothing to
		// detach, but what the stream wrote and its client never acknowledged follows
		// RFC 6121, as in DetachWith, and collect lets the stream forget the session.
		if o.collect != nil {
			s.endDetached(nil, o.collect(), time.Now().UnixNano())
		}
		return
	}
	d := se.detachedQ()
	if d == nil {
		d = &detached{}
		se.setDetached(d)
		s.r.detachedN.Add(1) // end and attach take it back, whichever comes
	}
	se.conn = nil
	if o.collect != nil {
		o.queue = o.collect()
	}
	s.ctx.set(se, se.user)
	v := s.r.view(se.jid.Domain())
	for _, f := range s.r.reg.detach {
		if !v.disabled(f.id) {
			f.v(&s.ctx, se, o.queue)
		}
	}
	if len(o.queue) > 0 {
		// Unacknowledged stanzas of the stream that just went: first in the queue. What
		// does not fit the bounds follows RFC 6121 at once.
		lim := s.r.opts.DetachedLimits
		now := time.Now().UnixNano()
		for i, raw := range o.queue {
			if len(d.queue) >= lim.Stanzas || d.bytes+len(raw) > lim.Bytes {
				s.endDetached(se, o.queue[i:], now)
				break
			}
			d.queue = append(d.queue, raw)
			d.at = append(d.at, now)
			d.bytes += len(raw)
			d.head++
		}
		o.queue = nil
	}
	if o.timeout <= 0 {
		// Nothing to wait for (a stream without resumption, or shutdown): RFC 6121 now.
		se.gone.Store(true)
		s.end(se)
		return
	}
	s.gen++
	d.gen = s.gen
	s.exp.push(expiry{at: s.r.mono() + int64(o.timeout), sess: se, gen: d.gen})
	s.noteNext()
}

func (s *shard) attach(o *op) {
	se := o.sess
	if se.gone.Load() || se.user == nil || se.detachedQ() == nil {
		o.done(nil, stanza.New(stanza.ItemNotFound))
		return
	}
	d := se.detachedQ()
	se.setDetached(nil)
	se.conn = o.conn
	s.r.detachedN.Add(-1)
	if se.blocked.CompareAndSwap(true, false) {
		o.conn.Resume()
	}
	q, at := d.queue, d.at
	if o.skip > 0 {
		// The client's h counts what the old stream wrote; those that did not fit the
		// queue went elsewhere already, and what came while detached it has not seen.
		q, at = q[min(o.skip, d.head):], at[min(o.skip, d.head):]
	}
	for i, raw := range q {
		if !se.conn.Send(raw) {
			// The new stream is already gone: what is left follows the RFC 6121 rules,
			// and the session ends (its stream's close finds no session to hand it).
			s.endDetachedAt(se.user, se, q[i:], at[i:])
			se.gone.Store(true)
			s.end(se)
			o.done(nil, stanza.New(stanza.ItemNotFound))
			return
		}
	}
	if len(s.r.reg.resumed) > 0 {
		s.ctx.set(se, se.user)
		v := s.r.view(se.jid.Domain())
		for _, f := range s.r.reg.resumed {
			if !v.disabled(f.id) {
				f.v(&s.ctx, se)
			}
		}
	}
	o.done(nil, nil)
}

// end removes a session that may be detached, then applies the RFC 6121 rules to what it
// had queued.
func (s *shard) end(se *Session) {
	u := se.user
	var queued [][]byte
	var at []int64
	if d := se.detachedQ(); d != nil {
		queued, at = d.queue, d.at
		se.setDetached(nil)
		s.r.detachedN.Add(-1)
	}
	s.removeSession(u, se)
	s.endDetachedAt(u, nil, queued, at)
	s.dropIfIdle(u)
	s.ephemeralEnded(u)
}

// endDetached re-routes stanzas that a session took but never delivered, all tried at
// (Unix nanoseconds). skip, when set, is still bound and must not get them again.
func (s *shard) endDetached(skip *Session, queued [][]byte, at int64) {
	for _, raw := range queued {
		s.undeliverableAt(raw, skip, at)
	}
}

// endDetachedAt is endDetached with a time per stanza (detached.at): one a live session
// of the user took as well is not handed out again, nor one another detached session of
// u holds (it took the message to the bare JID too, and now answers for it).
func (s *shard) endDetachedAt(u *user, skip *Session, queued [][]byte, at []int64) {
	for i, raw := range queued {
		if at[i] < 0 || s.siblingTakes(u, skip, raw) {
			continue
		}
		s.undeliverableAt(raw, skip, at[i])
	}
}

// siblingTakes reports whether another detached session of u holds raw, and makes its
// copy the one that is handed on if that session expires too (it may have been marked
// as another's).
func (s *shard) siblingTakes(u *user, skip *Session, raw []byte) bool {
	if u == nil || len(u.sessions) < 2 && (len(u.sessions) == 0 || u.sessions[0] == skip) {
		return false
	}
	for _, se := range u.sessions {
		d := se.detachedQ()
		if se == skip || d == nil || se.gone.Load() {
			continue
		}
		for i, q := range d.queue {
			if bytes.Equal(q, raw) {
				if d.at[i] < 0 {
					d.at[i] = -d.at[i]
				}
				return true
			}
		}
	}
	return false
}

// undeliverableAt is undeliverable for a stanza delivery was first tried for at (Unix
// nanoseconds): a message that goes to another resource or to offline storage carries a
// <delay/> with that time (XEP-0198 §4, XEP-0203), unless the server stamped it already.
func (s *shard) undeliverableAt(raw []byte, skip *Session, at int64) {
	if at != 0 && bytes.HasPrefix(raw, []byte("<message")) {
		e, err := xmlstream.ParseElement(raw, "jabber:client")
		if err == nil {
			if to, ok := e.Attr("to"); ok {
				if j, err := s.parseTo(to); err == nil {
					raw = stampDelay(raw, j.Domain(), time.Unix(0, at))
				}
			}
		}
	}
	s.undeliverable(raw, skip)
}

// stampDelay adds to raw the <delay/> of a message the server delivers late, from domain
// at at: not a second one from the same server (module.HasServerDelay).
func stampDelay(raw []byte, domain string, at time.Time) []byte {
	if module.HasServerDelay(raw, domain) {
		return raw
	}
	var b xmlstream.Builder
	b.Start("delay").Attr("xmlns", ns.Delay).Attr("from", domain).
		Attr("stamp", at.UTC().Format("2006-01-02T15:04:05.000Z")).End()
	return xmlstream.AppendChild(nil, raw, b.B)
}

// undeliverable applies RFC 6121 §8.5 to a stanza that a session of this shard's user
// accepted but could not deliver: messages go to another available resource, else to
// the modules' fallback (offline storage), else back to the sender as an error; IQ
// requests are answered with service-unavailable; the rest is dropped.
func (s *shard) undeliverable(raw []byte, skip *Session) {
	if s.onLoop {
		// Routed in place on an event loop, and the session refused it (its stream is
		// closing): the fallback may store it offline, which waits for the disk, so the
		// shard's worker runs it.
		o := getOp()
		o.kind = opCall
		cp := append([]byte(nil), raw...)
		o.fn = func(module.Context) { s.undeliverable(cp, skip) }
		s.q.pushForce(o)
		return
	}
	// A Packet of its own: the caller may still be using the shard's.
	p, ok := s.parsePacket(raw, jid.JID{})
	if !ok || p.Kind == module.KindPresence {
		return
	}
	k, typ, to := p.Kind, p.Type, p.To
	u := s.userFor(to.Bare(), false)
	s.ctx.set(nil, u)
	if k == module.KindIQ {
		if typ == "get" || typ == "set" {
			s.ctx.Error(&p, stanza.New(stanza.ServiceUnavailable))
		}
		return
	}
	switch typ {
	case "error", "groupchat", "headline":
		return
	}
	if sessionCopy(p.Elem()) {
		return
	}
	if u != nil && s.sendBest(u, raw, skip) {
		return
	}
	if u != nil && u.ephemeral && len(u.sessions) == 0 {
		// A guest who has left keeps nothing for later (ephemeral.go).
		s.ctx.Error(&p, stanza.New(stanza.ServiceUnavailable))
		return
	}
	v := s.r.view(to.Domain())
	for _, f := range s.r.reg.undeliverable {
		if !v.disabled(f.id) && f.v(&s.ctx, &p) {
			return
		}
	}
	s.ctx.Error(&p, stanza.New(stanza.ServiceUnavailable))
}

// sessionCopy reports whether a message was made for the one session it was queued for: a
// carbon copy (XEP-0280), which the other resources had their own of, or an archive query
// result (XEP-0313), which only the session that asked wants. Neither goes anywhere else.
func sessionCopy(e xmlstream.Element) bool {
	for it := e.Children(); ; {
		c, ok := it.Next()
		if !ok {
			return false
		}
		switch name, space := string(c.Name()), string(c.NS()); {
		case space == ns.Carbons && (name == "sent" || name == "received"):
			return true
		case space == ns.MAM && name == "result":
			return true
		}
	}
}

// sendBest offers raw to the available resources of u with non-negative priority, highest
// first, until one takes it. Sessions that refuse (closing, full) are passed over.
func (s *shard) sendBest(u *user, raw []byte, skip *Session) bool {
	tried := 0
	for prio := 127; prio >= 0 && tried < len(u.sessions); {
		next := -1
		for _, se := range u.sessions {
			if se == skip || se.gone.Load() || !se.available || se.prio < 0 {
				continue
			}
			p := int(se.prio)
			if p == prio {
				tried++
				if se.Send(raw) {
					return true
				}
			} else if p < prio && p > next {
				next = p
			}
		}
		prio = next
	}
	return false
}

// expireAll ends every detached session of the shard (shutdown): what they queued follows
// RFC 6121 now rather than being lost with the process.
func (s *shard) expireAll() {
	for _, u := range s.users {
		for _, se := range append([]*Session(nil), u.sessions...) {
			if se.detachedQ() != nil && se.gone.CompareAndSwap(false, true) {
				s.end(se)
			}
		}
	}
}
