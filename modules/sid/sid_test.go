package sid

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestIDOrder: ids made one after the other increase, in binary and in text, even when the
// clock stands still or steps back, and a millisecond that runs out of sequence numbers
// borrows the next one.
func TestIDOrder(t *testing.T) {
	last.Store(0)
	now := time.Date(2030, 1, 2, 3, 4, 5, 6e6, time.UTC)
	prev := Next(now)
	for i := 0; i < 70000; i++ {
		at := now
		if i == 100 {
			at = now.Add(-time.Hour) // a clock step back
		}
		id := Next(at)
		if bytes.Compare(id[:], prev[:]) <= 0 || id.String() <= prev.String() {
			t.Fatalf("id %d: %s not after %s", i, id, prev)
		}
		prev = id
	}
	if got := prev.Time(); got.Before(now.Add(time.Millisecond)) {
		t.Fatalf("70,000 ids in one millisecond end at %v, want a borrowed millisecond", got)
	}
	if pre := Next(time.Time{}); pre.Time().Before(now) || bytes.Compare(pre[:], prev[:]) <= 0 {
		t.Fatalf("an id for the zero time went back to %v", pre.Time())
	}
	later := Next(now.Add(time.Minute))
	if later.Time() != now.Add(time.Minute).Truncate(time.Millisecond) {
		t.Fatalf("Time() = %v", later.Time())
	}
	if f := IDFloor(now.Add(time.Minute)); bytes.Compare(f[:], later[:]) > 0 {
		t.Fatalf("IDFloor %x above an id of its millisecond %x", f, later)
	}
}

func TestParseID(t *testing.T) {
	id := Next(time.Now())
	s := id.String()
	if len(s) != IDLen {
		t.Fatalf("len(%q) = %d", s, len(s))
	}
	if got, ok := ParseID([]byte(s)); !ok || got != id {
		t.Fatalf("ParseID(%q) = %x %v", s, got, ok)
	}
	// The last character holds one bit of the id and four zero bits: set one of those.
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	alt := s[:IDLen-1] + string(alphabet[strings.IndexByte(alphabet, s[IDLen-1])|1])
	for _, bad := range []string{"", "x", s[:IDLen-1], s + "0", strings.ToUpper(s), s[:5] + "!" + s[6:], s[:5] + "i" + s[6:]} {
		if _, ok := ParseID([]byte(bad)); ok {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
	if _, ok := ParseID([]byte(alt)); ok {
		t.Errorf("non-canonical %q accepted", alt)
	}
}
