package engine_test

import (
	"testing"

	msasl "mellium.im/sasl"

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
