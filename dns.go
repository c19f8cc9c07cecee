package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/modules/upload"
)

// resolver is what dnsReport looks records up with (net.DefaultResolver).
type resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// dnsReport writes recs as zone-file lines, each with what a lookup through r found
// (each bounded by timeout), and returns how many are missing or differ: `vireo -dns`,
// the check an operator runs after setting up DNS.
func dnsReport(w io.Writer, recs []config.DNSRecord, r resolver, timeout time.Duration) int {
	bad := 0
	fmt.Fprintln(w, "; DNS records for this configuration; each line ends with what a lookup finds now.")
	for _, rec := range recs {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		var found string
		switch rec.Type {
		case "SRV":
			name := strings.TrimPrefix(rec.Name, "_"+rec.Service+"._tcp.")
			_, srvs, err := r.LookupSRV(ctx, rec.Service, "tcp", strings.TrimSuffix(name, "."))
			switch {
			case err != nil || len(srvs) == 0:
				found = "MISSING"
			case slices.ContainsFunc(srvs, func(s *net.SRV) bool {
				return int(s.Port) == rec.Port && strings.EqualFold(strings.TrimSuffix(s.Target, "."), strings.TrimSuffix(rec.Target, "."))
			}):
				found = "ok"
			default:
				var got []string
				for _, s := range srvs {
					got = append(got, fmt.Sprintf("%s:%d", strings.TrimSuffix(s.Target, "."), s.Port))
				}
				found = "DIFFERS: points to " + strings.Join(got, ", ")
			}
		default:
			addrs, err := r.LookupHost(ctx, rec.Target)
			if err != nil || len(addrs) == 0 {
				found = "MISSING"
			} else {
				found = "ok: " + strings.Join(addrs, ", ")
			}
		}
		cancel()
		if found != "ok" && !strings.HasPrefix(found, "ok:") {
			bad++
		}
		fmt.Fprintf(w, "%s   [%s]\n", rec, found)
	}
	if bad > 0 {
		fmt.Fprintf(w, "; %d of %d missing or different.\n", bad, len(recs))
	} else {
		fmt.Fprintf(w, "; all %d found.\n", len(recs))
	}
	return bad
}

// uploadHosts are the host names of the file upload service's URLs (XEP-0363), which
// clients connect to directly: [modules.upload] public_url's host, else
// <subdomain>.<domain> for each domain; none when the module is disabled.
func uploadHosts(cfg *config.Config) []string {
	if slices.Contains(cfg.DisabledModules(), "upload") {
		return nil
	}
	uc := upload.Config{Subdomain: upload.DefaultSubdomain}
	if err := cfg.ModuleConfig("upload", &uc); err != nil {
		return nil
	}
	if uc.PublicURL != "" {
		if u, err := url.Parse(uc.PublicURL); err == nil && u.Hostname() != "" {
			return []string{u.Hostname()}
		}
	}
	var out []string
	for _, d := range cfg.Domains {
		out = append(out, cmp.Or(uc.Subdomain, upload.DefaultSubdomain)+"."+d)
	}
	return out
}
