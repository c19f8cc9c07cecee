package muc

import (
	"strconv"
	"sync"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Archive is the seam for XEP-0313 archives of rooms (the mam module installs one): when
// a room is logged (muc#roomconfig_enablelogging), every groupchat message it reflects is
// handed to the archive once, on the room's shard, before it is delivered. Forget deletes
// a room's archive: when the room is destroyed or disappears with its last occupant, and
// when a room is created, so that a new room never shows what an older one of the same
// name said. Both run on the room's shard.
type Archive interface {
	Append(c module.Context, m *Groupchat)
	Forget(room jid.JID) error
}

// Groupchat is a reflected message as an Archive gets it. Raw is valid during the call
// only.
type Groupchat struct {
	Room jid.JID
	ID   string    // the <stanza-id by=room/> every occupant got
	At   time.Time // when the room reflected it
	From jid.JID   // the occupant JID (room@service/nick)
	Real jid.JID   // the sender's real bare JID, for those allowed to see it (Access)
	// Raw is the message as every occupant gets it: from the occupant JID, with
	// <stanza-id by=room/> and <occupant-id/>, without 'to'.
	Raw []byte
}

// Access is what a room lets a requester read from its archive (XEP-0313 §4 on a MUC).
type Access uint8

// Access levels.
const (
	// NoAccess is the answer for a non-occupant of a room that is members-only (and not a
	// member), hidden, password-protected, or that banned the requester: forbidden.
	NoAccess Access = iota
	// ReadAccess reads the messages as occupants got them, without real JIDs.
	ReadAccess
	// JIDAccess reads them with their senders' real JIDs: in a non-anonymous room
	// (muc#roomconfig_whois = anyone), and for moderators, admins and owners.
	JIDAccess
)

// ArchiveQuerier is an Archive that also answers queries addressed to rooms (XEP-0313
// §4 on a MUC): a logged room hands it every IQ request whose payload namespace is one of
// Namespaces (which the room also lists in its disco#info), on the room's shard, with the
// requester's access; the querier answers NoAccess with forbidden.
type ArchiveQuerier interface {
	Archive
	Namespaces() []string
	Query(c module.Context, room jid.JID, iq *module.Packet, a Access)
}

// HistorySource is an Archive that can also replay a room's newest messages: a logged
// room that is loaded from the store (a persistent room, at its first stanza after a
// restart) fills its discussion history from it, so the legacy <history/> of XEP-0045
// §7.2.14 survives a restart. Recent calls f with the room's messages newest first, none
// older than since, until f returns false; raw is the message as the occupants got it
// (without real JIDs and without <delay/>), valid during the call. It runs on the room's
// shard.
type HistorySource interface {
	Archive
	Recent(room jid.JID, since time.Time, f func(at time.Time, raw []byte) bool) error
}

// archives maps a server's store to the Archive installed for its rooms: one process may
// run several servers (tests, the bench), and each server's rooms must write to their
// own store.
var archives sync.Map // store.Store -> Archive

// SetArchive installs a as the archive of the rooms of the server whose store is st (a
// nil a removes it). The archive module calls it from Provision and, with nil, from
// Cleanup; rooms look it up when they use it, so the order of provisioning does not
// matter.
func SetArchive(st store.Store, a Archive) {
	if a == nil {
		archives.Delete(st)
		return
	}
	archives.Store(st, a)
}

// archive returns the Archive installed for this server, or nil.
func (m *Mod) archive() Archive {
	if m.st == nil {
		return nil
	}
	a, ok := archives.Load(m.st)
	if !ok {
		return nil
	}
	return a.(Archive)
}

// querier returns the installed archive's query side for namespace space, if any.
func (m *Mod) querier(space string) ArchiveQuerier {
	q, ok := m.archive().(ArchiveQuerier)
	if !ok {
		return nil
	}
	for _, n := range q.Namespaces() {
		if n == space {
			return q
		}
	}
	return nil
}

// archiveAccess decides what from may read from the room's archive: occupants read it;
// a non-occupant only when it could join without anyone's leave (a member of a
// members-only room, or anyone for a public, open room without password); outcasts
// never. Real JIDs go to those who see them in the room (sees), and to admins and owners.
func (r *room) archiveAccess(from jid.JID) Access {
	aff := r.affOf(from.Bare())
	if aff == affOutcast {
		return NoAccess
	}
	o := r.byReal[from.String()]
	if o == nil {
		open := !r.cfg.MembersOnly && r.cfg.Public && !r.cfg.PasswordProtected
		if !open && !(r.cfg.MembersOnly && aff >= affMember) {
			return NoAccess
		}
	}
	if r.cfg.WhoisAnyone || aff >= affAdmin || o != nil && o.role == roleModerator {
		return JIDAccess
	}
	return ReadAccess
}

// forgetArchive deletes the room's archive, if there is an archive.
func (r *room) forgetArchive() {
	a := r.svc.m.archive()
	if a == nil {
		return
	}
	if err := a.Forget(r.jid); err != nil && module.LogStoreError(err) {
		r.svc.m.log.Error().Err(err).Str("room", r.key).Msg("muc: delete the room's archive")
	}
}

// message handles a message to the room or to an occupant.
func (r *room) message(c module.Context, p *module.Packet) {
	o := r.byReal[p.From.String()]
	if p.Type == "error" {
		if !p.To.IsBare() {
			// The answer to a private message: it goes back to the occupant who sent
			// that. It says nothing of the session's life: the recipient may have
			// blocked the sender, and a block must not cost the blocker the room.
			r.private(c, p, o)
			return
		}
		if o != nil && kickable(p) {
			r.ghost(c, o, p.From)
		}
		return
	}
	if !p.To.IsBare() {
		r.private(c, p, o)
		return
	}
	if p.Type == "groupchat" {
		r.groupchat(c, p, o)
		return
	}
	e := p.Elem()
	if x, ok := e.Child(NSUser, "x"); ok && r.invitations(c, p, o, x) {
		return
	}
	if x, ok := e.Child(ns.DataForms, "x"); ok && r.voiceRequest(c, p, o, x) {
		return
	}
	if _, ok := e.Child("", "body"); ok {
		// §7.4: messages to the room that are not groupchat may be rejected.
		c.Error(p, errBy(r.jid, stanza.BadRequest, "messages to the room must be of type groupchat"))
	}
}

// groupchat handles a message to all occupants (XEP-0045 §7.4) or a subject change (§8.1).
func (r *room) groupchat(c module.Context, p *module.Packet, o *occupant) {
	if o == nil {
		c.Error(p, errBy(r.jid, stanza.NotAcceptable, "you are not in the room"))
		return
	}
	e := p.Elem()
	_, body := e.Child("", "body")
	_, thread := e.Child("", "thread")
	subj, hasSubj := e.Child("", "subject")
	if hasSubj && !body && !thread {
		if o.role != roleModerator && !(r.cfg.ChangeSubject && o.role >= roleParticipant) {
			c.Error(p, errBy(r.jid, stanza.Forbidden, "you may not change the subject"))
			return
		}
		now := c.Now()
		r.subject = subject{text: trimText(string(subj.AppendText(nil)), maxSubjectBytes), nick: o.nick,
			occID: o.id, at: now, set: true}
		if err := r.saveSubject(); err != nil {
			r.svc.m.log.Error().Err(err).Str("room", r.key).Msg("muc: store subject")
		}
		// Archived like a message, with its stanza-id: a client catching up learns the
		// room's topic and its changes from the archive (XEP-0313 §6).
		tmpl, id := r.reflect(c, e, o, r.cfg.Logging, now)
		if r.cfg.Logging {
			if a := r.svc.m.archive(); a != nil {
				a.Append(c, &Groupchat{Room: r.jid, ID: id, At: now, From: o.ojid, Real: o.bare, Raw: tmpl})
			}
		}
		r.fanout(c, tmpl, o.ojid)
		return
	}
	if o.role < roleParticipant {
		c.Error(p, errBy(r.jid, stanza.Forbidden, "visitors may not speak in a moderated room"))
		return
	}
	now := c.Now()
	if lim := r.svc.conf(); len(r.occ) >= lim.FloodOccupants && o.role < roleModerator && !o.msgs.take(now, lim.MessageRate, 5*lim.MessageRate) {
		// A message to a large room is copied to everyone in it: one occupant may not make
		// the room (and the server) repeat a flood.
		e := errBy(r.jid, stanza.PolicyViolationCond, "you are sending messages too fast")
		e.Type = stanza.Wait
		c.Error(p, e)
		return
	}
	tmpl, id := r.reflect(c, e, o, true, now)
	if r.cfg.Logging {
		if a := r.svc.m.archive(); a != nil {
			a.Append(c, &Groupchat{Room: r.jid, ID: id, At: now, From: o.ojid, Real: o.bare, Raw: tmpl})
		}
	}
	r.fanout(c, tmpl, o.ojid)
	r.record(tmpl, now)
	if retractedID(e) != "" {
		mid := id
		if v, ok := e.AppendAttr(nil, "id"); ok {
			mid = string(v)
		}
		r.selfRetract(o, e, mid, now)
	}
	if r.cfg.MembersOnly {
		if n := r.svc.m.notifier(); n != nil {
			r.mentions(c, n, e, o)
		}
	}
}

// reflect builds the message the room sends for a client's groupchat message, once,
// without 'to': the client's start tag with 'from' set to the occupant JID (and an id when
// it had none, §7.4), its children without the ones only the room may write (occupant-id,
// XEP-0421 §4; a stanza-id claiming to be the room's, XEP-0359 §5; muc#user data, §17.2),
// then <stanza-id by=room/> (when sid) and <occupant-id/>. The result lives in the shard's
// scratch buffer until the next stanza.
func (r *room) reflect(c module.Context, e xmlstream.Element, o *occupant, withSID bool, now time.Time) ([]byte, string) {
	buf := scratch0(c)
	tag, _ := split(e)
	var idb [32]byte
	id := sid.AppendID(idb[:0], now)
	sets := [3]xmlstream.AttrSet{{Name: "from", Value: s2b(o.ojid.String())}, {Name: "to", Remove: true},
		{Name: "id", Value: id}}
	n := 3
	if _, ok := e.Attr("id"); ok {
		n = 2
	}
	b := xmlstream.SetAttrs((*buf)[:0], tag, sets[:n]...)
	b = append(openTag(b), '>')
	room := r.key
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		name, space := string(ch.Name()), string(ch.NS())
		switch {
		case name == "occupant-id" && space == NSOccupant:
			continue
		case name == "x" && space == NSUser:
			continue
		case name == "stanza-id" && space == ns.SID:
			if v, _ := ch.AppendAttr(nil, "by"); sid.SameJID(v, room) {
				continue
			}
		}
		b = append(b, ch.Raw()...)
	}
	if withSID {
		b = append(b, "<stanza-id xmlns='"+ns.SID+"' id='"...)
		b = append(b, id...)
		b = append(b, "' by='"...)
		b = xmlstream.AppendEscapedString(b, room)
		b = append(b, "'/>"...)
	}
	b = appendOccupantID(b, o.id)
	b = append(b, "</message>"...)
	*buf = b
	return b, string(id)
}

// fanout delivers tmpl to every session of every occupant, the sender's included (§7.4:
// the reflection tells it the message went out, with the same id and stanza-id).
func (r *room) fanout(c module.Context, tmpl []byte, from jid.JID) {
	snd := newSender(c)
	for _, x := range r.occ {
		for _, s := range x.sess {
			snd.packet(s, tmpl, module.KindMessage, "groupchat", "", from)
		}
	}
}

// private handles a private message to an occupant (XEP-0045 §7.5).
func (r *room) private(c module.Context, p *module.Packet, o *occupant) {
	if o == nil {
		c.Error(p, errBy(r.jid, stanza.NotAcceptable, "you are not in the room"))
		return
	}
	if p.Type == "groupchat" {
		c.Error(p, errBy(r.jid, stanza.BadRequest, "private messages are not groupchat"))
		return
	}
	t := r.byNick[p.To.Resource()]
	if t == nil {
		c.Error(p, errBy(r.jid, stanza.ItemNotFound, "no such occupant"))
		return
	}
	ok := false
	switch r.cfg.AllowPM {
	case pmAnyone, "":
		ok = true
	case pmParticipants:
		ok = o.role >= roleParticipant
	case pmModerators:
		ok = o.role == roleModerator
	}
	if !ok {
		c.Error(p, errBy(r.jid, stanza.Forbidden, "private messages are not allowed here"))
		return
	}
	e := p.Elem()
	buf := scratch0(c)
	tag, _ := split(e)
	b := xmlstream.SetAttrs((*buf)[:0], tag, xmlstream.AttrSet{Name: "from", Value: s2b(o.ojid.String())},
		xmlstream.AttrSet{Name: "to", Remove: true})
	b = append(openTag(b), '>')
	hasX := false
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		name, space := string(ch.Name()), string(ch.NS())
		if name == "occupant-id" && space == NSOccupant {
			continue
		}
		if name == "x" && space == NSUser {
			if hasX {
				continue
			}
			hasX = true
			b = append(b, "<x xmlns='"+NSUser+"'/>"...) // the client's #user data is not passed on
			continue
		}
		b = append(b, ch.Raw()...)
	}
	if !hasX {
		b = append(b, "<x xmlns='"+NSUser+"'/>"...) // §7.5: the service SHOULD add it
	}
	b = appendOccupantID(b, o.id)
	b = append(b, "</message>"...)
	*buf = b
	snd := newSender(c)
	for _, s := range t.sess {
		snd.to(s, b)
	}
}

// invitations handles mediated invitations and declines (XEP-0045 §7.8.2) in x; it
// reports whether x held any.
func (r *room) invitations(c module.Context, p *module.Packet, o *occupant, x xmlstream.Element) bool {
	invites := 0
	for it := x.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		if string(ch.NS()) == NSUser && string(ch.Name()) == "invite" {
			invites++
		}
	}
	if invites > maxInvitesPerMessage {
		// Each goes out from the room, which no account's budget of new federation
		// streams covers: one stanza must not fan out without end.
		c.Error(p, errBy(r.jid, stanza.PolicyViolationCond, "too many invitations in one message"))
		return true
	}
	handled := false
	aff := r.affOf(p.From.Bare())
	for it := x.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		if string(ch.NS()) != NSUser {
			continue
		}
		switch string(ch.Name()) {
		case "invite":
			handled = true
			if e := r.invite(c, p, o, aff, ch); e != nil {
				c.Error(p, e)
				return true
			}
		case "decline":
			handled = true
			to, e := itemJID(ch, "to")
			if e != nil {
				c.Error(p, e)
				return true
			}
			invitee := p.From.Bare().String()
			if inviter, ok := r.invited[invitee]; !ok || inviter != to.Bare().String() {
				// Only an invitation the room sent is declined, to the one who sent it:
				// the room does not carry messages to whomever someone names.
				c.Error(p, errBy(r.jid, stanza.NotAcceptable, "no invitation from "+to.Bare().String()+" to decline"))
				return true
			}
			delete(r.invited, invitee)
			var b xmlstream.Builder
			b.Start("message").Attr("from", r.key).Attr("to", to.String())
			if id, ok := p.Elem().Attr("id"); ok {
				b.AttrBytes("id", xmlstream.AppendUnescaped(nil, id))
			}
			b.Start("x").Attr("xmlns", NSUser).Start("decline").Attr("from", p.From.Bare().String())
			if rs, ok := ch.Child(NSUser, "reason"); ok {
				b.Start("reason").TextBytes(rs.AppendText(nil)).End()
			}
			b.End().End().End()
			c.Route(b.B)
			return true // one decline per message
		}
	}
	return handled
}

// itemJID parses the JID in attribute attr of e.
func itemJID(e xmlstream.Element, attr string) (jid.JID, *stanza.Error) {
	v, ok := e.AppendAttr(nil, attr)
	if !ok || len(v) == 0 {
		return jid.JID{}, badForm(stanza.BadRequest, "missing "+attr)
	}
	j, err := jid.ParseBytes(v)
	if err != nil {
		return jid.JID{}, stanza.New(stanza.JIDMalformed)
	}
	return j, nil
}

// invite relays one invitation. Occupants may invite; in a members-only room only admins
// and owners, or any occupant when allowinvites is on, and the invitee becomes a member
// (§7.8.2, §9.5).
func (r *room) invite(c module.Context, p *module.Packet, o *occupant, aff affiliation, inv xmlstream.Element) *stanza.Error {
	if o == nil {
		return errBy(r.jid, stanza.NotAcceptable, "you are not in the room")
	}
	if r.cfg.MembersOnly && aff < affAdmin && !r.cfg.AllowInvites {
		return errBy(r.jid, stanza.Forbidden, "only admins may invite to this room")
	}
	to, e := itemJID(inv, "to")
	if e != nil {
		return e
	}
	if r.cfg.MembersOnly && r.affOf(to.Bare()) == affNone {
		key := to.Bare().String()
		if len(r.affs) >= maxAffiliations {
			return errBy(r.jid, stanza.ResourceConstraintCond, "too many affiliations")
		}
		rec := affRecord{aff: affMember}
		if err := r.saveAff(key, rec); err != nil {
			return module.StoreError(err)
		}
		r.affs[key] = rec
	}
	var reason []byte
	if rs, ok := inv.Child(NSUser, "reason"); ok {
		reason = rs.AppendText(nil)
	}
	_, cont := inv.Child(NSUser, "continue")
	c.Route(r.invitation(to, p.From.Bare().String(), string(reason), cont, p.Elem()))
	if r.invited == nil {
		r.invited = map[string]string{}
	}
	if len(r.invited) >= maxInvited {
		for k := range r.invited { // any one: an old invitation nobody declined
			delete(r.invited, k)
			break
		}
	}
	r.invited[to.Bare().String()] = p.From.Bare().String()
	return nil
}

// invitation builds the invitation message the room sends to invitee (§7.8.2).
func (r *room) invitation(to jid.JID, from, reason string, cont bool, orig xmlstream.Element) []byte {
	var b xmlstream.Builder
	b.Start("message").Attr("from", r.key).Attr("to", to.String())
	if id, ok := orig.Attr("id"); ok {
		b.AttrBytes("id", xmlstream.AppendUnescaped(nil, id))
	}
	b.Start("x").Attr("xmlns", NSUser).Start("invite")
	if from != "" {
		b.Attr("from", from)
	}
	if reason != "" {
		b.Start("reason").Text(reason).End()
	}
	if cont {
		b.Start("continue").End()
	}
	b.End()
	if r.cfg.PasswordProtected {
		b.Start("password").Text(r.cfg.Password).End()
	}
	b.End().End()
	return b.B
}

// occupantIQ handles an IQ to an occupant JID: XEP-0410 self-ping is answered by the room
// (§3.3); other requests between occupants are relayed with the room's own ids so that
// neither side learns the other's real JID (XEP-0045 §17.3); answers go back the same way.
func (r *room) occupantIQ(c module.Context, p *module.Packet) {
	o := r.byReal[p.From.String()]
	if p.Type == "result" || p.Type == "error" {
		r.relayAnswer(c, p)
		return
	}
	q, ok := p.Payload()
	isPing := ok && string(q.NS()) == ns.Ping && string(q.Name()) == "ping"
	if o == nil {
		cond := stanza.NotAcceptable // XEP-0410 §3.2
		if ok && (string(q.NS()) == ns.DiscoInfo || string(q.NS()) == ns.DiscoItems) {
			cond = stanza.BadRequest // XEP-0045 §6.7
		}
		c.Error(p, errBy(r.jid, cond, "you are not in the room"))
		return
	}
	t := r.byNick[p.To.Resource()]
	if t == nil {
		c.Error(p, errBy(r.jid, stanza.ItemNotFound, "no such occupant"))
		return
	}
	if t == o && isPing {
		c.Reply(p, nil)
		return
	}
	if len(r.pending) >= maxPendingIQ {
		old := r.pendSeq[0]
		r.pendSeq = r.pendSeq[1:]
		delete(r.pending, old)
	}
	r.iqSeq++
	id := "muc" + strconv.FormatUint(r.iqSeq, 36) + "-" + strconv.FormatInt(c.Now().UnixNano()&0xffffff, 36)
	target := t.sess[len(t.sess)-1]
	if r.pending == nil {
		r.pending = map[string]pendingIQ{}
	}
	r.pending[id] = pendingIQ{from: p.From, id: p.ID, target: target, ojid: t.ojid}
	r.pendSeq = append(r.pendSeq, id)
	out := xmlstream.SetAttrs(nil, p.Raw, xmlstream.AttrSet{Name: "from", Value: s2b(o.ojid.String())},
		xmlstream.AttrSet{Name: "to", Value: s2b(target.String())}, xmlstream.AttrSet{Name: "id", Value: []byte(id)})
	c.Route(out)
}

// relayAnswer passes the answer to a relayed IQ back to the requester.
func (r *room) relayAnswer(c module.Context, p *module.Packet) {
	v, ok := p.Elem().Attr("id")
	if !ok {
		return
	}
	pd, ok := r.pending[string(v)]
	if !ok || !pd.target.Equal(p.From) {
		return
	}
	delete(r.pending, string(v))
	for i, k := range r.pendSeq {
		if k == string(v) {
			r.pendSeq = append(r.pendSeq[:i], r.pendSeq[i+1:]...)
			break
		}
	}
	out := xmlstream.SetAttrs(nil, p.Raw, xmlstream.AttrSet{Name: "from", Value: s2b(pd.ojid.String())},
		xmlstream.AttrSet{Name: "to", Value: s2b(pd.from.String())}, xmlstream.AttrSet{Name: "id", Value: []byte(pd.id)})
	c.Route(out)
}

// formValues returns the first value of each field of a data form (at most 32 fields).
func formValues(x xmlstream.Element) map[string]string {
	out := map[string]string{}
	for it := x.Children(); len(out) < 32; {
		f, ok := it.Next()
		if !ok {
			break
		}
		if string(f.Name()) != "field" || string(f.NS()) != ns.DataForms {
			continue
		}
		name, _ := f.AppendAttr(nil, "var")
		if v, ok := f.Child(ns.DataForms, "value"); ok {
			out[string(name)] = trimText(string(v.AppendText(nil)), maxFieldBytes)
		} else {
			out[string(name)] = ""
		}
	}
	return out
}

// voiceRequest handles the muc#request form (XEP-0045 §7.13, §8.6): a visitor's request
// for voice goes to the moderators as an approval form; a moderator's submitted approval
// grants voice. It reports whether x was such a form.
func (r *room) voiceRequest(c module.Context, p *module.Packet, o *occupant, x xmlstream.Element) bool {
	f := formValues(x)
	if f["FORM_TYPE"] != NSRequest {
		return false
	}
	if t, _ := x.AppendAttr(nil, "type"); string(t) != "submit" {
		return true
	}
	if o == nil {
		c.Error(p, errBy(r.jid, stanza.NotAcceptable, "you are not in the room"))
		return true
	}
	allow, isApproval := f["muc#request_allow"]
	if !isApproval {
		if o.role != roleVisitor || f["muc#role"] != "participant" {
			return true // nothing to request
		}
		var b xmlstream.Builder
		b.Start("message").Attr("from", r.key)
		b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "form")
		b.Start("title").Text("Voice request").End()
		b.Start("instructions").Text("To approve this request for voice, select the \"Grant voice to this person?\" checkbox and click OK.").End()
		appendField(&b, "hidden", "FORM_TYPE", "", NSRequest)
		b.End()
		appendField(&b, "list-single", "muc#role", "Requested role", "participant")
		b.End()
		appendField(&b, "jid-single", "muc#jid", "User ID", p.From.String())
		b.End()
		appendField(&b, "text-single", "muc#roomnick", "Room Nickname", o.nick)
		b.End()
		appendField(&b, "boolean", "muc#request_allow", "Grant voice to this person?", "false")
		b.End()
		b.End().End()
		snd := newSender(c)
		for _, m := range r.occ {
			if m.role != roleModerator {
				continue
			}
			for _, s := range m.sess {
				snd.to(s, b.B)
			}
		}
		return true
	}
	if ok, _ := parseBool(allow); !ok {
		return true // not granted
	}
	t := r.byNick[f["muc#roomnick"]]
	if t == nil || t.role != roleVisitor {
		return true
	}
	if cond := checkRole(r.affOf(p.From.Bare()), o.role, r.affOf(t.bare), t.role, roleParticipant); cond != "" {
		c.Error(p, errBy(r.jid, cond, ""))
		return true
	}
	t.role = roleParticipant
	snd := newSender(c)
	r.broadcast(&snd, t, &presOpt{actor: o.nick, was: roleVisitor}, jid.JID{})
	return true
}
