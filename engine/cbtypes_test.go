package engine_test

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationChannelBindingTypes: XEP-0440. Before authentication the stream features
// name the channel bindings this connection can do, and only those: tls-exporter needs
// TLS 1.3 or TLS 1.2 with the extended master secret (RFC 9266), tls-server-end-point any
// TLS; a stream without TLS offers none, and no -PLUS mechanism.
func TestIntegrationChannelBindingTypes(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true})
	features := func(t *testing.T, r *vireotest.RawConn) string {
		t.Helper()
		r.Send(srv.Header())
		return r.Expect("</stream:features>")
	}
	for _, tc := range []struct {
		name     string
		version  uint16 // 0: plain TCP
		want     []string
		mustNot  []string
		plusMech bool
	}{
		{name: "TLS 1.3", version: tls.VersionTLS13, want: []string{"tls-exporter", "tls-server-end-point"}, plusMech: true},
		{name: "TLS 1.2", version: tls.VersionTLS12, want: []string{"tls-exporter", "tls-server-end-point"}, plusMech: true},
		{name: "plain TCP", mustNot: []string{"urn:xmpp:sasl-cb:0", "-PLUS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *vireotest.RawConn
			if tc.version == 0 {
				r = srv.Dial(t)
			} else {
				cfg := srv.ClientTLS()
				cfg.MinVersion, cfg.MaxVersion = tc.version, tc.version
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.TLSAddr(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				r = vireotest.NewRawConn(t, c)
			}
			got := features(t, r)
			for _, typ := range tc.want {
				if !strings.Contains(got, "urn:xmpp:sasl-cb:0") || !strings.Contains(got, "type=\""+typ+"\"") && !strings.Contains(got, "type='"+typ+"'") {
					t.Errorf("channel binding %s not offered in %s", typ, got)
				}
			}
			for _, s := range tc.mustNot {
				if strings.Contains(got, s) {
					t.Errorf("%s offered without TLS: %s", s, got)
				}
			}
			if tc.plusMech && !strings.Contains(got, "SCRAM-SHA-256-PLUS") {
				t.Errorf("no SCRAM-SHA-256-PLUS beside the channel bindings: %s", got)
			}
		})
	}
}
