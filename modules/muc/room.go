package muc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// affiliation is a long-lived association of a bare JID with a room (XEP-0045 §5.2),
// ordered by privilege so that comparisons read like the XEP's hierarchy.
type affiliation uint8

// Affiliations, lowest first.
const (
	affOutcast affiliation = iota
	affNone
	affMember
	affAdmin
	affOwner
)

var affNames = [...]string{"outcast", "none", "member", "admin", "owner"}

func (a affiliation) String() string { return affNames[a] }

func parseAffiliation(s string) (affiliation, bool) {
	for i, n := range affNames {
		if n == s {
			return affiliation(i), true
		}
	}
	return 0, false
}

// role is the session-specific association of an occupant with a room (XEP-0045 §5.1).
type role uint8

// Roles, lowest first.
const (
	roleNone role = iota
	roleVisitor
	roleParticipant
	roleModerator
)

var roleNames = [...]string{"none", "visitor", "participant", "moderator"}

func (r role) String() string { return roleNames[r] }

func parseRole(s string) (role, bool) {
	for i, n := range roleNames {
		if n == s {
			return role(i), true
		}
	}
	return 0, false
}

// defaultRole is the role an occupant gets on entering (XEP-0045 §5.1.2): admins and
// owners moderate, members participate, and others are visitors in moderated rooms.
func defaultRole(a affiliation, moderated bool) role {
	switch {
	case a == affOutcast:
		return roleNone // outcasts do not enter
	case a >= affAdmin:
		return roleModerator
	case a == affMember || !moderated:
		return roleParticipant
	}
	return roleVisitor
}

// checkRole says whether an occupant with affiliation aa and role ar may change the role
// of an occupant with affiliation ta and role tr to nr; it returns "" when allowed.
// XEP-0045 §8 (moderators: kick, voice), §9.6–§9.7 (admins: moderator status):
//   - only moderators change roles (forbidden otherwise, §8 preamble);
//   - granting moderator status is an admin's or owner's (forbidden for others, §9 preamble);
//   - nobody is kicked by a moderator of lower affiliation (not-allowed, §8.2);
//   - voice is not revoked from admins and owners, nor by a moderator from anyone at or
//     above its own affiliation (not-allowed, §8.4);
//   - moderator status is revoked only by admins and owners, and never from an admin or
//     owner (not-allowed, §9.7).
func checkRole(aa affiliation, ar role, ta affiliation, tr role, nr role) stanza.Condition {
	if ar != roleModerator {
		return stanza.Forbidden
	}
	if nr == tr {
		return ""
	}
	switch nr {
	case roleModerator:
		if aa < affAdmin {
			return stanza.Forbidden
		}
	case roleNone:
		if ta > aa {
			return stanza.NotAllowed
		}
	case roleVisitor, roleParticipant:
		if tr == roleModerator && aa < affAdmin {
			return stanza.Forbidden // §9 preamble: an admin's request, from someone who is not
		}
		if tr == roleModerator && ta >= affAdmin {
			return stanza.NotAllowed
		}
		if nr == roleVisitor && (ta >= affAdmin || ta >= aa) {
			return stanza.NotAllowed
		}
	}
	return ""
}

// checkAffiliation says whether a user with affiliation aa may change the affiliation of
// the user with affiliation ta to na; self is set when they are the same user and owners
// counts the room's owners. It returns "" when allowed. XEP-0045 §9 (admins: bans and
// members), §10 (owners: admins and owners):
//   - only admins and owners change affiliations (forbidden, §9 preamble);
//   - only owners grant admin or owner status (forbidden, §10.3, §10.6);
//   - admins cannot change an admin's or owner's affiliation (not-allowed, §9.1);
//   - nobody bans themselves (conflict, §9.1);
//   - the last owner cannot give up ownership (conflict, §10.4).
func checkAffiliation(aa, ta, na affiliation, self bool, owners int) stanza.Condition {
	if aa < affAdmin {
		return stanza.Forbidden
	}
	if na == ta {
		return ""
	}
	if self && na == affOutcast {
		return stanza.ConflictCond // before the rank checks: an admin banning itself too
	}
	if na >= affAdmin && aa != affOwner {
		return stanza.Forbidden
	}
	if ta >= affAdmin && aa != affOwner {
		return stanza.NotAllowed
	}
	if ta == affOwner && owners <= 1 {
		return stanza.ConflictCond
	}
	return ""
}

// affRecord is one stored affiliation.
type affRecord struct {
	aff  affiliation
	nick string // reserved nickname (member list 'nick'), if any
}

// subject is the room's subject (XEP-0045 §7.2.15, §8.1).
type subject struct {
	text  string
	nick  string // occupant that set it; empty for the room itself
	occID string // its XEP-0421 id
	at    time.Time
	set   bool // ever set (then the join message carries <delay/>)
}

// occupant is one nickname in a room with the real sessions behind it. XEP-0045 §7.2.10:
// the same bare JID may hold one nickname from several resources ("multi-session"); every
// in-room message goes to each of them.
type occupant struct {
	nick string
	ojid jid.JID // room@service/nick
	bare jid.JID // real bare JID
	sess []jid.JID
	role role
	// tag is the start of the occupant's last available presence, "<presence attrs",
	// without from, to, id and type; kids are its children that the room reflects (show,
	// status, caps, ...: everything but the MUC elements).
	tag, kids []byte
	id        string // XEP-0421 occupant id
	// lastPres is when the occupant's availability was last broadcast (flood control).
	lastPres time.Time
	// msgs is the occupant's message bucket in a large room (message.go).
	msgs bucket
}

func (o *occupant) hasSession(full jid.JID) bool {
	for _, s := range o.sess {
		if s.Equal(full) {
			return true
		}
	}
	return false
}

// room is one chat room. It is used only on its shard (see service.rooms).
type room struct {
	svc     *service
	creator string // bare JID (max_rooms_per_user)
	jid     jid.JID
	key     string
	cfg     roomConfig
	locked  bool // created and not yet configured (XEP-0045 §10.1)
	gone    bool // destroyed: the value may still be held by the current call
	subject subject
	affs    map[string]affRecord // bare JID -> affiliation (never affNone)
	occ     []*occupant          // in order of entry
	byNick  map[string]*occupant
	byReal  map[string]*occupant // real full JID -> occupant
	hist    history
	// joins is the room's join bucket (Config.JoinRate; presence.go).
	joins bucket
	// IQs relayed between occupants (XEP-0045 §17.3), by the id the room gave them.
	pending map[string]pendingIQ
	pendSeq []string
	iqSeq   uint64
	// vcard is the room's vCard-temp (XEP-0486), nil while none is set.
	vcard *roomVCard
	// captchaJoins are the joins waiting for their CAPTCHA's answer, by challenge id;
	// captchaPassed the sessions whose next join is let in (captcha.go).
	captchaJoins  map[string]captchaJoin
	captchaPassed map[string]bool
	// invited holds the invitations the room sent (§7.8.2), invitee's bare JID to the
	// inviter's: a decline goes to the one who invited, never to an address the
	// decliner names freely. nil until the first; at most maxInvited.
	invited map[string]string
}

// maxInvitesPerMessage bounds the invitations one message to a room carries.
const maxInvitesPerMessage = 10

// maxInvited bounds the invitations a room remembers for their declines.
const maxInvited = 256

// pendingIQ is an IQ request relayed from one occupant to another, awaiting its answer.
type pendingIQ struct {
	from   jid.JID // the requester's real full JID
	id     string  // the requester's id
	target jid.JID // the real full JID the request went to
	ojid   jid.JID // the target's occupant JID, as the requester addressed it
}

func newRoom(s *service, bare jid.JID) *room {
	return &room{svc: s, jid: bare, key: bare.String(), affs: map[string]affRecord{},
		byNick: map[string]*occupant{}, byReal: map[string]*occupant{}, cfg: s.defaultConfig()}
}

func (r *room) affOf(bare jid.JID) affiliation {
	if r.svc.conf().admins[bare.Bare().String()] {
		return affOwner // a service administrator (Config.Admins)
	}
	if a, ok := r.affs[bare.Bare().String()]; ok {
		return a.aff
	}
	// XEP-0045 §9.1.x: a ban of a domain matches every user of it.
	if a, ok := r.affs[bare.Domain()]; ok && a.aff == affOutcast {
		return affOutcast
	}
	return affNone
}

func (r *room) isOwner(full jid.JID) bool { return r.affOf(full.Bare()) == affOwner }

func (r *room) owners() int {
	n := 0
	for _, a := range r.affs {
		if a.aff == affOwner {
			n++
		}
	}
	return n
}

// reservedBy returns the bare JID that reserved nick (member list), or "".
func (r *room) reservedBy(nick string) string {
	if nick == "" {
		return ""
	}
	for k, a := range r.affs {
		if a.nick == nick && a.aff > affNone {
			return k
		}
	}
	return ""
}

// occupantID derives the XEP-0421 id of a real bare JID in this room: an HMAC of both
// under the service secret, so it is stable, differs between rooms, and reveals nothing.
func (r *room) occupantID(bare jid.JID) string {
	h := hmac.New(sha256.New, r.svc.m.secret)
	h.Write([]byte(r.key))
	h.Write([]byte{0})
	h.Write([]byte(bare.String()))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// sees reports whether occupant x may see real JIDs (XEP-0045 §7.2.4 non-anonymous,
// §7.2.5 semi-anonymous: moderators only).
func (r *room) sees(x *occupant) bool { return r.cfg.WhoisAnyone || x.role == roleModerator }

// updateDir publishes what other shards may know of the room.
func (r *room) updateDir() {
	name, public, locked, n, card := r.cfg.Name, r.cfg.Public, r.locked, len(r.occ), cardOf(&r.cfg)
	r.svc.dir.update(r.key, func(e *dirEntry) {
		e.name, e.public, e.locked, e.occupants, e.card = name, public, locked, n, card
		e.loaded = true
	})
}

// drop takes the room out of memory and, unless it is persistent, out of existence.
func (r *room) drop(forget bool) {
	r.gone = true
	r.svc.rooms.Delete(r.key)
	if forget {
		r.forgetArchive()
		r.svc.dir.remove(r.key)
	} else {
		r.svc.dir.update(r.key, func(e *dirEntry) { e.loaded, e.occupants = false, 0 })
	}
}

// empty handles the last occupant leaving: XEP-0045 §7.14, a room that is not persistent
// is destroyed; so is a room still locked (§10.1.3).
func (r *room) empty(c module.Context) {
	if len(r.occ) > 0 {
		return
	}
	if r.locked || !r.cfg.Persistent {
		r.drop(true)
		return
	}
	// Persistent rooms stay loaded (their history lives in memory).
}

// bucket is a token bucket refilled by elapsed time: the flood control of a large room's
// joins and of each occupant's messages.
type bucket struct {
	tokens float64
	filled time.Time
}

// take takes one token at now (rate a second, at most burst kept; full at first use),
// reporting false when there is none.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if b.filled.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.filled).Seconds()*rate)
	}
	b.filled = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
