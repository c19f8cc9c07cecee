package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vireo-im/vireo/engine/durablefile"
	"github.com/vireo-im/vireo/store"
)

// Backups. A backup is a directory holding a Pebble checkpoint of the database in db/, the
// key files of data_dir (KeyFiles) at the same relative paths, and ManifestName, which lists
// every file with its size and SHA-256 and is written last: a directory without it is an
// interrupted backup. Restore copies exactly the listed files, checking each against the
// manifest, into a new data_dir.

// KeyFiles are the entries of data_dir, beside the database, that a backup copies when they
// exist: fast.key keys the XEP-0484 FAST tokens clients hold (a new key would turn every
// token down and make each client log in with its password again), and certs/ holds the
// certificate written on first start, which clients were asked to trust. The admin socket
// and anything else in data_dir are left out.
var KeyFiles = []string{"fast.key", "certs"}

// KeptFiles are the entries of data_dir a backup does not hold that Restore carries over
// from the data_dir it replaces: uploaded files (large; the restored database still
// points at them) with their slot key, and the ACME account and orders (a new account
// would order every certificate again, against the CA's rate limits).
var KeptFiles = []string{"upload", "upload.key", "acme"}

// ManifestName is the manifest's file name in a backup directory.
const ManifestName = "manifest.json"

// ManifestFormat is the manifest layout version this code writes and reads.
const ManifestFormat = 1

// dbName is the database directory inside data_dir and inside a backup (config.DBDir).
const dbName = "db"

// Manifest describes one backup.
type Manifest struct {
	Format  int       `json:"format"`
	Time    time.Time `json:"time"`
	Version string    `json:"version"`  // the program that took it, with its version
	DataDir string    `json:"data_dir"` // the data_dir it was taken from
	Files   []File    `json:"files"`
}

// File is one file of a backup. Path is slash-separated and relative to the backup.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Bytes is the total size of the files.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Backup writes a backup of b's store and data_dir key files into dir, which must be an
// absolute path that does not exist; missing parents are created 0700. The store must be a
// store.Checkpointer: the snapshot is taken while the server keeps serving. On failure
// nothing is left at dir.
func Backup(b Backend, dir string) (m *Manifest, err error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("backup: %q is not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	cp, ok := b.Store().(store.Checkpointer)
	if !ok {
		return nil, errors.New("backup: this store cannot take snapshots")
	}
	if rel, err := filepath.Rel(filepath.Join(b.DataDir(), dbName), dir); err == nil && filepath.IsLocal(rel) {
		return nil, fmt.Errorf("backup: %s is inside the database directory", dir)
	}
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("backup: %s already exists", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := cp.Checkpoint(filepath.Join(dir, dbName)); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	for _, name := range KeyFiles {
		if err := copyTree(filepath.Join(b.DataDir(), name), filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
	}
	dataDir, err := filepath.Abs(b.DataDir()) // relative to the process's directory
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	m = &Manifest{Format: ManifestFormat, Time: time.Now().UTC(), Version: b.Version(), DataDir: dataDir}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f := File{Path: filepath.ToSlash(rel)}
		f.Size, f.SHA256, err = hashFile(p)
		m.Files = append(m.Files, f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	j, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := durablefile.Write(filepath.Join(dir, ManifestName), append(j, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := durablefile.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return m, nil
}

// ReadManifest reads and checks the manifest of the backup in dir: the format, and paths
// that stay inside the backup. It does not read the files (Restore checks them as it copies).
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: not a backup, or an interrupted one", dir, ManifestName)
	}
	if err != nil {
		return nil, err
	}
	return ParseManifest(b)
}

// ParseManifest decodes and checks a manifest.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("manifest: format %d, this vireoctl reads %d", m.Format, ManifestFormat)
	}
	seen := make(map[string]bool, len(m.Files))
	hasDB := false
	for _, f := range m.Files {
		p := filepath.FromSlash(f.Path)
		if !filepath.IsLocal(p) || p != filepath.Clean(p) || p == "." || f.Path == ManifestName {
			return nil, fmt.Errorf("manifest: bad path %q", f.Path)
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("manifest: %q listed twice", f.Path)
		}
		seen[f.Path] = true
		if sum, err := hex.DecodeString(f.SHA256); f.Size < 0 || err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("manifest: bad size or checksum for %q", f.Path)
		}
		if strings.HasPrefix(f.Path, dbName+"/MANIFEST-") {
			hasDB = true
		}
	}
	if !hasDB {
		return nil, errors.New("manifest: the backup holds no database")
	}
	return &m, nil
}

// Restore replaces dataDir with the backup in from. It first copies every file the manifest
// lists into a staging directory beside dataDir, checking sizes and checksums; a damaged
// backup fails there, with dataDir untouched. Then dataDir, if it exists, is renamed to
// dataDir.before-restore-<UTC time> (returned as aside) and the staging directory takes its
// name; the KeptFiles of the old dataDir move into the new one. The caller must make sure
// no server uses dataDir.
func Restore(dataDir, from string) (m *Manifest, aside string, err error) {
	m, err = ReadManifest(from)
	if err != nil {
		return nil, "", err
	}
	dataDir = filepath.Clean(dataDir)
	stamp := time.Now().UTC().Format("20060102T150405Z")
	staging := dataDir + ".restoring-" + stamp
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o700); err != nil {
		return nil, "", err
	}
	if err := os.Mkdir(staging, 0o700); err != nil {
		return nil, "", fmt.Errorf("restore: %w", err)
	}
	var kept []string // KeptFiles moved from dataDir into staging
	defer func() {
		if err != nil {
			for _, name := range kept { // back where they were, before staging goes
				os.Rename(filepath.Join(staging, name), filepath.Join(dataDir, name))
			}
			os.RemoveAll(staging)
		}
	}()
	dirs := map[string]bool{staging: true}
	for _, f := range m.Files {
		dst := filepath.Join(staging, filepath.FromSlash(f.Path))
		for d := filepath.Dir(dst); d != staging && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return nil, "", fmt.Errorf("restore: %w", err)
		}
		size, sum, err := copyFile(filepath.Join(from, filepath.FromSlash(f.Path)), dst)
		if err != nil {
			return nil, "", fmt.Errorf("restore: %w", err)
		}
		if size != f.Size || sum != f.SHA256 {
			return nil, "", fmt.Errorf("restore: %s does not match the manifest (%d bytes, sha256 %s; manifest: %d bytes, %s)", f.Path, size, sum, f.Size, f.SHA256)
		}
	}
	for d := range dirs {
		if err := durablefile.SyncDir(d); err != nil {
			return nil, "", fmt.Errorf("restore: %w", err)
		}
	}
	for _, name := range KeptFiles {
		src, dst := filepath.Join(dataDir, name), filepath.Join(staging, name)
		if _, err := os.Lstat(src); err != nil {
			continue
		}
		if _, err := os.Lstat(dst); err == nil {
			continue // the backup has its own
		}
		if err := os.Rename(src, dst); err != nil {
			return nil, "", fmt.Errorf("restore: keep %s: %w", name, err)
		}
		kept = append(kept, name)
	}
	if len(kept) > 0 {
		if err := durablefile.SyncDir(staging); err != nil {
			return nil, "", fmt.Errorf("restore: %w", err)
		}
	}
	if _, err := os.Lstat(dataDir); err == nil {
		aside = dataDir + ".before-restore-" + stamp
		if err := os.Rename(dataDir, aside); err != nil {
			return nil, "", fmt.Errorf("restore: move the current data_dir aside: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(staging, dataDir); err != nil {
		if aside != "" {
			if rerr := os.Rename(aside, dataDir); rerr != nil {
				err = fmt.Errorf("%w; the old data_dir stays at %s", err, aside)
			}
		}
		return nil, "", fmt.Errorf("restore: %w", err)
	}
	if err := durablefile.SyncDir(filepath.Dir(dataDir)); err != nil {
		return m, aside, fmt.Errorf("restore: %w", err)
	}
	return m, aside, nil
}

// copyTree copies the regular files under src (a file or a directory) to dst, creating
// directories 0700 and files 0600; other kinds of file are skipped. A missing src copies
// nothing.
func copyTree(src, dst string) error {
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o700)
		case d.Type().IsRegular():
			_, _, err := copyFile(p, out)
			return err
		}
		return nil
	})
}

// copyFile copies src to a new file dst (mode 0600), syncs it, and returns its size and
// hex SHA-256 as read.
func copyFile(src, dst string) (int64, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, hexSum(h), err
}

func hashFile(p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hexSum(h), err
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
