// Package signup serves the web sign-up page at /register on the web listener
// (engine.Mount) of a server with open registration (c2s.registration): a form that
// creates an account in the browser, for the people who find the server on the web and
// for clients that cannot register in-band. With c2s.registration_captcha the form shows
// a CAPTCHA image (modules/captcha), served at /register/captcha/<id>.png, whose text must
// be typed.
//
// It keeps only the CAPTCHAs it handed out and not yet answered, in memory, bounded and
// expiring; every account is created through the Backend, which applies the same
// per-address registration budget, reserved names and rules as registration on an XMPP
// stream. Passwords are taken only over HTTPS (or from loopback). Pages are
// server-rendered with html/template, use no JavaScript, and are never cached. It must not
// hold sessions, cookies or any account data beyond the request.
package signup

import (
	"errors"
	"html/template"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/webpage"
	"github.com/vireo-im/vireo/modules/captcha"
	"github.com/vireo-im/vireo/store/invites"
)

// Prefix is where the page is mounted.
const Prefix = "/register"

// Bounds. A CAPTCHA costs ~1 ms of CPU to draw and ~5 KB to keep.
const (
	// MaxPending bounds the CAPTCHAs handed out and not yet answered; beyond it the
	// oldest is dropped, and its form must be loaded again.
	MaxPending = 4096
	// PerAddress is how many CAPTCHAs one address gets a minute; beyond it the page asks
	// to wait (429).
	PerAddress = 20
	// PerNetwork is how many one IPv6 /48 gets a minute, whatever /64s it uses: a site
	// holds 65,536 of them, enough to fill the table of addresses and push every other
	// client's CAPTCHA out.
	PerNetwork = 5 * PerAddress
	// maxAddresses bounds the addresses counted in one minute; past it, new ones wait.
	maxAddresses = 10000
)

// ErrClosed is the Backend's answer while registration is off.
var ErrClosed = errors.New("this server does not take new accounts here")

// Backend is what the page needs from the running server; safe for concurrent use.
type Backend interface {
	// SignupSettings says whether registration is open, which domains take accounts,
	// and whether a CAPTCHA is asked of a client at ip.
	SignupSettings(ip string) (open bool, domains []string, captcha bool)
	// RegisterOpen creates user@domain with password for a client at ip and returns the
	// bare JID; the errors of store/invites (and ErrClosed) are worded for the user.
	RegisterOpen(domain, username, password, ip string) (string, error)
}

// Page is the http.Handler of the sign-up page.
type Page struct {
	b   Backend
	log zerolog.Logger

	mu      sync.Mutex
	pending map[string]*captcha.Challenge
	order   []string // ids in the order they were handed out, for MaxPending
	drawn   map[string]int
	minute  time.Time // when drawn was last cleared
}

var _ http.Handler = (*Page)(nil)

// New returns the page for b.
func New(b Backend, log zerolog.Logger) *Page {
	return &Page{b: b, log: log, pending: map[string]*captcha.Challenge{}, drawn: map[string]int{}}
}

// view is what the template gets.
type view struct {
	Closed    bool
	Domains   []string
	Domain    string
	Form      bool // this request may take a password
	Username  string
	Challenge string // the CAPTCHA's id, "" without one
	Error     string
	Created   string
}

// ServeHTTP implements http.Handler.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	webpage.Harden(w.Header())
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	open, domains, needCaptcha := p.b.SignupSettings(ip)
	if id, ok := strings.CutPrefix(r.URL.Path, Prefix+"/captcha/"); ok {
		p.image(w, strings.TrimSuffix(id, ".png"))
		return
	}
	if r.URL.Path != Prefix && r.URL.Path != Prefix+"/" {
		http.NotFound(w, r)
		return
	}
	if !open || len(domains) == 0 {
		p.render(w, http.StatusNotFound, view{Closed: true})
		return
	}
	v := view{Domains: domains, Domain: domains[0], Form: webpage.Secure(r)}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		// A HEAD shows no form: no CAPTCHA is drawn for it.
		if needCaptcha && v.Form && r.Method == http.MethodGet {
			if v.Challenge = p.challenge(ip); v.Challenge == "" {
				w.Header().Set("Retry-After", "60")
				http.Error(w, "too many forms from this address, or none can be made now; try again in a minute", http.StatusTooManyRequests)
				return
			}
		}
		p.render(w, http.StatusOK, v)
	case http.MethodPost:
		if !v.Form || !webpage.SameOrigin(r) {
			http.Error(w, "this form takes a password only over HTTPS, from its own page", http.StatusForbidden)
			return
		}
		p.register(w, r, v, ip, needCaptcha)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// register creates the account from the posted form and shows what came of it.
func (p *Page) register(w http.ResponseWriter, r *http.Request, v view, ip string, needCaptcha bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	v.Username = strings.TrimSpace(r.PostFormValue("username"))
	if d := r.PostFormValue("domain"); slices.Contains(v.Domains, d) {
		v.Domain = d
	}
	again := func(status int, msg string) {
		v.Error = msg
		if needCaptcha {
			v.Challenge = p.challenge(ip) // each CAPTCHA is answered once
		}
		p.render(w, status, v)
	}
	if needCaptcha {
		ch := p.take(r.PostFormValue("challenge"))
		if ch == nil || !ch.Check(r.PostFormValue("captcha"), time.Now()) {
			again(http.StatusBadRequest, "the text of the image was not right (or the form was too old); try the new one")
			return
		}
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		again(http.StatusBadRequest, "the two passwords differ")
		return
	}
	user, err := p.b.RegisterOpen(v.Domain, v.Username, pw, ip)
	switch {
	case err == nil:
		p.render(w, http.StatusOK, view{Created: user})
	case errors.Is(err, ErrClosed):
		p.render(w, http.StatusNotFound, view{Closed: true})
	case errors.Is(err, invites.ErrBudget):
		again(http.StatusTooManyRequests, err.Error())
	case errors.Is(err, invites.ErrFull):
		again(http.StatusForbidden, err.Error())
	case errors.Is(err, invites.ErrBadUsername), errors.Is(err, invites.ErrBadPassword), errors.Is(err, invites.ErrNameTaken):
		again(http.StatusBadRequest, err.Error())
	default:
		p.log.Error().Err(err).Msg("sign-up page: create the account")
		again(http.StatusInternalServerError, "the account could not be created now; try again later")
	}
}

// challenge makes a CAPTCHA for a client at ip and keeps it until it is answered, expires
// or is pushed out; "" when ip had its share this minute or none could be made.
func (p *Page) challenge(ip string) string {
	network := webpage.NetKey(ip)
	ip = webpage.AddrKey(ip) // an IPv6 client holds its whole /64
	now := time.Now()
	p.mu.Lock()
	if now.Sub(p.minute) >= time.Minute {
		clear(p.drawn)
		p.minute = now
	}
	n, seen := p.drawn[ip]
	nn, netSeen := p.drawn[network], true
	if network != "" {
		_, netSeen = p.drawn[network]
	}
	if n >= PerAddress || network != "" && nn >= PerNetwork ||
		(!seen || !netSeen) && len(p.drawn) >= maxAddresses-1 {
		p.mu.Unlock()
		return ""
	}
	p.drawn[ip] = n + 1
	if network != "" {
		p.drawn[network] = nn + 1 // a /48's key never equals a /64's
	}
	p.mu.Unlock()
	ch, err := captcha.New(now)
	if err != nil {
		p.log.Error().Err(err).Msg("sign-up page: captcha")
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := p.order[:0]
	for _, id := range p.order {
		if c := p.pending[id]; c != nil && now.Before(c.Expires) {
			keep = append(keep, id)
		} else {
			delete(p.pending, id)
		}
	}
	p.order = keep
	if len(p.order) >= MaxPending {
		delete(p.pending, p.order[0])
		p.order = p.order[1:]
	}
	p.pending[ch.ID] = ch
	p.order = append(p.order, ch.ID)
	return ch.ID
}

// CaptchaText is the text of the pending CAPTCHA id ("" when there is none), for tests,
// which cannot read the image.
func (p *Page) CaptchaText(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch := p.pending[id]; ch != nil {
		return ch.Text()
	}
	return ""
}

// take removes and returns the CAPTCHA id names (nil when there is none).
func (p *Page) take(id string) *captcha.Challenge {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := p.pending[id]
	delete(p.pending, id) // its id stays in order until the next prune
	return ch
}

// image serves a pending CAPTCHA's picture.
func (p *Page) image(w http.ResponseWriter, id string) {
	p.mu.Lock()
	ch := p.pending[id]
	p.mu.Unlock()
	if ch == nil {
		http.NotFound(w, nil)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(ch.PNG)
}

func (p *Page) render(w http.ResponseWriter, status int, v view) {
	webpage.Render(w, page, status, v, p.log, "sign-up page")
}

var page = template.Must(template.New("signup").Parse(pageHTML))

const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{if .Closed}}No sign-up here{{else if .Created}}Your account is ready{{else}}Create an account on {{.Domain}}{{end}}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:38em;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}.box{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}
button{display:inline-block;background:#2a6ebb;color:#fff;border:0;border-radius:4px;padding:.6em 1.2em;font-size:1em;cursor:pointer}
label{display:block;margin:.5em 0 .2em}input,select{font-size:1em;padding:.4em;width:100%;box-sizing:border-box}
.error{color:#a00;font-weight:bold}.small{color:#666;font-size:.9em}code{background:#f2f2f2;padding:0 .2em}
</style></head><body>
{{if .Closed}}
<h1>This server does not take new accounts here</h1>
<p>Ask its operator for an invitation.</p>
{{else if .Created}}
<h1>Your account is ready</h1>
<p>Your address is <strong id="account">{{.Created}}</strong>. Log in to it with any XMPP app and the password you chose:</p>
<ul>
<li>Android: <a href="https://conversations.im/">Conversations</a> (also on F-Droid as Conversations or Monocles)</li>
<li>iPhone and iPad: <a href="https://monal-im.org/">Monal</a> or <a href="https://siskin.im/">Siskin IM</a></li>
<li>Windows, macOS, Linux: <a href="https://gajim.org/">Gajim</a>, <a href="https://dino.im/">Dino</a> (Linux) or <a href="https://beagle.im/">BeagleIM</a> (macOS)</li>
</ul>
{{else}}
<h1>Create an account on {{.Domain}}</h1>
<p>An account on this XMPP chat server lets you talk with anyone on XMPP, on any server.</p>
{{if .Form}}<div class="box">
{{if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
<form method="post" action="/register">
<label for="username">Username</label><input id="username" name="username" value="{{.Username}}" required autocomplete="username" autocapitalize="none" spellcheck="false">
{{if gt (len .Domains) 1}}<label for="domain">Server</label><select id="domain" name="domain">{{range .Domains}}<option{{if eq . $.Domain}} selected{{end}}>{{.}}</option>{{end}}</select>
{{else}}<span class="small">Your address will be <code>username@{{.Domain}}</code>.</span><input type="hidden" name="domain" value="{{.Domain}}">{{end}}
<label for="password">Password</label><input id="password" type="password" name="password" required minlength="8" maxlength="1023" autocomplete="new-password">
<label for="password2">Password again</label><input id="password2" type="password" name="password2" required minlength="8" maxlength="1023" autocomplete="new-password">
{{if .Challenge}}<label for="captcha">Type the text of the image</label>
<p><img id="captcha-image" src="/register/captcha/{{.Challenge}}.png" width="220" height="70" alt="text to type"></p>
<input id="captcha" name="captcha" required autocomplete="off" autocapitalize="characters" spellcheck="false"><input type="hidden" name="challenge" value="{{.Challenge}}">{{end}}
<p><button id="create">Create account</button></p></form></div>
{{else}}<p>Open this page over HTTPS to create an account.</p>{{end}}
{{end}}
</body></html>`
