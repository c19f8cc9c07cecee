// Package antispam limits what strangers on other servers can send: messages with a body,
// and subscription requests, from a remote sender to a local user who does not have that
// sender in the roster. Spam
// over federation comes from accounts nobody added, in waves from one account or from many
// accounts of one server; each gets a budget per minute, and past it the messages are
// refused with policy-violation (type wait) before anything stores, archives or pushes
// them. Contacts, local users, servers and services, room traffic (groupchat, private
// messages and invitations through rooms) and messages without a body (chat states,
// receipts) are never counted.
//
// Servers in an operator's list of known spam sources (blocked_domains_file) get nothing
// through to people who have not added their accounts, and no answer. With
// challenge_strangers, a stranger's first message or subscription request to a user
// waits until the stranger answers a CAPTCHA (XEP-0158; challenge.go).
//
// It owns the counters (in memory, per minute, bounded), the list it reads, the
// challenges under way and the strangers each user let in (its store table); it does
// not read message bodies, and leaves blocking one entity to XEP-0191 and refusing whole
// servers to [s2s] deny.
//
// A virtual host may have budgets and challenges of its own ([vhosts."<host>".modules.
// antispam]), for the strangers writing to its users; it counts those strangers apart
// from the other hosts, which share the server-wide budgets. The blocked domains file is
// server-wide.
package antispam

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func init() { module.Register(new(Mod)) }

// Defaults of [modules.antispam]: far above what a person writes to people who have not
// added them yet, far below a spam run.
const (
	DefaultPerSender = 20
	DefaultPerDomain = 200
)

// maxTracked bounds the senders and domains counted at once; past it the windows of the
// minutes gone are dropped, and if a wave of new senders still fills it, counting starts
// over (the budget is then briefly looser, never tighter).
const maxTracked = 100_000

// Config is [modules.antispam].
type Config struct {
	// PerSender and PerDomain are the messages a minute one remote account, and all the
	// accounts of one remote server together, may send to local users who do not have
	// them in their rosters; 0 turns that limit off.
	PerSender int `toml:"stranger_messages_per_minute"`
	PerDomain int `toml:"stranger_domain_messages_per_minute"`
	// BlockedDomainsFile names a list of servers known for spam, one domain per line (#
	// starts a comment), such as the community-maintained JabberSPAM list: their
	// accounts reach local users who have added them, and nobody else; their
	// subdomains are listed with them. The file is read at start and again within a
	// minute of a change. "": none.
	BlockedDomainsFile string `toml:"blocked_domains_file"`
	// Challenge holds a stranger's first message or subscription request to a user and
	// asks the stranger to read a CAPTCHA first (XEP-0158; challenge.go).
	Challenge bool `toml:"challenge_strangers"`
}

// off says whether cfg checks nothing.
func (cfg *Config) off() bool {
	return cfg.PerSender == 0 && cfg.PerDomain == 0 && cfg.BlockedDomainsFile == "" && !cfg.Challenge
}

// Mod is the module.
type Mod struct {
	cfg              atomic.Pointer[module.HostSettings[Config]] // replaced whole at a reload
	mu               sync.Mutex
	senders, domains map[string]*window // by bare JID, by domain
	// blocked is the domains of BlockedDomainsFile; checked (the file's modification
	// time, under mu) at most once a minute, as hooks run.
	blocked   atomic.Pointer[map[string]bool]
	checked   time.Time
	fileMtime time.Time
	// The challenges under way (challenge.go), by user and stranger and by challenge id,
	// under mu; swept when they were last expired; approvals the strangers let in.
	pending   map[string]*pending
	byID      map[string]*pending
	drawn     window // challenges drawn this minute
	swept     time.Time
	approvals store.Table
}

type window struct {
	minute int64
	n      int
}

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "antispam", New: func() module.Module { return new(Mod) }, PerHost: true}
}

var _ module.Provisioner = (*Mod)(nil)

// Provision reads the limits and hooks inbound messages.
func (m *Mod) Provision(r module.Registrar) error {
	m.senders, m.domains = map[string]*window{}, map[string]*window{}
	m.pending, m.byID = map[string]*pending{}, map[string]*pending{}
	m.approvals = r.Table(table)
	if err := module.Configure(r, m); err != nil {
		return err
	}
	r.Hook(module.Inbound, module.KindMessage, module.OrderStrangers, m.inbound)
	r.Hook(module.Inbound, module.KindPresence, module.OrderStrangers, m.subscribe)
	r.Hook(module.Outbound, module.KindMessage, module.OrderStrangers, m.outbound)
	r.IQBare(module.IQSet, nsCaptcha, "captcha", m.answer)
	return nil
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: the limits and the blocked domains file
// change at a reload (a spam wave is no time for a restart). A file that cannot be read
// fails the reload.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	var file string
	cfgs, err := module.DecodeDefaults(rc, defaults(), func(host string, cfg *Config) error {
		if cfg.PerSender < 0 || cfg.PerDomain < 0 {
			return errors.New("limits must be 0 (off) or more")
		}
		if host == "" {
			file = cfg.BlockedDomainsFile
		} else if cfg.BlockedDomainsFile != file {
			return errors.New("blocked_domains_file is server-wide: set it in [modules.antispam]")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	set, mtime := map[string]bool{}, time.Time{}
	if file != "" {
		if set, mtime, err = readBlocked(file); err != nil {
			return nil, err
		}
	}
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.blocked.Store(&set)
		m.fileMtime, m.checked = mtime, time.Time{}
		m.cfg.Store(cfgs)
	}, nil
}

// defaults are the settings no table sets (0 turns a budget off, so absent is not 0).
func defaults() Config { return Config{PerSender: DefaultPerSender, PerDomain: DefaultPerDomain} }

// budget is the settings of the strangers writing to host's users, and the scope their
// messages are counted in: "" for the hosts on the server-wide settings, which share one
// budget, host for a host with its own.
func (m *Mod) budget(host string) (*Config, string) {
	set := m.cfg.Load()
	if cfg := set.For(host); cfg != set.All() {
		return cfg, host
	}
	return set.All(), ""
}

func (m *Mod) inbound(c module.Context, p *module.Packet) module.Verdict {
	cfg, scope := m.budget(p.To.Domain())
	if cfg.off() {
		return module.Continue
	}
	if p.To.Local() == "" || c.IsLocal(p.From.Domain()) || p.Type == "error" {
		return module.Continue // to the server itself, from local senders, or an error
	}
	if _, known := c.RosterItem(p.To.Bare(), p.From.Bare()); known {
		return module.Continue
	}
	e := p.Elem()
	if _, ok := e.Child("", "body"); !ok {
		return module.Continue // chat states and receipts carry no advertisement
	}
	// A listed server's messages get nothing through, whatever they are wrapped in (a
	// room's muc#user element, a headline, its own domain as the sender).
	if m.listed(p.From.Domain(), c.Now()) {
		return module.Stop // no answer: a listed server learns nothing
	}
	if p.From.Local() == "" {
		return module.Continue // servers and services
	}
	// Traffic of a room the user is in (XEP-0045: its messages, private messages
	// through it): the room's bare JID is shared by every occupant and is no stranger.
	// An invitation from a room the user has not joined is counted like any message.
	if _, muc := e.Child(ns.MUCUser, "x"); muc || p.Type == "groupchat" {
		if joined(c, p.To.Bare(), p.From.Bare()) {
			return module.Continue
		}
	}
	if m.allow(cfg, scope, p.From.Bare().String(), p.From.Domain(), c.Now()) {
		if m.hold(c, cfg, p) {
			return module.Stop
		}
		return module.Continue
	}
	se := stanza.New(stanza.PolicyViolationCond)
	se.Type = stanza.Wait
	se.Text = "Too many messages to people who have not added you; wait a minute."
	c.Error(p, se)
	return module.Stop
}

// joined reports whether a session of user has its directed presence at room (an
// occupant JID of it): the user is in that room.
func joined(c module.Context, user, room jid.JID) bool {
	for _, s := range c.Sessions(user) {
		d, _ := s.Value(module.DirectedPresence).(map[string]bool)
		for to := range d {
			if j, err := jid.Parse(to); err == nil && j.Bare().Equal(room) {
				return true
			}
		}
	}
	return false
}

// subscribe counts a remote stranger's subscription request (the other way spam comes,
// with an advertisement in its status or nick) against the same budgets; one past them
// is dropped, as a request the user would never see (RFC 6121 §3.1.3 lets a server
// refuse silently).
func (m *Mod) subscribe(c module.Context, p *module.Packet) module.Verdict {
	cfg, scope := m.budget(p.To.Domain())
	if cfg.off() {
		return module.Continue
	}
	if p.Type != "subscribe" || p.From.Local() == "" || p.To.Local() == "" || c.IsLocal(p.From.Domain()) {
		return module.Continue
	}
	if _, known := c.RosterItem(p.To.Bare(), p.From.Bare()); known {
		return module.Continue
	}
	if m.listed(p.From.Domain(), c.Now()) || !m.allow(cfg, scope, p.From.Bare().String(), p.From.Domain(), c.Now()) {
		return module.Stop
	}
	if m.hold(c, cfg, p) {
		return module.Stop
	}
	return module.Continue
}

// listed reports whether domain, or a domain it is under, is in BlockedDomainsFile,
// re-reading the file first when a minute has passed since the last look and it changed
// (a file that cannot be read then keeps the list as it was).
func (m *Mod) listed(domain string, now time.Time) bool {
	if m.cfg.Load().All().BlockedDomainsFile == "" {
		return false
	}
	m.mu.Lock()
	if now.Sub(m.checked) >= time.Minute {
		m.checked = now
		m.reload()
	}
	m.mu.Unlock()
	set := *m.blocked.Load()
	for d := domain; d != ""; {
		if set[d] {
			return true
		}
		_, rest, ok := strings.Cut(d, ".")
		if !ok {
			break
		}
		d = rest
	}
	return false
}

// reload reads BlockedDomainsFile again when its modification time changed; a file that
// cannot be read keeps the list as it was. Called with mu held.
func (m *Mod) reload() {
	f := m.cfg.Load().All().BlockedDomainsFile
	fi, err := os.Stat(f)
	if err != nil || fi.ModTime().Equal(m.fileMtime) {
		return
	}
	if set, mtime, err := readBlocked(f); err == nil {
		m.blocked.Store(&set)
		m.fileMtime = mtime
	}
}

// readBlocked reads a blocked domains file: one domain per line, # comments.
func readBlocked(name string) (map[string]bool, time.Time, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("blocked_domains_file: %w", err)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("blocked_domains_file: %w", err)
	}
	defer f.Close()
	set := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(line), ".")); d != "" {
			set[d] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("blocked_domains_file: %w", err)
	}
	return set, fi.ModTime(), nil
}

// allow counts one message from sender of domain in scope (budget) and reports whether
// both are within cfg's budgets for this minute. A refused message counts too: a sender
// that keeps trying stays refused until the minute turns.
func (m *Mod) allow(cfg *Config, scope, sender, domain string, now time.Time) bool {
	if scope != "" {
		sender, domain = scope+" "+sender, scope+" "+domain
	}
	minute := now.Unix() / 60
	m.mu.Lock()
	defer m.mu.Unlock()
	okS := count(m.senders, sender, minute, cfg.PerSender)
	okD := count(m.domains, domain, minute, cfg.PerDomain)
	return okS && okD
}

// count adds one to key's window of this minute in counts and reports whether it is
// within limit (0: no limit, nothing counted).
func count(counts map[string]*window, key string, minute int64, limit int) bool {
	if limit == 0 {
		return true
	}
	w := counts[key]
	if w == nil {
		if len(counts) >= maxTracked {
			for k, w := range counts {
				if w.minute != minute {
					delete(counts, k)
				}
			}
			if len(counts) >= maxTracked {
				clear(counts)
			}
		}
		w = &window{}
		counts[key] = w
	}
	if w.minute != minute {
		w.minute, w.n = minute, 0
	}
	w.n++
	return w.n <= limit
}
