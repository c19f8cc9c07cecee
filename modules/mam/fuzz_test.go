package mam

import (
	"bytes"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

const fuzzHeader = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='d' version='1.0'>"

// FuzzQuery feeds arbitrary bytes through the tokenizer, as a client would send them, and
// every complete element through ParseQuery and then through a query of a small archive.
// Nothing may panic; a query that parses gives a page in archive order, no larger than
// the page cap, with a count and index that agree with it.
func FuzzQuery(f *testing.F) {
	st, err := pebblestore.Open("db", pebblestore.Options{Logger: zerolog.Nop(), FS: vfs.NewMem()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	fx := newFixtureIn(f, archive{t: st.Table("mam")}, 12)
	T := fx.ids[3].String()
	for _, s := range []string{
		"<query xmlns='urn:xmpp:mam:2' queryid='f27'/>",
		"<query xmlns='urn:xmpp:mam:2'>" + xform(field("with", "carol@d/x"), field("start", "2010-06-07T00:00:00Z")) + rsm("<max>3</max><before/>") + "<flip-page/></query>",
		"<query xmlns='urn:xmpp:mam:2'>" + xform(field("after-id", T), field("end", "2999-01-01T00:00:00.5+01:00")) + rsm("<after>"+T+"</after>") + "</query>",
		"<query xmlns='urn:xmpp:mam:2'>" + xform("<field var='ids'><value>"+T+"</value><value>"+fx.ids[7].String()+"</value></field>") + rsm("<index>1</index><max>1</max>") + "</query>",
		"<q:query xmlns:q='urn:xmpp:mam:2'><x xmlns='jabber:x:data'><field var='with'><value>a@b</value></field></x></q:query>",
		"<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>&#x31;0</max><before><![CDATA[" + T + "]]></before></set></query>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := xmlstream.NewScanner()
		lim := xmlstream.DefaultLimits()
		lim.MaxStanza = 16 << 10
		var xs xmlstream.State
		xs.Reset(xmlstream.KindClient, &lim)
		in := append([]byte(fuzzHeader), data...)
		for len(in) > 0 {
			ev, n, err := sc.Next(&xs, in)
			if err != nil || ev.Kind == xmlstream.EventNone {
				return
			}
			in = in[n:]
			if ev.Kind != xmlstream.EventElement {
				continue
			}
			e, err := xmlstream.ParseElement(ev.Stanza.Raw, ns.Client)
			if err != nil {
				continue
			}
			q, se := ParseQuery(e)
			if se != nil {
				continue
			}
			pg, se, err := fx.a.query(user, &q, time.Time{}, 5)
			if err != nil {
				t.Fatal(err)
			}
			if se != nil {
				continue
			}
			if len(pg.ids) > 5 || q.Max >= 0 && len(pg.ids) > q.Max {
				t.Fatalf("page of %d for max %d", len(pg.ids), q.Max)
			}
			for i := 1; i < len(pg.ids); i++ {
				if bytes.Compare(pg.ids[i-1][:], pg.ids[i][:]) >= 0 {
					t.Fatalf("page out of order: %x", pg.ids)
				}
			}
			if pg.count < len(pg.ids) || len(pg.ids) > 0 && (pg.index < 0 || pg.index+len(pg.ids) > pg.count) {
				t.Fatalf("count %d index %d for a page of %d", pg.count, pg.index, len(pg.ids))
			}
		}
	})
}
