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

// frame is one open element during the second pass. It holds no pointers, so pushing one is
// plain stores (no write barriers).
type frame struct {
	q0, q1 int32 // qualified name in raw, to match the end tag
	nb     int32 // len(binds) outside the element
	outer  int32 // index in Scanner.dnsTab of the default namespace outside the element
}

// attr is one attribute of a start tag, as offsets into the item's bytes: no pointers, so
// recording one is a few plain stores.
type attr struct {
	n0, n1 int32 // name (qualified, as written) is raw[n0:n1]
	c      int32 // index in raw of the ':' in the name, or -1
	v0, v1 int32 // raw (escaped) value is raw[v0:v1]
}

// tag is what readTag reports about a start tag.
type tag struct {
	q0, q1, qc int32 // qualified name raw[q0:q1], ':' at qc or -1 (-2: more than one)
	end        int32 // index after the tag's '>'
	empty      bool  // empty-element tag
	decl       bool  // some attribute name starts with "xmlns" or has a prefix: namespace work
}

// kid is one direct child of the top-level element: offsets into Stanza.Raw.
type kid struct {
	s, te, e int32  // element is Raw[s:e], its start tag Raw[s:te]
	ns, dns  []byte // namespace; default namespace inside it
}

var cdataEnd = []byte("]]>")

// scanName returns the end of the name starting at raw[k] and the index of its colon (-1 if
// none, -2 if more than one).
func scanName(raw []byte, k int) (end, colon int) {
	colon = -1
	for k < len(raw) {
		c := raw[k]
		if tagStop[c] {
			break
		}
		if c == ':' {
			if colon == -1 {
				colon = k
			} else {
				colon = -2
			}
		}
		k++
	}
	return k, colon
}

// readTag reads the start tag that begins at raw[i] == '<' into sc.attrs. The first pass
// validated the tag, so this only slices; the bounds checks turn a disagreement between the
// passes into an error instead of a panic.
func (sc *Scanner) readTag(raw []byte, i int, t *tag) *stanza.StreamError {
	k, qc := scanName(raw, i+1)
	t.q0, t.q1, t.qc, t.decl = int32(i+1), int32(k), int32(qc), false
	attrs := sc.attrs[:0]
	for {
		for k < len(raw) && isWS[raw[k]] {
			k++
		}
		if k >= len(raw) {
			break
		}
		if c := raw[k]; c == '>' || c == '/' {
			t.end, t.empty = int32(k+1), c == '/'
			if t.empty {
				t.end++
			}
			sc.attrs = attrs
			return nil
		}
		n0 := k
		n1, c := scanName(raw, k)
		if c != -1 || raw[n0] == 'x' && n1-n0 >= 5 && string(raw[n0:n0+5]) == "xmlns" {
			t.decl = true
		}
		k = n1
		for k < len(raw) && raw[k] != '\'' && raw[k] != '"' {
			k++
		}
		if k >= len(raw) {
			break
		}
		v := bytes.IndexByte(raw[k+1:], raw[k])
		if v < 0 {
			break
		}
		// Append a zero value and fill it in place: building the struct first and copying it
		// costs a store-forwarding stall per attribute.
		attrs = append(attrs, attr{})
		a := &attrs[len(attrs)-1]
		a.n0, a.n1, a.c, a.v0, a.v1 = int32(n0), int32(n1), int32(c), int32(k+1), int32(k+1+v)
		k += v + 2
	}
	sc.attrs = attrs
	return errInternal
}

// readTagV is readTag for unvalidated input (the single-pass fast path): it also performs the
// first pass's checks for a start tag, but handles only the common shapes. It reports false
// for anything else (white space around '=', names with non-ASCII characters, limits reached,
// malformed input, input ending inside the tag); the caller then falls back to the two passes,
// which decide.
func (sc *Scanner) readTagV(raw []byte, i int, lim *limits, t *tag) bool {
	k := i + 1
	if k >= len(raw) || !nameStartOK[raw[k]] {
		return false
	}
	k, qc := scanNameV(raw, k)
	t.q0, t.q1, t.qc, t.decl = int32(i+1), int32(k), int32(qc), false
	if k-(i+1) > int(lim.name) {
		return false
	}
	attrs := sc.attrs[:0]
	for {
		sep := false
		for k < len(raw) && isWS[raw[k]] {
			k++
			sep = true
		}
		if k >= len(raw) {
			return false
		}
		switch raw[k] {
		case '>':
			t.end, t.empty = int32(k+1), false
			sc.attrs = attrs
			return true
		case '/':
			if k+1 >= len(raw) || raw[k+1] != '>' {
				return false
			}
			t.end, t.empty = int32(k+2), true
			sc.attrs = attrs
			return true
		}
		if !sep || !nameStartOK[raw[k]] {
			return false
		}
		n0 := k
		n1, c := scanNameV(raw, k)
		if n1-n0 > int(lim.name) || n1+1 >= len(raw) || raw[n1] != '=' {
			return false
		}
		if c != -1 || raw[n0] == 'x' && n1-n0 >= 5 && string(raw[n0:n0+5]) == "xmlns" {
			t.decl = true
		}
		q := raw[n1+1]
		if q != '\'' && q != '"' {
			return false
		}
		v := n1 + 2
	value:
		for {
			for v < len(raw) && attrOK[raw[v]] {
				v++
			}
			if v >= len(raw) {
				return false
			}
			switch b := raw[v]; {
			case b == q:
				break value
			case b == '\'' || b == '"':
				v++
			case b == '&':
				_, n := decodeRef(raw[v:])
				if n == 0 {
					return false
				}
				v += n
			case b >= 0x80:
				n := charLen(raw[v:])
				if n == 0 {
					return false
				}
				v += n
			default:
				return false
			}
		}
		if len(attrs) >= int(lim.attrs) {
			return false
		}
		attrs = append(attrs, attr{}) // zero, then fill in place (see readTag)
		a := &attrs[len(attrs)-1]
		a.n0, a.n1, a.c, a.v0, a.v1 = int32(n0), int32(n1), int32(c), int32(n1+2), int32(v)
		k = v + 1
	}
}

// cdataV validates the content of a CDATA section starting at raw[k] and returns the index
// after its "]]>", or false if it does not end in raw or holds a non-Char.
func cdataV(raw []byte, k int) (int, bool) {
	for {
		for k < len(raw) && cdataOK[raw[k]] {
			k++
		}
		if k >= len(raw) {
			return 0, false
		}
		switch c := raw[k]; {
		case c == ']':
			if len(raw)-k >= 3 && string(raw[k:k+3]) == "]]>" {
				return k + 3, true
			}
			k++
		case c == '>':
			k++
		case c >= 0x80:
			n := charLen(raw[k:])
			if n == 0 {
				return 0, false
			}
			k += n
		default:
			return 0, false
		}
	}
}

// scanNameV returns the end of the ASCII name run starting at raw[k] and the index of its
// colon (-1 if none, -2 if more than one).
func scanNameV(raw []byte, k int) (end, colon int) {
	colon = -1
	for k < len(raw) {
		c := raw[k]
		if !nameOK[c] {
			break
		}
		if c == ':' {
			if colon == -1 {
				colon = k
			} else {
				colon = -2
			}
		}
		k++
	}
	return k, colon
}

// checkQName checks a qualified name (Namespaces in XML 1.0 §4) whose colon is at c (-1 none,
// -2 several): prefix and local part must both be non-empty NCNames.
func checkQName(raw []byte, n0, n1, c int32) *stanza.StreamError {
	switch {
	case c == -1:
		return nil
	case c < 0 || c == n0 || c == n1-1:
		return errQName
	}
	if b := raw[c+1]; b < utf8.RuneSelf {
		if !nameStartOK[b] {
			return errQName
		}
	} else if r, _ := utf8.DecodeRune(raw[c+1 : n1]); !isNameStartRune(r) {
		return errQName
	}
	return nil
}

// splitQName splits a qualified name into prefix and local part, validating it.
func splitQName(name []byte) (prefix, local []byte, err *stanza.StreamError) {
	_, c := scanName(name, 0)
	if err := checkQName(name, 0, int32(len(name)), int32(c)); err != nil {
		return nil, nil, err
	}
	if c < 0 {
		return nil, name, nil
	}
	return name[:c], name[c+1:], nil
}

// maxBinds bounds the prefix declarations in scope inside one stanza (XMPP uses a few).
const maxBinds = 128

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

// dupBit is the duplicate filter's bit for a local name.
func dupBit(local []byte) uint64 {
	return 1 << ((uint(len(local)) + uint(local[len(local)-1])) & 63)
}

// checkDupPlain rejects duplicate attributes of a tag that has no prefixed attributes and no
// namespace declarations: then equal names are the only duplicates. A 64-bit filter on
// (length, last byte) keeps this linear in practice.
func (sc *Scanner) checkDupPlain(raw []byte) *stanza.StreamError {
	if len(sc.attrs) < 2 {
		return nil
	}
	var seen uint64
	for k := range sc.attrs {
		a := &sc.attrs[k]
		name := raw[a.n0:a.n1]
		bit := dupBit(name)
		if seen&bit != 0 {
			for p := 0; p < k; p++ {
				if b := &sc.attrs[p]; bytes.Equal(raw[b.n0:b.n1], name) {
					return errDupAttr
				}
			}
		}
		seen |= bit
	}
	return nil
}

// declare applies the namespace declarations among sc.attrs (pushing prefixed ones on
// sc.binds), resolves the attributes' prefixes and rejects duplicates after resolution
// (Namespaces in XML 1.0 §6.3). dns is the default namespace outside the element; declare
// returns the one inside it.
func (sc *Scanner) declare(h *header, raw, dns []byte) ([]byte, *stanza.StreamError) {
	sc.attrNS = sc.attrNS[:0]
	for k := range sc.attrs {
		a := &sc.attrs[k]
		name := raw[a.n0:a.n1]
		var ans []byte // nsXMLNS for declarations, the prefix's namespace for prefixed names
		switch {
		case string(name) == "xmlns":
			uri, err := nsValue(raw[a.v0:a.v1])
			if err != nil {
				return nil, err
			}
			if string(uri) == ns.XML || string(uri) == nsXMLNS {
				return nil, errReservedNS
			}
			dns = uri
			ans = s2b(nsXMLNS)
		case a.c == a.n0+5 && string(name[:5]) == "xmlns":
			if err := checkQName(raw, a.n0, a.n1, a.c); err != nil {
				return nil, err
			}
			prefix := raw[a.c+1 : a.n1]
			uri, err := nsValue(raw[a.v0:a.v1])
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
			case len(sc.binds) >= maxBinds:
				// Every prefixed name looks through them: nesting times declarations
				// would make a stanza cost seconds.
				return nil, errBinds
			default:
				sc.binds = append(sc.binds, bind{prefix: prefix, uri: uri})
			}
			ans = s2b(nsXMLNS)
		default:
			if err := checkQName(raw, a.n0, a.n1, a.c); err != nil {
				return nil, err
			}
		}
		sc.attrNS = append(sc.attrNS, ans)
	}
	// Resolve prefixed attributes now that all of this tag's declarations are known, then look
	// for duplicate (namespace, local name) pairs.
	var seen uint64
	for k := range sc.attrs {
		a := &sc.attrs[k]
		local := raw[a.n0:a.n1]
		if a.c >= 0 {
			local = raw[a.c+1 : a.n1]
			if sc.attrNS[k] == nil {
				prefix := raw[a.n0:a.c]
				if string(prefix) == "xmlns" {
					return nil, errReservedNS
				}
				uri, ok := sc.lookup(h, prefix)
				if !ok {
					return nil, errUnbound
				}
				sc.attrNS[k] = uri
			}
		}
		bit := dupBit(local)
		if seen&bit != 0 {
			for p := 0; p < k; p++ {
				b := &sc.attrs[p]
				blocal := raw[b.n0:b.n1]
				if b.c >= 0 {
					blocal = raw[b.c+1 : b.n1]
				}
				if bytes.Equal(blocal, local) && bytes.Equal(sc.attrNS[p], sc.attrNS[k]) &&
					(sc.attrNS[p] == nil) == (sc.attrNS[k] == nil) {
					return nil, errDupAttr
				}
			}
		}
		seen |= bit
	}
	return dns, nil
}

// nsValue returns a namespace declaration's value as XML 1.0 §3.3.3 normalizes it:
// references replaced, a literal tab, line feed or carriage return made a space (two
// prefixes bound to 'urn:y<TAB>z' and 'urn:y z' are one namespace). Such values are so
// rare in XMPP that this path may allocate.
func nsValue(val []byte) ([]byte, *stanza.StreamError) {
	if bytes.IndexAny(val, "&\t\n\r") < 0 {
		return val, nil
	}
	return unescape(nil, val, modeAttr), nil
}

// element runs the second pass over a complete top-level element raw: it matches end tags,
// resolves namespaces, checks attributes and fills sc.stz with the index.
//
// With validate, raw is input the first pass has not seen, possibly extending past the
// element: element then performs the first pass's checks too, in the same single walk, and
// returns the element's length. This is the fast path for elements that arrive whole. It
// accepts only what the two passes accept and reports any failure as errBail (input ending
// early, uncommon syntax, every error), after which the caller runs the two passes to decide.
func (sc *Scanner) element(st *State, raw []byte, validate bool) (int, *stanza.StreamError) {
	n, err := sc.walk(st, raw, validate)
	if err != nil && validate {
		return 0, errBail
	}
	return n, err
}

func (sc *Scanner) walk(st *State, raw []byte, validate bool) (int, *stanza.StreamError) {
	h := st.hdr
	sc.binds = sc.binds[:0]
	sc.kids = sc.kids[:0]
	// Default namespaces in force are indexes into dnsTab, so open-element frames hold no
	// pointers. Entry 0 is the stream's content namespace.
	dnsTab := append(sc.dnsTab[:0], s2b(h.defNS))
	if cap(dnsTab) > cap(sc.dnsTab) {
		sc.dnsTab = dnsTab[:0]
	}
	open := sc.open[:0]
	dns := int32(0)
	i := 0
	for {
		if i+1 >= len(raw) {
			return 0, errInternal
		}
		switch raw[i+1] {
		case '/':
			if len(open) == 0 {
				return 0, errInternal
			}
			top := &open[len(open)-1]
			// The first pass checked the shape </name S? >; compare the name and find '>'.
			j := i + 2
			n := int(top.q1 - top.q0)
			if j+n >= len(raw) || string(raw[j:j+n]) != string(raw[top.q0:top.q1]) || !tagStop[raw[j+n]] {
				return 0, errMismatch
			}
			k := j + n
			for raw[k] != '>' {
				if validate && !isWS[raw[k]] {
					return 0, errBail
				}
				k++
				if k >= len(raw) {
					return 0, errInternal
				}
			}
			i = k + 1
			if int(top.nb) != len(sc.binds) {
				sc.binds = sc.binds[:top.nb]
			}
			dns = top.outer
			open = open[:len(open)-1]
			switch len(open) {
			case 1:
				sc.kids[len(sc.kids)-1].e = int32(i)
			case 0:
				return sc.done(i, raw, validate)
			}
		case '!':
			if validate {
				// Only a CDATA section inside an element; everything else (comments, DTDs)
				// is for the two passes to report.
				if len(open) == 0 || len(raw)-i < 12 || string(raw[i+2:i+9]) != "[CDATA[" {
					return 0, errBail
				}
				k, ok := cdataV(raw, i+9)
				if !ok {
					return 0, errBail
				}
				i = k
				break
			}
			if i+9 > len(raw) {
				return 0, errInternal
			}
			k := bytes.Index(raw[i+9:], cdataEnd)
			if k < 0 {
				return 0, errInternal
			}
			i += 9 + k + 3
		default:
			var t tag
			var err *stanza.StreamError
			if validate {
				if !sc.readTagV(raw, i, st.lim, &t) || len(open) >= int(st.lim.depth) {
					return 0, errBail
				}
			} else if err = sc.readTag(raw, i, &t); err != nil {
				return 0, err
			}
			nb := len(sc.binds)
			own := dns
			// The stream header's prefixes bind the top element only (a <db:result/>, a
			// prefixed stanza): inside a stanza a prefix must be declared in the stanza,
			// which goes on alone, without the header (to another user, another server).
			hh := h
			if len(open) > 0 {
				hh = nil
			}
			if t.decl {
				d, err := sc.declare(hh, raw, dnsTab[dns])
				if err != nil {
					return 0, err
				}
				if len(d) != len(dnsTab[dns]) || len(d) > 0 && &d[0] != &dnsTab[dns][0] {
					own = int32(len(dnsTab))
					if dnsTab = append(dnsTab, d); cap(dnsTab) > cap(sc.dnsTab) {
						sc.dnsTab = dnsTab[:0] // keep the grown array for the next element
					}
				}
			} else if err = sc.checkDupPlain(raw); err != nil {
				return 0, err
			}
			ens := dnsTab[own]
			if t.qc != -1 {
				if err := checkQName(raw, t.q0, t.q1, t.qc); err != nil {
					return 0, err
				}
				prefix := raw[t.q0:t.qc]
				if string(prefix) == "xmlns" {
					return 0, errReservedNS
				}
				var ok bool
				if ens, ok = sc.lookup(hh, prefix); !ok {
					return 0, errUnbound
				}
			}
			switch len(open) {
			case 0:
				if err := sc.setTop(h, raw, &t, ens, dnsTab[own]); err != nil {
					return 0, err
				}
			case 1:
				sc.kids = append(sc.kids, kid{})
				c := &sc.kids[len(sc.kids)-1]
				c.s, c.te, c.e, c.ns, c.dns = int32(i), t.end, t.end, ens, dnsTab[own]
			}
			i = int(t.end)
			if t.empty {
				sc.binds = sc.binds[:nb]
				if len(open) == 0 {
					return sc.done(i, raw, validate)
				}
			} else {
				if open = append(open, frame{}); cap(open) > cap(sc.open) {
					sc.open = open[:0] // keep the grown array for the next element
				}
				f := &open[len(open)-1]
				f.q0, f.q1, f.nb, f.outer = t.q0, t.q1, int32(nb), dns
				dns = own
			}
		}
		if validate {
			// Character data, checked as the first pass would: Chars, references to the
			// predefined entities or to Chars; ']' and the rest go to the two passes.
			for {
				for i < len(raw) && textOK[raw[i]] {
					i++
				}
				if i >= len(raw) {
					return 0, errBail
				}
				c := raw[i]
				if c == '<' {
					break
				}
				var n int
				switch {
				case c == ']':
					if len(raw)-i >= 3 && string(raw[i:i+3]) == "]]>" {
						return 0, errBail
					}
					n = 1
				case c == '&':
					_, n = decodeRef(raw[i:])
				case c >= 0x80:
					n = charLen(raw[i:])
				}
				if n <= 0 {
					return 0, errBail
				}
				i += n
			}
		} else if i < len(raw) && raw[i] != '<' {
			k := bytes.IndexByte(raw[i:], '<')
			if k < 0 {
				return 0, errInternal
			}
			i += k
		}
	}
}

func (sc *Scanner) done(i int, raw []byte, validate bool) (int, *stanza.StreamError) {
	if validate {
		sc.stz.Raw = raw[:i]
		return i, nil
	}
	if i != len(raw) {
		return 0, errInternal
	}
	return i, nil
}

// setTop records the top-level element's index in sc.stz.
func (sc *Scanner) setTop(h *header, raw []byte, t *tag, ens, own []byte) *stanza.StreamError {
	local := raw[t.q0:t.q1]
	if t.qc >= 0 {
		local = raw[t.qc+1 : t.q1]
	}
	// RFC 6120 §4.8.2: stanzas are qualified by the stream's content namespace. A stanza in
	// another content namespace (jabber:server on a client stream) is a namespace error; other
	// namespaces are for the engine to judge (unsupported-stanza-type).
	if kindOf(local, ens) != KindOther && string(ens) != h.defNS {
		return errContentNS
	}
	if string(ens) == ns.Stream && string(local) == "stream" {
		return errStreamAgain // see checkTop; here for the empty element and the fast path
	}
	sc.top, sc.attrs = sc.attrs, sc.top[:0] // the top element's attributes stay for Stanza.Attr
	s := &sc.stz
	s.Raw, s.Name, s.NS = raw, local, ens
	s.To, s.From, s.Type, s.ID, s.Lang = nil, nil, nil, nil, nil
	s.sc, s.hdr, s.te, s.dns = sc, h, t.end, own
	s.fillAttrs()
	if s.Lang == nil && h.lang != "" {
		s.Lang = s2b(h.lang)
	}
	return nil
}

// fillAttrs sets the exported attribute fields from the top-level element's attributes. The
// xml prefix cannot be rebound, so xml:lang is recognized by its written name.
func (s *Stanza) fillAttrs() {
	raw := s.Raw
	for k := range s.sc.top {
		a := &s.sc.top[k]
		val := raw[a.v0:a.v1]
		switch string(raw[a.n0:a.n1]) {
		case "to":
			s.To = val
		case "from":
			s.From = val
		case "type":
			s.Type = val
		case "id":
			s.ID = val
		case "xml:lang":
			s.Lang = val
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
