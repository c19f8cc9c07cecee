package engine

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/xmlstream"
)

// chunkConn is a net.Conn whose reads return data in pieces of n bytes, then io.EOF;
// only Read is used.
type chunkConn struct {
	net.Conn
	data []byte
	n    int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(c.n, len(c.data), len(p))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// FuzzS2SPeerAnswer feeds what a peer server may answer on an outbound stream, in
// pieces, through peerStream and the readers of its stream errors, dialback errors and
// XEP-0478 limits: nothing may panic, and every error read names a condition.
func FuzzS2SPeerAnswer(f *testing.F) {
	for _, s := range []string{
		"<db:result from='b.example' to='a.example' type='error'><error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>",
		"<db:result from='b.example' to='a.example' type='error'><error type='cancel'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x</text><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>",
		"<db:result from='b.example' to='a.example' type='error'/>",
		"<db:result type='valid'/><db:verify id='x' type='invalid'/>",
		"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no</text></stream:error></stream:stream>",
		"<db:result type='error'><error><x:bad xmlns:x='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
		"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes> 10000 </max-bytes><idle-seconds>600</idle-seconds></limits></stream:features>",
		"<stream:features><x><![CDATA[<limits]]></x><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>-1</max-bytes></limits></stream:features>",
	} {
		f.Add([]byte(s), uint8(7))
	}
	const hdr = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' id='s1' version='1.0'>"
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		lim := xmlstream.DefaultLimits()
		ps := newPeerStream(&chunkConn{data: append([]byte(hdr), data...), n: int(split) + 1}, &lim)
		for range 1000 {
			ev, err := ps.next()
			if err != nil || ev.Kind == xmlstream.EventStreamEnd {
				return
			}
			if ev.Kind != xmlstream.EventElement {
				continue
			}
			st := ev.Stanza
			if e := asStreamError(st); e != nil && e.(*s2sStreamError).cond == "" {
				t.Fatalf("stream error without a condition from %q", st.Raw)
			}
			if string(st.Name) == "features" && advertisedMax(st.Raw) < 0 {
				t.Fatalf("negative limit from %q", st.Raw)
			}
			if string(st.NS) == nsDialback {
				e := dialbackError(st).(*s2sDialbackError)
				if e.cond == "" || strings.ContainsAny(e.cond, "<>'\" ") {
					t.Fatalf("dialback error condition %q from %q", e.cond, st.Raw)
				}
			}
		}
	})
}
