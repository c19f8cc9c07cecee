-- Prosody for the side-by-side bench: loopback ports, own data dir, the same self-signed
-- certificate and virtual host as Vireo. Every difference from Debian's default config is
-- explained in README.md beside this file. Rendered by bench/peers (Go text/template).
run_as_root = true          -- the bench runs as root in CI containers
daemonize = false
pidfile = "{{.Dir}}/prosody.pid"
data_path = "{{.Dir}}/data"
log = { warn = "*console" } -- warnings only: logging per stanza would skew CPU numbers
interfaces = { "127.0.0.1" }
c2s_ports = { {{.Plain}} }
c2s_direct_tls_ports = { {{.TLS}} }
s2s_ports = { }
-- RFC 7395 XMPP over WebSocket (mod_websocket, at its default /xmpp-websocket) on
-- loopback HTTP and HTTPS ports. No Origin check: the bench client sends no Origin.
http_interfaces = { "127.0.0.1" }
http_ports = { {{.Web}} }
https_interfaces = { "127.0.0.1" }
https_ports = { {{.WebTLS}} }
https_ssl = { certificate = "{{.Cert}}"; key = "{{.Key}}" }
c2s_require_encryption = false -- the plain-TCP runs measure every server the same way
authentication = "internal_hashed"
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "posix"; "carbons"; "blocklist"; "vcard_legacy"; "private"; "offline"; "smacks"; "websocket" }
modules_disabled = { "limits"; "s2s" }
-- mod_limits throttles c2s to 10 kB/s in Debian's config; open it up in case it loads anyway.
limits = { c2s = { rate = "1000mb/s"; burst = "10s" } }
c2s_stanza_size_limit = 262144
certificates = "{{.Dir}}"
ssl = { certificate = "{{.Cert}}"; key = "{{.Key}}" }
VirtualHost "localhost"
  ssl = { certificate = "{{.Cert}}"; key = "{{.Key}}" }
-- The groupchat fan-out (-only muc): XEP-0045 with mod_muc's defaults.
Component "conference.localhost" "muc"
  ssl = { certificate = "{{.Cert}}"; key = "{{.Key}}" }
