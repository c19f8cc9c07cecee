// Package module is the plugin API between the router and the features built on it: a
// module registers itself at init, and when the router provisions it, it declares the IQs it
// answers, the hooks it runs on stanzas in the outbound and inbound phases, its disco
// features and identities, the stream features and top-level elements (nonzas) it adds to
// client streams, the service domains it serves, and the store tables it uses.
//
// It owns the registry and the types both sides share (Packet, Context, Session). It must
// not import router or engine: the router implements Context and Session, so a module never
// sees routing internals and adding a XEP never edits the router or the engine.
//
// # The module contract
//
// Concurrency: handlers and hooks run on the router's shard workers, many at once, one
// goroutine per shard. Everything a module keeps in its own struct is therefore shared by
// all shards and must be immutable after Provision or guarded (sync/atomic). Per-user state
// belongs in Session.Value (per bound resource) or in the store (per account): the user's
// shard owns both, so a handler touching them needs no lock. Per-service state (a room, a
// pubsub node) lives in the service's own structures keyed by the entity's bare JID: every
// stanza for one entity runs on that entity's shard, so state keyed that way needs no lock
// either.
//
// Blocking: a shard worker serves many users; do not sleep or hash passwords on it. Slow
// work (PBKDF2) goes through Context.Async, which runs it on the server's one bounded worker
// pool and brings the result back to the shard.
//
// Message hooks may also run on an event loop: when the shards involved are idle, the
// router routes a chat message in place on the loop that read it (still with the shard's
// ownership, so the rules above hold). A message hook must not wait for the disk or the
// network there; reading the store and lazy writes are fine. A module whose message hooks
// may wait (a synchronous store write) says so with Registrar.WaitsForDisk, and the router
// then routes every message through the shard workers. Offline storage needs no such
// declaration: a message for a recipient without an available session never runs in
// place.
//
// Failures: a store write that fails is logged and, when a client is waiting for the
// answer, answered with internal-server-error (or resource-constraint when a quota or the
// disk is full) — never dropped silently.
//
// Registration is checked: two handlers for the same IQ (type, namespace, element), the same
// nonza or the same service domain make provisioning fail at startup.
package module

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Module is anything that can be registered.
type Module interface{ ModuleInfo() Info }

// Info describes a module. ID is lower_snake and names its config table [modules.<id>].
type Info struct {
	ID  string
	XEP int
	New func() Module
	// PerHost says the module's settings may differ per virtual host: a
	// [vhosts."<host>".modules.<id>] table changes the host's from [modules.<id>]
	// (Reconfig.DecodeHost, DecodeSettings). A host table for a module without it fails
	// the start or the reload.
	PerHost bool
}

var registry = struct {
	sync.Mutex
	m map[string]Info
}{m: map[string]Info{}}

// Register adds a module to the registry. It is called from init and panics on an empty or
// duplicate ID or a nil New: those are programming errors that must fail at startup.
func Register(m Module) {
	info := m.ModuleInfo()
	if info.ID == "" {
		panic("module: empty ID")
	}
	if info.New == nil {
		panic(fmt.Sprintf("module %s: nil New", info.ID))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[info.ID]; dup {
		panic(fmt.Sprintf("module %s: registered twice", info.ID))
	}
	registry.m[info.ID] = info
}

// Lookup returns the registered module with id.
func Lookup(id string) (Info, bool) {
	registry.Lock()
	defer registry.Unlock()
	i, ok := registry.m[id]
	return i, ok
}

// All returns every registered module sorted by ID.
func All() []Info {
	registry.Lock()
	defer registry.Unlock()
	out := make([]Info, 0, len(registry.m))
	for _, i := range registry.m {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// Provisioner is implemented by modules that register handlers.
type Provisioner interface{ Provision(r Registrar) error }

// Reconfigurer is a module whose [modules.<id>] settings can change while it runs. At a
// configuration reload that changed its table, the router hands it the new one; the
// module checks the settings whole and returns what applies them, or an error, and then
// the reload fails and nothing changed. apply runs once the rest of the reload is in
// place, while stanzas may be running on shards: what they read must change atomically.
// A module without it keeps its settings until a restart.
type Reconfigurer interface {
	Reconfigure(rc Reconfig) (apply func(), err error)
}

// Configure gives a Reconfigurer its settings at start, the way a reload does later:
// its Provision calls it, so the two read the table with the same checks.
func Configure(r Registrar, m Reconfigurer) error {
	hosts, decode := r.HostConfig()
	apply, err := m.Reconfigure(Reconfig{Decode: r.Config, Hosts: hosts, DecodeHost: decode, Domains: r.Domains(),
		InfoForm: r.InfoForm, HostInfoForms: r.HostInfoForms})
	if err != nil {
		return err
	}
	apply()
	return nil
}

// Reconfig is what a Reconfigurer gets at a reload.
type Reconfig struct {
	// Decode fills v from the module's new table, as Registrar.Config does at start.
	Decode func(v any) error
	// Domains are the virtual hosts served after the reload.
	Domains []string
	// InfoForm replaces the module's XEP-0128 form of f's FORM_TYPE in the server's
	// disco#info (and its XEP-0115 verification string); a form without fields removes
	// it. Only from apply.
	InfoForm func(f Form)
	// Hosts are the virtual hosts with a [vhosts."<host>".modules.<id>] table of the
	// module's (a module with Info.PerHost), sorted; they include hosts not served yet,
	// whose tables wait for the host to be added. DecodeHost fills v with the module's
	// settings on one of them: [modules.<id>] with the host's table over it (a key the
	// host's table leaves out keeps the server-wide value).
	Hosts      []string
	DecodeHost func(host string, v any) error
	// HostInfoForms sets which form of FORM_TYPE typ each host's disco#info shows
	// instead of the server-wide one (InfoForm): byHost maps a host to its form, one
	// without fields showing none there; hosts not in byHost show the server-wide form.
	// It replaces the previous call's map for typ whole. Only from apply.
	HostInfoForms func(typ string, byHost map[string]Form)
}

// Cleaner is implemented by modules that hold resources.
type Cleaner interface{ Cleanup() error }

// HostWatcher is implemented by a module whose service domains follow the virtual hosts
// (conference.<host>), so that a host added while the server runs gets its services and
// a removed one loses them. The router calls both from the goroutine that changes the
// hosts, one call at a time, never from a shard; stanzas for the host's services may
// still be running on shards while they are called.
type HostWatcher interface {
	// AddHost returns the services of host, as Provision claims them for the hosts known
	// at start (with Service.Host set). An error leaves the host out.
	AddHost(host string) ([]Service, error)
	// RemoveHost forgets host's services after the router stopped routing to them; what
	// they stored stays in the store.
	RemoveHost(host string)
}

// Stopping tells a module (Registrar.OnStop) that the server is about to stop serving
// something while the entities it serves can still be reached: the whole server (a
// graceful shutdown: SIGTERM, vireoctl shutdown, XEP-0133 shutdown) or one virtual host
// removed while the server runs, with its services.
type Stopping struct {
	// Host is the virtual host being removed, or "" when the whole server stops.
	Host string
	// CallOn queues fn on the shard of bare's bare JID with a Context for that entity, as
	// ShardCaller.CallOn does (a room's state is on the room's shard). It may be called
	// only while the OnStop function runs. The server waits until every fn queued this
	// way has run, what they routed to local users has reached those users' shards, and
	// what they routed to other servers has been written to the server-to-server streams,
	// before it closes any connection; the wait is bounded (router.StopWait), so fn must
	// be quick.
	CallOn func(bare jid.JID, fn func(c Context))
}

// IQType is the type of an IQ request.
type IQType uint8

// IQ request types.
const (
	IQGet IQType = iota
	IQSet
)

// Kind is the kind of a stanza.
type Kind uint8

// Stanza kinds.
const (
	KindMessage Kind = iota
	KindPresence
	KindIQ
)

// MaxResources is how many resources (sessions) one account may have at once. Whatever a
// module keeps per resource of one user uses it as its bound too (a room's sessions under
// one nickname, a user's node subscriptions, a contact's resources remembered): a remote
// server may claim any number of resources for its users.
const MaxResources = 32

// Phase says where a hook runs.
type Phase uint8

// Phases. Outbound runs in the sender's shard when the sender is a local user; Inbound runs
// in the recipient's shard when the recipient is a local user. An IQ answer a user sends to
// the server or to their own bare JID runs Outbound only, and goes no further.
const (
	Outbound Phase = iota
	Inbound
)

// Verdict is what a hook decides.
type Verdict uint8

// Verdicts. Stop means the hook consumed, rewrote-and-sent or rejected the stanza: no later
// hook and no default delivery runs.
const (
	Continue Verdict = iota
	Stop
)

// IQHandler answers one IQ request; it must reply (Context.Reply or Context.Error).
type IQHandler func(c Context, iq *Packet)

// Hook sees a message or presence in one phase.
type Hook func(c Context, p *Packet) Verdict

// Identity is a disco#info identity.
type Identity struct{ Category, Type, Name string }

// Stage is the point of client stream negotiation at which a stream feature is offered.
type Stage uint8

// Stages.
const (
	// PreAuth features are offered before SASL (after STARTTLS where TLS is required).
	PreAuth Stage = iota
	// PostAuth features are offered on the stream restarted after SASL, beside <bind/>;
	// the elements they announce are used once the resource is bound.
	PostAuth
)

// NonzaHandler handles a top-level element that is not a stanza, sent by the client of an
// established session s. It runs in the session's shard.
type NonzaHandler func(c Context, s Session, e xmlstream.Element)

// ServiceHandler receives every stanza addressed to a service domain or an entity inside
// it (room@conference.example.org). It runs in the shard of the addressed entity's bare
// JID, so state kept per entity needs no lock. p.From is the sender as authenticated by
// the server.
type ServiceHandler func(c Context, p *Packet)

// Service describes a service domain claimed by a module.
type Service struct {
	Domain  string
	Name    string // human-readable, for disco#items
	Handler ServiceHandler
	// Host is the virtual host the service belongs to: it goes when the host is removed
	// while the server runs. Empty for a service of the whole server.
	Host string
}

// Undeliverable handles a message the router could not hand to any session of its local
// recipient (the session closed or its detached queue expired). It reports whether it
// took the message (offline storage); otherwise the sender gets an error.
type Undeliverable func(c Context, p *Packet) bool

// Registrar is what a module gets at provisioning.
type Registrar interface {
	// IQ handles <iq type=get|set> whose first child is {ns}local addressed to the server or
	// to the sender's own bare JID; it also advertises ns as a disco#info feature.
	IQ(t IQType, ns, local string, h IQHandler)
	// Public marks the server's IQ handlers for namespace ns as answerable to senders that
	// are not local users (components, remote servers, services): server information such
	// as disco, ping, version, time. Handlers of other namespaces act on the sender's own
	// account and only local users reach them.
	Public(ns string)
	// IQBare handles IQs addressed by someone else to a local user's bare JID; it runs in
	// the recipient's shard.
	IQBare(t IQType, ns, local string, h IQHandler)
	// Hook runs h on every stanza of kind k in phase ph, in order. IQ hooks see only IQs
	// between two entities (not those the server itself answers). Inbound IQ hooks also see
	// the answers (result and error) addressed to a local user's bare JID, which nothing
	// else consumes: a module that sends IQ requests as the user (Context.Route with the
	// bare JID as 'from') gets their answers there, on the user's shard, and returns Stop
	// for the ones it recognizes (by id and sender).
	Hook(ph Phase, k Kind, order int, h Hook)
	// WaitsForDisk declares that the module's hooks for kind k in phase ph may wait for
	// the disk (a synchronous store write). Message hooks otherwise may run on the event
	// loop that read the stanza, when the shards involved are idle, so they must not wait
	// for the disk or the network there; reading the store is fine. Inbound message hooks
	// for a recipient without an available session never run on an event loop (offline
	// storage waits for the disk).
	WaitsForDisk(ph Phase, k Kind)
	Feature(ns string)
	Identity(category, typ, name string)
	// InfoForm adds an XEP-0128 extended information form (a result form with its
	// FORM_TYPE) to the server's disco#info, and with it to the server's XEP-0115
	// verification string. One form per FORM_TYPE.
	InfoForm(f Form)
	// HostInfoForms is Reconfig.HostInfoForms, for Provision.
	HostInfoForms(typ string, byHost map[string]Form)
	// HostConfig returns the hosts with a table of the module's under [vhosts] and what
	// decodes its settings on one (Reconfig.Hosts, Reconfig.DecodeHost).
	HostConfig() (hosts []string, decode func(host string, v any) error)
	Table(name string) store.Table
	Store() store.Store
	Logger() zerolog.Logger
	Config(v any) error
	// Features and Identities are complete once every module is provisioned; read them
	// lazily (at the first query), not during Provision.
	Features() []string
	Identities() []Identity
	// InfoForms are the forms of InfoForm, sorted by FORM_TYPE; complete once every
	// module is provisioned.
	InfoForms() []Form
	// HostInfo is what the server's disco#info and disco#items say to and about one
	// virtual host: Identities, Features and InfoForms less those of the modules the host
	// turns off ([vhosts] modules_disabled), and the services of that host and of the
	// whole server. The same pointer comes back until any of it changes (a reload, a host
	// added), so a caller may cache what it derives from one; read it lazily.
	HostInfo(host string) *HostInfo
	OnSessionEnd(func(c Context, s Session))
	OnAvailable(func(c Context, s Session))
	// OnDetach runs f when a client stream with XEP-0198 stream management goes away and
	// its session s is detached (s.Detached() is true): whether it then waits to be resumed
	// or ends at once. It runs on the user's shard before anything else happens to s.
	// unacked holds the stanzas the stream wrote that its client never acknowledged (they
	// head the detached queue); f must neither modify nor keep them.
	OnDetach(f func(c Context, s Session, unacked [][]byte))
	// OnResumed runs f when a detached session s is resumed on a new stream (XEP-0198),
	// after what it held was sent to it: on the user's shard. A resumed stream starts
	// afresh in what the client did not resume (XEP-0352's state, for one).
	OnResumed(f func(c Context, s Session))
	// OnRegistered runs f when an account was created by its user (XEP-0077 in-band, or a
	// web invitation page), after it is stored: on the new account's shard, with a
	// Context for it, before its first login can be bound.
	OnRegistered(f func(c Context, r Registration))
	// OnRemoved runs f when an account was removed (store.Removal: by its user, an
	// operator, or the end of a guest's session with contacts), after its own rows are
	// gone: once per removal, and again after a restart if the server stopped before f
	// and what it queued had run. It is for rows the module keeps about the account
	// outside its own keys (a contact's roster, a node's subscribers), so that nothing of
	// it stays behind and an account later made with the same name inherits nothing. f
	// runs on the router's removal goroutine, one removal at a time and never on a shard:
	// it may read much of the store, and changes state that lives on a shard through
	// Removal.CallOn. f must be idempotent; it runs whatever the account's host turns off.
	OnRemoved(f func(r Removal))
	// OnStop runs f when the server is about to stop, or to remove a virtual host while it
	// runs, before any session or server-to-server stream of it closes: for a module with
	// something to tell the entities it serves (XEP-0045 status 332). f runs on the goroutine
	// that stops the server or changes the hosts, never on a shard, one call at a time and
	// never beside a HostWatcher call; it must not block, and does its work on shards
	// through Stopping.CallOn. When a host is removed, f runs while the host and its services
	// are still served, before HostWatcher.RemoveHost.
	OnStop(f func(s Stopping))
	// OnUndeliverable registers the RFC 6121 fallback for messages that could not be
	// delivered to the session they were meant for.
	OnUndeliverable(f Undeliverable)
	// StreamFeature adds xml, one child of <stream:features>, to client streams at stage.
	StreamFeature(stage Stage, xml string)
	// Nonza handles the top-level element {ns}local on established client streams.
	Nonza(ns, local string, h NonzaHandler)
	// Bind2 handles {ns}local when a client asks for it inside an XEP-0386 Bind2 request
	// (<enable xmlns='urn:xmpp:carbons:2'/>, <inactive xmlns='urn:xmpp:csi:0'/>): h runs in
	// the new session's shard before anything the client sends afterwards, and ns is
	// offered as an inline Bind2 feature. Inline features give no answer in <bound/>.
	Bind2(ns, local string, h NonzaHandler)
	// Bound adds what f returns to the <bound/> of an XEP-0386 Bind2 login (XEP-0313's
	// archive metadata, XEP-0386 §3.2): f runs in the new session's shard when it is bound,
	// before the client can send anything on it, and returns one or more complete elements
	// (or nil).
	Bound(f func(c Context, s Session) []byte)
	// Service claims a service domain; the server lists it in its disco#items.
	Service(s Service)
	// Services lists the claimed service domains; complete once every module is
	// provisioned, and replaced (not changed in place) when virtual hosts come or go
	// (HostWatcher), so a caller may cache what it derives from one slice until Services
	// returns another.
	Services() []Service
	// Domains lists the server's virtual hosts at provisioning (to name service domains).
	Domains() []string
	// Controller is the process around the server (reload, shutdown), or nil.
	Controller() Controller
	// Accounts changes accounts at their users' request (a password change, a removal);
	// it follows the server's configuration, so call it when needed, not at Provision.
	Accounts() Accounts
	// Privileges are what the operator let a component do with the server's accounts
	// (XEP-0356); they follow the configuration, so look them up per stanza.
	Privileges(entity jid.JID) Privileges
	// RostersChanged tells the router that rosters changed other than through a Context
	// (shared roster groups at a reload): the rosters it keeps for online users are read
	// from the store again at their next use.
	RostersChanged()
	// DiscoNode answers the disco#info and disco#items queries addressed to the server
	// with node='node' (XEP-0030 §3.2, §4.2): h gets both and tells them apart by the
	// payload's namespace. Registering the same node twice fails provisioning.
	DiscoNode(node string, h IQHandler)
	// DiscoNodeHandler returns the handler registered for node (for the disco module);
	// complete once every module is provisioned.
	DiscoNodeHandler(node string) (IQHandler, bool)
	// DataDir is the server's data directory (data_dir), for a module that keeps files of
	// its own beside the database; "" when the server has none (a router run alone in
	// tests): such a module then stays off.
	DataDir() string
	// TLSConfig is the server's TLS configuration (the certificates c2s serves, reloaded
	// with them), for a module that runs a listener of its own; nil when the server has
	// none. Clone it before changing anything.
	TLSConfig() *tls.Config
	// WebURL is the public base URL (no trailing slash) of the server's web listener for
	// pages about domain, such as XEP-0401 invitation pages ("" when there is none). It
	// follows config reloads: call it when the URL is needed, not at Provision.
	WebURL(domain string) string
}

// HostInfo is the server's discovery information as one virtual host shows it
// (Registrar.HostInfo). Read-only.
type HostInfo struct {
	Identities []Identity
	Features   []string // sorted, without duplicates
	Forms      []Form   // sorted by FORM_TYPE
	Services   []Service
	Ver        string // the XEP-0115 verification string of the identities, features and forms
}

// Registration is an account its user just created.
type Registration struct {
	User jid.JID // the new account (bare)
	// Inviter made the invitation the account was created with (XEP-0401), zero for an
	// open registration or the operator's invitation; Contact says the invitation was
	// the inviter's contact invitation with ibr=y, so the two are to become contacts.
	Inviter jid.JID
	Contact bool
	// Via says how the account was made: RegInBand (XEP-0077 on a stream), RegWeb (the
	// sign-up page or an invitation's page) or RegSite (the first login, or the first
	// stanza, of a user the site's password program knows).
	Via string
	// Addr is the client address the registration came from ("" when none did).
	Addr string
}

// Removal is an account removed (Registrar.OnRemoved).
type Removal struct {
	User  jid.JID // bare
	Guest bool    // a guest's account (SASL ANONYMOUS)
	// Contacts are the contacts of its stored roster that had a subscription either way
	// or a request pending.
	Contacts []store.RemovedContact
	// CallOn queues fn on the shard of bare's bare JID with a Context for that entity,
	// as ShardCaller.CallOn does; the removal is done when every fn queued this way has
	// run. It may be called only while the OnRemoved function runs.
	CallOn func(bare jid.JID, fn func(c Context))
}

// How accounts are made (Registration.Via).
const (
	RegInBand = "in-band"
	RegWeb    = "web"
	RegSite   = "site"
)

// Packet is a stanza in flight. The router owns it; it is valid during the call only.
type Packet struct {
	// Raw is the whole stanza with 'from' stamped. A hook may replace it with a rewritten
	// copy (xmlstream.SetAttrs, AppendChild); later hooks and delivery see the new bytes.
	Raw  []byte
	Kind Kind
	Type string
	ID   string
	From jid.JID
	To   jid.JID // zero when absent
	// Initial is set on the outbound broadcast of a session's initial presence (its first
	// available presence, or the first after unavailable: RFC 6121 §4.2), when the server
	// probes contacts and delivers what waited.
	Initial bool
	// archiveID (ArchiveID) is kept in place: set for every archived message, read only
	// when the sender has other resources to copy it to.
	archiveID  [32]byte
	archiveIDN uint8

	// elem caches Elem for the Raw it was parsed from (elemOf), so every hook of a packet
	// shares one parse; a hook that replaces Raw invalidates it.
	elem   xmlstream.Element
	elemOf []byte
}

// SetArchiveID records the id (text form, at most 32 bytes) under which the sender's
// archive keeps an outbound message (the archive hook, at OrderArchive).
func (p *Packet) SetArchiveID(id []byte) { p.archiveIDN = uint8(copy(p.archiveID[:], id)) }

// ArchiveID is the id SetArchiveID recorded, "" when the archive keeps none: the copies
// that go to the sender's other resources carry it, as an XEP-0359 stanza-id by the
// sender, for their archive catch-up.
func (p *Packet) ArchiveID() string { return string(p.archiveID[:p.archiveIDN]) }

// Elem returns the lazy element view of Raw, parsed once per Raw.
func (p *Packet) Elem() xmlstream.Element {
	if len(p.Raw) > 0 && len(p.elemOf) == len(p.Raw) && &p.elemOf[0] == &p.Raw[0] {
		return p.elem
	}
	e, _ := xmlstream.ParseElement(p.Raw, ns.Client)
	p.elem, p.elemOf = e, p.Raw
	return e
}

// SetElem hands Elem a view of Raw that the caller parsed already (the router parses each
// stanza once to route it), so that the first hook to look inside does not parse it again.
// e must be what xmlstream.ParseElement(p.Raw, ns.Client) returns.
func (p *Packet) SetElem(e xmlstream.Element) { p.elem, p.elemOf = e, p.Raw }

// Payload returns the first child element (the IQ query, for instance).
func (p *Packet) Payload() (xmlstream.Element, bool) {
	it := p.Elem().Children()
	return it.Next()
}

// DirectedPresence is the Session.Value key under which the presence module keeps the
// JIDs that have the session's directed available presence (RFC 6121 §4.6), as a
// map[string]bool of the addresses it went to, so that a block (XEP-0191 §3.3) can end
// it too. Only the presence module writes it; others may delete what they end.
var DirectedPresence any = directedPresence{}

type directedPresence struct{}

// Session is a bound resource as modules see it. Call its methods only from the owning
// user's shard (the Context that handed it out).
type Session interface {
	JID() jid.JID
	Priority() int
	Available() bool
	Presence() []byte
	Interested() bool
	Send(raw []byte) bool
	Close(cond stanza.StreamCondition)
	Value(key any) any
	SetValue(key, v any)
	// SetFilter installs f in front of the session's stream: every stanza the router
	// sends goes through f, which returns false when it took the stanza (to hold it back,
	// XEP-0352). nil removes the filter. Only one filter per session.
	SetFilter(f func(raw []byte) bool)
	// Detached reports whether the session has no connection right now (its stanzas are
	// queued until it resumes or expires).
	Detached() bool
	// Ephemeral reports whether the session is a guest's (SASL ANONYMOUS, XEP-0175): its
	// account and everything stored for it are removed when the session ends, so a
	// module need not write what only outlives the session (a logout time).
	Ephemeral() bool
	// AfterWritten runs done on this session's shard once everything sent to the session
	// so far has been written to its connection (ok, even if the session ended since:
	// the client has the bytes), or when that can no longer happen (the connection went
	// first, or the session is detached: ok is false). On a stream with XEP-0198 stream
	// management, written means acknowledged by the client (the server asks at once):
	// until then the stanzas are in memory only. Flow control for bulk sends such as
	// offline messages: delete what was written, and send more only while the session
	// takes it (Send reports false once it ended).
	AfterWritten(done func(c Context, ok bool))
}

// Context is what a handler or hook gets; valid during the call, on one shard worker.
type Context interface {
	Domain() string
	IsLocal(domain string) bool
	// Session is the local session that sent the stanza (outbound phase), or nil.
	Session() Session
	// Sessions lists the bound sessions of the shard's user (sender when outbound,
	// recipient when inbound); nil for anyone else.
	Sessions(bare jid.JID) []Session
	// Route sends a server- or module-generated stanza (with from and to): the outbound
	// phase is skipped, the inbound phase runs in the recipient's shard.
	Route(raw []byte)
	// Deliver runs the default delivery of p from here (after a hook changed it).
	Deliver(p *Packet) bool
	Reply(iq *Packet, payload []byte)
	Error(p *Packet, e *stanza.Error)
	Store() store.Store
	Now() time.Time
	Logger() zerolog.Logger
	RosterItem(user, contact jid.JID) (store.RosterItem, bool)
	SetRosterItem(user jid.JID, it store.RosterItem) error
	// Async runs job on the server's bounded worker pool (password hashing and other slow
	// work) and then done on this shard, with a Context for the same user or entity. It
	// returns false without running anything when the pool is saturated; answer the client
	// with resource-constraint then.
	Async(job func(), done func(c Context)) bool
}

// HasServerDelay reports whether the message raw carries the <delay/> (XEP-0203) a server
// of domain writes when it delivers a message late: a message delayed twice (its session
// expired, then offline storage) keeps the first time, the one it was sent at.
func HasServerDelay(raw []byte, domain string) bool {
	return bytes.Contains(raw, []byte("<delay xmlns='"+ns.Delay+"' from='"+domain+"'"))
}
