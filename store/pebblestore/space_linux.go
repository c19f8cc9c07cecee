package pebblestore

import (
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// allocate gives f n bytes of disk without writing them (fallocate), where the file
// system can; the caller writes zeros otherwise.
func allocate(f vfs.File, n int64) bool {
	fd := f.Fd()
	return fd != vfs.InvalidFd && syscall.Fallocate(int(fd), 0, 0, n) == nil
}
