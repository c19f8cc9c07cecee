package engine

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
	"golang.org/x/sys/unix"

	"github.com/vireo-im/vireo/engine/tlsconn"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Connection states, in the order a stream goes through them.
const (
	stHeader      uint32 = iota // waiting for the stream header
	stNegotiating               // features sent, before STARTTLS/SASL
	stAuthed                    // SASL done, waiting for the restarted header
	stBind                      // restarted stream, waiting for bind
	stEstablished               // bound; stanzas go to the router
	stClosing
)

// conn flags (loop-owned).
const (
	fHeaderSent uint16 = 1 << iota
	fTLS
	fAuthed
	fPaused
	fBindWait
	fCBRejected // the client tried -PLUS with a binding type we lack
	fTLSWait    // STARTTLS answered, no TLS byte seen yet
	fUnauth     // counted in the per-address limit of unauthenticated connections
	fBlocked    // the router holds too many of this session's bytes: hold input until Resume
	fCleanEnd   // the client closed the stream itself: its session is not resumable
	fSASL2      // the SASL exchange in progress is XEP-0388's: answers in its namespace
	fGone       // the socket is closed (onClose ran)
	fFlushed    // nothing was waiting to be written when the socket closed
	fTLSUp      // an edge told the core of this connection's finished TLS handshake
	fInvited    // the client presented a valid invitation (Server.invited holds it)
	fTailored   // the features offered only the SCRAM hashes the account in 'from' has keys for
)

// netConn is what conn needs of its transport. gnet.Conn satisfies it; so does a BOSH
// session (bosh.go), whose XMPP stream outlives the HTTP connections that carry it. The
// callbacks' gnet.Conn argument is nil for a BOSH session: callbacks use c.gc instead.
type netConn interface {
	Next(n int) ([]byte, error)
	Wake(cb gnet.AsyncCallback) error
	AsyncWrite(b []byte, cb gnet.AsyncCallback) error
	Close() error
	RemoteAddr() net.Addr
	OutboundBuffered() int
}

var _ netConn = gnet.Conn(nil)

// conn is one client connection, owned by its event loop except for the atomics, which
// other goroutines read (Send, Close, the timeout sweep).
type conn struct {
	gc      netConn
	l       *listener
	tls     atomic.Pointer[tlsconn.Conn]
	sess    *router.Session
	held    *bytebufferpool.ByteBuffer // bytes that arrived while paused
	auth    *authState                 // only during a SASL exchange
	bare    jid.JID                    // after SASL
	scan    xmlstream.State
	out     *bytebufferpool.ByteBuffer // the outbox: bytes waiting for the loop (nil: none)
	lastRx  atomic.Uint32              // seconds since epoch of the last read
	pingAt  atomic.Uint32              // seconds since epoch a keepalive ping went out, 0 if none
	sm      atomic.Pointer[smState]    // XEP-0198, once enabled or resumed
	ws      *wsState                   // RFC 7395 listeners only
	state   atomic.Uint32
	closing connBits      // closing flag, outbox lock and close flag
	opened  atomic.Uint32 // seconds since the process started (epoch), for the pre-auth deadline
	flags   uint16
	domain  uint16 // the stream's host, an index into Server.hosts (names)
}

func newConn(l *listener, gc netConn) *conn {
	now := time.Now()
	c := &conn{gc: gc, l: l}
	c.opened.Store(uint32(now.Sub(epoch) / time.Second))
	c.lastRx.Store(sinceEpoch(now))
	cfg := l.srv.config()
	c.scan.Reset(l.kind.scanKind(), &cfg.Limits)
	return c
}

// ip is the client's address as text. It is derived when needed (authentication, logs,
// close) rather than kept: every byte of conn is multiplied by the idle connections. On a
// WebSocket upgraded through a trusted proxy it is the client the proxy named
// (forwarded.go); a BOSH session's transport reports its client likewise.
func (c *conn) ip() string {
	if c.ws != nil && c.ws.client != "" {
		return c.ws.client
	}
	return c.peerIP()
}

func (c *conn) has(f uint16) bool { return c.flags&f != 0 }
func (c *conn) set(f uint16)      { c.flags |= f }
func (c *conn) clear(f uint16)    { c.flags &^= f }

func (c *conn) srv() *Server { return c.l.srv }

func (c *conn) domainName() string {
	if n := c.srv().hosts.Load().names; int(c.domain) < len(n) {
		return n[c.domain]
	}
	return c.srv().config().Domains[0]
}

// --- reading ---

var plainPool bytebufferpool.Pool

// epoch is when the process started; conn keeps times as 32-bit seconds since it (136
// years of uptime).
var epoch = time.Now()

// sinceEpoch is t in conn's 32-bit seconds; never 0, which means "none".
func sinceEpoch(t time.Time) uint32 { return uint32(t.Sub(epoch)/time.Second) + 1 }

// heldBlockedFactor times the stanza limit is what a client blocked by backpressure may
// send before it is cut off (4 MiB at the default 256 KiB).
const heldBlockedFactor = 16

// onTraffic runs on the loop for every readable event and every Wake.
func (c *conn) onTraffic() {
	c.enterLoop()
	defer c.exitLoop()
	defer c.recoverPanic()
	data, _ := c.gc.Next(-1)
	if len(data) > 0 {
		c.lastRx.Store(sinceEpoch(time.Now()))
		c.pingAt.Store(0)
		c.stir()
	}
	if c.closing.Load() {
		return
	}
	t := c.tls.Load()
	if t == nil {
		if len(data) > 0 {
			c.recv(data)
		}
		return
	}
	data = c.stripTLSWait(data)
	if !t.HandshakeComplete() {
		t.Feed(data)
		if t.HandshakeFailed() {
			c.closeNow()
		}
		return
	}
	if e := c.srv().edge; e != nil && !c.has(fTLSUp) {
		// Here, on the loop, before any plaintext goes to the core: the core must know
		// the channel binding before it offers mechanisms (a client that sees no -PLUS
		// says it could have bound, and the core, then knowing it could, must refuse).
		c.set(fTLSUp)
		e.tlsUp(c, t)
	}
	if err := t.Process(data, c.recvTLS); err == io.EOF {
		// The client's close_notify: ours follows what is queued (RFC 8446 §6.1, each
		// side closes its write side with one), then the socket closes.
		c.closeAfterWrites()
	} else if err != nil {
		c.closeNow() // a broken record (our alert is sent), or the client's alert
	}
	t.Release()
}

// recvTLS takes plaintext from the TLS layer, unless the connection is closing.
func (c *conn) recvTLS(p []byte) {
	if !c.closing.Load() {
		c.recv(p)
	}
}

// recv takes plaintext from the socket: XML, or WebSocket frames on a web listener.
func (c *conn) recv(p []byte) {
	if e := c.srv().edge; e != nil {
		e.data(c, p) // an edge relays; the core parses
		return
	}
	if c.ws != nil {
		c.wsInput(p)
		return
	}
	c.input(p)
}

// input processes XML, or holds it while the connection waits for a worker result.
func (c *conn) input(p []byte) {
	if c.has(fPaused|fBlocked) || c.held != nil {
		c.hold(p)
		return
	}
	sc := c.srv().scanners.Get().(*xmlstream.Scanner)
	rest := c.process(sc, p)
	c.srv().scanners.Put(sc)
	if len(rest) > 0 {
		c.hold(rest)
	}
}

func (c *conn) hold(p []byte) {
	if c.held == nil {
		c.held = plainPool.Get()
		c.held.B = c.held.B[:0]
	}
	// While a worker answers (SASL, bind) a client has no reason to send much; under
	// backpressure a fast but honest client may have a burst in flight, so it gets more
	// room. Past either bound the stream is closed: gnet cannot stop reading a socket, so
	// this is where memory stops growing.
	limit := 2 * c.srv().config().Limits.MaxStanza
	if c.has(fBlocked) {
		limit = heldBlockedFactor * c.srv().config().Limits.MaxStanza
	}
	if len(c.held.B)+len(p) > limit {
		c.fail(stanza.PolicyViolation, "too much data while the server was busy with this stream")
		return
	}
	c.held.B = append(c.held.B, p...)
}

// resume continues after a worker or router result: it processes what was held. A
// result handler that clears the pause first and may start another step that pauses
// again (the SASL exchange's: a SASL2 success binds, or writes a token first) ends with
// drainHeld instead, so that input stays held until that step is answered too.
func (c *conn) resume() {
	c.clear(fPaused)
	c.drainHeld()
}

// Resume implements router.Conn: the router has drained this session's stanzas, so input
// held back meanwhile is processed, on the loop. gnet has no way to stop reading a socket,
// so "not reading" means holding what arrives, bounded (hold), not growing without end.
func (c *conn) Resume() {
	c.gc.Wake(func(_ gnet.Conn, err error) error {
		if err != nil || c.closing.Load() {
			return nil
		}
		c.enterLoop()
		defer c.exitLoop()
		defer c.recoverPanic()
		c.clear(fBlocked)
		c.drainHeld()
		return nil
	})
}

func (c *conn) drainHeld() {
	for c.held != nil && !c.has(fPaused|fBlocked) && !c.closing.Load() {
		h := c.held
		c.held = nil
		sc := c.srv().scanners.Get().(*xmlstream.Scanner)
		rest := c.process(sc, h.B)
		c.srv().scanners.Put(sc)
		if len(rest) > 0 {
			c.hold(rest)
		}
		plainPool.Put(h)
	}
}

// process feeds p to the tokenizer and handles the events until p is consumed or the
// connection pauses (it then returns the unprocessed rest).
func (c *conn) process(sc *xmlstream.Scanner, p []byte) []byte {
	for len(p) > 0 {
		if c.closing.Load() {
			return nil
		}
		if c.has(fPaused | fBlocked) {
			return p
		}
		ev, n, err := sc.Next(&c.scan, p)
		p = p[n:]
		if err != nil {
			c.streamError(err)
			return nil
		}
		switch ev.Kind {
		case xmlstream.EventNone:
			return nil
		case xmlstream.EventStreamStart:
			c.l.kind.header(c, ev.Stanza)
		case xmlstream.EventElement:
			if string(ev.Stanza.Name) == "error" && string(ev.Stanza.NS) == ns.Stream {
				// The peer's stream error (RFC 6120 §4.9.1.1): the stream is over, and
				// ours closes as §4.4 says, without an error of its own in answer.
				if e := c.srv().log.Debug(); e.Enabled() {
					se := asStreamError(ev.Stanza).(*s2sStreamError)
					e.Str("remote", c.ip()).Str("condition", se.cond).Str("text", se.text).Msg("the peer ended the stream with an error")
				}
				c.endStream()
				return nil
			}
			if c.l.kind.element(c, ev.Stanza) {
				// STARTTLS: what follows <starttls/> is the TLS handshake, after any
				// whitespace the client sent between the two (go-sendxmpp sends a newline).
				// At an edge's channel the edge runs it: what follows here is dropped.
				if t := c.tls.Load(); t != nil {
					t.Feed(c.stripTLSWait(p))
				}
				return nil
			}
		case xmlstream.EventStreamEnd:
			c.endStream()
			return nil
		}
	}
	return nil
}

// --- stream header and features ---

var idEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func streamID() string {
	var b [15]byte
	rand.Read(b[:])
	return idEnc.EncodeToString(b[:])
}

// writeHeader answers the peer's stream header h (nil when failing before one arrived)
// with a header in the stream kind's namespace; it returns the stream id.
func (c *conn) writeHeader(h *xmlstream.Stanza, xmlns string) string {
	return c.writeHeaderFrom(h, xmlns, c.domainName())
}

func (c *conn) writeHeaderFrom(h *xmlstream.Stanza, xmlns, from string) string {
	id := streamID()
	var b xmlstream.Builder
	b.B = append(b.B, "<?xml version='1.0'?><stream:stream xmlns='"...)
	b.B = append(b.B, xmlns...)
	b.B = append(b.B, "' xmlns:stream='http://etherx.jabber.org/streams' id='"...)
	b.B = append(b.B, id...)
	b.B = append(b.B, "' from='"...)
	b.B = xmlstream.AppendEscapedString(b.B, from)
	// RFC 6120 §4.7.2: answer the initiator's 'from' in 'to'; clients take their address
	// from it.
	if h != nil {
		if f, ok := h.Attr("from"); ok && len(f) > 0 {
			if j, err := jid.ParseBytes(xmlstream.AppendUnescaped(nil, f)); err == nil {
				b.B = append(b.B, "' to='"...)
				b.B = xmlstream.AppendEscapedString(b.B, j.String())
			}
		}
	}
	b.B = append(b.B, "' version='1.0' xml:lang='"...)
	lang := []byte("en")
	if h != nil && len(h.Lang) > 0 && len(h.Lang) < 36 {
		// h.Lang is the attribute as it was on the wire, escaped: unescape it before
		// escaping for our header, or "&gt;" comes back as "&amp;gt;".
		lang = xmlstream.AppendUnescaped(nil, h.Lang)
	}
	b.B = xmlstream.AppendEscapedAttr(b.B, lang)
	b.B = append(b.B, "'>"...)
	c.set(fHeaderSent)
	c.write(b.B)
	return id
}

// --- TLS ---

func (c *conn) onStartTLS() bool {
	cfg := c.srv().config()
	if c.has(fTLS) || cfg.TLS == nil || c.state.Load() != stNegotiating || c.ws != nil {
		c.write([]byte("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"))
		c.closeAfterWrites()
		return false
	}
	c.forgetCleartext()
	if ch, ok := c.gc.(*edgeChan); ok {
		// The edge runs the handshake; the next stream header comes from it in clear,
		// after its TLSUp. Until then what arrives is what the client sent in the clear
		// behind <starttls/> (relayed before the edge heard of it): never a stream over
		// TLS (STARTTLS command injection, CVE-2011-0411). fTLSWait drops it, and
		// fTLS comes with TLSUp.
		ch.startTLS([]byte("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
		c.set(fTLSWait)
		c.state.Store(stHeader)
		c.scan.Reset(c.l.kind.scanKind(), &cfg.Limits)
		return true
	}
	c.write([]byte("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
	c.startTLS()
	return true
}

// forgetCleartext drops what the client said before TLS (RFC 6120 §5.4.3.3): a SASL
// exchange under way, whose keys are those of an account on the host the first header
// named (the restarted one may name another), and an invitation it presented.
func (c *conn) forgetCleartext() {
	c.auth = nil
	c.clear(fSASL2)
	if c.has(fInvited) {
		c.srv().invited.Delete(c)
		c.clear(fInvited)
	}
}

// startTLS wraps the connection in TLS; the next stream header comes encrypted.
func (c *conn) startTLS() {
	cfg := c.srv().config()
	gc := c.gc
	tc := cfg.loopTLS
	if c.ws != nil {
		tc = cfg.webTLS
	} else if _, ok := c.l.kind.(*s2sIn); ok || c.l.cfg.Kind == KindS2S {
		tc = cfg.s2sTLS
	}
	// The handshake runs on its own goroutine, and gnet releases a closed conn's fields on
	// the loop: the address is read here, on the loop, for the failure log.
	remote := c.gc.RemoteAddr()
	t := tlsconn.Server(tc, c.asyncWrite, func(err error) {
		if err != nil {
			c.srv().counts.tls[1].Add(1)
			ip := ""
			if a, ok := remote.(*net.TCPAddr); ok {
				ip = a.IP.String()
			}
			c.srv().tlsFailLog.log(c.srv(), ip, err)
		} else {
			c.srv().counts.tls[0].Add(1)
		}
		gc.Wake(nil) // back on the loop: read what arrived during the handshake, or close
	})
	c.tls.Store(t)
	c.set(fTLS)
	c.srv().tlsConns.Add(1)
	c.state.Store(stHeader)
	c.scan.Reset(c.l.kind.scanKind(), &cfg.Limits)
	c.set(fTLSWait)
}

// stripTLSWait drops whitespace that arrives between <starttls/> and the ClientHello (the
// first TLS byte is a record type, never whitespace).
func (c *conn) stripTLSWait(p []byte) []byte {
	if c.has(fTLSWait) {
		for len(p) > 0 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\r' || p[0] == '\n') {
			p = p[1:]
		}
		if len(p) == 0 {
			return p
		}
		c.clear(fTLSWait)
	}
	return p
}

// --- helpers ---

func (c *conn) iqResult(id []byte, payload []byte) {
	var b xmlstream.Builder
	b.Start("iq").Attr("type", "result")
	if id != nil {
		b.AttrBytes("id", xmlstream.AppendUnescaped(nil, id))
	}
	if payload != nil {
		b.Raw(payload)
	}
	b.End()
	c.write(b.B)
}

func (c *conn) iqError(id []byte, e *stanza.Error) {
	var b xmlstream.Builder
	b.Start("iq").Attr("type", "error")
	if id != nil {
		b.AttrBytes("id", xmlstream.AppendUnescaped(nil, id))
	}
	b.Raw(e.AppendXML(nil))
	b.End()
	c.write(b.B)
}

// --- writing ---

var writePool bytebufferpool.Pool

// Send implements router.Conn: it copies b into the stream. Safe for concurrent use.
func (c *conn) Send(b []byte) bool {
	v := c.closing.v.Load() // one load for both flags: this runs for every stanza
	if v&bBinding != 0 {
		return false
	}
	if v&bClosing != 0 {
		// A resumable stream-management session keeps what arrives while its connection
		// closes: it is handed to the router with the rest of the unacknowledged stanzas
		// and resent on resume (otherwise it would go to offline storage, which a resume
		// does not deliver).
		if sm := c.sm.Load(); sm != nil && sm.key != 0 && sm.keep(c, b) {
			return true
		}
		return false
	}
	if c.outboxLen() > c.srv().config().MaxOutbound {
		c.Close(stanza.PolicyViolation)
		return false
	}
	if sm := c.sm.Load(); sm != nil {
		// Counted and written under one lock: senders on other goroutines (a shard, the
		// loop, the keepalive tick) must put stanzas on the wire in the order they are
		// counted and queued, or an ack at the boundary would acknowledge the wrong one
		// and a resume resend the other.
		sm.mu.Lock()
		ask, ok := sm.sentLocked(b, c.srv().config().SMAckEvery)
		if ok {
			c.write(b)
			if ask {
				c.write([]byte("<r xmlns='urn:xmpp:sm:3'/>"))
			}
		}
		sm.mu.Unlock()
		if !ok {
			c.Close(stanza.PolicyViolation) // the client acknowledges nothing
		}
		return ok
	}
	c.write(b)
	return true
}

// write sends XML: framed for WebSocket on a web listener, then writeRaw.
// SendNear implements router.NearSender: the router calls it on the event loop that runs
// near's code, routing in place a message near's client sent. When c is served by the same
// loop, c's bytes are written when this call ends, by this loop, instead of through a
// wake-up (gnet's queue and an eventfd write, then one more pass of the loop). A
// connection that coalesces its writes (in a burst) waits for its tick as it
// would otherwise.
func (c *conn) SendNear(b []byte, near router.Conn) bool {
	n, ok := near.(*conn)
	if !ok || n == c || n.closing.v.Load()&bOnLoop == 0 {
		return c.Send(b)
	}
	gc, ok := c.gc.(gnet.Conn)
	ngc, nok := n.gc.(gnet.Conn)
	if !ok || !nok || gc.EventLoop() != ngc.EventLoop() {
		return c.Send(b)
	}
	if every := c.srv().config().CoalesceWrites; every > 0 && c.closing.coalesces(msSinceEpoch(), every) {
		return c.Send(b)
	}
	c.enterLoop()
	ok = c.Send(b)
	c.exitLoop()
	return ok
}

func (c *conn) write(b []byte) {
	if c.ws != nil {
		c.wsWrite(b)
	} else {
		c.writeRaw(b)
	}
	c.stir()
	if len(b) > 2 && b[1] == 'i' && b[2] == 'q' {
		c.urgent() // a request waits for this answer; a ping for its pong
	}
}

// writeRaw sends bytes: through TLS when on, else straight to the socket queue. While
// the TLS handshake runs there is no way to send them: they are dropped (a stream error
// at the pre-auth timeout, or at shutdown), never written in the clear into the middle of
// the handshake, where the client reads them as a broken TLS record.
func (c *conn) writeRaw(b []byte) {
	if t := c.tls.Load(); t != nil {
		if t.HandshakeComplete() {
			t.Write(b)
		}
		return
	}
	c.asyncWrite(b)
}

// The outbox (conn.out) holds what other goroutines (shards, the TLS handshake) and the
// loop itself have written and the loop has not yet handed to the socket. Without it every
// stanza was one gnet task and one write(2); with it, a loop that wakes to several
// stanzas for one connection (a busy room, a burst to one user, replies to a pipelined
// read) writes them with one system call. The first byte queues a flush, which takes
// everything appended until it runs; the buffer goes back to the pool then, so an idle
// connection holds none.
//
// A new buffer is made only after a flush took the previous one, so every flush takes
// all the bytes before it, in call order, whichever of the queued flushes runs first (gnet
// may queue a Wake behind later tasks when its urgent queue is full). The close that ends
// a stream is a flag beside the buffer rather than a gnet task of its own, so it cannot
// overtake the bytes before it either.

// connBits packs, in one word, the closing flag that any goroutine reads and the outbox's
// spin lock and close flag: conn is multiplied by the idle connections, and a sync.Mutex
// would add a word to it. The lock is held for an append, never across a system call.
type connBits struct{ v atomic.Uint32 }

const (
	bClosing  uint32 = 1 << iota
	bOutLock         // the outbox is being changed
	bOutClose        // close the socket after the outbox's bytes
	bOutLater        // the outbox waits for the coalescer's tick, not for a queued flush
	bOnLoop          // the loop is running this connection's code and flushes when it ends
	bQuiet           // the last sweep found nothing to do or to wait for (tick.go)
	bCold            // in the registry's cold set: swept every coldEvery-th second
	bBurst           // the last flush came within a coalescer tick of the one before it
	// bBinding: the router bound the session, and its client has not yet been told (the
	// bind result, or <success/> with <bound/>): Send refuses, so that nothing reaches
	// the client before that answer (XEP-0388); what it refused follows RFC 6121.
	bBinding
)

// Load reports whether the connection is closing.
func (b *connBits) Load() bool { return b.v.Load()&bClosing != 0 }

// Store sets or clears the closing flag.
func (b *connBits) Store(v bool) {
	if v {
		b.v.Or(bClosing)
	} else {
		b.v.And(^bClosing)
	}
}

func (b *connBits) lock() {
	for {
		old := b.v.Load()
		if old&bOutLock == 0 && b.v.CompareAndSwap(old, old|bOutLock) {
			return
		}
		runtime.Gosched()
	}
}

func (b *connBits) unlock() { b.v.And(^bOutLock) }

// The word's upper half is when the outbox was last flushed, in milliseconds since epoch
// modulo 2^16 (coalesce.go): a 65 s wrap can only make a write wait one tick it need not.

// setFlushed records a flush at ms, whether it came within a tick of the previous one,
// and that nothing waits for the coalescer's tick. Called with the lock held.
func (b *connBits) setFlushed(ms uint16, every time.Duration) {
	for {
		old := b.v.Load()
		v := old&0xffff&^(bOutLater|bBurst) | uint32(ms)<<16
		if withinTick(ms, uint16(old>>16), every) {
			v |= bBurst
		}
		if b.v.CompareAndSwap(old, v) {
			return
		}
	}
}

// coalesces reports whether bytes written at ms wait for the coalescer's tick: the
// connection is in a burst, its last two flushes less than a tick apart and the last
// less than a tick ago. A stanza to a connection written to once moments ago goes at
// once: at five messages a user a second, one in twenty arrives within 10 ms of the one
// before, and making each of those wait for the tick put 11 ms on the 99th percentile
// while saving few writes. A busy room's occupant is in a burst from its third stanza on.
func (b *connBits) coalesces(ms uint16, every time.Duration) bool {
	v := b.v.Load()
	return v&bBurst != 0 && withinTick(ms, uint16(v>>16), every)
}

// withinTick reports whether ms comes less than a coalescer tick after last, both on the
// coalescer's 16-bit millisecond clock.
func withinTick(ms, last uint16, every time.Duration) bool {
	return ms-last < uint16(every/time.Millisecond)+1
}

// asyncWrite queues b for the socket. It is also the TLS layer's transport write. Safe for
// concurrent use; bytes go out in the order of the calls.
func (c *conn) asyncWrite(b []byte) error {
	if _, ok := c.gc.(gnet.Conn); !ok {
		return c.asyncWriteTask(b) // a BOSH session: its transport frames each write
	}
	c.closing.lock()
	if c.closing.v.Load()&bOutClose != 0 {
		c.closing.unlock()
		return net.ErrClosed
	}
	if c.out != nil {
		c.out.B = append(c.out.B, b...)
		v := c.closing.v.Load()
		for v&(bOutLater|bOnLoop) == bOutLater|bOnLoop {
			// The loop is running this connection's code and flushes when it leaves
			// (exitLoop): the bytes waiting for the tick go with it. The wait is cleared
			// only while the loop is still there. A loop that left meanwhile saw the wait
			// and left the bytes to the tick; clearing it then would leave them to nobody,
			// and every later byte behind them (the connection would go silent for good,
			// its pings and its close included).
			if h := testHookJoinLoop.Load(); h != nil {
				(*h)()
			}
			if c.closing.v.CompareAndSwap(v, v&^bOutLater) {
				break
			}
			v = c.closing.v.Load()
		}
		if v&(bOutLater|bOnLoop) == bOutLater && len(c.out.B) >= coalesceMax {
			// Enough for one write already (a joiner's occupant list, a burst): waiting
			// saves nothing more, and the outbox must not grow toward max_outbound.
			c.closing.v.And(^bOutLater)
			c.closing.unlock()
			return c.queueFlush()
		}
		c.closing.unlock()
		return nil
	}
	buf := writePool.Get()
	buf.B = append(buf.B[:0], b...)
	c.out = buf
	if c.closing.v.Load()&bOnLoop != 0 {
		// The loop writes it when it is done with this connection (exitLoop): no
		// wake-up through gnet's queue and eventfd for an answer the loop itself wrote.
		c.closing.unlock()
		return nil
	}
	if every := c.srv().config().CoalesceWrites; every > 0 && c.state.Load() == stEstablished &&
		c.closing.coalesces(msSinceEpoch(), every) {
		// This connection is in a burst (written to twice within a tick): a busy room is
		// arriving. Its bytes wait for the next tick and leave in one write(2).
		c.closing.v.Or(bOutLater)
		c.closing.unlock()
		c.srv().coalesce.add(c, every)
		return nil
	}
	c.closing.unlock()
	return c.queueFlush()
}

// testHookJoinLoop, when set by a test, runs as a writer is about to join its bytes to the
// flush of a loop running the connection's code. Atomic: servers of other tests may write
// while one sets it.
var testHookJoinLoop atomic.Pointer[func()]

// stir records activity for the timeout sweep: a connection it had found quiet is swept
// every second again (tick.go). The common case, a connection already swept every second,
// costs one atomic load of a word the caller's write or read touches anyway.
func (c *conn) stir() {
	for {
		old := c.closing.v.Load()
		if old&(bQuiet|bCold) == 0 {
			return
		}
		if c.closing.v.CompareAndSwap(old, old&^(bQuiet|bCold)) {
			if old&bCold != 0 {
				c.l.conns.warm(c)
			}
			return
		}
	}
}

// enterLoop marks the start of loop code for c: what it writes waits in the outbox for
// exitLoop rather than queueing a flush.
func (c *conn) enterLoop() { c.closing.v.Or(bOnLoop) }

// exitLoop ends what enterLoop began and writes the outbox. The mark is cleared before the
// outbox is taken: a writer on another goroutine that saw the mark made its bytes part of
// what is taken here; one that did not queued its own flush, or left its bytes to the
// coalescer's tick. The tick's wait that the clearing reads is final: a writer takes it
// away only while the mark is set (asyncWrite), so bytes the wait covers here still have
// the tick.
func (c *conn) exitLoop() {
	if c.closing.v.And(^bOnLoop)&bOutLater != 0 {
		return // nothing of the loop's own: what waits keeps waiting for its tick
	}
	if gc, ok := c.gc.(gnet.Conn); ok {
		flushOutbox(gc, nil)
	}
}

// urgent flushes now an outbox that waits for the coalescer: what was just written is
// an answer someone waits for.
func (c *conn) urgent() {
	if c.closing.v.Load()&bOutLater == 0 {
		return
	}
	c.closing.lock()
	later := c.closing.v.Load()&bOutLater != 0 && c.out != nil
	c.closing.v.And(^bOutLater)
	c.closing.unlock()
	if later {
		c.queueFlush()
	}
}

// queueFlush asks the loop to flush the outbox. Called, outside the lock, by whoever made
// the outbox's buffer.
func (c *conn) queueFlush() error {
	err := c.gc.Wake(flushOutbox)
	if err != nil {
		// The loop is gone, and the connection with it.
		c.closing.lock()
		buf := c.out
		c.out = nil
		c.closing.v.And(^bOutLater)
		c.closing.unlock()
		if buf != nil {
			writePool.Put(buf)
		}
	}
	return err
}

// outboxLen is how many bytes wait in the outbox (for a BOSH session, in its answers).
func (c *conn) outboxLen() int {
	if _, ok := c.gc.(gnet.Conn); !ok {
		return c.gc.OutboundBuffered()
	}
	c.closing.lock()
	defer c.closing.unlock()
	if c.out == nil {
		return 0
	}
	return len(c.out.B)
}

// flushOutbox runs on the loop: it writes what the connection's outbox holds.
func flushOutbox(gc gnet.Conn, err error) error {
	// A connection gnet has closed has no context: its descriptor may already belong to
	// another connection, so nothing may be written.
	c, ok := gc.Context().(*conn)
	if !ok {
		return nil
	}
	c.closing.lock()
	if c.closing.v.Load()&(bOutLater|bOutClose) == bOutLater {
		// A flush queued before the last one ran finds bytes that arrived since and wait
		// for the coalescer's tick: they keep waiting (the tick, an urgent write or the
		// close flushes them).
		c.closing.unlock()
		return nil
	}
	buf, shut := c.out, c.closing.v.Load()&bOutClose != 0
	c.out = nil
	if buf != nil {
		c.closing.setFlushed(msSinceEpoch(), c.srv().config().CoalesceWrites)
	}
	c.closing.unlock()
	if buf == nil {
		return nil
	}
	if err == nil && len(buf.B) > 0 {
		_, err = gc.Write(buf.B)
	}
	writePool.Put(buf)
	switch {
	case shut:
		if err == nil && lingerClose(gc) {
			return nil
		}
		return gc.Close()
	case err == nil && gc.OutboundBuffered() > c.srv().config().MaxOutbound:
		// The client does not read: drop it rather than buffer without end.
		c.closing.Store(true)
		return gc.Close()
	}
	return nil
}

// lingerTime is how long a stream that ended waits for its client to close the socket.
const lingerTime = 2 * time.Second

// lingerClose ends the socket's write side once everything is written, when input the
// loop has not read is waiting: closing then would send a reset instead of a FIN, and a
// client's TCP stack may drop what it received but had not yet read when the reset comes
// (a client that pipelined past its stream error). The loop goes on reading and dropping
// input (the stream is closing) until the client closes too (RFC 6120 §4.4 waits for its
// end) or lingerTime has passed. Without such input the socket closes at once, FIN and
// all, so the stream's session or component ends now, not lingerTime later. It reports
// false when the socket must close now: nothing waits to be read, bytes are still
// buffered for a client that does not read, or the shutdown failed.
func lingerClose(gc gnet.Conn) bool {
	if gc.OutboundBuffered() != 0 {
		return false
	}
	if unreadBytes(gc.Fd()) == 0 {
		return false
	}
	if err := unix.Shutdown(gc.Fd(), unix.SHUT_WR); err != nil {
		return false
	}
	// A Close of a connection that has closed since is a no-op in gnet.
	time.AfterFunc(lingerTime, func() { gc.Close() })
	return true
}

// asyncWriteTask is the write of a transport that is not a gnet connection: one task
// per write, in order.
func (c *conn) asyncWriteTask(b []byte) error {
	buf := writePool.Get()
	buf.B = append(buf.B[:0], b...)
	max := c.srv().config().MaxOutbound
	err := c.gc.AsyncWrite(buf.B, func(_ gnet.Conn, err error) error {
		writePool.Put(buf)
		if err == nil && c.gc.OutboundBuffered() > max {
			// The client does not read: drop it rather than buffer without end.
			c.closing.Store(true)
			return c.gc.Close()
		}
		return nil
	})
	if err != nil {
		writePool.Put(buf)
	}
	return err
}

// Drained implements router.Conn. A wake queued behind everything sent so far finds,
// when gnet runs its callback, the earlier bytes either on the socket or in gnet's
// outbound buffer (a client that reads slowly); in the second case it looks again, backing
// off, until the buffer is empty or the connection is gone. A stream that is ending
// (closing) still writes what was queued before its end: bytes that went out before the
// close count as written, as they are for the client that read them.
func (c *conn) Drained(f func(ok bool)) {
	if sm := c.sm.Load(); sm != nil && sm.sess != nil {
		// With stream management, written is not enough: what the client has not
		// acknowledged is in memory only (resent on resume, or back to storage when the
		// session ends), so a caller that deletes its durable copy waits for the ack.
		c.afterAck(sm, f)
		return
	}
	if ch, ok := c.gc.(*edgeChan); ok {
		ch.Drained(f)
		return
	}
	if err := c.gc.Wake(func(_ gnet.Conn, err error) error {
		c.checkDrained(err, f, 10*time.Millisecond)
		return nil
	}); err != nil {
		f(false)
	}
}

func (c *conn) checkDrained(err error, f func(bool), wait time.Duration) {
	switch {
	case err != nil:
		f(false) // closed: what was still buffered is gone
	case c.has(fGone):
		// gnet runs a wake for a closed connection with no error, and its buffer is
		// released by then: what counts is whether everything was out at the close.
		f(c.has(fFlushed))
	case c.gc.OutboundBuffered() == 0 && c.outboxLen() == 0:
		f(true)
	case c.closing.Load():
		f(false) // the rest may never go out: say so rather than wait for the close
	default:
		time.AfterFunc(wait, func() {
			if werr := c.gc.Wake(func(_ gnet.Conn, err error) error {
				c.checkDrained(err, f, min(2*wait, time.Second))
				return nil
			}); werr != nil {
				f(false)
			}
		})
	}
}

// closeAfterWrites closes the socket once everything queued before it is written.
func (c *conn) closeAfterWrites() {
	c.closing.Store(true)
	if t := c.tls.Load(); t != nil && t.HandshakeComplete() {
		t.Close() // close_notify, queued after the last record
	}
	if _, ok := c.gc.(gnet.Conn); !ok {
		c.gc.AsyncWrite([]byte{}, func(_ gnet.Conn, _ error) error { return c.gc.Close() })
		return
	}
	c.closing.lock()
	if c.closing.v.Load()&bOutClose != 0 {
		c.closing.unlock()
		return
	}
	c.closing.v.Or(bOutClose)
	made := c.out == nil || c.closing.v.Load()&bOutLater != 0
	if c.out == nil {
		c.out = writePool.Get()
	}
	c.closing.v.And(^bOutLater)
	onLoop := c.closing.v.Load()&bOnLoop != 0
	c.closing.unlock()
	if made && !onLoop && c.queueFlush() != nil {
		c.gc.Close() // the loop is gone: nothing can be written anyway
	}
}

// Close implements router.Conn: stream error (if cond is set), end tag, close. Safe for
// concurrent use and idempotent.
func (c *conn) Close(cond stanza.StreamCondition) {
	if c.closing.Load() {
		return
	}
	if c.ws != nil && !c.ws.open.Load() {
		// An HTTP connection of the web listener, not (yet) a stream: nothing to say in
		// XMPP, and its client reads HTTP, not frames.
		c.closeAfterWrites()
		return
	}
	var b []byte
	if cond != "" {
		e := stanza.StreamError{Condition: cond}
		b = e.AppendXML(b)
	}
	b = append(b, "</stream:stream>"...)
	c.write(b)
	c.closeAfterWrites()
}

// fail sends a stream error from the loop, with a stream header first if none was sent
// (RFC 6120 §4.9.1.1).
func (c *conn) fail(cond stanza.StreamCondition, text string) {
	c.failWith(stanza.StreamError{Condition: cond, Text: text})
}

// failWith is fail with an application-specific condition too (RFC 6120 §4.9.4).
func (c *conn) failWith(e stanza.StreamError) {
	if c.closing.Load() {
		return
	}
	if !c.has(fHeaderSent) {
		c.writeHeader(nil, c.l.kind.ns())
	}
	cond, text := e.Condition, e.Text
	b := e.AppendXML(nil)
	b = append(b, "</stream:stream>"...)
	c.write(b)
	if e := c.srv().log.Debug(); e.Enabled() {
		e.Str("remote", c.ip()).Str("condition", string(cond)).Str("text", text).Msg("stream error")
	}
	c.closeAfterWrites()
}

func (c *conn) streamError(err error) {
	if c.ws != nil && xmlstream.IsInvalidUTF8(err) {
		c.ws.badUTF8.Store(true) // RFC 6455 §8.1: the text frame was not UTF-8
	}
	if se, ok := err.(*stanza.StreamError); ok {
		c.fail(se.Condition, se.Text)
		return
	}
	c.fail(stanza.InternalServerError, "")
}

// endStream answers the client's </stream:stream> (RFC 6120 §4.4).
func (c *conn) endStream() {
	c.set(fCleanEnd)
	if !c.has(fHeaderSent) {
		c.writeHeader(nil, c.l.kind.ns())
	}
	c.write([]byte("</stream:stream>"))
	c.closeAfterWrites()
}

// Opened implements router.Opener (to the second, rounded down).
func (c *conn) Opened() time.Time {
	return epoch.Add(time.Duration(c.opened.Load()) * time.Second)
}

func (c *conn) closeNow() {
	c.closing.Store(true)
	c.gc.Close()
}

func (c *conn) recoverPanic() {
	if v := recover(); v != nil {
		c.srv().log.Error().Str("panic", fmt.Sprint(v)).Bytes("stack", debug.Stack()).Str("remote", c.ip()).
			Msg("connection handler panicked; closing the stream")
		c.fail(stanza.InternalServerError, "")
	}
}

// onClose runs on the loop when the socket is gone, however it ended.
func (c *conn) onClose(err error) {
	s := c.srv()
	c.closing.Store(true)
	// gnet calls this before it tries to write what is left and drops it: whatever is
	// still buffered now may never reach the client (Drained says so).
	c.set(fGone)
	if c.gc.OutboundBuffered() == 0 && c.outboxLen() == 0 {
		c.set(fFlushed)
	}
	s.open.Add(-1)
	if s.edge != nil {
		s.edge.closed(c)
	}
	c.l.kind.closed(c)
	c.authenticated() // gives back the per-address count if it never authenticated
	if c.has(fInvited) {
		s.invited.Delete(c)
	}
	s.forgetCaptcha(c)
	s.forgetSASLFailures(c)
	// Stream management first: a resumed stream may close before its attach completed
	// (c.sess still nil), and the session must still be handed back to the router.
	handed := c.smClosed()
	if c.sess != nil {
		if !handed {
			s.rt.Unbind(c.sess)
		}
		s.established.Add(-1)
	} else if bound, guest := s.guest(c.bare); !handed && guest && !bound.Load() && !c.has(fBindWait) {
		// A guest who left before binding: no session will tell the router (anon.go).
		// A bind in flight ends in Unbind, which does. An account that had a session
		// (this stream took it to resume one, and the resume failed or had not
		// finished) goes when its last session ends, which the router tells.
		s.guestGone(c.bare)
	}
	if t := c.tls.Load(); t != nil {
		t.Close()
		s.tlsConns.Add(-1)
	}
	c.scan.Release()
	if ws := c.ws; ws != nil {
		for _, b := range []*bytebufferpool.ByteBuffer{ws.partial, ws.msg} {
			if b != nil {
				plainPool.Put(b)
			}
		}
		ws.partial, ws.msg = nil, nil
	}
	if c.held != nil {
		plainPool.Put(c.held)
		c.held = nil
	}
	c.auth = nil
	if ev := s.log.Debug(); ev.Enabled() {
		ev = ev.Str("remote", c.ip())
		if c.sess != nil {
			ev = ev.Str("jid", c.sess.JID().String())
		}
		if err != nil {
			ev = ev.Err(err)
		}
		ev.Msg("close")
	}
}
