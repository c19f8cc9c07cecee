// Package router owns who is online and where stanzas go: the session table sharded by bare
// JID, the per-shard queues and the shard workers that own their users' in-memory state
// (sessions, presence, cached roster), and the routing rules of RFC 6120 §10 and RFC 6121 §8.
//
// # Ownership and ordering
//
// A user's state belongs to exactly one shard, chosen by a hash of the bare JID, and only
// that shard's worker goroutine reads or writes it, so user state needs no locks. Every
// entry point (Bind, Submit, Unbind, CloseUser, module Route) turns into an op pushed onto
// the owning shard's lock-free MPSC queue (queue.go).
//
// A client stanza first runs the outbound phase in the sender's shard (the sender's roster,
// blocking, carbons, IQs to the server), then, if it is for a local user, it is forwarded as
// one op to the recipient's shard, where the inbound phase runs (the recipient's blocking,
// offline storage, stanza ids, delivery). Each shard handles its queue FIFO, and a sender's
// stanzas are forwarded FIFO from its shard, so stanzas from one sender to one recipient
// arrive in order (RFC 6120 §10.1).
//
// Bytes: Submit copies the stanza into a pooled buffer with 'from' stamped; the buffer
// travels with the op across shards and returns to the pool when the op is done. Modules see
// it as a Packet valid during their call only.
//
// The router never touches sockets: it delivers through the Conn interface that the engine
// implements, and never imports engine or a concrete module.
package router
