package xmlstream

import "bytes"

// Builder appends elements to a byte slice (usually a bytebufferpool buffer's B). Names are
// trusted (written as given); attribute values and text are escaped. It keeps the names of open
// elements in a fixed array (depth 16) and spills deeper ones to a slice. The zero value is
// ready to use; a Builder is not safe for concurrent use.
type Builder struct {
	B     []byte
	names [16]string
	more  []string // names beyond the array, for unusually deep documents
	n     int      // open elements
	open  bool     // the innermost start tag still lacks its '>'
}

// Reset makes the Builder append to dst with no open elements.
func (b *Builder) Reset(dst []byte) {
	b.B, b.n, b.open, b.more = dst, 0, false, b.more[:0]
}

// Start appends "<name" (closing the parent's start tag first if needed).
func (b *Builder) Start(name string) *Builder {
	b.closeTag()
	b.B = append(b.B, '<')
	b.B = append(b.B, name...)
	if b.n < len(b.names) {
		b.names[b.n] = name
	} else {
		b.more = append(b.more, name)
	}
	b.n++
	b.open = true
	return b
}

// Attr appends the attribute name='value' with value escaped. It must follow Start or another
// Attr; elsewhere it panics, as that is a programming error that would emit broken XML.
func (b *Builder) Attr(name, value string) *Builder {
	return b.AttrBytes(name, s2b(value))
}

// AttrBytes is Attr with the (unescaped) value as bytes.
func (b *Builder) AttrBytes(name string, value []byte) *Builder {
	if !b.open {
		panic("xmlstream: Builder.Attr outside a start tag")
	}
	b.B = append(b.B, ' ')
	b.B = append(b.B, name...)
	b.B = append(b.B, '=', '\'')
	b.B = AppendEscapedAttr(b.B, value)
	b.B = append(b.B, '\'')
	return b
}

// Text appends escaped character data.
func (b *Builder) Text(s string) *Builder { return b.TextBytes(s2b(s)) }

// TextBytes appends escaped character data.
func (b *Builder) TextBytes(s []byte) *Builder {
	b.closeTag()
	b.B = AppendEscapedText(b.B, s)
	return b
}

// Raw appends trusted, well-formed XML as content of the current element.
func (b *Builder) Raw(xml []byte) *Builder {
	b.closeTag()
	b.B = append(b.B, xml...)
	return b
}

// End closes the innermost open element: "/>" if it has no content, else "</name>". It panics
// when no element is open.
func (b *Builder) End() *Builder {
	if b.n == 0 {
		panic("xmlstream: Builder.End without an open element")
	}
	b.n--
	var name string
	if b.n < len(b.names) {
		name = b.names[b.n]
	} else {
		name = b.more[len(b.more)-1]
		b.more = b.more[:len(b.more)-1]
	}
	if b.open {
		b.B = append(b.B, '/', '>')
		b.open = false
		return b
	}
	b.B = append(b.B, '<', '/')
	b.B = append(b.B, name...)
	b.B = append(b.B, '>')
	return b
}

// Depth returns the number of open elements.
func (b *Builder) Depth() int { return b.n }

func (b *Builder) closeTag() {
	if b.open {
		b.B = append(b.B, '>')
		b.open = false
	}
}

// AttrSet is one attribute change for SetAttrs. Value is unescaped and will be escaped.
type AttrSet struct {
	Name   string // attribute name as written (e.g. "from", "xml:lang")
	Value  []byte // new value; with Remove, ignored
	Remove bool   // remove the attribute instead of setting it
}

// SetAttrs appends raw to dst with only its top start tag rewritten: each entry of set replaces
// the existing attribute of that name, or is added at the end of the tag if absent; entries with
// Remove delete the attribute. The other attributes keep their bytes, and the rest of raw is
// copied unchanged. raw must be well-formed (e.g. a Stanza's Raw); if it does not start with a
// start tag, raw is appended unchanged. SetAttrs allocates nothing beyond growing dst.
func SetAttrs(dst, raw []byte, set ...AttrSet) []byte {
	if len(raw) < 2 || raw[0] != '<' {
		return append(dst, raw...)
	}
	te, _ := tagEnd(raw, 0)
	if te < 0 {
		return append(dst, raw...)
	}
	tag := raw[:te]
	k := nameEnd(tag)
	dst = append(dst, tag[:k]...)
	var used uint64 // entries of set (first 64) already applied
	for {
		name, _, next, ok := nextAttr(tag, k)
		if !ok {
			break
		}
		idx := -1
		for j := range set {
			if set[j].Name == string(name) {
				idx = j
				break
			}
		}
		switch {
		case idx < 0: // keep the attribute as written, from its name to its closing quote
			dst = append(dst, ' ')
			dst = append(dst, tag[attrNameStart(tag, k):next]...)
		case set[idx].Remove:
		default:
			dst = appendAttr(dst, set[idx].Name, set[idx].Value)
		}
		if idx >= 0 && idx < 64 {
			used |= 1 << idx
		}
		k = next
	}
	for j := range set {
		if j < 64 && used&(1<<j) != 0 || set[j].Remove {
			continue
		}
		if j >= 64 && hasAttr(tag, set[j].Name) {
			continue
		}
		dst = appendAttr(dst, set[j].Name, set[j].Value)
	}
	// The tag's tail: ">" or "/>" (white space before it is dropped).
	if tag[te-2] == '/' {
		dst = append(dst, '/', '>')
	} else {
		dst = append(dst, '>')
	}
	return append(dst, raw[te:]...)
}

func appendAttr(dst []byte, name string, val []byte) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=', '\'')
	dst = AppendEscapedAttr(dst, val)
	return append(dst, '\'')
}

// attrNameStart returns the index of the first attribute name at or after tag[k].
func attrNameStart(tag []byte, k int) int {
	for k < len(tag) && isWS[tag[k]] {
		k++
	}
	return k
}

func hasAttr(tag []byte, name string) bool {
	for k := nameEnd(tag); ; {
		n, _, next, ok := nextAttr(tag, k)
		if !ok {
			return false
		}
		if string(n) == name {
			return true
		}
		k = next
	}
}

// AppendChild appends raw to dst with child inserted just before the end tag of raw's top
// element, turning <a/> into <a>child</a>. raw must be well-formed; if it does not start with
// an element, raw and child are appended as they are.
func AppendChild(dst, raw, child []byte) []byte {
	if len(raw) < 2 || raw[0] != '<' {
		dst = append(dst, raw...)
		return append(dst, child...)
	}
	te, empty := tagEnd(raw, 0)
	if te < 0 {
		dst = append(dst, raw...)
		return append(dst, child...)
	}
	if !empty {
		e := skipElement(raw, te)
		if e < 0 {
			dst = append(dst, raw...)
			return append(dst, child...)
		}
		end := bytes.LastIndexByte(raw[:e], '<')
		dst = append(dst, raw[:end]...)
		dst = append(dst, child...)
		return append(dst, raw[end:]...)
	}
	// <name attrs/> -> <name attrs>child</name>
	k := te - 2
	for k > 0 && isWS[raw[k-1]] {
		k--
	}
	dst = append(dst, raw[:k]...)
	dst = append(dst, '>')
	dst = append(dst, child...)
	dst = append(dst, '<', '/')
	dst = append(dst, raw[1:nameEnd(raw)]...)
	dst = append(dst, '>')
	return append(dst, raw[te:]...)
}

// CutChildren appends raw to dst without the children of its top element for which cut
// returns true; raw is appended unchanged when it does not parse. A child is cut where it
// sits: a copy of it elsewhere in the tree (inside another child, or in text) stays.
func CutChildren(dst, raw []byte, defaultNS string, cut func(c Element) bool) []byte {
	e, err := ParseElement(raw, defaultNS)
	if err != nil {
		return append(dst, raw...)
	}
	pos := 0
	for it := e.Children(); ; {
		c, ok := it.Next()
		if !ok {
			break
		}
		if !cut(c) {
			continue
		}
		// c.Raw() is a window on raw: its offset follows from the capacities.
		i := cap(raw) - cap(c.Raw())
		dst = append(dst, raw[pos:i]...)
		pos = i + len(c.Raw())
	}
	return append(dst, raw[pos:]...)
}
