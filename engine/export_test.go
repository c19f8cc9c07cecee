package engine

import (
	"context"
	"net"
	"time"
)

// RewriteComponentNS exposes rewriteNS to the external tests.
var RewriteComponentNS = rewriteNS

var DialbackKey = dialbackKey

// RewriteXMLNS exposes rewriteXMLNS (s2s namespaces) to the external tests.
var RewriteXMLNS = rewriteXMLNS

// Forwarded exposes the forwarding-header parser: what a request from a trusted proxy
// with headers h says of its client.
func Forwarded(w *Web, h map[string]string) (ip, proto, host string) {
	f := w.forwardedFrom(h)
	return f.ip, f.proto, f.host
}

// BOSHSessions is the number of BOSH sessions the server holds.
func BOSHSessions(s *Server) int {
	s.bosh.mu.Lock()
	defer s.bosh.mu.Unlock()
	return len(s.bosh.m)
}

// ConnectThroughEdge opens a TCP connection to addr through one of s's linked edges, as
// outbound federation does with Link.S2S.
func ConnectThroughEdge(ctx context.Context, s *Server, addr string) (net.Conn, error) {
	return s.links.connect(ctx, addr)
}

// RetiredListeners is the number of listeners a reload took away that still hold
// connections.
func RetiredListeners(s *Server) int { return len(s.lset.Load().retired) }

// CaptchaText is the text of the CAPTCHA with id that a connection of s was given ("" when
// there is none): the tests cannot read the image.
func CaptchaText(s *Server, id string) string {
	text := ""
	s.captchas.Range(func(_, v any) bool {
		if st := v.(captchaState); st.ch != nil && st.ch.ID == id {
			text = st.ch.Text()
			return false
		}
		return true
	})
	return text
}

// SetGuestBindWithin changes how long a guest's login may go without a session, and
// returns a function that restores it.
func SetGuestBindWithin(d time.Duration) func() {
	old := guestBindWithin.Swap(int64(d))
	return func() { guestBindWithin.Store(old) }
}

// Guests is the vireo_guests gauge: live guest accounts.
func Guests(s *Server) int64 { return s.counters().Guests }

// SetMaxOutPeers changes the bound on outbound server-to-server streams and returns a
// function that restores it.
func SetMaxOutPeers(n int) func() {
	old := maxOutPeers.Swap(int64(n))
	return func() { maxOutPeers.Store(old) }
}

// SMSessions is the number of stream management sessions the server can still resume or
// is closing.
func SMSessions(s *Server) int {
	n := 0
	for i := range s.sms.parts {
		p := &s.sms.parts[i]
		p.mu.Lock()
		n += p.n
		p.mu.Unlock()
	}
	return n
}
