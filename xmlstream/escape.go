package xmlstream

import (
	"bytes"
	"unicode/utf8"
)

// Unescaping modes.
const (
	modeRaw   = iota // references only
	modeText         // references, and CR LF / CR become LF (XML 1.0 §2.11)
	modeAttr         // as modeText, then literal TAB, LF and CR become space (§3.3.3)
	modeCDATA        // line ends only: CDATA has no references
)

// AppendUnescaped appends raw with the five predefined entities and numeric character
// references decoded to dst. A malformed reference is copied literally.
func AppendUnescaped(dst, raw []byte) []byte { return unescape(dst, raw, modeRaw) }

// unescape appends raw to dst, decoding references and normalizing white space per mode.
func unescape(dst, raw []byte, mode int) []byte {
	for len(raw) > 0 {
		// Copy the run up to the next byte that needs work.
		k := 0
		switch mode {
		case modeRaw:
			k = bytes.IndexByte(raw, '&')
		case modeCDATA:
			k = bytes.IndexByte(raw, '\r')
		default:
			for k < len(raw) {
				c := raw[k]
				if c == '&' || c == '\r' || mode == modeAttr && (c == '\t' || c == '\n') {
					break
				}
				k++
			}
		}
		if k < 0 || k == len(raw) {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:k]...)
		raw = raw[k:]
		switch raw[0] {
		case '\r':
			raw = raw[1:]
			if len(raw) > 0 && raw[0] == '\n' {
				raw = raw[1:]
			}
			if mode == modeAttr {
				dst = append(dst, ' ')
			} else {
				dst = append(dst, '\n')
			}
		case '\t', '\n':
			dst = append(dst, ' ')
			raw = raw[1:]
		default: // '&'
			r, n := decodeRef(raw)
			if n == 0 {
				dst = append(dst, '&')
				raw = raw[1:]
				continue
			}
			dst = utf8.AppendRune(dst, r)
			raw = raw[n:]
		}
	}
	return dst
}

// decodeRef decodes the reference at the start of b ("&...;"): one of the five predefined
// entities or a character reference to an XML Char. It returns the character and the
// reference's length, or n == 0 if b does not start with such a reference. It reads only the
// reference's own bytes, so scanning a text with many bare '&' stays linear.
func decodeRef(b []byte) (rune, int) {
	if len(b) < 4 || b[0] != '&' {
		return 0, 0
	}
	if b[1] != '#' {
		switch {
		case string(b[1:4]) == "lt;":
			return '<', 4
		case string(b[1:4]) == "gt;":
			return '>', 4
		case len(b) >= 5 && string(b[1:5]) == "amp;":
			return '&', 5
		case len(b) >= 6 && string(b[1:6]) == "apos;":
			return '\'', 6
		case len(b) >= 6 && string(b[1:6]) == "quot;":
			return '"', 6
		}
		return 0, 0
	}
	i := 2
	hex := b[i] == 'x'
	if hex {
		i++
	}
	start := i
	var v uint32
	for ; i < len(b); i++ {
		c := b[i]
		var d uint32
		switch {
		case c >= '0' && c <= '9':
			d = uint32(c - '0')
		case hex && c >= 'a' && c <= 'f':
			d = uint32(c-'a') + 10
		case hex && c >= 'A' && c <= 'F':
			d = uint32(c-'A') + 10
		default:
			goto end
		}
		if hex {
			v = v<<4 | d
		} else {
			v = v*10 + d
		}
		if v > 0x10FFFF {
			return 0, 0
		}
	}
end:
	if i == start || i >= len(b) || b[i] != ';' || !isChar(v) {
		return 0, 0
	}
	return rune(v), i + 1
}

// AppendEscapedText appends s escaped for character data to dst: & < > become entities, CR
// becomes &#xD; (so it survives line-end normalization), and anything that is not an XML
// Char (control characters, invalid UTF-8, U+FFFE, U+FFFF) becomes U+FFFD, so the output is
// always well-formed.
func AppendEscapedText(dst, s []byte) []byte { return appendEscaped(dst, s, &escText) }

// AppendEscapedAttr appends s escaped for an attribute value in single or double quotes to dst:
// as AppendEscapedText, plus ' " and TAB, LF, CR as references (so they survive attribute
// value normalization).
func AppendEscapedAttr(dst, s []byte) []byte { return appendEscaped(dst, s, &escAttr) }

// AppendEscapedString appends the attribute-safe escaping of s to dst (see AppendEscapedAttr).
func AppendEscapedString(dst []byte, s string) []byte { return appendEscaped(dst, s2b(s), &escAttr) }

func appendEscaped(dst, s []byte, tab *[256]bool) []byte {
	for {
		k := 0
		for k < len(s) && !tab[s[k]] {
			k++
		}
		dst = append(dst, s[:k]...)
		if k == len(s) {
			return dst
		}
		s = s[k:]
		c := s[0]
		if c >= utf8.RuneSelf {
			if n := charLen(s); n > 0 {
				dst = append(dst, s[:n]...)
				s = s[n:]
				continue
			}
			// Replace an invalid byte, or a whole valid sequence that is not a Char.
			_, n := utf8.DecodeRune(s)
			dst = append(dst, "\uFFFD"...)
			s = s[n:]
			continue
		}
		s = s[1:]
		switch c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		case '\t':
			dst = append(dst, "&#x9;"...)
		case '\n':
			dst = append(dst, "&#xA;"...)
		case '\r':
			dst = append(dst, "&#xD;"...)
		default:
			dst = append(dst, "\uFFFD"...)
		}
	}
}
