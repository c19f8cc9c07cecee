package main

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/config"
)

// fakeResolver answers from maps; anything else is not found.
type fakeResolver struct {
	srv  map[string][]*net.SRV
	host map[string][]string
}

func (f fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if s, ok := f.srv["_"+service+"._"+proto+"."+name]; ok {
		return "", s, nil
	}
	return "", nil, errors.New("no such host")
}

func (f fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := f.host[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

// TestDNSReport: `vireo -dns` marks each record found, missing, or pointing elsewhere,
// and counts what is not right; the upload service's host comes from its config.
func TestDNSReport(t *testing.T) {
	cfg, err := config.Parse([]byte("domains = [\"a.org\"]\n[modules.upload]\npublic_url = \"https://files.a.org/up\"\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	web := directHosts(cfg)
	if len(web) != 2 || web["files.a.org"] == "" || web["proxy.a.org"] == "" {
		t.Fatalf("hosts of the upload and proxy services %q", web)
	}
	r := fakeResolver{
		srv: map[string][]*net.SRV{
			"_xmpp-client._tcp.a.org":  {{Target: "a.org.", Port: 5222}},
			"_xmpps-client._tcp.a.org": {{Target: "a.org.", Port: 443}},
		},
		host: map[string][]string{"a.org": {"192.0.2.7"}},
	}
	var b strings.Builder
	bad := dnsReport(&b, cfg.DNSRecords("", nil, web), r, time.Second)
	out := b.String()
	for _, want := range []string{
		"_xmpp-client._tcp.a.org. 3600 IN SRV 5 0 5222 a.org.   ; clients, STARTTLS (RFC 6120)   [ok]",
		"[DIFFERS: points to a.org:443]",
		"files.a.org. 3600 IN A/AAAA <this machine's address>   ; clients fetch and upload files here (HTTPS)   [MISSING]",
		"[ok: 192.0.2.7]",
		"proxy.a.org. 3600 IN A/AAAA <this machine's address>   ; clients relay file transfers here (XEP-0065 SOCKS5)   [MISSING]",
		"; 3 of 5 missing or different.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if bad != 3 {
		t.Fatalf("%d bad, want 3", bad)
	}
	cfg, _ = config.Parse([]byte("domains = [\"a.org\"]\n[modules]\ndisabled = [\"upload\"]\n[modules.proxy65]\naddress = \"192.0.2.9\"\n"), "/x/v.toml")
	if h := directHosts(cfg); len(h) != 0 {
		t.Fatalf("disabled upload and a proxy at an IP address have hosts %q", h)
	}
	cfg, _ = config.Parse([]byte("domains = [\"a.org\"]\n[modules]\ndisabled = [\"proxy65\"]\n[modules.upload]\nsubdomain = \"files\"\n"), "/x/v.toml")
	if h := directHosts(cfg); len(h) != 1 || h["files.a.org"] == "" {
		t.Fatalf("upload.subdomain, proxy off: hosts %q", h)
	}
}

// TestRemoteDomains: other servers reach the components as they reach the services, so
// `vireo -dns` lists an SRV record for each, and each host's certificate (ACME) names the
// services and components under it.
func TestRemoteDomains(t *testing.T) {
	cfg, err := config.Parse([]byte("domains = [\"a.org\", \"b.org\"]\n[s2s]\nenabled = true\n"+
		"[[component.allow]]\ndomain = \"push.a.org\"\nsecret = \"12345678\"\n"+
		"[[component.allow]]\ndomain = \"gw.example\"\nsecret = \"12345678\"\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := remoteDomains(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"conference.a.org", "push.a.org", "gw.example"} {
		if !slices.Contains(got, want) {
			t.Errorf("remote domains %q lack %s", got, want)
		}
	}
	var recs []string
	for _, r := range cfg.DNSRecords("", got, nil) {
		recs = append(recs, r.Name)
	}
	if !slices.Contains(recs, "_xmpp-server._tcp.push.a.org.") {
		t.Errorf("no s2s SRV record for the component: %q", recs)
	}
	names := hostNames(cfg.Domains, append(got, "push.a.org"))
	if len(names) != 2 || !slices.Contains(names[0], "push.a.org") || !slices.Contains(names[0], "conference.a.org") ||
		slices.Contains(names[0], "gw.example") || slices.Contains(names[1], "push.a.org") {
		t.Fatalf("certificate names %q", names)
	}
	if n := len(names[0]); n != len(slices.Compact(slices.Sorted(slices.Values(names[0])))) {
		t.Fatalf("a name twice: %q", names[0])
	}
}
