package engine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// sanOtherName is a GeneralName otherName with type-id oid and a string value (params:
// "utf8" for XmppAddr, "ia5" for SRVName).
func sanOtherName(t testing.TB, oid asn1.ObjectIdentifier, params, v string) asn1.RawValue {
	t.Helper()
	val, err := asn1.MarshalWithParams(v, params)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: val})
	id, _ := asn1.Marshal(oid)
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(id, wrapped...)}
}

func sanDNS(name string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(name)}
}

// issueSAN makes a CA and a leaf it signs whose subjectAltName holds names.
func issueSAN(t *testing.T, names ...asn1.RawValue) (leaf *x509.Certificate, roots *x509.CertPool) {
	t.Helper()
	return issueWith(t, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, names...)
}

// issueWith is issueSAN with a CA whose names are constrained to permitted DNS domains
// (none: unconstrained) and a leaf with the extended key usages eku (nil: none).
func issueWith(t *testing.T, permitted []string, eku []x509.ExtKeyUsage, names ...asn1.RawValue) (leaf *x509.Certificate, roots *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, PermittedDNSDomains: permitted}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	san, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "peer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     eku,
		ExtraExtensions: []pkix.Extension{{Id: oidSubjectAltName, Value: san}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(ca)
	return leaf, roots
}

// TestPeerCertIdentities: a peer server's certificate names its domain with a DNS-ID, an
// SRV-ID for _xmpp-server or _xmpps-server, or an XmppAddr that is the bare domain
// (RFC 6125 §6.4, RFC 6120 §13.7.1.4); other services' SRV-IDs, an account's XmppAddr and
// other domains do not, and neither does a chain to roots the server does not trust.
func TestPeerCertIdentities(t *testing.T) {
	for _, tc := range []struct {
		name   string
		san    func(t *testing.T) asn1.RawValue
		domain string
		want   bool
	}{
		{"dns-id", func(*testing.T) asn1.RawValue { return sanDNS("c.example") }, "c.example", true},
		{"dns-id wildcard", func(*testing.T) asn1.RawValue { return sanDNS("*.example") }, "c.example", true},
		{"dns-id wildcard, parent", func(*testing.T) asn1.RawValue { return sanDNS("*.example") }, "example", false},
		{"xmppaddr", func(t *testing.T) asn1.RawValue { return sanOtherName(t, oidXmppAddr, "utf8", "c.example") }, "c.example", true},
		{"xmppaddr, other domain", func(t *testing.T) asn1.RawValue { return sanOtherName(t, oidXmppAddr, "utf8", "c.example") }, "d.example", false},
		{"xmppaddr of an account", func(t *testing.T) asn1.RawValue { return sanOtherName(t, oidXmppAddr, "utf8", "admin@c.example") }, "c.example", false},
		{"xmppaddr, case", func(t *testing.T) asn1.RawValue { return sanOtherName(t, oidXmppAddr, "utf8", "C.Example") }, "c.example", true},
		{"srv-id", func(t *testing.T) asn1.RawValue { return sanOtherName(t, oidDNSSRV, "ia5", "_xmpp-server.c.example") }, "c.example", true},
		{"srv-id direct tls", func(t *testing.T) asn1.RawValue { return sanOtherName(t, oidDNSSRV, "ia5", "_xmpps-server.c.example") }, "c.example", true},
		{"srv-id for clients", func(t *testing.T) asn1.RawValue { return sanOtherName(t, oidDNSSRV, "ia5", "_xmpp-client.c.example") }, "c.example", false},
		{"srv-id, other domain", func(t *testing.T) asn1.RawValue { return sanOtherName(t, oidDNSSRV, "ia5", "_xmpp-server.c.example") }, "d.example", false},
		// An internationalized domain: A-labels in dNSName and SRVName (IA5), either form
		// in an XmppAddr (UTF-8); the domain is compared prepared (U-labels).
		{"dns-id, idn", func(*testing.T) asn1.RawValue { return sanDNS("xn--bcher-kva.example") }, "bücher.example", true},
		{"dns-id wildcard, idn", func(*testing.T) asn1.RawValue { return sanDNS("*.xn--bcher-kva.example") }, "muc.bücher.example", true},
		{"xmppaddr, idn", func(t *testing.T) asn1.RawValue { return sanOtherName(t, oidXmppAddr, "utf8", "bücher.example") }, "bücher.example", true},
		{"srv-id, idn", func(t *testing.T) asn1.RawValue {
			return sanOtherName(t, oidDNSSRV, "ia5", "_xmpp-server.xn--bcher-kva.example")
		}, "bücher.example", true},
		{"dns-id, other idn", func(*testing.T) asn1.RawValue { return sanDNS("xn--bcher-kva.example") }, "bucher.example", false},
		{"other otherName", func(t *testing.T) asn1.RawValue {
			return sanOtherName(t, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}, "utf8", "c.example") // a UPN
		}, "c.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf, roots := issueSAN(t, tc.san(t), sanDNS("unrelated.example"))
			if got := peerCertValid([]*x509.Certificate{leaf}, tc.domain, roots); got != tc.want {
				t.Fatalf("valid for %s: %v, want %v", tc.domain, got, tc.want)
			}
			_, other := issueSAN(t, sanDNS("c.example"))
			if peerCertValid([]*x509.Certificate{leaf}, tc.domain, other) {
				t.Fatal("valid against roots that did not sign it")
			}
		})
	}
}

// FuzzOtherNames reads any subjectAltName extension value: nothing may panic.
func FuzzOtherNames(f *testing.F) {
	san, _ := asn1.Marshal([]asn1.RawValue{sanOtherName(f, oidXmppAddr, "utf8", "c.example"),
		sanOtherName(f, oidDNSSRV, "ia5", "_xmpp-server.c.example"), sanDNS("c.example")})
	f.Add(san)
	f.Add([]byte{0x30, 0x03, 0xa0, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, v []byte) {
		cert := &x509.Certificate{Extensions: []pkix.Extension{{Id: oidSubjectAltName, Value: v}}}
		certNames(cert, "c.example", false)
	})
}

// TestPeerCertConstrained: XmppAddr and SRV-ID names, which X.509 name constraints do not
// cover, count only from a chain without name constraints; and a certificate made for
// another purpose only (e-mail) names no server.
func TestPeerCertConstrained(t *testing.T) {
	xmpp := func(d string) asn1.RawValue { return sanOtherName(t, oidXmppAddr, "utf8", d) }
	leaf, roots := issueWith(t, []string{"corp.example"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		sanDNS("host.corp.example"), xmpp("victim.example"))
	if !verifiedNames([]*x509.Certificate{leaf}, "host.corp.example", roots) {
		t.Error("a constrained CA's DNS-ID within its constraint refused")
	}
	if verifiedNames([]*x509.Certificate{leaf}, "victim.example", roots) {
		t.Error("a constrained CA's XmppAddr outside its constraint taken")
	}
	leaf, roots = issueWith(t, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, xmpp("c.example"))
	if verifiedNames([]*x509.Certificate{leaf}, "c.example", roots) {
		t.Error("an e-mail certificate named a server")
	}
	leaf, roots = issueWith(t, nil, nil, xmpp("c.example"))
	if !verifiedNames([]*x509.Certificate{leaf}, "c.example", roots) {
		t.Error("a certificate without extended key usages refused")
	}
	leaf, roots = issueWith(t, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, xmpp("c.example"))
	if !verifiedNames([]*x509.Certificate{leaf}, "c.example", roots) {
		t.Error("a clientAuth-only certificate refused")
	}
}
