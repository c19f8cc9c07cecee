package admin

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/vireo-im/vireo/store/pie"
)

// TestExportSplit writes one file per account through Do, as vireoctl export -split does:
// the directory is private, each file is a document of its own that imports back, and
// the request is refused for a relative path or a directory that exists.
func TestExportSplit(t *testing.T) {
	root := t.TempDir()
	b := openBackend(t, filepath.Join(root, "data"))
	defer b.st.Close()
	for _, u := range []string{"alice@example.org", "bob@example.org"} {
		if err := AddUser(b, u, u+" pw", 4096); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(root, "split")
	if resp := Do(b, Request{Op: "export", Path: dir, Split: true}); resp.Error != "" || resp.Count != 2 {
		t.Fatalf("export -split: %+v", resp)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory %v %v", fi, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	sort.Strings(files)
	if len(files) != 2 || filepath.Base(files[0]) != "alice@example.org.xml" || filepath.Base(files[1]) != "bob@example.org.xml" {
		t.Fatalf("files %v", files)
	}
	for _, f := range files {
		fi, _ := os.Stat(f)
		users, err := pie.ParseFile(f)
		if err != nil || len(users) != 1 || users[0].JID+".xml" != filepath.Base(f) || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %+v %v", f, fi.Mode(), users, err)
		}
	}
	for _, tc := range []struct{ name, path string }{{"exists", dir}, {"relative", "split2"}} {
		if resp := Do(b, Request{Op: "export", Path: tc.path, Split: true}); resp.Error == "" {
			t.Errorf("%s: export -split to %s worked", tc.name, tc.path)
		}
	}
	if _, err := os.Stat(dir + ".partial"); !os.IsNotExist(err) {
		t.Errorf("a partial directory was left: %v", err)
	}
}
