package router

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"hash/maphash"
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
	MaxSessionsPerUser = 32
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
	// Close sends a stream error with cond ("" for none), closes the stream. Idempotent.
	Close(cond stanza.StreamCondition)
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
	mods    []module.Module
	closed  atomic.Bool
	wg      sync.WaitGroup

	capsOnce sync.Once
	caps     string

	online  atomic.Int64
	routed  atomic.Int64
	dropped atomic.Int64
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
	r := &Router{opts: o, log: o.Logger, st: o.Store, now: o.Now, seed: maphash.MakeSeed()}
	r.SetDomains(o.Domains)
	r.reg = newRegistry(r)
	if err := r.provision(); err != nil {
		return nil, err
	}
	r.shards = make([]*shard, o.Shards)
	for i := range r.shards {
		r.shards[i] = newShard(r, i)
	}
	for _, s := range r.shards {
		r.wg.Add(1)
		go s.run()
	}
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
	r.reg.freeze()
	return nil
}

// SetDomains replaces the served virtual hosts (reload).
func (r *Router) SetDomains(d []string) {
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
		close(s.quit)
	}
	r.wg.Wait()
	var errs []error
	for _, m := range r.mods {
		if c, ok := m.(module.Cleaner); ok {
			errs = append(errs, c.Cleanup())
		}
	}
	return errors.Join(errs...)
}

func (r *Router) shardOf(bare string) *shard {
	return r.shards[maphash.String(r.seed, bare)%uint64(len(r.shards))]
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
	o.buf.B = xmlstream.SetAttrs(o.buf.B[:0], st.Raw, xmlstream.AttrSet{Name: "from", Value: s.fullB})
	if !s.shard.q.push(o) {
		putOp(o)
		r.dropped.Add(1)
		return false
	}
	return true
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

// CloseUser closes every session of bare with cond (account removed or disabled).
func (r *Router) CloseUser(bare jid.JID, cond stanza.StreamCondition) {
	o := getOp()
	o.kind = opCloseUser
	o.bare = bare.Bare()
	o.cond = cond
	r.shardOf(o.bare.String()).q.pushForce(o)
}

// Stats are router counters.
type Stats struct {
	Online  int64 `json:"online"`
	Routed  int64 `json:"routed"`
	Dropped int64 `json:"dropped"`
	Queued  int   `json:"queued"`
	Shards  int   `json:"shards"`
}

// Stats returns a snapshot of the counters.
func (r *Router) Stats() Stats {
	st := Stats{Online: r.online.Load(), Routed: r.routed.Load(), Dropped: r.dropped.Load(), Shards: len(r.shards)}
	for _, s := range r.shards {
		st.Queued += s.q.len()
	}
	return st
}

// route queues a server-generated stanza (raw carries from and to) for the inbound phase of
// its recipient, or bounces it when the recipient is not served here.
func (r *Router) route(raw []byte) {
	o := getOp()
	o.kind = opIn
	o.buf = bufPool.Get()
	o.buf.B = append(o.buf.B[:0], raw...)
	r.forward(o)
}

// forward sends an op holding a stanza (o.buf) to the recipient's shard inbound phase.
// o.to must be parsed, or it is parsed here.
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
	o.kind = opIn
	r.shardOf(o.to.Bare().String()).q.pushForce(o)
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
}

var opPool = sync.Pool{New: func() any { return new(op) }}

func getOp() *op { return opPool.Get().(*op) }

func putOp(o *op) {
	if o.buf != nil {
		bufPool.Put(o.buf)
	}
	o.next.Store(nil)
	o.kind, o.pk, o.cond = 0, 0, ""
	o.sess, o.buf, o.conn, o.done = nil, nil, nil, nil
	o.to, o.bare, o.resource = jid.JID{}, jid.JID{}, ""
	opPool.Put(o)
}
