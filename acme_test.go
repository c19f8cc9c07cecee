package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/acmecert"
	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/config"
)

// acmeDomain is the virtual host of the ACME tests; the test DNS server sends every name
// to 127.0.0.1, so the CA validates against this process.
const acmeDomain = "vireo.test"

// loopbackDNS serves A 127.0.0.1 for every name over TCP (pebble's VA asks over TCP) but
// those under "nodns.", and empty answers for every other type (AAAA, CAA). It returns
// its address.
func loopbackDNS(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: l, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA && !strings.HasPrefix(qq.Name, "nodns.") {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return l.Addr().String()
}

// pebbleCA runs Let's Encrypt's pebble test CA in this process: its HTTP-01 validation
// goes to httpPort and its TLS-ALPN-01 validation to tlsPort on whatever loopbackDNS
// answers, and it issues certificates valid for validity. It returns the directory URL, a
// PEM file trusting the directory's HTTPS, and the pool of pebble's issuing root.
func pebbleCA(t *testing.T, httpPort, tlsPort int, validity time.Duration) (dir, rootsFile string, issued *x509.CertPool) {
	t.Helper()
	// No random 0-15 s sleep before each validation.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	logger := log.New(io.Discard, "pebble ", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "short-lived, for the renewal test", ValidityPeriod: uint64(validity / time.Second)},
	})
	validator := va.New(logger, httpPort, tlsPort, false, loopbackDNS(t), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(srv.Close)
	rootsFile = filepath.Join(t.TempDir(), "acme-server.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(rootsFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	issued = x509.NewCertPool()
	issued.AddCert(authority.GetRootCert(0).Cert)
	return srv.URL + wfe.DirectoryPath, rootsFile, issued
}

// acmeServer starts the real server (main's start) with [tls] acme on against dir, its
// plain web listener on webPort and its direct-TLS c2s listener on c2sPort. It returns
// the server and the address of the upload module's HTTPS listener.
func acmeServer(t *testing.T, challenge string, webPort, c2sPort int, dir, rootsFile string) (*server, string) {
	t.Helper()
	return startACME(t, acmeConfig(t, challenge, webPort, c2sPort, dir, rootsFile))
}

// acmeConfig writes acmeServer's config file and returns its path.
func acmeConfig(t *testing.T, challenge string, webPort, c2sPort int, dir, rootsFile string) string {
	t.Helper()
	tmp := t.TempDir()
	toml := fmt.Sprintf(`domains = [%q]
data_dir = %q
log_level = "info"

[c2s]
listen = []
tls_listen = ["127.0.0.1:%d"]

[web]
listen = ["127.0.0.1:%d"]
tls_listen = ["127.0.0.1:%d"]

[admin]
socket = %q

[tls]
acme = true
acme_email = "admin@vireo.test"
acme_directory = %q
acme_ca_roots = %q
acme_challenge = %q
# Longer than the test certificates live: the renewal comes at half their lifetime.
acme_renew_before = "720h"

[modules.upload]
listen = "127.0.0.1:0"
[modules.proxy65]
listen = "127.0.0.1:0"
`, acmeDomain, filepath.Join(tmp, "data"), c2sPort, webPort, freePort(t), filepath.Join(tmp, "admin.sock"), dir, rootsFile, challenge)
	path := filepath.Join(tmp, "vireo.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedServers lets a test close a server before its cleanup runs (Close is not
// idempotent: the store refuses a second one).
var closedServers sync.Map

func closeOnce(s *server) error {
	if _, done := closedServers.LoadOrStore(s, true); done {
		return nil
	}
	return s.Close()
}

// startACME starts the server from the config file at path (see acmeServer).
func startACME(t *testing.T, path string) (*server, string) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := testLogWriter{t: t, upload: make(chan string, 1)}
	lg := zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true}).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	s, err := start(cfg, lg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOnce(s) })
	select {
	case a := <-w.upload:
		return s, a
	case <-time.After(10 * time.Second):
		t.Fatal("the upload module did not log its listener")
		return nil, ""
	}
}

// testLogWriter sends the server's log to t and remembers the upload listener's address.
type testLogWriter struct {
	t      *testing.T
	upload chan string
}

func (w testLogWriter) Write(b []byte) (int, error) {
	if i := bytes.Index(b, []byte("upload: serving")); i >= 0 && w.upload != nil {
		if _, after, ok := strings.Cut(string(b), "listen="); ok {
			select {
			case w.upload <- strings.Fields(after)[0]:
			default:
			}
		}
	}
	if bytes.Contains(b, []byte("TLS handshake failed")) {
		// The probes below hang up right after the handshake.
		return len(b), nil
	}
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// leafFor handshakes with addr for SNI name and returns the chain it was served
// (unverified).
func leafFor(t *testing.T, addr, name string) []*x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"xmpp-client", "http/1.1"}})
	if err != nil {
		t.Fatalf("handshake with %s for %s: %v", addr, name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates
}

// verifies reports whether chain is valid for name under roots now.
func verifies(chain []*x509.Certificate, roots *x509.CertPool, name string) bool {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name})
	return err == nil
}

// waitIssued waits until addr serves acmeDomain a certificate that verifies under roots.
func waitIssued(t *testing.T, addr string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		chain := leafFor(t, addr, acmeDomain)
		if verifies(chain, roots, acmeDomain) {
			return chain[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pebble certificate within 60s; still serving %q issued by %q", chain[0].Subject, chain[0].Issuer)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestIntegrationACMETLSALPN validates with TLS-ALPN-01 against the direct-TLS c2s
// listener (nothing answers HTTP): the loop-driven TLS must answer a ClientHello offering
// only acme-tls/1 with the challenge certificate, and then serve the issued one.
func TestIntegrationACMETLSALPN(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a test CA and the whole server")
	}
	c2sPort := freePort(t)
	dir, rootsFile, pebbleRoots := pebbleCA(t, freePort(t), c2sPort, time.Hour)
	s, upload := acmeServer(t, "tls-alpn-01", freePort(t), c2sPort, dir, rootsFile)
	c2s := s.eng.Addr("c2s-tls").String()
	leaf := waitIssued(t, c2s, pebbleRoots)
	for _, n := range []string{"conference." + acmeDomain, "pubsub." + acmeDomain, "upload." + acmeDomain} {
		if err := leaf.VerifyHostname(n); err != nil {
			t.Errorf("issued certificate does not cover %s: %v", n, err)
		}
		for _, addr := range []string{c2s, s.eng.Addr("web-tls").String(), upload} {
			if got := leafFor(t, addr, n); !verifies(got, pebbleRoots, n) {
				t.Errorf("%s for SNI %s: served %v issued by %q", addr, n, got[0].DNSNames, got[0].Issuer)
			}
		}
	}
	// No challenge is pending now: acme-tls/1 alone gets no certificate.
	if c, err := tls.Dial("tcp", c2s, &tls.Config{ServerName: acmeDomain, InsecureSkipVerify: true,
		NextProtos: []string{"acme-tls/1"}}); err == nil {
		c.Close()
		t.Error("an acme-tls/1 handshake succeeded with no validation pending")
	}

	// A restart serves the stored certificate from the first handshake and orders nothing
	// (it has an hour left, renewal comes at half of it).
	path := s.cfg.Path()
	if err := closeOnce(s); err != nil {
		t.Fatal(err)
	}
	s2, _ := startACME(t, path)
	if got := leafFor(t, s2.eng.Addr("c2s-tls").String(), acmeDomain); got[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("after a restart: served serial %x issued by %q; want the stored %x", got[0].SerialNumber, got[0].Issuer, leaf.SerialNumber)
	}
	time.Sleep(2 * time.Second)
	if n := s2.acme.Load().Issued(); n != 0 {
		t.Errorf("after a restart with a fresh stored certificate: %d orders", n)
	}
	if c := certStatus(t, s2, acmeDomain); c.Source != "acme" || !c.NotAfter.Equal(leaf.NotAfter) || !c.LastAttempt.IsZero() ||
		c.NextRenewal.IsZero() || !c.NextRenewal.Before(c.NotAfter) {
		t.Errorf("stats after a restart: %+v; want the stored certificate, no order, the renewal time", c)
	}
}

// TestIntegrationACME runs the whole path against pebble: the server starts on its
// self-signed certificate without waiting for the CA, obtains one certificate for the
// host and its service domains with HTTP-01 answered by its own web listener, serves it
// on every TLS listener, stores it privately, and renews it in the background; a new
// connection then gets the new certificate with no restart.
func TestIntegrationACME(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a test CA and the whole server")
	}
	webPort := freePort(t)
	// Nothing listens on the TLS-ALPN-01 port: http-01 is what gets validated.
	dir, rootsFile, pebbleRoots := pebbleCA(t, webPort, freePort(t), 20*time.Second)
	began := time.Now()
	s, upload := acmeServer(t, "http-01", webPort, freePort(t), dir, rootsFile)
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("start took %s: it waited for the CA", d)
	}
	c2s := s.eng.Addr("c2s-tls").String()
	web := s.eng.Addr("web-tls").String()

	first := waitIssued(t, c2s, pebbleRoots)
	// Operators see it in vireoctl stats: issued by the CA, renewal due before expiry.
	c := certStatus(t, s, acmeDomain)
	if c.Source != "acme" || c.File != "" || c.Issuer != first.Issuer.CommonName || c.SelfSigned || !c.ACME ||
		!c.NotAfter.Equal(first.NotAfter) || !c.NotAfter.After(time.Now()) {
		t.Errorf("stats after issuance: %+v; want source acme, issuer %q, not after %s", c, first.Issuer.CommonName, first.NotAfter)
	}
	if c.LastAttempt.Before(began) || c.LastAttempt.After(time.Now()) || c.LastError != "" || c.Failures != 0 ||
		!c.NextRenewal.After(c.LastAttempt) || !c.NextRenewal.Before(c.NotAfter) {
		t.Errorf("stats after issuance: last attempt %s (error %q, %d failures), next %s; want an attempt since start, next before %s",
			c.LastAttempt, c.LastError, c.Failures, c.NextRenewal, c.NotAfter)
	}
	want := []string{acmeDomain, "conference." + acmeDomain, "pubsub." + acmeDomain, "upload." + acmeDomain}
	for _, n := range want {
		if err := first.VerifyHostname(n); err != nil {
			t.Errorf("issued certificate does not cover %s: %v (names %v)", n, err, first.DNSNames)
		}
		for _, addr := range []string{c2s, web, upload} {
			if got := leafFor(t, addr, n); !verifies(got, pebbleRoots, n) {
				t.Errorf("%s for SNI %s: served %v issued by %q", addr, n, got[0].DNSNames, got[0].Issuer)
			}
		}
	}
	// A client without SNI gets the first host's certificate.
	conn, err := tls.Dial("tcp", c2s, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.ConnectionState().PeerCertificates; !verifies(got, pebbleRoots, acmeDomain) {
		t.Errorf("no SNI: served %v issued by %q", got[0].DNSNames, got[0].Issuer)
	}
	conn.Close()

	// Storage: a private directory and private files.
	acmeDir := filepath.Join(s.DataDir(), "acme")
	if fi, err := os.Stat(acmeDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, mode %v; want 0700", acmeDir, err, fi.Mode().Perm())
	}
	for _, f := range []string{"account.key", acmeDomain + ".pem"} {
		if fi, err := os.Stat(filepath.Join(acmeDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v; want mode 0600", f, err)
		}
	}

	// Renewal: at half the 20 s lifetime the loop orders again; a new connection sees it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		chain := leafFor(t, c2s, acmeDomain)
		if got := chain[0]; got.SerialNumber.Cmp(first.SerialNumber) != 0 {
			if !verifies(chain, pebbleRoots, acmeDomain) {
				t.Fatalf("renewed certificate does not verify: %v issued by %q", got.DNSNames, got.Issuer)
			}
			if !got.NotAfter.After(first.NotAfter) {
				t.Errorf("renewed certificate expires %s, not after the first (%s)", got.NotAfter, first.NotAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate not renewed within 60s (first expires %s)", first.NotAfter)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if n := s.acme.Load().Issued(); n < 2 {
		t.Errorf("Issued() = %d after a renewal", n)
	}
	if c2 := certStatus(t, s, acmeDomain); !c2.LastAttempt.After(c.LastAttempt) || !c2.NotAfter.After(c.NotAfter) || c2.LastError != "" {
		t.Errorf("stats after the renewal: %+v; want a later attempt and expiry than %+v", c2, c)
	}
}

// certStatus asks the running server's admin socket for stats, as vireoctl stats does,
// and returns the certificate entry of host.
func certStatus(t *testing.T, s *server, host string) admin.CertStatus {
	t.Helper()
	resp, err := admin.Call(s.cfg.Admin.Socket, admin.Request{Op: "stats"})
	if err != nil || resp.Error != "" {
		t.Fatalf("stats: %v %s", err, resp.Error)
	}
	for _, c := range resp.Certs {
		if c.Host == host {
			return c
		}
	}
	t.Fatalf("stats: no certificate for %s in %+v", host, resp.Certs)
	return admin.CertStatus{}
}

// TestIntegrationACMEStatusFailure: when the CA cannot validate (nothing answers HTTP-01
// where it looks), stats keep showing the configured file certificate and report the
// failed order, its error and the retry.
func TestIntegrationACMEStatusFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a test CA and the whole server")
	}
	// The CA validates on a port nothing listens on.
	dir, rootsFile, _ := pebbleCA(t, freePort(t), freePort(t), time.Hour)
	s, _ := acmeServer(t, "http-01", freePort(t), freePort(t), dir, rootsFile)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c := certStatus(t, s, acmeDomain)
		if c.LastError != "" {
			t.Logf("reported: %+v", c)
			if c.Source != "file" || c.File != s.cfg.TLS.Cert || !c.SelfSigned || !c.ACME || c.Failures != 1 {
				t.Errorf("after a failed order: %+v; want the self-signed file, one failure", c)
			}
			// The first retry comes acmecert.RetryMin after the order ended.
			if d := c.NextRenewal.Sub(c.LastAttempt); d < acmecert.RetryMin || d > acmecert.RetryMin+time.Minute {
				t.Errorf("next order %s after the failed one; want about %s", d, acmecert.RetryMin)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed order reported within 60s: %+v", c)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestIntegrationACMEReload: a reload turns ACME on (certificates are ordered at once and
// served when issued, HTTP-01 answered by the running web listener) and off again (the
// configured certificate serves, nothing answers challenges), without a restart.
func TestIntegrationACMEReload(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a test CA and the whole server")
	}
	webPort := freePort(t)
	dir, rootsFile, pebbleRoots := pebbleCA(t, webPort, freePort(t), time.Hour)
	path := acmeConfig(t, "http-01", webPort, freePort(t), dir, rootsFile)
	set := func(on bool) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(strings.Replace(string(b), "acme = true", "acme = X", 1), "acme = false", "acme = X", 1)
		if err := os.WriteFile(path, []byte(strings.Replace(text, "acme = X", fmt.Sprintf("acme = %t", on), 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set(false)
	s, _ := startACME(t, path)
	c2s := s.eng.Addr("c2s-tls").String()
	if chain := leafFor(t, c2s, acmeDomain); verifies(chain, pebbleRoots, acmeDomain) {
		t.Fatal("a CA certificate without ACME")
	}
	if c := certStatus(t, s, acmeDomain); c.ACME {
		t.Fatalf("stats without ACME: %+v", c)
	}

	set(true)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	leaf := waitIssued(t, c2s, pebbleRoots)
	if c := certStatus(t, s, acmeDomain); !c.ACME || c.Source != "acme" || !c.NotAfter.Equal(leaf.NotAfter) {
		t.Errorf("stats with ACME turned on: %+v", c)
	}

	set(false)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if chain := leafFor(t, c2s, acmeDomain); verifies(chain, pebbleRoots, acmeDomain) {
		t.Fatalf("still the CA's certificate after ACME was turned off: %v", chain[0].Issuer)
	}
	if c := certStatus(t, s, acmeDomain); c.ACME || c.Source == "acme" {
		t.Fatalf("stats with ACME turned off: %+v", c)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/.well-known/acme-challenge/x", webPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a challenge with ACME off: %d", resp.StatusCode)
	}

	// And on again: the certificate obtained before serves at once from data_dir/acme.
	set(true)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := waitIssued(t, c2s, pebbleRoots); !got.NotAfter.Equal(leaf.NotAfter) {
		t.Errorf("turned on again: a new certificate (not after %s) instead of the stored one (%s)", got.NotAfter, leaf.NotAfter)
	}
}

// TestACMELeavesOutUnvalidated: a service name the CA cannot validate (no DNS for it) is
// left out of the host's certificate instead of keeping the host on its self-signed one;
// Status says what was left out and when the full set is tried again.
func TestACMELeavesOutUnvalidated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a test CA")
	}
	httpPort := freePort(t)
	dir, rootsFile, issued := pebbleCA(t, httpPort, freePort(t), 3*time.Hour) // renewal after the retry
	pemBytes, err := os.ReadFile(rootsFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	names := []string{acmeDomain, "nodns." + acmeDomain, "conference." + acmeDomain}
	m, err := acmecert.New(acmecert.Options{Directory: dir, Dir: filepath.Join(t.TempDir(), "acme"), Roots: roots,
		RenewBefore: 20 * time.Minute, Names: func() [][]string { return [][]string{names} },
		RetryMin: time.Hour, RetryMax: 2 * time.Hour, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ka, ok := m.HTTPChallenge(strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, ka)
	})}
	go web.Serve(ln)
	t.Cleanup(func() { web.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(90 * time.Second)
	for m.Certificate(acmeDomain) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no certificate within 90 s: %+v", m.Status(acmeDomain))
		}
		time.Sleep(100 * time.Millisecond)
	}
	c := m.Certificate(acmeDomain)
	leaf, inter := c.Leaf, x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(ic)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: issued, Intermediates: inter, DNSName: "conference." + acmeDomain}); err != nil {
		t.Fatalf("the certificate does not serve the validated service: %v", err)
	}
	if leaf.VerifyHostname("nodns."+acmeDomain) == nil {
		t.Fatal("the certificate names what the CA could not validate")
	}
	st := m.Status(acmeDomain)
	if !strings.Contains(st.LastError, "nodns."+acmeDomain) || st.Failures != 0 ||
		st.Next.Before(time.Now().Add(50*time.Minute)) || st.Next.After(time.Now().Add(70*time.Minute)) {
		t.Fatalf("status after the partial order: %+v; want nodns left out, the full set again in an hour", st)
	}
}
