package module

import (
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// LeafService answers, for a service domain with no entities inside it (file upload,
// the SOCKS5 proxy), what every such service answers the same way, and hands the rest to
// its handler: it returns the payload of an IQ get or set addressed to the domain itself
// that is none of disco#info (info is the service's <query/>; a node is item-not-found),
// disco#items (empty) and XEP-0199 ping, and ok=false for everything it answered or
// dropped: stanzas without a sender, IQ results and errors, presence; service-unavailable
// to a message and to an IQ for a JID inside the domain; bad-request to an IQ without a
// payload.
func LeafService(c Context, p *Packet, info []byte) (q xmlstream.Element, ok bool) {
	if p.From.IsZero() {
		return q, false
	}
	switch p.Kind {
	case KindIQ:
	case KindMessage:
		if p.Type != "error" {
			c.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
		return q, false
	default:
		return q, false
	}
	if p.Type != "get" && p.Type != "set" {
		return q, false
	}
	if p.To.Local() != "" || p.To.Resource() != "" {
		c.Error(p, stanza.New(stanza.ServiceUnavailable))
		return q, false
	}
	if q, ok = p.Payload(); !ok {
		c.Error(p, stanza.New(stanza.BadRequest))
		return q, false
	}
	name, space := string(q.Name()), string(q.NS())
	switch {
	case p.Type == "get" && space == ns.DiscoInfo && name == "query":
		if n, _ := q.AppendAttr(nil, "node"); len(n) > 0 {
			c.Error(p, stanza.New(stanza.ItemNotFound))
		} else {
			c.Reply(p, info)
		}
	case p.Type == "get" && space == ns.DiscoItems && name == "query":
		c.Reply(p, []byte("<query xmlns='"+ns.DiscoItems+"'/>"))
	case p.Type == "get" && space == ns.Ping && name == "ping":
		c.Reply(p, nil)
	default:
		return q, true
	}
	return q, false
}
