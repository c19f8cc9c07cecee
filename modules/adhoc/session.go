package adhoc

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Session bounds. A session is only the node and who opened it: a stage of an
// administrator's form, held until the form comes back.
const (
	// SessionTTL is how long a form may wait for its submission: long enough for a person
	// to type a password twice, short enough that abandoned sessions go away on their own.
	SessionTTL = 10 * time.Minute
	// MaxSessionsPerUser bounds one requester's open sessions: a client opening forms in a
	// loop replaces nothing and gets resource-constraint.
	MaxSessionsPerUser = 8
	// MaxSessions bounds all open sessions of the server (a few administrators).
	MaxSessions = 1024
)

type session struct {
	owner   string // the requester's full JID: XEP-0050 §3.4 binds a session to it
	node    string
	created time.Time
}

// sessions holds the open command sessions. Requests arrive on the requesters' shards,
// many at once, so the map is behind a mutex; every operation is O(1) except the sweep of
// expired sessions, which runs on open and is bounded by MaxSessions.
type sessions struct {
	mu struct {
		sync.Mutex
		m     map[string]*session // by session id
		owned map[string]int      // open sessions per owner
	}
}

// open starts a session for owner on node. It fails with resource-constraint when owner
// or the server has too many open.
func (s *sessions) open(owner, node string, now time.Time) (string, *stanza.Error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", stanza.New(stanza.InternalServerErrorCond)
	}
	sid := hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.m == nil {
		s.mu.m, s.mu.owned = map[string]*session{}, map[string]int{}
	}
	s.sweepLocked(now)
	if s.mu.owned[owner] >= MaxSessionsPerUser || len(s.mu.m) >= MaxSessions {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Text = "too many open command sessions"
		return "", e
	}
	s.mu.m[sid] = &session{owner: owner, node: node, created: now}
	s.mu.owned[owner]++
	return sid, nil
}

// take removes and returns the session sid if owner opened it on node: the caller finishes
// or cancels it. Someone else's session id is answered as unknown, so ids cannot be probed.
func (s *sessions) take(sid, owner, node string, now time.Time) *stanza.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.mu.m[sid]
	if se == nil || se.owner != owner || se.node != node {
		return errBadSession()
	}
	s.deleteLocked(sid, se)
	if now.Sub(se.created) > SessionTTL {
		return errExpired()
	}
	return nil
}

// len returns the number of open sessions (tests).
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.m)
}

func (s *sessions) deleteLocked(sid string, se *session) {
	delete(s.mu.m, sid)
	if s.mu.owned[se.owner]--; s.mu.owned[se.owner] <= 0 {
		delete(s.mu.owned, se.owner)
	}
}

func (s *sessions) sweepLocked(now time.Time) {
	for sid, se := range s.mu.m {
		if now.Sub(se.created) > SessionTTL {
			s.deleteLocked(sid, se)
		}
	}
}
