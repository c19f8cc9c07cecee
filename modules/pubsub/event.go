package pubsub

import (
	"crypto/rand"
	"encoding/hex"
	"errors"

	"github.com/vireo-im/vireo/modules/rsm"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// NewID returns a random item id (XEP-0060 §7.1.1: the service picks one when the
// publisher does not).
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ItemsEvent is the <items/> event payload announcing item it of node.
func ItemsEvent(node string, it Item) []byte {
	var b xmlstream.Builder
	b.Start("items").Attr("node", node).Start("item").Attr("id", it.ID).Raw(it.Payload).End().End()
	return b.B
}

// RetractEvent is the <items/> event payload announcing the retraction of ids.
func RetractEvent(node string, ids []string) []byte {
	var b xmlstream.Builder
	b.Start("items").Attr("node", node)
	for _, id := range ids {
		b.Start("retract").Attr("id", id).End()
	}
	b.End()
	return b.B
}

// NodeEvent is the <delete/> or <purge/> event payload (what) of node.
func NodeEvent(what, node string) []byte {
	var b xmlstream.Builder
	b.Start(what).Attr("node", node).End()
	return b.B
}

// EventMessage is the XEP-0060 §7.1.2.1 notification of event (the <items/>, <delete/>,
// <purge/> or <subscription/> element) from the service from to to.
func EventMessage(from, to jid.JID, event []byte) []byte {
	var b xmlstream.Builder
	b.Start("message").Attr("type", "headline").Attr("from", from.String()).Attr("to", to.String()).
		Attr("id", NewID()).Start("event").Attr("xmlns", NSEvent).Raw(event).End().End()
	return b.B
}

// ItemsReply is the result of an items request (XEP-0060 §6.5.2): the page pg of its,
// with its XEP-0059 <set/> when pg.Set.
func ItemsReply(node string, its []Item, pg rsm.Page) []byte {
	var b xmlstream.Builder
	b.Start("pubsub").Attr("xmlns", NS).Start("items").Attr("node", node)
	for _, it := range its[pg.Lo:pg.Hi] {
		b.Start("item").Attr("id", it.ID).Raw(it.Payload).End()
	}
	b.End()
	pg.Append(&b, func(i int) string { return its[i].ID })
	b.End()
	return b.B
}

// PublishReply is the result of a publish (XEP-0060 §7.1.2) of item id.
func PublishReply(node, id string) []byte {
	var b xmlstream.Builder
	b.Start("pubsub").Attr("xmlns", NS).Start("publish").Attr("node", node).
		Start("item").Attr("id", id).End().End().End()
	return b.B
}

// SubscriptionReply is the result of a subscribe (XEP-0060 §6.1.2) in state.
func SubscriptionReply(node, j, state string) []byte {
	var b xmlstream.Builder
	b.Start("pubsub").Attr("xmlns", NS).Start("subscription").Attr("node", node).
		Attr("jid", j).Attr("subscription", state).End().End()
	return b.B
}

// CheckPayload checks a payload to publish: at most max bytes (not-acceptable,
// payload-too-big) and parseable alone (a prefix declared outside it would not survive
// storage: bad-request, invalid-payload).
func CheckPayload(payload []byte, max int) *stanza.Error {
	if len(payload) > max {
		return Err(stanza.NotAcceptable, "payload-too-big")
	}
	if _, err := xmlstream.ParseElement(payload, ""); err != nil {
		return Err(stanza.BadRequest, "invalid-payload")
	}
	return nil
}

// Items pages: an items request with an XEP-0059 <set/> and no <max/> gets itemsPage
// items, and never more than maxItemsPage.
const (
	itemsPage    = 50
	maxItemsPage = 500
)

// Select returns the items an items request r asks for (XEP-0060 §6.5) and the page of
// them to answer with: those with r.IDs when there are ids, else the newest r.MaxItems
// (all when 0), oldest first; with an RSM <set/> (§6.5.4), the page it asks for of them,
// in publication order, an item's id its key. e is the error a client gets (an RSM key
// no longer in the node); err one of the store's.
func (n Nodes) Select(owner string, r Request) (its []Item, pg rsm.Page, e *stanza.Error, err error) {
	if len(r.IDs) == 0 {
		// Ids and sizes first: the payloads of the page only are read.
		if its, err = n.items(owner, r.Node, r.MaxItems, false); err != nil {
			return nil, pg, nil, err
		}
		find := func(id string) int {
			for i := range its {
				if its[i].ID == id {
					return i
				}
			}
			return -1
		}
		if r.RSM == rsm.None {
			pg = rsm.Page{Hi: len(its), Count: len(its)}
		} else if pg, e = rsm.CutOrdered(len(its), find, r.RSM, itemsPage, maxItemsPage); e != nil {
			return nil, pg, e, nil
		}
		forward := r.RSM.HasAfter || (r.RSM != rsm.None && !r.RSM.HasBefore) // else the newest, or backwards
		pg = capBytes(its, pg, forward)
		prefix := itemsPrefix(owner, r.Node)
		for i := pg.Lo; i < pg.Hi; i++ {
			k := seqKey(prefix, its[i].seq)
			v, err := n.T.Get(k)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, pg, nil, err
			}
			if it, ok := decodeItem(k, v); ok {
				its[i].Payload = it.Payload // else retracted meanwhile: an empty item
			}
		}
		return its, pg, nil, nil
	}
	for _, id := range r.IDs {
		it, ok, err := n.Item(owner, r.Node, id)
		if err != nil {
			return nil, pg, nil, err
		}
		if ok {
			its = append(its, it)
		}
	}
	return its, capBytes(its, rsm.Page{Hi: len(its), Count: len(its)}, true), nil, nil
}

// maxItemsBytes bounds the payloads of one items answer: a node may hold a thousand items
// of the largest size, and an answer over the requester's outbound limit would end its
// stream. Past it the answer is cut, whole items only and at least one, and says so
// with a <set/> (XEP-0059 §2.1; XEP-0060 §6.5.7 lets a service return fewer items).
const maxItemsBytes = 512 << 10

// capBytes cuts pg to the items whose payloads fit maxItemsBytes: keeping the oldest of
// the page when forward is set (a client paging forward goes on after the last),
// otherwise the newest (the most recent items, or a page backwards, goes on before the
// first).
func capBytes(its []Item, pg rsm.Page, forward bool) rsm.Page {
	total := 0
	if forward {
		for i := pg.Lo; i < pg.Hi; i++ {
			if total += its[i].size; total > maxItemsBytes && i > pg.Lo {
				pg.Hi, pg.Set = i, true
				break
			}
		}
		return pg
	}
	for i := pg.Hi - 1; i >= pg.Lo; i-- {
		if total += its[i].size; total > maxItemsBytes && i < pg.Hi-1 {
			pg.Lo, pg.Set = i+1, true
			break
		}
	}
	return pg
}
