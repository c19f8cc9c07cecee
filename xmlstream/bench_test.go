package xmlstream

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	mxml "mellium.im/xmlstream"

	"github.com/vireo-im/vireo/xmlstream/ns"
)

// BenchmarkScan compares Vireo's tokenizer with encoding/xml's Decoder.Token loop and with
// mellium.im/xmlstream's element iterator (encoding/xml underneath) over the same corpora.
// Every iteration parses the whole corpus, stream header included.
func BenchmarkScan(b *testing.B) {
	for _, c := range loadCorpora(b) {
		b.Run("corpus="+c.name+"/impl=vireo", func(b *testing.B) {
			sc := NewScanner()
			var st State
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				st.Reset(c.kind, nil)
				scanAll(b, sc, &st, c.data)
			}
			st.Release()
		})
		b.Run("corpus="+c.name+"/impl=vireo-chunk512", func(b *testing.B) {
			sc := NewScanner()
			var st State
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				st.Reset(c.kind, nil)
				for in := c.data; len(in) > 0; {
					n := min(len(in), 512)
					scanAll(b, sc, &st, in[:n])
					in = in[n:]
				}
			}
			st.Release()
		})
		b.Run("corpus="+c.name+"/impl=encoding-xml", func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			r := bytes.NewReader(c.data)
			for b.Loop() {
				r.Reset(c.data)
				d := xml.NewDecoder(r)
				for {
					if _, err := d.Token(); err != nil {
						break
					}
				}
			}
		})
		b.Run("corpus="+c.name+"/impl=mellium", func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			r := bytes.NewReader(c.data)
			for b.Loop() {
				r.Reset(c.data)
				d := xml.NewDecoder(r)
				for { // to the stream header, as a mellium session does
					tok, err := d.Token()
					if err != nil {
						b.Fatal(err)
					}
					if _, ok := tok.(xml.StartElement); ok {
						break
					}
				}
				iter := mxml.NewIter(d)
				for iter.Next() {
					if start, r := iter.Current(); start != nil {
						if _, err := mxml.ReadAll(r); err != nil {
							break
						}
					}
				}
			}
		})
	}
}

// BenchmarkScanSteady is the production shape: one long-lived stream, stanzas arriving whole.
func BenchmarkScanSteady(b *testing.B) {
	for _, c := range loadCorpora(b) {
		b.Run("corpus="+c.name, func(b *testing.B) {
			header, body := streamBody(b, c)
			sc := NewScanner()
			var st State
			st.Reset(c.kind, nil)
			scanAll(b, sc, &st, header)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				scanAll(b, sc, &st, body)
			}
			st.Release()
		})
	}
}

// BenchmarkScanSmall measures the fixed cost per stanza: 100 small stanzas per read.
func BenchmarkScanSmall(b *testing.B) {
	for _, s := range []struct{ name, xml string }{
		{"sm-r", `<r xmlns='urn:xmpp:sm:3'/>`},
		{"presence", `<presence/>`},
		{"message", `<message to='romeo@example.net' type='chat' id='x1'><body>hi</body></message>`},
	} {
		body := []byte(strings.Repeat(s.xml, 100))
		b.Run("stanza="+s.name, func(b *testing.B) {
			sc := NewScanner()
			var st State
			st.Reset(KindClient, nil)
			scanAll(b, sc, &st, []byte(hdrClient))
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				scanAll(b, sc, &st, body)
			}
			st.Release()
		})
	}
}

func scanAll(b *testing.B, sc *Scanner, st *State, in []byte) {
	for len(in) > 0 {
		ev, n, err := sc.Next(st, in)
		if err != nil {
			b.Fatal(err)
		}
		in = in[n:]
		if ev.Kind == EventElement {
			_ = ev.Stanza.Kind()
		}
	}
}

// BenchmarkStanzaViews reads what routing and a typical handler read from a stanza.
func BenchmarkStanzaViews(b *testing.B) {
	raw := []byte(hdrClient + `<iq type='get' id='disco1' to='example.com'><query xmlns='http://jabber.org/protocol/disco#info' node='http://example.com#abc'/></iq>`)
	sc := NewScanner()
	var st State
	st.Reset(KindClient, nil)
	ev, n, _ := sc.Next(&st, raw)
	_ = ev
	stz := raw[n:]
	b.SetBytes(int64(len(stz)))
	b.ReportAllocs()
	var dst []byte
	for b.Loop() {
		ev, _, err := sc.Next(&st, stz)
		if err != nil {
			b.Fatal(err)
		}
		s := ev.Stanza
		if s.Kind() != KindIQ || string(s.Type) != "get" {
			b.Fatal("kind")
		}
		q, ok := s.FirstChild()
		if !ok || string(q.NS()) != ns.DiscoInfo {
			b.Fatal("payload")
		}
		dst, _ = q.AppendAttr(dst[:0], "node")
	}
}

func BenchmarkWriter(b *testing.B) {
	raw := []byte(`<message type='chat' id='5f0b9c6e'><body>Wherefore art thou, Romeo?</body><request xmlns='urn:xmpp:receipts'/></message>`)
	b.Run("op=SetAttrs", func(b *testing.B) {
		dst := make([]byte, 0, 512)
		from := []byte("juliet@example.com/balcony")
		to := []byte("romeo@example.net")
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			dst = SetAttrs(dst[:0], raw, AttrSet{Name: "from", Value: from}, AttrSet{Name: "to", Value: to})
		}
	})
	b.Run("op=Builder", func(b *testing.B) {
		var w Builder
		w.B = make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			w.Reset(w.B[:0])
			w.Start("message").Attr("to", "romeo@example.net").Attr("type", "chat").Attr("id", "5f0b9c6e").
				Start("body").Text("Wherefore art thou, Romeo? <3 & more").End().
				Start("request").Attr("xmlns", ns.Receipts).End().End()
		}
		b.SetBytes(int64(len(w.B)))
	})
}
