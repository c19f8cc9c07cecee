package engine

import (
	"errors"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Invitations redeemed outside XMPP: the XEP-0401 landing page (engine/invitepage) lets
// someone whose client cannot register with a token create the account in a browser, and
// a password reset link's page sets a new password. They follow the rules of XEP-0445
// registration on a stream (onPreauth, onRegister): the same per-address budget, the same
// reservation and single-use checks, the same createAccount.

// pageAttempt counts one attempt from a page at client address ip against the address's
// registration budget, as a wrong token on a stream counts, so that tokens cannot be
// guessed through the pages faster than through XMPP; trusted networks are exempt.
func (s *Server) pageAttempt(ip string) error {
	cfg, now := s.config(), time.Now()
	if cfg.trusted(ip) {
		return nil
	}
	key := "register:" + addrKey(ip) // per /64 for IPv6, as SASL failures
	if s.throttle.blocked(key, cfg.RegisterLimit, now) {
		return invites.ErrBudget
	}
	s.throttle.fail(key, now)
	return nil
}

// Invitation returns the invitation token stands for when it is valid now and for one of
// the server's hosts (invites.ErrInvalid otherwise), for a page to describe it.
func (s *Server) Invitation(token string) (invites.Invite, error) {
	inv, err := invites.Check(s.st.Table(invites.Table), token, time.Now())
	if err != nil {
		return invites.Invite{}, err
	}
	if !s.isLocal(inv.Domain) {
		return invites.Invite{}, invites.ErrInvalid
	}
	return inv, nil
}

// RegisterInvited creates the account an invitation allows, for a client at address ip:
// username is ignored when the invitation names the account. It returns the new bare
// JID, or invites.ErrBudget, invites.ErrInvalid (unknown, expired, spent, or an
// invitation that creates no account), invites.ErrBadUsername, invites.ErrBadPassword,
// invites.ErrNameTaken or a store error. It derives the SCRAM keys (PBKDF2), so it runs
// for tens of milliseconds. Safe for concurrent use.
func (s *Server) RegisterInvited(token, username, password, ip string) (string, error) {
	if err := s.pageAttempt(ip); err != nil {
		return "", err
	}
	inv, err := s.Invitation(token)
	if err != nil {
		return "", err
	}
	if !inv.Registers() {
		return "", invites.ErrInvalid
	}
	local := inv.Username
	if local == "" {
		if local, err = jid.PrepareLocal(username); err != nil || local == "" {
			return "", invites.ErrBadUsername
		}
	}
	if n := len(password); n < invites.MinPagePassword || n > 1023 {
		return "", invites.ErrBadPassword
	}
	user := local + "@" + inv.Domain
	switch err := s.createAccount(user, password, &inv, module.RegWeb, ip); {
	case errors.Is(err, store.ErrExists), errors.Is(err, ErrReservedName), errors.Is(err, ErrSiteRefused):
		return "", invites.ErrNameTaken
	case err != nil:
		return "", err
	}
	s.counts.regs[regPage].Add(1)
	s.log.Info().Str("user", user).Str("remote", ip).Bool("contact", inv.Contact).Msg("account registered with an invitation page")
	return user, nil
}

// ResetPassword sets a new password for the account a password reset link names, for a
// client at ip, and spends the link. It returns the account, or invites.ErrBudget,
// invites.ErrInvalid (unknown, expired or spent, not a reset link, or the account is
// gone), invites.ErrBadPassword or a store error. The account's FAST tokens die with
// its old credentials; its sessions stay. It derives the SCRAM keys (PBKDF2). Safe for
// concurrent use.
func (s *Server) ResetPassword(token, password, ip string) (string, error) {
	if err := s.pageAttempt(ip); err != nil {
		return "", err
	}
	inv, err := s.Invitation(token)
	if err != nil {
		return "", err
	}
	if !inv.Reset {
		return "", invites.ErrInvalid
	}
	if n := len(password); n < invites.MinPagePassword || n > 1023 {
		return "", invites.ErrBadPassword
	}
	user := inv.Username + "@" + inv.Domain
	keys, err := creds.DeriveAll(password, creds.DefaultIter)
	if err != nil {
		return "", err
	}
	t := s.st.Table(invites.Table)
	s.redeeming.Lock()
	defer s.redeeming.Unlock()
	if !invites.Unspent(t, inv.Token) {
		return "", invites.ErrInvalid
	}
	switch err := s.st.Accounts().SetCredentials(user, keys); {
	case errors.Is(err, store.ErrNotFound):
		invites.Redeem(t, inv)
		return "", invites.ErrInvalid
	case err != nil:
		return "", err
	}
	if err := invites.Redeem(t, inv); err != nil && module.LogStoreError(err) {
		s.log.Error().Err(err).Str("user", user).Msg("spend a password reset link")
	}
	s.counts.resets.Add(1)
	s.log.Info().Str("user", user).Str("remote", ip).Msg("password reset through its link")
	return user, nil
}
