package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExposedWarning(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		mode os.FileMode // 0: do not create
		warn bool
	}{
		{"0755", 0o755, true},
		{"0750 group readable", 0o750, true},
		{"0701 other searchable", 0o701, true},
		{"0700", 0o700, false},
		{"missing", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if tc.mode != 0 {
				if err := os.Mkdir(p, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			w := ExposedWarning(p)
			if (w != "") != tc.warn {
				t.Fatalf("ExposedWarning(%s) = %q, want warning %v", tc.name, w, tc.warn)
			}
			if tc.warn && !strings.Contains(w, "chmod -R go-rwx "+p) {
				t.Fatalf("warning does not name the chmod to run: %q", w)
			}
		})
	}
}
