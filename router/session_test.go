package router

import (
	"math"
	"testing"
	"time"
	"unsafe"
)

func TestSessionValues(t *testing.T) {
	type k1 struct{}
	type k2 struct{}
	var s Session
	if s.Value(k1{}) != nil {
		t.Fatal("value before set")
	}
	s.SetValue(k1{}, "a")
	s.SetValue(k2{}, 2)
	s.SetValue(k1{}, "b")
	if s.Value(k1{}) != "b" || s.Value(k2{}) != 2 || len(s.values) != 2 {
		t.Fatalf("values %v", s.values)
	}
	s.SetValue(k1{}, nil)
	if s.Value(k1{}) != nil || s.Value(k2{}) != 2 || len(s.values) != 1 {
		t.Fatalf("after delete %v", s.values)
	}
	s.SetValue(k1{}, nil) // deleting what is not there is a no-op
	if len(s.values) != 1 {
		t.Fatalf("after second delete %v", s.values)
	}
}

// TestChargeCreditedMeanwhile: a stanza takes the session over its in-flight bound, and
// before the mark is set every earlier stanza is done and credited (the submitting
// goroutine was preempted). Those credits saw nothing to resume; a mark set now would
// hold the client's input with nothing left to lift it.
func TestChargeCreditedMeanwhile(t *testing.T) {
	const limit = 100
	s := &Session{}
	s.charge(60, limit) // in flight, under the bound
	hook := func() { s.credit(60, limit) }
	testHookCharge.Store(&hook)
	s.charge(50, limit) // 110 > 100; the 60 are credited before the mark
	testHookCharge.Store(nil)
	if s.Blocked() {
		t.Fatalf("blocked with %d bytes in flight and no credit to come but this stanza's", s.inflight.Load())
	}
	// Without the race the bound still holds.
	s.charge(60, limit)
	if !s.Blocked() {
		t.Fatalf("not blocked with %d bytes in flight over a bound of %d", s.inflight.Load(), limit)
	}
}

// TestSpend: the sender's token bucket. A fresh session has the whole burst; what goes
// past it is owed and repaid at the rate; time refills it up to the burst, never beyond;
// the clock may wrap.
func TestSpend(t *testing.T) {
	const rate, burst = 1000, 4000 // bytes a second, bytes
	var s Session
	s.rateTokens.Store(math.MaxInt32)
	steps := []struct {
		n    int64
		now  uint32 // ms
		wait time.Duration
	}{
		{3000, 10, 0},                      // 1000 left
		{1500, 10, 500 * time.Millisecond}, // 500 owed
		{0, 510, 0},                        // repaid after 0.5 s
		{100, 100_000, 0},                  // an idle minute and more: full again, 3900 left
		{4000, 100_000, 100 * time.Millisecond},
		{0, math.MaxUint32, 0}, // the clock wraps
		{4000, 500, 0},         // 4 294 968 ms later (mod 2^32): full
	}
	for i, st := range steps {
		if got := s.spend(st.n, rate, burst, st.now); got != st.wait {
			t.Fatalf("step %d (%d bytes at %d ms): wait %v, want %v (tokens %d)", i, st.n, st.now, got, st.wait, s.rateTokens.Load())
		}
	}
}

// TestSessionSize: the shaping fields sit in what was padding: a session is no bigger.
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(Session{}); n > 144 {
		t.Fatalf("Session is %d bytes, was 144", n)
	}
}
