package xmlstream

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzLimits are small enough for the fuzzer to reach every limit.
var fuzzLimits = &Limits{MaxStanza: 512, MaxDepth: 8, MaxAttrs: 6, MaxName: 24, MaxHeader: 300}

// FuzzTokenizer feeds arbitrary input whole (fast path), whole through the two passes only, in
// random splits and byte by byte. No input may panic, buffer more than the limits allow, or give
// different events or a different error depending on the split.
func FuzzTokenizer(f *testing.F) {
	for _, c := range loadCorpora(f) {
		if len(c.data) < 8192 {
			f.Add(c.data, int64(0), false)
		}
	}
	for _, s := range []string{
		`<message><body>a &amp; b</body></message>`,
		`<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`,
		`<message xmlns:a='urn:a' a:x='1'><a:y/><![CDATA[x]]></message></stream:stream>`,
		"<m>\xe2\x82\xac &#x20AC; ]]></m>",
		`<!-- c --><?pi?><!DOCTYPE x>`,
		`<a b='<'/>`,
		`<a><b></a></b>`,
	} {
		f.Add([]byte(s), int64(1), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, seed int64, withHeader bool) {
		if withHeader {
			data = append([]byte(hdrClient), data...)
		}
		var lim *Limits
		if seed&1 != 0 {
			lim = fuzzLimits
		}
		want, wantErr := feed(t, KindClient, lim, whole(data))
		if wantErr == nil && endsOutsideElement(KindClient, lim, data) {
			checkEncodingXML(t, data) // encoding/xml as a well-formedness oracle
		}
		check := func(how string, got []string, err error) {
			t.Helper()
			if err != wantErr {
				t.Fatalf("%s: error %v, whole input gave %v", how, err, wantErr)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%s: events differ:\n%s", how, diffLines(strings.Join(want, "\n"), strings.Join(got, "\n")))
			}
		}
		fastPath = false
		got, err := feed(t, KindClient, lim, whole(data))
		fastPath = true
		check("two passes only", got, err)
		rng := rand.New(rand.NewSource(seed))
		got, err = feed(t, KindClient, lim, randomSplit(data, rng))
		check("random split", got, err)
		if len(data) <= 4096 {
			got, err = feed(t, KindClient, lim, bytewise(data))
			check("byte by byte", got, err)
		}
	})
}

// sanitize is what the escapers promise to keep of s: every Char, with U+FFFD for each invalid
// byte and each sequence that is not a Char.
func sanitize(s []byte) []byte {
	var out []byte
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		if r == utf8.RuneError && n == 1 || !isChar(uint32(r)) {
			r = utf8.RuneError
		}
		out = utf8.AppendRune(out, r)
		s = s[n:]
	}
	return out
}

// FuzzWriterRoundTrip builds elements with arbitrary text and attribute values and requires
// the tokenizer to read back exactly the (sanitized) values, also after SetAttrs and
// AppendChild.
func FuzzWriterRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), []byte("juliet@example.com"))
	f.Add([]byte("a < b && c > d ]]> \r\n\t"), []byte("'\"<>&\t\r\n "))
	f.Add([]byte("\x00\xff\xe2\x82 \uFFFE ☃"), []byte("\x01\xed\xa0\x80 😀"))
	f.Fuzz(func(t *testing.T, text, val []byte) {
		var b Builder
		b.Reset(append([]byte(nil), hdrClient...))
		b.Start("message").AttrBytes("x", val).Start("body").TextBytes(text).End().End()
		wantText, wantVal := sanitize(text), sanitize(val)
		if got := AppendUnescaped(nil, AppendEscapedText(nil, text)); !bytes.Equal(got, wantText) {
			t.Fatalf("AppendUnescaped(AppendEscapedText) = %q, want %q", got, wantText)
		}
		if got := AppendUnescaped(nil, AppendEscapedAttr(nil, val)); !bytes.Equal(got, wantVal) {
			t.Fatalf("AppendUnescaped(AppendEscapedAttr) = %q, want %q", got, wantVal)
		}
		raw := readBack(t, b.B, wantText, wantVal)
		// Re-stamp: replace x, add y; the body must survive untouched.
		stamped := SetAttrs(nil, raw, AttrSet{Name: "x", Value: text}, AttrSet{Name: "y", Value: val})
		readBack(t, append([]byte(hdrClient), stamped...), wantText, wantText)
		withChild := AppendChild(nil, raw, []byte("<c/>"))
		readBack(t, append([]byte(hdrClient), withChild...), wantText, wantVal)
	})
}

// readBack scans one element and checks its x attribute and body text. It returns the element.
func readBack(t *testing.T, in, wantText, wantVal []byte) []byte {
	t.Helper()
	sc := NewScanner()
	var st State
	st.Reset(KindClient, nil)
	defer st.Release()
	for len(in) > 0 {
		ev, n, err := sc.Next(&st, in)
		if err != nil {
			t.Fatalf("writer output rejected: %v\n%q", err, in)
		}
		in = in[n:]
		if ev.Kind != EventElement {
			continue
		}
		e := ev.Stanza.Elem()
		if got, _ := e.AppendAttr(nil, "x"); !bytes.Equal(got, wantVal) {
			t.Fatalf("attribute x = %q, want %q", got, wantVal)
		}
		body, ok := e.Child("", "body")
		if !ok {
			t.Fatalf("no body in %q", ev.Stanza.Raw)
		}
		if got := body.AppendText(nil); !bytes.Equal(got, wantText) {
			t.Fatalf("text = %q, want %q", got, wantText)
		}
		return append([]byte(nil), ev.Stanza.Raw...)
	}
	t.Fatal("no element")
	return nil
}
