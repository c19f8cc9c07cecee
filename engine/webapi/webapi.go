// Package webapi serves the server's administration operations (engine/admin) over HTTP
// for a site's own programs: its sign-up page creating an account, its back end sending a
// user a notification as a message, a cron job listing inactive accounts. A request is
// POST /api/v1/<operation> with a JSON object of the operation's fields (admin.Request),
// answered with admin.Response as JSON.
//
// It owns who may call: a bearer token from [web] api_tokens, from a network of
// [web] api_allow (loopback only by default), over TLS unless from loopback. The
// operations are admin's, the same vireoctl runs. It must not offer those that read or
// write files on the server (backup, export, import) or exist for load tests (bulkadd):
// a token is a network credential, not a shell account.
package webapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/admin"
)

// Prefix is where the API is mounted on the web listeners.
const Prefix = "/api/"

// MaxBody bounds a request: a message op with the largest body admin takes, and room.
const MaxBody = 4*admin.MaxMessageText + 4096

// Ops are the operations the API offers.
var Ops = []string{"adduser", "deluser", "passwd", "disable", "enable", "users", "inactive",
	"stats", "reload", "s2s", "modules", "vhost", "federation", "invite", "reset", "message", "announce", "sessions"}

// Config says who may call.
type Config struct {
	Tokens []string
	// Allow lists the networks answered; nil: loopback only.
	Allow []netip.Prefix
}

// Handler is the API. It holds no state beyond its Config: build a new one when the
// configuration changes.
type Handler struct {
	b      admin.Backend
	tokens [][32]byte // SHA-256 of each token, compared in constant time
	allow  []netip.Prefix
	log    zerolog.Logger
}

// New returns the API for b.
func New(b admin.Backend, cfg Config, log zerolog.Logger) *Handler {
	h := &Handler{b: b, allow: cfg.Allow, log: log}
	for _, t := range cfg.Tokens {
		h.tokens = append(h.tokens, sha256.Sum256([]byte(t)))
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	if !h.allowed(addr) {
		fail(w, http.StatusForbidden, "this address may not use the API (web.api_allow)")
		return
	}
	if r.TLS == nil && !addr.IsLoopback() {
		fail(w, http.StatusForbidden, "use https: a token must not cross the network in clear")
		return
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vireo"`)
		fail(w, http.StatusUnauthorized, "a valid bearer token is required (web.api_tokens)")
		return
	}
	op, ok := strings.CutPrefix(r.URL.Path, Prefix+"v1/")
	if !ok || !offered(op) {
		fail(w, http.StatusNotFound, "no such operation; the API offers "+strings.Join(Ops, ", "))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(w, http.StatusMethodNotAllowed, "use POST with a JSON object")
		return
	}
	var req admin.Request
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	switch {
	case err != nil:
		fail(w, http.StatusBadRequest, err.Error())
		return
	case len(body) > MaxBody:
		fail(w, http.StatusRequestEntityTooLarge, "request too large")
		return
	case len(strings.TrimSpace(string(body))) > 0:
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			fail(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
	}
	if req.Path != "" {
		fail(w, http.StatusBadRequest, "path is not taken over the API")
		return
	}
	req.Op = op
	resp := admin.Do(h.b, req)
	ev := h.log.Info()
	if op == "message" {
		ev = h.log.Debug() // a site may send many; the admin log is for changes
	}
	ev.Str("op", op).Str("remote", addr.String()).Str("jid", req.JID).Bool("ok", resp.Error == "").Msg("api call")
	status := http.StatusOK
	if resp.Error != "" {
		status = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(resp)
}

func (h *Handler) allowed(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	if len(h.allow) == 0 {
		return a.IsLoopback()
	}
	for _, p := range h.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (h *Handler) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	found := 0
	for _, t := range h.tokens {
		found |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	return found == 1
}

func offered(op string) bool { return slices.Contains(Ops, op) }

// clientAddr is the request's client address: the engine puts the one it trusts (its
// peer, or what a trusted proxy said) in RemoteAddr.
func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(admin.Response{Error: msg})
}

var _ http.Handler = (*Handler)(nil)
