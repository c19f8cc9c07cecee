package engine

import (
	"strings"
	"sync/atomic"

	"github.com/vireo-im/vireo/engine/metrics"
	"github.com/vireo-im/vireo/engine/sasl"
	"github.com/vireo-im/vireo/store"
)

// Counters for metrics that are not on a hot path: a login, a TLS handshake, a refused
// connection each cost an atomic add in a fixed array, read when scraped.

// Login mechanisms counted apart. Client SASL mechanisms by name; the HT-* (XEP-0484
// FAST) family as one; mechanisms outside the list as "other"; and the two
// authentications that are not client SASL, external components' handshake (XEP-0114)
// and server dialback (XEP-0220).
var loginMechs = [...]string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS",
	"SCRAM-SHA-512", "SCRAM-SHA-512-PLUS", "EXTERNAL", "FAST", "other", "component", "dialback", "ANONYMOUS"}

const (
	mechOther     = 9
	mechComponent = 10
	mechDialback  = 11
	mechExternal  = 7
	mechAnonymous = 12
)

// mechIndex is the loginMechs index of a SASL mechanism name.
func mechIndex(name string) uint8 {
	if strings.HasPrefix(name, "HT-") {
		return 8
	}
	if name == sasl.Anonymous {
		return mechAnonymous
	}
	for i, m := range loginMechs[:mechOther] {
		if m == name {
			return uint8(i)
		}
	}
	return mechOther
}

// Why a connection was refused at accept.
const (
	refusedShutdown       = iota // the server is stopping
	refusedMaxConnections        // Config.MaxConnections
	refusedPerAddress            // Config.MaxUnauthPerAddr
	refusedOutOfFiles            // shed while accept fails with EMFILE/ENFILE
	refusedRegister              // the event loop would not take it
	refusedNoCore                // an edge without a link to the core
	nRefused
)

var refusedReasons = [nRefused]string{"shutdown", "max_connections", "per_address", "out_of_files", "loop_register", "no_core"}

// Why the server closed a connection on its own clock (tick.go).
const (
	timeoutPreAuth = iota // no login within pre_auth_timeout
	timeoutPing           // no answer to the XEP-0199 ping within ping_timeout
	timeoutSMAck          // XEP-0198 <r/> unanswered, client silent, for sm_ack_timeout
	nTimeouts
)

var timeoutKinds = [nTimeouts]string{"pre_auth", "ping", "sm_ack"}

// How an account was created by its user.
const (
	regOpen   = iota // XEP-0077 in-band registration, open to all
	regInvite        // XEP-0077 with an XEP-0445 invitation token
	regPage          // an invitation's web page
	regWeb           // the sign-up page (engine/signup), open to all
	nRegs
)

var regKinds = [nRegs]string{"open", "invitation", "invitation_page", "web"}

// loginCounters are logins by mechanism and result, TLS handshakes by result, refused
// connections by reason, accounts users created by how, and password reset links used.
type loginCounters struct {
	logins  [len(loginMechs)][2]atomic.Int64 // [mech][0 ok, 1 failed]
	tls     [2]atomic.Int64                  // handshakes: 0 ok, 1 failed
	refused [nRefused]atomic.Int64
	timeout [nTimeouts]atomic.Int64
	regs    [nRegs]atomic.Int64
	resets  atomic.Int64
}

// login counts one authentication of mechanism mech. Safe for concurrent use.
func (s *Server) login(mech uint8, ok bool) {
	if ok {
		s.authOK.Add(1)
		s.counts.logins[mech][0].Add(1)
		return
	}
	s.authFail.Add(1)
	s.counts.logins[mech][1].Add(1)
}

// refuse counts a connection refused for reason. Safe for concurrent use.
func (s *Server) refuse(reason int) {
	s.refused.Add(1)
	s.counts.refused[reason].Add(1)
}

// metricsExtra fills the parts of a metrics snapshot kept here, the router's and the
// store's.
func (s *Server) metricsExtra(m *metrics.Counters) {
	for i, name := range loginMechs {
		ok, failed := s.counts.logins[i][0].Load(), s.counts.logins[i][1].Load()
		if ok != 0 || failed != 0 {
			m.Logins = append(m.Logins, metrics.Login{Mechanism: name, OK: ok, Failed: failed})
		}
	}
	m.TLSHandshakes = [2]int64{s.counts.tls[0].Load(), s.counts.tls[1].Load()}
	m.RefusedBy = make(map[string]int64, nRefused)
	for i, r := range refusedReasons {
		m.RefusedBy[r] = s.counts.refused[i].Load()
	}
	m.TimeoutsBy = make(map[string]int64, nTimeouts)
	for i, k := range timeoutKinds {
		m.TimeoutsBy[k] = s.counts.timeout[i].Load()
	}
	m.RegistrationsBy = make(map[string]int64, nRegs)
	for i, k := range regKinds {
		m.RegistrationsBy[k] = s.counts.regs[i].Load()
	}
	m.PasswordResets = s.counts.resets.Load()
	rm := s.rt.Metrics()
	m.StanzasIn, m.StanzasOut = rm.In, rm.Out
	m.RoutingLatency = rm.Latency
	if ms, ok := s.st.(store.Metered); ok {
		sm := ms.Metrics()
		m.StoreCommit = &sm.Commit
		m.OfflineWrites, m.ArchiveWrites = sm.OfflineWrites, sm.ArchiveWrites
		m.PartialKeyAccounts = sm.PartialKeyAccounts
	}
}
