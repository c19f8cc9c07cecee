package engine

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/xmlstream/stanza"
)

var pingSeq atomic.Uint64

// sweep enforces the pre-auth deadline and the keepalive ping for every connection of the
// listener. It runs on gnet's ticker goroutine and touches only the conns' atomics and
// their concurrency-safe Close/Send. It walks the registry a shard at a time through a
// buffer it keeps, so an idle node allocates nothing here however many connections it
// holds.
//
// A connection with nothing to time soon — established, no ping out and none due within
// coldEvery seconds, nothing unacknowledged (XEP-0198), no cipher state held — is quiet.
// Found quiet by two sweeps in a row with no read or write between them, it moves to its
// shard's cold set, which is swept every coldEvery-th second; its next read or write
// (stir) moves it back. Reading a connection is a cache miss, 50-70 ns on a node with a
// million of them, and most connections of a dense node are quiet: swept every second
// they cost half a core at nine million.
func (l *listener) sweep(now time.Time) {
	cfg := l.srv.config()
	p := sweepParams{now: now, rel: sinceEpoch(now), preAuth: int64(cfg.PreAuthTimeout / time.Second),
		pingAfter: int64(cfg.PingAfter / time.Second), pingTimeout: int64(cfg.PingTimeout / time.Second),
		s2sIdle: int64(cfg.S2S.IdleTimeout / time.Second), smAckAfter: uint32(cfg.SMAckAfter / time.Second),
		smAckTimeout: uint32(cfg.SMAckTimeout / time.Second)}
	p.preAuth, p.pingAfter, p.pingTimeout, p.s2sIdle = max(p.preAuth, 1), max(p.pingAfter, 1), max(p.pingTimeout, 1), max(p.s2sIdle, 1)
	p.smAckTimeout = max(p.smAckTimeout, 1)
	_, p.isComponent = l.kind.(*component)
	_, p.isS2S = l.kind.(*s2sIn)
	p.edge = l.srv.edge != nil
	turn := int(l.sweeps % coldEvery)
	l.sweeps++
	buf := l.sweepBuf
	for i := range connShards {
		buf = l.conns.load(i, false, buf)
		for _, c := range buf {
			if p.check(c) {
				l.settle(c)
			} else {
				c.stir()
			}
		}
		clear(buf) // the buffer outlives the sweep; closed conns must not
		if i%coldEvery != turn {
			continue
		}
		buf = l.conns.load(i, true, buf)
		for _, c := range buf {
			if !p.check(c) {
				c.stir()
			}
		}
		clear(buf)
	}
	l.sweepBuf = buf[:0]
}

// coldEvery is how often, in sweeps (seconds), a quiet connection is looked at: an
// eighth of the cost. Nothing is late for it: a connection whose ping comes due within
// coldEvery seconds is not quiet, and activity is never missed — a stir clears the first
// mark before the move or finds the second after it (both change under the shard's lock
// in chill), and what a write leaves to time (cipher state in use, stanzas to ack) keeps
// the next check from finding the connection quiet.
const coldEvery = 8

// settle marks a warm connection that a sweep found quiet, and moves it to the cold set
// when the previous sweep found it quiet too and nothing stirred it since.
func (l *listener) settle(c *conn) {
	if c.closing.v.Load()&bQuiet == 0 {
		c.closing.v.Or(bQuiet)
	} else {
		l.conns.chill(c)
	}
}

// timeOut closes c with connection-timeout and counts it under kind (timeoutPreAuth ...).
func (c *conn) timeOut(kind int) {
	c.srv().counts.timeout[kind].Add(1)
	c.Close(stanza.ConnectionTimeout)
}

// sweepParams is one sweep's clock and limits, in seconds.
type sweepParams struct {
	now                                      time.Time
	rel                                      uint32
	preAuth, pingAfter, pingTimeout, s2sIdle int64
	smAckAfter, smAckTimeout                 uint32
	isComponent, isS2S                       bool
	edge                                     bool // an edge server's relayed connection
}

// check times out, pings or asks for acks as due, and reports whether c is quiet.
func (p *sweepParams) check(c *conn) bool {
	rel := p.rel
	quiet := true
	if t := c.tls.Load(); t != nil {
		quiet = t.Idle() // cipher state of a connection silent since the last sweep
	}
	if c.closing.Load() || c.ws != nil && c.ws.bosh.Load() {
		return false // a held BOSH request lasts up to its wait, timed by the session
	}
	if p.edge {
		return quiet // the core times the stream: it closes the channel, and the edge the socket
	}
	if c.ws != nil && c.ws.kept.Load() && !c.ws.open.Load() {
		// A persistent BOSH connection between requests: idle, not pre-auth, time.
		if int64(int32(rel-c.lastRx.Load())) >= p.preAuth {
			c.closeAfterWrites()
		}
		return false
	}
	st := c.state.Load()
	if st != stEstablished {
		if p.now.Sub(epoch)/time.Second-time.Duration(c.opened.Load()) >= time.Duration(p.preAuth) {
			c.timeOut(timeoutPreAuth)
		}
		return false
	}
	idle := int64(int32(rel - c.lastRx.Load()))
	if p.isS2S {
		// A peer server is not pinged: a stream silent for IdleTimeout is closed with
		// </stream:stream>, and the peer dials again when it has something to send.
		if idle >= p.s2sIdle {
			c.Close("")
			return false
		}
		return quiet && idle+coldEvery < p.s2sIdle
	}
	if p.isComponent {
		return quiet // components are trusted peers on a private network; TCP keepalive suffices
	}
	if sm := c.sm.Load(); sm != nil {
		ask, waiting, unanswered := sm.overdue(rel, p.smAckAfter)
		if ask {
			c.write([]byte("<r xmlns='urn:xmpp:sm:3'/>")) // XEP-0198: ask for what is overdue
		}
		if unanswered >= p.smAckTimeout && idle >= int64(p.smAckTimeout) {
			// No answer to the <r/> and not a byte from the client for as long: taken for
			// dead. The close detaches a resumable session (push and resumption take
			// over); a client that is slow but sending something is left alone.
			c.timeOut(timeoutSMAck)
			return false
		}
		quiet = quiet && !waiting
	}
	if pa := c.pingAt.Load(); pa != 0 {
		if int64(int32(rel-pa)) >= p.pingTimeout {
			c.timeOut(timeoutPing)
		}
		return false
	}
	if idle >= p.pingAfter && c.pingAt.CompareAndSwap(0, rel) {
		// XEP-0199 §4.1: the server pings a silent client; any answer counts.
		c.Send([]byte("<iq type='get' id='vireo-ping-" + strconv.FormatUint(pingSeq.Add(1), 36) +
			"'><ping xmlns='urn:xmpp:ping'/></iq>"))
		return false
	}
	return quiet && c.ws == nil && idle+coldEvery < p.pingAfter
}
