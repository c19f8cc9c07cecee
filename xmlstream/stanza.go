package xmlstream

// StanzaKind classifies a top-level element.
type StanzaKind uint8

// Stanza kinds. Kind() reports KindMessage, KindPresence or KindIQ only for the element names
// message, presence and iq qualified by jabber:client, jabber:server or jabber:component:accept.
const (
	KindOther StanzaKind = iota
	KindMessage
	KindPresence
	KindIQ
)

// Stanza is a view of a complete top-level element (or of the stream header start tag). It is
// the element's bytes plus the index the second pass built: no tree. All slices point into the
// input, the State's pooled buffer, the Scanner's scratch or interned header strings; none may
// be written to, and all are valid only until the next call to Next with the same Scanner or
// State.
type Stanza struct {
	Raw                []byte // the element's bytes exactly as received (header: the start tag only)
	Name               []byte // local name, e.g. "message", "iq", "presence", "auth", "starttls"
	NS                 []byte // resolved namespace URI of the element (e.g. "jabber:client", ns.SASL)
	To, From, Type, ID []byte // raw (still escaped) attribute values; nil if absent
	Lang               []byte // xml:lang of the element, or inherited from the stream header; nil if none

	sc  *Scanner // top attributes and children index
	hdr *header  // stream header context, for prefix resolution in Element views
	te  int32    // end of the start tag in Raw
	dns []byte   // default namespace inside the element
}

// Attr returns the raw (escaped) value of the non-namespaced attribute local.
func (s *Stanza) Attr(local string) ([]byte, bool) {
	for k := range s.sc.top {
		if a := &s.sc.top[k]; a.c < 0 && string(s.Raw[a.n0:a.n1]) == local {
			return s.Raw[a.v0:a.v1], true
		}
	}
	return nil, false
}

// Elem returns an element view of the whole stanza. For the stream header the view covers the
// start tag only and has no children.
func (s *Stanza) Elem() Element {
	e := int32(len(s.Raw))
	return Element{root: s.Raw, ns: s.NS, dns: s.dns, hdr: s.hdr, s: 0, te: s.te, e: e}
}

// NumChildren returns the number of direct child elements (from the index; no scanning).
func (s *Stanza) NumChildren() int { return len(s.sc.kids) }

// Child returns the i-th direct child element (from the index; no scanning). It panics if i is
// out of range, like a slice index.
func (s *Stanza) Child(i int) Element {
	k := &s.sc.kids[i]
	return Element{root: s.Raw, ns: k.ns, dns: k.dns, hdr: s.hdr, s: k.s, te: k.te, e: k.e}
}

// FirstChild returns the first child element, e.g. the payload of an IQ.
func (s *Stanza) FirstChild() (Element, bool) {
	if len(s.sc.kids) == 0 {
		return Element{}, false
	}
	return s.Child(0), true
}

// Kind classifies the stanza as message, presence or IQ; anything else is KindOther.
func (s *Stanza) Kind() StanzaKind { return kindOf(s.Name, s.NS) }
