// Package creds derives and checks the SCRAM credentials (RFC 5802, RFC 7677) that the store
// keeps for an account: salt, iteration count, StoredKey and ServerKey. Every layer that
// turns a password into stored credentials (vireoctl, in-band registration and password
// changes, PLAIN logins) uses it; the SASL exchanges themselves live in the engine.
//
// It must not do I/O beyond reading randomness; PBKDF2 is deliberately slow, so callers run
// Derive and VerifyPlain on a bounded worker pool, never on an event loop or a shard worker.
package creds

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"hash"

	"github.com/vireo-im/vireo/store"
	"golang.org/x/text/secure/precis"
)

// DefaultIter is the PBKDF2 iteration count for new credentials (RFC 7677 recommends at
// least 4096; 10000 matches current client defaults).
const DefaultIter = 10000

// MinIter is the lowest iteration count accepted for stored credentials.
const MinIter = 4096

// MaxIter is the highest: a PLAIN login makes the server run the account's count, so a
// count set by an operator's tool or an imported file must not turn every login
// attempt, which anyone can make, into minutes of work. 600,000 is what OWASP advises
// for PBKDF2-HMAC-SHA256 today.
const MaxIter = 600_000

// NewHash returns the hash constructor of h.
func NewHash(h store.Hash) func() hash.Hash {
	switch h {
	case store.SHA1:
		return sha1.New
	case store.SHA512:
		return sha512.New
	}
	return sha256.New
}

// Derive computes SCRAM keys for password with a new random salt.
func Derive(password string, h store.Hash, iter int) (store.Credentials, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return store.Credentials{}, err
	}
	return derive(password, h, salt, iter)
}

// DeriveAll computes credentials for every hash the store keeps.
func DeriveAll(password string, iter int) ([3]store.Credentials, error) {
	var out [3]store.Credentials
	for _, h := range []store.Hash{store.SHA1, store.SHA256, store.SHA512} {
		c, err := Derive(password, h, iter)
		if err != nil {
			return out, err
		}
		out[h] = c
	}
	return out, nil
}

// Prepare is the form of a password that keys are derived from: the PRECIS OpaqueString
// profile (RFC 8265 §4.2), as SCRAM clients prepare it before they hash it (RFC 5802 §2.2,
// RFC 7677), so that a password with a non-ASCII space or in another Unicode normal form
// logs in with SCRAM as with PLAIN. A password the profile refuses (one with control
// characters) is kept as it is: no SCRAM client can use it, PLAIN still can.
func Prepare(password string) string {
	if p, err := precis.OpaqueString.String(password); err == nil {
		return p
	}
	return password
}

func derive(password string, h store.Hash, salt []byte, iter int) (store.Credentials, error) {
	return deriveRaw(Prepare(password), h, salt, iter)
}

func deriveRaw(password string, h store.Hash, salt []byte, iter int) (store.Credentials, error) {
	if iter < MinIter {
		return store.Credentials{}, errors.New("creds: iteration count below 4096")
	}
	if iter > MaxIter {
		return store.Credentials{}, errors.New("creds: iteration count above 600000")
	}
	hf := NewHash(h)
	salted, err := pbkdf2.Key(hf, password, salt, iter, hf().Size())
	if err != nil {
		return store.Credentials{}, err
	}
	return FromSalted(h, salted, salt, iter), nil
}

// FromSalted computes the stored keys from RFC 5802's SaltedPassword, which a client sends
// in an XEP-0480 SCRAM upgrade instead of the password.
func FromSalted(h store.Hash, salted, salt []byte, iter int) store.Credentials {
	hf := NewHash(h)
	mac := hmac.New(hf, salted)
	mac.Write([]byte("Client Key"))
	clientKey := mac.Sum(nil)
	sh := hf()
	sh.Write(clientKey)
	mac = hmac.New(hf, salted)
	mac.Write([]byte("Server Key"))
	return store.Credentials{Salt: salt, Iter: iter, StoredKey: sh.Sum(nil), ServerKey: mac.Sum(nil)}
}

// VerifyPlain checks password against stored credentials.
func VerifyPlain(c store.Credentials, h store.Hash, password string) bool {
	if c.IsZero() {
		return false
	}
	prepared := Prepare(password)
	d, err := deriveRaw(prepared, h, c.Salt, c.Iter)
	if err != nil {
		return false
	}
	if subtle.ConstantTimeCompare(d.StoredKey, c.StoredKey) == 1 {
		return true
	}
	if prepared == password {
		return false
	}
	// Keys made from the password as typed, before passwords were prepared.
	d, err = deriveRaw(password, h, c.Salt, c.Iter)
	return err == nil && subtle.ConstantTimeCompare(d.StoredKey, c.StoredKey) == 1
}

// DeriveWithSalt computes SCRAM keys for password with a given salt (test vectors, and
// clients that must reproduce stored keys).
func DeriveWithSalt(password string, h store.Hash, salt []byte, iter int) (store.Credentials, error) {
	return derive(password, h, salt, iter)
}
