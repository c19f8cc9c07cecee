package xmlstream

import (
	"unicode/utf8"
	"unsafe"
)

// Byte class tables for the lexer's tight loops: one array index per byte, no branches on
// ranges, no function calls. A true entry means "ordinary here, keep going".
var (
	textOK      [256]bool // character data: Chars except < & ] and non-ASCII
	attrOK      [256]bool // attribute value: Chars except < & ' " and non-ASCII
	cdataOK     [256]bool // CDATA section: Chars except ] > and non-ASCII
	nameOK      [256]bool // ASCII NameChar (XML 1.0 §2.3), ':' included
	nameStartOK [256]bool // ASCII NameStartChar
	isWS        [256]bool // S production: space, tab, CR, LF
	tagStop     [256]bool // ends a name inside a tag: S / > =
	escText     [256]bool // needs work when escaping text
	escAttr     [256]bool // needs work when escaping an attribute value
)

func init() {
	for c := 0x20; c < 0x80; c++ {
		textOK[c], attrOK[c], cdataOK[c] = true, true, true
	}
	for _, c := range []byte{'\t', '\n', '\r'} {
		textOK[c], attrOK[c], cdataOK[c] = true, true, true
	}
	textOK['<'], textOK['&'], textOK[']'] = false, false, false
	attrOK['<'], attrOK['&'], attrOK['\''], attrOK['"'] = false, false, false, false
	cdataOK[']'], cdataOK['>'] = false, false
	for c := 'a'; c <= 'z'; c++ {
		nameOK[c], nameStartOK[c] = true, true
		nameOK[c-'a'+'A'], nameStartOK[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		nameOK[c] = true
	}
	nameOK['-'], nameOK['.'], nameOK['_'], nameOK[':'] = true, true, true, true
	nameStartOK['_'], nameStartOK[':'] = true, true
	for _, c := range []byte{' ', '\t', '\r', '\n'} {
		isWS[c], tagStop[c] = true, true
	}
	tagStop['/'], tagStop['>'], tagStop['='] = true, true, true
	for c := 0; c < 0x20; c++ {
		escText[c], escAttr[c] = true, true
	}
	for c := 0x80; c < 0x100; c++ {
		escText[c], escAttr[c] = true, true
	}
	escText['\t'], escText['\n'] = false, false // survive parsing as they are; only CR is normalized
	escText['&'], escText['<'], escText['>'] = true, true, true
	escAttr['&'], escAttr['<'], escAttr['>'], escAttr['\''], escAttr['"'] = true, true, true, true, true
}

// isChar reports whether r matches the XML 1.0 Char production (§2.2).
func isChar(r uint32) bool {
	switch {
	case r < 0x20:
		return r == 0x9 || r == 0xA || r == 0xD
	case r <= 0xD7FF:
		return true
	case r < 0xE000:
		return false
	case r <= 0xFFFD:
		return true
	}
	return r >= 0x10000 && r <= 0x10FFFF
}

// isNameStartRune reports whether a non-ASCII r is an XML 1.0 NameStartChar (§2.3).
func isNameStartRune(r rune) bool {
	switch {
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r >= 0x200C && r <= 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

// isNameRune reports whether a non-ASCII r is an XML 1.0 NameChar (§2.3).
func isNameRune(r rune) bool {
	return isNameStartRune(r) || r == 0xB7 || (r >= 0x300 && r <= 0x36F) || (r >= 0x203F && r <= 0x2040)
}

// decodeChar decodes one non-ASCII UTF-8 sequence at the start of b. It returns size > 0 for a
// valid sequence whose code point is an XML Char, size 0 when b ends inside a sequence that may
// still turn out valid, and size < 0 for invalid UTF-8 or a non-Char.
func decodeChar(b []byte) (rune, int) {
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size <= 1 {
		if !utf8.FullRune(b) {
			return 0, 0
		}
		return 0, -1
	}
	if r == 0xFFFE || r == 0xFFFF {
		return 0, -1
	}
	return r, size
}

// s2b returns the bytes of s without copying. The result must never be written to.
func s2b(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// charLen returns the length of the valid UTF-8 sequence at the start of b (b[0] >= 0x80)
// if it encodes an XML Char, else 0 (invalid, a surrogate, U+FFFE, U+FFFF, or cut short).
// It agrees with decodeChar; it exists so that the fast path validates text without a call
// that computes the rune.
func charLen(b []byte) int {
	n := len(b)
	c0 := b[0]
	switch {
	case c0 < 0xC2:
		return 0
	case c0 < 0xE0:
		if n < 2 || b[1]&0xC0 != 0x80 {
			return 0
		}
		return 2
	case c0 < 0xF0:
		if n < 3 || b[2]&0xC0 != 0x80 {
			return 0
		}
		c1 := b[1]
		switch c0 {
		case 0xE0:
			if c1 < 0xA0 || c1 > 0xBF {
				return 0
			}
		case 0xED: // surrogates
			if c1 < 0x80 || c1 > 0x9F {
				return 0
			}
		case 0xEF: // U+FFFE and U+FFFF are not Chars
			if c1&0xC0 != 0x80 || c1 == 0xBF && b[2] >= 0xBE {
				return 0
			}
		default:
			if c1&0xC0 != 0x80 {
				return 0
			}
		}
		return 3
	case c0 < 0xF5:
		if n < 4 || b[2]&0xC0 != 0x80 || b[3]&0xC0 != 0x80 {
			return 0
		}
		c1 := b[1]
		switch c0 {
		case 0xF0:
			if c1 < 0x90 || c1 > 0xBF {
				return 0
			}
		case 0xF4:
			if c1 < 0x80 || c1 > 0x8F {
				return 0
			}
		default:
			if c1&0xC0 != 0x80 {
				return 0
			}
		}
		return 4
	}
	return 0
}

// IsNCName reports whether s is an NCName (Namespaces in XML 1.0 §3): an XML name without
// a colon. For parsers other than this package's (encoding/xml takes "p:0" as the name "0"
// in namespace p) whose names are written out again.
func IsNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == ':':
			return false
		case r < utf8.RuneSelf:
			if i == 0 && !nameStartOK[r] || !nameOK[r] {
				return false
			}
		case r == utf8.RuneError:
			return false
		case i == 0 && !isNameStartRune(r), !isNameRune(r):
			return false
		}
	}
	return true
}

// TruncateText cuts s to at most n bytes without splitting a UTF-8 sequence, for text a
// server keeps or relays within a bound (a reason, a status, a report).
func TruncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
