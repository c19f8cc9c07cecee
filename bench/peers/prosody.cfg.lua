-- Prosody for the side-by-side bench: loopback ports, own data dir, the same self-signed
-- certificate and virtual host as Vireo. Every difference from Debian's default config is
-- explained in README.md beside this file. Rendered by bench/peers (Go text/template).
run_as_root = true          -- the bench runs as root in CI containers
daemonize = false
pidfile = "{{.Dir}}/prosody.pid"
data_path = "{{.Dir}}/data"
log = { warn = "*console" } -- warnings only: logging per stanza would skew CPU numbers
interfaces = { "{{.IP}}" }
c2s_ports = { {{.Plain}} }
c2s_direct_tls_ports = { {{.TLS}} }
{{- if .S2S}}
-- The federation pair (bench/peers NewPair): s2s on, dialback (the bench certificate is
-- self-signed, so no peer validates it), the other server through a static route.
s2s_ports = { {{.S2S}} }
s2s_direct_tls_ports = { }
s2s_require_encryption = true
s2s_secure_auth = false
plugin_paths = { "{{.Dir}}/plugins" }
vireo_bench_hosts = {
{{- range $d, $a := .Hosts}}
	["{{$d}}"] = { "{{index $a 0}}", {{index $a 1}} };
{{- end}}
}
{{- else}}
s2s_ports = { }
{{- end}}
-- RFC 7395 XMPP over WebSocket (mod_websocket, at its default /xmpp-websocket) on
-- loopback HTTP and HTTPS ports. No Origin check: the bench client sends no Origin.
http_interfaces = { "{{.IP}}" }
http_ports = { {{.Web}} }
https_interfaces = { "{{.IP}}" }
https_ports = { {{.WebTLS}} }
https_ssl = { certificate = "{{.Cert}}"; key = "{{.Key}}" }
c2s_require_encryption = false -- the plain-TCP runs measure every server the same way
authentication = "internal_hashed"
{{- if .S2S}}
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "posix"; "carbons"; "blocklist"; "vcard_legacy"; "private"; "offline"; "smacks"; "websocket"; "dialback"; "vireo_bench_hosts" }
modules_disabled = { "limits"; "s2s_bidi" }
{{- else}}
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "posix"; "carbons"; "blocklist"; "vcard_legacy"; "private"; "offline"; "smacks"; "websocket"{{if .MAM}}; "mam"{{end}}{{if .PEP}}; "pep"{{end}} }
modules_disabled = { "limits"; "s2s" }
{{- end}}
{{- if .MAM}}
-- The archive scenario (-only mam) alone: mod_mam with its defaults (every one-to-one
-- message archived, Prosody's default internal storage, pages of up to 50).
{{- end}}
{{- if .PEP}}
-- The PEP storm (-only pep) alone: mod_pep with its defaults.
{{- end}}
-- mod_limits throttles c2s to 10 kB/s in Debian's config; open it up in case it loads anyway.
limits = { c2s = { rate = "1000mb/s"; burst = "10s" }; s2sin = { rate = "1000mb/s"; burst = "10s" } }
c2s_stanza_size_limit = 262144
certificates = "{{.Dir}}"
ssl = { certificate = "{{.Cert}}"; key = "{{.Key}}" }
VirtualHost "{{.Domain}}"
  ssl = { certificate = "{{.Cert}}"; key = "{{.Key}}" }
{{- if .Guests}}
-- The guest login storm (-only guest): SASL ANONYMOUS (mod_auth_anonymous) on a second host.
VirtualHost "{{.GuestDomain}}"
  authentication = "anonymous"
  ssl = { certificate = "{{.Cert}}"; key = "{{.Key}}" }
{{- end}}
-- The groupchat fan-out (-only muc): XEP-0045 with mod_muc's defaults.
Component "conference.localhost" "muc"
  ssl = { certificate = "{{.Cert}}"; key = "{{.Key}}" }
