// Package module is the plugin API between the router and the features built on it: a
// module registers itself at init, and when the router provisions it, it declares the IQs it
// answers, the hooks it runs on messages and presence in the outbound and inbound phases, its
// disco features and identities, and the store tables it uses.
//
// It owns the registry and the types both sides share (Packet, Context, Session). It must
// not import router or engine: the router implements Context and Session, so a module never
// sees routing internals and adding a XEP never edits the router.
package module

import (
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

// Cleaner is implemented by modules that hold resources.
type Cleaner interface{ Cleanup() error }

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

// Phase says where a hook runs.
type Phase uint8

// Phases. Outbound runs in the sender's shard when the sender is a local user; Inbound runs
// in the recipient's shard when the recipient is a local user.
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

// Registrar is what a module gets at provisioning.
type Registrar interface {
	// IQ handles <iq type=get|set> whose first child is {ns}local addressed to the server or
	// to the sender's own bare JID; it also advertises ns as a disco#info feature.
	IQ(t IQType, ns, local string, h IQHandler)
	// IQBare handles IQs addressed by someone else to a local user's bare JID; it runs in
	// the recipient's shard.
	IQBare(t IQType, ns, local string, h IQHandler)
	// Hook runs h on every stanza of kind k in phase ph, in order. IQ hooks see only IQs
	// between two entities (not those the server itself answers).
	Hook(ph Phase, k Kind, order int, h Hook)
	Feature(ns string)
	Identity(category, typ, name string)
	Table(name string) store.Table
	Store() store.Store
	Logger() zerolog.Logger
	Config(v any) error
	// Features and Identities are complete once every module is provisioned; read them
	// lazily (at the first query), not during Provision.
	Features() []string
	Identities() []Identity
	OnSessionEnd(func(c Context, s Session))
	OnAvailable(func(c Context, s Session))
}

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
}

// Elem returns the lazy element view of Raw.
func (p *Packet) Elem() xmlstream.Element {
	e, _ := xmlstream.ParseElement(p.Raw, ns.Client)
	return e
}

// Payload returns the first child element (the IQ query, for instance).
func (p *Packet) Payload() (xmlstream.Element, bool) {
	it := p.Elem().Children()
	return it.Next()
}

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
}
