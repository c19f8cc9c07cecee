package engine

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
)

// s2sDefaultPort is the port a domain without SRV records is dialed on (RFC 6120 §3.2.2).
const s2sDefaultPort = 5269

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

// candidates lists the "host:port" addresses to try for remote, in order (RFC 6120 §3.2):
// the S2S.Hosts entry alone when there is one; else the targets of its
// _xmpp-server._tcp SRV records, in the order the resolver gives (priority, then
// weighted random, RFC 2782), each target's addresses in turn; else, when there are no
// SRV records, remote's own addresses on port 5269 (§3.2.2). A single SRV target of "."
// means the service is decidedly not offered (§3.2.1): no fallback then.
func s2sCandidates(ctx context.Context, cfg *S2S, remote string) ([]string, error) {
	if a, ok := cfg.Hosts[remote]; ok {
		return []string{a}, nil
	}
	r := cfg.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	var out []string
	_, srvs, err := r.LookupSRV(ctx, "xmpp-server", "tcp", remote)
	if err == nil && len(srvs) > 0 {
		if len(srvs) == 1 && (srvs[0].Target == "." || srvs[0].Target == "") {
			return nil, errS2SNoService
		}
		for _, s := range srvs {
			target := strings.TrimSuffix(s.Target, ".")
			ips, err := r.LookupHost(ctx, target)
			if err != nil {
				continue // §3.2.1: try the next target
			}
			for _, ip := range ips {
				out = append(out, net.JoinHostPort(ip, strconv.Itoa(int(s.Port))))
			}
		}
	} else {
		ips, err := r.LookupHost(ctx, remote)
		if err == nil {
			for _, ip := range ips {
				out = append(out, net.JoinHostPort(ip, strconv.Itoa(s2sDefaultPort)))
			}
		}
	}
	if len(out) == 0 {
		return nil, errS2SNoAddress
	}
	return out, nil
}

// dial connects to the first candidate address of remote that answers, within ctx.
func (o *s2sOut) dial(ctx context.Context, remote string) (net.Conn, error) {
	addrs, err := s2sCandidates(ctx, &o.srv.config().S2S, remote)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	var errs []error
	for _, a := range addrs {
		nc, err := d.DialContext(ctx, "tcp", a)
		if err == nil {
			return nc, nil
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
			return nil, e
		}
	}
	return nil, errors.Join(errs...)
}
