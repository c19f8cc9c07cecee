package router

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// destKind is what a 'to' address resolves to. Every path that moves a stanza (client
// stanzas after their outbound phase, module Route, stanzas from components and remote
// servers) asks resolve, so a new kind of recipient is added here and nowhere else.
type destKind uint8

const (
	destNone      destKind = iota
	destAccount            // a local account, bare or full: inbound phase in its shard
	destServer             // a local domain itself: the server answers
	destService            // a service domain claimed by a module (conference., pubsub.)
	destComponent          // an external component's domain (XEP-0114)
	destRemote             // anything else: the Remote (federation, another cluster node)
)

// Remote is where stanzas for domains this server does not serve go: federation (s2s) or
// another node of a cluster. Route must not block; it owns neither raw nor the JIDs after
// it returns (copy what it keeps). A non-nil error is turned into a stanza error for the
// sender: return a *stanza.Error to choose the condition.
type Remote interface {
	Route(from, to jid.JID, raw []byte) error
}

// ErrConflict is returned when a component domain is already connected.
var ErrConflict = errors.New("router: already connected")

// components are the external components currently connected, by domain. Few, and
// changed rarely: a read-mostly map behind a RWMutex.
type components struct {
	mu    sync.RWMutex
	conns map[string]Conn
	known map[string]bool // configured, connected or not
}

// SetComponents declares the configured component domains: while one is not connected,
// stanzas for it are answered with service-unavailable instead of going to the Remote.
func (r *Router) SetComponents(domains []string) {
	r.comps.mu.Lock()
	r.comps.known = make(map[string]bool, len(domains))
	for _, d := range domains {
		r.comps.known[d] = true
	}
	r.comps.mu.Unlock()
}

// IsComponent reports whether domain is a configured XEP-0114 component's, connected or
// not. Safe from any goroutine.
func (r *Router) IsComponent(domain string) bool {
	r.comps.mu.RLock()
	defer r.comps.mu.RUnlock()
	return r.comps.known[domain]
}

// AttachComponent makes domain a destination served by c. A second connection for the
// same domain gets ErrConflict.
func (r *Router) AttachComponent(domain string, c Conn) error {
	r.comps.mu.Lock()
	defer r.comps.mu.Unlock()
	if r.comps.conns == nil {
		r.comps.conns = map[string]Conn{}
	}
	if _, ok := r.comps.conns[domain]; ok {
		return ErrConflict
	}
	r.comps.conns[domain] = c
	return nil
}

// DetachComponent removes c from domain (when c is still the one attached).
func (r *Router) DetachComponent(domain string, c Conn) {
	r.comps.mu.Lock()
	if r.comps.conns[domain] == c {
		delete(r.comps.conns, domain)
	}
	r.comps.mu.Unlock()
}

func (r *Router) component(domain string) (Conn, bool) {
	r.comps.mu.RLock()
	c, ok := r.comps.conns[domain]
	known := r.comps.known[domain]
	r.comps.mu.RUnlock()
	return c, ok || known
}

// SetRemote installs the destination for non-local domains (federation).
func (r *Router) SetRemote(rm Remote) {
	if rm == nil {
		r.remote.Store(nil)
		return
	}
	r.remote.Store(&rm)
}

// resolve says where to goes. The common case, a local account, costs one map lookup.
func (r *Router) resolve(to jid.JID) (destKind, *module.Service) {
	d := to.Domain()
	if r.isLocal(d) {
		if to.Local() == "" {
			return destServer, nil
		}
		return destAccount, nil
	}
	if sv := r.svc.Load().byDomain[d]; sv != nil {
		return destService, sv
	}
	if _, ok := r.componentOf(d); ok {
		return destComponent, nil
	}
	return destRemote, nil
}

// componentOf returns the component domain that serves d: d itself, or the nearest
// parent domain of d that is a component's (XEP-0114 §3.1: a component may use the
// subdomains of its domain, and answers to them come back to it), unless something
// else (a host, a service) serves a domain in between.
func (r *Router) componentOf(d string) (string, bool) {
	if _, ok := r.component(d); ok {
		return d, true
	}
	for i := strings.IndexByte(d, '.'); i >= 0; i = strings.IndexByte(d, '.') {
		d = d[i+1:]
		if r.isLocal(d) || r.IsService(d) {
			return "", false
		}
		if _, ok := r.component(d); ok {
			return d, true
		}
	}
	return "", false
}

// IsService reports whether domain is a service domain claimed by a module.
func (r *Router) IsService(domain string) bool { return r.svc.Load().byDomain[domain] != nil }

// ServiceHost returns the virtual host the service domain belongs to (module.Service.Host:
// "" for a service of the whole server), and whether domain is a service domain at all.
func (r *Router) ServiceHost(domain string) (string, bool) {
	sv := r.svc.Load().byDomain[domain]
	if sv == nil {
		return "", false
	}
	return sv.Host, true
}

// ServiceDomains lists the service domains modules claimed (conference.example.org,
// upload.example.org), sorted: the names a certificate must cover besides the virtual
// hosts. Safe from any goroutine.
func (r *Router) ServiceDomains() []string {
	t := r.svc.Load()
	out := make([]string, 0, len(t.byDomain))
	for d := range t.byDomain {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// deliverAway hands a stanza to a destination outside this server's accounts and services:
// a component or the Remote. It returns the error condition for the sender, or nil.
func (r *Router) deliverAway(k destKind, from, to jid.JID, raw []byte) *stanza.Error {
	switch k {
	case destComponent:
		d, _ := r.componentOf(to.Domain())
		c, _ := r.component(d)
		if c == nil || !c.Send(raw) {
			// A configured component that is not connected (restarting, say) is a
			// temporary condition: senders such as push may retry later.
			e := stanza.New(stanza.ServiceUnavailable)
			e.Type = stanza.Wait
			return e
		}
		r.routed.Add(1)
		return nil
	case destRemote:
		rm := r.remote.Load()
		if rm == nil {
			return stanza.New(stanza.RemoteServerNotFound)
		}
		if err := (*rm).Route(from, to, raw); err != nil {
			var se *stanza.Error
			if errors.As(err, &se) {
				return se
			}
			return stanza.New(stanza.RemoteServerNotFound)
		}
		r.routed.Add(1)
		return nil
	}
	return stanza.New(stanza.ServiceUnavailable)
}

// SubmitFrom hands the router a stanza that arrived from a component (or, later, a remote
// server) whose sender the engine has already checked: from must be inside the domain the
// peer authenticated for. raw is copied. The stanza skips the outbound phase (there is no
// local sender) and goes to its destination in the shard of its sender, so stanzas from one
// sender stay in order. It returns false when that shard is overloaded.
func (r *Router) SubmitFrom(from jid.JID, raw []byte) bool {
	if r.closed.Load() {
		return true
	}
	o := copyOp(opRelay, raw)
	o.bare = from
	return r.pushOrDrop(r.shardOf(from.Bare().String()).q, o)
}

// Charge bounds the bytes one peer's stream (a federated server's) has inside the router
// at once, as Options.SenderInflight does for a client's session: over its bound the
// peer's stanzas wait in the stream (Blocked) until enough of them have been handled,
// when the router calls the stream's Resume. A peer that floods one user's shard (offline
// storage, the archive) slows down instead of growing that shard's queue without end.
type Charge struct {
	inflight atomic.Int64
	blocked  atomic.Bool
	c        Conn
}

// peerInflightFactor times Options.SenderInflight is a peer's bound: a server carries
// many users' stanzas.
const peerInflightFactor = 4

// NewCharge returns the charge of the stream c.
func NewCharge(c Conn) *Charge { return &Charge{c: c} }

// Blocked reports whether the stream should not be read from until its Resume.
func (ch *Charge) Blocked() bool { return ch.blocked.Load() }

func (ch *Charge) charge(n, limit int64) {
	if ch.inflight.Add(n) > limit {
		ch.blocked.Store(true)
		if ch.inflight.Load() <= limit/2 { // credits ran meanwhile: as Session.charge
			ch.blocked.CompareAndSwap(true, false)
		}
	}
}

func (ch *Charge) credit(n, limit int64) {
	if ch.inflight.Add(-n) <= limit/2 && ch.blocked.CompareAndSwap(true, false) {
		ch.c.Resume()
	}
}

// SubmitFromCharged is SubmitFrom for a stanza of the stream ch charges.
func (r *Router) SubmitFromCharged(from jid.JID, raw []byte, ch *Charge) bool {
	if r.closed.Load() {
		return true
	}
	o := copyOp(opRelay, raw)
	o.bare = from
	o.peer, o.n = ch, int64(len(raw))
	ch.charge(o.n, peerInflightFactor*int64(r.opts.SenderInflight))
	return r.pushOrDrop(r.shardOf(from.Bare().String()).q, o)
}

// Bounce answers raw, a stanza the Remote accepted earlier and could not deliver, with the
// error se from its recipient to its sender (never for an error, a presence or an IQ
// result). Safe for concurrent use; raw is copied.
func (r *Router) Bounce(raw []byte, se *stanza.Error) {
	if r.closed.Load() {
		return
	}
	r.bounce(raw, se)
}
