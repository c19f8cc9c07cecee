package adhoc_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/adhoc"
	_ "github.com/vireo-im/vireo/modules/disco"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/invites"
)

func newEnv(t *testing.T) *routertest.Env {
	return routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
		o.Modules = []string{"adhoc", "disco", "last"}
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*adhoc.Config); ok {
				c.Admins = []string{"alice@example.org"}
			}
			return nil
		}
	})
}

const cmdNS = "http://jabber.org/protocol/commands"

func cmd(id, node, attrs, inner string) string {
	return "<iq type='set' id='" + id + "' to='example.org'><command xmlns='" + cmdNS + "' node='http://jabber.org/protocol/admin#" + node + "' " + attrs + ">" + inner + "</command></iq>"
}

func submit(fields ...string) string {
	var b strings.Builder
	b.WriteString("<x xmlns='jabber:x:data' type='submit'>")
	for i := 0; i+1 < len(fields); i += 2 {
		b.WriteString("<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>")
	}
	b.WriteString("</x>")
	return b.String()
}

var sidRe = regexp.MustCompile(`sessionid='([^']+)'`)

// start executes node and returns the session id of the form it answers with.
func start(t *testing.T, s *routertest.Sess, node string) string {
	t.Helper()
	s.C.Reset()
	s.Send(cmd("x1", node, "action='execute'", ""))
	got := s.C.Wait(t, "id='x1'", "status='executing'", "type='form'")
	m := sidRe.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no sessionid in %s", got)
	}
	return m[1]
}

func TestAdhocFlow(t *testing.T) {
	e := newEnv(t)
	alice := e.Bind("alice", "r")
	bob := e.Bind("bob", "r")
	for _, tc := range []struct {
		name string
		s    *routertest.Sess
		req  func(t *testing.T) string // the request, after any stage before it
		want []string
	}{
		{"disco items admin", alice, func(*testing.T) string {
			return "<iq type='get' id='q' to='example.org'><query xmlns='http://jabber.org/protocol/disco#items' node='" + cmdNS + "'/></iq>"
		}, []string{"admin#add-user", "admin#announce", "name='Add User'"}},
		{"disco items non-admin", bob, func(*testing.T) string {
			return "<iq type='get' id='q' to='example.org'><query xmlns='http://jabber.org/protocol/disco#items' node='" + cmdNS + "'/></iq>"
		}, []string{"type='result'", // a user sees the contact invitation alone
			"node='" + cmdNS + "'><item jid='example.org' node='urn:xmpp:invite#invite' name='Invite a contact'/></query>"}},
		{"disco info node", alice, func(*testing.T) string {
			return "<iq type='get' id='q' to='example.org'><query xmlns='http://jabber.org/protocol/disco#info' node='http://jabber.org/protocol/admin#add-user'/></iq>"
		}, []string{"category='automation'", "type='command-node'", "var='jabber:x:data'"}},
		{"server features", alice, func(*testing.T) string {
			return "<iq type='get' id='q' to='example.org'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
		}, []string{"var='" + cmdNS + "'"}},
		{"forbidden", bob, func(*testing.T) string { return cmd("q", "add-user", "", "") }, []string{"type='error'", "<forbidden"}},
		{"unknown node", alice, func(*testing.T) string { return cmd("q", "nope", "", "") }, []string{"<item-not-found"}},
		{"bad sessionid", alice, func(*testing.T) string { return cmd("q", "add-user", "sessionid='zz' action='complete'", submit()) },
			[]string{"<bad-request", "<bad-sessionid"}},
		{"someone else's session", bob, func(t *testing.T) string {
			return cmd("q", "add-user", "sessionid='"+start(t, alice, "add-user")+"' action='cancel'", "")
		}, []string{"<forbidden"}}, // bob is not an admin at all
		{"other resource", alice, func(t *testing.T) string {
			sid := start(t, alice, "add-user")
			a2 := e.Bind("alice", "other")
			defer a2.Unbind()
			a2.Send(cmd("q2", "add-user", "sessionid='"+sid+"' action='complete'", submit("accountjid", "x@example.org", "password", "p")))
			a2.C.Wait(t, "id='q2'", "<bad-sessionid")
			return cmd("q", "add-user", "sessionid='"+sid+"' action='cancel'", "")
		}, []string{"status='canceled'"}},
		{"cancel", alice, func(t *testing.T) string {
			return cmd("q", "add-user", "sessionid='"+start(t, alice, "add-user")+"' action='cancel'", "")
		}, []string{"status='canceled'"}},
		{"prev", alice, func(t *testing.T) string {
			return cmd("q", "add-user", "sessionid='"+start(t, alice, "add-user")+"' action='prev'", "")
		}, []string{"<bad-action"}},
		{"add user", alice, func(t *testing.T) string {
			return cmd("q", "add-user", "sessionid='"+start(t, alice, "add-user")+"' action='complete'",
				submit("accountjid", "Carol@Example.org", "password", "s3cret", "password-verify", "s3cret"))
		}, []string{"status='completed'", "<note type='info'>account carol@example.org created"}},
		{"add existing", alice, func(t *testing.T) string {
			return cmd("q", "add-user", "sessionid='"+start(t, alice, "add-user")+"' action='complete'",
				submit("accountjid", "bob@example.org", "password", "x"))
		}, []string{"status='completed'", "<note type='error'>account bob@example.org already exists"}},
		{"add remote domain", alice, func(t *testing.T) string {
			return cmd("q", "add-user", "sessionid='"+start(t, alice, "add-user")+"' action='complete'",
				submit("accountjid", "eve@elsewhere.net", "password", "x"))
		}, []string{"<note type='error'>", "not served here"}},
		{"add mismatched passwords", alice, func(t *testing.T) string {
			return cmd("q", "add-user", "sessionid='"+start(t, alice, "add-user")+"' action='complete'",
				submit("accountjid", "dan@example.org", "password", "a", "password-verify", "b"))
		}, []string{"<note type='error'>the passwords do not match"}},
		{"add bad jid", alice, func(t *testing.T) string {
			return cmd("q", "add-user", "sessionid='"+start(t, alice, "add-user")+"' action='complete'",
				submit("accountjid", "a@b@c", "password", "a"))
		}, []string{"<note type='error'>"}},
		{"change password", alice, func(t *testing.T) string {
			return cmd("q", "change-user-password", "sessionid='"+start(t, alice, "change-user-password")+"' action='complete'",
				submit("accountjid", "carol@example.org", "password", "n3w"))
		}, []string{"<note type='info'>password of carol@example.org changed"}},
		{"change missing", alice, func(t *testing.T) string {
			return cmd("q", "change-user-password", "sessionid='"+start(t, alice, "change-user-password")+"' action='complete'",
				submit("accountjid", "nobody@example.org", "password", "n3w"))
		}, []string{"<note type='error'>account nobody@example.org does not exist"}},
		{"registered num", alice, func(*testing.T) string { return cmd("q", "get-registered-users-num", "", "") },
			[]string{"status='completed'", "var='registeredusersnum'", "<value>3</value>"}},
		{"online num", alice, func(*testing.T) string { return cmd("q", "get-online-users-num", "", "") },
			[]string{"var='onlineusersnum'", "<value>2</value>"}},
		{"online list", alice, func(t *testing.T) string {
			return cmd("q", "get-online-users-list", "sessionid='"+start(t, alice, "get-online-users-list")+"' action='complete'", submit("max_items", "25"))
		}, []string{"var='onlineuserjids'", "<value>alice@example.org</value><value>bob@example.org</value>"}},
		{"user statistics", alice, func(t *testing.T) string {
			return cmd("q", "get-user-statistics", "sessionid='"+start(t, alice, "get-user-statistics")+"' action='complete'", submit("accountjid", "bob@example.org"))
		}, []string{"var='rostersize'", "<value>0</value>", "<value>bob@example.org/r</value>"}},
		{"user roster", alice, func(t *testing.T) string {
			if _, err := e.Store.Rosters().Put("bob@example.org", store.RosterItem{JID: "juliet@capulet.lit", Name: "Juliet",
				Sub: store.SubBoth, Groups: []string{"Friends", "Lovers"}}); err != nil {
				t.Fatal(err)
			}
			return cmd("q", "get-user-roster", "sessionid='"+start(t, alice, "get-user-roster")+"' action='complete'",
				"<x xmlns='jabber:x:data' type='submit'><field var='accountjids'><value>bob@example.org</value><value>ghost@example.org</value></field></x>")
		}, []string{"status='completed'", "<field var='accountjids' type='jid-multi'><value>bob@example.org</value></field>",
			"<value>juliet@capulet.lit (Juliet), both, groups Friends, Lovers</value>",
			"<query xmlns='jabber:iq:roster'><item jid='juliet@capulet.lit' name='Juliet' subscription='both'><group>Friends</group><group>Lovers</group></item></query></x>",
			"<note type='error'>account ghost@example.org does not exist"}},
		{"last login", alice, func(t *testing.T) string {
			cs := e.Bind("carol", "r") // a session that ends leaves its time (XEP-0012)
			cs.Unbind()
			if err := e.Store.Accounts().Create(store.Account{User: "erin@example.org"}); err != nil {
				t.Fatal(err)
			}
			return cmd("q", "get-user-lastlogin", "sessionid='"+start(t, alice, "get-user-lastlogin")+"' action='complete'",
				"<x xmlns='jabber:x:data' type='submit'><field var='accountjids'><value>bob@example.org</value><value>carol@example.org</value>"+
					"<value>ghost@example.org</value><value>erin@example.org</value></field></x>")
		}, []string{"status='completed'", "<value>bob@example.org</value><value>carol@example.org</value><value>erin@example.org</value></field>",
			"<field var='lastlogin' type='text-multi' label='When the last session ended (online: one is open now)'><value>online</value><value>20",
			"</value><value>never</value></field>",
			"<note type='error'>account ghost@example.org does not exist"}},
		{"disabled num", alice, func(t *testing.T) string {
			if err := e.Store.Accounts().SetDisabled("carol@example.org", true); err != nil {
				t.Fatal(err)
			}
			return cmd("q", "get-disabled-users-num", "", "")
		}, []string{"status='completed'", "var='disabledusersnum'", "<value>1</value>"}},
		{"delete", alice, func(t *testing.T) string {
			return cmd("q", "delete-user", "sessionid='"+start(t, alice, "delete-user")+"' action='complete'",
				"<x xmlns='jabber:x:data' type='submit'><field var='accountjids'><value>carol@example.org</value><value>ghost@example.org</value></field></x>")
		}, []string{"<note type='info'>deleted carol@example.org", "<note type='error'>account ghost@example.org does not exist"}},
		{"complete without form", alice, func(t *testing.T) string {
			return cmd("q", "announce", "sessionid='"+start(t, alice, "announce")+"' action='complete'", "")
		}, []string{"<bad-payload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req(t)
			tc.s.C.Reset()
			tc.s.Send(req)
			tc.s.C.Wait(t, append([]string{"id='q'"}, tc.want...)...)
		})
	}
	if _, err := e.Store.Accounts().Get("carol@example.org"); err == nil {
		t.Fatal("carol still exists")
	}
}

func TestAdhocAnnounceAndMOTD(t *testing.T) {
	e := newEnv(t)
	alice := e.Bind("alice", "r")
	bob := e.Bind("bob", "r")
	bob.Send("<presence/>")
	alice.Send(cmd("q", "announce", "sessionid='"+start(t, alice, "announce")+"' action='complete'", submit("announcement", "maintenance at 5")))
	alice.C.Wait(t, "id='q'", "announcement sent to 1 sessions")
	bob.C.Wait(t, "<message from='example.org' to='bob@example.org/r'", "<body>maintenance at 5</body>")

	alice.C.Reset()
	alice.Send(cmd("q", "set-motd", "sessionid='"+start(t, alice, "set-motd")+"' action='complete'", submit("motd", "hello all")))
	alice.C.Wait(t, "id='q'", "message of the day set")
	sid := start(t, alice, "edit-motd")
	if !strings.Contains(alice.C.All(), "<value>hello all</value>") {
		t.Fatalf("edit-motd form lacks the current message: %s", alice.C.All())
	}
	alice.C.Reset()
	alice.Send(cmd("q", "edit-motd", "sessionid='"+sid+"' action='cancel'", ""))
	alice.C.Wait(t, "status='canceled'")

	b2 := e.Bind("bob", "two")
	b2.Send("<presence/>")
	b2.C.Wait(t, "<subject>Message of the day</subject><body>hello all</body>")
	b2.C.Reset()
	b2.Send("<presence type='unavailable'/>")
	b2.Send("<presence/>")
	b2.C.Never(t, "hello all") // once per session

	alice.C.Reset()
	alice.Send(cmd("q", "delete-motd", "", ""))
	alice.C.Wait(t, "id='q'", "message of the day deleted")
	b3 := e.Bind("bob", "three")
	b3.Send("<presence/>")
	b3.C.Never(t, "hello all")
}

// TestInviteCreateAccount: XEP-0401 §4.2 for administrators. The command is listed with
// the others; its form asks for a username and has no FORM_TYPE; the result is an
// urn:xmpp:invite#invitation form with the xmpp: URI of a token that works, reserved
// for the name; an existing account's name is refused, and nobody else may run it.
func TestInviteCreateAccount(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.Bind("alice", "r"), e.Bind("bob", "r")
	const node = "urn:xmpp:invite#create-account"
	alice.Send("<iq type='get' id='l' to='example.org'><query xmlns='http://jabber.org/protocol/disco#items' node='" + cmdNS + "'/></iq>")
	alice.C.Wait(t, "id='l'", "node='"+node+"'")
	run := func(s *routertest.Sess, id, user string) string {
		s.C.Reset()
		s.Send("<iq type='set' id='" + id + "' to='example.org'><command xmlns='" + cmdNS + "' node='" + node + "' action='execute'/></iq>")
		got := s.C.Wait(t, "id='"+id+"'")
		if !strings.Contains(got, "type='form'") || strings.Contains(got, "FORM_TYPE") || !strings.Contains(got, "var='username'") {
			return got
		}
		sid := sidRe.FindStringSubmatch(got)[1]
		s.Send("<iq type='set' id='" + id + "c' to='example.org'><command xmlns='" + cmdNS + "' node='" + node + "' sessionid='" + sid + "'>" +
			"<x xmlns='jabber:x:data' type='submit'><field var='username'><value>" + user + "</value></field></x></command></iq>")
		return s.C.Wait(t, "id='"+id+"c'")
	}
	got := run(alice, "i1", "juliet")
	m := regexp.MustCompile(`<value>xmpp:juliet@example\.org\?register;preauth=([A-Za-z0-9]+)</value>`).FindStringSubmatch(got)
	if m == nil || !strings.Contains(got, "<value>urn:xmpp:invite#invitation</value>") || !strings.Contains(got, "var='expire'") {
		t.Fatalf("invitation: %s", got)
	}
	inv, err := invites.Check(e.Store.Table(invites.Table), m[1], time.Now())
	if err != nil || inv.Username != "juliet" || inv.Inviter != "alice@example.org" {
		t.Fatalf("the token: %+v %v", inv, err)
	}
	if got := run(alice, "i2", "bob"); !strings.Contains(got, "already exists") {
		t.Fatalf("an invitation for an existing account: %s", got)
	}
	if got := run(alice, "i3", ""); !strings.Contains(got, "<value>xmpp:example.org?register;preauth=") {
		t.Fatalf("an invitation without a name: %s", got)
	}
	if got := run(bob, "i4", "x"); !strings.Contains(got, "forbidden") {
		t.Fatalf("a user ran it: %s", got)
	}
}

// TestInviteContact: XEP-0401 §4.1 for every user: the command completes at once with an
// urn:xmpp:invite#invitation form whose URI is the user's roster link with a token.
func TestInviteContact(t *testing.T) {
	e := newEnv(t)
	bob := e.Bind("bob", "r")
	bob.Send("<iq type='set' id='c' to='example.org'><command xmlns='" + cmdNS + "' node='urn:xmpp:invite#invite' action='execute'/></iq>")
	got := bob.C.Wait(t, "id='c'", "status='completed'", "<value>urn:xmpp:invite#invitation</value>")
	m := regexp.MustCompile(`<value>xmpp:bob@example\.org\?roster;preauth=([A-Za-z0-9]+)</value>`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("invitation: %s", got)
	}
	inv, err := invites.Check(e.Store.Table(invites.Table), m[1], time.Now())
	if err != nil || !inv.Contact || inv.Inviter != "bob@example.org" {
		t.Fatalf("the token: %+v %v", inv, err)
	}
	// A guest's invitations would outlive the guest's account: refused.
	e.Store.Accounts().Create(store.Account{User: "guest1@example.org", Anonymous: true})
	g := e.BindGuest("guest1", "web")
	g.Send("<iq type='set' id='g' to='example.org'><command xmlns='" + cmdNS + "' node='urn:xmpp:invite#invite' action='execute'/></iq>")
	g.C.Wait(t, "id='g'", "guests cannot invite contacts")
}

// TestHostAdmins: a host's own administrators ([vhosts."<host>".modules.adhoc] admins)
// see and run the commands on accounts and sessions, sent to their host, on its accounts
// and sessions only; the server's commands (restart, the admin list, federation) stay
// the server administrators', who still run everything on every host.
func TestHostAdmins(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
		o.Domains = []string{"example.org", "corp.example"}
		o.Modules = []string{"adhoc", "disco", "last"}
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*adhoc.Config); ok {
				c.Admins = []string{"alice@example.org", "root@corp.example"}
			}
			return nil
		}
		o.HostModuleConfig = func(id string) ([]string, func(string, any) error) {
			return []string{"corp.example"}, func(_ string, v any) error {
				v.(*adhoc.Config).Admins = []string{"boss@corp.example"}
				return nil
			}
		}
		// ops administers the MUC service, which ranks it an owner of every room.
		o.Controller = namedAdmins{"alice@example.org", "root@corp.example", "boss@corp.example", "ops@corp.example"}
	})
	for _, u := range []string{"boss", "dan", "eve"} {
		e.Store.Accounts().Create(store.Account{User: u + "@corp.example"})
	}
	corp := e.On("corp.example")
	boss := corp.Bind("boss", "r")
	alice := e.Bind("alice", "r")
	bob := e.Bind("bob", "r")
	dan := corp.Bind("dan", "r")
	to := func(host, id, node, inner string) string {
		return "<iq type='set' id='" + id + "' to='" + host + "'><command xmlns='" + cmdNS + "' node='http://jabber.org/protocol/admin#" + node +
			"' action='complete'>" + inner + "</command></iq>"
	}
	items := func(s *routertest.Sess, id, host string) string {
		s.Send("<iq type='get' id='" + id + "' to='" + host + "'><query xmlns='http://jabber.org/protocol/disco#items' node='" + cmdNS + "'/></iq>")
		return s.C.Wait(t, "id='"+id+"'", "type='result'")
	}
	got := items(boss, "i1", "corp.example")
	for _, want := range []string{"admin#add-user", "admin#delete-user", "admin#announce", "admin#get-online-users-list", "urn:xmpp:invite#create-account"} {
		if !strings.Contains(got, want) {
			t.Errorf("boss's commands on corp.example lack %s: %s", want, got)
		}
	}
	for _, not := range []string{"admin#restart", "admin#shutdown", "admin#edit-admin", "admin#edit-blacklist", "admin#set-motd", "admin#set-welcome"} {
		if strings.Contains(got, not) {
			t.Errorf("boss's commands on corp.example have %s", not)
		}
	}
	if got := items(boss, "i2", "example.org"); strings.Contains(got, "admin#") {
		t.Errorf("boss's commands on example.org: %s", got)
	}

	for _, tc := range []struct {
		name       string
		s          *routertest.Sess
		host, node string
		form       string
		want       []string
	}{
		{"server command", boss, "corp.example", "restart", submit("delay", "0"), []string{"<forbidden"}},
		{"admin list", boss, "corp.example", "edit-admin", submit("adminjids", "boss@corp.example"), []string{"<forbidden"}},
		{"another host", boss, "example.org", "add-user", submit("accountjid", "x@example.org", "password", "p"), []string{"<forbidden"}},
		{"another host's account", boss, "corp.example", "disable-user", submit("accountjids", "bob@example.org"), []string{"you administer corp.example only"}},
		{"another host's password", boss, "corp.example", "change-user-password", submit("accountjid", "bob@example.org", "password", "p"), []string{"you administer corp.example only"}},
		{"another host's session", boss, "corp.example", "end-user-session", submit("accountjids", "bob@example.org/r"), []string{"you administer corp.example only"}},
		// A server administrator whose account is on the host, made or taken over by the
		// host's administrator, would make it one too.
		{"a server administrator's password", boss, "corp.example", "change-user-password", submit("accountjid", "root@corp.example", "password", "p"), []string{"administers more than you do"}},
		{"a server administrator's sessions", boss, "corp.example", "end-user-session", submit("accountjids", "root@corp.example/r"), []string{"administers more than you do"}},
		{"a server administrator's account made", boss, "corp.example", "add-user", submit("accountjid", "root@corp.example", "password", "p", "password-verify", "p"), []string{"administers more than you do"}},
		{"a MUC service administrator's password", boss, "corp.example", "change-user-password", submit("accountjid", "ops@corp.example", "password", "p"), []string{"administers more than you do"}},
		{"its own account", boss, "corp.example", "delete-user", submit("accountjids", "eve@corp.example"), []string{"status='completed'", "deleted eve@corp.example"}},
		{"its host's count", boss, "corp.example", "get-registered-users-num", "", []string{"<value>2</value>"}},
		{"its host's online users", boss, "corp.example", "get-online-users-list", submit("max_items", "none"), []string{"boss@corp.example", "dan@corp.example"}},
		{"the server's administrator", alice, "example.org", "disable-user", submit("accountjids", "dan@corp.example"), []string{"disabled dan@corp.example"}},
	} {
		tc.s.C.Reset()
		tc.s.Send(to(tc.host, "c", tc.node, tc.form))
		got := tc.s.C.Wait(t, "id='c'")
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: no %q in %s", tc.name, w, got)
			}
		}
		if tc.name == "its host's online users" && (strings.Contains(got, "alice@") || strings.Contains(got, "bob@")) {
			t.Errorf("%s: another host's users in %s", tc.name, got)
		}
	}
	if a, _ := e.Store.Accounts().Get("bob@example.org"); a.Disabled {
		t.Fatal("boss disabled bob@example.org")
	}
	if _, err := e.Store.Accounts().Get("eve@corp.example"); err == nil {
		t.Fatal("eve@corp.example is still there")
	}
	_ = bob
	_ = dan
}

// namedAdmins is a module.Controller that names the configuration's administrators.
type namedAdmins []string

func (namedAdmins) Reload() error                   { return nil }
func (namedAdmins) Shutdown(string)                 {}
func (n namedAdmins) NamedAdministrators() []string { return n }
