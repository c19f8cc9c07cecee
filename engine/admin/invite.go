package admin

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Invite manages account invitations (XEP-0401, redeemed with XEP-0445): create one for
// target, a served domain (the invitee chooses the name) or user@domain (the name is
// reserved for the invitee until it expires), and return its URI and expiry; list the
// valid ones; or revoke one by its token. Inviting someone to a name that is taken fails.
func Invite(b Backend, action, target, token string, ttl time.Duration) ([]string, error) {
	t := b.Store().Table(invites.Table)
	now := time.Now()
	switch action {
	case "create":
		j, err := jid.Parse(target)
		if err != nil || !j.IsBare() {
			return nil, fmt.Errorf("invite: %q: want a domain or user@domain", target)
		}
		if !slices.Contains(b.Domains(), j.Domain()) {
			return nil, fmt.Errorf("invite: %s is not served here", j.Domain())
		}
		if j.Local() != "" {
			if _, err := b.Store().Accounts().Get(j.String()); err == nil {
				return nil, fmt.Errorf("invite: %s already exists", j)
			}
		}
		inv, err := invites.Create(t, j.Domain(), j.Local(), "", ttl, now)
		if err != nil {
			return nil, err
		}
		out := []string{inv.URI(), "expires " + inv.Expires.Format(time.RFC3339)}
		if u := inv.PageURL(b.WebURL(inv.Domain)); u != "" {
			out = append(out, "page "+u)
		}
		return out, nil
	case "list":
		list, err := invites.List(t, now)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, inv := range list {
			by, what := inv.Inviter, inv.JID()
			if by == "" {
				by = "operator"
			}
			switch {
			case inv.Contact:
				what = "contact-of:" + inv.Inviter
			case inv.Reset:
				what = "password-reset:" + inv.JID()
			}
			out = append(out, fmt.Sprintf("%s %s expires %s by %s", inv.Token, what, inv.Expires.Format(time.RFC3339), by))
		}
		return out, nil
	case "revoke":
		if err := invites.Revoke(t, token); err != nil {
			if errors.Is(err, invites.ErrInvalid) {
				return nil, fmt.Errorf("invite: no invitation %q", token)
			}
			return nil, err
		}
		return nil, nil
	}
	return nil, fmt.Errorf("invite: unknown action %q (want create, list or revoke)", action)
}

// ResetLink makes a password reset link for the existing account j, valid for ttl
// (invites.ResetTTL when 0), and returns its page and expiry: whoever opens the page sets
// the account's password, once. It needs the web listener's public URL (an HTTPS
// tls_listen or [web] public_url) to name the page.
func ResetLink(b Backend, j string, ttl time.Duration) ([]string, error) {
	bare, err := bareJID(b, j)
	if err != nil {
		return nil, err
	}
	if bare.Local() == "" {
		return nil, fmt.Errorf("reset: %q is not an account", j)
	}
	if _, err := b.Store().Accounts().Get(bare.String()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("reset: %s does not exist", bare)
		}
		return nil, err
	}
	base := b.WebURL(bare.Domain())
	if base == "" {
		return nil, errors.New("reset: the page needs a web listener: add a [web] tls_listen, or set [web] public_url")
	}
	if ttl > invites.MaxTTL {
		return nil, fmt.Errorf("reset: a link lasts at most %v", invites.MaxTTL)
	}
	inv, err := invites.CreateReset(b.Store().Table(invites.Table), bare, ttl, time.Now())
	if err != nil {
		return nil, err
	}
	return []string{inv.PageURL(base), "expires " + inv.Expires.Format(time.RFC3339)}, nil
}
