package main

import (
	"runtime"
	"testing"
)

func TestEventLoops(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct {
		procs, n        int
		loops, newProcs int
	}{
		{procs: 2, n: 0, loops: 1, newProcs: 2},    // the default leaves one processor spare
		{procs: 8, n: 0, loops: 7, newProcs: 8},    //
		{procs: 1, n: 0, loops: 1, newProcs: 2},    // one processor: a spare is added
		{procs: 2, n: 2, loops: 2, newProcs: 3},    // a loop per processor, by choice
		{procs: 8, n: 3, loops: 3, newProcs: 8},    // fewer loops: nothing to add
		{procs: 4, n: 16, loops: 16, newProcs: 17}, // more loops than processors
	} {
		runtime.GOMAXPROCS(tc.procs)
		if got := eventLoops(tc.n); got != tc.loops {
			t.Errorf("procs %d, event_loops %d: %d loops, want %d", tc.procs, tc.n, got, tc.loops)
		}
		if got := runtime.GOMAXPROCS(0); got != tc.newProcs {
			t.Errorf("procs %d, event_loops %d: GOMAXPROCS %d, want %d", tc.procs, tc.n, got, tc.newProcs)
		}
	}
}
