package blocking

import (
	"hash/maphash"
	"strconv"
	"testing"
	"unsafe"
)

// BenchmarkBlocksNobody is the per-stanza check for users whose lists are known, from
// every core at once, as the event loops and shard workers make it.
func BenchmarkBlocksNobody(b *testing.B) {
	m := new(Mod)
	m.known.seed = maphash.MakeSeed()
	users := make([]string, 1000)
	for i := range users {
		users[i] = "user" + strconv.Itoa(i) + "@example.org"
		m.known.set(users[i], true)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if !m.blocksNobody(users[i%len(users)]) {
				b.Fatal("a known empty list read as not empty")
			}
			i += 7
		}
	})
}

// TestKnownStripeSize: a stripe fills one cache line, so that two stripes' locks never
// share one.
func TestKnownStripeSize(t *testing.T) {
	if s := unsafe.Sizeof(knownStripe{}); s != 64 {
		t.Fatalf("knownStripe is %d bytes, want 64", s)
	}
}

// TestKnownListsBounded: a stripe that holds its share of knownMax starts over with the
// next user, so the set stays bounded however many users pass; get, set and forget agree.
func TestKnownListsBounded(t *testing.T) {
	var k knownLists
	k.seed = maphash.MakeSeed()
	full := k.stripe("alice")
	full.empty = map[string]bool{}
	for i := range knownMax / knownStripes {
		full.empty["filler"+strconv.Itoa(i)] = true
	}
	k.set("alice", false)
	if l := len(full.empty); l != 1 {
		t.Fatalf("a full stripe holds %d users after one more, want 1", l)
	}
	if e, ok := k.get("alice"); !ok || e {
		t.Fatalf("get after set = %v, %v", e, ok)
	}
	k.forget("alice")
	if _, ok := k.get("alice"); ok {
		t.Fatal("still known after forget")
	}
}
