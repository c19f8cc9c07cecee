package config

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDefaultFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vireo.toml")
	if err := WriteDefault(path, "example.org", true); err != nil {
		t.Fatal(err)
	}
	if err := WriteDefault(path, "example.org", true); err == nil {
		t.Fatal("second WriteDefault overwrote an existing file")
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Domains; len(got) != 1 || got[0] != "example.org" {
		t.Fatalf("domains = %v", got)
	}
	// PLAIN over TLS is on by default: mcabber, sendxmpp and go-sendxmpp speak nothing else.
	if !c.C2S.Registration || !c.C2S.RequireTLS || !c.C2S.AllowPlain {
		t.Fatalf("c2s flags = %+v", c.C2S)
	}
	if c.C2S.PingInterval.Duration != 4*time.Minute || c.C2S.PingTimeout.Duration != time.Minute {
		t.Fatalf("ping = %v / %v", c.C2S.PingInterval, c.C2S.PingTimeout)
	}
	if len(c.TrustedPrefixes()) != 2 || c.C2S.RegistrationsPerMin != 10 {
		t.Fatalf("registration limits = %+v", c.C2S)
	}
	if c.C2S.CoalesceWrites.Duration != 10*time.Millisecond {
		t.Fatalf("coalesce_writes = %v", c.C2S.CoalesceWrites)
	}
	if c.C2S.PreAuthTimeout.Duration != 30*time.Second {
		t.Fatalf("pre_auth_timeout = %v", c.C2S.PreAuthTimeout)
	}
	if c.DataDir != filepath.Join(dir, "data") {
		t.Fatalf("data_dir = %q, want it resolved against the file", c.DataDir)
	}
	if c.TLS.Cert != filepath.Join(dir, "data", "certs", "example.org.crt") {
		t.Fatalf("cert = %q", c.TLS.Cert)
	}
	if c.Admin.Socket != filepath.Join(dir, "data", "admin.sock") {
		t.Fatalf("admin socket = %q", c.Admin.Socket)
	}
	if p := c.MetricsAllowPrefixes(); len(p) != 2 || !p[0].Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Fatalf("metrics_allow = %v", p)
	}
	if d := c.DisabledModules(); len(d) != 0 {
		t.Fatalf("disabled = %v", d)
	}
	if !c.Web.Dashboard {
		t.Fatal("web.dashboard is off in the generated file")
	}
	// A file from before the setting existed keeps the dashboard it had.
	if c, err := Parse([]byte(`domains = ["example.org"]`), path); err != nil || !c.Web.Dashboard {
		t.Fatalf("web.dashboard when not set: %v, %v", c, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no domains", `domains = []`, "at least one domain"},
		{"bad domain", `domains = ["a b"]`, "domains"},
		{"dup domain", `domains = ["a.org", "A.org"]`, "twice"},
		{"unknown key", "domains = [\"a.org\"]\nfoo = 1", "unknown keys: foo"},
		{"bad level", "domains = [\"a.org\"]\nlog_level = \"loud\"", "log_level"},
		{"bad duration", "domains = [\"a.org\"]\n[c2s]\npre_auth_timeout = \"soon\"", "pre_auth_timeout"},
		{"coalesce_writes", "domains = [\"a.org\"]\n[c2s]\ncoalesce_writes = \"2s\"", "c2s.coalesce_writes"},
		{"tiny stanza", "domains = [\"a.org\"]\n[c2s]\nmax_stanza = 10", "max_stanza"},
		{"negative rate", "domains = [\"a.org\"]\n[c2s]\nmax_rate = -1", "c2s.max_rate"},
		{"burst under a stanza", "domains = [\"a.org\"]\n[c2s]\nmax_burst = 1000", "c2s.max_burst"},
		{"vhost bad domain", "domains = [\"a.org\"]\n[vhosts.\"a b\"]\nregistration = true", "vhosts"},
		{"vhost twice", "domains = [\"a.org\"]\n[vhosts.\"a.org\"]\n[vhosts.\"A.org\"]", "twice"},
		{"vhost negative max", "domains = [\"a.org\"]\n[vhosts.\"a.org\"]\nmax_accounts = -1", "max_accounts"},
		{"vhost unknown key", "domains = [\"a.org\"]\n[vhosts.\"a.org\"]\nregister = true", "unknown keys: vhosts"},
		{"anonymous domain not served", "domains = [\"a.org\"]\n[c2s]\nanonymous_domains = [\"guest.a.org\"]", "c2s.anonymous_domains"},
		{"shards", "domains = [\"a.org\"]\n[router]\nshards = 0", "shards"},
		{"metrics_allow", "domains = [\"a.org\"]\n[web]\nmetrics_allow = [\"10.0.0.0/33\"]", "web.metrics_allow"},
		{"min_free", "domains = [\"a.org\"]\n[store]\nmin_free = -2", "store.min_free"},
		{"memory_limit", "domains = [\"a.org\"]\n[runtime]\nmemory_limit = \"lots\"", "runtime.memory_limit"},
		{"gc_percent", "domains = [\"a.org\"]\n[runtime]\ngc_percent = -5", "runtime.gc_percent"},
		{"event_loops", "domains = [\"a.org\"]\n[runtime]\nevent_loops = -1", "runtime.event_loops"},
		{"syntax", "domains = [", "config"},
		{"s2s host", "domains = [\"a.org\"]\n[s2s.hosts]\n\"b.org\" = \"no-port\"", "s2s.hosts"},
		{"s2s tls host", "domains = [\"a.org\"]\n[s2s.hosts]\n\"b.org\" = \"tls://no-port\"", "s2s.hosts"},
		{"s2s deny", "domains = [\"a.org\"]\n[s2s]\ndeny = [\"a b\"]", "s2s.deny"},
		{"s2s allow", "domains = [\"a.org\"]\n[s2s]\nallow = [\"\"]", "s2s.allow"},
		{"s2s deny and allow", "domains = [\"a.org\"]\n[s2s]\ndeny = [\"b.org\"]\nallow = [\"B.org\"]", "both deny and allow"},
		{"s2s dialback", "domains = [\"a.org\"]\n[s2s.domains.\"b.org\"]\ndialback = \"maybe\"", "dialback"},
		{"s2s domain twice", "domains = [\"a.org\"]\n[s2s.domains.\"b.org\"]\n[s2s.domains.\"B.org\"]", "listed twice"},
		{"s2s dialback deny without CAs", "domains = [\"a.org\"]\n[s2s.domains.\"b.org\"]\ndialback = \"deny\"", "needs s2s.ca_file"},
		{"federate through no link", "domains = [\"a.org\"]\n[link]\nfederate_through_edges = true", "link.federate_through_edges"},
		{"link secret", "domains = [\"a.org\"]\n[link]\nlisten = [\"10.0.0.1:5290\"]\nsecret = \"short\"", "link.secret"},
		{"edge secret", "domains = [\"a.org\"]\n[edge]\ncore = \"10.0.0.1:5290\"", "edge.secret"},
		{"edge core", "domains = [\"a.org\"]\n[edge]\ncore = \"no-port\"\nsecret = \"0123456789abcdef\"", "edge.core"},
		{"edge and core", "domains = [\"a.org\"]\n[edge]\ncore = \"h:1\"\nsecret = \"0123456789abcdef\"\n[link]\nlisten = [\"h:2\"]\nsecret = \"0123456789abcdef\"", "not both"},
		{"s2s domain key", "domains = [\"a.org\"]\n[s2s.domains.\"b.org\"]\nrequire_certs = true", "unknown keys"},
		{"external without plain", "domains = [\"a.org\"]\n[c2s]\nallow_plain = false\n[auth]\nexternal = [\"/bin/true\"]", "c2s.allow_plain"},
		{"external empty program", "domains = [\"a.org\"]\n[auth]\nexternal = [\"\"]", "auth.external"},
		{"external processes", "domains = [\"a.org\"]\n[auth]\nexternal = [\"check\"]\nexternal_processes = 65", "auth.external_processes"},
		{"auth key", "domains = [\"a.org\"]\n[auth]\nprogram = \"check\"", "unknown keys: auth.program"},
		{"manage without a program", "domains = [\"a.org\"]\n[auth]\nexternal_manage = true", "auth.external_manage"},
		{"component roster privilege", "domains = [\"a.org\"]\n[[component.allow]]\ndomain = \"gw.a.org\"\nsecret = \"12345678\"\n[component.allow.privileges]\nroster = \"all\"", "privileges.roster"},
		{"component message privilege", "domains = [\"a.org\"]\n[[component.allow]]\ndomain = \"gw.a.org\"\nsecret = \"12345678\"\n[component.allow.privileges]\nmessage = \"both\"", "privileges.message"},
		{"component presence privilege", "domains = [\"a.org\"]\n[[component.allow]]\ndomain = \"gw.a.org\"\nsecret = \"12345678\"\n[component.allow.privileges]\npresence = \"contacts\"", "privileges.presence"},
		{"roster presence without reading", "domains = [\"a.org\"]\n[[component.allow]]\ndomain = \"gw.a.org\"\nsecret = \"12345678\"\n[component.allow.privileges]\nroster = \"set\"\npresence = \"roster\"", "needs roster = get or both"},
		{"roster pushes without reading", "domains = [\"a.org\"]\n[[component.allow]]\ndomain = \"gw.a.org\"\nsecret = \"12345678\"\n[component.allow.privileges]\nroster = \"set\"\nroster_push = true", "privileges.roster_push"},
		{"component iq privilege", "domains = [\"a.org\"]\n[[component.allow]]\ndomain = \"gw.a.org\"\nsecret = \"12345678\"\n[component.allow.privileges.iq]\n\"urn:x\" = \"write\"", "privileges.iq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), "/x/vireo.toml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestS2SConfig(t *testing.T) {
	c, err := Parse([]byte("domains = [\"a.org\"]\n[s2s]\nenabled = true\n[s2s.hosts]\n\"B.org\" = \"127.0.0.1:5270\"\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.S2S.Listen) != 1 || c.S2S.Listen[0] != DefaultS2SListen {
		t.Fatalf("listen = %v, want the default", c.S2S.Listen)
	}
	if c.S2S.Hosts["b.org"] != "127.0.0.1:5270" {
		t.Fatalf("hosts = %v, want the domain prepared", c.S2S.Hosts)
	}
	if c.S2S.CAs != nil {
		t.Fatal("CAs without ca_file")
	}
	if c.S2S.RequireValidCerts || c.S2S.IdleTimeout.Duration != DefaultS2SIdleTimeout {
		t.Fatalf("require_valid_certs %v, idle_timeout %v: want false and the default", c.S2S.RequireValidCerts, c.S2S.IdleTimeout)
	}
	c, err = Parse([]byte("domains = [\"a.org\"]\n[s2s]\nenabled = true\nrequire_valid_certs = true\nidle_timeout = \"90s\"\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.S2S.RequireValidCerts || c.S2S.IdleTimeout.Duration != 90*time.Second {
		t.Fatalf("require_valid_certs %v, idle_timeout %v: want true and 90s", c.S2S.RequireValidCerts, c.S2S.IdleTimeout)
	}
}

func TestS2SConfigDirectTLSAndPolicy(t *testing.T) {
	dir := t.TempDir()
	crt, _, err := SelfSigned([]string{"ca.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "ca.pem"), crt, 0o600)
	in := `domains = ["a.org"]
[s2s]
enabled = true
ca_file = "ca.pem"
direct_tls_listen = ["127.0.0.1:5270"]
require_valid_certs = true
deny = ["Spam.example", "*.Bad.example"]
allow = []
[s2s.hosts]
"b.org" = "tls://127.0.0.1:5270"
[s2s.domains."Lax.example"]
require_valid_certs = false
[s2s.domains."strict.example"]
dialback = "deny"
`
	c, err := Parse([]byte(in), filepath.Join(dir, "v.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.S2S.DirectTLSListen) != 1 || c.S2S.DirectTLSListen[0] != "127.0.0.1:5270" || len(c.S2S.Listen) != 1 {
		t.Fatalf("listen %v, direct_tls_listen %v", c.S2S.Listen, c.S2S.DirectTLSListen)
	}
	if c.S2S.Hosts["b.org"] != "tls://127.0.0.1:5270" {
		t.Fatalf("hosts = %v", c.S2S.Hosts)
	}
	if len(c.S2S.Deny) != 2 || c.S2S.Deny[0] != "spam.example" || c.S2S.Deny[1] != "*.bad.example" || len(c.S2S.Allow) != 0 {
		t.Fatalf("deny %v, allow %v: want them prepared", c.S2S.Deny, c.S2S.Allow)
	}
	for _, tc := range []struct {
		domain   string
		listed   bool
		require  bool
		dialback string
	}{
		{"lax.example", true, false, "allow"},
		{"strict.example", true, true, "deny"},
		{"other.example", false, true, ""},
	} {
		d, ok := c.S2S.Domains[tc.domain]
		if ok != tc.listed || d.RequireCerts(c.S2S.RequireValidCerts) != tc.require || d.Dialback != tc.dialback {
			t.Fatalf("%s: %+v (%v)", tc.domain, d, ok)
		}
	}
	// Off unless configured.
	c, err = Parse([]byte("domains = [\"a.org\"]\n[s2s]\nenabled = true\n"), "/x/v.toml")
	if err != nil || len(c.S2S.DirectTLSListen) != 0 {
		t.Fatalf("direct_tls_listen %v, %v: want none by default", c.S2S.DirectTLSListen, err)
	}
}

func TestS2SConfigCAFile(t *testing.T) {
	dir := t.TempDir()
	crt, _, err := SelfSigned([]string{"ca.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "ca.pem"), crt, 0o600)
	os.WriteFile(filepath.Join(dir, "empty.pem"), []byte("nothing here"), 0o600)
	in := "domains = [\"a.org\"]\n[s2s]\nenabled = true\nca_file = \"%s\"\n"
	c, err := Parse([]byte(fmt.Sprintf(in, "ca.pem")), filepath.Join(dir, "v.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.S2S.CAFile != filepath.Join(dir, "ca.pem") || c.S2S.CAs == nil {
		t.Fatalf("ca_file = %q, CAs %v: want it resolved beside the config and loaded", c.S2S.CAFile, c.S2S.CAs)
	}
	for _, f := range []string{"empty.pem", "missing.pem"} {
		if _, err := Parse([]byte(fmt.Sprintf(in, f)), filepath.Join(dir, "v.toml")); err == nil || !strings.Contains(err.Error(), "s2s.ca_file") {
			t.Fatalf("%s: err = %v", f, err)
		}
	}
}

func TestModuleTables(t *testing.T) {
	c, err := Parse([]byte("domains = [\"a.org\"]\n[modules]\ndisabled = [\"version\"]\n[modules.offline]\nquota = 5\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.DisabledModules(); len(d) != 1 || d[0] != "version" {
		t.Fatalf("disabled = %v", d)
	}
	var v struct{ Quota int }
	if err := c.ModuleConfig("offline", &v); err != nil || v.Quota != 5 {
		t.Fatalf("offline quota = %d, %v", v.Quota, err)
	}
	if err := c.ModuleConfig("absent", &v); err != nil {
		t.Fatal(err)
	}
}

func TestCertsSNIAndReload(t *testing.T) {
	dir := t.TempDir()
	c := Defaults("a.org")
	c.path = filepath.Join(dir, "v.toml")
	if err := c.normalize(); err != nil {
		t.Fatal(err)
	}
	created, err := EnsureCert(c.TLS.Cert, c.TLS.Key, []string{"a.org", "b.org"})
	if err != nil || !created {
		t.Fatalf("EnsureCert = %v, %v", created, err)
	}
	if created, err := EnsureCert(c.TLS.Cert, c.TLS.Key, []string{"a.org"}); err != nil || created {
		t.Fatalf("second EnsureCert = %v, %v; want existing files kept", created, err)
	}
	if fi, err := os.Stat(c.TLS.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode = %v, %v", fi.Mode(), err)
	}
	cs, err := LoadCerts(c)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cs.TLSConfig()
	for _, name := range []string{"a.org", "b.org", "conference.a.org", "unknown.net", ""} {
		crt, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if err != nil || crt == nil || crt.Leaf.Subject.CommonName != "a.org" {
			t.Fatalf("%q: cert %v err %v", name, crt, err)
		}
	}
	first := cs.cur.Load().def
	os.Remove(c.TLS.Cert)
	os.Remove(c.TLS.Key)
	if _, err := EnsureCert(c.TLS.Cert, c.TLS.Key, []string{"a.org"}); err != nil {
		t.Fatal(err)
	}
	if err := cs.Reload(c); err != nil {
		t.Fatal(err)
	}
	if cs.cur.Load().def == first {
		t.Fatal("reload kept the old certificate")
	}
}

// TestCertsIDN: an internationalized host's certificate names its A-labels (a dNSName is
// IA5; the first start failed on it), covers the host whatever form names it (SNI carries
// A-labels, the configuration U-labels), and needs no certificate of its own.
func TestCertsIDN(t *testing.T) {
	dir := t.TempDir()
	c := Defaults("bücher.example")
	c.path = filepath.Join(dir, "v.toml")
	c.Domains = append(c.Domains, "plain.example")
	if err := c.normalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCert(c.TLS.Cert, c.TLS.Key, []string{"bücher.example"}); err != nil {
		t.Fatal(err)
	}
	made, err := EnsureHostCerts(c)
	if err != nil || !slices.Equal(made, []string{"plain.example"}) {
		t.Fatalf("EnsureHostCerts made %v, %v; want plain.example's only", made, err)
	}
	cs, err := LoadCerts(c)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cs.TLSConfig()
	for _, name := range []string{"xn--bcher-kva.example", "XN--BCHER-KVA.example.", "conference.xn--bcher-kva.example"} {
		crt, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if err != nil || crt == nil || crt.Leaf.VerifyHostname(name) != nil {
			t.Fatalf("SNI %q: cert %v err %v", name, crt, err)
		}
	}
	if leaf, _ := cs.Served("bücher.example"); leaf == nil || leaf.Subject.CommonName != "xn--bcher-kva.example" {
		t.Fatalf("served for bücher.example: %v", leaf)
	}
	if leaf, _ := cs.Served("plain.example"); leaf == nil || leaf.VerifyHostname("plain.example") != nil {
		t.Fatalf("served for plain.example: %v", leaf)
	}
}

func TestACMEConfig(t *testing.T) {
	dir := t.TempDir()
	crt, _, err := SelfSigned([]string{"ca.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "roots.pem"), crt, 0o600)
	path := filepath.Join(dir, "v.toml")
	c, err := Parse([]byte("domains = [\"a.org\"]\n[tls]\nacme = true\n"), path)
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.ACMEDirectory != DefaultACMEDirectory || c.TLS.ACMEChallenge != "http-01" ||
		c.TLS.ACMERenewBefore.Duration != DefaultACMERenewBefore || c.TLS.ACMERoots != nil {
		t.Errorf("defaults: %+v", c.TLS)
	}
	if c.ACMEDir() != filepath.Join(dir, "data", "acme") {
		t.Errorf("ACMEDir = %s", c.ACMEDir())
	}
	c, err = Parse([]byte("domains = [\"a.org\"]\n[tls]\nacme = true\nacme_challenge = \"tls-alpn-01\"\n"+
		"acme_ca_roots = \"roots.pem\"\nacme_renew_before = \"240h\"\n"), path)
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.ACMERoots == nil || c.TLS.ACMERenewBefore.Duration != 240*time.Hour || c.TLS.ACMEChallenge != "tls-alpn-01" {
		t.Errorf("set: %+v", c.TLS)
	}
	for _, bad := range []string{
		"acme_challenge = \"dns-01\"",
		"acme_ca_roots = \"missing.pem\"",
		"acme = true\nacme_renew_before = \"0s\"",
	} {
		if _, err := Parse([]byte("domains = [\"a.org\"]\n[tls]\n"+bad+"\n"), path); err == nil || !strings.Contains(err.Error(), "tls.acme") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

// TestACMECertsFirst: certificates from SetFirst win over the files, and a nil answer
// falls back to them; SetChallenge answers only a ClientHello offering acme-tls/1 alone.
func TestACMECertsFirst(t *testing.T) {
	dir := t.TempDir()
	crt, key, err := SelfSigned([]string{"a.org"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := &Config{TLS: TLS{Cert: filepath.Join(dir, "c.pem"), Key: filepath.Join(dir, "k.pem")}}
	os.WriteFile(c.TLS.Cert, crt, 0o600)
	os.WriteFile(c.TLS.Key, key, 0o600)
	cs, err := LoadCerts(c)
	if err != nil {
		t.Fatal(err)
	}
	files := cs.cur.Load().def
	acme, chal := new(tls.Certificate), new(tls.Certificate)
	cs.SetFirst(func(name string) *tls.Certificate {
		if name == "a.org" {
			return acme
		}
		return nil
	})
	cs.SetChallenge(func(name string) *tls.Certificate {
		if name == "a.org" {
			return chal
		}
		return nil
	})
	tc := cs.TLSConfig()
	for name, want := range map[string]*tls.Certificate{"A.org.": acme, "b.org": files} {
		if got, _ := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: name}); got != want {
			t.Errorf("%s: got %p, want %p", name, got, want)
		}
		wantFile := c.TLS.Cert
		if want == acme {
			wantFile = ""
		}
		if leaf, file := cs.Served(name); leaf != want.Leaf || file != wantFile {
			t.Errorf("Served(%s) = %p from %q; want %p from %q", name, leaf, file, want.Leaf, wantFile)
		}
	}
	for _, tt := range []struct {
		protos []string
		name   string
		want   bool
	}{
		{[]string{ACMEALPN}, "a.org", true},
		{[]string{ACMEALPN}, "b.org", false},
		{[]string{ACMEALPN, "xmpp-client"}, "a.org", false},
		{[]string{"xmpp-client"}, "a.org", false},
	} {
		got, err := tc.GetConfigForClient(&tls.ClientHelloInfo{ServerName: tt.name, SupportedProtos: tt.protos})
		if err != nil || (got != nil) != tt.want {
			t.Errorf("%v %s: config %v, err %v; want one: %v", tt.protos, tt.name, got != nil, err, tt.want)
		}
	}
}

func TestWebConfig(t *testing.T) {
	c, err := Parse([]byte("domains = [\"a.org\"]\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Web.BOSHInactivity.Duration != 60*time.Second || c.Web.BOSHWait.Duration != 60*time.Second {
		t.Fatalf("bosh_inactivity %v, bosh_wait %v: want the 60s defaults", c.Web.BOSHInactivity, c.Web.BOSHWait)
	}
	if p := c.TrustedProxyPrefixes(); fmt.Sprint(p) != "[127.0.0.0/8 ::1/128]" {
		t.Fatalf("trusted_proxies = %v, want loopback by default", p)
	}
	if _, err := Parse([]byte("domains = [\"a.org\"]\n[web]\nforwarded_header = \"x-real-ip\"\n"), "/x/v.toml"); err == nil || !strings.Contains(err.Error(), "forwarded_header") {
		t.Fatalf("forwarded_header = x-real-ip: %v, want an error naming it", err)
	}
	if none, err := Parse([]byte("domains = [\"a.org\"]\n[web]\ntrusted_proxies = []\n"), "/x/v.toml"); err != nil || len(none.TrustedProxyPrefixes()) != 0 {
		t.Fatalf("trusted_proxies = []: %v %v, want none", none.TrustedProxyPrefixes(), err)
	}
	// Pages' URLs: the first tls_listen's port on each domain, none without TLS, or
	// public_url as written.
	for _, tc := range []struct{ web, domain, want string }{
		{"", "a.org", "https://a.org:5443"},
		{"tls_listen = [\"[::]:443\"]", "a.org", "https://a.org"},
		{"tls_listen = []", "a.org", ""},
		{"public_url = \"https://chat.a.org/xmpp/\"", "b.org", "https://chat.a.org/xmpp"},
	} {
		c, err := Parse([]byte("domains = [\"a.org\"]\n[web]\n"+tc.web+"\n"), "/x/v.toml")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.WebURL(tc.domain); got != tc.want {
			t.Errorf("%s: WebURL(%s) = %q, want %q", tc.web, tc.domain, got, tc.want)
		}
	}
	c, err = Parse([]byte("domains = [\"a.org\"]\n[web]\nbosh_inactivity = \"5m\"\nbosh_wait = \"30s\"\n"+
		"trusted_proxies = [\"127.0.0.1/32\", \"2001:db8::1/128\"]\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Web.BOSHInactivity.Duration != 5*time.Minute || c.Web.BOSHWait.Duration != 30*time.Second {
		t.Fatalf("bosh_inactivity %v, bosh_wait %v", c.Web.BOSHInactivity, c.Web.BOSHWait)
	}
	if p := c.TrustedProxyPrefixes(); len(p) != 2 || !p[1].Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Fatalf("trusted_proxies = %v", p)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"wait short", "bosh_wait = \"1s\"", "web.bosh_wait"},
		{"wait long", "bosh_wait = \"5m\"", "web.bosh_wait"},
		{"inactivity short", "bosh_inactivity = \"2s\"", "web.bosh_inactivity"},
		{"inactivity long", "bosh_inactivity = \"2h\"", "web.bosh_inactivity"},
		{"bad duration", "bosh_wait = \"soon\"", "bosh_wait"},
		{"proxy", "trusted_proxies = [\"10.0.0.1\"]", "web.trusted_proxies"},
		{"public_url scheme", "public_url = \"ftp://a.org\"", "web.public_url"},
		{"public_url query", "public_url = \"https://a.org/?x=1\"", "web.public_url"},
		{"public_url host", "public_url = \"https:///path\"", "web.public_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("domains = [\"a.org\"]\n[web]\n"+tc.in+"\n"), "/x/v.toml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestChangedModules: what a reload reports as waiting for a restart: module tables
// added, removed or edited, and the disabled list; reordered keys are no change.
func TestChangedModules(t *testing.T) {
	base := "domains = [\"a.org\"]\n"
	for _, tc := range []struct {
		name, a, b string
		want       []string
	}{
		{"same", "[modules.muc]\nmax_rooms = 5\nname = \"Rooms\"\n", "[modules.muc]\nname = \"Rooms\"\nmax_rooms = 5\n", nil},
		{"edited", "[modules.muc]\nmax_rooms = 5\n", "[modules.muc]\nmax_rooms = 6\n", []string{"muc"}},
		{"added and removed", "[modules.muc]\nmax_rooms = 5\n", "[modules.adhoc]\nadmins = [\"x@a.org\"]\n", []string{"adhoc", "muc"}},
		{"disabled", "[modules]\ndisabled = [\"mam\"]\n", "[modules]\ndisabled = []\n", []string{"disabled"}},
		{"host table edited", "[vhosts.\"b.org\".modules.mam]\ndefault = \"never\"\n", "[vhosts.\"b.org\".modules.mam]\ndefault = \"roster\"\n", []string{"mam"}},
		{"host table added", "[modules.mam]\ndefault = \"never\"\n", "[modules.mam]\ndefault = \"never\"\n[vhosts.\"b.org\".modules.mam]\nmax_page = 5\n", []string{"mam"}},
		{"host table same", "[vhosts.\"b.org\".modules.mam]\ndefault = \"never\"\n", "[vhosts.\"b.org\"]\nmax_accounts = 5\n[vhosts.\"b.org\".modules.mam]\ndefault = \"never\"\n", nil},
		{"none", "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse([]byte(base+tc.a), "/x/v.toml")
			if err != nil {
				t.Fatal(err)
			}
			b, err := Parse([]byte(base+tc.b), "/x/v.toml")
			if err != nil {
				t.Fatal(err)
			}
			if got := a.ChangedModules(b); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestVHosts: a [vhosts] table overrides the server-wide settings it sets and leaves the
// others; a host without a table follows them all; a table may name a domain not served
// (yet: vireoctl vhost add brings it in force).
func TestVHosts(t *testing.T) {
	c, err := Parse([]byte(`domains = ["a.org", "b.org"]
[c2s]
registration = true
[vhosts."B.org"]
registration = false
max_accounts = 500
federation = false
isolated = true
[vhosts."later.org"]
registration_captcha = true
`), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		want ResolvedVHost
	}{
		{"a.org", ResolvedVHost{Registration: true, Federation: true}},
		{"b.org", ResolvedVHost{Registration: false, Federation: false, Isolated: true, MaxAccounts: 500}},
		{"later.org", ResolvedVHost{Registration: true, RegistrationCaptcha: true, Federation: true}},
	} {
		if got := c.Host(tc.host); got != tc.want {
			t.Errorf("Host(%q) = %+v, want %+v", tc.host, got, tc.want)
		}
	}
	if _, ok := c.VHosts["b.org"]; !ok {
		t.Errorf("the table's domain is not prepared: %v", c.VHosts)
	}
}

// TestModuleSettings: a module's table is decoded whole and a key its settings lack is
// an error naming it, nested tables and arrays of tables included, matched as the TOML
// decoder matches (tags, else names case-insensitively, embedded structs flattened); a
// host's table is decoded over the server-wide one, keeping what it leaves out.
func TestModuleSettings(t *testing.T) {
	type Service struct {
		Host string `toml:"host"`
		Port int    `toml:"port"`
	}
	type Common struct {
		Name string `toml:"name"`
	}
	type Settings struct {
		Common
		Quota    int               `toml:"quota"`
		Admins   []string          `toml:"admins"`
		Limits   struct{ Max int } `toml:"limits"`
		Services []Service         `toml:"services"`
		Extra    map[string]int    `toml:"extra"`
		Untagged string
	}
	for _, tc := range []struct{ name, table, err string }{
		{"known", "quota = 5\nadmins = [\"a@a.org\"]\nname = \"x\"\nuntagged = \"y\"\n[modules.m.limits]\nmax = 3\n[modules.m.extra]\nanything = 1\n[[modules.m.services]]\nhost = \"h\"\nport = 1\n", ""},
		{"typo", "quotaa = 5\n", "modules.m: unknown key quotaa"},
		{"nested", "[modules.m.limits]\nmin = 3\n", "unknown key limits.min"},
		{"array of tables", "[[modules.m.services]]\nhost = \"h\"\n[[modules.m.services]]\nprot = 1\n", "unknown key services.prot"},
		{"wrong type", "quota = \"five\"\n", "modules.m:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("domains = [\"a.org\"]\n[modules.m]\n"+tc.table), "/x/v.toml")
			if err != nil {
				t.Fatal(err)
			}
			var v Settings
			err = c.ModuleSettings("m", &v)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			// ModuleConfig, for readers that take part of a table, stays lenient.
			var part struct{ Name string }
			if err := c.ModuleConfig("m", &part); err != nil && tc.name != "wrong type" {
				t.Fatalf("ModuleConfig: %v", err)
			}
		})
	}

	c, err := Parse([]byte(`domains = ["a.org", "b.org"]
[modules.m]
quota = 5
admins = ["a@a.org"]
[vhosts."b.org".modules.m]
admins = ["b@b.org"]
[vhosts."c.org".modules.m]
quota = 7
[vhosts."c.org".modules.other]
quota = 1
`), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.HostModuleTables("m"); !slices.Equal(got, []string{"b.org", "c.org"}) {
		t.Fatalf("hosts with tables: %v", got)
	}
	if got := c.HostModuleIDs(); !slices.Equal(got, []string{"m", "other"}) {
		t.Fatalf("modules with host tables: %v", got)
	}
	for host, want := range map[string]Settings{
		"a.org": {Quota: 5, Admins: []string{"a@a.org"}},
		"b.org": {Quota: 5, Admins: []string{"b@b.org"}},
		"c.org": {Quota: 7, Admins: []string{"a@a.org"}},
	} {
		var v Settings
		if err := c.HostModuleSettings(host, "m", &v); err != nil || v.Quota != want.Quota || !slices.Equal(v.Admins, want.Admins) {
			t.Errorf("%s: %+v, %v; want %+v", host, v, err, want)
		}
	}
	bad, err := Parse([]byte("domains = [\"a.org\"]\n[vhosts.\"b.org\".modules.m]\nquotum = 1\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	var v Settings
	if err := bad.HostModuleSettings("b.org", "m", &v); err == nil || !strings.Contains(err.Error(), `vhosts."b.org".modules.m: unknown key quotum`) {
		t.Fatalf("a typo in a host table: %v", err)
	}

	// WithModule takes the module's host tables from the other file too.
	next, err := Parse([]byte(`domains = ["a.org"]
[modules.m]
quota = 6
[vhosts."b.org".modules.m]
quota = 9
`), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	w := c.WithModule("m", next)
	if got := w.HostModuleTables("m"); !slices.Equal(got, []string{"b.org"}) {
		t.Fatalf("after WithModule: hosts %v", got)
	}
	v = Settings{}
	if err := w.HostModuleSettings("b.org", "m", &v); err != nil || v.Quota != 9 || v.Admins != nil {
		t.Fatalf("after WithModule: %+v, %v", v, err)
	}
	if got := w.HostModuleTables("other"); !slices.Equal(got, []string{"c.org"}) {
		t.Fatalf("after WithModule, another module's hosts: %v", got)
	}
}

// TestModuleConfigConcurrent: module tables may be decoded at once from several
// goroutines (the dashboard reads the administrators on each request): the decoder
// records what it decoded in metadata they share (run with -race).
func TestModuleConfigConcurrent(t *testing.T) {
	c, err := Parse([]byte("domains = [\"a.org\"]\n[modules.adhoc]\nadmins = [\"a@a.org\"]\n[vhosts.\"a.org\".modules.adhoc]\nadmins = [\"b@a.org\"]\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				var v struct{ Admins []string }
				if err := c.HostModuleSettings("a.org", "adhoc", &v); err != nil || len(v.Admins) != 1 || v.Admins[0] != "b@a.org" {
					t.Errorf("%+v, %v", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestEnsureCertCrashBetweenRenames: the key and certificate are written whole and
// synced before they take their names, the key first; a crash between the two renames
// leaves the certificate's temporary file, which the next start renames.
func TestEnsureCertCrashBetweenRenames(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	if _, err := EnsureCert(cert, key, []string{"a.org"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cert, cert+".tmp"); err != nil { // as the crash leaves it
		t.Fatal(err)
	}
	if created, err := EnsureCert(cert, key, []string{"a.org"}); err != nil || created {
		t.Fatalf("after the crash: created %v, %v", created, err)
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		t.Fatalf("the pair after recovery: %v", err)
	}
	if fi, err := os.Stat(cert); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("certificate mode %v, %v", fi.Mode(), err)
	}
}

// TestHostRemovalBlocked: a host where a server-wide administrator has its account may
// not leave the served hosts (the next start would refuse the administrator); another
// may.
func TestHostRemovalBlocked(t *testing.T) {
	c, err := Parse([]byte("domains = [\"a.org\", \"b.org\"]\n[modules.adhoc]\nadmins = [\"root@a.org\"]\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HostRemovalBlocked("a.org"); err == nil || !strings.Contains(err.Error(), "root@a.org") {
		t.Fatalf("removing a.org: %v, want the administrator named", err)
	}
	if err := c.HostRemovalBlocked("b.org"); err != nil {
		t.Fatalf("removing b.org: %v", err)
	}
}
