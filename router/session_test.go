package router

import "testing"

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
