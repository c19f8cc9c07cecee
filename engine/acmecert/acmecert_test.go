package acmecert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/acme"
)

// testCert makes a self-signed certificate for names valid from nb to na.
func testCert(t *testing.T, names []string, nb, na time.Time) ([][]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: nb, NotAfter: na}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{der}, key
}

func testManager(t *testing.T, dir, directory string, names [][]string) *Manager {
	t.Helper()
	m, err := New(Options{Directory: directory, Dir: dir, RenewBefore: 30 * 24 * time.Hour,
		Names: func() [][]string { return names }, RetryMin: time.Minute, RetryMax: 3 * time.Minute,
		Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestACMEStoredCertificate: a certificate stored by an earlier run is served from New
// on, for every name it covers and for clients without SNI, before the CA is asked.
func TestACMEStoredCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "acme")
	names := []string{"example.org", "conference.example.org"}
	now := time.Now()
	der, key := testCert(t, names, now.Add(-time.Hour), now.Add(89*24*time.Hour))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeCert(filepath.Join(dir, "example.org.pem"), der, key); err != nil {
		t.Fatal(err)
	}
	m := testManager(t, dir, "https://127.0.0.1:1/dir", [][]string{names})
	for _, n := range []string{"example.org", "conference.example.org", ""} {
		if m.Certificate(n) == nil {
			t.Errorf("Certificate(%q) = nil; want the stored one", n)
		}
	}
	if m.Certificate("other.example") != nil {
		t.Error("Certificate for an uncovered name is not nil")
	}
	at, due := m.renewAt(names, time.Now())
	if due {
		t.Error("a stored certificate with 89 days left is due")
	}
	if st := m.Status("example.org"); st.Cert == nil || !st.Cert.NotAfter.Equal(m.Certificate("example.org").Leaf.NotAfter) || !st.Next.IsZero() {
		t.Errorf("before a pass: Status = %+v; want the stored certificate, no next time yet", st)
	}
	// A pass finds nothing due: no attempt, the renewal time as the next.
	m.pass(context.Background(), time.Now())
	if st := m.Status("example.org"); !st.LastAttempt.IsZero() || st.LastError != "" || !st.Next.Equal(at) {
		t.Errorf("after a pass: Status = %+v; want no attempt, next %s", st, at)
	}
	for _, f := range []string{"account.key", "example.org.pem"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v; want mode 0600", f, err)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("%s mode %v; want 0700", dir, fi.Mode().Perm())
	}
}

// TestACMERenewAt: due when missing, when a name is not covered, and RenewBefore before
// expiry, at most half the lifetime.
func TestACMERenewAt(t *testing.T) {
	now := time.Now()
	names := []string{"example.org", "upload.example.org"}
	for _, tc := range []struct {
		name      string
		certNames []string
		nb, na    time.Time
		before    time.Duration
		wantDue   bool
		wantAt    time.Time // zero: not checked
	}{
		{name: "fresh", certNames: names, nb: now.Add(-time.Hour), na: now.Add(89 * 24 * time.Hour),
			before: 30 * 24 * time.Hour, wantAt: now.Add(59 * 24 * time.Hour)},
		{name: "within", certNames: names, nb: now.Add(-70 * 24 * time.Hour), na: now.Add(20 * 24 * time.Hour),
			before: 30 * 24 * time.Hour, wantDue: true},
		{name: "short-lived", certNames: names, nb: now.Add(-time.Hour), na: now.Add(9 * time.Hour),
			before: 30 * 24 * time.Hour, wantAt: now.Add(4 * time.Hour)},
		{name: "missing-name", certNames: names[:1], nb: now.Add(-time.Hour), na: now.Add(89 * 24 * time.Hour),
			before: 30 * 24 * time.Hour, wantDue: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			der, key := testCert(t, tc.certNames, tc.nb, tc.na)
			c, err := certFromDER(der, key)
			if err != nil {
				t.Fatal(err)
			}
			m := testManager(t, dir, "https://127.0.0.1:1/dir", [][]string{names})
			m.opts.RenewBefore = tc.before
			m.install(c, true)
			at, due := m.renewAt(names, time.Now())
			if due != tc.wantDue {
				t.Errorf("due = %v; want %v", due, tc.wantDue)
			}
			if !tc.wantAt.IsZero() && (at.Before(tc.wantAt.Add(-time.Minute)) || at.After(tc.wantAt.Add(time.Minute))) {
				t.Errorf("renew at %s; want about %s", at, tc.wantAt)
			}
		})
	}
}

// TestACMEBackoff: a CA that fails leaves the certificate nil (the server keeps its
// own) and the next try moves out, doubling up to RetryMax.
func TestACMEBackoff(t *testing.T) {
	ca := httptest.NewServer(http.NotFoundHandler())
	defer ca.Close()
	m := testManager(t, t.TempDir(), ca.URL+"/dir", [][]string{{"example.org"}})
	now := time.Now()
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 3 * time.Minute} {
		// Each pass looks after the previous retry time.
		wait := m.pass(context.Background(), now)
		if wait < want-5*time.Second || wait > want+5*time.Second {
			t.Errorf("failure %d: next pass in %s; want %s", i+1, wait, want)
		}
		f := m.fails["example.org"]
		if f.n != i+1 {
			t.Errorf("failure %d: counted %d", i+1, f.n)
		}
		st := m.Status("example.org")
		if st.Cert != nil || st.Failures != i+1 || st.LastError == "" || !st.Next.Equal(f.retry) ||
			st.LastAttempt.Before(now) || st.LastAttempt.After(f.retry) {
			t.Errorf("failure %d: Status = %+v; want no certificate, the error, next %s", i+1, st, f.retry)
		}
		now = m.fails["example.org"].retry.Add(time.Second)
	}
	// Before the retry time nothing is tried.
	before := m.fails["example.org"]
	m.pass(context.Background(), before.retry.Add(-30*time.Second))
	if m.fails["example.org"].n != before.n {
		t.Error("a pass before the retry time ordered again")
	}
	if m.Certificate("example.org") != nil || m.Issued() != 0 {
		t.Error("a failed order installed a certificate")
	}
	if st := m.Status("example.org"); st.Failures != before.n || st.LastError == "" {
		t.Errorf("a pass before the retry time changed the status: %+v", st)
	}
	// A host a reload removed is no longer reported.
	m.opts.Names = func() [][]string { return [][]string{{"other.example"}} }
	m.pass(context.Background(), before.retry.Add(-30*time.Second))
	if st := m.Status("example.org"); st.Failures != 0 || st.LastError != "" || !st.LastAttempt.IsZero() {
		t.Errorf("removed host: Status = %+v", st)
	}
}

// TestACMEExpiredNotServed: a certificate that ran out while installed (its renewal kept
// failing) is not served any more: the configured files are.
func TestACMEExpiredNotServed(t *testing.T) {
	m := testManager(t, filepath.Join(t.TempDir(), "acme"), "http://127.0.0.1:1/directory", [][]string{{"example.org"}})
	now := time.Now()
	der, key := testCert(t, []string{"example.org"}, now.Add(-90*24*time.Hour), now.Add(-time.Hour))
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		t.Fatal(err)
	}
	m.install(&tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf}, true)
	for _, name := range []string{"example.org", ""} {
		if c := m.Certificate(name); c != nil {
			t.Fatalf("%q: an expired certificate served, until %v", name, c.Leaf.NotAfter)
		}
	}
}

// TestACMEPrune: names a reload took away are no longer served from ACME (the files are),
// and the certificate for clients without SNI follows the first host.
func TestACMEPrune(t *testing.T) {
	m := testManager(t, filepath.Join(t.TempDir(), "acme"), "http://127.0.0.1:1/directory", nil)
	now := time.Now()
	install := func(names ...string) {
		der, key := testCert(t, names, now.Add(-time.Hour), now.Add(60*24*time.Hour))
		leaf, err := x509.ParseCertificate(der[0])
		if err != nil {
			t.Fatal(err)
		}
		m.install(&tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf}, names[0] == "a.org")
	}
	install("a.org", "conference.a.org")
	install("b.org")
	m.prune([][]string{{"a.org"}, {"b.org"}})
	if m.Certificate("conference.a.org") != nil || m.Certificate("a.org") == nil || m.Certificate("") != m.Certificate("a.org") {
		t.Fatal("after a.org lost its service")
	}
	m.prune([][]string{{"b.org"}})
	if m.Certificate("a.org") != nil || m.Certificate("") != m.Certificate("b.org") || m.Certificate("b.org") == nil {
		t.Fatal("after a.org went: its certificate still served, or the default not b.org's")
	}
}

// TestRetryAfter: a CA's rate-limit answer says when to come back (RFC 8555 §6.6), in
// seconds or as an HTTP date; other errors say nothing.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	limited := func(v string) error {
		return fmt.Errorf("new order: %w", &acme.Error{StatusCode: 429, ProblemType: "urn:ietf:params:acme:error:rateLimited",
			Header: http.Header{"Retry-After": []string{v}}})
	}
	for _, tc := range []struct {
		err  error
		want time.Duration
	}{
		{limited("3600"), time.Hour},
		{limited(now.Add(90 * time.Minute).Format(http.TimeFormat)), 90 * time.Minute},
		{limited(now.Add(-time.Minute).Format(http.TimeFormat)), 0},
		{limited("soon"), 0},
		{&acme.Error{StatusCode: 400}, 0},
		{errors.New("dial tcp: refused"), 0},
	} {
		if got := retryAfter(tc.err, now); got != tc.want {
			t.Errorf("retryAfter(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
