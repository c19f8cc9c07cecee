package module

import "github.com/vireo-im/vireo/xmlstream/jid"

// DirectRouter is implemented by Contexts that can route a stanza whose recipient the
// caller has already parsed (the router's). RouteTo is Context.Route without parsing 'to'
// out of raw again: a fan-out that stamps one prepared stanza with each recipient's address
// (a MUC room delivering a message to every occupant) pays the parse once per stanza, not
// once per recipient. to must be the JID in raw's 'to' attribute. raw is copied before
// RouteTo returns.
type DirectRouter interface {
	RouteTo(to jid.JID, raw []byte)
}

// PacketRouter is DirectRouter for a stanza whose kind, type and sender the caller knows
// as well: the recipient's phase takes p.Kind, p.Type, p.ID and p.From as they are instead
// of parsing p.Raw (a room hands every occupant the same reflected groupchat message, so
// the parse would otherwise be paid once per occupant). They must be what p.Raw says, and
// p.To the JID in its 'to'. p.Raw is copied before RoutePacket returns; p is not kept.
type PacketRouter interface {
	RoutePacket(p *Packet)
}

// ShardCaller is implemented by Contexts that can run work on another entity's shard (the
// router's). CallOn queues fn to run on the shard of bare's bare JID, after what is queued
// there already, with a Context for that user (Sessions(bare) lists its sessions): a module
// that learns something about a user on another shard (a room on the room's shard) acts on
// the user's state where that state lives. fn must not keep the Context.
type ShardCaller interface {
	CallOn(bare jid.JID, fn func(c Context))
}
