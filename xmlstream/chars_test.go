package xmlstream

import (
	"testing"
	"unicode/utf8"
)

// TestCharLen checks the fast path's UTF-8 validator against decodeChar on every sequence of
// up to three bytes after a lead byte, plus four-byte leads with a spread of tails.
func TestCharLen(t *testing.T) {
	check := func(b []byte) {
		_, want := decodeChar(b)
		if want < 0 {
			want = 0
		}
		if got := charLen(b); got != want {
			t.Fatalf("charLen(% x) = %d, decodeChar says %d", b, got, want)
		}
	}
	for c0 := 0x80; c0 < 0x100; c0++ {
		check([]byte{byte(c0)})
		for c1 := 0; c1 < 0x100; c1++ {
			check([]byte{byte(c0), byte(c1)})
			for c2 := 0x70; c2 < 0xC8; c2++ {
				check([]byte{byte(c0), byte(c1), byte(c2)})
				if c0 >= 0xF0 {
					for _, c3 := range []byte{0x00, 0x7F, 0x80, 0x9F, 0xBF, 0xC0} {
						check([]byte{byte(c0), byte(c1), byte(c2), c3})
					}
				}
			}
		}
	}
	for r := rune(0x80); r <= 0x10FFFF; r += 7 {
		check(utf8.AppendRune(nil, r))
	}
}

func TestIsNCName(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"a", true}, {"_x", true}, {"a-b.c9", true}, {"é", true}, {"a·", true}, {"vCard", true},
		{"", false}, {"0", false}, {"-a", false}, {".a", false}, {"a:b", false}, {":", false},
		{"a b", false}, {"\xff", false}, {"·a", false}, {"a\x00", false},
	} {
		if got := IsNCName(tc.s); got != tc.want {
			t.Errorf("IsNCName(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestTruncateText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"héllo", 2, "h"}, // é is two bytes: not split
		{"héllo", 3, "hé"},
		{"日本", 4, "日"},
		{"日本", 2, ""},
	} {
		if got := TruncateText(tc.in, tc.n); got != tc.want {
			t.Errorf("TruncateText(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
