package engine

import (
	"net"
	"net/netip"
	"strings"
)

// Reverse proxies in front of the web listener: a request that arrives from an address in
// Web.TrustedProxies may say who its client is, with RFC 7239 Forwarded or the de facto
// X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Host. From any other address these
// headers are ignored, since anyone can send them.
//
// The client is found walking the chain from the right (the hop nearest this server)
// past the addresses of trusted proxies: the first address that is not a trusted proxy
// is the client, whatever a client may have put further left. One family of headers is
// read, the one Web.ForwardedHeader names (X-Forwarded-* unless it says Forwarded): a
// proxy passes on the client's own headers of the family it does not write, and those
// would name any client the client liked. A header that names no usable address makes
// the client unknown (unknownClient), never the proxy itself, whose address is trusted.

// unknownClient is the address of a proxied request whose client the proxy's header does
// not name usably (RFC 7239 "unknown", garbage): in no trusted network or allow list
// unless one takes every address, and one bucket for the per-address limits.
const unknownClient = "0.0.0.0"

// forwarded is what trusted proxies said about a request's client. Empty fields: not said.
type forwarded struct {
	ip    string // the client's address, canonical text
	proto string // "http" or "https"
	host  string // the Host the client asked for
}

// proxy reports whether ip (text) is a trusted reverse proxy.
func (w *Web) proxy(ip string) bool {
	if len(w.TrustedProxies) == 0 {
		return false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	return w.proxyAddr(a)
}

func (w *Web) proxyAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range w.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFrom reads the forwarding headers of a request that came from the trusted
// proxy peer. h has lower-case names, repeated headers joined with ",".
func (w *Web) forwardedFrom(h map[string]string) forwarded {
	if w.ForwardedHeader == ForwardedRFC7239 {
		v, ok := h["forwarded"]
		if !ok {
			return forwarded{}
		}
		f := w.parseForwarded(v)
		if f.ip == "" {
			f.ip = unknownClient
		}
		return f
	}
	var f forwarded
	if v, ok := h["x-forwarded-for"]; ok {
		if f.ip = w.pickClient(strings.Split(v, ","), func(s string) string { return s }); f.ip == "" {
			f.ip = unknownClient
		}
	}
	f.proto = forwardedProto(lastElem(h["x-forwarded-proto"]))
	f.host = forwardedHost(lastElem(h["x-forwarded-host"]))
	return f
}

// parseForwarded reads an RFC 7239 §4 Forwarded value: comma-separated elements of
// semicolon-separated pairs. proto and host come from the element the client was found
// in: the one its proxy wrote.
func (w *Web) parseForwarded(v string) forwarded {
	elems := splitQuoted(v, ',')
	var f forwarded
	idx := -1
	for i := len(elems) - 1; i >= 0; i-- {
		a, ok := parseNode(forwardedParam(elems[i], "for"))
		if !ok {
			// "unknown", an obfuscated identifier or garbage (RFC 7239 §6.2, §6.3): the
			// chain cannot be followed further.
			break
		}
		idx = i
		f.ip = a.String()
		if !w.proxyAddr(a) {
			break
		}
	}
	if idx < 0 {
		if len(elems) == 0 {
			return f
		}
		idx = len(elems) - 1 // no usable for=: proto and host of the nearest hop
	}
	f.proto = forwardedProto(forwardedParam(elems[idx], "proto"))
	f.host = forwardedHost(forwardedParam(elems[idx], "host"))
	return f
}

// pickClient walks list from the right past trusted proxies; it returns the client's
// address or "" when an entry is not an address.
func (w *Web) pickClient(list []string, node func(string) string) string {
	ip := ""
	for i := len(list) - 1; i >= 0; i-- {
		a, ok := parseNode(node(strings.TrimSpace(list[i])))
		if !ok {
			break
		}
		ip = a.String()
		if !w.proxyAddr(a) {
			break
		}
	}
	return ip
}

// forwardedParam is the value of parameter name in one Forwarded element, unquoted.
func forwardedParam(elem, name string) string {
	for _, p := range splitQuoted(elem, ';') {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), name) {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.ReplaceAll(v[1:len(v)-1], `\`, "")
		}
		return v
	}
	return ""
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	q, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			q = !q
		case s[i] == sep && !q:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseNode parses a node as RFC 7239 §6 and X-Forwarded-For write it: an IPv4 address or
// a bracketed IPv6 one, with an optional port; a bare IPv6 address is accepted too.
func parseNode(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func lastElem(v string) string {
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

func forwardedProto(v string) string {
	switch strings.ToLower(v) {
	case "https", "wss":
		return "https"
	case "http", "ws":
		return "http"
	}
	return ""
}

func forwardedHost(v string) string {
	if v == "" || len(v) > 255 || strings.ContainsAny(v, " /\"'<>\\@") {
		return ""
	}
	return v
}

// peerIP is the address at the other end of the socket: a proxy's, when there is one.
func (c *conn) peerIP() string {
	if a, ok := c.gc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// clientIP is the address of request r's client: what a trusted proxy said, else the
// connection's.
func (c *conn) clientIP(r httpReq) string {
	if r.fwd.ip != "" {
		return r.fwd.ip
	}
	return c.ip()
}

// secureRequest reports whether r reached the server over TLS: on this connection, or,
// by a trusted proxy's word, between the client and the proxy. A proxy that does not say
// is believed secure when it is on a trusted network (the behaviour before
// trusted_proxies).
func (c *conn) secureRequest(r httpReq) bool {
	if c.has(fTLS) || c.tls.Load() != nil {
		return true
	}
	if r.fwd.proto != "" {
		return r.fwd.proto == "https"
	}
	return c.srv().config().trusted(c.peerIP())
}

// clientAddr is clientIP as a net.Addr, for a BOSH session's RemoteAddr.
func (c *conn) clientAddr(r httpReq) net.Addr {
	if r.fwd.ip == "" {
		return c.gc.RemoteAddr()
	}
	return &net.TCPAddr{IP: net.ParseIP(r.fwd.ip)}
}

// rekeyClient makes ip, named by a trusted proxy at a WebSocket upgrade, the address of
// this connection: its count of unauthenticated connections moves from the proxy's to
// the client's. It reports false, having answered 503, when the client is over its
// limit.
func (c *conn) rekeyClient(ip string) bool {
	s := c.srv()
	cfg := s.config()
	if c.has(fUnauth) {
		s.unauth.done(addrKey(c.peerIP()))
		if !s.unauth.add(addrKey(ip), cfg.MaxUnauthPerAddr, cfg.trusted(ip)) {
			c.clear(fUnauth)
			s.refuse(refusedPerAddress)
			c.httpReply(503, "Service Unavailable", "too many connections from this address\n", nil)
			return false
		}
	}
	c.ws.client = ip
	return true
}
