// Package invitepage serves the XEP-0401 landing page of an invitation at
// /invite/<token> on the web listener (engine.Mount): what the invitation is (an account
// on the server, or becoming someone's contact), apps to install, a button that opens the
// xmpp: link in one, and, where the invitation creates an account, a form that creates it
// in the browser, for the many clients that cannot register with a token (XEP-0445). The
// operator's password reset links (/reset/<token>) are served the same way: a form that
// sets a new password.
//
// It keeps nothing: the token in the path is the whole authority, checked on every
// request against the store through the Backend, which applies the same per-address
// registration budget, reservation and single-use rules as registration on an XMPP
// stream. Passwords are taken only over HTTPS (or from loopback). Pages are
// server-rendered with html/template, use no JavaScript, and are never cached.
// It must not hold sessions, cookies or any account data beyond the request.
package invitepage

import (
	"errors"
	"html/template"
	"net"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/webpage"
	"github.com/vireo-im/vireo/store/invites"
)

// Prefix is where the pages are mounted.
const Prefix = invites.PagePath

// Backend is what the pages need from the running server; safe for concurrent use.
type Backend interface {
	// Invitation returns the invitation token stands for, or invites.ErrInvalid.
	Invitation(token string) (invites.Invite, error)
	// RegisterInvited creates the account the invitation allows for a client at ip and
	// returns its bare JID; the errors of store/invites are worded for the user.
	RegisterInvited(token, username, password, ip string) (string, error)
	// ResetPassword sets the password of the account a reset link names, likewise.
	ResetPassword(token, password, ip string) (string, error)
	// WebURL is the public base URL of the web listener for domain ("" when none).
	WebURL(domain string) string
}

// Page is the http.Handler of the invitation pages.
type Page struct {
	b   Backend
	log zerolog.Logger
}

var _ http.Handler = (*Page)(nil)

// New returns the pages for b.
func New(b Backend, log zerolog.Logger) *Page { return &Page{b: b, log: log} }

// view is what the template gets.
type view struct {
	Invite   invites.Invite
	Expires  string
	Form     bool   // the invitation creates an account and this request may take a password
	HTTPSURL string // where to go for the form when this request came over plain HTTP
	Username string // what the user typed, shown again after an error
	Error    string
	Created  string // the new account, once made
	Invalid  bool
	Changed  string // the account whose password a reset link just set
}

// ServeHTTP implements http.Handler.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	webpage.Harden(w.Header()) // the token in the path goes to no other site as a referrer
	reset := strings.HasPrefix(r.URL.Path, invites.ResetPath)
	token := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, Prefix), invites.ResetPath)
	if token == "" || strings.Contains(token, "/") {
		p.render(w, http.StatusNotFound, view{Invalid: true})
		return
	}
	inv, err := p.b.Invitation(token)
	if err == nil && inv.Reset != reset {
		err = invites.ErrInvalid // each kind at its own address
	}
	if err != nil {
		if !errors.Is(err, invites.ErrInvalid) {
			p.log.Error().Err(err).Msg("invitation page: read the invitation")
			http.Error(w, "the invitation cannot be read now; try again later", http.StatusInternalServerError)
			return
		}
		p.render(w, http.StatusNotFound, view{Invalid: true})
		return
	}
	v := view{Invite: inv, Expires: inv.Expires.UTC().Format("2 January 2006, 15:04 UTC")}
	secure := webpage.Secure(r)
	if inv.Registers() || inv.Reset {
		v.Form = secure
		if !secure {
			if base := p.b.WebURL(inv.Domain); strings.HasPrefix(base, "https://") {
				v.HTTPSURL = inv.PageURL(base)
			}
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p.render(w, http.StatusOK, v)
	case http.MethodPost:
		if !v.Form || !webpage.SameOrigin(r) {
			http.Error(w, "this form takes a password only over HTTPS, from its own page", http.StatusForbidden)
			return
		}
		p.register(w, r, v, token)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// register creates the account from the posted form and shows what came of it.
func (p *Page) register(w http.ResponseWriter, r *http.Request, v view, token string) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	v.Username = strings.TrimSpace(r.PostFormValue("username"))
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		v.Error = "the two passwords differ"
		p.render(w, http.StatusBadRequest, v)
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	var user string
	var err error
	if v.Invite.Reset {
		user, err = p.b.ResetPassword(token, pw, ip)
	} else {
		user, err = p.b.RegisterInvited(token, v.Username, pw, ip)
	}
	switch {
	case err == nil && v.Invite.Reset:
		p.render(w, http.StatusOK, view{Invite: v.Invite, Changed: user})
	case err == nil:
		p.render(w, http.StatusOK, view{Invite: v.Invite, Created: user})
	case errors.Is(err, invites.ErrInvalid):
		p.render(w, http.StatusGone, view{Invalid: true})
	case errors.Is(err, invites.ErrBudget):
		v.Error = err.Error()
		p.render(w, http.StatusTooManyRequests, v)
	case errors.Is(err, invites.ErrFull):
		v.Error = err.Error()
		p.render(w, http.StatusForbidden, v)
	case errors.Is(err, invites.ErrBadUsername), errors.Is(err, invites.ErrBadPassword), errors.Is(err, invites.ErrNameTaken):
		v.Error = err.Error()
		p.render(w, http.StatusBadRequest, v)
	default:
		p.log.Error().Err(err).Msg("invitation page: create the account")
		v.Error = "the account could not be created now; try again later"
		p.render(w, http.StatusInternalServerError, v)
	}
}

func (p *Page) render(w http.ResponseWriter, status int, v view) {
	webpage.Render(w, page, status, v, p.log, "invitation page")
}

var page = template.Must(template.New("invite").Funcs(template.FuncMap{
	// xmpp: is not among html/template's safe URL schemes; the URI is built by
	// store/invites from a prepared JID and an alphanumeric token, and is still escaped
	// for the attribute.
	"xmppURL": func(s string) template.URL { return template.URL(s) },
}).Parse(pageHTML))
