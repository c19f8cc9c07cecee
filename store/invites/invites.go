// Package invites keeps account invitations (XEP-0401) in the store's "invites" table:
// creating them, checking the token a client presents before it registers (XEP-0445
// pre-authenticated in-band registration) and redeeming it once the account exists. An
// invitation may reserve the username it is for: nobody registers that name without its
// token until it expires.
//
// It speaks no XMPP and holds no state of its own: the engine checks and redeems tokens,
// vireoctl and the XEP-0401 ad-hoc command create them.
package invites

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Table is the store table invitations live in.
const Table = "invites"

// DefaultTTL is how long an invitation stays valid unless its creator says otherwise.
const DefaultTTL = 7 * 24 * time.Hour

// MaxTTL bounds an invitation's life, and so how long a username stays reserved.
const MaxTTL = 90 * 24 * time.Hour

// ErrInvalid is the answer for a token that is unknown, used or expired.
var ErrInvalid = errors.New("invites: the invitation is invalid or expired")

// Invite is one invitation: to create an account, or (Contact) to become the inviter's
// contact.
type Invite struct {
	Token    string    `json:"-"`
	Domain   string    `json:"domain"`             // the host the account is created on
	Username string    `json:"username,omitempty"` // the localpart it is reserved for; "": the invitee's choice
	Inviter  string    `json:"inviter,omitempty"`  // bare JID of who created it; "": the operator
	Expires  time.Time `json:"expires"`
	// Contact makes it a contact invitation (XEP-0401 §4.1, XEP-0379): a subscription
	// request to Inviter carrying the token is approved, and answered with one, by the
	// inviter's server.
	Contact bool `json:"contact,omitempty"`
	// Register lets a contact invitation also create an account on Domain (ibr=y), which
	// then starts out as the inviter's mutual contact. Account invitations always do.
	Register bool `json:"register,omitempty"`
	// Reset makes it a password reset link for the existing account Username@Domain,
	// made by the operator: its page sets a new password. It creates no account.
	Reset bool `json:"reset,omitempty"`
}

// Registers reports whether the invitation lets its holder create an account.
func (i Invite) Registers() bool { return !i.Reset && (!i.Contact || i.Register) }

// JID is the account the invitation is for: user@domain, or the domain alone when the
// invitee chooses the name; for a contact invitation, the inviter.
func (i Invite) JID() string {
	switch {
	case i.Contact:
		return i.Inviter
	case i.Username == "":
		return i.Domain
	}
	return i.Username + "@" + i.Domain
}

// URI is the invitation as XEP-0401 §3.2 writes it: xmpp:[user@]domain?register;preauth=TOKEN,
// or xmpp:inviter?roster;preauth=TOKEN[;ibr=y] for a contact invitation.
func (i Invite) URI() string {
	if i.Contact {
		u := "xmpp:" + i.Inviter + "?roster;preauth=" + i.Token
		if i.Register {
			u += ";ibr=y"
		}
		return u
	}
	return "xmpp:" + i.JID() + "?register;preauth=" + i.Token
}

// PagePath is where the web listener serves invitation pages (PagePath + token), and
// ResetPath the pages of password reset links.
const (
	PagePath  = "/invite/"
	ResetPath = "/reset/"
)

// PageURL is the invitation's XEP-0401 landing page (or a reset link's page) under base,
// the web listener's public URL; "" without one.
func (i Invite) PageURL(base string) string {
	switch {
	case base == "":
		return ""
	case i.Reset:
		return base + ResetPath + i.Token
	}
	return base + PagePath + i.Token
}

func tokenKey(token string) []byte { return []byte("t\x00" + token) }
func nameKey(bare string) []byte   { return []byte("u\x00" + bare) }

// byInviterKey indexes a contact invitation under its inviter, to count and prune them.
func byInviterKey(inviter, token string) []byte { return []byte("i\x00" + inviter + "\x00" + token) }

// MaxContact bounds the contact invitations one account has out at a time: each is a row
// until it is used or expires, and any user may make them.
const MaxContact = 50

// Errors of a registration through an invitation page, worded for its user.
var (
	ErrBudget      = errors.New("too many registrations from this address; try again in a minute")
	ErrBadUsername = errors.New("that is not a valid username")
	ErrBadPassword = fmt.Errorf("choose a password of %d to 1023 characters", MinPagePassword)
	ErrNameTaken   = errors.New("that username is taken")
	// ErrFull: the host has as many accounts as its operator allows (config
	// vhosts.max_accounts).
	ErrFull = errors.New("this server takes no more accounts on that domain")
)

// MinPagePassword is the shortest password an invitation page takes: the page is the
// only guide its user has, where a client may have rules of its own.
const MinPagePassword = 8

// ErrTooMany is the answer for a contact invitation beyond MaxContact.
var ErrTooMany = errors.New("invites: too many open contact invitations; wait for some to be used or expire")

// tokenAlphabet is what tokens are made of: alphanumeric, as XEP-0401 §3.2 recommends,
// so that a token survives any URI, chat client and e-mail unescaped.
const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newToken returns 24 random alphanumeric characters (about 143 bits).
func newToken() (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(tokenAlphabet)))
	for range 24 {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b.WriteByte(tokenAlphabet[n.Int64()])
	}
	return b.String(), nil
}

// Create stores a new invitation for domain valid for ttl (DefaultTTL when 0), reserving
// username when it is not "". It fails for a username that is not a valid localpart, and
// for one another invitation still reserves.
func Create(t store.Table, domain, username, inviter string, ttl time.Duration, now time.Time) (Invite, error) {
	if username != "" {
		u, err := jid.PrepareLocal(username)
		if err != nil || u == "" {
			return Invite{}, fmt.Errorf("invites: %q is not a valid username", username)
		}
		username = u
		if _, ok := Reserved(t, username+"@"+domain, now); ok {
			return Invite{}, fmt.Errorf("invites: %s is already reserved by another invitation", username+"@"+domain)
		}
	}
	return put(t, Invite{Domain: domain, Username: username, Inviter: inviter}, ttl, now)
}

// put gives inv a new token and an expiry ttl from now (DefaultTTL when 0, at most
// MaxTTL) and stores it with its reservation or inviter index, synchronously: the creator
// hands the token out as soon as this returns.
func put(t store.Table, inv Invite, ttl time.Duration, now time.Time) (Invite, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if ttl > MaxTTL {
		return Invite{}, fmt.Errorf("invites: an invitation lasts at most %v", MaxTTL)
	}
	tok, err := newToken()
	if err != nil {
		return Invite{}, err
	}
	inv.Token, inv.Expires = tok, now.Add(ttl).UTC().Truncate(time.Second)
	v, err := json.Marshal(inv)
	if err != nil {
		return Invite{}, err
	}
	ops := []store.Op{{Key: tokenKey(tok), Val: v}}
	if inv.Username != "" && !inv.Reset {
		ops = append(ops, store.Op{Key: nameKey(inv.JID()), Val: []byte(tok)})
	}
	if inv.Contact {
		ops = append(ops, store.Op{Key: byInviterKey(inv.Inviter, tok)})
	}
	return inv, t.Apply(ops...)
}

// ResetTTL is how long a password reset link lasts unless its maker says otherwise: a
// day, since whoever holds it takes over the account.
const ResetTTL = 24 * time.Hour

// CreateReset stores a new password reset link for the existing account bare (the caller
// checks that it exists), valid for ttl (ResetTTL when 0).
func CreateReset(t store.Table, bare jid.JID, ttl time.Duration, now time.Time) (Invite, error) {
	if bare.Local() == "" || !bare.IsBare() {
		return Invite{}, fmt.Errorf("invites: %q is not an account", bare)
	}
	if ttl <= 0 {
		ttl = ResetTTL
	}
	return put(t, Invite{Domain: bare.Domain(), Username: bare.Local(), Reset: true}, ttl, now)
}

// CreateContact stores a new contact invitation from inviter (a bare JID) valid for ttl
// (DefaultTTL when 0); register lets it create an account too (ibr=y).
func CreateContact(t store.Table, inviter jid.JID, register bool, ttl time.Duration, now time.Time) (Invite, error) {
	if inviter.Local() == "" {
		return Invite{}, errors.New("invites: a contact invitation needs an account")
	}
	who := inviter.Bare().String()
	// Count the inviter's open invitations, dropping the index rows of those gone.
	open := 0
	var stale []store.Op
	prefix := byInviterKey(who, "")
	err := t.Scan(prefix, func(k, _ []byte) bool {
		tok := string(k[len(prefix):])
		if _, err := Check(t, tok, now); err != nil {
			stale = append(stale, store.Op{Key: append([]byte(nil), k...), Delete: true}, store.Op{Key: tokenKey(tok), Delete: true})
			return true
		}
		open++
		return true
	})
	if err != nil {
		return Invite{}, err
	}
	if len(stale) > 0 {
		if err := t.Apply(stale...); err != nil {
			return Invite{}, err
		}
	}
	if open >= MaxContact {
		return Invite{}, ErrTooMany
	}
	return put(t, Invite{Domain: inviter.Domain(), Inviter: who, Contact: true, Register: register}, ttl, now)
}

// Check returns the invitation token stands for, or ErrInvalid when there is none or it
// expired at now.
func Check(t store.Table, token string, now time.Time) (Invite, error) {
	if token == "" || len(token) > 128 {
		return Invite{}, ErrInvalid
	}
	v, err := t.Get(tokenKey(token))
	if errors.Is(err, store.ErrNotFound) {
		return Invite{}, ErrInvalid
	}
	if err != nil {
		return Invite{}, err
	}
	var inv Invite
	if err := json.Unmarshal(v, &inv); err != nil {
		return Invite{}, fmt.Errorf("%w: invitation: %v", store.ErrCorrupt, err)
	}
	if !now.Before(inv.Expires) {
		return Invite{}, ErrInvalid
	}
	inv.Token = token
	return inv, nil
}

// Unspent reports whether the invitation token stands for has not been redeemed or
// revoked, expired or not: XEP-0445 §4 checks expiry once, when the token is presented,
// and a registration that follows must not fail because it ran out meanwhile.
func Unspent(t store.Table, token string) bool {
	_, err := t.Get(tokenKey(token))
	return err == nil
}

// Reserved reports whether an invitation valid at now reserves the account bare
// (user@domain), and its token.
func Reserved(t store.Table, bare string, now time.Time) (token string, ok bool) {
	v, err := t.Get(nameKey(bare))
	if err != nil {
		return "", false
	}
	if _, err := Check(t, string(v), now); err != nil {
		return "", false
	}
	return string(v), true
}

// Redeem removes an invitation once its account exists (a token is good for one
// account), with the reservation it held.
func Redeem(t store.Table, inv Invite) error { return t.Apply(RedeemOps(inv)...) }

// RedeemOps are the writes of Redeem, for a caller that makes them with others in one
// atomic write (store.Accounts.CreateWith).
func RedeemOps(inv Invite) []store.Op {
	ops := []store.Op{{Key: tokenKey(inv.Token), Delete: true}}
	if inv.Username != "" && !inv.Reset {
		ops = append(ops, store.Op{Key: nameKey(inv.JID()), Delete: true})
	}
	if inv.Contact {
		ops = append(ops, store.Op{Key: byInviterKey(inv.Inviter, inv.Token), Delete: true})
	}
	return ops
}

// List returns the invitations still valid at now, and deletes the expired ones it finds.
func List(t store.Table, now time.Time) ([]Invite, error) {
	var out, expired []Invite
	err := t.Scan([]byte("t\x00"), func(k, v []byte) bool {
		var inv Invite
		if json.Unmarshal(v, &inv) != nil {
			return true
		}
		inv.Token = string(k[2:])
		if now.Before(inv.Expires) {
			out = append(out, inv)
		} else {
			expired = append(expired, inv)
		}
		return true
	})
	for _, inv := range expired {
		Redeem(t, inv)
	}
	return out, err
}

// Revoke deletes the invitation token stands for; ErrInvalid when there is none.
func Revoke(t store.Table, token string) error {
	v, err := t.Get(tokenKey(token))
	if err != nil {
		return ErrInvalid
	}
	var inv Invite
	json.Unmarshal(v, &inv)
	inv.Token = token
	return Redeem(t, inv)
}

// Forget revokes what was made for or by the removed account bare: its contact
// invitations, which would otherwise make their holders contacts of whoever takes the name
// next, and its password reset links, which would take over that account.
func Forget(t store.Table, bare string) error {
	var gone []Invite
	err := t.Scan([]byte("t\x00"), func(k, v []byte) bool {
		var inv Invite
		if json.Unmarshal(v, &inv) != nil {
			return true
		}
		if (inv.Contact && inv.Inviter == bare) || (inv.Reset && inv.JID() == bare) {
			inv.Token = string(k[2:])
			gone = append(gone, inv)
		}
		return true
	})
	for _, inv := range gone {
		if err == nil {
			err = Redeem(t, inv)
		}
	}
	return err
}
