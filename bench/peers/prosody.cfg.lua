-- Prosody for the side-by-side bench: loopback ports, own data dir, the same self-signed
-- certificate and virtual host as Vireo. Every difference from Debian's default config is
-- explained in README.md beside this file.
run_as_root = true          -- the bench runs as root in CI containers
daemonize = false
pidfile = "/tmp/vireo-bench-prosody/prosody.pid"
data_path = "/tmp/vireo-bench-prosody/data"
log = { warn = "*console" } -- warnings only: logging per stanza would skew CPU numbers
interfaces = { "127.0.0.1" }
c2s_ports = { 25222 }
c2s_direct_tls_ports = { 25223 }
s2s_ports = { }
c2s_require_encryption = false -- Vireo's plain-TCP runs also allow this
authentication = "internal_hashed"
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "posix"; "carbons"; "blocklist"; "vcard_legacy"; "private"; "offline" }
modules_disabled = { "limits"; "s2s" }
-- mod_limits throttles c2s to 10 kB/s in Debian's config; open it up.
limits = { c2s = { rate = "1000mb/s"; burst = "10s" } }
c2s_stanza_size_limit = 262144
-- One certificate for STARTTLS and direct TLS: the same self-signed ECDSA P-256 one the
-- other servers use.
certificates = "/tmp/vireo-bench-prosody"
ssl = { certificate = "/tmp/vireo-bench-prosody/localhost.crt"; key = "/tmp/vireo-bench-prosody/localhost.key" }
VirtualHost "localhost"
  ssl = { certificate = "/tmp/vireo-bench-prosody/localhost.crt"; key = "/tmp/vireo-bench-prosody/localhost.key" }
