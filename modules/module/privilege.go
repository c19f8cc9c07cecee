package module

import "github.com/vireo-im/vireo/xmlstream/jid"

// NSPrivilege is XEP-0356's namespace (version 0.4).
const NSPrivilege = "urn:xmpp:privilege:2"

// Privileges are what XEP-0356 Privileged Entity lets a component (a gateway, a pubsub
// service) do with the accounts of the server, as the operator granted them in its
// configuration: read or change their rosters, send messages as them, and send IQs as
// them in named namespaces. The zero value grants nothing.
type Privileges struct {
	Roster string // "", "none", "get", "set" or "both"
	// NoRosterPush turns off the roster pushes a component that reads rosters gets for
	// every change (§4.4; on by default).
	NoRosterPush bool
	Message      string            // "", "none" or "outgoing"
	IQ           map[string]string // payload namespace → "get", "set" or "both"
	// Presence is "", "none", "managed_entity" (the entity gets the available and
	// unavailable presence of every session of the server's users) or "roster" (that, and
	// the same of the users' contacts on other servers; it needs Roster get or both).
	Presence string
}

// Type is what p grants for access "roster", "message" or "presence", as XEP-0356's
// <perm type=…/> says it: "none" when nothing.
func (p Privileges) Type(access string) string {
	switch access {
	case "roster":
		return orNone(p.Roster)
	case "message":
		return orNone(p.Message)
	case "presence":
		return orNone(p.Presence)
	}
	return "none"
}

// Zero says whether p grants nothing.
func (p Privileges) Zero() bool {
	return orNone(p.Roster) == "none" && orNone(p.Message) == "none" && len(p.IQ) == 0 && orNone(p.Presence) == "none"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// RosterGet and RosterSet say whether the roster may be read, or changed.
func (p Privileges) RosterGet() bool { return p.Roster == "get" || p.Roster == "both" }
func (p Privileges) RosterSet() bool { return p.Roster == "set" || p.Roster == "both" }

// RosterPushes says whether the entity gets a roster push for each change to a user's
// roster (§4.4: by default when it may read rosters).
func (p Privileges) RosterPushes() bool { return p.RosterGet() && !p.NoRosterPush }

// UserPresence says whether the entity gets the presence of the server's users' sessions
// (§7.1; the roster type implies it).
func (p Privileges) UserPresence() bool {
	return p.Presence == "managed_entity" || p.Presence == "roster"
}

// RosterPresence says whether the entity also gets the presence of the users' contacts
// (§7.4).
func (p Privileges) RosterPresence() bool { return p.Presence == "roster" && p.RosterGet() }

// Outgoing says whether the entity may send messages as the server's users.
func (p Privileges) Outgoing() bool { return p.Message == "outgoing" }

// IQAllowed says whether the entity may send an IQ of type typ ("get" or "set") whose
// payload is in namespace space as one of the server's users.
func (p Privileges) IQAllowed(space, typ string) bool {
	t := p.IQ[space]
	return t == "both" || t == typ
}

// Privileged looks up the privileges of the component whose authority covers entity (its
// domain or a subdomain of it); the zero Privileges for anyone else.
type Privileged func(entity jid.JID) Privileges
