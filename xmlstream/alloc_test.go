//go:build !race

package xmlstream

import (
	"testing"

	"github.com/vireo-im/vireo/xmlstream/ns"
)

// The race detector allocates on its own, so these run only without it.

// TestAllocsNext requires zero allocations per stanza in the steady state: whole stanzas in one
// read, stanzas split across reads (pooled buffer), and reading the index and views.
func TestAllocsNext(t *testing.T) {
	for _, c := range loadCorpora(t) {
		t.Run(c.name, func(t *testing.T) {
			sc := NewScanner()
			var st State
			header, body := streamBody(t, c)
			start := func() {
				st.Reset(c.kind, nil)
				if ev, n, err := sc.Next(&st, header); err != nil || ev.Kind != EventStreamStart || n != len(header) {
					t.Fatal(ev.Kind, n, err)
				}
			}
			start()
			loop := func(chunks [][]byte) {
				for _, in := range chunks {
					for len(in) > 0 {
						ev, n, err := sc.Next(&st, in)
						if err != nil {
							t.Fatal(err)
						}
						in = in[n:]
						if ev.Kind == EventElement {
							s := ev.Stanza
							_ = s.Kind()
							if e, ok := s.FirstChild(); ok {
								_ = e.NS()
								_ = e.Name()
								_, _ = e.Attr("xmlns")
								it := e.Children()
								for {
									if _, ok := it.Next(); !ok {
										break
									}
								}
							}
							_, _ = s.Attr("to")
						}
					}
				}
			}
			whole := [][]byte{body}
			loop(whole) // warm the scratch and the pool
			if a := testing.AllocsPerRun(50, func() { loop(whole) }); a != 0 {
				t.Errorf("whole reads: %v allocs per run", a)
			}
			split := randomSplit(body, newRand())
			loop(split)
			if a := testing.AllocsPerRun(20, func() { loop(split) }); a != 0 {
				t.Errorf("split reads: %v allocs per run", a)
			}
			st.Release()
		})
	}
}

func TestAllocsWriter(t *testing.T) {
	raw := []byte(`<message type='chat' id='a1'><body>hi &amp; bye</body></message>`)
	dst := make([]byte, 0, 1024)
	var b Builder
	text := []byte("a < b & c")
	if a := testing.AllocsPerRun(100, func() {
		d := SetAttrs(dst[:0], raw, AttrSet{Name: "from", Value: []byte("juliet@example.com/balcony")}, AttrSet{Name: "to", Value: []byte("romeo@example.net")})
		d = AppendChild(d, raw, []byte("<x/>"))
		b.Reset(d)
		b.Start("iq").Attr("type", "result").Attr("id", "x'1").Start("query").Attr("xmlns", ns.Roster).TextBytes(text).End().End()
		el, err := ParseElement(b.B, ns.Client)
		if err != nil {
			t.Fatal(err)
		}
		_ = el.AppendText(dst[:0])
		_, _ = el.AppendAttr(dst[:0], "id")
		_ = AppendUnescaped(dst[:0], raw)
	}); a != 0 {
		t.Errorf("writer: %v allocs per run", a)
	}
}
