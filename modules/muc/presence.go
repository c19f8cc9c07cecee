package muc

import (
	"bytes"
	"crypto/subtle"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Status codes (XEP-0045 §15.6).
const (
	codeNonAnonymous = 100
	codeConfigChange = 104
	codeSelf         = 110
	codeLogging      = 170
	codeNoLogging    = 171
	codeNowNonAnon   = 172
	codeNowSemiAnon  = 173
	codeCreated      = 201
	codeBanned       = 301
	codeNewNick      = 303
	codeKicked       = 307
	codeAffiliation  = 321
	codeMembersOnly  = 322
	codeShutdown     = 332
	codeError        = 333
)

// presOpt says what a room presence announces about an occupant.
type presOpt struct {
	unavailable bool
	nickChange  bool  // the unavailable half of a nick change: keeps the role, adds nick
	codes       []int // status codes for everyone
	selfCodes   []int // status codes for the occupant's own sessions (110 is implied)
	newNick     string
	actor       string // nick of the moderator or admin who acted
	reason      string
	destroy     *destroyInfo
	selfID      string  // 'id' of the self-presence: the client's, reflected (§7.2.3)
	real        jid.JID // the real JID shown; zero: the occupant's first session
	kids        []byte  // children instead of the occupant's stored ones (exit status)
	noKids      bool
	was         role // for a role change, the role before it (roleNone otherwise)
}

// destroyInfo is the <destroy/> of a room destruction (XEP-0045 §10.9).
type destroyInfo struct {
	venue, reason, password string
}

// reflectable splits a client's presence into what the room reflects: the start tag
// ("<presence attrs", without from, to, id and type) and the children other than the MUC
// elements and occupant ids (XEP-0045 §17.2: a client's #user data is never reflected;
// XEP-0421 §4: ids are the room's). Both are fresh copies, bounded by maxPresenceBytes.
func reflectable(e xmlstream.Element) (tag, kids []byte) {
	t0, _ := split(e)
	tag = xmlstream.SetAttrs(nil, t0,
		xmlstream.AttrSet{Name: "from", Remove: true}, xmlstream.AttrSet{Name: "to", Remove: true},
		xmlstream.AttrSet{Name: "id", Remove: true}, xmlstream.AttrSet{Name: "type", Remove: true})
	tag = openTag(tag)
	if len(tag) > 1024 {
		tag = []byte("<presence")
	}
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		n, s := string(ch.Name()), string(ch.NS())
		if (n == "x" && (s == NS || s == NSUser)) || (n == "occupant-id" && s == NSOccupant) {
			continue
		}
		if len(kids)+len(ch.Raw()) > maxPresenceBytes {
			continue
		}
		kids = append(kids, ch.Raw()...)
	}
	return tag, kids
}

// checkNick applies XEP-0045 §17.1: no empty or invisible nicknames.
func checkNick(nick string) stanza.Condition {
	if len(nick) > maxNickBytes {
		return stanza.NotAcceptable
	}
	visible := false
	for _, r := range nick {
		if !unicode.IsSpace(r) && unicode.IsGraphic(r) {
			visible = true
			break
		}
	}
	if !visible || !utf8.ValidString(nick) {
		return stanza.JIDMalformed
	}
	return ""
}

// appendPresence writes o's presence as the room sends it, without 'to'.
func (r *room) appendPresence(dst []byte, o *occupant, opt *presOpt, withJID, self bool) []byte {
	tag := o.tag
	if len(tag) == 0 {
		tag = []byte("<presence")
	}
	dst = append(dst, tag...)
	dst = append(dst, " from='"...)
	dst = xmlstream.AppendEscapedString(dst, o.ojid.String())
	dst = append(dst, '\'')
	if opt.unavailable {
		dst = append(dst, " type='unavailable'"...)
	}
	if self && opt.selfID != "" {
		dst = append(dst, " id='"...)
		dst = xmlstream.AppendEscapedString(dst, opt.selfID)
		dst = append(dst, '\'')
	}
	dst = append(dst, '>')
	switch {
	case opt.kids != nil:
		dst = append(dst, opt.kids...)
	case !opt.unavailable && !opt.noKids:
		dst = append(dst, o.kids...)
	}
	aff, rl := r.affOf(o.bare), o.role
	if opt.unavailable && !opt.nickChange {
		rl = roleNone
	}
	if opt.destroy != nil {
		aff = affNone
	}
	dst = append(dst, "<x xmlns='"+NSUser+"'><item affiliation='"...)
	dst = append(dst, aff.String()...)
	dst = append(dst, "' role='"...)
	dst = append(dst, rl.String()...)
	dst = append(dst, '\'')
	if withJID || self {
		real := opt.real
		if real.IsZero() && len(o.sess) > 0 {
			real = o.sess[0]
		}
		if !real.IsZero() {
			dst = append(dst, " jid='"...)
			dst = xmlstream.AppendEscapedString(dst, real.String())
			dst = append(dst, '\'')
		}
	}
	if opt.newNick != "" {
		dst = append(dst, " nick='"...)
		dst = xmlstream.AppendEscapedString(dst, opt.newNick)
		dst = append(dst, '\'')
	}
	if opt.actor == "" && opt.reason == "" {
		dst = append(dst, "/>"...)
	} else {
		dst = append(dst, '>')
		if opt.actor != "" {
			dst = append(dst, "<actor nick='"...)
			dst = xmlstream.AppendEscapedString(dst, opt.actor)
			dst = append(dst, "'/>"...)
		}
		if opt.reason != "" {
			dst = append(dst, "<reason>"...)
			dst = xmlstream.AppendEscapedText(dst, s2b(opt.reason))
			dst = append(dst, "</reason>"...)
		}
		dst = append(dst, "</item>"...)
	}
	if d := opt.destroy; d != nil {
		dst = appendDestroy(dst, d)
	}
	codes := opt.codes
	if self {
		codes = append(append(append([]int(nil), opt.codes...), opt.selfCodes...), codeSelf)
		slices.Sort(codes)
		codes = slices.Compact(codes)
	}
	for _, c := range codes {
		dst = append(dst, "<status code='"...)
		dst = strconv.AppendInt(dst, int64(c), 10)
		dst = append(dst, "'/>"...)
	}
	dst = append(dst, "</x>"...)
	dst = appendOccupantID(dst, o.id)
	return append(dst, "</presence>"...)
}

func appendDestroy(dst []byte, d *destroyInfo) []byte {
	dst = append(dst, "<destroy"...)
	if d.venue != "" {
		dst = append(dst, " jid='"...)
		dst = xmlstream.AppendEscapedString(dst, d.venue)
		dst = append(dst, '\'')
	}
	if d.reason == "" && d.password == "" {
		return append(dst, "/>"...)
	}
	dst = append(dst, '>')
	if d.reason != "" {
		dst = append(dst, "<reason>"...)
		dst = xmlstream.AppendEscapedText(dst, s2b(d.reason))
		dst = append(dst, "</reason>"...)
	}
	if d.password != "" {
		dst = append(dst, "<password>"...)
		dst = xmlstream.AppendEscapedText(dst, s2b(d.password))
		dst = append(dst, "</password>"...)
	}
	return append(dst, "</destroy>"...)
}

// broadcast sends o's presence to every session in the room except skip: the variant with
// the real JID to those who may see it, the self variant (status 110) to o's own sessions.
// The three variants are built once; each recipient costs one start-tag rewrite.
//
// The others hear nothing from an occupant whose role the room does not broadcast
// (muc#roomconfig_presencebroadcast), except, when a role change makes it quiet, one
// unavailable presence that takes it out of their list.
func (r *room) broadcast(snd *sender, o *occupant, opt *presOpt, skip jid.JID) {
	oopt := opt // what the others get; nil: nothing
	if !r.cfg.broadcasts(o.role) {
		oopt = nil
		if opt.was != roleNone && r.cfg.broadcasts(opt.was) && !opt.unavailable {
			gone := *opt
			gone.unavailable, gone.kids, gone.noKids = true, nil, true
			oopt = &gone
		}
	}
	var plain, full, self []byte
	for _, x := range r.occ {
		if x != o && oopt == nil {
			continue
		}
		for _, s := range x.sess {
			if s.Equal(skip) {
				continue
			}
			var t []byte
			use := oopt
			switch {
			case x == o:
				use = opt
				if self == nil {
					self = r.appendPresence(nil, o, opt, true, true)
				}
				t = self
			case r.sees(x):
				if full == nil {
					full = r.appendPresence(nil, o, oopt, true, false)
				}
				t = full
			default:
				if plain == nil {
					plain = r.appendPresence(nil, o, oopt, false, false)
				}
				t = plain
			}
			typ, id := "", ""
			if use.unavailable {
				typ = "unavailable"
			}
			if x == o {
				id = opt.selfID
			}
			snd.packet(s, t, module.KindPresence, typ, id, o.ojid)
		}
	}
}

// sendSelf sends o's self-presence to its sessions in to (all when nil).
func (r *room) sendSelf(snd *sender, o *occupant, opt *presOpt, to []jid.JID) {
	t := r.appendPresence(nil, o, opt, true, true)
	if to == nil {
		to = o.sess
	}
	for _, s := range to {
		snd.to(s, t)
	}
}

// presence handles presence to a room that exists (XEP-0045 §7.2, §7.6, §7.7, §7.14).
func (r *room) presence(c module.Context, p *module.Packet) {
	from := p.From
	o := r.byReal[from.String()]
	switch p.Type {
	case "":
		nick := p.To.Resource()
		if nick == "" {
			c.Error(p, errBy(r.jid, stanza.JIDMalformed, "a nickname is required"))
			return
		}
		e := p.Elem()
		x, hasX := e.Child(NS, "x")
		switch {
		case o == nil && !hasX:
			notInRoom(c, p)
		case o == nil:
			r.join(c, p, e, x, false)
		case o.nick != nick:
			r.changeNick(c, p, e, o)
		case hasX:
			r.join(c, p, e, x, false) // §7.2.1: a join from a joined client resynchronizes it
		default:
			r.update(c, p, e, o)
		}
	case "unavailable":
		if o != nil { // §17.3: unavailable from a non-occupant is ignored
			r.leave(c, p, o)
		}
	case "error":
		if o != nil && kickable(p) {
			r.ghost(c, o, from)
		}
	}
}

// joinError refuses a join (XEP-0045 §7.2): the error presence carries the request's
// <x xmlns='http://jabber.org/protocol/muc'/>, as the XEP's examples do and clients expect
// (slixmpp's plugin, for one, reports a refused join only when it is there).
func joinError(c module.Context, p *module.Packet, e *stanza.Error) {
	if p.From.IsZero() {
		return
	}
	id := p.ID
	if id == "" {
		if v, ok := p.Elem().Attr("id"); ok {
			id = string(xmlstream.AppendUnescaped(nil, v))
		}
	}
	var b xmlstream.Builder
	b.Start("presence").Attr("type", "error")
	if id != "" {
		b.Attr("id", id)
	}
	b.Attr("from", p.To.String()).Attr("to", p.From.String())
	b.Start("x").Attr("xmlns", NS).End()
	b.Raw(e.AppendXML(nil))
	b.End()
	c.Route(b.B)
}

// notInRoom answers presence without the MUC element from a non-occupant (XEP-0045
// §7.2.23, groupchat 1.0 or a client that lost sync) with a kick: 110, 307 and 333.
func notInRoom(c module.Context, p *module.Packet) {
	var b xmlstream.Builder
	b.Start("presence").Attr("from", p.To.String()).Attr("to", p.From.String()).Attr("type", "unavailable")
	b.Start("x").Attr("xmlns", NSUser)
	b.Start("item").Attr("affiliation", "none").Attr("role", "none")
	b.Start("reason").Text("You are not in the room.").End().End()
	for _, code := range []string{"110", "307", "333"} {
		b.Start("status").Attr("code", code).End()
	}
	b.End().End()
	c.Route(b.B)
}

// create handles presence to a room that does not exist: with the MUC element and a
// nickname, it creates the room, locked until its owner configures it (XEP-0045 §10.1).
func (s *service) create(c module.Context, p *module.Packet) {
	if p.Type != "" {
		return
	}
	bare := p.To.Bare()
	nick := p.To.Resource()
	if nick == "" {
		c.Error(p, errBy(bare, stanza.JIDMalformed, "a nickname is required"))
		return
	}
	e := p.Elem()
	x, hasX := e.Child(NS, "x")
	if !hasX {
		notInRoom(c, p)
		return
	}
	if !s.mayCreate(c, p.From) {
		joinError(c, p, errBy(bare, stanza.NotAllowed, "room creation is restricted"))
		return
	}
	if cond := checkNick(nick); cond != "" {
		joinError(c, p, errBy(bare, cond, "invalid nickname"))
		return
	}
	key := bare.String()
	creator := p.From.Bare().String()
	conf := s.conf()
	perUser := conf.MaxRoomsPerUser
	if conf.admins[creator] {
		perUser = 0
	}
	full, mine := s.dir.reserve(key, conf.MaxRooms, creator, perUser)
	if full || mine {
		text := "this service has too many rooms"
		if mine {
			text = "you have created " + strconv.Itoa(perUser) + " rooms here that still exist; destroy one first"
		}
		e := errBy(bare, stanza.ResourceConstraintCond, text)
		e.Type = stanza.Wait
		joinError(c, p, e)
		return
	}
	r := newRoom(s, bare)
	r.creator = creator
	r.forgetArchive() // of an earlier room of that name that was not destroyed (a restart)
	r.locked = true
	r.affs[p.From.Bare().String()] = affRecord{aff: affOwner}
	s.rooms.Store(key, r)
	r.join(c, p, e, x, true)
	if len(r.occ) == 0 {
		r.drop(true)
	}
}

// admit applies the entry rules of XEP-0045 §7.2.6–§7.2.11 to a new session; it returns
// the error to send, or nil.
func (r *room) admit(c module.Context, p *module.Packet, x xmlstream.Element, aff affiliation) *stanza.Error {
	nick := p.To.Resource()
	bare := p.From.Bare()
	switch {
	case r.locked && aff != affOwner:
		return errBy(r.jid, stanza.ItemNotFound, "the room is locked")
	case aff == affOutcast:
		return errBy(r.jid, stanza.Forbidden, "you are banned from this room")
	case r.cfg.MembersOnly && aff < affMember:
		return errBy(r.jid, stanza.RegistrationRequired, "this room is members-only")
	}
	if r.cfg.PasswordProtected {
		var pw []byte
		if pe, ok := x.Child(NS, "password"); ok {
			pw = pe.AppendText(nil)
		}
		if subtle.ConstantTimeCompare(pw, []byte(r.cfg.Password)) != 1 {
			return errBy(r.jid, stanza.NotAuthorizedCond, "a password is required")
		}
	}
	if cond := checkNick(nick); cond != "" {
		return errBy(r.jid, cond, "invalid nickname")
	}
	if o := r.byNick[nick]; o != nil {
		if !o.bare.Equal(bare) {
			return errBy(r.jid, stanza.ConflictCond, "this nickname is in use")
		}
		// §7.2.10: another session of the same user, same nickname; as many as an account
		// may have here. A remote server can claim any number of resources, and each
		// would stay until it leaves.
		if len(o.sess) >= module.MaxResources {
			return errBy(r.jid, stanza.NotAllowed, "too many of your sessions in this room")
		}
		return nil
	}
	if by := r.reservedBy(nick); by != "" && by != bare.String() {
		return errBy(r.jid, stanza.ConflictCond, "this nickname is reserved")
	}
	n := len(r.occ)
	lim := r.svc.conf()
	if (r.cfg.MaxUsers > 0 && n >= r.cfg.MaxUsers && aff < affAdmin) || n >= lim.MaxOccupants {
		e := errBy(r.jid, stanza.ServiceUnavailable, "the room is full")
		e.Type = stanza.Wait
		return e
	}
	if n >= lim.FloodOccupants && aff < affAdmin && !r.takeJoinToken(c) {
		e := errBy(r.jid, stanza.ResourceConstraintCond, "too many joins; try again shortly")
		e.Type = stanza.Wait
		return e
	}
	return nil
}

// takeJoinToken takes one token from the room's join bucket (rate JoinRate per second,
// burst twice that), reporting false when it is empty.
func (r *room) takeJoinToken(c module.Context) bool {
	rate := r.svc.conf().JoinRate
	return r.joins.take(c.Now(), rate, 2*rate)
}

// join enters p's sender into the room, or resynchronizes a session already in it, and
// sends what XEP-0045 §7.1 orders: every other occupant's presence, the occupant's
// presence to everyone (self-presence last for the joiner), history, then the subject.
func (r *room) join(c module.Context, p *module.Packet, e, x xmlstream.Element, created bool) {
	from := p.From
	bare := from.Bare()
	nick := p.To.Resource()
	aff := r.affOf(bare)
	o := r.byReal[from.String()]
	isNew := false
	if o == nil {
		if err := r.admit(c, p, x, aff); err != nil {
			joinError(c, p, err)
			return
		}
		if r.byNick[nick] == nil && r.needsCaptcha(p, aff) {
			r.challenge(c, p)
			return
		}
		if o = r.byNick[nick]; o != nil {
			o.sess = append(o.sess, from)
		} else {
			o = &occupant{nick: nick, ojid: p.To, bare: bare, sess: []jid.JID{from},
				role: defaultRole(aff, r.cfg.Moderated), id: r.occupantID(bare)}
			r.occ = append(r.occ, o)
			r.byNick[nick] = o
			isNew = true
		}
		r.byReal[from.String()] = o
	}
	tag, kids := reflectable(e)
	changed := isNew || !bytes.Equal(tag, o.tag) || !bytes.Equal(kids, o.kids)
	o.tag, o.kids = tag, kids
	snd := newSender(c)
	sees := r.sees(o)
	var buf []byte
	none := &presOpt{}
	for _, x := range r.occ {
		if x == o || !r.cfg.broadcasts(x.role) {
			continue
		}
		buf = r.appendPresence(buf[:0], x, none, sees, false)
		snd.packet(from, buf, module.KindPresence, "", "", x.ojid)
	}
	if changed {
		r.broadcast(&snd, o, &presOpt{real: from}, from)
		o.lastPres = c.Now()
	}
	self := &presOpt{real: from, selfID: p.ID}
	if r.cfg.WhoisAnyone {
		self.selfCodes = append(self.selfCodes, codeNonAnonymous)
	}
	if r.cfg.Logging {
		self.selfCodes = append(self.selfCodes, codeLogging)
	}
	if created {
		self.selfCodes = append(self.selfCodes, codeCreated)
	}
	r.sendSelf(&snd, o, self, []jid.JID{from})
	r.sendHistory(c, &snd, from, x)
	r.sendSubject(&snd, from)
	r.updateDir()
}

// update reflects an occupant's availability change (XEP-0045 §7.7). In a large room an
// occupant's changes are broadcast at most once per presence_interval; the latest is kept
// for newcomers and the next broadcast.
func (r *room) update(c module.Context, p *module.Packet, e xmlstream.Element, o *occupant) {
	o.tag, o.kids = reflectable(e)
	now := c.Now()
	if c := r.svc.conf(); len(r.occ) >= c.FloodOccupants && now.Sub(o.lastPres) < c.presEvery {
		return
	}
	o.lastPres = now
	snd := newSender(c)
	r.broadcast(&snd, o, &presOpt{real: p.From}, jid.JID{})
}

// changeNick handles presence to a new nickname from an occupant (XEP-0045 §7.6): the
// whole occupant, every session, takes the new nickname.
func (r *room) changeNick(c module.Context, p *module.Packet, e xmlstream.Element, o *occupant) {
	nick := p.To.Resource()
	if cond := checkNick(nick); cond != "" {
		c.Error(p, errBy(r.jid, cond, "invalid nickname"))
		return
	}
	if r.byNick[nick] != nil {
		c.Error(p, errBy(r.jid, stanza.ConflictCond, "this nickname is in use"))
		return
	}
	if by := r.reservedBy(nick); by != "" && by != o.bare.String() {
		c.Error(p, errBy(r.jid, stanza.ConflictCond, "this nickname is reserved"))
		return
	}
	snd := newSender(c)
	r.broadcast(&snd, o, &presOpt{unavailable: true, nickChange: true, codes: []int{codeNewNick},
		newNick: nick, real: p.From}, jid.JID{})
	delete(r.byNick, o.nick)
	o.nick, o.ojid = nick, p.To
	r.byNick[nick] = o
	o.tag, o.kids = reflectable(e)
	o.lastPres = c.Now()
	r.broadcast(&snd, o, &presOpt{real: p.From}, jid.JID{})
}

// leave handles unavailable presence from an occupant's session (XEP-0045 §7.14): the
// leaver gets its unavailable self-presence first, then the others.
func (r *room) leave(c module.Context, p *module.Packet, o *occupant) {
	from := p.From
	_, kids := reflectable(p.Elem())
	opt := &presOpt{unavailable: true, real: from, kids: kids}
	if kids == nil {
		opt.kids = []byte{}
	}
	r.removeSession(o, from)
	if r.locked && len(o.sess) == 0 && len(r.occ) == 1 {
		// §10.1.3: the owner left before configuring the room, which goes with it.
		opt.destroy = &destroyInfo{}
	}
	snd := newSender(c)
	r.sendSelf(&snd, o, opt, []jid.JID{from})
	if len(o.sess) > 0 {
		return // the occupant stays, with its other sessions
	}
	r.removeOccupant(o)
	r.broadcast(&snd, o, opt, jid.JID{})
	r.updateDir()
	r.empty(c)
}

func (r *room) removeSession(o *occupant, full jid.JID) {
	delete(r.byReal, full.String())
	o.sess = slices.DeleteFunc(o.sess, func(s jid.JID) bool { return s.Equal(full) })
}

func (r *room) removeOccupant(o *occupant) {
	for _, s := range o.sess {
		delete(r.byReal, s.String())
	}
	delete(r.byNick, o.nick)
	r.occ = slices.DeleteFunc(r.occ, func(x *occupant) bool { return x == o })
}

// expel removes o from the room for a reason that is not its own (kick 307, ban 301,
// affiliation 321, members-only 322, error 333): o's sessions learn it first; then is
// called by the caller (an IQ result, XEP-0045 §8.2), then everyone else.
func (r *room) expel(c module.Context, snd *sender, o *occupant, opt *presOpt, then func()) {
	opt.unavailable = true
	sess := o.sess
	r.removeOccupant(o)
	t := r.appendPresence(nil, o, opt, true, true)
	for _, s := range sess {
		snd.to(s, t)
	}
	if then != nil {
		then()
	}
	r.broadcast(snd, o, opt, jid.JID{})
	r.updateDir()
}

// shutdown removes every occupant because the service goes away: the server stops or the
// virtual host it belongs to is removed (XEP-0045 §15.6 status 332). Each occupant's
// sessions get its unavailable self-presence with 110 and 332, as a kicked occupant does
// (expel); nobody is told of the others' departure, since everyone leaves at once and a
// room of n occupants would cost n² stanzas. The room itself stays as it is: a temporary
// room is not destroyed (its archive is not deleted), a persistent one keeps its state.
func (r *room) shutdown(c module.Context) {
	if len(r.occ) == 0 {
		return
	}
	snd := newSender(c)
	opt := &presOpt{unavailable: true, codes: []int{codeShutdown}}
	for _, o := range r.occ {
		t := r.appendPresence(nil, o, opt, true, true)
		for _, s := range o.sess {
			snd.to(s, t)
		}
	}
	r.occ = nil
	r.byNick, r.byReal = map[string]*occupant{}, map[string]*occupant{}
	r.updateDir()
}

// kickable reports whether an error from an occupant means it is gone (XEP-0045 §18.1.2
// ghost users; this router answers a stanza for a session that ended with
// service-unavailable).
func kickable(p *module.Packet) bool {
	e, ok := p.Elem().Child("", "error")
	if !ok {
		return false
	}
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			return false
		}
		switch string(ch.Name()) {
		case "gone", "item-not-found", "recipient-unavailable", "redirect", "remote-server-not-found",
			"remote-server-timeout", "service-unavailable":
			return true
		}
	}
}

// ghost removes the session full after an error from it (XEP-0045 §12.1: status 333).
func (r *room) ghost(c module.Context, o *occupant, full jid.JID) {
	snd := newSender(c)
	if len(o.sess) > 1 {
		r.removeSession(o, full)
		return
	}
	r.expel(c, &snd, o, &presOpt{codes: []int{codeError}}, nil)
	r.empty(c)
}

// nickOf returns the nick of the occupant behind full, or "".
func (r *room) nickOf(full jid.JID) string {
	if o := r.byReal[full.String()]; o != nil {
		return o.nick
	}
	return ""
}

// trimText bounds s to n bytes on a rune boundary.
func trimText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimSpace(xmlstream.TruncateText(s, n))
}
