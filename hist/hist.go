// Package hist is a fixed-bucket latency histogram cheap enough for hot paths: Observe is
// a few compares and two uncontended atomic adds, with no lock and no allocation. Give
// each writer (a router shard, the store) its own H and sum them at scrape time, so no
// cache line is shared between writers.
package hist

import (
	"sync/atomic"
	"time"
)

// Bounds are the upper bounds of the buckets, in seconds, of every histogram: from 5 µs
// (a stanza routed between two shards of an idle server) to 2.5 s (an fsync on a
// struggling disk), about three per decade.
var Bounds = [...]float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
	1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5}

// NBuckets is the number of buckets: one per bound and one above the last.
const NBuckets = len(Bounds) + 1

var boundsNS = func() (b [len(Bounds)]int64) {
	for i, s := range Bounds {
		b[i] = int64(s * 1e9)
	}
	return b
}()

// H is one histogram. Observe is safe for concurrent use, and cheapest with one writer.
type H struct {
	counts [NBuckets]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// Observe records d.
func (h *H) Observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(boundsNS) && ns > boundsNS[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(ns)
}

// Snapshot is a histogram's counts at one moment: per bucket, not cumulative.
type Snapshot struct {
	Counts [NBuckets]uint64
	Sum    time.Duration
}

// AddTo adds h's current counts to s. Safe for concurrent use with Observe; the counts
// read are each exact, not a single instant's.
func (h *H) AddTo(s *Snapshot) {
	for i := range h.counts {
		s.Counts[i] += h.counts[i].Load()
	}
	s.Sum += time.Duration(h.sum.Load())
}

// Count is the number of observations.
func (s *Snapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Cumulative returns the count of observations at or below each bound, keyed by the bound
// in seconds, as Prometheus histograms want them.
func (s *Snapshot) Cumulative() map[float64]uint64 {
	m := make(map[float64]uint64, len(Bounds))
	var n uint64
	for i, b := range Bounds {
		n += s.Counts[i]
		m[b] = n
	}
	return m
}
