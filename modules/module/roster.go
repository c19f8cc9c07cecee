package module

import (
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// RosterEditor is implemented by Contexts that can remove roster items (the router's).
type RosterEditor interface {
	DeleteRosterItem(user, contact jid.JID) error
}

// InterestSetter is implemented by Sessions that track roster interest (RFC 6121 §2.1.6).
type InterestSetter interface{ SetInterested() }

// AppendRosterItem writes one RFC 6121 <item/> (with subscription='remove' when remove).
func AppendRosterItem(b *xmlstream.Builder, it store.RosterItem, remove bool) {
	b.Start("item").Attr("jid", it.JID)
	if remove {
		b.Attr("subscription", "remove").End()
		return
	}
	if it.Name != "" {
		b.Attr("name", it.Name)
	}
	b.Attr("subscription", it.Sub.String())
	if it.Ask {
		b.Attr("ask", "subscribe")
	}
	if it.Approved {
		b.Attr("approved", "true")
	}
	for _, g := range it.Groups {
		b.Start("group").Text(g).End()
	}
	b.End()
}

// RosterLister is implemented by Contexts that serve the shard user's cached roster.
type RosterLister interface {
	RosterItems(user jid.JID) []store.RosterItem
}

// Scratcher is implemented by Contexts that lend buffers for building a replacement
// Packet.Raw without allocating. Buffer i (0 or 1) belongs to the shard worker and stays
// valid until the current stanza is delivered; store the grown slice back through the
// pointer. Two hooks must not use the same buffer for the same stanza.
type Scratcher interface{ Scratch(i int) *[]byte }
