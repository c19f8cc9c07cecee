package xmlstream

import (
	"errors"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/xmlstream/ns"
)

func mustParse(t *testing.T, raw, defaultNS string) Element {
	t.Helper()
	e, err := ParseElement([]byte(raw), defaultNS)
	if err != nil {
		t.Fatalf("ParseElement(%q): %v", raw, err)
	}
	return e
}

func TestParseElement(t *testing.T) {
	tests := []struct {
		raw, defNS string
		ns, local  string
		err        error
		rawOut     string
	}{
		{raw: `<message/>`, defNS: ns.Client, ns: ns.Client, local: "message", rawOut: `<message/>`},
		{raw: " \n<iq xmlns='jabber:server'><q/></iq> trailing", defNS: ns.Client, ns: ns.Server, local: "iq", rawOut: `<iq xmlns='jabber:server'><q/></iq>`},
		{raw: `<p:x xmlns:p='urn:p'/>`, ns: "urn:p", local: "x", rawOut: `<p:x xmlns:p='urn:p'/>`},
		{raw: `<xml:x/>`, ns: ns.XML, local: "x", rawOut: `<xml:x/>`},
		{raw: `<x xmlns=''/>`, defNS: ns.Client, ns: "", local: "x", rawOut: `<x xmlns=''/>`},
		{raw: `<x>a<![CDATA[</x>]]></x>`, ns: "", local: "x", rawOut: `<x>a<![CDATA[</x>]]></x>`},
		{raw: `<x a='>' b="'/>"/>`, ns: "", local: "x", rawOut: `<x a='>' b="'/>"/>`},
		{raw: `<p:x/>`, err: ErrUnbound},
		{raw: `<x><y></x>`, err: ErrMalformed},
		{raw: `<x>`, err: ErrMalformed},
		{raw: `text`, err: ErrMalformed},
		{raw: ``, err: ErrMalformed},
		{raw: `</x>`, err: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			e, err := ParseElement([]byte(tc.raw), tc.defNS)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if string(e.NS()) != tc.ns || string(e.Name()) != tc.local || string(e.Raw()) != tc.rawOut {
				t.Errorf("got {%s}%s %q", e.NS(), e.Name(), e.Raw())
			}
		})
	}
}

func TestElementAttrs(t *testing.T) {
	e := mustParse(t, "<x xmlns='urn:x' xmlns:p='urn:p' a='1&amp;2' b=\"say &quot;hi&quot;\" p:a='3' xml:lang='de' ws='a\tb\r\nc&#9;d&#xD;' />", "")
	for _, tc := range []struct {
		space, local, want string
		ok                 bool
	}{
		{"", "a", "1&amp;2", true},
		{"", "b", "say &quot;hi&quot;", true},
		{"", "c", "", false},
		{"urn:p", "a", "3", true},
		{"urn:q", "a", "", false},
		{ns.XML, "lang", "de", true},
		{"", "lang", "", false},
	} {
		got, ok := e.AttrNS(tc.space, tc.local)
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("AttrNS(%q, %q) = %q, %v", tc.space, tc.local, got, ok)
		}
	}
	for _, tc := range []struct{ local, want string }{
		{"a", "1&2"}, {"b", `say "hi"`}, {"ws", "a b c\td\r"},
	} {
		got, ok := e.AppendAttr([]byte("x"), tc.local)
		if !ok || string(got) != "x"+tc.want {
			t.Errorf("AppendAttr(%q) = %q, %v", tc.local, got, ok)
		}
	}
	if got, ok := e.AppendAttr([]byte("keep"), "missing"); ok || string(got) != "keep" {
		t.Errorf("AppendAttr(missing) = %q, %v", got, ok)
	}
}

func TestElementChildren(t *testing.T) {
	raw := `<iq xmlns:r='jabber:iq:roster' type='result'>` +
		`<r:query ver='1'><r:item jid='a@b'><r:group>G</r:group></r:item><item xmlns='urn:other' xmlns:r='urn:r2'><r:x/></item></r:query>` +
		`text<![CDATA[<notachild/>]]>` +
		`<ping xmlns='urn:xmpp:ping'/>` +
		`<z/>` +
		`</iq>`
	e := mustParse(t, raw, ns.Client)
	var got []string
	it := e.Children()
	for {
		c, ok := it.Next()
		if !ok {
			break
		}
		got = append(got, "{"+string(c.NS())+"}"+string(c.Name()))
	}
	if want := "{jabber:iq:roster}query {urn:xmpp:ping}ping {jabber:client}z"; strings.Join(got, " ") != want {
		t.Errorf("children = %v, want %s", got, want)
	}
	if _, ok := it.Next(); ok {
		t.Error("Next after the end returned an element")
	}
	q, ok := e.Child(ns.Roster, "query")
	if !ok {
		t.Fatal("Child(roster, query) not found")
	}
	if _, ok := e.Child("urn:wrong", "query"); ok {
		t.Error("Child with the wrong namespace found")
	}
	if z, ok := e.Child("", "z"); !ok || string(z.Raw()) != "<z/>" {
		t.Errorf("Child(any, z) = %q, %v", z.Raw(), ok)
	}
	// Grandchildren resolve prefixes declared on ancestors, and redeclarations win.
	item, _ := q.Child(ns.Roster, "item")
	group, ok := item.Child(ns.Roster, "group")
	if !ok || string(group.AppendText(nil)) != "G" {
		t.Errorf("group = %q, %v", group.Raw(), ok)
	}
	other, ok := q.Child("urn:other", "item")
	if !ok {
		t.Fatal("item in urn:other not found")
	}
	if x, ok := other.Child("urn:r2", "x"); !ok {
		t.Errorf("redeclared prefix: %q, %v", x.Raw(), ok)
	}
	if v, ok := item.Attr("jid"); !ok || string(v) != "a@b" {
		t.Errorf("item jid = %q", v)
	}
}

// TestElementChildrenAlternatingPrefixes: children whose prefixes alternate among several
// declared on ancestors (the memo of one prefix misses at each) resolve each to its
// innermost declaration, a sibling's own declaration staying its own.
func TestElementChildrenAlternatingPrefixes(t *testing.T) {
	raw := `<iq xmlns:p='urn:p0' xmlns:q='urn:q0' type='set'><a xmlns:p='urn:p1'><b>` +
		`<p:x/><q:x/><p:x/><q:x xmlns:q='urn:own'/><q:x/><xml:x/><p:x/>` +
		`</b></a></iq>`
	e := mustParse(t, raw, ns.Client)
	a, _ := e.Child("", "a")
	b, _ := a.Child("", "b")
	var got []string
	for it := b.Children(); ; {
		c, ok := it.Next()
		if !ok {
			break
		}
		got = append(got, string(c.NS()))
	}
	if want := "urn:p1 urn:q0 urn:p1 urn:own urn:q0 " + ns.XML + " urn:p1"; strings.Join(got, " ") != want {
		t.Fatalf("namespaces %v, want %s", got, want)
	}
}

func TestElementText(t *testing.T) {
	tests := []struct {
		raw, text, inner string
		empty            bool
	}{
		{`<a/>`, "", "", true},
		{`<a></a>`, "", "", true},
		{`<a >x</a >`, "x", "x", false},
		{`<a>1 &lt; 2 &amp;&amp; &#x263A;&#65;</a>`, "1 < 2 && ☺A", "1 &lt; 2 &amp;&amp; &#x263A;&#65;", false},
		{"<a>l1\r\nl2\rl3\n&#13;</a>", "l1\nl2\nl3\n\r", "l1\r\nl2\rl3\n&#13;", false},
		{`<a>x<b>not mine</b>y<c/>z</a>`, "xyz", "x<b>not mine</b>y<c/>z", false},
		{`<a><![CDATA[<b>&amp;]]>!</a>`, "<b>&amp;!", "<![CDATA[<b>&amp;]]>!", false},
	}
	for _, tc := range tests {
		e := mustParse(t, tc.raw, "")
		if got := string(e.AppendText([]byte(">"))); got != ">"+tc.text {
			t.Errorf("%s: AppendText = %q, want %q", tc.raw, got, tc.text)
		}
		if got := string(e.Inner()); got != tc.inner {
			t.Errorf("%s: Inner = %q, want %q", tc.raw, got, tc.inner)
		}
		if e.IsEmpty() != tc.empty {
			t.Errorf("%s: IsEmpty = %v", tc.raw, e.IsEmpty())
		}
	}
	if mustParse(t, `<a/>`, "").Inner() != nil {
		t.Error("Inner of <a/> is not nil")
	}
}

func TestStanzaView(t *testing.T) {
	sc := NewScanner()
	var st State
	st.Reset(KindClient, nil)
	in := []byte(hdrClient + `<iq type='get' id='v1' to='example.com' from='a@example.com/r' foo='b&amp;r'><query xmlns='jabber:iq:version'/></iq>` +
		`<message><body>x</body><thread>t</thread></message><presence/><r xmlns='urn:xmpp:sm:3'/><message xmlns='urn:not-a-stanza'/>`)
	var kinds []StanzaKind
	for len(in) > 0 {
		ev, n, err := sc.Next(&st, in)
		if err != nil {
			t.Fatal(err)
		}
		in = in[n:]
		if ev.Kind != EventElement {
			continue
		}
		s := ev.Stanza
		kinds = append(kinds, s.Kind())
		switch string(s.Name) {
		case "iq":
			if string(s.Type) != "get" || string(s.ID) != "v1" || string(s.To) != "example.com" || string(s.From) != "a@example.com/r" {
				t.Errorf("iq fields: %s %s %s %s", s.Type, s.ID, s.To, s.From)
			}
			if v, ok := s.Attr("foo"); !ok || string(v) != "b&amp;r" {
				t.Errorf("Attr(foo) = %q", v)
			}
			q, ok := s.FirstChild()
			if !ok || string(q.NS()) != ns.Version || string(q.Name()) != "query" {
				t.Errorf("FirstChild = {%s}%s", q.NS(), q.Name())
			}
			if s.NumChildren() != 1 {
				t.Errorf("NumChildren = %d", s.NumChildren())
			}
		case "presence":
			if _, ok := s.FirstChild(); ok || s.NumChildren() != 0 || !s.Elem().IsEmpty() {
				t.Error("empty presence has children")
			}
			if s.To != nil || s.Type != nil {
				t.Error("absent attributes are not nil")
			}
		case "message":
			if s.NumChildren() == 2 && string(s.Child(1).AppendText(nil)) != "t" {
				t.Errorf("Child(1) = %q", s.Child(1).Raw())
			}
		}
	}
	want := []StanzaKind{KindIQ, KindMessage, KindPresence, KindOther, KindOther}
	if len(kinds) != len(want) {
		t.Fatalf("kinds = %v", kinds)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Errorf("kind %d = %v, want %v", i, kinds[i], want[i])
		}
	}
}

// TestStandalone: a child taken out of its stanza keeps its meaning: the prefixes and the
// default namespace it had from its ancestors are declared on it, the innermost binding of
// each, and its own declarations stay as they are.
func TestStandalone(t *testing.T) {
	tests := []struct{ raw, want string }{
		// Nothing from above: unchanged.
		{`<iq><vCard xmlns='vcard-temp'><FN>x</FN></vCard></iq>`, `<vCard xmlns='vcard-temp'><FN>x</FN></vCard>`},
		// The prefix declared on <iq> comes along.
		{`<iq xmlns:v='vcard-temp'><v:vCard><v:FN>x</v:FN></v:vCard></iq>`, `<v:vCard xmlns='jabber:client' xmlns:v='vcard-temp'><v:FN>x</v:FN></v:vCard>`},
		// Used only inside the child, declared two levels up, rebound in between.
		{`<iq xmlns:p='urn:a'><pubsub xmlns='urn:ps' xmlns:p="urn:b&apos;"><item><e xmlns='urn:e'><p:x/></e></item></pubsub></iq>`, `<e xmlns:p='urn:b&apos;' xmlns='urn:e'><p:x/></e>`},
		// Its own declaration of a prefix wins.
		{`<iq xmlns:p='urn:a'><e xmlns='urn:e' xmlns:p='urn:own'><p:x/></e></iq>`, `<e xmlns='urn:e' xmlns:p='urn:own'><p:x/></e>`},
		// A default namespace inherited is declared.
		{`<iq><pubsub xmlns='urn:ps'><item><entry/></item></pubsub></iq>`, `<entry xmlns='urn:ps'/>`},
		// Declarations of closed siblings are not in scope.
		{`<iq><a xmlns:p='urn:a'/><b xmlns:q='urn:q'></b><e xmlns='urn:e'/></iq>`, `<e xmlns='urn:e'/>`},
	}
	for _, tc := range tests {
		root, err := ParseElement([]byte(tc.raw), "jabber:client")
		if err != nil {
			t.Fatal(err)
		}
		e := root
		for { // the last element child of each level, down to the innermost
			var last Element
			found := false
			for it := e.Children(); ; {
				c, ok := it.Next()
				if !ok {
					break
				}
				last, found = c, true
			}
			if !found || string(e.Name()) == "vCard" || string(e.Name()) == "e" || string(e.Name()) == "entry" {
				break
			}
			e = last
		}
		got := string(e.Standalone([]byte("!")))
		if got != "!"+tc.want {
			t.Errorf("Standalone in %s:\n got %s\nwant !%s", tc.raw, got, tc.want)
		}
		mustScan(t, tc.want)
		alone, err := ParseElement([]byte(tc.want), "")
		if err != nil || string(alone.NS()) != string(e.NS()) {
			t.Errorf("Standalone in %s: namespace %q, was %q (%v)", tc.raw, alone.NS(), e.NS(), err)
		}
	}
}

// BenchmarkChildrenFarPrefixes: children alternating two prefixes declared above a parent
// whose start tag is long (whitespace); each child costs a look through the scope, not a
// walk of the tag.
func BenchmarkChildrenFarPrefixes(b *testing.B) {
	raw := `<iq xmlns:p='urn:p' xmlns:q='urn:q' type='set'><a` + strings.Repeat(" ", 64<<10) + `>` +
		strings.Repeat(`<p:x/><q:x/>`, 2000) + `</a></iq>`
	e, err := ParseElement([]byte(raw), ns.Client)
	if err != nil {
		b.Fatal(err)
	}
	a, _ := e.Child("", "a")
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for it := a.Children(); ; n++ {
			if _, ok := it.Next(); !ok {
				break
			}
		}
		if n != 4000 {
			b.Fatal(n)
		}
	}
}
