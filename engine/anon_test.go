package engine_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
)

const anonAuth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>"

var boundJID = regexp.MustCompile(`<jid>([^<@]+@[^</]+)/[^<]*</jid>`)

// guestLogin logs a guest in with SASL ANONYMOUS (no initial response, as Strophe.js
// sends it), binds, and returns the stream and the guest's bare JID.
func guestLogin(t *testing.T, srv *vireotest.Server) (*vireotest.RawConn, string) {
	t.Helper()
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	mustHave(t, "features of a host with guests", r.Expect("</stream:features>"), "<mechanism>ANONYMOUS</mechanism>")
	r.Send(anonAuth)
	r.Expect("<success")
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	m := boundJID.FindStringSubmatch(r.Expect("</iq>"))
	if m == nil {
		t.Fatal("no JID in the bind result")
	}
	return r, m[1]
}

// guestResume logs in as a new guest and resumes the stream management session previd
// with h (XEP-0198 on a guest's account, anon.go); it returns the connection with the
// <resume/> sent.
func guestResume(t *testing.T, srv *vireotest.Server, previd, h string) *vireotest.RawConn {
	t.Helper()
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send(anonAuth)
	r.Expect("<success")
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + previd + "' h='" + h + "'/>")
	return r
}

// waitGone polls until user's account is gone, with its roster and its row of guests.
func waitGone(t *testing.T, srv *vireotest.Server, user string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := srv.Store.Accounts().Get(user)
		items, _, rerr := srv.Store.Rosters().Get(user)
		if errors.Is(err, store.ErrNotFound) && rerr == nil && len(items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest %s still there: account err %v, roster %v", user, err, items)
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := 0
	srv.Store.Accounts().Guests(func(string) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d guests left in the store's list", n)
	}
}

// TestIntegrationAnonymous: a guest's account lives as long as its session. It works as an
// account meanwhile (roster, messages both ways), has no password to change and gets no
// FAST token; when the session ends, by a clean close or when its stream-management
// resumption window closes, the account goes with its data, and what it held or what
// arrives for it afterwards bounces instead of being stored.
func TestIntegrationAnonymous(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Anonymous: true, ResumeTimeout: time.Second})
	srv.AddUser(t, "alice", "secret")
	alice := srv.LoginPlain(t, "alice", "secret", "desk")
	alice.Send("<presence/>")
	alice.Expect("<presence")

	g, guest := guestLogin(t, srv)
	if !strings.HasSuffix(guest, "@localhost") || len(guest) < len("@localhost")+16 {
		t.Fatalf("guest JID %q: want 16 random characters at localhost", guest)
	}
	acct, err := srv.Store.Accounts().Get(guest)
	if err != nil || !acct.Anonymous {
		t.Fatalf("guest account: %+v, %v", acct, err)
	}
	if n := engine.Guests(srv.Engine); n != 1 {
		t.Fatalf("vireo_guests = %d with one guest", n)
	}
	g.Send("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='alice@localhost' name='Alice'/></query></iq>")
	mustHave(t, "guest roster set", g.Expect("id='r1'"), "type='result'")
	g.Send("<iq type='set' id='p1'><query xmlns='jabber:iq:register'><username>" + strings.TrimSuffix(guest, "@localhost") + "</username><password>pw</password></query></iq>")
	mustHave(t, "guest password change", g.Expect("</error>"), "id='p1'", "type='error'", "<not-allowed")
	g.Send("<presence/>")
	g.Send("<message to='alice@localhost' type='chat' id='g1'><body>hi, a guest here</body></message>")
	mustHave(t, "alice gets the guest's message", alice.Expect("</message>"), "from='"+guest+"/", "hi, a guest here")
	alice.Send("<message to='" + guest + "' type='chat' id='a1'><body>welcome</body></message>")
	g.Expect("welcome")

	g.Send("</stream:stream>")
	g.ExpectClosed()
	waitGone(t, srv, guest)
	if n := engine.Guests(srv.Engine); n != 0 {
		t.Fatalf("vireo_guests = %d once the guest left", n)
	}
	alice.Send("<message to='" + guest + "' type='chat' id='a2'><body>still there?</body></message>")
	expectBounce(t, alice, "a2", "<service-unavailable")

	// A second guest enables resumption and loses its connection: the session waits its
	// second, then ends; the message it was holding bounces rather than being stored.
	g2, guest2 := guestLogin(t, srv)
	g2.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	g2.Expect("<enabled")
	g2.Send("<presence/>")
	g2.Conn().Close()
	time.Sleep(100 * time.Millisecond)
	alice.Send("<message to='" + guest2 + "' type='chat' id='a3'><body>are you back?</body></message>")
	expectBounce(t, alice, "a3", "<service-unavailable")
	waitGone(t, srv, guest2)
	if n, _ := srv.Store.Offline().Count(guest2); n != 0 {
		t.Fatalf("%d offline messages kept for a guest who left", n)
	}

	// A guest who leaves before binding, and one who never binds, leave nothing either.
	defer engine.SetGuestBindWithin(time.Second)()
	for _, leave := range []bool{true, false} {
		r := srv.DialTLS(t)
		r.Send(srv.Header())
		r.Expect("</stream:features>")
		r.Send(anonAuth)
		r.Expect("<success")
		if leave {
			r.Conn().Close()
		}
		deadline := time.Now().Add(10 * time.Second)
		guests := func() (n int) {
			srv.Store.Accounts().Guests(func(string) bool { n++; return true })
			return n
		}
		for n := guests(); n != 0; n = guests() {
			if time.Now().After(deadline) {
				t.Fatalf("leave %v: %d guest accounts, want none", leave, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		r.Conn().Close()
	}

	// SASL2: a guest asking for a FAST token gets none.
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='ANONYMOUS'><initial-response>" +
		base64.StdEncoding.EncodeToString([]byte("a trace")) + "</initial-response>" +
		"<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>test</software></user-agent>" +
		"<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>" +
		"<bind xmlns='urn:xmpp:bind:0'><tag>test</tag></bind></authenticate>")
	got := r.Expect("</success>")
	mustHave(t, "SASL2 guest login", got, "<authorization-identifier>", "<bound")
	mustNotHave(t, "SASL2 guest login", got, "<token")
}

// TestIntegrationAnonymousBad: ANONYMOUS is offered only where guests are let in, and a
// trace beyond RFC 4505's 255 characters is refused.
func TestIntegrationAnonymousBad(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	mustNotHave(t, "features without guests", r.Expect("</stream:features>"), "ANONYMOUS")
	r.Send(anonAuth)
	r.Expect("<invalid-mechanism")

	guests := vireotest.Start(t, vireotest.Options{AllowPlain: true, Anonymous: true})
	r = guests.DialTLS(t)
	r.Send(guests.Header())
	r.Expect("</stream:features>")
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'>" +
		base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 256))) + "</auth>")
	r.Expect("<malformed-request")
	n, _ := guests.Store.Accounts().Count()
	guests.Store.Accounts().Guests(func(string) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d accounts after a refused guest login", n)
	}
}

// TestAnonymousSweep: guest accounts a crash left behind go at the next start, with their
// data; the others stay. Guests are not in the store's account list or count.
func TestAnonymousSweep(t *testing.T) {
	dir := t.TempDir()
	st, err := pebblestore.Open(dir+"/db", pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []store.Account{{User: "left@localhost", Anonymous: true}, {User: "kept@localhost"}} {
		if err := st.Accounts().Create(a); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Rosters().Put(a.User, store.RosterItem{JID: "x@localhost"}); err != nil {
			t.Fatal(err)
		}
	}
	var listed []string
	st.Accounts().List(func(u string) bool { listed = append(listed, u); return true })
	if n, _ := st.Accounts().Count(); n != 1 || len(listed) != 1 || listed[0] != "kept@localhost" {
		t.Fatalf("accounts listed %v, counted %d: want kept@localhost alone", listed, n)
	}
	st.Close()
	srv := vireotest.Start(t, vireotest.Options{Dir: dir, Anonymous: true})
	waitGone(t, srv, "left@localhost")
	if _, err := srv.Store.Accounts().Get("kept@localhost"); err != nil {
		t.Fatalf("an account that is not a guest's was removed: %v", err)
	}
	if items, _, _ := srv.Store.Rosters().Get("kept@localhost"); len(items) != 1 {
		t.Fatalf("kept@localhost's roster: %v", items)
	}
}

// TestIntegrationAnonymousS2S: guests reach this server's users only, unless the operator
// lets them federate.
func TestIntegrationAnonymousS2S(t *testing.T) {
	for _, open := range []bool{false, true} {
		a, b := federatedWith(t, func(o *vireotest.Options) { o.Anonymous, o.AnonymousS2S = true, open }, nil)
		bob := b.LoginPlain(t, "bob", "secret", "r")
		bob.Send("<presence/>")
		bob.Expect("<presence")
		g, guest := guestLogin(t, a)
		g.Send("<message to='bob@b.localhost' type='chat' id='m1'><body>hello bob</body></message>")
		if !open {
			expectBounce(t, g, "m1", "<not-allowed")
			bob.Never("hello bob")
			continue
		}
		mustHave(t, "a guest's message over s2s", bob.Expect("</message>"), "from='"+guest+"/", "hello bob")
	}
}

// TestIntegrationSlixmppGuest: slixmpp logs in with ANONYMOUS when its JID has no user and
// it has no password, uses the guest account (roster, a chat with a user here), is refused
// a password, and its account is gone once it left.
func TestIntegrationSlixmppGuest(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Anonymous: true})
	srv.AddUser(t, "alice", "secret")
	alice := srv.LoginPlain(t, "alice", "secret", "desk")
	alice.Send("<presence/>")
	alice.Expect("<presence")

	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	host, port, _ := net.SplitHostPort(srv.C2SAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/slixmpp_guest.py", "localhost", "", host, port, ca, "alice@localhost")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := alice.Expect("</message>")
	mustHave(t, "alice gets the guest's message", got, "hello from a guest")
	m := regexp.MustCompile(`from='([^'@]+@localhost)/[^']*'><body>hello from a guest`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no guest sender in %q", got)
	}
	guest := m[1]
	alice.Send("<message to='" + guest + "' type='chat' id='w1'><body>welcome, guest</body></message>")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, out.String())
	}
	for _, w := range []string{"BOUND " + guest + "/", "ROSTER alice@localhost", "GOT welcome, guest", "PASSWD not-allowed"} {
		if !strings.Contains(out.String(), w) {
			t.Fatalf("slixmpp output lacks %q:\n%s", w, out.String())
		}
	}
	waitGone(t, srv, guest)
}

// TestIntegrationAnonymousHosts: on a server with two hosts, only the one opened to guests
// offers ANONYMOUS (the cached stream features differ by host), a reload opens or closes a
// host to them, and a guest cannot log in on a host that does not take guests.
func TestIntegrationAnonymousHosts(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	cfg := srv.Engine.Config()
	cfg.Domains = []string{"localhost", "guest.localhost"}
	cfg.AnonymousDomains = []string{"guest.localhost"}
	cfg.Registration = true
	if err := srv.Router.SetDomains(cfg.Domains); err != nil {
		t.Fatal(err)
	}
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	header := func(host string) string { return strings.Replace(srv.Header(), "to='localhost'", "to='"+host+"'", 1) }
	for range 2 { // the second time from the cached forms
		r := srv.DialTLS(t)
		r.Send(header("localhost"))
		got := r.Expect("</stream:features>")
		mustNotHave(t, "features of the host without guests", got, "ANONYMOUS")
		mustHave(t, "features of the host without guests", got, "<register xmlns='http://jabber.org/features/iq-register'/>")
		r.Send(anonAuth)
		r.Expect("<invalid-mechanism")
		// Open registration is for the other host only: an account on the guests' host
		// would pass for a guest's.
		r = srv.DialTLS(t)
		r.Send(header("guest.localhost"))
		mustNotHave(t, "features of the host with guests", r.Expect("</stream:features>"), "iq-register")
		r.Send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>fake</username><password>pw</password></query></iq>")
		r.ExpectClosed()
		if _, err := srv.Store.Accounts().Get("fake@guest.localhost"); err == nil {
			t.Fatal("an account registered in-band on the guests' host")
		}
		r = srv.DialTLS(t)
		r.Send(header("guest.localhost"))
		mustHave(t, "features of the host with guests", r.Expect("</stream:features>"), "<mechanism>ANONYMOUS</mechanism>")
		r.Send(anonAuth)
		r.Expect("<success")
		r.Send(header("guest.localhost"))
		r.Expect("</stream:features>")
		r.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
		mustHave(t, "a guest's address", r.Expect("</iq>"), "@guest.localhost/")
	}
	if open, domains, _ := srv.Engine.SignupSettings("192.0.2.1"); !open || strings.Join(domains, " ") != "localhost" {
		t.Fatalf("sign-up page: open %v, hosts %v; want localhost only", open, domains)
	}
	if _, err := srv.Engine.RegisterOpen("guest.localhost", "webfake", "a long password", "192.0.2.1"); err == nil {
		t.Fatal("the sign-up page made an account on the guests' host")
	}
	cfg.AnonymousDomains = nil
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	r := srv.DialTLS(t)
	r.Send(header("guest.localhost"))
	mustNotHave(t, "features after the reload closed the host", r.Expect("</stream:features>"), "ANONYMOUS")
}

var smEnabledID = regexp.MustCompile(`<enabled [^>]*id='([^']+)'`)

// TestIntegrationAnonymousResume: a guest whose connection dropped logs in again (as a new
// guest, the only way it can) and resumes its session with the resumption id: it gets
// what was sent meanwhile, and the account its new login made goes. The id of a
// registered user's session resumes nothing for a guest.
func TestIntegrationAnonymousResume(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Anonymous: true, ResumeTimeout: 30 * time.Second})
	srv.AddUser(t, "alice", "secret")
	alice := srv.LoginPlain(t, "alice", "secret", "desk")
	alice.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	am := smEnabledID.FindStringSubmatch(alice.Expect("<enabled") + alice.Expect("/>"))
	if am == nil {
		t.Fatal("no resumption id for alice")
	}
	aliceID := am[1]

	g, guest := guestLogin(t, srv)
	g.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	m := smEnabledID.FindStringSubmatch(g.Expect("<enabled") + g.Expect("/>"))
	if m == nil {
		t.Fatal("no resumption id")
	}
	g.Send("<presence/>")
	g.Expect("<presence")
	g.Conn().Close()
	alice.Send("<message to='" + guest + "' type='chat' id='a1'><body>while you were away</body></message>")

	resume := func(previd string) *vireotest.RawConn { return guestResume(t, srv, previd, "0") }
	r := resume(m[1])
	mustHave(t, "the guest's resume", r.Expect("while you were away"), "<resumed", "to='"+guest)
	onlyGuest := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var guests []string
			srv.Store.Accounts().Guests(func(u string) bool { guests = append(guests, u); return true })
			if len(guests) == 1 && guests[0] == guest {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("guests %v after the resume, want %s alone", guests, guest)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	onlyGuest()

	// Cut again: this time the guest resumes inside its SASL2 login (XEP-0388, XEP-0198).
	r.Conn().Close()
	alice.Send("<message to='" + guest + "' type='chat' id='a2'><body>and once more</body></message>")
	v2 := srv.DialTLS(t)
	v2.Send(srv.Header())
	v2.Expect("</stream:features>")
	v2.Send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='ANONYMOUS'><initial-response/>" +
		"<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'/>" +
		"<resume xmlns='urn:xmpp:sm:3' previd='" + m[1] + "' h='0'/></authenticate>")
	mustHave(t, "a guest's resume inside SASL2", v2.Expect("</success>"), "<resumed", "<authorization-identifier>"+guest+"/")
	v2.Expect("and once more")
	onlyGuest()

	r2 := resume(aliceID)
	mustHave(t, "a guest with alice's id", r2.Expect("</failed>"), "<item-not-found")
	// Forged: one character changed (not the last ones, which often hold padding bits
	// and "aa" already).
	forged := "b" + m[1][1:]
	if m[1][0] == 'b' {
		forged = "c" + m[1][1:]
	}
	r3 := resume(forged)
	mustHave(t, "a guest with a forged id", r3.Expect("</failed>"), "<item-not-found")
}

// TestIntegrationAnonymousResumeDropAtOnce: a guest whose resumed stream drops before the
// attach completed keeps its account and session: the dropped stream detaches it again,
// and the next resume takes it.
func TestIntegrationAnonymousResumeDropAtOnce(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{Anonymous: true, ResumeTimeout: 30 * time.Second, RegisterLimit: 100})
	g, guest := guestLogin(t, srv)
	g.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	m := smEnabledID.FindStringSubmatch(g.Expect("<enabled") + g.Expect("/>"))
	if m == nil {
		t.Fatal("no resumption id")
	}
	g.Conn().Close()
	for i := range 30 {
		r := guestResume(t, srv, m[1], "0")
		mustHave(t, fmt.Sprintf("resume %d of %s", i, guest), r.Expect("/>"), "<resumed")
		r.Conn().Close() // before the attach has finished, often
	}
}

// TestIntegrationAnonymousResumeFails: a resume that takes a guest's account and then
// fails (an h beyond what was sent; a stream that drops while the old one still holds
// the session) leaves that account and its session alone: the next resume takes them.
func TestIntegrationAnonymousResumeFails(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{Anonymous: true, ResumeTimeout: 30 * time.Second})
	g, guest := guestLogin(t, srv)
	g.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	m := smEnabledID.FindStringSubmatch(g.Expect("<enabled") + g.Expect("/>"))
	if m == nil {
		t.Fatal("no resumption id")
	}
	resume := func(h string) *vireotest.RawConn { return guestResume(t, srv, m[1], h) }
	// The old stream still looks alive: the resume waits for it, and drops first.
	resume("0").Conn().Close()
	g.ExpectClosed()
	// An h beyond what was sent.
	mustHave(t, "a resume with a bad h", resume("4000000").ExpectClosed(), "handled-count-too-high")
	r := resume("0")
	mustHave(t, "the resume after the failed ones", r.Expect("/>"), "<resumed")
	if _, err := srv.Store.Accounts().Get(guest); err != nil {
		t.Fatalf("the guest's account after failed resumes: %v", err)
	}
	r.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	r.Expect("id='p'")
}

// TestIntegrationAnonymousHostClosedBeforeBind: a guest who authenticated before a reload
// took its host out of anonymous_domains, and binds after it, is still a guest: its
// account is not removed as one that never got a session, and goes when the session ends.
func TestIntegrationAnonymousHostClosedBeforeBind(t *testing.T) {
	defer engine.SetGuestBindWithin(time.Second)()
	srv := vireotest.Start(t, vireotest.Options{Anonymous: true})
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send(anonAuth)
	r.Expect("<success")
	cfg := srv.Engine.Config()
	cfg.AnonymousDomains = nil
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	bm := boundJID.FindStringSubmatch(r.Expect("</iq>"))
	if bm == nil {
		t.Fatal("no JID in the bind result")
	}
	guest := strings.SplitN(bm[1], "/", 2)[0]
	time.Sleep(2 * time.Second) // past the bind deadline
	if _, err := srv.Store.Accounts().Get(guest); err != nil {
		t.Fatalf("the bound guest's account: %v", err)
	}
	r.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	r.Expect("id='p'")
	r.Send("</stream:stream>")
	r.ExpectClosed()
	waitGone(t, srv, guest)
}
