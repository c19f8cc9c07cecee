package engine_test

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"hash"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmpp"
	mjid "mellium.im/xmpp/jid"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
)

// TestIntegrationCompleteKeys: an account holding SCRAM-SHA-1 keys only (as Prosody and
// ejabberd export them) cannot use SCRAM-SHA-256, the mechanism modern clients pick; one
// PLAIN login gives it the keys of every hash, and SCRAM-SHA-256 then works with the same
// password while a wrong one still fails.
func TestIntegrationCompleteKeys(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	sha1OnlyAccount(t, srv, "mia", "old secret")
	partial := func() float64 {
		_, _, body := scrape(t, srv.WebAddr(), "")
		return metricValue(t, body, "vireo_accounts_partial_keys")
	}
	if n := partial(); n != 1 {
		t.Fatalf("vireo_accounts_partial_keys = %v, want 1", n)
	}
	if _, err := loginDirectTLS(t, srv, "mia", "old secret", "a", msasl.ScramSha256); err == nil {
		t.Fatal("SCRAM-SHA-256 worked without SHA-256 keys")
	}
	if _, err := loginDirectTLS(t, srv, "mia", "old secret", "b", msasl.ScramSha1); err != nil {
		t.Fatalf("SCRAM-SHA-1: %v", err)
	}
	srv.LoginPlain(t, "mia", "old secret", "c")
	acct, err := srv.Store.Accounts().Get("mia@localhost")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []store.Hash{store.SHA1, store.SHA256, store.SHA512} {
		if acct.Creds[h].IsZero() || acct.Creds[h].Iter != 4096 {
			t.Fatalf("hash %v: %+v", h, acct.Creds[h])
		}
	}
	if _, err := loginDirectTLS(t, srv, "mia", "old secret", "d", msasl.ScramSha256); err != nil {
		t.Fatalf("SCRAM-SHA-256 after the PLAIN login: %v", err)
	}
	if n := partial(); n != 0 {
		t.Fatalf("vireo_accounts_partial_keys = %v after the PLAIN login, want 0", n)
	}
	if _, err := loginDirectTLS(t, srv, "mia", "wrong", "e", msasl.ScramSha256); err == nil {
		t.Fatal("a wrong password worked")
	}
}

// TestIntegrationTailoredMechanisms: a client that names its account in the stream
// header's 'from' (RFC 6120 §4.7.1) is offered the SCRAM mechanisms that account has keys
// for, in SASL and SASL2, so an account imported with SCRAM-SHA-1 keys only logs in with
// a client that prefers SCRAM-SHA-256 (mellium, which picks the first of its list the
// server offers and does not retry). Anyone else sees the usual list, so the features tell
// nothing about accounts that do not exist; XEP-0474's hash covers the tailored list.
func TestIntegrationTailoredMechanisms(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	sha1OnlyAccount(t, srv, "mia", "old secret")
	srv.AddUser(t, "bob", "secret")
	header := func(from string) string {
		h := srv.Header()
		if from != "" {
			i := strings.LastIndex(h, " version=")
			h = h[:i] + " from='" + from + "'" + h[i:]
		}
		return h
	}
	full := []string{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}
	sha1Only := []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"}
	for _, tc := range []struct {
		from string
		want []string
	}{
		{"", full},
		{"mia@localhost", sha1Only},
		{"Mia@localhost/phone", sha1Only},
		{"bob@localhost", full},
		{"nobody@localhost", full},
		{"mia@elsewhere.example", full},
		{"localhost", full},
	} {
		t.Run("from="+tc.from, func(t *testing.T) {
			r := srv.DialTLS(t)
			r.Send(header(tc.from))
			features := r.Expect("</stream:features>")
			for _, list := range []*regexp.Regexp{mechListRe, sasl2ListRe} {
				m := list.FindStringSubmatch(features)
				if m == nil {
					t.Fatalf("no list in %s", features)
				}
				var got []string
				for _, x := range mechRe.FindAllStringSubmatch(m[1], -1) {
					got = append(got, x[1])
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s: mechanisms %v, want %v", list, got, tc.want)
				}
			}
		})
	}

	// SSDP over the tailored list, SASL and SASL2.
	for _, sasl2 := range []bool{false, true} {
		r := srv.DialTLS(t)
		r.Send(header("mia@localhost"))
		scramWithSSDP(t, r, r.Expect("</stream:features>"), sasl2, msasl.ScramSha1Plus, sha1.New, "mia", "old secret")
	}

	if err := loginStrongestFirst(t, srv, "mia", "old secret"); err != nil {
		t.Fatalf("mellium preferring SCRAM-SHA-256 on a SHA-1 account: %v", err)
	}
}

// loginStrongestFirst logs user in over direct TLS with mellium as Conversations chooses:
// the first of SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS and SCRAM-SHA-1 that
// the server offers, no retry. mellium names the account in the stream header's 'from'.
func loginStrongestFirst(t *testing.T, srv *vireotest.Server, user, pass string) error {
	t.Helper()
	ctx := vireotest.Context(t, 10*time.Second)
	conn, err := tls.Dial("tcp", srv.TLSAddr(), srv.ClientTLS())
	if err != nil {
		return err
	}
	defer conn.Close()
	origin := mjid.MustParse(user + "@" + srv.Domain() + "/m")
	s, err := xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", pass, msasl.ScramSha256Plus, msasl.ScramSha256, msasl.ScramSha1Plus, msasl.ScramSha1),
			xmpp.BindResource(),
		}}
	}))
	if err != nil {
		return err
	}
	return s.Close()
}

// TestIntegrationSCRAMUpgrade: XEP-0480. An account with SCRAM-SHA-1 keys only logs in
// with SCRAM-SHA-1 over SASL2 and asks for the SHA-256 and SHA-512 upgrades: the server
// checks the proof, then runs one task per missing hash (a fresh salt and the account's
// iteration count out, the SaltedPassword back, computed here with crypto/pbkdf2), stores
// the keys and only then sends <success/>. SCRAM-SHA-256 works afterwards with the same
// password; keys an account has are never replaced; bad task steps fail the login.
func TestIntegrationSCRAMUpgrade(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	sha1Keys := sha1OnlyAccount(t, srv, "mia", "old secret")
	sha1OnlyAccount(t, srv, "noah", "old secret")
	srv.AddUser(t, "bob", "secret")
	const upgrades = "<upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-256</upgrade>" +
		"<upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-512</upgrade><upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-BLOOP2</upgrade>"
	taskRe := regexp.MustCompile(`<continue xmlns='urn:xmpp:sasl:2'><additional-data>([^<]+)</additional-data><tasks><task>([^<]+)</task></tasks>`)
	saltRe := regexp.MustCompile(`<task-data xmlns='urn:xmpp:sasl:2'><salt xmlns='urn:xmpp:scram-upgrade:0' iterations='([0-9]+)'>([^<]+)</salt></task-data>`)

	// login runs SCRAM-SHA-1 over SASL2 asking for the upgrades, and returns the stream,
	// the client, and what followed the client's final message up to the first closing tag.
	login := func(t *testing.T, user, pass string) (*vireotest.RawConn, *msasl.Negotiator, string) {
		t.Helper()
		r := srv.DialTLS(t)
		r.Send(srv.Header())
		feats := r.Expect("</stream:features>")
		if !strings.Contains(feats, "<upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-256</upgrade>") {
			t.Fatalf("no upgrade task offered: %s", feats)
		}
		client := msasl.NewClient(msasl.ScramSha1, msasl.Credentials(func() ([]byte, []byte, []byte) {
			return []byte(user), []byte(pass), nil
		}))
		_, first, _ := client.Step(nil)
		r.Send(authenticate("SCRAM-SHA-1", base64.StdEncoding.EncodeToString(first), upgrades+userAgent(agentID)))
		m := saslTextRe.FindStringSubmatch(r.Expect("</challenge>"))
		serverFirst, _ := base64.StdEncoding.DecodeString(m[2])
		_, final, err := client.Step(serverFirst)
		if err != nil {
			t.Fatal(err)
		}
		r.Send("<response xmlns='urn:xmpp:sasl:2'>" + base64.StdEncoding.EncodeToString(final) + "</response>")
		got := r.Expect("</")
		return r, client, got + r.Expect(">")
	}
	// task answers one <continue/>: it checks the server's signature and the task name,
	// sends <next/>, and answers the salt with the SaltedPassword of the task's hash.
	task := func(t *testing.T, r *vireotest.RawConn, client *msasl.Negotiator, got, want string, h func() hash.Hash, pass string) {
		t.Helper()
		got += r.Expect("</continue>")
		m := taskRe.FindStringSubmatch(got)
		if m == nil || m[2] != want {
			t.Fatalf("want a continue with task %s, got %q", want, got)
		}
		if want == "UPGR-SCRAM-SHA-256" { // the first: check the SCRAM server signature
			sig, _ := base64.StdEncoding.DecodeString(m[1])
			if _, _, err := client.Step(sig); err != nil {
				t.Fatalf("server signature in continue: %v", err)
			}
		}
		r.Send("<next xmlns='urn:xmpp:sasl:2' task='" + want + "'/>")
		s := saltRe.FindStringSubmatch(r.Expect("</task-data>"))
		if s == nil || s[1] != "4096" {
			t.Fatalf("salt: %v", s)
		}
		salt, _ := base64.StdEncoding.DecodeString(s[2])
		salted, err := pbkdf2.Key(h, pass, salt, 4096, h().Size())
		if err != nil {
			t.Fatal(err)
		}
		r.Send("<task-data xmlns='urn:xmpp:sasl:2'><hash xmlns='urn:xmpp:scram-upgrade:0'>" +
			base64.StdEncoding.EncodeToString(salted) + "</hash></task-data>")
	}

	if _, err := loginDirectTLS(t, srv, "mia", "old secret", "x", msasl.ScramSha256); err == nil {
		t.Fatal("SCRAM-SHA-256 worked before the upgrade")
	}
	r, client, got := login(t, "mia", "old secret")
	task(t, r, client, got, "UPGR-SCRAM-SHA-256", sha256.New, "old secret")
	task(t, r, client, r.Expect("</")+r.Expect(">"), "UPGR-SCRAM-SHA-512", sha512.New, "old secret")
	if done := r.Expect("</success>"); !strings.Contains(done, "<authorization-identifier>mia@localhost</authorization-identifier>") {
		t.Fatalf("success: %q", done)
	}
	acct, err := srv.Store.Accounts().Get("mia@localhost")
	if err != nil {
		t.Fatal(err)
	}
	if !creds.VerifyPlain(acct.Creds[store.SHA512], store.SHA512, "old secret") || acct.Creds[store.SHA512].Iter != 4096 {
		t.Fatalf("SHA-512 keys after the upgrade: %+v", acct.Creds[store.SHA512])
	}
	if !bytes.Equal(acct.Creds[store.SHA1].StoredKey, sha1Keys.StoredKey) {
		t.Fatal("the SHA-1 keys changed")
	}
	if _, err := loginDirectTLS(t, srv, "mia", "old secret", "y", msasl.ScramSha256Plus); err != nil {
		t.Fatalf("SCRAM-SHA-256-PLUS after the upgrade: %v", err)
	}

	t.Run("account with every hash: no task", func(t *testing.T) {
		before, _ := srv.Store.Accounts().Get("bob@localhost")
		_, _, got := login(t, "bob", "secret")
		if !strings.HasPrefix(got, "<success") {
			t.Fatalf("want success at once, got %q", got)
		}
		after, _ := srv.Store.Accounts().Get("bob@localhost")
		if !bytes.Equal(before.Creds[store.SHA256].Salt, after.Creds[store.SHA256].Salt) {
			t.Fatal("bob's keys were replaced")
		}
	})
	t.Run("wrong password: no task", func(t *testing.T) {
		_, _, got := login(t, "noah", "wrong")
		if !strings.HasPrefix(got, "<failure") || !strings.Contains(got, "not-authorized") {
			t.Fatalf("want not-authorized, got %q", got)
		}
	})
	for _, tc := range []struct{ name, send, want string }{
		{"next for another task", "<next xmlns='urn:xmpp:sasl:2' task='UPGR-SCRAM-SHA-512'/>", "<malformed-request"},
		{"task-data before next", "<task-data xmlns='urn:xmpp:sasl:2'><hash xmlns='urn:xmpp:scram-upgrade:0'>AAAA</hash></task-data>", "<malformed-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _, got := login(t, "noah", "old secret")
			if !strings.HasPrefix(got, "<continue") {
				t.Fatalf("want continue, got %q", got)
			}
			r.Expect("</continue>")
			r.Send(tc.send)
			if f := r.Expect("</failure>"); !strings.Contains(f, tc.want) {
				t.Fatalf("want %s, got %q", tc.want, f)
			}
		})
	}
	t.Run("short hash", func(t *testing.T) {
		r, _, got := login(t, "noah", "old secret")
		r.Expect("</continue>")
		_ = got
		r.Send("<next xmlns='urn:xmpp:sasl:2' task='UPGR-SCRAM-SHA-256'/>")
		r.Expect("</task-data>")
		r.Send("<task-data xmlns='urn:xmpp:sasl:2'><hash xmlns='urn:xmpp:scram-upgrade:0'>AAAA</hash></task-data>")
		if f := r.Expect("</failure>"); !strings.Contains(f, "malformed-request") {
			t.Fatalf("got %q", f)
		}
		if acct, _ := srv.Store.Accounts().Get("noah@localhost"); !acct.Creds[store.SHA256].IsZero() {
			t.Fatal("keys stored from a bad hash")
		}
	})
	t.Run("not without TLS", func(t *testing.T) {
		plain := vireotest.Start(t, vireotest.Options{AllowPlain: true, RequireTLS: no()})
		sha1OnlyAccount(t, plain, "mia", "old secret")
		r := plain.Dial(t)
		r.Send(plain.Header())
		if feats := r.Expect("</stream:features>"); strings.Contains(feats, "urn:xmpp:sasl:upgrade:0") {
			t.Fatalf("upgrade tasks offered without TLS: %s", feats)
		}
		client := msasl.NewClient(msasl.ScramSha1, msasl.Credentials(func() ([]byte, []byte, []byte) {
			return []byte("mia"), []byte("old secret"), nil
		}))
		_, first, _ := client.Step(nil)
		r.Send(authenticate("SCRAM-SHA-1", base64.StdEncoding.EncodeToString(first), upgrades+userAgent(agentID)))
		m := saslTextRe.FindStringSubmatch(r.Expect("</challenge>"))
		serverFirst, _ := base64.StdEncoding.DecodeString(m[2])
		_, final, _ := client.Step(serverFirst)
		r.Send("<response xmlns='urn:xmpp:sasl:2'>" + base64.StdEncoding.EncodeToString(final) + "</response>")
		if got := r.Expect("</"); !strings.HasPrefix(got, "<success") {
			t.Fatalf("want success without a task over plain TCP, got %q", got)
		}
	})
	t.Run("authenticate after continue", func(t *testing.T) {
		// XEP-0388: once a task runs, a new exchange is a protocol error, not a restart.
		r, _, got := login(t, "noah", "old secret")
		if !strings.HasPrefix(got, "<continue") {
			t.Fatalf("want continue, got %q", got)
		}
		r.Expect("</continue>")
		r.Send(authenticate("PLAIN", plainResponse("noah", "old secret"), userAgent(agentID)))
		if e := r.ExpectClosed(); !strings.Contains(e, "policy-violation") || strings.Contains(e, "<success") {
			t.Fatalf("got %q", e)
		}
	})
	t.Run("next with no task", func(t *testing.T) {
		r := srv.DialTLS(t)
		r.Send(srv.Header())
		r.Expect("</stream:features>")
		r.Send("<next xmlns='urn:xmpp:sasl:2' task='UPGR-SCRAM-SHA-256'/>")
		if e := r.Expect("</stream:stream>"); !strings.Contains(e, "policy-violation") {
			t.Fatalf("got %q", e)
		}
	})
}

// sha1OnlyAccount creates local@localhost with SCRAM-SHA-1 keys only (4,096 iterations), as
// an import from Prosody or ejabberd leaves it, and returns the keys.
func sha1OnlyAccount(t *testing.T, srv *vireotest.Server, local, pass string) store.Credentials {
	t.Helper()
	k, err := creds.Derive(pass, store.SHA1, 4096)
	if err != nil {
		t.Fatal(err)
	}
	var keys [3]store.Credentials
	keys[store.SHA1] = k
	if err := srv.Store.Accounts().Create(store.Account{User: local + "@localhost", Creds: keys}); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestIntegrationFASTAfterKeyUpgrade: an imported account with SCRAM-SHA-1 keys only logs
// in with PLAIN over SASL2 and asks for a FAST token; the login gives it the missing keys,
// and the token it got is good for the next login (it was tied to the keys as they were
// before, and never worked).
func TestIntegrationFASTAfterKeyUpgrade(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	sha1OnlyAccount(t, srv, "mia", "old secret")
	a := srv.DialTLS(t)
	a.Send(srv.Header())
	a.Expect("</stream:features>")
	a.Send(authenticate("PLAIN", plainResponse("mia", "old secret"), userAgent(agentID)+
		"<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>"))
	tm := tokenRe.FindStringSubmatch(a.Expect("</success>"))
	if tm == nil {
		t.Fatal("no token")
	}
	if _, got := fastLogin(t, srv, "HT-SHA-256-NONE", "mia", tm[2], agentID, ""); !strings.HasPrefix(got, "<success") {
		t.Fatalf("the token's first login: %s", got)
	}
}
