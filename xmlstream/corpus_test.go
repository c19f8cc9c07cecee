package xmlstream

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/corpus/*.golden from the current output")

type corpus struct {
	name string
	kind StreamKind
	data []byte
}

// rosterCorpus is a roster result with 500 items, as a server sends it after login (and as an
// s2s or component peer could send any large IQ). Names mix ASCII, escapes and UTF-8.
func rosterCorpus() []byte {
	var b bytes.Buffer
	b.WriteString(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>`)
	b.WriteString("<iq to='juliet@example.com/balcony' type='result' id='roster_1'><query xmlns='jabber:iq:roster' ver='ver7'>")
	names := []string{"Romeo", "Mercutio", "Benvolio", "Tybalt &amp; Co", "Nurse", "Friar Laurence", "Paris", "Ñandú", "李白", "Ζεύς"}
	groups := []string{"Friends", "Family", "Montagues", "Capulets", "Work &lt;old&gt;"}
	subs := []string{"both", "to", "from", "none"}
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&b, "<item jid='contact%03d@example.net' name='%s %d' subscription='%s'", i, names[i%len(names)], i, subs[i%len(subs)])
		if i%7 == 0 {
			b.WriteString(" ask='subscribe'")
		}
		if i%11 == 0 {
			b.WriteString(" approved='true'")
		}
		b.WriteString(">")
		for g := 0; g < 1+i%3; g++ {
			fmt.Fprintf(&b, "<group>%s</group>", groups[(i+g)%len(groups)])
		}
		b.WriteString("</item>")
	}
	b.WriteString("</query></iq>\n</stream:stream>")
	return b.Bytes()
}

func loadCorpora(t testing.TB) []corpus {
	t.Helper()
	files, err := filepath.Glob("testdata/corpus/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	var cs []corpus
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		kind := KindClient
		if strings.HasPrefix(name, "s2s_") {
			kind = KindServer
		}
		cs = append(cs, corpus{name, kind, data})
	}
	return append(cs, corpus{"roster500", KindClient, rosterCorpus()})
}

// TestCorpusGolden compares the events of each corpus with testdata/corpus/NAME.golden
// (regenerate with go test -run TestCorpusGolden -rewrite).
func TestCorpusGolden(t *testing.T) {
	for _, c := range loadCorpora(t) {
		t.Run(c.name, func(t *testing.T) {
			evs, err := feed(t, c.kind, nil, whole(c.data))
			if err != nil {
				t.Fatalf("corpus rejected: %v", err)
			}
			got := strings.Join(evs, "\n") + "\n"
			path := filepath.Join("testdata", "corpus", c.name+".golden")
			if *rewrite {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -rewrite)", err)
			}
			if got != string(want) {
				t.Errorf("events differ from %s:\n%s", path, diffLines(string(want), got))
			}
		})
	}
}

// TestCorpusSplit feeds every corpus whole, at every split point (a stride for the large
// roster), byte by byte and in random chunks, and requires identical events.
func TestCorpusSplit(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range loadCorpora(t) {
		t.Run(c.name, func(t *testing.T) {
			want, err := feed(t, c.kind, nil, whole(c.data))
			if err != nil {
				t.Fatal(err)
			}
			check := func(how string, chunks [][]byte) {
				t.Helper()
				got, err := feed(t, c.kind, nil, chunks)
				if err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("%s: events differ:\n%s", how, diffLines(strings.Join(want, "\n"), strings.Join(got, "\n")))
				}
			}
			check("byte by byte", bytewise(c.data))
			step := 1
			if len(c.data) > 8192 {
				step = 61
			}
			for i := 1; i < len(c.data); i += step {
				check(fmt.Sprintf("split at %d", i), splitAt(c.data, i))
			}
			for i := 0; i < 20; i++ {
				check("random", randomSplit(c.data, rng))
			}
		})
	}
}

// TestCorpusAgainstEncodingXML cross-checks the top-level elements with encoding/xml.
func TestCorpusAgainstEncodingXML(t *testing.T) {
	for _, c := range loadCorpora(t) {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			d := xml.NewDecoder(bytes.NewReader(c.data))
			depth := 0
			for {
				tok, err := d.Token()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					// The corpora that stop inside the stream end with an unexpected EOF.
					break
				}
				switch tok := tok.(type) {
				case xml.StartElement:
					if depth == 1 {
						want = append(want, "{"+tok.Name.Space+"}"+tok.Name.Local)
					}
					depth++
				case xml.EndElement:
					depth--
				}
			}
			var got []string
			sc := NewScanner()
			var st State
			st.Reset(c.kind, nil)
			in := c.data
			for len(in) > 0 {
				ev, n, err := sc.Next(&st, in)
				if err != nil {
					t.Fatal(err)
				}
				in = in[n:]
				if ev.Kind == EventElement {
					got = append(got, "{"+string(ev.Stanza.NS)+"}"+string(ev.Stanza.Name))
				}
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("top-level elements:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\nwant %s\n got %s", i+1, a, b)
		}
	}
	return "(equal)"
}
