package main

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine/config"
)

// autoMemoryShare is the part of the machine's (or cgroup's) memory that "auto" gives the
// Go runtime: the kernel's socket buffers and page cache for Pebble need the rest.
const autoMemoryShare = 0.8

// tuneGC applies [runtime] to the Go collector, at start and on reload. GOMEMLIMIT and GOGC
// in the environment are the operator's explicit choice and are left alone.
func tuneGC(rt config.Runtime, log zerolog.Logger) {
	if os.Getenv("GOGC") == "" {
		pct := rt.GCPercent
		if pct == 0 {
			pct = 100
		}
		headroom, _ := config.ParseBytes(rt.GCMinHeadroom) // validated at load
		floor.set(pct, headroom)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit, source := memoryLimit(rt.MemoryLimit, "/sys/fs/cgroup", "/proc/meminfo")
	debug.SetMemoryLimit(limit)
	if limit > 0 && limit < 1<<62 {
		log.Debug().Int64("bytes", limit).Str("from", source).Msg("go memory limit")
	}
}

// memoryLimit resolves runtime.memory_limit to bytes (math.MaxInt64 for none).
func memoryLimit(setting, cgroupRoot, meminfo string) (int64, string) {
	const none = int64(^uint64(0) >> 1)
	switch s := strings.ToLower(strings.TrimSpace(setting)); s {
	case "off":
		return none, "off"
	case "", "auto":
		if n := cgroupLimit(cgroupRoot); n > 0 {
			return int64(float64(n) * autoMemoryShare), "cgroup"
		}
		if n := memTotal(meminfo); n > 0 {
			return int64(float64(n) * autoMemoryShare), "physical memory"
		}
		return none, "unknown"
	default:
		n, err := config.ParseBytes(s)
		if err != nil || n == 0 {
			return none, "off" // validated at load; 0 means none
		}
		return n, "config"
	}
}

// cgroupLimit reads the memory limit of a cgroup v2 (memory.max) or v1
// (memory/memory.limit_in_bytes) hierarchy; 0 when there is none.
func cgroupLimit(root string) int64 {
	for _, f := range []string{root + "/memory.max", root + "/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's huge "unlimited"
			continue
		}
		return n
	}
	return 0
}

// memTotal reads MemTotal from /proc/meminfo, in bytes; 0 when unreadable.
func memTotal(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// floor is the collector's headroom floor (runtime.gc_min_headroom).
var floor gcFloor

// gcFloor keeps the heap growth allowed between collections at or above a number of bytes.
// GOGC is a percentage of the live heap, and a server with few sessions has almost none
// (~2 MiB): at 50% it collected after every megabyte allocated, every ~15 TLS logins, and
// the collector took a third of a login storm's CPU. After each collection it sets the
// percentage to what gives the floor over the live heap just marked, never below the
// configured one. From ~2× the floor of live heap on (tens of thousands of sessions at the
// default) the configured percentage rules alone.
type gcFloor struct {
	mu       sync.Mutex
	base     int   // configured percent; -1: collection by percentage is off
	headroom int64 // bytes; 0: no floor
	given    int   // the percent last given to the runtime
	armed    bool
}

func (f *gcFloor) set(base int, headroom int64) {
	f.mu.Lock()
	f.base, f.headroom = base, headroom
	arm := !f.armed && headroom > 0 && base >= 0
	if arm {
		f.armed = true
	}
	f.mu.Unlock()
	f.apply()
	if arm {
		f.arm()
	}
}

// arm runs apply once after the next collection, and from there after every one: a
// cleanup runs when the collector finds its object unreachable.
func (f *gcFloor) arm() {
	runtime.AddCleanup(new(gcMark), func(f *gcFloor) {
		f.apply()
		f.mu.Lock()
		again := f.headroom > 0 && f.base >= 0
		f.armed = again
		f.mu.Unlock()
		if again {
			f.arm()
		}
	}, f)
}

// gcMark is large enough to get its own allocation (cleanups do not run for objects that
// share a tiny block).
type gcMark struct{ _ [16]byte }

// apply gives the runtime the percentage for the live heap of the last collection.
func (f *gcFloor) apply() {
	f.mu.Lock()
	defer f.mu.Unlock()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}} // once per collection
	metrics.Read(sample)
	live := int64(0)
	if sample[0].Value.Kind() == metrics.KindUint64 {
		live = int64(sample[0].Value.Uint64())
	}
	pct := floorPercent(f.base, f.headroom, live)
	if pct != f.given {
		debug.SetGCPercent(pct)
		f.given = pct
	}
}

// floorPercent is the GOGC that lets the heap grow by max(base% of live, headroom) bytes
// before the next collection. The runtime also never collects below 4 MiB × GOGC/100
// (its heap minimum scales with the percentage), so the percentage is capped where that
// minimum would pass live + headroom. Rounded down to a multiple of 10 so that a live heap
// moving by a few bytes does not change it at every collection.
func floorPercent(base int, headroom, live int64) int {
	if base < 0 || headroom <= 0 {
		return base
	}
	if live < 1<<20 {
		live = 1 << 20 // the runtime's own state; never divide by ~0
	}
	pct := headroom * 100 / live
	if byMin := (live + headroom) * 100 / (4 << 20); pct > byMin {
		pct = byMin
	}
	pct -= pct % 10
	if pct <= int64(base) {
		return base
	}
	return int(pct)
}
