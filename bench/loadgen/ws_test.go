package loadgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// serverFrame is an unmasked frame as a server sends it.
func serverFrame(b0 byte, payload []byte) []byte {
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, byte(n))
	case n <= 0xffff:
		out = append(out, 126, byte(n>>8), byte(n))
	default:
		out = append(out, 127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	return append(out, payload...)
}

// unmask decodes one client frame: opcode, payload, and whether it was masked and final.
func unmask(t *testing.T, f []byte) (op byte, payload []byte) {
	t.Helper()
	if f[0]&0x80 == 0 || f[1]&0x80 == 0 {
		t.Fatalf("frame not final or not masked: % x", f[:2])
	}
	n, i := uint64(f[1]&0x7f), 2
	switch n {
	case 126:
		n, i = uint64(binary.BigEndian.Uint16(f[2:])), 4
	case 127:
		n, i = binary.BigEndian.Uint64(f[2:]), 10
	}
	key := f[i : i+4]
	p := append([]byte(nil), f[i+4:]...)
	if uint64(len(p)) != n {
		t.Fatalf("length %d in the header, %d bytes follow", n, len(p))
	}
	for j := range p {
		p[j] ^= key[j&3]
	}
	return f[0] & 0x0f, p
}

func TestAppendFrame(t *testing.T) {
	// RFC 6455 §5.7: a masked "Hello" with key 37 fa 21 3d.
	got := appendFrame(nil, wsText, 0x37fa213d, []byte("Hello"), nil, nil)
	if want := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}; !bytes.Equal(got, want) {
		t.Fatalf("RFC 6455 example: % x, want % x", got, want)
	}
	for _, tc := range []struct {
		name   string
		n      int
		header int // bytes before the masking key
	}{
		{"empty", 0, 2}, {"short", 5, 2}, {"125", 125, 2}, {"126", 126, 4}, {"odd", 1001, 4},
		{"65535", 65535, 4}, {"65536", 65536, 10}, {"200k", 200 << 10, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := bytes.Repeat([]byte("<message/>"), tc.n/10+1)[:tc.n]
			f := appendFrame(nil, wsText, 0xdeadbeef, p[:tc.n/3], p[tc.n/3:tc.n/2], p[tc.n/2:])
			if len(f) != tc.header+4+tc.n {
				t.Fatalf("frame is %d bytes, want %d", len(f), tc.header+4+tc.n)
			}
			op, got := unmask(t, f)
			if op != wsText || !bytes.Equal(got, p) {
				t.Fatalf("op %d, payload differs", op)
			}
		})
	}
}

func TestMaskBytes(t *testing.T) {
	for n := 0; n < 40; n++ {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		q := append([]byte(nil), p...)
		maskBytes(q, 0x01020304)
		for i := range p {
			if q[i] != p[i]^byte(1+i%4) {
				t.Fatalf("n=%d: byte %d is %x", n, i, q[i])
			}
		}
	}
}

func TestStanzaNSAt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"<message type='chat' to='a@b'><body>x</body></message>", 8},
		{"<message>hi</message>", 8},
		{"<presence/>", 9},
		{"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>", 3},
		{"<iq xmlns='jabber:client' type='get'/>", -1},
		{"<message\txmlns='jabber:client'/>", -1},
		{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", -1},
		{"<r xmlns='urn:xmpp:sm:3'/>", -1},
		{"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>", -1},
		{"<messages/>", -1},
		{"<iqx/>", -1},
	} {
		if got := stanzaNSAt([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.in, got, tc.want)
		}
	}
}

// chunkConn serves fixed bytes in reads of at most chunk bytes and records writes.
type chunkConn struct {
	net.Conn
	in    []byte
	chunk int
	out   bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.chunk, len(c.in))
	copy(p, c.in[:n])
	c.in = c.in[n:]
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *chunkConn) Close() error                { return nil }

func TestDeframe(t *testing.T) {
	long := strings.Repeat("<message><body>long</body></message>", 2000) // > 65535 bytes
	mid := strings.Repeat("x", 300)
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	for _, tc := range []struct {
		name    string
		in      []byte
		want    string
		pongs   int   // pong frames written back
		wantErr error // nil: io.EOF at the end of input
	}{
		{"one text frame", serverFrame(0x81, []byte("<open/>")), "<open/>", 0, nil},
		{"two frames", cat(serverFrame(0x81, []byte("<a/>")), serverFrame(0x81, []byte("<b/>"))), "<a/><b/>", 0, nil},
		{"empty frame", cat(serverFrame(0x81, nil), serverFrame(0x81, []byte("<b/>"))), "<b/>", 0, nil},
		{"fragmented message", cat(serverFrame(0x01, []byte("<mess")), serverFrame(0x00, []byte("age>hi")), serverFrame(0x80, []byte("</message>"))),
			"<message>hi</message>", 0, nil},
		{"16-bit length", serverFrame(0x81, []byte(mid)), mid, 0, nil},
		{"64-bit length", serverFrame(0x81, []byte(long)), long, 0, nil},
		{"ping between fragments", cat(serverFrame(0x01, []byte("<a>")), serverFrame(0x89, []byte("p1")), serverFrame(0x80, []byte("</a>"))), "<a></a>", 1, nil},
		{"empty ping", cat(serverFrame(0x89, nil), serverFrame(0x81, []byte("<b/>"))), "<b/>", 1, nil},
		{"pong ignored", cat(serverFrame(0x8a, []byte("x")), serverFrame(0x81, []byte("<b/>"))), "<b/>", 0, nil},
		{"close", cat(serverFrame(0x81, []byte("<close/>")), serverFrame(0x88, []byte{0x03, 0xe8})), "<close/>", 0, ErrWSClosed},
		{"binary", serverFrame(0x82, []byte("<a/>")), "", 0, errors.New("opcode")},
		{"reserved bits", serverFrame(0xc1, []byte("<a/>")), "", 0, errors.New("reserved")},
		{"masked by the server", []byte{0x81, 0x81, 1, 2, 3, 4, 'x'}, "", 0, errors.New("masked")},
		{"long control frame", serverFrame(0x89, []byte(mid)), "", 0, errors.New("control")},
		{"fragmented control frame", serverFrame(0x09, []byte("p")), "", 0, errors.New("control")},
	} {
		for _, chunk := range []int{1, 2, 3, 7, 64, 1 << 20} {
			c := &chunkConn{in: tc.in, chunk: chunk}
			w := &wsConn{Conn: c}
			var got []byte
			buf := make([]byte, 4096)
			var err error
			for i := 0; i < 1e6; i++ {
				var n int
				n, err = w.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			if string(got) != tc.want {
				t.Errorf("%s, reads of %d: got %.60q (%d bytes), want %.60q (%d bytes)", tc.name, chunk, got, len(got), tc.want, len(tc.want))
			}
			switch {
			case tc.wantErr == nil && err != io.EOF, tc.wantErr == ErrWSClosed && err != ErrWSClosed:
				t.Errorf("%s, reads of %d: error %v, want %v", tc.name, chunk, err, tc.wantErr)
			case tc.wantErr != nil && tc.wantErr != ErrWSClosed && (err == nil || !strings.Contains(err.Error(), tc.wantErr.Error())):
				t.Errorf("%s, reads of %d: error %v, want one about %q", tc.name, chunk, err, tc.wantErr)
			}
			pongs := 0
			for out := c.out.Bytes(); len(out) > 0; {
				n := int(out[1]&0x7f) + 6
				op, p := unmask(t, out[:n])
				if op == wsPong {
					pongs++
					if tc.name == "ping between fragments" && string(p) != "p1" {
						t.Errorf("pong payload %q", p)
					}
				}
				out = out[n:]
			}
			if pongs != tc.pongs {
				t.Errorf("%s, reads of %d: %d pongs, want %d", tc.name, chunk, pongs, tc.pongs)
			}
		}
	}
}

func TestCheckUpgrade(t *testing.T) {
	const key = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3
	for _, tc := range []struct {
		name, head string
		ok         bool
	}{
		{"RFC 6455 example", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: xmpp", true},
		{"header case", "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSEC-WEBSOCKET-PROTOCOL: xmpp", true},
		{"refused", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0", false},
		{"wrong accept", "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: AAAA\r\nSec-WebSocket-Protocol: xmpp", false},
		{"no subprotocol", "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", false},
	} {
		if err := checkUpgrade(tc.head, key); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestUpgradeKeepsEarlyFrames: bytes that arrive with the HTTP response are frames.
func TestUpgradeKeepsEarlyFrames(t *testing.T) {
	// The accept value depends on the random key: answer after reading the request.
	done := make(chan struct{})
	pr, pw := net.Pipe()
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		n, _ := pr.Read(buf)
		var key string
		for _, l := range strings.Split(string(buf[:n]), "\r\n") {
			if v, ok := strings.CutPrefix(l, "Sec-WebSocket-Key: "); ok {
				key = v
			}
		}
		acc := "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n"
		pr.Write(append([]byte(acc), serverFrame(0x81, []byte("<open/>"))...))
	}()
	w, err := wsUpgrade(pw, "localhost", "/xmpp-websocket")
	if err != nil {
		t.Fatal(err)
	}
	<-done
	buf := make([]byte, 64)
	n, err := w.Read(buf)
	if err != nil || string(buf[:n]) != "<open/>" {
		t.Fatalf("%q, %v", buf[:n], err)
	}
}
