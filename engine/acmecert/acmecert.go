// Package acmecert obtains and renews certificates with ACME (RFC 8555) for the server's
// virtual hosts and their service subdomains.
//
// One certificate is ordered per virtual host, naming the host and every service domain
// under it (conference.example.org, upload.example.org, pubsub.example.org). Names are
// validated with HTTP-01 (RFC 8555 §8.3), where the plain web listener answers
// /.well-known/acme-challenge/<token> from HTTPChallenge, or with TLS-ALPN-01 (RFC 8737),
// where every TLS listener answers a ClientHello that offers only acme-tls/1 with the
// certificate from ALPNCertificate.
//
// A service name the CA cannot validate (a subdomain without DNS) does not cost the host
// its certificate: the order is made again without it, and the full set is tried again
// after the back-off. A CA's Retry-After (rate limits) is honoured.
//
// Run is the only goroutine that talks to the CA. It issues what is missing, renews what
// is due, and backs off per host after a failure; it never holds up startup, since
// Certificate returns nil for a name it has nothing for yet and the server then serves
// its configured (self-signed) certificate. Issued certificates are swapped in through an
// atomic map, so the next handshake on any live listener sees them. Status tells
// operators, per host, what is served, how the last order went and when the next is due.
//
// Storage, under Options.Dir (mode 0700): account.key, and <host>.pem holding the private
// key and the chain, each written 0600 through a rename.
package acmecert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/acme"

	"github.com/vireo-im/vireo/engine/durablefile"
)

// Tunables.
const (
	// RetryMin is the first wait after a failed issuance; it doubles per failure up to
	// RetryMax. A minute lets a DNS or port-forwarding fix take effect quickly, and six
	// hours stays well inside Let's Encrypt's failed-validation limit (5 per hour).
	RetryMin = time.Minute
	RetryMax = 6 * time.Hour
	// MaxSleep bounds the loop's sleep so a clock jump or a suspended machine is noticed.
	MaxSleep = 12 * time.Hour
	// IssueTimeout bounds one order, from new-order to the downloaded chain.
	IssueTimeout = 5 * time.Minute
)

// Challenge types (RFC 8555 §8.3, RFC 8737).
const (
	HTTP01    = "http-01"
	TLSALPN01 = "tls-alpn-01"
)

// ALPNProto is the ALPN protocol of TLS-ALPN-01 validation (RFC 8737 §6.2).
const ALPNProto = acme.ALPNProto

// Options configures a Manager.
type Options struct {
	// Directory is the ACME directory URL.
	Directory string
	// Email is the account contact; empty registers without one.
	Email string
	// Roots verifies the ACME server's HTTPS; nil: the system roots.
	Roots *x509.CertPool
	// Dir holds the account key and certificates; created 0700.
	Dir string
	// RenewBefore renews a certificate this long before expiry, at most half its lifetime.
	RenewBefore time.Duration
	// Names lists, per certificate, the names it covers, the virtual host first. It is
	// called on every pass of the loop, so a reload that adds a host is picked up.
	Names func() [][]string
	// Challenge is HTTP01 (the default) or TLSALPN01.
	Challenge string
	// RetryMin and RetryMax override the package defaults (tests).
	RetryMin, RetryMax time.Duration
	Logger             zerolog.Logger
}

// Manager holds ACME certificates and renews them. Its methods are safe for concurrent
// use; Run must be called once.
type Manager struct {
	opts   Options
	client *acme.Client
	// certs maps each covered name ("" for the first host: clients without SNI) to its
	// certificate; replaced whole on every issuance.
	certs atomic.Pointer[map[string]*tls.Certificate]
	mu    struct {
		sync.Mutex
		tokens map[string]string           // HTTP-01 token → key authorization, while an order waits
		alpn   map[string]*tls.Certificate // TLS-ALPN-01 name → challenge certificate, likewise
		// hosts is what the last pass saw of each host, for Status; Run writes it.
		hosts map[string]hostState
	}
	kick chan struct{}
	// issued counts certificates obtained since New (tests, stats).
	issued atomic.Int64

	// Owned by Run.
	registered bool
	fails      map[string]failure
	// left holds, per host, the service names the CA could not validate: the host's
	// certificate is ordered without them until their retry time.
	left map[string]leftOut
}

type failure struct {
	n     int
	retry time.Time
}

type leftOut struct {
	names []string
	n     int // orders in a row that left them out
	retry time.Time
	why   string
}

// leftOutError is an order that failed only because the CA could not validate some of
// its names other than the host's own (a service subdomain without DNS): the host and
// the rest can be ordered without them.
type leftOutError struct {
	names []string
	err   error
}

func (e *leftOutError) Error() string {
	return "could not validate " + strings.Join(e.names, ", ") + ": " + e.err.Error()
}

func (e *leftOutError) Unwrap() error { return e.err }

// without is names less those in drop.
func without(names, drop []string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(drop, n) })
}

// retryAfter is how long the CA asked to wait (an ACME error's Retry-After, RFC 8555
// §6.6, in seconds or as an HTTP date), or 0.
func retryAfter(err error, now time.Time) time.Duration {
	var ae *acme.Error
	if !errors.As(err, &ae) || ae.Header == nil {
		return 0
	}
	v := ae.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// hostState is one host's order history as Status reports it.
type hostState struct {
	attempt time.Time // when the last order began; zero: none since New
	err     string    // why it failed; empty if it succeeded
	fails   int
	next    time.Time
}

// Status is what the Manager knows of one host's certificate.
type Status struct {
	// Cert is the ACME certificate served for the host, nil until one is issued (or
	// found stored at New).
	Cert *x509.Certificate
	// LastAttempt is when the last order for the host began, zero if none was made since
	// New; LastError is why it failed, or which names the certificate was issued without
	// and why; empty if it succeeded whole.
	LastAttempt time.Time
	LastError   string
	// Failures counts the orders that failed in a row.
	Failures int
	// Next is when the next order is due: the renewal time, or the retry after a
	// failure. Zero until the loop has looked at the host (soon after start, or after
	// a reload added it).
	Next time.Time
}

// New loads (or creates) the account key and the stored certificates. It does not
// contact the CA.
func New(o Options) (*Manager, error) {
	if o.Directory == "" {
		return nil, errors.New("acmecert: no directory URL")
	}
	switch o.Challenge {
	case "":
		o.Challenge = HTTP01
	case HTTP01, TLSALPN01:
	default:
		return nil, fmt.Errorf("acmecert: unknown challenge %q (use %s or %s)", o.Challenge, HTTP01, TLSALPN01)
	}
	if o.RetryMin <= 0 {
		o.RetryMin = RetryMin
	}
	if o.RetryMax <= 0 {
		o.RetryMax = RetryMax
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("acmecert: %w", err)
	}
	// MkdirAll keeps the mode of a directory that exists; the keys below must not be
	// readable by others either way.
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("acmecert: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(o.Dir, "account.key"))
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: o.Roots, MinVersion: tls.VersionTLS12}
	m := &Manager{
		opts: o,
		client: &acme.Client{
			Key:          key,
			DirectoryURL: o.Directory,
			HTTPClient:   &http.Client{Transport: tr, Timeout: time.Minute},
			UserAgent:    "vireo",
		},
		kick:  make(chan struct{}, 1),
		fails: map[string]failure{},
		left:  map[string]leftOut{},
	}
	m.mu.tokens = map[string]string{}
	m.mu.alpn = map[string]*tls.Certificate{}
	m.mu.hosts = map[string]hostState{}
	empty := map[string]*tls.Certificate{}
	m.certs.Store(&empty)
	for i, names := range o.Names() {
		c, err := readCert(m.certPath(names[0]))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				o.Logger.Warn().Err(err).Str("host", names[0]).Msg("acme: stored certificate unusable; ordering a new one")
			}
			continue
		}
		if time.Now().After(c.Leaf.NotAfter) {
			continue
		}
		m.install(c, i == 0)
	}
	return m, nil
}

// Certificate returns the ACME certificate for name (lower case, no final dot; "" for a
// client without SNI), or nil when there is none yet. It never blocks.
func (m *Manager) Certificate(name string) *tls.Certificate {
	c := (*m.certs.Load())[name]
	if c != nil && c.Leaf != nil && time.Now().After(c.Leaf.NotAfter) {
		// Renewal failed until it ran out: the configured files serve instead of a
		// certificate every peer refuses.
		return nil
	}
	return c
}

// HTTPChallenge returns the key authorization for an HTTP-01 token of a pending order.
func (m *Manager) HTTPChallenge(token string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ka, ok := m.mu.tokens[token]
	return ka, ok
}

// ALPNCertificate returns the TLS-ALPN-01 challenge certificate for name (lower case)
// while an order for it waits, else nil.
func (m *Manager) ALPNCertificate(name string) *tls.Certificate {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.alpn[name]
}

// Kick makes Run check the certificates now (after a reload changed the hosts).
func (m *Manager) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Status reports on the certificate of host (a virtual host, as Options.Names lists it
// first).
func (m *Manager) Status(host string) Status {
	st := Status{}
	if c := m.Certificate(strings.ToLower(host)); c != nil {
		st.Cert = c.Leaf
	}
	m.mu.Lock()
	h := m.mu.hosts[host]
	m.mu.Unlock()
	st.LastAttempt, st.LastError, st.Failures, st.Next = h.attempt, h.err, h.fails, h.next
	return st
}

// note records what pass learnt of host; a host the pass did not order for keeps its
// last attempt.
func (m *Manager) note(host string, f func(*hostState)) {
	m.mu.Lock()
	h := m.mu.hosts[host]
	f(&h)
	m.mu.hosts[host] = h
	m.mu.Unlock()
}

// Issued is the number of certificates obtained since New.
func (m *Manager) Issued() int64 { return m.issued.Load() }

// Run issues and renews certificates until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	for {
		wait := m.pass(ctx, time.Now())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// pass looks at every host once as of now, orders what is missing or due, and returns
// how long to sleep before the next look. Time spent in orders moves its clock on, so
// a slow failing order does not make the next try due at once.
func (m *Manager) pass(ctx context.Context, now time.Time) time.Duration {
	began := time.Now()
	clock := func() time.Time { return now.Add(time.Since(began)) }
	next := MaxSleep
	soon := func(at time.Time) {
		if d := at.Sub(clock()); d < next {
			next = max(d, time.Second)
		}
	}
	all := m.opts.Names()
	m.forget(all)
	m.prune(all)
	for i, names := range all {
		host := names[0]
		t := clock()
		if f, ok := m.fails[host]; ok && t.Before(f.retry) {
			m.note(host, func(h *hostState) { h.next = f.retry })
			soon(f.retry)
			continue
		}
		want := names
		l, leaving := m.left[host]
		if leaving && t.Before(l.retry) {
			want = without(names, l.names)
		}
		if at, due := m.renewAt(want, t); !due {
			if leaving && l.retry.Before(at) {
				at = l.retry // then the full set is due: the certificate lacks those names
			}
			m.note(host, func(h *hostState) { h.next = at })
			soon(at)
			continue
		}
		tried := clock()
		c, err := m.issue(ctx, want)
		var lo *leftOutError
		if errors.As(err, &lo) && ctx.Err() == nil {
			// Some service names failed validation: the host and the rest are ordered
			// again without them (their authorizations are valid now, so that costs no
			// new validation), and the full set is tried again after a back-off.
			l.names, l.why = lo.names, lo.Error()
			l.n++
			l.retry = clock().Add(min(m.opts.RetryMin<<min(l.n-1, 20), m.opts.RetryMax))
			m.left[host] = l
			leaving = true
			want = without(want, lo.names)
			m.opts.Logger.Warn().Err(err).Strs("names", names).Strs("left_out", lo.names).Time("retry_at", l.retry).
				Msg("acme: ordering the certificate without the names the CA could not validate")
			c, err = m.issue(ctx, want)
		}
		if ctx.Err() != nil {
			return next
		}
		if err != nil {
			f := m.fails[host]
			f.n++
			wait := min(m.opts.RetryMin<<min(f.n-1, 20), m.opts.RetryMax)
			if ra := retryAfter(err, clock()); ra > wait {
				wait = min(ra, MaxSleep) // the CA's rate limit says when, not our back-off
			}
			f.retry = clock().Add(wait)
			m.fails[host] = f
			m.note(host, func(h *hostState) { *h = hostState{attempt: tried, err: err.Error(), fails: f.n, next: f.retry} })
			m.opts.Logger.Warn().Err(err).Strs("names", want).Int("failures", f.n).Str("retry_in", wait.String()).
				Msg("acme: certificate order failed; serving the previous certificate meanwhile")
			soon(f.retry)
			continue
		}
		delete(m.fails, host)
		why := ""
		if len(want) == len(names) {
			delete(m.left, host)
			leaving = false
		} else {
			why = "issued without " + strings.Join(l.names, ", ") + " (tried again at " + l.retry.UTC().Format(time.RFC3339) + "): " + l.why
		}
		// Noted before it is installed, so whoever sees the certificate served sees its
		// order in Status too.
		at, _ := m.due(c, want, clock())
		if leaving && l.retry.Before(at) {
			at = l.retry
		}
		m.note(host, func(h *hostState) { *h = hostState{attempt: tried, err: why, next: at} })
		m.install(c, i == 0)
		m.issued.Add(1)
		m.opts.Logger.Info().Strs("names", want).Time("not_after", c.Leaf.NotAfter).
			Str("issuer", c.Leaf.Issuer.CommonName).Msg("acme: certificate issued")
		soon(at)
	}
	return next
}

// prune drops the served names that no host has any more (a reload removed a host or a
// service), so that the configured files serve them rather than a certificate nothing
// renews, and makes the first host's certificate the one for clients without SNI.
func (m *Manager) prune(all [][]string) {
	want := map[string]bool{}
	for _, names := range all {
		for _, n := range names {
			want[strings.ToLower(n)] = true
		}
	}
	old := *m.certs.Load()
	next := make(map[string]*tls.Certificate, len(old))
	changed := false
	for k, v := range old {
		if k == "" {
			continue
		}
		if want[k] {
			next[k] = v
		} else {
			changed = true
		}
	}
	var def *tls.Certificate
	if len(all) > 0 && len(all[0]) > 0 {
		def = next[strings.ToLower(all[0][0])]
	}
	if def != nil {
		next[""] = def
	}
	if changed || def != old[""] {
		m.certs.Store(&next)
	}
}

// forget drops the status of hosts no longer in all (removed by a reload).
func (m *Manager) forget(all [][]string) {
	for h := range m.left {
		if !slices.ContainsFunc(all, func(names []string) bool { return names[0] == h }) {
			delete(m.left, h)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for h := range m.mu.hosts {
		if !slices.ContainsFunc(all, func(names []string) bool { return names[0] == h }) {
			delete(m.mu.hosts, h)
		}
	}
}

// renewAt is when the certificate for names is due, and whether it is due now: it is
// missing, does not cover every name, or is within RenewBefore (capped at half its
// lifetime, so a short-lived certificate is not renewed in a loop) of expiry.
func (m *Manager) renewAt(names []string, now time.Time) (time.Time, bool) {
	return m.due(m.Certificate(names[0]), names, now)
}

// due is renewAt for certificate c (nil: none).
func (m *Manager) due(c *tls.Certificate, names []string, now time.Time) (time.Time, bool) {
	if c == nil {
		return time.Time{}, true
	}
	for _, n := range names {
		if c.Leaf.VerifyHostname(n) != nil {
			return time.Time{}, true
		}
	}
	life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	at := c.Leaf.NotAfter.Add(-min(m.opts.RenewBefore, life/2))
	return at, !now.Before(at)
}

// install makes c the certificate for every name it covers (and for clients without SNI
// when def is set).
func (m *Manager) install(c *tls.Certificate, def bool) {
	old := *m.certs.Load()
	next := make(map[string]*tls.Certificate, len(old)+len(c.Leaf.DNSNames)+1)
	for k, v := range old {
		next[k] = v
	}
	for _, n := range c.Leaf.DNSNames {
		next[strings.ToLower(n)] = c
	}
	if def {
		next[""] = c
	}
	m.certs.Store(&next)
}

// issue runs one order for names: account, authorizations with HTTP-01, finalize with a
// fresh P-256 key, store.
func (m *Manager) issue(ctx context.Context, names []string) (*tls.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, IssueTimeout)
	defer cancel()
	if !m.registered {
		acct := &acme.Account{}
		if m.opts.Email != "" {
			acct.Contact = []string{"mailto:" + m.opts.Email}
		}
		_, err := m.client.Register(ctx, acct, acme.AcceptTOS)
		if err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
			return nil, fmt.Errorf("register account: %w", err)
		}
		m.registered = true
	}
	o, err := m.client.AuthorizeOrder(ctx, acme.DomainIDs(names...))
	if err != nil {
		return nil, fmt.Errorf("new order: %w", err)
	}
	var tokens, alpnNames []string
	defer func() {
		m.mu.Lock()
		for _, t := range tokens {
			delete(m.mu.tokens, t)
		}
		for _, n := range alpnNames {
			delete(m.mu.alpn, n)
		}
		m.mu.Unlock()
	}()
	// Accept every challenge first, then wait: the CA validates the names in parallel.
	var pending []*acme.Authorization
	for _, u := range o.AuthzURLs {
		z, err := m.client.GetAuthorization(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("authorization: %w", err)
		}
		if z.Status == acme.StatusValid {
			continue
		}
		i := slices.IndexFunc(z.Challenges, func(c *acme.Challenge) bool { return c.Type == m.opts.Challenge })
		if i < 0 {
			return nil, fmt.Errorf("%s: the CA offers no %s challenge", z.Identifier.Value, m.opts.Challenge)
		}
		ch := z.Challenges[i]
		name := strings.ToLower(z.Identifier.Value)
		if m.opts.Challenge == TLSALPN01 {
			c, err := m.client.TLSALPN01ChallengeCert(ch.Token, name)
			if err != nil {
				return nil, err
			}
			m.mu.Lock()
			m.mu.alpn[name] = &c
			m.mu.Unlock()
			alpnNames = append(alpnNames, name)
		} else {
			ka, err := m.client.HTTP01ChallengeResponse(ch.Token)
			if err != nil {
				return nil, err
			}
			m.mu.Lock()
			m.mu.tokens[ch.Token] = ka
			m.mu.Unlock()
			tokens = append(tokens, ch.Token)
		}
		if _, err := m.client.Accept(ctx, ch); err != nil {
			return nil, fmt.Errorf("%s: accept challenge: %w", z.Identifier.Value, err)
		}
		pending = append(pending, z)
	}
	var failed []string
	var why error
	for _, z := range pending {
		if _, err := m.client.WaitAuthorization(ctx, z.URI); err != nil {
			var ae *acme.AuthorizationError
			if name := strings.ToLower(z.Identifier.Value); errors.As(err, &ae) && name != names[0] {
				failed = append(failed, name)
				why = errors.Join(why, err)
				continue
			}
			return nil, fmt.Errorf("%s: %w", z.Identifier.Value, err)
		}
	}
	if len(failed) > 0 {
		return nil, &leftOutError{names: failed, err: why}
	}
	if o, err = m.client.WaitOrder(ctx, o.URI); err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	req := &x509.CertificateRequest{DNSNames: names}
	if len(names[0]) <= 64 { // ub-common-name (RFC 5280 appendix A)
		req.Subject = pkix.Name{CommonName: names[0]}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, req, key)
	if err != nil {
		return nil, err
	}
	// CreateCertFromOrder, not CreateOrderCert: the finalize answer need not carry the
	// order's Location (pebble's does not), and polling needs the order URL.
	der, _, err := m.client.CreateCertFromOrder(ctx, o, csr, true)
	if err != nil {
		return nil, fmt.Errorf("finalize: %w", err)
	}
	c, err := certFromDER(der, key)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if err := c.Leaf.VerifyHostname(n); err != nil {
			return nil, fmt.Errorf("issued certificate: %w", err)
		}
	}
	if err := writeCert(m.certPath(names[0]), der, key); err != nil {
		// Serve it anyway; the next start orders again.
		m.opts.Logger.Warn().Err(err).Msg("acme: could not store the certificate")
	}
	return c, nil
}

func (m *Manager) certPath(host string) string {
	return filepath.Join(m.opts.Dir, strings.ToLower(host)+".pem")
}

func certFromDER(der [][]byte, key crypto.Signer) (*tls.Certificate, error) {
	if len(der) == 0 {
		return nil, errors.New("acmecert: empty certificate chain")
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		return nil, fmt.Errorf("acmecert: %w", err)
	}
	return &tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf}, nil
}

func loadOrCreateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("acmecert: %s: no PEM key", path)
		}
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("acmecert: %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("acmecert: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})); err != nil {
		return nil, err
	}
	return k, nil
}

// readCert reads a <host>.pem written by writeCert.
func readCert(path string) (*tls.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var key crypto.Signer
	var der [][]byte
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		switch blk.Type {
		case "EC PRIVATE KEY":
			if key, err = x509.ParseECPrivateKey(blk.Bytes); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		case "CERTIFICATE":
			der = append(der, blk.Bytes)
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%s: no key", path)
	}
	c, err := certFromDER(der, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func writeCert(path string, der [][]byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	for _, d := range der {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return writeFile(path, out)
}

// writeFile replaces path with b, mode 0600, through a rename so a crash leaves the old
// file or the new one.
func writeFile(path string, b []byte) error {
	// A power loss must not leave an empty account key, with which the next start fails.
	if err := durablefile.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("acmecert: %w", err)
	}
	return nil
}
