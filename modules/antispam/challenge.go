package antispam

import (
	"bytes"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/modules/captcha"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Challenges to strangers (Config.Challenge; XEP-0158 §3, as ejabberd's
// mod_block_strangers with captcha): a remote stranger's first message with a body, or
// subscription request, to a local user is held, and the stranger gets a message from the
// user's address with a CAPTCHA form and its image. The answer is an IQ set to the user's
// bare JID carrying the filled form. The right text lets the held stanzas through and
// lets the stranger write to that user from then on (kept in the store); a wrong one
// drops them. Until the answer, what else the stranger sends that user waits with the
// first, up to maxHeld stanzas; past the challenge's lifetime (captcha.TTL) they are
// dropped. A user's own message to a stranger lets the stranger answer without one.

const (
	nsCaptcha = "urn:xmpp:captcha"
	// table holds the strangers each user let in: UserKey(user, stranger) -> unix time.
	table = "antispam"
	// maxHeld bounds the stanzas held for one stranger and user; maxPending the
	// challenges open at once (a challenge holds at most maxHeld stanzas of up to the
	// stanza limit each, and a drawn image of ~4 KB).
	maxHeld    = 5
	maxPending = 10_000
)

// challengesPerMinute bounds the challenges drawn a minute, server-wide: each costs ~1 ms
// of CPU and sends a ~5 KB image to a server that may be a spammer's, so a wave from
// many servers must not turn the server into a CPU sink and an amplifier. Atomic for
// tests only.
var challengesPerMinute atomic.Int64

func init() { challengesPerMinute.Store(600) }

// pending is a challenge under way: the stanzas it holds, and the challenge once drawn.
type pending struct {
	user, stranger jid.JID // bare
	to             jid.JID // the stranger's full JID, where the challenge went
	held           [][]byte
	ch             *captcha.Challenge // nil while it is drawn
	expires        time.Time
}

// challengeIssued, set by tests only (export_test.go), learns each challenge's text.
var challengeIssued func(id, text string)

func pairKey(user, stranger jid.JID) string { return user.String() + "\x00" + stranger.String() }

// approved reports whether user let stranger in before (a right answer, or a message of
// the user's to the stranger).
func (m *Mod) approved(user, stranger jid.JID) bool {
	_, err := m.approvals.Get(store.UserKey(user.String(), stranger.String()))
	return err == nil
}

// maxApprovals bounds the strangers one user let in: every new conversation partner off
// the roster adds one, and so does every made-up JID that answers a challenge; past it
// the oldest approval goes (that stranger is asked again).
const maxApprovals = 1000

// approve records that user lets stranger write, making room first when user has
// maxApprovals already.
func (m *Mod) approve(user, stranger jid.JID, now time.Time, lazy bool) error {
	ops := []store.Op{{Key: store.UserKey(user.String(), stranger.String()), Val: []byte(now.UTC().Format(time.RFC3339))}}
	n, oldest, oldestAt := 0, []byte(nil), ""
	err := m.approvals.Scan(store.UserKey(user.String()), func(k, v []byte) bool {
		n++
		if oldest == nil || string(v) < oldestAt { // RFC 3339 in UTC sorts as time
			oldest, oldestAt = append(oldest[:0], k...), string(v)
		}
		return true
	})
	if err != nil {
		return err
	}
	if n >= maxApprovals && !bytes.Equal(oldest, ops[0].Key) {
		ops = append(ops, store.Op{Key: oldest, Delete: true})
	}
	if lazy {
		return m.approvals.ApplyLazy(ops...)
	}
	return m.approvals.Apply(ops...)
}

// hold takes p, a stranger's stanza to a local user that passed the budgets, when the
// user's host (cfg) challenges strangers and p must wait for an answer to a challenge: it
// returns false when the stranger may write (the user let them in). A held stanza gets
// no answer until the challenge is answered.
func (m *Mod) hold(c module.Context, cfg *Config, p *module.Packet) bool {
	if !cfg.Challenge {
		return false
	}
	user, stranger := p.To.Bare(), p.From.Bare()
	if m.approved(user, stranger) {
		return false
	}
	now := c.Now()
	k := pairKey(user, stranger)
	m.mu.Lock()
	m.expire(now)
	if pd := m.pending[k]; pd != nil {
		if len(pd.held) < maxHeld {
			pd.held = append(pd.held, append([]byte(nil), p.Raw...))
		}
		m.mu.Unlock()
		return true
	}
	if minute := now.Unix() / 60; minute != m.drawn.minute {
		m.drawn = window{minute: minute}
	}
	if len(m.pending) >= maxPending || int64(m.drawn.n) >= challengesPerMinute.Load() {
		m.mu.Unlock()
		se := stanza.New(stanza.ResourceConstraintCond)
		se.Type = stanza.Wait
		c.Error(p, se)
		return true
	}
	pd := &pending{user: user, stranger: stranger, to: p.From, held: [][]byte{append([]byte(nil), p.Raw...)},
		expires: now.Add(captcha.TTL)}
	m.pending[k] = pd
	m.drawn.n++
	m.mu.Unlock()
	sid := p.ID
	if sid == "" {
		v, _ := p.Elem().Attr("id")
		sid = string(xmlstream.AppendUnescaped(nil, v))
	}
	var ch *captcha.Challenge
	var err error
	ok := c.Async(func() { ch, err = captcha.New(now) }, func(c module.Context) {
		m.mu.Lock()
		if m.pending[k] != pd {
			m.mu.Unlock()
			return
		}
		if err != nil {
			delete(m.pending, k)
			m.mu.Unlock()
			return
		}
		pd.ch = ch
		m.byID[ch.ID] = pd
		m.mu.Unlock()
		if challengeIssued != nil {
			challengeIssued(ch.ID, ch.Text())
		}
		c.Route(challengeMessage(pd, sid, ch))
	})
	if !ok {
		m.mu.Lock()
		delete(m.pending, k)
		m.mu.Unlock()
		se := stanza.New(stanza.ResourceConstraintCond)
		se.Type = stanza.Wait
		c.Error(p, se)
	}
	return true
}

// expire drops the challenges past their lifetime and what they held, at most once a
// second. Called with mu held.
func (m *Mod) expire(now time.Time) {
	if now.Sub(m.swept) < time.Second {
		return
	}
	m.swept = now
	for k, pd := range m.pending {
		if now.After(pd.expires) {
			delete(m.pending, k)
			if pd.ch != nil {
				delete(m.byID, pd.ch.ID)
			}
		}
	}
}

// challengeMessage is the challenge (XEP-0158 §3): from the user's address to the
// stranger's, its id the challenge's, with a body for clients that show no form.
func challengeMessage(pd *pending, sid string, ch *captcha.Challenge) []byte {
	var b xmlstream.Builder
	b.Start("message").Attr("from", pd.user.String()).Attr("to", pd.to.String()).Attr("id", ch.ID).
		Start("body").Text("Your message to "+pd.user.String()+" waits until you show that you are a person: "+
		"type the text of the image in the CAPTCHA form your client shows, within 5 minutes.").End().
		Start("no-store").Attr("xmlns", "urn:xmpp:hints").End().
		Start("captcha").Attr("xmlns", nsCaptcha).
		Start("x").Attr("xmlns", ns.DataForms).Attr("type", "form")
	b.Start("field").Attr("var", "FORM_TYPE").Attr("type", "hidden").Start("value").Text(nsCaptcha).End().End()
	ch.AppendFields(&b, pd.user.String(), sid)
	b.End().End() // x, captcha
	ch.AppendData(&b)
	b.End()
	return b.B
}

// answer handles an IQ set to a user's bare JID carrying a filled CAPTCHA form: the right
// text from the challenged stranger lets the held stanzas through. The challenge is spent
// whatever the answer.
func (m *Mod) answer(c module.Context, iq *module.Packet) {
	q, _ := iq.Payload()
	var f map[string]string
	if x, ok := q.Child(ns.DataForms, "x"); ok {
		f = captcha.FormValues(x)
	}
	m.mu.Lock()
	pd := m.byID[f["challenge"]]
	if pd == nil || !pd.stranger.Equal(iq.From.Bare()) || !pd.user.Equal(iq.To.Bare()) {
		m.mu.Unlock()
		se := stanza.New(stanza.ServiceUnavailable) // XEP-0158 §3.4: no such challenge
		c.Error(iq, se)
		return
	}
	delete(m.byID, pd.ch.ID)
	delete(m.pending, pairKey(pd.user, pd.stranger))
	m.mu.Unlock()
	now := c.Now()
	if !pd.ch.Check(f["ocr"], now) {
		se := stanza.New(stanza.NotAcceptable)
		se.Text = "The text is wrong or came too late; what you sent was dropped."
		c.Error(iq, se)
		return
	}
	if err := m.approve(pd.user, pd.stranger, now, false); err != nil {
		c.Error(iq, module.StoreError(err))
		return
	}
	c.Reply(iq, nil)
	for _, raw := range pd.held {
		c.Route(raw)
	}
}

// outbound lets the remote account a local user writes to answer without a challenge:
// a conversation the user started is not a stranger's.
func (m *Mod) outbound(c module.Context, p *module.Packet) module.Verdict {
	if p.To.Local() == "" || c.IsLocal(p.To.Domain()) || p.From.Local() == "" || !m.cfg.Load().For(p.From.Domain()).Challenge {
		return module.Continue
	}
	switch p.Type {
	case "groupchat", "error":
		return module.Continue
	}
	if _, ok := p.Elem().Child("", "body"); !ok {
		return module.Continue
	}
	user, peer := p.From.Bare(), p.To.Bare()
	if _, known := c.RosterItem(user, peer); known || m.approved(user, peer) {
		return module.Continue
	}
	if err := m.approve(user, peer, c.Now(), true); err != nil && module.LogStoreError(err) {
		log := c.Logger()
		log.Error().Err(err).Msg("antispam: note a conversation partner")
	}
	return module.Continue
}
