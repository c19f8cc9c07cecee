package muc

import (
	"bytes"
	"time"
	"unsafe"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// split returns the start tag of e (with its closing '>' or '/>') and its content. Both
// are slices of e.Raw().
func split(e xmlstream.Element) (tag, inner []byte) {
	raw := e.Raw()
	inner = e.Inner()
	if inner == nil {
		return raw, nil
	}
	// inner lies inside raw's backing array: its offset is the difference in capacity.
	off := cap(raw) - cap(inner)
	if off < 0 || off > len(raw) {
		return raw, nil
	}
	return raw[:off], inner
}

// openTag trims the end of a start tag, leaving "<name attrs" to which attributes and
// then '>' can be appended.
func openTag(tag []byte) []byte {
	n := len(tag)
	if n > 0 && tag[n-1] == '>' {
		n--
	}
	if n > 0 && tag[n-1] == '/' {
		n--
	}
	for n > 0 && isSpace(tag[n-1]) {
		n--
	}
	return tag[:n]
}

// s2b views s as bytes without copying; the result must not be written to.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// stamp appends raw to dst with 'to' set to the recipient (xmlstream.SetAttrs: only the
// start tag is rewritten, nothing is parsed beyond it).
func stamp(dst, raw []byte, to jid.JID) []byte {
	return xmlstream.SetAttrs(dst, raw, xmlstream.AttrSet{Name: "to", Value: s2b(to.String())})
}

// sender delivers room stanzas: it stamps a prepared stanza with each recipient and
// routes it without the router parsing 'to' again (module.DirectRouter), through a
// buffer of the shard (module.Scratcher) or its own.
type sender struct {
	c   module.Context
	d   module.DirectRouter
	p   module.PacketRouter
	pkt module.Packet // what packet hands the router; reused
	buf *[]byte
	own []byte
	// The start tag of the template last sent, through its '>', and where to insert 'to':
	// consecutive sends of one template (a fan-out) find the insertion point once. A
	// template that starts with the same bytes has the same insertion point, whatever
	// buffer it is in (callers rewrite one buffer between sends).
	tag       [256]byte
	tagLen    int // 0: nothing cached (or a start tag longer than tag)
	head, cut int // tmpl[:head] + " to='…'" + tmpl[cut:]
}

func newSender(c module.Context) sender {
	s := sender{c: c}
	s.d, _ = c.(module.DirectRouter)
	s.p, _ = c.(module.PacketRouter)
	if sc, ok := c.(module.Scratcher); ok {
		s.buf = sc.Scratch(1)
	} else {
		s.buf = &s.own
	}
	return s
}

// to sends tmpl (a stanza without 'to') to one recipient: the bytes of tmpl with
// " to='…'" added at the end of its start tag, what xmlstream.SetAttrs writes for an
// attribute the tag lacks, with the tag scanned once per template rather than once per
// recipient.
func (s *sender) to(to jid.JID, tmpl []byte) {
	b := s.stamped(to, tmpl)
	if s.d != nil {
		s.d.RouteTo(to, b)
		return
	}
	s.c.Route(b)
}

// packet is to for a template whose kind, type and sender the room knows (a reflected
// groupchat message from an occupant): the router is told them (module.PacketRouter), so
// the recipient's shard does not parse the stanza again, once per recipient.
func (s *sender) packet(to jid.JID, tmpl []byte, k module.Kind, typ, id string, from jid.JID) {
	if s.p == nil {
		s.to(to, tmpl)
		return
	}
	s.pkt = module.Packet{Raw: s.stamped(to, tmpl), Kind: k, Type: typ, ID: id, From: from, To: to}
	s.p.RoutePacket(&s.pkt)
	s.pkt.Raw = nil
}

// stamped returns tmpl with 'to' added, in the sender's buffer.
func (s *sender) stamped(to jid.JID, tmpl []byte) []byte {
	if s.tagLen == 0 || !bytes.HasPrefix(tmpl, s.tag[:s.tagLen]) {
		s.cut, s.tagLen = tagCut(tmpl), 0
		for s.head = s.cut; s.head > 0 && isSpace(tmpl[s.head-1]); s.head-- {
		}
		if end := s.cut + 1; s.cut >= 0 {
			if tmpl[s.cut] == '/' {
				end++
			}
			if end <= len(s.tag) {
				s.tagLen = copy(s.tag[:], tmpl[:end])
			}
		}
	}
	var b []byte
	if s.cut < 0 {
		b = stamp((*s.buf)[:0], tmpl, to)
	} else {
		b = append((*s.buf)[:0], tmpl[:s.head]...)
		b = append(b, " to='"...)
		b = xmlstream.AppendEscapedString(b, to.String())
		b = append(b, '\'')
		b = append(b, tmpl[s.cut:]...)
	}
	*s.buf = b
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// tagCut returns where attributes can be appended to the start tag that opens raw: the
// index of its closing '>' (or of the '/' of "/>"), skipping quoted attribute values;
// -1 when raw does not start with a complete start tag.
func tagCut(raw []byte) int {
	if len(raw) < 2 || raw[0] != '<' {
		return -1
	}
	var q byte
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '>':
			if raw[i-1] == '/' {
				return i - 1
			}
			return i
		}
	}
	return -1
}

// scratch0 lends the shard's first rewrite buffer for building a template (or a fresh
// one); store the grown slice back with keep0.
func scratch0(c module.Context) *[]byte {
	if sc, ok := c.(module.Scratcher); ok {
		return sc.Scratch(0)
	}
	return new([]byte)
}

// stampLayout is XEP-0082 DateTime in UTC with milliseconds.
const stampLayout = "2006-01-02T15:04:05.000Z"

// appendDelay appends <delay xmlns='urn:xmpp:delay' from=room stamp=at/> (XEP-0203).
func appendDelay(dst []byte, room jid.JID, at time.Time) []byte {
	dst = append(dst, "<delay xmlns='"+ns.Delay+"' from='"...)
	dst = xmlstream.AppendEscapedString(dst, room.String())
	dst = append(dst, "' stamp='"...)
	dst = at.UTC().AppendFormat(dst, stampLayout)
	return append(dst, "'/>"...)
}

// appendOccupantID appends the XEP-0421 element.
func appendOccupantID(dst []byte, id string) []byte {
	dst = append(dst, "<occupant-id xmlns='"+NSOccupant+"' id='"...)
	dst = xmlstream.AppendEscapedString(dst, id)
	return append(dst, "'/>"...)
}

// parseStamp reads an XEP-0082 DateTime (with or without fractions, Z or an offset).
func parseStamp(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
