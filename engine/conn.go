package engine

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/vireo-im/vireo/engine/tlsconn"
	"github.com/vireo-im/vireo/modules/module"
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
)

// conn is one client connection, owned by its event loop except for the atomics, which
// other goroutines read (Send, Close, the timeout sweep).
type conn struct {
	gc      gnet.Conn
	l       *listener
	tls     atomic.Pointer[tlsconn.Conn]
	sess    *router.Session
	held    *bytebufferpool.ByteBuffer // bytes that arrived while paused
	auth    *authState                 // only during a SASL exchange
	bare    jid.JID                    // after SASL
	ip      string
	scan    xmlstream.State
	queued  atomic.Int64 // bytes handed to AsyncWrite and not written yet
	lastRx  atomic.Int64 // unix seconds of the last read
	pingAt  atomic.Int64 // unix seconds a keepalive ping went out, 0 if none
	opened  int64
	state   atomic.Uint32
	closing atomic.Bool
	hsErr   atomic.Bool // TLS handshake failed
	flags   uint16
	domain  uint16 // index into the config's domains at stream start
}

func newConn(l *listener, gc gnet.Conn) *conn {
	c := &conn{gc: gc, l: l, opened: time.Now().Unix()}
	if a, ok := gc.RemoteAddr().(*net.TCPAddr); ok {
		c.ip = a.IP.String()
	}
	c.lastRx.Store(c.opened)
	cfg := l.srv.config()
	c.scan.Reset(xmlstream.KindClient, &cfg.Limits)
	return c
}

func (c *conn) has(f uint16) bool { return c.flags&f != 0 }
func (c *conn) set(f uint16)      { c.flags |= f }
func (c *conn) clear(f uint16)    { c.flags &^= f }

func (c *conn) srv() *Server { return c.l.srv }

func (c *conn) domainName() string {
	d := c.srv().config().Domains
	if int(c.domain) < len(d) {
		return d[c.domain]
	}
	return d[0]
}

// --- reading ---

var plainPool bytebufferpool.Pool

// onTraffic runs on the loop for every readable event and every Wake.
func (c *conn) onTraffic() {
	defer c.recoverPanic()
	data, _ := c.gc.Next(-1)
	if len(data) > 0 {
		now := time.Now().Unix()
		c.lastRx.Store(now)
		c.pingAt.Store(0)
	}
	if c.closing.Load() {
		return
	}
	t := c.tls.Load()
	if t == nil {
		if len(data) > 0 {
			c.input(data)
		}
		return
	}
	t.Feed(data)
	if c.hsErr.Load() {
		c.closeNow()
		return
	}
	if !t.HandshakeComplete() {
		return
	}
	buf := plainPool.Get()
	if cap(buf.B) < plainBufSize {
		buf.B = make([]byte, plainBufSize)
	}
	buf.B = buf.B[:cap(buf.B)]
	for !c.closing.Load() {
		n, err := t.Read(buf.B)
		if n > 0 {
			c.input(buf.B[:n])
		}
		if err != nil {
			c.closeNow() // close_notify or a broken record
			break
		}
		if n == 0 {
			break
		}
	}
	plainPool.Put(buf)
	t.Release()
}

// input processes plaintext, or holds it while the connection waits for a worker result.
func (c *conn) input(p []byte) {
	if c.has(fPaused) || c.held != nil {
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
	if len(c.held.B)+len(p) > 2*c.srv().config().Limits.MaxStanza {
		c.fail(stanza.PolicyViolation, "too much data while the server was busy with this stream")
		return
	}
	c.held.B = append(c.held.B, p...)
}

// resume continues after a worker or router result: it processes what was held.
func (c *conn) resume() {
	c.clear(fPaused)
	for c.held != nil && !c.has(fPaused) && !c.closing.Load() {
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
		if c.has(fPaused) {
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
			c.onHeader(ev.Stanza)
		case xmlstream.EventElement:
			if c.onElement(ev.Stanza) && len(p) > 0 {
				// STARTTLS: what follows <starttls/> is the TLS handshake.
				c.tls.Load().Feed(p)
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

func (c *conn) onHeader(h *xmlstream.Stanza) {
	cfg := c.srv().config()
	c.domain = 0
	to, _ := h.Attr("to")
	if len(to) > 0 {
		d, err := jid.PrepareDomain(string(xmlstream.AppendUnescaped(nil, to)))
		found := false
		if err == nil {
			for i, x := range cfg.Domains {
				if x == d {
					c.domain, found = uint16(i), true
				}
			}
		}
		c.writeHeader(h)
		if !found {
			c.fail(stanza.HostUnknown, "")
			return
		}
	} else {
		c.writeHeader(h)
	}
	// RFC 6120 §4.7.5: a missing version means 0.9, which we do not speak.
	if v, ok := h.Attr("version"); !ok || len(v) < 2 || v[0] != '1' || v[1] != '.' {
		c.fail(stanza.UnsupportedVersion, "version='1.0' is required")
		return
	}
	c.writeFeatures()
}

func (c *conn) writeHeader(h *xmlstream.Stanza) {
	var b xmlstream.Builder
	b.B = append(b.B, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"...)
	b.B = append(b.B, " id='"...)
	b.B = append(b.B, streamID()...)
	b.B = append(b.B, "' from='"...)
	b.B = xmlstream.AppendEscapedString(b.B, c.domainName())
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
		lang = h.Lang
	}
	b.B = xmlstream.AppendEscapedAttr(b.B, lang)
	b.B = append(b.B, "'>"...)
	c.set(fHeaderSent)
	c.write(b.B)
}

func (c *conn) writeFeatures() {
	cfg := c.srv().config()
	var b xmlstream.Builder
	b.Start("stream:features")
	switch c.state.Load() {
	case stHeader, stNegotiating:
		c.state.Store(stNegotiating)
		tlsOK := c.has(fTLS)
		if !tlsOK && cfg.TLS != nil {
			b.Start("starttls").Attr("xmlns", ns.TLS)
			if cfg.RequireTLS {
				b.Start("required").End()
			}
			b.End()
		}
		if tlsOK || !cfg.RequireTLS || cfg.TLS == nil {
			b.Start("mechanisms").Attr("xmlns", ns.SASL)
			for _, m := range c.mechanisms() {
				b.Start("mechanism").Text(m).End()
			}
			b.End()
			if cb := c.cbTypes(); len(cb) > 0 {
				// XEP-0440: which channel bindings this server supports.
				b.Start("sasl-channel-binding").Attr("xmlns", "urn:xmpp:sasl-cb:0")
				for _, t := range cb {
					b.Start("channel-binding").Attr("type", t).End()
				}
				b.End()
			}
			if cfg.Registration {
				b.Start("register").Attr("xmlns", ns.RegisterFeature).End()
			}
		}
	case stAuthed, stBind:
		c.state.Store(stBind)
		b.Start("bind").Attr("xmlns", ns.Bind).End()
		b.Start("session").Attr("xmlns", ns.Session).Start("optional").End().End()
		b.Start("c").Attr("xmlns", ns.Caps).Attr("hash", "sha-1").Attr("node", module.CapsNode).
			Attr("ver", c.srv().rt.CapsVer()).End()
		for _, f := range c.srv().rt.Features() {
			switch f {
			case ns.RosterVer:
				b.Start("ver").Attr("xmlns", ns.RosterVer).End()
			case ns.PreApproval:
				b.Start("sub").Attr("xmlns", ns.PreApproval).End()
			}
		}
	}
	b.End()
	c.write(b.B)
}

// --- elements ---

// onElement handles one top-level element. It reports whether TLS just started (the
// rest of the input belongs to the TLS layer).
func (c *conn) onElement(st *xmlstream.Stanza) bool {
	state := c.state.Load()
	elemNS := string(st.NS)
	name := string(st.Name)
	if state == stEstablished {
		c.established(st)
		return false
	}
	switch {
	case elemNS == ns.TLS && name == "starttls":
		return c.onStartTLS()
	case elemNS == ns.SASL && (name == "auth" || name == "response" || name == "abort"):
		c.onSASL(st)
		return false
	}
	cfg := c.srv().config()
	if st.Kind() == xmlstream.KindIQ && !c.has(fAuthed) && cfg.Registration {
		if p, ok := st.FirstChild(); ok && string(p.NS()) == ns.Register {
			if cfg.RequireTLS && !c.has(fTLS) && cfg.TLS != nil {
				c.fail(stanza.NotAuthorized, "STARTTLS is required first")
				return false
			}
			c.onRegister(st, p)
			return false
		}
	}
	if st.Kind() == xmlstream.KindIQ && state == stBind {
		if p, ok := st.FirstChild(); ok {
			switch {
			case string(p.NS()) == ns.Bind && string(p.Name()) == "bind":
				c.onBind(st, p)
				return false
			}
		}
	}
	c.fail(stanza.NotAuthorized, "")
	return false
}

func (c *conn) onStartTLS() bool {
	cfg := c.srv().config()
	if c.has(fTLS) || cfg.TLS == nil || c.state.Load() != stNegotiating {
		c.write([]byte("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"))
		c.closeAfterWrites()
		return false
	}
	c.write([]byte("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
	c.startTLS()
	return true
}

// startTLS wraps the connection in TLS; the next stream header comes encrypted.
func (c *conn) startTLS() {
	cfg := c.srv().config()
	gc := c.gc
	t := tlsconn.Server(cfg.TLS, c.asyncWrite, func(err error) {
		if err != nil {
			c.hsErr.Store(true)
		}
		gc.Wake(nil) // back on the loop: read what arrived during the handshake, or close
	})
	c.tls.Store(t)
	c.set(fTLS)
	c.srv().tlsConns.Add(1)
	c.state.Store(stHeader)
	c.scan.Reset(xmlstream.KindClient, &cfg.Limits)
}

func (c *conn) established(st *xmlstream.Stanza) {
	k := st.Kind()
	if k == xmlstream.KindOther {
		c.fail(stanza.UnsupportedStanzaType, "")
		return
	}
	if len(st.From) > 0 && !c.fromOK(st.From) {
		c.fail(stanza.InvalidFrom, "")
		return
	}
	if k == xmlstream.KindIQ && string(st.Type) == "set" && len(st.To) == 0 {
		if p, ok := st.FirstChild(); ok && string(p.NS()) == ns.Session {
			// RFC 3921 legacy session establishment: a no-op since RFC 6121.
			c.iqResult(st.ID, nil)
			return
		}
	}
	if !c.srv().rt.Submit(c.sess, st) {
		c.fail(stanza.PolicyViolation, "too many stanzas")
	}
}

// fromOK checks a client-supplied 'from' against the session (RFC 6120 §8.1.2.1).
func (c *conn) fromOK(raw []byte) bool {
	full := c.sess.JID().String()
	v := raw
	if len(v) == len(full) && string(v) == full {
		return true
	}
	bare := c.bare.String()
	if string(v) == bare {
		return true
	}
	u := xmlstream.AppendUnescaped(nil, raw)
	return string(u) == full || string(u) == bare
}

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

// --- bind ---

func (c *conn) onBind(st *xmlstream.Stanza, p xmlstream.Element) {
	id := append([]byte(nil), st.ID...)
	if string(st.Type) != "set" {
		c.iqError(id, stanza.New(stanza.BadRequest))
		return
	}
	var res string
	if r, ok := p.Child(ns.Bind, "resource"); ok {
		raw := r.AppendText(nil)
		if len(raw) > 0 {
			prep, err := jid.PrepareResource(string(raw))
			if err != nil {
				c.iqError(id, stanza.New(stanza.BadRequest))
				return
			}
			res = prep
		}
	}
	c.set(fPaused | fBindWait)
	gc := c.gc
	c.srv().rt.Bind(c.bare, res, c, func(s *router.Session, err error) {
		werr := gc.Wake(func(_ gnet.Conn, werr error) error {
			c.bound(id, s, err, werr)
			return nil
		})
		if werr != nil && s != nil {
			c.srv().rt.Unbind(s)
		}
	})
}

// bound runs on the loop with the router's answer to a bind.
func (c *conn) bound(id []byte, s *router.Session, err error, werr error) {
	defer c.recoverPanic()
	c.clear(fBindWait)
	if werr != nil || c.closing.Load() {
		if s != nil {
			c.srv().rt.Unbind(s)
		}
		return
	}
	if err != nil {
		se, ok := err.(*stanza.Error)
		if !ok {
			se = stanza.New(stanza.InternalServerErrorCond)
		}
		c.iqError(id, se)
		c.resume()
		return
	}
	c.sess = s
	c.state.Store(stEstablished)
	c.srv().established.Add(1)
	var b xmlstream.Builder
	b.Start("bind").Attr("xmlns", ns.Bind).Start("jid").Text(s.JID().String()).End().End()
	c.iqResult(id, b.B)
	c.srv().log.Debug().Str("jid", s.JID().String()).Str("remote", c.ip).Msg("bound")
	c.resume()
}

// --- writing ---

var writePool bytebufferpool.Pool

// Send implements router.Conn: it copies b into the stream. Safe for concurrent use.
func (c *conn) Send(b []byte) bool {
	if c.closing.Load() {
		return false
	}
	if c.queued.Load() > int64(c.srv().config().MaxOutbound) {
		c.Close(stanza.PolicyViolation)
		return false
	}
	c.write(b)
	return true
}

// write sends plaintext: through TLS when on, else straight to the socket queue.
func (c *conn) write(b []byte) {
	if t := c.tls.Load(); t != nil && t.HandshakeComplete() {
		t.Write(b)
		return
	}
	c.asyncWrite(b)
}

// asyncWrite copies b into a pooled buffer and queues it on the loop. It is also the
// TLS layer's transport write.
func (c *conn) asyncWrite(b []byte) error {
	buf := writePool.Get()
	buf.B = append(buf.B[:0], b...)
	n := int64(len(buf.B))
	c.queued.Add(n)
	max := c.srv().config().MaxOutbound
	err := c.gc.AsyncWrite(buf.B, func(gc gnet.Conn, err error) error {
		c.queued.Add(-n)
		writePool.Put(buf)
		if err == nil && gc.OutboundBuffered() > max {
			// The client does not read: drop it rather than buffer without end.
			c.closing.Store(true)
			return gc.Close()
		}
		return nil
	})
	if err != nil {
		c.queued.Add(-n)
		writePool.Put(buf)
	}
	return err
}

// closeAfterWrites closes the socket once everything queued before it is written.
func (c *conn) closeAfterWrites() {
	c.closing.Store(true)
	if t := c.tls.Load(); t != nil && t.HandshakeComplete() {
		t.Close() // close_notify, queued after the last record
	}
	c.gc.AsyncWrite([]byte{}, func(gc gnet.Conn, _ error) error { return gc.Close() })
}

// Close implements router.Conn: stream error (if cond is set), end tag, close. Safe for
// concurrent use and idempotent.
func (c *conn) Close(cond stanza.StreamCondition) {
	if c.closing.Load() {
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
	if c.closing.Load() {
		return
	}
	if !c.has(fHeaderSent) {
		c.writeHeader(nil)
	}
	e := stanza.StreamError{Condition: cond, Text: text}
	b := e.AppendXML(nil)
	b = append(b, "</stream:stream>"...)
	c.write(b)
	c.srv().log.Debug().Str("remote", c.ip).Str("condition", string(cond)).Str("text", text).Msg("stream error")
	c.closeAfterWrites()
}

func (c *conn) streamError(err error) {
	if se, ok := err.(*stanza.StreamError); ok {
		c.fail(se.Condition, se.Text)
		return
	}
	c.fail(stanza.InternalServerError, "")
}

// endStream answers the client's </stream:stream> (RFC 6120 §4.4).
func (c *conn) endStream() {
	if !c.has(fHeaderSent) {
		c.writeHeader(nil)
	}
	c.write([]byte("</stream:stream>"))
	c.closeAfterWrites()
}

func (c *conn) closeNow() {
	c.closing.Store(true)
	c.gc.Close()
}

func (c *conn) recoverPanic() {
	if v := recover(); v != nil {
		c.srv().log.Error().Str("panic", fmt.Sprint(v)).Bytes("stack", debug.Stack()).Str("remote", c.ip).
			Msg("connection handler panicked; closing the stream")
		c.fail(stanza.InternalServerError, "")
	}
}

// onClose runs on the loop when the socket is gone, however it ended.
func (c *conn) onClose(err error) {
	s := c.srv()
	c.closing.Store(true)
	s.open.Add(-1)
	if c.sess != nil {
		s.rt.Unbind(c.sess)
		s.established.Add(-1)
	}
	if t := c.tls.Load(); t != nil {
		t.Close()
		s.tlsConns.Add(-1)
	}
	c.scan.Release()
	if c.held != nil {
		plainPool.Put(c.held)
		c.held = nil
	}
	c.auth = nil
	ev := s.log.Debug().Str("remote", c.ip)
	if c.sess != nil {
		ev = ev.Str("jid", c.sess.JID().String())
	}
	if err != nil {
		ev = ev.Err(err)
	}
	ev.Msg("close")
}
