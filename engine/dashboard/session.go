package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// Session lifetimes: an administrator who walks away is logged out after SessionIdle, and
// no session outlives SessionMax however busy.
const (
	SessionIdle = 30 * time.Minute
	SessionMax  = 12 * time.Hour
	// MaxSessions bounds the table; a login past it evicts the session closest to expiry.
	// Each entry is a few hundred bytes, and only administrators who proved their
	// password create one.
	MaxSessions = 1024
)

// newToken returns 128 random bits, URL-safe base64 (22 characters): session ids and
// CSRF tokens.
func newToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("dashboard: no randomness: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenEqual compares a submitted token with the expected one in constant time.
func tokenEqual(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// session is one logged-in administrator.
type session struct {
	user    string // bare JID
	csrf    string // the token every POST form of this session carries
	created time.Time
	expires time.Time // idle expiry, pushed back on each use, capped at created+SessionMax
	flash   string    // one message for the next page (the result of a form)
	flashOK bool
	// keys identifies the credentials the login proved (keysOf): a change of password
	// since ends the session, as it ends the account's FAST tokens.
	keys [32]byte
	// hosts are the virtual hosts a host's administrator manages, looked up at each
	// request (Dashboard.current); nil for the server's administrators.
	hosts []string
}

// sessions is the server-side session table; the cookie holds only the id. Safe for
// concurrent use.
type sessions struct {
	now func() time.Time
	mu  struct {
		sync.Mutex
		m map[string]*session
	}
}

func newSessions(now func() time.Time) *sessions {
	s := &sessions{now: now}
	s.mu.m = map[string]*session{}
	return s
}

// create opens a session for user and returns its id.
func (s *sessions) create(user string, keys [32]byte) string {
	now := s.now()
	id := newToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gcLocked(now)
	if len(s.mu.m) >= MaxSessions {
		var oldest string
		for k, v := range s.mu.m {
			if oldest == "" || v.expires.Before(s.mu.m[oldest].expires) {
				oldest = k
			}
		}
		delete(s.mu.m, oldest)
	}
	s.mu.m[id] = &session{user: user, csrf: newToken(), created: now, expires: now.Add(SessionIdle), keys: keys}
	return id
}

// get returns a copy of the live session id names and extends it, taking its flash
// message; ok is false for unknown or expired ids.
func (s *sessions) get(id string) (session, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.mu.m[id]
	if v == nil {
		return session{}, false
	}
	if !now.Before(v.expires) {
		delete(s.mu.m, id)
		return session{}, false
	}
	v.expires = now.Add(SessionIdle)
	if max := v.created.Add(SessionMax); v.expires.After(max) {
		v.expires = max
	}
	out := *v
	v.flash, v.flashOK = "", false
	return out, true
}

// setFlash leaves msg for the session's next page.
func (s *sessions) setFlash(id, msg string, ok bool) {
	s.mu.Lock()
	if v := s.mu.m[id]; v != nil {
		v.flash, v.flashOK = msg, ok
	}
	s.mu.Unlock()
}

// drop ends a session (logout).
func (s *sessions) drop(id string) {
	s.mu.Lock()
	delete(s.mu.m, id)
	s.mu.Unlock()
}

// dropUser ends every session of user (the account was disabled or deleted).
func (s *sessions) dropUser(user string) {
	s.mu.Lock()
	for k, v := range s.mu.m {
		if v.user == user {
			delete(s.mu.m, k)
		}
	}
	s.mu.Unlock()
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.m)
}

func (s *sessions) gcLocked(now time.Time) {
	for k, v := range s.mu.m {
		if !now.Before(v.expires) {
			delete(s.mu.m, k)
		}
	}
}
