// Package link is the wire format of the internal link between an edge process and the
// core (DESIGN.md, deployment 2): the frames that carry many client connections over one
// TCP connection, and the mutual authentication that opens it.
//
// An edge owns sockets and TLS; the core owns XMPP. A channel is one client connection:
// the edge opens it when a client connects, both sides send the bytes of its stream as
// plaintext, and either side closes it. A core that federates through its edges also
// asks an edge to open a TCP connection for it (Connect): a channel the core numbers,
// whose bytes the edge relays untouched (TLS runs from the core to the peer). The link
// knows nothing of XMPP.
//
// It does not encrypt: run it over TLS (the edge dials with tls.Dial) when the network
// between edge and core is not trusted. Authentication binds to that TLS connection when
// there is one, so a man in the middle cannot relay a handshake. It does not reconnect,
// queue or retry: a lost link ends every channel on it, and clients reconnect (stream
// management resumes them).
package link

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Frame types. Edge to core: Open, Data, Closed, TLSUp, Drained, Connected. Core to edge:
// Data, Close, StartTLS, Drain, Connect. Either way: Ping, Pong.
const (
	// Open starts channel Chan: kind (1 byte), flags (1), the client's address.
	Open byte = 1 + iota
	// Data is bytes of the channel's stream, in order.
	Data
	// Close asks the edge to close the client's socket once the bytes before it are
	// written.
	Close
	// Closed says the client's socket is gone; payload: 1 if everything written to it
	// went out first, else 0.
	Closed
	// StartTLS asks the edge to write the payload (<proceed/>) in clear and then run a TLS
	// handshake on the client's next bytes.
	StartTLS
	// TLSUp says the client's TLS handshake is done, with what SASL channel binding needs
	// (EncodeTLS).
	TLSUp
	// Drain asks, with a 4-byte sequence number, whether every byte sent before it has
	// left the edge for the client's socket.
	Drain
	// Drained answers Drain: the sequence number, then 1 (written) or 0 (maybe not).
	Drained
	// Ping asks for a Pong: the link is alive end to end.
	Ping
	// Pong answers Ping.
	Pong
	// Connect asks the edge to open a TCP connection for the core (outbound federation) on a
	// channel the core numbered (CoreChan set): ConnectInfo. Data, Close and Closed then work
	// as on a client's channel; the edge relays bytes and never terminates TLS on it.
	Connect
	// Connected answers Connect: 1 and the address reached, or 0 and why not.
	Connected
	maxType = Connected
)

// Channel kinds: which of the edge's listeners the client connected to.
const (
	KindC2S byte = iota // RFC 6120 client stream, STARTTLS or direct TLS
	KindWeb             // HTTP: WebSocket (RFC 7395) and BOSH
	KindS2S             // RFC 6120 server-to-server stream, inbound
)

// CoreChan marks the channels the core opens (Connect): the edge numbers its own below it,
// so the two never meet.
const CoreChan = 1 << 31

// Open flags.
const (
	FlagDirectTLS byte = 1 << iota // TLS from the first byte: TLSUp comes before any Data
)

// HeaderLen is the length of a frame's header: length (4), type (1), channel (4).
const HeaderLen = 9

// MaxPayload bounds one frame's payload. Senders split longer writes (AppendData); a
// frame announcing more is an error, so a broken or hostile peer cannot make the reader
// buffer without end.
const MaxPayload = 64 << 10

// Frame is one decoded frame. Payload aliases the buffer it was parsed from.
type Frame struct {
	Type    byte
	Chan    uint32
	Payload []byte
}

// ErrShort is Parse's answer when b holds no complete frame yet.
var ErrShort = errors.New("link: incomplete frame")

// Parse decodes the frame at the start of b and returns it with its length.
func Parse(b []byte) (Frame, int, error) {
	if len(b) < HeaderLen {
		return Frame{}, 0, ErrShort
	}
	n := binary.BigEndian.Uint32(b)
	if n < 5 || n-5 > MaxPayload {
		return Frame{}, 0, fmt.Errorf("link: frame length %d out of range", n)
	}
	t := b[4]
	if t == 0 || t > maxType {
		return Frame{}, 0, fmt.Errorf("link: unknown frame type %d", t)
	}
	total := 4 + int(n)
	if len(b) < total {
		return Frame{}, 0, ErrShort
	}
	return Frame{Type: t, Chan: binary.BigEndian.Uint32(b[5:]), Payload: b[HeaderLen:total:total]}, total, nil
}

// Append appends one frame to b. p must be at most MaxPayload bytes.
func Append(b []byte, t byte, ch uint32, p []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(5+len(p)))
	b = append(b, t)
	b = binary.BigEndian.AppendUint32(b, ch)
	return append(b, p...)
}

// AppendData appends p as Data frames of at most MaxPayload bytes each.
func AppendData(b []byte, ch uint32, p []byte) []byte {
	for len(p) > MaxPayload {
		b = Append(b, Data, ch, p[:MaxPayload])
		p = p[MaxPayload:]
	}
	return Append(b, Data, ch, p)
}

// MaxRemote bounds an Open frame's client address (an IPv6 address with a zone and a
// port fits many times over).
const MaxRemote = 128

// OpenInfo is an Open frame's payload.
type OpenInfo struct {
	Kind   byte
	Flags  byte
	Remote string // the client's address, host:port
}

// Append encodes o; a Remote longer than MaxRemote is cut.
func (o OpenInfo) Append(b []byte) []byte {
	b = append(b, o.Kind, o.Flags)
	r := o.Remote
	if len(r) > MaxRemote {
		r = r[:MaxRemote]
	}
	return append(b, r...)
}

// ParseOpen decodes an Open frame's payload.
func ParseOpen(p []byte) (OpenInfo, error) {
	if len(p) < 2 || len(p) > 2+MaxRemote {
		return OpenInfo{}, errors.New("link: bad open payload")
	}
	if p[0] > KindS2S {
		return OpenInfo{}, fmt.Errorf("link: unknown channel kind %d", p[0])
	}
	return OpenInfo{Kind: p[0], Flags: p[1], Remote: string(p[2:])}, nil
}

// MaxConnectAddr bounds a Connect frame's address: a host name of 255 bytes and a port.
const MaxConnectAddr = 262

// ConnectInfo is a Connect frame's payload.
type ConnectInfo struct {
	Timeout time.Duration // for the TCP connection, millisecond resolution, at most ~49 days
	Addr    string        // host:port; the edge resolves a host name itself
}

// Append encodes d; an Addr longer than MaxConnectAddr is cut.
func (d ConnectInfo) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(min(d.Timeout.Milliseconds(), 1<<32-1)))
	a := d.Addr
	if len(a) > MaxConnectAddr {
		a = a[:MaxConnectAddr]
	}
	return append(b, a...)
}

// ParseConnect decodes a Connect frame's payload.
func ParseConnect(p []byte) (ConnectInfo, error) {
	if len(p) < 5 || len(p) > 4+MaxConnectAddr {
		return ConnectInfo{}, errors.New("link: bad dial payload")
	}
	return ConnectInfo{Timeout: time.Duration(binary.BigEndian.Uint32(p)) * time.Millisecond, Addr: string(p[4:])}, nil
}

// AppendConnected encodes a Connected payload: the address reached, or err. Text beyond
// MaxConnectAddr bytes is cut.
func AppendConnected(b []byte, addr string, err error) []byte {
	ok, text := byte(1), addr
	if err != nil {
		ok, text = 0, err.Error()
	}
	if len(text) > MaxConnectAddr {
		text = text[:MaxConnectAddr]
	}
	return append(append(b, ok), text...)
}

// ParseConnected decodes a Connected payload: the address reached, or the edge's error.
func ParseConnected(p []byte) (string, error) {
	if len(p) < 1 || p[0] > 1 || len(p) > 1+MaxConnectAddr {
		return "", errors.New("link: bad dialed payload")
	}
	if p[0] == 0 {
		return "", &ConnectError{Text: string(p[1:])}
	}
	return string(p[1:]), nil
}

// ConnectError is an edge's failure to connect for the core.
type ConnectError struct{ Text string }

func (e *ConnectError) Error() string { return "edge: " + e.Text }

// TLSInfo is a TLSUp frame's payload: the handshake as SASL needs to know it.
type TLSInfo struct {
	Version    uint16
	Suite      uint16
	ServerName string
	Exporter   []byte // RFC 9266 tls-exporter; empty when the connection cannot export
	EndPoint   []byte // RFC 5929 tls-server-end-point of the certificate the client got
	// PeerCerts is the chain the peer presented (DER), for XEP-0178 SASL EXTERNAL on
	// server-to-server streams; empty for clients.
	PeerCerts [][]byte
}

// Append encodes t.
func (t TLSInfo) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, t.Version)
	b = binary.BigEndian.AppendUint16(b, t.Suite)
	for _, f := range [][]byte{[]byte(t.ServerName), t.Exporter, t.EndPoint} {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	b = append(b, byte(len(t.PeerCerts)))
	for _, c := range t.PeerCerts {
		b = binary.BigEndian.AppendUint16(b, uint16(len(c)))
		b = append(b, c...)
	}
	return b
}

// Fits reports whether t's encoding fits one frame: a peer's certificate chain can be
// long, and one that does not fit is left out (the peer then authenticates with dialback).
func (t TLSInfo) Fits() bool {
	n := 4 + 3 + len(t.ServerName) + len(t.Exporter) + len(t.EndPoint) + 1
	for _, c := range t.PeerCerts {
		if len(c) > 0xffff {
			return false
		}
		n += 2 + len(c)
	}
	return len(t.ServerName) < 256 && len(t.Exporter) < 256 && len(t.EndPoint) < 256 && len(t.PeerCerts) < 256 && n <= MaxPayload
}

// ParseTLS decodes a TLSUp frame's payload.
func ParseTLS(p []byte) (TLSInfo, error) {
	bad := errors.New("link: bad tls payload")
	if len(p) < 4 {
		return TLSInfo{}, bad
	}
	t := TLSInfo{Version: binary.BigEndian.Uint16(p), Suite: binary.BigEndian.Uint16(p[2:])}
	p = p[4:]
	var f [3][]byte
	for i := range f {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return TLSInfo{}, bad
		}
		f[i] = p[1 : 1+int(p[0])]
		p = p[1+int(p[0]):]
	}
	if len(p) < 1 {
		return TLSInfo{}, bad
	}
	nc := int(p[0])
	p = p[1:]
	for range nc {
		if len(p) < 2 || len(p) < 2+int(binary.BigEndian.Uint16(p)) {
			return TLSInfo{}, bad
		}
		n := int(binary.BigEndian.Uint16(p))
		t.PeerCerts = append(t.PeerCerts, append([]byte(nil), p[2:2+n]...))
		p = p[2+n:]
	}
	if len(p) != 0 {
		return TLSInfo{}, bad
	}
	t.ServerName = string(f[0])
	if len(f[1]) > 0 {
		t.Exporter = append([]byte(nil), f[1]...)
	}
	if len(f[2]) > 0 {
		t.EndPoint = append([]byte(nil), f[2]...)
	}
	return t, nil
}

// --- authentication ---

// magic opens both sides' first message: protocol and version.
const magic = "VIREOLK1"

const nonceLen = 32

// HandshakeTimeout bounds the authentication exchange.
const HandshakeTimeout = 10 * time.Second

// ErrAuth is the answer to a peer that does not know the secret.
var ErrAuth = errors.New("link: authentication failed")

// Both sides prove they know the shared secret: the core sends a nonce, the edge answers
// with its own nonce, its name and an HMAC over both nonces, its name and the TLS
// exporter of the connection (when TLS carries the link); the core answers with its own
// HMAC over the same, under another label. Nothing in the exchange lets an eavesdropper
// learn the secret or replay a login.

func mac(secret []byte, label string, nc, ne []byte, name string, exp []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(magic + label))
	h.Write(nc)
	h.Write(ne)
	h.Write([]byte{byte(len(name))})
	h.Write([]byte(name))
	h.Write(exp)
	return h.Sum(nil)
}

// exporter is the link's binding to its TLS connection, nil over plain TCP.
func exporter(c net.Conn) []byte {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	b, err := cs.ExportKeyingMaterial("EXPORTER-vireo-link", nil, 32)
	if err != nil {
		return nil
	}
	return b
}

// Accept runs the core's side of the handshake on c and returns the edge's name. The
// caller closes c on error. c must not be read or written by anyone else meanwhile.
func Accept(c net.Conn, secret []byte) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("link: no secret configured")
	}
	c.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer c.SetDeadline(time.Time{})
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return "", fmt.Errorf("link: tls: %w", err)
		}
	}
	nc := make([]byte, nonceLen)
	rand.Read(nc)
	if _, err := c.Write(append([]byte(magic), nc...)); err != nil {
		return "", err
	}
	head := make([]byte, len(magic)+nonceLen+1)
	if _, err := io.ReadFull(c, head); err != nil {
		return "", err
	}
	if string(head[:len(magic)]) != magic {
		return "", errors.New("link: not a vireo edge")
	}
	ne := head[len(magic) : len(magic)+nonceLen]
	rest := make([]byte, int(head[len(head)-1])+sha256.Size)
	if _, err := io.ReadFull(c, rest); err != nil {
		return "", err
	}
	name := string(rest[:len(rest)-sha256.Size])
	exp := exporter(c)
	if !hmac.Equal(rest[len(rest)-sha256.Size:], mac(secret, "edge", nc, ne, name, exp)) {
		return name, ErrAuth
	}
	if _, err := c.Write(mac(secret, "core", nc, ne, name, exp)); err != nil {
		return name, err
	}
	return name, nil
}

// Dial runs the edge's side of the handshake on c, naming itself name (at most 255
// bytes). The caller closes c on error.
func Dial(c net.Conn, secret []byte, name string) error {
	if len(secret) == 0 {
		return errors.New("link: no secret configured")
	}
	if len(name) > 255 {
		return errors.New("link: edge name too long")
	}
	c.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer c.SetDeadline(time.Time{})
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("link: tls: %w", err)
		}
	}
	head := make([]byte, len(magic)+nonceLen)
	if _, err := io.ReadFull(c, head); err != nil {
		return err
	}
	if string(head[:len(magic)]) != magic {
		return errors.New("link: not a vireo core")
	}
	nc := head[len(magic):]
	ne := make([]byte, nonceLen)
	rand.Read(ne)
	exp := exporter(c)
	msg := append([]byte(magic), ne...)
	msg = append(msg, byte(len(name)))
	msg = append(msg, name...)
	msg = append(msg, mac(secret, "edge", nc, ne, name, exp)...)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("link: the core refused the handshake: %w", err)
	}
	if !hmac.Equal(got, mac(secret, "core", nc, ne, name, exp)) {
		return ErrAuth
	}
	return nil
}
