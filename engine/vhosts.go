package engine

import (
	"strings"
	"sync"
	"time"

	"github.com/vireo-im/vireo/store/invites"
)

// What single virtual hosts do differently from the server-wide settings (config
// [vhosts."<domain>"], as Tigase's per-domain settings, ejabberd's host_config and
// Prosody's VirtualHost sections): open registration, its CAPTCHA, a bound on the accounts
// users create, and federation.

// HostPolicy is one virtual host's settings, nothing left unset.
type HostPolicy struct {
	Registration        bool
	RegistrationCaptcha bool
	// MaxAccounts bounds the accounts createAccount makes on the host (0: none).
	MaxAccounts int
	// NoFederation keeps the host and its services off federation, both ways.
	NoFederation bool
	// Isolated keeps the host's users and services to each other: no other host here,
	// no federation (router.SetIsolated).
	Isolated bool
}

// host is domain's policy: its entry in Hosts, or the server-wide settings.
func (cfg *Config) host(domain string) HostPolicy {
	if len(cfg.Hosts) > 0 {
		if p, ok := cfg.Hosts[domain]; ok {
			return p
		}
	}
	return HostPolicy{Registration: cfg.Registration, RegistrationCaptcha: cfg.RegistrationCaptcha}
}

// ErrHostFull refuses an account on a host that has HostPolicy.MaxAccounts; it is the
// pages' invites.ErrFull, worded for their users.
var ErrHostFull = invites.ErrFull

// hostCountTTL is how long a host's account count is trusted before the accounts are
// counted again. A user's own removal (XEP-0077) frees its place at once (forgetCount);
// others (the operator's, pruning) only lower the count, so until then a full host may
// refuse a registration it could take, never the other way round.
const hostCountTTL = time.Minute

// hostCounts holds the account counts of the hosts with a bound. mu also serializes
// the accounts made on such hosts, so that two registrations cannot both take the last
// place.
type hostCounts struct {
	mu sync.Mutex
	m  map[string]hostCount
}

type hostCount struct {
	n  int
	at time.Time
}

// reserveAccount is called by createAccount before it stores user: it returns a
// release func to call with whether the account was made, and ErrHostFull when the
// user's host has reached its bound. Hosts without one cost nothing.
func (s *Server) reserveAccount(user string) (func(made bool), error) {
	_, domain, _ := strings.Cut(user, "@")
	max := s.config().host(domain).MaxAccounts
	if max <= 0 {
		return func(bool) {}, nil
	}
	hc := &s.hostCounts
	hc.mu.Lock()
	c, ok := hc.m[domain]
	if !ok || time.Since(c.at) > hostCountTTL {
		n, err := s.countAccounts(domain)
		if err != nil {
			hc.mu.Unlock()
			return nil, err
		}
		c = hostCount{n: n, at: time.Now()}
		if hc.m == nil {
			hc.m = map[string]hostCount{}
		}
		hc.m[domain] = c
	}
	if c.n >= max {
		hc.mu.Unlock()
		return nil, ErrHostFull
	}
	return func(made bool) {
		if made {
			c.n++
			hc.m[domain] = c
		}
		hc.mu.Unlock()
	}, nil
}

// forgetCount drops the count of user's host after the server removed the account, so
// that the place it held is free at once.
func (s *Server) forgetCount(user string) {
	_, domain, _ := strings.Cut(user, "@")
	hc := &s.hostCounts
	hc.mu.Lock()
	delete(hc.m, domain)
	hc.mu.Unlock()
}

// countAccounts counts the accounts of domain (not guests'): one pass over every
// account, which the TTL above keeps to once a minute per bounded host at most.
func (s *Server) countAccounts(domain string) (int, error) {
	n := 0
	err := s.st.Accounts().List(func(user string) bool {
		if i := strings.LastIndexByte(user, '@'); i >= 0 && user[i+1:] == domain {
			n++
		}
		return true
	})
	return n, err
}

// hostFederates says whether domain, one this server serves (a host, a service of one, a
// component under one), may be reached from other servers and reach them.
func (s *Server) hostFederates(domain string) bool {
	host, ok := s.remoteHost(domain)
	if !ok {
		return false // no longer served (a reload took the host away)
	}
	cfg := s.config()
	if len(cfg.Hosts) == 0 {
		return true
	}
	p := cfg.host(host)
	return !p.NoFederation && !p.Isolated
}

// isolatedHosts lists the hosts with HostPolicy.Isolated, for the router.
func (cfg *Config) isolatedHosts() []string {
	var hs []string
	for d, p := range cfg.Hosts {
		if p.Isolated {
			hs = append(hs, d)
		}
	}
	return hs
}
