package engine

import (
	"crypto/rand"
	"crypto/tls"
	"sync"
	"time"
)

// ticketKeys are the keys that encrypt TLS session tickets (RFC 8446 §4.6.1), shared by
// every TLS configuration of the server and kept across config reloads, so a client that
// reconnects resumes its session instead of a full handshake. A new key starts each day;
// the last seven still decrypt, the lifetime crypto/tls gives a ticket.
type ticketKeys struct {
	mu      sync.Mutex
	keys    [][32]byte // newest first
	rotated time.Time
}

const (
	ticketKeyEvery = 24 * time.Hour
	ticketKeysKept = 7
)

// rotate starts a new key when the newest is a day old (or there is none) and reports
// whether it did.
func (k *ticketKeys) rotate(now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) > 0 && now.Sub(k.rotated) < ticketKeyEvery {
		return false
	}
	var key [32]byte
	rand.Read(key[:])
	k.keys = append([][32]byte{key}, k.keys[:min(len(k.keys), ticketKeysKept-1)]...)
	k.rotated = now
	return true
}

// install sets the keys on each config (the newest encrypts, all decrypt).
func (k *ticketKeys) install(cfgs ...*tls.Config) {
	k.mu.Lock()
	keys := append([][32]byte(nil), k.keys...)
	k.mu.Unlock()
	for _, c := range cfgs {
		if c != nil && len(keys) > 0 {
			c.SetSessionTicketKeys(keys)
		}
	}
}
