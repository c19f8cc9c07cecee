package muc

import (
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// BenchGroupchat builds a room of n occupants, one session each (user<i>@example.org/r),
// outside any router, and returns a function that hands the room one groupchat message
// from the first occupant through c: the room-level cost of a fan-out, without routing.
func BenchGroupchat(n int) func(c module.Context) {
	m := &Mod{secret: []byte("bench"), log: zerolog.Nop()}
	m.cfg.normalize()
	m.set.Store(module.NewHostSettings(&settings{Config: m.cfg, presEvery: DefaultPresenceInterval}, nil))
	s := &service{m: m, domain: "conference.example.org"}
	s.dir.rooms = map[string]*dirEntry{}
	bare, _ := jid.Parse("room@conference.example.org")
	r := newRoom(s, bare)
	for i := 0; i < n; i++ {
		nick := "user" + itoa(i)
		real, _ := jid.Parse(nick + "@example.org/r")
		oj, _ := jid.Parse("room@conference.example.org/" + nick)
		o := &occupant{nick: nick, ojid: oj, bare: real.Bare(), sess: []jid.JID{real}, role: roleParticipant,
			id: r.occupantID(real.Bare())}
		r.occ = append(r.occ, o)
		r.byNick[nick] = o
		r.byReal[real.String()] = o
	}
	r.occ[0].role = roleModerator // the sender: a moderator is not held to the message rate
	from := r.occ[0].sess[0]
	raw := []byte("<message xmlns='jabber:client' to='room@conference.example.org' type='groupchat' id='m1' from='user0@example.org/r'><body>Harpier cries: 'tis time, 'tis time.</body></message>")
	p := &module.Packet{Raw: raw, Kind: module.KindMessage, Type: "groupchat", From: from, To: bare}
	return func(c module.Context) { r.groupchat(c, p, r.occ[0]) }
}

// OnCaptcha tells f the id and text of every CAPTCHA a room makes.
func OnCaptcha(f func(id, text string)) { captchaIssued = f }
