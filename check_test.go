package main

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/config"
)

// TestCheckModules: vireo -t provisions the modules, so a table only a module checks is
// refused with that module's message, and a disabled module's table is not looked at.
func TestCheckModules(t *testing.T) {
	const base = "domains = [\"example.org\"]\n"
	for _, tc := range []struct {
		name, cfg, wantErr string
	}{
		{name: "defaults", cfg: base},
		{name: "services", cfg: base + "[[modules.extdisco.services]]\ntype = \"turn\"\nhost = \"turn.example.org\"\ntransport = \"udp\"\nsecret = \"s\"\n"},
		{name: "bad transport", cfg: base + "[[modules.extdisco.services]]\ntype = \"turn\"\nhost = \"turn.example.org\"\ntransport = \"sctp\"\n", wantErr: "module extdisco"},
		{name: "bad contact", cfg: base + "[modules.contact]\nabuse = [\"abuse@example.org\"]\n", wantErr: "module contact"},
		{name: "disabled", cfg: base + "[modules]\ndisabled = [\"contact\"]\n[modules.contact]\nabuse = [\"abuse@example.org\"]\n"},
		{name: "abuse desk", cfg: base + "[modules.blocking]\nreport_to = [\"abuse@example.org\"]\n"},
		{name: "bad abuse desk", cfg: base + "[modules.blocking]\nreport_to = [\"@example.org\"]\n", wantErr: "module blocking"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tc.cfg), t.TempDir()+"/vireo.toml")
			if err != nil {
				t.Fatal(err)
			}
			err = checkModules(cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one from %s", err, tc.wantErr)
			}
		})
	}
}
