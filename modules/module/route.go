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
