// Package register implements XEP-0077: In-Band Registration for authenticated users:
// password change and account removal. Account creation before authentication is the
// engine's, since it happens before a session exists.
package register

import (
	"strings"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func init() { module.Register(Mod{}) }

// Mod is the module.
type Mod struct{}

// ModuleInfo implements module.Module.
func (Mod) ModuleInfo() module.Info {
	return module.Info{ID: "register", XEP: 77, New: func() module.Module { return new(Mod) }}
}

// Provision registers the handlers.
func (m *Mod) Provision(r module.Registrar) error {
	r.IQ(module.IQGet, ns.Register, "query", m.get)
	r.IQ(module.IQSet, ns.Register, "query", m.set)
	return nil
}

func (m *Mod) get(c module.Context, iq *module.Packet) {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.Register).Start("registered").End().
		Start("username").Text(iq.From.Local()).End().Start("password").End().End()
	c.Reply(iq, b.B)
}

func (m *Mod) set(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && iq.To.Local() != "" {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	q, _ := iq.Payload()
	user := iq.From.Bare()
	if _, ok := q.Child(ns.Register, "remove"); ok {
		// XEP-0077 §3.2: answer first, then remove and end the sessions.
		c.Reply(iq, nil)
		if err := c.Store().Accounts().Delete(user.String()); err != nil {
			return
		}
		for _, s := range c.Sessions(user) {
			s.Close(stanza.NotAuthorized)
		}
		return
	}
	u, okU := q.Child(ns.Register, "username")
	p, okP := q.Child(ns.Register, "password")
	if !okU || !okP {
		c.Error(iq, stanza.New(stanza.BadRequest))
		return
	}
	if !strings.EqualFold(string(u.AppendText(nil)), user.Local()) {
		c.Error(iq, stanza.New(stanza.NotAuthorizedCond))
		return
	}
	password := string(p.AppendText(nil))
	if password == "" || len(password) > 1023 {
		c.Error(iq, stanza.New(stanza.NotAcceptable))
		return
	}
	// PBKDF2 for three hashes takes tens of milliseconds: do it off the shard worker and
	// answer through the router when done.
	from, id := iq.From, iq.ID
	st := c.Store()
	route := c.Route
	go func() {
		keys, err := creds.DeriveAll(password, creds.DefaultIter)
		if err == nil {
			err = st.Accounts().SetCredentials(user.String(), keys)
		}
		var b xmlstream.Builder
		b.Start("iq").Attr("to", from.String()).Attr("from", user.String()).Attr("id", id)
		if err != nil {
			b.Attr("type", "error").Raw(stanza.New(stanza.InternalServerErrorCond).AppendXML(nil))
		} else {
			b.Attr("type", "result")
		}
		b.End()
		route(b.B)
	}()
}
