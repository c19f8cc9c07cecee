package main

import (
	"runtime"
	"testing"
)

func TestEventLoops(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct {
		procs, n        int
		spare           bool
		loops, newProcs int
	}{
		{procs: 2, n: 0, loops: 2, newProcs: 2},                 // the default: a loop per processor
		{procs: 2, n: 0, spare: true, loops: 2, newProcs: 3},    // federation or links: one more processor
		{procs: 1, n: 0, spare: true, loops: 1, newProcs: 2},    //
		{procs: 2, n: 1, loops: 1, newProcs: 2},                 // fewer loops, by choice
		{procs: 2, n: 1, spare: true, loops: 1, newProcs: 2},    // the spare is there already
		{procs: 8, n: 3, spare: true, loops: 3, newProcs: 8},    //
		{procs: 4, n: 16, loops: 16, newProcs: 4},               // more loops than processors
		{procs: 4, n: 16, spare: true, loops: 16, newProcs: 17}, //
	} {
		runtime.GOMAXPROCS(tc.procs)
		if got := eventLoops(tc.n, tc.spare); got != tc.loops {
			t.Errorf("procs %d, event_loops %d, spare %v: %d loops, want %d", tc.procs, tc.n, tc.spare, got, tc.loops)
		}
		if got := runtime.GOMAXPROCS(0); got != tc.newProcs {
			t.Errorf("procs %d, event_loops %d, spare %v: GOMAXPROCS %d, want %d", tc.procs, tc.n, tc.spare, got, tc.newProcs)
		}
	}
}
