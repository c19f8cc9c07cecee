package adhoc

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vireo-im/vireo/modules/last"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// command is one XEP-0133 command, or one of XEP-0401's invitation commands.
type command struct {
	name, title, instructions string
	// form returns the fields of the form stage; nil runs the command at execute.
	form func(m *Mod, c module.Context) []Field
	// run performs the command and answers through k, now or later on c's shard.
	run func(c module.Context, k *call)
	// ns is the namespace of the node (ns#name) and the FORM_TYPE of the forms; ""
	// is AdminNS. resultType is the FORM_TYPE of the result form when it differs.
	ns, resultType string
	// users lets every user of the server run it, not only the administrators.
	users bool
	// host lets a host's own administrators run it, on the accounts and sessions of
	// their host (call.scope).
	host bool
}

func (cmd *command) node() string {
	if cmd.ns != "" {
		return cmd.ns + "#" + cmd.name
	}
	return AdminNS + "#" + cmd.name
}

// formType is the FORM_TYPE of the command's form stage ("" for none).
func (cmd *command) formType() string {
	switch cmd.ns {
	case "":
		return AdminNS
	case InviteNS:
		return "" // XEP-0401 §4.2's form has none
	}
	return cmd.ns
}

// resultFormType is the FORM_TYPE of the command's result form.
func (cmd *command) resultFormType() string {
	if cmd.resultType != "" {
		return cmd.resultType
	}
	return cmd.formType()
}

// MaxPassword is the longest password accepted, as in XEP-0077 changes.
const MaxPassword = 1023

func accountField(v string) Field {
	return Field{Var: v, Type: "jid-single", Label: "The Jabber ID of the account", Required: true}
}

func passwordField(v, label string, req bool) Field {
	return Field{Var: v, Type: "text-private", Label: label, Required: req}
}

// accountsForm is the form of a command on one or more accounts (accountjids).
func accountsForm(label string) func(*Mod, module.Context) []Field {
	return func(*Mod, module.Context) []Field {
		return []Field{{Var: "accountjids", Type: "jid-multi", Label: label, Required: true}}
	}
}

// commands are the XEP-0133 commands served, in the order they are listed (§4).
var commands = []command{
	{name: "add-user", host: true, title: "Add User", instructions: "Fill out this form to add a user.",
		form: func(*Mod, module.Context) []Field {
			return []Field{accountField("accountjid"), passwordField("password", "The password for this account", true),
				passwordField("password-verify", "Retype password", false)}
		}, run: addUser},
	{name: "delete-user", host: true, title: "Delete User", instructions: "Fill out this form to delete users.",
		form: accountsForm("The Jabber ID(s) to delete"), run: deleteUser},
	{name: "disable-user", host: true, title: "Disable a User", instructions: "Fill out this form to disable users.",
		form: accountsForm("The Jabber ID(s) to disable"), run: disableUser},
	{name: "reenable-user", host: true, title: "Re-Enable a User", instructions: "Fill out this form to re-enable users.",
		form: accountsForm("The Jabber ID(s) to re-enable"), run: reenableUser},
	{name: "end-user-session", host: true, title: "End User Session", instructions: "Fill out this form to end sessions: a bare JID ends all of the account's, a full JID that one.",
		form: accountsForm("The Jabber ID(s) for which to end sessions"), run: endSessions},
	{name: "change-user-password", host: true, title: "Change User Password", instructions: "Fill out this form to change a user's password.",
		form: func(*Mod, module.Context) []Field {
			return []Field{accountField("accountjid"), passwordField("password", "The new password", true)}
		}, run: changePassword},
	{name: "get-user-roster", host: true, title: "Get User Roster", instructions: "Fill out this form to get a user's roster.",
		form: accountsForm("The Jabber ID(s) for which to retrieve the roster"), run: userRoster},
	{name: "get-user-lastlogin", host: true, title: "Get User Last Login Time", instructions: "Fill out this form to get a user's last login time.",
		form: accountsForm("The Jabber ID(s) for which to retrieve the last login time"), run: userLastLogin},
	{name: "get-user-statistics", host: true, title: "Get User Statistics", instructions: "Fill out this form to get a user's statistics.",
		form: func(*Mod, module.Context) []Field { return []Field{accountField("accountjid")} },
		run:  userStatistics},
	// §4.11 and §4.12 on the server's federation policy: the [s2s] deny and allow lists.
	{name: "edit-blacklist", title: "Edit Blacklist",
		instructions: "Fill out this form to edit the list of servers with whom communications are disallowed (a domain, or *.domain for its subdomains).",
		form:         federationForm(false), run: editFederation(false)},
	{name: "edit-whitelist", title: "Edit Whitelist",
		instructions: "Fill out this form to edit the list of servers with whom communications are allowed (a domain, or *.domain for its subdomains). Empty: every server not on the blacklist.",
		form:         federationForm(true), run: editFederation(true)},
	{name: "get-registered-users-num", host: true, title: "Get Number of Registered Users", run: registeredNum},
	{name: "get-disabled-users-num", host: true, title: "Get Number of Disabled Users", run: disabledNum},
	{name: "get-registered-users-list", host: true, title: "Get List of Registered Users", instructions: "How many users to list.",
		form: maxItemsForm, run: usersList(false)},
	{name: "get-disabled-users-list", host: true, title: "Get List of Disabled Users", instructions: "How many users to list.",
		form: maxItemsForm, run: usersList(true)},
	{name: "get-online-users-num", host: true, title: "Get Number of Online Users", run: onlineNum},
	{name: "get-online-users-list", host: true, title: "Get List of Online Users", instructions: "How many users to list.",
		form: maxItemsForm, run: onlineList},
	{name: "get-active-users-num", host: true, title: "Get Number of Active Users", run: activityNum(true)},
	{name: "get-idle-users-num", host: true, title: "Get Number of Idle Users", run: activityNum(false)},
	{name: "get-active-users", host: true, title: "Get List of Active Users", instructions: "How many users to list.",
		form: maxItemsForm, run: activityList(true)},
	{name: "get-idle-users", host: true, title: "Get List of Idle Users", instructions: "How many users to list.",
		form: maxItemsForm, run: activityList(false)},
	{name: "announce", host: true, title: "Send Announcement to Online Users", instructions: "Fill out this form to make an announcement to all active users.",
		form: func(*Mod, module.Context) []Field {
			return []Field{{Var: "subject", Type: "text-single", Label: "Subject"},
				{Var: "announcement", Type: "text-multi", Label: "Announcement", Required: true}}
		}, run: announce},
	{name: "set-motd", title: "Set Message of the Day", instructions: "Fill out this form to set the message of the day.",
		form: motdForm(false), run: setMOTD},
	{name: "edit-motd", title: "Edit Message of the Day", instructions: "Fill out this form to edit the message of the day.",
		form: motdForm(true), run: setMOTD},
	{name: "delete-motd", title: "Delete Message of the Day", run: deleteMOTD},
	// §4.27–§4.29 on settings the config file holds ([modules.welcome] message, [modules.adhoc]
	// admins): written there, and in force at once (module.Settings).
	{name: "set-welcome", title: "Set Welcome Message", instructions: "Fill out this form to set the welcome message new users get.",
		form: welcomeForm, run: setWelcome},
	{name: "delete-welcome", title: "Delete Welcome Message", run: deleteWelcome},
	{name: "edit-admin", title: "Edit Admin List", instructions: "Fill out this form to edit the list of administrators (local accounts).",
		form: adminForm, run: editAdmin},
	// reload is not in XEP-0133; it is the SIGHUP of the process, under the same namespace.
	{name: "reload", title: "Reload the Configuration", run: reload},
	{name: "restart", title: "Restart Service", instructions: "Fill out this form to restart the service.",
		form: stopForm("Time delay before restarting"), run: stopService(true)},
	{name: "shutdown", title: "Shut Down Service", instructions: "Fill out this form to shut down the service.",
		form: stopForm("Time delay before shutting down the service"), run: stopService(false)},
	// XEP-0401 §4.1: a contact invitation, for any user (presence carries it out).
	{name: "invite", ns: InviteNS, resultType: InvitationForm, title: "Invite a contact", users: true, run: contactInvite},
	// XEP-0401 §4.2: an account invitation, redeemed with XEP-0445 (store/invites).
	{name: "create-account", host: true, ns: InviteNS, resultType: InvitationForm, title: "Create an account invitation",
		instructions: "Name the account, or leave the name to the invitee.",
		form: func(*Mod, module.Context) []Field {
			return []Field{{Var: "username", Type: "text-single", Label: "Username"}}
		}, run: createAccountInvite},
}

// InviteNS is XEP-0401's namespace: its command nodes are InviteNS#name; InvitationForm is
// the FORM_TYPE of the invitation they return.
const (
	InviteNS       = "urn:xmpp:invite"
	InvitationForm = "urn:xmpp:invite#invitation"
)

// contactInvite is XEP-0401 §4.1: a link (xmpp:user?roster;preauth=TOKEN) whose token,
// carried in the invitee's subscription request (XEP-0379), has the user's server approve
// it and subscribe back. With contact_invites_register it also creates an account here
// (ibr=y), which starts out as the user's contact (the presence module's OnRegistered).
func contactInvite(c module.Context, k *call) {
	if s := c.Session(); s != nil && s.Ephemeral() {
		// A guest's account goes with the guest; its invitations would stay in the store
		// until they expire and someone lists them.
		k.fail(c, "guests cannot invite contacts")
		return
	}
	inv, err := invites.CreateContact(c.Store().Table(invites.Table), k.iq.From.Bare(), *k.m.inviteRegister.Load().For(k.iq.From.Domain()), 0, c.Now())
	if errors.Is(err, invites.ErrTooMany) {
		k.fail(c, strings.TrimPrefix(err.Error(), "invites: "))
		return
	}
	if err != nil {
		k.error(c, module.StoreError(err))
		return
	}
	k.done(c, nil, k.m.invitationFields(inv))
}

// invitationFields are the fields of an urn:xmpp:invite#invitation result: the xmpp: URI,
// the landing page (XEP-0401 §3.2 SHOULD) when the server has a web listener, the expiry.
func (m *Mod) invitationFields(inv invites.Invite) []Field {
	f := []Field{{Var: "uri", Type: "text-single", Label: "Invitation", Values: []string{inv.URI()}}}
	if u := inv.PageURL(m.webURL(inv.Domain)); u != "" {
		f = append(f, Field{Var: "landing-url", Type: "text-single", Label: "Invitation page", Values: []string{u}})
	}
	return append(f, Field{Var: "expire", Type: "text-single", Label: "Expires", Values: []string{inv.Expires.Format(time.RFC3339)}})
}

// createAccountInvite is XEP-0401 §4.2: an invitation to create an account on the server
// the command was sent to, for the username given (reserved for the invitee until the
// invitation expires) or of the invitee's choosing; the result carries its xmpp: URI and
// expiry.
func createAccountInvite(c module.Context, k *call) {
	domain := c.Domain()
	if !k.iq.To.IsZero() {
		domain = k.iq.To.Domain()
	}
	user := strings.TrimSpace(k.form.Value("username"))
	if user != "" {
		j, bad := k.account(c, user+"@"+domain)
		if bad != "" {
			k.fail(c, bad)
			return
		}
		found, ok := exists(c, k, j)
		if !ok {
			return
		}
		if found {
			k.fail(c, "account "+j.String()+" already exists")
			return
		}
	}
	inv, err := invites.Create(c.Store().Table(invites.Table), domain, user, k.iq.From.Bare().String(), 0, c.Now())
	if err != nil {
		if module.LogStoreError(err) {
			k.error(c, module.StoreError(err))
			return
		}
		k.fail(c, strings.TrimPrefix(err.Error(), "invites: "))
		return
	}
	k.done(c, nil, k.m.invitationFields(inv))
}

func motdForm(current bool) func(m *Mod, c module.Context) []Field {
	return func(m *Mod, c module.Context) []Field {
		f := Field{Var: "motd", Type: "text-multi", Label: "Message of the day", Required: true}
		if p := m.motd.Load(); current && p != nil {
			f.Values = strings.Split(*p, "\n")
		}
		return []Field{f}
	}
}

// exists reports whether the account is registered; a store failure answers the request.
func exists(c module.Context, k *call, j jid.JID) (bool, bool) {
	_, err := c.Store().Accounts().Get(j.String())
	if errors.Is(err, store.ErrNotFound) {
		return false, true
	}
	if err != nil {
		k.m.log.Error().Err(err).Str("user", j.String()).Msg("adhoc: read account")
		k.error(c, module.StoreError(err))
		return false, false
	}
	return true, true
}

func checkPassword(p string) string {
	if p == "" || len(p) > MaxPassword {
		return "the password must be 1 to 1023 bytes"
	}
	return ""
}

// derive hashes password on the worker pool, then runs write (also on the pool: a
// durable store write) and answers on the requester's shard (module contract: no hashing
// on a shard).
func derive(c module.Context, k *call, password string, site func() (bool, error), write func([3]store.Credentials) error, ok func(c module.Context, err error)) {
	var err error
	if !c.Async(func() {
		var handled bool
		if handled, err = site(); handled || err != nil {
			return // changed, or refused, by the site that keeps the account
		}
		var keys [3]store.Credentials
		if keys, err = creds.DeriveAll(password, creds.DefaultIter); err == nil {
			err = write(keys)
		}
	}, func(c module.Context) { ok(c, err) }) {
		k.error(c, stanza.New(stanza.ResourceConstraintCond))
	}
}

// addUser is XEP-0133 §4.1.
func addUser(c module.Context, k *call) { setPassword(c, k, true) }

// changePassword is XEP-0133 §4.7.
func changePassword(c module.Context, k *call) { setPassword(c, k, false) }

// setPassword creates the account of the form's accountjid with its password (create), or
// gives an existing account a new one; the keys are derived on the worker pool.
func setPassword(c module.Context, k *call, create bool) {
	j, bad := k.account(c, k.form.Value("accountjid"))
	if bad != "" {
		k.fail(c, bad)
		return
	}
	pw := k.form.Value("password")
	if bad := checkPassword(pw); bad != "" {
		k.fail(c, bad)
		return
	}
	if v, ok := k.form["password-verify"]; create && ok && len(v) > 0 && v[0] != pw {
		k.fail(c, "the passwords do not match")
		return
	}
	user := j.String()
	found, ok := exists(c, k, j)
	switch {
	case !ok:
		return
	case create && found:
		k.fail(c, "account "+user+" already exists")
		return
	case !create && !found:
		k.fail(c, "account "+user+" does not exist")
		return
	}
	st := c.Store()
	site, _ := k.m.accounts().(module.SiteAccounts)
	derive(c, k, pw, func() (bool, error) {
		if create || site == nil {
			return false, nil
		}
		return site.SitePassword(user, pw)
	}, func(keys [3]store.Credentials) error {
		if create {
			return st.Accounts().Create(store.Account{User: user, Creds: keys, Created: time.Now().UTC()})
		}
		return st.Accounts().SetCredentials(user, keys)
	}, func(c module.Context, err error) {
		switch {
		case errors.Is(err, module.ErrManaged):
			k.fail(c, "the site that keeps "+user+" refused the change")
		case create && errors.Is(err, store.ErrExists):
			k.fail(c, "account "+user+" already exists")
		case !create && errors.Is(err, store.ErrNotFound):
			k.fail(c, "account "+user+" does not exist")
		case err != nil:
			k.m.log.Error().Err(err).Str("user", user).Bool("create", create).Msg("adhoc: set password")
			k.error(c, module.StoreError(err))
		case create:
			k.info(c, "account "+user+" created")
		default:
			k.info(c, "password of "+user+" changed")
		}
	})
}

// deleteUser is XEP-0133 §4.2: each account's sessions end, then its data goes.
func deleteUser(c module.Context, k *call) {
	js, notes, ok := existingAccounts(c, k, 0)
	if !ok {
		return
	}
	ss, _ := c.(module.ServerSessions)
	for _, j := range js {
		if ss != nil {
			ss.CloseUser(j, stanza.NotAuthorized)
		}
	}
	// On the worker pool: a site's program may take its time to answer.
	site, _ := k.m.accounts().(module.SiteAccounts)
	st := c.Store()
	var deleted []string
	if !c.Async(func() {
		for _, j := range js {
			err := error(nil)
			handled := false
			if site != nil {
				handled, err = site.SiteRemove(j.String())
			}
			if !handled && err == nil {
				err = st.Accounts().Delete(j.String())
			}
			switch {
			case errors.Is(err, module.ErrManaged):
				notes = append(notes, Note{"error", "the site that keeps " + j.String() + " refused its removal"})
			case err != nil:
				k.m.log.Error().Err(err).Str("user", j.String()).Msg("adhoc: delete user")
				notes = append(notes, Note{"error", "account " + j.String() + " could not be deleted"})
			default:
				deleted = append(deleted, j.String())
			}
		}
	}, func(c module.Context) {
		// A login that got in between the first close and the delete (a client that
		// reconnects at once, or a site's slow removeuser) ends too, as vireoctl's does.
		if ss, ok := c.(module.ServerSessions); ok {
			for _, d := range deleted {
				if j, err := jid.Parse(d); err == nil {
					ss.CloseUser(j, stanza.NotAuthorized)
				}
			}
		}
		if len(deleted) > 0 {
			notes = append([]Note{{"info", "deleted " + strings.Join(deleted, ", ")}}, notes...)
		}
		k.done(c, notes, nil)
	}) {
		k.error(c, stanza.New(stanza.ResourceConstraintCond))
	}
}

// online runs f with the server's sessions, or answers feature-not-implemented when the
// Context cannot see other shards.
func online(c module.Context, k *call, f func(c module.Context, s []module.OnlineSession)) {
	ss, ok := c.(module.ServerSessions)
	if !ok {
		k.error(c, stanza.New(stanza.FeatureNotImplemented))
		return
	}
	ss.OnlineSessions(func(c module.Context, s []module.OnlineSession) { f(c, k.sessions(s)) })
}

// onlineUsers returns the sorted bare JIDs with at least one session.
func onlineUsers(s []module.OnlineSession) []string {
	var out []string
	for _, o := range s {
		out = append(out, o.JID.Bare().String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// userStatistics is XEP-0133 §4.10. The server does not keep clients' IP addresses
// beyond their connections, so ipaddresses is not offered.
func userStatistics(c module.Context, k *call) {
	j, bad := k.account(c, k.form.Value("accountjid"))
	if bad != "" {
		k.fail(c, bad)
		return
	}
	if found, ok := exists(c, k, j); !ok {
		return
	} else if !found {
		k.fail(c, "account "+j.String()+" does not exist")
		return
	}
	items, _, err := c.Store().Rosters().Get(j.String())
	if err != nil {
		k.error(c, module.StoreError(err))
		return
	}
	online(c, k, func(c module.Context, s []module.OnlineSession) {
		var res []string
		for _, o := range s {
			if o.JID.Bare().Equal(j) {
				res = append(res, o.JID.String())
			}
		}
		slices.Sort(res)
		k.done(c, nil, []Field{
			{Var: "accountjid", Type: "jid-single", Values: []string{j.String()}},
			{Var: "rostersize", Type: "text-single", Label: "Roster size", Values: []string{strconv.Itoa(len(items))}},
			{Var: "onlineresources", Type: "text-multi", Label: "Online resources", Values: res},
		})
	})
}

// maxAccountsPerRun bounds the accounts one get-user-roster or get-user-lastlogin run
// reads (rosters hold up to a thousand items each).
const maxAccountsPerRun = 20

// existingAccounts validates the accountjids of a run: the accounts that exist, in the
// order given, and a note for each value that is not one. ok is false when k has been
// answered already (none given, more than max when max > 0, none exists, or a store
// error).
func existingAccounts(c module.Context, k *call, max int) (js []jid.JID, notes []Note, ok bool) {
	vals := k.form["accountjids"]
	switch {
	case len(vals) == 0:
		k.fail(c, "no account JID given")
		return nil, nil, false
	case max > 0 && len(vals) > max:
		k.fail(c, "at most "+strconv.Itoa(max)+" accounts at a time")
		return nil, nil, false
	}
	for _, v := range vals {
		j, bad := k.account(c, v)
		if bad != "" {
			notes = append(notes, Note{"error", bad})
			continue
		}
		found, ok := exists(c, k, j)
		if !ok {
			return nil, nil, false
		}
		if !found {
			notes = append(notes, Note{"error", "account " + j.String() + " does not exist"})
			continue
		}
		js = append(js, j)
	}
	if len(js) == 0 {
		k.done(c, notes, nil)
		return nil, nil, false
	}
	return js, notes, true
}

func jidStrings(js []jid.JID) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.String()
	}
	return out
}

// userRoster is XEP-0133 §4.8: each account's roster, as the jabber:iq:roster <query/>
// the XEP puts in the result form (one per account, in the order asked), and as lines
// in a text-multi field per account, which form clients show to the administrator.
func userRoster(c module.Context, k *call) {
	js, notes, ok := existingAccounts(c, k, maxAccountsPerRun)
	if !ok {
		return
	}
	fields := []Field{{Var: "accountjids", Type: "jid-multi", Values: jidStrings(js)}}
	var b xmlstream.Builder
	for _, j := range js {
		items, _, err := c.Store().Rosters().Get(j.String())
		if err != nil {
			k.error(c, module.StoreError(err))
			return
		}
		b.Start("query").Attr("xmlns", ns.Roster)
		lines := make([]string, 0, len(items))
		for _, it := range items {
			module.AppendRosterItem(&b, it, false)
			lines = append(lines, rosterLine(it))
		}
		b.End()
		fields = append(fields, Field{Var: "roster-" + j.String(), Type: "text-multi", Label: "Roster of " + j.String() + " (" + strconv.Itoa(len(items)) + ")", Values: lines})
	}
	k.doneWith(c, notes, fields, b.B)
}

// userLastLogin is XEP-0133 §4.9, answered as ejabberd does: "online" for an account with
// a session now, else when its last session ended (the XEP-0012 record, UTC), "never"
// without one. One lastlogin value per account, in the order of accountjids.
func userLastLogin(c module.Context, k *call) {
	js, notes, ok := existingAccounts(c, k, maxAccountsPerRun)
	if !ok {
		return
	}
	when := make([]string, len(js))
	for i, j := range js {
		at, found, err := last.Ended(k.m.last, j.String())
		switch {
		case err != nil:
			k.error(c, module.StoreError(err))
			return
		case found:
			when[i] = at.UTC().Format(time.RFC3339)
		default:
			when[i] = "never"
		}
	}
	online(c, k, func(c module.Context, s []module.OnlineSession) {
		on := onlineUsers(s)
		for i, j := range js {
			if _, yes := slices.BinarySearch(on, j.String()); yes {
				when[i] = "online"
			}
		}
		k.done(c, notes, []Field{{Var: "accountjids", Type: "jid-multi", Values: jidStrings(js)},
			{Var: "lastlogin", Type: "text-multi", Label: "When the last session ended (online: one is open now)", Values: when}})
	})
}

// rosterLine is a roster item as a person reads it: "juliet@example.org (Juliet), both,
// pending in, groups Friends, Family".
func rosterLine(it store.RosterItem) string {
	var sb strings.Builder
	sb.WriteString(it.JID)
	if it.Name != "" {
		sb.WriteString(" (" + it.Name + ")")
	}
	sb.WriteString(", " + it.Sub.String())
	if it.Ask {
		sb.WriteString(", asked")
	}
	if it.PendingIn {
		sb.WriteString(", pending in")
	}
	if len(it.Groups) > 0 {
		sb.WriteString(", groups " + strings.Join(it.Groups, ", "))
	}
	return sb.String()
}

// disabledNum is XEP-0133 §4.14: the disabled accounts of the domain addressed, counted
// on the worker pool (every account is read).
func disabledNum(c module.Context, k *call) {
	accts := c.Store().Accounts()
	countAccounts(c, k, addressed(c, &k.iq), func(u string) bool {
		a, err := accts.Get(u)
		return err == nil && a.Disabled
	}, Field{Var: "disabledusersnum", Label: "The number of disabled users"})
}

// registeredNum is XEP-0133 §4.13: every account for the server's administrators, the
// host's for a host's.
func registeredNum(c module.Context, k *call) {
	f := Field{Var: "registeredusersnum", Label: "The number of registered users"}
	if k.scope != "" {
		countAccounts(c, k, k.scope, func(string) bool { return true }, f)
		return
	}
	n, err := c.Store().Accounts().Count()
	if err != nil {
		k.error(c, module.StoreError(err))
		return
	}
	f.Values = []string{strconv.Itoa(n)}
	k.done(c, nil, []Field{f})
}

// countAccounts completes k with f holding the number of domain's accounts that count
// takes, read on the worker pool.
func countAccounts(c module.Context, k *call, domain string, count func(user string) bool, f Field) {
	accts := c.Store().Accounts()
	var n int
	var err error
	job := func() {
		err = accts.List(func(u string) bool {
			if _, d, _ := strings.Cut(u, "@"); d == domain && count(u) {
				n++
			}
			return true
		})
	}
	done := func(c module.Context) {
		if err != nil {
			k.error(c, module.StoreError(err))
			return
		}
		f.Values = []string{strconv.Itoa(n)}
		k.done(c, nil, []Field{f})
	}
	if !c.Async(job, done) {
		k.error(c, stanza.New(stanza.ResourceConstraintCond))
	}
}

// onlineNum is XEP-0133 §4.15: users with at least one session.
func onlineNum(c module.Context, k *call) {
	online(c, k, func(c module.Context, s []module.OnlineSession) {
		k.done(c, nil, []Field{{Var: "onlineusersnum", Label: "The number of online users", Values: []string{strconv.Itoa(len(onlineUsers(s)))}}})
	})
}

// maxItemsForm is the form of the listing commands (XEP-0133 §4.18 to §4.22).
func maxItemsForm(*Mod, module.Context) []Field {
	return []Field{{Var: "max_items", Type: "list-single", Label: "Maximum number of items to show",
		Values: []string{"100"}, Options: []string{"25", "50", "75", "100", "150", "200", "none"}}}
}

// maxItems reads the max_items field: -1 for none; false (answered) when it is not a
// positive number.
func maxItems(c module.Context, k *call) (int, bool) {
	v := k.form.Value("max_items")
	if v == "" || v == "none" {
		return -1, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		k.fail(c, "max_items must be a positive number or none")
		return 0, false
	}
	return n, true
}

// MaxListed bounds a listing of accounts with max_items none: a result is one stanza,
// and XEP-0133 lets a service truncate it.
const MaxListed = 1000

// usersList is XEP-0133 §4.18 (get-registered-users-list), or with disabled §4.19
// (get-disabled-users-list): the accounts of the host the command was sent to, in JID
// order, at most max_items (MaxListed for none), with a note when there are more. The
// accounts are read on the worker pool, not on the shard: a server may have millions.
func usersList(disabled bool) func(c module.Context, k *call) {
	field, label := "registereduserjids", "The list of all users"
	if disabled {
		field, label = "disableduserjids", "The list of all disabled users"
	}
	return func(c module.Context, k *call) {
		max, ok := maxItems(c, k)
		if !ok {
			return
		}
		if max < 0 || max > MaxListed {
			max = MaxListed
		}
		domain := c.Domain()
		if !k.iq.To.IsZero() {
			domain = k.iq.To.Domain()
		}
		accts := c.Store().Accounts()
		var (
			users []string
			total int
			err   error
		)
		job := func() {
			err = accts.List(func(u string) bool {
				if _, d, _ := strings.Cut(u, "@"); d != domain {
					return true
				}
				if disabled {
					if a, gerr := accts.Get(u); gerr != nil || !a.Disabled {
						return true
					}
				}
				total++
				if len(users) < max {
					users = append(users, u)
				}
				return true
			})
		}
		done := func(c module.Context) {
			if err != nil {
				k.error(c, module.StoreError(err))
				return
			}
			var notes []Note
			if total > len(users) {
				notes = append(notes, Note{"info", "the first " + strconv.Itoa(len(users)) + " of " + strconv.Itoa(total)})
			}
			k.done(c, notes, []Field{{Var: field, Type: "jid-multi", Label: label, Values: users}})
		}
		if !c.Async(job, done) {
			e := stanza.New(stanza.ResourceConstraintCond)
			e.Type = stanza.Wait
			k.error(c, e)
		}
	}
}

// activeUsers splits the online users (sorted bare JIDs) into active and idle (XEP-0133:
// online = active + idle). A user is idle when none of their sessions is in use: each is
// detached (XEP-0198, waiting for its client to come back) or said it is not looked at
// (XEP-0352 <inactive/>).
func activeUsers(s []module.OnlineSession) (active, idle []string) {
	inUse := map[string]bool{}
	for _, o := range s {
		b := o.JID.Bare().String()
		inUse[b] = inUse[b] || !o.Detached && !o.Inactive
	}
	for _, u := range onlineUsers(s) {
		if inUse[u] {
			active = append(active, u)
		} else {
			idle = append(idle, u)
		}
	}
	return active, idle
}

// activityNum is XEP-0133 §4.16 (active) and §4.17 (idle).
func activityNum(active bool) func(c module.Context, k *call) {
	return func(c module.Context, k *call) {
		online(c, k, func(c module.Context, s []module.OnlineSession) {
			a, i := activeUsers(s)
			f := Field{Var: "activeusersnum", Label: "The number of active users", Values: []string{strconv.Itoa(len(a))}}
			if !active {
				f = Field{Var: "idleusersnum", Label: "The number of idle users", Values: []string{strconv.Itoa(len(i))}}
			}
			k.done(c, nil, []Field{f})
		})
	}
}

// activityList is XEP-0133 §4.21 (active) and §4.22 (idle).
func activityList(active bool) func(c module.Context, k *call) {
	return func(c module.Context, k *call) {
		max, ok := maxItems(c, k)
		if !ok {
			return
		}
		online(c, k, func(c module.Context, s []module.OnlineSession) {
			users, idle := activeUsers(s)
			f := Field{Var: "activeuserjids", Type: "jid-multi", Label: "The list of active users"}
			if !active {
				// XEP-0133 §4.22's example names the idle list's field activeuserjids too.
				users = idle
				f.Label = "The list of idle users"
			}
			if max >= 0 && len(users) > max {
				users = users[:max]
			}
			f.Values = users
			k.done(c, nil, []Field{f})
		})
	}
}

// onlineList is XEP-0133 §4.20.
func onlineList(c module.Context, k *call) {
	max, ok := maxItems(c, k)
	if !ok {
		return
	}
	online(c, k, func(c module.Context, s []module.OnlineSession) {
		users := onlineUsers(s)
		if max >= 0 && len(users) > max {
			users = users[:max]
		}
		k.done(c, nil, []Field{{Var: "onlineuserjids", Type: "jid-multi", Label: "The list of all online users", Values: users}})
	})
}

// announce is XEP-0133 §4.23: a message to every available session.
func announce(c module.Context, k *call) {
	body := strings.Join(k.form["announcement"], "\n")
	if strings.TrimSpace(body) == "" {
		k.fail(c, "the announcement is empty")
		return
	}
	subject := k.form.Value("subject")
	if subject == "" {
		subject = "Announcement"
	}
	tellAvailable(c, k, subject, body, func(c module.Context, n int) {
		k.info(c, "announcement sent to "+strconv.Itoa(n)+" sessions")
	})
}

// tellAvailable sends a message from the server (the host the command was sent to) to
// every available session, then calls then with their number.
func tellAvailable(c module.Context, k *call, subject, body string, then func(c module.Context, n int)) {
	from := k.iq.To.Domain()
	if k.iq.To.IsZero() {
		from = c.Domain()
	}
	online(c, k, func(c module.Context, s []module.OnlineSession) {
		n := 0
		for _, o := range s {
			if o.Available {
				c.Route(message(from, o.JID.String(), subject, body))
				n++
			}
		}
		then(c, n)
	})
}

// setMOTD is XEP-0133 §4.24 and §4.25: the message is kept and sent to each session on
// its initial presence.
func setMOTD(c module.Context, k *call) {
	motd := strings.Join(k.form["motd"], "\n")
	if strings.TrimSpace(motd) == "" {
		k.fail(c, "the message of the day is empty (use delete-motd to remove it)")
		return
	}
	if err := k.m.t.Set(motdKey, []byte(motd)); err != nil {
		k.m.log.Error().Err(err).Msg("adhoc: set motd")
		k.error(c, module.StoreError(err))
		return
	}
	k.m.motd.Store(&motd)
	k.info(c, "message of the day set")
}

// deleteMOTD is XEP-0133 §4.26.
func deleteMOTD(c module.Context, k *call) {
	if err := k.m.t.Delete(motdKey); err != nil && !errors.Is(err, store.ErrNotFound) {
		k.m.log.Error().Err(err).Msg("adhoc: delete motd")
		k.error(c, module.StoreError(err))
		return
	}
	k.m.motd.Store(nil)
	k.info(c, "message of the day deleted")
}

// disableUser is XEP-0133 §4.3: the accounts stay, their sessions end, and logins are
// refused with <account-disabled/> until reenable-user.
func disableUser(c module.Context, k *call) { setDisabled(c, k, true) }

// endSessions is XEP-0133 §4.5: the sessions named end with <policy-violation/>; the
// accounts stay as they are (disable-user keeps them out).
func endSessions(c module.Context, k *call) {
	vals := k.form["accountjids"]
	if len(vals) == 0 {
		k.fail(c, "no account JID given")
		return
	}
	ss, ok := c.(module.ServerSessions)
	if !ok {
		k.error(c, stanza.New(stanza.FeatureNotImplemented))
		return
	}
	var notes []Note
	var done []string
	for _, v := range vals {
		j, err := jid.Parse(strings.TrimSpace(v))
		switch {
		case err != nil || j.Local() == "":
			notes = append(notes, Note{"error", fmt.Sprintf("%q: want user@domain or user@domain/resource", v)})
			continue
		case !c.IsLocal(j.Domain()):
			notes = append(notes, Note{"error", fmt.Sprintf("%q: domain %s is not served here", v, j.Domain())})
			continue
		case !k.inScope(j):
			notes = append(notes, Note{"error", fmt.Sprintf("%q: you administer %s only", v, k.scope)})
			continue
		case k.scope != "" && !k.m.within(j.Bare(), k.scope):
			// As for every command that names an account (call.account): a host's
			// administrator does not touch an account with wider rights.
			notes = append(notes, Note{"error", fmt.Sprintf("%q administers more than you do; ask a server administrator", v)})
			continue
		case j.Equal(k.iq.From) || j.IsBare() && j.Equal(k.iq.From.Bare()):
			// The answer would have nowhere to go.
			notes = append(notes, Note{"error", "you cannot end the session you are sending from"})
			continue
		}
		ss.CloseUser(j, stanza.PolicyViolation)
		done = append(done, j.String())
	}
	if len(done) > 0 {
		notes = append([]Note{{"info", "ended the sessions of " + strings.Join(done, ", ")}}, notes...)
	}
	k.done(c, notes, nil)
}

// reenableUser is XEP-0133 §4.4.
func reenableUser(c module.Context, k *call) { setDisabled(c, k, false) }

func setDisabled(c module.Context, k *call, disabled bool) {
	vals := k.form["accountjids"]
	if len(vals) == 0 {
		k.fail(c, "no account JID given")
		return
	}
	ss, _ := c.(module.ServerSessions)
	verb := "re-enabled"
	if disabled {
		verb = "disabled"
	}
	var notes []Note
	var done []string
	for _, v := range vals {
		j, bad := k.account(c, v)
		if bad != "" {
			notes = append(notes, Note{"error", bad})
			continue
		}
		if disabled && j.Equal(k.iq.From.Bare()) {
			notes = append(notes, Note{"error", "you cannot disable your own account"})
			continue
		}
		err := c.Store().Accounts().SetDisabled(j.String(), disabled)
		switch {
		case errors.Is(err, store.ErrNotFound):
			notes = append(notes, Note{"error", "account " + j.String() + " does not exist"})
			continue
		case err != nil:
			k.m.log.Error().Err(err).Str("user", j.String()).Bool("disabled", disabled).Msg("adhoc: set disabled")
			notes = append(notes, Note{"error", "account " + j.String() + " could not be " + verb})
			continue
		}
		if disabled && ss != nil {
			// After the flag is stored: a login racing with this one sees it.
			ss.CloseUser(j, stanza.NotAuthorized)
		}
		done = append(done, j.String())
	}
	if len(done) > 0 {
		notes = append([]Note{{"info", verb + " " + strings.Join(done, ", ")}}, notes...)
	}
	k.done(c, notes, nil)
}

// reload re-reads the server's configuration through the module.Controller, on the
// worker pool (it reads files and certificates).
func reload(c module.Context, k *call) {
	ctl := k.m.ctl
	if ctl == nil {
		k.error(c, stanza.New(stanza.FeatureNotImplemented))
		return
	}
	var err error
	if !c.Async(func() { err = ctl.Reload() }, func(c module.Context) {
		if err != nil {
			k.m.log.Warn().Err(err).Msg("adhoc: reload failed")
			k.fail(c, "reload failed: "+err.Error())
			return
		}
		k.info(c, "configuration reloaded")
	}) {
		k.error(c, stanza.New(stanza.ResourceConstraintCond))
	}
}

// ShutdownGrace is the least time between the shutdown announcement and the stop, so
// that the messages leave the router before the streams close.
const ShutdownGrace = time.Second

// stopForm is the form of restart (§4.30) and shutdown (§4.31).
func stopForm(label string) func(*Mod, module.Context) []Field {
	return func(*Mod, module.Context) []Field {
		return []Field{{Var: "delay", Type: "list-single", Label: label,
			Values: []string{"0"}, Options: []string{"0", "30", "60", "90", "120", "180", "300", "600", "900", "1800", "3600"}},
			{Var: "announcement", Type: "text-multi", Label: "Announcement"}}
	}
}

// stopService is XEP-0133 §4.30 (restart) and §4.31 (shutdown): the announcement goes
// to every available session, then after the delay the process stops through the
// module.Controller, and with restart starts again (module.Restarter).
func stopService(restart bool) func(module.Context, *call) {
	what, subject, dflt, doing := "shutdown", "Server shutdown", "The server is shutting down.", "stopping"
	if restart {
		what, subject, dflt, doing = "restart", "Server restart", "The server is restarting.", "restarting"
	}
	return func(c module.Context, k *call) {
		ctl := k.m.ctl
		rs, canRestart := ctl.(module.Restarter)
		if ctl == nil || restart && !canRestart {
			k.error(c, stanza.New(stanza.FeatureNotImplemented))
			return
		}
		delay := 0
		if v := k.form.Value("delay"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 24*3600 {
				k.fail(c, "delay must be a number of seconds from 0 to 86400")
				return
			}
			delay = n
		}
		body := strings.TrimSpace(strings.Join(k.form["announcement"], "\n"))
		if body == "" {
			body = dflt
		}
		by := k.iq.From.Bare().String()
		tellAvailable(c, k, subject, body, func(c module.Context, n int) {
			wait := max(time.Duration(delay)*time.Second, ShutdownGrace)
			reason := "XEP-0133 " + what + " by " + by + ": " + body
			time.AfterFunc(wait, func() {
				if restart {
					rs.Restart(reason)
				} else {
					ctl.Shutdown(reason)
				}
			})
			k.info(c, what+" announced to "+strconv.Itoa(n)+" sessions; "+doing+" in "+strconv.Itoa(int(wait/time.Second))+" s")
		})
	}
}

// federationVar is the field of the blacklist or whitelist command.
func federationVar(allow bool) string {
	if allow {
		return "whitelistjids"
	}
	return "blacklistjids"
}

// federationForm shows the list in force.
func federationForm(allow bool) func(*Mod, module.Context) []Field {
	return func(m *Mod, _ module.Context) []Field {
		f := Field{Var: federationVar(allow), Type: "jid-multi", Label: "The blacklist"}
		if allow {
			f.Label = "The whitelist"
		}
		if fed, ok := m.ctl.(module.Federation); ok {
			deny, allowed := fed.FederationLists()
			f.Values = deny
			if allow {
				f.Values = allowed
			}
		}
		return []Field{f}
	}
}

// editFederation is XEP-0133 §4.11 and §4.12 for the whole server: the submitted list
// replaces the [s2s] deny (blacklist) or allow (whitelist) list, in the config file and
// in force (module.Federation). The policy names servers, so an entry with a user or a
// resource is refused rather than widened to its domain.
func editFederation(allow bool) func(module.Context, *call) {
	return func(c module.Context, k *call) {
		fed, ok := k.m.ctl.(module.Federation)
		if !ok {
			k.error(c, stanza.New(stanza.FeatureNotImplemented))
			return
		}
		var list []string
		for _, v := range k.form[federationVar(allow)] {
			v = strings.TrimSpace(v)
			if v == "" || slices.Contains(list, v) {
				continue
			}
			if strings.ContainsAny(v, "@/") {
				k.fail(c, v+" is not a server: the list holds domains, or *.domain for a domain's subdomains")
				return
			}
			list = append(list, v)
		}
		var got []string
		var err error
		if !c.Async(func() { got, err = fed.SetFederationList(allow, list) }, func(c module.Context) {
			if err != nil {
				k.m.log.Warn().Err(err).Bool("whitelist", allow).Msg("adhoc: federation list not changed")
				k.fail(c, "not changed: "+err.Error())
				return
			}
			name := "blacklist"
			if allow {
				name = "whitelist"
			}
			k.info(c, name+" set: "+strconv.Itoa(len(got))+" entries")
		}) {
			k.error(c, stanza.New(stanza.ResourceConstraintCond))
		}
	}
}

// welcomeForm shows the welcome message in force.
func welcomeForm(m *Mod, _ module.Context) []Field {
	f := Field{Var: "welcome", Type: "text-multi", Label: "Welcome Message", Required: true}
	if st, ok := m.ctl.(module.Settings); ok {
		if v, _ := st.ModuleSetting("welcome", "message").(string); v != "" {
			f.Values = strings.Split(v, "\n")
		}
	}
	return []Field{f}
}

// setWelcome is XEP-0133 §4.27: the message every account made from now on gets.
func setWelcome(c module.Context, k *call) {
	if _, ok := k.m.ctl.(module.Settings); !ok {
		k.error(c, stanza.New(stanza.FeatureNotImplemented))
		return
	}
	msg := strings.TrimSpace(strings.Join(k.form["welcome"], "\n"))
	if msg == "" {
		k.fail(c, "the welcome message is empty; delete-welcome removes it")
		return
	}
	setting(c, k, "welcome", "message", msg, "welcome message set")
}

// deleteWelcome is XEP-0133 §4.28.
func deleteWelcome(c module.Context, k *call) {
	setting(c, k, "welcome", "message", "", "welcome message deleted")
}

// adminForm shows the administrators in force.
func adminForm(m *Mod, _ module.Context) []Field {
	f := Field{Var: "adminjids", Type: "jid-multi", Label: "The admin list", Required: true}
	if a := m.admins.Load(); a != nil {
		f.Values = slices.Sorted(maps.Keys(a.server))
	}
	return []Field{f}
}

// editAdmin is XEP-0133 §4.29: the list replaces [modules.adhoc] admins. It must keep the
// administrator who sends it, so nobody locks themselves out by a slip.
func editAdmin(c module.Context, k *call) {
	if _, ok := k.m.ctl.(module.Settings); !ok {
		k.error(c, stanza.New(stanza.FeatureNotImplemented))
		return
	}
	var list []string
	for _, v := range k.form["adminjids"] {
		j, err := jid.Parse(strings.TrimSpace(v))
		if err != nil || j.Local() == "" || !j.IsBare() {
			k.fail(c, v+" is not an account's bare JID")
			return
		}
		if s := j.String(); !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	if !slices.Contains(list, k.iq.From.Bare().String()) {
		k.fail(c, "the list must keep you ("+k.iq.From.Bare().String()+"): another administrator can remove you")
		return
	}
	setting(c, k, "adhoc", "admins", list, "admin list set: "+strconv.Itoa(len(list))+" administrators")
}

// setting writes one module setting through module.Settings, off the shard (it writes
// the config file), and completes the command with done or the reason it was refused.
func setting(c module.Context, k *call, id, key string, value any, done string) {
	st, ok := k.m.ctl.(module.Settings)
	if !ok {
		k.error(c, stanza.New(stanza.FeatureNotImplemented))
		return
	}
	var err error
	if !c.Async(func() { err = st.SetModuleSetting(id, key, value) }, func(c module.Context) {
		if err != nil {
			k.m.log.Warn().Err(err).Str("module", id).Str("key", key).Msg("adhoc: setting not changed")
			k.fail(c, "not changed: "+err.Error())
			return
		}
		k.info(c, done)
	}) {
		k.error(c, stanza.New(stanza.ResourceConstraintCond))
	}
}
