package dashboard

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/vireo-im/vireo/store/invites"
)

// data is what every page template gets; each page reads its own fields.
type data struct {
	Title   string
	User    string // empty on the login page
	CSRF    string
	Flash   string
	FlashOK bool

	Overview *overviewData
	Query    string
	Users    []userRow
	More     bool
	Domains  []string
	// CanEditHosts: the backend can add and remove virtual hosts (admin.HostManager).
	CanEditHosts bool
	// HostSettings says, per host, what its [vhosts] table sets (HostSettings).
	HostSettings map[string]string
	Links        []Link
	// CanEditFederation: the backend holds the federation lists (admin.FederationEditor).
	CanEditFederation bool
	Deny, Allow       []string
	Config            string
	Invites           []invites.Invite
	Pages             map[string]string // invitation token → its landing page
	Now               time.Time
	// HostAdmin: the user administers some virtual hosts only (HostAdmins); HostRows are
	// their hosts on their overview.
	HostAdmin bool
	HostRows  []hostRow
}

var funcs = template.FuncMap{
	"mib":  func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) },
	"rate": func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"when": when,
}

// when shows t in UTC to the minute with how far it is from now ("in 3d", "5m ago"); a
// zero t is a dash.
func when(t, now time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := t.Sub(now)
	rel := "in "
	if d < 0 {
		d, rel = -d, ""
	}
	var span string
	switch {
	case d < time.Minute:
		span = d.Round(time.Second).String()
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		switch {
		case h == 0:
			span = fmt.Sprintf("%dm", m)
		case m == 0:
			span = fmt.Sprintf("%dh", h)
		default:
			span = fmt.Sprintf("%dh%dm", h, m)
		}
	default:
		span = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	if rel == "" {
		span += " ago"
	} else {
		span = rel + span
	}
	return t.UTC().Format("2006-01-02 15:04 UTC") + " (" + span + ")"
}

const layout = `{{define "layout"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}} · Vireo admin</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#1d2733;background:#f4f6f8}
header{background:#1f4e5f;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center}
header a{color:#dff3f8;text-decoration:none}header a:hover{text-decoration:underline}
header .who{margin-left:auto;font-size:.9em}
header form{display:inline}main{padding:1.2em;max-width:1100px}
h1{font-size:1.3em;margin:.2em 0 .8em}h2{font-size:1.1em;margin:1.4em 0 .6em}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #dde3e8;padding:.35em .6em;text-align:left;vertical-align:middle}
th{background:#e9eef2}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:.8em;margin-bottom:1.2em}
.card{background:#fff;border:1px solid #dde3e8;border-radius:6px;padding:.7em 1em}
.card b{display:block;font-size:1.6em}.card span{color:#5a6b78;font-size:.85em}
.flash{padding:.6em 1em;border-radius:6px;margin-bottom:1em;background:#fde8e8;border:1px solid #e9a6a6}
.flash.ok{background:#e5f6e8;border-color:#9fd4a9}
form.inline{display:inline-flex;gap:.3em;align-items:center;margin:0}
input,button{font:inherit;padding:.25em .5em}button{cursor:pointer}
.box{background:#fff;border:1px solid #dde3e8;border-radius:6px;padding:1em;margin-bottom:1em}
.off{color:#a33;font-weight:600}pre{background:#fff;border:1px solid #dde3e8;padding:1em;overflow:auto}
.login{max-width:360px;margin:4em auto}.login label{display:block;margin:.6em 0 .2em}.login input{width:100%;box-sizing:border-box}
</style></head><body>
<header><strong>Vireo admin</strong>{{if .User}}
{{if .HostAdmin}}<a href="/admin/">Overview</a><a href="/admin/users">Users</a><a href="/admin/invites">Invitations</a>{{else}}<a href="/admin/">Overview</a><a href="/admin/users">Users</a><a href="/admin/hosts">Virtual hosts</a><a href="/admin/invites">Invitations</a><a href="/admin/s2s">Server-to-server</a><a href="/admin/config">Configuration</a>{{end}}
<span class="who">{{.User}} <form method="post" action="/admin/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button>Log out</button></form></span>{{end}}
</header><main>
{{if .Flash}}<div class="flash{{if .FlashOK}} ok{{end}}">{{.Flash}}</div>{{end}}
{{template "content" .}}
</main></body></html>{{end}}`

// certs is the certificate table of an overview (overviewData).
const certs = `{{define "certs"}}<h2 id="certs">Certificates</h2>
<table><tr><th>Host</th><th>Source</th><th>Issuer</th><th>Expires</th><th>Last ACME order</th><th>Next ACME order</th></tr>
{{$now := .Now}}{{range .Certs}}<tr><td>{{.Host}}</td><td>{{.Source}}{{if .File}} <small>{{.File}}</small>{{end}}</td>
<td>{{.Issuer}}{{if .SelfSigned}} <span class="off">self-signed</span>{{end}}</td>
<td{{if $now.After .NotAfter}} class="off"{{end}}>{{when .NotAfter $now}}</td>
<td>{{if .ACME}}{{when .LastAttempt $now}}{{if .LastError}}<br><span class="off">failed{{if gt .Failures 1}} {{.Failures}} times in a row{{end}}: {{.LastError}}</span>{{else if not .LastAttempt.IsZero}} ok{{end}}{{else}}ACME off{{end}}</td>
<td>{{if .ACME}}{{when .NextRenewal $now}}{{else}}–{{end}}</td></tr>
{{end}}</table>{{end}}`

var pages = map[string]string{
	"login": `{{define "content"}}<div class="login box"><h1>Log in</h1>
<form method="post" action="/admin/login"><input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="jid">Administrator JID</label><input id="jid" name="jid" type="text" autocomplete="username" required>
<label for="password">XMPP password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button type="submit">Log in</button></p></form></div>{{end}}`,

	"overview": `{{define "content"}}<h1>Overview</h1>{{with .Overview}}
<div class="cards">
<div class="card"><b>{{.C.Online}}</b><span>sessions online</span></div>
<div class="card"><b>{{.C.Established}}</b><span>bound streams</span></div>
<div class="card"><b>{{.C.Detached}}</b><span>detached (XEP-0198)</span></div>
<div class="card"><b>{{.C.ConnsOpen}}</b><span>open connections ({{.C.TLS}} TLS)</span></div>
<div class="card"><b>{{rate .Rate}}</b><span>stanzas/s ({{.RateOver}})</span></div>
<div class="card"><b>{{.C.Queued}}</b><span>queued in {{.C.Shards}} router shards</span></div>
<div class="card"><b>{{mib .HeapInuse}}</b><span>Go heap in use ({{mib .Sys}} from the OS)</span></div>
<div class="card"><b>{{.Goroutines}}</b><span>goroutines, {{.GCs}} GC cycles</span></div>
</div>
<table><tr><th>Counter</th><th>Value</th></tr>
<tr><td>Stanzas routed</td><td class="n">{{.C.Routed}}</td></tr>
<tr><td>Stanzas dropped</td><td class="n">{{.C.Dropped}}</td></tr>
<tr><td>Logins ok / failed</td><td class="n">{{.C.AuthOK}} / {{.C.AuthFail}}</td></tr>
<tr><td>Connections refused (limits)</td><td class="n">{{.C.Refused}}</td></tr>
<tr><td>Accept errors</td><td class="n">{{.C.AcceptErrors}}</td></tr>
<tr><td>Registered accounts</td><td class="n">{{index .Stats "accounts"}}</td></tr>
<tr><td>Uptime (s)</td><td class="n">{{index .Stats "uptime_s"}}</td></tr>
<tr><td>Version</td><td class="n">{{index .Stats "version"}}</td></tr>
<tr><td>Dashboard sessions</td><td class="n">{{.Sessions}}</td></tr>
</table>
{{template "certs" .}}{{end}}{{end}}`,

	"hostoverview": `{{define "content"}}<h1>Overview</h1>
<table><tr><th>Host</th><th>Accounts</th><th>Online now</th><th>Settings of its own</th></tr>
{{range .HostRows}}<tr><td>{{.Host}}</td><td class="n">{{.Accounts}}</td><td class="n">{{if ge .Online 0}}{{.Online}}{{else}}–{{end}}</td><td>{{with .Settings}}{{.}}{{else}}the server's{{end}}</td></tr>
{{end}}</table>
{{with .Overview}}{{template "certs" .}}{{end}}{{end}}`,

	"users": `{{define "content"}}<h1>Users</h1>
<div class="box"><form class="inline" method="get" action="/admin/users">
<input name="q" value="{{.Query}}" placeholder="JID prefix" aria-label="JID prefix"><button>Search</button></form></div>
<div class="box"><form class="inline" method="post" action="/admin/users"><input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="action" value="add"><input type="hidden" name="q" value="{{.Query}}">
<input name="jid" placeholder="user@{{index .Domains 0}}" aria-label="new JID" required>
<input name="password" type="password" placeholder="password" aria-label="new password" autocomplete="new-password" required>
<button>Add user</button></form></div>
<table><tr><th>JID</th><th>State</th><th>Actions</th></tr>
{{$csrf := .CSRF}}{{$q := .Query}}{{range .Users}}<tr><td>{{.JID}}</td>
<td>{{if .Disabled}}<span class="off">disabled</span>{{else}}active{{end}}</td><td>
{{if not .Self}}<form class="inline" method="post" action="/admin/users"><input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="q" value="{{$q}}"><input type="hidden" name="jid" value="{{.JID}}">
{{if .Disabled}}<input type="hidden" name="action" value="enable"><button>Re-enable</button>{{else}}<input type="hidden" name="action" value="disable"><button>Disable</button>{{end}}</form>{{end}}
<form class="inline" method="post" action="/admin/users"><input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="q" value="{{$q}}"><input type="hidden" name="jid" value="{{.JID}}">
<input type="hidden" name="action" value="passwd"><input name="password" type="password" placeholder="new password" aria-label="new password for {{.JID}}" autocomplete="new-password" required><button>Set password</button></form>
<form class="inline" method="post" action="/admin/users"><input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="q" value="{{$q}}"><input type="hidden" name="jid" value="{{.JID}}">
<input type="hidden" name="action" value="resetlink"><button>Reset link</button></form>
{{if not .Self}}<form class="inline" method="post" action="/admin/users"><input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="q" value="{{$q}}"><input type="hidden" name="jid" value="{{.JID}}">
<input type="hidden" name="action" value="delete"><label><input type="checkbox" name="confirm" value="yes" required> sure</label><button>Delete</button></form>{{end}}
</td></tr>{{else}}<tr><td colspan="3">No account{{if .Query}} starts with “{{.Query}}”{{end}}.</td></tr>{{end}}
</table>{{if .More}}<p>Only the first {{len .Users}} are shown; narrow the prefix.</p>{{end}}{{end}}`,

	"hosts": `{{define "content"}}<h1>Virtual hosts</h1>
<p>Each host has its own accounts and its conference, pubsub and upload services. A host
added here is served at once (with a self-signed certificate unless ACME is on) and written
to the configuration file; a removed one ends its users' sessions, and its data stays.</p>
{{if .CanEditHosts}}<div class="box"><form class="inline" method="post" action="/admin/hosts"><input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="action" value="add"><input name="domain" placeholder="chat.example.org" aria-label="new virtual host" required>
<button>Add host</button></form></div>{{end}}
<table><tr><th>Host</th><th>Settings of its own</th><th>Actions</th></tr>
{{$csrf := .CSRF}}{{$edit := .CanEditHosts}}{{$last := eq (len .Domains) 1}}{{$set := .HostSettings}}{{range .Domains}}<tr><td>{{.}}</td><td>{{with index $set .}}{{.}}{{else}}the server's{{end}}</td><td>
{{if and $edit (not $last)}}<form class="inline" method="post" action="/admin/hosts"><input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="domain" value="{{.}}">
<input type="hidden" name="action" value="remove"><label><input type="checkbox" name="confirm" value="yes" required> sure</label><button>Remove</button></form>{{end}}
</td></tr>{{end}}
</table>{{end}}`,

	"invites": `{{define "content"}}<h1>Invitations</h1>
<p>An invitation is an <code>xmpp:</code> link to send by mail or chat: the invitee's client
(Conversations, Monal, …) registers with it, even while in-band registration is off,
and chooses a password nobody else sees. Its page (the https link) does the same in a
browser, for any client. An invitation for <code>user@host</code> reserves
that name; one for a host leaves the name to the invitee. Each link works once.</p>
<div class="box"><form class="inline" method="post" action="/admin/invites"><input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="action" value="create"><input name="for" placeholder="{{if .Domains}}juliet@{{index .Domains 0}} or {{index .Domains 0}}{{end}}" aria-label="invitation for" required>
<select name="ttl" aria-label="valid for"><option value="1d">1 day</option><option value="7d" selected>7 days</option><option value="30d">30 days</option></select>
<button>Create invitation</button></form></div>
<table><tr><th>For</th><th>Made by</th><th>Expires</th><th>Page</th><th>Actions</th></tr>
{{$csrf := .CSRF}}{{$now := .Now}}{{$pages := .Pages}}{{range .Invites}}<tr><td>{{if .Contact}}contact of {{.Inviter}}{{else}}{{.JID}}{{end}}</td><td>{{if .Inviter}}{{.Inviter}}{{else}}operator{{end}}</td><td>{{when .Expires $now}}</td><td>{{with index $pages .Token}}<a href="{{.}}">open</a>{{else}}–{{end}}</td><td>
<form class="inline" method="post" action="/admin/invites"><input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="action" value="revoke"><input type="hidden" name="token" value="{{.Token}}"><button>Revoke</button></form>
</td></tr>{{else}}<tr><td colspan="5">No open invitation.</td></tr>{{end}}
</table>{{end}}`,

	"s2s": `{{define "content"}}<h1>Server-to-server</h1>
<table><tr><th>Direction</th><th>Local</th><th>Remote</th><th>State</th></tr>
{{range .Links}}<tr><td>{{if .Inbound}}inbound{{else}}outbound{{end}}{{if .Bidi}}, both ways{{end}}</td><td>{{.Local}}</td><td>{{.Remote}}</td><td>{{if .Up}}up{{else}}connecting{{end}}</td></tr>
{{else}}<tr><td colspan="4">No server-to-server streams.</td></tr>{{end}}</table>
{{if .CanEditFederation}}{{$csrf := .CSRF}}
<h2>Blocked servers</h2>
<p>Never federated with: their streams are closed, and messages to them bounce. A change
applies at once and is written to the configuration file (<code>[s2s] deny</code>);
<code>*.example.org</code> blocks every subdomain of example.org.</p>
<div class="box"><form class="inline" method="post" action="/admin/s2s"><input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="list" value="deny"><input type="hidden" name="action" value="add"><input name="domain" placeholder="spam.example" aria-label="server to block" required>
<button>Block</button></form></div>
<table><tr><th>Server</th><th>Actions</th></tr>
{{range .Deny}}<tr><td>{{.}}</td><td><form class="inline" method="post" action="/admin/s2s"><input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="list" value="deny"><input type="hidden" name="action" value="remove"><input type="hidden" name="domain" value="{{.}}"><button>Unblock</button></form></td></tr>
{{else}}<tr><td colspan="2">None.</td></tr>{{end}}</table>
<h2>Only these servers</h2>
<p>When not empty, the only servers federated with (<code>[s2s] allow</code>); empty, every
server that is not blocked.</p>
<div class="box"><form class="inline" method="post" action="/admin/s2s"><input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="list" value="allow"><input type="hidden" name="action" value="add"><input name="domain" placeholder="friends.example" aria-label="server to allow" required>
<button>Allow</button></form></div>
<table><tr><th>Server</th><th>Actions</th></tr>
{{range .Allow}}<tr><td>{{.}}</td><td><form class="inline" method="post" action="/admin/s2s"><input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="list" value="allow"><input type="hidden" name="action" value="remove"><input type="hidden" name="domain" value="{{.}}"><button>Remove</button></form></td></tr>
{{else}}<tr><td colspan="2">None: every server that is not blocked.</td></tr>{{end}}</table>{{end}}{{end}}`,

	"config": `{{define "content"}}<h1>Configuration</h1><p>The configuration in effect (defaults filled in), secrets redacted.</p>
<pre>{{.Config}}</pre>{{end}}`,
}

var templates = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for name, p := range pages {
		m[name] = template.Must(template.Must(template.Must(template.New(name).Funcs(funcs).Parse(layout)).Parse(certs)).Parse(p))
	}
	return m
}()

// render writes page with d; it renders into memory first, so a template error is a 500,
// not half a page.
func (dsh *Dashboard) render(w http.ResponseWriter, code int, page string, d data) {
	var b bytes.Buffer
	if err := templates[page].ExecuteTemplate(&b, "layout", d); err != nil {
		dsh.log.Error().Err(err).Str("page", page).Msg("dashboard: template")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}
