package module

import "errors"

// Accounts changes an account at its user's request the way the server keeps it: SCRAM
// keys in the store for a local account; the operator's program for an account whose
// password a site keeps (engine Config.External), when the operator lets the server
// change those ([auth] external_manage). Its methods block (key derivation, the program):
// call them in Context.Async.
type Accounts interface {
	// SetPassword changes the password of user (a bare JID). ErrManaged: the site keeps
	// it and the server may not change it, or the site refused; ErrGuest: a guest's
	// account, which has none.
	SetPassword(user, password string) error
	// Remove deletes the account user (a bare JID) and what is stored for it, here and,
	// for a site's account, at the site. ErrManaged: the site refused.
	Remove(user string) error
}

// SiteAccounts is implemented by Accounts whose accounts a site's program may keep: the
// operator's tools (XEP-0133 among them) change such an account at the site when the site
// takes changes (handled true), and otherwise change what is stored here, as for any
// account. A refusal is ErrManaged. They may wait for the site's program.
type SiteAccounts interface {
	SitePassword(user, password string) (handled bool, err error)
	SiteRemove(user string) (handled bool, err error)
}

// ErrManaged is Accounts' answer when the site that keeps an account's password does not
// let the change happen; a client gets not-allowed.
var ErrManaged = errors.New("module: the account's password is managed by the site that runs this server")

// ErrGuest is Accounts' answer to a password change for a guest's account (SASL
// ANONYMOUS): it has no password, and goes when its session ends.
var ErrGuest = errors.New("module: a guest account has no password")
