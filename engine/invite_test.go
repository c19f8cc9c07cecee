package engine_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/store/invites"
)

// TestIntegrationInvite: XEP-0401 invitations redeemed with XEP-0445 on a server whose
// registration is closed. The operator's invitation (admin op, as vireoctl invite makes
// it) for a reserved name: the stream offers urn:xmpp:ibr-token:0; without a token
// registration is not allowed, a wrong token is item-not-found, the right one opens
// registration for that name only (another name is not-acceptable, the form names the
// reserved one), the account logs in, and the token is spent. An invitation for the
// domain lets the invitee choose a name, but not one another invitation reserves.
func TestIntegrationInvite(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	b := adminBackend{srv}
	lines, err := admin.Invite(b, "create", "juliet@localhost", "", time.Hour)
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "xmpp:juliet@localhost?register;preauth=") {
		t.Fatalf("invite: %q %v", lines, err)
	}
	token := strings.TrimPrefix(lines[0], "xmpp:juliet@localhost?register;preauth=")
	if _, err := admin.Invite(b, "create", "juliet@localhost", "", 0); err == nil {
		t.Fatal("a second invitation reserved juliet")
	}
	if _, err := admin.Invite(b, "create", "x@elsewhere.example", "", 0); err == nil {
		t.Fatal("an invitation for a domain not served here")
	}

	// register answers the whole answer: an error's condition follows its id.
	register := func(r *vireotest.RawConn, id, user string) string {
		r.Send("<iq type='set' id='" + id + "'><query xmlns='jabber:iq:register'><username>" + user + "</username><password>balcony</password></query></iq>")
		got := r.Expect("id='" + id + "'")
		if strings.Contains(got[strings.LastIndex(got, "<iq"):], "type='error'") {
			got += r.Expect("</iq>")
		}
		return got
	}
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	feats := r.Expect("</stream:features>")
	if !strings.Contains(feats, "<register xmlns='urn:xmpp:ibr-token:0'/>") || strings.Contains(feats, "http://jabber.org/features/iq-register") {
		t.Fatalf("features of a closed server that takes invitations: %s", feats)
	}
	// Closed without a token: the request is not for an unauthenticated stream.
	r.Send("<iq type='set' id='pa0'><preauth xmlns='urn:xmpp:pars:0' token='wrong'/></iq>")
	if got := r.Expect("id='pa0'"); !strings.Contains(got, "type='error'") {
		t.Fatalf("a wrong token: %s", got)
	}
	r.Expect("item-not-found")
	r.Send("<iq type='set' id='pa1'><preauth xmlns='urn:xmpp:pars:0' token='" + token + "'/></iq>")
	if got := r.Expect("id='pa1'"); !strings.Contains(got, "type='result'") {
		t.Fatalf("the right token: %s", got)
	}
	r.Send("<iq type='get' id='form'><query xmlns='jabber:iq:register'/></iq>")
	r.Expect("<username>juliet</username>")
	if got := register(r, "reg0", "romeo"); !strings.Contains(got, "not-acceptable") {
		t.Fatalf("registered another name with juliet's invitation: %s", got)
	}
	if got := register(r, "reg1", "juliet"); !strings.Contains(got, "type='result'") {
		t.Fatalf("registration with the invitation: %s", got)
	}
	srv.LoginPlain(t, "juliet", "balcony", "phone")
	if _, err := invites.Check(srv.Store.Table(invites.Table), token, time.Now()); err == nil {
		t.Fatal("the token still works after its account was made")
	}

	// Without any token, a closed server takes no registration.
	r2 := srv.DialTLS(t)
	r2.Send(srv.Header())
	r2.Expect("</stream:features>")
	r2.Send("<iq type='set' id='reg2'><query xmlns='jabber:iq:register'><username>mallory</username><password>x</password></query></iq>")
	r2.Expect("</stream:error>")

	// A domain invitation: the invitee picks a name, but not a reserved one.
	lines, err = admin.Invite(b, "create", "localhost", "", 0)
	if err != nil || !strings.HasPrefix(lines[0], "xmpp:localhost?register;preauth=") {
		t.Fatalf("domain invite: %q %v", lines, err)
	}
	if _, err := admin.Invite(b, "create", "nurse@localhost", "", 0); err != nil {
		t.Fatal(err)
	}
	r3 := srv.DialTLS(t)
	r3.Send(srv.Header())
	r3.Expect("</stream:features>")
	r3.Send("<iq type='set' id='pa3'><preauth xmlns='urn:xmpp:pars:0' token='" + strings.TrimPrefix(lines[0], "xmpp:localhost?register;preauth=") + "'/></iq>")
	r3.Expect("type='result'")
	if got := register(r3, "reg3", "nurse"); !strings.Contains(got, "conflict") {
		t.Fatalf("took a name another invitation reserves: %s", got)
	}
	if got := register(r3, "reg4", "tybalt"); !strings.Contains(got, "type='result'") {
		t.Fatalf("registration of a free name: %s", got)
	}
	r3.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00tybalt\x00balcony")) + "</auth>")
	r3.Expect("<success")
	list, err := admin.Invite(b, "list", "", "", 0)
	if err != nil || len(list) != 1 || !strings.Contains(list[0], "nurse@localhost") {
		t.Fatalf("invitations left: %q %v", list, err)
	}

	// Two streams hold one token: one account is made with it, the other is refused.
	lines, err = admin.Invite(b, "create", "localhost", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimPrefix(lines[0], "xmpp:localhost?register;preauth=")
	var both [2]*vireotest.RawConn
	for i := range both {
		both[i] = srv.DialTLS(t)
		both[i].Send(srv.Header())
		both[i].Expect("</stream:features>")
		both[i].Send("<iq type='set' id='pa'><preauth xmlns='urn:xmpp:pars:0' token='" + tok + "'/></iq>")
		both[i].Expect("type='result'")
	}
	first, second := register(both[0], "t0", "benvolio"), register(both[1], "t1", "mercutio")
	if !strings.Contains(first, "type='result'") || !strings.Contains(second, "not-authorized") {
		t.Fatalf("one token, two registrations:\n%s\n%s", first, second)
	}
}

// TestIntegrationReservedNames: open registration, and an invitation that lets the
// invitee choose, refuse the operator's role names (in any case) and the configured
// administrators' accounts with not-acceptable; an invitation that names one, and the
// administrator, still create it.
func TestIntegrationReservedNames(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Registration: true, ReservedNames: []string{"admin", "postmaster"},
		AdminJIDs: []string{"boss@localhost"}})
	b := adminBackend{srv}
	register := func(user, token string) string {
		t.Helper()
		r := srv.DialTLS(t)
		r.Send(srv.Header())
		r.Expect("</stream:features>")
		if token != "" {
			r.Send("<iq type='set' id='pa'><preauth xmlns='urn:xmpp:pars:0' token='" + token + "'/></iq>")
			r.Expect("id='pa'")
		}
		r.Send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>" + user + "</username><password>pw of " + user + "</password></query></iq>")
		got := r.Expect("id='reg'")
		if strings.Contains(got[strings.LastIndex(got, "<iq"):], "type='error'") {
			got += r.Expect("</iq>")
		}
		return got
	}
	for _, name := range []string{"admin", "Admin", "POSTMASTER"} {
		if got := register(name, ""); !strings.Contains(got, "not-acceptable") || !strings.Contains(got, "reserved") {
			t.Fatalf("open registration of %s: %s", name, got)
		}
	}
	if got := register("alice", ""); !strings.Contains(got, "type='result'") {
		t.Fatalf("open registration of alice: %s", got)
	}
	lines, err := admin.Invite(b, "create", "localhost", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	anyName := lines[0][strings.Index(lines[0], "preauth=")+len("preauth="):]
	if got := register("admin", anyName); !strings.Contains(got, "not-acceptable") {
		t.Fatalf("an invitee choosing admin: %s", got)
	}
	// An administrator the configuration names, without an account yet: not a name
	// whoever comes first may take, in-band or with a host-wide invitation (a host's
	// administrator could make one and so become the server's).
	for _, tok := range []string{"", anyName} {
		if got := register("boss", tok); !strings.Contains(got, "not-acceptable") {
			t.Fatalf("registering a configured administrator (invitation %q): %s", tok, got)
		}
	}
	lines, err = admin.Invite(b, "create", "postmaster@localhost", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	named := lines[0][strings.Index(lines[0], "preauth=")+len("preauth="):]
	if got := register("postmaster", named); !strings.Contains(got, "type='result'") {
		t.Fatalf("the invitation naming postmaster: %s", got)
	}
	if err := admin.AddUser(b, "admin@localhost", "root pw", 0); err != nil {
		t.Fatalf("the administrator creating admin: %v", err)
	}
	srv.LoginPlain(t, "admin", "root pw", "x")
}

// TestPageBudgetPerIPv6Prefix: the registration budget (here spent by guessing reset
// tokens on the pages) is per IPv6 /64, as SASL failures are: a host that owns the
// prefix does not get a fresh budget with each of its addresses.
func TestPageBudgetPerIPv6Prefix(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, RegisterLimit: 3})
	for i := range 3 {
		if _, err := srv.Engine.ResetPassword("no-such-token", "new password", fmt.Sprintf("2001:db8::%x", i+1)); errors.Is(err, invites.ErrBudget) {
			t.Fatalf("attempt %d refused for the budget", i)
		}
	}
	if _, err := srv.Engine.ResetPassword("no-such-token", "new password", "2001:db8::ff"); !errors.Is(err, invites.ErrBudget) {
		t.Fatalf("a fourth address of the /64: %v", err)
	}
	if _, err := srv.Engine.ResetPassword("no-such-token", "new password", "2001:db8:0:1::1"); errors.Is(err, invites.ErrBudget) {
		t.Fatal("another /64 shares the budget")
	}
}
