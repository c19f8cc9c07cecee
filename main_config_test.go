package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/modules/offline"
	"github.com/vireo-im/vireo/modules/private"
	"github.com/vireo-im/vireo/modules/roster"
	"github.com/vireo-im/vireo/modules/vcard"
)

// TestModuleQuotaConfig: the quota examples commented in the first-start file, once
// uncommented, reach the modules' configs under the documented keys; router.offline_quota
// is the offline message quota when [modules.offline] quota is not set.
func TestModuleQuotaConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vireo.toml")
	if err := config.WriteDefault(path, "example.org", false); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	text := string(b)
	i := strings.Index(text, "\n[modules]\n")
	if i < 0 {
		t.Fatal("no [modules] table")
	}
	example := regexp.MustCompile(`(?m)^# (\[modules\.[a-z_]+\]|[a-z_]+ = [0-9]+)$`)
	body := example.ReplaceAllString(text[i:], "$1")
	body = strings.Replace(body, "1000\n", "7\n", 1) // roster max_items: not a default
	withOffline := text[:i] + body

	for _, tc := range []struct {
		name, text   string
		offlineQuota int
	}{
		{"examples uncommented", withOffline, 1000},
		{"router.offline_quota as default", strings.Replace(text, "offline_quota = 1000", "offline_quota = 42", 1), 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			mc := moduleConfig(cfg)
			var (
				r roster.Config
				o offline.Config
				p private.Config
				v vcard.Config
			)
			for id, c := range map[string]any{"roster": &r, "offline": &o, "private": &p, "vcard": &v} {
				if err := mc(id, c); err != nil {
					t.Fatal(err)
				}
			}
			if o.Quota != tc.offlineQuota {
				t.Fatalf("offline quota = %d, want %d", o.Quota, tc.offlineQuota)
			}
			if tc.name != "examples uncommented" {
				return
			}
			if r.MaxItems != 7 || o.QuotaBytes != 10<<20 || p.MaxItems != 100 || p.MaxBytes != 1<<20 || v.MaxBytes != 64<<10 {
				t.Fatalf("decoded %+v %+v %+v %+v", r, o, p, v)
			}
		})
	}
}
