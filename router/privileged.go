package router

import (
	"bytes"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// SubmitAs hands the router a message that a privileged component (XEP-0356 §5, checked
// by the engine) sends as user, the bare JID of a local account: it takes the user's
// outbound phase as if one of the user's clients had sent it (carbons' "sent" copies
// reach every client of the user, the archive keeps it), then goes to its destination.
// A user without an account gets item-not-found, sent to component. raw is copied. It
// returns false when the shard is overloaded.
func (r *Router) SubmitAs(user, component jid.JID, raw []byte) bool {
	if r.closed.Load() {
		return true
	}
	o := copyOp(opOutAs, raw)
	o.pk = module.KindMessage
	o.bare, o.from = user.Bare(), component
	return r.pushOrDrop(r.shardOf(o.bare.String()).q, o)
}

// outboundAs runs a SubmitAs message on its user's shard.
func (s *shard) outboundAs(o *op) bool {
	e, err := xmlstream.ParseElement(o.buf.B, "jabber:client")
	if err != nil {
		return false
	}
	if _, err := s.r.st.Accounts().Get(o.bare.String()); err != nil {
		if t, _ := e.AppendAttr(nil, "type"); string(t) == "error" {
			return false // an error is not answered with one
		}
		var b xmlstream.Builder
		b.Start("message").Attr("type", "error").Attr("from", o.bare.Domain()).Attr("to", o.from.String())
		se := stanza.New(stanza.ItemNotFound)
		se.Text = "no such account: " + o.bare.String()
		b.Raw(se.AppendXML(nil)).End()
		s.r.route(b.B)
		return false
	}
	var to jid.JID
	if v, ok := e.Attr("to"); ok {
		if to, err = s.parseTo(v); err != nil {
			return false
		}
	}
	if to.IsZero() {
		to = o.bare // RFC 6120 §10.3.1
	}
	u := s.userFor(o.bare, false)
	s.setPacket(o.buf.B, module.KindMessage, internType(e, module.KindMessage), "", o.bare, to)
	s.pkt.SetElem(e)
	s.ctx.set(nil, u)
	if s.runHooks(module.Outbound, module.KindMessage) == module.Stop {
		return false
	}
	return s.forwardPacket(o, &s.pkt)
}

// Bounds of the IQs privileged components have in flight as users (XEP-0356 §6).
const (
	// PrivilegedIQs is the most one shard holds; beyond it a request gets
	// resource-constraint.
	PrivilegedIQs = 4096
	// PrivilegedIQTimeout is how long an answer is waited for; after it the component
	// gets remote-server-timeout (when the shard next takes a privileged request).
	PrivilegedIQTimeout = time.Minute
)

// privKey names an IQ in flight as a user: the user and the request's id.
type privKey struct{ user, id string }

// privIQ is where its answer goes: the component, the id of its request, and who is
// to answer (zero: the server itself, for the user's own account).
type privIQ struct {
	component jid.JID
	outerID   string
	from      jid.JID
	deadline  int64 // Router.mono
}

// SubmitIQAs hands the router an IQ request that a privileged component (XEP-0356 §6.3,
// checked by the engine) sends as user, a local account's bare JID: raw is the request
// with 'from' set to user and an 'id'. It takes the user's outbound path (the server's
// own handlers when it is addressed to the user's account or the server) and its answer
// goes back to component, as the answer to outerID, wrapped in <privilege><forwarded/>.
// raw is copied. It returns false when the shard is overloaded.
func (r *Router) SubmitIQAs(user, component jid.JID, outerID string, raw []byte) bool {
	if r.closed.Load() {
		return true
	}
	o := copyOp(opIQAs, raw)
	o.pk = module.KindIQ // forwardPacket passes the kind on
	o.bare, o.from, o.resource = user.Bare(), component, outerID
	return r.pushOrDrop(r.shardOf(o.bare.String()).q, o)
}

// iqAs runs a SubmitIQAs request on its user's shard.
func (s *shard) iqAs(o *op) bool {
	fail := func(cond stanza.Condition, text string) bool {
		e := stanza.New(cond)
		e.Text = text
		var b xmlstream.Builder
		b.Start("iq").Attr("type", "error").Attr("from", o.bare.String()).Attr("to", o.from.String()).Attr("id", o.resource)
		b.Raw(e.AppendXML(nil)).End()
		s.r.route(b.B)
		return false
	}
	if _, err := s.r.st.Accounts().Get(o.bare.String()); err != nil {
		return fail(stanza.ItemNotFound, "no such account: "+o.bare.String())
	}
	e, err := xmlstream.ParseElement(o.buf.B, "jabber:client")
	if err != nil {
		return false
	}
	id, _ := e.AppendAttr(nil, "id")
	var to jid.JID
	if v, ok := e.Attr("to"); ok {
		if to, err = s.parseTo(v); err != nil {
			return fail(stanza.JIDMalformed, "")
		}
	}
	now := s.r.mono()
	if s.privIQ == nil {
		s.privIQ = map[privKey]privIQ{}
	}
	key := privKey{o.bare.String(), string(id)}
	for k, v := range s.privIQ { // few, and this path is rare: a gateway's own requests
		if now > v.deadline {
			delete(s.privIQ, k)
			s.privilegedTimeout(k, v)
		}
	}
	if len(s.privIQ) >= PrivilegedIQs {
		return fail(stanza.ResourceConstraintCond, "too many privileged requests in flight")
	}
	if _, dup := s.privIQ[key]; dup {
		return fail(stanza.ConflictCond, "a request with this id is in flight")
	}
	from := to
	if to.Equal(o.bare) {
		from = jid.JID{}
	}
	s.privIQ[key] = privIQ{component: o.from, outerID: o.resource, from: from, deadline: now + int64(PrivilegedIQTimeout)}
	o.resource = "" // the op may go on to the addressee's shard
	u := s.userFor(o.bare, true)
	s.setPacket(o.buf.B, module.KindIQ, internType(e, module.KindIQ), string(id), o.bare, to)
	s.pkt.SetElem(e)
	s.ctx.set(nil, u)
	keep := s.outIQ(o, &s.pkt, u)
	s.dropIfIdle(u)
	return keep
}

// privilegedAnswer passes p, an IQ answer to a user's bare JID, to the component whose
// privileged request it answers, if it does (and the right entity sent it).
func (s *shard) privilegedAnswer(p *module.Packet) bool {
	key := privKey{p.To.Bare().String(), p.ID}
	v, ok := s.privIQ[key]
	if !ok {
		return false
	}
	if v.from.IsZero() {
		// Asked of the user's own account: the server answers, from the account or
		// from nowhere; anyone else who guessed the id does not.
		server := p.From.Local() == "" && p.From.Resource() == "" && p.From.Domain() == p.To.Domain()
		if !p.From.IsZero() && !p.From.Equal(p.To.Bare()) && !server {
			return false
		}
	} else if !p.From.Bare().Equal(v.from.Bare()) {
		return false
	}
	delete(s.privIQ, key)
	if len(s.privIQ) == 0 {
		s.privIQ = nil // nothing to check on the inbound path again until the next one
	}
	var b xmlstream.Builder
	b.Start("iq").Attr("type", p.Type).Attr("from", p.To.Bare().String()).Attr("to", v.component.String()).Attr("id", v.outerID).
		Start("privilege").Attr("xmlns", module.NSPrivilege).Start("forwarded").Attr("xmlns", "urn:xmpp:forward:0")
	raw := p.Raw
	if !bytes.Contains(raw[:bytes.IndexByte(raw, '>')+1], []byte("xmlns=")) {
		raw = xmlstream.SetAttrs(nil, raw, xmlstream.AttrSet{Name: "xmlns", Value: []byte("jabber:client")})
	}
	b.Raw(raw).End().End().End()
	s.r.route(b.B)
	return true
}

// privilegedTimeout tells a component that the request it sent as a user got no answer.
func (s *shard) privilegedTimeout(k privKey, v privIQ) {
	var b xmlstream.Builder
	b.Start("iq").Attr("type", "error").Attr("from", k.user).Attr("to", v.component.String()).Attr("id", v.outerID)
	b.Raw(stanza.New(stanza.RemoteServerTimeout).AppendXML(nil)).End()
	s.r.route(b.B)
}

// toWatchers sends a copy of raw, a user's broadcast presence (available or unavailable,
// 'from' its full JID), to every component with the managed_entity presence privilege
// (XEP-0356 §7).
func (s *shard) toWatchers(raw []byte) {
	w := s.r.watchers.Load()
	if w == nil {
		return
	}
	for _, c := range *w {
		s.r.route(xmlstream.SetAttrs(nil, raw, xmlstream.AttrSet{Name: "to", Value: []byte(c.String())}))
	}
}

// ReplayPresence sends component, which just connected with a presence privilege, the
// presence of every available session of the server's users (XEP-0356 §8, rule 1), each
// from its shard, and with the roster type, of every contact on another server known to
// be available.
func (r *Router) ReplayPresence(component jid.JID) {
	if r.Privileges(component).RosterPresence() {
		r.replayContacts(component)
	}
	for _, s := range r.shards {
		o := getOp()
		o.kind, o.to = opReplay, component
		s.q.pushForce(o)
	}
}

func (s *shard) replayPresence(to jid.JID) {
	for _, u := range s.users {
		for _, se := range u.sessions {
			if se.available && len(se.presence) > 0 {
				s.r.route(xmlstream.SetAttrs(nil, se.presence, xmlstream.AttrSet{Name: "to", Value: []byte(to.String())}))
			}
		}
	}
}
