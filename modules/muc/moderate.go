package muc

import (
	"bytes"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// XEP-0425 moderated message retraction: a moderator asks the room to retract an
// occupant's message by the stanza-id the room gave it. Both versions clients speak are
// understood: 0.3 (message-moderate:1, Converse.js, Gajim) and 0.2 (message-moderate:0
// inside a XEP-0422 <apply-to/>, slixmpp and older clients).
const (
	NSModerate  = "urn:xmpp:message-moderate:1"
	NSModerate0 = "urn:xmpp:message-moderate:0"
	NSRetract   = "urn:xmpp:message-retract:1" // XEP-0424
	NSRetract0  = "urn:xmpp:message-retract:0"
	NSFasten    = "urn:xmpp:fasten:0" // XEP-0422
)

// maxReasonBytes bounds the reason a moderator gives, which every occupant gets and the
// archive keeps.
const maxReasonBytes = 1024

// Retracter is an Archive that can put a tombstone in place of a message it holds
// (XEP-0424 §6, XEP-0425 §5). Replace stores edit(raw) in place of the message archived
// in room's archive under the stanza-id id, durably before it returns (the moderator's IQ
// result says the message is gone); when edit returns nil the message stays as it is.
// store.ErrNotFound when there is no such message. raw is the message as archived, valid
// during edit only. It runs on the room's shard.
type Retracter interface {
	Archive
	Replace(room jid.JID, id string, edit func(raw []byte) []byte) error
}

// moderation is a parsed moderation request.
type moderation struct {
	id     string // the stanza-id of the message to retract
	reason string
}

// parseModeration reads q, the payload of an IQ set to the room: <moderate/> of 0.3, or
// <apply-to/> holding the <moderate/> of 0.2. ok is false when q is neither.
func parseModeration(q xmlstream.Element) (m moderation, ok bool, err *stanza.Error) {
	mod, retractNS := q, NSRetract
	switch {
	case string(q.Name()) == "moderate" && string(q.NS()) == NSModerate:
	case string(q.Name()) == "apply-to" && string(q.NS()) == NSFasten:
		if mod, ok = q.Child(NSModerate0, "moderate"); !ok {
			return m, false, nil
		}
		retractNS = NSRetract0
	default:
		return m, false, nil
	}
	id, _ := q.AppendAttr(nil, "id")
	if len(id) == 0 {
		return m, true, &stanza.Error{Type: stanza.BadRequest.DefaultType(), Condition: stanza.BadRequest, Text: "the moderation names no stanza-id"}
	}
	if _, ok := mod.Child(retractNS, "retract"); !ok {
		// The XEP leaves room for other moderator actions; retraction is the only one.
		return m, true, &stanza.Error{Type: stanza.FeatureNotImplemented.DefaultType(), Condition: stanza.FeatureNotImplemented, Text: "only retraction is supported"}
	}
	m.id = string(id)
	if r, ok := mod.Child("", "reason"); ok {
		m.reason = trimText(string(r.AppendText(nil)), maxReasonBytes)
	}
	return m, true, nil
}

// moderate retracts the message a moderator named (XEP-0425 §3): its body and every other
// child that could tell what it said give way to a tombstone in the room's archive and in
// its discussion history, so that nobody who joins or reads the archive later gets it;
// every occupant gets the retraction, in both versions of the protocol; the retraction
// itself is archived, so that a client that fetched the message before learns of it when
// it catches up.
func (r *room) moderate(c module.Context, p *module.Packet, m moderation) {
	o := r.byReal[p.From.String()]
	if o == nil || o.role != roleModerator {
		c.Error(p, errBy(r.jid, stanza.Forbidden, "only moderators may retract the messages of others"))
		return
	}
	now := c.Now()
	edit := func(raw []byte) []byte { return tombstone(raw, o, "", m.reason, now) }
	found := false
	if rt, ok := r.svc.m.archive().(Retracter); ok {
		// Also when logging is off now: the archive may hold the message from before.
		switch err := rt.Replace(r.jid, m.id, edit); {
		case err == nil:
			found = true
		case !errors.Is(err, store.ErrNotFound):
			if module.LogStoreError(err) {
				r.svc.m.log.Error().Err(err).Str("room", r.key).Msg("muc: retract an archived message")
			}
			c.Error(p, stanza.New(stanza.InternalServerErrorCond))
			return
		}
	}
	if r.retractHistory(m.id, edit) {
		found = true
	}
	if !found {
		c.Error(p, errBy(r.jid, stanza.ItemNotFound, "the room has no message with this stanza-id"))
		return
	}
	ann, id := r.retraction(m, o, now)
	if r.cfg.Logging {
		if a := r.svc.m.archive(); a != nil {
			a.Append(c, &Groupchat{Room: r.jid, ID: id, At: now, From: r.jid, Raw: ann})
		}
	}
	r.fanout(c, ann, r.jid)
	c.Reply(p, nil)
	// A moderator's action, rare and one an operator may have to account for.
	r.svc.m.log.Info().Str("room", r.key).Str("moderator", o.bare.String()).Str("message", m.id).
		Msg("muc: message retracted by a moderator")
}

// retractHistory replaces the discussion history's message with the stanza-id id by
// edit's tombstone (unless edit returns nil); it reports whether it did.
func (r *room) retractHistory(id string, edit func([]byte) []byte) bool {
	h, _ := r.findHistory("id='"+id+"'", func(e xmlstream.Element) bool { return stanzaIDBy(e, r.key) == id })
	if h == nil {
		return false
	}
	t := edit(h.raw)
	if t == nil {
		return false
	}
	r.hist.bytes += len(t) - len(h.raw)
	h.raw, h.chars = t, utf8.RuneCount(t)
	return true
}

// findHistory returns the newest history entry that contains needle (a cheap first cut)
// and, parsed, satisfies match, with its parsed form; nil when there is none.
func (r *room) findHistory(needle string, match func(e xmlstream.Element) bool) (*histEntry, xmlstream.Element) {
	nb := []byte(needle)
	for i := r.hist.n - 1; i >= 0; i-- {
		h := r.hist.at(i)
		if !bytes.Contains(h.raw, nb) {
			continue
		}
		if e, err := xmlstream.ParseElement(h.raw, ns.Client); err == nil && match(e) {
			return h, e
		}
	}
	return nil, xmlstream.Element{}
}

// stanzaIDBy returns the id of e's <stanza-id/> stamped by the entity by, or "".
func stanzaIDBy(e xmlstream.Element, by string) string {
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			return ""
		}
		if string(ch.Name()) != "stanza-id" || string(ch.NS()) != ns.SID {
			continue
		}
		if v, _ := ch.AppendAttr(nil, "by"); string(v) == by {
			v, _ = ch.AppendAttr(nil, "id")
			return string(v)
		}
	}
}

// tombstone rebuilds the message raw as XEP-0424 §5 and XEP-0425 §5 leave it: the same
// start tag, the children that say who sent it when and under which ids (occupant-id,
// stanza-id, origin-id, delay, and the real JID the archive keeps for those allowed to see
// it), and a <retracted/> that says when, by which retraction (its id) or which moderator
// (by), and why. Everything else (body, markup,
// attachments, replies, corrections) goes.
func tombstone(raw []byte, by *occupant, retraction, reason string, at time.Time) []byte {
	var b xmlstream.Builder
	dst := make([]byte, 0, len(raw)+384)
	e, err := xmlstream.ParseElement(raw, ns.Client)
	var tag []byte
	if err == nil {
		tag, _ = split(e)
	}
	if rest, ok := bytes.CutPrefix(tag, []byte("<message")); !ok || len(rest) == 0 || !isSpace(rest[0]) && rest[0] != '>' && rest[0] != '/' {
		// The room keeps only messages it wrote itself; should anything else turn up,
		// nothing of it stays.
		b.Reset(append(dst, "<message type='groupchat'>"...))
	} else {
		b.Reset(append(append(dst, openTag(tag)...), '>'))
		for it := e.Children(); ; {
			ch, ok := it.Next()
			if !ok {
				break
			}
			name, space := string(ch.Name()), string(ch.NS())
			switch {
			case name == "occupant-id" && space == NSOccupant,
				(name == "stanza-id" || name == "origin-id") && space == ns.SID,
				name == "delay" && space == ns.Delay,
				name == "x" && space == NSUser:
				b.Raw(ch.Raw())
			}
		}
	}
	b.Start("retracted").Attr("xmlns", NSRetract).Attr("stamp", at.UTC().Format(stampLayout))
	if retraction != "" {
		b.Attr("id", retraction) // XEP-0424 §5: the id of the retraction, to match it
	}
	if by != nil {
		appendModerated(&b, NSModerate, by)
		b.End()
	}
	if reason != "" {
		b.Start("reason").Text(reason).End()
	}
	b.End()
	return append(b.B, "</message>"...)
}

// Tombstone is a message's XEP-0424 tombstone as the rooms keep them: raw's start tag and
// ids (stanza-id, origin-id, occupant-id), its delay, and <retracted/> with the time, the
// id of the retraction (when not "") and the reason (when not ""). The user archives (the
// mam module) keep their tombstones in the same form.
func Tombstone(raw []byte, retraction, reason string, at time.Time) []byte {
	return tombstone(raw, nil, retraction, reason, at)
}

// RetractedID returns the id a message retracts (XEP-0424: <retract/> of 0.4, or of 0.3
// inside a XEP-0422 <apply-to/>), or "".
func RetractedID(e xmlstream.Element) string { return retractedID(e) }

// selfRetract carries out an occupant's retraction of its own message (XEP-0424), which
// the room has just reflected and archived as any message: the message it names by the
// room's stanza-id becomes a tombstone in the archive and the history, as a room "SHOULD
// prevent further distribution" of it (§5), provided the occupant wrote it, which its
// occupant-id (XEP-0421, the same for every session and nickname of one account) tells.
// Anything else is left as it was: a retraction of someone else's message is only a
// message.
func (r *room) selfRetract(o *occupant, e xmlstream.Element, retraction string, now time.Time) {
	id := retractedID(e)
	if id == "" {
		return
	}
	// XEP-0424 §6.1 names a groupchat message by the room's stanza-id, but some clients
	// (Converse.js 14) name their own by the id they gave it: the history finds which
	// stanza-id that was, among the occupant's recent messages.
	if sid, ok := r.historySID(id, o.id); ok {
		id = sid
	}
	edit := func(raw []byte) []byte {
		m, err := xmlstream.ParseElement(raw, ns.Client)
		if err != nil || occupantIDOf(m) != o.id {
			return nil
		}
		return tombstone(raw, nil, retraction, "", now)
	}
	if rt, ok := r.svc.m.archive().(Retracter); ok {
		if err := rt.Replace(r.jid, id, edit); err != nil && !errors.Is(err, store.ErrNotFound) && module.LogStoreError(err) {
			r.svc.m.log.Error().Err(err).Str("room", r.key).Msg("muc: retract an archived message")
		}
	}
	r.retractHistory(id, edit)
}

// historySID returns the room's stanza-id of the message in the history that occupant
// occID sent with the id (or origin-id) clientID.
func (r *room) historySID(clientID, occID string) (string, bool) {
	h, e := r.findHistory(clientID, func(e xmlstream.Element) bool {
		return occupantIDOf(e) == occID && Names(e, clientID) && stanzaIDBy(e, r.key) != ""
	})
	if h == nil {
		return "", false
	}
	return stanzaIDBy(e, r.key), true
}

// Names reports whether message e carries id as its 'id' or its origin-id (XEP-0359): how
// XEP-0424 names a message in a one-to-one chat, and Converse.js its own in rooms.
func Names(e xmlstream.Element, id string) bool {
	if v, ok := e.AppendAttr(nil, "id"); ok && string(v) == id {
		return true
	}
	if o, ok := e.Child(ns.SID, "origin-id"); ok {
		v, _ := o.AppendAttr(nil, "id")
		return string(v) == id
	}
	return false
}

// retractedID returns the stanza-id a groupchat message retracts (XEP-0424: <retract/>
// of 0.4, or of 0.3 inside a XEP-0422 <apply-to/>), or "".
func retractedID(e xmlstream.Element) string {
	if rc, ok := e.Child(NSRetract, "retract"); ok {
		v, _ := rc.AppendAttr(nil, "id")
		return string(v)
	}
	if at, ok := e.Child(NSFasten, "apply-to"); ok {
		if _, ok := at.Child(NSRetract0, "retract"); ok {
			v, _ := at.AppendAttr(nil, "id")
			return string(v)
		}
	}
	return ""
}

// occupantIDOf returns the id of e's XEP-0421 <occupant-id/>, or "".
func occupantIDOf(e xmlstream.Element) string {
	if oc, ok := e.Child(NSOccupant, "occupant-id"); ok {
		v, _ := oc.AppendAttr(nil, "id")
		return string(v)
	}
	return ""
}

// appendModerated writes <moderated/> in namespace space: the moderator's occupant JID
// and (XEP-0421) occupant id.
func appendModerated(b *xmlstream.Builder, space string, by *occupant) {
	b.Start("moderated").Attr("xmlns", space).Attr("by", by.ojid.String())
	b.Raw(appendOccupantID(nil, by.id))
}

// retraction builds the message every occupant gets when a message is retracted, from the
// room, with a stanza-id of its own (returned): XEP-0425 0.3's <retract/> and, for
// clients of 0.2, the same inside <apply-to/>.
func (r *room) retraction(m moderation, by *occupant, now time.Time) ([]byte, string) {
	var idb [32]byte
	id := string(sid.AppendID(idb[:0], now))
	var b xmlstream.Builder
	b.Start("message").Attr("type", "groupchat").Attr("from", r.key).Attr("id", id)
	b.Start("retract").Attr("xmlns", NSRetract).Attr("id", m.id)
	appendModerated(&b, NSModerate, by)
	b.End()
	if m.reason != "" {
		b.Start("reason").Text(m.reason).End()
	}
	b.End()
	b.Start("apply-to").Attr("xmlns", NSFasten).Attr("id", m.id)
	appendModerated(&b, NSModerate0, by)
	b.Start("retract").Attr("xmlns", NSRetract0).End()
	if m.reason != "" {
		b.Start("reason").Text(m.reason).End()
	}
	b.End().End()
	b.Raw([]byte("<stanza-id xmlns='" + ns.SID + "' id='" + id + "' by='"))
	b.B = xmlstream.AppendEscapedString(b.B, r.key)
	b.B = append(b.B, "'/>"...)
	b.End()
	return b.B, id
}
