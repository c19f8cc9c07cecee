package metrics

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
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
	c := collector{read: func() Counters {
		return Counters{ConnsOpen: 3, AuthOK: 5, AuthFail: 2, Routed: 7, Shards: 4}
	}}
	if probs, err := testutil.CollectAndLint(c); err != nil || len(probs) != 0 {
		t.Fatalf("lint: %v %v", err, probs)
	}
	want := `# HELP vireo_logins_total Authentications by result (ok, failed).
# TYPE vireo_logins_total counter
vireo_logins_total{result="failed"} 2
vireo_logins_total{result="ok"} 5
# HELP vireo_connections_open Open client connections on all listeners.
# TYPE vireo_connections_open gauge
vireo_connections_open 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "vireo_logins_total", "vireo_connections_open"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 13 {
		t.Fatalf("%d series, want 13", n)
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
	for _, s := range []string{"\nvireo_router_shards 2\n", "\ngo_goroutines ", "\nprocess_open_fds "} {
		if !strings.Contains(string(body), s) {
			t.Errorf("no %q in the body", s)
		}
	}
}
