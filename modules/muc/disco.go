package muc

import (
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// discoInfo is the service's disco#info payload (XEP-0045 §6.2).
func (s *service) discoInfo() []byte {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoInfo)
	b.Start("identity").Attr("category", "conference").Attr("type", "text").Attr("name", s.m.cfg.Name).End()
	for _, f := range []string{ns.DiscoInfo, ns.DiscoItems, NS, NSStableID, NSOccupant, NSSelfPing, ns.Ping} {
		b.Start("feature").Attr("var", f).End()
	}
	b.End()
	return b.B
}

// discoItems lists the public rooms (XEP-0045 §6.3).
func (s *service) discoItems() []byte {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoItems)
	for _, r := range s.dir.public() {
		b.Start("item").Attr("jid", r[0])
		if r[1] != "" {
			b.Attr("name", r[1])
		}
		b.End()
	}
	b.End()
	return b.B
}
