package mam

import (
	"github.com/vireo-im/vireo/modules/blocking"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// evidence finds the messages an XEP-0377 report names in the reporter's archive, for
// the blocking module to hand the abuse desk. Only messages the reported entity sent
// qualify: a report cannot carry what the reporter said, or what a third party did.
type evidence struct{ m *Mod }

var _ blocking.Evidence = evidence{}

// Messages implements blocking.Evidence.
func (e evidence) Messages(user string, from jid.JID, ids []string) []blocking.Archived {
	var out []blocking.Archived
	for _, s := range ids {
		id, ok := sid.ParseID([]byte(s))
		if !ok {
			continue
		}
		rec, err := e.m.a.get(user, id)
		if err != nil || rec.out {
			continue
		}
		sender, err := jid.Parse(rec.remote)
		if err != nil || !sentBy(sender, from) {
			continue
		}
		out = append(out, blocking.Archived{At: id.Time(), Raw: append([]byte(nil), rec.raw...)})
	}
	return out
}

// sentBy reports whether sender is covered by the reported JID: the same full JID, any
// resource of a bare JID, or anyone of a domain (a block item may be any of the three).
func sentBy(sender, reported jid.JID) bool {
	switch {
	case !reported.IsBare():
		return sender.Equal(reported)
	case reported.Local() == "":
		return sender.Domain() == reported.Domain()
	default:
		return sender.Bare().Equal(reported)
	}
}
