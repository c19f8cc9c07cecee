package xmlstream

import (
	"bytes"
	"unicode/utf8"

	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// nsXMLNS is the namespace of namespace declarations (Namespaces in XML 1.0 §3); it may never
// be declared.
const nsXMLNS = "http://www.w3.org/2000/xmlns/"

// bind is one prefixed namespace declaration in scope.
type bind struct{ prefix, uri []byte }

// frame is one open element during the second pass.
type frame struct {
	qname []byte // to match the end tag
	outer []byte // default namespace outside the element, restored at its end
	nb    int    // len(binds) outside the element
}

// attr is one attribute of a start tag.
type attr struct {
	name  []byte // qualified name as written
	local []byte // local part
	pfx   []byte // prefix, nil if none
	ns    []byte // resolved namespace: nil unprefixed, nsXMLNS for declarations
	val   []byte // raw (escaped) value
}

// kid is one direct child of the top-level element: offsets into Stanza.Raw.
type kid struct {
	s, te, e int32  // element is Raw[s:e], its start tag Raw[s:te]
	ns, dns  []byte // namespace; default namespace inside it
}

var cdataEnd = []byte("]]>")

// readTag reads the start tag that begins at raw[i] == '<' into sc.attrs. It returns the
// qualified name, the index after the tag and whether it was an empty-element tag. The first
// pass validated the tag, so this only slices; the bounds checks turn a disagreement between
// the passes into an error instead of a panic.
func (sc *Scanner) readTag(raw []byte, i int) (qname []byte, end int, empty bool, err *stanza.StreamError) {
	k := i + 1
	for k < len(raw) && !tagStop[raw[k]] {
		k++
	}
	qname = raw[i+1 : k]
	sc.attrs = sc.attrs[:0]
	for {
		for k < len(raw) && isWS[raw[k]] {
			k++
		}
		if k >= len(raw) {
			return nil, 0, false, errInternal
		}
		switch raw[k] {
		case '>':
			return qname, k + 1, false, nil
		case '/':
			return qname, k + 2, true, nil
		}
		n := k
		for k < len(raw) && !tagStop[raw[k]] {
			k++
		}
		name := raw[n:k]
		for k < len(raw) && raw[k] != '\'' && raw[k] != '"' {
			k++
		}
		if k >= len(raw) {
			return nil, 0, false, errInternal
		}
		q := raw[k]
		v := bytes.IndexByte(raw[k+1:], q)
		if v < 0 {
			return nil, 0, false, errInternal
		}
		sc.attrs = append(sc.attrs, attr{name: name, val: raw[k+1 : k+1+v]})
		k += v + 2
	}
}

// splitQName splits a qualified name (Namespaces in XML 1.0 §4) into prefix and local part.
func splitQName(name []byte) (prefix, local []byte, err *stanza.StreamError) {
	c := bytes.IndexByte(name, ':')
	if c < 0 {
		return nil, name, nil
	}
	if c == 0 || c == len(name)-1 || bytes.IndexByte(name[c+1:], ':') >= 0 {
		return nil, nil, errQName
	}
	local = name[c+1:]
	if b := local[0]; b < utf8.RuneSelf {
		if !nameStartOK[b] {
			return nil, nil, errQName
		}
	} else if r, _ := utf8.DecodeRune(local); !isNameStartRune(r) {
		return nil, nil, errQName
	}
	return name[:c], local, nil
}

// lookup resolves a namespace prefix: declarations inside the item, innermost first, then the
// stream header's, then the predefined xml prefix.
func (sc *Scanner) lookup(h *header, prefix []byte) ([]byte, bool) {
	for k := len(sc.binds) - 1; k >= 0; k-- {
		if bytes.Equal(sc.binds[k].prefix, prefix) {
			return sc.binds[k].uri, true
		}
	}
	if uri, ok := h.lookup(prefix); ok {
		return uri, true
	}
	if string(prefix) == "xml" {
		return s2b(ns.XML), true
	}
	return nil, false
}

// declare applies the namespace declarations among sc.attrs (pushing prefixed ones on
// sc.binds), resolves the attributes' prefixes and rejects duplicates after resolution. dns
// is the default namespace outside the element; declare returns the one inside it.
func (sc *Scanner) declare(h *header, dns []byte) ([]byte, *stanza.StreamError) {
	for k := range sc.attrs {
		a := &sc.attrs[k]
		name := a.name
		switch {
		case string(name) == "xmlns":
			uri, err := nsValue(a.val)
			if err != nil {
				return nil, err
			}
			if string(uri) == ns.XML || string(uri) == nsXMLNS {
				return nil, errReservedNS
			}
			dns = uri
			a.ns, a.local = s2b(nsXMLNS), name
		case len(name) > 6 && string(name[:6]) == "xmlns:":
			prefix := name[6:]
			if bytes.IndexByte(prefix, ':') >= 0 {
				return nil, errQName
			}
			uri, err := nsValue(a.val)
			if err != nil {
				return nil, err
			}
			switch {
			case len(uri) == 0:
				return nil, errEmptyPrefix
			case string(prefix) == "xml":
				if string(uri) != ns.XML {
					return nil, errReservedNS
				}
			case string(prefix) == "xmlns", string(uri) == ns.XML, string(uri) == nsXMLNS:
				return nil, errReservedNS
			default:
				sc.binds = append(sc.binds, bind{prefix: prefix, uri: uri})
			}
			a.ns, a.local = s2b(nsXMLNS), prefix
		default:
			pfx, local, err := splitQName(name)
			if err != nil {
				return nil, err
			}
			a.pfx, a.local, a.ns = pfx, local, nil
		}
	}
	// Resolve prefixed attributes now that all of this tag's declarations are known, and look
	// for duplicates. A 64-bit filter on (length, last byte) keeps this linear in practice.
	var seen uint64
	for k := range sc.attrs {
		a := &sc.attrs[k]
		if a.pfx != nil {
			if string(a.pfx) == "xmlns" {
				return nil, errReservedNS
			}
			uri, ok := sc.lookup(h, a.pfx)
			if !ok {
				return nil, errUnbound
			}
			a.ns = uri
		}
		bit := uint64(1) << ((uint(len(a.local)) + uint(a.local[len(a.local)-1])) & 63)
		if seen&bit != 0 {
			for p := 0; p < k; p++ {
				if bytes.Equal(sc.attrs[p].local, a.local) && bytes.Equal(sc.attrs[p].ns, a.ns) &&
					(sc.attrs[p].ns == nil) == (a.ns == nil) {
					return nil, errDupAttr
				}
			}
		}
		seen |= bit
	}
	return dns, nil
}

// nsValue returns a namespace declaration's value unescaped. Values with references are so
// rare in XMPP that this path may allocate.
func nsValue(val []byte) ([]byte, *stanza.StreamError) {
	if bytes.IndexByte(val, '&') < 0 {
		return val, nil
	}
	return unescape(nil, val, modeAttr), nil
}

// element runs the second pass over a complete top-level element raw: it matches end tags,
// resolves namespaces, checks attributes and fills sc.stz with the index.
func (sc *Scanner) element(st *State, raw []byte) *stanza.StreamError {
	h := st.hdr
	sc.binds = sc.binds[:0]
	sc.open = sc.open[:0]
	sc.kids = sc.kids[:0]
	dns := s2b(h.defNS)
	i := 0
	for {
		if i+1 >= len(raw) {
			return errInternal
		}
		switch raw[i+1] {
		case '/':
			j := i + 2
			k := j
			for k < len(raw) && !tagStop[raw[k]] {
				k++
			}
			if len(sc.open) == 0 {
				return errInternal
			}
			top := &sc.open[len(sc.open)-1]
			if !bytes.Equal(raw[j:k], top.qname) {
				return errMismatch
			}
			e := bytes.IndexByte(raw[k:], '>')
			if e < 0 {
				return errInternal
			}
			i = k + e + 1
			sc.binds = sc.binds[:top.nb]
			dns = top.outer
			if len(sc.open) == 2 {
				sc.kids[len(sc.kids)-1].e = int32(i)
			}
			sc.open = sc.open[:len(sc.open)-1]
			if len(sc.open) == 0 {
				return sc.done(i, raw)
			}
		case '!':
			if i+9 > len(raw) {
				return errInternal
			}
			k := bytes.Index(raw[i+9:], cdataEnd)
			if k < 0 {
				return errInternal
			}
			i += 9 + k + 3
		default:
			qname, te, empty, err := sc.readTag(raw, i)
			if err != nil {
				return err
			}
			nb := len(sc.binds)
			own, err := sc.declare(h, dns)
			if err != nil {
				return err
			}
			pfx, local, err := splitQName(qname)
			if err != nil {
				return err
			}
			ens := own
			if pfx != nil {
				if string(pfx) == "xmlns" {
					return errReservedNS
				}
				var ok bool
				if ens, ok = sc.lookup(h, pfx); !ok {
					return errUnbound
				}
			}
			switch len(sc.open) {
			case 0:
				if err := sc.setTop(h, raw, local, ens, own, te); err != nil {
					return err
				}
			case 1:
				sc.kids = append(sc.kids, kid{s: int32(i), te: int32(te), e: int32(te), ns: ens, dns: own})
			}
			i = te
			if empty {
				sc.binds = sc.binds[:nb]
				if len(sc.open) == 0 {
					return sc.done(i, raw)
				}
			} else {
				sc.open = append(sc.open, frame{qname: qname, outer: dns, nb: nb})
				dns = own
			}
		}
		k := bytes.IndexByte(raw[i:], '<')
		if k < 0 {
			return errInternal
		}
		i += k
	}
}

func (sc *Scanner) done(i int, raw []byte) *stanza.StreamError {
	if i != len(raw) {
		return errInternal
	}
	return nil
}

// setTop records the top-level element's index in sc.stz.
func (sc *Scanner) setTop(h *header, raw, local, ens, own []byte, te int) *stanza.StreamError {
	// RFC 6120 §4.8.2: stanzas are qualified by the stream's content namespace. A stanza in
	// another content namespace (jabber:server on a client stream) is a namespace error; other
	// namespaces are for the engine to judge (unsupported-stanza-type).
	if kindOf(local, ens) != KindOther && string(ens) != h.defNS {
		return errContentNS
	}
	sc.top = append(sc.top[:0], sc.attrs...)
	sc.stz = Stanza{Raw: raw, Name: local, NS: ens, sc: sc, hdr: h, te: int32(te), dns: own}
	sc.stz.fillAttrs(sc.top)
	if sc.stz.Lang == nil && h.lang != "" {
		sc.stz.Lang = s2b(h.lang)
	}
	return nil
}

// fillAttrs sets the exported attribute fields from the top-level element's attributes.
func (s *Stanza) fillAttrs(attrs []attr) {
	for k := range attrs {
		a := &attrs[k]
		if a.ns == nil {
			switch string(a.local) {
			case "to":
				s.To = a.val
			case "from":
				s.From = a.val
			case "type":
				s.Type = a.val
			case "id":
				s.ID = a.val
			}
		} else if string(a.local) == "lang" && string(a.ns) == ns.XML {
			s.Lang = a.val
		}
	}
}

// kindOf classifies an element by name and namespace.
func kindOf(local, space []byte) StanzaKind {
	switch string(space) {
	case ns.Client, ns.Server, ns.Component:
	default:
		return KindOther
	}
	switch string(local) {
	case "message":
		return KindMessage
	case "presence":
		return KindPresence
	case "iq":
		return KindIQ
	}
	return KindOther
}
