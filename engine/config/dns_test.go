package config

import (
	"strings"
	"testing"
)

func TestDNSRecords(t *testing.T) {
	recs := func(toml, target string, services []string, web map[string]string) string {
		t.Helper()
		c, err := Parse([]byte("domains = [\"a.org\", \"b.org\"]\n"+toml), "/x/v.toml")
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, r := range c.DNSRecords(target, services, web) {
			lines = append(lines, r.String())
		}
		return strings.Join(lines, "\n")
	}
	// The defaults: client ports only; rooms need no record without federation.
	got := recs("", "", []string{"conference.a.org"}, map[string]string{"upload.a.org": "files"})
	for _, want := range []string{
		"_xmpp-client._tcp.a.org. 3600 IN SRV 5 0 5222 a.org.",
		"_xmpps-client._tcp.b.org. 3600 IN SRV 5 0 5223 b.org.",
		"; upload.a.org. 3600 IN A/AAAA",
		"; b.org. 3600 IN A/AAAA",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("defaults lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "conference") || strings.Contains(got, "xmpp-server") {
		t.Errorf("server records without federation:\n%s", got)
	}
	// Federation on, a target host, direct TLS for servers.
	got = recs("[s2s]\nenabled = true\ndirect_tls_listen = [\"[::]:5270\"]\n[c2s]\nlisten = []\n", "xmpp.example.net",
		[]string{"conference.a.org"}, nil)
	for _, want := range []string{
		"_xmpp-server._tcp.a.org. 3600 IN SRV 5 0 5269 xmpp.example.net.",
		"_xmpps-server._tcp.b.org. 3600 IN SRV 5 0 5270 xmpp.example.net.",
		"_xmpp-server._tcp.conference.a.org. 3600 IN SRV 5 0 5269 xmpp.example.net.",
		"; xmpp.example.net. 3600 IN A/AAAA",
		"; conference.a.org. 3600 IN A/AAAA",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("federation lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "_xmpp-client.") {
		t.Errorf("a client SRV record without a STARTTLS listener:\n%s", got)
	}
}

// TestDNSRecordsIDN: a zone holds A-labels, whatever form the configuration names the
// host in.
func TestDNSRecordsIDN(t *testing.T) {
	c, err := Parse([]byte("domains = [\"bücher.example\"]\n"), "/x/v.toml")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range c.DNSRecords("", []string{"conference.bücher.example"}, nil) {
		lines = append(lines, r.String())
	}
	got := strings.Join(lines, "\n")
	if !strings.Contains(got, "_xmpp-client._tcp.xn--bcher-kva.example. 3600 IN SRV 5 0 5222 xn--bcher-kva.example.") ||
		strings.Contains(got, "ü") {
		t.Fatalf("records for an internationalized domain:\n%s", got)
	}
}
