// Package push implements XEP-0357: Push Notifications.
//
// A client registers an app server (a JID and a node, with an optional form of publish
// options such as a secret) with <enable/>; registrations are kept per account in the
// store, synced before the result, at most max_registrations of them. When a chat or normal
// message worth waking a phone for (a body, an end-to-end encrypted payload, an XEP-0353
// call proposal: important) arrives for an account that has registrations and no session awake to
// read it (every session detached, XEP-0352 inactive or without available presence, or none),
// the server publishes a notification as the user's bare JID to each app server (§7, with
// the urn:xmpp:push:summary form): the number of messages since the account was last
// awake and the last sender, and the body only when [modules.push] include_body is set. A
// session of XEP-0198 that loses its connection with messages its client never
// acknowledged triggers a notification for them too, unless the account was already
// notified since it was last awake.
//
// The account is awake again when a session sends initial presence or a message, or when a
// message arrives while a session is awake; then the count starts over. A bare XEP-0352
// <active/> is not seen (no module signal carries it), so until one of those happens the
// count can run high.
//
// Rooms: a member of a members-only room (XEP-0045) who is named in a groupchat message
// while away from the room — no session in it, or none of its sessions there awake — is
// notified as for a message of their own, from the sender's occupant JID (mention.go; the
// muc module finds the mentions and hands them over through muc.SetNotifier, and the
// notification is made on the member's shard through module.ShardCaller).
//
// Publishes carry unguessable ids. An app server that answers one with an error disables
// its registration (§7.1), except for errors that say nothing about the registration: type
// wait, and remote-server-not-found or remote-server-timeout, which servers on the way
// produce. Note that the router answers for a configured component that is not connected
// with service-unavailable, which disables too.
//
// Coalescing: one registration gets at most one notification per min_interval (default
// 2 s); messages in between only raise the count that the next notification carries.
// There is no trailing notification for a burst: the first one woke the device, and the
// client fetches everything once it connects.
//
// State: registrations live in the store. What is kept in memory, per account with
// registrations that was notified, is the message count, the time of each registration's
// last notification and the publishes awaiting an answer; it is dropped when the account is
// awake again and nothing is awaited, and it is touched only on the account's shard.
package push

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/muc"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// NS is the XEP-0357 namespace.
const NS = ns.Push

// Namespaces of the forms in a notification.
const (
	nsSummary        = "urn:xmpp:push:summary"
	nsPublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
)

// Tunables.
const (
	// DefaultMaxRegistrations bounds the registrations of one account: one per app and
	// device is a handful; a client that re-registers under a new node each time it starts
	// fills it only if it never disables the old ones.
	DefaultMaxRegistrations = 16
	// DefaultMinInterval is how often one registration may be notified: a woken device
	// fetches everything, so more notifications within seconds only cost battery and the
	// app server's quota with Apple and Google.
	DefaultMinInterval = 2 * time.Second
	// MaxFormBytes bounds a registration's publish-options form as stored (a secret and an
	// endpoint take a few hundred bytes). Larger forms get not-acceptable.
	MaxFormBytes = 4 << 10
	// MaxNodeBytes bounds the app server's node name (not-acceptable above).
	MaxNodeBytes = 1 << 10
	// maxBodyBytes bounds the body excerpt in a notification (include_body): enough for a
	// lock-screen preview, small enough that a 256 KiB message does not travel twice.
	maxBodyBytes = 512
	// maxPending bounds the publishes awaiting an answer per account; the oldest is
	// forgotten first (its answer is then ignored).
	maxPending = 4 * DefaultMaxRegistrations
	// pendingTTL is how long an answer to a publish is awaited.
	pendingTTL = 5 * time.Minute
)

func init() { module.Register(new(Mod)) }

// Config is [modules.push].
type Config struct {
	// IncludeBody puts the message body (its first 512 bytes) in notifications. App
	// servers are run by the client's vendor and relay to Apple or Google: off by default.
	IncludeBody bool `toml:"include_body"`
	// IncludeSender puts the last sender's JID in notifications (default true, as the
	// issue's summary form has it); false leaves it out for operators who do not want
	// the vendor's app server to learn who writes to whom.
	IncludeSender *bool `toml:"include_sender"`
	// MaxRegistrations bounds the registrations per account (DefaultMaxRegistrations).
	MaxRegistrations int `toml:"max_registrations"`
	// MinInterval is a Go duration ("2s"); "0s" notifies on every message.
	MinInterval string `toml:"min_interval"`
}

// Mod is the module.
type Mod struct {
	set     atomic.Pointer[module.HostSettings[settings]] // replaced whole at a reload
	t       store.Table
	log     zerolog.Logger
	account sync.Map // bare JID -> *account; each one is used only on its account's shard
	// enabled holds the bare JIDs with at least one registration, so a message to a user
	// who never enabled push costs a map lookup, not a store scan. It may hold a user whose
	// registrations went (a removed account, an app server's error) until the next scan
	// finds none and drops it.
	enabled  sync.Map
	st       store.Store // identifies this server's muc.Notifier
	hostInfo func(host string) *module.HostInfo
}

var (
	_ module.Provisioner = (*Mod)(nil)
	_ module.Cleaner     = (*Mod)(nil)
)

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "push", XEP: 357, New: func() module.Module { return new(Mod) }, PerHost: true}
}

// settings are what a reload changes (Reconfigure).
type settings struct {
	includeBody bool
	hideSender  bool
	maxReg      int
	every       time.Duration // least time between two notifications to one registration
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: whether bodies go out, the registrations
// per account and the interval change at a reload. A host's table sets them for its
// users.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	set, err := module.DeriveSettings(rc, func(_ string, cfg *Config) (*settings, error) {
		st := &settings{includeBody: cfg.IncludeBody, maxReg: cfg.MaxRegistrations, every: DefaultMinInterval,
			hideSender: cfg.IncludeSender != nil && !*cfg.IncludeSender}
		if st.maxReg <= 0 {
			st.maxReg = DefaultMaxRegistrations
		}
		if cfg.MinInterval != "" {
			d, err := time.ParseDuration(cfg.MinInterval)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("min_interval %q: want a duration such as \"2s\"", cfg.MinInterval)
			}
			st.every = d
		}
		return st, nil
	})
	if err != nil {
		return nil, err
	}
	return func() { m.set.Store(set) }, nil
}

// Provision reads [modules.push] and registers the IQs, hooks and callbacks.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	if err := module.Configure(r, m); err != nil {
		return err
	}
	m.t = r.Table("push")
	if err := m.t.Scan(nil, func(k, _ []byte) bool {
		if i := bytes.IndexByte(k, 0); i > 0 {
			m.enabled.Store(string(k[:i]), struct{}{})
		}
		return true
	}); err != nil {
		return fmt.Errorf("push: load registrations: %w", err)
	}
	r.IQ(module.IQSet, NS, "enable", m.enable) // also advertises NS
	r.IQ(module.IQSet, NS, "disable", m.disable)
	r.Hook(module.Inbound, module.KindMessage, module.OrderPush, m.message)
	r.Hook(module.Inbound, module.KindIQ, module.OrderPush, m.answer)
	r.Hook(module.Outbound, module.KindMessage, module.OrderPush, m.sent)
	r.OnAvailable(func(c module.Context, s module.Session) { m.awake(c, s.JID().Bare()) })
	r.OnDetach(m.detached)
	// A removed account gets no stanza again, so neither the next scan nor a wake-up
	// would forget it: its registrations went with its rows, its entries go now (on its
	// shard, where the account entry is used).
	r.OnRemoved(m.removed)
	// Members of members-only rooms named while away from the room (mention.go).
	m.st = r.Store()
	m.hostInfo = r.HostInfo
	muc.SetNotifier(m.st, mentions{m})
	return nil
}

// on reports whether the module serves host: a host that turned it off
// ([vhosts] modules_disabled) gets no notification through the paths that are not its
// hooks (room mentions), whatever registrations it has from before.
func (m *Mod) on(host string) bool {
	if m.hostInfo == nil {
		return true
	}
	_, ok := slices.BinarySearch(m.hostInfo(host).Features, NS)
	return ok
}

// registration is one app server registered for an account.
type registration struct {
	jid, node string
	form      []byte // normalized publish-options form; nil without one
}

// key is the store key of a registration: user 0 jid 0 node (store.UserKey, so deleting the
// account deletes it).
func key(user, app, node string) []byte { return store.UserKey(user, app, node) }

// target reads the jid and node attributes of <enable/> or <disable/>; app is the app
// server's JID in normalized form.
func target(e xmlstream.Element) (app, node string, hasNode bool, err *stanza.Error) {
	v, ok := e.AppendAttr(nil, "jid")
	if !ok {
		return "", "", false, &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: "missing jid"}
	}
	j, perr := jid.ParseBytes(v)
	if perr != nil {
		return "", "", false, stanza.New(stanza.JIDMalformed)
	}
	n, hasNode := e.AppendAttr(nil, "node")
	if len(n) > MaxNodeBytes {
		return "", "", false, &stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable, Text: "node too long"}
	}
	return j.String(), string(n), hasNode, nil
}

// enable handles XEP-0357 §5: it stores (or replaces) the registration for jid and node.
// The node is required here, though §5 says SHOULD: a publish needs one (XEP-0060 §7.1).
func (m *Mod) enable(c module.Context, iq *module.Packet) {
	q, _ := iq.Payload()
	app, node, hasNode, e := target(q)
	if e == nil && (!hasNode || node == "") {
		e = &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: "missing node"}
	}
	var form []byte
	if e == nil {
		form, e = publishOptions(q)
	}
	if e != nil {
		c.Error(iq, e)
		return
	}
	user := iq.From.Bare().String()
	k := key(user, app, node)
	n, exists := 0, false
	err := m.t.Scan(store.UserKey(user), func(sk, _ []byte) bool {
		n++
		exists = exists || bytes.Equal(sk, k)
		return true
	})
	if err != nil {
		m.log.Error().Err(err).Msg("push: list registrations")
		c.Error(iq, stanza.New(stanza.InternalServerErrorCond))
		return
	}
	if !exists && n >= m.set.Load().For(iq.From.Domain()).maxReg {
		c.Error(iq, &stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraintCond,
			Text: "too many push registrations; disable one first"})
		return
	}
	if form == nil {
		form = []byte{}
	}
	m.enabled.Store(user, struct{}{}) // before the write: a false entry costs a scan, a missing one a notification
	if err := m.t.Set(k, form); err != nil {
		if module.LogStoreError(err) {
			m.log.Error().Err(err).Msg("push: store registration")
		}
		c.Error(iq, module.StoreError(err))
		return
	}
	c.Reply(iq, nil)
}

// disable handles XEP-0357 §6: without a node, every registration for jid goes.
func (m *Mod) disable(c module.Context, iq *module.Packet) {
	q, _ := iq.Payload()
	app, node, hasNode, e := target(q)
	if e != nil {
		c.Error(iq, e)
		return
	}
	user := iq.From.Bare().String()
	var err error
	if hasNode {
		err = m.t.Delete(key(user, app, node))
	} else {
		err = m.t.DeletePrefix(key(user, app, "")) // user 0 jid 0: this JID's nodes only
	}
	if err != nil {
		if module.LogStoreError(err) {
			m.log.Error().Err(err).Msg("push: delete registration")
		}
		c.Error(iq, module.StoreError(err))
		return
	}
	c.Reply(iq, nil)
}

// publishOptions returns the <enable/> element's XEP-0004 form re-serialized on its own
// (fields, types and values, nothing else), so it stands outside the client's stanza: nil
// when there is none. A form without FORM_TYPE gets the publish-options one first (XEP-0060
// §7.1.5 requires it); a form of another type is a bad request.
func publishOptions(enable xmlstream.Element) ([]byte, *stanza.Error) {
	x, ok := enable.Child(ns.DataForms, "x")
	if !ok {
		return nil, nil
	}
	bad := func(text string) *stanza.Error {
		return &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: text}
	}
	if t, _ := x.AppendAttr(nil, "type"); string(t) != "submit" {
		return nil, bad("the publish-options form must be of type submit")
	}
	var b xmlstream.Builder
	b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "submit")
	if _, ok := formType(x); !ok {
		b.Start("field").Attr("var", "FORM_TYPE").Attr("type", "hidden").
			Start("value").Text(nsPublishOptions).End().End()
	}
	var val []byte
	for it := x.Children(); ; {
		f, ok := it.Next()
		if !ok {
			break
		}
		if string(f.NS()) != ns.DataForms || string(f.Name()) != "field" {
			continue
		}
		v, ok := f.AppendAttr(nil, "var")
		if !ok || len(v) == 0 {
			return nil, bad("a field without var")
		}
		b.Start("field").AttrBytes("var", v)
		if t, ok := f.AppendAttr(nil, "type"); ok {
			b.AttrBytes("type", t)
		}
		for vi := f.Children(); ; {
			ve, ok := vi.Next()
			if !ok {
				break
			}
			if string(ve.NS()) == ns.DataForms && string(ve.Name()) == "value" {
				val = ve.AppendText(val[:0])
				b.Start("value").TextBytes(val).End()
			}
		}
		b.End()
		if len(b.B) > MaxFormBytes {
			return nil, &stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable, Text: "publish-options form too large"}
		}
	}
	b.End()
	if t, ok := formType(x); ok && t != nsPublishOptions {
		return nil, bad("the form must be of FORM_TYPE " + nsPublishOptions)
	}
	return b.B, nil
}

// formType returns the first value of the form's FORM_TYPE field, if it has one.
func formType(x xmlstream.Element) (string, bool) {
	for it := x.Children(); ; {
		f, ok := it.Next()
		if !ok {
			return "", false
		}
		if v, _ := f.Attr("var"); string(f.Name()) != "field" || string(v) != "FORM_TYPE" {
			continue
		}
		if ve, ok := f.Child(ns.DataForms, "value"); ok {
			return string(ve.AppendText(nil)), true
		}
		return "", true
	}
}

// registrations lists user's registrations in key order.
func (m *Mod) registrations(user string) ([]registration, error) {
	if _, ok := m.enabled.Load(user); !ok {
		return nil, nil
	}
	prefix := store.UserKey(user)
	var out []registration
	err := m.t.Scan(prefix, func(k, v []byte) bool {
		rest := k[len(prefix):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return true
		}
		r := registration{jid: string(rest[:i]), node: string(rest[i+1:])}
		if len(v) > 0 {
			r.form = append([]byte(nil), v...)
		}
		out = append(out, r)
		return true
	})
	if err == nil && len(out) == 0 {
		// All gone (disabled, refused by the app server, the account removed): forget the
		// user, or every account that ever enabled push (guests too) stays here until a
		// restart. Callers run on the user's shard, as enable does, so no registration
		// is being written meanwhile.
		m.enabled.Delete(user)
	}
	return out, err
}

// removed forgets what is kept in memory of a removed account.
func (m *Mod) removed(rm module.Removal) {
	rm.CallOn(rm.User, func(module.Context) {
		m.enabled.Delete(rm.User.String())
		m.account.Delete(rm.User.String())
	})
}
