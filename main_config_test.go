package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
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

// TestS2SEngineConfig: [s2s] direct_tls_listen, deny/allow and [s2s.domains] reach the
// engine: a direct TLS s2s listener, and each domain's policy with require_valid_certs
// inherited where the domain does not set it.
func TestS2SEngineConfig(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := config.SelfSigned([]string{"ca.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`domains = ["a.org"]
[s2s]
enabled = true
ca_file = "ca.pem"
listen = ["127.0.0.1:0"]
direct_tls_listen = ["127.0.0.1:0"]
require_valid_certs = true
public_only = true
deny = ["spam.example"]
allow = ["b.org", "strict.example", "lax.example"]
[s2s.domains."strict.example"]
dialback = "deny"
[s2s.domains."lax.example"]
require_valid_certs = false
`), filepath.Join(dir, "vireo.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.EnsureCert(cfg.TLS.Cert, cfg.TLS.Key, cfg.Domains); err != nil {
		t.Fatal(err)
	}
	certs, err := config.LoadCerts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ec := (&server{certs: certs}).engineConfig(cfg)
	var s2s, direct int
	for _, l := range ec.Listeners {
		switch {
		case l.Name == "s2s" && l.Kind == engine.KindS2S && !l.DirectTLS:
			s2s++
		case l.Name == "s2s-tls" && l.Kind == engine.KindS2S && l.DirectTLS:
			direct++
		}
	}
	if s2s != 1 || direct != 1 {
		t.Fatalf("listeners %+v", ec.Listeners)
	}
	want := map[string]engine.S2SDomain{"strict.example": {RequireValidCerts: true, NoDialback: true},
		"lax.example": {RequireValidCerts: false}}
	if len(ec.S2S.Domains) != len(want) || ec.S2S.Domains["strict.example"] != want["strict.example"] ||
		ec.S2S.Domains["lax.example"] != want["lax.example"] {
		t.Fatalf("domains %+v", ec.S2S.Domains)
	}
	if !ec.S2S.RequireValidCerts || !ec.S2S.PublicOnly || len(ec.S2S.Deny) != 1 || ec.S2S.Deny[0] != "spam.example" || len(ec.S2S.Allow) != 3 {
		t.Fatalf("s2s %+v", ec.S2S)
	}
}

// TestComponentPrivilegesConfig: [component.allow.privileges] reaches the engine as the
// component's XEP-0356 privileges.
func TestComponentPrivilegesConfig(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(`domains = ["a.org"]
[component]
listen = ["127.0.0.1:0"]
[[component.allow]]
domain = "gw.a.org"
secret = "12345678"
[component.allow.privileges]
roster = "both"
message = "outgoing"
presence = "managed_entity"
[component.allow.privileges.iq]
"http://jabber.org/protocol/pubsub" = "both"
[[component.allow]]
domain = "plain.a.org"
secret = "12345678"
[[component.allow]]
domain = "quiet.a.org"
secret = "12345678"
[component.allow.privileges]
roster = "get"
roster_push = false
`), filepath.Join(dir, "vireo.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ec := (&server{}).engineConfig(cfg)
	if len(ec.Components) != 3 {
		t.Fatalf("components %+v", ec.Components)
	}
	gw, plain := ec.Components[0].Privileges, ec.Components[1].Privileges
	if !gw.RosterGet() || !gw.RosterSet() || !gw.Outgoing() || gw.Type("presence") != "managed_entity" || !gw.IQAllowed("http://jabber.org/protocol/pubsub", "set") || gw.IQAllowed("jabber:iq:roster", "get") {
		t.Fatalf("gw.a.org: %+v", gw)
	}
	if plain.RosterGet() || plain.Outgoing() || len(plain.IQ) != 0 || plain.RosterPushes() {
		t.Fatalf("plain.a.org: %+v", plain)
	}
	if !gw.RosterPushes() {
		t.Fatalf("gw.a.org gets no roster pushes by default: %+v", gw)
	}
	if quiet := ec.Components[2].Privileges; !quiet.RosterGet() || quiet.RosterPushes() {
		t.Fatalf("quiet.a.org (roster_push = false): %+v", quiet)
	}
}

// TestVHostsEngineConfig: [vhosts] reaches the engine as one policy per table, each with
// the server-wide settings filled in where the table is silent.
func TestVHostsEngineConfig(t *testing.T) {
	cfg, err := config.Parse([]byte(`domains = ["a.org", "b.org"]
[c2s]
registration = true
registration_captcha = true
[vhosts."b.org"]
registration = false
max_accounts = 20
federation = false
isolated = true
modules_disabled = ["mam", "upload"]
[vhosts."b.org".modules.welcome]
message = "hi"
[vhosts."b.org".modules.contact]
abuse = ["mailto:a@b.org"]
`), filepath.Join(t.TempDir(), "vireo.toml"))
	if err != nil {
		t.Fatal(err)
	}
	got := hostPolicies(cfg)
	want := map[string]engine.HostPolicy{"b.org": {Registration: false, RegistrationCaptcha: true, MaxAccounts: 20, NoFederation: true, Isolated: true}}
	if len(got) != 1 || got["b.org"] != want["b.org"] {
		t.Fatalf("policies %+v, want %+v", got, want)
	}
	if got, want := describeHosts(cfg)["b.org"], "registration closed; at most 20 accounts made by users; isolated: its users reach its own users and services only; without mam, upload; own settings of contact, welcome"; got != want {
		t.Fatalf("the dashboard's line for b.org: %q, want %q", got, want)
	}
	if hostPolicies(config.Defaults("a.org")) != nil {
		t.Fatal("policies without [vhosts]")
	}
	if m := hostModules(cfg); len(m) != 1 || !slices.Equal(m["b.org"], []string{"mam", "upload"}) {
		t.Fatalf("modules per host: %v", m)
	}
}

// TestTemplateModuleKeys: every module setting the first-start file documents (commented
// under [modules]), uncommented, is a key its module takes: modules refuse keys they do
// not know, so a template that drifted from the code would fail the start of whoever
// follows it. A misspelt key is caught the same way.
func TestTemplateModuleKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vireo.toml")
	if err := config.WriteDefault(path, "example.org", false); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile(`^# (\[\[?modules\.[a-z0-9_.]+\]\]?)\s*$`)
	setting := regexp.MustCompile(`^# ([a-z0-9_]+) *= *(.*)$`)
	var out []string
	inModules, n := false, 0
	for _, line := range strings.Split(string(b), "\n") {
		inModules = inModules || line == "[modules]"
		if m := table.FindStringSubmatch(line); inModules && m != nil {
			out = append(out, m[1])
			continue
		}
		// Files named in the examples need not exist here.
		if m := setting.FindStringSubmatch(line); inModules && m != nil && !strings.HasSuffix(m[1], "_file") {
			out = append(out, m[1]+" = "+m[2])
			n++
			continue
		}
		out = append(out, line)
	}
	if n < 50 {
		t.Fatalf("only %d module settings uncommented", n)
	}
	full := strings.Join(out, "\n")
	for _, tc := range []struct{ text, err string }{
		{full, ""},
		{strings.Replace(full, "[modules.mam]\n", "[modules.mam]\nretension = \"1h\"\n", 1), "modules.mam: unknown key retension"},
		{strings.Replace(full, "[modules.muc]\n", "[modules.muc]\n[modules.muc.limits]\nx = 1\n", 1), "modules.muc: unknown key limits"},
	} {
		if err := checkModulesOf(t, path, tc.text); tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Fatalf("checkModules: %v, want %q", err, tc.err)
		}
	}
}

// checkModulesOf writes text to path and returns what checkModules (vireo -t) says.
func checkModulesOf(t *testing.T, path, text string) error {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return checkModules(cfg)
}

// TestHostModuleTables: tables under [vhosts."<host>".modules] are for modules with
// settings per host only, and [modules] tables for modules that exist.
func TestHostModuleTables(t *testing.T) {
	for _, tc := range []struct{ extra, err string }{
		{"", ""},
		{"[vhosts.\"b.org\".modules.mam]\ndefault = \"never\"\n[vhosts.\"b.org\".modules.welcome]\nmessage = \"hi\"\n", ""},
		{"[vhosts.\"b.org\".modules.version]\nname = \"x\"\n", `vhosts."b.org".modules.version: version has no settings per host`},
		{"[vhosts.\"b.org\".modules.nope]\nx = 1\n", `vhosts."b.org".modules.nope: no such module`},
		{"[modules.nope]\nx = 1\n", "modules.nope: no such module"},
		{"[vhosts.\"b.org\".modules.mam]\ndefalt = \"never\"\n", `vhosts."b.org".modules.mam: unknown key defalt`},
		{"[vhosts.\"b.org\".modules.mam]\nsync = true\n", "server-wide"},
	} {
		err := checkModulesOf(t, filepath.Join(t.TempDir(), "vireo.toml"), "domains = [\"a.org\", \"b.org\"]\n"+tc.extra)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %v, want %q", tc.extra, err, tc.err)
		}
	}
}

// TestAdminJIDs: the accounts registration refuses to hand out are every administrator
// the configuration names: ad-hoc's and MUC's, server-wide and per host, each once.
func TestAdminJIDs(t *testing.T) {
	cfg, err := config.Parse([]byte(`domains = ["a.org", "b.org"]
[modules.adhoc]
admins = ["root@a.org", "a.org", "x@a.org/res"]
[modules.muc]
admins = ["mod@a.org", "root@a.org"]
[vhosts."b.org".modules.adhoc]
admins = ["boss@b.org"]
[vhosts."b.org".modules.muc]
admins = ["roomboss@b.org"]
`), filepath.Join(t.TempDir(), "vireo.toml"))
	if err != nil {
		t.Fatal(err)
	}
	got := adminJIDs(cfg)
	slices.Sort(got)
	if want := []string{"boss@b.org", "mod@a.org", "roomboss@b.org", "root@a.org"}; !slices.Equal(got, want) {
		t.Fatalf("adminJIDs = %v, want %v", got, want)
	}
}
