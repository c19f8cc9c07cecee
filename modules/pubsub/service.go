package pubsub

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/rsm"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Defaults of [modules.pubsub].
const (
	DefaultSubdomain = "pubsub"
	DefaultName      = "Publish-Subscribe"
	// DefaultMaxNodes bounds the nodes one user owns: enough for feeds and
	// application state, small enough that one user cannot fill the service.
	DefaultMaxNodes = 100
	// DefaultMaxItems caps pubsub#max_items: a node's disk use is bounded by this times
	// the item size.
	DefaultMaxItems = 1000
	// DefaultMaxItemSize is the stanza limit: a larger item could not be published anyway.
	DefaultMaxItemSize = xmlstream.DefaultMaxStanza
	// serviceNodeMaxItems is pubsub#max_items of a new node: a short history, not just
	// the last item as on PEP.
	serviceNodeMaxItems = 10
	nsSubAuth           = NS + "#subscribe_authorization"
)

func init() { module.Register(new(Mod)) }

// Config is [modules.pubsub].
type Config struct {
	Subdomain   string `toml:"subdomain"`     // the service is <subdomain>.<domain>
	Name        string `toml:"name"`          // its name in the server's disco#items
	MaxNodes    int    `toml:"max_nodes"`     // nodes one user may own
	MaxItems    int    `toml:"max_items"`     // the highest pubsub#max_items of a node
	MaxItemSize int    `toml:"max_item_size"` // bytes of one item's payload
}

// Mod is the module.
type Mod struct {
	cfg   Config                                      // as at start: the subdomain and name hold until a restart
	set   atomic.Pointer[module.HostSettings[Config]] // the limits in force per host; a reload swaps them
	nodes Nodes
	log   zerolog.Logger
	// services lists the server's services (module.Registrar.Services), of which this
	// module's are those named <subdomain>.<host>.
	services func() []module.Service
}

var _ module.Provisioner = (*Mod)(nil)

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "pubsub", XEP: 60, New: func() module.Module { return new(Mod) }, PerHost: true}
}

// ServiceAccess are the access models of the service's nodes; open is the default.
var ServiceAccess = []string{AccessOpen, AccessAuthorize, AccessWhitelist}

// ServiceFeatures are the XEP-0060 §10 features of the service.
var ServiceFeatures = []string{
	NS, NS + "#access-authorize", NS + "#access-open", NS + "#access-whitelist",
	NS + "#config-node", NS + "#config-node-max", NS + "#create-and-configure", NS + "#create-nodes", NS + "#delete-items",
	NS + "#delete-nodes", NS + "#instant-nodes", NS + "#item-ids", NS + "#last-published",
	NS + "#manage-subscriptions", NS + "#member-affiliation", NS + "#modify-affiliations",
	NS + "#outcast-affiliation", NS + "#persistent-items", NS + "#publish", NS + "#publish-options",
	NS + "#publisher-affiliation", NS + "#purge-nodes", NS + "#retract-items",
	NS + "#retrieve-affiliations", NS + "#retrieve-default", NS + "#retrieve-items",
	NS + "#retrieve-subscriptions", NS + "#subscribe", NS + "#subscription-notifications", NS + "#subscription-options",
	rsm.NS, // the node list (disco#items) and a node's items page with XEP-0059
}

// Provision reads [modules.pubsub] and claims one service domain per virtual host.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	if err := module.Configure(r, m); err != nil {
		return err
	}
	m.cfg = *m.set.Load().All()
	m.nodes = Nodes{T: r.Table("pubsub")}
	m.services = r.Services
	r.OnRemoved(m.removed)
	for _, d := range r.Domains() {
		svcs, err := m.AddHost(d)
		if err != nil {
			return err
		}
		r.Service(svcs[0])
	}
	return nil
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: the limits change at a reload, and a
// virtual host's [vhosts."<host>".modules.pubsub] table gives its service limits of its
// own; they bound what is asked after it (a node keeps the max_items it was configured
// with). The subdomain and name are server-wide, and change at a restart.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	var all *Config
	set, err := module.DecodeSettings(rc, func(host string, cfg *Config) error {
		if cfg.Subdomain == "" {
			cfg.Subdomain = DefaultSubdomain
		}
		if cfg.Name == "" {
			cfg.Name = DefaultName
		}
		if cfg.MaxNodes <= 0 {
			cfg.MaxNodes = DefaultMaxNodes
		}
		if cfg.MaxItems <= 0 {
			cfg.MaxItems = DefaultMaxItems
		}
		if cfg.MaxItemSize <= 0 || cfg.MaxItemSize > DefaultMaxItemSize {
			cfg.MaxItemSize = DefaultMaxItemSize
		}
		if host == "" {
			all = cfg
		} else if cfg.Subdomain != all.Subdomain || cfg.Name != all.Name {
			return errors.New("subdomain and name are server-wide: set them in [modules.pubsub]")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() {
		if m.set.Load() != nil && (all.Subdomain != m.cfg.Subdomain || all.Name != m.cfg.Name) {
			m.log.Warn().Msg("pubsub: subdomain and name change at a restart; applying the rest")
		}
		m.set.Store(set)
	}, nil
}

var _ module.HostWatcher = (*Mod)(nil)

// AddHost implements module.HostWatcher: <subdomain>.<host>, at provisioning and for a
// host added at runtime. Its nodes are in the store, found by the service's JID.
func (m *Mod) AddHost(host string) ([]module.Service, error) {
	dom, err := jid.PrepareDomain(m.cfg.Subdomain + "." + host)
	if err != nil {
		return nil, fmt.Errorf("subdomain %q: %w", m.cfg.Subdomain, err)
	}
	s := m.service(host, dom)
	return []module.Service{{Domain: dom, Name: m.cfg.Name, Handler: s.handle, Host: host}}, nil
}

// service is host's service at domain, a prepared domain.
func (m *Mod) service(host, domain string) *service {
	sj, _ := jid.Parse(domain)
	return &service{m: m, host: host, domain: domain, jid: sj}
}

// RemoveHost implements module.HostWatcher: the service keeps no state outside the store.
func (m *Mod) RemoveHost(string) {}

// removed lets go of a removed account on every service: its subscriptions and
// affiliations go (read and deleted here, off the shards: nobody else writes a removed
// account's rows), then, on the service's shard, each node it owned goes too unless
// another owner keeps it (subscribers are told, as for a deletion by the owner), so an
// account made later with the same name owns nothing. A guest has nothing here: guests
// may neither create nodes nor subscribe.
func (m *Mod) removed(rm module.Removal) {
	if rm.Guest {
		return
	}
	user := rm.User.String()
	for _, svc := range m.services() {
		if svc.Host == "" || svc.Domain != m.cfg.Subdomain+"."+svc.Host {
			continue
		}
		s := m.service(svc.Host, svc.Domain)
		err := m.nodes.Forget(s.domain, user)
		var owned []string
		if err == nil {
			owned, err = m.nodes.OwnedNodes(s.domain, user)
		}
		if err != nil {
			s.logStore(err, user)
		}
		if len(owned) > 0 {
			rm.CallOn(s.jid, func(c module.Context) { s.disown(c, user, owned) })
		}
	}
}

// disown deletes the nodes user owned alone and leaves the others to their owners.
func (s *service) disown(c module.Context, user string, nodes []string) {
	for _, node := range nodes {
		affs := s.m.nodes.Affiliations(s.domain, node)
		if affs[user] != AffOwner {
			continue
		}
		others := false
		for j, a := range affs {
			others = others || (a == AffOwner && j != user)
		}
		if others {
			if err := s.m.nodes.T.Apply(AffiliationOps(s.domain, node, user, AffNone)...); err != nil {
				s.logStore(err, user)
				return
			}
			continue
		}
		var subs []string
		for j, st := range s.m.nodes.Subscriptions(s.domain, node) {
			if st == SubSubscribed {
				subs = append(subs, j)
			}
		}
		slices.Sort(subs)
		if err := s.m.nodes.Remove(s.domain, node); err != nil {
			s.logStore(err, user)
			return
		}
		s.notify(c, subs, NodeEvent("delete", node))
	}
}

func (s *service) logStore(err error, user string) {
	if module.LogStoreError(err) {
		s.m.log.Error().Err(err).Str("user", user).Str("service", s.domain).Msg("pubsub: forgetting a removed account")
	}
}

// service is one service domain.
type service struct {
	m      *Mod
	host   string // the virtual host it serves
	domain string
	jid    jid.JID
}

// conf is the configuration in force for the service: its host's.
func (s *service) conf() *Config { return s.m.set.Load().For(s.host) }

func (s *service) policy() Policy { return Policy{MaxItems: s.conf().MaxItems, Access: ServiceAccess} }

// defaultConfig is the configuration of a new node.
func (s *service) defaultConfig() NodeConfig {
	c := DefaultConfig(s.policy())
	c.MaxItems = min(serviceNodeMaxItems, s.conf().MaxItems)
	c.SendLast = SendOnSub // no presence-based delivery on a service
	return c
}

// handle is the module.ServiceHandler: every stanza to the service domain, on its shard.
func (s *service) handle(c module.Context, p *module.Packet) {
	if p.From.IsZero() {
		return
	}
	request := p.Kind == module.KindIQ && (p.Type == "get" || p.Type == "set")
	if p.To.Local() != "" || p.To.Resource() != "" {
		if request {
			c.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
		return
	}
	switch p.Kind {
	case module.KindIQ:
		if !request {
			return
		}
		q, ok := p.Payload()
		if !ok {
			c.Error(p, stanza.New(stanza.BadRequest))
			return
		}
		space, name := string(q.NS()), string(q.Name())
		switch {
		case p.Type == "get" && space == ns.DiscoInfo && name == "query":
			s.discoInfo(c, p, q)
		case p.Type == "get" && space == ns.DiscoItems && name == "query":
			s.discoItems(c, p, q)
		case p.Type == "get" && space == ns.Ping && name == "ping":
			c.Reply(p, nil)
		case (space == NS || space == NSOwner) && name == "pubsub":
			s.request(c, p, q)
		default:
			c.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
	case module.KindMessage:
		if p.Type != "error" {
			s.authorization(c, p)
		}
	}
}

func (s *service) fail(c module.Context, p *module.Packet, err error) {
	if module.LogStoreError(err) {
		s.m.log.Error().Err(err).Str("service", s.domain).Msg("pubsub: store")
	}
	c.Error(p, module.StoreError(err))
}

// node returns a node's configuration; when the node does not exist (item-not-found) or
// cannot be read, it answers p and reports false.
func (s *service) node(c module.Context, p *module.Packet, node string) (NodeConfig, bool) {
	cfg, ok, err := s.m.nodes.Config(s.domain, node)
	if err != nil {
		s.fail(c, p, err)
		return cfg, false
	}
	if !ok {
		c.Error(p, stanza.New(stanza.ItemNotFound))
	}
	return cfg, ok
}

// IsGuest says whether from is a local guest (SASL ANONYMOUS, XEP-0175), whose account
// and rows go when its session ends: it may not leave rows behind in others' nodes.
func IsGuest(c module.Context, from jid.JID) bool {
	if !c.IsLocal(from.Domain()) {
		return false
	}
	acct, err := c.Store().Accounts().Get(from.Bare().String()) // (a site's accounts may not be stored)
	return err == nil && acct.Anonymous
}

func forbidden(text string) *stanza.Error {
	return &stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden, Text: text}
}

// request handles a <pubsub/> request (XEP-0060 §5-§8).
func (s *service) request(c module.Context, p *module.Packet, q xmlstream.Element) {
	r, e := ParseRequest(q, p.Type == "set")
	if e != nil {
		c.Error(p, e)
		return
	}
	from := p.From.Bare().String()
	switch r.Op {
	case OpSubscriptions, OpAffiliations:
		s.userLists(c, p, r, from)
		return
	case OpDefault:
		var b xmlstream.Builder
		b.Start("pubsub").Attr("xmlns", NSOwner).Start("default")
		s.defaultConfig().AppendForm(&b, s.policy())
		b.End().End()
		c.Reply(p, b.B)
		return
	case OpCreate:
		s.create(c, p, r, from)
		return
	}
	cfg, exists := s.node(c, p, r.Node)
	if !exists {
		return
	}
	aff, err := s.m.nodes.Affiliation(s.domain, r.Node, from)
	if err != nil {
		s.fail(c, p, err)
		return
	}
	if aff == AffOutcast {
		c.Error(p, forbidden("you are banned from this node"))
		return
	}
	switch r.Op {
	case OpPublish, OpRetract:
		if aff != AffOwner && aff != AffPublisher {
			c.Error(p, forbidden("only owners and publishers may do this"))
			return
		}
	case OpItems, OpSubscribe, OpUnsubscribe, OpOptions, OpOptionsSet:
	default:
		if aff != AffOwner {
			c.Error(p, forbidden("only owners may do this"))
			return
		}
	}
	switch r.Op {
	case OpPublish:
		s.publish(c, p, r, cfg)
	case OpRetract:
		gone, err := s.m.nodes.Retract(s.domain, r.Node, r.IDs)
		if err != nil {
			s.fail(c, p, err)
			return
		}
		if len(gone) == 0 {
			c.Error(p, stanza.New(stanza.ItemNotFound))
			return
		}
		c.Reply(p, nil)
		if notify := cfg.NotifyRetract; r.Notify != nil && *r.Notify || r.Notify == nil && notify {
			s.broadcast(c, r.Node, RetractEvent(r.Node, gone))
		}
	case OpItems:
		if e := s.readable(p.From, r.Node, cfg, aff); e != nil {
			c.Error(p, e)
			return
		}
		its, pg, e, err := s.m.nodes.Select(s.domain, r)
		if err != nil {
			s.fail(c, p, err)
			return
		}
		if e != nil {
			c.Error(p, e)
			return
		}
		c.Reply(p, ItemsReply(r.Node, its, pg))
	case OpSubscribe:
		s.subscribe(c, p, r, cfg, aff)
	case OpOptions, OpOptionsSet:
		s.options(c, p, r, aff)
	case OpUnsubscribe:
		j, err := jid.Parse(r.JID)
		if err != nil {
			c.Error(p, stanza.New(stanza.JIDMalformed))
			return
		}
		if !j.Bare().Equal(p.From.Bare()) && aff != AffOwner {
			c.Error(p, Err(stanza.BadRequest, "invalid-jid"))
			return
		}
		st, err := s.m.nodes.Subscription(s.domain, r.Node, j.String())
		if err != nil {
			s.fail(c, p, err)
			return
		}
		if st == SubNone {
			c.Error(p, Err(stanza.UnexpectedRequest, "not-subscribed"))
			return
		}
		if err := s.m.nodes.SetSubscription(s.domain, r.Node, j.String(), SubNone); err != nil {
			s.fail(c, p, err)
			return
		}
		c.Reply(p, nil)
	case OpConfigureGet:
		var b xmlstream.Builder
		b.Start("pubsub").Attr("xmlns", NSOwner).Start("configure").Attr("node", r.Node)
		cfg.AppendForm(&b, s.policy())
		b.End().End()
		c.Reply(p, b.B)
	case OpConfigureSet:
		old := cfg
		if e := cfg.Apply(r.Options, s.policy()); e != nil {
			c.Error(p, e)
			return
		}
		err := s.m.nodes.T.Apply(ConfigOp(s.domain, r.Node, cfg))
		if err == nil && !cfg.Persist {
			err = s.m.nodes.Purge(s.domain, r.Node)
		} else if err == nil && cfg.MaxItems < old.MaxItems {
			err = s.m.nodes.Trim(s.domain, r.Node, cfg.MaxItems)
		}
		if err != nil {
			s.fail(c, p, err)
			return
		}
		c.Reply(p, nil)
	case OpDelete:
		// §8.4.2: every subscriber learns that the node is gone, those that asked for no
		// notifications (pubsub#deliver) too: their subscription ends with it.
		var subs []string
		for j, st := range s.m.nodes.Subscriptions(s.domain, r.Node) {
			if st == SubSubscribed {
				subs = append(subs, j)
			}
		}
		slices.Sort(subs)
		if err := s.m.nodes.Remove(s.domain, r.Node); err != nil {
			s.fail(c, p, err)
			return
		}
		c.Reply(p, nil)
		s.notify(c, subs, NodeEvent("delete", r.Node))
	case OpPurge:
		if err := s.m.nodes.Purge(s.domain, r.Node); err != nil {
			s.fail(c, p, err)
			return
		}
		c.Reply(p, nil)
		s.broadcast(c, r.Node, NodeEvent("purge", r.Node))
	case OpOwnerSubscriptions:
		s.ownerSubscriptions(c, p, r)
	case OpOwnerAffiliations:
		s.ownerAffiliations(c, p, r)
	default:
		c.Error(p, Err(stanza.FeatureNotImplemented, "unsupported"))
	}
}

// create implements XEP-0060 §8.1: any local user may create a node and becomes its owner.
// Guests (SASL ANONYMOUS, XEP-0175) may not: a node outlives its creator's account, and
// each guest login is a new creator with its own max_nodes.
func (s *service) create(c module.Context, p *module.Packet, r Request, from string) {
	if !c.IsLocal(p.From.Domain()) {
		c.Error(p, forbidden("only local users may create nodes"))
		return
	}
	if IsGuest(c, p.From) {
		c.Error(p, forbidden("guests may not create nodes"))
		return
	}
	instant := r.Node == ""
	if instant {
		r.Node = NewID()
	}
	cfg := s.defaultConfig()
	if e := cfg.Apply(r.Options, s.policy()); e != nil {
		c.Error(p, e)
		return
	}
	_, exists, err := s.m.nodes.Config(s.domain, r.Node)
	if err != nil {
		s.fail(c, p, err)
		return
	}
	if exists {
		c.Error(p, stanza.New(stanza.ConflictCond))
		return
	}
	n, err := s.m.nodes.Owned(s.domain, from)
	if err != nil {
		s.fail(c, p, err)
		return
	}
	if n >= s.conf().MaxNodes {
		e := stanza.New(stanza.PolicyViolationCond)
		e.Text = "you own as many nodes as allowed"
		c.Error(p, e)
		return
	}
	ops := append(AffiliationOps(s.domain, r.Node, from, AffOwner), ConfigOp(s.domain, r.Node, cfg))
	if err := s.m.nodes.T.Apply(ops...); err != nil {
		s.fail(c, p, err)
		return
	}
	if !instant {
		c.Reply(p, nil)
		return
	}
	var b xmlstream.Builder
	b.Start("pubsub").Attr("xmlns", NS).Start("create").Attr("node", r.Node).End().End()
	c.Reply(p, b.B)
}

// publish implements XEP-0060 §7.1 with XEP-0223 publish-options as preconditions.
func (s *service) publish(c module.Context, p *module.Packet, r Request, cfg NodeConfig) {
	if r.Options != nil && !cfg.Matches(r.Options, s.policy()) {
		e := Err(stanza.ConflictCond, "precondition-not-met")
		e.Text = "the node's configuration does not match the publish-options"
		c.Error(p, e)
		return
	}
	if e := CheckPayload(r.Payload, s.conf().MaxItemSize); e != nil {
		c.Error(p, e)
		return
	}
	id := r.ItemID
	if id == "" {
		id = NewID()
	}
	if err := s.m.nodes.Publish(s.domain, r.Node, cfg, false, id, r.Payload); err != nil {
		s.fail(c, p, err)
		return
	}
	c.Reply(p, PublishReply(r.Node, id))
	s.broadcast(c, r.Node, ItemsEvent(r.Node, Item{ID: id, Payload: r.Payload}))
}

// readable checks that from may read a node with affiliation aff (XEP-0060 §6.5.9).
func (s *service) readable(from jid.JID, node string, cfg NodeConfig, aff string) *stanza.Error {
	switch {
	case aff == AffOwner || aff == AffPublisher || cfg.Access == AccessOpen:
		return nil
	case aff == AffMember:
		return nil
	case cfg.Access == AccessAuthorize:
		for _, j := range []string{from.Bare().String(), from.String()} {
			if st, _ := s.m.nodes.Subscription(s.domain, node, j); st == SubSubscribed {
				return nil
			}
		}
		return Err(stanza.NotAuthorizedCond, "not-subscribed")
	}
	return Err(stanza.NotAllowed, "closed-node")
}

// subscribe implements XEP-0060 §6.1: open nodes subscribe at once, authorize nodes
// leave the subscription pending and ask the owners (§8.6), whitelist nodes admit only
// members, publishers and owners.
func (s *service) subscribe(c module.Context, p *module.Packet, r Request, cfg NodeConfig, aff string) {
	j, err := jid.Parse(r.JID)
	if err != nil {
		c.Error(p, stanza.New(stanza.JIDMalformed))
		return
	}
	if !j.Bare().Equal(p.From.Bare()) {
		c.Error(p, Err(stanza.BadRequest, "invalid-jid"))
		return
	}
	if IsGuest(c, p.From) {
		c.Error(p, forbidden("guests may not subscribe; they may read the items"))
		return
	}
	st, cur, err := s.m.nodes.SubOptions(s.domain, r.Node, j.String())
	if err != nil {
		s.fail(c, p, err)
		return
	}
	// §6.3.7: options that come with the subscribe are checked first and apply to it.
	opts, e := ParseSubOptions(r.Options, cur)
	if e != nil {
		c.Error(p, e)
		return
	}
	switch st {
	case SubSubscribed:
		if opts != cur {
			if err := s.m.nodes.SetSubOptions(s.domain, r.Node, j.String(), st, opts); err != nil {
				s.fail(c, p, err)
				return
			}
		}
		c.Reply(p, subscriptionReplyOpts(r.Node, j.String(), SubSubscribed))
		return
	case SubPending:
		c.Error(p, Err(stanza.NotAuthorizedCond, "pending-subscription"))
		return
	}
	if e := s.m.nodes.RoomForSubscription(s.domain, r.Node, j.Bare().String()); e != nil {
		c.Error(p, e)
		return
	}
	affiliated := aff == AffOwner || aff == AffPublisher || aff == AffMember
	state := SubSubscribed
	switch cfg.Access {
	case AccessWhitelist:
		if !affiliated {
			c.Error(p, Err(stanza.NotAllowed, "closed-node"))
			return
		}
	case AccessAuthorize:
		if !affiliated {
			state = SubPending
		}
	}
	if err := s.m.nodes.SetSubOptions(s.domain, r.Node, j.String(), state, opts); err != nil {
		s.fail(c, p, err)
		return
	}
	c.Reply(p, subscriptionReplyOpts(r.Node, j.String(), state))
	if state == SubPending {
		s.askOwners(c, r.Node, j.String())
		return
	}
	s.sendLast(c, r.Node, cfg, j)
}

func (s *service) sendLast(c module.Context, node string, cfg NodeConfig, to jid.JID) {
	if cfg.SendLast == SendNever {
		return
	}
	if it, ok, _ := s.m.nodes.Last(s.domain, node); ok {
		c.Route(EventMessage(s.jid, to, ItemsEvent(node, it)))
	}
}

// askOwners sends each owner of node the XEP-0060 §8.6.1 subscription authorization form.
func (s *service) askOwners(c module.Context, node, subscriber string) {
	for j, a := range s.m.nodes.Affiliations(s.domain, node) {
		if a != AffOwner {
			continue
		}
		to, err := jid.Parse(j)
		if err != nil {
			continue
		}
		var b xmlstream.Builder
		b.Start("message").Attr("from", s.domain).Attr("to", to.String()).Attr("id", NewID())
		b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "form")
		b.Start("title").Text("PubSub subscriber request").End()
		b.Start("instructions").Text("To approve this entity's subscription request, set pubsub#allow and submit the form.").End()
		field(&b, fieldFormType, "hidden", "", nsSubAuth)
		field(&b, "pubsub#node", "text-single", "Node ID", node)
		field(&b, "pubsub#subscriber_jid", "jid-single", "Subscriber Address", subscriber)
		field(&b, "pubsub#allow", "boolean", "Allow this JID to subscribe to this pubsub node?", "false")
		b.End().End()
		c.Route(b.B)
	}
}

// authorization takes an owner's answer to a subscription authorization form (XEP-0060
// §8.6.2): the subscription becomes subscribed or is removed, and the subscriber is told.
func (s *service) authorization(c module.Context, p *module.Packet) {
	x, ok := p.Elem().Child(ns.DataForms, "x")
	if !ok {
		return
	}
	f, e := ParseForm(x)
	if e != nil {
		return
	}
	if t, _ := f.Value(fieldFormType); t != nsSubAuth {
		return
	}
	node, _ := f.Value("pubsub#node")
	sub, _ := f.Value("pubsub#subscriber_jid")
	allowS, _ := f.Value("pubsub#allow")
	allow, _ := parseBool(allowS)
	if typ, _ := x.Attr("type"); string(typ) == "cancel" {
		return // XEP-0060 §8.6.2: cancel leaves the request pending
	}
	if aff, _ := s.m.nodes.Affiliation(s.domain, node, p.From.Bare().String()); aff != AffOwner {
		c.Error(p, forbidden("only owners may authorize subscriptions"))
		return
	}
	sj, err := jid.Parse(sub)
	if err != nil {
		return
	}
	if st, _ := s.m.nodes.Subscription(s.domain, node, sj.String()); st != SubPending {
		return
	}
	s.decide(c, node, sj, allow)
}

// decide turns a pending subscription into subscribed (allow) or none and tells the
// subscriber (XEP-0060 §8.6.3).
func (s *service) decide(c module.Context, node string, sj jid.JID, allow bool) {
	state := SubNone
	if allow {
		state = SubSubscribed
	}
	if err := s.m.nodes.SetSubscription(s.domain, node, sj.String(), state); err != nil {
		s.m.log.Error().Err(err).Str("service", s.domain).Msg("pubsub: store")
		return
	}
	var b xmlstream.Builder
	b.Start("subscription").Attr("node", node).Attr("jid", sj.String()).Attr("subscription", state).End()
	c.Route(EventMessage(s.jid, sj, b.B))
	if allow {
		if cfg, ok, _ := s.m.nodes.Config(s.domain, node); ok {
			s.sendLast(c, node, cfg, sj)
		}
	}
}

// broadcast sends event to the node's subscribers who may read it now (XEP-0060 §4.5): a
// subscription made while the node was open, or while its subscriber was a member,
// carries no right to what the node holds once it is not.
func (s *service) broadcast(c module.Context, node string, event []byte) {
	subs := s.m.nodes.Subscribers(s.domain, node)
	if cfg, ok, _ := s.m.nodes.Config(s.domain, node); ok && cfg.Access != AccessOpen {
		subs = slices.DeleteFunc(subs, func(sub string) bool {
			j, err := jid.Parse(sub)
			if err != nil {
				return true
			}
			aff, _ := s.m.nodes.Affiliation(s.domain, node, j.Bare().String())
			return s.readable(j, node, cfg, aff) != nil
		})
	}
	s.notify(c, subs, event)
}

func (s *service) notify(c module.Context, subs []string, event []byte) {
	for _, sub := range subs {
		if j, err := jid.Parse(sub); err == nil {
			c.Route(EventMessage(s.jid, j, event))
		}
	}
}

// userLists answers a user's subscriptions or affiliations request (XEP-0060 §5.6,
// §5.7), for one node or all.
func (s *service) userLists(c module.Context, p *module.Packet, r Request, from string) {
	var b xmlstream.Builder
	list := "subscriptions"
	if r.Op == OpAffiliations {
		list = "affiliations"
	}
	b.Start("pubsub").Attr("xmlns", NS).Start(list)
	if r.Node != "" {
		b.Attr("node", r.Node)
	}
	one := func(node string) {
		if r.Op == OpAffiliations {
			if a, _ := s.m.nodes.Affiliation(s.domain, node, from); a != AffNone {
				b.Start("affiliation").Attr("node", node).Attr("affiliation", a).End()
			}
			return
		}
		subs := s.m.nodes.SubscriptionsOf(s.domain, node, from) // the sender's rows only
		for _, j := range sortedKeys(subs) {
			b.Start("subscription").Attr("node", node).Attr("jid", j).Attr("subscription", subs[j]).End()
		}
	}
	var err error
	if r.Node != "" {
		var exists bool
		if _, exists, err = s.m.nodes.Config(s.domain, r.Node); exists {
			one(r.Node)
		}
	} else {
		err = s.m.nodes.List(s.domain, func(node string, _ NodeConfig) bool { one(node); return true })
	}
	if err != nil {
		s.fail(c, p, err)
		return
	}
	b.End().End()
	c.Reply(p, b.B)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// OwnerList is an owner's <subscriptions/> or <affiliations/> (what: "subscription" or
// "affiliation") of node, sorted by JID (XEP-0060 §8.8.1, §8.9.1).
func OwnerList(what, node string, byJID map[string]string) []byte {
	var b xmlstream.Builder
	b.Start("pubsub").Attr("xmlns", NSOwner).Start(what+"s").Attr("node", node)
	for _, j := range sortedKeys(byJID) {
		b.Start(what).Attr("jid", j).Attr(what, byJID[j]).End()
	}
	b.End().End()
	return b.B
}

// ownerSubscriptions gets or sets a node's subscriptions (XEP-0060 §8.8). Approving a
// pending subscription here tells the subscriber as the form would.
func (s *service) ownerSubscriptions(c module.Context, p *module.Packet, r Request) {
	if p.Type == "get" {
		c.Reply(p, OwnerList("subscription", r.Node, s.m.nodes.Subscriptions(s.domain, r.Node)))
		return
	}
	type change struct {
		j     jid.JID
		state string
	}
	var todo []change
	for _, e := range r.Entries {
		j, err := jid.Parse(e.JID)
		if err != nil {
			c.Error(p, stanza.New(stanza.JIDMalformed))
			return
		}
		switch e.Value {
		case SubNone, SubSubscribed, SubPending:
		default:
			c.Error(p, BadRequest("unknown subscription state "+e.Value))
			return
		}
		todo = append(todo, change{j, e.Value})
	}
	if e := s.m.nodes.RoomForSubscriptions(s.domain, r.Node, Additions(r.Entries)); e != nil {
		c.Error(p, e)
		return
	}
	for _, ch := range todo {
		old, err := s.m.nodes.Subscription(s.domain, r.Node, ch.j.String())
		if err != nil {
			s.fail(c, p, err)
			return
		}
		if old == SubPending && ch.state != SubPending {
			s.decide(c, r.Node, ch.j, ch.state == SubSubscribed)
			continue
		}
		if err := s.m.nodes.SetSubscription(s.domain, r.Node, ch.j.String(), ch.state); err != nil {
			s.fail(c, p, err)
			return
		}
	}
	c.Reply(p, nil)
}

// ownerAffiliations gets or sets a node's affiliations (XEP-0060 §8.9). A node keeps at
// least one owner; an outcast loses its subscriptions.
func (s *service) ownerAffiliations(c module.Context, p *module.Packet, r Request) {
	affs := s.m.nodes.Affiliations(s.domain, r.Node)
	if p.Type == "get" {
		c.Reply(p, OwnerList("affiliation", r.Node, affs))
		return
	}
	var ops []affChange
	for _, e := range r.Entries {
		j, err := jid.Parse(e.JID)
		if err != nil || !j.IsBare() {
			c.Error(p, stanza.New(stanza.JIDMalformed))
			return
		}
		switch e.Value {
		case AffOwner, AffPublisher, AffMember, AffNone, AffOutcast:
		default:
			c.Error(p, BadRequest("unknown affiliation "+e.Value))
			return
		}
		if e.Value == AffNone {
			delete(affs, j.String())
		} else {
			affs[j.String()] = e.Value
		}
		ops = append(ops, affChange{j, e.Value})
	}
	owners := 0
	for _, a := range affs {
		if a == AffOwner {
			owners++
		}
	}
	if owners == 0 {
		e := stanza.New(stanza.NotAcceptable)
		e.Text = "a node needs an owner"
		c.Error(p, e)
		return
	}
	if e := s.m.nodes.RoomForAffiliations(s.domain, r.Node, Additions(r.Entries)); e != nil {
		c.Error(p, e)
		return
	}
	for _, o := range ops {
		if err := s.m.nodes.T.Apply(AffiliationOps(s.domain, r.Node, o.j.String(), o.aff)...); err != nil {
			s.fail(c, p, err)
			return
		}
		if o.aff == AffOutcast {
			for sub := range s.m.nodes.Subscriptions(s.domain, r.Node) {
				if sj, err := jid.Parse(sub); err == nil && sj.Bare().Equal(o.j) {
					s.m.nodes.SetSubscription(s.domain, r.Node, sub, SubNone)
				}
			}
		}
	}
	c.Reply(p, nil)
}

type affChange struct {
	j   jid.JID
	aff string
}

// discoInfo answers disco#info on the service and on its nodes (XEP-0060 §5.1, §5.3).
func (s *service) discoInfo(c module.Context, p *module.Packet, q xmlstream.Element) {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoInfo)
	node, _ := q.AppendAttr(nil, "node")
	if len(node) == 0 {
		b.Start("identity").Attr("category", "pubsub").Attr("type", "service").Attr("name", s.m.cfg.Name).End()
		for _, f := range append([]string{ns.DiscoInfo, ns.DiscoItems}, ServiceFeatures...) {
			b.Start("feature").Attr("var", f).End()
		}
		b.End()
		c.Reply(p, b.B)
		return
	}
	cfg, ok := s.node(c, p, string(node))
	if !ok {
		return
	}
	b.Attr("node", string(node))
	b.Start("identity").Attr("category", "pubsub").Attr("type", "leaf").End()
	b.Start("feature").Attr("var", NS).End()
	b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "result")
	field(&b, fieldFormType, "hidden", "", NS+"#meta-data")
	field(&b, fieldTitle, "text-single", "", cfg.Title)
	field(&b, fieldAccess, "list-single", "", cfg.Access)
	b.End().End()
	c.Reply(p, b.B)
}

// Node listing pages: without an RSM max, and at most.
const (
	nodePage    = 250
	maxNodePage = 500
)

// discoItems lists the service's nodes, or a readable node's items (XEP-0060 §5.2, §5.5).
func (s *service) discoItems(c module.Context, p *module.Packet, q xmlstream.Element) {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoItems)
	node, _ := q.AppendAttr(nil, "node")
	if len(node) == 0 {
		// The service's nodes, sorted by name and paged with XEP-0059 (a service may
		// hold many; a listing without <set/> gets the first nodePage of them).
		r, e := rsm.Parse(q)
		if e != nil {
			c.Error(p, e)
			return
		}
		type entry struct{ name, title string }
		var nodes []entry
		err := s.m.nodes.List(s.domain, func(n string, cfg NodeConfig) bool {
			if cfg.Access == AccessWhitelist {
				// A whitelisted node, its name and title with it, is for its members
				// (XEP-0060 §4.5): not listed to others.
				aff, _ := s.m.nodes.Affiliation(s.domain, n, p.From.Bare().String())
				if s.readable(p.From, n, cfg, aff) != nil {
					return true
				}
			}
			nodes = append(nodes, entry{n, cfg.Title})
			return true
		})
		if err != nil {
			s.fail(c, p, err)
			return
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].name < nodes[j].name })
		key := func(i int) string { return nodes[i].name }
		pg := rsm.Cut(len(nodes), key, r, nodePage, maxNodePage)
		for _, n := range nodes[pg.Lo:pg.Hi] {
			b.Start("item").Attr("jid", s.domain).Attr("node", n.name)
			if n.title != "" {
				b.Attr("name", n.title)
			}
			b.End()
		}
		pg.Append(&b, key)
		b.End()
		c.Reply(p, b.B)
		return
	}
	n := string(node)
	cfg, ok := s.node(c, p, n)
	if !ok {
		return
	}
	aff, _ := s.m.nodes.Affiliation(s.domain, n, p.From.Bare().String())
	if e := s.readable(p.From, n, cfg, aff); e != nil || aff == AffOutcast {
		if e == nil {
			e = forbidden("you are banned from this node")
		}
		c.Error(p, e)
		return
	}
	its, err := s.m.nodes.Items(s.domain, n, 0)
	if err != nil {
		s.fail(c, p, err)
		return
	}
	b.Attr("node", n)
	for _, it := range its {
		b.Start("item").Attr("jid", s.domain).Attr("name", it.ID).End()
	}
	b.End()
	c.Reply(p, b.B)
}
