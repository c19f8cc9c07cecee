package creds

import (
	"bytes"
	"testing"

	"github.com/vireo-im/vireo/store"
)

// TestPrepare: keys are derived from the OpaqueString form of a password (RFC 8265 §4.2),
// the form a SCRAM client hashes (RFC 5802 §2.2): a non-ASCII space becomes a space and
// the text is NFC. PLAIN accepts the password as typed, in any of its forms, and keys made
// before from an unprepared password keep working with it.
func TestPrepare(t *testing.T) {
	for _, tc := range []struct{ typed, prepared string }{
		{"pencil", "pencil"},
		{"pass\u00a0word", "pass word"},  // NO-BREAK SPACE
		{"caf\u0065\u0301", "caf\u00e9"}, // NFD to NFC
		{"tab\there", "tab\there"},       // refused by the profile: kept as typed
		{"\u2163", "\u2163"},             // ROMAN NUMERAL FOUR: NFC keeps it (no NFKC)
	} {
		if got := Prepare(tc.typed); got != tc.prepared {
			t.Errorf("Prepare(%q) = %q, want %q", tc.typed, got, tc.prepared)
		}
		c, err := Derive(tc.typed, store.SHA256, MinIter)
		if err != nil {
			t.Fatal(err)
		}
		// What a SCRAM client that prepared the password computes from the same salt.
		client, _ := deriveRaw(tc.prepared, store.SHA256, c.Salt, c.Iter)
		if !bytes.Equal(client.StoredKey, c.StoredKey) {
			t.Errorf("%q: keys are not those of the prepared password", tc.typed)
		}
		if !VerifyPlain(c, store.SHA256, tc.typed) || !VerifyPlain(c, store.SHA256, tc.prepared) {
			t.Errorf("%q: PLAIN refuses the password", tc.typed)
		}
		if VerifyPlain(c, store.SHA256, tc.typed+"x") {
			t.Errorf("%q: PLAIN takes another password", tc.typed)
		}
	}
	legacy, _ := deriveRaw("caf\u0065\u0301", store.SHA256, []byte("0123456789abcdef"), MinIter)
	if !VerifyPlain(legacy, store.SHA256, "caf\u0065\u0301") {
		t.Error("keys made from the unprepared password no longer verify")
	}
}

// TestIterBounds: keys are made with counts from MinIter to MaxIter only.
func TestIterBounds(t *testing.T) {
	for _, tc := range []struct {
		iter int
		ok   bool
	}{{MinIter - 1, false}, {MinIter, true}, {MaxIter + 1, false}} {
		if _, err := Derive("pw", store.SHA1, tc.iter); (err == nil) != tc.ok {
			t.Errorf("Derive with %d iterations: %v", tc.iter, err)
		}
	}
}
