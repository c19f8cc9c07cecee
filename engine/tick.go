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
// their concurrency-safe Close/Send.
func (l *listener) sweep(now time.Time) {
	cfg := l.srv.config()
	rel := sinceEpoch(now)
	preAuth := int64(cfg.PreAuthTimeout / time.Second)
	if preAuth < 1 {
		preAuth = 1
	}
	pingAfter := int64(cfg.PingAfter / time.Second)
	pingTimeout := int64(cfg.PingTimeout / time.Second)
	if pingAfter < 1 {
		pingAfter = 1
	}
	if pingTimeout < 1 {
		pingTimeout = 1
	}
	_, isComponent := l.kind.(*component)
	_, isS2S := l.kind.(*s2sIn)
	s2sIdle := int64(cfg.S2S.IdleTimeout / time.Second)
	if s2sIdle < 1 {
		s2sIdle = 1
	}
	for _, c := range l.snapshot() {
		if t := c.tls.Load(); t != nil {
			t.Idle() // cipher state of a connection silent since the last sweep
		}
		if c.closing.Load() || c.ws != nil && c.ws.bosh.Load() {
			continue // a held BOSH request lasts up to its wait, timed by the session
		}
		if c.ws != nil && c.ws.kept.Load() && !c.ws.open {
			// A persistent BOSH connection between requests: idle, not pre-auth, time.
			if int64(int32(rel-c.lastRx.Load())) >= preAuth {
				c.closeAfterWrites()
			}
			continue
		}
		st := c.state.Load()
		if st != stEstablished {
			if now.Sub(epoch)/time.Second-time.Duration(c.opened) >= time.Duration(preAuth) {
				c.Close(stanza.ConnectionTimeout)
			}
			continue
		}
		if isS2S {
			// A peer server is not pinged: a stream silent for IdleTimeout is closed with
			// </stream:stream>, and the peer dials again when it has something to send.
			if int64(int32(rel-c.lastRx.Load())) >= s2sIdle {
				c.Close("")
			}
			continue
		}
		if isComponent {
			continue // components are trusted peers on a private network; TCP keepalive suffices
		}
		if sm := c.sm.Load(); sm != nil && sm.overdue(rel, uint32(cfg.SMAckAfter/time.Second)) {
			c.write([]byte("<r xmlns='urn:xmpp:sm:3'/>")) // XEP-0198: ask for what is overdue
		}
		if p := c.pingAt.Load(); p != 0 {
			if int64(int32(rel-p)) >= pingTimeout {
				c.Close(stanza.ConnectionTimeout)
			}
			continue
		}
		if int64(int32(rel-c.lastRx.Load())) >= pingAfter && c.pingAt.CompareAndSwap(0, rel) {
			// XEP-0199 §4.1: the server pings a silent client; any answer counts.
			c.Send([]byte("<iq type='get' id='vireo-ping-" + strconv.FormatUint(pingSeq.Add(1), 36) +
				"'><ping xmlns='urn:xmpp:ping'/></iq>"))
		}
	}
}
