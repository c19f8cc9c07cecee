// Package durablefile writes files that a crash leaves whole or absent, never torn: the
// bytes are synced before the file takes its name, and the directory after the rename,
// so that a write is on disk before it is acknowledged. It knows nothing of what the
// files hold, and does not lock them.
package durablefile

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with b, readable per perm: through path+".tmp", synced, renamed,
// and the directory synced.
func WriteFile(path string, b []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := Write(tmp, b, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Write writes b to a new file at path with perm (less the umask), replacing one a crash
// left there (whose mode may be another), and syncs it; on error the file is removed.
// The caller renames it.
func Write(path string, b []byte, perm os.FileMode) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// SyncDir makes the renames and creations in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
