package xmlstream

import (
	"bytes"
	"errors"

	"github.com/vireo-im/vireo/xmlstream/ns"
)

// Errors of ParseElement.
var (
	ErrMalformed = errors.New("xmlstream: malformed element")
	ErrUnbound   = errors.New("xmlstream: unbound namespace prefix")
)

// Element is a lazy view of one element over well-formed bytes (from Scanner.Next, the Builder,
// or a copy of either). It is a value: creating, copying and walking it never allocates, except
// that a namespace declaration containing a character reference is unescaped into a new slice.
// Its slices must not be written to and live as long as the bytes it views.
type Element struct {
	root     []byte  // bytes of the outermost element the view derives from (prefix scope)
	ns       []byte  // resolved namespace of the element
	dns      []byte  // default namespace in scope inside the element
	hdr      *header // stream header bindings; nil outside a stream
	s, te, e int32   // the element is root[s:e]; its start tag root[s:te]
}

// ParseElement returns a view of the first element in raw (leading white space is skipped),
// resolving namespaces with the given default namespace (e.g. ns.Client) when the element
// declares none. raw must be well-formed (came from Scanner.Next or the Writer); for untrusted
// bytes use the Scanner. It reports ErrMalformed when no complete element starts raw and
// ErrUnbound when the element's own prefix is not declared on it (or is not xml).
func ParseElement(raw []byte, defaultNS string) (Element, error) {
	i := 0
	for i < len(raw) && isWS[raw[i]] {
		i++
	}
	if i+1 >= len(raw) || raw[i] != '<' || !(nameStartOK[raw[i+1]] || raw[i+1] >= 0x80) {
		return Element{}, ErrMalformed
	}
	te, empty := tagEnd(raw, i)
	if te < 0 {
		return Element{}, ErrMalformed
	}
	e := te
	if !empty {
		if e = skipElement(raw, te); e < 0 {
			return Element{}, ErrMalformed
		}
	}
	el := Element{root: raw[i:e], te: int32(te - i), e: int32(e - i)}
	if !el.qualify(s2b(defaultNS), nil, nil) {
		return Element{}, ErrUnbound
	}
	return el, nil
}

// Raw returns the whole element's bytes.
func (e Element) Raw() []byte { return e.root[e.s:e.e] }

// Name returns the local name.
func (e Element) Name() []byte {
	q := e.qname()
	if c := bytes.IndexByte(q, ':'); c >= 0 {
		return q[c+1:]
	}
	return q
}

// NS returns the resolved namespace (nil for no namespace).
func (e Element) NS() []byte { return e.ns }

// Attr returns the raw (escaped) value of the non-namespaced attribute local.
func (e Element) Attr(local string) ([]byte, bool) {
	tag := e.tag()
	for k := nameEnd(tag); ; {
		name, val, next, ok := nextAttr(tag, k)
		if !ok {
			return nil, false
		}
		if string(name) == local {
			return val, true
		}
		k = next
	}
}

// AttrNS returns the raw (escaped) value of the attribute with namespace space and local name
// local; space "" means no namespace (like Attr). The xml: prefix resolves to ns.XML.
func (e Element) AttrNS(space, local string) ([]byte, bool) {
	if space == "" {
		return e.Attr(local)
	}
	tag := e.tag()
	for k := nameEnd(tag); ; {
		name, val, next, ok := nextAttr(tag, k)
		if !ok {
			return nil, false
		}
		k = next
		c := bytes.IndexByte(name, ':')
		if c <= 0 || string(name[c+1:]) != local || string(name[:c]) == "xmlns" {
			continue
		}
		if uri, ok := e.resolve(name[:c]); ok && string(uri) == space {
			return val, true
		}
	}
}

// AppendAttr appends the unescaped (and XML 1.0 §3.3.3 normalized) value of the non-namespaced
// attribute local to dst.
func (e Element) AppendAttr(dst []byte, local string) ([]byte, bool) {
	v, ok := e.Attr(local)
	if !ok {
		return dst, false
	}
	return unescape(dst, v, modeAttr), true
}

// Children returns an iterator over the direct child elements.
func (e Element) Children() ChildIter { return ChildIter{p: e, pos: e.te} }

// Child returns the first direct child with namespace space ("" = any) and local name local.
func (e Element) Child(space, local string) (Element, bool) {
	it := e.Children()
	for {
		c, ok := it.Next()
		if !ok {
			return Element{}, false
		}
		if string(c.Name()) == local && (space == "" || string(c.ns) == space) {
			return c, true
		}
	}
}

// AppendText appends the element's direct character data (text and CDATA sections, not that of
// child elements), unescaped and with line ends normalized (XML 1.0 §2.11), to dst.
func (e Element) AppendText(dst []byte) []byte {
	end := e.endTag()
	pos := e.te
	for pos < end {
		k := bytes.IndexByte(e.root[pos:end], '<')
		if k < 0 {
			return unescape(dst, e.root[pos:end], modeText)
		}
		dst = unescape(dst, e.root[pos:pos+int32(k)], modeText)
		q := pos + int32(k)
		if e.root[q+1] == '!' {
			c := bytes.Index(e.root[q+9:end], cdataEnd)
			if c < 0 {
				return dst
			}
			dst = unescape(dst, e.root[q+9:q+9+int32(c)], modeCDATA)
			pos = q + 9 + int32(c) + 3
			continue
		}
		te, empty := tagEnd(e.root, int(q))
		if !empty && te >= 0 {
			te = skipElement(e.root, te)
		}
		if te < 0 {
			return dst
		}
		pos = int32(te)
	}
	return dst
}

// Inner returns the raw bytes between the start and end tag (nil for an empty-element tag).
func (e Element) Inner() []byte {
	if e.te >= e.e {
		return nil
	}
	return e.root[e.te:e.endTag()]
}

// IsEmpty reports whether the element has no content (<a/> or <a></a>).
func (e Element) IsEmpty() bool { return len(e.Inner()) == 0 }

// ChildIter iterates the direct child elements of an Element.
type ChildIter struct {
	p          Element
	pos        int32
	mpfx, muri []byte // the last prefix resolved through the parent's scope, and its namespace
	// scope holds the prefix declarations in the parent's scope, the parent's own first,
	// made at the first prefix the memo above misses: each later one is a look through
	// it rather than a walk of the parent's tag and everything before it (children
	// alternating two prefixes declared far up would cost the stanza's size each).
	scope []prefixDecl
	built bool
}

// resolveInScope resolves pfx in the parent's scope through it.scope.
func (it *ChildIter) resolveInScope(pfx []byte) ([]byte, bool) {
	if !it.built {
		it.built = true
		it.scope = append(appendDecls(nil, it.p.tag(), 0), declsAbove(it.p.root, int(it.p.s))...)
	}
	if string(pfx) == "xml" {
		return s2b(ns.XML), true
	}
	for _, d := range it.scope {
		if bytes.Equal(d.prefix, pfx) {
			return d.uri, true
		}
	}
	return it.p.hdr.lookup(pfx)
}

// Next returns the next direct child element, or false when there are no more.
func (it *ChildIter) Next() (Element, bool) {
	p := &it.p
	end := p.endTag()
	for it.pos < end {
		k := bytes.IndexByte(p.root[it.pos:end], '<')
		if k < 0 {
			break
		}
		q := it.pos + int32(k)
		if p.root[q+1] == '!' {
			c := bytes.Index(p.root[q+9:end], cdataEnd)
			if c < 0 {
				break
			}
			it.pos = q + 9 + int32(c) + 3
			continue
		}
		te, empty := tagEnd(p.root, int(q))
		ce := te
		if !empty && te >= 0 {
			ce = skipElement(p.root, te)
		}
		if ce < 0 {
			break
		}
		it.pos = int32(ce)
		c := Element{root: p.root, hdr: p.hdr, s: q, te: int32(te), e: int32(ce)}
		c.qualify(p.dns, p, it)
		return c, true
	}
	it.pos = end
	return Element{}, false
}

func (e *Element) tag() []byte { return e.root[e.s:e.te] }

func (e *Element) qname() []byte {
	tag := e.tag()
	return tag[1:nameEnd(tag)]
}

// endTag returns the offset of the end tag's '<' (e.e for an empty-element tag). Character data
// cannot contain '<', so the end tag starts at the last '<'.
func (e *Element) endTag() int32 {
	if e.te >= e.e {
		return e.e
	}
	return e.s + int32(bytes.LastIndexByte(e.root[e.s:e.e], '<'))
}

// qualify sets e.ns and e.dns from e's start tag. outer is the default namespace outside e;
// parent, if not nil, resolves prefixes e does not declare itself, memoized in it (siblings
// usually share their prefix, and resolving through the parent may walk the root). It reports
// false when e's prefix is unbound.
func (e *Element) qualify(outer []byte, parent *Element, it *ChildIter) bool {
	tag := e.tag()
	k := nameEnd(tag)
	qname := tag[1:k]
	var pfx []byte
	if c := bytes.IndexByte(qname, ':'); c >= 0 {
		pfx = qname[:c]
	}
	e.dns = outer
	var pns []byte
	found := false
	for {
		name, val, next, ok := nextAttr(tag, k)
		if !ok {
			break
		}
		k = next
		if string(name) == "xmlns" {
			e.dns, _ = nsValue(val)
		} else if pfx != nil && len(name) == 6+len(pfx) && string(name[:6]) == "xmlns:" && bytes.Equal(name[6:], pfx) {
			pns, _ = nsValue(val)
			found = true
		}
	}
	switch {
	case pfx == nil:
		e.ns = e.dns
	case found:
		e.ns = pns
	case string(pfx) == "xml":
		e.ns = s2b(ns.XML)
	case parent != nil:
		if it != nil && it.mpfx != nil && bytes.Equal(it.mpfx, pfx) {
			e.ns = it.muri
			return true
		}
		if it != nil {
			if e.ns, found = it.resolveInScope(pfx); found {
				it.mpfx, it.muri = pfx, e.ns
			}
			return found
		}
		e.ns, found = parent.resolve(pfx)
		return found
	default:
		e.ns, found = e.hdr.lookup(pfx)
		return found
	}
	return true
}

// resolve returns the namespace bound to prefix in e's scope: e's own declarations, then its
// ancestors' (by walking root up to e), then the stream header's.
func (e *Element) resolve(prefix []byte) ([]byte, bool) {
	if string(prefix) == "xml" {
		return s2b(ns.XML), true
	}
	if uri, ok := declared(e.tag(), prefix); ok {
		return uri, true
	}
	if uri, ok := resolveAbove(e.root, int(e.s), prefix); ok {
		return uri, true
	}
	return e.hdr.lookup(prefix)
}

// declared returns the value of xmlns:prefix on a start tag.
func declared(tag, prefix []byte) ([]byte, bool) {
	for k := nameEnd(tag); ; {
		name, val, next, ok := nextAttr(tag, k)
		if !ok {
			return nil, false
		}
		k = next
		if len(name) == 6+len(prefix) && string(name[:6]) == "xmlns:" && bytes.Equal(name[6:], prefix) {
			uri, _ := nsValue(val)
			return uri, true
		}
	}
}

// resolveAbove finds the innermost declaration of prefix on an element of root that is open at
// offset target. It walks root from the start, so it is linear in target; it only runs for
// prefixed names declared on an ancestor, which XMPP payloads almost never use.
func resolveAbove(root []byte, target int, prefix []byte) ([]byte, bool) {
	type decl struct {
		depth int
		uri   []byte
	}
	var arr [8]decl
	stk := arr[:0]
	ok := walkAbove(root, target, func(tag []byte, depth int) {
		if uri, ok := declared(tag, prefix); ok {
			stk = append(stk, decl{depth, uri})
		}
	}, func(depth int) {
		for len(stk) > 0 && stk[len(stk)-1].depth >= depth {
			stk = stk[:len(stk)-1]
		}
	})
	if !ok || len(stk) == 0 {
		return nil, false
	}
	return stk[len(stk)-1].uri, true
}

// walkAbove walks root up to offset target: open gets the start tag of each element that
// is not empty, at its depth (0 for root's), and closed the depth an end tag returns to.
// It reports false when root breaks off before target.
func walkAbove(root []byte, target int, open func(tag []byte, depth int), closed func(depth int)) bool {
	depth, i := 0, 0
	for i < target {
		k := bytes.IndexByte(root[i:target], '<')
		if k < 0 {
			break
		}
		i += k
		switch root[i+1] {
		case '/':
			depth--
			closed(depth)
			e := bytes.IndexByte(root[i:], '>')
			if e < 0 {
				return false
			}
			i += e + 1
		case '!':
			c := bytes.Index(root[i+9:], cdataEnd)
			if c < 0 {
				return false
			}
			i += 9 + c + 3
		default:
			te, empty := tagEnd(root, i)
			if te < 0 {
				return false
			}
			if !empty {
				open(root[i:te], depth)
				depth++
			}
			i = te
		}
	}
	return true
}

// nameEnd returns the index in a start tag just after the element name.
func nameEnd(tag []byte) int {
	k := 1
	for k < len(tag) && !tagStop[tag[k]] {
		k++
	}
	return k
}

// nextAttr reads the attribute at or after tag[k]; ok is false at the end of the tag.
func nextAttr(tag []byte, k int) (name, val []byte, next int, ok bool) {
	for k < len(tag) && isWS[tag[k]] {
		k++
	}
	if k >= len(tag) || tag[k] == '>' || tag[k] == '/' {
		return nil, nil, k, false
	}
	n := k
	for k < len(tag) && !tagStop[tag[k]] {
		k++
	}
	name = tag[n:k]
	for k < len(tag) && tag[k] != '\'' && tag[k] != '"' {
		k++
	}
	if k >= len(tag) {
		return nil, nil, k, false
	}
	v := bytes.IndexByte(tag[k+1:], tag[k])
	if v < 0 {
		return nil, nil, len(tag), false
	}
	return name, tag[k+1 : k+1+v], k + 2 + v, true
}

// tagEnd returns the index after the start tag that begins at b[i] == '<', and whether it is an
// empty-element tag; -1 if the tag does not end.
func tagEnd(b []byte, i int) (int, bool) {
	for k := i + 1; k < len(b); k++ {
		switch b[k] {
		case '>':
			return k + 1, b[k-1] == '/'
		case '\'', '"':
			v := bytes.IndexByte(b[k+1:], b[k])
			if v < 0 {
				return -1, false
			}
			k += v + 1
		}
	}
	return -1, false
}

// skipElement returns the index after the end tag of the element whose start tag ends at
// b[te], or -1 if it does not end in b.
func skipElement(b []byte, te int) int {
	depth := 1
	i := te
	for {
		k := bytes.IndexByte(b[i:], '<')
		if k < 0 || i+k+1 >= len(b) {
			return -1
		}
		i += k
		switch b[i+1] {
		case '/':
			e := bytes.IndexByte(b[i:], '>')
			if e < 0 {
				return -1
			}
			i += e + 1
			depth--
			if depth == 0 {
				return i
			}
		case '!':
			if i+9 > len(b) {
				return -1
			}
			c := bytes.Index(b[i+9:], cdataEnd)
			if c < 0 {
				return -1
			}
			i += 9 + c + 3
		default:
			e, empty := tagEnd(b, i)
			if e < 0 {
				return -1
			}
			if !empty {
				depth++
			}
			i = e
		}
	}
}

// Standalone appends e to dst as an element of its own: the namespace prefixes and the
// default namespace it takes from its ancestors are declared on its start tag, so that it
// means the same when it is stored or sent apart from them (a payload a client declared a
// prefix for on <iq> would otherwise reach others with the prefix undeclared, a stream
// error for their parsers: RFC 6120 §4.9.3.2). e's bytes are appended unchanged when it
// declares its default namespace and no ancestor declares a prefix, as nearly always.
func (e Element) Standalone(dst []byte) []byte {
	raw := e.Raw()
	tag := e.tag()
	_, ownDefault := declaredDefault(tag)
	if e.s == 0 || ownDefault && !bytes.Contains(e.root[:e.s], []byte("xmlns:")) {
		return append(dst, raw...)
	}
	k := nameEnd(tag)
	dst = append(dst, tag[:k]...)
	if !ownDefault && len(e.dns) > 0 {
		dst = append(dst, " xmlns='"...)
		dst = AppendEscapedAttr(dst, e.dns)
		dst = append(dst, '\'')
	}
	for _, d := range declsAbove(e.root, int(e.s)) {
		if _, own := declared(tag, d.prefix); own {
			continue
		}
		dst = append(dst, " xmlns:"...)
		dst = append(dst, d.prefix...)
		dst = append(dst, "='"...)
		dst = AppendEscapedAttr(dst, d.uri)
		dst = append(dst, '\'')
	}
	return append(dst, raw[k:]...)
}

// declaredDefault returns the value of xmlns on a start tag.
func declaredDefault(tag []byte) ([]byte, bool) {
	for k := nameEnd(tag); ; {
		name, val, next, ok := nextAttr(tag, k)
		if !ok {
			return nil, false
		}
		k = next
		if string(name) == "xmlns" {
			uri, _ := nsValue(val)
			return uri, true
		}
	}
}

// prefixDecl is a namespace prefix declaration.
type prefixDecl struct {
	prefix, uri []byte
	depth       int
}

// appendDecls appends the prefix declarations of a start tag, at depth.
func appendDecls(dst []prefixDecl, tag []byte, depth int) []prefixDecl {
	for k := nameEnd(tag); ; {
		name, val, next, ok := nextAttr(tag, k)
		if !ok {
			return dst
		}
		k = next
		if len(name) > 6 && string(name[:6]) == "xmlns:" {
			uri, _ := nsValue(val)
			dst = append(dst, prefixDecl{prefix: name[6:], uri: uri, depth: depth})
		}
	}
}

// declsAbove returns the prefix declarations in force at offset target of root, on the
// elements open there: one per prefix, the innermost.
func declsAbove(root []byte, target int) []prefixDecl {
	var stk []prefixDecl
	if !walkAbove(root, target, func(tag []byte, depth int) {
		stk = appendDecls(stk, tag, depth)
	}, func(depth int) {
		for len(stk) > 0 && stk[len(stk)-1].depth >= depth {
			stk = stk[:len(stk)-1]
		}
	}) {
		return nil
	}
	// Innermost first wins: drop a declaration a later (deeper) one rebinds.
	out := stk[:0:0]
	for j := len(stk) - 1; j >= 0; j-- {
		dup := false
		for _, o := range out {
			if bytes.Equal(o.prefix, stk[j].prefix) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, stk[j])
		}
	}
	return out
}
