package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Certs serves certificates by SNI and can be reloaded while connections hold the
// *tls.Config: the config asks Certs on every handshake, so a reload applies to the next one.
type Certs struct {
	cur atomic.Pointer[certSet]
	// first, when set, is asked before the files: ACME's certificates (SetFirst).
	first atomic.Pointer[func(name string) *tls.Certificate]
	// challenge answers TLS-ALPN-01 validation (SetChallenge).
	challenge atomic.Pointer[func(name string) *tls.Certificate]
}

// ACMEALPN is the ALPN protocol of ACME TLS-ALPN-01 validation (RFC 8737 §6.2).
const ACMEALPN = "acme-tls/1"

// SetChallenge answers ACME TLS-ALPN-01 validation: a ClientHello that offers only
// acme-tls/1 gets f's certificate for its SNI name, and a handshake that speaks nothing
// else (RFC 8737 §3). f returns nil for a name with no pending validation; such a
// handshake then fails as any with an unknown ALPN protocol does. Called on every such
// handshake, from any goroutine; it must not block.
// A nil f stops answering them.
func (cs *Certs) SetChallenge(f func(name string) *tls.Certificate) {
	if f == nil {
		cs.challenge.Store(nil)
		return
	}
	cs.challenge.Store(&f)
}

// SetFirst makes f the first source of certificates: GetCertificate asks it for the
// client's SNI name ("" without one) and falls back to the loaded files when it returns
// nil. f is called on every handshake, from any goroutine; it must not block. A nil f
// leaves the files alone.
func (cs *Certs) SetFirst(f func(name string) *tls.Certificate) {
	if f == nil {
		cs.first.Store(nil)
		return
	}
	cs.first.Store(&f)
}

type certSet struct {
	byName map[string]*tls.Certificate
	def    *tls.Certificate
	// files names the file each certificate was read from (Served).
	files map[*tls.Certificate]string
}

// LoadCerts reads the certificate named in c.
func LoadCerts(c *Config) (*Certs, error) {
	cs := new(Certs)
	if err := cs.Reload(c); err != nil {
		return nil, err
	}
	return cs, nil
}

// Reload replaces the served certificates with those named in c.
func (cs *Certs) Reload(c *Config) error {
	pair, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
	if err != nil {
		return fmt.Errorf("load certificate %s: %w", c.TLS.Cert, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("parse certificate %s: %w", c.TLS.Cert, err)
		}
	}
	set := &certSet{byName: map[string]*tls.Certificate{}, def: &pair, files: map[*tls.Certificate]string{&pair: c.TLS.Cert}}
	for _, n := range pair.Leaf.DNSNames {
		set.byName[strings.ToLower(n)] = &pair
	}
	for _, d := range c.Domains {
		if pair.Leaf.VerifyHostname(jid.ToASCII(d)) == nil {
			continue
		}
		// A host the configured certificate does not name (one added at runtime) is
		// served its own, when it has one (EnsureHostCerts).
		cert, key := c.HostCert(d)
		hp, err := tls.LoadX509KeyPair(cert, key)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("load certificate %s: %w", cert, err)
		}
		if hp.Leaf == nil {
			if hp.Leaf, err = x509.ParseCertificate(hp.Certificate[0]); err != nil {
				return fmt.Errorf("parse certificate %s: %w", cert, err)
			}
		}
		set.files[&hp] = cert
		for _, n := range hp.Leaf.DNSNames {
			if _, ok := set.byName[strings.ToLower(n)]; !ok {
				set.byName[strings.ToLower(n)] = &hp
			}
		}
	}
	cs.cur.Store(set)
	return nil
}

// HostCert names the self-signed certificate and key of a virtual host that the
// configured certificate does not cover: data_dir/certs/<host>.crt and .key, the names a
// first start gives the certificate of its first host.
func (c *Config) HostCert(domain string) (cert, key string) {
	dir := filepath.Join(c.DataDir, "certs")
	return filepath.Join(dir, domain+".crt"), filepath.Join(dir, domain+".key")
}

// EnsureHostCerts makes a self-signed certificate (EnsureCert) for every domain of c that
// the certificate at c.TLS.Cert does not cover and that has none of its own yet; it
// returns the domains it made one for. With ACME these stand in until the CA issues.
func EnsureHostCerts(c *Config) ([]string, error) {
	pair, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", c.TLS.Cert, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse certificate %s: %w", c.TLS.Cert, err)
		}
	}
	var made []string
	for _, d := range c.Domains {
		if leaf.VerifyHostname(jid.ToASCII(d)) == nil {
			continue
		}
		cert, key := c.HostCert(d)
		created, err := EnsureCert(cert, key, []string{d})
		if err != nil {
			return made, fmt.Errorf("certificate for %s: %w", d, err)
		}
		if created {
			made = append(made, d)
		}
	}
	return made, nil
}

// pick is the certificate a handshake for name gets, and the file it was read from: ""
// when the first source (SetFirst) supplied it. Certificates are found by their names'
// ASCII form (jid.ASCIIDomain), which SNI carries; a virtual host's name maps to it.
func (cs *Certs) pick(name string) (*tls.Certificate, string) {
	name = jid.ToASCII(name)
	if f := cs.first.Load(); f != nil {
		if c := (*f)(name); c != nil {
			return c, ""
		}
	}
	set := cs.cur.Load()
	c, ok := set.byName[name]
	if !ok {
		if i := strings.IndexByte(name, '.'); i > 0 {
			c, ok = set.byName["*"+name[i:]]
		}
	}
	if !ok {
		c = set.def
	}
	return c, set.files[c]
}

// Served is the certificate a handshake for name gets now, as TLSConfig picks it, and
// the file it was read from: "" when the first source (ACME) supplied it.
func (cs *Certs) Served(name string) (leaf *x509.Certificate, file string) {
	c, file := cs.pick(name)
	return c.Leaf, file
}

// TLSConfig returns a server config that picks certificates by SNI (exact name, then a
// wildcard for the parent, then the default). TLS 1.2 is the floor (RFC 7525 / RFC 9325).
func (cs *Certs) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, _ := cs.pick(h.ServerName)
			return c, nil
		},
		// Survives the per-listener clones (engine, upload), which change NextProtos only.
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			if len(h.SupportedProtos) != 1 || h.SupportedProtos[0] != ACMEALPN {
				return nil, nil
			}
			f := cs.challenge.Load()
			if f == nil {
				return nil, nil
			}
			c := (*f)(jid.ToASCII(h.ServerName))
			if c == nil {
				return nil, nil
			}
			return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*c}, NextProtos: []string{ACMEALPN}}, nil
		},
		// Session tickets keep per-connection state small and resumption cheap for mobile
		// reconnects; crypto/tls rotates the ticket keys itself.
		NextProtos: []string{"xmpp-client"},
	}
}
