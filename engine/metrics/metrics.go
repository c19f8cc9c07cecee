// Package metrics exports the server's counters to Prometheus.
//
// Nothing here is on a hot path: the collector reads the engine's, the router's and the
// store's atomics when a scrape gathers it. Counters on hot paths are kept per router
// shard (and histograms in fixed buckets, package hist) and summed here, so counting a
// stanza is an uncontended atomic add, with no lock and no allocation.
// The package does not import engine (engine serves GET /metrics with it); the engine
// hands it a function that snapshots its counters.
package metrics

import (
	"bytes"
	"net/http"
	"net/netip"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/vireo-im/vireo/hist"
)

// Counters is one snapshot of the counters the collector exports. Gauges hold the
// current value; the fields documented as totals only grow.
type Counters struct {
	ConnsOpen    int64 // open client connections (all listeners)
	Established  int64 // streams with a bound session
	TLS          int64 // open connections using TLS
	AuthOK       int64 // total successful authentications
	AuthFail     int64 // total failed authentications
	Refused      int64 // total connections closed at once: over a limit
	AcceptErrors int64 // total failed accepts (EMFILE ...)
	Online       int64 // router sessions online
	Detached     int64 // XEP-0198 sessions waiting for their client to resume
	Guests       int64 // live guest accounts (SASL ANONYMOUS)
	Routed       int64 // total stanzas routed
	Dropped      int64 // total stanzas dropped
	Shaped       int64 // total times a client went over [c2s] max_rate and was held back
	Queued       int64 // ops waiting in the shards' queues
	Shards       int64 // router shards

	// Logins are authentications by mechanism (only those with any).
	Logins []Login
	// TLSHandshakes are inbound TLS handshakes: [0] completed, [1] failed (totals).
	TLSHandshakes [2]int64
	// RefusedBy splits Refused by reason (totals).
	RefusedBy map[string]int64
	// TimeoutsBy counts connections the server closed on its own clock, by kind: pre_auth,
	// ping (XEP-0199 unanswered), sm_ack (XEP-0198 request unanswered) (totals).
	TimeoutsBy map[string]int64
	// RegistrationsBy counts the accounts users created, by how: open (XEP-0077),
	// invitation (XEP-0445 token on a stream), invitation_page (in a browser), web (the
	// sign-up page); and
	// PasswordResets the password reset links used (totals).
	RegistrationsBy map[string]int64
	PasswordResets  int64
	// StanzasIn are stanzas from local clients and StanzasOut stanzas delivered to local
	// sessions, by kind: message, presence, iq (totals).
	StanzasIn, StanzasOut [3]int64
	// RoutingLatency is the time from a client stanza's submission to the router to its
	// delivery to the recipient's connection, for the sampled stanzas.
	RoutingLatency hist.Snapshot
	// StoreCommit is the store's write-batch commit latency; nil if the store does not
	// count it.
	StoreCommit *hist.Snapshot
	// OfflineWrites and ArchiveWrites are offline messages and archive (MAM) writes
	// stored (totals).
	OfflineWrites, ArchiveWrites int64
	// PartialKeyAccounts are accounts that lack some hash's SCRAM keys (imported).
	PartialKeyAccounts int64
	// EdgeLinks and EdgeChannels are the edges linked to this core and the client
	// connections they relay (split deployment), reported when Links is set (a core with
	// a link listener).
	Links                   bool
	EdgeLinks, EdgeChannels int64
	// Edge is set by an edge process: it reports its connections, TLS and refusals, its
	// link to the core (LinkUp, LinkQueued) and nothing of sessions, routing or storage,
	// which live in the core.
	Edge       bool
	LinkUp     bool
	LinkQueued int64
	// CoreConns are the connections an edge holds for its core's outbound federation.
	CoreConns int64
}

// Login is the count of authentications with one mechanism.
type Login struct {
	Mechanism  string
	OK, Failed int64
}

// stanzaKinds names the StanzasIn/StanzasOut indices.
var stanzaKinds = [3]string{"message", "presence", "iq"}

var (
	descConnsOpen   = prometheus.NewDesc("vireo_connections_open", "Open connections on all listeners, HTTP ones included (a scrape over the web listener counts itself).", nil, nil)
	descEstablished = prometheus.NewDesc("vireo_sessions_established", "Streams with a bound resource.", nil, nil)
	descOnline      = prometheus.NewDesc("vireo_sessions_online", "Sessions online in the router.", nil, nil)
	descGuests      = prometheus.NewDesc("vireo_guests", "Live guest accounts (SASL ANONYMOUS logins whose session has not ended).", nil, nil)
	descDetached    = prometheus.NewDesc("vireo_sessions_detached", "XEP-0198 sessions waiting for their client to resume.", nil, nil)
	descTLS         = prometheus.NewDesc("vireo_tls_connections", "Open connections using TLS.", nil, nil)
	descLogins      = prometheus.NewDesc("vireo_logins_total", "Authentications by result (ok, failed).", []string{"result"}, nil)
	descRefused     = prometheus.NewDesc("vireo_connections_refused_total", "Connections closed at once because a limit was reached.", nil, nil)
	descAcceptErrs  = prometheus.NewDesc("vireo_accept_errors_total", "Failed accepts (EMFILE ...), shed and survived.", nil, nil)
	descRouted      = prometheus.NewDesc("vireo_stanzas_routed_total", "Stanzas routed.", nil, nil)
	descDropped     = prometheus.NewDesc("vireo_stanzas_dropped_total", "Stanzas dropped by the router.", nil, nil)
	descShaped      = prometheus.NewDesc("vireo_senders_shaped_total", "Times a client sent faster than c2s.max_rate and its input was held back.", nil, nil)
	descQueued      = prometheus.NewDesc("vireo_router_queued", "Ops waiting in the router shards' queues.", nil, nil)
	descShards      = prometheus.NewDesc("vireo_router_shards", "Router shards.", nil, nil)
	descLoginsMech  = prometheus.NewDesc("vireo_logins_by_mechanism_total",
		"Authentications by mechanism (SASL name; FAST for XEP-0484 tokens; component, dialback) and result.", []string{"mechanism", "result"}, nil)
	descTLSHs         = prometheus.NewDesc("vireo_tls_handshakes_total", "Inbound TLS handshakes by result (ok, failed).", []string{"result"}, nil)
	descRefusedBy     = prometheus.NewDesc("vireo_connections_rejected_total", "Connections refused at accept, by reason.", []string{"reason"}, nil)
	descRegs          = prometheus.NewDesc("vireo_registrations_total", "Accounts created by their users, by how (open: in-band; invitation: in-band with a token; invitation_page: in a browser; web: the sign-up page).", []string{"via"}, nil)
	descResets        = prometheus.NewDesc("vireo_password_resets_total", "Password reset links used.", nil, nil)
	descTimeouts      = prometheus.NewDesc("vireo_connections_timed_out_total", "Connections the server closed on a timeout, by kind (pre_auth; ping: XEP-0199 unanswered; sm_ack: XEP-0198 request unanswered, detached when resumable).", []string{"kind"}, nil)
	descStanzas       = prometheus.NewDesc("vireo_stanzas_total", "Stanzas by kind and direction (in: from local clients; out: delivered to local sessions).", []string{"kind", "direction"}, nil)
	descRoutingLat    = prometheus.NewDesc("vireo_routing_latency_seconds", "Time from a client stanza's submission to the router to its delivery to the recipient's connection (one stanza in 64 sampled).", nil, nil)
	descStoreCommit   = prometheus.NewDesc("vireo_store_commit_seconds", "Store write-batch commit latency.", nil, nil)
	descOfflineWrites = prometheus.NewDesc("vireo_store_offline_writes_total", "Offline messages stored.", nil, nil)
	descArchiveWrites = prometheus.NewDesc("vireo_store_archive_writes_total", "Writes to the message archive (XEP-0313 MAM).", nil, nil)
	descPartialKeys   = prometheus.NewDesc("vireo_accounts_partial_keys", "Accounts without the SCRAM keys of some hash (imported from a server that kept one); they get them at their next PLAIN login, password change or XEP-0480 upgrade.", nil, nil)
	descEdgeLinks     = prometheus.NewDesc("vireo_edge_links", "Edges linked to this core (split deployment).", nil, nil)
	descEdgeChannels  = prometheus.NewDesc("vireo_edge_channels", "Client connections relayed by the linked edges.", nil, nil)
	descLinkUp        = prometheus.NewDesc("vireo_edge_link_up", "1 while this edge is linked to its core.", nil, nil)
	descLinkQueued    = prometheus.NewDesc("vireo_edge_link_queued_bytes", "Bytes waiting to be written to the core.", nil, nil)
	descCoreConns     = prometheus.NewDesc("vireo_edge_core_connections", "Outbound federation connections this edge holds for its core.", nil, nil)
)

// collector reads a Counters snapshot once per scrape.
type collector struct{ read func() Counters }

var _ prometheus.Collector = collector{}

// Describe implements prometheus.Collector.
func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnsOpen, descEstablished, descOnline, descGuests, descDetached, descTLS,
		descLogins, descRefused, descAcceptErrs, descRouted, descDropped, descShaped, descQueued, descShards,
		descLoginsMech, descTLSHs, descRefusedBy, descTimeouts, descStanzas, descRoutingLat, descStoreCommit,
		descOfflineWrites, descArchiveWrites, descPartialKeys, descRegs, descResets, descEdgeLinks, descEdgeChannels, descLinkUp, descLinkQueued, descCoreConns} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.read()
	g := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	n := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g(descConnsOpen, s.ConnsOpen)
	g(descTLS, s.TLS)
	n(descRefused, s.Refused)
	n(descAcceptErrs, s.AcceptErrors)
	n(descTLSHs, s.TLSHandshakes[0], "ok")
	n(descTLSHs, s.TLSHandshakes[1], "failed")
	for r, v := range s.RefusedBy {
		n(descRefusedBy, v, r)
	}
	if s.Edge {
		up := int64(0)
		if s.LinkUp {
			up = 1
		}
		g(descLinkUp, up)
		g(descLinkQueued, s.LinkQueued)
		g(descCoreConns, s.CoreConns)
		return
	}
	g(descEstablished, s.Established)
	g(descOnline, s.Online)
	g(descGuests, s.Guests)
	g(descDetached, s.Detached)
	n(descLogins, s.AuthOK, "ok")
	n(descLogins, s.AuthFail, "failed")
	n(descRouted, s.Routed)
	n(descDropped, s.Dropped)
	n(descShaped, s.Shaped)
	g(descQueued, s.Queued)
	g(descShards, s.Shards)
	for _, l := range s.Logins {
		n(descLoginsMech, l.OK, l.Mechanism, "ok")
		n(descLoginsMech, l.Failed, l.Mechanism, "failed")
	}
	for k, v := range s.RegistrationsBy {
		n(descRegs, v, k)
	}
	if s.RegistrationsBy != nil {
		n(descResets, s.PasswordResets)
	}
	for k, v := range s.TimeoutsBy {
		n(descTimeouts, v, k)
	}
	for i, k := range stanzaKinds {
		n(descStanzas, s.StanzasIn[i], k, "in")
		n(descStanzas, s.StanzasOut[i], k, "out")
	}
	h := func(d *prometheus.Desc, hs *hist.Snapshot) {
		ch <- prometheus.MustNewConstHistogram(d, hs.Count(), hs.Sum.Seconds(), hs.Cumulative())
	}
	if s.Links {
		g(descEdgeLinks, s.EdgeLinks)
		g(descEdgeChannels, s.EdgeChannels)
	}
	h(descRoutingLat, &s.RoutingLatency)
	if s.StoreCommit != nil {
		h(descStoreCommit, s.StoreCommit)
		n(descOfflineWrites, s.OfflineWrites)
		n(descArchiveWrites, s.ArchiveWrites)
		g(descPartialKeys, s.PartialKeyAccounts)
	}
}

// NewRegistry returns a registry with the Go runtime and process collectors and a
// collector that calls read at each scrape. read must be safe for concurrent use.
//
// Beside the default Go series it exports go_gc_heap_live_bytes, the heap the last
// collection found reachable, and go_gc_heap_goal_bytes, where the next one starts: the
// process's RSS moves anywhere between the two with the collector's cycle, so the live
// heap is the figure that follows the sessions a node holds, and the goal is what
// gc_percent and gc_min_headroom set.
func NewRegistry(read func() Counters) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/(live|goal):bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collector{read: read},
	)
	return reg
}

// Render gathers g and encodes it in the format negotiated from the request's Accept
// header (text/plain; version=0.0.4 when it names none we know). It returns the
// Content-Type and the body, encoded in memory.
func Render(g prometheus.Gatherer, accept string) (ctype string, body []byte, err error) {
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return "", nil, err
	}
	h := http.Header{}
	if accept != "" {
		h.Set("Accept", accept)
	}
	f := expfmt.Negotiate(h)
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, f)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return "", nil, err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return "", nil, err
		}
	}
	return string(f), b.Bytes(), nil
}

// DefaultAllow is who may scrape when the configuration names no networks: loopback.
var DefaultAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Allowed reports whether the client address ip (text) is in one of the networks.
// IPv4-mapped IPv6 addresses match as IPv4.
func Allowed(allow []netip.Prefix, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
