package engine_test

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// BenchmarkLogin is one full client login over loopback: TCP connect, stream header,
// SCRAM-SHA-1 (salted password cached client-side, as a reconnecting client would), bind,
// close. Server and client share the process and the two cores.
// BenchmarkLogin: connect, authenticate, bind and close, over plain TCP and direct TLS
// with SCRAM-SHA-1, and as a guest (SASL ANONYMOUS: an account made and removed per login).
func BenchmarkLogin(b *testing.B) {
	for _, mode := range []struct {
		name, mech string
		m          loadgen.Mode
	}{{"plain", "SCRAM-SHA-1", loadgen.Plain}, {"tls", "SCRAM-SHA-1", loadgen.DirectTLS}, {"guest", "ANONYMOUS", loadgen.Plain}} {
		b.Run(mode.name, func(b *testing.B) {
			f := false
			// Guests log in at the pace of registrations per address: loopback is trusted here.
			srv := vireotest.Start(b, vireotest.Options{RequireTLS: &f, AuthFailLimit: 1 << 30, Anonymous: mode.mech == "ANONYMOUS",
				Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
			srv.AddUser(b, "bench", "password")
			addr := srv.C2SAddr()
			if mode.m == loadgen.DirectTLS {
				addr = srv.TLSAddr()
			}
			cfg := loadgen.Config{Addr: addr, Domain: srv.Domain(), Mode: mode.m, Mechanism: mode.mech, TLS: srv.ClientTLS()}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := loadgen.Dial(cfg, "bench", "password", "r"+strconv.Itoa(i))
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}
