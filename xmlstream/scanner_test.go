package xmlstream

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func c2s(s string) string { return hdrClient + s }

// small2s prefixes a minimal header that fits the small limits of TestScanErrors.
func small2s(s string) string {
	return `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>` + s
}

// TestScanErrors checks every restriction, limit and error mapping, fed whole, at every split
// point and byte by byte: the condition must not depend on how the input was split.
func TestScanErrors(t *testing.T) {
	small := &Limits{MaxStanza: 64, MaxDepth: 3, MaxAttrs: 2, MaxName: 13, MaxHeader: 200}
	tests := []struct {
		name string
		in   string
		kind StreamKind
		lim  *Limits
		want stanza.StreamCondition // "" = no error
	}{
		// Accepted input.
		{name: "ok/entities", in: c2s(`<message to='a&amp;b&lt;&gt;&apos;&quot;&#65;&#x42;'><body>&amp;&lt;&gt;&apos;&quot;&#9731;&#x1F600;</body></message>`)},
		{name: "ok/cdata", in: c2s(`<message><body><![CDATA[<b>&amp;]] ]]]></body></message>`)},
		{name: "ok/brackets", in: c2s(`<message><body>]] ]> ]]</body></message>`)},
		// A character split between reads inside CDATA neither ends it early nor
		// counts as a ']' of its end.
		{name: "ok/cdata utf8", in: c2s(`<message><body><![CDATA[€>]]><![CDATA[]]€>]]></body></message>`)},
		{name: "cdata/utf8 then end", in: c2s(`<message to='b'><body><![CDATA[€></body><body a="]]>]]>"></body></message>`), want: stanza.NotWellFormed},
		{name: "ok/attr quotes", in: c2s(`<message to="a'b" from='c"d>' id = 'x' ></message >`)},
		{name: "ok/utf8 names", in: c2s(`<café xmlns='urn:x' ñ='1'><日本/></café>`)},
		{name: "ok/utf8 text", in: c2s("<message><body>Ünïcødé ☃ 😀 \U0010FFFD</body></message>")},
		{name: "ok/bom", in: "\xEF\xBB\xBF<?xml version='1.0'?>" + hdrClient},
		// The header's prefixes bind top elements only: a stanza goes on without the header.
		{name: "ok/header prefix on top", in: strings.Replace(hdrClient, "version", "xmlns:c='jabber:client' version", 1) + `<c:message/>`},
		{name: "header prefix in a stanza", in: strings.Replace(hdrClient, "version", "xmlns:x='urn:x' version", 1) + `<message><x:y/></message>`, want: stanza.BadNamespacePrefix},
		{name: "header prefix on a stanza's attribute", in: strings.Replace(hdrClient, "version", "xmlns:x='urn:x' version", 1) + `<message><y x:a='1'/></message>`, want: stanza.BadNamespacePrefix},
		{name: "stream prefix in a stanza", in: c2s(`<message><stream:error/></message>`), want: stanza.BadNamespacePrefix},
		{name: "ok/decl full", in: `<?xml version="1.0" encoding="utf-8" standalone='yes' ?>` + hdrClient},
		// White space before the XML declaration is accepted like white space between elements.
		{name: "ok/decl after newline", in: "\n<?xml version='1.0'?>" + hdrClient},
		{name: "ok/decl after ws", in: " \t\r\n <?xml version='1.0'?>\n" + hdrClient + `<presence/>`},
		{name: "ok/decl after crlf", in: "\r\n<?xml version='1.0' encoding='UTF-8'?>\r\n" + hdrClient},
		{name: "ok/decl after bom ws", in: "\xEF\xBB\xBF\n<?xml version='1.0'?>" + hdrClient},
		// Top-level elements whose name looks like a stream header but is not one.
		{name: "ok/stream other ns", in: c2s(`<foo:stream xmlns:foo='urn:x'>x</foo:stream><stream xmlns='urn:x'/><presence/>`)},
		{name: "ok/stream content ns", in: c2s(`<stream><x/></stream><presence/>`)},
		{name: "ok/stream-ish names", in: c2s(`<stream:streams/><stream:xstream/><stream:features/>`)},
		{name: "ok/keepalive", in: c2s(" \n\t\r <presence/> \n")},
		{name: "ok/undeclare", in: c2s(`<message><x xmlns='urn:x'><y xmlns=''/></x></message>`)},
		{name: "ok/prefixed payload", in: c2s(`<iq xmlns:p='urn:p' type='get' id='1'><p:query p:attr='1' attr='2'/></iq>`)},
		{name: "ok/prefix rebind", in: c2s(`<message xmlns:a='urn:1'><a:x xmlns:a='urn:2'/><a:y/></message>`)},
		{name: "ok/same local two ns", in: c2s(`<message xmlns:a='urn:1' xmlns:b='urn:2' a:x='1' b:x='2' x='3'/>`)},
		{name: "ok/xml prefix", in: c2s(`<message xml:lang='de' xmlns:xml='http://www.w3.org/XML/1998/namespace'/>`)},
		{name: "ok/stream end", in: c2s(`<presence/></stream:stream>  `)},
		{name: "ok/server", in: hdrServer + `<db:result from='example.net' to='example.com'>abc</db:result><stream:features/>`, kind: KindServer},
		{name: "ok/component", in: hdrComp + `<handshake>aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e</handshake><message/>`, kind: KindComponent},
		{name: "ok/other prefix", in: `<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'><s:features/></s:stream>`},
		{name: "ok/limits exact", in: small2s(`<a><b><c x='1' y='2'/><abcdefghijklm/></b><x>` + strings.Repeat("z", 11) + `</x></a>`), lim: small},

		// RFC 6120 §11.1: restricted XML.
		{name: "restricted/comment", in: c2s(`<message><!-- hi --></message>`), want: stanza.RestrictedXML},
		{name: "restricted/comment top", in: c2s(`<!-- hi -->`), want: stanza.RestrictedXML},
		{name: "restricted/comment prolog", in: `<!-- hi -->` + hdrClient, want: stanza.RestrictedXML},
		{name: "restricted/pi", in: c2s(`<message><?php echo 1 ?></message>`), want: stanza.RestrictedXML},
		{name: "restricted/pi top", in: c2s(`<?foo?>`), want: stanza.RestrictedXML},
		{name: "restricted/pi prolog", in: `<?foo bar?>` + hdrClient, want: stanza.RestrictedXML},
		{name: "nwf/text before decl", in: `x<?xml version='1.0'?>` + hdrClient, want: stanza.NotWellFormed},
		{name: "restricted/decl after ws and decl", in: "<?xml version='1.0'?>\n<?xml version='1.0'?>" + hdrClient, want: stanza.RestrictedXML},
		{name: "restricted/decl after ws after header", in: c2s("\n<?xml version='1.0'?>"), want: stanza.RestrictedXML},
		{name: "restricted/pi after ws", in: "\n<?foo?>" + hdrClient, want: stanza.RestrictedXML},
		{name: "restricted/pi after ws and decl", in: "\n<?xml version='1.0'?>\n<?foo?>" + hdrClient, want: stanza.RestrictedXML},
		{name: "restricted/decl twice", in: `<?xml version='1.0'?><?xml version='1.0'?>` + hdrClient, want: stanza.RestrictedXML},
		{name: "restricted/decl after header", in: c2s(`<?xml version='1.0'?>`), want: stanza.RestrictedXML},
		{name: "restricted/xml-stylesheet", in: `<?xml-stylesheet href='a'?>` + hdrClient, want: stanza.RestrictedXML},
		{name: "restricted/doctype", in: `<!DOCTYPE stream>` + hdrClient, want: stanza.RestrictedXML},
		{name: "restricted/doctype subset", in: c2s(`<!DOCTYPE x [<!ENTITY a 'b'>]>`), want: stanza.RestrictedXML},
		{name: "restricted/entity decl", in: c2s(`<message><!ENTITY a 'b'></message>`), want: stanza.RestrictedXML},
		{name: "restricted/entity ref", in: c2s(`<message><body>&foo;</body></message>`), want: stanza.RestrictedXML},
		{name: "restricted/entity ref attr", in: c2s(`<message to='&foo;'/>`), want: stanza.RestrictedXML},
		{name: "restricted/entity long", in: c2s(`<message><body>&abcdefgh;</body></message>`), want: stanza.RestrictedXML},
		{name: "restricted/nbsp", in: c2s(`<message><body>&nbsp;</body></message>`), want: stanza.RestrictedXML},
		{name: "restricted/entity utf8", in: c2s(`<message><body>&é;</body></message>`), want: stanza.RestrictedXML},
		{name: "restricted/amp prefix", in: c2s(`<message><body>&ampx;</body></message>`), want: stanza.RestrictedXML},

		// Well-formedness.
		{name: "nwf/mismatch", in: c2s(`<message></presence>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch nested", in: c2s(`<message><a><b></a></b></message>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch prefix", in: c2s(`<message xmlns:a='urn:a' xmlns:b='urn:a'><a:x></b:x></message>`), want: stanza.NotWellFormed},
		// A mismatched end tag fails as soon as it is read, not when the element completes.
		{name: "nwf/mismatch open", in: c2s(`<message><body>x</message>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open deep", in: c2s(`<message><a><b><c>x</c><d/></b><e>y</b>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open after sibling", in: c2s(`<message><a/><b></b><c>x</a>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open space", in: c2s(`<message><body>x</foo >`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open longer", in: c2s(`<message><body>x</bodyx>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open shorter", in: c2s(`<message><body>x</bod>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open prefix", in: c2s(`<message xmlns:a='urn:a' xmlns:b='urn:a'><a:x>y</b:x>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open prefix added", in: c2s(`<message xmlns:a='urn:a'><body>y</a:body>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open prefix dropped", in: c2s(`<message xmlns:a='urn:a'><a:body>y</body>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open utf8", in: c2s(`<message><café>x</cafè>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open attrs", in: c2s(`<message to='a'><body xml:lang='en' >x</message>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open cdata", in: c2s(`<message><body><![CDATA[</body>]]></x>`), want: stanza.NotWellFormed},
		{name: "nwf/mismatch open top", in: c2s(`<message></messages>`), want: stanza.NotWellFormed},
		{name: "ok/match open", in: c2s(`<message><body>x</body><a:x xmlns:a='urn:a'><y/></a:x><café>é</café>`)},
		// A stream header inside an open stream fails as soon as its start tag is complete.
		{name: "nwf/header again", in: c2s(hdrClient), want: stanza.NotWellFormed},
		{name: "nwf/header again after stanza", in: c2s(`<presence/>` + hdrClient), want: stanza.NotWellFormed},
		{name: "nwf/header again bare", in: c2s(`<stream:stream>`), want: stanza.NotWellFormed},
		{name: "nwf/header again other prefix", in: c2s(`<s:stream xmlns:s='http://etherx.jabber.org/streams'>`), want: stanza.NotWellFormed},
		{name: "nwf/header again default ns", in: c2s(`<stream xmlns='http://etherx.jabber.org/streams' xmlns:stream='urn:x'>`), want: stanza.NotWellFormed},
		{name: "nwf/header again empty", in: c2s(`<stream:stream/>`), want: stanza.NotWellFormed},
		{name: "nwf/header again closed", in: c2s(hdrClient + `<presence/></stream:stream>`), want: stanza.NotWellFormed},
		{name: "nwf/dup attr", in: c2s(`<message to='a' to='b'/>`), want: stanza.NotWellFormed},
		{name: "nwf/dup attr resolved", in: c2s(`<message xmlns:a='urn:x' xmlns:b='urn:x' a:foo='1' b:foo='2'/>`), want: stanza.NotWellFormed},
		{name: "nwf/dup attr normalized ns", in: c2s("<message xmlns:a='urn:y\tz' xmlns:b='urn:y z' a:foo='1' b:foo='2'/>"), want: stanza.NotWellFormed},
		{name: "ok/attrs ns by reference and tab", in: c2s("<message xmlns:a='urn:y&#9;z' xmlns:b='urn:y\tz' a:foo='1' b:bar='2'/>")},
		{name: "limit/binds in scope", in: c2s(nestedDecls(3, 50)), want: stanza.PolicyViolation},
		{name: "ok/binds in scope", in: c2s(nestedDecls(2, 50))},
		{name: "nwf/dup xmlns", in: c2s(`<message xmlns='jabber:client' xmlns='jabber:client'/>`), want: stanza.NotWellFormed},
		{name: "nwf/dup prefix decl", in: c2s(`<message xmlns:a='urn:x' xmlns:a='urn:x'/>`), want: stanza.NotWellFormed},
		{name: "nwf/dup deep", in: c2s(`<message><x><y a='1' b='2' a='3'/></x></message>`), want: stanza.NotWellFormed},
		{name: "nwf/utf8 ff", in: c2s("<message><body>\xff</body></message>"), want: stanza.NotWellFormed},
		{name: "nwf/utf8 overlong", in: c2s("<message><body>\xc0\xaf</body></message>"), want: stanza.NotWellFormed},
		{name: "nwf/utf8 surrogate", in: c2s("<message><body>\xed\xa0\x80</body></message>"), want: stanza.NotWellFormed},
		{name: "nwf/utf8 truncated", in: c2s("<message><body>\xe2\x82</body></message>"), want: stanza.NotWellFormed},
		{name: "nwf/utf8 too big", in: c2s("<message><body>\xf4\x90\x80\x80</body></message>"), want: stanza.NotWellFormed},
		{name: "nwf/utf8 attr", in: c2s("<message to='\xe2\x28\xa1'/>"), want: stanza.NotWellFormed},
		{name: "nwf/utf8 name", in: c2s("<mess\xffage/>"), want: stanza.NotWellFormed},
		{name: "nwf/utf8 cdata", in: c2s("<message><![CDATA[\xff]]></message>"), want: stanza.NotWellFormed},
		{name: "nwf/nul", in: c2s("<message><body>\x00</body></message>"), want: stanza.NotWellFormed},
		{name: "nwf/control", in: c2s("<message><body>\x0b</body></message>"), want: stanza.NotWellFormed},
		{name: "nwf/control attr", in: c2s("<message to='\x01'/>"), want: stanza.NotWellFormed},
		{name: "nwf/fffe", in: c2s("<message><body>\xef\xbf\xbe</body></message>"), want: stanza.NotWellFormed},
		{name: "nwf/ffff", in: c2s("<message><body>\xef\xbf\xbf</body></message>"), want: stanza.NotWellFormed},
		{name: "nwf/charref nul", in: c2s(`<message><body>&#0;</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/charref control", in: c2s(`<message><body>&#x1;</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/charref fffe", in: c2s(`<message><body>&#xFFFE;</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/charref surrogate", in: c2s(`<message><body>&#xD800;</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/charref too big", in: c2s(`<message><body>&#x110000;</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/charref overflow", in: c2s(`<message><body>&#99999999999999999999;</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/charref empty", in: c2s(`<message><body>&#;</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/charref hex empty", in: c2s(`<message><body>&#x;</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/charref bad digit", in: c2s(`<message><body>&#12a;</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/bare amp", in: c2s(`<message><body>a & b</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/unterminated ref", in: c2s(`<message><body>&amp</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/lt in attr", in: c2s(`<message to='a<b'/>`), want: stanza.NotWellFormed},
		{name: "nwf/unquoted attr", in: c2s(`<message to=a/>`), want: stanza.NotWellFormed},
		{name: "nwf/attr no value", in: c2s(`<message to/>`), want: stanza.NotWellFormed},
		{name: "nwf/attr no space", in: c2s(`<message to='a'from='b'/>`), want: stanza.NotWellFormed},
		{name: "nwf/name digit", in: c2s(`<1message/>`), want: stanza.NotWellFormed},
		{name: "nwf/name dash", in: c2s(`<message><-a/></message>`), want: stanza.NotWellFormed},
		{name: "nwf/attr name digit", in: c2s(`<message 1a='x'/>`), want: stanza.NotWellFormed},
		{name: "nwf/name not namechar", in: c2s("<a\u00d7b/>"), want: stanza.NotWellFormed},
		{name: "nwf/name bad start rune", in: c2s("<\u0300a/>"), want: stanza.NotWellFormed},
		{name: "nwf/qname two colons", in: c2s(`<a:b:c xmlns:a='urn:x'/>`), want: stanza.NotWellFormed},
		{name: "nwf/qname leading colon", in: c2s(`<:a/>`), want: stanza.NotWellFormed},
		{name: "nwf/qname trailing colon", in: c2s(`<a:/>`), want: stanza.NotWellFormed},
		{name: "nwf/qname local digit", in: c2s(`<a:1 xmlns:a='urn:x'/>`), want: stanza.NotWellFormed},
		{name: "nwf/xmlns colon only", in: c2s(`<message xmlns:='x'/>`), want: stanza.NotWellFormed},
		{name: "nwf/empty prefix binding", in: c2s(`<message xmlns:p=''/>`), want: stanza.NotWellFormed},
		{name: "nwf/rebind xml", in: c2s(`<message xmlns:xml='urn:x'/>`), want: stanza.NotWellFormed},
		{name: "nwf/bind xml ns", in: c2s(`<message xmlns:foo='http://www.w3.org/XML/1998/namespace'/>`), want: stanza.NotWellFormed},
		{name: "nwf/declare xmlns", in: c2s(`<message xmlns:xmlns='urn:x'/>`), want: stanza.NotWellFormed},
		{name: "nwf/default xmlns ns", in: c2s(`<message><x xmlns='http://www.w3.org/2000/xmlns/'/></message>`), want: stanza.NotWellFormed},
		{name: "nwf/xmlns prefix element", in: c2s(`<xmlns:a/>`), want: stanza.NotWellFormed},
		{name: "nwf/cdata end in text", in: c2s(`<message><body>a]]>b</body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/cdata end after brackets", in: c2s(`<message><body>]]]]></body></message>`), want: stanza.NotWellFormed},
		{name: "nwf/cdata top", in: c2s(`<![CDATA[x]]>`), want: stanza.NotWellFormed},
		{name: "nwf/cdata bad start", in: c2s(`<message><![CDAT[x]]></message>`), want: stanza.NotWellFormed},
		{name: "nwf/bang other", in: c2s(`<message><!1></message>`), want: stanza.NotWellFormed},
		{name: "nwf/end tag attr", in: c2s(`<message></message foo>`), want: stanza.NotWellFormed},
		{name: "nwf/lt space", in: c2s(`<message>< body/></message>`), want: stanza.NotWellFormed},
		{name: "nwf/empty slash", in: c2s(`<message/ >`), want: stanza.NotWellFormed},
		{name: "nwf/stream close wrong", in: c2s(`</stream>`), want: stanza.NotWellFormed},
		{name: "nwf/stream close other prefix", in: c2s(`</s:stream>`), want: stanza.NotWellFormed},
		{name: "nwf/after end", in: c2s(`</stream:stream><presence/>`), want: stanza.NotWellFormed},
		{name: "nwf/text prolog", in: `hello` + hdrClient, want: stanza.NotWellFormed},
		{name: "nwf/end tag prolog", in: `</a>` + hdrClient, want: stanza.NotWellFormed},
		{name: "nwf/bad bom", in: "\xEF\xBB<?xml version='1.0'?>" + hdrClient, want: stanza.NotWellFormed},
		{name: "nwf/decl no version", in: `<?xml encoding='UTF-8'?>` + hdrClient, want: stanza.NotWellFormed},
		{name: "nwf/decl version 2", in: `<?xml version='2.0'?>` + hdrClient, want: stanza.NotWellFormed},
		{name: "nwf/decl order", in: `<?xml version='1.0' standalone='yes' encoding='UTF-8'?>` + hdrClient, want: stanza.NotWellFormed},
		{name: "nwf/decl junk", in: `<?xml version='1.0' foo='bar'?>` + hdrClient, want: stanza.NotWellFormed},
		{name: "nwf/decl utf8", in: "<?xml version='1.0' é?>" + hdrClient, want: stanza.NotWellFormed},
		{name: "nwf/decl no space", in: `<?xml version='1.0'encoding='UTF-8'?>` + hdrClient, want: stanza.NotWellFormed},

		// RFC 6120 §4.9.3.2 and §4.9.3.10: namespaces.
		{name: "prefix/unbound element", in: c2s(`<foo:message/>`), want: stanza.BadNamespacePrefix},
		{name: "prefix/unbound child", in: c2s(`<message><foo:x/></message>`), want: stanza.BadNamespacePrefix},
		{name: "prefix/unbound attr", in: c2s(`<message foo:bar='1'/>`), want: stanza.BadNamespacePrefix},
		{name: "prefix/out of scope", in: c2s(`<message><x xmlns:a='urn:a'/><a:y/></message>`), want: stanza.BadNamespacePrefix},
		{name: "prefix/header unprefixed", in: `<stream xmlns='jabber:client'>`, want: stanza.BadNamespacePrefix},
		{name: "prefix/header unbound", in: `<stream:stream xmlns='jabber:client'>`, want: stanza.BadNamespacePrefix},
		{name: "prefix/db on client", in: c2s(`<db:result/>`), want: stanza.BadNamespacePrefix},
		{name: "ns/header wrong stream ns", in: `<stream:stream xmlns='jabber:client' xmlns:stream='http://wrong.namespace.example.org/'>`, want: stanza.InvalidNamespace},
		{name: "ns/header wrong content", in: `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>`, want: stanza.InvalidNamespace},
		{name: "ns/header no content", in: `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>`, want: stanza.InvalidNamespace},
		{name: "ns/header client on server", in: hdrClient, kind: KindServer, want: stanza.InvalidNamespace},
		{name: "ns/header client on component", in: hdrClient, kind: KindComponent, want: stanza.InvalidNamespace},
		{name: "ns/header root name", in: `<stream:foo xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`, want: stanza.InvalidNamespace},
		{name: "ns/stanza server ns", in: c2s(`<message xmlns='jabber:server'/>`), want: stanza.InvalidNamespace},
		{name: "ns/stanza client on server", in: hdrServer + `<iq xmlns='jabber:client'/>`, kind: KindServer, want: stanza.InvalidNamespace},

		// RFC 6120 §11.6: UTF-8 only.
		{name: "encoding/latin1", in: `<?xml version='1.0' encoding='ISO-8859-1'?>` + hdrClient, want: stanza.UnsupportedEncoding},
		{name: "encoding/utf16 bom", in: "\xFE\xFF\x00<", want: stanza.UnsupportedEncoding},
		{name: "encoding/utf16le bom", in: "\xFF\xFE<\x00", want: stanza.UnsupportedEncoding},
		{name: "encoding/utf16 no bom", in: "\x00<\x00s", want: stanza.UnsupportedEncoding},

		// Invalid XMPP that is well-formed XML.
		{name: "format/text at stream level", in: c2s(`hello`), want: stanza.BadFormat},
		{name: "format/ref at stream level", in: c2s(`&amp;`), want: stanza.BadFormat},
		{name: "format/empty header", in: `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>`, want: stanza.BadFormat},

		// Limits.
		{name: "limit/stanza", in: small2s(`<a><b><c x='1' y='2'/><abcdefghijklm/></b><x>` + strings.Repeat("z", 12) + `</x></a>`), lim: small, want: stanza.PolicyViolation},
		{name: "limit/stanza default", in: c2s(`<message><body>` + strings.Repeat("z", DefaultMaxStanza) + `</body></message>`), want: stanza.PolicyViolation},
		{name: "limit/stanza unterminated", in: small2s(`<message><body>` + strings.Repeat("z", 100)), lim: small, want: stanza.PolicyViolation},
		{name: "limit/depth", in: small2s(`<a><b><c><d/></c></b></a>`), lim: small, want: stanza.PolicyViolation},
		{name: "limit/depth open", in: small2s(`<a><b><c><d>`), lim: small, want: stanza.PolicyViolation},
		{name: "limit/depth default", in: c2s(strings.Repeat("<a>", DefaultMaxDepth+1)), want: stanza.PolicyViolation},
		{name: "limit/attrs", in: small2s(`<a x='1' y='2' z='3'/>`), lim: small, want: stanza.PolicyViolation},
		{name: "limit/attrs xmlns", in: small2s(`<a xmlns='urn:x' x='1' y='2'/>`), lim: small, want: stanza.PolicyViolation},
		{name: "limit/name", in: small2s(`<abcdefghijklmn/>`), lim: small, want: stanza.PolicyViolation},
		{name: "limit/name utf8", in: small2s(`<abcdefghijklé/>`), lim: small, want: stanza.PolicyViolation},
		{name: "limit/attr name", in: small2s(`<a abcdefghijklmn='1'/>`), lim: small, want: stanza.PolicyViolation},
		{name: "limit/end name", in: small2s(`<a></abcdefghijklmn>`), lim: small, want: stanza.PolicyViolation},
		{name: "limit/header", in: `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` + strings.Repeat("x", 200) + `'>`, lim: small, want: stanza.PolicyViolation},
		{name: "limit/decl", in: `<?xml version='1.0'` + strings.Repeat(" ", 300) + `?>`, lim: small, want: stanza.PolicyViolation},
		{name: "limit/error first", in: small2s(`<a><!-- ` + strings.Repeat("z", 100)), lim: small, want: stanza.RestrictedXML},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			_, err := feed(t, tc.kind, tc.lim, whole(in))
			if got := cond(err); got != tc.want {
				t.Fatalf("whole: got %q (%v), want %q", got, err, tc.want)
			}
			if _, err := feed(t, tc.kind, tc.lim, bytewise(in)); cond(err) != tc.want {
				t.Fatalf("byte by byte: got %v, want %q", err, tc.want)
			}
			if len(in) > 2000 {
				return
			}
			for i := 1; i < len(in); i++ {
				if _, err := feed(t, tc.kind, tc.lim, splitAt(in, i)); cond(err) != tc.want {
					t.Fatalf("split at %d: got %v, want %q", i, err, tc.want)
				}
			}
		})
	}
}

func TestScanNamespaces(t *testing.T) {
	tests := []struct {
		name  string
		kind  StreamKind
		in    string
		ns    string // of the last element
		local string
		kids  []string // {ns}local of its children
	}{
		{"inherit client", KindClient, c2s(`<message/>`), ns.Client, "message", nil},
		{"inherit server", KindServer, hdrServer + `<presence/>`, ns.Server, "presence", nil},
		{"inherit component", KindComponent, hdrComp + `<iq/>`, ns.Component, "iq", nil},
		{"explicit", KindClient, c2s(`<iq xmlns='jabber:client'><query xmlns='jabber:iq:roster'/></iq>`), ns.Client, "iq", []string{"{jabber:iq:roster}query"}},
		{"stream prefix", KindClient, c2s(`<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`), ns.Stream, "features", []string{"{urn:ietf:params:xml:ns:xmpp-bind}bind"}},
		{"stream error", KindClient, c2s(`<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`), ns.Stream, "error", []string{"{urn:ietf:params:xml:ns:xmpp-streams}not-well-formed"}},
		{"dialback", KindServer, hdrServer + `<db:verify from='a' to='b' id='1'>k</db:verify>`, ns.Dialback, "verify", nil},
		{"sasl", KindClient, c2s(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG1yMG0=</auth>`), ns.SASL, "auth", nil},
		{"starttls", KindClient, c2s(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`), ns.TLS, "starttls", nil},
		{"prefixed child", KindClient, c2s(`<iq xmlns:r='jabber:iq:roster'><r:query/><x/></iq>`), ns.Client, "iq", []string{"{jabber:iq:roster}query", "{jabber:client}x"}},
		{"default in child", KindClient, c2s(`<message><x xmlns='urn:x'/><y/></message>`), ns.Client, "message", []string{"{urn:x}x", "{jabber:client}y"}},
		{"undeclared child", KindClient, c2s(`<message><x xmlns=''/></message>`), ns.Client, "message", []string{"{}x"}},
		{"stanza declares default", KindClient, c2s(`<foo xmlns='urn:foo'><bar/></foo>`), "urn:foo", "foo", []string{"{urn:foo}bar"}},
		{"escaped ns", KindClient, c2s(`<message><x xmlns='urn:a&amp;b'/></message>`), ns.Client, "message", []string{"{urn:a&b}x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := NewScanner()
			var st State
			st.Reset(tc.kind, nil)
			in := []byte(tc.in)
			var last *Stanza
			var kids []string
			for len(in) > 0 {
				ev, n, err := sc.Next(&st, in)
				if err != nil {
					t.Fatal(err)
				}
				in = in[n:]
				if ev.Kind == EventElement {
					last = ev.Stanza
					kids = kids[:0]
					for i := 0; i < last.NumChildren(); i++ {
						c := last.Child(i)
						kids = append(kids, "{"+string(c.NS())+"}"+string(c.Name()))
					}
				}
			}
			if last == nil {
				t.Fatal("no element")
			}
			if string(last.NS) != tc.ns || string(last.Name) != tc.local {
				t.Errorf("element = {%s}%s, want {%s}%s", last.NS, last.Name, tc.ns, tc.local)
			}
			if strings.Join(kids, " ") != strings.Join(tc.kids, " ") {
				t.Errorf("children = %v, want %v", kids, tc.kids)
			}
			if el := last.Elem(); string(el.NS()) != tc.ns || string(el.Name()) != tc.local {
				t.Errorf("Elem() = {%s}%s", el.NS(), el.Name())
			}
		})
	}
}

func TestScanHeader(t *testing.T) {
	sc := NewScanner()
	var st State
	st.Reset(KindClient, nil)
	in := []byte(`<?xml version='1.0'?>` + "\n" + `<stream:stream from='juliet@im.example.com' to='im.example.com' version='1.0' xml:lang='en' id='abc' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>` +
		`<message/><message xml:lang='de'/>`)
	ev, n, err := sc.Next(&st, in)
	if err != nil || ev.Kind != EventStreamStart {
		t.Fatalf("Next = %v, %v", ev.Kind, err)
	}
	s := ev.Stanza
	want := map[string]string{"to": "im.example.com", "from": "juliet@im.example.com", "version": "1.0", "id": "abc"}
	for k, v := range want {
		if got, ok := s.Attr(k); !ok || string(got) != v {
			t.Errorf("Attr(%s) = %q, %v", k, got, ok)
		}
	}
	if _, ok := s.Attr("lang"); ok {
		t.Error("Attr(lang) found xml:lang")
	}
	if string(s.Lang) != "en" || string(s.To) != "im.example.com" || string(s.ID) != "abc" {
		t.Errorf("fields: lang=%s to=%s id=%s", s.Lang, s.To, s.ID)
	}
	if !strings.HasPrefix(string(s.Raw), "<stream:stream ") || !strings.HasSuffix(string(s.Raw), "'>") {
		t.Errorf("Raw = %q", s.Raw)
	}
	if s.NumChildren() != 0 || !s.Elem().IsEmpty() || s.Elem().Inner() != nil {
		t.Error("header has content")
	}
	if v, ok := s.Elem().AttrNS(ns.XML, "lang"); !ok || string(v) != "en" {
		t.Errorf("AttrNS(xml, lang) = %q, %v", v, ok)
	}
	in = in[n:]
	ev, n, _ = sc.Next(&st, in)
	if string(ev.Stanza.Lang) != "en" {
		t.Errorf("inherited lang = %q", ev.Stanza.Lang)
	}
	in = in[n:]
	ev, _, _ = sc.Next(&st, in)
	if string(ev.Stanza.Lang) != "de" {
		t.Errorf("own lang = %q", ev.Stanza.Lang)
	}
}

// TestScanReset checks that a State can start a new stream (STARTTLS, SASL) and that the
// sticky error goes away only with Reset.
func TestScanReset(t *testing.T) {
	sc := NewScanner()
	var st State
	st.Reset(KindClient, nil)
	steps := []struct {
		in   string
		want []EventKind
	}{
		{`<?xml version='1.0'?>` + hdrClient + `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`, []EventKind{EventStreamStart, EventElement}},
		{"reset", nil},
		{`<?xml version='1.0'?>` + hdrClient + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`, []EventKind{EventStreamStart, EventElement}},
		{"reset", nil},
		{hdrClient + `<!--x-->`, []EventKind{EventStreamStart}},
	}
	for i, step := range steps {
		if step.in == "reset" {
			st.Reset(KindClient, nil)
			continue
		}
		in := []byte(step.in)
		var got []EventKind
		var err error
		for len(in) > 0 {
			var ev Event
			var n int
			ev, n, err = sc.Next(&st, in)
			if err != nil {
				break
			}
			in = in[n:]
			if ev.Kind != EventNone {
				got = append(got, ev.Kind)
			}
		}
		if len(got) != len(step.want) {
			t.Fatalf("step %d: events %v, want %v (err %v)", i, got, step.want, err)
		}
		if i == len(steps)-1 && !errors.Is(err, stanza.RestrictedXML) {
			t.Fatalf("last step err = %v", err)
		}
	}
	if st.Err() == nil {
		t.Fatal("no sticky error")
	}
	st.Reset(KindClient, nil)
	if st.Err() != nil {
		t.Fatal("Reset kept the error")
	}
}

// TestScanRestartWhitespace checks the restarted stream after STARTTLS or SASL success: the
// new stream may start with white space before its XML declaration, fed whole, at every split
// point and byte by byte.
func TestScanRestartWhitespace(t *testing.T) {
	first := []byte(`<?xml version='1.0'?>` + hdrClient + `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	tests := []struct {
		name string
		in   string
		want stanza.StreamCondition // "" = no error
	}{
		{name: "no ws", in: `<?xml version='1.0'?>` + hdrClient + `<presence/>`},
		{name: "newline", in: "\n<?xml version='1.0'?>" + hdrClient + `<presence/>`},
		{name: "crlf", in: "\r\n<?xml version='1.0'?>\r\n" + hdrClient + `<presence/>`},
		{name: "mixed ws", in: " \t\n\r <?xml version='1.0' encoding='UTF-8'?> \n" + hdrClient + `<presence/>`},
		{name: "ws no decl", in: "\n\n" + hdrClient + `<presence/>`},
		{name: "decl twice", in: "\n<?xml version='1.0'?>\n<?xml version='1.0'?>" + hdrClient, want: stanza.RestrictedXML},
		{name: "pi", in: "\n<?php?>" + hdrClient, want: stanza.RestrictedXML},
		{name: "decl after header", in: "\n" + hdrClient + "\n<?xml version='1.0'?>", want: stanza.RestrictedXML},
	}
	run := func(t *testing.T, chunks [][]byte) ([]EventKind, error) {
		t.Helper()
		sc := NewScanner()
		var st State
		st.Reset(KindClient, nil)
		defer st.Release()
		for in := first; len(in) > 0; {
			_, n, err := sc.Next(&st, in)
			if err != nil {
				t.Fatalf("first stream: %v", err)
			}
			in = in[n:]
		}
		st.Reset(KindClient, nil) // TLS is up: a new stream starts
		var evs []EventKind
		for _, chunk := range chunks {
			for in := chunk; len(in) > 0; {
				ev, n, err := sc.Next(&st, in)
				if err != nil {
					return evs, err
				}
				in = in[n:]
				if ev.Kind != EventNone {
					evs = append(evs, ev.Kind)
				}
			}
		}
		return evs, nil
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			check := func(how string, chunks [][]byte) {
				t.Helper()
				evs, err := run(t, chunks)
				if got := cond(err); got != tc.want {
					t.Fatalf("%s: got %q (%v), want %q", how, got, err, tc.want)
				}
				if tc.want == "" && (len(evs) != 2 || evs[0] != EventStreamStart || evs[1] != EventElement) {
					t.Fatalf("%s: events %v, want stream start and one element", how, evs)
				}
			}
			check("whole", whole(in))
			check("byte by byte", bytewise(in))
			for i := 1; i < len(in); i++ {
				check(fmt.Sprintf("split at %d", i), splitAt(in, i))
			}
		})
	}
}

// TestScanMismatchPending checks that a mismatched end tag (or a second stream header) after a
// partial stanza is reported at the latest by the call that reads its last byte, and never
// while the valid bytes before it are read.
func TestScanMismatchPending(t *testing.T) {
	tests := []struct {
		name      string
		before    string // stanza bytes before the bad end tag (never complete)
		bad       string // the mismatched end tag
		condition stanza.StreamCondition
	}{
		{"body closed by message", `<message><body>x`, `</message>`, stanza.NotWellFormed},
		{"deep", `<iq><query xmlns='jabber:iq:roster'><item jid='a@b'><group>G</group>`, `</query>`, stanza.NotWellFormed},
		{"prefix only", `<message xmlns:a='urn:a' xmlns:b='urn:a'><a:x>`, `</b:x>`, stanza.NotWellFormed},
		{"prefix added", `<message><x>`, `</a:x >`, stanza.NotWellFormed},
		{"header again", `<presence/>`, `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`, stanza.NotWellFormed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, split := range []string{"whole", "bytewise"} {
				sc := NewScanner()
				var st State
				st.Reset(KindClient, nil)
				if _, _, err := sc.Next(&st, []byte(hdrClient)); err != nil {
					t.Fatal(err)
				}
				in := []byte(tc.before + tc.bad)
				var chunks [][]byte
				if split == "whole" {
					chunks = [][]byte{in[:len(tc.before)], in[len(tc.before):]}
				} else {
					chunks = bytewise(in)
				}
				fed := 0
				var err error
				for _, chunk := range chunks {
					for c := chunk; len(c) > 0 && err == nil; {
						var n int
						_, n, err = sc.Next(&st, c)
						c = c[n:]
					}
					fed += len(chunk)
					if err != nil {
						break
					}
				}
				if cond(err) != tc.condition || fed <= len(tc.before) {
					t.Fatalf("%s: error %v after %d of %d bytes, want %q after byte %d", split, err, fed, len(in), tc.condition, len(tc.before))
				}
				st.Release()
			}
		})
	}
}

// TestScanBuffer checks the memory rule: a pooled buffer only while an element is partial.
func TestScanBuffer(t *testing.T) {
	sc := NewScanner()
	var st State
	st.Reset(KindClient, nil)
	defer st.Release()
	if _, _, err := sc.Next(&st, []byte(hdrClient)); err != nil {
		t.Fatal(err)
	}
	msg := []byte(`<message to='a@b'><body>hello</body></message>`)
	for cut := 1; cut < len(msg); cut++ {
		ev, n, err := sc.Next(&st, msg[:cut])
		if err != nil || ev.Kind != EventNone || n != cut {
			t.Fatalf("cut %d: %v %d %v", cut, ev.Kind, n, err)
		}
		if st.Pending() != cut || st.buf == nil {
			t.Fatalf("cut %d: Pending() = %d", cut, st.Pending())
		}
		ev, n, err = sc.Next(&st, msg[cut:])
		if err != nil || ev.Kind != EventElement || n != len(msg)-cut {
			t.Fatalf("cut %d: %v %d %v", cut, ev.Kind, n, err)
		}
		if string(ev.Stanza.Raw) != string(msg) || string(ev.Stanza.To) != "a@b" {
			t.Fatalf("cut %d: Raw = %q", cut, ev.Stanza.Raw)
		}
		if st.Pending() != 0 {
			t.Fatalf("cut %d: Pending() = %d after the element", cut, st.Pending())
		}
		if ev, _, _ = sc.Next(&st, nil); ev.Kind != EventNone || st.buf != nil {
			t.Fatalf("cut %d: buffer held between elements", cut)
		}
	}
	// A whole element in one read never touches the pool.
	ev, _, _ := sc.Next(&st, msg)
	if st.buf != nil || &ev.Stanza.Raw[0] != &msg[0] {
		t.Fatal("whole element was copied")
	}
}

// TestStateSize pins the per-connection cost (DESIGN.md: idle density is the headline).
func TestStateSize(t *testing.T) {
	const want = 48
	if got := unsafe.Sizeof(State{}); got != want {
		t.Errorf("unsafe.Sizeof(State{}) = %d, want %d: update the pin and the report if this is deliberate", got, want)
	}
	t.Logf("State: %d bytes", unsafe.Sizeof(State{}))
}

func TestNotReset(t *testing.T) {
	var st State
	_, _, err := NewScanner().Next(&st, []byte(hdrClient))
	if !errors.Is(err, stanza.InternalServerError) {
		t.Fatalf("zero State: %v", err)
	}
}

func TestHeaderIntern(t *testing.T) {
	a, b := NewScanner(), NewScanner()
	var s1, s2 State
	s1.Reset(KindClient, nil)
	s2.Reset(KindClient, nil)
	if _, _, err := a.Next(&s1, []byte(hdrClient)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Next(&s2, []byte(hdrClient)); err != nil {
		t.Fatal(err)
	}
	if s1.hdr == nil || s1.hdr != s2.hdr {
		t.Fatal("equal headers not shared")
	}
	// One Scanner alternating between streams with different headers keeps them apart.
	var s3 State
	s3.Reset(KindServer, nil)
	if _, _, err := a.Next(&s3, []byte(hdrServer)); err != nil {
		t.Fatal(err)
	}
	s1.Reset(KindClient, nil)
	if _, _, err := a.Next(&s1, []byte(hdrClient)); err != nil {
		t.Fatal(err)
	}
	if s3.hdr.defNS != ns.Server || s1.hdr.defNS != ns.Client || s1.hdr != s2.hdr {
		t.Fatalf("headers mixed up: %q %q", s3.hdr.defNS, s1.hdr.defNS)
	}
	if uri, ok := s3.hdr.lookup([]byte("db")); !ok || string(uri) != ns.Dialback {
		t.Fatalf("db prefix = %q, %v", uri, ok)
	}
}

func TestErrTable(t *testing.T) {
	seen := map[*stanza.StreamError]bool{}
	for i, e := range errTable[1:] {
		if e == nil || seen[e] {
			t.Fatalf("errTable[%d] = %v: nil or duplicate", i+1, e)
		}
		seen[e] = true
		if errTable[errIndex(e)] != e {
			t.Fatalf("errIndex(%v) wrong", e)
		}
	}
	if len(errTable) > 255 {
		t.Fatal("errTable does not fit State.err")
	}
}

// nestedDecls is a message with depth nested elements, each declaring n prefixes.
func nestedDecls(depth, n int) string {
	var b strings.Builder
	b.WriteString("<message>")
	for d := range depth {
		b.WriteString("<x")
		for i := range n {
			fmt.Fprintf(&b, " xmlns:p%d_%d='urn:x'", d, i)
		}
		b.WriteString(">")
	}
	for range depth {
		b.WriteString("</x>")
	}
	b.WriteString("</message>")
	return b.String()
}
