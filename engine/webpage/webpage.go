// Package webpage is what every server-rendered page of the web listener (the admin
// dashboard, the invitation pages) does the same way: the headers that keep a page out of
// caches, frames and other sites' reach, and the check that a form was posted from the
// server's own pages. It renders nothing and holds no state.
package webpage

import (
	"net/http"
	"net/url"
	"strings"
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
