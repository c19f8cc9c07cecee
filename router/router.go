package router

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/bytebufferpool"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Tunables.
const (
	// DefaultShards is well above the core count so a worker waiting on storage does not
	// stall many users.
	DefaultShards = 64
	// QueueLimit bounds each shard's queue; a client whose stanza would exceed it is told
	// to slow down (the engine closes it with policy-violation) instead of growing memory.
	QueueLimit = 1 << 16
	// MaxSessionsPerUser bounds resources per account (resource-constraint above).
	MaxSessionsPerUser = module.MaxResources
	// DefaultOfflineQuota is the per-user offline message limit.
	DefaultOfflineQuota = 1000
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("router: closed")

// Conn is implemented by the engine: the router's handle to one bound client stream.
type Conn interface {
	// Send copies b into the stream's write queue. Safe for concurrent use; never blocks;
	// false when the stream is closed or over its outbound cap.
	Send(b []byte) bool
	// Resume tells the stream that its session is no longer blocked (Session.Blocked):
	// reading from the client may go on. Safe for concurrent use.
	Resume()
	// Drained calls f once everything sent before it has been written to the socket
	// (true, also when the stream has ended since), or when the stream is gone before
	// that (false). f may run on any goroutine.
	Drained(f func(ok bool))
	// Close sends a stream error with cond ("" for none), closes the stream. Idempotent.
	Close(cond stanza.StreamCondition)
}

// Opener is implemented by a Conn that knows when its stream was opened. A bind of such
// a stream is refused when its account's sessions were closed since (CloseUser: the
// account was removed or disabled, or an operator ended its sessions): the stream had
// authenticated, or was about to, before the close, and would otherwise come back as a
// session the close was meant to end.
type Opener interface {
	Opened() time.Time
}

// closedKeep is how long a shard remembers that an account's sessions were closed, for
// Opener: longer than a stream may wait between its opening and its bind (the pre-auth
// timeout).
const closedKeep = 10 * time.Minute

// NearSender is implemented by a Conn that takes a stanza more cheaply from the event
// loop running another Conn's code: the router routing in place a message that near's
// client sent (Submit). SendNear is Send otherwise.
type NearSender interface {
	SendNear(b []byte, near Conn) bool
}

// Options configure a Router.
type Options struct {
	Domains      []string
	Shards       int
	Store        store.Store
	Modules      []string // IDs to enable; nil = all registered
	ModuleConfig func(id string, v any) error
	Logger       zerolog.Logger
	OfflineQuota int
	Now          func() time.Time
	// Workers is the size of the bounded worker pool (default 2 per CPU); WorkQueue its
	// queue depth (default 4096).
	Workers, WorkQueue int
	// DetachedLimits bound what a detached session queues (default 1000 stanzas, 1 MiB).
	DetachedLimits Limits
	// SenderInflight bounds the bytes of one session's stanzas inside the router at once
	// (default 1 MiB); above it the engine stops reading that client until they drain.
	SenderInflight int
	// SenderRate shapes what one session submits: a token bucket of SenderBurst bytes
	// refilled at SenderRate bytes a second; a session in debt is blocked (the engine
	// holds its client's input) until the debt is repaid. 0: no shaping.
	// SetSenderRate changes both while the router runs.
	SenderRate, SenderBurst int
	// DataDir and TLS are handed to modules as they are (module.Registrar DataDir and
	// TLSConfig); the router itself uses neither.
	DataDir string
	TLS     *tls.Config
	// Controller is handed to modules as it is (module.Registrar Controller); nil when
	// nothing outside the server can reload or stop it.
	Controller module.Controller
	// WebURL is handed to modules as module.Registrar WebURL; nil: no web pages.
	WebURL func(domain string) string
	// NoInline makes every op go through its shard's queue and worker instead of running
	// in place on idle shards (SetInPlace changes it while the router runs).
	NoInline bool
	// HostModules turns modules off per virtual host ([vhosts] modules_disabled;
	// SetHostModules changes it while the router runs).
	HostModules map[string][]string
	// HostModuleConfig returns the hosts with a [vhosts."<host>".modules.<id>] table for
	// module id and what decodes the module's settings on one (module.Reconfig.Hosts,
	// DecodeHost).
	HostModuleConfig func(id string) (hosts []string, decode func(host string, v any) error)
}

// Limits bound a queue by stanzas and by bytes.
type Limits struct {
	Stanzas int
	Bytes   int
}

// Router routes stanzas between sessions and modules.
type Router struct {
	opts    Options
	log     zerolog.Logger
	st      store.Store
	now     func() time.Time
	seed    maphash.Seed
	domains atomic.Pointer[map[string]bool]
	first   atomic.Pointer[string]
	shards  []*shard
	reg     *registry
	// svc is the service domains: read by every shard, replaced whole when virtual hosts
	// come or go (hosts.go).
	svc atomic.Pointer[serviceTable]
	// isolated is the hosts whose users reach their own host only (isolated.go); nil:
	// none.
	isolated atomic.Pointer[map[string]bool]
	// extUsers answers for accounts the store does not hold yet (SetExternalUsers).
	extUsers atomic.Pointer[UserChecker]
	// barriers holds each session's last Barrier while it runs (*Session to *barrier):
	// the next one waits for it. Only sessions with a barrier under way have an entry.
	barriers sync.Map
	// accounts is what modules change accounts through (SetAccounts; nil: the store's).
	accounts atomic.Pointer[module.Accounts]
	// privileges are the components' XEP-0356 privileges, by domain (SetPrivileges);
	// watchers the components among them that get users' presence (managed_entity).
	privileges atomic.Pointer[map[string]module.Privileges]
	watchers   atomic.Pointer[[]jid.JID]
	hostsMu    sync.Mutex // serializes SetDomains
	mods       []module.Module
	closed     atomic.Bool
	wg         sync.WaitGroup
	// started is the base of the monotonic clock of detached sessions' expiries
	// (expiry.go); stopTick stops their ticker.
	started  time.Time
	stopTick chan struct{}
	rm       removals
	work     *pool
	comps    components
	remote   atomic.Pointer[Remote]

	caps atomic.Pointer[capsCache]
	// hostMods is what virtual hosts turn off of the modules (hostmods.go); nil: nothing.
	// infoGen counts the changes to what HostInfo derives from (modules per host, forms,
	// services), hostInfos caches HostInfo per host.
	hostMods  atomic.Pointer[hostModules]
	infoGen   atomic.Uint64
	hostInfos sync.Map

	noInline  atomic.Bool // Options.NoInline, SetInPlace
	online    atomic.Int64
	detachedN atomic.Int64
	routed    atomic.Int64
	dropped   atomic.Int64
	// senderRate and senderBurst are Options.SenderRate and SenderBurst (SetSenderRate);
	// shaped counts the times a sender went into debt.
	senderRate, senderBurst atomic.Int64
	shaped                  atomic.Int64

	// Cold fields go last, so that adding one leaves the hot counters above where they
	// were on their cache lines.
	// rosterWatchers are the components that get every user's roster pushes (XEP-0356 §4.4).
	rosterWatchers atomic.Pointer[[]jid.JID]
	// contactWatchers are the components that get the presence of users' remote contacts
	// too (XEP-0356 §7.4), with what they were last sent of each.
	contactWatchers contactPresence
	// ephemeralGone hears of ephemeral accounts whose last session ended (ephemeral.go).
	ephemeralGone atomic.Pointer[func(bare jid.JID)]
}

// New provisions the modules and starts the shard workers.
func New(o Options) (*Router, error) {
	if o.Store == nil {
		return nil, errors.New("router: no store")
	}
	if len(o.Domains) == 0 {
		return nil, errors.New("router: no domains")
	}
	if o.Shards <= 0 {
		o.Shards = DefaultShards
	}
	if o.OfflineQuota == 0 {
		o.OfflineQuota = DefaultOfflineQuota
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Workers <= 0 {
		o.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if o.WorkQueue <= 0 {
		o.WorkQueue = 4096
	}
	if o.DetachedLimits.Stanzas <= 0 {
		o.DetachedLimits.Stanzas = 1000
	}
	if o.DetachedLimits.Bytes <= 0 {
		o.DetachedLimits.Bytes = 1 << 20
	}
	if o.SenderInflight <= 0 {
		o.SenderInflight = 1 << 20
	}
	senderLimit.Store(int64(o.SenderInflight))
	r := &Router{opts: o, log: o.Logger, st: o.Store, now: o.Now, seed: maphash.MakeSeed(),
		started: time.Now(), stopTick: make(chan struct{})}
	r.noInline.Store(o.NoInline)
	r.SetSenderRate(o.SenderRate, o.SenderBurst)
	r.storeDomains(o.Domains)
	r.reg = newRegistry(r)
	if err := r.provision(); err != nil {
		return nil, err
	}
	if err := r.SetHostModules(o.HostModules); err != nil {
		return nil, err
	}
	r.work = newPool(o.Workers, o.WorkQueue)
	r.shards = make([]*shard, o.Shards)
	for i := range r.shards {
		r.shards[i] = newShard(r, i)
	}
	for _, s := range r.shards {
		r.wg.Add(1)
		go s.run()
	}
	r.wg.Add(1)
	go r.expireLoop()
	return r, nil
}

func (r *Router) provision() error {
	var ids []string
	if r.opts.Modules != nil {
		ids = r.opts.Modules
	} else {
		for _, i := range module.All() {
			ids = append(ids, i.ID)
		}
	}
	for _, id := range ids {
		info, ok := module.Lookup(id)
		if !ok {
			return fmt.Errorf("router: unknown module %q", id)
		}
		m := info.New()
		if p, ok := m.(module.Provisioner); ok {
			if err := p.Provision(r.reg.forModule(id)); err != nil {
				return fmt.Errorf("module %s: %w", id, err)
			}
		}
		r.mods = append(r.mods, m)
	}
	if len(r.reg.errs) > 0 {
		return errors.Join(r.reg.errs...)
	}
	r.reg.freeze()
	return nil
}

func (r *Router) storeDomains(d []string) {
	m := make(map[string]bool, len(d))
	for _, x := range d {
		m[x] = true
	}
	r.domains.Store(&m)
	first := d[0]
	r.first.Store(&first)
}

func (r *Router) isLocal(domain string) bool { return (*r.domains.Load())[domain] }

// Features lists the server's disco features (for stream features such as roster
// versioning and pre-approval).
func (r *Router) Features() []string { return r.reg.Features() }

// Close stops the workers after they drain their queues and cleans up modules.
func (r *Router) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	for _, s := range r.shards {
		o := getOp()
		o.kind = opExpireAll
		s.q.pushForce(o)
	}
	// What one shard still runs queues work on others (a message's recipient phase, an
	// ended session's stanzas for offline storage, a job's answer): every shard runs
	// until all are idle, or StopWait passes, and the pool's jobs finish in between.
	deadline := time.Now().Add(StopWait)
	r.settle(deadline)
	r.work.stop()
	if !r.settle(deadline) {
		r.log.Warn().Msg("router: shards still busy at shutdown")
	}
	for _, s := range r.shards {
		close(s.quit)
	}
	close(r.stopTick)
	r.wg.Wait()
	r.work.stop()
	var errs []error
	for _, m := range r.mods {
		if c, ok := m.(module.Cleaner); ok {
			errs = append(errs, c.Cleanup())
		}
	}
	return errors.Join(errs...)
}

// settle waits, until deadline, for every shard to be idle: rounds of an op on each
// shard, until a round in which no shard ran anything between its op and the one of the
// round before. Then nothing is left that a shard could hand to another; only what comes
// from outside the shards (connections, timers) could still queue work.
func (r *Router) settle(deadline time.Time) bool {
	prev := make([]uint64, len(r.shards))
	seen := make([]uint64, len(r.shards))
	for round := 0; time.Now().Before(deadline); round++ {
		var wg sync.WaitGroup
		wg.Add(len(r.shards))
		for i, s := range r.shards {
			o := getOp()
			o.kind = opCall
			o.fn = func(module.Context) {
				seen[i] = s.handled
				wg.Done()
			}
			s.q.pushForce(o)
		}
		if !waitGroupUntil(&wg, deadline) {
			return false
		}
		idle := round > 0
		for i := range seen {
			idle = idle && seen[i] == prev[i]+1 // its own op only
			prev[i] = seen[i]
		}
		if idle {
			return true
		}
	}
	return false
}

func (r *Router) shardOf(bare string) *shard {
	return r.shards[maphash.String(r.seed, bare)%uint64(len(r.shards))]
}

// BindBound is Bind for an XEP-0386 Bind2 login: done also gets what the modules add to
// <bound/> (module.Registrar.Bound), made in the session's shard as it is bound.
func (r *Router) BindBound(user jid.JID, resource string, c Conn, done func(s *Session, bound []byte, err error)) {
	r.Bind(user, resource, c, func(s *Session, err error) {
		var b []byte
		if err == nil {
			b = s.shard.boundExtras(s) // Bind's done runs on the session's shard
		}
		done(s, b, err)
	})
}

// TryBind is Bind run on the caller's goroutine while user's shard is idle (runInline's
// rule), for an event loop that would otherwise wait for the shard's worker and then for
// a wake-up of its own: two hand-offs that cost a login more than the bind itself. It
// reports false, having done nothing, when the bind must go through Bind: the shard is
// busy, routing in place is off, or resource is bound already (the replaced session's end
// runs the modules' session-end callbacks, which may wait for the disk).
func (r *Router) TryBind(user jid.JID, resource string, c Conn) (s *Session, ok bool, err error) {
	if r.closed.Load() || r.noInline.Load() {
		return nil, false, nil
	}
	bare := user.Bare()
	t := r.shardOf(bare.String())
	if !t.mu.TryLock() {
		return nil, false, nil
	}
	defer t.mu.Unlock()
	if t.q.len() != 0 {
		return nil, false, nil
	}
	if u := t.users[bare.String()]; resource != "" && u != nil && u.find(resource) != nil {
		return nil, false, nil
	}
	if _, ok := t.closed[bare.String()]; ok {
		return nil, false, nil // the bind reads the store (closedSince)
	}
	o := getOp()
	o.kind = opBind
	o.bare = bare
	o.resource = resource
	o.conn = c
	o.done = func(se *Session, e error) { s, err = se, e }
	t.handle(o)
	if s == nil && err == nil {
		err = stanza.New(stanza.InternalServerErrorCond) // a panic, contained by handle
	}
	return s, true, err
}

// TryBindBound is TryBind for an XEP-0386 bind. It also reports false while any module
// adds to <bound/> (Registrar.Bound): those additions may read the disk (MAM's archive
// metadata), which an event loop must not wait for.
func (r *Router) TryBindBound(user jid.JID, resource string, c Conn) (s *Session, bound []byte, ok bool, err error) {
	if len(r.reg.bound) != 0 {
		return nil, nil, false, nil
	}
	s, ok, err = r.TryBind(user, resource, c)
	return s, nil, ok, err
}

// Bind creates a session for user/resource (resource "" means server-generated). A
// session with the same full JID is replaced; its Conn is closed with conflict. done runs on
// a shard worker with the session or a *stanza.Error.
func (r *Router) Bind(user jid.JID, resource string, c Conn, done func(s *Session, err error)) {
	if r.closed.Load() {
		done(nil, stanza.New(stanza.ServiceUnavailable))
		return
	}
	o := getOp()
	o.kind = opBind
	o.bare = user.Bare()
	o.resource = resource
	o.conn = c
	o.done = done
	r.shardOf(o.bare.String()).q.pushForce(o)
}

// Submit hands one stanza from a bound session to the router. It copies st.Raw with 'from'
// stamped before returning. It returns false when the sender's shard is overloaded or the
// element is not a stanza; the engine then closes the stream.
func (r *Router) Submit(s *Session, st *xmlstream.Stanza) bool {
	var k module.Kind
	switch st.Kind() {
	case xmlstream.KindMessage:
		k = module.KindMessage
	case xmlstream.KindPresence:
		k = module.KindPresence
	case xmlstream.KindIQ:
		k = module.KindIQ
	default:
		return false
	}
	if s.gone.Load() || r.closed.Load() {
		return true
	}
	o := getOp()
	o.kind = opOut
	o.sess = s
	o.pk = k
	o.buf = bufPool.Get()
	o.buf.B = xmlstream.SetAttrs(o.buf.B[:0], st.Raw, xmlstream.AttrSet{Name: "from", Value: s.fullB()})
	o.charged, o.n = s, int64(len(o.buf.B))
	o.t0 = sampleT0()
	s.charge(o.n, int64(r.opts.SenderInflight))
	if rate := r.senderRate.Load(); rate > 0 {
		r.shape(s, o.n, rate)
	}
	// A message goes through an idle shard on the caller's goroutine (the event loop that
	// read it), and on into the recipient's when that is idle too (forwardInline): at
	// ordinary rates that saves both hand-offs. Presence and IQs go to the worker: their
	// hooks and handlers write rosters and answer after a sync.
	if k == module.KindMessage && !r.reg.waits[module.Outbound][module.KindMessage] && s.shard.runInline(o, true) {
		return true
	}
	return r.pushOrDrop(s.shard.q, o)
}

// Barrier calls done once every stanza submitted for s before the call has been through
// its recipient's phase (stored for an offline user, archived, delivered, or handed to a
// service, a component or a remote server) and the store's lazy writes are synced: ok is
// false when that sync failed. XEP-0198's <a/> acknowledges stanzas the client may then
// forget, so it waits for this (engine). done runs on a shard's goroutine, or at once
// when the router is closed. Stanzas go through the sender's shard in order, and from
// there into the queues of their recipients' shards: the barrier follows them through
// the first, then through those of the others its stanzas were queued on since the last
// barrier (Session.touched). A Barrier called before the session's last one is done
// waits for that one too: the marks it follows were taken by it.
func (r *Router) Barrier(s *Session, done func(ok bool)) {
	if r.closed.Load() {
		done(true)
		return
	}
	o := getOp()
	o.kind = opBarrier
	o.sess = s
	o.barrier = &barrier{done: done}
	s.shard.q.pushForce(o)
}

// barrier is one Barrier call: the shards still to pass, and the earlier barrier of the
// session when it was still running (counted in left).
type barrier struct {
	left atomic.Int32
	done func(bool)
	sess *Session // while it may be the session's entry in Router.barriers

	mu       sync.Mutex
	finished bool
	then     []*barrier // later barriers of the session waiting for this one
}

// arrive counts one of the shards (or the earlier barrier) b waits for; the last one
// syncs the lazy writes and completes b, and then the barriers that waited for it.
func (r *Router) arrive(b *barrier) {
	if b.left.Add(-1) > 0 {
		return
	}
	ok := r.syncLazy()
	b.mu.Lock()
	b.finished = true
	then := b.then
	b.then = nil
	b.mu.Unlock()
	if b.sess != nil {
		r.barriers.CompareAndDelete(b.sess, b)
	}
	b.done(ok)
	for _, n := range then {
		r.arrive(n)
	}
}

// wait makes n wait for b; false when b is finished already.
func (b *barrier) wait(n *barrier) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return false
	}
	b.then = append(b.then, n)
	return true
}

// shape charges n bytes to s's token bucket and, when that puts it in debt, holds the
// session (Blocked) and schedules its resumption for when the debt is repaid. Credits
// that drain a session blocked for its bytes in flight leave one in debt held.
func (r *Router) shape(s *Session, n, rate int64) {
	now := uint32(time.Since(r.started) / time.Millisecond)
	wait := s.spend(n, rate, r.senderBurst.Load(), now)
	if wait <= 0 || !s.rateHeld.CompareAndSwap(false, true) {
		return
	}
	r.shaped.Add(1)
	time.AfterFunc(wait, func() {
		s.rateHeld.Store(false)
		if !s.blocked.Load() { // else its credits resume it, now that it is out of debt
			s.resume()
		}
	})
}

// SetSenderRate changes Options.SenderRate and SenderBurst; safe for concurrent use.
func (r *Router) SetSenderRate(rate, burst int) {
	r.senderBurst.Store(int64(burst))
	r.senderRate.Store(int64(rate))
}

// SetInPlace turns routing in place on idle shards on or off (router.route_in_place): off,
// every stanza goes through its shards' queues and workers, as it would if a module's
// hooks could not run on an event loop. Safe for concurrent use; ops already running in
// place finish there.
func (r *Router) SetInPlace(on bool) { r.noInline.Store(!on) }

// senderLimit is Options.SenderInflight for putOp, which has no router at hand.
var senderLimit atomic.Int64

// Registered tells the modules (module.Registrar.OnRegistered) that reg.User created
// its account: their functions run on the account's shard, so before anything a login of
// it queues there afterwards. Safe for concurrent use.
func (r *Router) Registered(reg module.Registration) {
	if r.closed.Load() || len(r.reg.registered) == 0 {
		return
	}
	reg.User = reg.User.Bare()
	o := getOp()
	o.kind = opCall
	o.bare = reg.User
	o.fn = func(c module.Context) {
		v := r.view(reg.User.Domain())
		for _, f := range r.reg.registered {
			if !v.disabled(f.id) {
				f.v(c, reg)
			}
		}
	}
	r.shardOf(reg.User.String()).q.pushForce(o)
}

// Unbind ends a session. Safe to call once per session from any goroutine; later calls
// do nothing.
func (r *Router) Unbind(s *Session) {
	if s == nil || !s.gone.CompareAndSwap(false, true) {
		return
	}
	o := getOp()
	o.kind = opUnbind
	o.sess = s
	s.shard.q.pushForce(o)
}

// OnlineUsers snapshots, on every shard's worker, the accounts (bare JIDs) with at least
// one session, attached or detached, and runs done with all of them on the worker of the
// shard that finishes last: for administration (which accounts are in use now), not for
// anything a stanza waits on.
func (r *Router) OnlineUsers(done func(users []string)) {
	var mu sync.Mutex
	var all []string
	r.onEveryShard(func(sh *shard) {
		var part []string
		for _, u := range sh.users {
			for _, se := range u.sessions {
				if !se.gone.Load() {
					part = append(part, u.bare.String())
					break
				}
			}
		}
		mu.Lock()
		all = append(all, part...)
		mu.Unlock()
	}, func() { done(all) })
}

// UserSessions calls done, on the user's shard, with the sessions of bare (attached or
// detached) as they are now: none when the user is offline. Safe for concurrent use.
func (r *Router) UserSessions(bare jid.JID, done func([]module.OnlineSession)) {
	bare = bare.Bare()
	key := bare.String()
	sh := r.shardOf(key)
	o := getOp()
	o.kind = opCall
	o.bare = bare
	o.fn = func(module.Context) {
		var out []module.OnlineSession
		if u := sh.users[key]; u != nil {
			for _, se := range u.sessions {
				if !se.gone.Load() {
					out = append(out, se.online())
				}
			}
		}
		done(out)
	}
	sh.q.pushForce(o)
}

// online describes se for the administration queries. Called by the goroutine that owns
// its shard.
func (se *Session) online() module.OnlineSession {
	return module.OnlineSession{JID: se.jid, Available: se.available, Priority: int(se.prio),
		Detached: se.conn == nil, Inactive: se.x != nil && se.x.filter != nil} // a filter holds back for XEP-0352
}

// onEveryShard runs each on every shard's worker (which owns that shard's users and
// sessions), and last on the worker of the shard that finishes last, after every each.
func (r *Router) onEveryShard(each func(sh *shard), last func()) {
	var left atomic.Int32
	left.Store(int32(len(r.shards)))
	for _, sh := range r.shards {
		o := getOp()
		o.kind = opCall
		o.fn = func(module.Context) {
			each(sh)
			if left.Add(-1) == 0 {
				last()
			}
		}
		sh.q.pushForce(o)
	}
}

// CloseUser closes every session of the account j names with cond (account removed or
// disabled), or only the one of j's resource when j is a full JID (module.ServerSessions).
func (r *Router) CloseUser(j jid.JID, cond stanza.StreamCondition) {
	o := getOp()
	o.kind = opCloseUser
	o.bare = j // full when one resource is meant: the shard takes the bare part for the user
	o.cond = cond
	r.shardOf(j.Bare().String()).q.pushForce(o)
}

// syncLazy makes the store's lazy writes durable before the server answers an IQ: an answer
// acknowledges what the client sent before it (a ping after messages), and the archive
// copies of those must not be lost to a crash after it (store.LazySyncer). It reports
// whether they are: a result must not go out when they are not.
func (r *Router) syncLazy() bool {
	if ls, ok := r.st.(store.LazySyncer); ok {
		if err := ls.SyncLazy(); err != nil {
			if module.LogStoreError(err) {
				r.log.Error().Err(err).Msg("router: sync lazy writes")
			}
			return false
		}
	}
	return true
}

// Stats are router counters.
type Stats struct {
	Online   int64 `json:"online"`
	Detached int64 `json:"detached"`
	Routed   int64 `json:"routed"`
	Dropped  int64 `json:"dropped"`
	Queued   int   `json:"queued"`
	Shards   int   `json:"shards"`
	// Shaped counts the times a sender went over its rate (Options.SenderRate).
	Shaped int64 `json:"shaped"`
}

// Stats returns a snapshot of the counters.
func (r *Router) Stats() Stats {
	st := Stats{Online: r.online.Load(), Detached: r.detachedN.Load(), Routed: r.routed.Load(), Dropped: r.dropped.Load(),
		Shards: len(r.shards), Shaped: r.shaped.Load()}
	for _, s := range r.shards {
		st.Queued += s.q.len()
		st.Routed += s.stats.routed.Load()
	}
	return st
}

// route sends a server- or module-generated stanza (raw carries from and to) to its
// destination: the inbound phase of a local account, the server, a service, a component or
// the Remote. What cannot be delivered is answered with an error to its sender.
func (r *Router) route(raw []byte) {
	r.forward(copyOp(0, raw))
}

// forward sends an op holding a stanza (o.buf) to its destination. o.to must be parsed,
// or it is parsed here.
func (r *Router) forward(o *op) {
	if o.to.IsZero() {
		e, err := xmlstream.ParseElement(o.buf.B, "jabber:client")
		if err == nil {
			if v, ok := e.Attr("to"); ok {
				o.to, _ = jid.ParseBytes(xmlstream.AppendUnescaped(nil, v))
			}
		}
	}
	if o.to.IsZero() {
		putOp(o)
		return
	}
	// The sender, parsed at most once, by the first of the wall and a destination away
	// that needs it.
	var from jid.JID
	parsed := false
	sender := func() jid.JID {
		if !parsed {
			from, parsed = r.fromOf(o), true
		}
		return from
	}
	if r.isolated.Load() != nil {
		if e := r.walled(sender(), o.to); e != nil {
			r.bounce(o.buf.B, e)
			putOp(o)
			return
		}
	}
	k, sv := r.resolve(o.to)
	switch k {
	case destAccount, destServer:
		o.kind = opIn
		r.shardOf(o.to.Bare().String()).q.pushForce(o)
	case destService:
		o.kind = opService
		o.svc = sv
		r.shardOf(o.to.Bare().String()).q.pushForce(o)
	default:
		if se := r.deliverAway(k, sender(), o.to, o.buf.B); se != nil {
			r.bounce(o.buf.B, se)
		}
		putOp(o)
	}
}

// fromOf is o's sender: as the caller knew it, or parsed from the stanza.
func (r *Router) fromOf(o *op) jid.JID {
	from := o.from
	if !o.known {
		if e, err := xmlstream.ParseElement(o.buf.B, "jabber:client"); err == nil {
			if v, ok := e.Attr("from"); ok {
				from, _ = jid.ParseBytes(xmlstream.AppendUnescaped(nil, v))
			}
		}
	}
	return from
}

// bounce answers raw with a stanza error from its recipient to its sender (never an error
// for an error, RFC 6120 §8.3.1), through the resolver.
func (r *Router) bounce(raw []byte, se *stanza.Error) {
	e, err := xmlstream.ParseElement(raw, "jabber:client")
	if err != nil {
		return
	}
	if t, _ := e.Attr("type"); string(t) == "error" {
		return
	}
	from, ok1 := e.Attr("from")
	to, ok2 := e.Attr("to")
	if !ok1 || !ok2 || len(from) == 0 {
		return
	}
	if k := string(e.Name()); k == "presence" || (k == "iq" && !isRequest(e)) {
		return
	}
	var b xmlstream.Builder
	b.B = append(b.B, '<')
	b.B = append(b.B, e.Name()...)
	b.B = append(b.B, " type='error' from='"...)
	b.B = append(b.B, to...)
	b.B = append(b.B, "' to='"...)
	b.B = append(b.B, from...)
	b.B = append(b.B, '\'')
	if id, ok := e.Attr("id"); ok {
		b.B = append(b.B, " id='"...)
		b.B = append(b.B, id...)
		b.B = append(b.B, '\'')
	}
	b.B = append(b.B, '>')
	b.B = se.AppendXML(b.B)
	b.B = append(b.B, "</"...)
	b.B = append(b.B, e.Name()...)
	b.B = append(b.B, '>')
	r.route(b.B)
}

func isRequest(e xmlstream.Element) bool {
	t, _ := e.Attr("type")
	return string(t) == "get" || string(t) == "set"
}

var idEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newResource returns a random resourcepart for server-generated binds.
func newResource() string {
	var b [10]byte
	rand.Read(b[:])
	return "vireo-" + strings.ToLower(idEnc.EncodeToString(b[:]))
}

var bufPool bytebufferpool.Pool

// opKind says what an op asks a shard to do.
type opKind uint8

const (
	opBind opKind = iota
	opUnbind
	opOut
	opIn
	opCloseUser
	opService // inbound for an entity of a service domain
	opRelay   // a stanza from a component or remote server: resolve and pass on
	opNonza   // a top-level non-stanza element from a session
	opBind2   // an inline feature of an XEP-0386 bind request
	opDetach
	opAttach
	opExpire
	opCall      // Context.Async's done, back on the shard
	opResume    // a blocked sender has drained: resume its connection
	opExpireAll // shutdown: end every detached session
	opCloseHost // a virtual host was removed: close the sessions of its users
	opOutAs     // a message a privileged component sends as a user (SubmitAs)
	opIQAs      // an IQ a privileged component sends as a user (SubmitIQAs)
	opRosters   // rosters changed in the store: forget the cached ones
	opReplay    // a component may see users' presence: send it every available one
	opBarrier   // Barrier: at the sender's shard, then at each shard its stanzas went to
)

// op is one unit of work for a shard. It is pooled; its buffer travels with it.
type op struct {
	next     atomic.Pointer[op]
	kind     opKind
	pk       module.Kind
	cond     stanza.StreamCondition
	sess     *Session
	buf      *bytebufferpool.ByteBuffer
	to       jid.JID
	bare     jid.JID
	resource string
	conn     Conn
	done     func(*Session, error)
	svc      *module.Service
	charged  *Session // the sender whose inflight bytes this op holds
	peer     *Charge  // or the peer stream's (SubmitFromCharged)
	n        int64
	fn       func(module.Context)
	timeout  time.Duration
	queue    [][]byte // DetachWith's unacknowledged stanzas
	collect  func() [][]byte
	skip     int   // AttachSkip
	t0       int64 // monoNow at Submit for a stanza sampled for the latency histogram; 0 if not
	// known is set by RoutePacket: pk, typ, id and from describe buf, which the
	// recipient's shard then does not parse.
	known   bool
	typ, id string
	from    jid.JID
	// elem is buf parsed, when the sender's shard had that view of buf at hand (hasElem).
	elem    xmlstream.Element
	hasElem bool
	forced  bool     // queued with pushForce: counted apart from the bound (mpsc.forced)
	barrier *barrier // opBarrier
}

var opPool = sync.Pool{New: func() any { return new(op) }}

func getOp() *op { return opPool.Get().(*op) }

// copyOp returns an op of kind holding a pooled copy of raw.
func copyOp(kind opKind, raw []byte) *op {
	o := getOp()
	o.kind = kind
	o.buf = bufPool.Get()
	o.buf.B = append(o.buf.B[:0], raw...)
	return o
}

// pushOrDrop queues o on q, or drops it and counts the drop when q is full.
func (r *Router) pushOrDrop(q *mpsc, o *op) bool {
	if !q.push(o) {
		putOp(o)
		r.dropped.Add(1)
		return false
	}
	return true
}

func putOp(o *op) {
	if o.buf != nil {
		bufPool.Put(o.buf)
	}
	if o.charged != nil {
		o.charged.credit(o.n, senderLimit.Load())
		o.charged, o.n = nil, 0
	}
	if o.peer != nil {
		o.peer.credit(o.n, peerInflightFactor*senderLimit.Load())
		o.peer, o.n = nil, 0
	}
	o.next.Store(nil)
	o.kind, o.pk, o.cond = 0, 0, ""
	o.sess, o.buf, o.conn, o.done = nil, nil, nil, nil
	o.to, o.bare, o.resource = jid.JID{}, jid.JID{}, ""
	o.svc, o.fn, o.timeout = nil, nil, 0
	o.queue, o.skip, o.collect = nil, 0, nil
	o.t0 = 0
	o.known, o.typ, o.id, o.from = false, "", "", jid.JID{}
	o.elem, o.hasElem = xmlstream.Element{}, false
	o.barrier = nil
	opPool.Put(o)
}

// Reconfigure asks the running module id to check new settings (module.Reconfigurer) and
// returns what applies them; false when no such module runs or it cannot change its
// settings while it runs (they wait for a restart).
func (r *Router) Reconfigure(id string, rc module.Reconfig) (apply func(), ok bool, err error) {
	for _, m := range r.mods {
		if m.ModuleInfo().ID != id {
			continue
		}
		rm, ok := m.(module.Reconfigurer)
		if !ok {
			return nil, false, nil
		}
		rc.InfoForm = func(f module.Form) { r.reg.setInfoForm(id, f) }
		rc.HostInfoForms = func(typ string, byHost map[string]module.Form) { r.reg.setHostInfoForms(id, typ, byHost) }
		apply, err := rm.Reconfigure(rc)
		return apply, err == nil, err
	}
	return nil, false, nil
}
