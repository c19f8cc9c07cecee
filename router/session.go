package router

import (
	"sync/atomic"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Session is one bound resource. The fields below gone are owned by the user's shard
// worker. A Session is reached through its Conn today; stream management (XEP-0198) will
// detach the Conn and keep the session with a queue of unacknowledged stanzas, which is
// why delivery goes through Session.Send and not straight to the socket.
type Session struct {
	gone  atomic.Bool // Unbind called
	shard *shard
	conn  Conn
	jid   jid.JID
	fullB []byte // jid as bytes for stamping 'from' without allocating
	user  *user

	prio       int8
	available  bool
	interested bool
	presence   []byte
	values     []kv // module state; two or three keys at most, so a slice beats a map
}

type kv struct{ k, v any }

var _ module.Session = (*Session)(nil)

// JID returns the full JID.
func (s *Session) JID() jid.JID { return s.jid }

// Priority returns the priority of the last available presence.
func (s *Session) Priority() int { return int(s.prio) }

// Available reports whether the session sent available presence.
func (s *Session) Available() bool { return s.available }

// Presence returns the last broadcast presence stanza.
func (s *Session) Presence() []byte { return s.presence }

// Interested reports whether the session requested the roster (RFC 6121 §2.1.6).
func (s *Session) Interested() bool { return s.interested }

// SetInterested marks the session as having requested the roster.
func (s *Session) SetInterested() { s.interested = true }

// Send writes raw to the session's stream.
func (s *Session) Send(raw []byte) bool {
	if s.gone.Load() {
		return false
	}
	return s.conn.Send(raw)
}

// Close ends the session's stream with cond.
func (s *Session) Close(cond stanza.StreamCondition) { s.conn.Close(cond) }

// Value returns per-session module state.
func (s *Session) Value(key any) any {
	for i := range s.values {
		if s.values[i].k == key {
			return s.values[i].v
		}
	}
	return nil
}

// SetValue stores per-session module state; a nil v removes key.
func (s *Session) SetValue(key, v any) {
	for i := range s.values {
		if s.values[i].k == key {
			if v == nil {
				s.values = append(s.values[:i], s.values[i+1:]...)
			} else {
				s.values[i].v = v
			}
			return
		}
	}
	if v != nil {
		s.values = append(s.values, kv{key, v})
	}
}
