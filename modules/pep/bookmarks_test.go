package pep

import (
	"bytes"
	"testing"

	"github.com/vireo-im/vireo/xmlstream"
)

// legacyConferences converts each <conference/> of a XEP-0048 <storage/> element.
func legacyConferences(t testing.TB, storage []byte) (ids []string, payloads [][]byte) {
	e, err := xmlstream.ParseElement(storage, "jabber:client")
	if err != nil {
		return nil, nil
	}
	it := e.Children()
	for x, ok := it.Next(); ok; x, ok = it.Next() {
		if string(x.NS()) != NSLegacyBookmarks || string(x.Name()) != "conference" {
			continue
		}
		if id, p, ok := fromLegacy(x); ok {
			ids, payloads = append(ids, id), append(payloads, p)
		}
	}
	return ids, payloads
}

func TestLegacyBookmarks(t *testing.T) {
	in := "<storage xmlns='storage:bookmarks'><conference jid='Room@Conf.Example' name='R &amp; D' autojoin='1'><nick>me</nick><password>p&lt;w</password><pinned xmlns='urn:x'/></conference><conference name='no jid'/><conference jid='conf.example'/></storage>"
	ids, ps := legacyConferences(t, []byte(in))
	if len(ids) != 1 || ids[0] != "room@conf.example" {
		t.Fatalf("ids = %q", ids)
	}
	want := "<conference xmlns='urn:xmpp:bookmarks:1' name='R &amp; D' autojoin='1'><nick>me</nick><password>p&lt;w</password><extensions><pinned xmlns='urn:x'/></extensions></conference>"
	if string(ps[0]) != want {
		t.Fatalf("payload = %s\nwant      %s", ps[0], want)
	}
	var b xmlstream.Builder
	castLegacy(&b, ids[0], ps[0])
	back := "<conference jid='room@conf.example' name='R &amp; D' autojoin='1'><nick>me</nick><password>p&lt;w</password><extensions><pinned xmlns='urn:x'/></extensions></conference>"
	if string(b.B) != back {
		t.Fatalf("cast = %s\nwant   %s", b.B, back)
	}
}

// FuzzLegacyBookmarks feeds XEP-0048 lists to the XEP-0402 conversion: every converted
// payload parses alone, and casting it back and converting again gives the same item.
func FuzzLegacyBookmarks(f *testing.F) {
	for _, s := range []string{
		"<storage xmlns='storage:bookmarks'><conference jid='a@b' name='A' autojoin='true'><nick>n</nick><password>p</password></conference></storage>",
		"<storage xmlns='storage:bookmarks'><conference jid='a@b'><x xmlns='urn:x'><y/></x><extensions><z xmlns='urn:z'/></extensions></conference><url name='u' url='http://x'/></storage>",
		"<s:storage xmlns:s='storage:bookmarks'><s:conference jid='a@b'><s:nick>&amp;</s:nick></s:conference></s:storage>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ids, ps := legacyConferences(t, raw)
		for i, p := range ps {
			if _, err := xmlstream.ParseElement(p, ""); err != nil {
				continue // CheckPayload refuses it before it is stored
			}
			var b xmlstream.Builder
			b.Start("storage").Attr("xmlns", NSLegacyBookmarks)
			castLegacy(&b, ids[i], p)
			b.End()
			ids2, ps2 := legacyConferences(t, b.B)
			if len(ids2) != 1 || ids2[0] != ids[i] || !bytes.Equal(ps2[0], p) {
				t.Fatalf("round trip of %q:\n%s\n-> %s\n-> %q %q", raw, p, b.B, ids2, ps2)
			}
		}
	})
}
