package muc

import (
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// NSRegister is the FORM_TYPE of the room registration form (XEP-0045 §7.10, §15.5.2).
const NSRegister = NS + "#register"

// Fields of the registration form.
const fRoomNick = "muc#register_roomnick"

// register handles jabber:iq:register addressed to the room (XEP-0045 §7.10): a get
// returns the registration form, or <registered/> with the reserved nickname; a set
// submits the form, which reserves the nickname and puts the user on the member list (an
// admin or owner keeps the affiliation); <remove/> gives the nickname up and, for a
// member, the membership. Outcasts get forbidden; in a members-only room only those on
// the member list may register (registration-required); a nickname reserved by someone
// else, or held in the room by someone else, is a conflict.
func (r *room) register(c module.Context, p *module.Packet, q xmlstream.Element) {
	bare := p.From.Bare()
	key := bare.String()
	rec, has := r.affs[key]
	aff := r.affOf(bare)
	if aff == affOutcast {
		c.Error(p, errBy(r.jid, stanza.Forbidden, "you are banned from this room"))
		return
	}
	if p.Type == "get" {
		var b xmlstream.Builder
		b.Start("query").Attr("xmlns", ns.Register)
		if has && rec.nick != "" && rec.aff > affNone {
			b.Start("registered").End()
			b.Start("username").Text(rec.nick).End()
		} else {
			b.Start("instructions").Text("To register with this room, choose a nickname; nobody else may then use it here.").End()
			b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "form")
			b.Start("title").Text("Registration with " + r.key).End()
			appendField(&b, "hidden", "FORM_TYPE", "", NSRegister)
			b.End()
			appendField(&b, "text-single", fRoomNick, "Desired nickname")
			b.Start("required").End()
			b.End()
			b.End()
		}
		b.End()
		c.Reply(p, b.B)
		return
	}
	if _, ok := q.Child(ns.Register, "remove"); ok {
		if !has || rec.nick == "" {
			c.Error(p, errBy(r.jid, stanza.ItemNotFound, "you are not registered with this room"))
			return
		}
		na := rec.aff
		if na == affMember {
			na = affNone
		}
		r.setRegistration(c, p, change{bare: key, na: na, hasNk: true})
		return
	}
	x, ok := q.Child(ns.DataForms, "x")
	if !ok {
		c.Error(p, badForm(stanza.BadRequest, "a registration form is required"))
		return
	}
	if t, _ := x.AppendAttr(nil, "type"); string(t) == "cancel" {
		c.Reply(p, nil)
		return
	} else if string(t) != "submit" {
		c.Error(p, badForm(stanza.BadRequest, "the form must be submitted"))
		return
	}
	f := formValues(x)
	if ft, ok := f["FORM_TYPE"]; ok && ft != NSRegister {
		c.Error(p, badForm(stanza.BadRequest, "the form must be of FORM_TYPE "+NSRegister))
		return
	}
	if r.cfg.MembersOnly && aff < affMember {
		c.Error(p, errBy(r.jid, stanza.RegistrationRequired, "only members may register with this room"))
		return
	}
	if r.cfg.Moderated && aff < affMember {
		// Membership gives voice in a moderated room (§5.1.2), which only a moderator
		// grants (§8.3): a registration there would undo the moderation.
		c.Error(p, errBy(r.jid, stanza.NotAllowed, "in a moderated room, membership is granted by its admins"))
		return
	}
	nick := f[fRoomNick]
	if nick == "" {
		c.Error(p, errBy(r.jid, stanza.NotAcceptable, "a nickname is required"))
		return
	}
	if cond := checkNick(nick); cond != "" {
		c.Error(p, errBy(r.jid, cond, "invalid nickname"))
		return
	}
	if by := r.reservedBy(nick); by != "" && by != key {
		c.Error(p, errBy(r.jid, stanza.ConflictCond, "this nickname is reserved"))
		return
	}
	if o := r.byNick[nick]; o != nil && !o.bare.Equal(bare) {
		c.Error(p, errBy(r.jid, stanza.ConflictCond, "this nickname is in use"))
		return
	}
	if !has && len(r.affs) >= maxAffiliations {
		c.Error(p, errBy(r.jid, stanza.ResourceConstraintCond, "too many affiliations"))
		return
	}
	r.setRegistration(c, p, change{bare: key, na: max(aff, affMember), nick: nick, hasNk: true})
}

// setRegistration stores and applies the affiliation and nickname of a registration, and
// answers p.
func (r *room) setRegistration(c module.Context, p *module.Packet, ch change) {
	if err := r.saveAff(ch.bare, affRecord{aff: ch.na, nick: ch.nick}); err != nil {
		if module.LogStoreError(err) {
			r.svc.m.log.Error().Err(err).Str("room", r.key).Msg("muc: store registration")
		}
		c.Error(p, module.StoreError(err))
		return
	}
	replied := false
	reply := func() {
		if !replied {
			replied = true
			c.Reply(p, nil)
		}
	}
	snd := newSender(c)
	r.applyAffiliation(c, &snd, ch, "", reply)
	reply()
	r.empty(c)
}
