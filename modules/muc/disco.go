package muc

import (
	"github.com/vireo-im/vireo/modules/rsm"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// discoInfo is the service's disco#info payload (XEP-0045 §6.2).
func (s *service) discoInfo() []byte {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoInfo)
	b.Start("identity").Attr("category", "conference").Attr("type", "text").Attr("name", s.m.cfg.Name).End()
	for _, f := range []string{ns.DiscoInfo, ns.DiscoItems, NS, NSStableID, NSOccupant, NSSelfPing, ns.Ping, NSVCard,
		rsm.NS, NSSearch} { // the room list pages (discoItems); channel search (search.go)
		b.Start("feature").Attr("var", f).End()
	}
	b.End()
	return b.B
}

// Room listing pages: what a listing without an RSM max holds, and the most one holds.
// A service may hold DefaultMaxRooms rooms, ~80 bytes each in a listing: 800 KB in one
// stanza is more than clients (and the server's own outbound bound) take.
const (
	listPage    = 250
	maxListPage = 500
)

// discoItems lists the public rooms (XEP-0045 §6.3), sorted by JID and paged with XEP-0059
// as §6.3 recommends for a large service: a request without <set/> gets the first
// listPage rooms, and a <set/> with the count when there are more.
func (s *service) discoItems(q xmlstream.Element) ([]byte, *stanza.Error) {
	r, e := rsm.Parse(q)
	if e != nil {
		return nil, e
	}
	rooms := s.dir.public()
	key := func(i int) string { return rooms[i][0] }
	pg := rsm.Cut(len(rooms), key, r, listPage, maxListPage)
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoItems)
	for _, r := range rooms[pg.Lo:pg.Hi] {
		b.Start("item").Attr("jid", r[0])
		if r[1] != "" {
			b.Attr("name", r[1])
		}
		b.End()
	}
	pg.Append(&b, key)
	b.End()
	return b.B, nil
}
