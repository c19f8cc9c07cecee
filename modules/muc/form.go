package muc

import (
	"sort"
	"strconv"
	"strings"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Values of muc#roomconfig_allowpm.
const (
	pmAnyone       = "anyone"
	pmParticipants = "participants"
	pmModerators   = "moderators"
	pmNone         = "none"
)

// roomConfig is a room's configuration (XEP-0045 §10.2, the muc#roomconfig fields). It
// is stored as JSON for persistent rooms.
type roomConfig struct {
	Name              string `json:"name,omitempty"`
	Desc              string `json:"desc,omitempty"`
	Lang              string `json:"lang,omitempty"`
	Persistent        bool   `json:"persistent"`
	Public            bool   `json:"public"`
	MembersOnly       bool   `json:"membersonly"`
	Moderated         bool   `json:"moderated"`
	PasswordProtected bool   `json:"pwprotected"`
	Password          string `json:"password,omitempty"`
	MaxUsers          int    `json:"maxusers"` // 0: only the service bound
	WhoisAnyone       bool   `json:"nonanonymous"`
	AllowPM           string `json:"allowpm"`
	AllowInvites      bool   `json:"allowinvites"`
	ChangeSubject     bool   `json:"changesubject"`
	History           int    `json:"history"`
	Logging           bool   `json:"logging"` // muc#roomconfig_enablelogging: status 170
	// Quiet holds the roles whose presence is not broadcast (muc#roomconfig_presencebroadcast
	// lists the others), one bit per role (1<<roleVisitor ...); zero, the default,
	// broadcasts every role's.
	Quiet uint8 `json:"quiet,omitempty"`
	// Captcha makes a user without an affiliation answer a CAPTCHA to enter (captcha.go).
	Captcha bool `json:"captcha,omitempty"`
}

// broadcasts reports whether the presence of an occupant with role rl goes to the others.
func (c *roomConfig) broadcasts(rl role) bool { return c.Quiet&(1<<rl) == 0 }

// defaultConfig is the configuration of a new room: temporary, public, open, unmoderated,
// semi-anonymous, without password, private messages allowed, subject by moderators,
// logged unless [modules.muc] default_logging is false.
func (s *service) defaultConfig() roomConfig {
	c := s.conf()
	return roomConfig{Public: true, MaxUsers: c.DefaultOccupants, AllowPM: pmAnyone,
		History: c.DefaultHistory, Logging: c.Logging == nil || *c.Logging}
}

// formLimits are the service bounds a submitted configuration must respect.
type formLimits struct {
	maxUsers, maxHistory int
}

// configForm is the result of parsing a submitted muc#roomconfig form.
type configForm struct {
	cfg roomConfig
	// owners and admins are the full lists from muc#roomconfig_roomowners and _roomadmins
	// (bare JIDs); nil when the form has no such field.
	owners, admins []string
	hasOwners      bool
	hasAdmins      bool
}

// Form field names (XEP-0045 §15.5.3).
const (
	fRoomName      = "muc#roomconfig_roomname"
	fRoomDesc      = "muc#roomconfig_roomdesc"
	fLang          = "muc#roomconfig_lang"
	fPersistent    = "muc#roomconfig_persistentroom"
	fPublic        = "muc#roomconfig_publicroom"
	fMembersOnly   = "muc#roomconfig_membersonly"
	fModerated     = "muc#roomconfig_moderatedroom"
	fPwProtected   = "muc#roomconfig_passwordprotectedroom"
	fSecret        = "muc#roomconfig_roomsecret"
	fMaxUsers      = "muc#roomconfig_maxusers"
	fWhois         = "muc#roomconfig_whois"
	fAllowPM       = "muc#roomconfig_allowpm"
	fAllowInvites  = "muc#roomconfig_allowinvites"
	fChangeSubject = "muc#roomconfig_changesubject"
	fLogging       = "muc#roomconfig_enablelogging"
	fBroadcast     = "muc#roomconfig_presencebroadcast"
	fHistory       = "muc#maxhistoryfetch"
	fHistoryAlt    = "muc#roomconfig_historylength" // not registered; Prosody's name, accepted
	fAdmins        = "muc#roomconfig_roomadmins"
	fOwners        = "muc#roomconfig_roomowners"
)

func badForm(cond stanza.Condition, text string) *stanza.Error {
	e := stanza.New(cond)
	e.Text = text
	return e
}

// parseBool reads an XEP-0004 §3.3 boolean.
func parseBool(v string) (bool, bool) {
	switch v {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

// parseConfigForm applies a submitted muc#roomconfig form (XEP-0045 §10.1.3, §10.2) to
// cur. x is the <x xmlns='jabber:x:data'/> element; its type must be "submit". Fields the
// form does not carry keep their current value, unknown fields are ignored. Malformed
// values give bad-request; values against service policy (a password-protected room
// without password, more occupants or history than the service allows) not-acceptable.
func parseConfigForm(x xmlstream.Element, cur roomConfig, lim formLimits) (configForm, *stanza.Error) {
	out := configForm{cfg: cur}
	if t, _ := x.AppendAttr(nil, "type"); string(t) != "submit" {
		return out, badForm(stanza.BadRequest, "the form must be of type submit")
	}
	var val []byte
	seen := 0
	for it := x.Children(); ; {
		f, ok := it.Next()
		if !ok {
			break
		}
		if string(f.NS()) != ns.DataForms || string(f.Name()) != "field" {
			continue
		}
		if seen++; seen > 64 {
			return out, badForm(stanza.NotAcceptable, "too many fields")
		}
		v, _ := f.AppendAttr(nil, "var")
		name := string(v)
		var values []string
		for vi := f.Children(); ; {
			ve, ok := vi.Next()
			if !ok {
				break
			}
			if string(ve.Name()) != "value" || string(ve.NS()) != ns.DataForms {
				continue
			}
			val = ve.AppendText(val[:0])
			if len(val) > maxFieldBytes {
				return out, badForm(stanza.NotAcceptable, name+": value too long")
			}
			if len(values) >= maxListItems {
				return out, badForm(stanza.NotAcceptable, name+": too many values")
			}
			values = append(values, string(val))
		}
		single := ""
		if len(values) > 0 {
			single = values[0]
		}
		boolean := func(dst *bool) *stanza.Error {
			if len(values) == 0 {
				return nil
			}
			b, ok := parseBool(strings.TrimSpace(single))
			if !ok {
				return badForm(stanza.BadRequest, name+": not a boolean")
			}
			*dst = b
			return nil
		}
		var e *stanza.Error
		c := &out.cfg
		switch name {
		case "FORM_TYPE":
			if single != NSRoomConf {
				return out, badForm(stanza.BadRequest, "FORM_TYPE is not "+NSRoomConf)
			}
		case fRoomName:
			c.Name = single
		case fRoomDesc:
			c.Desc = single
		case fLang:
			c.Lang = single
		case fPersistent:
			e = boolean(&c.Persistent)
		case fPublic:
			e = boolean(&c.Public)
		case fMembersOnly:
			e = boolean(&c.MembersOnly)
		case fModerated:
			e = boolean(&c.Moderated)
		case fPwProtected:
			e = boolean(&c.PasswordProtected)
		case fCaptcha:
			e = boolean(&c.Captcha)
		case fSecret:
			c.Password = single
		case fAllowInvites:
			e = boolean(&c.AllowInvites)
		case fChangeSubject:
			e = boolean(&c.ChangeSubject)
		case fLogging:
			e = boolean(&c.Logging)
		case fMaxUsers:
			if len(values) == 0 {
				break
			}
			s := strings.TrimSpace(single)
			if s == "none" || s == "0" {
				c.MaxUsers = 0
				break
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return out, badForm(stanza.BadRequest, name+": not a number")
			}
			if n > lim.maxUsers {
				return out, badForm(stanza.NotAcceptable, name+": at most "+strconv.Itoa(lim.maxUsers))
			}
			c.MaxUsers = n
		case fHistory, fHistoryAlt:
			if len(values) == 0 {
				break
			}
			n, err := strconv.Atoi(strings.TrimSpace(single))
			if err != nil || n < 0 {
				return out, badForm(stanza.BadRequest, name+": not a number")
			}
			if n > lim.maxHistory {
				return out, badForm(stanza.NotAcceptable, name+": at most "+strconv.Itoa(lim.maxHistory))
			}
			c.History = n
		case fWhois:
			switch single {
			case "anyone":
				c.WhoisAnyone = true
			case "moderators":
				c.WhoisAnyone = false
			case "":
			default:
				return out, badForm(stanza.NotAcceptable, name+": anyone or moderators")
			}
		case fBroadcast:
			var quiet uint8 = 1<<roleVisitor | 1<<roleParticipant | 1<<roleModerator
			for _, v := range values {
				switch strings.TrimSpace(v) {
				case "moderator":
					quiet &^= 1 << roleModerator
				case "participant":
					quiet &^= 1 << roleParticipant
				case "visitor":
					quiet &^= 1 << roleVisitor
				case "":
				default:
					return out, badForm(stanza.NotAcceptable, name+": moderator, participant or visitor")
				}
			}
			c.Quiet = quiet
		case fAllowPM:
			switch single {
			case pmAnyone, pmParticipants, pmModerators, pmNone:
				c.AllowPM = single
			case "":
			default:
				return out, badForm(stanza.NotAcceptable, name+": anyone, participants, moderators or none")
			}
		case fOwners, fAdmins:
			list := make([]string, 0, len(values))
			for _, s := range values {
				s = strings.TrimSpace(s)
				if s == "" {
					continue
				}
				j, err := jid.Parse(s)
				if err != nil {
					return out, badForm(stanza.JIDMalformed, name+": "+s)
				}
				list = append(list, j.Bare().String())
			}
			if name == fOwners {
				out.owners, out.hasOwners = list, true
			} else {
				out.admins, out.hasAdmins = list, true
			}
		}
		if e != nil {
			return out, e
		}
	}
	c := &out.cfg
	if c.PasswordProtected && c.Password == "" {
		return out, badForm(stanza.NotAcceptable, "a password-protected room needs a password")
	}
	if !c.PasswordProtected {
		c.Password = ""
	}
	if out.hasOwners && len(out.owners) == 0 {
		return out, badForm(stanza.NotAcceptable, "a room needs an owner")
	}
	return out, nil
}

// appendField writes one form field with its values.
func appendField(b *xmlstream.Builder, typ, name, label string, values ...string) {
	b.Start("field").Attr("var", name)
	if typ != "" {
		b.Attr("type", typ)
	}
	if label != "" {
		b.Attr("label", label)
	}
	for _, v := range values {
		b.Start("value").Text(v).End()
	}
}

func boolStr(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

func options(b *xmlstream.Builder, opts ...[2]string) {
	for _, o := range opts {
		b.Start("option").Attr("label", o[0]).Start("value").Text(o[1]).End().End()
	}
}

// appendConfigForm writes the room configuration form (XEP-0045 §10.1.3) with the current
// values, inside <query xmlns='…#owner'/>.
func (r *room) appendConfigForm(b *xmlstream.Builder) {
	c, lim := r.cfg, r.svc.conf()
	b.Start("query").Attr("xmlns", NSOwner)
	b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "form")
	b.Start("title").Text("Configuration of " + r.key).End()
	appendField(b, "hidden", "FORM_TYPE", "", NSRoomConf)
	b.End()
	appendField(b, "text-single", fRoomName, "Natural-Language Room Name", c.Name)
	b.End()
	appendField(b, "text-single", fRoomDesc, "Short Description of Room", c.Desc)
	b.End()
	appendField(b, "text-single", fLang, "Natural Language for Room Discussions", c.Lang)
	b.End()
	appendField(b, "boolean", fPersistent, "Make Room Persistent?", boolStr(c.Persistent))
	b.End()
	appendField(b, "boolean", fPublic, "Make Room Publicly Searchable?", boolStr(c.Public))
	b.End()
	appendField(b, "boolean", fMembersOnly, "Make Room Members-Only?", boolStr(c.MembersOnly))
	b.End()
	appendField(b, "boolean", fModerated, "Make Room Moderated?", boolStr(c.Moderated))
	b.End()
	appendField(b, "boolean", fPwProtected, "Password Required to Enter?", boolStr(c.PasswordProtected))
	b.End()
	appendField(b, "text-private", fSecret, "Password", c.Password)
	b.End()
	appendField(b, "boolean", fCaptcha, "Make room CAPTCHA protected", boolStr(c.Captcha))
	b.End()
	mu := "none"
	if c.MaxUsers > 0 {
		mu = strconv.Itoa(c.MaxUsers)
	}
	appendField(b, "list-single", fMaxUsers, "Maximum Number of Occupants", mu)
	var opts [][2]string
	for _, n := range []int{10, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 10000} {
		if n <= lim.MaxOccupants {
			opts = append(opts, [2]string{strconv.Itoa(n), strconv.Itoa(n)})
		}
	}
	opts = append(opts, [2]string{"None", "none"})
	options(b, opts...)
	b.End()
	whois := "moderators"
	if c.WhoisAnyone {
		whois = "anyone"
	}
	appendField(b, "list-single", fWhois, "Who May Discover Real JIDs?", whois)
	options(b, [2]string{"Moderators Only", "moderators"}, [2]string{"Anyone", "anyone"})
	b.End()
	var bc []string
	for _, r := range []struct {
		rl   role
		name string
	}{{roleModerator, "moderator"}, {roleParticipant, "participant"}, {roleVisitor, "visitor"}} {
		if c.broadcasts(r.rl) {
			bc = append(bc, r.name)
		}
	}
	appendField(b, "list-multi", fBroadcast, "Roles for which Presence is Broadcasted", bc...)
	options(b, [2]string{"Moderator", "moderator"}, [2]string{"Participant", "participant"}, [2]string{"Visitor", "visitor"})
	b.End()
	appendField(b, "list-single", fAllowPM, "Who Can Send Private Messages?", c.AllowPM)
	options(b, [2]string{"Anyone", pmAnyone}, [2]string{"Anyone with Voice", pmParticipants},
		[2]string{"Moderators Only", pmModerators}, [2]string{"Nobody", pmNone})
	b.End()
	appendField(b, "boolean", fAllowInvites, "Allow Members to Invite Others?", boolStr(c.AllowInvites))
	b.End()
	appendField(b, "boolean", fChangeSubject, "Allow Occupants to Change Subject?", boolStr(c.ChangeSubject))
	b.End()
	appendField(b, "boolean", fLogging, "Enable Public Logging?", boolStr(c.Logging))
	b.End()
	appendField(b, "text-single", fHistory, "Maximum Number of History Messages Returned by Room",
		strconv.Itoa(c.History))
	b.End()
	var owners, admins []string
	for k, a := range r.affs {
		switch a.aff {
		case affOwner:
			owners = append(owners, k)
		case affAdmin:
			admins = append(admins, k)
		}
	}
	sort.Strings(owners)
	sort.Strings(admins)
	appendField(b, "jid-multi", fAdmins, "Room Admins", admins...)
	b.End()
	appendField(b, "jid-multi", fOwners, "Room Owners", owners...)
	b.End()
	b.End().End()
}

// features lists the room's disco#info features (XEP-0045 §6.4, §15.3).
func (r *room) features() []string {
	c := r.cfg
	pick := func(v bool, yes, no string) string {
		if v {
			return yes
		}
		return no
	}
	var archived []string
	if q, ok := r.svc.m.archive().(ArchiveQuerier); ok && c.Logging {
		archived = q.Namespaces()
	}
	return append(archived,
		NS, NSStableID, NSOccupant, NSSelfPing, NSRegister, ns.Register, ns.DiscoInfo, ns.Ping, NSVCard,
		NSModerate, NSModerate0, NSRetract, NSRetract+"#tombstone",
		pick(c.Public, "muc_public", "muc_hidden"),
		pick(c.Persistent, "muc_persistent", "muc_temporary"),
		pick(c.MembersOnly, "muc_membersonly", "muc_open"),
		pick(c.Moderated, "muc_moderated", "muc_unmoderated"),
		pick(c.WhoisAnyone, "muc_nonanonymous", "muc_semianonymous"),
		pick(c.PasswordProtected, "muc_passwordprotected", "muc_unsecured"),
	)
}

// appendInfo writes the room's disco#info payload with the muc#roominfo form (XEP-0045
// §6.4, XEP-0128).
func (r *room) appendInfo(b *xmlstream.Builder) {
	name := r.cfg.Name
	if name == "" {
		name = r.jid.Local()
	}
	b.Start("query").Attr("xmlns", ns.DiscoInfo)
	b.Start("identity").Attr("category", "conference").Attr("type", "text").Attr("name", name).End()
	for _, f := range r.features() {
		b.Start("feature").Attr("var", f).End()
	}
	b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "result")
	appendField(b, "hidden", "FORM_TYPE", "", NSRoomInfo)
	b.End()
	appendField(b, "", "muc#roominfo_description", "Description", r.cfg.Desc)
	b.End()
	appendField(b, "", "muc#roominfo_subject", "Current Discussion Topic", r.subject.text)
	b.End()
	appendField(b, "", "muc#roominfo_subjectmod", "Subject can be modified", boolStr(r.cfg.ChangeSubject))
	b.End()
	appendField(b, "", "muc#roominfo_occupants", "Number of occupants", strconv.Itoa(len(r.occ)))
	b.End()
	if r.cfg.Lang != "" {
		appendField(b, "", "muc#roominfo_lang", "Language of discussion", r.cfg.Lang)
		b.End()
	}
	appendField(b, "", fHistory, "Maximum Number of History Messages Returned by Room", strconv.Itoa(r.cfg.History))
	b.End()
	if r.vcard != nil && len(r.vcard.hashes) > 0 {
		// XEP-0486 §3.3: the SHA-1 of each photo, so a client fetches the vCard only when
		// the avatar it has cached is not one of them.
		b.Start("field").Attr("var", "muc#roominfo_avatarhash").Attr("type", "text-multi").Attr("label", "Avatar hash")
		for _, h := range r.vcard.hashes {
			b.Start("value").Text(h).End()
		}
		b.End()
	}
	b.End().End()
}
