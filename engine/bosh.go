package engine

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// XEP-0124 BOSH carrying XEP-0206 XMPP, as a transport under the c2s stream kind, served by
// the web listener at Web.BOSHPath. A BOSH session outlives the HTTP connections that carry
// its requests, so its XMPP stream is a conn whose gc is the session (boshSession
// implements netConn) rather than a socket:
//
//   - Requests are read on the loop of their HTTP connection (wsConsume reads the body,
//     bounded by the stanza limit plus boshSlack), their <body/> is parsed, and its payload
//     goes to the session's conn as XML (conn.input), under the session's mutex mu, which
//     plays the part of the event loop for that conn. Wake callbacks run in order under the
//     same mutex, on a goroutine of the session's own.
//   - What the stream kind writes arrives in AsyncWrite (from any goroutine): the stream
//     header is dropped (its id becomes authid), </stream:stream> becomes type='terminate',
//     and the rest waits in the session's pending output (bounded by MaxOutbound) until a
//     held request takes it.
//   - Close ends the session; the conn's onClose then runs like a dropped TCP connection's,
//     so stream management and offline storage apply.
//
// An HTTP connection carries one request at a time. After the answer it stays open for the
// next (HTTP/1.1 persistent connections, RFC 9112 §9.3) unless the request asked for
// "Connection: close"; while a request is held, bytes that follow it wait unread.

const (
	nsHTTPBind = "http://jabber.org/protocol/httpbind"
	nsXBOSH    = "urn:xmpp:xbosh"
	// DefaultBOSHPath is the BOSH endpoint when the configuration names none.
	DefaultBOSHPath = "/http-bind"
	// DefaultBOSHInactivity is how long a session lives with no request held: long enough
	// for a browser tab that is briefly throttled, short enough that a closed tab's session
	// detaches within a minute (XEP-0124 §7).
	DefaultBOSHInactivity = 60 * time.Second
	// DefaultBOSHWait is the longest a request is held: below the 90 s or so after which
	// proxies give up on an idle HTTP response.
	DefaultBOSHWait = 60 * time.Second
	// boshHold is the most requests held at once: one, as every modern client asks.
	boshHold = 1
	// boshRequests is the window of requests a client may have outstanding (hold+1).
	boshRequests = boshHold + 1
	// boshPolling is the shortest interval, in seconds, between empty requests of a
	// client that asked for hold='0'.
	boshPolling = 2
	// boshMaxPause is the longest pause a client may ask for, in seconds.
	boshMaxPause = 120
	// boshSlack is what a request body may carry beyond the stanza limit (the <body/>
	// wrapper, whitespace).
	boshSlack = 4 << 10
	// boshVersion is the XEP-0124 protocol version spoken.
	boshVersion = "1.11"
)

var errBOSHClosed = errors.New("engine: BOSH session closed")

// boshBody is the parsed <body/> of a request. Its slices view the request bytes.
type boshBody struct {
	el      xmlstream.Element
	sid     string
	rid     uint64
	typ     string
	restart bool
	pause   int // seconds, 0 if none
	wait    int
	hold    int
	to      []byte
	lang    []byte
	version []byte // xmpp:version
}

// parseBOSHBody parses a request body (XEP-0124 §7). It checks only the wrapper: the
// payload goes to the tokenizer, which checks everything else.
func parseBOSHBody(raw []byte) (b boshBody, err error) {
	defer func() {
		// ParseElement expects well-formed bytes and a body is not trusted yet: a belt
		// for what FuzzBoshBody has not found.
		if recover() != nil {
			b, err = boshBody{}, xmlstream.ErrMalformed
		}
	}()
	return parseBOSHBodyRaw(raw)
}

func parseBOSHBodyRaw(raw []byte) (b boshBody, err error) {
	el, err := xmlstream.ParseElement(raw, "")
	if err != nil {
		return b, err
	}
	if string(el.Name()) != "body" || string(el.NS()) != nsHTTPBind {
		return b, xmlstream.ErrMalformed
	}
	if len(bytes.TrimLeft(raw[len(el.Raw())+bytes.Index(raw, el.Raw()):], " \t\r\n")) > 0 {
		return b, xmlstream.ErrMalformed // something after </body>
	}
	b.el = el
	rid, ok := el.Attr("rid")
	if !ok {
		return b, xmlstream.ErrMalformed
	}
	if b.rid, err = strconv.ParseUint(string(rid), 10, 53); err != nil || b.rid == 0 {
		return b, xmlstream.ErrMalformed // XEP-0124 §7.1: a positive integer below 2^53
	}
	if v, ok := el.Attr("sid"); ok {
		b.sid = string(v)
	}
	if v, ok := el.Attr("type"); ok {
		b.typ = string(v)
	}
	if v, ok := el.AttrNS(nsXBOSH, "restart"); ok && (string(v) == "true" || string(v) == "1") {
		b.restart = true
	}
	num := func(name string) int {
		v, ok := el.Attr(name)
		if !ok {
			return -1
		}
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	b.pause = max(num("pause"), 0)
	b.wait, b.hold = num("wait"), num("hold")
	b.to, _ = el.Attr("to")
	b.lang, _ = el.AttrNS("http://www.w3.org/XML/1998/namespace", "lang")
	b.version, _ = el.AttrNS(nsXBOSH, "version")
	return b, nil
}

// boshReq is a request waiting for its answer.
type boshReq struct {
	hc    *conn // the HTTP connection
	rid   uint64
	timer *time.Timer
}

type boshCached struct {
	rid  uint64
	body []byte
}

// boshSession is one BOSH session: the transport of its conn c.
type boshSession struct {
	sid    string
	srv    *Server
	c      *conn
	remote net.Addr
	origin string // Access-Control-Allow-Origin of its answers
	wait   time.Duration
	hold   int
	to     []byte // the stream's 'to', for restarts
	lang   []byte

	// mu is the session's event loop: whoever holds it may touch c's loop-owned fields.
	mu    sync.Mutex
	rid   uint64                 // last request processed (mu)
	early map[uint64]boshPending // requests ahead of rid, at most boshRequests (mu)
	// lastEmpty is when the last empty request came, for polling (mu).
	lastEmpty time.Time

	lastReq    atomic.Int64 // unix nanoseconds of the last request or answer
	pauseUntil atomic.Int64 // unix nanoseconds; 0 unless paused
	closed     atomic.Bool

	tasks taskQueue // dead once onClose is queued: Wake fails like on a closed socket

	out struct {
		sync.Mutex
		pending   []byte
		held      []*boshReq // oldest first
		cache     [boshRequests]boshCached
		authid    string
		terminate bool
		cond      string
		streamErr bool
		done      bool // the terminating answer went out
	}
}

type boshPending struct {
	hc  *conn
	raw []byte
}

var _ netConn = (*boshSession)(nil)

// --- netConn ---

// Next implements netConn; a session has no socket to read.
func (s *boshSession) Next(int) ([]byte, error) { return nil, nil }

// RemoteAddr implements netConn: the address that created the session.
func (s *boshSession) RemoteAddr() net.Addr { return s.remote }

// OutboundBuffered implements netConn: output waiting for a request.
func (s *boshSession) OutboundBuffered() int {
	s.out.Lock()
	defer s.out.Unlock()
	return len(s.out.pending)
}

// Wake implements netConn: cb runs on a goroutine of the session's, holding mu, in the
// order of the calls. Safe for concurrent use; it fails once the session's conn is closed.
func (s *boshSession) Wake(cb gnet.AsyncCallback) error {
	if !s.tasks.add(cb) {
		return errBOSHClosed
	}
	return nil
}

// AsyncWrite implements netConn: it translates what the stream kind writes for BOSH
// (XEP-0206 §3) and queues it for the next answer. Safe for concurrent use; cb runs before
// it returns.
func (s *boshSession) AsyncWrite(b []byte, cb gnet.AsyncCallback) error {
	s.out.Lock()
	if s.out.terminate {
		// The stream has ended: what comes after is dropped, and the callback still runs
		// (closeAfterWrites closes from it).
		s.out.Unlock()
		if cb != nil {
			cb(nil, errBOSHClosed)
		}
		return nil
	}
	for len(b) > 0 {
		var el []byte
		el, b = nextTop(b)
		if len(el) == 0 {
			break
		}
		switch {
		case bytes.HasPrefix(el, []byte(streamHeaderPrefix)):
			if i := bytes.Index(el, []byte(" id='")); i >= 0 {
				id := el[i+5:]
				if j := bytes.IndexByte(id, '\''); j >= 0 {
					s.out.authid = string(id[:j])
				}
			}
		case string(el) == "</stream:stream>":
			s.out.terminate = true
			if s.out.cond == "" && s.out.streamErr {
				s.out.cond = "remote-stream-error"
			}
		case bytes.HasPrefix(el, []byte("<stream:")):
			if bytes.HasPrefix(el, []byte("<stream:error")) {
				s.out.streamErr = true
			}
			s.out.pending = append(s.out.pending, insertAttr(el, " xmlns:stream='"+ns.Stream+"'")...)
		case isStanzaStart(el) && !hasXMLNS(el):
			s.out.pending = append(s.out.pending, insertAttr(el, " xmlns='"+ns.Client+"'")...)
		default:
			s.out.pending = append(s.out.pending, el...)
		}
	}
	// A held request takes what is pending first: only what no request came for counts
	// against the bound.
	s.flushLocked()
	over := len(s.out.pending) > s.srv.config().MaxOutbound
	if over {
		// The client does not come for its data: end the session rather than buffer
		// without end.
		s.out.pending = nil
		s.out.terminate, s.out.cond = true, "policy-violation"
		s.flushLocked()
	}
	s.out.Unlock()
	if over {
		s.Close()
	}
	if cb != nil {
		cb(nil, nil)
	}
	return nil
}

// Close implements netConn: it ends the session. Held requests get what is pending and
// type='terminate'; a later request gets the same. The conn's onClose runs after the
// callbacks already queued. Safe for concurrent use and idempotent.
func (s *boshSession) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.c.closing.Store(true)
	s.out.Lock()
	s.out.terminate = true
	s.flushLocked()
	s.out.Unlock()
	s.tasks.last(func(gnet.Conn, error) error {
		// s.mu is held (tasks.hold). Requests parked ahead of a gap that will not be
		// filled now get their answer: their connections wait for nothing else, and no
		// timeout covers them.
		for rid, p := range s.early {
			delete(s.early, rid)
			boshTerminate(p.hc, s.origin, "item-not-found")
		}
		c := s.c
		c.l.conns.remove(c)
		c.onClose(nil)
		return nil
	})
	return nil
}

// --- answers ---

// flushLocked answers held requests while there is something to say. s.out is locked.
func (s *boshSession) flushLocked() {
	for len(s.out.held) > 0 && (len(s.out.pending) > 0 || s.out.terminate) {
		r := s.out.held[0]
		s.out.held = s.out.held[1:]
		s.answerLocked(r.hc, r.rid, r.timer, nil)
	}
}

// answerLocked answers request rid on hc with the pending output (and type='terminate'
// when the session ended); attrs go on the <body/>. s.out is locked.
func (s *boshSession) answerLocked(hc *conn, rid uint64, t *time.Timer, attrs []byte) {
	if t != nil {
		t.Stop()
	}
	if s.out.terminate {
		s.out.pending = withoutSMNonzas(s.out.pending)
	}
	b := make([]byte, 0, 160+len(attrs)+len(s.out.pending))
	b = append(b, "<body xmlns='"+nsHTTPBind+"'"...)
	if s.out.terminate {
		b = append(b, " type='terminate'"...)
		if s.out.cond != "" {
			b = append(b, " condition='"...)
			b = append(b, s.out.cond...)
			b = append(b, '\'')
		}
		s.out.done = true
	}
	b = append(b, attrs...)
	if len(s.out.pending) == 0 {
		b = append(b, "/>"...)
	} else {
		if s.out.streamErr || bytes.Contains(s.out.pending, []byte("<stream:")) {
			b = append(b, " xmlns:stream='"+ns.Stream+"'"...)
		}
		b = append(b, '>')
		b = append(b, s.out.pending...)
		b = append(b, "</body>"...)
		s.out.pending = s.out.pending[:0]
		if cap(s.out.pending) > 64<<10 {
			s.out.pending = nil // do not keep a burst's buffer for an idle session
		}
	}
	// Keep the last boshRequests answers for retransmissions (XEP-0124 §14.3).
	s.out.cache[rid%boshRequests] = boshCached{rid: rid, body: b}
	s.lastReq.Store(time.Now().UnixNano())
	boshReply(hc, s.origin, b)
}

// boshReply writes one HTTP answer with an XML body, then closes the connection or, when
// the request asked to keep it, reads the next request on it. Safe for concurrent use.
func boshReply(hc *conn, origin string, body []byte) {
	keep := hc.ws != nil && hc.ws.keep.Load() && !hc.closing.Load()
	h := make([]byte, 0, 256+len(body))
	h = append(h, "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nCache-Control: no-store\r\n"...)
	if origin != "" {
		h = append(h, "Access-Control-Allow-Origin: "...)
		h = append(h, origin...)
		h = append(h, "\r\n"...)
		if origin != "*" {
			h = append(h, "Vary: Origin\r\n"...)
		}
	}
	h = append(h, "Content-Length: "...)
	h = strconv.AppendInt(h, int64(len(body)), 10)
	if keep {
		h = append(h, "\r\nConnection: keep-alive\r\n\r\n"...)
	} else {
		h = append(h, "\r\nConnection: close\r\n\r\n"...)
	}
	h = append(h, body...)
	hc.writeRaw(h)
	if !keep {
		hc.closeAfterWrites()
		return
	}
	// The wake is queued after the answer's write: the next request's answer cannot
	// overtake it.
	if hc.gc.Wake(func(_ gnet.Conn, err error) error {
		if err == nil {
			hc.boshNext()
		}
		return nil
	}) != nil {
		hc.closeAfterWrites()
	}
}

// boshNext makes hc, answered, read its next request: what came meanwhile first. On the
// loop.
func (hc *conn) boshNext() {
	if hc.closing.Load() {
		return
	}
	defer hc.recoverPanic()
	ws := hc.ws
	ws.keep.Store(false)
	ws.kept.Store(true)
	hc.lastRx.Store(sinceEpoch(time.Now()))
	ws.bosh.Store(false)
	if ws.partial != nil {
		hc.wsInput(nil)
	}
}

// boshTerminate answers a request that belongs to no session.
func boshTerminate(hc *conn, origin, cond string) {
	boshReply(hc, origin, []byte("<body xmlns='"+nsHTTPBind+"' type='terminate' condition='"+cond+"'/>"))
}

// --- requests, on the HTTP connection's loop ---

// corsOrigin is the Access-Control-Allow-Origin for a request's Origin, and whether the
// origin is allowed.
func (w *Web) corsOrigin(origin string) (string, bool) {
	if len(w.Origins) == 0 {
		return "*", true
	}
	if origin == "" {
		return "", true // not a browser
	}
	return origin, w.originOK(origin)
}

// serveBOSH answers one request to the BOSH path: a CORS preflight, or a POST of a
// <body/>.
func (c *conn) serveBOSH(r httpReq, body []byte) {
	web := &c.srv().config().Web
	origin, ok := web.corsOrigin(r.header["origin"])
	if !ok {
		c.httpAnswer(r, 403, "Forbidden", "origin not allowed\n", nil)
		return
	}
	switch r.method {
	case "OPTIONS":
		h := []string{"Access-Control-Allow-Methods: POST, OPTIONS", "Access-Control-Allow-Headers: Content-Type",
			"Access-Control-Max-Age: 86400"}
		if origin != "" {
			h = append(h, "Access-Control-Allow-Origin: "+origin)
		}
		c.httpAnswer(r, 204, "No Content", "", h)
		return
	case "POST":
	default:
		c.httpAnswer(r, 405, "Method Not Allowed", "", []string{"Allow: POST, OPTIONS"})
		return
	}
	c.ws.keep.Store(r.keep)
	c.ws.bosh.Store(true) // this connection now waits for its answer; nothing else is read
	b, err := parseBOSHBody(body)
	if err != nil {
		boshTerminate(c, origin, "bad-request")
		return
	}
	if b.sid == "" {
		c.boshCreate(r, b, origin)
		return
	}
	s := c.srv().boshLookup(b.sid)
	if s == nil {
		boshTerminate(c, origin, "item-not-found")
		return
	}
	if c.has(fUnauth) && s.c.state.Load() >= stAuthed {
		// A connection that carries an authenticated session's requests is that
		// session's: it no longer counts among its address's unauthenticated ones,
		// which a few BOSH users behind one address would otherwise use up.
		c.authenticated()
	}
	s.request(c, b, body)
}

// boshCreate starts a session (XEP-0124 §7.1, XEP-0206 §3): the session creation response
// carries the stream features.
func (hc *conn) boshCreate(r httpReq, b boshBody, origin string) {
	srv := hc.srv()
	cfg := srv.config()
	if b.wait < 0 || b.hold < 0 || len(b.to) == 0 {
		boshTerminate(hc, origin, "bad-request")
		return
	}
	// A session is a stream as a TCP connection is one: the same admission (listener
	// admit), so that sessions cannot fill max_connections or outnumber an address's
	// unauthenticated streams.
	ip := hc.clientIP(r)
	if reason := srv.admission(ip, cfg.trusted(ip)); reason >= 0 {
		srv.refuse(reason)
		cond := "policy-violation"
		if reason == refusedShutdown {
			cond = "system-shutdown"
		}
		boshTerminate(hc, origin, cond)
		return
	}
	// Compared in seconds: a huge wait times time.Second overflows to a negative one.
	wait := cfg.Web.BOSHWait
	if time.Duration(b.wait) < wait/time.Second {
		wait = time.Duration(b.wait) * time.Second
	}
	s := &boshSession{sid: streamID(), srv: srv, remote: hc.clientAddr(r), origin: origin, wait: wait,
		hold: min(b.hold, boshHold), to: append([]byte(nil), b.to...), lang: append([]byte(nil), b.lang...)}
	s.tasks.hold = &s.mu
	c := newConn(hc.l, s)
	c.set(fUnauth) // counted above, until it authenticates or closes (addrKey(c.ip()))
	s.c = c
	if hc.secureRequest(r) {
		// HTTPS, or a reverse proxy terminated TLS for the browser.
		c.set(fTLS)
	}
	s.lastReq.Store(time.Now().UnixNano())
	srv.open.Add(1)
	hc.l.conns.add(c)
	srv.boshAdd(s)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.rid = b.rid
	c.input(s.header(b.version))
	attrs := make([]byte, 0, 320)
	attrs = append(attrs, " xmlns:xmpp='"+nsXBOSH+"' sid='"...)
	attrs = append(attrs, s.sid...)
	attrs = append(attrs, "' wait='"...)
	attrs = strconv.AppendInt(attrs, int64(wait/time.Second), 10)
	attrs = append(attrs, "' hold='"...)
	attrs = strconv.AppendInt(attrs, int64(s.hold), 10)
	attrs = append(attrs, "' requests='"...)
	attrs = strconv.AppendInt(attrs, boshRequests, 10)
	attrs = append(attrs, "' polling='"...)
	attrs = strconv.AppendInt(attrs, boshPolling, 10)
	attrs = append(attrs, "' inactivity='"...)
	attrs = strconv.AppendInt(attrs, int64(cfg.Web.BOSHInactivity/time.Second), 10)
	attrs = append(attrs, "' maxpause='"...)
	attrs = strconv.AppendInt(attrs, boshMaxPause, 10)
	attrs = append(attrs, "' ver='"+boshVersion+"' from='"...)
	attrs = xmlstream.AppendEscapedString(attrs, c.domainName())
	attrs = append(attrs, "' secure='"...)
	attrs = strconv.AppendBool(attrs, c.has(fTLS))
	s.out.Lock()
	attrs = append(attrs, "' authid='"...)
	attrs = append(attrs, s.out.authid...)
	attrs = append(attrs, "' xmpp:version='1.0' xmpp:restartlogic='true'"...)
	s.answerLocked(hc, b.rid, nil, attrs)
	s.out.Unlock()
}

// header is the stream header a session's stream starts (and restarts) with.
func (s *boshSession) header(version []byte) []byte {
	h := append([]byte(nil), "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='"...)
	h = xmlstream.AppendEscapedAttr(h, xmlstream.AppendUnescaped(nil, s.to))
	h = append(h, '\'')
	if len(version) > 0 {
		h = append(h, " version='"...)
		h = xmlstream.AppendEscapedAttr(h, xmlstream.AppendUnescaped(nil, version))
		h = append(h, '\'')
	}
	if len(s.lang) > 0 {
		h = append(h, " xml:lang='"...)
		h = xmlstream.AppendEscapedAttr(h, xmlstream.AppendUnescaped(nil, s.lang))
		h = append(h, '\'')
	}
	return append(h, '>')
}

// request handles a request of an existing session, on hc's loop: in rid order, with
// retransmissions answered from the cache (XEP-0124 §14).
func (s *boshSession) request(hc *conn, b boshBody, raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastReq.Store(time.Now().UnixNano())
	s.out.Lock()
	if s.out.terminate {
		s.answerLocked(hc, b.rid, nil, nil)
		s.out.Unlock()
		s.srv.boshRemove(s)
		return
	}
	if b.rid <= s.rid {
		if ca := s.out.cache[b.rid%boshRequests]; ca.rid == b.rid && ca.body != nil {
			s.out.Unlock()
			boshReply(hc, s.origin, ca.body)
			return
		}
		for _, r := range s.out.held {
			if r.rid == b.rid {
				// The client gave up on the connection that carried it: answer here.
				r.hc.closeAfterWrites()
				r.hc = hc
				s.out.Unlock()
				return
			}
		}
		// Too old to be cached: XEP-0124 §14.3.
		s.terminateLocked(hc, b.rid, "item-not-found")
		s.out.Unlock()
		return
	}
	if b.rid > s.rid+boshRequests {
		s.terminateLocked(hc, b.rid, "item-not-found")
		s.out.Unlock()
		return
	}
	s.out.Unlock()
	if b.rid != s.rid+1 {
		// Ahead of a request still on its way: kept until the gap is filled.
		if s.early == nil {
			s.early = make(map[uint64]boshPending, boshRequests)
		}
		if old, ok := s.early[b.rid]; ok {
			old.hc.closeAfterWrites()
		}
		s.early[b.rid] = boshPending{hc: hc, raw: append([]byte(nil), raw...)}
		return
	}
	s.handle(hc, b)
	for len(s.early) > 0 {
		p, ok := s.early[s.rid+1]
		if !ok {
			break
		}
		delete(s.early, s.rid+1)
		nb, err := parseBOSHBody(p.raw)
		if err != nil {
			boshTerminate(p.hc, s.origin, "bad-request")
			break
		}
		s.handle(p.hc, nb)
	}
}

// terminateLocked ends the session with cond, answering hc. s.out is locked.
func (s *boshSession) terminateLocked(hc *conn, rid uint64, cond string) {
	s.out.terminate, s.out.cond = true, cond
	s.out.pending = s.out.pending[:0]
	s.flushLocked()
	s.answerLocked(hc, rid, nil, nil)
	s.srv.boshRemove(s)
	go s.Close()
}

// handle processes the next request in rid order. s.mu is held.
func (s *boshSession) handle(hc *conn, b boshBody) {
	s.rid = b.rid
	c := s.c
	c.lastRx.Store(sinceEpoch(time.Now()))
	c.pingAt.Store(0)
	payload := b.el.Inner()
	empty := len(bytes.TrimSpace(payload)) == 0 && !b.restart && b.typ == ""
	now := time.Now()
	if empty && s.hold == 0 && now.Sub(s.lastEmpty) < boshPolling*time.Second {
		// XEP-0124 §12: a polling client asks more often than it was told.
		s.out.Lock()
		s.terminateLocked(hc, b.rid, "policy-violation")
		s.out.Unlock()
		return
	}
	if empty {
		s.lastEmpty = now
	}
	if b.pause > 0 {
		// XEP-0124 §10: answer what is held, and wait up to the pause for the next
		// request.
		p := time.Duration(min(b.pause, boshMaxPause)) * time.Second
		s.pauseUntil.Store(now.Add(p).UnixNano())
	} else {
		s.pauseUntil.Store(0)
	}
	if len(payload) > 0 && !c.closing.Load() {
		c.input(payload)
	}
	if b.restart && !c.closing.Load() {
		// XEP-0206 §5: the restart stands for the stream header the client would send.
		c.input(s.header([]byte("1.0")))
	}
	if b.typ == "terminate" && !c.closing.Load() {
		c.input([]byte("</stream:stream>"))
	}
	s.out.Lock()
	defer s.out.Unlock()
	if b.pause > 0 {
		for len(s.out.held) > 0 {
			r := s.out.held[0]
			s.out.held = s.out.held[1:]
			s.answerLocked(r.hc, r.rid, r.timer, nil)
		}
	}
	if len(s.out.pending) > 0 || s.out.terminate || s.hold == 0 || b.pause > 0 {
		s.answerLocked(hc, b.rid, nil, nil)
		if s.out.terminate {
			s.srv.boshRemove(s)
		}
		return
	}
	r := &boshReq{hc: hc, rid: b.rid}
	r.timer = time.AfterFunc(s.wait, func() { s.expire(r) })
	s.out.held = append(s.out.held, r)
	for len(s.out.held) > s.hold {
		// XEP-0124 §11: over the hold limit, the oldest goes back empty.
		o := s.out.held[0]
		s.out.held = s.out.held[1:]
		s.answerLocked(o.hc, o.rid, o.timer, nil)
	}
}

// expire answers r empty when it has been held for wait (XEP-0124 §7.1).
func (s *boshSession) expire(r *boshReq) {
	s.out.Lock()
	defer s.out.Unlock()
	for i, h := range s.out.held {
		if h == r {
			s.out.held = append(s.out.held[:i], s.out.held[i+1:]...)
			s.answerLocked(r.hc, r.rid, nil, nil)
			return
		}
	}
}

// --- the registry ---

type boshRegistry struct {
	mu sync.Mutex
	m  map[string]*boshSession
}

func (s *Server) boshAdd(bs *boshSession) {
	s.bosh.mu.Lock()
	if s.bosh.m == nil {
		s.bosh.m = map[string]*boshSession{}
	}
	s.bosh.m[bs.sid] = bs
	s.bosh.mu.Unlock()
}

func (s *Server) boshLookup(sid string) *boshSession {
	s.bosh.mu.Lock()
	defer s.bosh.mu.Unlock()
	return s.bosh.m[sid]
}

func (s *Server) boshRemove(bs *boshSession) {
	s.bosh.mu.Lock()
	if s.bosh.m[bs.sid] == bs {
		delete(s.bosh.m, bs.sid)
	}
	s.bosh.mu.Unlock()
}

// boshSweep ends sessions without a request for longer than the inactivity timeout
// (XEP-0124 §7.1) or their pause; their streams end like dropped connections. It runs on
// the ticker goroutine.
func (s *Server) boshSweep(now time.Time) {
	s.bosh.mu.Lock()
	if len(s.bosh.m) == 0 {
		s.bosh.mu.Unlock()
		return
	}
	all := make([]*boshSession, 0, len(s.bosh.m))
	for _, bs := range s.bosh.m {
		all = append(all, bs)
	}
	s.bosh.mu.Unlock()
	limit := s.config().Web.BOSHInactivity
	for _, bs := range all {
		bs.out.Lock()
		held := len(bs.out.held)
		bs.out.Unlock()
		if held > 0 {
			continue
		}
		until := time.Unix(0, bs.lastReq.Load()).Add(limit)
		if p := bs.pauseUntil.Load(); p != 0 && time.Unix(0, p).After(until) {
			until = time.Unix(0, p)
		}
		if now.After(until) {
			s.boshRemove(bs)
			bs.Close()
		}
	}
}

// withoutSMNonzas drops XEP-0198 acks and ack requests from the payloads of the body that
// ends a session: the stream they count is over, and StanzaJS, which ends its stream at
// type='terminate' before it reads the body's children, fails on any child (an <a/> to
// its last <r/>, which waits until the router has handled what it counts, can fall in the
// body that answers its own terminate).
func withoutSMNonzas(pending []byte) []byte {
	if !bytes.Contains(pending, []byte("urn:xmpp:sm:3")) {
		return pending
	}
	out := pending[:0:0]
	for rest := pending; len(rest) > 0; {
		el, next := nextTop(rest)
		if len(el) == 0 {
			out = append(out, rest...)
			break
		}
		if !bytes.HasPrefix(el, []byte("<a xmlns='urn:xmpp:sm:3'")) && !bytes.HasPrefix(el, []byte("<r xmlns='urn:xmpp:sm:3'")) {
			out = append(out, el...)
		}
		rest = next
	}
	return out
}
