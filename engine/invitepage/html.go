package invitepage

// pageHTML is every state of the page: invalid, an invitation with its choices, and the
// account made. XEP-0401 wants a client recommendation per platform; the apps named are
// well-known ones that open xmpp: invitation links.
const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{if .Invalid}}Link not valid{{else if .Invite.Reset}}New password for {{.Invite.Username}}@{{.Invite.Domain}}{{else if .Invite.Contact}}{{.Invite.Inviter}} invites you to chat{{else}}Your invitation to {{.Invite.Domain}}{{end}}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:38em;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}.box{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}
a.button,button{display:inline-block;background:#2a6ebb;color:#fff;border:0;border-radius:4px;padding:.6em 1.2em;font-size:1em;text-decoration:none;cursor:pointer}
label{display:block;margin:.5em 0 .2em}input{font-size:1em;padding:.4em;width:100%;box-sizing:border-box}
.error{color:#a00;font-weight:bold}.small{color:#666;font-size:.9em}code{background:#f2f2f2;padding:0 .2em}
</style></head><body>
{{if .Invalid}}
<h1>This invitation is not valid</h1>
<p>It was used already, has expired or was withdrawn. Ask the person who sent it for a new one.</p>
{{else if .Changed}}
<h1>Your password is changed</h1>
<p>Log in to <strong id="account">{{.Changed}}</strong> with your new password. Apps that were logged in keep working until they next log in, and then ask for it.</p>
{{else if .Invite.Reset}}
<h1>New password for {{.Invite.Username}}@{{.Invite.Domain}}</h1>
{{if .Form}}<div class="box">{{if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
<form method="post">
<label for="password">New password</label><input id="password" type="password" name="password" required minlength="8" maxlength="1023" autocomplete="new-password">
<label for="password2">New password again</label><input id="password2" type="password" name="password2" required minlength="8" maxlength="1023" autocomplete="new-password">
<p><button id="create">Set password</button></p></form></div>
{{else if .HTTPSURL}}<p>Open <a href="{{.HTTPSURL}}">the secure page</a> to choose it.</p>{{end}}
<p class="small">This link works once and expires on {{.Expires}}.</p>
{{else if .Created}}
<h1>Your account is ready</h1>
<p>Your address is <strong id="account">{{.Created}}</strong>. Log in to it with any XMPP app (see below) and the password you chose.</p>
{{if .Invite.Contact}}<p><strong>{{.Invite.Inviter}}</strong> is already in your contacts.</p>{{end}}
{{template "apps" false}}
{{else}}
{{if .Invite.Contact}}<h1>{{.Invite.Inviter}} invites you to chat</h1>
<p>{{.Invite.Inviter}} uses XMPP, an open chat network. Open the invitation in an XMPP app and you become contacts.</p>
{{else}}<h1>You are invited to {{.Invite.Domain}}</h1>
<p>This invitation creates {{if .Invite.Username}}the account <strong>{{.Invite.Username}}@{{.Invite.Domain}}</strong>{{else}}an account of your choice{{end}} on {{.Invite.Domain}}, an XMPP chat server.</p>{{end}}
{{template "apps" true}}
<div class="box"><h2>2. Open the invitation</h2>
<p><a class="button" id="open" href="{{xmppURL .Invite.URI}}">Open in your app</a></p>
<p class="small">If the button does nothing, no XMPP app is installed yet{{if .Invite.Registers}}, or yours cannot take invitations: create the account below instead{{end}}.</p></div>
{{if .Form}}
<div class="box"><h2>Or create your account here</h2>
{{if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
<form method="post">
{{if .Invite.Username}}<p>Account: <strong>{{.Invite.Username}}@{{.Invite.Domain}}</strong></p>
{{else}}<label for="username">Username</label><input id="username" name="username" value="{{.Username}}" required autocomplete="username" autocapitalize="none" spellcheck="false"><span class="small">Your address will be <code>username@{{.Invite.Domain}}</code>.</span>{{end}}
<label for="password">Password</label><input id="password" type="password" name="password" required minlength="8" maxlength="1023" autocomplete="new-password">
<label for="password2">Password again</label><input id="password2" type="password" name="password2" required minlength="8" maxlength="1023" autocomplete="new-password">
<p><button id="create">Create account</button></p></form></div>
{{else if .HTTPSURL}}<p>To create your account in the browser, open <a href="{{.HTTPSURL}}">the secure page</a>.</p>{{end}}
<p class="small">This invitation works once and expires on {{.Expires}}.</p>
{{end}}
</body></html>
{{define "apps"}}<div class="box"><h2>{{if .}}1. {{end}}Get an XMPP app</h2><ul>
<li>Android: <a href="https://conversations.im/">Conversations</a> (also on F-Droid as Conversations or Monocles)</li>
<li>iPhone and iPad: <a href="https://monal-im.org/">Monal</a> or <a href="https://siskin.im/">Siskin IM</a></li>
<li>Windows, macOS, Linux: <a href="https://gajim.org/">Gajim</a>, <a href="https://dino.im/">Dino</a> (Linux) or <a href="https://beagle.im/">BeagleIM</a> (macOS)</li>
</ul></div>{{end}}`
