package admin

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// testBackend is a Backend on a store opened from data_dir/db, as vireoctl has it.
type testBackend struct {
	st      store.Store
	dataDir string
}

func (b testBackend) Store() store.Store    { return b.st }
func (b testBackend) Domains() []string     { return []string{"example.org"} }
func (b testBackend) CloseUser(jid.JID)     {}
func (b testBackend) Reload() error         { return nil }
func (b testBackend) Stats() map[string]any { return nil }
func (b testBackend) Modules() []string     { return nil }
func (b testBackend) DataDir() string       { return b.dataDir }
func (b testBackend) Version() string       { return "test" }
func (testBackend) WebURL(string) string    { return "" }

func openBackend(t *testing.T, dataDir string) testBackend {
	t.Helper()
	st, err := pebblestore.Open(filepath.Join(dataDir, dbName), pebblestore.Options{Logger: zerolog.Nop(), MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	return testBackend{st: st, dataDir: dataDir}
}

// TestBackupRestore backs up a data_dir with an account and the key files through Do, as
// the socket would, restores it over another data_dir (which is moved aside) and finds the
// account, the key files and the old directory.
func TestBackupRestore(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src")
	b := openBackend(t, src)
	if err := AddUser(b, "alice@example.org", "secret", 4096); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "fast.key"), bytes.Repeat([]byte{7}, 32), 0o600)
	os.MkdirAll(filepath.Join(src, "certs"), 0o700)
	os.WriteFile(filepath.Join(src, "certs", "example.org.key"), []byte("KEY"), 0o600)
	os.WriteFile(filepath.Join(src, "unrelated.txt"), []byte("not copied"), 0o600)

	dir := filepath.Join(root, "backups", "deep", "b1")
	resp := Do(b, Request{Op: "backup", Path: dir})
	if resp.Error != "" {
		t.Fatal(resp.Error)
	}
	if resp.Manifest == nil || len(resp.Manifest.Files) < 4 {
		t.Fatalf("manifest: %+v", resp.Manifest)
	}
	for _, p := range []string{filepath.Join(root, "backups"), dir} {
		if fi, err := os.Stat(p); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %04o, want 0700", p, fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "unrelated.txt")); err == nil {
		t.Error("a file outside KeyFiles was copied")
	}
	if r := Do(b, Request{Op: "backup", Path: dir}); !strings.Contains(r.Error, "already exists") {
		t.Fatalf("second backup into %s: %q", dir, r.Error)
	}
	if r := Do(b, Request{Op: "backup", Path: filepath.Join(src, "db", "snap")}); !strings.Contains(r.Error, "inside the database") {
		t.Fatalf("backup into the database directory: %q", r.Error)
	}
	if r := Do(b, Request{Op: "backup", Path: "relative/dir"}); r.Error == "" {
		t.Fatal("backup to a relative path succeeded")
	}
	// Written after the backup: must not be in the restored copy.
	if err := AddUser(b, "late@example.org", "secret", 4096); err != nil {
		t.Fatal(err)
	}
	b.st.Close()

	dst := filepath.Join(root, "dst")
	os.MkdirAll(dst, 0o700)
	os.WriteFile(filepath.Join(dst, "old"), []byte("before"), 0o600)
	// What a backup does not hold stays with the server: uploaded files, their key, ACME.
	os.MkdirAll(filepath.Join(dst, "upload", "slot1"), 0o700)
	os.WriteFile(filepath.Join(dst, "upload", "slot1", "cat.jpg"), []byte("JPEG"), 0o600)
	os.WriteFile(filepath.Join(dst, "upload.key"), []byte("UK"), 0o600)
	os.MkdirAll(filepath.Join(dst, "acme"), 0o700)
	os.WriteFile(filepath.Join(dst, "acme", "account.json"), []byte("{}"), 0o600)
	m, aside, err := Restore(dst, dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "test" || !strings.Contains(aside, "dst.before-restore-") {
		t.Fatalf("version %q, aside %q", m.Version, aside)
	}
	if got, _ := os.ReadFile(filepath.Join(aside, "old")); string(got) != "before" {
		t.Fatalf("the old data_dir was not kept aside: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "certs", "example.org.key")); string(got) != "KEY" {
		t.Fatalf("certs/: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "fast.key")); !bytes.Equal(got, bytes.Repeat([]byte{7}, 32)) {
		t.Fatalf("fast.key: %x", got)
	}
	for p, want := range map[string]string{"upload/slot1/cat.jpg": "JPEG", "upload.key": "UK", "acme/account.json": "{}"} {
		if got, _ := os.ReadFile(filepath.Join(dst, filepath.FromSlash(p))); string(got) != want {
			t.Errorf("%s after the restore: %q, want it carried over", p, got)
		}
	}
	r := openBackend(t, dst)
	defer r.st.Close()
	users, err := Users(r.st, "")
	if err != nil || len(users) != 1 || users[0] != "alice@example.org" {
		t.Fatalf("restored users %v, %v; want alice only", users, err)
	}
}

// TestRestoreRefusesDamagedBackup: a file that no longer matches the manifest, a missing
// manifest or a path escaping the backup fail before the data_dir is touched.
func TestRestoreRefusesDamagedBackup(t *testing.T) {
	root := t.TempDir()
	b := openBackend(t, filepath.Join(root, "src"))
	dir := filepath.Join(root, "b")
	if _, err := Backup(b, dir); err != nil {
		t.Fatal(err)
	}
	b.st.Close()
	dst := filepath.Join(root, "dst")
	os.MkdirAll(dst, 0o700)
	os.WriteFile(filepath.Join(dst, "old"), []byte("before"), 0o600)

	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, filepath.FromSlash(m.Files[len(m.Files)-1].Path))
	orig, _ := os.ReadFile(victim)
	os.WriteFile(victim, append(append([]byte(nil), orig...), 'x'), 0o600)
	if _, _, err := Restore(dst, dir); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("damaged file: %v", err)
	}
	os.WriteFile(victim, orig, 0o600)

	bad := *m
	bad.Files = append([]File{{Path: "../escape", Size: 1, SHA256: strings.Repeat("0", 64)}}, m.Files...)
	j, _ := json.Marshal(bad)
	os.WriteFile(filepath.Join(dir, ManifestName), j, 0o600)
	if _, _, err := Restore(dst, dir); err == nil || !strings.Contains(err.Error(), "bad path") {
		t.Fatalf("escaping path: %v", err)
	}
	os.Remove(filepath.Join(dir, ManifestName))
	if _, _, err := Restore(dst, dir); err == nil {
		t.Fatal("restore without a manifest succeeded")
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "old")); string(got) != "before" {
		t.Fatal("a failed restore touched the data_dir")
	}
	if left, _ := filepath.Glob(filepath.Join(root, "dst.*")); len(left) != 0 {
		t.Fatalf("a failed restore left %v", left)
	}
}

// FuzzParseManifest: any input is either refused or yields a manifest whose paths all stay
// inside the backup directory.
func FuzzParseManifest(f *testing.F) {
	sum := strings.Repeat("ab", 32)
	f.Add([]byte(`{"format":1,"files":[{"path":"db/MANIFEST-000001","size":3,"sha256":"` + sum + `"}]}`))
	f.Add([]byte(`{"format":1,"files":[{"path":"db/MANIFEST-1","size":3,"sha256":"` + sum + `"},{"path":"../x","size":1,"sha256":"` + sum + `"}]}`))
	f.Add([]byte(`{"format":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		for _, fl := range m.Files {
			p := filepath.Join("/backup", filepath.FromSlash(fl.Path))
			if !strings.HasPrefix(p, "/backup/") || p == "/backup/"+ManifestName {
				t.Fatalf("accepted path %q resolves to %q", fl.Path, p)
			}
		}
	})
}

// TestExportImportOps runs the export and import ops as the socket would: the file is
// private, is not overwritten, and imports into another store with the same logins.
func TestExportImportOps(t *testing.T) {
	root := t.TempDir()
	b := openBackend(t, filepath.Join(root, "a"))
	defer b.st.Close()
	for _, u := range []string{"alice@example.org", "bob@example.org"} {
		if err := AddUser(b, u, u+" pw", 4096); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.st.Rosters().Put("alice@example.org", store.RosterItem{JID: "bob@example.org", Sub: store.SubBoth}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "export.xml")
	if r := Do(b, Request{Op: "export", Path: file}); r.Error != "" || r.Count != 2 {
		t.Fatalf("export: %+v", r)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi, err)
	}
	if r := Do(b, Request{Op: "export", Path: file}); !strings.Contains(r.Error, "exists") {
		t.Fatalf("export over an existing file: %+v", r)
	}
	c := openBackend(t, filepath.Join(root, "c"))
	defer c.st.Close()
	if err := AddUser(c, "bob@example.org", "other pw", 4096); err != nil {
		t.Fatal(err)
	}
	r := Do(c, Request{Op: "import", Path: file})
	if r.Error != "" || r.Count != 1 || len(r.Lines) != 1 || !strings.Contains(r.Lines[0], "bob@example.org") {
		t.Fatalf("import: %+v", r)
	}
	a, err := c.st.Accounts().Get("alice@example.org")
	if err != nil || !creds.VerifyPlain(a.Creds[store.SHA256], store.SHA256, "alice@example.org pw") {
		t.Fatalf("alice after import: %v", err)
	}
	if it, err := c.st.Rosters().Item("alice@example.org", "bob@example.org"); err != nil || it.Sub != store.SubBoth {
		t.Fatalf("alice's roster after import: %+v %v", it, err)
	}

	// FILE.zst is written compressed and read back.
	zfile := filepath.Join(root, "export.xml.zst")
	if r := Do(b, Request{Op: "export", Path: zfile}); r.Error != "" || r.Count != 2 {
		t.Fatalf("export .zst: %+v", r)
	}
	raw, _ := os.ReadFile(file)
	z, _ := os.ReadFile(zfile)
	if !bytes.HasPrefix(z, []byte{0x28, 0xb5, 0x2f, 0xfd}) || len(z) >= len(raw) {
		t.Fatalf("export.xml.zst: %d bytes against %d uncompressed, starts %x", len(z), len(raw), z[:4])
	}
	d := openBackend(t, filepath.Join(root, "d"))
	defer d.st.Close()
	if r := Do(d, Request{Op: "import", Path: zfile}); r.Error != "" || r.Count != 2 {
		t.Fatalf("import .zst: %+v", r)
	}
	if it, err := d.st.Rosters().Item("alice@example.org", "bob@example.org"); err != nil || it.Sub != store.SubBoth {
		t.Fatalf("alice's roster after a compressed import: %+v %v", it, err)
	}
}
