//go:build unix

package pebblestore

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
)

// TestFilesPrivate opens a store under a world-readable (0755) data directory and checks
// that nothing it creates can be read by group or others: with the umask main sets (077)
// every file and directory; with a lax umask (022) still the database directory itself,
// which keeps the files inside out of reach.
func TestFilesPrivate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		umask int
		all   bool // every path under the db dir is private, not only the dir
	}{
		{"umask 077 as main sets it", 0o077, true},
		{"lax umask 022", 0o022, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := syscall.Umask(tc.umask)
			defer syscall.Umask(old)
			data := t.TempDir()
			if err := os.Chmod(data, 0o755); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(data, "db")
			s, err := Open(dir, Options{Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Accounts().Create(store.Account{User: "u@d", Creds: [3]store.Credentials{{StoredKey: []byte{1}, ServerKey: []byte{2}}}}); err != nil {
				t.Fatal(err)
			}
			s.Offline().Push("u@d", []byte("<message/>"), time.Now(), store.Quota{})
			if err := s.DB().Flush(); err != nil { // write an sstable too
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			n := 0
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					t.Fatal(err)
				}
				if !tc.all && p != dir {
					return nil
				}
				fi, err := d.Info()
				if err != nil {
					t.Fatal(err)
				}
				n++
				if fi.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s has mode %v, readable by others", p, fi.Mode().Perm())
				}
				return nil
			})
			if tc.all && n < 3 {
				t.Fatalf("only %d paths checked", n)
			}
		})
	}
}
