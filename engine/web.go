package engine

import (
	"encoding/json"
	"net/netip"
	"strings"
	"time"

	"github.com/vireo-im/vireo/engine/metrics"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// The web listener: one HTTP port (plain, and TLS with the c2s certificates) whose
// connections live on the event loops. It routes by path through one small table: the
// RFC 7395 WebSocket endpoint (websocket.go), XEP-0206 BOSH (bosh.go) and XEP-0156
// host-meta. Requests are answered
// and closed; only the WebSocket upgrade keeps its connection.

// Web configures the web listener.
type Web struct {
	// WSPath is the WebSocket endpoint's path (default /xmpp-websocket).
	WSPath string
	// PublicWS is the WebSocket URL host-meta announces ("wss://chat.example.org/xmpp-websocket"):
	// what browsers reach, often through a reverse proxy. Empty: derived from the request's
	// Host header and the listener (ws:// or wss://).
	PublicWS string
	// Origins lists the Origin values allowed to open a WebSocket or use BOSH
	// ("https://chat.example.org"); empty allows any (XMPP authenticates itself; browsers
	// send no credentials with it).
	Origins []string
	// BOSHPath is the XEP-0124/XEP-0206 BOSH endpoint's path (default /http-bind);
	// PublicBOSH the URL host-meta announces for it (empty: derived like the WebSocket one).
	BOSHPath   string
	PublicBOSH string
	// BOSHInactivity is how long a BOSH session lives without a request (default
	// DefaultBOSHInactivity); BOSHWait the longest a request is held (default
	// DefaultBOSHWait).
	BOSHInactivity time.Duration
	BOSHWait       time.Duration
	// MetricsAllow lists the networks whose clients may GET /metrics (Prometheus);
	// others get 403. Empty: loopback only (metrics.DefaultAllow).
	MetricsAllow []netip.Prefix
	// TrustedProxies lists the reverse proxies whose Forwarded / X-Forwarded-* headers
	// name the client address, scheme and host (forwarded.go); from others they are
	// ignored. Empty: none.
	TrustedProxies []netip.Prefix
	// ForwardedHeader is the header family trusted proxies write: "" (X-Forwarded-For,
	// -Proto, -Host, what nginx, HAProxy, Caddy and Traefik set) or ForwardedRFC7239
	// (RFC 7239 Forwarded). The other family is ignored: proxies pass it on from clients.
	ForwardedHeader string
	// Mounts serve path prefixes with standard http.Handlers, off the loop (mount.go):
	// the admin dashboard.
	Mounts []Mount
	// ACMEChallenge answers ACME HTTP-01 validation (RFC 8555 §8.3) at
	// /.well-known/acme-challenge/<token>: the key authorization for token, or false for
	// a token it did not issue (404). nil: the path is 404. It is called on the loop and
	// must not block.
	ACMEChallenge func(token string) (keyAuth string, ok bool)
}

// ForwardedRFC7239 is Web.ForwardedHeader for proxies that write RFC 7239 Forwarded.
const ForwardedRFC7239 = "forwarded"

// ACMEChallengePrefix is the path under which HTTP-01 tokens are served (RFC 8555 §8.3).
const ACMEChallengePrefix = "/.well-known/acme-challenge/"

// DefaultWSPath is the WebSocket endpoint when the configuration names none.
const DefaultWSPath = "/xmpp-websocket"

func (w *Web) originOK(origin string) bool {
	if len(w.Origins) == 0 || origin == "" {
		// A client that is not a browser sends no Origin; browsers always do.
		return true
	}
	for _, o := range w.Origins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// route is one entry of the web listener's table.
type route struct {
	path    string
	methods string // allowed, comma-separated
	serve   func(c *conn, r httpReq)
}

var routes = []route{
	{"/.well-known/host-meta", "GET,HEAD,OPTIONS", (*conn).hostMetaXML},
	{"/.well-known/host-meta.json", "GET,HEAD,OPTIONS", (*conn).hostMetaJSON},
	{"/metrics", "GET", (*conn).serveMetrics},
}

// serveHTTP answers a request that is not the WebSocket upgrade.
func (c *conn) serveHTTP(r httpReq) {
	if tok, ok := strings.CutPrefix(r.path, ACMEChallengePrefix); ok {
		c.acmeChallenge(r, tok)
		return
	}
	for _, rt := range routes {
		if rt.path != r.path {
			continue
		}
		if !headerHas(rt.methods, r.method) {
			c.httpAnswer(r, 405, "Method Not Allowed", "", []string{"Allow: " + strings.ReplaceAll(rt.methods, ",", ", ")})
			return
		}
		if r.method == "OPTIONS" {
			// CORS preflight: host-meta is public and needs no credentials.
			c.httpAnswer(r, 204, "No Content", "", corsHeaders)
			return
		}
		rt.serve(c, r)
		return
	}
	c.httpAnswer(r, 404, "Not Found", "not found\n", nil)
}

// acmeChallenge serves an HTTP-01 key authorization. The CA's validator follows no
// redirect to reach it, so the plain listener must answer it itself.
func (c *conn) acmeChallenge(r httpReq, token string) {
	if r.method != "GET" && r.method != "HEAD" {
		c.httpAnswer(r, 405, "Method Not Allowed", "", []string{"Allow: GET, HEAD"})
		return
	}
	f := c.srv().config().Web.ACMEChallenge
	if f == nil || token == "" || strings.Contains(token, "/") {
		c.httpAnswer(r, 404, "Not Found", "not found\n", nil)
		return
	}
	ka, ok := f(token)
	if !ok {
		c.httpAnswer(r, 404, "Not Found", "not found\n", nil)
		return
	}
	c.httpAnswer(r, 200, "OK", ka, []string{"Content-Type: application/octet-stream"})
}

var corsHeaders = []string{
	"Access-Control-Allow-Origin: *",
	"Access-Control-Allow-Methods: GET, HEAD, OPTIONS",
	"Access-Control-Allow-Headers: Content-Type",
	"Access-Control-Max-Age: 86400",
}

// wsURL is the WebSocket URL to announce for request r.
func (c *conn) wsURL(r httpReq) string {
	web := &c.srv().config().Web
	return c.announce(r, web.PublicWS, "ws://", "wss://", web.WSPath)
}

// boshURL is the BOSH URL to announce for request r.
func (c *conn) boshURL(r httpReq) string {
	web := &c.srv().config().Web
	return c.announce(r, web.PublicBOSH, "http://", "https://", web.BOSHPath)
}

// announce is public when the configuration sets it, else the endpoint at path on the host
// the request named, with the scheme of this listener (plain or TLS).
func (c *conn) announce(r httpReq, public, plain, secure, path string) string {
	if public != "" {
		return public
	}
	scheme := plain
	// fTLS: TLS on this hop, run here or at an edge (an HTTP connection sets it no other
	// way; a proxy's word is r.fwd).
	if c.has(fTLS) || r.fwd.proto == "https" {
		scheme = secure
	}
	return scheme + c.requestHost(r) + path
}

func (c *conn) requestHost(r httpReq) string {
	if r.fwd.host != "" {
		return r.fwd.host // checked by forwardedHost
	}
	host := r.header["host"]
	if host == "" || strings.ContainsAny(host, " /\"'<>") {
		host = jid.ToASCII(c.domainName()) // a URL's host, so A-labels
	}
	return host
}

func (c *conn) hostMetaXML(r httpReq) {
	body := "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n" +
		"  <Link rel='urn:xmpp:alt-connections:websocket' href='" + xmlAttrEscape(c.wsURL(r)) + "'/>\n" +
		"  <Link rel='urn:xmpp:alt-connections:xbosh' href='" + xmlAttrEscape(c.boshURL(r)) + "'/>\n</XRD>\n"
	c.httpBody(r, "application/xrd+xml; charset=utf-8", body)
}

func (c *conn) hostMetaJSON(r httpReq) {
	b, _ := json.Marshal(map[string]any{"links": []map[string]string{
		{"rel": "urn:xmpp:alt-connections:websocket", "href": c.wsURL(r)},
		{"rel": "urn:xmpp:alt-connections:xbosh", "href": c.boshURL(r)},
	}})
	c.httpBody(r, "application/json", string(b)+"\n")
}

// serveMetrics answers a Prometheus scrape, to clients in Web.MetricsAllow only. It runs
// on the event loop: the registry is gathered and encoded into memory, then written.
func (c *conn) serveMetrics(r httpReq) {
	if !metrics.Allowed(c.srv().config().Web.MetricsAllow, c.clientIP(r)) {
		c.httpAnswer(r, 403, "Forbidden", "forbidden\n", nil)
		return
	}
	ctype, body, err := metrics.Render(c.srv().metrics, r.header["accept"])
	if err != nil {
		c.srv().log.Warn().Err(err).Msg("metrics: gather failed")
		c.httpAnswer(r, 500, "Internal Server Error", "metrics unavailable\n", nil)
		return
	}
	c.httpAnswer(r, 200, "OK", string(body), []string{"Content-Type: " + ctype, "Cache-Control: no-store"})
}

func (c *conn) httpBody(r httpReq, ctype, body string) {
	h := append([]string{"Content-Type: " + ctype, "Cache-Control: max-age=3600"}, corsHeaders...)
	c.httpAnswer(r, 200, "OK", body, h) // a HEAD gets the length and no body
}

func xmlAttrEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&apos;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
