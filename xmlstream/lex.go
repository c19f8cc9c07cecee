package xmlstream

import (
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Lexical states of the first pass. States before lxItem are between top-level items; the
// others are inside one (an XML declaration, the stream header, a stanza, the stream end tag).
const (
	lxInit      uint8 = iota // first byte of the stream: BOM or encoding sniffing
	lxBOM                    // inside a UTF-8 byte order mark (cnt = bytes matched)
	lxProlog                 // before the stream header
	lxTop                    // between top-level elements
	lxEnded                  // after </stream:stream>
	lxItem                   // marker: states from here on are inside an item
	lxLT                     // after '<'
	lxBang                   // after '<!'
	lxCDStart                // matching "CDATA[" after "<![" (cnt = bytes matched)
	lxCData                  // inside CDATA (cnt = trailing ']' seen, at most 2)
	lxPI                     // after "<?" at the stream start: matching "xml" (cnt)
	lxDecl                   // inside the XML declaration (cnt = 1 after '?')
	lxStartName              // element name in a start tag (nlen = bytes so far)
	lxTag                    // inside a start tag, after white space
	lxAttrName               // attribute name
	lxAttrEq                 // after an attribute name, expecting '='
	lxAttrQuote              // after '=', expecting a quote
	lxAttrVal                // inside an attribute value (quote)
	lxAfterVal               // after an attribute value's closing quote
	lxEmpty                  // after '/' in a start tag
	lxEndName                // element name in an end tag
	lxEndSpace               // after the name in an end tag
	lxText                   // character data
	lxBrackets               // character data after ']' (cnt = ']' seen, at most 2)
	lxRef                    // after '&' (ret = state to resume)
	lxEntName                // entity name (acc = bytes, cnt = length)
	lxCharRef                // after "&#"
	lxCharDec                // decimal character reference (acc = value, cnt = digits seen)
	lxCharHex                // hexadecimal character reference (acc = value, cnt = digits seen)
	lxUTF8                   // inside a split UTF-8 sequence (acc = bytes held, cnt = count, ret)
)

// Kinds of top-level item.
const (
	itemNone   uint8 = iota // '<' seen, kind not known yet
	itemDecl                // <?xml ...?>
	itemHeader              // <stream:stream ...>
	itemElem                // a top-level element
	itemEnd                 // </stream:stream>
)

// State flags.
const (
	fStarted  uint8 = 1 << iota // an XML declaration was seen: no other one (white space may precede it)
	fDone                       // buf holds a completed item the last Event points into
	fCheckTop                   // the top-level start tag being read has the local name "stream"
)

// Packed names of the predefined entities (XML 1.0 §4.6), as lxEntName accumulates them.
const (
	entAmp  = 'a'<<16 | 'm'<<8 | 'p'
	entLt   = 'l'<<8 | 't'
	entGt   = 'g'<<8 | 't'
	entApos = 'a'<<24 | 'p'<<16 | 'o'<<8 | 's'
	entQuot = 'q'<<24 | 'u'<<16 | 'o'<<8 | 't'
)

// lex runs the first pass over b, continuing the current item from st. It returns how many
// bytes it consumed and whether the item ended there (then the '>' is the last byte consumed).
// It stops early only at the end of an item or on an error; otherwise it consumes all of b. The
// item's size limit is applied by the caller by shortening b.
//
// Hot states use a local index and tight table loops; the State fields change only on
// transitions, so feeding one byte at a time costs a constant amount per byte.
//
// stk holds, for each open element of a top-level element (index = depth), the offset in the
// item of its name, so that end tags are matched as soon as they are read; stk[st.depth] is the
// start tag being read. It must have at least lim.depth+1 entries. Between calls it lives after
// the pending bytes in st.buf (see State.saveStack), not in the State.
//
// A top-level start tag with the local name "stream" ends lex early with done == true (and
// fCheckTop set): the caller checks that it is not a second stream header, then continues.
func (st *State) lex(b []byte, stk []uint32) (int, bool, *stanza.StreamError) {
	i := 0
	for i < len(b) {
		switch st.lx {
		case lxText:
			for i < len(b) && textOK[b[i]] {
				i++
			}
			if i >= len(b) {
				return i, false, nil
			}
			switch c := b[i]; {
			case c == '<':
				st.lx = lxLT
				i++
			case c == '&':
				st.ret, st.lx = lxText, lxRef
				i++
			case c == ']':
				st.lx, st.cnt = lxBrackets, 1
				i++
			case c >= 0x80:
				k, err := st.char(b[i:], lxText)
				if err != nil {
					return i, false, err
				}
				i += k
			default:
				return i, false, errChar
			}

		case lxAttrVal:
			for i < len(b) && attrOK[b[i]] {
				i++
			}
			if i >= len(b) {
				return i, false, nil
			}
			switch c := b[i]; {
			case c == st.quote:
				st.lx = lxAfterVal
				i++
			case c == '\'' || c == '"':
				i++
			case c == '&':
				st.ret, st.lx = lxAttrVal, lxRef
				i++
			case c == '<':
				return i, false, errLTInAttr
			case c >= 0x80:
				k, err := st.char(b[i:], lxAttrVal)
				if err != nil {
					return i, false, err
				}
				i += k
			default:
				return i, false, errChar
			}

		case lxStartName, lxAttrName, lxEndName:
			if st.nlen == 0 {
				c := b[i]
				switch {
				case nameStartOK[c]:
					st.nlen = 1
					i++
				case c >= 0x80:
					k, err := st.nameChar(b[i:], st.lx)
					if err != nil {
						return i, false, err
					}
					i += k
					continue
				default:
					return i, false, errTag
				}
			}
			j := i
			for i < len(b) && nameOK[b[i]] {
				i++
			}
			if n := int(st.nlen) + i - j; n > int(st.lim.name) {
				return i, false, errName
			} else {
				st.nlen = uint16(n)
			}
			if i >= len(b) {
				return i, false, nil
			}
			c := b[i]
			if c >= 0x80 {
				k, err := st.nameChar(b[i:], st.lx)
				if err != nil {
					return i, false, err
				}
				i += k
				continue
			}
			i++
			switch st.lx {
			case lxStartName:
				if st.item == itemElem {
					o := st.total + uint32(i-1) - uint32(st.nlen)
					stk[st.depth] = o
					if st.depth == 0 && st.streamName(b, o) {
						st.flags |= fCheckTop
					}
				}
				switch {
				case isWS[c]:
					st.lx = lxTag
				case c == '>':
					if done, err := st.startTagEnd(); err != nil || done {
						return i, done, err
					}
				case c == '/':
					st.lx = lxEmpty
				default:
					return i - 1, false, errTag
				}
			case lxAttrName:
				switch {
				case isWS[c]:
					st.lx = lxAttrEq
				case c == '=':
					st.lx = lxAttrQuote
				default:
					return i - 1, false, errTag
				}
			default: // lxEndName
				if st.item == itemElem && (isWS[c] || c == '>') &&
					!st.matchEnd(b, st.total+uint32(i-1)-uint32(st.nlen), int(st.nlen), stk) {
					return i - 1, false, errMismatch
				}
				switch {
				case isWS[c]:
					st.lx = lxEndSpace
				case c == '>':
					if done := st.endTagEnd(); done {
						return i, true, nil
					}
				default:
					return i - 1, false, errTag
				}
			}

		case lxTag:
			for i < len(b) && isWS[b[i]] {
				i++
			}
			if i >= len(b) {
				return i, false, nil
			}
			c := b[i]
			if nameStartOK[c] && st.attrs < st.lim.attrs {
				// Fast path: a whole ASCII name='plain value' inside b is taken in one go; the
				// states below handle everything else (and agree on what this accepts).
				j := i + 1
				for j < len(b) && nameOK[b[j]] {
					j++
				}
				if j+2 < len(b) && b[j] == '=' && j-i <= int(st.lim.name) && (b[j+1] == '\'' || b[j+1] == '"') {
					q, v := b[j+1], j+2
					for v < len(b) && attrOK[b[v]] {
						v++
					}
					if v < len(b) && b[v] == q {
						st.attrs++
						st.lx = lxAfterVal
						i = v + 1
						continue
					}
				}
			}
			switch {
			case nameStartOK[c] || c >= 0x80:
				st.attrs++
				if st.attrs > st.lim.attrs {
					return i, false, errAttrs
				}
				st.lx, st.nlen = lxAttrName, 0
			case c == '>':
				i++
				if done, err := st.startTagEnd(); err != nil || done {
					return i, done, err
				}
			case c == '/':
				st.lx = lxEmpty
				i++
			default:
				return i, false, errTag
			}

		case lxAttrEq, lxAttrQuote, lxEndSpace:
			for i < len(b) && isWS[b[i]] {
				i++
			}
			if i >= len(b) {
				return i, false, nil
			}
			c := b[i]
			i++
			switch {
			case st.lx == lxAttrEq && c == '=':
				st.lx = lxAttrQuote
			case st.lx == lxAttrQuote && (c == '\'' || c == '"'):
				st.lx, st.quote = lxAttrVal, c
			case st.lx == lxEndSpace && c == '>':
				if done := st.endTagEnd(); done {
					return i, true, nil
				}
			default:
				return i - 1, false, errTag
			}

		case lxAfterVal:
			c := b[i]
			i++
			switch {
			case isWS[c]:
				st.lx = lxTag
			case c == '>':
				if done, err := st.startTagEnd(); err != nil || done {
					return i, done, err
				}
			case c == '/':
				st.lx = lxEmpty
			default:
				return i - 1, false, errTag
			}

		case lxEmpty:
			if b[i] != '>' {
				return i, false, errTag
			}
			i++
			if st.item == itemHeader {
				return i, true, nil
			}
			if st.depth >= st.lim.depth {
				return i, false, errDepth
			}
			if st.depth == 0 {
				st.flags &^= fCheckTop // an empty element: the second pass checks it
				return i, true, nil
			}
			st.lx = lxText

		case lxLT:
			c := b[i]
			if st.item == itemNone {
				// The first byte after a top-level '<' says what the item is.
				switch {
				case c == '?':
					if st.hdr != nil || st.flags&fStarted != 0 {
						return i, false, errPI
					}
					st.item, st.lx, st.cnt = itemDecl, lxPI, 0
					i++
					continue
				case c == '!':
					st.lx = lxBang
					i++
					continue
				case c == '/':
					if st.hdr == nil {
						return i, false, errTag
					}
					st.item, st.lx, st.nlen = itemEnd, lxEndName, 0
					i++
					continue
				case st.hdr == nil:
					st.item = itemHeader
				default:
					st.item = itemElem
				}
			}
			switch {
			case nameStartOK[c] || c >= 0x80:
				st.lx, st.nlen, st.attrs = lxStartName, 0, 0
			case c == '/':
				// Fast path: a whole ASCII "</name>" inside b.
				j := i + 1
				if j < len(b) && nameStartOK[b[j]] {
					for j++; j < len(b) && nameOK[b[j]]; j++ {
					}
					if j < len(b) && b[j] == '>' && j-i-1 <= int(st.lim.name) {
						if !st.matchEnd(b, st.total+uint32(i+1), j-i-1, stk) {
							return i + 1, false, errMismatch
						}
						i = j + 1
						if st.endTagEnd() {
							return i, true, nil
						}
						continue
					}
				}
				st.lx, st.nlen = lxEndName, 0
				i++
			case c == '!':
				st.lx = lxBang
				i++
			case c == '?':
				return i, false, errPI
			default:
				return i, false, errTag
			}

		case lxBrackets:
			c := b[i]
			switch {
			case c == ']':
				if st.cnt < 2 {
					st.cnt++
				}
				i++
			case c == '>' && st.cnt >= 2:
				return i, false, errCDEnd
			default:
				st.lx = lxText // re-read c as character data
			}

		case lxRef:
			c := b[i]
			switch {
			case c == '#':
				st.lx = lxCharRef
			case nameStartOK[c]:
				st.lx, st.acc, st.cnt = lxEntName, uint32(c), 1
			case c >= 0x80:
				return i, false, errEntity // a name, but never a predefined one
			default:
				return i, false, errRef
			}
			i++

		case lxEntName:
			c := b[i]
			switch {
			case c == ';':
				switch st.acc {
				case entAmp, entLt, entGt, entApos, entQuot:
				default:
					return i, false, errEntity
				}
				st.lx = st.ret
			case nameOK[c]:
				if st.cnt == 4 { // longer than any predefined entity name
					return i, false, errEntity
				}
				st.acc = st.acc<<8 | uint32(c)
				st.cnt++
			case c >= 0x80:
				return i, false, errEntity
			default:
				return i, false, errRef
			}
			i++

		case lxCharRef:
			c := b[i]
			switch {
			case c == 'x':
				st.lx, st.acc, st.cnt = lxCharHex, 0, 0
			case c >= '0' && c <= '9':
				st.lx, st.acc, st.cnt = lxCharDec, uint32(c-'0'), 1
			default:
				return i, false, errRef
			}
			i++

		case lxCharDec, lxCharHex:
			c := b[i]
			var d uint32
			switch {
			case c >= '0' && c <= '9':
				d = uint32(c - '0')
			case st.lx == lxCharHex && c >= 'a' && c <= 'f':
				d = uint32(c-'a') + 10
			case st.lx == lxCharHex && c >= 'A' && c <= 'F':
				d = uint32(c-'A') + 10
			case c == ';':
				if st.cnt == 0 {
					return i, false, errRef
				}
				if !isChar(st.acc) {
					return i, false, errCharRef
				}
				st.lx = st.ret
				i++
				continue
			default:
				return i, false, errRef
			}
			if st.lx == lxCharHex {
				st.acc = st.acc<<4 | d
			} else {
				st.acc = st.acc*10 + d
			}
			if st.acc > 0x10FFFF {
				return i, false, errCharRef
			}
			st.cnt = 1
			i++

		case lxUTF8:
			k, err := st.resumeUTF8(b[i:])
			if err != nil {
				return i, false, err
			}
			i += k

		case lxCData:
			j := i
			for i < len(b) && cdataOK[b[i]] {
				i++
			}
			if i > j {
				st.cnt = 0
			}
			if i >= len(b) {
				return i, false, nil
			}
			switch c := b[i]; {
			case c == ']':
				if st.cnt < 2 {
					st.cnt++
				}
				i++
			case c == '>':
				if st.cnt >= 2 {
					st.lx = lxText
				}
				st.cnt = 0
				i++
			case c >= 0x80:
				st.cnt = 0
				k, err := st.char(b[i:], lxCData)
				if err != nil {
					return i, false, err
				}
				i += k
			default:
				return i, false, errChar
			}

		case lxBang:
			c := b[i]
			switch {
			case c == '-':
				return i, false, errComment
			case c == '[' && st.item == itemElem && st.depth > 0:
				st.lx, st.cnt = lxCDStart, 0
			case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
				return i, false, errDTD
			default:
				return i, false, errMarkup
			}
			i++

		case lxCDStart:
			if b[i] != "CDATA["[st.cnt] {
				return i, false, errMarkup
			}
			i++
			st.cnt++
			if st.cnt == 6 {
				st.lx, st.cnt = lxCData, 0
			}

		case lxPI:
			c := b[i]
			if st.cnt == 3 {
				if !isWS[c] {
					return i, false, errPI
				}
				st.lx, st.cnt = lxDecl, 0
			} else if c != "xml"[st.cnt] {
				return i, false, errPI
			} else {
				st.cnt++
			}
			i++

		case lxDecl:
			c := b[i]
			i++
			switch {
			case c == '>' && st.cnt == 1:
				return i, true, nil
			case c == '?':
				st.cnt = 1
			case c >= 0x20 && c < 0x7F || isWS[c]:
				st.cnt = 0
			default:
				return i - 1, false, errDecl
			}

		default:
			// Not inside an item: Next never calls lex in these states.
			return i, false, errNotReset
		}
	}
	return i, false, nil
}

// startTagEnd handles the '>' of a start tag. It reports whether the item is complete, or
// (fCheckTop) whether lex must stop for the caller to check the top-level start tag.
func (st *State) startTagEnd() (bool, *stanza.StreamError) {
	if st.item == itemHeader {
		return true, nil
	}
	if st.depth >= st.lim.depth {
		return false, errDepth
	}
	st.depth++
	st.lx = lxText
	return st.flags&fCheckTop != 0, nil
}

// at returns the byte at offset o of the current item, where b continues the item at offset
// st.total. The bytes before b are in st.buf, except for the '<' of an item that started in
// this call (offset 0, which no name includes).
func (st *State) at(b []byte, o uint32) byte {
	if o >= st.total {
		return b[o-st.total]
	}
	return st.buf.B[o]
}

// matchEnd reports whether the end tag name of n bytes at item offset e0 repeats the name of
// the innermost open element, as recorded in stk.
func (st *State) matchEnd(b []byte, e0 uint32, n int, stk []uint32) bool {
	s0 := stk[st.depth-1]
	if s0 >= st.total && e0 >= st.total {
		// Both names are in b: the usual case. Names are short, a loop beats memequal.
		s, e := b[s0-st.total:], b[e0-st.total:]
		if len(s) <= n || len(e) < n || !tagStop[s[n]] {
			return false
		}
		for k := 0; k < n; k++ {
			if s[k] != e[k] {
				return false
			}
		}
		return true
	}
	return st.matchEndSplit(b, e0, n, s0)
}

// matchEndSplit is matchEnd when a name is (partly) in st.buf.
func (st *State) matchEndSplit(b []byte, e0 uint32, n int, s0 uint32) bool {
	for k := uint32(0); k < uint32(n); k++ {
		if st.at(b, s0+k) != st.at(b, e0+k) {
			return false
		}
	}
	return tagStop[st.at(b, s0+uint32(n))]
}

// streamName reports whether the name of st.nlen bytes at item offset o has the local part
// "stream" (unprefixed or after a colon).
func (st *State) streamName(b []byte, o uint32) bool {
	n := uint32(st.nlen)
	if n < 6 || st.at(b, o+n-1) != 'm' || n > 6 && st.at(b, o+n-7) != ':' {
		return false
	}
	for k := uint32(0); k < 6; k++ {
		if st.at(b, o+n-6+k) != "stream"[k] {
			return false
		}
	}
	return true
}

// endTagEnd handles the '>' of an end tag. It reports whether the item is complete.
func (st *State) endTagEnd() bool {
	if st.item == itemEnd {
		return true
	}
	st.depth--
	if st.depth == 0 {
		return true
	}
	st.lx = lxText
	return false
}

// char validates the non-ASCII character at the start of b in character data, an attribute
// value or CDATA, and returns its length. If b ends inside the sequence, it holds the bytes in
// st, switches to lxUTF8 and returns len(b).
func (st *State) char(b []byte, ret uint8) (int, *stanza.StreamError) {
	_, size := decodeChar(b)
	switch {
	case size > 0:
		return size, nil
	case size == 0:
		st.hold(b, ret)
		return len(b), nil
	}
	return 0, errUTF8
}

// nameChar is char for a character inside a name: the character must also be a NameStartChar
// (first) or NameChar, and it counts towards the name length limit.
func (st *State) nameChar(b []byte, ret uint8) (int, *stanza.StreamError) {
	r, size := decodeChar(b)
	switch {
	case size > 0:
		return size, st.nameRune(r, size)
	case size == 0:
		st.hold(b, ret)
		return len(b), nil
	}
	return 0, errUTF8
}

func (st *State) nameRune(r rune, size int) *stanza.StreamError {
	if st.nlen == 0 && !isNameStartRune(r) || !isNameRune(r) {
		return errTag
	}
	if int(st.nlen)+size > int(st.lim.name) {
		return errName
	}
	st.nlen += uint16(size)
	return nil
}

// hold keeps the 1..3 bytes of a split UTF-8 sequence in st.acc.
func (st *State) hold(b []byte, ret uint8) {
	st.acc = 0
	for _, c := range b {
		st.acc = st.acc<<8 | uint32(c)
	}
	st.cnt = uint8(len(b))
	st.ret, st.lx = ret, lxUTF8
}

// resumeUTF8 continues a split UTF-8 sequence with the bytes at the start of b.
func (st *State) resumeUTF8(b []byte) (int, *stanza.StreamError) {
	var tmp [4]byte
	have := int(st.cnt)
	for k := 0; k < have; k++ {
		tmp[k] = byte(st.acc >> (8 * (have - 1 - k)))
	}
	n := copy(tmp[have:], b)
	r, size := decodeChar(tmp[:have+n])
	switch {
	case size == 0:
		st.hold(tmp[:have+n], st.ret) // still short: everything in b was used
		return len(b), nil
	case size < 0:
		return 0, errUTF8
	}
	// hold used cnt for the held bytes; what it counted before (CDATA's trailing ']') a
	// character that is not ']' has ended anyway.
	st.lx, st.cnt = st.ret, 0
	if st.lx == lxStartName || st.lx == lxAttrName || st.lx == lxEndName {
		if err := st.nameRune(r, size); err != nil {
			return 0, err
		}
	}
	return size - have, nil
}
