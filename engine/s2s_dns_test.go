package engine

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
)

// fakeDNS is an S2SResolver from tables: SRV records by query name
// ("_xmpp-server._tcp.example.org"), addresses by host.
type fakeDNS struct {
	srv   map[string][]*net.SRV
	hosts map[string][]string
	asked []string
}

func (f *fakeDNS) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	q := "_" + service + "._" + proto + "." + name
	f.asked = append(f.asked, q)
	if r, ok := f.srv[q]; ok {
		return q, r, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: q, IsNotFound: true}
}

func (f *fakeDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	f.asked = append(f.asked, host)
	if r, ok := f.hosts[host]; ok {
		return r, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var _ S2SResolver = (*fakeDNS)(nil)
var _ S2SResolver = net.DefaultResolver

func TestS2SCandidates(t *testing.T) {
	dns := &fakeDNS{
		srv: map[string][]*net.SRV{
			// As net.LookupSRV returns them: sorted by priority, weighted within one.
			"_xmpp-server._tcp.srv.example": {{Target: "xmpp1.srv.example.", Port: 5270, Priority: 5}, {Target: "gone.srv.example.", Port: 5269, Priority: 10},
				{Target: "xmpp2.srv.example.", Port: 15269, Priority: 20}},
			"_xmpp-server._tcp.none.example": {{Target: ".", Port: 0}},
			"_xmpp-server._tcp.dead.example": {{Target: "gone.dead.example.", Port: 5269}},
			// XEP-0368: both services, merged by priority; a direct TLS record ties
			// ahead of a STARTTLS one.
			"_xmpp-server._tcp.both.example":  {{Target: "xmpp1.srv.example.", Port: 5269, Priority: 10}, {Target: "xmpp2.srv.example.", Port: 5269, Priority: 30}},
			"_xmpps-server._tcp.both.example": {{Target: "xmpp2.srv.example.", Port: 5270, Priority: 20}, {Target: "xmpp2.srv.example.", Port: 443, Priority: 10}},
			// Direct TLS only.
			"_xmpps-server._tcp.tls.example": {{Target: "xmpp2.srv.example.", Port: 5270}},
			// "." for direct TLS: STARTTLS records still count (XEP-0368 §5).
			"_xmpps-server._tcp.nodirect.example": {{Target: ".", Port: 0}},
			"_xmpp-server._tcp.nodirect.example":  {{Target: "xmpp2.srv.example.", Port: 5269}},
			// "." for direct TLS and no STARTTLS records: no fallback to the domain.
			"_xmpps-server._tcp.dotonly.example": {{Target: ".", Port: 0}},
			// Targets on this host, a cloud's metadata address, or an IP literal of one.
			"_xmpp-server._tcp.inward.example": {{Target: "local.inward.example.", Port: 22, Priority: 1},
				{Target: "169.254.169.254.", Port: 80, Priority: 2}, {Target: "xmpp2.srv.example.", Port: 5269, Priority: 3}},
		},
		hosts: map[string][]string{
			"xmpp1.srv.example":     {"192.0.2.1", "2001:db8::1"},
			"xmpp2.srv.example":     {"192.0.2.2"},
			"plain.example":         {"192.0.2.9"},
			"listed.example":        {"192.0.2.99"},
			"dotonly.example":       {"192.0.2.98"},
			"local.inward.example":  {"127.0.0.1", "::1", "0.0.0.0", "ff02::1"},
			"169.254.169.254":       {"169.254.169.254"},
			"many.example":          {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6", "192.0.2.7", "192.0.2.8", "192.0.2.9", "192.0.2.10"},
			"loop.example":          {"127.0.0.1"},
			"xn--bcher-kva.example": {"192.0.2.77"},
			"lan.example":           {"10.1.2.3", "172.16.0.9", "192.168.1.1", "100.64.0.1", "fd00::1", "192.0.2.5"},
		},
	}
	cfg := &S2S{Resolver: dns, Hosts: map[string]string{"listed.example": "127.0.0.1:5299", "tlslisted.example": "tls://127.0.0.1:5270"}}
	starttls := func(a string) s2sTarget { return s2sTarget{addr: a} }
	direct := func(a string) s2sTarget { return s2sTarget{addr: a, directTLS: true} }
	srvQ := func(d string) []string { return []string{"_xmpp-server._tcp." + d, "_xmpps-server._tcp." + d} }
	for _, tc := range []struct {
		domain     string
		publicOnly bool
		want       []s2sTarget
		err        error
		asked      []string
	}{
		// [s2s.hosts] wins without a lookup; "tls://" marks direct TLS.
		{domain: "listed.example", want: []s2sTarget{starttls("127.0.0.1:5299")}},
		{domain: "tlslisted.example", want: []s2sTarget{direct("127.0.0.1:5270")}},
		// SRV targets in order, every address of each, their own ports; a target without
		// addresses is skipped (RFC 6120 §3.2.1).
		{domain: "srv.example", want: []s2sTarget{starttls("192.0.2.1:5270"), starttls("[2001:db8::1]:5270"), starttls("192.0.2.2:15269")},
			asked: append(srvQ("srv.example"), "xmpp1.srv.example", "gone.srv.example", "xmpp2.srv.example")},
		{domain: "both.example", want: []s2sTarget{direct("192.0.2.2:443"), starttls("192.0.2.1:5269"), starttls("[2001:db8::1]:5269"),
			direct("192.0.2.2:5270"), starttls("192.0.2.2:5269")},
			asked: append(srvQ("both.example"), "xmpp2.srv.example", "xmpp1.srv.example", "xmpp2.srv.example", "xmpp2.srv.example")},
		{domain: "tls.example", want: []s2sTarget{direct("192.0.2.2:5270")}, asked: append(srvQ("tls.example"), "xmpp2.srv.example")},
		{domain: "nodirect.example", want: []s2sTarget{starttls("192.0.2.2:5269")}, asked: append(srvQ("nodirect.example"), "xmpp2.srv.example")},
		// No SRV records: the domain itself on 5269 (§3.2.2).
		{domain: "plain.example", want: []s2sTarget{starttls("192.0.2.9:5269")}, asked: append(srvQ("plain.example"), "plain.example")},
		// "." : decidedly no service, and no fallback.
		{domain: "none.example", err: errS2SNoService, asked: srvQ("none.example")},
		{domain: "dotonly.example", err: errS2SNoService, asked: srvQ("dotonly.example")},
		// SRV records whose targets do not resolve: no fallback to the domain either.
		{domain: "dead.example", err: errS2SNoAddress, asked: append(srvQ("dead.example"), "gone.dead.example")},
		// Nothing at all.
		{domain: "nx.example", err: errS2SNoAddress, asked: append(srvQ("nx.example"), "nx.example")},
		// DNS naming this host, link-local or unspecified addresses: skipped.
		{domain: "inward.example", want: []s2sTarget{starttls("192.0.2.2:5269")},
			asked: append(srvQ("inward.example"), "local.inward.example", "169.254.169.254", "xmpp2.srv.example")},
		{domain: "loop.example", err: errS2SNoAddress, asked: append(srvQ("loop.example"), "loop.example")},
		// An internationalized domain is looked up by its A-labels.
		{domain: "bücher.example", want: []s2sTarget{starttls("192.0.2.77:5269")},
			asked: append(srvQ("xn--bcher-kva.example"), "xn--bcher-kva.example")},
		// At most maxTargetAddrs addresses of one name.
		{domain: "many.example", want: []s2sTarget{starttls("192.0.2.1:5269"), starttls("192.0.2.2:5269"), starttls("192.0.2.3:5269"),
			starttls("192.0.2.4:5269"), starttls("192.0.2.5:5269"), starttls("192.0.2.6:5269"), starttls("192.0.2.7:5269"), starttls("192.0.2.8:5269")},
			asked: append(srvQ("many.example"), "many.example")},
		// Private addresses are dialed unless public_only says otherwise (below).
		{domain: "lan.example", want: []s2sTarget{starttls("10.1.2.3:5269"), starttls("172.16.0.9:5269"), starttls("192.168.1.1:5269"),
			starttls("100.64.0.1:5269"), starttls("[fd00::1]:5269"), starttls("192.0.2.5:5269")}, asked: append(srvQ("lan.example"), "lan.example")},
		{domain: "lan.example", publicOnly: true, want: []s2sTarget{starttls("192.0.2.5:5269")}, asked: append(srvQ("lan.example"), "lan.example")},
		// [s2s.hosts] entries are the operator's word: dialed even so.
		{domain: "listed.example", publicOnly: true, want: []s2sTarget{starttls("127.0.0.1:5299")}},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			dns.asked = nil
			cfg.PublicOnly = tc.publicOnly
			got, err := s2sCandidates(context.Background(), cfg, tc.domain)
			if !errors.Is(err, tc.err) || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tc.want, tc.err)
			}
			if !slices.Equal(dns.asked, tc.asked) {
				t.Fatalf("asked %v, want %v", dns.asked, tc.asked)
			}
		})
	}
}

// TestS2SSRVOrder checks the RFC 2782 draw over the merged records with a scripted
// random source: priority first, then the weighted draw, weight 0 first in the sum.
func TestS2SSRVOrder(t *testing.T) {
	rec := func(name string, prio, weight uint16, direct bool) srvRecord {
		return srvRecord{SRV: &net.SRV{Target: name, Priority: prio, Weight: weight}, directTLS: direct}
	}
	recs := []srvRecord{rec("p20", 20, 0, false), rec("w10", 10, 10, false), rec("w30", 10, 30, true),
		rec("w0", 10, 0, false), rec("w0tls", 10, 0, true)}
	for _, tc := range []struct {
		name  string
		draws []int // the draws made, in order; each must be below the n asked for
		n     []int // the n each draw is asked for: sum of the weights left, plus one
		want  []string
	}{
		// Draw 0 each time: the weight-0 records first (direct TLS ahead), then the first
		// weighted one in the running sum.
		{name: "zeros", draws: []int{0, 0, 0, 0, 0}, n: []int{41, 41, 41, 11, 1}, want: []string{"w0tls", "w0", "w30", "w10", "p20"}},
		// Draw 40 (the whole sum) first: the last in the running sum, w10 (order w0tls,
		// w0, w30, w10); then 30 of the 30 left: w30; then the zeros.
		{name: "top", draws: []int{40, 30, 0, 0, 0}, n: []int{41, 31, 1, 1, 1}, want: []string{"w10", "w30", "w0tls", "w0", "p20"}},
		// Draw 1: past the zeros, into w30's share.
		{name: "one", draws: []int{1, 0, 0, 0, 0}, n: []int{41, 11, 11, 11, 1}, want: []string{"w30", "w0tls", "w0", "w10", "p20"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []int
			i := 0
			intN := func(n int) int {
				asked = append(asked, n)
				d := tc.draws[i]
				i++
				if d >= n {
					t.Fatalf("draw %d out of [0, %d)", d, n)
				}
				return d
			}
			var got []string
			for _, r := range srvOrder(recs, intN) {
				got = append(got, r.Target)
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(asked, tc.n) {
				t.Fatalf("order %v (draws asked for %v), want %v (%v)", got, asked, tc.want, tc.n)
			}
		})
	}
}
