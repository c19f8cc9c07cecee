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
