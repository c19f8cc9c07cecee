package engine

import (
	"errors"
	"strings"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
)

// AccountManager is a PasswordChecker that also changes the site's accounts: the
// operator's program answering setpass, tryregister and removeuser (extauth.Program). The
// engine uses it only when Config.ExternalManage says so. Its methods block.
type AccountManager interface {
	SetPassword(user, domain, password string) (bool, error)
	TryRegister(user, domain, password string) (bool, error)
	RemoveUser(user, domain string) (bool, error)
}

// ErrSiteRefused is the operator's program refusing an in-band registration
// (Config.ExternalManage): a client gets not-allowed.
var ErrSiteRefused = errors.New("engine: the site refused the registration")

// manager is the program that takes in-band account changes, or nil.
func (s *Server) manager() AccountManager {
	cfg := s.config()
	if !cfg.ExternalManage {
		return nil
	}
	m, _ := cfg.External.(AccountManager)
	return m
}

// keptBySite says whether the site's program keeps acct's password: an account its first
// login created, that nobody gave keys of its own since.
func keptBySite(acct store.Account) bool { return acct.External && store.NoKeys(acct.Creds) }

var (
	_ module.Accounts     = (*Server)(nil)
	_ module.SiteAccounts = (*Server)(nil)
)

// SetPassword implements module.Accounts: a local account gets new SCRAM keys (its FAST
// tokens die with the old ones, fast.Fingerprint); an account the site keeps is changed by
// the site's program when Config.ExternalManage allows it, and its FAST tokens are
// forgotten, since their fingerprint cannot follow a password the server never holds.
func (s *Server) SetPassword(user, password string) error {
	acct, err := s.st.Accounts().Get(user)
	if err != nil {
		return err
	}
	if acct.Anonymous {
		return module.ErrGuest
	}
	if keptBySite(acct) {
		m := s.manager()
		if m == nil {
			return module.ErrManaged
		}
		local, domain, _ := strings.Cut(user, "@")
		ok, err := m.SetPassword(local, domain, password)
		if err != nil {
			return err
		}
		if !ok {
			return module.ErrManaged
		}
		return s.fast.Forget(user)
	}
	keys, err := creds.DeriveAll(password, creds.DefaultIter)
	if err != nil {
		return err
	}
	return s.st.Accounts().SetCredentials(user, keys)
}

// Remove implements module.Accounts: an account the site keeps is first removed by the
// site's program when Config.ExternalManage allows it (without, only what is stored here
// goes, and the user's next login creates the account again).
func (s *Server) Remove(user string) error {
	acct, err := s.st.Accounts().Get(user)
	if err != nil {
		return err
	}
	if m := s.manager(); m != nil && keptBySite(acct) {
		local, domain, _ := strings.Cut(user, "@")
		ok, err := m.RemoveUser(local, domain)
		if err != nil {
			return err
		}
		if !ok {
			return module.ErrManaged
		}
	}
	if err := s.st.Accounts().Delete(user); err != nil {
		return err
	}
	s.forgetCount(user)
	return nil
}

// SitePassword changes the password of user at the site, when the site's program keeps
// the account and takes changes (Config.ExternalManage): for the operator's tools
// (vireoctl passwd, the HTTP API, XEP-0133), which otherwise give an account keys of its
// own. handled is false for every other account. A refusal is module.ErrManaged.
func (s *Server) SitePassword(user, password string) (handled bool, err error) {
	if !s.siteKept(user) {
		return false, nil
	}
	return true, s.SetPassword(user, password)
}

// SiteRemove removes user at the site and here, likewise.
func (s *Server) SiteRemove(user string) (handled bool, err error) {
	if !s.siteKept(user) {
		return false, nil
	}
	return true, s.Remove(user)
}

// siteKept says whether user's password is kept by a site program that takes changes.
func (s *Server) siteKept(user string) bool {
	if s.manager() == nil {
		return false
	}
	acct, err := s.st.Accounts().Get(user)
	return err == nil && keptBySite(acct)
}
