package pebblestore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
)

// backupStep is one step of the writer in TestBackupCheckpointConsistent: an account, a
// roster item, an offline message, an archive row with its index row (one atomic Apply,
// like MAM) and, last, the step number in a marker row. Each write is acknowledged before
// the next starts, so a consistent snapshot holds every write of steps up to the marker,
// any prefix of the writes of the step after it, and nothing later.
func backupStep(s store.Store, k int) error {
	user := fmt.Sprintf("u%d@example.org", k%5)
	if err := s.Accounts().Create(store.Account{User: fmt.Sprintf("a%d@example.org", k), Created: time.Now()}); err != nil {
		return err
	}
	if _, err := s.Rosters().Put(user, store.RosterItem{JID: fmt.Sprintf("c%d@example.org", k), Sub: store.SubBoth}); err != nil {
		return err
	}
	if _, err := s.Offline().Push(user, []byte(fmt.Sprintf("<message id='m%d'/>", k)), time.Now(), store.Quota{}); err != nil {
		return err
	}
	id := strconv.Itoa(k)
	if err := s.Table("mam").Apply(
		store.Op{Key: store.UserKey(user, "row", id), Val: []byte("archived " + id)},
		store.Op{Key: store.UserKey(user, "idx", id), Val: []byte(id)},
	); err != nil {
		return err
	}
	return s.Table("seq").Set([]byte("last"), []byte(id))
}

// stepState reports which of step k's five writes s holds.
func stepState(t *testing.T, s store.Store, k int) [5]bool {
	t.Helper()
	var got [5]bool
	user := fmt.Sprintf("u%d@example.org", k%5)
	_, err := s.Accounts().Get(fmt.Sprintf("a%d@example.org", k))
	got[0] = err == nil
	_, err = s.Rosters().Item(user, fmt.Sprintf("c%d@example.org", k))
	got[1] = err == nil
	want := fmt.Sprintf("<message id='m%d'/>", k)
	s.Offline().List(user, func(m store.OfflineMessage) bool {
		got[2] = got[2] || string(m.Raw) == want
		return !got[2]
	})
	id := strconv.Itoa(k)
	_, rerr := s.Table("mam").Get(store.UserKey(user, "row", id))
	_, ierr := s.Table("mam").Get(store.UserKey(user, "idx", id))
	if (rerr == nil) != (ierr == nil) {
		t.Errorf("step %d: archive row and index row disagree (row: %v, index: %v)", k, rerr, ierr)
	}
	got[3] = rerr == nil
	v, err := s.Table("seq").Get([]byte("last"))
	got[4] = err == nil && mustAtoi(t, string(v)) >= k
	return got
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("marker %q: %v", s, err)
	}
	return n
}

// TestBackupCheckpointConsistent takes checkpoints while another goroutine keeps writing,
// opens each one as a store and checks that it holds a prefix of the acknowledged writes:
// whole steps up to the marker, then part of at most one step, and per-user summaries
// (offline count and bytes, roster version) that agree with the rows.
func TestBackupCheckpointConsistent(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "live"), Options{Logger: zerolog.Nop(), MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 5 {
		if err := s.Accounts().Create(store.Account{User: fmt.Sprintf("u%d@example.org", i)}); err != nil {
			t.Fatal(err)
		}
	}

	const maxSteps = 3000 // bounds the writer if checkpoints are fast
	stop := make(chan struct{})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		acked    = -1 // last step whose writes all returned
		writeErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < maxSteps; k++ {
			select {
			case <-stop:
				return
			default:
			}
			if k%25 == 24 {
				// Table files too, not only the WAL: a flush may run during a checkpoint.
				if err := s.DB().Flush(); err != nil {
					mu.Lock()
					writeErr = err
					mu.Unlock()
					return
				}
			}
			if err := backupStep(s, k); err != nil {
				mu.Lock()
				writeErr = fmt.Errorf("step %d: %w", k, err)
				mu.Unlock()
				return
			}
			mu.Lock()
			acked = k
			mu.Unlock()
		}
	}()
	ackedNow := func() int {
		mu.Lock()
		defer mu.Unlock()
		return acked
	}

	var snaps []string
	var before []int
	for i := range 3 {
		// Let some steps land between checkpoints.
		for start := ackedNow(); ackedNow() < start+20 && ackedNow() < maxSteps-1; {
			mu.Lock()
			failed := writeErr
			mu.Unlock()
			if failed != nil {
				t.Fatal(failed) // the writer stopped: waiting for it would never end
			}
			time.Sleep(time.Millisecond)
		}
		before = append(before, ackedNow())
		p := filepath.Join(dir, fmt.Sprintf("snap%d", i))
		if err := s.Checkpoint(p); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, p)
	}
	if err := s.Checkpoint(snaps[0]); err == nil {
		t.Fatal("checkpoint into an existing directory succeeded")
	}
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	t.Logf("writer acked %d steps; checkpoints after steps %v", ackedNow()+1, before)

	if ssts, _ := filepath.Glob(filepath.Join(snaps[len(snaps)-1], "*.sst")); len(ssts) == 0 {
		t.Error("the last checkpoint holds no table file: only the WAL path was tested")
	}
	base := map[string]uint64{}
	for i, p := range snaps {
		c, err := Open(p, Options{Logger: zerolog.Nop(), MinFree: -1})
		if err != nil {
			t.Fatalf("open checkpoint %d: %v", i, err)
		}
		last := -1
		if v, err := c.Table("seq").Get([]byte("last")); err == nil {
			last = mustAtoi(t, string(v))
		}
		if last < before[i] {
			t.Errorf("checkpoint %d: marker at step %d, but step %d was acknowledged before it began", i, last, before[i])
		}
		full := [5]bool{true, true, true, true, true}
		for k := 0; k <= last; k++ {
			if got := stepState(t, c, k); got != full {
				t.Fatalf("checkpoint %d (marker %d): step %d only partly there: %v", i, last, k, got)
			}
		}
		// The step after the marker: a prefix of its writes.
		got := stepState(t, c, last+1)
		for j := 1; j < len(got); j++ {
			if got[j] && !got[j-1] {
				t.Fatalf("checkpoint %d: step %d holds write %d without write %d: %v", i, last+1, j, j-1, got)
			}
		}
		if got := stepState(t, c, last+2); got != ([5]bool{}) {
			t.Fatalf("checkpoint %d: step %d is there beyond the marker %d: %v", i, last+2, last, got)
		}
		// Summaries agree with rows.
		for u := range 5 {
			user := fmt.Sprintf("u%d@example.org", u)
			n, bytes := 0, int64(0)
			c.Offline().List(user, func(m store.OfflineMessage) bool { n++; bytes += int64(len(m.Raw)); return true })
			cnt, _ := c.Offline().Count(user)
			b, _ := c.Offline().Bytes(user)
			if cnt != n || b != bytes {
				t.Errorf("checkpoint %d: %s offline meta says %d messages / %d bytes, rows say %d / %d", i, user, cnt, b, n, bytes)
			}
			// A roster's versions count up from its first (the time it was made): one
			// per item here, from the same base in every checkpoint.
			items, ver, err := c.Rosters().Get(user)
			if b, ok := base[user]; err != nil || ok && ver-uint64(len(items)) != b {
				t.Errorf("checkpoint %d: %s roster version %d for %d items, base %d (%v)", i, user, ver, len(items), base[user], err)
			} else if len(items) > 0 {
				base[user] = ver - uint64(len(items))
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackupLockDir: the lock vireoctl restore takes is refused while a store has the
// database open, and granted (then released) once it is closed.
func TestBackupLockDir(t *testing.T) {
	dir := t.TempDir()
	if l, err := LockDir(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("no database: %v", err)
	} else {
		l.Close()
	}
	s, err := Open(dir, Options{Logger: zerolog.Nop(), MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := LockDir(dir); !errors.Is(err, ErrLocked) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("lock of an open database: %v, want ErrLocked", err)
	}
	s.Close()
	l, err := LockDir(dir)
	if err != nil {
		t.Fatalf("lock after close: %v", err)
	}
	l.Close()
	s, err = Open(dir, Options{Logger: zerolog.Nop(), MinFree: -1})
	if err != nil {
		t.Fatalf("open after the lock was released: %v", err)
	}
	s.Close()
}
