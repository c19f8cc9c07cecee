package engine

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
)

// fakeDNS is an S2SResolver from tables: SRV records by domain, addresses by host.
type fakeDNS struct {
	srv   map[string][]*net.SRV
	hosts map[string][]string
	asked []string
}

func (f *fakeDNS) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	q := "_" + service + "._" + proto + "." + name
	f.asked = append(f.asked, q)
	if r, ok := f.srv[name]; ok {
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
			"srv.example": {{Target: "xmpp1.srv.example.", Port: 5270, Priority: 5}, {Target: "gone.srv.example.", Port: 5269, Priority: 10},
				{Target: "xmpp2.srv.example.", Port: 15269, Priority: 20}},
			"none.example": {{Target: ".", Port: 0}},
			"dead.example": {{Target: "gone.dead.example.", Port: 5269}},
		},
		hosts: map[string][]string{
			"xmpp1.srv.example": {"192.0.2.1", "2001:db8::1"},
			"xmpp2.srv.example": {"192.0.2.2"},
			"plain.example":     {"192.0.2.9"},
			"listed.example":    {"192.0.2.99"},
		},
	}
	cfg := &S2S{Resolver: dns, Hosts: map[string]string{"listed.example": "127.0.0.1:5299"}}
	for _, tc := range []struct {
		domain string
		want   []string
		err    error
		asked  []string
	}{
		// [s2s.hosts] wins without a lookup.
		{domain: "listed.example", want: []string{"127.0.0.1:5299"}},
		// SRV targets in order, every address of each, their own ports; a target without
		// addresses is skipped (RFC 6120 §3.2.1).
		{domain: "srv.example", want: []string{"192.0.2.1:5270", "[2001:db8::1]:5270", "192.0.2.2:15269"},
			asked: []string{"_xmpp-server._tcp.srv.example", "xmpp1.srv.example", "gone.srv.example", "xmpp2.srv.example"}},
		// No SRV records: the domain itself on 5269 (§3.2.2).
		{domain: "plain.example", want: []string{"192.0.2.9:5269"}, asked: []string{"_xmpp-server._tcp.plain.example", "plain.example"}},
		// "." : decidedly no service, and no fallback.
		{domain: "none.example", err: errS2SNoService, asked: []string{"_xmpp-server._tcp.none.example"}},
		// SRV records whose targets do not resolve: no fallback to the domain either.
		{domain: "dead.example", err: errS2SNoAddress, asked: []string{"_xmpp-server._tcp.dead.example", "gone.dead.example"}},
		// Nothing at all.
		{domain: "nx.example", err: errS2SNoAddress, asked: []string{"_xmpp-server._tcp.nx.example", "nx.example"}},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			dns.asked = nil
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
