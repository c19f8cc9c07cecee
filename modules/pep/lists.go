package pep

import (
	"maps"
	"slices"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pubsub"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// The owner's subscription and affiliation lists (XEP-0060 §5.6, §5.7, §8.8, §8.9) on their
// PEP service. The account owns every node of it; the one affiliation it grants others is
// member, which opens a whitelist node to them (the access model XEP-0223 private storage
// and XEP-0402 bookmarks use). Publishing stays the owner's alone (XEP-0163 §3), so
// publisher is refused, and outcast is not offered: the presence and roster models already
// follow the owner's roster.

// ownLists answers the owner's own subscriptions or affiliations across their nodes.
func (m *Mod) ownLists(c module.Context, iq *module.Packet, owner jid.JID, r pubsub.Request) {
	o := owner.String()
	kind := "subscription"
	if r.Op == pubsub.OpAffiliations {
		kind = "affiliation"
	}
	var b xmlstream.Builder
	b.Start("pubsub").Attr("xmlns", pubsub.NS).Start(kind + "s")
	if r.Node != "" {
		b.Attr("node", r.Node)
	}
	err := m.nodes.List(o, func(node string, _ pubsub.NodeConfig) bool {
		if r.Node != "" && node != r.Node {
			return true
		}
		if r.Op == pubsub.OpAffiliations {
			b.Start("affiliation").Attr("node", node).Attr("affiliation", pubsub.AffOwner).End()
			return true
		}
		subs := m.nodes.Subscriptions(o, node)
		for _, j := range slices.Sorted(maps.Keys(subs)) {
			if sj, err := jid.Parse(j); err == nil && sj.Bare().Equal(owner) {
				b.Start("subscription").Attr("node", node).Attr("jid", j).Attr("subscription", subs[j]).End()
			}
		}
		return true
	})
	if err != nil {
		m.fail(c, iq, err)
		return
	}
	b.End().End()
	c.Reply(iq, b.B)
}

// ownerAffiliations gets or sets a node's affiliations (§8.9): the owner, and members.
func (m *Mod) ownerAffiliations(c module.Context, iq *module.Packet, owner jid.JID, r pubsub.Request) {
	o := owner.String()
	if iq.Type == "get" {
		affs := m.nodes.Affiliations(o, r.Node)
		affs[o] = pubsub.AffOwner
		c.Reply(iq, pubsub.OwnerList("affiliation", r.Node, affs))
		return
	}
	for i, e := range r.Entries {
		j, err := jid.Parse(e.JID)
		if err != nil || !j.IsBare() {
			c.Error(iq, stanza.New(stanza.JIDMalformed))
			return
		}
		r.Entries[i].JID = j.String() // stored as lookups prepare it (Romeo@Montague.lit is romeo@montague.lit)
		switch {
		case j.Equal(owner):
			if e.Value != pubsub.AffOwner {
				c.Error(iq, &stanza.Error{Type: stanza.Cancel, Condition: stanza.NotAcceptable, Text: "the account owns its nodes"})
				return
			}
		case e.Value != pubsub.AffMember && e.Value != pubsub.AffNone:
			c.Error(iq, &stanza.Error{Type: stanza.Cancel, Condition: stanza.NotAcceptable,
				Text: "a personal eventing node takes members only: the account alone owns and publishes"})
			return
		}
	}
	if e := m.nodes.RoomForAffiliations(o, r.Node, pubsub.Additions(r.Entries)); e != nil {
		c.Error(iq, e)
		return
	}
	for _, e := range r.Entries {
		if e.JID == o {
			continue
		}
		if err := m.nodes.T.Apply(pubsub.AffiliationOps(o, r.Node, e.JID, e.Value)...); err != nil {
			m.fail(c, iq, err)
			return
		}
	}
	c.Reply(iq, nil)
}

// ownerSubscriptions gets or sets a node's explicit subscriptions (§8.8): the owner may
// add one (subscribed) or end one (none).
func (m *Mod) ownerSubscriptions(c module.Context, iq *module.Packet, owner jid.JID, r pubsub.Request) {
	o := owner.String()
	if iq.Type == "get" {
		c.Reply(iq, pubsub.OwnerList("subscription", r.Node, m.nodes.Subscriptions(o, r.Node)))
		return
	}
	for i, e := range r.Entries {
		j, err := jid.Parse(e.JID)
		if err != nil {
			c.Error(iq, stanza.New(stanza.JIDMalformed))
			return
		}
		r.Entries[i].JID = j.String()
		if e.Value != pubsub.SubSubscribed && e.Value != pubsub.SubNone {
			c.Error(iq, pubsub.BadRequest("subscription must be subscribed or none"))
			return
		}
	}
	if e := m.nodes.RoomForSubscriptions(o, r.Node, pubsub.Additions(r.Entries)); e != nil {
		c.Error(iq, e)
		return
	}
	for _, e := range r.Entries {
		if err := m.nodes.Subscribe(o, r.Node, e.JID, e.Value == pubsub.SubSubscribed); err != nil {
			m.fail(c, iq, err)
			return
		}
	}
	c.Reply(iq, nil)
}
