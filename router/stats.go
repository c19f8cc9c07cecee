package router

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/hist"
	"github.com/vireo-im/vireo/modules/module"
)

// Counters for metrics, kept per shard and summed when scraped (Router.Metrics): each is
// written by its shard's worker only, so an increment is an uncontended atomic add on a
// line no other shard writes, with no lock and no allocation.
//
// Routing latency is the time from Submit to the stanza's delivery into the recipient's
// Conn. A clock read costs about 40 ns on the 2-core VM the benchmarks run on, so timing
// every stanza (two reads) would add about 2 % to a delivered message's ~4 µs in
// BenchmarkChatDelivery/no-archive; one stanza in LatencySample carries its Submit time
// (op.t0) and is timed, the others carry 0 and cost one random number (about 12 ns).

// LatencySample is one in how many stanzas the routing latency histogram times.
const LatencySample = 64

// nKinds is the number of stanza kinds counted (module.KindMessage, KindPresence, KindIQ).
const nKinds = 3

// shardStats are one shard's counters, padded so that two shards' counters never share a
// cache line.
type shardStats struct {
	_   [64]byte
	in  [nKinds]atomic.Int64 // stanzas from local clients, by kind (outbound phase)
	out [nKinds]atomic.Int64 // stanzas handed to a session (its Conn, or its detached queue)
	// routed counts the stanzas this shard passed on to a local recipient's shard. It is
	// the shard's, not the router's: every message on every core would otherwise add to
	// one shared word.
	routed  atomic.Int64
	latency hist.H
	_       [64]byte
}

// clock is the base of op.t0: monotonic nanoseconds since the process started (0: not
// sampled).
var clock = time.Now()

func monoNow() int64 { return int64(time.Since(clock)) + 1 }

// sampleT0 returns the Submit time for a sampled stanza, 0 for the others.
func sampleT0() int64 {
	if rand.Uint32()%LatencySample != 0 {
		return 0
	}
	return monoNow()
}

// kindOfRaw is the kind of a serialized stanza from its first letter, for counting.
func kindOfRaw(raw []byte) (module.Kind, bool) {
	if len(raw) < 2 {
		return 0, false
	}
	switch raw[1] {
	case 'm':
		return module.KindMessage, true
	case 'p':
		return module.KindPresence, true
	case 'i':
		return module.KindIQ, true
	}
	return 0, false
}

// Metrics are the router's per-kind counters and its routing latency histogram.
type Metrics struct {
	// In counts stanzas from local clients and Out stanzas delivered to local sessions,
	// indexed by module.Kind (message, presence, iq).
	In, Out [nKinds]int64
	// Latency is the routing latency of the sampled stanzas (one in LatencySample).
	Latency hist.Snapshot
}

// Metrics sums the shards' counters. Safe for concurrent use; it takes no lock the
// shards take.
func (r *Router) Metrics() Metrics {
	var m Metrics
	for _, s := range r.shards {
		for k := 0; k < nKinds; k++ {
			m.In[k] += s.stats.in[k].Load()
			m.Out[k] += s.stats.out[k].Load()
		}
		s.stats.latency.AddTo(&m.Latency)
	}
	return m
}
