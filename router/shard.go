package router

import (
	"bytes"
	"errors"
	"math"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// user is the in-memory state of one account, owned by its shard. Online users stay in
// the shard's map; offline users are built for one op and dropped.
type user struct {
	bare         jid.JID
	key          string
	sessions     []*Session
	roster       map[string]store.RosterItem // loaded at first use; nil when empty
	rosterLoaded bool
	exists       bool
	ephemeral    bool // a SASL ANONYMOUS account's: removed when its session ends (ephemeral.go)
}

func (u *user) find(resource string) *Session {
	for _, s := range u.sessions {
		if s.jid.Resource() == resource {
			return s
		}
	}
	return nil
}

// toCacheMax bounds the per-shard cache of parsed 'to' JIDs.
const toCacheMax = 4096

type shard struct {
	r   *Router
	idx int
	q   *mpsc
	// mu is held by whoever runs the shard's ops: its worker while it drains the queue, or
	// a goroutine that runs one op in place because the shard was idle (runInline). It
	// is the shard's ownership, not a lock around data: user state still belongs to one
	// goroutine at a time.
	mu sync.Mutex
	// onLoop is set while the shard runs an op in place for an event loop (Submit), which
	// must not wait for the disk: what might is queued instead (runInline).
	onLoop bool
	// near is, while the shard runs an op in place for an event loop, the Conn of the
	// client whose stanza it is: the loop runs that Conn's code (NearSender).
	near    Conn
	quit    chan struct{}
	users   map[string]*user
	toJID   map[string]jid.JID // raw 'to' bytes -> parsed JID, so routing does not allocate
	ctx     shardCtx
	pkt     module.Packet
	sess    []module.Session // scratch for Context.Sessions
	tmp     []byte
	scratch [2][]byte // lent to hooks that rewrite Packet.Raw
	push    uint64
	gen     uint64 // detach generations
	handled uint64 // ops run, under mu: Router.settle sees whether a shard was idle
	exp     expiries
	// nextExpiry is the earliest time in exp (Router.mono), for the router's ticker;
	// expiryAsked is set while an opExpire it sent is queued.
	nextExpiry  atomic.Int64
	expiryAsked atomic.Bool
	stats       shardStats
	// extWait holds, per bare JID the store does not know, the stanzas waiting for the
	// external program's answer about it (waitExternal), in arrival order; extNo the bare
	// JIDs it said it does not know, until a Router.mono time.
	extWait map[string][]*op
	extNo   map[string]int64
	// privIQ holds the IQs privileged components sent as this shard's users (SubmitIQAs)
	// until their answers come (privileged.go); nil until the first.
	privIQ map[privKey]privIQ
	// closed holds, per bare JID, when CloseUser last closed every session of it
	// (Opener); entries go after closedKeep. nil until the first.
	closed      map[string]time.Time
	closedPrune int // len(closed) at which noteClosed next drops the old entries
}

func newShard(r *Router, i int) *shard {
	s := &shard{r: r, idx: i, q: newMPSC(QueueLimit), quit: make(chan struct{}),
		users: map[string]*user{}, toJID: map[string]jid.JID{}}
	s.ctx.s = s
	s.nextExpiry.Store(math.MaxInt64)
	return s
}

func (s *shard) run() {
	defer s.r.wg.Done()
	for {
		s.drain()
		if !s.q.park(s.quit) {
			s.drain()
			return
		}
	}
}

func (s *shard) drain() {
	s.mu.Lock()
	for o := s.q.pop(); o != nil; o = s.q.pop() {
		s.handle(o)
	}
	s.mu.Unlock()
}

// runInline runs o on the calling goroutine when the shard is idle: nobody runs its ops
// and none are queued, so o is next in the shard's order anyway. It saves the hand-off
// to the worker, a goroutine wake-up that costs more than routing a chat message does.
// It reports false, doing nothing, when o must be queued.
func (s *shard) runInline(o *op, onLoop bool) bool {
	if s.r.noInline.Load() || !s.mu.TryLock() {
		return false
	}
	if s.q.len() != 0 {
		s.mu.Unlock()
		return false
	}
	s.onLoop = onLoop
	if onLoop && o.sess != nil {
		s.near = o.sess.conn
	}
	s.handle(o)
	s.onLoop, s.near = false, nil
	s.mu.Unlock()
	return true
}

// handle runs one op. A panic in a module is contained to the op: the worker owns many
// users and must survive any one stanza.
func (s *shard) handle(o *op) {
	s.handled++
	keep := false
	defer func() {
		if v := recover(); v != nil {
			s.r.log.Error().Interface("panic", v).Bytes("stack", debug.Stack()).Msg("router: op panicked")
			keep = false
		}
		if !keep {
			putOp(o)
		}
	}()
	switch o.kind {
	case opBind:
		s.bind(o)
	case opUnbind:
		s.unbind(o.sess)
	case opCloseUser:
		if o.sess != nil {
			s.closeSession(o.sess, o.cond)
			break
		}
		if o.bare.IsBare() {
			s.noteClosed(o.bare.String())
		}
		if u := s.users[o.bare.Bare().String()]; u != nil {
			s.closeSessions(u, o.cond, o.bare.Resource())
		}
	case opCloseHost:
		for _, u := range s.users {
			if u.bare.Domain() == o.bare.Domain() {
				s.closeSessions(u, o.cond, "")
			}
		}
	case opOut:
		s.stats.in[o.pk].Add(1)
		keep = s.outbound(o)
	case opIn:
		keep = s.inbound(o)
	case opService:
		s.service(o)
	case opRelay:
		keep = s.relay(o)
	case opOutAs:
		keep = s.outboundAs(o)
	case opIQAs:
		keep = s.iqAs(o)
	case opReplay:
		s.replayPresence(o.to)
	case opRosters:
		for _, u := range s.users {
			s.rostersChanged(u)
		}
	case opNonza:
		s.nonza(o, s.r.reg.nonza)
	case opBind2:
		s.nonza(o, s.r.reg.bind2)
	case opExpireAll:
		s.expireAll()
	case opBarrier:
		s.barrier(o)
	case opResume:
		if se := o.sess; se.conn != nil && !se.gone.Load() {
			se.conn.Resume()
		}
	case opDetach:
		s.detach(o)
	case opAttach:
		s.attach(o)
	case opExpire:
		s.expireDue()
	case opCall:
		s.ctx.set(nil, s.userFor(o.bare, false))
		s.ctx.svc = o.to
		o.fn(&s.ctx)
		s.ctx.svc = jid.JID{}
	}
}

// closeSessions ends u's sessions, closing their streams with cond: all of them, or the
// one of resource when it is not empty.
func (s *shard) closeSessions(u *user, cond stanza.StreamCondition, resource string) {
	for _, se := range append([]*Session(nil), u.sessions...) {
		if resource != "" && se.JID().Resource() != resource {
			continue
		}
		s.closeSession(se, cond)
	}
}

// closeSession closes se's stream with cond and ends se now, not when the stream's close
// comes back: a stream with XEP-0198 resumption would otherwise leave the session
// detached, available to its contacts, and resumable by a client that was meant to be
// cut off. On se's shard.
func (s *shard) closeSession(se *Session, cond stanza.StreamCondition) {
	if !se.gone.CompareAndSwap(false, true) {
		return
	}
	if se.conn != nil {
		se.conn.Close(cond)
	}
	s.end(se)
}

func (s *shard) userFor(bare jid.JID, create bool) *user {
	key := bare.String()
	if u := s.users[key]; u != nil {
		return u
	}
	if !create {
		return nil
	}
	u := &user{bare: bare, key: key}
	s.users[key] = u
	return u
}

func (s *shard) dropIfIdle(u *user) {
	if len(u.sessions) == 0 {
		delete(s.users, u.key)
	}
}

// noteClosed records that every session of bare was closed now (Opener).
func (s *shard) noteClosed(bare string) {
	now := time.Now()
	if s.closed == nil {
		s.closed = map[string]time.Time{}
	}
	if len(s.closed) >= s.closedPrune {
		// Amortized: a bulk removal of many accounts must not scan the map per account.
		for k, t := range s.closed {
			if now.Sub(t) > closedKeep {
				delete(s.closed, k)
			}
		}
		s.closedPrune = max(64, 2*len(s.closed))
	}
	s.closed[bare] = now
}

// closedSince says whether the bind of c, a stream of bare, must be refused: it was
// opened before bare's sessions were last closed (Opener; to the second, so one opened
// just after counts too), and the account is gone, disabled, or made again since the
// close. The store is read only for an account closed in the last closedKeep:
// an operator who ended a user's sessions does not keep the user from logging in again.
func (s *shard) closedSince(bare string, c Conn) bool {
	if len(s.closed) == 0 {
		return false
	}
	at, ok := s.closed[bare]
	op, isOpener := c.(Opener)
	if !ok || !isOpener || op.Opened().After(at) {
		return false
	}
	acct, err := s.r.st.Accounts().Get(bare)
	return err != nil || acct.Disabled || acct.Created.After(at)
}

func (s *shard) bind(o *op) {
	if s.closedSince(o.bare.String(), o.conn) {
		// Not a session: the close already ended what this stream authenticated for.
		o.conn.Close(stanza.NotAuthorized)
		o.done(nil, stanza.New(stanza.NotAllowed))
		return
	}
	u := s.userFor(o.bare, true)
	res := o.resource
	if res == "" {
		res = newResource()
	}
	full, err := o.bare.WithResource(res)
	if err != nil {
		s.dropIfIdle(u)
		o.done(nil, stanza.New(stanza.BadRequest))
		return
	}
	if old := u.find(full.Resource()); old != nil {
		// RFC 6120 §7.7.2.2: the newer session wins; the older stream gets <conflict/>.
		old.gone.Store(true)
		if old.conn != nil {
			old.conn.Close(stanza.Conflict)
		}
		s.end(old)
		u = s.userFor(o.bare, true)
	}
	if len(u.sessions) >= MaxSessionsPerUser {
		s.dropIfIdle(u)
		o.done(nil, stanza.New(stanza.ResourceConstraintCond))
		return
	}
	eph := isEphemeral(o.conn)
	if eph {
		u.ephemeral = true
	}
	se := &Session{shard: s, conn: o.conn, jid: full, user: u}
	if eph {
		se.bits |= sEphemeral
	}
	se.rateTokens.Store(math.MaxInt32) // a full bucket: spend caps it at the burst
	u.sessions = append(u.sessions, se)
	u.exists = true
	s.r.online.Add(1)
	o.done(se, nil)
}

// boundExtras is what the modules add to se's XEP-0386 <bound/>.
func (s *shard) boundExtras(se *Session) []byte {
	var b []byte
	v := s.r.view(se.jid.Domain())
	for _, f := range s.r.reg.bound {
		if v.disabled(f.id) {
			continue
		}
		s.ctx.set(se, se.user)
		b = append(b, f.v(&s.ctx, se)...)
	}
	return b
}

func (s *shard) unbind(se *Session) {
	u := se.user
	if u == nil || u.find(se.jid.Resource()) != se {
		return // already replaced by a newer bind
	}
	s.end(se)
}

// removeSession takes se out of u and runs what a session end implies: unavailable presence
// to everyone who saw it available, then the modules' session-end callbacks.
func (s *shard) removeSession(u *user, se *Session) {
	for i, x := range u.sessions {
		if x == se {
			u.sessions = append(u.sessions[:i], u.sessions[i+1:]...)
			break
		}
	}
	s.r.online.Add(-1)
	if se.available {
		se.available = false
		se.presence = nil
		// A fresh buffer: hooks may use the shard's scratch while they read this packet.
		raw := append(make([]byte, 0, len(se.fullB())+48), "<presence type='unavailable' from='"...)
		raw = xmlstream.AppendEscapedAttr(raw, se.fullB())
		raw = append(raw, "'/>"...)
		s.setPacket(raw, module.KindPresence, "unavailable", "", se.jid, jid.JID{})
		s.ctx.set(se, u)
		s.runHooks(module.Outbound, module.KindPresence)
		s.toWatchers(raw)
	}
	s.ctx.set(se, u)
	v := s.r.view(se.jid.Domain())
	for _, f := range s.r.reg.sessEnd {
		if !v.disabled(f.id) {
			f.v(&s.ctx, se)
		}
	}
	se.user = nil
}

func (s *shard) setPacket(raw []byte, k module.Kind, typ, id string, from, to jid.JID) {
	s.pkt = module.Packet{Raw: raw, Kind: k, Type: typ, ID: id, From: from, To: to}
}

// parseTo returns the JID in a raw, escaped 'to' value, from the cache when possible.
func (s *shard) parseTo(v []byte) (jid.JID, error) {
	if j, ok := s.toJID[string(v)]; ok {
		return j, nil
	}
	var j jid.JID
	var err error
	if bytes.IndexByte(v, '&') >= 0 {
		j, err = jid.ParseBytes(xmlstream.AppendUnescaped(nil, v))
	} else {
		j, err = jid.ParseBytes(v)
	}
	if err != nil {
		return j, err
	}
	if len(s.toJID) >= toCacheMax {
		clear(s.toJID)
	}
	key := string(v)
	if key == j.String() {
		// Already canonical (nearly always): the key shares the JID's bytes, so a hit
		// brings into the cache the bytes that routing reads next (the recipient's
		// shard is chosen by them), and the entry costs one string instead of two.
		key = j.String()
	}
	s.toJID[key] = j
	return j, nil
}

// outbound runs the sender's phase for a client stanza. It reports whether o was handed on.
func (s *shard) outbound(o *op) bool {
	se := o.sess
	u := se.user
	// A stream that ends right after its last stanzas (a script that sends and closes)
	// unbinds before the shard reaches them; its Unbind comes after them in this queue, so
	// while the session is still its user's, what it sent is routed, not dropped.
	if u == nil || se.gone.Load() && u.find(se.jid.Resource()) != se {
		return false
	}
	e, err := xmlstream.ParseElement(o.buf.B, "jabber:client")
	if err != nil {
		return false
	}
	typ := internType(e, o.pk)
	var id string
	if v, ok := e.Attr("id"); ok && o.pk != module.KindMessage {
		if bytes.IndexByte(v, '&') >= 0 {
			v = xmlstream.AppendUnescaped(nil, v)
		}
		id = string(v)
	}
	var to jid.JID
	if v, ok := e.Attr("to"); ok {
		to, err = s.parseTo(v)
		if err != nil {
			if typ != "error" {
				s.setPacket(o.buf.B, o.pk, typ, id, se.jid, jid.JID{})
				s.ctx.set(se, u)
				s.ctx.Error(&s.pkt, stanza.New(stanza.JIDMalformed))
			}
			return false
		}
	}
	s.setPacket(o.buf.B, o.pk, typ, id, se.jid, to)
	s.pkt.SetElem(e)
	s.ctx.set(se, u)
	p := &s.pkt
	switch o.pk {
	case module.KindIQ:
		return s.outIQ(o, p, u)
	case module.KindPresence:
		if to.IsZero() {
			s.broadcastPresence(se, p, e)
			return false
		}
	case module.KindMessage:
		if to.IsZero() {
			// RFC 6120 §10.3.1: to the account itself. Written into the stanza too: what
			// handles it later from its bytes alone (a session that cannot deliver it,
			// offline storage) must find the address.
			p.To = u.bare
			p.Raw = xmlstream.SetAttrs(nil, p.Raw, xmlstream.AttrSet{Name: "to", Value: []byte(u.bare.String())})
		}
	}
	if s.runHooks(module.Outbound, o.pk) == module.Stop {
		return false
	}
	return s.forwardPacket(o, p)
}

func (s *shard) broadcastPresence(se *Session, p *module.Packet, e xmlstream.Element) {
	switch p.Type {
	case "":
		initial := !se.available
		se.available = true
		se.prio = 0
		if c, ok := e.Child("", "priority"); ok {
			s.tmp = c.AppendText(s.tmp[:0])
			if n, err := strconv.Atoi(string(bytes.TrimSpace(s.tmp))); err == nil && n >= -128 && n <= 127 {
				se.prio = int8(n)
			}
		}
		se.presence = append(se.presence[:0], p.Raw...)
		p.Initial = initial
		s.runHooks(module.Outbound, module.KindPresence)
		// Hooks may have added to it (XEP-0153 photo hash); probes get the final form.
		se.presence = append(se.presence[:0], s.pkt.Raw...)
		s.toWatchers(se.presence)
		if initial {
			s.ctx.set(se, se.user)
			v := s.r.view(se.jid.Domain())
			for _, f := range s.r.reg.avail {
				if !v.disabled(f.id) {
					f.v(&s.ctx, se)
				}
			}
		}
	case "unavailable":
		se.available = false
		se.presence = nil
		s.runHooks(module.Outbound, module.KindPresence)
		s.toWatchers(s.pkt.Raw)
	default:
		// Subscription states and probes need a 'to' (RFC 6121 §3); errors to nobody are dropped.
	}
}

func (s *shard) outIQ(o *op, p *module.Packet, u *user) bool {
	to := p.To
	toServer := to.IsZero() || (to.Local() == "" && to.Resource() == "" && s.r.isLocal(to.Domain()))
	toSelf := !to.IsZero() && to.IsBare() && to.Equal(u.bare)
	switch p.Type {
	case "get", "set":
		if toServer || toSelf {
			host, also := u.bare.Domain(), ""
			if !to.IsZero() && to.Domain() != host {
				// Another of the server's hosts, asked about itself. Its handler may act
				// on the asking account (XEP-0077 answers for iq.From): the modules the
				// user's own host turned off stay off, and a walled host stays walled.
				if s.r.isolated.Load() != nil {
					if e := s.r.walled(p.From, to); e != nil {
						s.ctx.Error(p, e)
						return false
					}
				}
				host = to.Domain()
				if pl, ok := p.Payload(); ok && !s.r.reg.public[string(pl.NS())] {
					also = u.bare.Domain() // a namespace that acts on the account
				}
			}
			s.dispatchIQ(false, host, p, also)
			return false
		}
		if to.Local() == "" && s.r.isLocal(to.Domain()) {
			s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
			return false
		}
	case "result", "error":
		if toServer || toSelf {
			// A resource's answer to a component's privileged IQ sent as its own
			// account (XEP-0356 §6) goes back to the component.
			if toSelf && s.privIQ != nil && s.privilegedAnswer(p) {
				return false
			}
			// Answers to server pushes and pings, and to what a module asked the
			// account's resources from its bare JID: a module's Outbound IQ hook may
			// take them; they go no further.
			s.runHooks(module.Outbound, module.KindIQ)
			return false
		}
	default:
		s.ctx.Error(p, stanza.New(stanza.BadRequest))
		return false
	}
	if s.runHooks(module.Outbound, module.KindIQ) == module.Stop {
		return false
	}
	return s.forwardPacket(o, p)
}

// dispatchIQ hands p to the module that answers it: an IQ to the server or the sender's
// own account, or with bare to another user's bare JID; host is the virtual host whose
// modules answer.
func (s *shard) dispatchIQ(bare bool, host string, p *module.Packet, also ...string) {
	payload, ok := p.Payload()
	if !ok {
		s.ctx.Error(p, stanza.New(stanza.BadRequest))
		return
	}
	t := module.IQGet
	if p.Type == "set" {
		t = module.IQSet
	}
	table, owners := s.r.reg.iq, s.r.reg.iqOwner
	if bare {
		table, owners = s.r.reg.iqBare, s.r.reg.iqBareOwner
	}
	k := iqKey{t, string(payload.NS()), string(payload.Name())}
	h := table[k]
	if h != nil && s.r.view(host).disabled(owners[k]) {
		h = nil // the host turned the module off
	}
	for _, a := range also {
		if h != nil && a != "" && s.r.view(a).disabled(owners[k]) {
			h = nil // so did the asking account's
		}
	}
	if h == nil {
		s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
		return
	}
	h(&s.ctx, p)
}

// forwardPacket sends p (maybe rewritten by hooks) on to its recipient. It reports whether o
// was handed on.
func (s *shard) forwardPacket(o *op, p *module.Packet) bool {
	to := p.To
	if to.IsZero() {
		return false
	}
	if s.r.isolated.Load() != nil { // the call only where some host is isolated
		if e := s.r.walled(p.From, to); e != nil {
			s.ctx.Error(p, e)
			return false
		}
	}
	k, sv := s.r.resolve(to)
	switch k {
	case destServer:
		// To the server itself: nothing here answers messages or presence.
		if p.Kind == module.KindMessage && p.Type != "error" && p.Type != "headline" {
			s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
		return false
	case destAccount, destService:
		if &p.Raw[0] != &o.buf.B[0] || len(p.Raw) != len(o.buf.B) {
			o.buf.B = append(o.buf.B[:0], p.Raw...)
		} else {
			// The bytes the hooks saw, unchanged: their parse goes along.
			o.elem, o.hasElem = p.Elem(), true
		}
		// The recipient's shard takes the packet as parsed here instead of parsing the
		// stanza and its JIDs again.
		o.to, o.from = to, p.From
		o.known, o.typ, o.id = true, p.Type, p.ID
		o.kind = opIn
		if k == destService {
			o.kind, o.svc = opService, sv
		}
		s.stats.routed.Add(1)
		t := s.r.shardOf(to.Bare().String())
		if o.charged != nil {
			// A Barrier follows it there: into t's queue, or behind what an inline
			// delivery that failed queued there (undeliverable, on an event loop).
			o.charged.touched |= 1 << (t.idx % 8)
		}
		if k == destAccount && s.forwardInline(t, o) {
			return true
		}
		t.q.pushForce(o)
		return true
	}
	if e := s.r.deliverAway(k, p.From, to, p.Raw); e != nil {
		s.ctx.Error(p, e)
	}
	return false
}

// barrier runs a Barrier's op. At the sender's shard (o.sess set) everything the session
// submitted before it has passed the outbound phase: it goes on to the shards those
// stanzas were queued on, behind them; at each of those the barrier is past them.
func (s *shard) barrier(o *op) {
	b := o.barrier
	se := o.sess
	if se == nil {
		s.r.arrive(b)
		return
	}
	mask := se.touched
	se.touched = 0
	var to []*shard
	for _, t := range s.r.shards {
		if mask&(1<<(t.idx%8)) != 0 {
			to = append(to, t)
		}
	}
	// The session's previous barrier, if still running, took the marks of what it
	// waits for: this one waits for it as well.
	var prev *barrier
	if v, ok := s.r.barriers.Load(se); ok {
		prev = v.(*barrier)
	}
	b.left.Store(int32(len(to)) + 2) // +2: this phase and prev, counted off below
	if len(to) > 0 || prev != nil {
		b.sess = se
		s.r.barriers.Store(se, b)
	}
	for _, t := range to {
		n := getOp()
		n.kind, n.barrier = opBarrier, b
		t.q.pushForce(n)
	}
	if prev == nil || !prev.wait(b) {
		s.r.arrive(b) // no previous barrier to wait for
	}
	s.r.arrive(b)
}

// forwardInline runs the recipient's phase of o in place, in t, when t is idle, instead of
// queuing it there. s is the shard running o's sender phase; when it runs for an event
// loop, only a message to a local user with an available session goes on in place
// (offline storage and hooks that declared WaitsForDisk would hold up the loop).
func (s *shard) forwardInline(t *shard, o *op) bool {
	if s.onLoop && (o.pk != module.KindMessage || s.r.reg.waits[module.Inbound][module.KindMessage]) {
		return false
	}
	if t == s {
		// The same shard, which s's goroutine owns already: o may go first only if
		// nothing is queued before it.
		if s.r.noInline.Load() || s.q.len() != 0 || s.onLoop && !t.available(o.to) {
			return false
		}
		s.handle(o)
		return true
	}
	if s.r.noInline.Load() || !t.mu.TryLock() {
		return false
	}
	if t.q.len() != 0 || s.onLoop && !t.available(o.to) {
		t.mu.Unlock()
		return false
	}
	t.onLoop, t.near = s.onLoop, s.near
	t.handle(o)
	t.onLoop, t.near = false, nil
	t.mu.Unlock()
	return true
}

// available reports whether to names a local user with a connected session that takes
// messages to the bare JID now (RFC 6121 §8.5.2: available, priority not negative), so
// that neither offline storage nor the detached queue is involved. Called by the goroutine
// that owns s.
func (s *shard) available(to jid.JID) bool {
	u := s.users[to.Bare().String()]
	if u == nil {
		return false
	}
	for _, se := range u.sessions {
		if se.available && se.conn != nil && se.prio >= 0 {
			return true
		}
	}
	return false
}

func (s *shard) runHooks(ph module.Phase, k module.Kind) module.Verdict {
	hooks := s.r.reg.hooks[ph][k]
	if m := s.r.hostMods.Load(); m != nil { // some host turns modules off
		host := s.pkt.To.Domain() // a recipient's modules
		if ph == module.Outbound {
			host = s.pkt.From.Domain() // a sender's
		}
		if v := (*m)[host]; v != nil {
			hooks = v.hooks[ph][k]
		}
	}
	for _, h := range hooks {
		if h.h(&s.ctx, &s.pkt) == module.Stop {
			return module.Stop
		}
	}
	return module.Continue
}

// inbound runs the recipient's phase for a stanza addressed to a local user. It reports
// whether it kept o (waiting for the external program's answer, waitExternal).
func (s *shard) inbound(o *op) bool {
	p, ok := s.opPacket(o)
	if !ok || p.To.IsZero() {
		return false
	}
	k, typ, to := p.Kind, p.Type, p.To
	if to.Local() == "" {
		s.toServer(p)
		return false
	}
	if len(s.extWait) > 0 {
		// Behind the stanzas held for the external program's answer, even once the
		// account exists (made before they are handed on): per sender, order holds.
		key := to.Bare().String()
		if q, ok := s.extWait[key]; ok && len(q) < ExternalWaitStanzas {
			s.extWait[key] = append(q, o)
			return true
		}
	}
	u := s.userFor(to.Bare(), false)
	if u == nil {
		u = &user{bare: to.Bare(), key: to.Bare().String()}
		if acct, err := s.r.st.Accounts().Get(u.key); err != nil || acct.Anonymous {
			// An ephemeral account without a session is one whose guest has left, about
			// to be removed: nobody is there to take anything.
			if errors.Is(err, store.ErrNotFound) && s.waitExternal(o, to.Bare(), u.key) {
				return true
			}
			s.ctx.set(nil, nil)
			// RFC 6121 §8.5.1: no such user.
			if typ != "error" && (k == module.KindIQ && (typ == "get" || typ == "set") || k == module.KindMessage) {
				s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
			}
			return false
		}
		u.exists = true
	}
	s.ctx.set(nil, u)
	if s.privIQ != nil && k == module.KindIQ && (typ == "result" || typ == "error") && to.IsBare() && s.privilegedAnswer(p) {
		return false
	}
	if s.runHooks(module.Inbound, k) == module.Stop {
		return false
	}
	if k == module.KindPresence && s.r.contactWatchers.w.Load() != nil {
		s.contactPresence(p, u)
	}
	if k == module.KindIQ {
		s.inIQ(p, u)
	} else {
		s.deliver(p, u)
	}
	if o.t0 != 0 {
		s.stats.latency.Observe(time.Duration(monoNow() - o.t0))
	}
	return false
}

func (s *shard) inIQ(p *module.Packet, u *user) {
	get := p.Type == "get" || p.Type == "set"
	if p.To.IsBare() {
		if get {
			s.dispatchIQ(true, p.To.Domain(), p)
		}
		return
	}
	if se := u.find(p.To.Resource()); se != nil {
		if !se.Send(p.Raw) && get {
			// The session took nothing (ending, its detached queue full, its stream
			// over its bound): the requester hears so rather than waiting for ever.
			s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
		return
	}
	if get {
		s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
	}
}

// deliver is the default delivery of RFC 6121 §8.5 for messages and presence to u.
func (s *shard) deliver(p *module.Packet, u *user) bool {
	if !p.To.IsBare() {
		if se := u.find(p.To.Resource()); se != nil {
			if se.Send(p.Raw) {
				return true
			}
			if p.Kind == module.KindMessage {
				s.undeliverable(p.Raw, se)
			}
			return false
		}
		if p.Kind == module.KindPresence {
			return false
		}
		switch p.Type {
		case "groupchat":
			s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
			return false
		case "headline", "error":
			return false
		}
		// chat and normal to an unavailable resource: treat as bare (§8.5.3.2.1).
	}
	if p.Kind == module.KindPresence {
		sent := false
		for _, se := range u.sessions {
			if se.available {
				sent = se.Send(p.Raw) || sent
			}
		}
		return sent
	}
	switch p.Type {
	case "error":
		return false
	case "groupchat":
		s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
		return false
	}
	best := -1
	for _, se := range u.sessions {
		if se.available && int(se.prio) > best {
			best = int(se.prio)
		}
	}
	if best < 0 {
		if p.Type != "headline" {
			s.ctx.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
		return false
	}
	sent, live := false, false
	// Detached sessions that queued it, and where: if a live one took it too, their copy
	// is marked, so that their expiry does not hand the user the message once more.
	var parked [4]*detached
	var at [4]int
	np := 0
	for _, se := range u.sessions {
		if !se.available || se.prio < 0 {
			continue
		}
		if p.Type == "headline" || int(se.prio) == best {
			d := se.detachedQ()
			n := 0
			if d != nil {
				n = len(d.queue)
			}
			if !se.Send(p.Raw) {
				continue
			}
			sent = true
			switch {
			case d == nil:
				live = true
			case len(d.queue) == n+1 && np < len(parked):
				parked[np], at[np] = d, n
				np++
			}
		}
	}
	// A detached copy the user also has elsewhere is marked, so that its session's
	// expiry does not hand the message on again: every one when a live session took it,
	// all but the first when only detached sessions did (that one answers for it).
	from := 0
	if !live {
		from = 1
	}
	for i := from; i < np; i++ {
		parked[i].shared(at[i])
	}
	if !sent && p.Type != "headline" {
		// Every chosen session refused it (closing, over its cap): RFC 6121 still applies.
		s.undeliverable(p.Raw, nil)
	}
	return sent
}

// internType returns the type attribute of a stanza of kind k as one of the known
// constant strings, so the hot path does not allocate. A message of a type nobody knows
// is a normal one (RFC 6121 §5.2.2: stored offline, archived, copied as such); other
// unknown types are copied.
func internType(e xmlstream.Element, k module.Kind) string {
	v, ok := e.Attr("type")
	if !ok {
		return ""
	}
	t := knownType(v)
	if k == module.KindMessage {
		switch t {
		case "chat", "headline", "groupchat", "error":
			return t
		}
		return "normal"
	}
	if t == "" {
		return string(v)
	}
	return t
}

// knownType is v as a constant string, or "" when no stanza type is spelled so.
func knownType(v []byte) string {
	switch string(v) {
	case "chat":
		return "chat"
	case "normal":
		return "normal"
	case "headline":
		return "headline"
	case "groupchat":
		return "groupchat"
	case "error":
		return "error"
	case "get":
		return "get"
	case "set":
		return "set"
	case "result":
		return "result"
	case "unavailable":
		return "unavailable"
	case "subscribe":
		return "subscribe"
	case "subscribed":
		return "subscribed"
	case "unsubscribe":
		return "unsubscribe"
	case "unsubscribed":
		return "unsubscribed"
	case "probe":
		return "probe"
	}
	return ""
}
