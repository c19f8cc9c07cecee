//go:build linux

package pebblestore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
)

// failFast bounds a write on a full disk: it must fail, not wait for space.
const failFast = 2 * time.Second

// smallFS mounts a tmpfs of size (mount syntax, "16m") on a temp dir: a disk that fills.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("disk-full tests mount a small tmpfs and need root (CAP_SYS_ADMIN): %v", err)
	}
	// Lazy: a test that fails with a write still blocked must not leave the mount busy.
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a filler file in dir until the file system is full, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return p
		}
	}
}

// lineCounter counts log lines and keeps the last.
type lineCounter struct {
	n    atomic.Int64
	last atomic.Value
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(bytes.Count(p, []byte{'\n'})))
	c.last.Store(string(p))
	return len(p), nil
}

// within runs f and fails the test if it takes longer than d (leaving it blocked).
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	start := time.Now()
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		if what != "" {
			t.Logf("%s: %v", what, time.Since(start))
		}
		return v
	case <-time.After(d):
		t.Fatalf("%s: blocked for %v on a full disk", what, d)
	}
	panic("unreachable")
}

func openSmall(t *testing.T, dir string, lc *lineCounter) *Store {
	t.Helper()
	s, err := Open(filepath.Join(dir, "db"), Options{Logger: zerolog.New(lc)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var msg = []byte("<message to='u@d'><body>hello</body></message>")

// seed writes one row of each kind for reads to find while the disk is full.
func seed(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Accounts().Create(store.Account{User: "u@d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rosters().Put("u@d", store.RosterItem{JID: "c@d", Sub: store.SubBoth}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Offline().Push("u@d", msg, time.Now(), store.Quota{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Table("vcard").Set(store.UserKey("u@d"), []byte("<vCard/>")); err != nil {
		t.Fatal(err)
	}
}

// reads checks that what seed wrote can still be read.
func reads(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.Accounts().Get("u@d"); err != nil {
		t.Errorf("account read on a full disk: %v", err)
	}
	if it, err := s.Rosters().Item("u@d", "c@d"); err != nil || it.Sub != store.SubBoth {
		t.Errorf("roster read on a full disk: %+v %v", it, err)
	}
	if n, err := s.Offline().Count("u@d"); err != nil || n < 1 {
		t.Errorf("offline read on a full disk: %d %v", n, err)
	}
	if v, err := s.Table("vcard").Get(store.UserKey("u@d")); err != nil || string(v) != "<vCard/>" {
		t.Errorf("table read on a full disk: %q %v", v, err)
	}
}

// writes tries one write of each kind, each bounded by failFast, and returns their errors.
func writes(t *testing.T, s *Store) []error {
	t.Helper()
	return []error{
		within(t, failFast, "offline push", func() error {
			_, err := s.Offline().Push("u@d", msg, time.Now(), store.Quota{})
			return err
		}),
		within(t, failFast, "roster put", func() error {
			_, err := s.Rosters().Put("u@d", store.RosterItem{JID: "new@d"})
			return err
		}),
		within(t, failFast, "table set", func() error {
			return s.Table("vcard").Set(store.UserKey("v@d"), []byte("<vCard/>"))
		}),
		within(t, failFast, "account create", func() error {
			return s.Accounts().Create(store.Account{User: "v@d"})
		}),
	}
}

// recovers waits for writes to succeed again once space is back, without a restart.
func recovers(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.Offline().Push("u@d", msg, time.Now(), store.Quota{})
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrFull) || time.Now().After(deadline) {
			t.Fatalf("no recovery after freeing space: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, err := range writes(t, s) {
		if err != nil {
			t.Errorf("write %d after freeing space: %v", i, err)
		}
	}
}

// TestDiskFullFailsFast fills the file system under the store: every write kind fails at
// once with store.ErrFull, reads work, and writes work again once the filler is deleted.
func TestDiskFullFailsFast(t *testing.T) {
	dir := smallFS(t, "16m")
	lc := new(lineCounter)
	s := openSmall(t, dir, lc)
	seed(t, s)
	filler := fill(t, dir)
	s.space.at.Store(-int64(time.Hour)) // the disk filled a while after the last reading

	for i, err := range writes(t, s) {
		if !errors.Is(err, store.ErrFull) {
			t.Errorf("write %d on a full disk: %v, want store.ErrFull", i, err)
		}
	}
	// Keep writing, more than Pebble's preallocated WAL holds: no write may block.
	big := bytes.Repeat([]byte("x"), 32<<10)
	var slowest time.Duration
	for i := 0; i < 200; i++ {
		start := time.Now()
		err := within(t, failFast, "", func() error {
			_, err := s.Offline().Push("u@d", big, time.Now(), store.Quota{})
			return err
		})
		if !errors.Is(err, store.ErrFull) {
			t.Fatalf("push %d of 32 KiB on a full disk: %v, want store.ErrFull", i, err)
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("200 pushes of 32 KiB refused, the slowest in %v", slowest)
	reads(t, s)
	// Deletes may use half of the reserve, which a full disk does not have either.
	if err := within(t, failFast, "offline delete", func() error { return s.Offline().DeleteAll("u@d") }); !errors.Is(err, store.ErrFull) {
		t.Errorf("delete on a full disk: %v", err)
	}
	if s.space.lost.Load() {
		t.Error("the guard let a write reach ENOSPC")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	recovers(t, s)
	if err := within(t, failFast, "close", s.Close); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullBallast fills the disk between two free-space readings, so that a write
// reaches Pebble and ENOSPC: the ballast gives it room (it is acknowledged, and durable),
// the writes after it fail fast, and the ballast is rebuilt when space returns.
func TestDiskFullBallast(t *testing.T) {
	dir := smallFS(t, "16m")
	lc := new(lineCounter)
	s := openSmall(t, dir, lc)
	seed(t, s)
	ballast := filepath.Join(dir, "db", ballastName)
	if fi, err := os.Stat(ballast); err != nil || fi.Size() != s.space.ballast || s.space.ballast == 0 {
		t.Fatalf("ballast: %v %v, want %d bytes", fi, err, s.space.ballast)
	}
	s.space.every.Store(int64(time.Hour)) // stale reading: the guard misses the fill
	filler := fill(t, dir)

	// Pebble preallocates its WAL (4.4 MiB): push until a write needs space beyond it.
	big := bytes.Repeat([]byte("x"), 10<<10)
	pushed := 1
	for i := 0; i < 1000 && !s.space.lost.Load(); i++ {
		err := within(t, failFast, "", func() error {
			_, err := s.Offline().Push("u@d", big, time.Now(), store.Quota{})
			return err
		})
		if err != nil {
			t.Fatalf("push %d: %v (the ballast should have made room)", i, err)
		}
		pushed++
	}
	if !s.space.lost.Load() {
		t.Fatal("no write hit ENOSPC; nothing tested")
	}
	t.Logf("%d pushes acknowledged, the last one on the ballast", pushed-1)
	if _, err := os.Stat(ballast); !os.IsNotExist(err) {
		t.Errorf("ballast still there: %v", err)
	}
	for i, err := range writes(t, s) {
		if !errors.Is(err, store.ErrFull) {
			t.Errorf("write %d after the ballast went: %v, want store.ErrFull", i, err)
		}
	}
	reads(t, s)
	if n, _ := s.Offline().Count("u@d"); n != pushed {
		t.Errorf("offline count %d, want %d (the write on the ballast counts)", n, pushed)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s.space.every.Store(int64(statEvery))
	recovers(t, s)
	if fi, err := os.Stat(ballast); err != nil || fi.Size() != s.space.ballast {
		t.Errorf("ballast not rebuilt: %v %v", fi, err)
	}
	if err := within(t, failFast, "close", s.Close); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullLogs makes Pebble flush on a disk with no space left and no ballast: it
// retries the flush without pause, and the log must stay quiet (one line per logEvery).
// The store then closes without waiting for the flush, and reopens with every
// acknowledged write once space is back.
func TestDiskFullLogs(t *testing.T) {
	dir := smallFS(t, "16m")
	lc := new(lineCounter)
	s := openSmall(t, dir, lc)
	seed(t, s)
	// Give up the ballast, as a first ENOSPC would, and fill what it held.
	s.space.release()
	filler := fill(t, dir)

	s.DB().AsyncFlush()
	time.Sleep(200 * time.Millisecond)
	n0, e0 := lc.n.Load(), s.bgErrors.Load()
	time.Sleep(time.Second)
	lines, retries := lc.n.Load()-n0, s.bgErrors.Load()-e0
	t.Logf("in 1 s of failing flushes: %d log lines, %d retries (last line: %v)", lines, retries, lc.last.Load())
	if retries == 0 {
		t.Error("no failing flush; nothing tested")
	}
	if lines > 2 {
		t.Errorf("%d log lines in a second, want at most 2", lines)
	}
	within(t, failFast, "reads during failing flushes", func() bool { reads(t, s); return true })
	within(t, 5*time.Second, "close", s.Close)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s = openSmall(t, dir, lc)
	reads(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
