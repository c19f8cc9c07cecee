package loadgen

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
)

// RFC 7395 XMPP over WebSocket (RFC 6455) as a transport under a Session. The session
// keeps reading and writing XML through s.conn; with Config.WSPath set, s.conn is a
// wsConn that puts every Write in one masked text frame and hands Read the payload of
// the server's text frames with the frame headers cut out in place, in the caller's
// buffer. Messages split over several frames or reads need nothing more: the tokenizer
// already reassembles elements from whatever pieces the reads return. There is no
// goroutine and no buffer of its own per connection: a few words of state, and a
// pooled buffer only for the length of one Write.
//
// The XMPP side of the framing is in the Session: restart sends <open/> instead of the
// stream header and feeds the tokenizer a stream header of its own, so that the server's
// <open/> and every later element parse as top-level elements of that stream (the
// server's <open/> is skipped like any element the caller does not expect); <close/>
// from the server reads as the end of the stream, and Close sends <close/>.

const nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// wsStreamHeader is what the tokenizer sees in place of the server's <open/>.
var wsStreamHeader = []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")

// WebSocket opcodes.
const (
	wsCont  = 0x0
	wsText  = 0x1
	wsBin   = 0x2
	wsClose = 0x8
	wsPing  = 0x9
	wsPong  = 0xa
)

// ErrWSClosed is what Read returns after the server's close frame.
var ErrWSClosed = errors.New("loadgen: WebSocket closed by the server")

// wsConn is a client WebSocket over an established (and, for wss://, TLS) connection.
// Read must be called from one goroutine at a time; Write is safe for concurrent use
// as far as the underlying connection's Write is (one Write call per frame).
type wsConn struct {
	net.Conn
	pend   []byte   // bytes read with the HTTP response, before any frame was asked for
	left   uint64   // payload bytes of the current frame still to come
	hdr    [14]byte // a frame header split across reads
	hn     uint8    // bytes of hdr filled
	op     uint8    // opcode of the current frame
	inData bool     // the current frame's payload is being read
	ctl    []byte   // the payload of a control frame being read (at most 125 bytes)
}

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Write sends p, one element, as one masked text frame. A stanza (iq, message,
// presence) whose start tag declares no default namespace gets xmlns='jabber:client':
// over WebSocket every message is a document of its own (RFC 7395 §3.3.3), and the
// session's writers leave it out, as the stream header supplies it on TCP.
func (w *wsConn) Write(p []byte) (int, error) {
	if err := w.writeFrame(wsText, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

var clientNS = []byte(" xmlns='jabber:client'")

// stanzaNSAt returns where xmlns='jabber:client' goes in p (after the element name), or
// -1 when p is not a stanza or declares its default namespace already.
func stanzaNSAt(p []byte) int {
	var k int
	switch {
	case bytes.HasPrefix(p, []byte("<iq")):
		k = 3
	case bytes.HasPrefix(p, []byte("<message")):
		k = 8
	case bytes.HasPrefix(p, []byte("<presence")):
		k = 9
	default:
		return -1
	}
	if k < len(p) && p[k] != ' ' && p[k] != '>' && p[k] != '/' && p[k] != '\t' && p[k] != '\n' && p[k] != '\r' {
		return -1 // <iqx…>, <messages…>
	}
	end := bytes.IndexByte(p, '>')
	if end < 0 {
		end = len(p)
	}
	if bytes.Contains(p[k:end], []byte("xmlns=")) {
		return -1
	}
	return k
}

func (w *wsConn) writeFrame(op byte, p []byte) error {
	bp := framePool.Get().(*[]byte)
	var b []byte
	if k := stanzaNSAt(p); op == wsText && k >= 0 {
		b = appendFrame((*bp)[:0], op, rand.Uint32(), p[:k], clientNS, p[k:])
	} else {
		b = appendFrame((*bp)[:0], op, rand.Uint32(), p, nil, nil)
	}
	_, err := w.Conn.Write(b)
	if cap(b) <= 64<<10 { // keep the pool small
		*bp = b[:0]
		framePool.Put(bp)
	}
	return err
}

// appendFrame appends a final frame with opcode op whose payload is a, b and c one after
// the other, masked with key.
func appendFrame(dst []byte, op byte, key uint32, a, b, c []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(a) + len(b) + len(c); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = binary.BigEndian.AppendUint32(dst, key)
	start := len(dst)
	dst = append(append(append(dst, a...), b...), c...)
	maskBytes(dst[start:], key)
	return dst
}

// maskBytes XORs b with the 4-byte key (big-endian, as on the wire), eight bytes at a time.
func maskBytes(b []byte, key uint32) {
	var k [8]byte
	binary.BigEndian.PutUint32(k[:4], key)
	binary.BigEndian.PutUint32(k[4:], key)
	k64 := binary.LittleEndian.Uint64(k[:])
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= k[i&3]
	}
}

// Read returns text payload bytes: it reads into p and cuts the frame headers out in place.
func (w *wsConn) Read(p []byte) (int, error) {
	for {
		var n int
		var err error
		if len(w.pend) > 0 {
			n = copy(p, w.pend)
			w.pend = w.pend[n:]
			if len(w.pend) == 0 {
				w.pend = nil
			}
		} else {
			n, err = w.Conn.Read(p)
		}
		m, ferr := w.deframe(p[:n])
		if ferr != nil {
			return m, ferr
		}
		if m > 0 || err != nil {
			return m, err
		}
	}
}

// deframe removes frame headers and control frames from b in place and returns how many
// payload bytes of text (and continuation) frames it kept at the front of b. Control
// frames are answered: a ping with a pong, a close with ErrWSClosed.
func (w *wsConn) deframe(b []byte) (int, error) {
	j := 0
	for i := 0; i < len(b); {
		if !w.inData {
			need := 2
			if w.hn >= 2 {
				switch w.hdr[1] & 0x7f {
				case 126:
					need = 4
				case 127:
					need = 10
				}
			}
			k := copy(w.hdr[w.hn:need], b[i:])
			w.hn += uint8(k)
			i += k
			if int(w.hn) < need || need == 2 && w.hdr[1]&0x7f >= 126 {
				continue // more header to come (or the extended length is still unknown)
			}
			op := w.hdr[0] & 0x0f
			if w.hdr[1]&0x80 != 0 {
				return j, errors.New("loadgen: masked frame from the server")
			}
			if w.hdr[0]&0x70 != 0 {
				return j, errors.New("loadgen: reserved bits set in a frame from the server")
			}
			var n uint64
			switch need {
			case 2:
				n = uint64(w.hdr[1] & 0x7f)
			case 4:
				n = uint64(binary.BigEndian.Uint16(w.hdr[2:4]))
			default:
				n = binary.BigEndian.Uint64(w.hdr[2:10])
			}
			switch op {
			case wsCont, wsText:
			case wsClose, wsPing, wsPong:
				if n > 125 || w.hdr[0]&0x80 == 0 {
					return j, errors.New("loadgen: bad control frame from the server")
				}
			default:
				return j, fmt.Errorf("loadgen: unexpected WebSocket opcode %d", op)
			}
			w.hn, w.op, w.left, w.inData = 0, op, n, true
		}
		k := int(min(w.left, uint64(len(b)-i)))
		if w.op == wsCont || w.op == wsText {
			j += copy(b[j:], b[i:i+k])
		} else {
			w.ctl = append(w.ctl, b[i:i+k]...)
		}
		i += k
		w.left -= uint64(k)
		if w.left > 0 {
			continue
		}
		w.inData = false
		if w.op >= wsClose {
			err := w.control()
			w.ctl = nil
			if err != nil {
				return j, err
			}
		}
	}
	return j, nil
}

func (w *wsConn) control() error {
	switch w.op {
	case wsPing:
		return w.writeFrame(wsPong, w.ctl)
	case wsClose:
		var code [2]byte
		if len(w.ctl) >= 2 {
			copy(code[:], w.ctl[:2])
		}
		w.writeFrame(wsClose, code[:])
		return ErrWSClosed
	}
	return nil
}

// Close sends a close frame (1000) and closes the connection.
func (w *wsConn) Close() error {
	w.writeFrame(wsClose, []byte{0x03, 0xe8})
	return w.Conn.Close()
}

// wsUpgrade performs the client side of the opening handshake for path with Host: host
// and subprotocol xmpp, and returns the WebSocket.
func wsUpgrade(c net.Conn, host, path string) (*wsConn, error) {
	var nonce [16]byte
	binary.LittleEndian.PutUint64(nonce[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(nonce[8:], rand.Uint64())
	key := base64.StdEncoding.EncodeToString(nonce[:])
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 1024)
	var tmp [1024]byte
	for {
		n, err := c.Read(tmp[:])
		buf = append(buf, tmp[:n]...)
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			w := &wsConn{Conn: c}
			if rest := buf[i+4:]; len(rest) > 0 {
				w.pend = append([]byte(nil), rest...)
			}
			return w, checkUpgrade(string(buf[:i]), key)
		}
		if err != nil {
			return nil, fmt.Errorf("loadgen: WebSocket upgrade: %w", err)
		}
		if len(buf) > 16<<10 {
			return nil, errors.New("loadgen: WebSocket upgrade: response head too long")
		}
	}
}

// checkUpgrade checks the server's answer to the opening handshake (RFC 6455 §4.1).
func checkUpgrade(head, key string) error {
	lines := strings.Split(head, "\r\n")
	if f := strings.Fields(lines[0]); len(f) < 2 || f[1] != "101" {
		return fmt.Errorf("loadgen: WebSocket upgrade refused: %q", lines[0])
	}
	h := map[string]string{}
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok {
			h[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	if h["sec-websocket-accept"] != acceptFor(key) {
		return errors.New("loadgen: WebSocket upgrade: wrong Sec-WebSocket-Accept")
	}
	if !strings.EqualFold(h["sec-websocket-protocol"], "xmpp") {
		return fmt.Errorf("loadgen: WebSocket upgrade: subprotocol %q, not xmpp", h["sec-websocket-protocol"])
	}
	return nil
}

// acceptFor is the Sec-WebSocket-Accept value for key.
func acceptFor(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}
