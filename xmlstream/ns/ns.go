// Package ns holds the XML namespace names Vireo speaks, as untyped string constants.
//
// It owns only constants: no code, no imports, no state. Packages compare element namespaces
// against these constants byte by byte (string(b) == ns.X does not allocate).
package ns

// Core RFC 6120 / RFC 6121 namespaces.
const (
	Stream    = "http://etherx.jabber.org/streams"
	Client    = "jabber:client"
	Server    = "jabber:server"
	Component = "jabber:component:accept" // XEP-0114
	Dialback  = "jabber:server:dialback"  // XEP-0220
	TLS       = "urn:ietf:params:xml:ns:xmpp-tls"
	SASL      = "urn:ietf:params:xml:ns:xmpp-sasl"
	Bind      = "urn:ietf:params:xml:ns:xmpp-bind"
	Session   = "urn:ietf:params:xml:ns:xmpp-session"
	Streams   = "urn:ietf:params:xml:ns:xmpp-streams"
	Stanzas   = "urn:ietf:params:xml:ns:xmpp-stanzas"
	XML       = "http://www.w3.org/XML/1998/namespace"
	Roster    = "jabber:iq:roster"
	RosterVer = "urn:xmpp:features:rosterver"

	PreApproval = "urn:xmpp:features:pre-approval"
)

// XEP namespaces.
const (
	Register        = "jabber:iq:register"                     // XEP-0077
	RegisterFeature = "http://jabber.org/features/iq-register" // XEP-0077
	DiscoInfo       = "http://jabber.org/protocol/disco#info"  // XEP-0030
	DiscoItems      = "http://jabber.org/protocol/disco#items" // XEP-0030
	Caps            = "http://jabber.org/protocol/caps"        // XEP-0115
	Ping            = "urn:xmpp:ping"                          // XEP-0199
	Delay           = "urn:xmpp:delay"                         // XEP-0203
	Version         = "jabber:iq:version"                      // XEP-0092
	Time            = "urn:xmpp:time"                          // XEP-0202
	Last            = "jabber:iq:last"                         // XEP-0012
	VCard           = "vcard-temp"                             // XEP-0054
	VCardUpdate     = "vcard-temp:x:update"                    // XEP-0153
	Private         = "jabber:iq:private"                      // XEP-0049
	Blocking        = "urn:xmpp:blocking"                      // XEP-0191
	BlockingErrors  = "urn:xmpp:blocking:errors"               // XEP-0191
	Carbons         = "urn:xmpp:carbons:2"                     // XEP-0280
	MAM             = "urn:xmpp:mam:2"                         // XEP-0313
	MAMExtended     = "urn:xmpp:mam:2#extended"                // XEP-0313 §7
	Forward         = "urn:xmpp:forward:0"                     // XEP-0297
	Hints           = "urn:xmpp:hints"                         // XEP-0334
	SID             = "urn:xmpp:sid:0"                         // XEP-0359
	Offline         = "http://jabber.org/protocol/offline"     // XEP-0013
	MsgOffline      = "msgoffline"                             // XEP-0160 disco feature
	SM              = "urn:xmpp:sm:3"                          // XEP-0198
	CSI             = "urn:xmpp:csi:0"                         // XEP-0352
	Receipts        = "urn:xmpp:receipts"                      // XEP-0184
	ChatStates      = "http://jabber.org/protocol/chatstates"  // XEP-0085
	DataForms       = "jabber:x:data"                          // XEP-0004
	PubSub          = "http://jabber.org/protocol/pubsub"      // XEP-0060
	Push            = "urn:xmpp:push:0"                        // XEP-0357
	MUCUser         = "http://jabber.org/protocol/muc#user"    // XEP-0045
	Conference      = "jabber:x:conference"                    // XEP-0249
)

// End-to-end encryption and call signalling: payloads that make a message without a body
// worth keeping (mam, offline) and waking a phone for (push).
const (
	OMEMOLegacy = "eu.siacs.conversations.axolotl" // XEP-0384 before 0.4, what most clients send
	OMEMO0      = "urn:xmpp:omemo:0"
	OMEMO1      = "urn:xmpp:omemo:1"
	OMEMO2      = "urn:xmpp:omemo:2"
	PGPLegacy   = "jabber:x:encrypted"        // XEP-0027
	OX          = "urn:xmpp:openpgp:0"        // XEP-0373
	JMI0        = "urn:xmpp:jingle-message:0" // XEP-0353
	JMI1        = "urn:xmpp:jingle-message:1"
)

// Encrypted reports whether a message's child name in namespace space is an end-to-end
// encrypted payload (XEP-0384, XEP-0373, XEP-0027).
func Encrypted(name, space string) bool {
	switch space {
	case OMEMOLegacy, OMEMO0, OMEMO1, OMEMO2:
		return name == "encrypted"
	case OX:
		return name == "openpgp"
	case PGPLegacy:
		return name == "x"
	}
	return false
}
