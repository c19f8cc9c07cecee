package xmlstream

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Stream headers used by the tests.
const (
	hdrClient = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>`
	hdrServer = `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' to='example.com' from='example.net' version='1.0'>`
	hdrComp   = `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='comp.example.com'>`
)

// feed runs a whole stream through a fresh Scanner and State, split into chunks, and returns a
// description of every event (made before the next call, as the lifetimes require) and the
// final error. It also checks the Next contract: EventNone only when everything was consumed,
// no buffer held between complete elements, sticky errors.
func feed(t testing.TB, kind StreamKind, lim *Limits, chunks [][]byte) ([]string, error) {
	t.Helper()
	sc := NewScanner()
	var st State
	st.Reset(kind, lim)
	defer st.Release()
	var evs []string
	for _, chunk := range chunks {
		in := chunk
		for guard := 0; ; guard++ {
			if guard > len(chunk)+4 {
				t.Fatalf("Next loop does not progress on %q", chunk)
			}
			ev, n, err := sc.Next(&st, in)
			if err != nil {
				if n != 0 {
					t.Fatalf("error %v with n = %d", err, n)
				}
				if !errors.Is(st.Err(), err) {
					t.Fatalf("Err() = %v, Next returned %v", st.Err(), err)
				}
				if _, n2, err2 := sc.Next(&st, []byte("<a/>")); err2 != err || n2 != 0 {
					t.Fatalf("error not sticky: %v, %d", err2, n2)
				}
				if st.buf != nil {
					t.Fatalf("buffer kept after error")
				}
				return evs, err
			}
			if n < 0 || n > len(in) {
				t.Fatalf("n = %d of %d", n, len(in))
			}
			if st.buf != nil && len(st.buf.B) > int(max(st.lim.stanza, st.lim.header)) {
				t.Fatalf("buffered %d bytes, limits allow %d", len(st.buf.B), max(st.lim.stanza, st.lim.header))
			}
			if ev.Kind == EventElement {
				checkParse(t, st.hdr, ev.Stanza)
			}
			in = in[n:]
			if ev.Kind == EventNone {
				if len(in) != 0 {
					t.Fatalf("EventNone with %d bytes left", len(in))
				}
				if st.buf != nil && st.Pending() == 0 {
					t.Fatalf("buffer held with nothing pending")
				}
				break
			}
			evs = append(evs, describe(ev))
		}
	}
	return evs, nil
}

// describe renders an event with everything the index and the views expose.
func describe(ev Event) string {
	var b strings.Builder
	switch ev.Kind {
	case EventStreamStart:
		b.WriteString("start ")
	case EventElement:
		b.WriteString("elem ")
	case EventStreamEnd:
		return "end"
	default:
		return fmt.Sprintf("kind %d", ev.Kind)
	}
	s := ev.Stanza
	fmt.Fprintf(&b, "{%s}%s", s.NS, s.Name)
	for _, f := range []struct {
		n string
		v []byte
	}{{"to", s.To}, {"from", s.From}, {"type", s.Type}, {"id", s.ID}, {"lang", s.Lang}} {
		if f.v != nil {
			fmt.Fprintf(&b, " %s=%s", f.n, f.v)
		}
	}
	if ev.Kind == EventStreamStart {
		if v, ok := s.Attr("version"); ok {
			fmt.Fprintf(&b, " version=%s", v)
		}
	}
	fmt.Fprintf(&b, " kind=%d raw=%d:%08x", s.Kind(), len(s.Raw), crc32.ChecksumIEEE(s.Raw))
	for i := 0; i < s.NumChildren(); i++ {
		dumpTree(&b, s.Child(i), 1)
	}
	if ev.Kind == EventElement {
		if text := s.Elem().AppendText(nil); len(text) > 0 {
			fmt.Fprintf(&b, "\n  text=%q", text)
		}
	}
	return b.String()
}

// dumpTree writes an element and its descendants, found through the lazy Element views.
func dumpTree(b *strings.Builder, e Element, depth int) {
	text := []rune(string(e.AppendText(nil)))
	if len(text) > 40 {
		text = append(text[:40], '.', '.', '.')
	}
	fmt.Fprintf(b, "\n%s{%s}%s", strings.Repeat("  ", depth), e.NS(), e.Name())
	if len(text) > 0 {
		fmt.Fprintf(b, " text=%q", string(text))
	}
	it := e.Children()
	for {
		c, ok := it.Next()
		if !ok {
			return
		}
		dumpTree(b, c, depth+1)
	}
}

// Split strategies.
func whole(in []byte) [][]byte { return [][]byte{in} }

func splitAt(in []byte, i int) [][]byte { return [][]byte{in[:i:i], in[i:]} }

func bytewise(in []byte) [][]byte {
	out := make([][]byte, len(in))
	for i := range in {
		out[i] = in[i : i+1 : i+1]
	}
	return out
}

func randomSplit(in []byte, rng *rand.Rand) [][]byte {
	var out [][]byte
	for len(in) > 0 {
		n := 1 + rng.Intn(min(len(in), 64))
		if rng.Intn(8) == 0 {
			n = min(len(in), 1+rng.Intn(4096))
		}
		out = append(out, in[:n:n])
		in = in[n:]
	}
	return out
}

// cond returns the stream error condition of err, or "" for nil.
func cond(err error) stanza.StreamCondition {
	if err == nil {
		return ""
	}
	var se *stanza.StreamError
	if !errors.As(err, &se) {
		return stanza.StreamCondition("not a StreamError: " + err.Error())
	}
	return se.Condition
}

func newRand() *rand.Rand { return rand.New(rand.NewSource(42)) }

// streamBody splits a corpus into its prolog and stream header, and the rest without the
// stream end tag, which can be fed repeatedly into one stream.
func streamBody(t testing.TB, c corpus) (header, body []byte) {
	i := bytes.Index(c.data, []byte("<stream:stream"))
	j := bytes.IndexByte(c.data[i:], '>')
	body = c.data[i+j+1:]
	if k := bytes.LastIndex(body, []byte("</stream:stream>")); k >= 0 {
		body = body[:k]
	}
	return c.data[:i+j+1], body
}

// checkParse cross-checks a stanza with ParseElement over its Raw bytes.
func checkParse(t testing.TB, h *header, s *Stanza) {
	t.Helper()
	e, err := ParseElement(s.Raw, h.defNS)
	if errors.Is(err, ErrUnbound) && bytes.IndexByte(s.Raw[:nameEnd(s.Raw)], ':') >= 0 {
		return // a prefix bound on the stream header
	}
	if err != nil {
		t.Fatalf("ParseElement(%q): %v", s.Raw, err)
	}
	if string(e.Raw()) != string(s.Raw) || string(e.Name()) != string(s.Name) {
		t.Fatalf("ParseElement(%q) = %q {%s}%s", s.Raw, e.Raw(), e.NS(), e.Name())
	}
	if bytes.IndexByte(e.qname(), ':') < 0 && string(e.NS()) != string(s.NS) {
		t.Fatalf("ParseElement(%q): namespace %q, Stanza.NS %q", s.Raw, e.NS(), s.NS)
	}
}
