package muc

import (
	"sort"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// iq handles an IQ to the room or to an occupant.
func (r *room) iq(c module.Context, p *module.Packet) {
	if !p.To.IsBare() {
		r.occupantIQ(c, p)
		return
	}
	if p.Type != "get" && p.Type != "set" {
		return
	}
	q, ok := p.Payload()
	if !ok {
		c.Error(p, stanza.New(stanza.BadRequest))
		return
	}
	if r.locked && !r.isOwner(p.From) {
		c.Error(p, errBy(r.jid, stanza.ItemNotFound, "the room is locked"))
		return
	}
	space, name, get := string(q.NS()), string(q.Name()), p.Type == "get"
	switch {
	case get && space == ns.DiscoInfo && name == "query":
		r.discoInfo(c, p, q)
	case get && space == ns.DiscoItems && name == "query":
		// §6.5: the occupant list is not public.
		c.Reply(p, []byte("<query xmlns='"+ns.DiscoItems+"'/>"))
	case get && space == ns.Ping && name == "ping":
		c.Reply(p, nil)
	case space == NSVCard && name == "vCard":
		if get {
			r.getVCard(c, p)
		} else {
			r.setVCard(c, p, q)
		}
	case space == ns.Register && name == "query":
		r.register(c, p, q)
	case !get && space == nsCaptcha && name == "captcha":
		r.captchaAnswer(c, p, q)
	case !get && (space == NSModerate || space == NSFasten):
		m, ok, err := parseModeration(q)
		switch {
		case !ok:
			c.Error(p, stanza.New(stanza.ServiceUnavailable))
		case err != nil:
			err.By = r.key
			c.Error(p, err)
		default:
			r.moderate(c, p, m)
		}
	case space == NSAdmin && name == "query":
		if get {
			r.adminGet(c, p, q)
		} else {
			r.adminSet(c, p, q)
		}
	case space == NSOwner && name == "query" && hasChild(q, NSOwner, "item"):
		// Affiliation lists in the #owner namespace, as XEP-0045 before 1.18 had them.
		if get {
			r.adminGet(c, p, q)
		} else {
			r.adminSet(c, p, q)
		}
	case space == NSOwner && name == "query":
		if get {
			r.ownerGet(c, p)
		} else {
			r.ownerSet(c, p, q)
		}
	default:
		if aq := r.svc.m.querier(space); aq != nil && r.cfg.Logging {
			aq.Query(c, r.jid, p, r.archiveAccess(p.From))
			return
		}
		c.Error(p, stanza.New(stanza.ServiceUnavailable))
	}
}

// discoInfo answers disco#info on the room (XEP-0045 §6.4) and its nodes: the reserved
// nickname (§7.12) and the traffic node (§6.7), to those who may read the room.
func (r *room) discoInfo(c module.Context, p *module.Packet, q xmlstream.Element) {
	node, _ := q.AppendAttr(nil, "node")
	var b xmlstream.Builder
	switch string(node) {
	case "":
		r.appendInfo(&b)
	case "x-roomuser-item":
		b.Start("query").Attr("xmlns", ns.DiscoInfo).Attr("node", "x-roomuser-item")
		if a, ok := r.affs[p.From.Bare().String()]; ok && a.nick != "" && a.aff > affNone {
			b.Start("identity").Attr("category", "conference").Attr("type", "text").Attr("name", a.nick).End()
		}
		b.End()
	case NS + "#traffic":
		if r.archiveAccess(p.From) == NoAccess {
			c.Error(p, stanza.New(stanza.Forbidden)) // what it says is for those who may read it
			return
		}
		b.Start("query").Attr("xmlns", ns.DiscoInfo).Attr("node", NS+"#traffic")
		for _, space := range r.traffic() {
			b.Start("feature").Attr("var", space).End()
		}
		b.End()
	default:
		c.Error(p, stanza.New(stanza.ItemNotFound))
		return
	}
	c.Reply(p, b.B)
}

// adminGet returns a role or affiliation list (XEP-0045 §8.5, §9.2, §9.5, §9.8, §10.5,
// §10.8).
func (r *room) adminGet(c module.Context, p *module.Packet, q xmlstream.Element) {
	it, ok := q.Child(string(q.NS()), "item")
	if !ok {
		c.Error(p, badForm(stanza.BadRequest, "an item is required"))
		return
	}
	me := r.byReal[p.From.String()]
	aa := r.affOf(p.From.Bare())
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", string(q.NS()))
	if v, ok := it.AppendAttr(nil, "role"); ok {
		want, ok := parseRole(string(v))
		if !ok || want == roleNone {
			c.Error(p, badForm(stanza.BadRequest, "unknown role"))
			return
		}
		if me == nil || me.role != roleModerator {
			c.Error(p, errBy(r.jid, stanza.Forbidden, "moderators only"))
			return
		}
		for _, o := range r.occ {
			if o.role != want {
				continue
			}
			b.Start("item").Attr("nick", o.nick).Attr("role", o.role.String()).
				Attr("affiliation", r.affOf(o.bare).String())
			if len(o.sess) > 0 {
				b.Attr("jid", o.sess[0].String())
			}
			b.End()
		}
		c.Reply(p, b.End().B)
		return
	}
	v, _ := it.AppendAttr(nil, "affiliation")
	want, ok := parseAffiliation(string(v))
	if !ok || want == affNone {
		c.Error(p, badForm(stanza.BadRequest, "unknown affiliation"))
		return
	}
	allowed := aa >= affAdmin
	switch want {
	case affOwner, affAdmin:
		allowed = aa == affOwner || (aa == affAdmin && r.cfg.WhoisAnyone)
	case affMember:
		// §9.5: in a non-anonymous members-only room, members may see the member list.
		allowed = allowed || (aa == affMember && r.cfg.WhoisAnyone && r.cfg.MembersOnly)
	}
	if !allowed {
		c.Error(p, errBy(r.jid, stanza.Forbidden, "not allowed to see this list"))
		return
	}
	keys := make([]string, 0, len(r.affs))
	for k, a := range r.affs {
		if a.aff == want {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.Start("item").Attr("affiliation", want.String()).Attr("jid", k)
		if n := r.affs[k].nick; n != "" && want != affOutcast {
			b.Attr("nick", n)
		}
		b.End()
	}
	c.Reply(p, b.End().B)
}

// change is one validated item of an #admin set.
type change struct {
	target *occupant // role changes
	nr     role
	bare   string // affiliation changes
	na     affiliation
	nick   string // reserved nickname (member list), when given
	hasNk  bool
	reason string
	isRole bool
}

// adminSet applies a list of role or affiliation changes (XEP-0045 §8, §9, §10.3–§10.8):
// every item is checked first, and nothing is applied unless all may be.
func (r *room) adminSet(c module.Context, p *module.Packet, q xmlstream.Element) {
	me := r.byReal[p.From.String()]
	aa := r.affOf(p.From.Bare())
	ar := roleNone
	if me != nil {
		ar = me.role
	}
	self := p.From.Bare().String()
	owners := r.owners()
	var changes []change
	for it := q.Children(); ; {
		item, ok := it.Next()
		if !ok {
			break
		}
		if string(item.NS()) != string(q.NS()) || string(item.Name()) != "item" {
			continue
		}
		if len(changes) >= maxListItems {
			c.Error(p, badForm(stanza.NotAcceptable, "too many items"))
			return
		}
		ch := change{}
		if rs, ok := item.Child(string(q.NS()), "reason"); ok {
			ch.reason = trimText(string(rs.AppendText(nil)), maxFieldBytes)
		}
		rv, hasRole := item.AppendAttr(nil, "role")
		av, hasAff := item.AppendAttr(nil, "affiliation")
		switch {
		case hasRole && hasAff:
			c.Error(p, badForm(stanza.BadRequest, "an item changes a role or an affiliation, not both")) // §17.4
			return
		case hasRole:
			nr, ok := parseRole(string(rv))
			nick, hasNick := item.AppendAttr(nil, "nick")
			if !ok || !hasNick {
				c.Error(p, badForm(stanza.BadRequest, "a role item needs a known role and a nick"))
				return
			}
			t := r.byNick[string(nick)]
			if t == nil {
				c.Error(p, errBy(r.jid, stanza.ItemNotFound, "no such occupant"))
				return
			}
			if cond := checkRole(aa, ar, r.affOf(t.bare), t.role, nr); cond != "" {
				c.Error(p, errBy(r.jid, cond, ""))
				return
			}
			ch.isRole, ch.target, ch.nr = true, t, nr
		case hasAff:
			na, ok := parseAffiliation(string(av))
			if !ok {
				c.Error(p, badForm(stanza.BadRequest, "unknown affiliation"))
				return
			}
			j, e := itemJID(item, "jid")
			if e != nil {
				c.Error(p, e)
				return
			}
			bare := j.Bare().String()
			stored := affNone
			if a, ok := r.affs[bare]; ok {
				stored = a.aff
			}
			// A service administrator (Config.Admins) ranks as an owner here as
			// everywhere else in the room: a room admin cannot ban one.
			ta := max(stored, r.affOf(j))
			if cond := checkAffiliation(aa, ta, na, bare == self, owners); cond != "" {
				c.Error(p, errBy(r.jid, cond, ""))
				return
			}
			if stored == affOwner && na != affOwner {
				owners--
			} else if na == affOwner && stored != affOwner {
				owners++
			}
			ch.bare, ch.na = bare, na
			if n, ok := item.AppendAttr(nil, "nick"); ok {
				nick := string(n)
				// The nickname is the target's reservation (§7.12): one an admin may not
				// change for an owner or another admin, valid, and nobody else's.
				switch {
				case ta >= affAdmin && aa != affOwner && bare != self:
					c.Error(p, errBy(r.jid, stanza.NotAllowed, "only an owner changes an admin's or owner's nickname"))
					return
				case nick != "" && checkNick(nick) != "":
					c.Error(p, errBy(r.jid, checkNick(nick), "invalid nickname"))
					return
				case nick != "" && r.reservedBy(nick) != "" && r.reservedBy(nick) != bare:
					c.Error(p, errBy(r.jid, stanza.ConflictCond, "this nickname is reserved by someone else"))
					return
				}
				ch.nick, ch.hasNk = nick, true
			}
		default:
			c.Error(p, badForm(stanza.BadRequest, "an item needs a role or an affiliation"))
			return
		}
		changes = append(changes, ch)
	}
	if len(changes) == 0 {
		c.Error(p, badForm(stanza.BadRequest, "no items"))
		return
	}
	// Affiliations are stored first: a failed write changes nothing.
	newAffs := 0
	for _, ch := range changes {
		if !ch.isRole && ch.na != affNone {
			if _, ok := r.affs[ch.bare]; !ok {
				newAffs++
			}
		}
	}
	if len(r.affs)+newAffs > maxAffiliations {
		c.Error(p, errBy(r.jid, stanza.ResourceConstraintCond, "too many affiliations"))
		return
	}
	for _, ch := range changes {
		if ch.isRole {
			continue
		}
		rec := affRecord{aff: ch.na, nick: r.affs[ch.bare].nick}
		if ch.hasNk {
			rec.nick = trimText(ch.nick, maxNickBytes)
		}
		if ch.na == affOutcast {
			rec.nick = "" // §9.1: a ban drops the reserved nickname
		}
		if err := r.saveAff(ch.bare, rec); err != nil {
			if module.LogStoreError(err) {
				r.svc.m.log.Error().Err(err).Str("room", r.key).Msg("muc: store affiliation")
			}
			c.Error(p, module.StoreError(err))
			return
		}
	}
	actor := ""
	if me != nil {
		actor = me.nick
	}
	replied := false
	reply := func() {
		if !replied {
			replied = true
			c.Reply(p, nil)
		}
	}
	snd := newSender(c)
	for _, ch := range changes {
		if ch.isRole {
			r.applyRole(c, &snd, ch, actor, reply)
		} else {
			r.applyAffiliation(c, &snd, ch, actor, reply)
		}
	}
	reply()
	r.empty(c)
}

// applyRole changes an occupant's role; role none is a kick (§8.2, status 307).
func (r *room) applyRole(c module.Context, snd *sender, ch change, actor string, reply func()) {
	t := ch.target
	if r.byNick[t.nick] != t || t.role == ch.nr {
		return // kicked by an earlier item, or nothing to do
	}
	if ch.nr == roleNone {
		r.expel(c, snd, t, &presOpt{codes: []int{codeKicked}, actor: actor, reason: ch.reason}, reply)
		return
	}
	was := t.role
	t.role = ch.nr
	reply() // §8.3, §8.4, §9.6: the result, then the new presence
	r.broadcast(snd, t, &presOpt{actor: actor, reason: ch.reason, was: was}, jid.JID{})
}

// applyAffiliation records an affiliation change (already stored) and tells the room:
// a ban removes the user's occupants (301), losing membership of a members-only room too
// (321), and other changes update their presence with the role the new affiliation gives.
func (r *room) applyAffiliation(c module.Context, snd *sender, ch change, actor string, reply func()) {
	old := affNone
	rec := affRecord{aff: ch.na}
	if a, ok := r.affs[ch.bare]; ok {
		old, rec.nick = a.aff, a.nick
	}
	if ch.hasNk {
		rec.nick = trimText(ch.nick, maxNickBytes)
	}
	if ch.na == affOutcast {
		rec.nick = ""
	}
	if ch.na == affNone && rec.nick == "" {
		delete(r.affs, ch.bare)
	} else {
		r.affs[ch.bare] = rec
	}
	if old == ch.na {
		return
	}
	for _, o := range append([]*occupant(nil), r.occ...) {
		if o.bare.String() != ch.bare && !(ch.na == affOutcast && o.bare.Domain() == ch.bare) {
			continue
		}
		if o.bare.String() != ch.bare && r.affOf(o.bare) != affOutcast {
			// A domain's ban leaves those with an affiliation of their own (§9.1: an
			// owner or admin is not banned by it, and may come back anyway).
			continue
		}
		switch {
		case ch.na == affOutcast:
			r.expel(c, snd, o, &presOpt{codes: []int{codeBanned}, actor: actor, reason: ch.reason}, reply)
		case r.cfg.MembersOnly && ch.na < affMember:
			r.expel(c, snd, o, &presOpt{codes: []int{codeAffiliation}, actor: actor, reason: ch.reason}, reply)
		default:
			was := o.role
			o.role = roleAfter(old, ch.na, o.role, r.cfg.Moderated)
			reply() // §9.3: the result, then the new presence
			r.broadcast(snd, o, &presOpt{actor: actor, reason: ch.reason, was: was}, jid.JID{})
		}
	}
	// §9.5: a user added to the member list of a members-only room is invited.
	if r.cfg.MembersOnly && ch.na == affMember && old == affNone {
		if to, err := jid.Parse(ch.bare); err == nil && to.Local() != "" {
			c.Route(r.invitation(to, "", ch.reason, false, xmlstream.Element{}))
		}
	}
}

// roleAfter is the role of an occupant whose affiliation changes from old to na
// (XEP-0045 §5.1.3 note, §9.3, §10.6): gaining admin or owner makes a moderator, losing it
// falls back to the default role, and membership gives voice in a moderated room.
func roleAfter(old, na affiliation, cur role, moderated bool) role {
	switch {
	case na >= affAdmin:
		return roleModerator
	case old >= affAdmin:
		return defaultRole(na, moderated)
	case na == affMember && cur == roleVisitor:
		return roleParticipant
	}
	return cur
}

// ownerGet returns the configuration form (§10.1.3, §10.2).
func (r *room) ownerGet(c module.Context, p *module.Packet) {
	if !r.isOwner(p.From) {
		c.Error(p, errBy(r.jid, stanza.Forbidden, "owners only"))
		return
	}
	var b xmlstream.Builder
	r.appendConfigForm(&b)
	c.Reply(p, b.B)
}

// ownerSet handles a configuration submission or cancellation (§10.1.2, §10.1.3, §10.2)
// and room destruction (§10.9).
func (r *room) ownerSet(c module.Context, p *module.Packet, q xmlstream.Element) {
	if !r.isOwner(p.From) {
		c.Error(p, errBy(r.jid, stanza.Forbidden, "owners only"))
		return
	}
	if d, ok := q.Child(NSOwner, "destroy"); ok {
		r.destroy(c, p, d)
		return
	}
	x, ok := q.Child(ns.DataForms, "x")
	if !ok {
		c.Error(p, badForm(stanza.BadRequest, "a data form or destroy is required"))
		return
	}
	if t, _ := x.AppendAttr(nil, "type"); string(t) == "cancel" {
		if r.locked { // §10.1.3: cancelling the initial configuration destroys the room
			r.destroy(c, p, xmlstream.Element{})
			return
		}
		c.Reply(p, nil)
		return
	}
	f, e := parseConfigForm(x, r.cfg, formLimits{maxUsers: r.svc.conf().MaxOccupants, maxHistory: r.svc.conf().MaxHistory})
	if e != nil {
		c.Error(p, e)
		return
	}
	old, wasLocked := r.cfg, r.locked
	var saved map[string]affRecord // the affiliations before the lists, to undo a failed write
	// Each occupant's affiliation before the lists: an occupant they give a new one gets
	// the role it brings, and the room hears of it (§10.2).
	oldAffs := make(map[*occupant]affiliation, len(r.occ))
	for _, o := range r.occ {
		oldAffs[o] = r.affOf(o.bare)
	}
	if f.hasOwners || f.hasAdmins {
		saved = make(map[string]affRecord, len(r.affs))
		for k, a := range r.affs {
			saved[k] = a
		}
	}
	r.cfg = f.cfg
	r.locked = false
	if f.hasOwners {
		r.setList(affOwner, f.owners)
	}
	if f.hasAdmins {
		r.setList(affAdmin, f.admins)
	}
	if saved != nil && r.owners() == 0 {
		// §10: a room always has an owner, whatever the two lists say together.
		r.cfg, r.locked, r.affs = old, wasLocked, saved
		c.Error(p, badForm(stanza.ConflictCond, "a room needs an owner"))
		return
	}
	if err := r.persist(old.Persistent); err != nil {
		r.cfg, r.locked = old, wasLocked
		if saved != nil {
			r.affs = saved
		}
		if module.LogStoreError(err) {
			r.svc.m.log.Error().Err(err).Str("room", r.key).Msg("muc: store configuration")
		}
		c.Error(p, module.StoreError(err))
		return
	}
	c.Reply(p, nil)
	if r.cfg.History != old.History {
		r.hist.resize(r.cfg.History)
	}
	snd := newSender(c)
	// Occupants whose affiliation the lists changed, then visitors of a room no longer
	// moderated, get new presence; non-members leave a room now members-only (322).
	for _, o := range append([]*occupant(nil), r.occ...) {
		was := oldAffs[o]
		now := r.affOf(o.bare)
		if r.cfg.MembersOnly && now < affMember {
			code := codeAffiliation // dropped from the owner or admin list (§9.4)
			if !old.MembersOnly {
				code = codeMembersOnly // §10.2: the room became members-only
			}
			r.expel(c, &snd, o, &presOpt{codes: []int{code}}, nil)
			continue
		}
		nr := o.role
		if was != now {
			nr = roleAfter(was, now, o.role, r.cfg.Moderated)
		}
		if !r.cfg.Moderated && nr == roleVisitor {
			nr = roleParticipant
		}
		if nr != o.role || was != now {
			o.role = nr
			r.broadcast(&snd, o, &presOpt{}, jid.JID{})
		}
	}
	if !wasLocked {
		r.notifyConfig(&snd, old)
	}
	r.updateDir()
	r.empty(c)
}

// setList makes list the complete set of users with affiliation a (the owner and admin
// fields of the configuration form are full lists, §10.1.3); users dropped from it lose
// the affiliation.
func (r *room) setList(a affiliation, list []string) {
	in := map[string]bool{}
	for _, k := range list {
		in[k] = true
	}
	for k, rec := range r.affs {
		if rec.aff == a && !in[k] {
			delete(r.affs, k)
		}
	}
	for k := range in {
		if len(r.affs) >= maxAffiliations {
			break
		}
		rec := r.affs[k]
		rec.aff = a
		r.affs[k] = rec
	}
}

// notifyConfig tells the occupants that the configuration changed (§10.2.1): 170–173 for
// changes of logging and anonymity, 104 for any other.
func (r *room) notifyConfig(snd *sender, old roomConfig) {
	var codes []int
	if r.cfg.Logging != old.Logging {
		codes = append(codes, map[bool]int{true: codeLogging, false: codeNoLogging}[r.cfg.Logging])
	}
	if r.cfg.WhoisAnyone != old.WhoisAnyone {
		codes = append(codes, map[bool]int{true: codeNowNonAnon, false: codeNowSemiAnon}[r.cfg.WhoisAnyone])
	}
	if len(codes) == 0 && r.cfg != old {
		codes = append(codes, codeConfigChange)
	}
	if len(codes) == 0 {
		return
	}
	var b xmlstream.Builder
	b.Start("message").Attr("type", "groupchat").Attr("from", r.key)
	b.Start("x").Attr("xmlns", NSUser)
	for _, code := range codes {
		b.Start("status").Attr("code", itoa(code)).End()
	}
	b.End().End()
	for _, o := range r.occ {
		for _, s := range o.sess {
			snd.to(s, b.B)
		}
	}
}

// destroy removes everyone and the room itself (§10.9): one unavailable presence with
// <destroy/> per occupant session, then the owner's result.
func (r *room) destroy(c module.Context, p *module.Packet, d xmlstream.Element) {
	di := &destroyInfo{}
	if v, ok := d.AppendAttr(nil, "jid"); ok {
		if j, err := jid.ParseBytes(v); err == nil {
			di.venue = j.String()
		}
	}
	if rs, ok := d.Child(NSOwner, "reason"); ok {
		di.reason = trimText(string(rs.AppendText(nil)), maxFieldBytes)
	}
	if pw, ok := d.Child(NSOwner, "password"); ok {
		di.password = trimText(string(pw.AppendText(nil)), maxFieldBytes)
	}
	if err := r.forget(); err != nil {
		if module.LogStoreError(err) {
			r.svc.m.log.Error().Err(err).Str("room", r.key).Msg("muc: delete room")
		}
		c.Error(p, module.StoreError(err))
		return
	}
	snd := newSender(c)
	opt := &presOpt{unavailable: true, destroy: di}
	for _, o := range r.occ {
		t := r.appendPresence(nil, o, opt, false, false)
		for _, s := range o.sess {
			snd.to(s, t)
		}
	}
	r.occ = nil
	r.byNick, r.byReal = map[string]*occupant{}, map[string]*occupant{}
	r.drop(true)
	c.Reply(p, nil)
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

func hasChild(e xmlstream.Element, space, local string) bool {
	_, ok := e.Child(space, local)
	return ok
}
