package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigRedacted: secrets of the core config and of module tables are hidden; the
// rest, defaults included, is shown.
func TestConfigRedacted(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vireo.toml")
	os.WriteFile(p, []byte(`domains = ["example.org"]
data_dir = "`+dir+`"
[s2s]
secret = "dialback-s3cret"
[[component.allow]]
domain = "bridge.example.org"
secret = "comp-s3cret"
[modules.adhoc]
admins = ["alice@example.org"]
[modules.push]
api_key = "push-s3cret"
`), 0o600)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"dialback-s3cret", "comp-s3cret", "push-s3cret"} {
		if strings.Contains(got, bad) {
			t.Fatalf("secret %q shown:\n%s", bad, got)
		}
	}
	for _, want := range []string{"example.org", "bridge.example.org", "alice@example.org", "(redacted)", "[c2s]"} {
		if !strings.Contains(got, want) {
			t.Fatalf("%q missing:\n%s", want, got)
		}
	}
}
