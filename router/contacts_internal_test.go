package router

import (
	"fmt"
	"testing"
)

// TestContactPresenceBounded: what is remembered of other servers' contacts is bounded. A
// contact's resources past maxSeenPerContact, and anything past maxContactsSeen once the
// stale entries are gone, are passed on but not remembered; an unavailable presence
// within the grace is still recognised as a copy.
func TestContactPresenceBounded(t *testing.T) {
	var c contactPresence
	const now = 1_800_000_000
	pres := func(s string) []byte { return []byte("<presence from='" + s + "'/>") }
	for i := range maxSeenPerContact + 5 {
		full := fmt.Sprintf("mallory@evil.example/r%d", i)
		if !c.note(full, "mallory@evil.example", pres(full), false, now) {
			t.Fatalf("resource %d not passed on", i)
		}
	}
	if len(c.last) != maxSeenPerContact || c.perBare["mallory@evil.example"] != maxSeenPerContact {
		t.Fatalf("%d remembered, %d counted", len(c.last), c.perBare["mallory@evil.example"])
	}
	// A copy of a remembered presence is not news; of one past the bound it is.
	if c.note("mallory@evil.example/r0", "mallory@evil.example", pres("mallory@evil.example/r0"), false, now) {
		t.Fatal("a copy passed on again")
	}
	// Many contacts: at maxContactsSeen the ones unchanged for a day go first.
	for i := range maxContactsSeen - maxSeenPerContact {
		full := fmt.Sprintf("c%d@example.net/pc", i)
		c.note(full, fmt.Sprintf("c%d@example.net", i), pres(full), false, now-contactStale-1)
	}
	if !c.note("bob@example.net/pc", "bob@example.net", pres("bob@example.net/pc"), false, now) {
		t.Fatal("bob not passed on")
	}
	if _, ok := c.last["bob@example.net/pc"]; !ok || len(c.last) != maxSeenPerContact+1 {
		t.Fatalf("after the sweep: %d remembered; bob: %v", len(c.last), ok)
	}
	if len(c.perBare) != 2 {
		t.Fatalf("%d contacts counted", len(c.perBare))
	}
}
