package admin

import (
	"bytes"
	"crypto/x509"
	"time"
)

// CertStatus is the certificate served for one virtual host, and with ACME how its
// renewal goes.
type CertStatus struct {
	Host string `json:"host"`
	// Source is "acme" when the ACME manager supplied the certificate, else "file": the
	// configured one, or the host's own in data_dir/certs (File names it). With ACME on,
	// a host is "file" until its first certificate is issued.
	Source     string    `json:"source"`
	File       string    `json:"file,omitempty"`
	Issuer     string    `json:"issuer"`
	SelfSigned bool      `json:"self_signed"`
	NotAfter   time.Time `json:"not_after"`
	// ACME is set when ACME manages the host; the fields below are its.
	ACME bool `json:"acme"`
	// LastAttempt is when the last order began (zero: none since start), LastError why
	// it failed (empty: it succeeded), Failures how many failed in a row.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Failures    int       `json:"failures,omitempty"`
	// NextRenewal is when the next order is due: renewal, or the retry after a failure.
	// Zero until the ACME loop has looked at the host.
	NextRenewal time.Time `json:"next_renewal,omitzero"`
}

// CertReporter is what a running server's Backend adds to answer stats with Certs.
type CertReporter interface {
	Certs() []CertStatus
}

// NewCertStatus describes leaf, served for host: from file, or from ACME when file is
// "". The ACME fields are left to the caller.
func NewCertStatus(host, file string, leaf *x509.Certificate) CertStatus {
	c := CertStatus{Host: host, Source: "file", File: file}
	if file == "" {
		c.Source = "acme"
	}
	if leaf == nil {
		return c
	}
	c.Issuer = leaf.Issuer.CommonName
	if c.Issuer == "" {
		c.Issuer = leaf.Issuer.String()
	}
	// Not CheckSignatureFrom: it wants the parent to be a CA, and the self-signed
	// certificates vireo writes are not.
	c.SelfSigned = bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
	c.NotAfter = leaf.NotAfter
	return c
}
