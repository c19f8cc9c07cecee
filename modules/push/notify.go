package push

import (
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vireo-im/vireo/modules/csi"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// account is what the module remembers of one account between notifications. Only the
// account's shard uses it, so it needs no lock; Mod.account maps the bare JID to it.
type account struct {
	count   int                  // messages notified since the account was last awake
	last    map[string]time.Time // registration (jid 0 node) -> its last notification
	pending []pending            // publishes awaiting an answer, oldest first
}

// pending is a publish awaiting the app server's answer.
type pending struct {
	id, jid, node string
	at            time.Time
}

// awake reports whether s can read a message now: it has a connection, sent available
// presence and is not XEP-0352 inactive.
func awake(s module.Session) bool { return s.Available() && !s.Detached() && !csi.Inactive(s) }

// anyAwake reports whether any session of user is awake. c must be on user's shard.
func anyAwake(c module.Context, user jid.JID) bool {
	for _, s := range c.Sessions(user) {
		if awake(s) {
			return true
		}
	}
	return false
}

// awake starts a new count for user: someone can read messages again.
func (m *Mod) awake(c module.Context, user jid.JID) {
	v, ok := m.account.Load(user.String())
	if !ok {
		return
	}
	a := v.(*account)
	a.count, a.last = 0, nil
	if a.expire(c.Now()); len(a.pending) == 0 {
		m.account.Delete(user.String())
	}
}

// message is the inbound hook: a message with a body for an account nobody is awake to
// read it on is counted and notified.
func (m *Mod) message(c module.Context, p *module.Packet) module.Verdict {
	switch p.Type {
	case "", "normal", "chat":
	default:
		return module.Continue
	}
	user := p.To.Bare()
	if anyAwake(c, user) {
		m.awake(c, user)
		return module.Continue
	}
	if _, ok := m.enabled.Load(user.String()); !ok {
		return module.Continue // nobody to notify: spare the look for a body
	}
	if body, ok := important(p.Elem()); ok {
		m.notify(c, user, p.From.String(), body, 1)
	}
	return module.Continue
}

// sent is the outbound hook: a user who sends a message is awake, whatever the client
// last said about its state.
func (m *Mod) sent(c module.Context, p *module.Packet) module.Verdict {
	if c.Session() != nil {
		m.awake(c, p.From.Bare())
	}
	return module.Continue
}

// detached notifies the messages a stream left unacknowledged when it went away, unless the
// account was already notified since it was last awake (those messages were, or the
// device is awake already) or another session is awake.
func (m *Mod) detached(c module.Context, s module.Session, unacked [][]byte) {
	user := s.JID().Bare()
	if anyAwake(c, user) {
		return
	}
	if v, ok := m.account.Load(user.String()); ok && v.(*account).count > 0 {
		return
	}
	n := 0
	var from string
	var body []byte
	for _, raw := range unacked {
		e, err := xmlstream.ParseElement(raw, ns.Client)
		if err != nil || string(e.Name()) != "message" {
			continue
		}
		switch t, _ := e.Attr("type"); string(t) {
		case "", "normal", "chat":
		default:
			continue
		}
		b, ok := important(e)
		if !ok {
			continue
		}
		f, _ := e.AppendAttr(nil, "from")
		n, from, body = n+1, string(f), b
	}
	if n > 0 {
		m.notify(c, user, from, body, n)
	}
}

// important says whether a chat or normal message is worth waking a phone for, and
// returns the text of its first non-empty <body/>: one with a body, an end-to-end
// encrypted one (whose body, if any, is a fallback and some clients send none), and an
// XEP-0353 call proposal (a phone asleep must ring). Chat states, receipts, markers and
// the rest are not. The same as Prosody's mod_cloud_notify, which the push services of
// Conversations and Monal are used to.
func important(e xmlstream.Element) (body []byte, ok bool) {
	for it := e.Children(); ; {
		c, more := it.Next()
		if !more {
			return body, ok || len(body) > 0
		}
		switch name, space := string(c.Name()), string(c.NS()); {
		case name == "body" && space == ns.Client:
			if len(body) == 0 {
				body = c.AppendText(nil)
			}
		case ns.Encrypted(name, space), name == "propose" && (space == ns.JMI0 || space == ns.JMI1):
			ok = true
		}
	}
}

// notify counts n messages for user, the last from sender, and publishes a notification
// to each registration that was not notified within the last min_interval.
func (m *Mod) notify(c module.Context, user jid.JID, sender string, body []byte, n int) {
	regs, err := m.registrations(user.String())
	if err != nil {
		m.log.Error().Err(err).Msg("push: list registrations")
		return
	}
	if len(regs) == 0 {
		return
	}
	v, _ := m.account.LoadOrStore(user.String(), &account{})
	a := v.(*account)
	a.count += n
	now := c.Now()
	a.expire(now)
	st := m.set.Load().For(user.Domain())
	if !st.includeBody {
		body = nil
	}
	if st.hideSender {
		sender = ""
	}
	for _, r := range regs {
		rk := r.jid + "\x00" + r.node
		if t, ok := a.last[rk]; ok && st.every > 0 && now.Sub(t) < st.every {
			continue // coalesced: the next notification carries the count
		}
		if a.last == nil {
			a.last = map[string]time.Time{}
		}
		a.last[rk] = now
		id := newID()
		if len(a.pending) >= maxPending {
			a.pending = append(a.pending[:0], a.pending[1:]...)
		}
		a.pending = append(a.pending, pending{id: id, jid: r.jid, node: r.node, at: now})
		c.Route(appendPublish(nil, user.String(), id, r, a.count, sender, body))
	}
}

// expire forgets publishes whose answer is overdue.
func (a *account) expire(now time.Time) {
	i := 0
	for i < len(a.pending) && now.Sub(a.pending[i].at) > pendingTTL {
		i++
	}
	if i > 0 {
		a.pending = append(a.pending[:0], a.pending[i:]...)
	}
}

// idEnc writes publish ids: 128 random bits, 26 characters.
var idEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns an unguessable publish id: only the app server that got it can answer it.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return "push-" + idEnc.EncodeToString(b[:])
}

// appendPublish appends the XEP-0357 §7 publish of one notification to dst: the summary
// form, then the registration's publish options.
func appendPublish(dst []byte, user, id string, r registration, count int, sender string, body []byte) []byte {
	b := xmlstream.Builder{B: dst}
	b.Start("iq").Attr("type", "set").Attr("from", user).Attr("to", r.jid).Attr("id", id)
	b.Start("pubsub").Attr("xmlns", ns.PubSub)
	b.Start("publish").Attr("node", r.node).Start("item")
	b.Start("notification").Attr("xmlns", NS)
	b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "submit")
	field(&b, "FORM_TYPE", []byte(nsSummary))
	field(&b, "message-count", strconv.AppendInt(nil, int64(count), 10))
	if sender != "" {
		field(&b, "last-message-sender", []byte(sender))
	}
	if len(body) > 0 {
		field(&b, "last-message-body", truncate(body, maxBodyBytes))
	}
	b.End().End().End().End() // x, notification, item, publish
	if len(r.form) > 0 {
		b.Start("publish-options").Raw(r.form).End()
	}
	b.End().End() // pubsub, iq
	return b.B
}

func field(b *xmlstream.Builder, v string, val []byte) {
	b.Start("field").Attr("var", v).Start("value").TextBytes(val).End().End()
}

// truncate cuts s to at most n bytes at a UTF-8 character boundary.
func truncate(s []byte, n int) []byte {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// answer is the inbound IQ hook that takes the app servers' answers to publishes (they
// come to the user's bare JID): an error disables the registration unless it is
// transient. Answers that match no outstanding publish from that sender pass on.
func (m *Mod) answer(c module.Context, p *module.Packet) module.Verdict {
	if (p.Type != "result" && p.Type != "error") || !p.To.IsBare() || p.ID == "" {
		return module.Continue
	}
	user := p.To.String()
	v, ok := m.account.Load(user)
	if !ok {
		return module.Continue
	}
	a := v.(*account)
	from := p.From.String()
	i := 0
	for i < len(a.pending) && (a.pending[i].id != p.ID || a.pending[i].jid != from) {
		i++
	}
	if i == len(a.pending) {
		return module.Continue
	}
	pd := a.pending[i]
	a.pending = append(a.pending[:i], a.pending[i+1:]...)
	if p.Type == "error" && !transient(p.Elem()) {
		if err := m.t.Delete(key(user, pd.jid, pd.node)); err != nil {
			m.log.Error().Err(err).Msg("push: disable registration")
		} else {
			m.log.Debug().Str("user", user).Str("app", pd.jid).Msg("push: app server refused a notification; registration disabled")
		}
		delete(a.last, pd.jid+"\x00"+pd.node)
	}
	if len(a.pending) == 0 && a.count == 0 {
		m.account.Delete(user)
	}
	return module.Stop
}

// transient reports whether an IQ error says nothing about the registration: a type of
// wait (try later), or a condition that a server on the way to the app server produces.
func transient(iq xmlstream.Element) bool {
	e, ok := iq.Child(ns.Client, "error")
	if !ok {
		return false
	}
	if t, _ := e.Attr("type"); stanza.ErrorType(t) == stanza.Wait {
		return true
	}
	for it := e.Children(); ; {
		c, ok := it.Next()
		if !ok {
			return false
		}
		if string(c.NS()) != ns.Stanzas {
			continue
		}
		switch stanza.Condition(c.Name()) {
		case stanza.RemoteServerNotFound, stanza.RemoteServerTimeout:
			return true
		}
	}
}
