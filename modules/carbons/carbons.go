// Package carbons implements XEP-0280: Message Carbons: copies of a user's chat messages,
// sent and received, to their other resources that enabled carbons.
package carbons

import (
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

func init() { module.Register(Mod{}) }

// Mod is the module.
type Mod struct{}

type enabledKey struct{}

// ModuleInfo implements module.Module.
func (Mod) ModuleInfo() module.Info {
	return module.Info{ID: "carbons", XEP: 280, New: func() module.Module { return new(Mod) }}
}

// Provision registers handlers and hooks.
func (m *Mod) Provision(r module.Registrar) error {
	r.IQ(module.IQSet, ns.Carbons, "enable", func(c module.Context, iq *module.Packet) { m.set(c, iq, true) })
	r.IQ(module.IQSet, ns.Carbons, "disable", func(c module.Context, iq *module.Packet) { m.set(c, iq, false) })
	// XEP-0386: carbons enabled in the same round trip as the login.
	r.Bind2(ns.Carbons, "enable", func(_ module.Context, s module.Session, _ xmlstream.Element) {
		s.SetValue(enabledKey{}, true)
	})
	r.Hook(module.Outbound, module.KindMessage, module.OrderCarbons, m.sent)
	r.Hook(module.Inbound, module.KindMessage, module.OrderCarbons, m.received)
	return nil
}

func (m *Mod) set(c module.Context, iq *module.Packet, on bool) {
	if s := c.Session(); s != nil {
		s.SetValue(enabledKey{}, on)
	}
	c.Reply(iq, nil)
}

func enabled(s module.Session) bool {
	v, _ := s.Value(enabledKey{}).(bool)
	return v
}

// eligible implements XEP-0280 §6: chat messages, normal ones with a body, and any
// carrying a payload of instant messaging (chat states, receipts, chat markers,
// invitations), minus private, no-copy and already-forwarded ones, and a room's private
// message to one occupant's full JID, which the user's other resources, not in the room,
// could not answer. A private message the user sends in a room (sent set) is copied: the
// other resources show the conversation (XEP-0280 §6.1). One pass over the children:
// this runs for every message.
func eligible(p *module.Packet, sent bool) (xmlstream.Element, bool) {
	e := p.Elem()
	switch p.Type {
	case "chat", "", "normal":
	default:
		return e, false
	}
	body, im, mucPM := false, false, false
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		name, space := string(ch.Name()), string(ch.NS())
		switch {
		case name == "body":
			body = true
		case space == ns.Carbons && (name == "private" || name == "received" || name == "sent"):
			return e, false
		case space == ns.Hints && name == "no-copy":
			return e, false
		case space == ns.ChatStates || space == ns.Receipts || space == nsMarkers || space == ns.Conference:
			im = true
		case space == ns.MUCUser:
			if _, invite := ch.Child(ns.MUCUser, "invite"); invite {
				im = true // a mediated invitation (XEP-0045 §7.8.2)
			} else if p.Type == "chat" && !p.To.IsBare() && !sent {
				mucPM = true
			}
		}
	}
	if mucPM {
		return e, false
	}
	return e, body || im || p.Type == "chat"
}

// nsMarkers is XEP-0333's namespace.
const nsMarkers = "urn:xmpp:chat-markers:0"

func wrap(kind string, user, to jid.JID, raw []byte) []byte {
	var b xmlstream.Builder
	b.Start("message").Attr("from", user.String()).Attr("to", to.String()).Attr("type", "chat")
	b.Start(kind).Attr("xmlns", ns.Carbons).Start("forwarded").Attr("xmlns", ns.Forward)
	b.Raw(xmlstream.SetAttrs(nil, raw, xmlstream.AttrSet{Name: "xmlns", Value: []byte(ns.Client)}))
	b.End().End().End()
	return b.B
}

// anyEnabled reports whether a session other than the one with JID self has carbons on:
// most users have one session, and their messages need no look at the children.
func anyEnabled(ss []module.Session, self jid.JID) bool {
	for _, s := range ss {
		if enabled(s) && !s.JID().Equal(self) {
			return true
		}
	}
	return false
}

func (m *Mod) sent(c module.Context, p *module.Packet) module.Verdict {
	user := p.From.Bare()
	sessions := c.Sessions(user)
	if !anyEnabled(sessions, p.From) {
		return module.Continue
	}
	if _, ok := eligible(p, true); !ok {
		return module.Continue
	}
	raw := p.Raw
	if id := p.ArchiveID(); id != "" {
		// The copy says under which id the user's archive keeps the message, as a received
		// copy does; whatever the sending client put there in the user's name goes.
		raw = sid.Stamp(raw, user.String(), id)
	}
	for _, s := range sessions {
		if s.JID().Equal(p.From) || !enabled(s) || !s.Available() {
			continue
		}
		s.Send(wrap("sent", user, s.JID(), raw))
	}
	return module.Continue
}

func (m *Mod) received(c module.Context, p *module.Packet) module.Verdict {
	user := p.To.Bare()
	sessions := c.Sessions(user)
	if len(sessions) < 2 || !anyEnabled(sessions, jid.JID{}) {
		return module.Continue
	}
	if _, ok := eligible(p, false); !ok {
		return module.Continue
	}
	// Which sessions get the original (RFC 6121 §8.5 as the router applies it)?
	target := func(s module.Session) bool { return s.JID().Equal(p.To) }
	if p.To.IsBare() || !hasResource(sessions, p.To) {
		best := -1
		for _, s := range sessions {
			if s.Available() && s.Priority() > best {
				best = s.Priority()
			}
		}
		target = func(s module.Session) bool { return s.Available() && s.Priority() == best && best >= 0 }
	}
	for _, s := range sessions {
		if target(s) || !enabled(s) || !s.Available() {
			continue
		}
		s.Send(wrap("received", user, s.JID(), p.Raw))
	}
	return module.Continue
}

func hasResource(ss []module.Session, to jid.JID) bool {
	for _, s := range ss {
		if s.JID().Equal(to) {
			return true
		}
	}
	return false
}
