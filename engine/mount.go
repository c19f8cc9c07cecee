package engine

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/vireo-im/vireo/engine/metrics"
)

// Mounts: the web listener's route table answers its own few paths on the loop, but pages
// with forms and cookies are easier to write against net/http. A Mount hands every request
// under its prefix to a standard http.Handler, off the loop: the request the engine parsed
// becomes an *http.Request, the handler runs on a goroutine of its own (one per request,
// which suits rare pages such as the admin dashboard, not traffic), its response is
// buffered whole, and the loop writes it and closes the connection as it does for every
// other answer. Handlers get no hijacking, streaming or trailers.

// Mount serves the paths under Prefix with Handler.
type Mount struct {
	// Prefix ends with '/' ("/admin/"); the path without the slash is served too.
	Prefix  string
	Handler http.Handler
}

// MaxMountResponse bounds a mounted handler's buffered response; past it the client gets
// 500. Admin pages are a few KiB; a screenful of users well under a MiB.
const MaxMountResponse = 8 << 20

func (w *Web) mount(path string) *Mount {
	for i := range w.Mounts {
		m := &w.Mounts[i]
		if strings.HasPrefix(path, m.Prefix) || path+"/" == m.Prefix {
			return m
		}
	}
	return nil
}

// serveMount runs h for r on a goroutine and writes its answer from the loop. The
// connection is held like a BOSH request meanwhile: nothing more is read from it and the
// timeout sweep leaves it alone.
func (c *conn) serveMount(h http.Handler, r httpReq, body []byte) {
	target := r.path
	if r.query != "" {
		target += "?" + r.query
	}
	req, err := http.NewRequest(r.method, target, bytes.NewReader(bytes.Clone(body)))
	if err != nil {
		c.httpReply(400, "Bad Request", "", nil)
		return
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	req.Host = c.requestHost(r)
	req.RequestURI = target
	req.ContentLength = int64(len(body))
	req.RemoteAddr = net.JoinHostPort(c.clientIP(r), "0")
	if t := c.tls.Load(); t != nil {
		// What handlers look at (Secure cookies, scheme); the keys are none of theirs.
		req.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: t.ServerName()}
	} else if r.fwd.proto == "https" || c.has(fTLS) { // TLS that an edge ran, or a proxy's word
		req.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: req.Host}
	}
	c.ws.bosh.Store(true)
	log, gc := c.srv().log, c.gc
	go func() {
		w := &mountWriter{header: http.Header{}}
		func() {
			defer func() {
				if p := recover(); p != nil {
					log.Error().Interface("panic", p).Str("path", r.path).Msg("web: mounted handler panicked")
					w.fail()
				}
			}()
			h.ServeHTTP(w, req)
		}()
		resp := w.response(r.method == "HEAD")
		gc.Wake(func(_ gnet.Conn, werr error) error {
			if werr != nil || c.closing.Load() {
				return nil
			}
			c.writeRaw(resp)
			c.closeAfterWrites()
			return nil
		})
	}()
}

// mountWriter buffers one response; it is used by one goroutine.
type mountWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
	over   bool
}

func (w *mountWriter) Header() http.Header { return w.header }

func (w *mountWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *mountWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.body.Len()+len(b) > MaxMountResponse {
		w.over = true
		return 0, http.ErrContentLength
	}
	return w.body.Write(b)
}

func (w *mountWriter) fail() {
	w.header = http.Header{}
	w.code = http.StatusInternalServerError
	w.body.Reset()
}

// response is the HTTP/1.1 message for what the handler wrote; every answer closes the
// connection.
func (w *mountWriter) response(head bool) []byte {
	if w.over {
		w.fail()
	}
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if w.header.Get("Content-Type") == "" && w.body.Len() > 0 {
		w.header.Set("Content-Type", http.DetectContentType(w.body.Bytes()))
	}
	w.header.Del("Content-Length")
	w.header.Del("Connection")
	w.header.Del("Transfer-Encoding")
	if w.header.Get("Date") == "" {
		w.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(w.code) + " " + http.StatusText(w.code) + "\r\n")
	keys := make([]string, 0, len(w.header))
	for k := range w.header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range w.header[k] {
			// Header values cannot carry a line break into the response.
			b.WriteString(k + ": " + strings.NewReplacer("\r", " ", "\n", " ").Replace(v) + "\r\n")
		}
	}
	b.WriteString("Content-Length: " + strconv.Itoa(w.body.Len()) + "\r\nConnection: close\r\n\r\n")
	if !head {
		b.Write(w.body.Bytes())
	}
	return b.Bytes()
}

// Counters is a snapshot of the numbers GET /metrics exports (engine and router), for
// other views of them such as the admin dashboard. Safe for concurrent use.
func (s *Server) Counters() metrics.Counters { return s.counters() }

// LoginAttempt counts one password attempt from the client address ip against the budget
// XMPP logins from that address share (Config.AuthFailLimit a minute, IPv6 by /64), for
// password checks outside XMPP such as the admin dashboard's, and reports whether it may
// go ahead. A successful attempt is given back with LoginSucceeded. Safe for concurrent use.
func (s *Server) LoginAttempt(ip string) bool {
	return s.throttle.take(addrKey(ip), s.config().AuthFailLimit, time.Now())
}

// LoginSucceeded gives back the attempt LoginAttempt counted for ip.
func (s *Server) LoginSucceeded(ip string) { s.throttle.refund(addrKey(ip)) }
