// Package engine owns the sockets: gnet listeners for client connections (STARTTLS on the
// c2s port, direct TLS per XEP-0368) and for external components (XEP-0114), the
// per-connection state machine, TLS, timeouts, writes with backpressure, and clean
// shutdown.
//
// # Transport and stream kind
//
// A connection (conn.go) is the transport: it moves bytes, runs TLS on the loop, feeds the
// incremental tokenizer and writes through gnet; it knows nothing of XMPP beyond "a stream
// header arrived" and "a top-level element arrived". A stream kind (stream.go) owns the XMPP
// side: the header it answers with and its namespace, the features at each stage, the
// negotiation and the established phase. c2s.go is the client kind (STARTTLS, SASL in
// auth.go, in-band registration, bind, then stanzas to the router); component.go is the
// XEP-0114 kind (handshake over the stream id and a per-component secret; the domain
// becomes a router destination); s2s.go is the inbound server-to-server kind (STARTTLS,
// then XEP-0220 dialback checked with the peer's authoritative server, or SASL EXTERNAL
// when the peer's certificate is valid for its domain under S2S.CAs; every stanza's
// 'from' must be in the proven domain). A listener serves one kind; WebSocket/BOSH are
// transports under the c2s kind.
//
// The outbound side of federation (s2s_out.go) is the router's Remote. In this first slice
// it does not run on the loops: each outbound stream is a writer goroutine and a reader
// goroutine over a blocking net.Conn (crypto/tls after STARTTLS, presenting our
// certificate; SASL EXTERNAL when the peer offers it, else dialback) with the same tokenizer.
// Stanzas wait in a bounded queue while the stream is set up, and are bounced through the
// router (Router.Bounce) if it fails. The address comes from S2S.Hosts, else SRV
// (s2s_dns.go: _xmpp-server and XEP-0368 _xmpps-server records merged into one RFC 2782
// order); at a direct TLS address TLS starts at once, elsewhere after STARTTLS, through
// the same handshake. Inbound, a KindS2S listener with DirectTLS runs TLS from the first
// byte as the c2s one does (conn.startTLS with ALPN xmpp-server). The peer's certificate
// is checked and recorded, and refused under RequireValidCerts.
//
// Federation policy (S2S.Deny, Allow, Domains) is read from the running Config at each
// decision, so a Reload applies to new streams and to every stanza routed after it:
// Route refuses a denied domain with not-allowed before any stream is made; the inbound
// kind ends a stream claiming a denied domain (header 'from', or <db:result/>) with
// policy-violation, and answers dialback that a domain's policy does not accept with a
// not-authorized dialback error (XEP-0220 §2.5). Streams already authenticated keep
// going until they close. A failed setup starts a per-domain back-off during which Route
// refuses at once with remote-server-timeout. An idle stream is retired (Route makes a new
// one); one the peer ends hands its unsent queue to a new one. Locks: s2sOut.mu (peers,
// back-off, the registry of inbound streams) before outPeer.mu, never the reverse.
//
// # Split deployment
//
// The same engine runs as either end of DESIGN.md's split deployment. On an edge (NewEdge,
// split_edge.go) every listener relays: a connection's plaintext, after the TLS the edge
// terminates, goes over a link (engine/link) to the core, and nothing is parsed. On the
// core (Config.Link, split_core.go) each channel of a link is a conn whose transport is
// an edgeChan, with the pseudo-listeners edge-c2s, edge-web and edge-s2s for its kind,
// timeouts and registry, as a BOSH session has been a transport without a socket. The
// core's conn code runs on the channel's task queue (tasks.go) instead of a loop. STARTTLS,
// channel binding (TLSUp), "written" for the offline module (Drain), and closes cross the
// link as frames; everything else is the ordinary conn code. With Link.S2S the core's
// outbound federation dials through an edge too (split_out.go): the edge holds the TCP
// connection and relays its bytes, and the s2s code gets a net.Conn (linkConn) and runs
// TLS over it as over a socket.
//
// # Stream management
//
// XEP-0198 (sm.go) is the engine's own part of the protocol because it counts every stanza
// on the wire, the engine's own included: conn.Send keeps a copy of each stanza until the
// client acknowledges it. When a resumable stream drops, the unacknowledged stanzas are
// handed to the router on the session's shard (router.DetachWith), so they head the
// detached session's queue with nothing slipping past; a resume (router.AttachSkip) drops
// what the client's h says it has and replays the rest, in order, on the new connection.
//
// # Features and elements that modules register
//
// The c2s kind offers its own features (starttls, mechanisms, bind) and appends what
// modules registered for the stage (router.StreamFeatures); a top-level element that is not
// a stanza goes to the module that registered it (router.Nonza: XEP-0352 CSI today, stream
// management next), and anything nobody registered is unsupported-stanza-type. The engine
// has no switch on XEPs.
//
// # Loops, goroutines and ownership
//
// One gnet engine runs the event loops, one per processor unless the caller says
// otherwise (vireo's eventLoops). A connection's state
// (conn) is owned by its loop: OnOpen, OnTraffic, OnClose and Wake callbacks touch it
// without locks. A loop never blocks: store lookups for SASL, password hashing for PLAIN
// and registration run on a small worker pool (work.go), and results come back to the loop
// through gnet's Conn.Wake callback. Router callbacks (bind results) come back the same way.
// While such a result is pending the connection is paused: bytes that arrive meanwhile are
// held in a pooled buffer and processed, in order, when it resumes.
//
// Writes (Send, stream errors, negotiation) may come from any goroutine. They are appended,
// in call order, to the connection's outbox (conn.go), and the first byte queues one flush
// on the loop: whatever arrived until the flush runs goes out in one write, so a loop that
// wakes to many stanzas for one connection (a busy room, a burst) makes one system call,
// not one per stanza. Two refinements: what the loop writes while it runs a connection's
// own code (answers to its input, SASL and bind results) waits for the end of that code
// and is written then, without a queued flush; and a connection written to less than a
// tick ago (c2s.coalesce_writes, coalesce.go) keeps what arrives until the tick, so a
// member of a busy room gets a tick's stanzas in one write, while IQ answers flush at once.
// The close that ends a stream is a flag of the outbox, so it never overtakes the bytes
// before it. For TLS connections the records are produced under the
// record layer's write lock, so record order is the outbox's order. The bytes queued per
// connection are counted, and a client that stops reading is closed with policy-violation
// instead of growing memory. A BOSH session's transport (bosh.go) keeps one gnet task per
// write.
//
// TLS runs crypto/tls on the loop after a goroutine-backed handshake (engine/tlsconn); an
// idle connection has no goroutine and, between stanzas, no buffer of its own: plaintext is
// read into a per-loop pooled buffer and the tokenizer keeps a pooled buffer only while an
// element is partial.
//
// Timeouts come from each listener's OnTick sweep: a pre-auth deadline, and an XEP-0199
// ping to established clients that have been silent, closing them if the ping goes
// unanswered. Connections with nothing to time in the next few seconds are swept every
// eighth second instead of every second; a read or write brings one back (tick.go).
package engine
