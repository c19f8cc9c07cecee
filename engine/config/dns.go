package config

import (
	"net"
	"slices"
	"strconv"

	"github.com/vireo-im/vireo/xmlstream/jid"
)

// DNSRecord is one record that clients or other servers look up to reach a domain this
// configuration serves (RFC 6120 §3.2.1, XEP-0368), in zone-file terms.
type DNSRecord struct {
	Name string // owner name, fully qualified with a trailing dot
	Type string // SRV, or ADDR for "an A and/or AAAA record (or a CNAME)"
	// Service and Port are an SRV record's service label (xmpp-client …) and port;
	// Target is where it points (fully qualified), or for ADDR the host itself.
	Service string
	Port    int
	Target  string
	Why     string
}

// String is the record as a zone-file line (ADDR as a comment: its address is the
// machine's, which the configuration does not know).
func (r DNSRecord) String() string {
	if r.Type == "ADDR" {
		return "; " + r.Name + " 3600 IN A/AAAA <this machine's address>   ; " + r.Why
	}
	return r.Name + " 3600 IN SRV 5 0 " + strconv.Itoa(r.Port) + " " + r.Target + "   ; " + r.Why
}

// DNSRecords lists what DNS should hold for each served domain, pointing at target (a
// host name; "" points each domain at itself): SRV records for the client ports
// (STARTTLS and XEP-0368 direct TLS) and, with federation on, for the server ports of the
// domain and of each XMPP service domain in services (rooms, pubsub: other servers'
// users reach them; local users go through their own server and need no record); and an
// address for every name a client or peer connects to, those of hosts (modules' own
// listeners, such as file upload, with why clients connect) included.
func (c *Config) DNSRecords(target string, services []string, hosts map[string]string) []DNSRecord {
	var out []DNSRecord
	fqdn := func(s string) string { return jid.ToASCII(s) + "." } // a zone holds A-labels
	addrs := map[string]string{}
	srv := func(service, name string, listen []string, why string) {
		port := firstPort(listen)
		if port == 0 {
			return
		}
		to := target
		if to == "" {
			to = name
		}
		out = append(out, DNSRecord{Name: "_" + service + "._tcp." + fqdn(name), Type: "SRV", Service: service,
			Port: port, Target: fqdn(to), Why: why})
		if _, ok := addrs[to]; !ok {
			addrs[to] = "the host the SRV records name"
		}
	}
	for _, d := range c.Domains {
		srv("xmpp-client", d, c.C2S.Listen, "clients, STARTTLS (RFC 6120)")
		srv("xmpps-client", d, c.C2S.TLSListen, "clients, direct TLS (XEP-0368)")
		if c.S2S.Enabled {
			srv("xmpp-server", d, c.S2S.Listen, "other servers (RFC 6120)")
			srv("xmpps-server", d, c.S2S.DirectTLSListen, "other servers, direct TLS (XEP-0368)")
		}
		addrs[d] = "web clients (XEP-0156 host-meta, https://" + jid.ToASCII(d) + ") and clients without SRV support"
	}
	for _, s := range services {
		if !c.S2S.Enabled {
			break
		}
		srv("xmpp-server", s, c.S2S.Listen, "other servers' users reach this service")
		if _, ok := addrs[s]; !ok {
			addrs[s] = "other servers' users reach this service"
		}
	}
	for h, why := range hosts {
		if _, ok := addrs[h]; !ok {
			addrs[h] = why
		}
	}
	names := make([]string, 0, len(addrs))
	for n := range addrs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		out = append(out, DNSRecord{Name: fqdn(n), Type: "ADDR", Target: n, Why: addrs[n]})
	}
	return out
}

// firstPort is the port of the first host:port in listen, 0 when there is none.
func firstPort(listen []string) int {
	for _, a := range listen {
		if _, p, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.Atoi(p); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}
