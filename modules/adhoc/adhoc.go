// Package adhoc implements XEP-0050: Ad-Hoc Commands, with the commands of XEP-0133:
// Service Administration and XEP-0401's account invitation (urn:xmpp:invite#create-account,
// store/invites) for the administrators named in the configuration, and XEP-0401's contact
// invitation (urn:xmpp:invite#invite) for every user of the server:
//
//	[modules.adhoc]
//	admins = ["alice@example.org"]
//
// Nobody is an administrator by default, and nobody else sees or runs a command. A
// virtual host may have administrators of its own, who see and run the commands on
// accounts and sessions (add, delete, disable and list users, end sessions, announce,
// account invitations) sent to their host, on its accounts only:
//
//	[vhosts."corp.example.org".modules.adhoc]
//	admins = ["boss@corp.example.org"]
//
// Every command has at most one form stage: execute opens a session and answers with the
// form (status='executing'), complete with the filled form runs it (status='completed',
// with notes and a result form), cancel drops it. Commands that need no input complete at
// execute. Sessions belong to the requester's full JID, are bounded per requester and in
// all, and expire after SessionTTL.
//
// Concurrency: requests run on the requesters' shards; the module's own state is the
// session table (mutex) and the cached MOTD (atomic). Password hashing runs on the worker
// pool (Context.Async), and server-wide queries (online users, announce) go through
// module.ServerSessions, which visits every shard and comes back to the requester's.
package adhoc

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/last"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// NS is the XEP-0050 namespace, also the node of the command list (§2.2).
const NS = "http://jabber.org/protocol/commands"

// AdminNS is the XEP-0133 namespace: command nodes are AdminNS#name, and it is the
// FORM_TYPE of their forms.
const AdminNS = "http://jabber.org/protocol/admin"

func init() { module.Register(new(Mod)) }

// Config is [modules.adhoc].
type Config struct {
	// Admins are the bare JIDs of local accounts allowed to run the XEP-0133 commands. In
	// a host's table ([vhosts."<host>".modules.adhoc]), the host's own administrators:
	// they run the commands on the host's accounts and sessions, on that host only.
	Admins []string `toml:"admins"`
	// ContactInvitesRegister lets the contact invitations every user can make (XEP-0401
	// urn:xmpp:invite#invite) also create an account here (ibr=y), so users bring their
	// friends to a server whose open registration is off. Off: they only add a contact.
	ContactInvitesRegister bool `toml:"contact_invites_register"`
}

// Mod is the module.
type Mod struct {
	log    zerolog.Logger
	admins atomic.Pointer[adminSet] // replaced whole at a reload
	byNode map[string]*command
	sess   sessions
	t      store.Table
	last   store.Table            // the last module's logout records (get-user-lastlogin)
	motd   atomic.Pointer[string] // nil: no message of the day
	ctl    module.Controller      // nil: reload and shutdown are not implemented
	// accounts changes accounts the way the operator's other tools do: at the site for
	// an account a site's program keeps (module.SiteAccounts).
	accounts func() module.Accounts
	// inviteRegister is Config.ContactInvitesRegister; webURL the registrar's WebURL, for
	// the invitations' landing pages.
	inviteRegister atomic.Pointer[module.HostSettings[bool]]
	webURL         func(domain string) string
}

// adminSet are the administrators in force: the server's ([modules.adhoc] admins), who
// run every command on every host, and each host's own ([vhosts."<host>".modules.adhoc]
// admins), who run the commands on accounts and sessions (command.host) on their host
// only. Bare JIDs.
type adminSet struct {
	server map[string]bool
	hosts  map[string]map[string]bool
}

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "adhoc", XEP: 50, New: func() module.Module { return new(Mod) }, PerHost: true}
}

var _ module.Provisioner = (*Mod)(nil)

// motdKey is the MOTD's row in the module's table; it has no '@', so it can never be
// under an account's key prefix (store.UserKey).
var motdKey = []byte("motd")

// Provision reads the administrators and registers the handlers.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	if err := module.Configure(r, m); err != nil {
		return err
	}
	m.byNode = map[string]*command{}
	for i := range commands {
		m.byNode[commands[i].node()] = &commands[i]
	}
	m.ctl = r.Controller()
	m.accounts = r.Accounts
	m.webURL = r.WebURL
	m.t = r.Table("adhoc")
	m.last = r.Table(last.Table)
	if v, err := m.t.Get(motdKey); err == nil && len(v) > 0 {
		s := string(v)
		m.motd.Store(&s)
	}
	r.IQ(module.IQSet, NS, "command", m.execute) // also advertises NS (§2.1)
	r.DiscoNode(NS, m.disco)
	for n := range m.byNode {
		r.DiscoNode(n, m.disco)
	}
	r.OnAvailable(m.sendMOTD)
	return nil
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: the administrators (local accounts, as
// bare JIDs) and the contact invitations' registration switch change at a reload, so an
// operator adds or removes an administrator without a restart. A host's table names the
// host's own administrators, and its users' contact invitations' switch.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	admins := &adminSet{hosts: map[string]map[string]bool{}}
	inviteRegister, err := module.DeriveSettings(rc, func(host string, cfg *Config) (*bool, error) {
		// A host's table may wait for its host to be served (vireoctl vhost add).
		a, err := prepareAdmins(cfg.Admins, append(slices.Clip(rc.Domains), host))
		if err != nil {
			return nil, err
		}
		if host == "" {
			admins.server = a
		} else {
			// A host table without admins inherits the server's: nobody new.
			maps.DeleteFunc(a, func(j string, _ bool) bool { return admins.server[j] })
			if len(a) > 0 {
				admins.hosts[host] = a
			}
		}
		return &cfg.ContactInvitesRegister, nil
	})
	if err != nil {
		return nil, err
	}
	return func() {
		m.admins.Store(admins)
		m.inviteRegister.Store(inviteRegister)
	}, nil
}

// prepareAdmins checks the configured administrators: bare JIDs of accounts on domains.
func prepareAdmins(list, domains []string) (map[string]bool, error) {
	admins := map[string]bool{}
	for _, a := range list {
		j, err := jid.Parse(a)
		if err != nil || j.Local() == "" || !j.IsBare() {
			return nil, fmt.Errorf("admins: %q is not a bare user@domain JID", a)
		}
		if !slices.Contains(domains, j.Domain()) {
			return nil, fmt.Errorf("admins: %q: domain %s is not served here", a, j.Domain())
		}
		admins[j.String()] = true
	}
	return admins, nil
}

// isAdmin reports whether from is one of the server's administrators.
func (m *Mod) isAdmin(from jid.JID) bool {
	a := m.admins.Load()
	return a != nil && a.server[from.Bare().String()]
}

// isHostAdmin reports whether from is one of host's own administrators.
func (m *Mod) isHostAdmin(from jid.JID, host string) bool {
	a := m.admins.Load()
	return a != nil && a.hosts[host][from.Bare().String()]
}

// mayRun reports whether from may see and run cmd on host (the server the command is
// addressed to): the server's administrators run every command, a host's administrators
// the commands on its accounts and sessions, the server's own users those meant for them
// (XEP-0401's contact invitation).
func (m *Mod) mayRun(c module.Context, cmd *command, from jid.JID, host string) bool {
	return m.isAdmin(from) || cmd.host && m.isHostAdmin(from, host) ||
		cmd.users && from.Local() != "" && c.IsLocal(from.Domain())
}

// addressed is the host a command request is sent to.
func addressed(c module.Context, iq *module.Packet) string {
	if !iq.To.IsZero() {
		return iq.To.Domain()
	}
	return c.Domain()
}

// disco answers disco#items and disco#info on the command list node and on each command
// node (XEP-0050 §2.2, §2.3). Non-administrators see an empty list and no command.
func (m *Mod) disco(c module.Context, iq *module.Packet) {
	q, _ := iq.Payload()
	node, _ := q.AppendAttr(nil, "node")
	server := c.Domain()
	if !iq.To.IsZero() {
		server = iq.To.String()
	}
	var b xmlstream.Builder
	if string(q.NS()) == ns.DiscoItems {
		b.Start("query").Attr("xmlns", ns.DiscoItems).Attr("node", string(node))
		if string(node) == NS {
			for i := range commands {
				if m.mayRun(c, &commands[i], iq.From, addressed(c, iq)) {
					b.Start("item").Attr("jid", server).Attr("node", commands[i].node()).Attr("name", commands[i].title).End()
				}
			}
		}
		b.End()
		c.Reply(iq, b.B)
		return
	}
	b.Start("query").Attr("xmlns", ns.DiscoInfo).Attr("node", string(node))
	if string(node) == NS {
		b.Start("identity").Attr("category", "automation").Attr("type", "command-list").End()
	} else {
		if cmd := m.byNode[string(node)]; cmd == nil || !m.mayRun(c, cmd, iq.From, addressed(c, iq)) {
			c.Error(iq, stanza.New(stanza.Forbidden))
			return
		}
		b.Start("identity").Attr("category", "automation").Attr("type", "command-node").
			Attr("name", m.byNode[string(node)].title).End()
		b.Start("feature").Attr("var", NS).End()
		b.Start("feature").Attr("var", ns.DataForms).End()
	}
	b.End()
	c.Reply(iq, b.B)
}

// execute handles one <command/> request (XEP-0050 §3.4).
func (m *Mod) execute(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && iq.To.Local() != "" {
		c.Error(iq, stanza.New(stanza.ItemNotFound)) // accounts offer no commands
		return
	}
	q, _ := iq.Payload()
	req, serr := ParseCommand(q)
	if serr != nil {
		c.Error(iq, serr)
		return
	}
	cmd := m.byNode[req.Node]
	if cmd == nil {
		c.Error(iq, stanza.New(stanza.ItemNotFound))
		return
	}
	if !m.mayRun(c, cmd, iq.From, addressed(c, iq)) {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	owner, now := iq.From.String(), c.Now()
	resp := Response{Node: req.Node, Title: cmd.title}
	if req.SessionID == "" {
		switch {
		case req.Action != ActionExecute && req.Action != ActionComplete:
			c.Error(iq, errBadAction())
			return
		case cmd.form == nil || req.Action == ActionComplete && req.Form != nil:
			// Nothing to ask, or the form came with the first request: run it now.
			m.run(c, iq, cmd, "", req.Form)
			return
		}
		sid, serr := m.sess.open(owner, req.Node, now)
		if serr != nil {
			c.Error(iq, serr)
			return
		}
		resp.SessionID, resp.Status, resp.HasForm = sid, Executing, true
		resp.Instructions, resp.FormType = cmd.instructions, cmd.formType()
		resp.Fields = cmd.form(m, c)
		m.reply(c, iq, &resp)
		return
	}
	if serr := m.sess.take(req.SessionID, owner, req.Node, now); serr != nil {
		c.Error(iq, serr)
		return
	}
	resp.SessionID = req.SessionID
	switch {
	case req.Action == ActionCancel || req.FormCancel:
		resp.Status = Canceled
		m.reply(c, iq, &resp)
	case req.Action == ActionPrev:
		c.Error(iq, errBadAction()) // one stage: nothing before it (and the session is gone)
	case req.Form == nil:
		c.Error(iq, errBadPayload("the command needs its form"))
	default:
		m.run(c, iq, cmd, req.SessionID, req.Form)
	}
}

func (m *Mod) reply(c module.Context, iq *module.Packet, r *Response) {
	var b xmlstream.Builder
	r.Append(&b)
	c.Reply(iq, b.B)
}

// call is one command run, possibly finished later on the requester's shard.
type call struct {
	m    *Mod
	iq   module.Packet // Raw is nil: only addressing and id are kept
	cmd  *command
	sid  string
	form Form
	// scope is the host a host's administrator runs the command on; "" for the server's
	// administrators (and users' own commands).
	scope string
}

// run starts cmd with the submitted form (nil for commands without one).
func (m *Mod) run(c module.Context, iq *module.Packet, cmd *command, sid string, f Form) {
	k := &call{m: m, iq: *iq, cmd: cmd, sid: sid, form: f}
	k.iq.Raw = nil
	if !m.isAdmin(iq.From) && !cmd.users {
		// execute checked mayRun: a host's administrator, on the host.
		k.scope = addressed(c, iq)
	}
	if !cmd.users {
		m.log.Info().Str("admin", iq.From.Bare().String()).Str("command", cmd.name).Str("scope", k.scope).Msg("adhoc: admin command")
	}
	cmd.run(c, k)
}

// account is account for a run: a host's administrator names accounts of the host only.
func (k *call) account(c module.Context, s string) (jid.JID, string) {
	j, bad := account(c, s)
	if bad == "" && !k.inScope(j) {
		return jid.JID{}, fmt.Sprintf("%q: you administer %s only", strings.TrimSpace(s), k.scope)
	}
	if bad == "" && k.scope != "" && !k.m.within(j, k.scope) {
		// Its password, its removal and remaking, or its sessions would give a host's
		// administrator rights it does not have.
		return jid.JID{}, fmt.Sprintf("%q administers more than you do; ask a server administrator", strings.TrimSpace(s))
	}
	return j, bad
}

// within reports whether account j has no administrative rights beyond host's: it is
// not one of the server's administrators, nor of another host.
func (m *Mod) within(j jid.JID, host string) bool {
	a := m.admins.Load()
	if a == nil {
		return true
	}
	bare := j.Bare().String()
	if a.server[bare] {
		return false
	}
	for h, admins := range a.hosts {
		if h != host && admins[bare] {
			return false
		}
	}
	// Administrators of what this module does not configure (a MUC service's).
	if named, ok := m.ctl.(module.Administrators); ok && !a.hosts[host][bare] &&
		slices.Contains(named.NamedAdministrators(), bare) {
		return false
	}
	return true
}

// inScope reports whether the run may act on j's host.
func (k *call) inScope(j jid.JID) bool { return k.scope == "" || j.Domain() == k.scope }

// sessions are the sessions of s the run may see: all, or its host's.
func (k *call) sessions(s []module.OnlineSession) []module.OnlineSession {
	if k.scope == "" {
		return s
	}
	var out []module.OnlineSession
	for _, o := range s {
		if o.JID.Domain() == k.scope {
			out = append(out, o)
		}
	}
	return out
}

// done answers the run as completed with notes and, when fields is not nil, a result form.
func (k *call) done(c module.Context, notes []Note, fields []Field) {
	k.doneWith(c, notes, fields, nil)
}

// doneWith is done with elements the result form carries after its fields.
func (k *call) doneWith(c module.Context, notes []Note, fields []Field, extra []byte) {
	r := Response{Node: k.cmd.node(), SessionID: k.sid, Status: Completed, Notes: notes,
		Title: k.cmd.title, Fields: fields, HasForm: fields != nil, FormType: k.cmd.resultFormType(), Extra: extra}
	k.m.reply(c, &k.iq, &r)
}

func (k *call) info(c module.Context, text string) {
	k.done(c, []Note{{Type: "info", Text: text}}, nil)
}

// fail completes the run with an error note (XEP-0050 §3.4: the command ran and failed).
func (k *call) fail(c module.Context, text string) {
	k.done(c, []Note{{Type: "error", Text: text}}, nil)
}

func (k *call) error(c module.Context, e *stanza.Error) { c.Error(&k.iq, e) }

// account validates an accountjid value: a bare JID, prepared, of a domain served here.
func account(c module.Context, s string) (jid.JID, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return jid.JID{}, "no account JID given"
	}
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Sprintf("%q is not a valid JID", s)
	}
	if j.Local() == "" || !j.IsBare() {
		return jid.JID{}, fmt.Sprintf("%q: want a bare user@domain JID", s)
	}
	if !c.IsLocal(j.Domain()) {
		return jid.JID{}, fmt.Sprintf("%q: domain %s is not served here", s, j.Domain())
	}
	return j, ""
}

// sendMOTD delivers the message of the day once per session, on its initial presence.
func (m *Mod) sendMOTD(c module.Context, s module.Session) {
	p := m.motd.Load()
	if p == nil || s.Value(motdSent{}) != nil {
		return
	}
	s.SetValue(motdSent{}, true)
	s.Send(message(s.JID().Domain(), s.JID().String(), "Message of the day", *p))
}

type motdSent struct{}

// message builds the server's <message/> with a subject and body.
func message(from, to, subject, body string) []byte {
	var b xmlstream.Builder
	b.Start("message").Attr("from", from).Attr("to", to).Attr("type", "normal").
		Start("subject").Text(subject).End().Start("body").Text(body).End().End()
	return b.B
}
