package mam

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/blocking"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/muc"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Namespaces.
const (
	NS         = ns.MAM                           // XEP-0313
	NSExtended = ns.MAMExtended                   // XEP-0313 §7: before-id, after-id, ids, flip-page, metadata
	NSRSM      = "http://jabber.org/protocol/rsm" // XEP-0059
	nsValidate = "http://jabber.org/protocol/xdata-validate"
)

// Tunables.
const (
	// DefaultMaxPage caps the results of one query page (and is the page size when the
	// client gives no RSM max): 250 messages of the 256 KiB stanza limit are 64 MiB at
	// worst, sent in flow-controlled batches.
	DefaultMaxPage = 250
	// DefaultSweepInterval is how often expired messages are looked for when a retention
	// is set. Queries never show expired messages, so this only bounds the disk they use.
	DefaultSweepInterval = time.Hour
	// sweepBudget bounds one sweep's work: at most this many rows deleted, then the next
	// sweep continues from the user it stopped at.
	sweepBudget = 100_000
	// batchBytes is how much of a result page goes out before waiting until the
	// connection has written it (like offline delivery): a page never fills the stream's
	// outbound queue, whose cap would close the stream.
	batchBytes = 64 << 10
	// stampLayout is the XEP-0082 DateTime of delay stamps and metadata, in milliseconds
	// like the ids.
	stampLayout = "2006-01-02T15:04:05.000Z"
)

func init() { module.Register(new(Mod)) }

// Config is [modules.mam].
type Config struct {
	// Default is the policy for users who set no preferences: "always" (the default),
	// "roster" (only contacts in the roster) or "never".
	Default string `toml:"default"`
	// MaxPage caps one page of results (DefaultMaxPage).
	MaxPage int `toml:"max_page"`
	// Retention is how long messages are kept: "0" or "" forever, else a Go duration
	// ("720h") or a number of days ("30d").
	Retention string `toml:"retention"`
	// SweepInterval is how often expired messages are deleted (a Go duration; default 1h).
	SweepInterval string `toml:"sweep_interval"`
	// Sync makes each archive write wait for the disk before the message goes on. Off by
	// default: the entry is written before delivery and survives a crash of the process,
	// and the next synced write (an offline message, a roster change) makes it safe from
	// power loss too; a flush per message would put the disk's latency into every
	// message's path (measured: 872 msgs/s instead of 3,737 in the quick bench here).
	Sync bool `toml:"sync"`
}

// Mod is the module.
type Mod struct {
	cfg     Config // as at start: sync and sweep_interval change at a restart
	set     atomic.Pointer[module.HostSettings[settings]]
	resweep chan struct{} // a reload changed the sweep interval
	a       archive
	prefs   *prefsCache // nil in tests that build a Mod by hand: every lookup reads the store
	st      store.Store // the server's store: its rooms' archive is installed under it
	log     zerolog.Logger
	now     func() time.Time

	features func() []string
	hostInfo func(host string) *module.HostInfo
	// sidHosts caches, per virtual host, whether the sid module stamps its users'
	// messages before the archive runs (a host may turn it off): host -> *sidHost.
	sidHosts sync.Map

	lastLog atomic.Int64 // unix seconds of the last logged archive write failure

	stop   chan struct{}
	done   chan struct{}
	cursor []byte // where the next sweep starts; used by the sweeper goroutine only
}

var (
	_ module.Provisioner = (*Mod)(nil)
	_ module.Cleaner     = (*Mod)(nil)
)

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "mam", XEP: 313, New: func() module.Module { return new(Mod) }, PerHost: true}
}

// ParseRetention reads the retention setting: "" or "0" for forever, a Go duration, or
// a whole number of days such as "30d".
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
		if err == nil && (n < 0 || n > 1e6) {
			err = errors.New("out of range")
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < 0 {
		return 0, fmt.Errorf("retention %q: want \"0\", a duration such as \"720h\" or days such as \"30d\"", s)
	}
	return d, nil
}

// settings are what a reload changes (Reconfigure).
type settings struct {
	def       string // the policy for users who set none
	maxPage   int
	retention time.Duration // 0: kept for ever
	every     time.Duration // between two sweeps
}

// Provision reads [modules.mam] and registers the IQs, hooks and the sweeper.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	if err := r.Config(&m.cfg); err != nil {
		return err
	}
	if err := module.Configure(r, m); err != nil {
		return err
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.a = archive{t: r.Table("mam"), sync: m.cfg.Sync}
	m.prefs = newPrefsCache()
	m.features = r.Features
	m.hostInfo = r.HostInfo

	r.IQ(module.IQSet, NS, "query", m.query) // also advertises NS
	r.IQ(module.IQGet, NS, "query", m.form)
	r.IQ(module.IQGet, NS, "metadata", m.metadata)
	r.Bound(m.bound)
	// The removed account's rows went with it; its cached preferences go too, or the
	// next account of that name would start with them.
	//
	// Rows archived between the account's deletion and its sessions' end (a message to a
	// session still open) were written after the store took the account's rows: they go
	// now, before the name can be registered again.
	r.OnRemoved(func(rm module.Removal) {
		user := rm.User.String()
		m.prefs.drop(user)
		if err := m.a.t.DeletePrefix(store.UserKey(user)); err != nil && module.LogStoreError(err) {
			m.log.Error().Err(err).Str("user", user).Msg("mam: archive rows left after a removal")
		}
	})
	r.IQ(module.IQGet, NS, "prefs", m.getPrefs)
	r.IQ(module.IQSet, NS, "prefs", m.setPrefs)
	r.Feature(NSExtended)
	r.Feature(NSRSM) // the archive pages with XEP-0059 (XEP-0313 §4.2)
	// XEP-0424 §2: retractions are archived, body or not (archivable), and the message a
	// retraction names becomes a tombstone (§5, retract.go).
	r.Feature(muc.NSRetract)
	r.Feature(muc.NSRetract + "#tombstone")
	// Someone else's archive (XEP-0313 §9.1): only its owner may read or configure it.
	for _, l := range []string{"query", "metadata", "prefs"} {
		r.IQBare(module.IQGet, NS, l, forbidden)
		r.IQBare(module.IQSet, NS, l, forbidden)
	}
	r.Hook(module.Outbound, module.KindMessage, module.OrderArchive, m.outbound)
	r.Hook(module.Inbound, module.KindMessage, module.OrderArchive, m.inbound)
	if m.cfg.Sync {
		r.WaitsForDisk(module.Outbound, module.KindMessage)
		r.WaitsForDisk(module.Inbound, module.KindMessage)
	}
	// Rooms of this server keep their archives here too (room.go).
	m.st = r.Store()
	muc.SetArchive(m.st, roomArchive{m})
	// XEP-0377 reports name messages by the stanza-ids of the reporter's archive.
	blocking.SetEvidence(m.st, evidence{m})

	// The sweeper runs even without a retention, which a reload may set.
	m.stop, m.done, m.resweep = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	go m.sweeper()
	return nil
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: the default policy, the page size, the
// retention (a shorter one applies at the next sweep) and the sweep interval (counted from
// the reload) change at a reload. sync is read at start only (whether archiving may wait
// for the disk decides how the router runs the hooks); a change to it is logged and waits.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	var all Config
	set, err := module.DeriveSettings(rc, func(host string, cfg *Config) (*settings, error) {
		if host == "" {
			all = *cfg
		} else if cfg.Sync != all.Sync || cfg.SweepInterval != all.SweepInterval {
			return nil, errors.New("sync and sweep_interval are server-wide: set them in [modules.mam]")
		}
		return cfg.settings()
	})
	if err != nil {
		return nil, err
	}
	global := set.All()
	return func() {
		if m.set.Load() != nil && all.Sync != m.cfg.Sync {
			m.log.Warn().Msg("mam: sync changes at a restart; applying the rest")
		}
		old := m.set.Swap(set)
		if old != nil && old.All().every != global.every && m.resweep != nil {
			select {
			case m.resweep <- struct{}{}: // the sweeper waits the new interval from now
			default:
			}
		}
	}, nil
}

// settings checks cfg and returns what it sets.
func (cfg *Config) settings() (*settings, error) {
	st := &settings{def: cfg.Default, maxPage: cfg.MaxPage}
	if st.def == "" {
		st.def = PolicyAlways
	}
	if !validPolicy(st.def) {
		return nil, fmt.Errorf("default %q: want always, roster or never", st.def)
	}
	if st.maxPage <= 0 {
		st.maxPage = DefaultMaxPage
	}
	var err error
	if st.retention, err = ParseRetention(cfg.Retention); err != nil {
		return nil, err
	}
	st.every = DefaultSweepInterval
	if cfg.SweepInterval != "" {
		if st.every, err = time.ParseDuration(cfg.SweepInterval); err != nil || st.every <= 0 {
			return nil, fmt.Errorf("sweep_interval %q: want a duration such as \"1h\"", cfg.SweepInterval)
		}
	}
	return st, nil
}

// settingsOf returns the settings of the archive named key (a user's bare JID, or a
// room's): those of its virtual host, a room's being the host its service is under
// (conference.<host>).
func (m *Mod) settingsOf(key string) *settings {
	set := m.set.Load()
	hosts := set.Hosts()
	if len(hosts) == 0 {
		return set.All()
	}
	_, dom, ok := strings.Cut(key, "@")
	if !ok {
		dom = key
	}
	best := ""
	for _, h := range hosts {
		if (dom == h || strings.HasSuffix(dom, "."+h)) && len(h) > len(best) {
			best = h
		}
	}
	if best == "" {
		return set.All()
	}
	return set.For(best)
}

// Cleanup removes the rooms' archive from muc, stops the sweeper and waits for it, so
// that the store can close.
func (m *Mod) Cleanup() error {
	if m.st != nil {
		muc.SetArchive(m.st, nil)
		blocking.SetEvidence(m.st, nil)
		m.st = nil
	}
	if m.stop != nil {
		close(m.stop)
		<-m.done
		m.stop = nil
	}
	return nil
}

func forbidden(c module.Context, iq *module.Packet) {
	c.Error(iq, &stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden, Text: "only the owner may use an archive"})
}

// cutoff is the oldest time the archive key still keeps (the zero time without
// retention).
func (m *Mod) cutoff(key string, now time.Time) time.Time {
	r := m.settingsOf(key).retention
	if r <= 0 {
		return time.Time{}
	}
	return now.Add(-r)
}

// --- archiving ---

// archivable applies XEP-0313 §5.1.1 and XEP-0334 to a chat or normal message: it is kept
// when it has a body or a subject, a <store/> hint, an XEP-0424 retraction (which the
// archive must keep, §6, for clients that catch up later), an end-to-end encrypted payload
// (some clients send no fallback body), an XEP-0353 call signal (a phone woken by a push
// learns of the call it missed from the archive) or an invitation to a room, unless it
// carries <no-store/> or <no-permanent-store/>: what Prosody keeps, but receipts and
// markers. Chat states, receipts and markers alone are not kept. body reports a <body/>;
// retract a child that may retract a message (XEP-0424's <retract/>, or an XEP-0422
// <apply-to/>), for muc.RetractedID to read.
func archivable(p *module.Packet) (keep, body, retract bool) {
	switch p.Type {
	case "", "normal", "chat":
	default:
		return false, false, false // groupchat (a room keeps its own archive), headline, error
	}
	hint := false
	for it := p.Elem().Children(); ; {
		c, ok := it.Next()
		if !ok {
			return body || hint, body, retract
		}
		switch name, space := string(c.Name()), string(c.NS()); {
		case name == "body" && space == ns.Client:
			body = true
		case space == ns.Hints && (name == "no-store" || name == "no-permanent-store"):
			return false, body, false
		case space == ns.Hints && name == "store", name == "subject" && space == ns.Client:
			hint = true
		case name == "retract" && space == muc.NSRetract:
			hint, retract = true, true
		case name == "apply-to" && space == muc.NSFasten:
			retract = true
		case keptPayload(name, space):
			hint = true
		}
	}
}

// keptPayload says whether a child makes a message worth archiving without a body.
func keptPayload(name, space string) bool {
	switch space {
	case ns.JMI0, ns.JMI1: // XEP-0353
		return true
	case ns.Conference, ns.MUCUser: // XEP-0249, a mediated invitation (XEP-0045 §7.8.2)
		return name == "x"
	}
	return ns.Encrypted(name, space)
}

// wants applies the user's preferences (XEP-0441) to a message with contact: never wins
// over always, and the default decides for everyone else.
func (m *Mod) wants(c module.Context, user, contact jid.JID) (bool, error) {
	p, err := m.userPrefs(user)
	if err != nil {
		return false, err
	}
	switch {
	case listed(p.never, contact):
		return false, nil
	case listed(p.always, contact):
		return true, nil
	case p.def == PolicyRoster:
		_, ok := c.RosterItem(user, contact.Bare())
		return ok, nil
	}
	return p.def == PolicyAlways, nil
}

// outbound archives a message a local user sends, in the sender's archive, under a new
// id. A message to the user's own bare JID is left to the inbound phase, so that it is
// archived once.
func (m *Mod) outbound(c module.Context, p *module.Packet) module.Verdict {
	user := p.From.Bare()
	to := p.To
	if to.IsZero() || to.Bare().Equal(user) || to.Local() == "" && to.Resource() == "" && c.IsLocal(to.Domain()) {
		return module.Continue
	}
	keep, _, retract := archivable(p)
	if !keep {
		return module.Continue
	}
	if id := sid.Next(c.Now()); m.archive(c, user, id, true, to, p.Raw) {
		var t [sid.IDLen]byte
		p.SetArchiveID(id.AppendText(t[:0]))
	}
	if retract {
		if target := muc.RetractedID(p.Elem()); target != "" {
			m.retract(user, to.Bare(), true, target, messageID(p), c.Now())
		}
	}
	return module.Continue
}

// messageID is the 'id' of p's message.
func messageID(p *module.Packet) string {
	v, _ := p.Elem().AppendAttr(nil, "id")
	return string(v)
}

// inbound archives a message for its local recipient under the stanza-id the recipient
// gets: the one the sid module stamped, or one stamped here when sid is off or did not
// stamp (it stamps messages with a body; here a bodiless one with a <store/> hint).
func (m *Mod) inbound(c module.Context, p *module.Packet) module.Verdict {
	keep, body, retract := archivable(p)
	if p.From.IsZero() {
		return module.Continue
	}
	user := p.To.Bare()
	if !keep {
		m.unstamp(p, user)
		return module.Continue
	}
	if ok, err := m.wants(c, user, p.From); err != nil || !ok {
		if err != nil {
			m.logFailure(err, "mam: read preferences")
		}
		m.unstamp(p, user)
		return module.Continue
	}
	id, ok := stanzaID(p, user.String(), body && m.sidStamps(user.Domain()))
	if !ok {
		id = sid.Next(c.Now())
		p.Raw = sid.Stamp(p.Raw, user.String(), id.String())
	}
	if err := m.a.add(user.String(), id, false, p.From, p.Raw); err != nil {
		m.logFailure(err, "mam: archive message")
	}
	if retract {
		if target := muc.RetractedID(p.Elem()); target != "" {
			m.retract(user, p.From.Bare(), false, target, messageID(p), c.Now())
		}
	}
	return module.Continue
}

// sidHost is sidHosts' entry: whether sid runs for a host, as of one HostInfo.
type sidHost struct {
	info *module.HostInfo
	on   bool
}

// sidStamps reports whether the sid module stamps messages to host's users: only then is
// a <stanza-id by='user'/> one this server made, not the sender.
func (m *Mod) sidStamps(host string) bool {
	info := m.hostInfo(host)
	if v, ok := m.sidHosts.Load(host); ok && v.(*sidHost).info == info {
		return v.(*sidHost).on
	}
	on := slices.Contains(info.Features, ns.SID)
	m.sidHosts.Store(host, &sidHost{info: info, on: on})
	return on
}

// unstamp takes the sid module's <stanza-id by='user'/> off a message the archive does not
// keep: clients take a stanza-id by their own account for an archive id (XEP-0313), and
// one naming no row fails their next catch-up with item-not-found. sid stamps messages
// with a body, headlines too: a scan for the name comes before any parse.
func (m *Mod) unstamp(p *module.Packet, user jid.JID) {
	if !bytes.Contains(p.Raw, []byte("stanza-id")) || !m.sidStamps(user.Domain()) {
		return
	}
	p.Raw = sid.Unstamp(make([]byte, 0, len(p.Raw)), p.Raw, user.String())
}

// archive stores a sent message if the sender's preferences allow it, and reports
// whether it did.
func (m *Mod) archive(c module.Context, user jid.JID, id sid.ID, out bool, remote jid.JID, raw []byte) bool {
	ok, err := m.wants(c, user, remote)
	if err == nil && ok {
		err = m.a.add(user.String(), id, out, remote, raw)
	}
	if err != nil {
		m.logFailure(err, "mam: archive message")
	}
	return err == nil && ok
}

// logFailure logs a failed archive write at most once a minute: the message is still
// delivered (see the package documentation), and a broken disk fails every write.
func (m *Mod) logFailure(err error, msg string) {
	if !module.LogStoreError(err) {
		return
	}
	now := time.Now().Unix()
	if last := m.lastLog.Load(); now-last >= 60 && m.lastLog.CompareAndSwap(last, now) {
		m.log.Error().Err(err).Msg(msg)
	}
}

// stanzaID returns the archive id of an inbound message: its <stanza-id by='user'/>, the
// last one, which the sid module appended after removing any the sender had put there
// (XEP-0359 §5). Where sid did not stamp (trusted is false), such an element came from
// the sender: trusting it would let a sender choose, and overwrite, an archive row.
func stanzaID(p *module.Packet, user string, trusted bool) (sid.ID, bool) {
	if !trusted {
		return sid.ID{}, false
	}
	var id sid.ID
	found := false
	var by []byte
	for it := p.Elem().Children(); ; {
		c, ok := it.Next()
		if !ok {
			return id, found
		}
		if string(c.Name()) != "stanza-id" || string(c.NS()) != ns.SID {
			continue
		}
		by, _ = c.AppendAttr(by[:0], "by")
		if string(by) != user {
			continue
		}
		v, _ := c.AppendAttr(nil, "id")
		id, found = sid.ParseID(v)
	}
}
