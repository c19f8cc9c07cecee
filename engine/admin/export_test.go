package admin

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pie"
)

// TestExportSplit writes one file per account through Do, as vireoctl export -split does:
// the directory is private, each file is a document of its own that imports back, and
// the request is refused for a relative path or a directory that exists.
func TestExportSplit(t *testing.T) {
	root := t.TempDir()
	b := openBackend(t, filepath.Join(root, "data"))
	defer b.st.Close()
	for _, u := range []string{"alice@example.org", "bob@example.org", ".dot@example.org"} {
		if err := AddUser(b, u, u+" pw", 4096); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(root, "split")
	if resp := Do(b, Request{Op: "export", Path: dir, Split: true}); resp.Error != "" || resp.Count != 3 {
		t.Fatalf("export -split: %+v", resp)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory %v %v", fi, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	sort.Strings(files)
	if len(files) != 3 || filepath.Base(files[0]) != ".dot@example.org.xml" || filepath.Base(files[1]) != "alice@example.org.xml" || filepath.Base(files[2]) != "bob@example.org.xml" {
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

// TestExportFor: export -for ejabberd through Do, to one file and split, writes one
// SCRAM-SHA-1 <scram-credentials/> per account, fields base64-encoded twice, and reads
// back to the same keys; an unknown flavour is refused before anything is written.
func TestExportFor(t *testing.T) {
	root := t.TempDir()
	b := openBackend(t, filepath.Join(root, "data"))
	defer b.st.Close()
	if err := AddUser(b, "alice@example.org", "alice pw", 4096); err != nil {
		t.Fatal(err)
	}
	acc, err := b.st.Accounts().Get("alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	twice := func(p []byte) string {
		return base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString(p)))
	}
	c := acc.Creds[store.SHA1]
	for _, tc := range []struct {
		split bool
		path  string
	}{{false, filepath.Join(root, "ejabberd.xml")}, {true, filepath.Join(root, "ejabberd-split")}} {
		if resp := Do(b, Request{Op: "export", Path: tc.path, Split: tc.split, For: "ejabberd"}); resp.Error != "" || resp.Count != 1 {
			t.Fatalf("export -for ejabberd (split %v): %+v", tc.split, resp)
		}
		f := tc.path
		if tc.split {
			f = filepath.Join(tc.path, "alice@example.org.xml")
		}
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(doc), "<scram-credentials"); n != 1 ||
			!strings.Contains(string(doc), "mechanism='SCRAM-SHA-1'") ||
			!strings.Contains(string(doc), "<stored-key>"+twice(c.StoredKey)+"</stored-key>") ||
			!strings.Contains(string(doc), "<salt>"+twice(c.Salt)+"</salt>") {
			t.Errorf("split %v: not ejabberd's SCRAM-SHA-1 fields:\n%s", tc.split, doc)
		}
		users, err := pie.ParseFile(f)
		if err != nil || len(users) != 1 || !reflect.DeepEqual(users[0].Creds[store.SHA1], c) {
			t.Errorf("split %v: read back %+v %v", tc.split, users, err)
		}
	}
	bad := filepath.Join(root, "bad.xml")
	if resp := Do(b, Request{Op: "export", Path: bad, For: "openfire"}); resp.Error == "" {
		t.Error("export -for openfire worked")
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a refused export wrote %s: %v", bad, err)
	}
}
