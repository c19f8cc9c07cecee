package main

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/config"
)

func TestMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	meminfo := write("meminfo", "MemTotal:       25165824 kB\nMemFree: 1 kB\n")
	v2 := filepath.Join(dir, "v2")
	write("v2/memory.max", "4294967296\n")
	v2max := filepath.Join(dir, "v2max")
	write("v2max/memory.max", "max\n")
	v1 := filepath.Join(dir, "v1")
	write("v1/memory/memory.limit_in_bytes", "2147483648\n")
	const none = int64(^uint64(0) >> 1)
	for _, tc := range []struct {
		setting, cgroup string
		want            int64
		from            string
	}{
		{"auto", v2, 4294967296 * 8 / 10, "cgroup"},
		{"", v1, 2147483648 * 8 / 10, "cgroup"},
		{"auto", v2max, 25165824 << 10 * 8 / 10, "physical memory"},
		{"auto", filepath.Join(dir, "none"), 25165824 << 10 * 8 / 10, "physical memory"},
		{"off", v2, none, "off"},
		{"12GiB", v2, 12 << 30, "config"},
		{"800 MB", v2, 800e6, "config"},
	} {
		got, from := memoryLimit(tc.setting, tc.cgroup, meminfo)
		// float rounding of the 80% share may differ by a byte
		if d := got - tc.want; d < -1 || d > 1 || from != tc.from {
			t.Errorf("%q on %s: %d from %s, want %d from %s", tc.setting, tc.cgroup, got, from, tc.want, tc.from)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"0", 0, false}, {"1500", 1500, false}, {"512MiB", 512 << 20, false}, {"2 GB", 2e9, false},
		{"8gib", 8 << 30, false}, {"1TiB", 1 << 40, false},
		{"", 0, true}, {"lots", 0, true}, {"-5MiB", 0, true}, {"5 parsecs", 0, true}, {"99999999999TiB", 0, true},
	} {
		got, err := config.ParseBytes(tc.in)
		if (err != nil) != tc.bad || !tc.bad && got != tc.want {
			t.Errorf("%q: %d, %v", tc.in, got, err)
		}
	}
}

func TestFloorPercent(t *testing.T) {
	const MiB = 1 << 20
	for _, tc := range []struct {
		name           string
		base           int
		headroom, live int64
		want           int
	}{
		{"off", 50, 0, 2 * MiB, 50},
		{"collection by percentage off", -1, 32 * MiB, 2 * MiB, -1},
		// 32 MiB over 2 MiB would be 1600%, but the runtime's 4 MiB × GOGC/100 minimum
		// would then put the goal at 64 MiB: capped at (2+32)/4 = 850%.
		{"idle server", 50, 32 * MiB, 2 * MiB, 850},
		{"below the runtime's own state", 50, 32 * MiB, 1000, 820},
		{"16 MiB live", 50, 32 * MiB, 16 * MiB, 200},
		{"rounded down", 50, 32 * MiB, 30 * MiB, 100},
		{"percentage rules", 50, 32 * MiB, 64 * MiB, 50},
		{"large heap", 50, 32 * MiB, 8 << 30, 50},
		{"larger base", 200, 32 * MiB, 20 * MiB, 200},
	} {
		if got := floorPercent(tc.base, tc.headroom, tc.live); got != tc.want {
			t.Errorf("%s: floorPercent(%d, %d, %d) = %d, want %d", tc.name, tc.base, tc.headroom, tc.live, got, tc.want)
		}
	}
}

// TestGCFloorFollowsCollections: once armed, every collection sets the percentage for the
// live heap it marked, and turning the floor off gives the configured one back.
func TestGCFloorFollowsCollections(t *testing.T) {
	gogc := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	// A test that ran the server's start before this one armed the process's floor, whose
	// cleanups would set their own percentage after every collection below (CI saw GOGC
	// 390 where this floor gave 50). Disarmed, its pending cleanup finds nothing to change
	// and does not re-arm.
	floor.set(100, 0)
	var f gcFloor
	waitFor := func(what string, ok func(uint64) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			runtime.GC()
			if ok(gogc()) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: GOGC %d", what, gogc())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	f.set(50, 64<<20)
	waitFor("with a 64 MiB floor over a test binary's heap", func(p uint64) bool { return p > 100 })
	// A live heap of ~256 MiB: the percentage rules again.
	keep := make([][]byte, 256)
	for i := range keep {
		keep[i] = make([]byte, 1<<20)
	}
	waitFor("with 256 MiB live", func(p uint64) bool { return p == 50 })
	runtime.KeepAlive(keep)
	keep = nil
	waitFor("after it is freed", func(p uint64) bool { return p > 100 })
	f.set(50, 0)
	waitFor("floor off", func(p uint64) bool { return p == 50 })
}
