package muc

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Namespaces of XEP-0045 and the XEPs it works with.
const (
	NS          = "http://jabber.org/protocol/muc"
	NSUser      = NS + "#user"
	NSAdmin     = NS + "#admin"
	NSOwner     = NS + "#owner"
	NSStableID  = NS + "#stable_id"
	NSRoomConf  = NS + "#roomconfig"
	NSRoomInfo  = NS + "#roominfo"
	NSRequest   = NS + "#request"
	NSSelfPing  = NS + "#self-ping-optimization" // XEP-0410 §3.3
	NSOccupant  = "urn:xmpp:occupant-id:0"       // XEP-0421
	NSConfStamp = "jabber:x:conference"          // XEP-0249 direct invitations
	NSVCard     = "vcard-temp"                   // XEP-0054, for XEP-0486 room avatars
)

// Tunables: defaults of [modules.muc]; each can be changed there.
const (
	// DefaultSubdomain names the service of each virtual host: conference.<host>.
	DefaultSubdomain = "conference"
	// DefaultMaxRooms bounds the rooms of one service, live and persistent: every room
	// costs memory while it has occupants (and a persistent one stays loaded once used).
	DefaultMaxRooms = 10000
	// DefaultMaxRoomsPerUser bounds the rooms one user (a bare JID) created that still
	// exist on a service, so that no one user takes all of max_rooms.
	DefaultMaxRoomsPerUser = 100
	// DefaultOccupants is muc#roomconfig_maxusers of a new room.
	DefaultOccupants = 200
	// DefaultMaxOccupants is the largest maxusers an owner may set. Admins and owners may
	// enter a full room (XEP-0045 §7.2.9) up to this bound too: one groupchat message costs
	// one routed stanza per occupant session.
	DefaultMaxOccupants = 5000
	// DefaultHistory is the history a new room keeps and sends on join (messages).
	DefaultHistory = 20
	// DefaultMaxHistory is the largest history length an owner may set: the ring is in
	// memory, and each joiner gets up to that many messages.
	DefaultMaxHistory = 200
	// DefaultFloodOccupants is the room size from which join flood control applies: below
	// it a join costs at most a few hundred presence stanzas.
	DefaultFloodOccupants = 200
	// DefaultJoinRate is the sustained rate of joins per second a large room accepts (with a
	// burst of twice as many); each join there sends one presence per occupant and the
	// whole room roster to the joiner. Joins beyond get resource-constraint (type wait).
	DefaultJoinRate = 10
	// DefaultMessageRate is the sustained rate of groupchat messages per second one
	// occupant below moderator may send in a large room (with a burst of five times as
	// many); each is copied to every occupant. Beyond it a message is refused with
	// policy-violation (type wait), as Prosody's mod_muc_limits does.
	DefaultMessageRate = 2
	// DefaultPresenceInterval is the shortest interval between two broadcast availability
	// changes (show, status) of one occupant of a large room; changes in between are
	// kept for the next broadcast and for newcomers.
	DefaultPresenceInterval = 5 * time.Second
	// maxNickBytes bounds a room nickname (resourceprep allows 1023 bytes).
	maxNickBytes = 128
	// maxSubjectBytes and maxPresenceBytes bound what a room keeps per subject and per
	// occupant presence; maxFieldBytes bounds one text field of the configuration form.
	maxSubjectBytes  = 4 << 10
	maxPresenceBytes = 8 << 10
	maxFieldBytes    = 1 << 10
	// maxListItems bounds the items of one #admin set and the JIDs of the owner and admin
	// list fields of a configuration form.
	maxListItems = 1000
	// maxAffiliations bounds the affiliations one room keeps (members, admins, bans).
	maxAffiliations = 10000
	// maxPendingIQ bounds the IQs one room relays between occupants and awaits answers to.
	maxPendingIQ = 256
	// DefaultMaxVCard bounds a room's vCard (XEP-0486: its avatar), as the vcard module
	// bounds a user's.
	DefaultMaxVCard = 64 << 10
)

func init() { module.Register(new(Mod)) }

// Config is [modules.muc].
type Config struct {
	// Subdomain names the service: <subdomain>.<virtual host> for each host.
	Subdomain string `toml:"subdomain"`
	// Name is the service's disco identity name.
	Name string `toml:"name"`
	// Create says who may create rooms: "local" (users of this server's virtual hosts,
	// the default), "anyone", or "admins" (Admins only). Admins may always.
	Create string `toml:"create"`
	// CreateHosts narrows "local" to the users of these virtual hosts: a server with a
	// host for guests lets them join rooms but not make them, as Prosody's
	// restrict_room_creation = "local" does for its own host.
	CreateHosts []string `toml:"create_hosts"`
	// MaxRooms bounds the rooms of one service; MaxRoomsPerUser those one user created
	// that still exist there (the service's admins are not bound).
	MaxRooms        int `toml:"max_rooms"`
	MaxRoomsPerUser int `toml:"max_rooms_per_user"`
	// DefaultOccupants is maxusers of a new room; MaxOccupants the largest an owner may set.
	DefaultOccupants int `toml:"default_occupants"`
	MaxOccupants     int `toml:"max_occupants"`
	// DefaultHistory and MaxHistory: history length of a new room, and the largest allowed.
	DefaultHistory int `toml:"default_history"`
	MaxHistory     int `toml:"max_history"`
	// FloodOccupants, JoinRate, PresenceInterval: join and presence flood control in rooms
	// with at least FloodOccupants occupants. PresenceInterval is a Go duration ("5s").
	FloodOccupants   int     `toml:"flood_occupants"`
	JoinRate         float64 `toml:"join_rate"`
	PresenceInterval string  `toml:"presence_interval"`
	// Admins are the service's administrators (bare JIDs): owners of every room, as
	// XEP-0045 §5.1 gives them; they may also create rooms where create is restricted.
	Admins []string `toml:"admins"`
	// MessageRate is how many groupchat messages a second an occupant below moderator
	// sends in a room of at least FloodOccupants occupants (a burst of five times that).
	MessageRate float64 `toml:"message_rate"`
	// Logging is whether a new room is logged (muc#roomconfig_enablelogging): its
	// messages archived (XEP-0313, when the archive module runs) for its occupants to
	// catch up on, as mobile clients do. Default true, as Prosody's muc_log_by_default;
	// an owner turns it off in the room's configuration.
	Logging *bool `toml:"default_logging"`
	// OccupantIDSecret keys the XEP-0421 occupant ids. Empty: a random secret is made at
	// first start and kept in the store, so ids stay stable across restarts.
	OccupantIDSecret string `toml:"occupant_id_secret"`
	// MaxVCardBytes bounds the vCard an owner sets on a room (XEP-0486 room avatars).
	MaxVCardBytes int `toml:"max_vcard_bytes"`
}

// Mod is the module: one MUC service per virtual host.
type Mod struct {
	cfg    Config // as at start: subdomain, name and the occupant-id secret change at a restart
	set    atomic.Pointer[module.HostSettings[settings]]
	log    zerolog.Logger
	t      store.Table
	st     store.Store // identifies this server's Archive (SetArchive)
	secret []byte
	// svcs are the services by domain; svcsMu guards the map, which hosts added and
	// removed change while the operator's listing (Rooms) reads it.
	svcsMu sync.RWMutex
	svcs   map[string]*service
}

var _ module.Provisioner = (*Mod)(nil)

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "muc", XEP: 45, New: func() module.Module { return new(Mod) }, PerHost: true}
}

// Provision reads [modules.muc], loads the persistent rooms' directory and claims one
// service domain per virtual host.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	if err := module.Configure(r, m); err != nil {
		return err
	}
	m.cfg = m.set.Load().All().Config
	m.t = r.Table("muc")
	m.st = r.Store()
	secret, err := m.loadSecret()
	if err != nil {
		return err
	}
	m.secret = secret
	m.svcs = map[string]*service{}
	for _, d := range r.Domains() {
		s, err := m.newService(d)
		if err != nil {
			return err
		}
		m.svcs[s.domain] = s
		r.Service(module.Service{Domain: s.domain, Name: m.cfg.Name, Handler: s.handle, Host: d})
	}
	r.OnStop(m.stop)
	r.OnRemoved(m.removed)
	return m.loadDirectory(m.svcs)
}

// removed drops a removed account's affiliations to persistent rooms, with the nickname
// it registered, so that an account made later with the same name owns, administers
// and belongs to nothing, and finds the nickname free. A ban stays: deleting an account
// must not lift it. Each room changes on its own shard, in memory when it is loaded; a
// temporary room keeps what it knows until it ends with its last occupant. Guests are
// not looked for.
func (m *Mod) removed(rm module.Removal) {
	if rm.Guest {
		return
	}
	bare := rm.User.String()
	var rooms []string
	err := m.t.Scan([]byte("a"), func(k, v []byte) bool {
		room, who, ok := bytes.Cut(k[1:], []byte{0})
		if ok && string(who) == bare {
			rooms = append(rooms, string(room))
		}
		return true
	})
	if err != nil {
		m.log.Error().Err(err).Str("user", bare).Msg("muc: listing a removed account's affiliations")
		return
	}
	m.svcsMu.RLock()
	defer m.svcsMu.RUnlock()
	for _, key := range rooms {
		rj, err := jid.Parse(key)
		s := m.svcs[rj.Domain()]
		if err != nil || s == nil {
			continue
		}
		rm.CallOn(rj, func(module.Context) { s.forget(key, bare) })
	}
}

// forget drops bare's affiliation to the room key unless it is a ban; on the room's shard.
func (s *service) forget(key, bare string) {
	if v, ok := s.rooms.Load(key); ok {
		r := v.(*room)
		if a, ok := r.affs[bare]; ok && a.aff != affOutcast {
			delete(r.affs, bare)
			if err := r.saveAff(bare, affRecord{}); err != nil && module.LogStoreError(err) {
				s.m.log.Error().Err(err).Str("room", key).Msg("muc: dropping a removed account's affiliation")
			}
		}
		return
	}
	v, err := s.m.t.Get(keyAff(key, bare))
	var sa storedAff
	if err != nil || json.Unmarshal(v, &sa) != nil || sa.Aff == affOutcast.String() {
		return
	}
	if err := s.m.t.Delete(keyAff(key, bare)); err != nil && module.LogStoreError(err) {
		s.m.log.Error().Err(err).Str("room", key).Msg("muc: dropping a removed account's affiliation")
	}
}

// settings are the limits and defaults a reload changes (Reconfigure).
type settings struct {
	Config
	presEvery time.Duration
	admins    map[string]bool // Config.Admins, prepared
}

// conf is the settings in force.
func (m *Mod) conf(host string) *settings { return m.set.Load().For(host) }

// conf is the settings of s's host.
func (s *service) conf() *settings { return s.m.conf(s.host) }

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: room limits, defaults for new rooms, who
// may create rooms, the service's administrators, and join, presence and message flood
// control change at a reload (an
// operator tightens them during a raid without a restart); rooms keep the settings
// their owners gave them. The subdomain, the service's name and the occupant-id secret
// are read at start only; a change to them is logged and waits.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	var all *settings
	set, err := module.DeriveSettings(rc, func(host string, cfg *Config) (*settings, error) {
		st, err := cfg.settings()
		switch {
		case err != nil:
			return nil, err
		case host == "":
			all = st
		case st.Subdomain != all.Subdomain || st.Name != all.Name || st.OccupantIDSecret != all.OccupantIDSecret:
			return nil, errors.New("subdomain, name and occupant_id_secret are server-wide: set them in [modules.muc]")
		}
		return st, nil
	})
	if err != nil {
		return nil, err
	}
	return func() {
		if m.set.Load() != nil && (all.Subdomain != m.cfg.Subdomain || all.Name != m.cfg.Name || all.OccupantIDSecret != m.cfg.OccupantIDSecret) {
			m.log.Warn().Msg("muc: subdomain, name and occupant_id_secret change at a restart; applying the rest")
		}
		m.set.Store(set)
	}, nil
}

// settings checks cfg whole and returns what it sets.
func (cfg Config) settings() (*settings, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	st := &settings{Config: cfg, presEvery: DefaultPresenceInterval, admins: map[string]bool{}}
	for _, a := range cfg.Admins {
		j, err := jid.Parse(a)
		if err != nil || j.Local() == "" || j.Resource() != "" {
			return nil, fmt.Errorf("admins: %q is not a bare user@domain JID", a)
		}
		st.admins[j.String()] = true
	}
	if cfg.PresenceInterval != "" {
		d, err := time.ParseDuration(cfg.PresenceInterval)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("presence_interval %q: want a duration such as \"5s\"", cfg.PresenceInterval)
		}
		st.presEvery = d
	}
	return st, nil
}

func (m *Mod) newService(host string) (*service, error) {
	dom, err := jid.PrepareDomain(m.cfg.Subdomain + "." + host)
	if err != nil {
		return nil, fmt.Errorf("subdomain %q: %w", m.cfg.Subdomain, err)
	}
	sj, _ := jid.Parse(dom)
	s := &service{m: m, host: host, domain: dom, jid: sj}
	s.dir.rooms = map[string]*dirEntry{}
	return s, nil
}

var _ module.HostWatcher = (*Mod)(nil)

// AddHost implements module.HostWatcher: the service of a host added at runtime, with the
// persistent rooms it had if it was served before.
func (m *Mod) AddHost(host string) ([]module.Service, error) {
	s, err := m.newService(host)
	if err != nil {
		return nil, err
	}
	if err := m.loadDirectory(map[string]*service{s.domain: s}); err != nil {
		return nil, err
	}
	m.svcsMu.Lock()
	m.svcs[s.domain] = s
	m.svcsMu.Unlock()
	return []module.Service{{Domain: s.domain, Name: m.cfg.Name, Handler: s.handle, Host: host}}, nil
}

// RemoveHost implements module.HostWatcher. Rooms in memory go with the service; the
// persistent ones stay in the store and come back with the host.
func (m *Mod) RemoveHost(host string) {
	if dom, err := jid.PrepareDomain(m.cfg.Subdomain + "." + host); err == nil {
		m.svcsMu.Lock()
		delete(m.svcs, dom)
		m.svcsMu.Unlock()
	}
}

// stop is the module's OnStop: the services going away (every one when the server stops,
// the host's when a virtual host is removed) take no more stanzas but errors, results and
// unavailable presence, and every room in memory removes its occupants with status 332
// (room.shutdown) on its own shard. Rooms not loaded have nobody in them.
func (m *Mod) stop(st module.Stopping) {
	var only string
	if st.Host != "" {
		d, err := jid.PrepareDomain(m.cfg.Subdomain + "." + st.Host)
		if err != nil {
			return
		}
		only = d
	}
	m.svcsMu.RLock()
	defer m.svcsMu.RUnlock()
	for dom, s := range m.svcs {
		if only != "" && dom != only {
			continue
		}
		s.closing.Store(true)
		s.rooms.Range(func(k, _ any) bool {
			key := k.(string)
			bare, err := jid.Parse(key)
			if err != nil {
				return true
			}
			st.CallOn(bare, func(c module.Context) {
				if v, ok := s.rooms.Load(key); ok {
					v.(*room).shutdown(c)
				}
			})
			return true
		})
	}
}

func (c *Config) normalize() error {
	if c.Subdomain == "" {
		c.Subdomain = DefaultSubdomain
	}
	if c.Name == "" {
		c.Name = "Chatrooms"
	}
	switch c.Create {
	case "":
		c.Create = "local"
	case "local", "anyone", "admins":
	default:
		return fmt.Errorf("create %q: want \"local\", \"anyone\" or \"admins\"", c.Create)
	}
	for i, h := range c.CreateHosts {
		d, err := jid.PrepareDomain(h)
		if err != nil {
			return fmt.Errorf("create_hosts: %q is not a host name", h)
		}
		c.CreateHosts[i] = d
	}
	pos := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pos(&c.MaxRooms, DefaultMaxRooms)
	pos(&c.MaxRoomsPerUser, DefaultMaxRoomsPerUser)
	pos(&c.MaxOccupants, DefaultMaxOccupants)
	pos(&c.DefaultOccupants, min(DefaultOccupants, c.MaxOccupants))
	pos(&c.MaxHistory, DefaultMaxHistory)
	if c.DefaultHistory < 0 {
		c.DefaultHistory = 0
	} else if c.DefaultHistory == 0 {
		c.DefaultHistory = min(DefaultHistory, c.MaxHistory)
	}
	pos(&c.FloodOccupants, DefaultFloodOccupants)
	pos(&c.MaxVCardBytes, DefaultMaxVCard)
	if c.JoinRate <= 0 {
		c.JoinRate = DefaultJoinRate
	}
	if c.MessageRate <= 0 {
		c.MessageRate = DefaultMessageRate
	}
	if c.DefaultOccupants > c.MaxOccupants {
		return fmt.Errorf("default_occupants %d is above max_occupants %d", c.DefaultOccupants, c.MaxOccupants)
	}
	if c.DefaultHistory > c.MaxHistory {
		return fmt.Errorf("default_history %d is above max_history %d", c.DefaultHistory, c.MaxHistory)
	}
	return nil
}

// loadSecret returns the occupant-id key: the configured one, or the one kept in the
// store, made at first start.
func (m *Mod) loadSecret() ([]byte, error) {
	if m.cfg.OccupantIDSecret != "" {
		return []byte(m.cfg.OccupantIDSecret), nil
	}
	v, err := m.t.Get(keySecret)
	if err == nil && len(v) >= 16 {
		return v, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("muc: read occupant-id secret: %w", err)
	}
	b := make([]byte, 32)
	rand.Read(b)
	if err := m.t.Set(keySecret, b); err != nil {
		return nil, fmt.Errorf("muc: store occupant-id secret: %w", err)
	}
	return b, nil
}

// service is one MUC service domain (conference.example.org).
type service struct {
	m      *Mod
	host   string // the virtual host it serves: its settings are the host's
	domain string
	jid    jid.JID
	// rooms holds the rooms in memory, by bare room JID. An entry is created, used and
	// deleted only on its room's shard (the router runs every stanza for a room there),
	// so a *room needs no lock; the map itself is shared by all shards.
	rooms sync.Map
	dir   directory
	// closing is set when the service goes away (Mod.stop): its rooms have said goodbye to
	// their occupants, and nobody may enter one again.
	closing atomic.Bool
	// captchas counts the CAPTCHAs each user was given this minute, in every room of the
	// service (captcha.go).
	captchas captchaBudget
}

// directory lists every room of a service, live or persistent, for disco#items, the
// room bound and lazy loading. It is the only room state read across shards.
type directory struct {
	mu    sync.Mutex
	rooms map[string]*dirEntry
}

// dirEntry is what other shards may know of a room. Written by the room's shard under
// directory.mu.
type dirEntry struct {
	name      string
	card      dirCard // what a channel search shows (search.go)
	public    bool
	locked    bool
	persisted bool // configuration in the store: load it at first use
	loaded    bool // a *room is in service.rooms
	occupants int
	creator   string // bare JID of who created it ("" for a room stored before it was kept)
}

// reserve adds a new room made by creator to the directory unless the service holds max
// rooms already (full), or creator made perUser of those (mine; perUser 0: no bound).
func (d *directory) reserve(key string, max int, creator string, perUser int) (full, mine bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.rooms[key]; ok {
		return false, false
	}
	if len(d.rooms) >= max {
		return true, false
	}
	if perUser > 0 {
		// A walk over at most max_rooms entries, once per room created.
		n := 0
		for _, e := range d.rooms {
			if e.creator == creator {
				n++
			}
		}
		if n >= perUser {
			return false, true
		}
	}
	d.rooms[key] = &dirEntry{locked: true, loaded: true, creator: creator}
	return false, false
}

func (d *directory) update(key string, f func(e *dirEntry)) {
	d.mu.Lock()
	if e := d.rooms[key]; e != nil {
		f(e)
	}
	d.mu.Unlock()
}

func (d *directory) remove(key string) {
	d.mu.Lock()
	delete(d.rooms, key)
	d.mu.Unlock()
}

func (d *directory) get(key string) (dirEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.rooms[key]
	if e == nil {
		return dirEntry{}, false
	}
	return *e, true
}

// public lists the public, unlocked rooms as (JID, name) pairs sorted by JID.
func (d *directory) public() [][2]string {
	d.mu.Lock()
	out := make([][2]string, 0, len(d.rooms))
	for k, e := range d.rooms {
		if e.public && !e.locked {
			out = append(out, [2]string{k, e.name})
		}
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// room returns the room addressed by bare, loading a persistent one at first use; nil
// when it does not exist. An error means a persistent room could not be read: it exists,
// and must not be created anew. It runs on the room's shard.
func (s *service) room(bare jid.JID) (*room, error) {
	key := bare.String()
	if v, ok := s.rooms.Load(key); ok {
		return v.(*room), nil
	}
	e, ok := s.dir.get(key)
	if !ok || !e.persisted {
		return nil, nil
	}
	r, err := s.load(bare)
	if err != nil {
		s.m.log.Error().Err(err).Str("room", key).Msg("muc: load room")
		return nil, err
	}
	r.seedHistory()
	s.rooms.Store(key, r)
	s.dir.update(key, func(e *dirEntry) { e.loaded = true })
	return r, nil
}

// handle is the module.ServiceHandler: every stanza to the service domain or an entity
// inside it, on the shard of the addressed entity's bare JID.
func (s *service) handle(c module.Context, p *module.Packet) {
	if p.From.IsZero() {
		return
	}
	if s.closing.Load() && p.Type != "error" && p.Type != "result" && p.Type != "unavailable" {
		// The service is going away (server shutdown, host removed): its rooms are empty
		// and stay so.
		e := stanza.New(stanza.ServiceUnavailable)
		e.Text = "the service is shutting down"
		if p.Kind == module.KindPresence {
			joinError(c, p, e)
		} else {
			c.Error(p, e)
		}
		return
	}
	if p.To.Local() == "" {
		s.serviceStanza(c, p)
		return
	}
	r, err := s.room(p.To.Bare())
	if err != nil {
		if p.Type != "error" && p.Type != "result" {
			c.Error(p, module.StoreError(err))
		}
		return
	}
	switch p.Kind {
	case module.KindPresence:
		if r == nil {
			s.create(c, p)
			return
		}
		r.presence(c, p)
	case module.KindMessage:
		if r == nil || r.locked && !r.isOwner(p.From) {
			if p.Type != "error" {
				c.Error(p, errBy(p.To.Bare(), stanza.ItemNotFound, ""))
			}
			return
		}
		r.message(c, p)
	case module.KindIQ:
		if r == nil {
			if p.Type == "get" || p.Type == "set" {
				s.noRoomIQ(c, p)
			}
			return
		}
		r.iq(c, p)
	}
}

// serviceStanza answers stanzas to the service domain itself (XEP-0045 §6.1–§6.3).
func (s *service) serviceStanza(c module.Context, p *module.Packet) {
	switch p.Kind {
	case module.KindIQ:
		if p.Type != "get" && p.Type != "set" {
			return
		}
		q, ok := p.Payload()
		if !ok {
			c.Error(p, stanza.New(stanza.BadRequest))
			return
		}
		switch {
		case p.Type == "get" && string(q.NS()) == ns.DiscoInfo && string(q.Name()) == "query":
			if n, _ := q.AppendAttr(nil, "node"); len(n) > 0 {
				c.Error(p, stanza.New(stanza.ItemNotFound))
				return
			}
			c.Reply(p, s.discoInfo())
		case p.Type == "get" && string(q.NS()) == ns.DiscoItems && string(q.Name()) == "query":
			if items, e := s.discoItems(q); e != nil {
				c.Error(p, e)
			} else {
				c.Reply(p, items)
			}
		case p.Type == "get" && string(q.NS()) == ns.Ping && string(q.Name()) == "ping":
			c.Reply(p, nil)
		case p.Type == "get" && string(q.NS()) == NSSearch && string(q.Name()) == "search":
			if res, e := s.search(q); e != nil {
				c.Error(p, e)
			} else {
				c.Reply(p, res)
			}
		default:
			c.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
	case module.KindMessage:
		if p.Type != "error" && p.Type != "groupchat" && p.Type != "headline" {
			c.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
	}
}

// noRoomIQ answers an IQ request to a room that does not exist (XEP-0045 §10.1.3: a
// configuration form exists only once the creating presence made the room).
func (s *service) noRoomIQ(c module.Context, p *module.Packet) {
	c.Error(p, errBy(p.To.Bare(), stanza.ItemNotFound, "no such room"))
}

// mayCreate applies [modules.muc] create and create_hosts.
func (s *service) mayCreate(c module.Context, from jid.JID) bool {
	st := s.conf()
	switch {
	case st.Create == "anyone" || st.admins[from.Bare().String()]:
		return true
	case st.Create == "admins":
		return false
	case len(st.CreateHosts) > 0:
		return slices.Contains(st.CreateHosts, from.Domain())
	}
	return c.IsLocal(from.Domain())
}

// errBy is a stanza error generated by room (RFC 6120 §8.3.2 'by', as XEP-0045 shows).
func errBy(room jid.JID, cond stanza.Condition, text string) *stanza.Error {
	e := stanza.New(cond)
	e.By = room.String()
	e.Text = text
	return e
}

var _ module.RoomDirectory = (*Mod)(nil)

// Rooms implements module.RoomDirectory: every room of every service, live or persistent,
// sorted by address, from the directories (the occupant count of a room is as of its
// last join or leave).
func (m *Mod) Rooms() []module.RoomInfo {
	m.svcsMu.RLock()
	defer m.svcsMu.RUnlock()
	var out []module.RoomInfo
	for _, s := range m.svcs {
		s.dir.mu.Lock()
		for k, e := range s.dir.rooms {
			out = append(out, module.RoomInfo{JID: k, Name: e.name, Occupants: e.occupants, Public: e.public,
				Persistent: e.persisted, Locked: e.locked})
		}
		s.dir.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID < out[j].JID })
	return out
}
