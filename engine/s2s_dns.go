package engine

import (
	"context"
	"errors"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/vireo-im/vireo/xmlstream/jid"
)

// s2sDefaultPort is the port a domain without SRV records is dialed on (RFC 6120 §3.2.2).
const s2sDefaultPort = 5269

// S2SDirectTLSScheme prefixes an S2S.Hosts address whose server speaks XEP-0368 direct
// TLS ("tls://xmpp.example.net:5270"): TLS from the first byte, no STARTTLS.
const S2SDirectTLSScheme = "tls://"

// S2SResolver is the DNS the outbound side asks for the domains that S2S.Hosts does not
// list. *net.Resolver satisfies it; tests substitute a fake so that no lookup leaves the
// machine. Implementations must be safe for concurrent use.
type S2SResolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
	LookupHost(ctx context.Context, host string) (addrs []string, err error)
}

var (
	errS2SNoService = errors.New("s2s: the domain's SRV record says it offers no XMPP server service")
	errS2SNoAddress = errors.New("s2s: no address found for the domain")
)

// s2sTarget is one address to try for a remote domain, and whether TLS starts at once
// there (XEP-0368) or after <starttls/> (RFC 6120 §5).
type s2sTarget struct {
	addr      string
	directTLS bool
}

// s2sHostTarget reads an S2S.Hosts value: "host:port", or S2SDirectTLSScheme before it.
func s2sHostTarget(a string) s2sTarget {
	if rest, ok := strings.CutPrefix(a, S2SDirectTLSScheme); ok {
		return s2sTarget{addr: rest, directTLS: true}
	}
	return s2sTarget{addr: a}
}

// srvRecord is an SRV record of either service, tagged with the one it came from.
type srvRecord struct {
	*net.SRV
	directTLS bool
}

// s2sCandidates lists the addresses to try for remote, in order (RFC 6120 §3.2, XEP-0368):
// the S2S.Hosts entry alone when there is one; else the targets of its _xmpp-server._tcp
// (STARTTLS) and _xmpps-server._tcp (direct TLS) SRV records, merged into one list and
// ordered as one by priority and weight (XEP-0368 §3, RFC 2782), each target's addresses
// in turn; else, when neither service has records, remote's own addresses on port 5269
// (§3.2.2). A service whose single record has the target "." is decidedly not offered
// (RFC 6120 §3.2.1): it is left out, and there is no fallback to the domain's addresses
// (XEP-0368 §5).
func s2sCandidates(ctx context.Context, cfg *S2S, remote string) ([]s2sTarget, error) {
	if a, ok := cfg.Hosts[remote]; ok {
		return []s2sTarget{s2sHostTarget(a)}, nil
	}
	r := cfg.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	name := jid.ToASCII(remote) // DNS asks for A-labels
	var recs []srvRecord
	var out []s2sTarget
	refused := false // a service said "."
	for _, svc := range []struct {
		name      string
		directTLS bool
	}{{"xmpp-server", false}, {"xmpps-server", true}} {
		// A failed lookup counts as no records: most domains have no _xmpps-server, and
		// RFC 6120 §3.2.1 falls back rather than give up on a DNS error.
		_, srvs, err := r.LookupSRV(ctx, svc.name, "tcp", name)
		if err != nil || len(srvs) == 0 {
			continue
		}
		if len(srvs) == 1 && (srvs[0].Target == "." || srvs[0].Target == "") {
			refused = true
			continue
		}
		for _, s := range srvs[:min(len(srvs), maxSRVRecords)] {
			recs = append(recs, srvRecord{SRV: s, directTLS: svc.directTLS})
		}
	}
	addrs := func(ips []string, port int, directTLS bool) {
		n := 0
		for _, ip := range ips {
			if n == maxTargetAddrs || !dialable(ip, cfg.DNSLoopback, cfg.PublicOnly) {
				continue
			}
			n++
			out = append(out, s2sTarget{addr: net.JoinHostPort(ip, strconv.Itoa(port)), directTLS: directTLS})
		}
	}
	switch {
	case len(recs) > 0:
		for _, s := range srvOrder(recs, mrand.IntN) {
			target := strings.TrimSuffix(s.Target, ".")
			ips, err := r.LookupHost(ctx, target)
			if err != nil {
				continue // §3.2.1: try the next target
			}
			addrs(ips, int(s.Port), s.directTLS)
		}
	case refused:
		return nil, errS2SNoService
	default:
		ips, err := r.LookupHost(ctx, name)
		if err == nil {
			addrs(ips, s2sDefaultPort, false)
		}
	}
	if len(out) == 0 {
		return nil, errS2SNoAddress
	}
	return out, nil
}

// Bounds on what one domain's DNS makes the server try: a domain any peer can name
// (dialback) must not turn one stream into hundreds of dials.
const (
	maxSRVRecords  = 16 // per service
	maxTargetAddrs = 8  // per target
)

// dialable reports whether ip, from a DNS answer, may be dialed as another server:
// never the unspecified address, link-local (a cloud's metadata service lives there) or
// multicast ones, loopback only when loopback is set (tests), and private ones (RFC 1918,
// RFC 6598, RFC 4193) only when publicOnly is not.
func dialable(ip string, loopback, publicOnly bool) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return false
	case a.IsLoopback():
		return loopback
	case a.IsPrivate(), cgnat.Contains(a):
		return !publicOnly
	}
	return true
}

// cgnat is RFC 6598's shared address space, private to a carrier's network.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// srvOrder orders recs as RFC 2782 says a client tries them: ascending priority; within
// one priority, repeatedly a random draw weighted by weight among those not yet taken,
// with the weight-0 records first in the running sum. intN(n) returns a number in
// [0, n). Direct TLS records go ahead of STARTTLS ones before the draw, so that among
// weight-0 records of one priority direct TLS is tried first: it saves a round trip, and
// XEP-0368 §3 lets the initiating server prefer either.
func srvOrder(recs []srvRecord, intN func(int) int) []srvRecord {
	recs = slices.Clone(recs)
	key := func(s srvRecord) int {
		k := int(s.Priority) << 2
		if s.Weight != 0 {
			k |= 2
		}
		if !s.directTLS {
			k |= 1
		}
		return k
	}
	slices.SortStableFunc(recs, func(a, b srvRecord) int { return key(a) - key(b) })
	out := make([]srvRecord, 0, len(recs))
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].Priority == recs[i].Priority {
			j++
		}
		group := recs[i:j]
		for len(group) > 0 {
			sum := 0
			for _, s := range group {
				sum += int(s.Weight)
			}
			n := intN(sum + 1) // RFC 2782: between 0 and the sum, inclusive
			k, run := 0, 0
			for k = range group {
				run += int(group[k].Weight)
				if run >= n {
					break
				}
			}
			out = append(out, group[k])
			group = slices.Delete(group, k, k+1)
		}
		i = j
	}
	return out
}

// dial connects to the first candidate address of remote that answers, within ctx. For
// a direct TLS candidate that includes the TLS handshake (with local's certificate), so
// that an address whose TLS fails gives way to the next one; the result is then a
// *tls.Conn and directTLS is true.
func (o *s2sOut) dial(ctx context.Context, local, remote string) (nc net.Conn, directTLS bool, err error) {
	targets, err := s2sCandidates(ctx, &o.srv.config().S2S, remote)
	if err != nil {
		return nil, false, err
	}
	d := net.Dialer{KeepAliveConfig: peerKeepAlive(o.srv.config())}
	// A core that federates through its edges (Link.S2S) has them open the connection.
	ls := o.srv.links
	if ls != nil && !o.srv.config().Link.S2S {
		ls = nil
	}
	var errs []error
	for _, t := range targets {
		var nc net.Conn
		var err error
		if ls != nil {
			nc, err = ls.connect(ctx, t.addr)
		} else {
			nc, err = d.DialContext(ctx, "tcp", t.addr)
		}
		if err == nil && t.directTLS {
			var tc net.Conn
			if tc, err = o.handshake(ctx, nc, local, remote, true); err != nil {
				nc.Close()
			} else {
				nc = tc
			}
		}
		if err == nil {
			return nc, t.directTLS, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	// A timeout decides the bounce condition (remote-server-timeout), so it leads.
	for _, e := range errs {
		var ne net.Error
		if errors.As(e, &ne) && ne.Timeout() {
			return nil, false, e
		}
	}
	return nil, false, errors.Join(errs...)
}
