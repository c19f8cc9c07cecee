package engine

import (
	"crypto/tls"
	"testing"
	"time"
)

func TestTicketKeysRotate(t *testing.T) {
	var k ticketKeys
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if !k.rotate(now) || len(k.keys) != 1 {
		t.Fatal("no first key")
	}
	first := k.keys[0]
	if k.rotate(now.Add(ticketKeyEvery - time.Second)) {
		t.Fatal("rotated within the day")
	}
	for i := 1; i <= 10; i++ {
		if !k.rotate(now.Add(time.Duration(i) * ticketKeyEvery)) {
			t.Fatalf("day %d: no rotation", i)
		}
		if len(k.keys) != min(i+1, ticketKeysKept) || k.keys[0] == first {
			t.Fatalf("day %d: %d keys", i, len(k.keys))
		}
		if i < ticketKeysKept && k.keys[i] != first {
			t.Fatalf("day %d: the first key is no longer the oldest", i)
		}
	}
	k.install(&tls.Config{}, nil) // nil configs are skipped
}
