package engine

import (
	"testing"

	"github.com/vireo-im/vireo/store/creds"
)

// TestAbsentAccountCost: a PLAIN login for a name without an account costs the key
// derivation of a new account's credentials, so that its time does not tell the names
// that exist from those that do not.
func TestAbsentAccountCost(t *testing.T) {
	if c := absentAccount(); c.Iter != creds.DefaultIter {
		t.Fatalf("absent account derived with %d iterations, new accounts get %d", c.Iter, creds.DefaultIter)
	}
}
