package engine_test

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
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
	sha1, err := creds.Derive("old secret", store.SHA1, 4096)
	if err != nil {
		t.Fatal(err)
	}
	var keys [3]store.Credentials
	keys[store.SHA1] = sha1
	if err := srv.Store.Accounts().Create(store.Account{User: "mia@localhost", Creds: keys}); err != nil {
		t.Fatal(err)
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
	sha1Keys, err := creds.Derive("old secret", store.SHA1, 4096)
	if err != nil {
		t.Fatal(err)
	}
	var keys [3]store.Credentials
	keys[store.SHA1] = sha1Keys
	if err := srv.Store.Accounts().Create(store.Account{User: "mia@localhost", Creds: keys}); err != nil {
		t.Fatal(err)
	}
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

	// mellium sends 'from' and takes the first mechanism of its list that is offered.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tls.Dial("tcp", srv.TLSAddr(), srv.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	origin := mjid.MustParse("mia@" + srv.Domain() + "/m")
	s, err := xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", "old secret", msasl.ScramSha256Plus, msasl.ScramSha256, msasl.ScramSha1Plus, msasl.ScramSha1),
			xmpp.BindResource(),
		}}
	}))
	if err != nil {
		t.Fatalf("mellium preferring SCRAM-SHA-256 on a SHA-1 account: %v", err)
	}
	s.Close()
}
