// Package pubsub implements XEP-0060: Publish-Subscribe. It holds the protocol core that
// every pubsub service of the server shares — request parsing (ParseRequest), node
// configuration forms (NodeConfig, Policy) and the storage of nodes, items,
// subscriptions and affiliations (Nodes) — and the standalone service the module
// "pubsub" runs on <subdomain>.<each domain> (pubsub.example.org by default). The PEP
// module (XEP-0163) builds each account's virtual service on the same core.
//
// # The service
//
// Every local user may create nodes (named, or instant: the service names them), up to
// max_nodes per user; the creator is the node's owner. Owners configure, purge and delete
// nodes and manage subscriptions and affiliations (owner, publisher, member, none,
// outcast). Owners and publishers publish and retract. Who reads and subscribes follows
// the access model: open (anyone but outcasts), authorize (a subscription waits for an
// owner's approval, asked for by an XEP-0004 form in a message, XEP-0060 §8.6) or
// whitelist (members, publishers and owners). Subscribers get every publish, retraction,
// purge and deletion as an event message; a subscriber is told when an owner decides on
// a pending subscription.
//
// # Storage and concurrency
//
// Nodes live in the "pubsub" table under the service domain (see Nodes for the keys),
// written synchronously, so they survive a restart. The router runs every stanza to a
// service domain on that domain's shard, so one service's requests never interleave and
// the store needs no lock. The module's own struct is read-only after Provision.
package pubsub
