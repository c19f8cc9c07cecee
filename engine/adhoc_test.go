package engine_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/adhoc"
)

// adhocServer starts a server whose [modules.adhoc] admins are admin@localhost.
func adhocServer(t *testing.T) *vireotest.Server {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, ModuleConfig: func(id string, v any) error {
		if c, ok := v.(*adhoc.Config); ok {
			c.Admins = []string{"admin@localhost"}
		}
		return nil
	}})
	srv.AddUser(t, "admin", "admin pw")
	srv.AddUser(t, "bob", "bob pw")
	return srv
}

var adhocSID = regexp.MustCompile(`sessionid='([^']+)'`)

// adhocRun executes node as c, submits the field pairs with complete when there are any,
// and returns the final answer.
func adhocRun(t *testing.T, c *vireotest.RawConn, node string, fields ...string) string {
	t.Helper()
	const cmdNS = "http://jabber.org/protocol/commands"
	c.Send("<iq type='set' id='e1' to='localhost'><command xmlns='" + cmdNS + "' node='http://jabber.org/protocol/admin#" + node + "' action='execute'/></iq>")
	got := c.Expect("</iq>")
	if len(fields) == 0 {
		return got
	}
	m := adhocSID.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no session in %s", got)
	}
	x := "<x xmlns='jabber:x:data' type='submit'>"
	for i := 0; i+1 < len(fields); i += 2 {
		x += "<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>"
	}
	c.Send("<iq type='set' id='e2' to='localhost'><command xmlns='" + cmdNS + "' node='http://jabber.org/protocol/admin#" + node +
		"' sessionid='" + m[1] + "' action='complete'>" + x + "</x></command></iq>")
	return c.Expect("</iq>")
}

func mustContain(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !regexp.MustCompile(regexp.QuoteMeta(w)).MatchString(got) {
			t.Fatalf("answer lacks %q:\n%s", w, got)
		}
	}
}

// TestIntegrationAdhocAdmin: an administrator adds an account and changes its password
// over XEP-0133; the new password logs in, the old one does not; a non-administrator is
// forbidden; online users are counted and listed; an announcement reaches an online user.
func TestIntegrationAdhocAdmin(t *testing.T) {
	srv := adhocServer(t)
	admin := srv.LoginPlain(t, "admin", "admin pw", "desk")
	admin.Send("<presence/>")

	got := adhocRun(t, admin, "add-user", "accountjid", "carol@localhost", "password", "first", "password-verify", "first")
	mustContain(t, got, "status='completed'", "account carol@localhost created")
	got = adhocRun(t, admin, "change-user-password", "accountjid", "carol@localhost", "password", "second")
	mustContain(t, got, "password of carol@localhost changed")
	carol := srv.LoginPlain(t, "carol", "second", "phone")
	carol.Send("<presence/>")

	bob := srv.LoginPlain(t, "bob", "bob pw", "r")
	mustContain(t, adhocRun(t, bob, "add-user"), "type='error'", "<forbidden")
	bob.Send("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>")
	// A user sees the XEP-0401 contact invitation, and no administration command.
	if d := bob.Expect("</iq>"); strings.Count(d, "<item ") != 1 || !strings.Contains(d, "node='urn:xmpp:invite#invite'") {
		t.Fatalf("a non-administrator's commands: %s", d)
	}

	mustContain(t, adhocRun(t, admin, "get-online-users-num"), "var='onlineusersnum'", "<value>3</value>")
	mustContain(t, adhocRun(t, admin, "get-online-users-list", "max_items", "none"),
		"<value>admin@localhost</value><value>bob@localhost</value><value>carol@localhost</value>")
	mustContain(t, adhocRun(t, admin, "get-registered-users-num"), "<value>3</value>")

	got = adhocRun(t, admin, "announce", "announcement", "restart at noon")
	mustContain(t, got, "announcement sent to")
	carol.Expect("<body>restart at noon</body>")

	// Wrong password after the change: the first one no longer works.
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGNhcm9sAGZpcnN0</auth>") // \0carol\0first
	r.Expect("<failure")

	got = adhocRun(t, admin, "delete-user", "accountjids", "carol@localhost")
	mustContain(t, got, "deleted carol@localhost")
	carol.ExpectClosed()
}

// TestIntegrationAdhocMOTD: the message of the day an administrator sets reaches a user
// on login (initial presence).
func TestIntegrationAdhocMOTD(t *testing.T) {
	srv := adhocServer(t)
	admin := srv.LoginPlain(t, "admin", "admin pw", "desk")
	mustContain(t, adhocRun(t, admin, "set-motd", "motd", "welcome to vireo"), "message of the day set")
	bob := srv.LoginPlain(t, "bob", "bob pw", "r")
	bob.Send("<presence/>")
	bob.Expect("<body>welcome to vireo</body>")
}

// TestIntegrationSlixmppAdhoc: slixmpp's XEP-0050 plugin, as an administrator, lists the
// commands and runs add-user over two stages; the account it created logs in; it reads
// its own roster with get-user-roster. Then it
// makes an XEP-0401 account invitation, which aioxmpp redeems (XEP-0445) on this server,
// whose registration is closed.
func TestIntegrationSlixmppAdhoc(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, ModuleConfig: func(id string, v any) error {
		if c, ok := v.(*adhoc.Config); ok {
			c.Admins = []string{"slix@localhost"}
		}
		return nil
	}})
	srv.AddUser(t, "slix", "py secret")
	out := runSlixOut(t, srv, "slixmpp_adhoc.py", "COMMAND http://jabber.org/protocol/admin#add-user",
		"COMMAND http://jabber.org/protocol/admin#announce", "STAGE executing actions complete",
		"FIELDS accountjid,password,password-verify", "STAGE completed", "NOTE info account fromslix@localhost created",
		"REGISTERED fromslix@localhost slix@localhost", "ROSTER friend@localhost (Friend), none, groups Pals",
		"COMMAND urn:xmpp:invite#create-account", "INVITE FIELDS username",
		"INVITATION urn:xmpp:invite#invitation xmpp:invited@localhost?register;preauth=")
	srv.LoginPlain(t, "fromslix", "slix made me", "go")
	// The invitation slixmpp's administrator made, redeemed by aioxmpp's registration code
	// on this server, whose registration is closed.
	needPython(t, "aioxmpp", "python3-aioxmpp")
	token := regexp.MustCompile(`preauth=([A-Za-z0-9]+)`).FindStringSubmatch(out)[1]
	runAio(t, srv, "aioxmpp_invite.py", []string{"invited@localhost", "new here", token},
		"TOKEN ACCEPTED", "FORM invited", "REGISTERED", "LOGGED IN invited@localhost", "DONE")
}

// TestIntegrationAdhocUserLists: XEP-0133 §4.17 and §4.18. The registered accounts of the
// host in JID order, cut at max_items with a note saying how many there are; the
// disabled ones alone; a max_items that is not a number is refused.
func TestIntegrationAdhocUserLists(t *testing.T) {
	srv := adhocServer(t)
	srv.AddUser(t, "carol", "carol pw")
	admin := srv.LoginPlain(t, "admin", "admin pw", "desk")
	mustContain(t, adhocRun(t, admin, "disable-user", "accountjids", "bob@localhost"), "status='completed'")
	got := adhocRun(t, admin, "get-registered-users-list", "max_items", "none")
	mustContain(t, got, "status='completed'", "<field var='registereduserjids' type='jid-multi' label='The list of all users'><value>admin@localhost</value><value>bob@localhost</value><value>carol@localhost</value></field>")
	got = adhocRun(t, admin, "get-registered-users-list", "max_items", "2")
	mustContain(t, got, "<value>admin@localhost</value><value>bob@localhost</value></field>", "<note type='info'>the first 2 of 3</note>")
	if strings.Contains(got, "carol@") {
		t.Fatalf("max_items 2 listed carol: %s", got)
	}
	got = adhocRun(t, admin, "get-disabled-users-list", "max_items", "100")
	mustContain(t, got, "<field var='disableduserjids' type='jid-multi' label='The list of all disabled users'><value>bob@localhost</value></field>")
	mustContain(t, adhocRun(t, admin, "get-disabled-users-list", "max_items", "lots"), "max_items must be a positive number")
}

// TestIntegrationAdhocActiveIdle: XEP-0133 §4.16, §4.17, §4.21 and §4.22. Online users are
// active or idle: idle when no session of theirs is in use, each either XEP-0352
// inactive or XEP-0198 detached; one active session makes the user active.
func TestIntegrationAdhocActiveIdle(t *testing.T) {
	srv := adhocServer(t)
	srv.AddUser(t, "carol", "carol pw")
	srv.AddUser(t, "dave", "dave pw")
	admin := srv.LoginPlain(t, "admin", "admin pw", "desk")
	// bob: one inactive session, one active; carol: inactive; dave: detached.
	bob1 := srv.LoginPlain(t, "bob", "bob pw", "phone")
	bob1.Send("<inactive xmlns='urn:xmpp:csi:0'/><iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	bob1.Expect("id='p'")
	srv.LoginPlain(t, "bob", "bob pw", "desk")
	carol := srv.LoginPlain(t, "carol", "carol pw", "phone")
	carol.Send("<inactive xmlns='urn:xmpp:csi:0'/><iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	carol.Expect("id='p'")
	dave := srv.LoginPlain(t, "dave", "dave pw", "phone")
	dave.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	dave.Expect("<enabled")
	dave.Conn().Close()
	// Wait until the server has seen dave's connection go (the session stays, detached).
	for i := 0; ; i++ {
		if got := adhocRun(t, admin, "get-idle-users-num"); strings.Contains(got, "<value>2</value>") {
			break
		} else if i == 50 {
			t.Fatalf("dave never became idle: %s", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mustContain(t, adhocRun(t, admin, "get-online-users-num"), "<value>4</value>")
	mustContain(t, adhocRun(t, admin, "get-active-users-num"), "var='activeusersnum'", "<value>2</value>")
	mustContain(t, adhocRun(t, admin, "get-active-users", "max_items", "none"),
		"<value>admin@localhost</value><value>bob@localhost</value></field>")
	mustContain(t, adhocRun(t, admin, "get-idle-users", "max_items", "none"),
		"label='The list of idle users'", "<value>carol@localhost</value><value>dave@localhost</value></field>")
	mustContain(t, adhocRun(t, admin, "get-idle-users", "max_items", "25"), "<value>carol@localhost</value>")

	// carol looks at her phone again: she is active.
	carol.Send("<active xmlns='urn:xmpp:csi:0'/><iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
	carol.Expect("id='p2'")
	mustContain(t, adhocRun(t, admin, "get-active-users-num"), "<value>3</value>")
	mustContain(t, adhocRun(t, admin, "get-idle-users-num"), "var='idleusersnum'", "<value>1</value>")
}
