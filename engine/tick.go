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
func (l *listener) sweep(now time.Time) {
	cfg := l.srv.config()
	p := sweepParams{now: now, rel: sinceEpoch(now), preAuth: int64(cfg.PreAuthTimeout / time.Second),
		pingAfter: int64(cfg.PingAfter / time.Second), pingTimeout: int64(cfg.PingTimeout / time.Second),
		s2sIdle: int64(cfg.S2S.IdleTimeout / time.Second), smAckAfter: uint32(cfg.SMAckAfter / time.Second)}
	p.preAuth, p.pingAfter, p.pingTimeout, p.s2sIdle = max(p.preAuth, 1), max(p.pingAfter, 1), max(p.pingTimeout, 1), max(p.s2sIdle, 1)
	_, p.isComponent = l.kind.(*component)
	_, p.isS2S = l.kind.(*s2sIn)
	buf := l.sweepBuf
	for i := range connShards {
		buf = l.conns.load(i, buf)
		for _, c := range buf {
			p.check(c)
		}
		clear(buf) // the buffer outlives the sweep; closed conns must not
	}
	l.sweepBuf = buf[:0]
}

// sweepParams is one sweep's clock and limits, in seconds.
type sweepParams struct {
	now                                      time.Time
	rel                                      uint32
	preAuth, pingAfter, pingTimeout, s2sIdle int64
	smAckAfter                               uint32
	isComponent, isS2S                       bool
}

func (p *sweepParams) check(c *conn) {
	rel := p.rel
	if t := c.tls.Load(); t != nil {
		t.Idle() // cipher state of a connection silent since the last sweep
	}
	if c.closing.Load() || c.ws != nil && c.ws.bosh.Load() {
		return // a held BOSH request lasts up to its wait, timed by the session
	}
	if c.ws != nil && c.ws.kept.Load() && !c.ws.open {
		// A persistent BOSH connection between requests: idle, not pre-auth, time.
		if int64(int32(rel-c.lastRx.Load())) >= p.preAuth {
			c.closeAfterWrites()
		}
		return
	}
	st := c.state.Load()
	if st != stEstablished {
		if p.now.Sub(epoch)/time.Second-time.Duration(c.opened) >= time.Duration(p.preAuth) {
			c.Close(stanza.ConnectionTimeout)
		}
		return
	}
	if p.isS2S {
		// A peer server is not pinged: a stream silent for IdleTimeout is closed with
		// </stream:stream>, and the peer dials again when it has something to send.
		if int64(int32(rel-c.lastRx.Load())) >= p.s2sIdle {
			c.Close("")
		}
		return
	}
	if p.isComponent {
		return // components are trusted peers on a private network; TCP keepalive suffices
	}
	if sm := c.sm.Load(); sm != nil && sm.overdue(rel, p.smAckAfter) {
		c.write([]byte("<r xmlns='urn:xmpp:sm:3'/>")) // XEP-0198: ask for what is overdue
	}
	if pa := c.pingAt.Load(); pa != 0 {
		if int64(int32(rel-pa)) >= p.pingTimeout {
			c.Close(stanza.ConnectionTimeout)
		}
		return
	}
	if int64(int32(rel-c.lastRx.Load())) >= p.pingAfter && c.pingAt.CompareAndSwap(0, rel) {
		// XEP-0199 §4.1: the server pings a silent client; any answer counts.
		c.Send([]byte("<iq type='get' id='vireo-ping-" + strconv.FormatUint(pingSeq.Add(1), 36) +
			"'><ping xmlns='urn:xmpp:ping'/></iq>"))
	}
}
