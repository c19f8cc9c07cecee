// Package xmltest helps tests and fuzz targets build input the way the server would see it.
// It holds no server code and nothing outside tests imports it.
package xmltest

import (
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

const header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='d' version='1.0'>"

// IQPayload wraps raw in <iq type='set'>, runs it through the tokenizer as a client's
// stanza would be (16 KiB limit), and returns the IQ's first child: the payload a module's
// handler would get. ok is false when the tokenizer or the parser refuses it, or the IQ has
// no child.
func IQPayload(raw []byte) (payload xmlstream.Element, ok bool) {
	in := append([]byte("<iq type='set' id='f'>"), raw...)
	iq, ok := Stanza(append(in, "</iq>"...))
	if !ok {
		return xmlstream.Element{}, false
	}
	it := iq.Children()
	return it.Next()
}

// Stanza runs raw through the tokenizer as a client's stanza would be (16 KiB limit) and
// returns the first element it yields. ok is false when the tokenizer or the parser
// refuses it.
func Stanza(raw []byte) (stanza xmlstream.Element, ok bool) {
	sc := xmlstream.NewScanner()
	lim := xmlstream.DefaultLimits()
	lim.MaxStanza = 16 << 10
	var xs xmlstream.State
	xs.Reset(xmlstream.KindClient, &lim)
	in := append([]byte(header), raw...)
	for len(in) > 0 {
		ev, n, err := sc.Next(&xs, in)
		if err != nil || ev.Kind == xmlstream.EventNone {
			return xmlstream.Element{}, false
		}
		in = in[n:]
		if ev.Kind == xmlstream.EventElement {
			e, err := xmlstream.ParseElement(ev.Stanza.Raw, ns.Client)
			return e, err == nil
		}
	}
	return xmlstream.Element{}, false
}
