// Package webpage is what every server-rendered page of the web listener (the admin
// dashboard, the invitation pages, the sign-up page) does the same way: the headers that
// keep a page out of caches, frames and other sites' reach, the check that a form was
// posted from the server's own pages, the test of whether a password may travel, and the
// writing of a rendered page. It has no templates of its own and holds no state.
package webpage

import (
	"bytes"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/rs/zerolog"
)

// CSP is the pages' content security policy: no scripts, no outside resources, styles
// inline, images and forms only from the page's own origin.
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Harden sets the headers every page carries.
func Harden(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// Not no-referrer: under it browsers send "Origin: null" with a form's POST. Same
	// origin keeps the path (an invitation's token) from other sites all the same.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", CSP)
}

// SameOrigin refuses a POST whose Origin (browsers send one with every POST) names
// another site; clients that send none (not browsers) pass.
func SameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// Secure says whether a form on r's page may take a password: the request came over TLS,
// or from loopback (a local browser, or a reverse proxy on the same machine that
// terminated TLS and forwarded no scheme).
func Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Render writes the page t makes of v with status; a template that fails is logged as
// what's and answered with a bare 500.
func Render(w http.ResponseWriter, t *template.Template, status int, v any, log zerolog.Logger, what string) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		log.Error().Err(err).Msg(what + ": render")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// AddrKey is the throttling key of a client address: IPv6 clients usually hold a whole
// /64, so they are counted by it.
func AddrKey(ip string) string {
	return addrKey(ip, 64)
}

// NetKey is the network an IPv6 client's site holds (its /48, what one customer is
// commonly given), for bounds a site must not escape by using many /64s; "" for IPv4,
// where an address is scarce enough to be its own bound.
func NetKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Unmap().Is6() {
		return ""
	}
	return addrKey(ip, 48)
}

func addrKey(ip string, bits int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(bits)
		return p.String()
	}
	return a.String()
}
