package engine_test

import (
	"strconv"
	"testing"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// BenchmarkLogin is one full client login over loopback: TCP connect, stream header,
// SCRAM-SHA-1 (salted password cached client-side, as a reconnecting client would), bind,
// close. Server and client share the process and the two cores.
func BenchmarkLogin(b *testing.B) {
	for _, mode := range []struct {
		name string
		m    loadgen.Mode
	}{{"plain", loadgen.Plain}, {"tls", loadgen.DirectTLS}} {
		b.Run(mode.name, func(b *testing.B) {
			f := false
			srv := vireotest.Start(b, vireotest.Options{RequireTLS: &f, AuthFailLimit: 1 << 30})
			srv.AddUser(b, "bench", "password")
			addr := srv.C2SAddr()
			if mode.m == loadgen.DirectTLS {
				addr = srv.TLSAddr()
			}
			cfg := loadgen.Config{Addr: addr, Domain: srv.Domain(), Mode: mode.m, Mechanism: "SCRAM-SHA-1", TLS: srv.ClientTLS()}
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
