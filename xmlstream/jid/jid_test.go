package jid

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/text/secure/precis"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want, local, domain, res string
	}{
		{"juliet@example.com", "juliet@example.com", "juliet", "example.com", ""},
		{"juliet@example.com/foo", "juliet@example.com/foo", "juliet", "example.com", "foo"},
		{"juliet@example.com/foo bar", "juliet@example.com/foo bar", "juliet", "example.com", "foo bar"},
		{"juliet@example.com/foo@bar", "juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"},
		{"foo\\20bar@example.com", "foo\\20bar@example.com", "foo\\20bar", "example.com", ""},
		{"fussball@example.com", "fussball@example.com", "fussball", "example.com", ""},
		{"fußball@example.com", "fußball@example.com", "fußball", "example.com", ""},
		{"π@example.com", "π@example.com", "π", "example.com", ""},
		{"Σ@example.com/foo", "σ@example.com/foo", "σ", "example.com", "foo"},
		{"Juliet@Example.COM/Balcony", "juliet@example.com/Balcony", "juliet", "example.com", "Balcony"},
		{"example.com", "example.com", "", "example.com", ""},
		{"example.com.", "example.com", "", "example.com", ""},
		{"example.com/foobar", "example.com/foobar", "", "example.com", "foobar"},
		{"a.example.com/b@example.net", "a.example.com/b@example.net", "", "a.example.com", "b@example.net"},
		{"juliet@[::1]/r", "juliet@[::1]/r", "juliet", "[::1]", "r"},
		{"juliet@127.0.0.1", "juliet@127.0.0.1", "juliet", "127.0.0.1", ""},
		{"localhost", "localhost", "", "localhost", ""},
	} {
		j, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if j.String() != tc.want || j.Local() != tc.local || j.Domain() != tc.domain || j.Resource() != tc.res {
			t.Errorf("Parse(%q) = %q (%q %q %q), want %q", tc.in, j, j.Local(), j.Domain(), j.Resource(), tc.want)
		}
		if j2, err := Parse(j.String()); err != nil || j2 != j {
			t.Errorf("round trip of %q: %v %v", j, j2, err)
		}
		if b := j.Bare(); b.Resource() != "" || b.Local() != tc.local || b.Domain() != tc.domain || !b.IsBare() {
			t.Errorf("Bare(%q) = %q", j, b)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"", "@example.com", "juliet@", "juliet@example.com/", "\"juliet\"@example.com",
		"foo bar@example.com", "juliet@exa mple.com", "juliet@[::1", "juliet@[1.2.3.4]",
		strings.Repeat("a", 1024) + "@example.com", "juliet@example.com/" + strings.Repeat("r", 1024),
		"a@b..c", "juliet@example.com/\u0000", "\xff@example.com", "juliet@<example>.com", "x@y@z",
		// No zone in an IP literal (RFC 3986): netip takes any text after '%'.
		"juliet@[::1%eth0]", "juliet@[::1%<x\"\t]", "juliet@[::1%" + strings.Repeat("a", 70000) + "]",
	} {
		if j, err := Parse(in); err == nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %q, %v; want ErrMalformed", in, j, err)
		}
	}
}

func TestSize(t *testing.T) {
	if s := unsafe.Sizeof(JID{}); s != 24 {
		t.Fatalf("JID is %d bytes, want 24", s)
	}
}

func TestWithResource(t *testing.T) {
	j, _ := Parse("a@b/c")
	k, err := j.WithResource("d")
	if err != nil || k.String() != "a@b/d" || k.Bare() != j.Bare() {
		t.Fatalf("WithResource = %q, %v", k, err)
	}
	if _, err := j.WithResource(""); err == nil {
		t.Fatal("empty resource accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a@b/c", "example.com", "Σ@Example.com/x", "[::1]", "a@b/c/d@e", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := Parse(s)
		if err != nil {
			return
		}
		j2, err := Parse(j.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", j, s, err)
		}
		if j2 != j {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, j, j2)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Parse("juliet@example.com/balcony"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestASCIIFastPaths checks the shortcuts for ASCII parts against the general
// preparation on inputs on both sides of their edges.
func TestASCIIFastPaths(t *testing.T) {
	for _, s := range []string{
		"juliet", "Juliet", "JULIET", "a!b#c$d%", "x~y", "foo\\20bar", "a b", " lead", "trail ",
		"example.com", "a-b.example", "-a.example", "a-.example", "a--b.example", "xn--bcher-kva.example",
		"1.2.3.4", "1.2.3.4a", "a..b", "a.b.", "localhost", "Example.com", "ex_ample.com",
	} {
		checkFastPaths(t, s)
	}
	if d, err := PrepareDomain("xn--bcher-kva.example"); err != nil || d != "bücher.example" {
		t.Errorf("PrepareDomain(xn--bcher-kva.example) = %q, %v; the general path must decode it", d, err)
	}
}

// checkFastPaths fails t when a shortcut taken for s maps it otherwise than the profile
// it stands for.
func checkFastPaths(t *testing.T, s string) {
	t.Helper()
	if s != "" && printableASCII(s, '!') {
		want, err := precis.UsernameCaseMapped.String(s)
		if err != nil || want != lowerASCII(s) {
			t.Errorf("localpart %q: profile %q, %v; shortcut %q", s, want, err, lowerASCII(s))
		}
	}
	if s != "" && printableASCII(s, ' ') {
		want, err := precis.OpaqueString.String(s)
		if err != nil || want != s {
			t.Errorf("resourcepart %q: profile %q, %v; shortcut keeps it", s, want, err)
		}
	}
	if plainHostname(s) {
		if a, err := netip.ParseAddr(s); err == nil {
			t.Errorf("domainpart %q: taken as a name, but it is the address %v", s, a)
		}
		want, err := idnaProfile.ToUnicode(s)
		if err != nil || strings.ToLower(want) != s {
			t.Errorf("domainpart %q: IDNA %q, %v; shortcut keeps it", s, want, err)
		}
	}
}

func FuzzASCIIFastPaths(f *testing.F) {
	for _, s := range []string{"Juliet", "a-b.example", "xn--x.y", "1.2.3.4", "a b~", "ex--ample"} {
		f.Add(s)
	}
	f.Fuzz(checkFastPaths)
}

func BenchmarkPrepare(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := New("user123", "localhost", "vireo-bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestASCIIDomain: the names DNS, SNI and certificates carry are A-labels, lower case,
// without the final dot; ASCII names pass lowercased.
func TestASCIIDomain(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"example.com", "example.com"},
		{"Example.COM.", "example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"conference.日本.example", "conference.xn--wgv71a.example"},
		{"[::1]", "[::1]"},
	} {
		if got, err := ASCIIDomain(tc.in); err != nil || got != tc.want {
			t.Errorf("ASCIIDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	// Round trip with PrepareDomain, which gives U-labels.
	d, err := PrepareDomain("xn--bcher-kva.example")
	if err != nil || ToASCII(d) != "xn--bcher-kva.example" {
		t.Errorf("round trip: %q %v -> %q", d, err, ToASCII(d))
	}
	if _, err := ASCIIDomain("\u0300a.example"); err == nil {
		t.Error("a label starting with a combining mark has an ASCII form")
	}
}
