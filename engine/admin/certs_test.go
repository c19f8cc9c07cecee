package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// newCert signs a certificate for subject with parent's key (itself when parent is nil).
func newCert(t *testing.T, subject pkix.Name, ca bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second),
		IsCA: ca, BasicConstraintsValid: ca, DNSNames: []string{"example.org"}}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func TestNewCertStatus(t *testing.T) {
	self, _ := newCert(t, pkix.Name{CommonName: "example.org"}, false, nil, nil)
	ca, caKey := newCert(t, pkix.Name{CommonName: "Test Intermediate"}, true, nil, nil)
	issued, _ := newCert(t, pkix.Name{CommonName: "example.org"}, false, ca, caKey)
	noCN, noCNKey := newCert(t, pkix.Name{Organization: []string{"Example CA"}}, true, nil, nil)
	fromNoCN, _ := newCert(t, pkix.Name{CommonName: "example.org"}, false, noCN, noCNKey)
	// Same subject as its issuer but signed by another key: not self-signed.
	lookalike, _ := newCert(t, pkix.Name{CommonName: "Test Intermediate"}, false, ca, caKey)
	for _, tc := range []struct {
		name       string
		file       string
		leaf       *x509.Certificate
		source     string
		issuer     string
		selfSigned bool
	}{
		{"self-signed file", "/etc/vireo/cert.pem", self, "file", "example.org", true},
		{"CA-issued file", "/etc/vireo/cert.pem", issued, "file", "Test Intermediate", false},
		{"acme", "", issued, "acme", "Test Intermediate", false},
		{"issuer without a common name", "/c.pem", fromNoCN, "file", "O=Example CA", false},
		{"issuer's subject, another key", "/c.pem", lookalike, "file", "Test Intermediate", false},
		{"nothing served", "", nil, "acme", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NewCertStatus("example.org", tc.file, tc.leaf)
			if got.Host != "example.org" || got.Source != tc.source || got.File != tc.file || got.Issuer != tc.issuer || got.SelfSigned != tc.selfSigned {
				t.Errorf("got %+v; want source %s, issuer %q, self-signed %v", got, tc.source, tc.issuer, tc.selfSigned)
			}
			if tc.leaf != nil && !got.NotAfter.Equal(tc.leaf.NotAfter) {
				t.Errorf("not after %s; want %s", got.NotAfter, tc.leaf.NotAfter)
			}
		})
	}
}
