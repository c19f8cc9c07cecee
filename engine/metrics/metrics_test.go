package metrics

import (
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/vireo-im/vireo/hist"
)

func TestAllowed(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tc := range []struct {
		allow []netip.Prefix
		ip    string
		want  bool
	}{
		{DefaultAllow, "127.0.0.1", true},
		{DefaultAllow, "127.9.9.9", true},
		{DefaultAllow, "::1", true},
		{DefaultAllow, "::ffff:127.0.0.1", true},
		{DefaultAllow, "192.0.2.1", false},
		{DefaultAllow, "", false},
		{DefaultAllow, "not an ip", false},
		{nets, "10.1.200.3", true},
		{nets, "10.2.0.1", false},
		{nets, "::ffff:10.1.0.1", true},
		{nets, "2001:db8::5", true},
		{nets, "127.0.0.1", false},
		{nil, "127.0.0.1", false},
	} {
		if got := Allowed(tc.allow, tc.ip); got != tc.want {
			t.Errorf("Allowed(%v, %q) = %v, want %v", tc.allow, tc.ip, got, tc.want)
		}
	}
}

func TestCollector(t *testing.T) {
	var lat, commit hist.Snapshot
	lat.Counts[0], lat.Counts[3], lat.Sum = 2, 1, 60*time.Microsecond // 2 at or below 5 µs, 1 in (25 µs, 50 µs]
	commit.Counts[hist.NBuckets-1], commit.Sum = 1, 3*time.Second
	c := collector{read: func() Counters {
		return Counters{ConnsOpen: 3, AuthOK: 5, AuthFail: 2, Routed: 7, Shards: 4, Shaped: 6,
			RegistrationsBy: map[string]int64{"open": 1, "invitation": 2, "invitation_page": 3}, PasswordResets: 4,
			Logins:         []Login{{Mechanism: "PLAIN", OK: 4, Failed: 2}, {Mechanism: "SCRAM-SHA-256", OK: 1}},
			TLSHandshakes:  [2]int64{6, 1},
			RefusedBy:      map[string]int64{"per_address": 2, "max_connections": 0},
			StanzasIn:      [3]int64{10, 3, 4},
			StanzasOut:     [3]int64{9, 5, 4},
			RoutingLatency: lat, StoreCommit: &commit, OfflineWrites: 2, ArchiveWrites: 8, PartialKeyAccounts: 3}
	}}
	if probs, err := testutil.CollectAndLint(c); err != nil || len(probs) != 0 {
		t.Fatalf("lint: %v %v", err, probs)
	}
	want := `# HELP vireo_logins_total Authentications by result (ok, failed).
# TYPE vireo_logins_total counter
vireo_logins_total{result="failed"} 2
vireo_logins_total{result="ok"} 5
# HELP vireo_connections_open Open connections on all listeners, HTTP ones included (a scrape over the web listener counts itself).
# TYPE vireo_connections_open gauge
vireo_connections_open 3
`
	want += `# HELP vireo_registrations_total Accounts created by their users, by how (open: in-band; invitation: in-band with a token; invitation_page: in a browser; web: the sign-up page).
# TYPE vireo_registrations_total counter
vireo_registrations_total{via="invitation"} 2
vireo_registrations_total{via="invitation_page"} 3
vireo_registrations_total{via="open"} 1
# HELP vireo_password_resets_total Password reset links used.
# TYPE vireo_password_resets_total counter
vireo_password_resets_total 4
# HELP vireo_senders_shaped_total Times a client sent faster than c2s.max_rate and its input was held back.
# TYPE vireo_senders_shaped_total counter
vireo_senders_shaped_total 6
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "vireo_logins_total", "vireo_connections_open", "vireo_senders_shaped_total",
		"vireo_registrations_total", "vireo_password_resets_total"); err != nil {
		t.Fatal(err)
	}
	want = `# HELP vireo_logins_by_mechanism_total Authentications by mechanism (SASL name; FAST for XEP-0484 tokens; component, dialback) and result.
# TYPE vireo_logins_by_mechanism_total counter
vireo_logins_by_mechanism_total{mechanism="PLAIN",result="failed"} 2
vireo_logins_by_mechanism_total{mechanism="PLAIN",result="ok"} 4
vireo_logins_by_mechanism_total{mechanism="SCRAM-SHA-256",result="failed"} 0
vireo_logins_by_mechanism_total{mechanism="SCRAM-SHA-256",result="ok"} 1
# HELP vireo_tls_handshakes_total Inbound TLS handshakes by result (ok, failed).
# TYPE vireo_tls_handshakes_total counter
vireo_tls_handshakes_total{result="failed"} 1
vireo_tls_handshakes_total{result="ok"} 6
# HELP vireo_connections_rejected_total Connections refused at accept, by reason.
# TYPE vireo_connections_rejected_total counter
vireo_connections_rejected_total{reason="max_connections"} 0
vireo_connections_rejected_total{reason="per_address"} 2
# HELP vireo_stanzas_total Stanzas by kind and direction (in: from local clients; out: delivered to local sessions).
# TYPE vireo_stanzas_total counter
vireo_stanzas_total{direction="in",kind="iq"} 4
vireo_stanzas_total{direction="in",kind="message"} 10
vireo_stanzas_total{direction="in",kind="presence"} 3
vireo_stanzas_total{direction="out",kind="iq"} 4
vireo_stanzas_total{direction="out",kind="message"} 9
vireo_stanzas_total{direction="out",kind="presence"} 5
# HELP vireo_store_archive_writes_total Writes to the message archive (XEP-0313 MAM).
# TYPE vireo_store_archive_writes_total counter
vireo_store_archive_writes_total 8
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "vireo_logins_by_mechanism_total",
		"vireo_tls_handshakes_total", "vireo_connections_rejected_total", "vireo_stanzas_total", "vireo_store_archive_writes_total"); err != nil {
		t.Fatal(err)
	}
	_, body, err := Render(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		return reg.Gather()
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"\nvireo_routing_latency_seconds_bucket{le=\"5e-06\"} 2\n",
		"\nvireo_routing_latency_seconds_bucket{le=\"2.5e-05\"} 2\n",
		"\nvireo_routing_latency_seconds_bucket{le=\"5e-05\"} 3\n",
		"\nvireo_routing_latency_seconds_bucket{le=\"+Inf\"} 3\n",
		"\nvireo_routing_latency_seconds_sum 6e-05\n",
		"\nvireo_routing_latency_seconds_count 3\n",
		"\nvireo_store_commit_seconds_bucket{le=\"2.5\"} 0\n",
		"\nvireo_store_commit_seconds_count 1\n",
		"\nvireo_store_offline_writes_total 2\n",
		"\nvireo_accounts_partial_keys 3\n",
	} {
		if !strings.Contains(string(body), s) {
			t.Errorf("no %q in\n%s", s, body)
		}
	}
	// 14 + 4 logins + 2 TLS + 2 refusals + 6 stanzas + 2 histograms + 2 store counters
	// + the accounts with partial keys.
	if n := testutil.CollectAndCount(c); n != 38 {
		t.Fatalf("%d series, want 38", n)
	}
	edge := collector{read: func() Counters {
		return Counters{Edge: true, LinkUp: true, LinkQueued: 12, CoreConns: 2, ConnsOpen: 3, RefusedBy: map[string]int64{"no_core": 4}}
	}}
	if err := testutil.CollectAndCompare(edge, strings.NewReader(`# HELP vireo_edge_link_up 1 while this edge is linked to its core.
# TYPE vireo_edge_link_up gauge
vireo_edge_link_up 1
# HELP vireo_edge_link_queued_bytes Bytes waiting to be written to the core.
# TYPE vireo_edge_link_queued_bytes gauge
vireo_edge_link_queued_bytes 12
# HELP vireo_edge_core_connections Outbound federation connections this edge holds for its core.
# TYPE vireo_edge_core_connections gauge
vireo_edge_core_connections 2
`), "vireo_edge_link_up", "vireo_edge_link_queued_bytes", "vireo_edge_core_connections"); err != nil {
		t.Fatal(err)
	}
	// Connections, TLS and refusals (4 + 2 + 1), link (3); nothing of sessions or routing.
	if n := testutil.CollectAndCount(edge); n != 10 {
		t.Fatalf("an edge reports %d series, want 10", n)
	}
	core := collector{read: func() Counters { return Counters{Links: true, EdgeLinks: 2, EdgeChannels: 7} }}
	if err := testutil.CollectAndCompare(core, strings.NewReader(`# HELP vireo_edge_channels Client connections relayed by the linked edges.
# TYPE vireo_edge_channels gauge
vireo_edge_channels 7
# HELP vireo_edge_links Edges linked to this core (split deployment).
# TYPE vireo_edge_links gauge
vireo_edge_links 2
`), "vireo_edge_links", "vireo_edge_channels"); err != nil {
		t.Fatal(err)
	}
}

func TestRender(t *testing.T) {
	reg := NewRegistry(func() Counters { return Counters{Shards: 2} })
	ctype, body, err := Render(reg, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ctype, "text/plain; version=0.0.4") {
		t.Fatalf("Content-Type = %q", ctype)
	}
	for _, s := range []string{"\nvireo_router_shards 2\n", "\ngo_goroutines ", "\nprocess_open_fds ", "\ngo_gc_heap_live_bytes ", "\ngo_gc_heap_goal_bytes "} {
		if !strings.Contains(string(body), s) {
			t.Errorf("no %q in the body", s)
		}
	}
}

// TestDashboardMetrics: every vireo_ series the Grafana dashboard queries is one the
// collector exports.
func TestDashboardMetrics(t *testing.T) {
	b, err := os.ReadFile("../../tools/grafana/vireo.json")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 64)
	collector{}.Describe(ch)
	close(ch)
	known := map[string]bool{}
	for d := range ch {
		m := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String())
		known[m[1]] = true
	}
	names := regexp.MustCompile(`vireo_[a-z_]+`).FindAllString(string(b), -1)
	if len(names) < 10 {
		t.Fatalf("only %d vireo_ names in the dashboard", len(names))
	}
	for _, n := range names {
		base := n
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if strings.HasSuffix(n, suf) && known[strings.TrimSuffix(n, suf)] {
				base = strings.TrimSuffix(n, suf)
			}
		}
		if !known[base] {
			t.Errorf("the dashboard queries %s, which is not exported", n)
		}
	}
}

// BenchmarkRender is one scrape's gathering and encoding, without the HTTP exchange.
func BenchmarkRender(b *testing.B) {
	var lat hist.Snapshot
	reg := NewRegistry(func() Counters {
		return Counters{Shards: 64, RoutingLatency: lat, StoreCommit: &lat, RefusedBy: map[string]int64{"per_address": 1},
			Logins: []Login{{Mechanism: "PLAIN", OK: 1}}}
	})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := Render(reg, ""); err != nil {
			b.Fatal(err)
		}
	}
}
