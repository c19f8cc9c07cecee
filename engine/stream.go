package engine

import "github.com/vireo-im/vireo/xmlstream"

// streamKind is one kind of XMPP stream: c2s (c2s.go), external components (component.go),
// and servers (s2s.go). The transport under it (conn: TCP, TLS on the loop; later WebSocket frames
// and BOSH bodies) moves bytes, runs the tokenizer and calls the kind with whole stream
// headers and top-level elements; the kind owns everything XMPP about the stream: the
// header it answers with, the features it offers at each stage, its negotiation and its
// established phase. A listener serves one kind, so a new kind is a new file and a new
// Listener.Kind value; no other kind's code changes.
type streamKind interface {
	name() string
	// ns is the namespace of the stream header the server sends.
	ns() string
	// scanKind is the content namespace the tokenizer expects (jabber:client, ...).
	scanKind() xmlstream.StreamKind
	// header answers the peer's stream header (and restarted headers).
	header(c *conn, h *xmlstream.Stanza)
	// element handles one top-level element. It reports whether TLS just started: the
	// rest of the input then belongs to the TLS layer.
	element(c *conn, st *xmlstream.Stanza) bool
	// closed runs on the loop when the socket is gone.
	closed(c *conn)
}

// kindFor returns the stream kind a listener serves.
func (s *Server) kindFor(l Listener) streamKind {
	switch l.Kind {
	case KindComponent:
		return &component{srv: s}
	case KindS2S:
		return &s2sIn{srv: s}
	}
	return c2s{}
}
