package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	msasl "mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	mjid "mellium.im/xmpp/jid"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// vhostServer writes a config serving localhost with in-band registration and starts the
// real server (main's start) on loopback; it returns the config path.
func vhostServer(t *testing.T) (*server, string) {
	t.Helper()
	return vhostServerWith(t, "")
}

// vhostServerWith is vhostServer with extra tables at the end of the config.
func vhostServerWith(t *testing.T, extra string) (*server, string) {
	t.Helper()
	dir := t.TempDir()
	toml := fmt.Sprintf(`# The operator's own words, which a vhost change must keep.
domains = ["localhost"] # more with vireoctl vhost add
data_dir = %q
log_level = "warn"

[c2s]
listen = []
tls_listen = ["127.0.0.1:%d"]
registration = true

[web]
listen = []
tls_listen = []

[admin]
socket = %q

[modules.upload]
listen = "127.0.0.1:0"
[modules.proxy65]
listen = "127.0.0.1:0"
`, filepath.Join(dir, "data"), freePort(t), filepath.Join(dir, "admin.sock")) + extra
	path := filepath.Join(dir, "vireo.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return startVhost(t, path), path
}

func startVhost(t *testing.T, path string) *server {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := start(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOnce(s) })
	return s
}

// running is s's configuration, read as the server's own goroutines change it (a vhost
// change, a module setting, a reload): under its lock.
func running(s *server) *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// vhost runs one vhost request over the admin socket, as vireoctl does.
func vhost(t *testing.T, s *server, action, domain string) admin.Response {
	t.Helper()
	resp, err := admin.Call(running(s).Admin.Socket, admin.Request{Op: "vhost", Action: action, Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// hostTLS trusts only the self-signed certificate made for host, so a handshake proves
// the server serves host its own certificate.
func hostTLS(t *testing.T, s *server, host string) *tls.Config {
	t.Helper()
	cert, _ := running(s).HostCert(host)
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatalf("no certificate for %s: %v", host, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
}

// registerIBR creates user@host with XEP-0077 in-band registration over direct TLS.
func registerIBR(t *testing.T, s *server, host, user, pass string) {
	t.Helper()
	c, err := tls.Dial("tcp", s.eng.Addr("c2s-tls").String(), hostTLS(t, s, host))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", host)
	fmt.Fprintf(c, "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>%s</username><password>%s</password></query></iq>", user, pass)
	r := bufio.NewReader(c)
	var got strings.Builder
	for !strings.Contains(got.String(), "</iq>") && !strings.Contains(got.String(), "<iq type='result' id='reg1'/>") {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("registering %s@%s: %v; got %s", user, host, err, got.String())
		}
		got.WriteByte(b)
	}
	if g := got.String(); !strings.Contains(g, "type='result'") && !strings.Contains(g, `type="result"`) {
		t.Fatalf("registering %s@%s: %s", user, host, g)
	}
}

// xmppClient is a mellium session whose received stanzas are kept as text, and whose
// end (the error Serve returned) is reported once.
type xmppClient struct {
	s    *xmpp.Session
	mu   sync.Mutex
	got  strings.Builder
	done chan error
}

func loginMellium(t *testing.T, s *server, user, host, pass string) *xmppClient {
	t.Helper()
	return loginMelliumAt(t, s.eng.Addr("c2s-tls").String(), hostTLS(t, s, host), user, host, pass)
}

// loginMelliumAt logs in over direct TLS at addr, for a server in another process.
func loginMelliumAt(t *testing.T, addr string, tc *tls.Config, user, host, pass string) *xmppClient {
	t.Helper()
	ctx := vireotest.Context(t, 10*time.Second)
	conn, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	origin := mjid.MustParse(user + "@" + host + "/vhost")
	sess, err := xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{xmpp.SASL("", pass, msasl.ScramSha256), xmpp.BindResource()}}
	}))
	if err != nil {
		conn.Close()
		t.Fatalf("login %s@%s: %v", user, host, err)
	}
	c := &xmppClient{s: sess, done: make(chan error, 1)}
	t.Cleanup(func() { sess.Close(); conn.Close() })
	go func() {
		c.done <- sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var b strings.Builder
			e := xml.NewEncoder(&b)
			e.EncodeToken(*start)
			xmlstream.Copy(e, r)
			e.EncodeToken(start.End())
			e.Flush()
			c.mu.Lock()
			c.got.WriteString(b.String())
			c.mu.Unlock()
			return nil
		}))
	}()
	return c
}

func (c *xmppClient) send(t *testing.T, raw string) {
	t.Helper()
	ctx := vireotest.Context(t, 5*time.Second)
	if err := c.s.Send(ctx, xml.NewDecoder(strings.NewReader(raw))); err != nil {
		t.Fatalf("send %s: %v", raw, err)
	}
}

// text is what c received so far.
func (c *xmppClient) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got.String()
}

func (c *xmppClient) waitFor(t *testing.T, subs ...string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		g := c.got.String()
		c.mu.Unlock()
		if !slices.ContainsFunc(subs, func(s string) bool { return !strings.Contains(g, s) }) {
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("did not receive %q; got %s", subs, c.got.String())
}

// TestIntegrationVhost: a domain added through the admin socket gets its own certificate,
// registration, logins and a MUC service on conference.<domain>, and is written to the
// config file with the operator's comments kept; removed, its sessions end with the
// stream error host-gone and its service stops answering; added again, it survives a
// restart, and the account made before the removal is still there.
func TestIntegrationVhost(t *testing.T) {
	s, path := vhostServer(t)
	const host = "chat.test"
	if r := vhost(t, s, "add", "localhost"); !strings.Contains(r.Error, "already") {
		t.Fatalf("adding a served host: %+v", r)
	}
	if r := vhost(t, s, "add", "conference.localhost"); r.Error == "" {
		t.Fatal("a service domain was added as a host")
	}
	if r := vhost(t, s, "add", host); r.Error != "" {
		t.Fatalf("add: %s", r.Error)
	}
	if r := vhost(t, s, "list", ""); !slices.Equal(r.Lines, []string{"localhost", host}) {
		t.Fatalf("list: %+v", r)
	}
	file, _ := os.ReadFile(path)
	if !strings.Contains(string(file), `domains = ["localhost", "chat.test"] # more with vireoctl vhost add`) ||
		!strings.Contains(string(file), "# The operator's own words") {
		t.Fatalf("config file after add:\n%s", file)
	}

	registerIBR(t, s, host, "dave", "dave pw")
	if _, err := s.store.Accounts().Get("dave@" + host); err != nil {
		t.Fatalf("dave@%s after registration: %v", host, err)
	}
	dave := loginMellium(t, s, "dave", host, "dave pw")
	dave.send(t, "<iq type='get' id='items1' to='"+host+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	dave.waitFor(t, `id="items1"`, "conference."+host, "pubsub."+host, "upload."+host)
	room := "lobby@conference." + host
	dave.send(t, "<presence to='"+room+"/dave'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	dave.waitFor(t, `from="`+room+`/dave"`, `code="110"`, `code="201"`)
	dave.send(t, "<message to='"+room+"' type='groupchat' id='g1'><body>hello room</body></message>")
	dave.waitFor(t, "hello room")

	alice := loginMelliumLocal(t, s)
	if r := vhost(t, s, "remove", host); r.Error != "" {
		t.Fatalf("remove: %s", r.Error)
	}
	select {
	case err := <-dave.done:
		if err == nil || !strings.Contains(err.Error(), "host-gone") {
			t.Fatalf("dave's stream ended with %v, want host-gone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dave's stream still open after his host was removed")
	}
	alice.send(t, "<iq type='get' id='gone1' to='conference."+host+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	alice.waitFor(t, `id="gone1"`, "remote-server-not-found")
	select {
	case err := <-alice.done:
		t.Fatalf("alice on localhost lost her stream: %v", err)
	default:
	}
	if c, err := config.Load(path); err != nil || !slices.Equal(c.Domains, []string{"localhost"}) {
		t.Fatalf("config after remove: %v, %v", c, err)
	}
	if _, err := tls.Dial("tcp", s.eng.Addr("c2s-tls").String(), hostTLS(t, s, host)); err == nil {
		// Still the same file: the handshake for a host no longer served gets the default.
		t.Fatal("the removed host's certificate is still served")
	}

	if r := vhost(t, s, "add", host); r.Error != "" {
		t.Fatalf("add again: %s", r.Error)
	}
	closeOnce(s)
	s = startVhost(t, path)
	if got := s.Domains(); !slices.Equal(got, []string{"localhost", host}) {
		t.Fatalf("domains after restart: %v", got)
	}
	dave = loginMellium(t, s, "dave", host, "dave pw")
	dave.send(t, "<iq type='get' id='info2' to='conference."+host+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	dave.waitFor(t, `id="info2"`, `category="conference"`)
}

// loginMelliumLocal registers and logs in alice@localhost (the self-signed certificate of
// the first start names localhost).
func loginMelliumLocal(t *testing.T, s *server) *xmppClient {
	t.Helper()
	if err := admin.AddUser(s, "alice@localhost", "alice pw", 4096); err != nil {
		t.Fatal(err)
	}
	return loginMellium(t, s, "alice", "localhost", "alice pw")
}

// TestIntegrationVhostACME: with [tls] acme on, a host added at runtime gets a certificate
// from the CA for itself and its services without waiting for the renewal check; until
// then it is served a self-signed one of its own.
func TestIntegrationVhostACME(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a test CA and the whole server")
	}
	webPort := freePort(t)
	dir, rootsFile, pebbleRoots := pebbleCA(t, webPort, freePort(t), time.Hour)
	s, _ := acmeServer(t, "http-01", webPort, freePort(t), dir, rootsFile)
	c2s := s.eng.Addr("c2s-tls").String()
	waitIssued(t, c2s, pebbleRoots)

	const host = "chat.vireo.test"
	if r := vhost(t, s, "add", host); r.Error != "" {
		t.Fatalf("add: %s", r.Error)
	}
	names := []string{host, "conference." + host, "pubsub." + host, "upload." + host}
	deadline := time.Now().Add(60 * time.Second)
	for {
		chain := leafFor(t, c2s, host)
		if verifies(chain, pebbleRoots, host) {
			for _, n := range names {
				if err := chain[0].VerifyHostname(n); err != nil {
					t.Errorf("issued certificate does not cover %s: %v (names %v)", n, err, chain[0].DNSNames)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CA certificate for %s within 60s; serving %v issued by %q", host, chain[0].DNSNames, chain[0].Issuer)
		}
		if err := chain[0].VerifyHostname(host); err != nil {
			t.Fatalf("before issuance %s is served %v: %v", host, chain[0].DNSNames, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestIntegrationReloadFederation: turning federation on in the file opens its listener at
// the next reload, where a peer's stream is answered; turning it off closes it.
func TestIntegrationReloadFederation(t *testing.T) {
	s, path := vhostServerWith(t, "")
	orig, _ := os.ReadFile(path)
	if a := s.eng.Addr("s2s"); a != nil {
		t.Fatalf("an s2s listener with federation off: %v", a)
	}
	port := freePort(t)
	on := string(orig) + fmt.Sprintf("\n[s2s]\nenabled = true\nlisten = [\"127.0.0.1:%d\"]\n", port)
	if err := os.WriteFile(path, []byte(on), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		t.Fatalf("the s2s listener after turning federation on: %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' to='localhost' from='peer.example' version='1.0'>")
	buf := make([]byte, 4096)
	n, _ := io.ReadAtLeast(c, buf, 100)
	c.Close()
	if !strings.Contains(string(buf[:n]), "<stream:features>") && !strings.Contains(string(buf[:n]), "<stream:features") {
		t.Fatalf("a peer's stream: %q", buf[:n])
	}
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatal("the s2s listener still accepts after turning federation off")
	}
}
