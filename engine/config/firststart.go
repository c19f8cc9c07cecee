package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/vireo-im/vireo/engine/durablefile"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// DetectDomain returns the machine's fully qualified host name when it is a usable XMPP domain,
// else "localhost". A short name without a dot is still accepted: small deployments run on
// LAN names, and the operator edits the file when the public name differs.
func DetectDomain() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	if addrs, err := net.LookupHost(h); err == nil && len(addrs) > 0 {
		if names, err := net.LookupAddr(addrs[0]); err == nil && len(names) > 0 {
			if n := strings.TrimSuffix(names[0], "."); strings.Contains(n, ".") && !strings.HasPrefix(n, "localhost") {
				h = n
			}
		}
	}
	d, err := jid.PrepareDomain(h)
	if err != nil {
		return "localhost"
	}
	return d
}

var defaultTmpl = template.Must(template.New("vireo.toml").Parse(`# vireo.toml — written by Vireo on first start ({{.When}}).
# Every option has a safe default; uncomment and edit what you need, then reload with
# SIGHUP or "vireoctl reload" (data_dir and [link] need a restart).

# Virtual hosts served by this server. The first one names the generated certificate.
# "vireoctl vhost add DOMAIN" (and remove, and the dashboard) change them without a
# restart and rewrite this line, and only this line, of this file.
domains = ["{{.Domain}}"]

# Database, certificates and the admin socket live here (relative to this file).
data_dir = "data"

# debug | info | warn | error; console (human) or json (for log shippers).
log_level = "info"
log_format = "console"

[c2s]
# STARTTLS listeners (RFC 6120) and direct-TLS listeners (XEP-0368).
listen = ["[::]:5222"]
tls_listen = ["[::]:5223"]
# Refuse authentication before STARTTLS. Turn off only on a trusted loopback.
require_tls = true
# SASL PLAIN, only ever offered over TLS, for clients without SCRAM (mcabber, sendxmpp);
# the server then hashes the password. false offers SCRAM only.
allow_plain = true
# XEP-0077 in-band registration: anyone who can connect can create an account.
# On in this generated development config; turn it off for a public server.
registration = {{.Registration}}
# Ask an open registration to type the text of an image (XEP-0158 CAPTCHA, as ejabberd
# asks it; Conversations and Gajim show it), in-band and on the web sign-up page at
# /register. Invitations and trusted_networks skip it.
registration_captcha = false
# Names registration refuses (an invitation naming one, and vireoctl, still create them),
# so that nobody registers admin@ and speaks for you.
reserved_names = ["admin", "administrator", "root", "hostmaster", "postmaster", "webmaster", "abuse", "security", "support", "xmpp"]
# Hosts (from domains) where anyone may log in as a guest, without an account (SASL
# ANONYMOUS, XEP-0175): web chat, support desks, conference guests. A guest gets a random
# address that lives as long as its session, then goes with everything stored for it.
# Guests log in at the pace of registrations_per_minute per address; open registration
# skips these hosts.
# anonymous_domains = ["guest.{{.Domain}}"]
# Let guests reach other servers (off: this server's users, rooms and services only).
anonymous_s2s = false
# Close streams that have not authenticated after this long.
pre_auth_timeout = "30s"
# Largest stanza accepted, in bytes (policy-violation above).
max_stanza = 262144
# Bytes queued for a client that does not read before the stream is closed.
max_outbound = 1048576
# How long stanzas for a client in a burst (written to twice within this) may wait to
# leave with the next ones, in one write (busy rooms); answers to requests never wait.
# "0s": off.
coalesce_writes = "10ms"
# Failed logins per client address per minute before temporary-auth-failure.
auth_failures_per_minute = 10
# In-band registrations per client address per minute (resource-constraint beyond).
registrations_per_minute = 10
# What one logged-in client may send: max_burst bytes at once, then max_rate bytes a
# second (about 250 short messages). A faster client is read at that pace, and one that
# keeps sending faster is closed with policy-violation once 16 max_stanza of its input
# wait. 0: off.
max_rate = 65536
max_burst = 1048576
# Open connections at most (0: the process's descriptor limit minus a reserve of 512).
max_connections = 0
# Connections per client address (IPv6: per /64) that have not logged in yet.
max_unauth_per_address = 64
# Networks exempt from the per-address limits (bulk provisioning, load tests, a proxy here).
trusted_networks = ["127.0.0.0/8", "::1/128"]
# XEP-0198: how long a session whose connection dropped waits for its client to resume it
# (queued messages go to offline storage after that).
resume_timeout = "300s"
# The server asks for an acknowledgement after this many stanzas, or once stanzas have
# waited this long without one: soon enough that a phone answers while its radio is still
# awake from the stanza, and that an idle session holds no copies of what it was sent.
sm_ack_every = 10
sm_ack_after = "1s"
# One request is out at a time. A client that leaves it unanswered and sends nothing for
# this long is taken for dead (a phone whose TCP died without a word): its session is
# detached for resumption and push notifications take over.
sm_ack_timeout = "60s"
# XEP-0484 FAST: a client that logged in once gets a token for one-round-trip logins; it
# lives this long, is renewed as it is used, and a password change ends every token.
fast_token_ttl = "336h"
# An established stream silent this long gets an XEP-0199 ping; no answer within
# ping_timeout closes it (dead phones behind NATs). Client sockets have no TCP
# keepalive, so nothing else wakes an idle phone; s2s and component sockets use TCP
# keepalive after ping_interval instead of pings.
ping_interval = "4m"
ping_timeout = "60s"

[auth]
# A site with a user database of its own (forum, shop, directory) can have its users log
# in with the passwords they have there: external names a program that answers "is this
# password right?" over ejabberd's extauth protocol, so scripts written for ejabberd or
# Prosody's mod_auth_external work as they are. The first login it accepts, or the first
# stanza to a name it knows, creates the account here; accounts made here (vireoctl adduser, registration) keep their own
# passwords, and registration refuses the names the program knows. Its users log in with
# PLAIN over TLS, or with a FAST token after that; SCRAM is then not offered. A password
# changed on the site ends no FAST token: they expire (fast_token_ttl). With
# external_manage, in-band registration, password changes and account removal go to the
# program (tryregister, setpass, removeuser); without, the last two are refused.
# external = ["/usr/local/bin/check-password", "--config", "/etc/site.conf"]
# external_processes = 1       # copies of the program, each answering one check at a time
# external_timeout = "5s"      # no answer within this: the login gets temporary-auth-failure
# external_cache = "0s"        # remember a success this long (a changed password works as long)
# external_manage = false      # registration, password changes and removal from clients go to the program

[web]
# Web clients: XMPP over WebSocket (RFC 7395) at websocket_path, and XEP-0156 host-meta at
# /.well-known/host-meta(.json) so browsers find it. tls_listen uses the certificates
# above. Behind a reverse proxy (nginx, caddy) that terminates TLS, proxy to listen and set
# public_websocket_url to the address browsers use; connections from trusted_networks
# count as encrypted.
listen = ["[::]:5280"]
tls_listen = ["[::]:5443"]
websocket_path = "/xmpp-websocket"
bosh_path = "/http-bind"
# public_websocket_url = "wss://chat.example.org/xmpp-websocket"
# Where browsers reach these listeners, for the pages the server links to (invitation
# pages at /invite/); default https://<domain>:<first tls_listen port>.
# public_url = "https://chat.example.org"
# Origins (scheme://host[:port]) allowed to open a WebSocket; empty allows any.
origins = []
# Networks allowed to scrape Prometheus metrics at GET /metrics; others get 403.
metrics_allow = ["127.0.0.0/8", "::1/128"]
# Reverse proxies whose Forwarded / X-Forwarded-For / -Proto / -Host headers name the
# client (for login throttling, limits and logs) and the scheme and host host-meta
# announces; these headers from anyone else are ignored. Unset: loopback (a proxy on this
# host); [] trusts none.
# trusted_proxies = ["127.0.0.1/32", "::1/128", "10.0.0.5/32"]
# Which headers those proxies write: "x-forwarded-for" (X-Forwarded-For, -Proto, -Host:
# nginx, HAProxy, Caddy, Traefik) or "forwarded" (RFC 7239). The other kind is ignored:
# a proxy passes a client's own headers on.
# forwarded_header = "x-forwarded-for"
# BOSH (XEP-0124): how long a session lives without a request (10s to 1h), and the longest
# a request is held (5s to 120s; keep it below your proxy's read timeout).
bosh_inactivity = "60s"
bosh_wait = "60s"
# The administration dashboard at /admin/ (only [modules.adhoc] admins can log in). false
# makes /admin/ answer 404; a reload applies it.
dashboard = true
# An HTTP API for your site's programs at /api/v1/<operation> (POST, JSON): create and
# remove accounts, change passwords, send a user a message (adduser, deluser, passwd,
# message, users, invite, ...: what vireoctl does, without backup, export and import).
# Each request carries "Authorization: Bearer <token>" with one of these tokens (24
# characters at least: openssl rand -hex 24); from api_allow's networks only (default
# loopback), and over TLS unless from loopback. No tokens: no API.
# api_tokens = []
# api_allow = ["10.0.0.0/8"]

[component]
# XEP-0114 external components (gateways, bots, services) connect here.
listen = ["127.0.0.1:5347"]
# One table per component: its domain and the handshake secret.
# [[component.allow]]
# domain = "gateway.{{.Domain}}"
# secret = "change me"
# What a gateway (Slidge, Biboumi) may do with your users' accounts (XEP-0356): put its
# contacts on their rosters, send as them what they wrote on the other network (their
# clients get copies, their archives keep it), and send IQs as them in the namespaces
# listed (bookmarks). Only for software you trust with every account.
# [component.allow.privileges]
# roster = "both"          # none, get, set or both
# roster_push = false      # with get or both: no roster push for each change (on by default)
# message = "outgoing"     # none or outgoing
# iq = { "http://jabber.org/protocol/pubsub" = "both", "http://jabber.org/protocol/pubsub#owner" = "set" }
# presence = "managed_entity" # every session's presence, and who is online when it connects;
#                            # "roster": that and the users' contacts on other servers too

[s2s]
# Federation with other XMPP servers (STARTTLS required, XEP-0220 dialback). Off by default.
enabled = false
# listen = ["[::]:5269"]
# XEP-0368 direct TLS listeners (TLS at once, ALPN xmpp-server), for servers that find them
# through an _xmpps-server._tcp SRV record. None unless set.
# direct_tls_listen = ["[::]:5270"]
# Dialback key secret; empty: a random one per start.
secret = ""
# PEM CA certificates that peer servers' certificates are checked against; a peer whose
# certificate is valid for its domain may then authenticate with SASL EXTERNAL (XEP-0178)
# instead of dialback. Empty: dialback only.
# ca_file = "/etc/ssl/certs/ca-certificates.crt"
# Refuse peers whose certificate does not validate for their domain (system roots and
# ca_file), both ways: no stream to them, and their dialback accepted only over a valid
# certificate; false: reach them anyway and authenticate with dialback.
# require_valid_certs = false
# Remote domains never federated with (their streams end with policy-violation, stanzas to
# them bounce with not-allowed); allow, when not empty, lists the only ones federated with.
# "*.example.org" matches every subdomain of example.org; deny wins over allow.
# deny = ["spam.example", "*.spam.example"]
# allow = []
# Close server-to-server streams idle for this long.
# idle_timeout = "10m"
# Bidirectional streams (XEP-0288): a peer that offers them carries both directions over
# one connection, half the sockets and TLS handshakes; false: a stream per direction.
# bidi = true
# Never dial the private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) a
# remote domain's DNS names, for a server on the internet: any peer can make it look up a
# domain. Loopback and link-local addresses are never dialed; [s2s.hosts] is exempt.
# public_only = false
# Remote domains and the address to reach each, instead of DNS (_xmpp-server._tcp and
# _xmpps-server._tcp SRV records, else the domain on port 5269); "tls://" before the
# address: direct TLS there (XEP-0368).
# [s2s.hosts]
# "example.net" = "203.0.113.7:5269"
# "example.com" = "tls://203.0.113.8:5270"
# Policy for one remote domain: require_valid_certs overrides the one above for it;
# dialback = "deny" makes it authenticate with SASL EXTERNAL (needs ca_file).
# [s2s.domains."example.org"]
# require_valid_certs = true
# dialback = "deny"

# Split deployment: edge processes hold the client sockets and TLS (in a DMZ) and relay
# every stream over one authenticated link to a core that runs everything else (on a
# private network). A core lists the addresses edges connect to; an edge has an [edge]
# table instead, and uses only the [c2s], [web] and [s2s] listeners, limits and [tls] of its
# file. A core with [link] and [s2s] enabled and no s2s listen takes inbound federation
# through its edges only; with federate_through_edges its outbound streams leave through
# them too.
[link]
# listen = ["10.0.0.2:5290"]   # private addresses only: never the internet
# secret = "at least 16 characters, the same on every edge"
# tls = true                   # with this server's certificate
# federate_through_edges = false  # true: edges open outbound federation too (no internet route needed here)
# [edge]
# core = "10.0.0.2:5290"
# secret = "the core's link secret"
# name = "edge-1"              # default: the host name
# tls = true
# ca_file = ""                 # CA the core's certificate is checked against; default the system roots
# server_name = ""             # name in the core's certificate; default the host in core
# metrics_listen = "127.0.0.1:9102"  # the edge's own /metrics (Prometheus); none by default

[tls]
# PEM certificate chain and key. Empty: a self-signed certificate under data/certs/.
cert = ""
key = ""
# Automatic certificates (ACME, e.g. Let's Encrypt) for every domain above and its service
# subdomains (conference., pubsub., upload.), kept in data/acme/ and renewed in the
# background; the certificate above is served until the first one is issued. The CA must
# reach this server under each name: with http-01 on port 80 (a [web] listen address, or
# port 80 forwarded to it), with tls-alpn-01 on port 443 (a c2s or web tls_listen).
# acme = false
# acme_email = "admin@{{.Domain}}"
# acme_challenge = "http-01"
# acme_directory = "https://acme-v02.api.letsencrypt.org/directory"
# acme_ca_roots = ""          # PEM CAs for the ACME server's HTTPS (private or test CAs)
# acme_renew_before = "720h"  # at most half a certificate's lifetime

[admin]
# Unix socket used by vireoctl; only local users with file access can reach it.
socket = ""

[router]
# Stanza queues and worker goroutines; more shards than cores keeps workers busy.
shards = 64
# Offline messages kept per user; beyond this senders get service-unavailable.
# [modules.offline] quota, when set, takes precedence.
offline_quota = 1000
# Route a chat message on the event loop that read it when its shards are idle, and
# bind a new session there (saves two goroutine hand-offs each). Turn it off if a
# third-party module's message hooks wait for the disk or the network without
# declaring it.
route_in_place = true

[store]
# Free space, in bytes, that writes leave on the data_dir disk: beyond it clients get
# resource-constraint (retry later) and the server keeps running; reads still work.
# 0 = 64 MiB (1/16 of a smaller disk); -1 turns the guard off.
min_free = 0

[runtime]
# Soft memory limit for the Go runtime ("12GiB", "800MiB"): the collector works harder only
# near it, which suits a server of mostly idle sessions. "auto" = 80% of the cgroup limit or
# of physical memory; "off" = none. The GOMEMLIMIT environment variable wins.
memory_limit = "auto"
# GOGC: heap growth between collections in percent (0 = Go's default, 100). 50 keeps idle
# sessions ~17% smaller for ~10% more CPU per archived message; -1 leaves only the memory
# limit. The GOGC environment variable wins.
gc_percent = 50
# The least the heap may grow between collections, whatever gc_percent says: with few
# sessions the live heap is a few MiB, and a percentage of that means a collection every
# few logins. Stops mattering from ~64 MiB of live heap (some 30,000 idle TLS sessions).
# "0" = off. Ignored when GOGC is set.
gc_min_headroom = "32MiB"
# Event loops (network threads); 0 = one per processor. Fewer leave a processor free to
# accept connections, finish TLS handshakes and read the store without waiting for a loop
# to give its processor back: on 2 processors, 1 loop costs 12% less CPU per login and 7%
# less per TLS login, and lowers the peak message rate by 6-34%. Needs a restart.
event_loops = 0

# What one virtual host does differently from the settings above (as Tigase's per-domain
# settings and ejabberd's host_config): registration and registration_captcha override
# [c2s]'s there; max_accounts bounds the accounts users create there (in-band, on the
# sign-up page, with an invitation; 0 = no bound; vireoctl's are never refused);
# federation = false keeps the host and its services (conference., pubsub., upload.) off
# federation, both ways; isolated = true keeps its users and services to each other (no
# other host here, no other server); modules_disabled lists modules the host does without
# (its users get service-unavailable, its disco#info leaves them out; muc, pubsub, upload
# and proxy65 give it no service). A reload applies them.
# [vhosts."corp.{{.Domain}}"]
# registration = false
# max_accounts = 500
# federation = false
# isolated = false
# modules_disabled = ["mam", "upload"]
# The host's own settings of a module, over [modules.<id>] below (modules marked per-host
# in "vireoctl modules": adhoc, contact, welcome, register, blocking, offline, private,
# vcard, roster, pep, mam, push, extdisco, antispam, muc, pubsub, upload, proxy65): keys
# set here replace the server-wide ones there. A host's adhoc admins manage its accounts only (XEP-0133, sent to the host).
# [vhosts."corp.{{.Domain}}".modules.contact]
# abuse = ["mailto:it@corp.{{.Domain}}"]
# [vhosts."corp.{{.Domain}}".modules.adhoc]
# admins = ["boss@corp.{{.Domain}}"]

[modules]
# Module IDs to turn off ("vireoctl modules" lists them), e.g. ["version"].
disabled = []

# Per-user quotas, one table per module. Every path that writes a user's data checks them.
# [modules.roster]
# Items per roster; a roster set or a subscription that would add one more is refused
# with not-allowed (subscription requests from contacts too).
# max_items = 1000
# Bytes of names, groups and JIDs per roster (not-allowed beyond).
# max_bytes = 1048576
# Shared roster groups in Prosody's mod_groups format ([Group] lines, then members as
# user@host or user@host=Name): members have each other as contacts. Read at each reload.
# shared_groups_file = "groups.txt"
#
# [modules.offline]
# Offline messages kept per user, by count and by total bytes; beyond either the sender
# gets service-unavailable. quota defaults to router.offline_quota.
# quota = 1000
# quota_bytes = 10485760
#
# [modules.private]
# XEP-0049 private XML fragments per user and their total bytes (resource-constraint beyond).
# max_items = 100
# max_bytes = 1048576
#
# [modules.adhoc]
# XEP-0133 service administration over XEP-0050 ad-hoc commands (add-user, delete-user,
# change-user-password, online users, announce, message of the day) for these local
# accounts; nobody is an administrator by default.
# admins = ["alice@example.org"]
# Every user can make XEP-0401 contact invitations. With this, they also create an account
# here (ibr=y) that starts out as the inviter's contact: users bring their friends even
# while registration is off.
# contact_invites_register = false
#
# [modules.antispam]
# Messages with a body and subscription requests from accounts on other servers to local
# users who have not added them: at most this many a minute per sender, and per sending
# server (0: no limit); beyond, messages get policy-violation (wait) and requests are
# dropped. Contacts, room traffic and local users are not counted.
# stranger_messages_per_minute = 20
# stranger_domain_messages_per_minute = 200
# Servers known for spam (one domain per line, # comments; the JabberSPAM list has this
# form): their accounts reach only local users who added them, and get no answer. Read
# again within a minute of a change.
# blocked_domains_file = "/etc/vireo/spam-domains.txt"
# Hold a stranger's first message or subscription request to a user and send the
# stranger a CAPTCHA from the user's address (XEP-0158, which Gajim shows): the right
# text delivers what waited and lets the stranger write to that user from then on; a
# wrong one, or none within 5 minutes, drops it. Someone the user wrote to first is no
# stranger.
# challenge_strangers = false
#
# [modules.welcome]
# One message from the server to every account its user creates (in-band or with an
# invitation), read at the first login: rules, where to get help, rooms to join.
# subject = "Welcome"
# message = """Welcome! Say hello in lobby@conference.example.org."""
#
# [modules.register]
# Operators told, in a chat from the host, of every account its user creates (in-band,
# on the web, with an invitation): who, how, and from which address.
# watchers = ["admin@{{.Domain}}"]
#
# [modules.vcard]
# Largest vCard (avatar included) a user may store (not-acceptable beyond).
# max_bytes = 65536
#
# [modules.mam]
# XEP-0313 archive: every chat message for both parties, synced before delivery.
# default = "always"      # users' default preference: always, roster or never
# retention = "0"         # "0" keeps messages forever; or e.g. "720h"
# sync = false            # true: wait for the disk on every archived message (slower)
# max_page = 250          # most results one query page returns
#
# [modules.pep]
# XEP-0163 personal eventing (avatars, OMEMO keys, bookmarks) on every account.
# max_items = 100         # highest pubsub#max_items of a node (and what "max" means)
# max_item_size = 262144  # bytes of one item's payload (not-acceptable beyond)
# max_nodes = 100         # nodes per account (policy-violation beyond)
#
# [modules.pubsub]
# XEP-0060 publish-subscribe service, served at <subdomain>.<each domain>.
# subdomain = "pubsub"
# name = "Publish-Subscribe"
# max_nodes = 100         # nodes one user may own (policy-violation beyond)
# max_items = 1000        # highest pubsub#max_items of a node (and what "max" means)
# max_item_size = 262144  # bytes of one item's payload (not-acceptable beyond)
#
# [modules.push]
# XEP-0357 push: app servers (run by client vendors) are told a message arrived for a
# sleeping phone: count and sender; the body only when include_body is true.
# include_body = false
# include_sender = true
# max_registrations = 16
# min_interval = "2s"
#
# [modules.contact]
# XEP-0157: where to reach the operator, published in the server's disco#info (URIs).
# abuse = ["mailto:abuse@example.org", "xmpp:abuse@example.org"]
# security = ["mailto:security@example.org"]
# support = ["https://example.org/support"]
# XEP-0455: where clients find the outage status document (hosted elsewhere, https).
# external_status = ["https://status.example.net/example.org.json"]
#
# [modules.blocking]
# XEP-0377: who gets the reports users attach when they block someone (the reporter, the
# reason, their text and the reported messages from their archive). Always logged.
# report_to = ["abuse@example.org"]
#
# [modules.extdisco]
# XEP-0215: the STUN and TURN servers clients use for calls. With a secret, each answer
# carries TURN credentials that coturn (use-auth-secret, the same static-auth-secret)
# accepts until ttl has passed. Off while no service is listed.
# ttl = "24h"
# [[modules.extdisco.services]]
# type = "turn"           # stun, turn or turns
# host = "turn.example.org"
# port = 3478
# transport = "udp"       # udp or tcp
# secret = "coturn's static-auth-secret"
#
# [modules.muc]
# XEP-0045 chat rooms, served at <subdomain>.<each domain>.
# subdomain = "conference"
# name = "Chatrooms"
# Who may create rooms: "local" (users of this server), "anyone", or "admins" (below).
# create = "local"
# Narrow "local" to the users of some hosts (say, not the guests of anonymous_domains).
# create_hosts = ["{{.Domain}}"]
# Service administrators: owners of every room (enter, configure, moderate, destroy).
# admins = ["admin@example.org"]
# Rooms per service, and per user who made them (admins are not bound); maxusers of a
# new room and the largest an owner may set.
# max_rooms = 10000
# max_rooms_per_user = 100
# default_occupants = 200
# max_occupants = 5000
# New rooms are logged: their messages archived (XEP-0313) for occupants to catch up
# on. Owners can turn it off per room; false makes new rooms unlogged.
# default_logging = true
# History kept in memory per room (messages), default and largest.
# default_history = 20
# max_history = 200
# Rooms with at least flood_occupants occupants accept join_rate joins per second,
# broadcast one occupant's status changes at most once per presence_interval, and take
# message_rate messages per second from each occupant below moderator (bursts of 5x).
# flood_occupants = 200
# join_rate = 10
# presence_interval = "5s"
# message_rate = 2
# Largest vCard an owner may set on a room (XEP-0486 room avatars), bytes.
# max_vcard_bytes = 65536
#
# [modules.upload]
# XEP-0363 HTTP file upload, served at <subdomain>.<each domain>, with its own HTTPS
# listener (the certificate above; it must cover upload.<domain>, as the generated one
# does with *.<domain>). Turn it off with disabled = ["upload"] under [modules].
# subdomain = "upload"
# listen = ":5281"
# public_url = ""          # default https://upload.<domain>:5281; set it behind a proxy
# max_file_size = 104857600 # bytes per file (not-acceptable beyond)
# quota = 1073741824       # bytes one user keeps stored; -1 for no quota
# slot_ttl = "5m"          # how long a granted slot waits for its upload
# retention = "720h"       # how long files are kept; "0" for ever
#
# [modules.proxy65]
# XEP-0065 SOCKS5 proxy at <subdomain>.<each domain>: file transfers between two clients
# that cannot reach each other go through it, on its own TCP port. Only this server's
# users may use it. Turn it off with disabled = ["proxy65"] under [modules].
# subdomain = "proxy"
# listen = ":7777"
# address = ""             # host clients connect to; default proxy.<domain> (needs DNS)
# port = 0                 # port clients connect to; default the listener's
# max_streams = 1000       # transfers relaying at once
# max_streams_per_user = 10
# max_pending = 1000       # connections waiting for their transfer to start
# max_rate = 0             # bytes per second per direction of a transfer; 0: no bound
`))

// WriteDefault writes a commented config for domain to path, failing if the file exists.
func WriteDefault(path, domain string, registration bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	err = defaultTmpl.Execute(f, map[string]any{
		"Domain": domain, "Registration": registration, "When": time.Now().UTC().Format(time.RFC3339),
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// EnsureCert creates a self-signed ECDSA P-256 certificate for domains at certPath/keyPath
// unless both files exist. ECDSA keeps handshakes cheap and the per-connection TLS state
// small. It reports whether it created them.
func EnsureCert(certPath, keyPath string, domains []string) (bool, error) {
	_, errC := os.Stat(certPath)
	_, errK := os.Stat(keyPath)
	if errC != nil && errK == nil {
		// A crash between the two renames below left the certificate in its temporary
		// file, complete (it was synced first): finish the job.
		if _, err := os.Stat(certPath + ".tmp"); err == nil {
			if err := os.Rename(certPath+".tmp", certPath); err != nil {
				return false, err
			}
			return false, durablefile.SyncDir(filepath.Dir(certPath))
		}
	}
	if errC == nil && errK == nil {
		return false, nil
	}
	if errC == nil || errK == nil {
		return false, fmt.Errorf("only one of %s and %s exists", certPath, keyPath)
	}
	certPEM, keyPEM, err := SelfSigned(domains, 5*365*24*time.Hour)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o750); err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o750); err != nil {
		return false, err
	}
	// Both are written whole and synced before either takes its name, the key first: a
	// crash leaves no half-written file, and at worst the key with the certificate still
	// in its temporary file, which the next start renames.
	if err := durablefile.Write(keyPath+".tmp", keyPEM, 0o600); err != nil {
		return false, err
	}
	if err := durablefile.Write(certPath+".tmp", certPEM, 0o644); err != nil {
		os.Remove(keyPath + ".tmp")
		return false, err
	}
	if err := os.Rename(keyPath+".tmp", keyPath); err != nil {
		return false, err
	}
	if err := os.Rename(certPath+".tmp", certPath); err != nil {
		return false, err
	}
	if err := durablefile.SyncDir(filepath.Dir(keyPath)); err != nil {
		return false, err
	}
	return true, durablefile.SyncDir(filepath.Dir(certPath))
}

// SelfSigned returns PEM certificate and key for domains (and their wildcard subdomains,
// so that conference.* and upload.* components are covered).
func SelfSigned(domains []string, valid time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(domains) == 0 {
		return nil, nil, errors.New("config: no domain for the certificate")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: jid.ToASCII(domains[0]), Organization: []string{"Vireo self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(valid),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, d := range domains {
		if ip := net.ParseIP(strings.Trim(d, "[]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		// A dNSName is IA5: an internationalized domain goes in as its A-labels.
		d = jid.ToASCII(d)
		tmpl.DNSNames = append(tmpl.DNSNames, d)
		if d != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, "*."+d)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	return certPEM, keyPEM, nil
}
