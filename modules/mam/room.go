package mam

import (
	"errors"
	"fmt"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/muc"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// RoomPageBytes bounds the results of one query on a room's archive. They are routed to
// the requester's session, which is on another shard, so the page cannot wait for the
// connection as a user's own page does; a page that outgrew the stream's outbound queue
// (c2s max_outbound, 1 MiB by default) would close the stream. A page stops once it holds
// this much (always with at least one message) and says it is not complete: the client
// asks for the next page as it would after a small max.
const RoomPageBytes = 256 << 10

// roomArchive is the archive of the rooms of one server (XEP-0313 §5.1.2 on a MUC
// service), installed into the muc module with muc.SetArchive. Its rows are in the same
// table and layout as user archives, under store.UserKey(room's bare JID): the message as
// the occupants got it, under its <stanza-id by=room/>, with the occupant JID as the
// remote party (so a 'with' of room@service/nick selects one nickname), and the sender's
// real JID in <x xmlns='…muc#user'><item jid/></x>, which only requesters with
// muc.JIDAccess get.
type roomArchive struct{ m *Mod }

var (
	_ muc.ArchiveQuerier = roomArchive{}
	_ muc.HistorySource  = roomArchive{}
	_ muc.Retracter      = roomArchive{}
)

// Append archives a message a logged room reflected, on the room's shard.
func (ra roomArchive) Append(c module.Context, g *muc.Groupchat) {
	id, ok := sid.ParseID([]byte(g.ID))
	if !ok {
		// muc stamps sid ids; anything else would be an id no occupant knows.
		ra.m.logFailure(errors.New("mam: room message without a stanza-id of ours"), "mam: archive room message")
		return
	}
	raw := g.Raw
	if !g.Real.IsZero() {
		var b xmlstream.Builder
		b.Start("x").Attr("xmlns", muc.NSUser).Start("item").Attr("jid", g.Real.Bare().String()).End().End()
		raw = xmlstream.AppendChild(make([]byte, 0, len(raw)+len(b.B)), raw, b.B)
	}
	if err := ra.m.a.add(g.Room.String(), id, false, g.From, raw); err != nil {
		ra.m.logFailure(err, "mam: archive room message")
	}
}

// Replace puts edit's tombstone in place of a room's archived message (muc.Retracter),
// under the same id and 'with' row, and waits for the disk: the moderator is told the
// message is gone once it is.
func (ra roomArchive) Replace(room jid.JID, id string, edit func(raw []byte) []byte) error {
	sidv, ok := sid.ParseID([]byte(id))
	if !ok {
		return store.ErrNotFound // not an id this archive gave
	}
	key := room.Bare().String()
	rec, err := ra.m.a.get(key, sidv)
	if err != nil {
		return err
	}
	remote, err := jid.Parse(rec.remote)
	if err != nil {
		return fmt.Errorf("%w: archive record jid: %v", store.ErrCorrupt, err)
	}
	t := edit(rec.raw)
	if t == nil {
		return nil
	}
	return ra.m.a.t.Apply(store.Op{Key: msgKey(key, sidv), Val: encode(rec.out, remote, t)})
}

// Forget deletes a room's archive.
func (ra roomArchive) Forget(room jid.JID) error {
	return ra.m.a.t.DeletePrefix(store.UserKey(room.Bare().String()))
}

// Recent replays the room's newest messages for its join history (muc.HistorySource),
// newest first, without the real JIDs the rows keep: none older than since or than
// retention. Rows that do not decode are skipped.
func (ra roomArchive) Recent(room jid.JID, since time.Time, f func(at time.Time, raw []byte) bool) error {
	if c := ra.m.cutoff(room.Bare().String(), ra.m.now()); c.After(since) {
		since = c
	}
	prefix := msgPrefix(room.Bare().String())
	lo := prefix
	if !since.IsZero() {
		floor := sid.IDFloor(since)
		lo = append(append([]byte(nil), prefix...), floor[:]...)
	}
	var buf []byte
	return ra.m.a.t.ScanRange(lo, prefixEnd(prefix), true, func(k, v []byte) bool {
		var id sid.ID
		if len(k) != len(prefix)+len(id) {
			return true
		}
		copy(id[:], k[len(prefix):])
		rec, err := decode(v)
		if err != nil {
			return true
		}
		buf = xmlstream.CutChildren(buf[:0], rec.raw, ns.Client, func(c xmlstream.Element) bool {
			return string(c.Name()) == "x" && string(c.NS()) == muc.NSUser
		})
		return f(id.Time(), buf)
	})
}

// Namespaces lists what a logged room advertises and hands to Query.
func (roomArchive) Namespaces() []string { return []string{NS, NSExtended} }

// Query answers the MAM requests addressed to a room: queries (§4), the form (§4.1.5)
// and metadata (§6). Preferences (XEP-0441) are a user's: feature-not-implemented.
func (ra roomArchive) Query(c module.Context, room jid.JID, iq *module.Packet, a muc.Access) {
	if a == muc.NoAccess {
		c.Error(iq, &stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden, By: room.String(),
			Text: "only occupants may read this room's archive"})
		return
	}
	q, _ := iq.Payload()
	switch name, get := string(q.Name()), iq.Type == "get"; {
	case name == "query" && !get:
		ra.query(c, room, iq, q, a)
	case name == "query":
		c.Reply(iq, []byte(queryForm))
	case name == "metadata" && get:
		ra.m.metadataOf(c, iq, room.String())
	default:
		c.Error(iq, &stanza.Error{Type: stanza.Cancel, Condition: stanza.FeatureNotImplemented, By: room.String()})
	}
}

// query runs a query on the room's archive with the code of user archives and routes
// the page to the requester: the results, from the room's bare JID, then the IQ result
// with <fin/>. Real JIDs are cut from the results without muc.JIDAccess.
func (ra roomArchive) query(c module.Context, room jid.JID, iq *module.Packet, payload xmlstream.Element, a muc.Access) {
	m := ra.m
	q, e := ParseQuery(payload)
	if e != nil {
		c.Error(iq, e)
		return
	}
	if !m.synced(c, iq) {
		return
	}
	key := room.String()
	pg, e, err := m.a.query(key, &q, m.cutoff(key, c.Now()), m.settingsOf(key).maxPage)
	if e != nil {
		c.Error(iq, e)
		return
	}
	if err != nil {
		m.storeFailed(c, iq, err, "mam: room query")
		return
	}
	to := iq.From.String()
	msgs, pg := ra.read(key, pg, q.HasBefore, a, func(id sid.ID, raw []byte) []byte {
		return appendResultMessage(nil, to, key, q.QueryID, id, raw)
	})
	if q.Flip {
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
		}
	}
	for _, msg := range msgs {
		c.Route(msg)
	}
	c.Route(appendResult(nil, iq, to, appendFin(nil, pg)))
}

// read builds the results of pg, at most about RoomPageBytes of them, and returns them
// in chronological order with the page reduced to what they hold. A page cut short keeps
// the messages next to where paging started (the oldest going forwards, the newest going
// backwards) and is not complete. Messages expired since the page was chosen are
// skipped.
func (ra roomArchive) read(key string, pg page, backwards bool, a muc.Access, build func(sid.ID, []byte) []byte) ([][]byte, page) {
	n := len(pg.ids)
	msgs := make([][]byte, 0, n)
	ids := make([]sid.ID, 0, n)
	size, cut := 0, false
	for i := range n {
		if size >= RoomPageBytes {
			cut = true
			break
		}
		k := i
		if backwards {
			k = n - 1 - i
		}
		id := pg.ids[k]
		rec, err := ra.m.a.get(key, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			ra.m.logFailure(err, "mam: read room result")
			continue
		}
		raw := rec.raw
		if a != muc.JIDAccess {
			raw = xmlstream.CutChildren(nil, raw, ns.Client, func(c xmlstream.Element) bool {
				return string(c.Name()) == "x" && string(c.NS()) == muc.NSUser
			})
		}
		msg := build(id, raw)
		size += len(msg)
		msgs = append(msgs, msg)
		ids = append(ids, id)
	}
	if backwards {
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
			ids[i], ids[j] = ids[j], ids[i]
		}
	}
	if cut {
		pg.complete = false
		if backwards && pg.index >= 0 && len(ids) > 0 {
			// The oldest messages were left out: the first sent is further in.
			for i, id := range pg.ids {
				if id == ids[0] {
					pg.index += i
					break
				}
			}
		}
	}
	pg.ids = ids
	return msgs, pg
}
