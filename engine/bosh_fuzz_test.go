package engine

import (
	"bytes"
	"testing"
)

// FuzzBoshBody feeds request bodies to the <body/> parser (without parseBOSHBody's
// recover, so a panic is found): it must not panic, and what it accepts must view raw.
func FuzzBoshBody(f *testing.F) {
	for _, s := range []string{
		"<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='localhost' wait='60' hold='1' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>",
		"<body xmlns='http://jabber.org/protocol/httpbind' rid='2' sid='abc'><message xmlns='jabber:client' to='a@b'><body>x</body></message></body>",
		"<body xmlns='http://jabber.org/protocol/httpbind' rid='3' sid='abc' xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh' xml:lang='en'/>",
		"<body xmlns='http://jabber.org/protocol/httpbind' rid='4' sid='abc' type='terminate' pause='30'><![CDATA[<]]></body>",
		"<body rid='1'/>", "<body", "<body xmlns='http://jabber.org/protocol/httpbind' rid='9007199254740993'/>",
		"<b:body xmlns:b='http://jabber.org/protocol/httpbind' rid='1'><x/></b:body> junk",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := parseBOSHBodyRaw(raw)
		if err != nil {
			return
		}
		if b.rid == 0 || b.rid >= 1<<53 {
			t.Fatalf("rid %d accepted", b.rid)
		}
		if in := b.el.Inner(); len(in) > 0 && !bytes.Contains(raw, in) {
			t.Fatalf("payload %q not in %q", in, raw)
		}
	})
}
