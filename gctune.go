package main

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

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
		debug.SetGCPercent(pct)
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
