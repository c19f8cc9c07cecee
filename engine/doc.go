// Package engine owns the sockets: gnet listeners for client connections (STARTTLS on the
// c2s port, direct TLS per XEP-0368), the per-connection state machine from stream header
// through STARTTLS, SASL, resource binding and the established stream, TLS, timeouts,
// writes with backpressure, and clean shutdown.
//
// # Loops, goroutines and ownership
//
// Each listener runs one gnet engine with one event loop per core. A connection's state
// (conn) is owned by its loop: OnOpen, OnTraffic, OnClose and Wake callbacks touch it
// without locks. A loop never blocks: store lookups for SASL, password hashing for PLAIN
// and registration run on a small worker pool (work.go), and results come back to the loop
// through gnet's Conn.Wake callback. Router callbacks (bind results) come back the same way.
// While such a result is pending the connection is paused: bytes that arrive meanwhile are
// held in a pooled buffer and processed, in order, when it resumes.
//
// Writes (Send, stream errors, negotiation) may come from any goroutine. Every byte goes
// out through gnet's AsyncWrite, whose per-loop queue is FIFO; for TLS connections the
// records are produced under crypto/tls's write lock, so record order is preserved. The
// bytes queued per connection are counted, and a client that stops reading is closed with
// policy-violation instead of growing memory.
//
// TLS runs crypto/tls on the loop after a goroutine-backed handshake (engine/tlsconn); an
// idle connection has no goroutine and, between stanzas, no buffer of its own: plaintext is
// read into a per-loop pooled buffer and the tokenizer keeps a pooled buffer only while an
// element is partial.
//
// Timeouts come from each listener's OnTick sweep: a pre-auth deadline, and an XEP-0199
// ping to established clients that have been silent, closing them if the ping goes
// unanswered.
package engine
