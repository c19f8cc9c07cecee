package rsm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
	"github.com/vireo-im/vireo/xmlstream/xmltest"
)

func query(t testing.TB, set string) xmlstream.Element {
	t.Helper()
	e, err := xmlstream.ParseElement([]byte("<query xmlns='http://jabber.org/protocol/disco#items'>"+set+"</query>"), "")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, set string
		want      Request
		bad       bool
	}{
		{"none", "", None, false},
		{"other namespace", "<set xmlns='urn:other'><max>3</max></set>", None, false},
		{"max", "<set xmlns='" + NS + "'><max> 10 </max></set>", Request{Max: 10, Index: -1}, false},
		{"after", "<set xmlns='" + NS + "'><max>10</max><after>b@x</after></set>", Request{Max: 10, After: "b@x", HasAfter: true, Index: -1}, false},
		{"last page", "<set xmlns='" + NS + "'><before/></set>", Request{Max: -1, HasBefore: true, Index: -1}, false},
		{"before", "<set xmlns='" + NS + "'><before>c@x</before></set>", Request{Max: -1, Before: "c@x", HasBefore: true, Index: -1}, false},
		{"index", "<set xmlns='" + NS + "'><index>4</index></set>", Request{Max: -1, Index: 4}, false},
		{"negative max", "<set xmlns='" + NS + "'><max>-1</max></set>", None, true},
		{"word max", "<set xmlns='" + NS + "'><max>ten</max></set>", None, true},
		{"empty after", "<set xmlns='" + NS + "'><after/></set>", None, true},
		{"index and after", "<set xmlns='" + NS + "'><index>1</index><after>a</after></set>", None, true},
		{"long key", "<set xmlns='" + NS + "'><after>" + strings.Repeat("a", maxValue+1) + "</after></set>", None, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, e := Parse(query(t, tc.set))
			if (e != nil) != tc.bad {
				t.Fatalf("error %v, want bad=%v", e, tc.bad)
			}
			if !tc.bad && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCut pages ten keys k0..k9 (sorted) every way a client asks, including keys that are
// no longer in the list.
func TestCut(t *testing.T) {
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	key := func(i int) string { return keys[i] }
	for _, tc := range []struct {
		name          string
		r             Request
		lo, hi        int
		set           bool
		def, limitMax int
	}{
		{"all, under the default", None, 0, 10, false, 20, 50},
		{"cut unasked", None, 0, 4, true, 4, 50},
		{"max", Request{Max: 3, Index: -1}, 0, 3, true, 20, 50},
		{"max zero: the count only", Request{Max: 0, Index: -1}, 0, 0, true, 20, 50},
		{"max above the limit", Request{Max: 1000, Index: -1}, 0, 4, true, 4, 8},
		{"after", Request{Max: 3, After: "k2", HasAfter: true, Index: -1}, 3, 6, true, 20, 50},
		{"after a key gone", Request{Max: 3, After: "k25", HasAfter: true, Index: -1}, 3, 6, true, 20, 50},
		{"after the end", Request{Max: 3, After: "k9", HasAfter: true, Index: -1}, 10, 10, true, 20, 50},
		{"last page", Request{Max: 3, HasBefore: true, Index: -1}, 7, 10, true, 20, 50},
		{"before", Request{Max: 3, Before: "k5", HasBefore: true, Index: -1}, 2, 5, true, 20, 50},
		{"before near the start", Request{Max: 3, Before: "k1", HasBefore: true, Index: -1}, 0, 1, true, 20, 50},
		{"index", Request{Max: 2, Index: 8}, 8, 10, true, 20, 50},
		{"index past the end", Request{Max: 2, Index: 80}, 10, 10, true, 20, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Cut(len(keys), key, tc.r, tc.def, tc.limitMax)
			if p.Lo != tc.lo || p.Hi != tc.hi || p.Set != tc.set || p.Count != 10 {
				t.Fatalf("got %+v, want [%d:%d] set=%v", p, tc.lo, tc.hi, tc.set)
			}
		})
	}
}

func TestAppend(t *testing.T) {
	keys := []string{"a@x", "b<x", "c@x"}
	key := func(i int) string { return keys[i] }
	var b xmlstream.Builder
	Page{Lo: 1, Hi: 3, Count: 3, Set: true}.Append(&b, key)
	want := "<set xmlns='" + NS + "'><first index='1'>b&lt;x</first><last>c@x</last><count>3</count></set>"
	if string(b.B) != want {
		t.Fatalf("got %s\nwant %s", b.B, want)
	}
	b.B = b.B[:0]
	Page{Lo: 3, Hi: 3, Count: 3, Set: true}.Append(&b, key)
	if string(b.B) != "<set xmlns='"+NS+"'><count>3</count></set>" {
		t.Fatalf("empty page: %s", b.B)
	}
	b.B = b.B[:0]
	Page{Lo: 0, Hi: 3, Count: 3}.Append(&b, key)
	if len(b.B) != 0 {
		t.Fatalf("unasked, uncut: %s", b.B)
	}
}

// FuzzParse: any <set/> either parses or is a bad request; nothing panics, and what parses
// cuts a list inside its bounds.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "<set xmlns='" + NS + "'><max>3</max><after>k1</after></set>",
		"<set xmlns='" + NS + "'><before/></set>", "<set xmlns='" + NS + "'><index>9</index></set>"} {
		f.Add(s)
	}
	keys := []string{"a", "b", "c", "d"}
	f.Fuzz(func(t *testing.T, set string) {
		q, err := xmlstream.ParseElement([]byte("<query xmlns='q'>"+set+"</query>"), "")
		if err != nil {
			return
		}
		r, e := Parse(q)
		if e != nil {
			return
		}
		p := Cut(len(keys), func(i int) string { return keys[i] }, r, 2, 3)
		if p.Lo < 0 || p.Hi > len(keys) || p.Lo > p.Hi || p.Hi-p.Lo > 3 {
			t.Fatalf("%+v cut %+v", r, p)
		}
		var b xmlstream.Builder
		b.Start("iq")
		p.Append(&b, func(i int) string { return keys[i] })
		b.End()
		if _, ok := xmltest.Stanza(b.B); !ok {
			t.Fatalf("answer does not parse: %s", b.B)
		}
	})
}

// TestCutOrdered pages ten items i0..i9 kept in publication order, where keys do not sort:
// after and before place the key by position, and a key no longer there is item-not-found.
func TestCutOrdered(t *testing.T) {
	keys := []string{"z", "b", "q", "a", "m", "c", "y", "d", "x", "e"}
	find := func(k string) int {
		for i, v := range keys {
			if v == k {
				return i
			}
		}
		return -1
	}
	for _, tc := range []struct {
		name     string
		r        Request
		lo, hi   int
		set      bool
		notFound bool
	}{
		{"all, under the default", None, 0, 10, false, false},
		{"max", Request{Max: 3, Index: -1}, 0, 3, true, false},
		{"after", Request{Max: 3, After: "q", HasAfter: true, Index: -1}, 3, 6, true, false},
		{"after the last", Request{Max: 3, After: "e", HasAfter: true, Index: -1}, 10, 10, true, false},
		{"after a key gone", Request{Max: 3, After: "k", HasAfter: true, Index: -1}, 0, 0, false, true},
		{"last page", Request{Max: 4, HasBefore: true, Index: -1}, 6, 10, true, false},
		{"before", Request{Max: 3, Before: "y", HasBefore: true, Index: -1}, 3, 6, true, false},
		{"before near the start", Request{Max: 3, Before: "b", HasBefore: true, Index: -1}, 0, 1, true, false},
		{"before a key gone", Request{Max: 3, Before: "k", HasBefore: true, Index: -1}, 0, 0, false, true},
		{"index", Request{Max: 2, Index: 8}, 8, 10, true, false},
		{"max above the limit", Request{Max: 100, Index: -1}, 0, 5, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, e := CutOrdered(len(keys), find, tc.r, 20, 50)
			if tc.name == "max above the limit" {
				p, e = CutOrdered(len(keys), find, tc.r, 5, 8)
			}
			if (e != nil) != tc.notFound {
				t.Fatalf("error %v, want not found %v", e, tc.notFound)
			}
			if e != nil {
				if e.Condition != stanza.ItemNotFound {
					t.Fatalf("condition %s", e.Condition)
				}
				return
			}
			if p.Lo != tc.lo || p.Hi != tc.hi || p.Set != tc.set || p.Count != len(keys) {
				t.Fatalf("page %+v, want [%d:%d] set=%v", p, tc.lo, tc.hi, tc.set)
			}
		})
	}
}
