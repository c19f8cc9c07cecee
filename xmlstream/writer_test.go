package xmlstream

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/xmlstream/ns"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, text, attr string }{
		{"plain", "plain", "plain"},
		{`a<b>&'"c`, `a&lt;b&gt;&amp;'"c`, `a&lt;b&gt;&amp;&apos;&quot;c`},
		{"t\tn\nr\r", "t\tn\nr&#xD;", "t&#x9;n&#xA;r&#xD;"},
		{"nul\x00 esc\x1b", "nul\uFFFD esc\uFFFD", "nul\uFFFD esc\uFFFD"},
		{"bad\xffutf8\xe2\x82", "bad\uFFFDutf8\uFFFD\uFFFD", "bad\uFFFDutf8\uFFFD\uFFFD"},
		{"nonchar\uFFFE\uFFFF ok\uFFFD ☃ 😀", "nonchar\uFFFD\uFFFD ok\uFFFD ☃ 😀", "nonchar\uFFFD\uFFFD ok\uFFFD ☃ 😀"},
		{"", "", ""},
	}
	for _, tc := range tests {
		if got := string(AppendEscapedText([]byte("<"), []byte(tc.in))); got != "<"+tc.text {
			t.Errorf("AppendEscapedText(%q) = %q, want %q", tc.in, got, tc.text)
		}
		if got := string(AppendEscapedAttr(nil, []byte(tc.in))); got != tc.attr {
			t.Errorf("AppendEscapedAttr(%q) = %q, want %q", tc.in, got, tc.attr)
		}
		if got := string(AppendEscapedString(nil, tc.in)); got != tc.attr {
			t.Errorf("AppendEscapedString(%q) = %q, want %q", tc.in, got, tc.attr)
		}
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a &amp; b &lt;&gt;&apos;&quot;", `a & b <>'"`},
		{"&#65;&#x42;&#x263a;&#x1F600;", "AB☺😀"},
		{"&#x0000041;", "A"},
		{"& &am; &amp &#; &#x; &#12a; &#0; &#xD800; &#x110000; &#4294967361; &foo;", "& &am; &amp &#; &#x; &#12a; &#0; &#xD800; &#x110000; &#4294967361; &foo;"},
		{"keep\r\n\t", "keep\r\n\t"},
		{"&", "&"},
		{"x&", "x&"},
	}
	for _, tc := range tests {
		if got := string(AppendUnescaped([]byte("!"), []byte(tc.in))); got != "!"+tc.want {
			t.Errorf("AppendUnescaped(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBuilder(t *testing.T) {
	var b Builder
	b.Reset([]byte("prefix:"))
	b.Start("iq").Attr("type", "result").Attr("id", "a'b<c").
		Start("query").Attr("xmlns", ns.Roster).
		Start("item").Attr("jid", "r@example.net").AttrBytes("name", []byte("R & J")).
		Start("group").Text("Friends <3").End().
		Start("group").TextBytes([]byte("x\ry")).End().
		End().
		Start("item").Attr("jid", "e@example.net").End().
		Raw([]byte("<trusted/>")).
		End().End()
	want := `prefix:<iq type='result' id='a&apos;b&lt;c'><query xmlns='jabber:iq:roster'>` +
		`<item jid='r@example.net' name='R &amp; J'><group>Friends &lt;3</group><group>x&#xD;y</group></item>` +
		`<item jid='e@example.net'/><trusted/></query></iq>`
	if string(b.B) != want {
		t.Errorf("Builder:\n got %s\nwant %s", b.B, want)
	}
	if b.Depth() != 0 {
		t.Errorf("Depth = %d", b.Depth())
	}
	// Deeper than the fixed array.
	b.Reset(nil)
	for i := 0; i < 40; i++ {
		b.Start("d")
	}
	b.Text("x")
	for i := 0; i < 40; i++ {
		b.End()
	}
	if want := strings.Repeat("<d>", 40) + "x" + strings.Repeat("</d>", 40); string(b.B) != want {
		t.Errorf("deep Builder = %s", b.B)
	}
	for name, f := range map[string]func(){
		"Attr after Text": func() { var b Builder; b.Start("a").Text("x").Attr("b", "c") },
		"End when closed": func() { var b Builder; b.End() },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestSetAttrs(t *testing.T) {
	tests := []struct {
		name, raw string
		set       []AttrSet
		want      string
	}{
		{"stamp from", `<message to='romeo@example.net' type="chat"><body>hi</body></message>`,
			[]AttrSet{{Name: "from", Value: []byte("juliet@example.com/balcony")}},
			`<message to='romeo@example.net' type="chat" from='juliet@example.com/balcony'><body>hi</body></message>`},
		{"replace from and to", `<message from='forged@evil' to='x'  id='1'/>`,
			[]AttrSet{{Name: "from", Value: []byte("a@b/c")}, {Name: "to", Value: []byte("d&e")}},
			`<message from='a@b/c' to='d&amp;e' id='1'/>`},
		{"remove", `<presence xmlns='jabber:client' to='x' from='y' type='probe'/>`,
			[]AttrSet{{Name: "to", Remove: true}, {Name: "missing", Remove: true}},
			`<presence xmlns='jabber:client' from='y' type='probe'/>`},
		{"prefixed names kept", `<iq xml:lang='en' a:to='q' xmlns:a='urn:a'><x to='inner'/></iq>`,
			[]AttrSet{{Name: "to", Value: []byte("t")}},
			`<iq xml:lang='en' a:to='q' xmlns:a='urn:a' to='t'><x to='inner'/></iq>`},
		{"quotes in values", `<a b='"' c="'"/>`,
			[]AttrSet{{Name: "d", Value: []byte(`'"`)}},
			`<a b='"' c="'" d='&apos;&quot;'/>`},
		{"no attrs", `<a>x</a>`, []AttrSet{{Name: "id", Value: []byte("1")}}, `<a id='1'>x</a>`},
		{"not xml", `hello`, []AttrSet{{Name: "id", Value: []byte("1")}}, `hello`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(SetAttrs([]byte(">"), []byte(tc.raw), tc.set...))
			if got != ">"+tc.want {
				t.Errorf("SetAttrs:\n got %s\nwant >%s", got, tc.want)
			}
			if strings.HasPrefix(tc.raw, "<") {
				mustScan(t, tc.want)
			}
		})
	}
}

func TestAppendChild(t *testing.T) {
	tests := []struct{ raw, child, want string }{
		{`<message to='x'/>`, `<delay xmlns='urn:xmpp:delay'/>`, `<message to='x'><delay xmlns='urn:xmpp:delay'/></message>`},
		{`<message to='x' />`, `<a/>`, `<message to='x'><a/></message>`},
		{`<message><body>hi</body></message>`, `<a/>`, `<message><body>hi</body><a/></message>`},
		{`<s:features xmlns:s='http://etherx.jabber.org/streams'/>`, `<a/>`, `<s:features xmlns:s='http://etherx.jabber.org/streams'><a/></s:features>`},
		{`<a x='/>'></a >`, `<b/>`, `<a x='/>'><b/></a >`},
	}
	for _, tc := range tests {
		got := string(AppendChild([]byte("!"), []byte(tc.raw), []byte(tc.child)))
		if got != "!"+tc.want {
			t.Errorf("AppendChild(%s):\n got %s\nwant !%s", tc.raw, got, tc.want)
		}
		mustScan(t, tc.want)
	}
}

func TestCutChildren(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`<message><cut/><body>hi</body></message>`, `<message><body>hi</body></message>`},
		{`<message><body>hi</body><cut a='1'/><cut/></message>`, `<message><body>hi</body></message>`},
		// The copy inside another child is not a child of the top element: it stays, and
		// the child after it goes (a search for the bytes would cut the first copy).
		{`<message><x><cut/></x><cut/></message>`, `<message><x><cut/></x></message>`},
		{`<message><body>&lt;cut/&gt;</body><cut/></message>`, `<message><body>&lt;cut/&gt;</body></message>`},
		{`<message/>`, `<message/>`},
		{`<message><cut>`, `<message><cut>`}, // does not parse: unchanged
	}
	for _, tc := range tests {
		got := string(CutChildren([]byte("!"), []byte(tc.raw), "jabber:client", func(c Element) bool { return string(c.Name()) == "cut" }))
		if got != "!"+tc.want {
			t.Errorf("CutChildren(%s):\n got %s\nwant !%s", tc.raw, got, tc.want)
		}
	}
}

// mustScan checks that the writer's output is one well-formed element for the tokenizer.
func mustScan(t *testing.T, elem string) {
	t.Helper()
	evs, err := feed(t, KindClient, nil, whole([]byte(hdrClient+elem)))
	if err != nil || len(evs) != 2 {
		t.Errorf("output %s does not scan: %v %d", elem, err, len(evs))
	}
}
