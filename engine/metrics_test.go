package engine_test

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// scrape GETs /metrics from the web listener, from local address ip ("" for any).
func scrape(t *testing.T, addr, ip string) (int, string, string) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	defer cl.CloseIdleConnections()
	r, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode, r.Header.Get("Content-Type"), string(b)
}

// metricValue returns the value of the sample named by series (name with labels, as
// written in the text format).
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in:\n%s", series, body)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestIntegrationMetrics(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	a := srv.LoginPlain(t, "alice", "secret", "r")
	// Enough messages that the 1-in-64 latency sample takes some (all but surely: the
	// chance of none in 1000 is 1.5e-7).
	var msgs strings.Builder
	for i := 0; i < 1000; i++ {
		msgs.WriteString("<message to='alice@localhost/r' type='chat' id='m" + strconv.Itoa(i) + "'><body>x</body></message>")
	}
	a.Send(msgs.String())
	a.Expect("id='m999'")

	// A delivery is counted after its write is queued, so the last may be counted
	// just after the client read it: scrape until it is.
	code, ctype, body := scrape(t, srv.WebAddr(), "")
	for deadline := time.Now().Add(5 * time.Second); metricValue(t, body, `vireo_stanzas_total{direction="out",kind="message"}`) < 1000 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		code, ctype, body = scrape(t, srv.WebAddr(), "")
	}
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if !strings.HasPrefix(ctype, "text/plain; version=0.0.4") {
		t.Fatalf("Content-Type = %q", ctype)
	}
	for series, min := range map[string]float64{
		`vireo_logins_total{result="ok"}`: 1,
		`vireo_connections_open`:          1,
		`vireo_sessions_established`:      1,
		`vireo_tls_connections`:           1,
		`vireo_router_shards`:             1,
		`go_goroutines`:                   1,
		`vireo_logins_by_mechanism_total{mechanism="PLAIN",result="ok"}`: 1,
		`vireo_tls_handshakes_total{result="ok"}`:                        1,
		`vireo_stanzas_total{direction="in",kind="message"}`:             1000,
		`vireo_stanzas_total{direction="out",kind="message"}`:            1000,
		`vireo_routing_latency_seconds_count`:                            1,
		`vireo_store_commit_seconds_count`:                               1, // AddUser
	} {
		if v := metricValue(t, body, series); v < min {
			t.Errorf("%s = %v, want >= %v", series, v, min)
		}
	}
	for _, name := range []string{`vireo_logins_total{result="failed"}`, "vireo_stanzas_routed_total",
		"vireo_stanzas_dropped_total", "vireo_sessions_detached", "vireo_connections_refused_total",
		"vireo_accept_errors_total", "vireo_sessions_online", "process_open_fds",
		`vireo_tls_handshakes_total{result="failed"}`, `vireo_connections_rejected_total{reason="per_address"}`,
		`vireo_connections_timed_out_total{kind="ping"}`,
		"vireo_store_offline_writes_total", "vireo_store_archive_writes_total", `vireo_routing_latency_seconds_bucket{le="+Inf"}`} {
		metricValue(t, body, name)
	}
}

func TestIntegrationMetricsForbidden(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{Web: engine.Web{
		MetricsAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	if code, _, body := scrape(t, srv.WebAddr(), "127.0.0.2"); code != 403 {
		t.Fatalf("scrape from 127.0.0.2: status %d, want 403: %s", code, body)
	}
	if code, _, body := scrape(t, srv.WebAddr(), "127.0.0.1"); code != 200 {
		t.Fatalf("scrape from 127.0.0.1: status %d, want 200: %s", code, body)
	}
}
