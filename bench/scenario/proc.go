// Package scenario holds the load scenarios of the bench suite (idle density, login storm,
// one-to-one messaging, and the others bench/README.md lists, archive queries and the PEP
// storm among them) and the measurements they report: process memory and CPU from
// /proc, latency histograms, slopes. It drives loadgen sessions; it must not know which
// server it measures beyond its PID.
package scenario

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ProcStat is a sample of a process's memory and CPU.
type ProcStat struct {
	RSS  int64         `json:"rss_bytes"`
	PSS  int64         `json:"pss_bytes"`
	CPU  time.Duration `json:"cpu_ns"` // utime + stime
	Time time.Time     `json:"time"`
}

// clockTick is USER_HZ, 100 on every Linux we run on.
const clockTick = 100

// ReadProc samples /proc/pid. pid 0 means this process.
func ReadProc(pid int) (ProcStat, error) {
	p := procDir(pid)
	var s ProcStat
	s.Time = time.Now()
	st, err := os.ReadFile(p + "/status")
	if err != nil {
		return s, err
	}
	s.RSS = statusKB(st, "VmRSS:") * 1024
	if sm, err := os.ReadFile(p + "/smaps_rollup"); err == nil {
		s.PSS = statusKB(sm, "Pss:") * 1024
	}
	raw, err := os.ReadFile(p + "/stat")
	if err != nil {
		return s, err
	}
	cpu, err := parseStatCPU(raw)
	s.CPU = cpu
	return s, err
}

// procDir is /proc/pid, or /proc/self for pid 0.
func procDir(pid int) string {
	if pid > 0 {
		return "/proc/" + strconv.Itoa(pid)
	}
	return "/proc/self"
}

func statusKB(b []byte, key string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line[len(key):])
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// parseStatCPU reads utime and stime (fields 14 and 15) from /proc/PID/stat; the command
// name in parentheses may contain spaces, so fields are counted after the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("scenario: bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("scenario: short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("scenario: bad cpu fields")
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// FitSlope is the least-squares slope of ys over xs (0 with fewer than two distinct xs).
// Each memory sample lands at a random point of the server's collection cycle, its heap
// anywhere between the live data and the collector's goal, so a fit over several sizes
// moves less from run to run than the slope between two of them.
func FitSlope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 2 || len(ys) != len(xs) {
		return 0
	}
	var sx, sy float64
	for i := range xs {
		sx, sy = sx+xs[i], sy+ys[i]
	}
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for i := range xs {
		dx := xs[i] - mx
		sxx += dx * dx
		sxy += dx * (ys[i] - my)
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

// Histogram collects latencies; it keeps every sample (runs are bounded).
type Histogram struct{ d []time.Duration }

// Add records one latency.
func (h *Histogram) Add(d time.Duration) { h.d = append(h.d, d) }

// Merge adds all of o's samples.
func (h *Histogram) Merge(o *Histogram) { h.d = append(h.d, o.d...) }

// Count is the number of samples.
func (h *Histogram) Count() int { return len(h.d) }

// Quantile returns the q-quantile (0..1) by the nearest-rank method.
func (h *Histogram) Quantile(q float64) time.Duration {
	if len(h.d) == 0 {
		return 0
	}
	sort.Slice(h.d, func(a, b int) bool { return h.d[a] < h.d[b] })
	r := int(q*float64(len(h.d))+0.999999) - 1
	if r < 0 {
		r = 0
	}
	if r >= len(h.d) {
		r = len(h.d) - 1
	}
	return h.d[r]
}
