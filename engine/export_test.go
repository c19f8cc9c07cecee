package engine

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
