package router

import (
	"bytes"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// kindOf maps a top-level element name to a stanza kind; ok is false for anything else.
func kindOf(name []byte) (module.Kind, bool) {
	switch string(name) {
	case "message":
		return module.KindMessage, true
	case "presence":
		return module.KindPresence, true
	case "iq":
		return module.KindIQ, true
	}
	return 0, false
}

// parsePacket reads a raw stanza into a Packet (to, when set, is already parsed); ok is
// false for anything that is not a stanza.
func (s *shard) parsePacket(raw []byte, to jid.JID) (module.Packet, bool) {
	e, err := xmlstream.ParseElement(raw, "jabber:client")
	if err != nil {
		return module.Packet{}, false
	}
	k, ok := kindOf(e.Name())
	if !ok {
		return module.Packet{}, false
	}
	var id string
	if v, ok := e.Attr("id"); ok && k != module.KindMessage {
		if bytes.IndexByte(v, '&') >= 0 {
			v = xmlstream.AppendUnescaped(nil, v)
		}
		id = string(v)
	}
	var from jid.JID
	if v, ok := e.Attr("from"); ok {
		from, _ = s.parseTo(v)
	}
	if to.IsZero() {
		if v, ok := e.Attr("to"); ok {
			to, _ = s.parseTo(v)
		}
	}
	return module.Packet{Raw: raw, Kind: k, Type: internType(e, k), ID: id, From: from, To: to}, true
}

// packetOf fills the shard's packet from a raw stanza; ok is false for anything that is not
// a stanza.
func (s *shard) packetOf(raw []byte, to jid.JID) (*module.Packet, bool) {
	p, ok := s.parsePacket(raw, to)
	if !ok {
		return nil, false
	}
	s.pkt = p
	return &s.pkt, true
}

// opPacket is packetOf for the stanza o carries, without a parse when the sender said what
// it is (RoutePacket).
func (s *shard) opPacket(o *op) (*module.Packet, bool) {
	if !o.known {
		return s.packetOf(o.buf.B, o.to)
	}
	s.pkt = module.Packet{Raw: o.buf.B, Kind: o.pk, Type: o.typ, ID: o.id, From: o.from, To: o.to}
	if o.hasElem {
		s.pkt.SetElem(o.elem)
	}
	return &s.pkt, true
}

// service runs a service domain's handler for one stanza, in the shard of the addressed
// entity.
func (s *shard) service(o *op) {
	p, ok := s.opPacket(o)
	if !ok || o.svc == nil {
		return
	}
	s.ctx.set(nil, nil)
	s.ctx.svc = p.To
	o.svc.Handler(&s.ctx, p)
	s.ctx.svc = jid.JID{}
}

// relay passes on a stanza from a component or a remote server. The engine checked that
// its sender (o.bare) is one the peer may send as; the stanza's 'from' must be it.
func (s *shard) relay(o *op) bool {
	p, ok := s.packetOf(o.buf.B, jid.JID{})
	if !ok {
		return false
	}
	s.ctx.set(nil, nil)
	if p.From.IsZero() {
		p.From = o.bare
	}
	if p.To.IsZero() {
		s.ctx.Error(p, stanza.New(stanza.BadRequest))
		return false
	}
	if s.r.isolated.Load() != nil {
		if e := s.r.walled(p.From, p.To); e != nil {
			s.ctx.Error(p, e)
			return false
		}
	}
	k, sv := s.r.resolve(p.To)
	switch k {
	case destServer:
		s.toServer(p)
		return false
	case destAccount, destService:
		o.to = p.To
		o.kind = opIn
		if k == destService {
			o.kind, o.svc = opService, sv
		}
		s.stats.routed.Add(1)
		s.r.shardOf(p.To.Bare().String()).q.pushForce(o)
		return true
	}
	if e := s.r.deliverAway(k, p.From, p.To, p.Raw); e != nil {
		s.ctx.Error(p, e)
	}
	return false
}

// toServer handles a stanza addressed to a local domain that did not come from one of its
// own users' sessions (those are answered in their outbound phase): IQ requests go to the
// handlers that answer anyone (disco, ping, version, time, last); the rest gets
// service-unavailable where RFC 6120 asks for an answer.
func (s *shard) toServer(p *module.Packet) {
	s.ctx.set(nil, nil)
	switch p.Kind {
	case module.KindIQ:
		if p.Type != "get" && p.Type != "set" {
			return
		}
		payload, ok := p.Payload()
		if !ok {
			s.ctx.Error(p, stanza.New(stanza.BadRequest))
			return
		}
		if !s.r.reg.public[string(payload.NS())] {
			s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
			return
		}
		s.dispatchIQ(false, p.To.Domain(), p)
	case module.KindMessage:
		if p.Type != "error" && p.Type != "headline" && p.Type != "groupchat" {
			s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
	}
}

// nonza runs the module handler for a top-level non-stanza element of a session.
func (s *shard) nonza(o *op, handlers map[nonzaKey]module.NonzaHandler) {
	se := o.sess
	if se.gone.Load() || se.user == nil {
		return
	}
	e, err := xmlstream.ParseElement(o.buf.B, "jabber:client")
	if err != nil {
		return
	}
	k := nonzaKey{string(e.NS()), string(e.Name())}
	h := handlers[k]
	if v := s.r.view(se.jid.Domain()); h != nil && (v.disabled(s.r.reg.nonzaOwner[k]) || v.disabled(s.r.reg.bind2Owner[k])) {
		h = nil // the host turned the module off since the element came
	}
	if h == nil {
		return
	}
	s.ctx.set(se, se.user)
	h(&s.ctx, se, e)
}
