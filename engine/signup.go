package engine

import (
	"errors"
	"strings"

	"github.com/vireo-im/vireo/engine/signup"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// The web sign-up page (engine/signup) creates accounts the way open in-band registration
// does: same switch (Config.Registration), budget per address, reserved names and site
// program (Config.ExternalManage).

var _ signup.Backend = (*Server)(nil)

// SignupSettings implements signup.Backend.
func (s *Server) SignupSettings(ip string) (open bool, domains []string, captcha bool) {
	cfg := s.config()
	for _, d := range cfg.Domains {
		if s.pageRegistration(cfg, d) {
			domains = append(domains, d)
			// One form serves every host it offers: it asks for the text of an image
			// when any of them wants it.
			captcha = captcha || cfg.host(d).RegistrationCaptcha
		}
	}
	if len(domains) == 0 {
		return false, nil, false
	}
	return true, domains, captcha && !cfg.trusted(ip)
}

// pageRegistration says whether the sign-up page creates accounts on d: a host with
// open registration that does not take guests (an account there would pass for one).
func (s *Server) pageRegistration(cfg *Config, d string) bool {
	return cfg.host(d).Registration && s.isLocal(d) && !cfg.anonymousHost(d)
}

// RegisterOpen implements signup.Backend: it creates username@domain for a client at ip,
// or returns signup.ErrClosed, invites.ErrBudget, invites.ErrBadUsername,
// invites.ErrBadPassword, invites.ErrNameTaken or a store error. It derives the SCRAM keys
// (PBKDF2), so it runs for tens of milliseconds. Safe for concurrent use.
func (s *Server) RegisterOpen(domain, username, password, ip string) (string, error) {
	if !s.pageRegistration(s.config(), domain) {
		return "", signup.ErrClosed
	}
	if err := s.pageAttempt(ip); err != nil {
		return "", err
	}
	local, err := jid.PrepareLocal(strings.TrimSpace(username))
	if err != nil || local == "" {
		return "", invites.ErrBadUsername
	}
	if n := len(password); n < invites.MinPagePassword || n > 1023 {
		return "", invites.ErrBadPassword
	}
	user := local + "@" + domain
	switch err := s.createAccount(user, password, nil, module.RegWeb, ip); {
	case errors.Is(err, store.ErrExists), errors.Is(err, ErrReservedName), errors.Is(err, ErrSiteRefused), errors.Is(err, invites.ErrNameTaken):
		return "", invites.ErrNameTaken
	case err != nil:
		return "", err
	}
	s.counts.regs[regWeb].Add(1)
	s.log.Info().Str("user", user).Str("remote", ip).Msg("account registered on the sign-up page")
	return user, nil
}
