package module

import (
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// OnlineSession describes one bound session in a server-wide snapshot.
type OnlineSession struct {
	JID       jid.JID // full JID
	Available bool    // has sent available presence
	Priority  int
	Detached  bool // XEP-0198: waiting to be resumed
}

// ServerSessions is implemented by Contexts that can reach every shard (the router's): the
// server-wide queries of service administration (XEP-0133), which no single shard can
// answer. Assert it on the Context (c.(module.ServerSessions)) and answer
// feature-not-implemented when it is missing.
type ServerSessions interface {
	// OnlineSessions asks every shard for its bound sessions and then runs done on this
	// shard, with a Context for the same user or entity, once all have answered. The
	// snapshot is not atomic across shards; it costs one op per shard, so it is for rare
	// administrative queries, not for anything per stanza. done owns the slice.
	OnlineSessions(done func(c Context, online []OnlineSession))
	// CloseUser ends every session of bare with cond, on bare's shard (an account an
	// administrator removed). Safe to call from any shard.
	CloseUser(bare jid.JID, cond stanza.StreamCondition)
}
