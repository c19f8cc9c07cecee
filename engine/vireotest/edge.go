package vireotest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
)

// Edge is a running edge server (engine.NewEdge) linked to a test core.
type Edge struct {
	Engine *engine.Server
	core   *Server
}

// StartEdge runs an edge for core (started with Options.LinkSecret) until the test ends:
// the core's four client and web listeners and an s2s one, on free loopback ports, the core's certificate,
// and a TLS link checked against it. The edge is linked when StartEdge returns.
func StartEdge(t testing.TB, core *Server, secret []byte) *Edge {
	t.Helper()
	pair, err := tls.X509KeyPair(core.CertPEM, core.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ls := []engine.Listener{{Name: "c2s", Addr: "127.0.0.1:0"}, {Name: "c2s-tls", Addr: "127.0.0.1:0", DirectTLS: true},
		{Name: "web", Addr: "127.0.0.1:0", WebSocket: true}, {Name: "web-tls", Addr: "127.0.0.1:0", WebSocket: true, DirectTLS: true},
		{Name: "s2s", Addr: "127.0.0.1:0", Kind: engine.KindS2S}}
	eng, err := engine.NewEdge(engine.Config{
		Listeners: ls,
		TLS:       &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"xmpp-client"}},
		Logger:    zerolog.Nop(),
		Loops:     2,
	}, engine.Edge{Core: core.Engine.Addr("link").String(), Secret: secret, Name: t.Name(),
		TLS: &tls.Config{RootCAs: core.pool, ServerName: core.domain, MinVersion: tls.VersionTLS13}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		t.Fatal(err)
	}
	e := &Edge{Engine: eng, core: core}
	t.Cleanup(e.Stop)
	return e
}

// Stop shuts the edge down; its clients' sockets close.
func (e *Edge) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.Engine.Shutdown(ctx)
}

// C2SAddr, TLSAddr, WebAddr and WebTLSAddr are the edge's listeners.
func (e *Edge) C2SAddr() string    { return e.Engine.Addr("c2s").String() }
func (e *Edge) TLSAddr() string    { return e.Engine.Addr("c2s-tls").String() }
func (e *Edge) WebAddr() string    { return e.Engine.Addr("web").String() }
func (e *Edge) WebTLSAddr() string { return e.Engine.Addr("web-tls").String() }

// S2SAddr is the edge's server-to-server listener, relayed to the core's s2s.
func (e *Edge) S2SAddr() string { return e.Engine.Addr("s2s").String() }

// DialTLS opens a raw direct-TLS connection to the edge.
func (e *Edge) DialTLS(t testing.TB) *RawConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", e.TLSAddr(), e.core.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &RawConn{t: t, c: c}
}

// Dial opens a raw plain connection to the edge's c2s listener.
func (e *Edge) Dial(t testing.TB) *RawConn {
	t.Helper()
	return DialAddr(t, e.C2SAddr())
}

// AuthPlain logs in over direct TLS to the edge with SASL PLAIN and restarts the stream;
// it returns the raw connection after the post-authentication features (before bind).
func (e *Edge) AuthPlain(t testing.TB, user, pass string) *RawConn {
	t.Helper()
	r := e.DialTLS(t)
	r.Send(e.core.Header())
	r.Expect("</stream:features>")
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "</auth>")
	r.Expect("<success")
	r.Send(e.core.Header())
	r.Expect("</stream:features>")
	return r
}
