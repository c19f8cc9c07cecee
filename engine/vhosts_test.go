package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// vhostHeader opens a stream to host on a new connection to srv and returns it with the
// features.
func vhostHeader(t *testing.T, srv *vireotest.Server, host string) (*vireotest.RawConn, string) {
	t.Helper()
	r := srv.DialTLS(t)
	r.Send(strings.Replace(srv.Header(), "to='localhost'", "to='"+host+"'", 1))
	return r, r.Expect("</stream:features>")
}

func registerInBand(r *vireotest.RawConn, id, user, pw string) string {
	r.Send("<iq type='set' id='" + id + "'><query xmlns='jabber:iq:register'><username>" + user +
		"</username><password>" + pw + "</password></query></iq>")
	got := r.Expect("id='" + id + "'")
	if strings.Contains(got[strings.LastIndex(got, "<iq"):], "type='error'") {
		return got + r.Expect("</iq>")
	}
	return got
}

// TestIntegrationVHostRegistration: per-host settings ([vhosts]) open registration on
// one host of a server where it is closed, ask one host's registrations for a CAPTCHA,
// and bound the accounts users make on a host; the operator's accounts are not refused.
func TestIntegrationVHostRegistration(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, RegisterLimit: 100})
	cfg := srv.Engine.Config()
	cfg.Domains = []string{"localhost", "open.localhost"}
	cfg.Registration = false
	cfg.Hosts = map[string]engine.HostPolicy{"open.localhost": {Registration: true, MaxAccounts: 2}}
	if err := srv.Router.SetDomains(cfg.Domains); err != nil {
		t.Fatal(err)
	}
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time from the cached forms
		_, f := vhostHeader(t, srv, "localhost")
		mustNotHave(t, "features of the closed host", f, "iq-register'/>")
		_, f = vhostHeader(t, srv, "open.localhost")
		mustHave(t, "features of the open host", f, "<register xmlns='http://jabber.org/features/iq-register'/>")
	}
	r, _ := vhostHeader(t, srv, "localhost")
	r.Send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>nope</username><password>pw</password></query></iq>")
	r.ExpectClosed()
	if _, err := srv.Store.Accounts().Get("nope@localhost"); err == nil {
		t.Fatal("an account registered in-band on the closed host")
	}
	if open, domains, _ := srv.Engine.SignupSettings("192.0.2.1"); !open || strings.Join(domains, " ") != "open.localhost" {
		t.Fatalf("sign-up page: open %v, hosts %v; want open.localhost only", open, domains)
	}
	if _, err := srv.Engine.RegisterOpen("localhost", "webnope", "a long password", "192.0.2.1"); err == nil {
		t.Fatal("the sign-up page made an account on the closed host")
	}

	// Two accounts fit on open.localhost: one in-band, one on the page.
	r, _ = vhostHeader(t, srv, "open.localhost")
	if got := registerInBand(r, "r1", "ann", "ann's pw"); !strings.Contains(got, "type='result'") {
		t.Fatalf("the first registration: %q", got)
	}
	if _, err := srv.Engine.RegisterOpen("open.localhost", "ben", "ben's long pw", "192.0.2.1"); err != nil {
		t.Fatalf("the second account, on the page: %v", err)
	}
	r, _ = vhostHeader(t, srv, "open.localhost")
	got := registerInBand(r, "r2", "cat", "cat's pw")
	mustHave(t, "a third registration", got, "type='error'", "<not-allowed", "no more accounts on open.localhost")
	if _, err := srv.Engine.RegisterOpen("open.localhost", "dan", "dan's long pw", "192.0.2.1"); !errors.Is(err, engine.ErrHostFull) {
		t.Fatalf("a third account on the page: %v, want ErrHostFull", err)
	}
	for _, u := range []string{"cat@open.localhost", "dan@open.localhost"} {
		if _, err := srv.Store.Accounts().Get(u); err == nil {
			t.Fatalf("%s was made beyond the bound", u)
		}
	}
	// A user that leaves frees a place at once.
	ann, _ := vhostHeader(t, srv, "open.localhost")
	ann.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + plainResponse("ann", "ann's pw") + "</auth>")
	ann.Expect("<success")
	ann.Send(strings.Replace(srv.Header(), "to='localhost'", "to='open.localhost'", 1))
	ann.Expect("</stream:features>")
	ann.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	ann.Expect("</iq>")
	ann.Send("<iq type='set' id='bye'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	ann.Expect("id='bye'")
	r, _ = vhostHeader(t, srv, "open.localhost")
	if got := registerInBand(r, "r3", "cat", "cat's pw"); !strings.Contains(got, "type='result'") {
		t.Fatalf("a registration after a user left: %q", got)
	}

	// A reload raises the bound, and asks the host's registrations for a CAPTCHA.
	cfg.Hosts = map[string]engine.HostPolicy{"open.localhost": {Registration: true, RegistrationCaptcha: true, MaxAccounts: 10}}
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	r, _ = vhostHeader(t, srv, "open.localhost")
	if got := registerInBand(r, "r4", "dan", "dan's pw"); !strings.Contains(got, "<not-allowed") {
		t.Fatalf("a registration without the CAPTCHA: %q", got)
	}
	if _, ch := captchaGet(t, srv, r, "g1"); ch == "" {
		t.Fatal("no CAPTCHA on the host that asks for one")
	}
	if open, _, captcha := srv.Engine.SignupSettings("192.0.2.1"); !open || !captcha {
		t.Fatalf("sign-up page: open %v, captcha %v; want both", open, captcha)
	}
}

// TestIntegrationVHostFederation: a reload that takes a host off federation closes the
// streams it had, and then the host neither reaches other servers nor is reached by them;
// another reload puts it back.
func TestIntegrationVHostFederation(t *testing.T) {
	a, b := federatedWith(t, nil, nil)
	alice := a.LoginPlain(t, "alice", "secret", "r")
	alice.Send("<presence/>")
	alice.Expect("<presence")
	bob := b.LoginPlain(t, "bob", "secret", "r")
	bob.Send("<presence/>")
	bob.Expect("<presence")
	alice.Send("<message to='bob@b.localhost' type='chat' id='m1'><body>out 1</body></message>")
	mustHave(t, "bob, while a.localhost federates", bob.Expect("</message>"), "out 1")
	bob.Send("<message to='alice@a.localhost' type='chat' id='m2'><body>in 1</body></message>")
	mustHave(t, "alice, while a.localhost federates", alice.Expect("</message>"), "in 1")

	cfg := a.Engine.Config()
	cfg.Hosts = map[string]engine.HostPolicy{"a.localhost": {NoFederation: true}}
	if err := a.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	waitS2S(t, a, 10*time.Second, "streams closed by the reload", func(c []engine.S2SConn) bool { return len(c) == 0 })
	waitS2S(t, b, 10*time.Second, "streams closed by the peer", func(c []engine.S2SConn) bool { return len(c) == 0 })
	alice.Send("<message to='bob@b.localhost' type='chat' id='m3'><body>out 2</body></message>")
	mustHave(t, "a message out of a host off federation", alice.Expect("</message>"),
		"type='error'", "id='m3'", "<not-allowed", "does not federate")
	bob.Never("out 2")
	bob.Send("<message to='alice@a.localhost' type='chat' id='m4'><body>in 2</body></message>")
	mustHave(t, "a message to a host off federation", bob.Expect("</message>"), "type='error'", "id='m4'")
	alice.Never("in 2")
	if c := a.Engine.S2SConns(); len(c) != 0 {
		t.Fatalf("streams to or from a host off federation: %+v", c)
	}

	cfg.Hosts = nil
	if err := a.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	alice.Send("<message to='bob@b.localhost' type='chat' id='m5'><body>out 3</body></message>")
	mustHave(t, "bob, once a.localhost federates again", bob.Expect("</message>"), "out 3")
}

// vhostLogin logs user in on host with PLAIN and binds, after available presence.
func vhostLogin(t *testing.T, srv *vireotest.Server, host, user, pw string) *vireotest.RawConn {
	t.Helper()
	r, _ := vhostHeader(t, srv, host)
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + plainResponse(user, pw) + "</auth>")
	r.Expect("<success")
	r.Send(strings.Replace(srv.Header(), "to='localhost'", "to='"+host+"'", 1))
	r.Expect("</stream:features>")
	r.Send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	r.Expect("</iq>")
	r.Send("<presence/>")
	r.Expect("<presence")
	return r
}

// TestIntegrationVHostIsolated: the users of an isolated host reach each other and their
// host's services, and nothing on the server's other host, either way, nor its rooms;
// a reload lifts the wall.
func TestIntegrationVHostIsolated(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	cfg := srv.Engine.Config()
	cfg.Domains = []string{"localhost", "corp.localhost"}
	cfg.Hosts = map[string]engine.HostPolicy{"corp.localhost": {Isolated: true}}
	if err := srv.Router.SetDomains(cfg.Domains); err != nil {
		t.Fatal(err)
	}
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	addOn := func(host, local string) {
		srv.AddUser(t, local, "secret") // local@localhost; the same keys serve on host
		if host != "localhost" {
			a, err := srv.Store.Accounts().Get(local + "@localhost")
			if err != nil {
				t.Fatal(err)
			}
			a.User = local + "@" + host
			if err := srv.Store.Accounts().Create(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	addOn("corp.localhost", "ann")
	addOn("corp.localhost", "cid")
	addOn("localhost", "pub")
	ann := vhostLogin(t, srv, "corp.localhost", "ann", "secret")
	cid := vhostLogin(t, srv, "corp.localhost", "cid", "secret")
	pub := vhostLogin(t, srv, "localhost", "pub", "secret")

	ann.Send("<message to='cid@corp.localhost' type='chat' id='in1'><body>inside</body></message>")
	mustHave(t, "a colleague", cid.Expect("</message>"), "inside")
	ann.Send("<message to='pub@localhost' type='chat' id='out1'><body>over the wall</body></message>")
	mustHave(t, "out of the isolated host", ann.Expect("</message>"), "type='error'", "id='out1'", "<not-allowed", "closed community")
	pub.Never("over the wall")
	pub.Send("<message to='ann@corp.localhost' type='chat' id='in2'><body>knock knock</body></message>")
	mustHave(t, "into the isolated host", pub.Expect("</message>"), "type='error'", "id='in2'", "<not-allowed")
	ann.Never("knock knock")
	// The other host's room is out of reach; the isolated host's own is not.
	ann.Send("<presence to='lobby@conference.localhost/ann' id='j1'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	mustHave(t, "a room of the other host", ann.Expect("id='j1'"), "type='error'")
	ann.Send("<presence to='team@conference.corp.localhost/ann' id='j2'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	got := ann.Expect("id='j2'")
	mustNotHave(t, "a room of its own host", got[strings.LastIndex(got, "<presence"):], "type='error'")

	cfg.Hosts = nil
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ann.Send("<message to='pub@localhost' type='chat' id='out2'><body>wall is down</body></message>")
	mustHave(t, "after the reload", pub.Expect("</message>"), "wall is down")
}
