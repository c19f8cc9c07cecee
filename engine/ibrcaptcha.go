package engine

import (
	"time"

	"github.com/vireo-im/vireo/modules/captcha"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// XEP-0158 CAPTCHA forms in open in-band registration (Config.RegistrationCaptcha). The
// form is ejabberd's, which Conversations and Gajim (nbxmpp) fill in: a data form of
// FORM_TYPE jabber:iq:register with the username, the password, the challenge's id and an
// "ocr" field whose XEP-0221 media names the image, and the image itself beside the form
// as XEP-0231 data. The query then carries no <username/> and <password/> of its own,
// which is how such clients know to show the form.

const (
	// captchasPerConn bounds the challenges one connection is given: drawing one costs
	// ~1 ms of CPU, and a connection that asks again and again is not a human.
	captchasPerConn = 5
	// captchaGrace is how long a connection that was given a challenge has, from then,
	// to answer it, beyond the pre-auth timeout a login gets: a person reads the image
	// and types.
	captchaGrace = 2 * time.Minute
)

// captchaState is what a connection was given: its current challenge (nil once answered)
// and how many it had.
type captchaState struct {
	ch     *captcha.Challenge
	issued int
}

// needsCaptcha says whether this connection's open registration must solve a CAPTCHA:
// invitations and trusted networks (bulk provisioning) do without.
func (c *conn) needsCaptcha(cfg *Config, invited bool) bool {
	return cfg.host(c.domainName()).RegistrationCaptcha && !invited && !cfg.trusted(c.ip())
}

// captchaForm answers a registration get with a new challenge, drawn off the loop.
func (c *conn) captchaForm(id []byte) {
	s := c.srv()
	st := captchaState{}
	if v, ok := s.captchas.Load(c); ok {
		st = v.(captchaState)
	}
	if st.issued >= captchasPerConn {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Type = stanza.Wait
		e.Text = "Too many CAPTCHAs on this connection; connect again."
		c.iqError(id, e)
		return
	}
	var ch *captcha.Challenge
	var err error
	domain := c.domainName()
	ok := c.offLoop(func() { ch, err = captcha.New(time.Now()) }, func() {
		if err != nil {
			s.log.Error().Err(err).Msg("captcha")
			c.iqError(id, stanza.New(stanza.InternalServerErrorCond))
			return
		}
		if _, had := s.captchas.Swap(c, captchaState{ch: ch, issued: st.issued + 1}); !had {
			s.captchaConns.Add(1)
		}
		// The pre-auth deadline counts from the stream's start; move it so that the
		// person gets captchaGrace from now.
		if d := captchaGrace - s.config().PreAuthTimeout; d > 0 {
			c.opened.Store(uint32((time.Since(epoch) + d) / time.Second))
		} else {
			c.opened.Store(uint32(time.Since(epoch) / time.Second))
		}
		c.iqResult(id, captchaQuery(domain, string(id), ch))
	})
	if !ok {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Type = stanza.Wait
		c.iqError(id, e)
	}
}

// captchaQuery is the registration form with challenge ch (XEP-0158 §4, as ejabberd
// sends it).
func captchaQuery(domain, sid string, ch *captcha.Challenge) []byte {
	var b xmlstream.Builder
	field := func(v, typ, label string) *xmlstream.Builder {
		b.Start("field").Attr("var", v).Attr("type", typ)
		if label != "" {
			b.Attr("label", label)
		}
		return &b
	}
	b.Start("query").Attr("xmlns", ns.Register).
		Start("instructions").Text("Your client must show the form and its image to register here.").End().
		Start("x").Attr("xmlns", ns.DataForms).Attr("type", "form").
		Start("title").Text("Registration").End().
		Start("instructions").Text("Choose a username and password, and type the text of the image.").End()
	field("FORM_TYPE", "hidden", "").Start("value").Text(ns.Register).End().End()
	field("username", "text-single", "Username").Start("required").End().End()
	field("password", "text-private", "Password").Start("required").End().End()
	ch.AppendFields(&b, domain, sid)
	b.End() // x
	ch.AppendData(&b)
	b.End()
	return b.B
}

// captchaAnswer reads a registration set under a CAPTCHA: the submitted form's username,
// password and answer. It spends the connection's challenge whatever the answer, so each
// try needs a new form. e is the error to answer with.
func (c *conn) captchaAnswer(q xmlstream.Element) (user, password string, e *stanza.Error) {
	x, ok := q.Child(ns.DataForms, "x")
	if !ok {
		e = stanza.New(stanza.NotAllowed)
		e.Text = "This server asks a CAPTCHA at registration: ask for the form and fill it in."
		return "", "", e
	}
	f := captcha.FormValues(x)
	s := c.srv()
	v, had := s.captchas.Load(c)
	var ch *captcha.Challenge
	if had {
		st := v.(captchaState)
		ch = st.ch
		s.captchas.Store(c, captchaState{issued: st.issued})
	}
	if ch == nil || f["challenge"] != ch.ID {
		e = stanza.New(stanza.ServiceUnavailable) // XEP-0158 §3.4: no such challenge
		e.Text = "The CAPTCHA is unknown or was used; ask for a new form."
		return "", "", e
	}
	if !ch.Check(f["ocr"], time.Now()) {
		e = stanza.New(stanza.NotAcceptable)
		e.Text = "The CAPTCHA's text is wrong or came too late; ask for a new form."
		return "", "", e
	}
	return f["username"], f["password"], nil
}

// forgetCaptcha drops what a closing connection was given.
func (s *Server) forgetCaptcha(c *conn) {
	if s.captchaConns.Load() == 0 {
		return
	}
	if _, had := s.captchas.LoadAndDelete(c); had {
		s.captchaConns.Add(-1)
	}
}
