package engine

import (
	"net"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// drainConn is a transport whose buffer holds buffered bytes; its wakes run at once with
// err, as gnet runs them on the loop (with no error for a connection that closed since).
type drainConn struct {
	buffered int
	err      error
}

func (d *drainConn) Next(int) ([]byte, error)                    { return nil, nil }
func (d *drainConn) Wake(cb gnet.AsyncCallback) error            { return cb(nil, d.err) }
func (d *drainConn) AsyncWrite([]byte, gnet.AsyncCallback) error { return nil }
func (d *drainConn) Close() error                                { return nil }
func (d *drainConn) RemoteAddr() net.Addr                        { return nil }
func (d *drainConn) OutboundBuffered() int                       { return d.buffered }

// TestDrained: what Drained tells a module that deletes what it delivered (offline
// storage). Written means on the socket before it closed; a socket that closed with
// bytes still buffered, or a stream ending with bytes still queued, is not written. Saying
// written for those would lose messages; saying not written for bytes that went out
// delivers them twice.
func TestDrained(t *testing.T) {
	for _, c := range []struct {
		name     string
		buffered int
		err      error
		flags    uint16
		closing  bool
		want     bool
	}{
		{"open, everything out", 0, nil, 0, false, true},
		{"ending cleanly, everything out", 0, nil, 0, true, true},
		{"ending cleanly, bytes still queued", 100, nil, 0, true, false},
		{"closed with everything out", 0, nil, fGone | fFlushed, true, true},
		// gnet releases the buffer of a closed connection and wakes it without an error:
		// the buffer reads empty, but what it held at the close never went out.
		{"closed with bytes buffered", 0, nil, fGone, true, false},
		{"wake failed", 0, net.ErrClosed, 0, false, false},
	} {
		conn := &conn{gc: &drainConn{buffered: c.buffered, err: c.err}, flags: c.flags}
		conn.closing.Store(c.closing)
		got, called := false, 0
		conn.Drained(func(ok bool) { got, called = ok, called+1 })
		if called != 1 || got != c.want {
			t.Errorf("%s: Drained reported %v (%d calls), want %v", c.name, got, called, c.want)
		}
	}
}

// TestWithoutSMNonzas: the body that ends a BOSH session carries no XEP-0198 acks or
// requests (StanzaJS fails on any child of a terminate body), and keeps everything else.
func TestWithoutSMNonzas(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"<message xmlns='jabber:client'><body>x</body></message>", "<message xmlns='jabber:client'><body>x</body></message>"},
		{"<a xmlns='urn:xmpp:sm:3' h='3'/>", ""},
		{"<message xmlns='jabber:client'/><a xmlns='urn:xmpp:sm:3' h='3'/><r xmlns='urn:xmpp:sm:3'/><iq xmlns='jabber:client' type='result' id='x'/>",
			"<message xmlns='jabber:client'/><iq xmlns='jabber:client' type='result' id='x'/>"},
	} {
		if got := string(withoutSMNonzas([]byte(tc.in))); got != tc.want {
			t.Errorf("withoutSMNonzas(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
