// Package pep implements XEP-0163: Personal Eventing Protocol, on an XEP-0060
// publish-subscribe core, for every account: each user's bare JID is a pubsub service
// whose nodes (OMEMO device lists and bundles, avatars, nicknames, bookmarks) are
// auto-created on first publish (with XEP-0223 publish-options), configured by the owner,
// stored in the "pep" table, and read by others according to the node's access model.
//
// # Notifications
//
// A publish is announced from the owner's bare JID, as a headline message, to the owner's
// available resources and to every available resource of a contact that the access model
// admits and whose XEP-0115 entity capabilities include NODE+notify (XEP-0163 §4.3). The
// module learns contacts' resources and caps from the presence they send to the owner:
// an inbound presence hook on the owner's shard (every presence for a local user passes
// there, even while the user is offline) records each available full JID with its caps
// hash and ver. A ver never seen is resolved once per server (not per session) by a
// disco#info query from the owner's bare JID to the resource that advertised it; its
// answer comes back to the owner's bare JID, where an inbound IQ hook takes it. A ver that
// verifies (XEP-0115 §5.4) is cached for everyone; one that does not is trusted for that
// resource only. The same +notify check sends the newest item of each on_sub_and_presence
// node to a contact's resource when it becomes available. The presence state is kept in
// memory only: after a restart it is learned again from the contacts' next presence (or
// the answers to the owner's probes). Anyone may send made-up vers, so the caps cache is
// bounded and least-recently-used, and so are the queries waiting for an answer. The
// owner's own resources' vers are resolved the same way, for the notifications only some
// of them ask for (storage:bookmarks, bookmarks.go).
//
// # Concurrency
//
// Requests, hooks and caps answers for one owner all run on the owner's shard, so the
// store reads and writes of one owner's nodes never interleave. The presence records and
// the caps cache are shared by all shards and guarded by one mutex, held only for map
// operations.
package pep

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/blocking"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pubsub"
	"github.com/vireo-im/vireo/modules/rsm"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Defaults of [modules.pep].
const (
	// DefaultMaxItems caps pubsub#max_items (and "max"): 100 items of a node are enough for
	// bookmarks (XEP-0402 keeps one item per room) and bound a node's disk use.
	DefaultMaxItems = 100
	// DefaultMaxItemSize is the stanza limit: a larger item could not be published anyway.
	DefaultMaxItemSize = xmlstream.DefaultMaxStanza
	// DefaultMaxNodes bounds the nodes of one account; clients use a dozen.
	DefaultMaxNodes = 100
	// capsRetry is how long a disco#info query for a caps ver may stay unanswered before
	// the next presence with that ver asks again.
	capsRetry = 30 * time.Second
	// maxCapsCache bounds the distinct vers cached (a few hundred in practice).
	maxCapsCache = 10000
	// maxCapsQueries bounds the caps queries waiting for an answer.
	maxCapsQueries = 10000
	// maxWaiters bounds the resources waiting for one ver's answer.
	maxWaiters = 1000
)

func init() { module.Register(new(Mod)) }

// Config is [modules.pep].
type Config struct {
	MaxItems    int `toml:"max_items"`     // the highest pubsub#max_items of a node
	MaxItemSize int `toml:"max_item_size"` // bytes of one item's payload
	MaxNodes    int `toml:"max_nodes"`     // nodes per account
}

// Mod is the module.
type Mod struct {
	set   atomic.Pointer[module.HostSettings[Config]] // the limits in force per host; a reload swaps them
	nodes pubsub.Nodes
	log   zerolog.Logger
	st    store.Store // the server's store, the key of BookmarksFor

	mu struct {
		sync.Mutex
		caps       map[string]*capsEntry // hash + " " + ver
		queries    map[string]capsQuery  // disco#info query id
		swept      time.Time             // when queries was last swept (queryLocked)
		users      map[string]map[string]*resource
		perContact map[string]int // owner + "\x00" + contact bare JID -> its resources in users[owner]
		seq        uint64
	}
}

var (
	_ module.Provisioner = (*Mod)(nil)
	_ module.Cleaner     = (*Mod)(nil)
	_ Bookmarks          = (*Mod)(nil)
)

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "pep", XEP: 163, New: func() module.Module { return new(Mod) }, PerHost: true}
}

// Features lists the XEP-0060 features this PEP service implements (XEP-0163 §6).
// #config-node-max says pubsub#max_items takes "max": without it Converse.js asks for 9999
// bookmarks (XEP-0402), above the limit, and cannot store any.
var Features = []string{
	pubsub.NS + "#access-open", pubsub.NS + "#access-presence", pubsub.NS + "#access-roster", pubsub.NS + "#access-whitelist",
	pubsub.NS + "#auto-create", pubsub.NS + "#auto-subscribe", pubsub.NS + "#config-node", pubsub.NS + "#config-node-max",
	pubsub.NS + "#create-nodes", pubsub.NS + "#create-and-configure", pubsub.NS + "#delete-items", pubsub.NS + "#delete-nodes", pubsub.NS + "#filtered-notifications",
	pubsub.NS + "#item-ids", pubsub.NS + "#last-published", pubsub.NS + "#persistent-items", pubsub.NS + "#publish",
	pubsub.NS + "#publish-options", pubsub.NS + "#purge-nodes", pubsub.NS + "#retract-items", pubsub.NS + "#retrieve-default",
	pubsub.NS + "#retrieve-items", pubsub.NS + "#subscribe", pubsub.NS + "#multi-items",
	pubsub.NS + "#member-affiliation", pubsub.NS + "#modify-affiliations", pubsub.NS + "#manage-subscriptions",
	pubsub.NS + "#retrieve-affiliations", pubsub.NS + "#retrieve-subscriptions",
	rsm.NS, // a node's items page with XEP-0059
}

// Provision reads [modules.pep] and registers the handlers and hooks.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	if err := module.Configure(r, m); err != nil {
		return err
	}
	m.nodes = pubsub.Nodes{T: r.Table("pep")}
	m.st = r.Store()
	if m.st != nil {
		bridges.Store(m.st, m)
	}
	m.mu.caps = map[string]*capsEntry{}
	m.mu.queries = map[string]capsQuery{}
	m.mu.users = map[string]map[string]*resource{}
	m.mu.perContact = map[string]int{}

	for _, space := range []string{pubsub.NS, pubsub.NSOwner} {
		r.IQ(module.IQGet, space, "pubsub", m.own)
		r.IQ(module.IQSet, space, "pubsub", m.own)
		r.IQBare(module.IQGet, space, "pubsub", m.other)
		r.IQBare(module.IQSet, space, "pubsub", m.other)
	}
	for _, f := range Features {
		r.Feature(f)
	}
	r.Feature(FeatureBookmarksCompatPEP)
	r.Identity("pubsub", "pep", "")
	r.Hook(module.Inbound, module.KindPresence, module.OrderPEP, m.presence)
	r.Hook(module.Outbound, module.KindPresence, module.OrderPEP, m.ownPresence)
	r.Hook(module.Outbound, module.KindIQ, module.OrderPEP, m.ownCapsAnswer)
	r.Hook(module.Inbound, module.KindIQ, module.OrderPEP, m.capsAnswer)
	r.OnRemoved(m.removed)
	return nil
}

// removed drops a removed account's explicit subscriptions to its local contacts' nodes,
// on each contact's shard, so that an account made later with the same name follows
// nobody. Subscriptions to the nodes of accounts that were not its contacts (an open
// node) stay until their owner removes them; guests have none (subscribe).
func (m *Mod) removed(rm module.Removal) {
	user := rm.User.String()
	for _, rc := range rm.Contacts {
		owner, err := jid.Parse(rc.JID)
		if err != nil || owner.Local() == "" || !owner.Bare().Equal(owner) || owner.Equal(rm.User) {
			continue
		}
		rm.CallOn(owner, func(c module.Context) {
			if !c.IsLocal(owner.Domain()) {
				return
			}
			if err := m.nodes.Forget(owner.String(), user); err != nil && module.LogStoreError(err) {
				m.log.Error().Err(err).Str("user", user).Str("owner", owner.String()).Msg("pep: forgetting a removed account")
			}
		})
	}
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: every limit changes at a reload, and a
// virtual host's [vhosts."<host>".modules.pep] table gives its accounts limits of their
// own. They bound what is asked after it: a node keeps the max_items it was configured
// with, and an account above a lowered max_nodes keeps its nodes but creates no more.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	set, err := module.DecodeSettings(rc, func(_ string, cfg *Config) error {
		if cfg.MaxItems <= 0 {
			cfg.MaxItems = DefaultMaxItems
		}
		if cfg.MaxItemSize <= 0 || cfg.MaxItemSize > DefaultMaxItemSize {
			cfg.MaxItemSize = DefaultMaxItemSize
		}
		if cfg.MaxNodes <= 0 {
			cfg.MaxNodes = DefaultMaxNodes
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() { m.set.Store(set) }, nil
}

// conf is the configuration in force for the accounts of host.
func (m *Mod) conf(host string) *Config { return m.set.Load().For(host) }

// policy is what the PEP nodes of host's accounts may be configured to.
func (m *Mod) policy(host string) pubsub.Policy {
	return pubsub.Policy{MaxItems: m.conf(host).MaxItems, Access: pubsub.PEPAccess}
}

// own handles requests of the owner (to their bare JID or without 'to').
func (m *Mod) own(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && iq.To.Local() == "" {
		c.Error(iq, stanza.New(stanza.ServiceUnavailable)) // the server is no pubsub service
		return
	}
	m.handle(c, iq, iq.From.Bare(), true)
}

// other handles requests of anyone else to a local user's bare JID.
func (m *Mod) other(c module.Context, iq *module.Packet) {
	m.handle(c, iq, iq.To.Bare(), false)
}

func (m *Mod) fail(c module.Context, iq *module.Packet, err error) {
	if module.LogStoreError(err) {
		m.log.Error().Err(err).Str("user", iq.From.Bare().String()).Msg("pep: store")
	}
	c.Error(iq, module.StoreError(err))
}

func notFound() *stanza.Error { return stanza.New(stanza.ItemNotFound) }

func forbidden() *stanza.Error {
	return &stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden, Text: "only the owner may do this"}
}

func (m *Mod) handle(c module.Context, iq *module.Packet, owner jid.JID, isOwner bool) {
	q, _ := iq.Payload()
	r, e := pubsub.ParseRequest(q, iq.Type == "set")
	if e != nil {
		c.Error(iq, e)
		return
	}
	if r.Node == NSLegacyBookmarks {
		m.legacyPEP(c, iq, owner, isOwner, r)
		return
	}
	if r.Node == NSBookmarks && isOwner {
		m.migrateLegacyNode(c, owner)
	}
	switch r.Op {
	case pubsub.OpOptions, pubsub.OpOptionsSet:
		c.Error(iq, pubsub.Err(stanza.FeatureNotImplemented, "unsupported"))
		return
	case pubsub.OpSubscriptions, pubsub.OpAffiliations:
		if !isOwner {
			c.Error(iq, forbidden())
			return
		}
		m.ownLists(c, iq, owner, r)
		return
	case pubsub.OpCreate:
		if r.Node == "" { // no instant nodes on PEP (XEP-0163 §3: nodes are named by namespace)
			c.Error(iq, pubsub.Err(stanza.NotAcceptable, "nodeid-required"))
			return
		}
	}
	switch r.Op {
	case pubsub.OpItems, pubsub.OpSubscribe, pubsub.OpUnsubscribe:
	default:
		if !isOwner {
			c.Error(iq, forbidden())
			return
		}
	}
	o := owner.String()
	var cfg pubsub.NodeConfig
	var exists bool
	if r.Op != pubsub.OpDefault {
		var err error
		if cfg, exists, err = m.nodes.Config(o, r.Node); err != nil {
			m.fail(c, iq, err)
			return
		}
	}
	if !exists && r.Op != pubsub.OpPublish && r.Op != pubsub.OpCreate && r.Op != pubsub.OpDefault {
		c.Error(iq, notFound())
		return
	}
	switch r.Op {
	case pubsub.OpPublish:
		m.publish(c, iq, owner, r, cfg, exists)
	case pubsub.OpCreate:
		if exists {
			c.Error(iq, stanza.New(stanza.ConflictCond))
			return
		}
		if e := m.roomForNode(owner); e != nil {
			c.Error(iq, e)
			return
		}
		cfg = pubsub.DefaultConfig(m.policy(owner.Domain()))
		if r.Node == NSBookmarks {
			// Bookmarks hold room passwords: private even for a client that forgot
			// the publish-options XEP-0402 §3 asks for.
			cfg = m.bookmarksConfig(owner.Domain())
		}
		if e := cfg.Apply(r.Options, m.policy(owner.Domain())); e != nil {
			c.Error(iq, e)
			return
		}
		if err := m.nodes.T.Apply(pubsub.ConfigOp(o, r.Node, cfg)); err != nil {
			m.fail(c, iq, err)
			return
		}
		c.Reply(iq, nil)
	case pubsub.OpItems:
		if !isOwner {
			if e := m.access(c, owner, iq.From.Bare(), r.Node, cfg); e != nil {
				c.Error(iq, e)
				return
			}
		}
		m.items(c, iq, o, r)
	case pubsub.OpRetract:
		gone, err := m.nodes.Retract(o, r.Node, r.IDs)
		if err != nil {
			m.fail(c, iq, err)
			return
		}
		if len(gone) == 0 {
			c.Error(iq, notFound())
			return
		}
		c.Reply(iq, nil)
		notify := cfg.NotifyRetract
		if r.Notify != nil {
			notify = *r.Notify
		}
		if notify {
			m.broadcast(c, owner, r.Node, cfg, pubsub.RetractEvent(r.Node, gone))
		}
	case pubsub.OpSubscribe, pubsub.OpUnsubscribe:
		m.subscribe(c, iq, owner, r, cfg, isOwner)
	case pubsub.OpOwnerAffiliations:
		m.ownerAffiliations(c, iq, owner, r)
	case pubsub.OpOwnerSubscriptions:
		m.ownerSubscriptions(c, iq, owner, r)
	case pubsub.OpConfigureGet, pubsub.OpDefault:
		if r.Op == pubsub.OpDefault {
			cfg = pubsub.DefaultConfig(m.policy(owner.Domain()))
		}
		var b xmlstream.Builder
		b.Start("pubsub").Attr("xmlns", pubsub.NSOwner)
		if r.Op == pubsub.OpDefault {
			b.Start("default")
		} else {
			b.Start("configure").Attr("node", r.Node)
		}
		cfg.AppendForm(&b, m.policy(owner.Domain()))
		b.End().End()
		c.Reply(iq, b.B)
	case pubsub.OpConfigureSet:
		old := cfg
		if e := cfg.Apply(r.Options, m.policy(owner.Domain())); e != nil {
			c.Error(iq, e)
			return
		}
		err := m.nodes.T.Apply(pubsub.ConfigOp(o, r.Node, cfg))
		if err == nil && !cfg.Persist {
			err = m.nodes.Purge(o, r.Node)
		} else if err == nil && cfg.MaxItems < old.MaxItems {
			err = m.nodes.Trim(o, r.Node, cfg.MaxItems)
		}
		if err != nil {
			m.fail(c, iq, err)
			return
		}
		c.Reply(iq, nil)
	case pubsub.OpDelete, pubsub.OpPurge:
		var err error
		// The explicit subscribers hear of the deletion too (XEP-0060 §8.4.2): read
		// them while the node still has them.
		subs := m.nodes.Subscribers(o, r.Node)
		// A whitelist's members go with the node: the deletion is checked against
		// the list it had, or no member would hear of it.
		var members map[string]string
		if r.Op == pubsub.OpDelete && cfg.Access == pubsub.AccessWhitelist {
			members = m.nodes.Affiliations(o, r.Node)
		}
		if r.Op == pubsub.OpDelete {
			err = m.nodes.Remove(o, r.Node)
		} else {
			err = m.nodes.Purge(o, r.Node)
		}
		if err != nil {
			m.fail(c, iq, err)
			return
		}
		c.Reply(iq, nil)
		what := "purge"
		if r.Op == pubsub.OpDelete {
			what = "delete"
		}
		m.notifyWith(c, owner, r.Node, cfg, pubsub.NodeEvent(what, r.Node), subs, members)
		if r.Node == NSBookmarks {
			m.legacyChanged(c, owner)
		}
	}
}

// roomForNode returns policy-violation when owner has as many nodes as their host allows.
func (m *Mod) roomForNode(owner jid.JID) *stanza.Error {
	n, err := m.nodes.Count(owner.String())
	if err != nil {
		return module.StoreError(err)
	}
	if n >= m.conf(owner.Domain()).MaxNodes {
		e := stanza.New(stanza.PolicyViolationCond)
		e.Text = "too many nodes on this account"
		return e
	}
	return nil
}

// publish implements XEP-0060 §7.1 with XEP-0163 §3 auto-create and XEP-0223
// publish-options.
func (m *Mod) publish(c module.Context, iq *module.Packet, owner jid.JID, r pubsub.Request, cfg pubsub.NodeConfig, exists bool) {
	o := owner.String()
	if exists {
		if r.Options != nil && !cfg.Matches(r.Options, m.policy(owner.Domain())) {
			e := pubsub.Err(stanza.ConflictCond, "precondition-not-met")
			e.Text = "the node's configuration does not match the publish-options"
			c.Error(iq, e)
			return
		}
	} else {
		if e := m.roomForNode(owner); e != nil {
			c.Error(iq, e)
			return
		}
		cfg = pubsub.DefaultConfig(m.policy(owner.Domain()))
		if r.Node == NSBookmarks {
			cfg = m.bookmarksConfig(owner.Domain()) // private, as at a create
		}
		if e := cfg.Apply(r.Options, m.policy(owner.Domain())); e != nil {
			if e.Condition == stanza.NotAcceptable {
				e = pubsub.Err(stanza.ConflictCond, "precondition-not-met")
				e.Text = "publish-options the node cannot have"
			}
			c.Error(iq, e)
			return
		}
	}
	if e := pubsub.CheckPayload(r.Payload, m.conf(owner.Domain()).MaxItemSize); e != nil {
		c.Error(iq, e)
		return
	}
	id := r.ItemID
	if id == "" {
		id = pubsub.NewID()
	}
	if err := m.nodes.Publish(o, r.Node, cfg, !exists, id, r.Payload); err != nil {
		m.fail(c, iq, err)
		return
	}
	c.Reply(iq, pubsub.PublishReply(r.Node, id))
	m.broadcast(c, owner, r.Node, cfg, pubsub.ItemsEvent(r.Node, pubsub.Item{ID: id, Payload: r.Payload}))
	if r.Node == NSAvatarMetadata {
		m.avatarPublished(c, owner, r.Payload) // XEP-0398 §3.1
	}
}

func (m *Mod) items(c module.Context, iq *module.Packet, o string, r pubsub.Request) {
	its, pg, e, err := m.nodes.Select(o, r)
	if err != nil {
		m.fail(c, iq, err)
		return
	}
	if e != nil {
		c.Error(iq, e)
		return
	}
	c.Reply(iq, pubsub.ItemsReply(r.Node, its, pg))
}

// subscribe handles explicit subscriptions (XEP-0060 §6.1, §6.2): PEP contacts usually
// subscribe implicitly through +notify, but a subscription lets a JID without caps follow
// a node.
func (m *Mod) subscribe(c module.Context, iq *module.Packet, owner jid.JID, r pubsub.Request, cfg pubsub.NodeConfig, isOwner bool) {
	j, err := jid.Parse(r.JID)
	if err != nil {
		c.Error(iq, stanza.New(stanza.JIDMalformed))
		return
	}
	if !j.Bare().Equal(iq.From.Bare()) {
		c.Error(iq, pubsub.Err(stanza.BadRequest, "invalid-jid"))
		return
	}
	if r.Op == pubsub.OpSubscribe && !isOwner {
		if pubsub.IsGuest(c, iq.From) {
			c.Error(iq, &stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden,
				Text: "guests may not subscribe; they get notifications through their presence"})
			return
		}
		if e := m.access(c, owner, iq.From.Bare(), r.Node, cfg); e != nil {
			c.Error(iq, e)
			return
		}
	}
	if r.Op == pubsub.OpSubscribe {
		if st, err := m.nodes.Subscription(owner.String(), r.Node, j.String()); err == nil && st == pubsub.SubNone {
			if e := m.nodes.RoomForSubscription(owner.String(), r.Node, j.Bare().String()); e != nil {
				c.Error(iq, e)
				return
			}
		}
	}
	if r.Op == pubsub.OpUnsubscribe {
		if st, err := m.nodes.Subscription(owner.String(), r.Node, j.String()); err == nil && st == pubsub.SubNone {
			c.Error(iq, pubsub.Err(stanza.UnexpectedRequest, "not-subscribed")) // XEP-0060 §6.2.3.4
			return
		}
	}
	if err := m.nodes.Subscribe(owner.String(), r.Node, j.String(), r.Op == pubsub.OpSubscribe); err != nil {
		m.fail(c, iq, err)
		return
	}
	if r.Op == pubsub.OpUnsubscribe {
		c.Reply(iq, nil)
		return
	}
	c.Reply(iq, pubsub.SubscriptionReply(r.Node, j.String(), pubsub.SubSubscribed))
	if cfg.SendLast != pubsub.SendNever {
		if it, ok, _ := m.nodes.Last(owner.String(), r.Node); ok {
			c.Route(pubsub.EventMessage(owner, j, pubsub.ItemsEvent(r.Node, it)))
		}
	}
}

// Allowed reports whether a user other than the owner may read a node with access model
// model (XEP-0060 §4.5): sub is the owner's subscription to that user's presence as in
// the owner's roster, inRoster whether the user is in the roster at all.
func Allowed(model string, sub store.Subscription, inRoster bool) bool {
	switch model {
	case pubsub.AccessOpen:
		return true
	case pubsub.AccessPresence:
		return sub == store.SubFrom || sub == store.SubBoth
	case pubsub.AccessRoster:
		// No roster groups are configured (pubsub#roster_groups_allowed): anyone in the
		// roster with a presence subscription of either way.
		return inRoster && sub != store.SubNone
	}
	return false // whitelist: the owner only
}

// DenyError is the XEP-0060 §6.1.3 / §6.5.9 error for a user the access model refuses.
func DenyError(model string) *stanza.Error {
	switch model {
	case pubsub.AccessPresence:
		return pubsub.Err(stanza.NotAuthorizedCond, "presence-subscription-required")
	case pubsub.AccessRoster:
		return pubsub.Err(stanza.NotAuthorizedCond, "not-in-roster-group")
	}
	return pubsub.Err(stanza.NotAllowed, "closed-node")
}

// allowed reports whether user may read node of owner's, configured cfg: the owner, and
// whom the access model admits; a whitelist node admits the members the owner listed.
func (m *Mod) allowed(c module.Context, owner, user jid.JID, node string, cfg pubsub.NodeConfig) bool {
	return m.allowedWith(c, owner, user, node, cfg, nil)
}

// allowedWith is allowed with a whitelist's affiliations given (a deleted node's, read
// before it went); nil: read from the store.
func (m *Mod) allowedWith(c module.Context, owner, user jid.JID, node string, cfg pubsub.NodeConfig, affs map[string]string) bool {
	if user.Equal(owner) {
		return true
	}
	switch cfg.Access {
	case pubsub.AccessOpen:
		return true
	case pubsub.AccessWhitelist:
		if affs != nil {
			return affs[user.String()] == pubsub.AffMember
		}
		a, _ := m.nodes.Affiliation(owner.String(), node, user.String())
		return a == pubsub.AffMember
	}
	it, ok := c.RosterItem(owner, user)
	return Allowed(cfg.Access, it.Sub, ok)
}

func (m *Mod) access(c module.Context, owner, user jid.JID, node string, cfg pubsub.NodeConfig) *stanza.Error {
	if m.allowed(c, owner, user, node, cfg) {
		return nil
	}
	return DenyError(cfg.Access)
}

// broadcast notifies the available resources with NODE+notify, the owner's and the
// contacts' that the access model admits, and the explicit subscribers.
func (m *Mod) broadcast(c module.Context, owner jid.JID, node string, cfg pubsub.NodeConfig, event []byte) {
	m.notify(c, owner, node, cfg, event, m.nodes.Subscribers(owner.String(), node))
	if node == NSBookmarks {
		m.legacyChanged(c, owner)
	}
}

// notify is broadcast without the storage:bookmarks view's notification, to the explicit
// subscribers subs (read before a node's deletion takes them).
func (m *Mod) notify(c module.Context, owner jid.JID, node string, cfg pubsub.NodeConfig, event []byte, subs []string) {
	m.notifyWith(c, owner, node, cfg, event, subs, nil)
}

// notifyWith is notify with a whitelist's affiliations given (see allowedWith).
func (m *Mod) notifyWith(c module.Context, owner jid.JID, node string, cfg pubsub.NodeConfig, event []byte, subs []string, affs map[string]string) {
	// The owner's resources are subscribers like the contacts' (XEP-0163 §4.3.2): those
	// whose caps do not ask for the node get nothing; they can fetch its items.
	want := node + "+notify"
	for _, s := range c.Sessions(owner) {
		if s.Available() && m.ownWants(s, want) {
			s.Send(pubsub.EventMessage(owner, s.JID(), event))
		}
	}
	// Context.Route skips the owner's outbound hooks: a contact the owner blocks is left
	// out here (XEP-0163 §4.3.3, XEP-0191 §3.3).
	blocked := blocking.Blocker(c.Store(), owner.String())
	sent := map[string]bool{}
	for _, full := range m.interested(owner.String(), node) {
		j, err := jid.Parse(full)
		if err != nil || j.Bare().Equal(owner) || blocked(j) || !m.allowedWith(c, owner, j.Bare(), node, cfg, affs) {
			continue
		}
		sent[j.Bare().String()] = true
		c.Route(pubsub.EventMessage(owner, j, event))
	}
	for _, sub := range subs {
		j, err := jid.Parse(sub)
		if err != nil || j.Bare().Equal(owner) || sent[j.Bare().String()] || blocked(j) || !m.allowedWith(c, owner, j.Bare(), node, cfg, affs) {
			continue
		}
		c.Route(pubsub.EventMessage(owner, j, event))
	}
}
