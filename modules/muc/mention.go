package muc

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// NSReference is the XEP-0372 namespace: a <reference type='mention'/> names someone.
const NSReference = "urn:xmpp:reference:0"

// Mention is a groupchat message of a members-only room that names one of its members
// (an affiliation of member, admin or owner) who is not there to read it: the member has
// no session in the room, or every session it has there may be asleep (Sessions lists
// them; whether they are detached or XEP-0352 inactive is known only on the member's own
// shard). A message names a member when its body holds one of the member's nicknames
// (the one reserved with the affiliation or by registration, and the one it is in the
// room under) as a word, case-insensitively, or when it carries an XEP-0372 reference of
// type mention to the member's bare JID or occupant JID.
type Mention struct {
	Room     jid.JID
	User     jid.JID   // the member's bare JID
	From     jid.JID   // the sender's occupant JID
	Body     []byte    // the message's body, valid during the call only
	Sessions []jid.JID // the member's sessions in the room, if any
}

// Notifier is the seam for notifying members of mentions while they are away (the push
// module installs one, XEP-0357): a members-only room hands it every Mention of a
// groupchat message it reflects, on the room's shard, after the message went to the
// occupants. The Notifier decides, on the member's shard, whether the member is awake in
// the room and has a device to wake.
type Notifier interface {
	Mention(c module.Context, m *Mention)
}

// notifiers maps a server's store to its Notifier (one process may run several servers).
var notifiers sync.Map // store.Store -> Notifier

// SetNotifier installs n as the mention notifier of the rooms of the server whose store
// is st (a nil n removes it): from Provision, and with nil from Cleanup, as SetArchive.
func SetNotifier(st store.Store, n Notifier) {
	if n == nil {
		notifiers.Delete(st)
		return
	}
	notifiers.Store(st, n)
}

func (m *Mod) notifier() Notifier {
	if m.st == nil {
		return nil
	}
	n, ok := notifiers.Load(m.st)
	if !ok {
		return nil
	}
	return n.(Notifier)
}

// mentions finds the members that the groupchat message e from occupant o names and
// hands each one to the notifier. It walks the room's affiliations and occupants once per
// message, so it runs only in members-only rooms (small, closed groups) and only while a
// Notifier is installed; a message without a body or a reference costs a child scan.
func (r *room) mentions(c module.Context, n Notifier, e xmlstream.Element, o *occupant) {
	var body []byte
	var refs []string
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		switch name := string(ch.Name()); {
		case name == "body" && body == nil:
			body = ch.AppendText(nil)
		case name == "reference" && string(ch.NS()) == NSReference:
			if t, _ := ch.AppendAttr(nil, "type"); string(t) != "mention" {
				continue
			}
			u, _ := ch.AppendAttr(nil, "uri")
			if s, ok := strings.CutPrefix(string(u), "xmpp:"); ok {
				if i := strings.IndexByte(s, '?'); i >= 0 {
					s = s[:i]
				}
				if j, err := jid.Parse(s); err == nil {
					refs = append(refs, j.String())
				}
			}
		}
	}
	if len(body) == 0 && len(refs) == 0 {
		return
	}
	lower := strings.ToLower(string(body))
	named := func(bare, nick string, ojid jid.JID) bool {
		for _, ref := range refs {
			if ref == bare || !ojid.IsZero() && ref == ojid.String() {
				return true
			}
		}
		return nick != "" && hasWord(lower, strings.ToLower(nick))
	}
	sender := o.bare.String()
	var hit map[string]bool
	mark := func(k string) {
		if hit == nil {
			hit = map[string]bool{}
		}
		hit[k] = true
	}
	for k, a := range r.affs {
		if a.aff >= affMember && k != sender && named(k, a.nick, jid.JID{}) {
			mark(k)
		}
	}
	for _, x := range r.occ {
		if k := x.bare.String(); k != sender && !hit[k] && r.affOf(x.bare) >= affMember && named(k, x.nick, x.ojid) {
			mark(k)
		}
	}
	for k := range hit {
		user, err := jid.Parse(k)
		if err != nil || user.Local() == "" {
			continue
		}
		var sess []jid.JID
		for _, x := range r.occ {
			if x.bare.Equal(user) {
				sess = append(sess, x.sess...)
			}
		}
		n.Mention(c, &Mention{Room: r.jid, User: user, From: o.ojid, Body: body, Sessions: sess})
	}
}

// hasWord reports whether word occurs in s with no letter, digit or underscore right
// before or after it (both already lower case).
func hasWord(s, word string) bool {
	if word == "" {
		return false
	}
	for i := 0; i+len(word) <= len(s); {
		j := strings.Index(s[i:], word)
		if j < 0 {
			return false
		}
		at, end := i+j, i+j+len(word)
		before, _ := utf8.DecodeLastRuneInString(s[:at])
		after, _ := utf8.DecodeRuneInString(s[end:])
		if (at == 0 || !wordRune(before)) && (end == len(s) || !wordRune(after)) {
			return true
		}
		_, sz := utf8.DecodeRuneInString(s[at:])
		i = at + sz
	}
	return false
}

func wordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
