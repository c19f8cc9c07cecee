package engine_test

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

func TestWebForwardedParse(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}
	xff := &engine.Web{TrustedProxies: proxies}
	rfc := &engine.Web{TrustedProxies: proxies, ForwardedHeader: engine.ForwardedRFC7239}
	for _, tc := range []struct {
		name            string
		w               *engine.Web
		h               map[string]string
		ip, proto, host string
	}{
		{"none", xff, map[string]string{}, "", "", ""},
		{"xff one", xff, map[string]string{"x-forwarded-for": "198.51.100.7"}, "198.51.100.7", "", ""},
		// The client may put anything on the left; the hop next to the trusted chain counts.
		{"xff spoofed left", xff, map[string]string{"x-forwarded-for": "1.2.3.4, 198.51.100.7"}, "198.51.100.7", "", ""},
		{"xff through proxies", xff, map[string]string{"x-forwarded-for": "198.51.100.7, 10.1.1.1, 10.2.2.2"}, "198.51.100.7", "", ""},
		{"xff all proxies", xff, map[string]string{"x-forwarded-for": "10.1.1.1"}, "10.1.1.1", "", ""},
		// Named, but not usably: unknown, not the proxy (whose address is trusted).
		{"xff garbage", xff, map[string]string{"x-forwarded-for": "nonsense"}, "0.0.0.0", "", ""},
		{"xff empty", xff, map[string]string{"x-forwarded-for": ""}, "0.0.0.0", "", ""},
		{"xff v6 mapped", xff, map[string]string{"x-forwarded-for": "::ffff:198.51.100.7"}, "198.51.100.7", "", ""},
		{"xff proto host", xff, map[string]string{"x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https",
			"x-forwarded-host": "chat.example.org"}, "198.51.100.7", "https", "chat.example.org"},
		{"xff proto last hop", xff, map[string]string{"x-forwarded-proto": "https,http"}, "", "http", ""},
		{"bad host", xff, map[string]string{"x-forwarded-host": "evil'/><x"}, "", "", ""},
		{"bad proto", xff, map[string]string{"x-forwarded-proto": "gopher"}, "", "", ""},
		// A proxy that writes X-Forwarded-* passes a client's own Forwarded on: ignored.
		{"forwarded ignored", xff, map[string]string{"forwarded": `for=127.0.0.1;proto=https`, "x-forwarded-for": "198.51.100.8"}, "198.51.100.8", "", ""},
		{"forwarded alone ignored", xff, map[string]string{"forwarded": `for=10.1.1.1;proto=https`}, "", "", ""},
		{"forwarded", rfc, map[string]string{"forwarded": `for=198.51.100.7;proto=https;host=chat.example.org`},
			"198.51.100.7", "https", "chat.example.org"},
		{"forwarded v6 port", rfc, map[string]string{"forwarded": `for="[2001:db8::5]:4711";proto=http`}, "2001:db8::5", "http", ""},
		{"forwarded chain", rfc, map[string]string{"forwarded": `for=1.2.3.4;host=evil.example, for=198.51.100.7;proto=https;host=chat.example.org, for="[2001:db8:1::9]"`},
			"198.51.100.7", "https", "chat.example.org"},
		{"forwarded unknown", rfc, map[string]string{"forwarded": `for=unknown;proto=https`}, "0.0.0.0", "https", ""},
		{"x-forwarded-for ignored", rfc, map[string]string{"forwarded": `for=198.51.100.7`, "x-forwarded-for": "10.1.1.1"}, "198.51.100.7", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, proto, host := engine.Forwarded(tc.w, tc.h)
			if ip != tc.ip || proto != tc.proto || host != tc.host {
				t.Fatalf("got %q %q %q, want %q %q %q", ip, proto, host, tc.ip, tc.proto, tc.host)
			}
		})
	}
}

// rawHTTP dials addr from local address from, sends req and returns the connection with
// a reader of its answers.
func rawHTTP(t *testing.T, addr, from, req string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, req)
	return c, bufio.NewReader(c)
}

func TestWebForwardedHostMeta(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{Web: engine.Web{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	get := func(from, headers string) string {
		_, br := rawHTTP(t, srv.WebAddr(), from, "GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost:5280\r\n"+headers+"Connection: close\r\n\r\n")
		b, _ := io.ReadAll(br)
		return string(b)
	}
	for _, tc := range []struct{ name, from, headers, ws, bosh string }{
		{"direct", "127.0.0.1", "", "ws://localhost:5280/xmpp-websocket", "http://localhost:5280/http-bind"},
		{"x-forwarded trusted", "127.0.0.1", "X-Forwarded-Proto: https\r\nX-Forwarded-Host: chat.example.org\r\nX-Forwarded-For: 198.51.100.7\r\n",
			"wss://chat.example.org/xmpp-websocket", "https://chat.example.org/http-bind"},
		// A proxy that writes X-Forwarded-* passes a client's Forwarded on: not believed.
		{"forwarded from an x-forwarded proxy", "127.0.0.1", "Forwarded: for=198.51.100.7;proto=https;host=\"chat.example.org\"\r\n",
			"ws://localhost:5280/xmpp-websocket", "http://localhost:5280/http-bind"},
		{"x-forwarded untrusted", "127.0.0.2", "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n",
			"ws://localhost:5280/xmpp-websocket", "http://localhost:5280/http-bind"},
		{"forwarded untrusted", "127.0.0.2", "Forwarded: proto=https;host=evil.example\r\n",
			"ws://localhost:5280/xmpp-websocket", "http://localhost:5280/http-bind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := get(tc.from, tc.headers)
			if !strings.Contains(resp, "href='"+tc.ws+"'") || !strings.Contains(resp, "href='"+tc.bosh+"'") {
				t.Fatalf("want %s and %s in\n%s", tc.ws, tc.bosh, resp)
			}
		})
	}
}

// TestWebForwardedThrottle: the login throttle counts the address a trusted proxy names,
// and the connection's own address when anyone else sends the same header.
func TestWebForwardedThrottle(t *testing.T) {
	const limit = 2
	// 127.0.0.2 is on a trusted network (c2s.trusted_networks: its plain HTTP counts as
	// encrypted) but is no trusted proxy.
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, AuthFailLimit: limit,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
		Web:     engine.Web{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	srv.AddUser(t, "alice", "right")
	// attempt logs in through a WebSocket from local address from, with forwarding
	// headers naming client, and returns the SASL answer.
	// Each wrong guess names another account: the per-account slowdown is not under test.
	n := 0
	attempt := func(from, client, pass string) string {
		user := "alice"
		if pass == "wrong" {
			n++
			user = "nobody" + string(rune('a'+n))
		}
		c, br := rawHTTP(t, srv.WebAddr(), from, wsUpgrade+"Sec-WebSocket-Protocol: xmpp\r\nX-Forwarded-Proto: https\r\n"+
			"X-Forwarded-For: "+client+"\r\n\r\n")
		w := &wsClient{t: t, c: c, br: br}
		head := ""
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			head += l
			if l == "\r\n" {
				break
			}
		}
		if !strings.HasPrefix(head, "HTTP/1.1 101 ") {
			t.Fatalf("upgrade from %s: %q", from, head)
		}
		w.send(wsOpenEl)
		feats := w.expect("<stream:features")
		if !strings.Contains(feats, "<mechanism>PLAIN</mechanism>") {
			t.Fatalf("no PLAIN: %q", feats)
		}
		w.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
			base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "</auth>")
		for {
			_, p := w.read()
			if strings.Contains(p, "<failure") || strings.Contains(p, "<success") {
				return p
			}
		}
	}
	// Through the trusted proxy: the limit applies to 198.51.100.7 ...
	for i := 0; i < limit; i++ {
		if got := attempt("127.0.0.1", "198.51.100.7", "wrong"); !strings.Contains(got, "not-authorized") {
			t.Fatalf("attempt %d: %q", i, got)
		}
	}
	if got := attempt("127.0.0.1", "198.51.100.7", "wrong"); !strings.Contains(got, "temporary-auth-failure") {
		t.Fatalf("over the limit: %q", got)
	}
	// ... and not to another client behind the same proxy, nor to the proxy.
	if got := attempt("127.0.0.1", "198.51.100.8", "right"); !strings.Contains(got, "<success") {
		t.Fatalf("another client: %q", got)
	}
	// From an untrusted address the header is ignored: every attempt counts against
	// 127.0.0.2, whatever client it names.
	for i := 0; i < limit; i++ {
		if got := attempt("127.0.0.2", "198.51.100."+string(rune('1'+i)), "wrong"); !strings.Contains(got, "not-authorized") {
			t.Fatalf("untrusted attempt %d: %q", i, got)
		}
	}
	if got := attempt("127.0.0.2", "198.51.100.9", "wrong"); !strings.Contains(got, "temporary-auth-failure") {
		t.Fatalf("spoofed header escaped the throttle: %q", got)
	}
}

// TestWebForwardedUnauthLimit: connections through a trusted proxy count against the
// limit of unauthenticated connections of the client it names, not of the proxy.
func TestWebForwardedUnauthLimit(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{MaxUnauthAddr: 2,
		Web: engine.Web{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	upgrade := func(client string) string {
		_, br := rawHTTP(t, srv.WebAddr(), "127.0.0.1", wsUpgrade+"Sec-WebSocket-Protocol: xmpp\r\nX-Forwarded-For: "+client+"\r\n\r\n")
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("upgrade for %s: %v", client, err)
		}
		return l
	}
	// The proxy itself is not limited: more idle connections than the limit stay open.
	for i := 0; i < 3; i++ {
		rawHTTP(t, srv.WebAddr(), "127.0.0.1", "")
	}
	for i := 0; i < 2; i++ {
		if l := upgrade("198.51.100.7"); !strings.HasPrefix(l, "HTTP/1.1 101 ") {
			t.Fatalf("upgrade %d: %q", i, l)
		}
	}
	if l := upgrade("198.51.100.7"); !strings.HasPrefix(l, "HTTP/1.1 503 ") {
		t.Fatalf("third unauthenticated stream of one client: %q, want 503", l)
	}
	if l := upgrade("198.51.100.8"); !strings.HasPrefix(l, "HTTP/1.1 101 ") {
		t.Fatalf("another client: %q", l)
	}
	_, _, body := scrape(t, srv.WebAddr(), "127.0.0.1")
	if v := metricValue(t, body, `vireo_connections_rejected_total{reason="per_address"}`); v != 1 {
		t.Fatalf("rejected per_address = %v, want 1", v)
	}
}
