package engine

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"

	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Server identities in a certificate (RFC 6120 §13.7.1.2, RFC 6125 §6.4, XEP-0178 §3). A
// peer server's certificate names its domain with any of: a DNS-ID (dNSName, wildcards
// as RFC 6125 §6.4.3 allows), an SRV-ID (RFC 4985 id-on-dnsSRV, "_xmpp-server.<domain>";
// "_xmpps-server.<domain>" for XEP-0368 direct TLS) or an XmppAddr (id-on-xmppAddr, RFC
// 6120 §13.7.1.4, the domain itself). Go's x509 reads only the first; the other two are
// otherName entries of the subjectAltName extension, read here.

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidXmppAddr       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5}
	oidDNSSRV         = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 7}
)

// otherNames returns the id-on-xmppAddr and id-on-dnsSRV values of cert's subjectAltName.
// A malformed extension yields nothing: x509 has parsed the certificate already, so this
// only ever drops identities, never invents one.
func otherNames(cert *x509.Certificate) (xmppAddrs, srvIDs []string) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var names []asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &names); err != nil || len(rest) > 0 {
			return nil, nil
		}
		for _, n := range names {
			// otherName [0] IMPLICIT SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }
			if n.Class != asn1.ClassContextSpecific || n.Tag != 0 || !n.IsCompound {
				continue
			}
			var oid asn1.ObjectIdentifier
			rest, err := asn1.Unmarshal(n.Bytes, &oid)
			if err != nil {
				continue
			}
			var wrapped asn1.RawValue
			if _, err := asn1.Unmarshal(rest, &wrapped); err != nil || wrapped.Class != asn1.ClassContextSpecific || wrapped.Tag != 0 {
				continue
			}
			var v string // UTF8String for xmppAddr, IA5String for SRVName
			if _, err := asn1.Unmarshal(wrapped.Bytes, &v); err != nil {
				continue
			}
			switch {
			case oid.Equal(oidXmppAddr):
				xmppAddrs = append(xmppAddrs, v)
			case oid.Equal(oidDNSSRV):
				srvIDs = append(srvIDs, v)
			}
		}
	}
	return xmppAddrs, srvIDs
}

// certNames reports whether cert, whose chain is verified, names domain (a prepared
// domain) as a server: DNS-ID, SRV-ID or XmppAddr. dnsOnly takes DNS-IDs only: X.509 name
// constraints, which Go checks, cover DNS-IDs and not the other two.
func certNames(cert *x509.Certificate, domain string, dnsOnly bool) bool {
	if cert.VerifyHostname(jid.ToASCII(domain)) == nil { // a dNSName holds A-labels
		return true
	}
	if dnsOnly {
		return false
	}
	xmppAddrs, srvIDs := otherNames(cert)
	for _, a := range xmppAddrs {
		// A server's XmppAddr is a bare domain; a JID with a localpart names an account.
		if d, err := jid.PrepareDomain(a); err == nil && d == domain {
			return true
		}
	}
	for _, s := range srvIDs {
		service, name, ok := strings.Cut(s, ".")
		if !ok || service != "_xmpp-server" && service != "_xmpps-server" {
			continue
		}
		if d, err := jid.PrepareDomain(name); err == nil && d == domain {
			return true
		}
	}
	return false
}

// verifiedNames reports whether certs (leaf first, as the peer sent them) chain to roots
// (nil: the system's) and the leaf names domain.
func verifiedNames(certs []*x509.Certificate, domain string, roots *x509.CertPool) bool {
	if len(certs) == 0 {
		return false
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	// A server certificate may carry serverAuth only (RFC 6125 leaves client use open and
	// public CAs are dropping clientAuth), so either is accepted, but not a chain made for
	// another purpose (e-mail, code signing). The name is checked apart: Go's DNSName
	// option knows DNS-IDs only.
	chains, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}})
	return err == nil && certNames(certs[0], domain, constrained(chains))
}

// constrained reports whether a certificate of the verified chains carries name
// constraints: a CA limited to some names could otherwise name any domain in an XmppAddr
// or SRV-ID, which the constraints do not reach.
func constrained(chains [][]*x509.Certificate) bool {
	for _, ch := range chains {
		for _, c := range ch {
			if c.PermittedDNSDomainsCritical || len(c.PermittedDNSDomains) > 0 || len(c.ExcludedDNSDomains) > 0 ||
				len(c.PermittedIPRanges) > 0 || len(c.ExcludedIPRanges) > 0 || len(c.PermittedEmailAddresses) > 0 ||
				len(c.ExcludedEmailAddresses) > 0 || len(c.PermittedURIDomains) > 0 || len(c.ExcludedURIDomains) > 0 {
				return true
			}
		}
	}
	return false
}
