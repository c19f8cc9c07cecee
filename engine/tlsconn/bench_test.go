package tlsconn

import (
	"crypto/tls"
	"testing"
)

// BenchmarkHandshake is one TLS 1.3 handshake (X25519, ECDSA P-256) with Go's client in the
// same process, both ends' CPU, then the move to the record layer.
func BenchmarkHandshake(b *testing.B) {
	cfg := Prepare(&tls.Config{Certificates: []tls.Certificate{testCert(b, false)}, MinVersion: tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519}})
	ccfg := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.X25519}}
	b.ReportAllocs()
	for b.Loop() {
		l, client := newLoop(b, cfg, 1<<16)
		go l.run(b)
		cc := tls.Client(client, ccfg)
		if err := cc.Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-l.hsDone; err != nil {
			b.Fatal(err)
		}
		if !l.srv.Info().Records {
			b.Fatal("not on the record layer")
		}
		client.Close()
		l.srv.Close()
	}
}
