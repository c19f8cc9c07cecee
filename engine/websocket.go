package engine

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// RFC 7395 XMPP over WebSocket, as a transport under the c2s stream kind. The connection
// lives on its event loop like a TCP one: the HTTP upgrade is parsed on the loop, RFC 6455
// frames are decoded in the read buffer, and nothing is kept between messages but a small
// state struct. The stream kind never learns it runs over WebSocket: an <open/> from the
// client becomes the stream header the tokenizer expects and <close/> its end tag; on the
// way out the stream header becomes <open/>, its end <close/>, and every top-level element
// gets the namespace declarations RFC 7395 §3.3.3 wants on each message. The same listener
// answers XEP-0156 host-meta requests (web.go).

const (
	nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"
	wsGUID    = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	// maxHTTPHead bounds the request head of an HTTP connection.
	maxHTTPHead = 8 << 10
	// wsSlack is what a message may carry beyond the stanza limit (framing, whitespace).
	wsSlack = 4 << 10
)

// WebSocket close codes (RFC 6455 §7.4.1).
const (
	wsNormal      = 1000
	wsProtocolErr = 1002
	wsUnsupported = 1003
	wsBadData     = 1007
	wsTooBig      = 1009
)

// How the message being received is handled.
const (
	wsUndecided uint8 = iota // too few bytes seen to tell <open/> or <close/> from a stanza
	wsPass                   // a stanza or nonza: straight to the tokenizer
	wsFramingEl              // <open/> or <close/>: gathered, then translated
)

// wsState is what a WebSocket connection keeps: a few flags, and buffers only while a
// frame or a framing element is incomplete.
type wsState struct {
	partial *bytebufferpool.ByteBuffer // an incomplete HTTP head or frame
	msg     *bytebufferpool.ByteBuffer // the start of a message not yet classified, or a framing element
	msgLen  int                        // payload bytes of the current message so far
	open    atomic.Bool                // the upgrade was answered: frames follow (read by the sweep and Close)
	bosh    atomic.Bool                // a BOSH request was read: the connection waits for its answer (read by the sweep)
	keep    atomic.Bool                // the BOSH request being answered asked for a persistent connection
	kept    atomic.Bool                // a BOSH answer kept the connection open: idle time counts from the last read
	client  string                     // the client a trusted proxy named at the upgrade; "" if none
	inMsg   bool                       // a message has begun and its final frame has not come
	badUTF8 atomic.Bool                // the stream failed on invalid UTF-8: its close frame says 1007
	mode    uint8
}

// wsInput takes bytes from the socket (after TLS) on a WebSocket listener.
func (c *conn) wsInput(p []byte) {
	ws := c.ws
	if ws.partial == nil {
		if rest := c.wsConsume(p); len(rest) > 0 && !c.closing.Load() {
			ws.partial = plainPool.Get()
			ws.partial.B = append(ws.partial.B[:0], rest...)
		}
		return
	}
	buf := ws.partial
	ws.partial = nil
	buf.B = append(buf.B, p...)
	rest := c.wsConsume(buf.B)
	if len(rest) > 0 && !c.closing.Load() {
		buf.B = buf.B[:copy(buf.B, rest)]
		ws.partial = buf
		return
	}
	plainPool.Put(buf)
}

// wsConsume handles the HTTP head and every whole frame in b; it returns the incomplete
// rest.
func (c *conn) wsConsume(b []byte) []byte {
	ws := c.ws
	limit := c.srv().config().Limits.MaxStanza + wsSlack
	for len(b) > 0 && !c.closing.Load() {
		if !ws.open.Load() {
			if ws.bosh.Load() {
				// A request waits for its answer; what follows (a pipelined request) waits
				// for boshNext, bounded by one request's size.
				if len(b) > maxHTTPHead+limit+boshSlack {
					c.closeAfterWrites()
					return nil
				}
				return b
			}
			i := bytes.Index(b, []byte("\r\n\r\n"))
			if i > maxHTTPHead || i < 0 && len(b) > maxHTTPHead {
				c.httpReply(431, "Request Header Fields Too Large", "", nil)
				return nil
			}
			if i < 0 {
				return b
			}
			r, ok := parseHTTPHead(b[:i+4])
			if !ok {
				c.httpReply(400, "Bad Request", "", nil)
				return nil
			}
			n := 0
			if v, ok := r.header["content-length"]; ok {
				var err error
				if n, err = strconv.Atoi(v); err != nil || n < 0 {
					c.httpReply(400, "Bad Request", "bad Content-Length\n", nil)
					return nil
				}
				if n > c.srv().config().Limits.MaxStanza+boshSlack {
					c.httpReply(413, "Content Too Large", "", nil)
					return nil
				}
			} else if r.header["transfer-encoding"] != "" {
				c.httpReply(411, "Length Required", "", nil)
				return nil
			}
			if len(b)-i-4 < n {
				return b // the body is still coming
			}
			c.onHTTP(r, b[i+4:i+4+n])
			b = b[i+4+n:]
			continue
		}
		if len(b) < 2 {
			return b
		}
		fin, rsv, op := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0f
		masked := b[1]&0x80 != 0
		n, hl := uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return b
			}
			n, hl = uint64(binary.BigEndian.Uint16(b[2:4])), 4
		case 127:
			if len(b) < 10 {
				return b
			}
			n, hl = binary.BigEndian.Uint64(b[2:10]), 10
		}
		switch {
		case rsv != 0:
			c.wsFail(wsProtocolErr, "reserved bits set (no extension was negotiated)")
			return nil
		case !masked:
			c.wsFail(wsProtocolErr, "client frames must be masked")
			return nil
		case op >= 8 && (!fin || n > 125):
			c.wsFail(wsProtocolErr, "control frames are short and whole")
			return nil
		case op == 0x1 && n > uint64(limit), op == 0x0 && n > uint64(limit-ws.msgLen):
			// A text frame starts a message: what the last one held does not count.
			c.wsFail(wsTooBig, "message larger than the stanza limit")
			return nil
		}
		if uint64(len(b)-hl-4) < n || len(b) < hl+4 {
			return b
		}
		key := b[hl : hl+4]
		payload := b[hl+4 : hl+4+int(n)]
		for i := range payload {
			payload[i] ^= key[i&3]
		}
		b = b[hl+4+int(n):]
		switch op {
		case 0x1: // text: a new message
			if ws.inMsg {
				c.wsFail(wsProtocolErr, "a new message before the last one ended")
				return nil
			}
			ws.msgLen, ws.mode = 0, wsUndecided
			ws.inMsg = !fin
			c.wsData(payload, fin)
		case 0x0: // continuation
			if !ws.inMsg {
				c.wsFail(wsProtocolErr, "continuation without a message")
				return nil
			}
			ws.inMsg = !fin
			c.wsData(payload, fin)
		case 0x2:
			c.wsFail(wsUnsupported, "XMPP travels in text frames")
			return nil
		case 0x8: // close: answer it and go; an XMPP stream not closed first may resume
			c.writeRaw(wsFrame(nil, 0x8, wsCloseBody(wsNormal, "")))
			c.closeAfterWrites()
			return nil
		case 0x9:
			c.writeRaw(wsFrame(nil, 0xA, payload))
		case 0xA: // pong: liveness is the XMPP ping's business
		default:
			c.wsFail(wsProtocolErr, "unknown opcode")
			return nil
		}
	}
	return nil
}

// wsData handles a text payload: framing elements are gathered and translated, everything
// else goes to the tokenizer as it comes.
func (c *conn) wsData(p []byte, fin bool) {
	ws := c.ws
	ws.msgLen += len(p)
	if ws.mode == wsUndecided {
		head := p
		if ws.msg != nil {
			ws.msg.B = append(ws.msg.B, p...)
			head = ws.msg.B
		}
		switch framingKind(head) {
		case 0: // cannot tell yet
			if !fin {
				if ws.msg == nil {
					ws.msg = plainPool.Get()
					ws.msg.B = append(ws.msg.B[:0], p...)
				}
				return
			}
			ws.mode = wsPass
		case 1:
			ws.mode = wsPass
		case 2:
			ws.mode = wsFramingEl
			if ws.msg == nil {
				ws.msg = plainPool.Get()
				ws.msg.B = append(ws.msg.B[:0], p...)
			}
		}
		if ws.mode == wsPass && c.wantsOpen() {
			c.fail("bad-format", "RFC 7395: a stream starts with <open/>")
			return
		}
		if ws.mode == wsPass {
			if ws.msg != nil {
				m := ws.msg
				ws.msg = nil
				c.input(m.B)
				plainPool.Put(m)
			} else {
				c.input(p)
			}
		}
	} else if ws.mode == wsPass {
		c.input(p)
	} else {
		ws.msg.B = append(ws.msg.B, p...)
	}
	if fin && ws.mode == wsFramingEl {
		m := ws.msg
		ws.msg = nil
		c.wsFraming(m.B)
		plainPool.Put(m)
	}
	if fin {
		ws.mode = wsUndecided
	}
}

// wantsOpen reports whether the stream waits for its header (first, or after SASL), which
// on WebSocket must be <open/>.
func (c *conn) wantsOpen() bool {
	st := c.state.Load()
	return st == stHeader || st == stAuthed
}

// framingKind tells from the start of a message whether it is RFC 7395's <open/> or
// <close/> (2), something else (1), or not yet known (0).
func framingKind(b []byte) int {
	b = bytes.TrimLeft(b, " \t\r\n")
	for _, name := range []string{"<open", "<close"} {
		if len(b) <= len(name) {
			if strings.HasPrefix(name, string(b)) {
				return 0
			}
			continue
		}
		if string(b[:len(name)]) == name {
			switch b[len(name)] {
			case ' ', '\t', '\r', '\n', '/', '>':
				return 2
			}
		}
	}
	return 1
}

// wsFraming turns <open/> into the stream header the tokenizer expects (RFC 7395 §3.4) and
// <close/> into the stream's end tag.
func (c *conn) wsFraming(raw []byte) {
	e, err := xmlstream.ParseElement(raw, "")
	if err != nil || string(e.NS()) != nsFraming {
		c.fail("bad-format", "expected <open/> or <close/> in the framing namespace")
		return
	}
	if string(e.Name()) == "close" {
		c.input([]byte("</stream:stream>"))
		return
	}
	b := append([]byte(nil), "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"...)
	for _, a := range []string{"to", "from", "version", "xml:lang"} {
		var v []byte
		var ok bool
		if a == "xml:lang" {
			v, ok = e.AttrNS("http://www.w3.org/XML/1998/namespace", "lang")
		} else {
			v, ok = e.Attr(a)
		}
		if !ok {
			continue
		}
		b = append(b, ' ')
		b = append(b, a...)
		b = append(b, "='"...)
		b = xmlstream.AppendEscapedAttr(b, xmlstream.AppendUnescaped(nil, v))
		b = append(b, '\'')
	}
	b = append(b, '>')
	c.input(b)
}

// wsFail closes the WebSocket with code and reason (no XMPP stream error: the framing is
// what broke).
func (c *conn) wsFail(code uint16, reason string) {
	if e := c.srv().log.Debug(); e.Enabled() {
		e.Str("remote", c.ip()).Int("code", int(code)).Str("reason", reason).Msg("websocket closed")
	}
	c.writeRaw(wsFrame(nil, 0x8, wsCloseBody(code, reason)))
	c.closeAfterWrites()
}

func wsCloseBody(code uint16, reason string) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return append(b, reason...)
}

// wsFrame appends one unmasked, final frame.
func wsFrame(dst []byte, op byte, payload []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

var wsOutPool bytebufferpool.Pool

// wsWrite frames what the stream kind writes: one text message per top-level element,
// translated per RFC 7395. It is pure, so Send may call it from any goroutine.
func (c *conn) wsWrite(b []byte) {
	buf := wsOutPool.Get()
	out := buf.B[:0]
	var el []byte
	for len(b) > 0 {
		el, b = nextTop(b)
		if len(el) == 0 {
			break
		}
		out = wsTranslate(out, el, c.ws.closeCode())
	}
	if len(out) > 0 {
		c.writeRaw(out)
	}
	buf.B = out
	wsOutPool.Put(buf)
}

const streamHeaderPrefix = "<?xml version='1.0'?><stream:stream "

// closeCode is the code of the close frame that follows the stream's end tag.
func (ws *wsState) closeCode() uint16 {
	if ws.badUTF8.Load() {
		return wsBadData
	}
	return wsNormal
}

// wsTranslate appends the frames for one top-level element; the stream's end tag is
// followed by a close frame with code.
func wsTranslate(dst, el []byte, code uint16) []byte {
	switch {
	case bytes.HasPrefix(el, []byte(streamHeaderPrefix)):
		// <stream:stream xmlns=… xmlns:stream=… id=… …> becomes <open xmlns=framing id=… …/>.
		attrs := el[len(streamHeaderPrefix) : len(el)-1]
		if i := bytes.Index(attrs, []byte(" id=")); i >= 0 {
			attrs = attrs[i+1:]
		}
		m := make([]byte, 0, len(attrs)+64)
		m = append(m, "<open xmlns='"+nsFraming+"' "...)
		m = append(m, attrs...)
		m = append(m, "/>"...)
		return wsFrame(dst, 0x1, m)
	case string(el) == "</stream:stream>":
		dst = wsFrame(dst, 0x1, []byte("<close xmlns='"+nsFraming+"'/>"))
		return wsFrame(dst, 0x8, wsCloseBody(code, ""))
	case bytes.HasPrefix(el, []byte("<stream:")):
		return wsFrame(dst, 0x1, insertAttr(el, " xmlns:stream='"+ns.Stream+"'"))
	case isStanzaStart(el) && !hasXMLNS(el):
		return wsFrame(dst, 0x1, insertAttr(el, " xmlns='"+ns.Client+"'"))
	}
	return wsFrame(dst, 0x1, el)
}

func isStanzaStart(el []byte) bool {
	for _, n := range []string{"<message", "<presence", "<iq"} {
		if len(el) > len(n) && string(el[:len(n)]) == n {
			switch el[len(n)] {
			case ' ', '\t', '\r', '\n', '/', '>':
				return true
			}
		}
	}
	return false
}

// startTagEnd returns the index of the '>' that ends the start tag at el[0].
func startTagEnd(el []byte) int {
	var q byte
	for i := 1; i < len(el); i++ {
		ch := el[i]
		switch {
		case q != 0:
			if ch == q {
				q = 0
			}
		case ch == '\'' || ch == '"':
			q = ch
		case ch == '>':
			return i
		}
	}
	return len(el)
}

// hasXMLNS reports whether the start tag declares a default namespace: an xmlns
// attribute, not the text "xmlns=" inside another attribute's value (an id or a room
// nickname a sender chose), which would leave the stanza without its namespace.
func hasXMLNS(el []byte) bool {
	tag := el[:startTagEnd(el)]
	var q byte
	for i := 1; i < len(tag); i++ {
		switch ch := tag[i]; {
		case q != 0:
			if ch == q {
				q = 0
			}
		case ch == '\'' || ch == '"':
			q = ch
		case ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n':
			if bytes.HasPrefix(tag[i+1:], []byte("xmlns")) {
				rest := bytes.TrimLeft(tag[i+6:], " \t\r\n")
				if len(rest) > 0 && rest[0] == '=' {
					return true
				}
			}
		}
	}
	return false
}

// insertAttr puts attr right after the element name of el's start tag.
func insertAttr(el []byte, attr string) []byte {
	i := 1
	for i < len(el) && el[i] != ' ' && el[i] != '\t' && el[i] != '\r' && el[i] != '\n' && el[i] != '/' && el[i] != '>' {
		i++
	}
	out := make([]byte, 0, len(el)+len(attr))
	out = append(out, el[:i]...)
	out = append(out, attr...)
	return append(out, el[i:]...)
}

// nextTop splits the first top-level element (or the stream header, or its end tag) off
// b, skipping whitespace between elements. What the server writes is well-formed, but a
// relayed stanza's attribute values and CDATA may hold '>' and '<', so quotes and CDATA
// sections are respected.
func nextTop(b []byte) (el, rest []byte) {
	start := 0
	for start < len(b) && (b[start] == ' ' || b[start] == '\t' || b[start] == '\r' || b[start] == '\n') {
		start++
	}
	b = b[start:]
	if len(b) == 0 {
		return nil, nil
	}
	if bytes.HasPrefix(b, []byte(streamHeaderPrefix)) {
		i := len(streamHeaderPrefix) + startTagEnd(b[len(streamHeaderPrefix)-1:]) - 1
		return b[:i+1], b[i+1:]
	}
	depth := 0
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return b, nil
		}
		i += j
		if bytes.HasPrefix(b[i:], []byte("<![CDATA[")) {
			k := bytes.Index(b[i:], []byte("]]>"))
			if k < 0 {
				return b, nil
			}
			i += k + 3
			continue
		}
		end := i + startTagEnd(b[i:])
		if end >= len(b) {
			return b, nil
		}
		switch {
		case b[i+1] == '/':
			depth--
		case b[end-1] != '/':
			depth++
		}
		i = end + 1
		if depth <= 0 {
			return b[:i], b[i:]
		}
	}
	return b, nil
}

// --- the HTTP upgrade ---

// httpReq is the part of a request head the listener looks at.
type httpReq struct {
	method, path string
	query        string            // after '?', raw; only mounted handlers read it
	header       map[string]string // lower-case names; repeated headers joined with ","
	fwd          forwarded         // what a trusted proxy said of the client (forwarded.go)
	keep         bool              // HTTP/1.1 without "Connection: close", or 1.0 with keep-alive
}

func parseHTTPHead(head []byte) (httpReq, bool) {
	var r httpReq
	lines := strings.Split(strings.TrimRight(string(head), "\r\n"), "\r\n")
	parts := strings.Split(lines[0], " ")
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return r, false
	}
	r.method, r.path = parts[0], parts[1]

	if i := strings.IndexByte(r.path, '?'); i >= 0 {
		r.path, r.query = r.path[:i], r.path[i+1:]
	}
	r.header = make(map[string]string, len(lines))
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return r, false
		}
		k = strings.ToLower(k)
		v = strings.TrimSpace(v)
		if old, dup := r.header[k]; dup {
			v = old + "," + v
		}
		r.header[k] = v
	}
	if parts[2] == "HTTP/1.1" {
		r.keep = !headerHas(r.header["connection"], "close")
	} else {
		r.keep = headerHas(r.header["connection"], "keep-alive")
	}
	return r, true
}

func headerHas(v, token string) bool {
	for _, t := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// onHTTP answers one request: the WebSocket upgrade on the configured path, BOSH (bosh.go),
// host-meta, or an error. Only an upgrade keeps the connection; a BOSH request keeps it
// until its answer.
func (c *conn) onHTTP(r httpReq, body []byte) {
	web := &c.srv().config().Web
	if web.proxy(c.peerIP()) {
		r.fwd = web.forwardedFrom(r.header)
	}
	if r.path == web.BOSHPath {
		c.serveBOSH(r, body)
		return
	}
	if m := web.mount(r.path); m != nil && r.path != web.WSPath {
		c.serveMount(m.Handler, r, body)
		return
	}
	if r.path != web.WSPath {
		c.serveHTTP(r)
		return
	}
	h := r.header
	switch {
	case r.method != "GET":
		c.httpReply(405, "Method Not Allowed", "", []string{"Allow: GET"})
	case !headerHas(h["upgrade"], "websocket") || !headerHas(h["connection"], "upgrade"):
		c.httpReply(426, "Upgrade Required", "this is an XMPP WebSocket endpoint (RFC 7395)\n", []string{"Upgrade: websocket", "Connection: Upgrade"})
	case h["sec-websocket-version"] != "13":
		c.httpReply(426, "Upgrade Required", "", []string{"Sec-WebSocket-Version: 13"})
	case !validWSKey(h["sec-websocket-key"]):
		c.httpReply(400, "Bad Request", "bad Sec-WebSocket-Key\n", nil)
	case !headerHas(h["sec-websocket-protocol"], "xmpp"):
		// RFC 7395 §3.2: the handshake must offer the 'xmpp' subprotocol.
		c.httpReply(400, "Bad Request", "the xmpp subprotocol is required (RFC 7395)\n", nil)
	case !web.originOK(h["origin"]):
		c.httpReply(403, "Forbidden", "origin not allowed\n", nil)
	default:
		if r.fwd.ip != "" && !c.rekeyClient(r.fwd.ip) {
			return
		}
		sum := sha1.Sum([]byte(h["sec-websocket-key"] + wsGUID))
		c.writeRaw([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n"))
		c.ws.open.Store(true)
		// The stream starts now: the pre-auth time counts from here, not from a
		// keep-alive connection's first request (a proxy reuses its upstream ones).
		c.opened.Store(uint32(time.Since(epoch) / time.Second))
		if !c.has(fTLS) && c.secureRequest(r) {
			// A reverse proxy terminated TLS for the browser.
			c.set(fTLS)
		}
	}
}

func validWSKey(k string) bool {
	b, err := base64.StdEncoding.DecodeString(k)
	return err == nil && len(b) == 16
}

// httpReply answers with status and a small body, then closes the connection.
func (c *conn) httpReply(code int, text, body string, extra []string) {
	c.httpWrite(false, code, text, body, extra)
}

// httpAnswer is httpReply for a request that was read whole and well-formed: when r asks
// for a persistent connection (HTTP/1.1 by default) the connection stays open for the
// next request, so a browser's CORS preflight, a refused method or a metrics scrape does
// not cost the client a new TCP (and TLS) handshake.
func (c *conn) httpAnswer(r httpReq, code int, text, body string, extra []string) {
	if r.method == "HEAD" && body != "" {
		// RFC 9110 §9.3.2: a GET's header, no content. On a kept connection a body
		// would be read as the start of the next response.
		joined := strings.Join(extra, "\n")
		extra = extra[:len(extra):len(extra)]
		if !strings.Contains(joined, "Content-Length:") {
			extra = append(extra, "Content-Length: "+strconv.Itoa(len(body)))
		}
		if !strings.Contains(joined, "Content-Type:") {
			extra = append(extra, "Content-Type: text/plain; charset=utf-8")
		}
		body = ""
	}
	c.httpWrite(r.keep, code, text, body, extra)
}

func (c *conn) httpWrite(keep bool, code int, text, body string, extra []string) {
	keep = keep && !c.closing.Load()
	var b strings.Builder
	b.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if body != "" && !strings.Contains(strings.Join(extra, "\n"), "Content-Type:") {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	}
	conn := "close"
	if keep {
		conn = "keep-alive"
	}
	if !strings.Contains(strings.Join(extra, "\n"), "Content-Length:") { // a HEAD gives a GET's
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("Connection: " + conn + "\r\n\r\n" + body)
	c.writeRaw([]byte(b.String()))
	if !keep {
		c.closeAfterWrites()
		return
	}
	// Idle time now counts from the last read, as for a kept BOSH connection (tick.go).
	c.ws.kept.Store(true)
	c.lastRx.Store(sinceEpoch(time.Now()))
}
