package main

import (
	"os"
	"path/filepath"
	"testing"

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
