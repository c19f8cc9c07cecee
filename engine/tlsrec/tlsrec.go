// Package tlsrec is the record layer of an established TLS 1.3 connection (RFC 8446 §5),
// run over the application traffic secrets of a handshake done elsewhere (crypto/tls, whose
// KeyLogWriter exports them). It exists for memory: an idle connection holds two traffic
// secrets, keys, IVs and sequence numbers (a few hundred bytes); the AEAD states are built
// on first use and dropped again by Release, and ciphertext is decrypted in place in the
// caller's buffer.
//
// It owns: record framing and limits, AEAD protection with TLS 1.3 nonces and padding
// removal, KeyUpdate in both directions (with the request flag honoured, and our own update
// before a key reaches its usage limit), alerts in both directions, close_notify.
//
// It does not do: the handshake, TLS 1.2 or older, 0-RTT early data, post-handshake client
// authentication, session tickets (a peer's NewSessionTicket is an unexpected_message; a
// server sends its tickets during the handshake), the record_size_limit extension (RFC 8449),
// or I/O: ciphertext leaves through the write function given to New, and arrives through
// Open. It must not touch sockets.
package tlsrec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/valyala/bytebufferpool"
	"golang.org/x/crypto/chacha20poly1305"
)

// The TLS 1.3 cipher suites (RFC 8446 §B.4).
const (
	TLS_AES_128_GCM_SHA256       uint16 = 0x1301
	TLS_AES_256_GCM_SHA384       uint16 = 0x1302
	TLS_CHACHA20_POLY1305_SHA256 uint16 = 0x1303
)

const (
	hdrLen        = 5
	tagLen        = 16
	maxPlaintext  = 1 << 14            // RFC 8446 §5.1
	maxInner      = maxPlaintext + 1   // content plus its type byte; §5.4
	maxCiphertext = maxPlaintext + 256 // §5.2

	typeAlert       = 21
	typeHandshake   = 22
	typeApplication = 23

	hsKeyUpdate = 24

	// keyUpdateAfter is how many records we protect under one key before we update it
	// ourselves: RFC 8446 §5.5 allows 2^24.5 full-size records under one AES-GCM key.
	keyUpdateAfter = 1 << 24
)

// Alert is a TLS alert description (RFC 8446 §6). As an error it is one this side
// detected and sent to the peer.
type Alert uint8

// The alerts this layer sends or interprets.
const (
	AlertCloseNotify       Alert = 0
	AlertUnexpectedMessage Alert = 10
	AlertBadRecordMAC      Alert = 20
	AlertRecordOverflow    Alert = 22
	AlertIllegalParameter  Alert = 47
	AlertDecodeError       Alert = 50
	AlertInternalError     Alert = 80
	AlertUserCanceled      Alert = 90
)

var alertNames = map[Alert]string{
	AlertCloseNotify: "close_notify", AlertUnexpectedMessage: "unexpected_message",
	AlertBadRecordMAC: "bad_record_mac", AlertRecordOverflow: "record_overflow",
	AlertIllegalParameter: "illegal_parameter", AlertDecodeError: "decode_error",
	AlertInternalError: "internal_error", AlertUserCanceled: "user_canceled",
}

func (a Alert) String() string {
	if s, ok := alertNames[a]; ok {
		return s
	}
	return fmt.Sprintf("alert(%d)", uint8(a))
}

func (a Alert) Error() string { return "tlsrec: sent alert " + a.String() }

// PeerAlert is a fatal alert the peer sent.
type PeerAlert Alert

func (a PeerAlert) Error() string { return "tlsrec: peer sent alert " + Alert(a).String() }

// ErrClosed is returned by Write after Close or after a fatal error.
var ErrClosed = errors.New("tlsrec: closed")

type suite struct {
	id      uint16
	keyLen  int
	hashLen int // 32 (SHA-256) or 48 (SHA-384)
	aead    func(key []byte) (cipher.AEAD, error)
}

func aesGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

var suites = []*suite{
	{TLS_AES_128_GCM_SHA256, 16, sha256.Size, aesGCM},
	{TLS_AES_256_GCM_SHA384, 32, sha512.Size384, aesGCM},
	{TLS_CHACHA20_POLY1305_SHA256, 32, sha256.Size, chacha20poly1305.New},
}

func suiteByID(id uint16) *suite {
	for _, s := range suites {
		if s.id == id {
			return s
		}
	}
	return nil
}

// Supported reports whether id is a suite this layer implements.
func Supported(id uint16) bool { return suiteByID(id) != nil }

// sum hashes p with the suite's hash into out, returning the digest's length.
func (s *suite) sum(out *[48]byte, p []byte) int {
	if s.hashLen == sha512.Size384 {
		*out = sha512.Sum384(p)
		return sha512.Size384
	}
	d := sha256.Sum256(p)
	copy(out[:], d[:])
	return sha256.Size
}

// expandLabel is HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, for outputs no
// longer than the hash (every key, IV and secret here), which HKDF-Expand makes in one
// HMAC. It computes that HMAC (RFC 2104) over stack buffers: a handshake derives six of
// these, a KeyUpdate two, and crypto/hmac allocates two hash states and their pads for each.
func (s *suite) expandLabel(out []byte, secret []byte, label string) {
	n := len(out)
	bs := 64 // SHA-256's block
	if s.hashLen == sha512.Size384 {
		bs = 128
	}
	if n > s.hashLen || len(secret) > bs || len(label) > 32 {
		panic("tlsrec: expandLabel beyond one block") // never ours
	}
	// info (HkdfLabel) followed by HKDF's counter byte 0x01.
	var msg [4 + 6 + 32 + 1]byte
	binary.BigEndian.PutUint16(msg[:], uint16(n))
	msg[2] = byte(6 + len(label))
	m := 3 + copy(msg[3:], "tls13 ")
	m += copy(msg[m:], label)
	msg[m] = 0 // empty context
	msg[m+1] = 1
	m += 2

	var buf [128 + 48]byte
	var sum [48]byte
	for i := range bs {
		var k byte
		if i < len(secret) {
			k = secret[i]
		}
		buf[i] = k ^ 0x36
	}
	copy(buf[bs:], msg[:m])
	h := s.sum(&sum, buf[:bs+m])
	for i := range bs {
		buf[i] ^= 0x36 ^ 0x5c
	}
	copy(buf[bs:], sum[:h])
	s.sum(&sum, buf[:bs+h])
	copy(out, sum[:n])
}

// half is one direction's state.
type half struct {
	secret [48]byte // current traffic secret, the hash's length used
	key    [32]byte
	iv     [12]byte
	seq    uint64
	aead   cipher.AEAD // nil until used, and again after Release
	used   bool        // touched since the last Release
}

func (h *half) set(s *suite, secret []byte) {
	n := s.hashLen
	copy(h.secret[:], secret[:n])
	s.expandLabel(h.key[:s.keyLen], secret[:n], "key")
	s.expandLabel(h.iv[:], secret[:n], "iv")
	h.seq = 0
	h.aead = nil
}

// update moves to the next traffic secret (§7.2).
func (h *half) update(s *suite) {
	var next [48]byte
	s.expandLabel(next[:s.hashLen], h.secret[:s.hashLen], "traffic upd")
	h.set(s, next[:s.hashLen])
}

func (h *half) cipher(s *suite) (cipher.AEAD, error) {
	h.used = true
	if h.aead == nil {
		a, err := s.aead(h.key[:s.keyLen])
		if err != nil {
			return nil, err
		}
		h.aead = a
	}
	return h.aead, nil
}

// nonce is the per-record nonce of §5.3: the IV xor the 64-bit sequence number.
func (h *half) nonce(n *[12]byte) {
	*n = h.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], h.seq)
	for i := range s {
		n[4+i] ^= s[i]
	}
}

// Conn is the record layer of one connection. Open runs on one goroutine at a time (the
// event loop); Write, Close and Release may be called from any goroutine.
type Conn struct {
	s     *suite
	write func([]byte) error

	rmu     sync.Mutex
	in      half
	partial *bytebufferpool.ByteBuffer // an incomplete record carried to the next Open
	hs      [5]byte                    // an incomplete post-handshake message
	hsN     uint8
	useless uint8 // records in a row that brought no application data
	rerr    error

	wmu  sync.Mutex
	out  half
	werr error
}

// New returns the record layer of a connection that uses suite id, reading under readSecret
// and writing under writeSecret, with the sequence numbers already used under each (a server
// that sent session tickets under its application key has used some). write receives
// ciphertext and must copy it before returning.
func New(id uint16, readSecret, writeSecret []byte, readSeq, writeSeq uint64, write func([]byte) error) (*Conn, error) {
	s := suiteByID(id)
	if s == nil {
		return nil, fmt.Errorf("tlsrec: unsupported cipher suite %#04x", id)
	}
	n := s.hashLen
	if len(readSecret) != n || len(writeSecret) != n {
		return nil, fmt.Errorf("tlsrec: traffic secrets must be %d bytes", n)
	}
	c := &Conn{s: s, write: write}
	c.in.set(s, readSecret)
	c.out.set(s, writeSecret)
	c.in.seq, c.out.seq = readSeq, writeSeq
	return c, nil
}

// Open decrypts the records in data, in place, and passes each record's application data
// to deliver (which must not keep the slice). A record cut off at the end of data is copied
// and completed by the next call. It returns io.EOF after the peer's close_notify, a
// PeerAlert after any other alert from the peer, and an Alert after a fault it detected and
// reported to the peer (bad_record_mac for a record that fails authentication); after an
// error every further call returns the same error.
func (c *Conn) Open(data []byte, deliver func(plain []byte)) error {
	for {
		c.rmu.Lock()
		if c.rerr != nil {
			err := c.rerr
			c.rmu.Unlock()
			return err
		}
		rec, rest, carried, err := c.next(data)
		if err != nil || rec == nil {
			c.rmu.Unlock()
			if err != nil {
				return c.fail(err)
			}
			return nil
		}
		data = rest
		plain, err := c.openRecord(rec)
		c.rmu.Unlock()
		if err == nil && len(plain) > 0 {
			deliver(plain)
		}
		if carried {
			c.rmu.Lock()
			bytebufferpool.Put(c.partial)
			c.partial = nil
			c.rmu.Unlock()
		}
		if err != nil {
			return c.fail(err)
		}
	}
}

// next finds the next complete record: in data, or completed in the carried buffer
// (carried is then true). It returns a nil record when data runs out first, having kept
// the incomplete tail.
func (c *Conn) next(data []byte) (rec, rest []byte, carried bool, err error) {
	if c.partial == nil {
		if len(data) < hdrLen {
			c.carry(data, hdrLen)
			return nil, nil, false, nil
		}
		n, err := recordLen(data)
		if err != nil {
			return nil, nil, false, err
		}
		if len(data) < hdrLen+n {
			c.carry(data, hdrLen+n)
			return nil, nil, false, nil
		}
		return data[:hdrLen+n], data[hdrLen+n:], false, nil
	}
	p := c.partial
	if len(p.B) < hdrLen {
		k := min(hdrLen-len(p.B), len(data))
		p.B = append(p.B, data[:k]...)
		data = data[k:]
		if len(p.B) < hdrLen {
			return nil, nil, false, nil
		}
	}
	n, err := recordLen(p.B)
	if err != nil {
		return nil, nil, false, err
	}
	k := min(hdrLen+n-len(p.B), len(data))
	p.B = append(p.B, data[:k]...)
	data = data[k:]
	if len(p.B) < hdrLen+n {
		return nil, nil, false, nil
	}
	return p.B, data, true, nil
}

func (c *Conn) carry(data []byte, want int) {
	if len(data) == 0 {
		return
	}
	if 2*len(data) < want {
		// A trickle (a few bytes of a record that declares 16 KiB): hold what came, not
		// what the header promises, or a peer sending six bytes per connection would
		// make each hold a record's worth. It grows as the rest arrives.
		c.partial = &bytebufferpool.ByteBuffer{B: append(make([]byte, 0, 2*len(data)+hdrLen), data...)}
		return
	}
	c.partial = bytebufferpool.Get()
	c.partial.B = append(slices.Grow(c.partial.B[:0], want), data...)
}

// recordLen checks a record header after the handshake: every record is protected, so its
// outer type is application_data (§5.2); legacy_record_version is ignored as §5.1 says.
func recordLen(h []byte) (int, error) {
	if h[0] != typeApplication {
		return 0, AlertUnexpectedMessage
	}
	n := int(binary.BigEndian.Uint16(h[3:5]))
	if n > maxCiphertext {
		return 0, AlertRecordOverflow
	}
	return n, nil
}

// openRecord authenticates and decrypts rec in place and handles what is not application
// data. It returns the application data, if any.
func (c *Conn) openRecord(rec []byte) ([]byte, error) {
	a, err := c.in.cipher(c.s)
	if err != nil {
		return nil, AlertInternalError
	}
	var nonce [12]byte
	c.in.nonce(&nonce)
	inner, err := a.Open(rec[hdrLen:hdrLen], nonce[:], rec[hdrLen:], rec[:hdrLen])
	if err != nil {
		return nil, AlertBadRecordMAC
	}
	c.in.seq++
	if len(inner) > maxInner {
		return nil, AlertRecordOverflow
	}
	// §5.4: the content type is the last non-zero byte; zeros after it are padding.
	i := len(inner) - 1
	for i >= 0 && inner[i] == 0 {
		i--
	}
	if i < 0 {
		return nil, AlertUnexpectedMessage
	}
	typ, body := inner[i], inner[:i]
	if c.hsN > 0 && typ != typeHandshake {
		return nil, AlertUnexpectedMessage // §5.1: handshake messages are not interleaved
	}
	if typ == typeApplication && len(body) > 0 {
		c.useless = 0
	} else if c.useless++; c.useless > maxUseless {
		// Empty records, warnings and KeyUpdates (each a key derivation, and one of ours
		// when requested) cost the server and carry nothing: a run of them is an attack
		// (crypto/tls draws the line at the same count).
		return nil, AlertUnexpectedMessage
	}
	switch typ {
	case typeApplication:
		return body, nil
	case typeAlert:
		return nil, c.peerAlert(body)
	case typeHandshake:
		return nil, c.handshake(body)
	default:
		return nil, AlertUnexpectedMessage // change_cipher_spec after Finished, or unknown
	}
}

// maxUseless is how many records in a row may bring no application data.
const maxUseless = 16

func (c *Conn) peerAlert(body []byte) error {
	if len(body) == 0 {
		return AlertUnexpectedMessage // §5.4: no zero-length alert content
	}
	if len(body) != 2 {
		return AlertDecodeError // §5.1: alerts are neither fragmented nor coalesced
	}
	switch a := Alert(body[1]); a {
	case AlertCloseNotify:
		c.rerr = io.EOF
		return io.EOF
	case AlertUserCanceled:
		return nil // §6.1: a warning, to be followed by close_notify
	default:
		c.rerr = PeerAlert(a)
		return c.rerr
	}
}

// handshake takes post-handshake messages. After the handshake a server accepts only
// KeyUpdate from a client (§4.6.3); anything else is an unexpected_message.
func (c *Conn) handshake(body []byte) error {
	if len(body) == 0 {
		return AlertUnexpectedMessage // §5.1: no zero-length handshake fragments
	}
	for len(body) > 0 {
		k := copy(c.hs[c.hsN:], body)
		c.hsN += uint8(k)
		body = body[k:]
		if c.hs[0] != hsKeyUpdate {
			return AlertUnexpectedMessage
		}
		if c.hsN >= 4 && (c.hs[1] != 0 || c.hs[2] != 0 || c.hs[3] != 1) {
			return AlertDecodeError
		}
		if c.hsN < 5 {
			if len(body) > 0 {
				return AlertDecodeError // cannot happen: copy filled what it could
			}
			return nil // continued in the next record
		}
		if len(body) > 0 {
			return AlertUnexpectedMessage // §5.1: a KeyUpdate ends its record (no spanning key changes)
		}
		req := c.hs[4]
		c.hsN = 0
		if req > 1 {
			return AlertIllegalParameter
		}
		c.in.update(c.s)
		if req == 1 {
			// §4.6.3: answer with our own update before sending more under the old key.
			c.wmu.Lock()
			err := c.keyUpdateLocked(false)
			c.wmu.Unlock()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// fail reports err: an Alert we detected goes to the peer (fatal), and the connection
// is dead for reading and writing.
func (c *Conn) fail(err error) error {
	c.rmu.Lock()
	if c.rerr == nil {
		c.rerr = err
	}
	c.rmu.Unlock()
	if a, ok := err.(Alert); ok {
		c.wmu.Lock()
		c.sendAlertLocked(a)
		c.werr = ErrClosed
		c.wmu.Unlock()
	}
	return err
}

// Write protects p in records of at most 2^14 bytes and passes them to the write function
// in one call.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if len(p) == 0 {
		return 0, nil
	}
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	buf.B = buf.B[:0]
	n := 0
	for n < len(p) {
		k := min(len(p)-n, maxPlaintext)
		var err error
		if buf.B, err = c.seal(buf.B, typeApplication, p[n:n+k]); err != nil {
			return 0, err
		}
		n += k
	}
	if err := c.write(buf.B); err != nil {
		c.werr = err
		return 0, err
	}
	if c.out.seq >= keyUpdateAfter {
		if err := c.keyUpdateLocked(false); err != nil {
			return n, err
		}
	}
	return n, nil
}

// KeyUpdate updates our sending key, asking the peer to update its own when request is set
// (§4.6.3).
func (c *Conn) KeyUpdate(request bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	return c.keyUpdateLocked(request)
}

func (c *Conn) keyUpdateLocked(request bool) error {
	if c.werr != nil {
		return nil // closed: the peer will not read an update anyway
	}
	msg := []byte{hsKeyUpdate, 0, 0, 1, 0}
	if request {
		msg[4] = 1
	}
	b, err := c.seal(nil, typeHandshake, msg)
	if err == nil {
		err = c.write(b)
	}
	if err != nil {
		c.werr = err
		return err
	}
	c.out.update(c.s)
	return nil
}

// seal appends one protected record of content type typ carrying p to dst.
func (c *Conn) seal(dst []byte, typ byte, p []byte) ([]byte, error) {
	t := [1]byte{typ}
	return c.sealInner(dst, p, t[:])
}

// sealInner appends one protected record whose TLSInnerPlaintext is p followed by tail.
func (c *Conn) sealInner(dst, p, tail []byte) ([]byte, error) {
	a, err := c.out.cipher(c.s)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	n := len(p) + len(tail) + tagLen
	dst = slices.Grow(dst, hdrLen+n)
	dst = append(dst, typeApplication, 3, 3, byte(n>>8), byte(n))
	dst = append(dst, p...)
	dst = append(dst, tail...)
	var nonce [12]byte
	c.out.nonce(&nonce)
	a.Seal(dst[start+hdrLen:start+hdrLen], nonce[:], dst[start+hdrLen:], dst[start:start+hdrLen])
	c.out.seq++
	return dst[:start+hdrLen+n], nil
}

func (c *Conn) sendAlertLocked(a Alert) {
	if c.werr != nil {
		return
	}
	level := byte(2) // fatal
	if a == AlertCloseNotify || a == AlertUserCanceled {
		level = 1
	}
	if b, err := c.seal(nil, typeAlert, []byte{level, byte(a)}); err == nil {
		c.write(b)
	}
}

// Close sends close_notify; later writes fail with ErrClosed.
func (c *Conn) Close() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.sendAlertLocked(AlertCloseNotify)
	c.werr = ErrClosed
	return nil
}

// Release drops the AEAD state of each direction not used since the previous Release, so a
// connection idle between two calls keeps only secrets, keys, IVs and sequence numbers. It
// skips a direction that is busy. It reports whether neither direction holds AEAD state
// now.
func (c *Conn) Release() bool {
	in := c.in.release(&c.rmu)
	out := c.out.release(&c.wmu)
	return in && out
}

// release is one direction of Release, under mu unless that is held (busy: false).
func (h *half) release(mu *sync.Mutex) bool {
	if !mu.TryLock() {
		return false
	}
	defer mu.Unlock()
	if !h.used {
		h.aead = nil
	}
	h.used = false
	return h.aead == nil
}

// Seqs returns the read and write sequence numbers (for tests and diagnostics).
func (c *Conn) Seqs() (read, write uint64) {
	c.rmu.Lock()
	read = c.in.seq
	c.rmu.Unlock()
	c.wmu.Lock()
	write = c.out.seq
	c.wmu.Unlock()
	return read, write
}

// Probe recognises records protected under one traffic secret: the handover from a
// handshake counts, with it, the records the handshake code already sent under the
// application key, which fixes the sequence number to continue from.
type Probe struct {
	s *suite
	h half
}

// NewProbe returns a Probe for records protected under secret with suite id, from sequence
// number zero.
func NewProbe(id uint16, secret []byte) (*Probe, error) {
	s := suiteByID(id)
	if s == nil {
		return nil, fmt.Errorf("tlsrec: unsupported cipher suite %#04x", id)
	}
	if len(secret) != s.hashLen {
		return nil, fmt.Errorf("tlsrec: traffic secret must be %d bytes", s.hashLen)
	}
	p := &Probe{s: s}
	p.h.set(s, secret)
	return p, nil
}

// Writer returns a Conn that reads under readSecret from sequence number readSeq and
// writes under the probe's key from the record after the last one Try accepted, keeping
// the cipher state the probe already built. The probe must not be used afterwards.
func (p *Probe) Writer(readSecret []byte, readSeq uint64, write func([]byte) error) (*Conn, error) {
	if len(readSecret) != p.s.hashLen {
		return nil, fmt.Errorf("tlsrec: traffic secrets must be %d bytes", p.s.hashLen)
	}
	c := &Conn{s: p.s, write: write}
	c.in.set(p.s, readSecret)
	c.in.seq = readSeq
	c.out = p.h
	return c, nil
}

// Try reports whether rec (one whole record, left unchanged) opens under the probe's key at
// its next sequence number, and if so moves to the next.
func (p *Probe) Try(rec []byte) bool {
	if len(rec) < hdrLen+tagLen+1 {
		return false
	}
	a, err := p.h.cipher(p.s)
	if err != nil {
		return false
	}
	var nonce [12]byte
	p.h.nonce(&nonce)
	if _, err := a.Open(nil, nonce[:], rec[hdrLen:], rec[:hdrLen]); err != nil {
		return false
	}
	p.h.seq++
	return true
}
