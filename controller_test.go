package main

import "testing"

// TestControllerShutdown: an administrator's shutdown request reaches run's signal loop
// without blocking, and a second one while the first is pending is dropped.
func TestControllerShutdown(t *testing.T) {
	s := &server{stop: make(chan string, 1)}
	s.Shutdown("first")
	s.Shutdown("second") // must not block
	if got := <-s.stop; got != "first" {
		t.Fatalf("stop = %q", got)
	}
	select {
	case got := <-s.stop:
		t.Fatalf("a second request queued: %q", got)
	default:
	}
}
