// Package tlsconn runs TLS on bytes that an event loop delivers, so a TLS connection needs
// no goroutine while it is idle, and after a TLS 1.3 handshake, none of crypto/tls's state.
//
// The handshake is crypto/tls's. It cannot be resumed after a "no data yet" return, so it
// runs in a short-lived goroutine whose transport Read blocks until Feed hands it more bytes.
// While it runs, the transport hands crypto/tls at most one record per Read, so when the
// client's Finished has been read nothing after it sits in crypto/tls's buffers.
//
// After a TLS 1.3 handshake the connection moves to engine/tlsrec: the application traffic
// secrets come from a per-connection KeyLogWriter (installed through GetConfigForClient, see
// Prepare), the server's write sequence number is the count of records crypto/tls protected
// under its application key (its session tickets, found by trying each outgoing record
// against that key), the client's is zero. The tls.Conn is then dropped, and records are
// decrypted in place in the loop's read buffer. What channel binding needs later (the
// tls-exporter value, the server name) is kept until Authenticated.
//
// TLS 1.2 connections, and any TLS 1.3 connection whose handover cannot be proven exact,
// stay on crypto/tls: Read decrypts on the caller's goroutine (the event loop), and the
// transport's Read returns a net.Error whose Temporary() is true when it has no bytes, which
// crypto/tls treats as "no data yet" (Go 1.26 crypto/tls/conn.go, readRecordOrCCS).
//
// It owns the transport adaptor and its buffer of fed ciphertext, which is nil whenever
// everything fed has been consumed. It must not touch sockets: ciphertext leaves through the
// write function the engine passes in.
package tlsconn

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/vireo-im/vireo/engine/tlsrec"
)

// ErrClosed is returned by Read and Write after Close.
var ErrClosed = errors.New("tlsconn: closed")

// errNoData is what the transport returns to crypto/tls when the loop has no bytes for it.
type noData struct{}

func (noData) Error() string   { return "tlsconn: no data yet" }
func (noData) Timeout() bool   { return false }
func (noData) Temporary() bool { return true }

var errNoData net.Error = noData{}

// Info is what the engine needs to know of a finished handshake.
type Info struct {
	Version     uint16
	CipherSuite uint16
	DidResume   bool
	// Records is true when the connection runs on engine/tlsrec rather than crypto/tls.
	Records bool
}

// binding is kept from the handshake until authentication, for SASL channel binding and
// SASL EXTERNAL.
type binding struct {
	exporter   []byte // RFC 9266 tls-exporter; nil when the connection cannot export (TLS 1.2 without EMS)
	serverName string
	peerCerts  []*x509.Certificate // what a peer that was asked for a certificate sent (s2s, XEP-0178)
}

// Conn is one server-side TLS connection fed from an event loop.
type Conn struct {
	tc   *tls.Conn    // until the handover, or for good on TLS 1.2
	rec  *tlsrec.Conn // after a TLS 1.3 handover
	tr   transport
	done func(error)
	hs   atomic.Bool // handshake finished successfully
	bad  atomic.Bool // handshake failed
	info Info
	cb   atomic.Pointer[binding]
}

// transport is the net.Conn that crypto/tls reads from and writes to.
type transport struct {
	mu          sync.Mutex
	cond        sync.Cond
	in          []byte // fed, not yet consumed ciphertext; nil when drained
	handshaking bool
	closed      bool
	write       func([]byte) error
	// Record boundaries of what crypto/tls reads during the handshake.
	hdr  [5]byte
	hdrN int
	body int // bytes left in the record being read
	hand *handover
}

// handover collects, during the handshake, what the move to tlsrec needs.
type handover struct {
	mu           sync.Mutex
	clientSecret []byte
	serverSecret []byte
	suite        uint16
	probe        *tlsrec.Probe // the server's application key, to count records under it
	written      uint64        // records protected under the server's application key
	unsure       bool          // something did not parse: stay on crypto/tls
}

// idleWorker is how long a handshake goroutine waits for the next handshake before it
// exits.
const idleWorker = 10 * time.Second

// workers hands a handshake to a goroutine that finished one and waits for the next: a
// handshake runs ~30 KiB deep in crypto/tls, and a new goroutine grows its stack there by
// copying it three or four times, which cost 5% of a TLS login's CPU.
var workers = make(chan *Conn)

// run starts c's handshake on a waiting worker, or on a new one.
func run(c *Conn) {
	select {
	case workers <- c:
	default:
		go work(c)
	}
}

func work(c *Conn) {
	var t *time.Timer
	for {
		c.handshake()
		if t == nil {
			t = time.NewTimer(idleWorker)
		} else {
			t.Reset(idleWorker)
		}
		select {
		case c = <-workers:
			t.Stop()
		case <-t.C:
			return
		}
	}
}

// Prepare returns a server config for Server: base, with a GetConfigForClient that gives each
// handshake its own KeyLogWriter (the traffic secrets of the handover). Session tickets keep
// using base's keys (crypto/tls uses the original config's keys for a config returned by
// GetConfigForClient that sets none). Call it once per configuration, not per connection.
func Prepare(base *tls.Config) *tls.Config {
	if base == nil {
		return nil
	}
	cfg := base.Clone()
	inner := base.GetConfigForClient
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		eff := base
		if inner != nil {
			c, err := inner(hello)
			if err != nil {
				return nil, err
			}
			if c != nil {
				eff = c
			}
		}
		tr, ok := hello.Conn.(*transport)
		if !ok || tr.hand == nil || eff.MaxVersion != 0 && eff.MaxVersion < tls.VersionTLS13 {
			if eff == base {
				return nil, nil
			}
			return eff, nil
		}
		c := eff.Clone()
		c.GetConfigForClient = nil
		c.KeyLogWriter = tr.hand
		return c, nil
	}
	return cfg
}

// Server wraps a new server-side TLS connection and starts its handshake on a handshake
// goroutine. write gets ciphertext and must take ownership (copy) before returning; done is
// called once when the handshake ends, from the handshake goroutine. A cfg made by Prepare
// lets TLS 1.3 connections move to tlsrec after the handshake.
//
// The handshake has no deadline of its own: the caller closes a connection whose client
// stops halfway (the engine's pre-authentication timeout), and Close ends the handshake.
// A timer and crypto/tls's context watcher goroutine per handshake cost more than the
// engine's sweep, which runs anyway.
func Server(cfg *tls.Config, write func(b []byte) error, done func(err error)) *Conn {
	c := &Conn{done: done}
	c.tr.cond.L = &c.tr.mu
	c.tr.write = write
	c.tr.handshaking = true
	c.tr.hand = &handover{}
	c.tc = tls.Server(&c.tr, cfg)
	run(c)
	return c
}

func (c *Conn) handshake() {
	err := c.tc.Handshake()
	if err == nil {
		cs := c.tc.ConnectionState()
		c.info = Info{Version: cs.Version, CipherSuite: cs.CipherSuite, DidResume: cs.DidResume}
		b := &binding{serverName: cs.ServerName, peerCerts: cs.PeerCertificates}
		// RFC 9266: TLS 1.3, or a full TLS 1.2 handshake with the extended master secret
		// (without it ExportKeyingMaterial fails, as it should).
		if cs.Version == tls.VersionTLS13 || !cs.DidResume {
			if ekm, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32); err == nil {
				b.exporter = ekm
			}
		}
		c.cb.Store(b)
		c.handOver()
	}
	c.tr.mu.Lock()
	c.tr.handshaking = false
	c.tr.hand = nil
	c.tr.mu.Unlock()
	if err == nil {
		c.hs.Store(true)
	} else {
		c.bad.Store(true)
	}
	c.done(err)
}

// handOver moves a TLS 1.3 connection to tlsrec when everything it needs is known.
func (c *Conn) handOver() {
	h := c.tr.hand
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.info.Version != tls.VersionTLS13 || h.unsure || h.clientSecret == nil || h.serverSecret == nil ||
		h.suite != c.info.CipherSuite {
		return
	}
	var rec *tlsrec.Conn
	var err error
	if h.probe != nil {
		// The probe holds the server's write key with the count of records under it.
		rec, err = h.probe.Writer(h.clientSecret, 0, c.tr.write)
	} else {
		rec, err = tlsrec.New(h.suite, h.clientSecret, h.serverSecret, 0, h.written, c.tr.write)
	}
	if err != nil {
		return
	}
	c.rec = rec
	c.info.Records = true
	c.tc = nil
}

// Write implements io.Writer for crypto/tls's key log: one NSS key log line per call.
func (h *handover) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) != 3 {
		return len(line), nil
	}
	secret := make([]byte, hex.DecodedLen(len(f[2])))
	if _, err := hex.Decode(secret, f[2]); err != nil {
		return len(line), nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch string(f[0]) {
	case "CLIENT_TRAFFIC_SECRET_0":
		h.clientSecret = secret
	case "SERVER_TRAFFIC_SECRET_0":
		h.serverSecret = secret
		h.probe = nil
	}
	return len(line), nil
}

// sent looks at the records crypto/tls writes during the handshake: the ServerHello names the
// suite, and records that open under the server's application key are counted.
func (h *handover) sent(p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(p) > 0 && !h.unsure {
		if len(p) < 5 {
			h.unsure = true
			return
		}
		n := int(binary.BigEndian.Uint16(p[3:5]))
		if len(p) < 5+n {
			h.unsure = true
			return
		}
		rec := p[:5+n]
		p = p[5+n:]
		switch rec[0] {
		case 22: // plaintext handshake: ServerHello (or HelloRetryRequest, same suite)
			if s, ok := serverHelloSuite(rec[5:]); ok {
				h.suite = s
			}
		case 23:
			if h.serverSecret == nil || h.suite == 0 {
				continue // handshake-key records come before the secret is logged
			}
			if h.probe == nil {
				pr, err := tlsrec.NewProbe(h.suite, h.serverSecret)
				if err != nil {
					h.unsure = true
					return
				}
				h.probe = pr
			}
			if h.probe.Try(rec) {
				h.written++
			}
		}
	}
}

// serverHelloSuite reads cipher_suite from a ServerHello handshake message (RFC 8446 §4.1.3).
func serverHelloSuite(b []byte) (uint16, bool) {
	if len(b) < 4 || b[0] != 2 {
		return 0, false
	}
	b = b[4:]
	if len(b) < 2+32+1 {
		return 0, false
	}
	b = b[34:]
	sid := int(b[0])
	if len(b) < 1+sid+2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(b[1+sid:]), true
}

// Feed hands ciphertext read by the loop to the connection. It copies p.
func (c *Conn) Feed(p []byte) {
	if len(p) == 0 {
		return
	}
	c.tr.mu.Lock()
	if !c.tr.closed {
		c.tr.in = append(c.tr.in, p...)
		if c.tr.handshaking {
			c.tr.cond.Signal()
		}
	}
	c.tr.mu.Unlock()
}

// Process takes ciphertext read by the loop: during the handshake it is fed to it; after,
// it is decrypted (in place when the connection runs on tlsrec, so data must be the caller's
// to modify) and the plaintext passed to deliver, which must not keep it. It returns io.EOF
// after the peer's close_notify and an error for a broken or refused record; the caller
// closes the connection on any error. Call it from the loop only.
func (c *Conn) Process(data []byte, deliver func(plain []byte)) error {
	if !c.hs.Load() {
		c.Feed(data)
		return nil
	}
	if c.rec != nil {
		// Bytes that arrived while the handshake ran come first.
		c.tr.mu.Lock()
		pending := c.tr.in
		c.tr.in = nil
		c.tr.mu.Unlock()
		if len(pending) > 0 {
			if err := c.rec.Open(pending, deliver); err != nil {
				return err
			}
		}
		if len(data) == 0 {
			return nil
		}
		return c.rec.Open(data, deliver)
	}
	c.Feed(data)
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	if cap(buf.B) < 16<<10 {
		buf.B = make([]byte, 16<<10)
	}
	buf.B = buf.B[:cap(buf.B)]
	for {
		n, err := c.Read(buf.B)
		if n > 0 {
			deliver(buf.B[:n])
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

// Read decrypts into p what the fed bytes allow on a connection that stays on crypto/tls.
// It returns (0, nil) when it needs more ciphertext, and io.EOF after the peer's
// close_notify. Call it from the loop only, after the handshake succeeded; on a connection
// that moved to tlsrec use Process.
func (c *Conn) Read(p []byte) (int, error) {
	if !c.hs.Load() {
		return 0, nil
	}
	if c.tc == nil {
		return 0, errors.New("tlsconn: Read on a record-layer connection; use Process")
	}
	n, err := c.tc.Read(p)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Temporary() && !ne.Timeout() {
			return n, nil
		}
	}
	return n, err
}

// Write encrypts p into records and passes them to the write function. Safe for
// concurrent use.
func (c *Conn) Write(p []byte) (int, error) {
	if !c.hs.Load() {
		return 0, errors.New("tlsconn: write before handshake")
	}
	if c.rec != nil {
		return c.rec.Write(p)
	}
	return c.tc.Write(p)
}

// HandshakeComplete reports whether the handshake succeeded.
func (c *Conn) HandshakeComplete() bool { return c.hs.Load() }

// HandshakeFailed reports whether the handshake ended with an error.
func (c *Conn) HandshakeFailed() bool { return c.bad.Load() }

// Info describes the finished handshake; zero before it.
func (c *Conn) Info() Info {
	if !c.hs.Load() {
		return Info{}
	}
	return c.info
}

// Exporter returns the RFC 9266 tls-exporter channel binding, until Authenticated.
func (c *Conn) Exporter() ([]byte, bool) {
	b := c.cb.Load()
	if b == nil || b.exporter == nil {
		return nil, false
	}
	return b.exporter, true
}

// ServerName returns the SNI name the client sent, until Authenticated.
func (c *Conn) ServerName() string {
	if b := c.cb.Load(); b != nil {
		return b.serverName
	}
	return ""
}

// PeerCertificates returns the certificate chain the peer presented, until Authenticated.
func (c *Conn) PeerCertificates() []*x509.Certificate {
	if b := c.cb.Load(); b != nil {
		return b.peerCerts
	}
	return nil
}

// Authenticated drops what only SASL channel binding needed.
func (c *Conn) Authenticated() { c.cb.Store(nil) }

// Buffered returns how many fed ciphertext bytes are not consumed yet.
func (c *Conn) Buffered() int {
	c.tr.mu.Lock()
	defer c.tr.mu.Unlock()
	return len(c.tr.in)
}

// Close sends close_notify when the handshake is done and stops a running handshake.
func (c *Conn) Close() error {
	var err error
	if c.hs.Load() {
		if c.rec != nil {
			err = c.rec.Close()
		} else {
			err = c.tc.CloseWrite()
		}
	}
	c.tr.mu.Lock()
	c.tr.closed = true
	c.tr.in = nil
	c.tr.cond.Broadcast()
	c.tr.mu.Unlock()
	return err
}

// Release drops the transport buffer when it is drained, so an idle connection keeps no
// ciphertext buffer of its own. Call it after each Process.
func (c *Conn) Release() {
	c.tr.mu.Lock()
	if len(c.tr.in) == 0 {
		c.tr.in = nil
	}
	c.tr.mu.Unlock()
}

// Idle drops the record layer's cipher state when the connection has not used it since the
// previous call: call it periodically (every second or so) from any goroutine. It reports
// whether the connection holds no cipher state that a later call could drop (a TLS 1.2
// connection, on crypto/tls, never does); false during the handshake.
func (c *Conn) Idle() bool {
	if !c.hs.Load() {
		return false
	}
	if c.rec != nil {
		return c.rec.Release()
	}
	return true
}

func (t *transport) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.in) == 0 {
		if t.closed {
			return 0, io.EOF
		}
		if !t.handshaking {
			return 0, errNoData
		}
		t.cond.Wait()
	}
	want := len(p)
	if t.handshaking {
		want = min(want, t.recordRoom())
	}
	n := copy(p[:want], t.in)
	if t.handshaking {
		t.advance(p[:n])
	}
	if n == len(t.in) {
		t.in = t.in[:0]
	} else {
		// Keep the tail at the front so the buffer does not creep forward.
		m := copy(t.in, t.in[n:])
		t.in = t.in[:m]
	}
	return n, nil
}

// recordRoom is how many of the fed bytes crypto/tls may have without reading past the end
// of the current record.
func (t *transport) recordRoom() int {
	if t.body > 0 {
		return t.body
	}
	// In a header: its missing bytes, then (when they are all fed) the body.
	need := 5 - t.hdrN
	if len(t.in) < need {
		return need
	}
	var h [5]byte
	copy(h[:], t.hdr[:t.hdrN])
	copy(h[t.hdrN:], t.in[:need])
	return need + int(binary.BigEndian.Uint16(h[3:5]))
}

// advance moves the record boundary tracking past p, which crypto/tls has just read.
func (t *transport) advance(p []byte) {
	for len(p) > 0 {
		if t.body > 0 {
			k := min(t.body, len(p))
			t.body -= k
			p = p[k:]
			continue
		}
		k := copy(t.hdr[t.hdrN:], p)
		t.hdrN += k
		p = p[k:]
		if t.hdrN == 5 {
			t.hdrN = 0
			t.body = int(binary.BigEndian.Uint16(t.hdr[3:5]))
		}
	}
}

func (t *transport) Write(p []byte) (int, error) {
	t.mu.Lock()
	closed := t.closed
	hand := t.hand
	if !t.handshaking {
		hand = nil
	}
	t.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	if hand != nil {
		hand.sent(p)
	}
	if err := t.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (t *transport) Close() error                     { return nil }
func (t *transport) LocalAddr() net.Addr              { return addr{} }
func (t *transport) RemoteAddr() net.Addr             { return addr{} }
func (t *transport) SetDeadline(time.Time) error      { return nil }
func (t *transport) SetReadDeadline(time.Time) error  { return nil }
func (t *transport) SetWriteDeadline(time.Time) error { return nil }

type addr struct{}

func (addr) Network() string { return "tcp" }
func (addr) String() string  { return "loop" }
