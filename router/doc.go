// Package router owns who is online and where stanzas go: the session table sharded by bare
// JID, the per-shard queues and the shard workers that own their users' in-memory state
// (sessions, presence, cached roster), and the routing rules of RFC 6120 §10 and RFC 6121 §8.
//
// # Ownership and ordering
//
// A user's state belongs to exactly one shard, chosen by a hash of the bare JID, and only
// the goroutine that owns the shard at the moment reads or writes it, so user state needs
// no locks. Every entry point (Bind, Submit, Unbind, CloseUser, module Route) turns into an
// op pushed onto the owning shard's lock-free MPSC queue (queue.go), which the shard's
// worker drains.
//
// A message whose shard is idle (nobody owns it, nothing queued) does not wait for the
// worker: Submit runs it in place on the caller's goroutine, the event loop that read it,
// and its recipient's phase runs in place too when that shard is idle and the recipient
// has an available session (runInline, forwardInline). At ordinary rates this saves the
// two goroutine hand-offs that cost more than the routing itself. What may wait for the
// disk stays on the workers: presence and IQs (roster writes, answers after a sync), a
// recipient without an available session (offline storage), and hooks whose module
// declared WaitsForDisk. Workers also run the recipient's phase in place on idle shards.
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
// # One destination resolver
//
// Every 'to' resolves once, in resolve (dest.go), to exactly one of: a local account (bare or
// full; inbound phase in its shard), the local server (IQs answered by the modules' server
// handlers; senders that are not local users reach only the namespaces marked Public), a
// service domain claimed by a module (conference., pubsub., upload.: the module's handler
// runs in the shard of the addressed entity's bare JID, so a room's state is sharded like a
// user's and needs no lock), a connected external component (AttachComponent), or a remote
// domain, handed to the Remote (federation, or another node of a cluster; without one the
// sender gets remote-server-not-found). Client stanzas after their outbound phase, module
// Route, and stanzas from components (SubmitFrom) all go through it; what cannot be
// delivered comes back to the sender as a stanza error from the same place.
//
// The local domains and the service domains are each one immutable table behind an atomic
// pointer, so resolve takes no lock. SetDomains (hosts.go) replaces both when virtual hosts
// come and go while the server runs: a new host's services (module.HostWatcher) are
// published before the host, a removed host goes before its services, and then its users'
// sessions are closed on their shards with host-gone.
//
// # Sessions that outlive their connection
//
// A Session delivers through Session.Send, never straight to a socket. Detach takes its Conn
// away and keeps everything else (presence stays available, contacts see no flapping);
// stanzas queue, bounded by Options.DetachedLimits. Attach hands the session a new Conn and
// the queue, in order, before live traffic. When the detach timeout fires first, the
// session ends: queued messages go to another resource or to the modules' Undeliverable
// fallback (offline storage) and otherwise back to the sender as errors, IQ requests are
// answered with service-unavailable, and unavailable presence goes out. The same fallback
// catches a message that a session refused (its stream closing, or over its outbound cap).
// The modules' OnDetach callbacks see each detach first, with the stanzas the stream wrote
// but its client never acknowledged (XEP-0357 push notifies the user's devices of them).
//
// # What modules register
//
// Besides IQ handlers and hooks, modules register stream features per stage and handlers
// for top-level elements that are not stanzas (nonzas); the engine offers the features and
// hands such elements to Nonza, which runs the handler in the session's shard, in order with
// its stanzas. A session's outbound filter (Session.SetFilter, used by CSI) sees everything
// sent to it. Duplicate registrations fail New.
//
// Slow work (PBKDF2, store lookups for logins) runs on the router's one bounded worker pool
// (Go, Context.Async), shared by the engine and the modules.
//
// The router never touches sockets: it delivers through the Conn interface that the engine
// implements, and never imports engine or a concrete module.
package router
