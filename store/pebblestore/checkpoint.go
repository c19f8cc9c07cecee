package pebblestore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/vireo-im/vireo/store"
)

var _ store.Checkpointer = (*Store)(nil)

// Checkpoint writes a consistent snapshot of the database into dir, which must not exist
// (store.Checkpointer). Pebble hard-links the immutable table files when dir is on the same
// file system and copies the rest (WAL, MANIFEST, OPTIONS); the WAL is synced first, so the
// snapshot holds every write acknowledged before the call. Safe to call concurrently with
// every other method; writes are not blocked while the files are copied.
//
// The WAL is synced with an empty log record committed like any write (not with Pebble's
// WithFlushedWAL), so that a full disk fails with store.ErrFull and a failed WAL write
// marks the store broken instead of panicking in the caller.
func (s *Store) Checkpoint(dir string) error {
	b := s.db.NewBatch()
	b.LogData(nil, nil)
	err := s.commit(b, false)
	b.Close()
	if err != nil {
		return fmt.Errorf("pebblestore: checkpoint: sync the log: %w", err)
	}
	if err := s.db.Checkpoint(dir); err != nil {
		return fmt.Errorf("pebblestore: checkpoint %s: %w", dir, err)
	}
	// Pebble creates the directory 0755 (less the umask): the keys in it are for this
	// user only, like the database itself.
	return os.Chmod(dir, 0o700)
}

// ErrLocked reports that another process (a running server) holds the database.
var ErrLocked = errors.New("pebblestore: database is locked by another process")

// LockDir takes the database lock of dir on the OS file system, as Open would, without
// opening the database: while it is held no server can open it. A dir without a database
// returns a no-op closer. The caller must Close the lock.
func LockDir(dir string) (io.Closer, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(nil), nil
	}
	l, err := pebble.LockDirectory(dir, vfs.Default)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		(err != nil && strings.Contains(err.Error(), "lock held by current process")) {
		return nil, fmt.Errorf("%w: %s: %v", ErrLocked, dir, err)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}
