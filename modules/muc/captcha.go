package muc

import (
	"sync"
	"time"

	"github.com/vireo-im/vireo/modules/captcha"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// CAPTCHA-protected rooms (ejabberd's captcha_protected, which Gajim and other clients
// built on python-nbxmpp answer): a user without an affiliation who joins gets, instead of
// the room, a message from the room with an XEP-0158 form and its image; the join waits.
// The answer is an IQ set to the room carrying the filled form; the right text lets the
// waiting join in (the client sends nothing more), a wrong or late one refuses it with
// not-authorized. Each join needs a new answer. Members, admins and owners, and users
// who give a password-protected room its password, are not asked.

const (
	nsCaptcha = "urn:xmpp:captcha"
	fCaptcha  = "captcha_protected" // ejabberd's room configuration field

	// maxCaptchaJoins bounds the joins a room holds for an answer; more wait and try again.
	maxCaptchaJoins = 32
	// captchasPerMinute bounds the CAPTCHAs one user (bare JID) is given a minute in all
	// the rooms of a service: drawing one costs ~1 ms of CPU, and a person reads a few.
	captchasPerMinute = 10
)

// captchaBudget counts CAPTCHAs per user and minute, shared by the service's shards.
type captchaBudget struct {
	mu     sync.Mutex
	minute int64
	n      map[string]int
}

// take counts one for user at now, reporting false when the user had their share.
func (b *captchaBudget) take(user string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := now.Unix() / 60; m != b.minute || b.n == nil {
		b.minute, b.n = m, map[string]int{}
	}
	if b.n[user] >= captchasPerMinute {
		return false
	}
	b.n[user]++
	return true
}

// captchaIssued, set by tests only (export_test.go), learns each challenge's text.
var captchaIssued func(id, text string)

// captchaJoin is a join that waits for the answer to its challenge.
type captchaJoin struct {
	full jid.JID // who joins
	raw  []byte  // the join presence, sent again to the room once answered
	ch   *captcha.Challenge
}

// needsCaptcha says whether p's join must answer a CAPTCHA first; it clears the pass of a
// join let in after its answer.
func (r *room) needsCaptcha(p *module.Packet, aff affiliation) bool {
	if !r.cfg.Captcha || aff != affNone || r.cfg.PasswordProtected {
		return false
	}
	k := p.From.String()
	if r.captchaPassed[k] {
		delete(r.captchaPassed, k)
		return false
	}
	return true
}

// challenge holds p's join and sends its sender the CAPTCHA, drawn off the room's shard.
func (r *room) challenge(c module.Context, p *module.Packet) {
	now := c.Now()
	for id, j := range r.captchaJoins { // the late ones are refused as they are found
		if now.After(j.ch.Expires) {
			delete(r.captchaJoins, id)
			r.refuseHeld(c, j, "The CAPTCHA was not answered in time.")
		}
	}
	for id, j := range r.captchaJoins { // a new join from the same session replaces its old one
		if j.full.Equal(p.From) {
			delete(r.captchaJoins, id)
		}
	}
	if len(r.captchaJoins) >= maxCaptchaJoins || !r.svc.captchas.take(p.From.Bare().String(), now) {
		e := errBy(r.jid, stanza.ResourceConstraintCond, "too many CAPTCHAs; try again shortly")
		e.Type = stanza.Wait
		joinError(c, p, e)
		return
	}
	held := captchaJoin{full: p.From, raw: append([]byte(nil), p.Raw...)}
	nick := p.To
	var err error
	ok := c.Async(func() { held.ch, err = captcha.New(now) }, func(c module.Context) {
		if r.gone {
			return
		}
		if err != nil || held.ch == nil {
			e := errBy(r.jid, stanza.InternalServerErrorCond, "no CAPTCHA could be made")
			c.Route(joinErrorFor(held.raw, nick, held.full, e))
			return
		}
		if r.captchaJoins == nil {
			r.captchaJoins = map[string]captchaJoin{}
		}
		r.captchaJoins[held.ch.ID] = held
		if captchaIssued != nil {
			captchaIssued(held.ch.ID, held.ch.Text())
		}
		c.Route(r.captchaMessage(nick, held.full, presenceID(held.raw), held.ch))
	})
	if !ok {
		e := errBy(r.jid, stanza.ResourceConstraintCond, "the server is busy; try again shortly")
		e.Type = stanza.Wait
		joinError(c, p, e)
	}
}

// captchaMessage is the challenge (XEP-0158 §3, in ejabberd's form): from the room, with
// the join's occupant JID and presence id, and the image as XEP-0231 data.
func (r *room) captchaMessage(nick, to jid.JID, sid string, ch *captcha.Challenge) []byte {
	var b xmlstream.Builder
	b.Start("message").Attr("from", r.key).Attr("to", to.String()).Attr("id", ch.ID).
		Start("body").Text("To enter "+r.key+", type the text of the image in the CAPTCHA form your client shows.").End().
		Start("no-store").Attr("xmlns", "urn:xmpp:hints").End().
		Start("captcha").Attr("xmlns", nsCaptcha).
		Start("x").Attr("xmlns", ns.DataForms).Attr("type", "form")
	b.Start("field").Attr("var", "FORM_TYPE").Attr("type", "hidden").Start("value").Text(nsCaptcha).End().End()
	ch.AppendFields(&b, nick.String(), sid)
	b.End().End() // x, captcha
	ch.AppendData(&b)
	b.End()
	return b.B
}

// captchaAnswer handles an IQ set to the room carrying a filled CAPTCHA form (q). The
// challenge is spent whatever the answer.
func (r *room) captchaAnswer(c module.Context, p *module.Packet, q xmlstream.Element) {
	var f map[string]string
	if x, ok := q.Child(ns.DataForms, "x"); ok {
		f = formValues(x)
	}
	j, ok := r.captchaJoins[f["challenge"]]
	if !ok || !j.full.Equal(p.From) {
		e := errBy(r.jid, stanza.ServiceUnavailable, "no such CAPTCHA; join again for a new one") // XEP-0158 §3.4
		c.Error(p, e)
		return
	}
	delete(r.captchaJoins, f["challenge"])
	if !j.ch.Check(f["ocr"], c.Now()) {
		c.Error(p, errBy(r.jid, stanza.NotAcceptable, "the text is wrong or came too late"))
		r.refuseHeld(c, j, "The CAPTCHA verification has failed.")
		return
	}
	c.Reply(p, nil)
	// The held join comes to the room again, as from its sender, and is let in once.
	if r.captchaPassed == nil {
		r.captchaPassed = map[string]bool{}
	}
	if len(r.captchaPassed) >= maxCaptchaPassed {
		// Entries whose join was refused for another reason (nick taken, room full)
		// are never taken: a bound, not a leak for a room loaded until the restart.
		clear(r.captchaPassed)
	}
	r.captchaPassed[j.full.String()] = true
	c.Route(j.raw)
}

// refuseHeld answers a held join with not-authorized.
func (r *room) refuseHeld(c module.Context, j captchaJoin, text string) {
	e, err := xmlstream.ParseElement(j.raw, "jabber:client")
	if err != nil {
		return
	}
	to, _ := e.Attr("to")
	nick, err := jid.Parse(string(xmlstream.AppendUnescaped(nil, to)))
	if err != nil {
		return
	}
	c.Route(joinErrorFor(j.raw, nick, j.full, errBy(r.jid, stanza.NotAuthorizedCond, text)))
}

// joinErrorFor is joinError for a presence kept as bytes.
func joinErrorFor(raw []byte, nick, to jid.JID, e *stanza.Error) []byte {
	var b xmlstream.Builder
	b.Start("presence").Attr("type", "error")
	if id := presenceID(raw); id != "" {
		b.Attr("id", id)
	}
	b.Attr("from", nick.String()).Attr("to", to.String())
	b.Start("x").Attr("xmlns", NS).End()
	b.Raw(e.AppendXML(nil))
	b.End()
	return b.B
}

func presenceID(raw []byte) string {
	e, err := xmlstream.ParseElement(raw, "jabber:client")
	if err != nil {
		return ""
	}
	v, _ := e.Attr("id")
	return string(xmlstream.AppendUnescaped(nil, v))
}

// maxCaptchaPassed bounds a room's passed CAPTCHAs whose join has not come back yet: a
// join is let in right after its answer, so more than this means entries left behind.
const maxCaptchaPassed = 256
