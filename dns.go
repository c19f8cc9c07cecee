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
	"github.com/vireo-im/vireo/modules/proxy65"
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

// directHosts are the host names clients connect to for what modules serve on listeners
// of their own, with why: the file upload service's URLs (XEP-0363), [modules.upload]
// public_url's host or else <subdomain>.<domain>; the file transfer proxy (XEP-0065),
// [modules.proxy65] address or else <subdomain>.<domain> (an IP address needs no record).
// None for a disabled module.
func directHosts(cfg *config.Config) map[string]string {
	out := map[string]string{}
	disabled := cfg.DisabledModules()
	if uc := (upload.Config{}); !slices.Contains(disabled, "upload") && cfg.ModuleConfig("upload", &uc) == nil {
		const why = "clients fetch and upload files here (HTTPS)"
		if u, err := url.Parse(uc.PublicURL); uc.PublicURL != "" && err == nil && u.Hostname() != "" {
			out[u.Hostname()] = why
		} else {
			for _, d := range cfg.Domains {
				out[cmp.Or(uc.Subdomain, upload.DefaultSubdomain)+"."+d] = why
			}
		}
	}
	if pc := (proxy65.Config{}); !slices.Contains(disabled, "proxy65") && cfg.ModuleConfig("proxy65", &pc) == nil {
		const why = "clients relay file transfers here (XEP-0065 SOCKS5)"
		switch {
		case net.ParseIP(pc.Address) != nil:
		case pc.Address != "":
			out[pc.Address] = why
		default:
			for _, d := range cfg.Domains {
				out[cmp.Or(pc.Subdomain, proxy65.DefaultSubdomain)+"."+d] = why
			}
		}
	}
	return out
}
