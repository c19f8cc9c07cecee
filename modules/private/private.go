// Package private implements XEP-0049: Private XML Storage.
package private

import (
	"errors"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// MaxSize bounds one stored fragment.
const MaxSize = 64 << 10

func init() { module.Register(Mod{}) }

// Mod is the module.
type Mod struct{ t store.Table }

// ModuleInfo implements module.Module.
func (Mod) ModuleInfo() module.Info {
	return module.Info{ID: "private", XEP: 49, New: func() module.Module { return new(Mod) }}
}

// Provision registers the handlers.
func (m *Mod) Provision(r module.Registrar) error {
	m.t = r.Table("private")
	r.IQ(module.IQGet, ns.Private, "query", m.handle)
	r.IQ(module.IQSet, ns.Private, "query", m.handle)
	return nil
}

// reserved namespaces cannot be stored (XEP-0049 §3: jabber:* protocol namespaces).
func reserved(space string) bool {
	switch space {
	case "", ns.Client, ns.Server, ns.Private, "vcard-temp", ns.Roster:
		return true
	}
	return false
}

func (m *Mod) handle(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && !iq.To.Equal(iq.From.Bare()) {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	q, _ := iq.Payload()
	it := q.Children()
	child, ok := it.Next()
	if !ok {
		c.Error(iq, stanza.New(stanza.BadRequest))
		return
	}
	if _, more := it.Next(); more || reserved(string(child.NS())) {
		c.Error(iq, stanza.New(stanza.NotAcceptable))
		return
	}
	key := store.UserKey(iq.From.Bare().String(), string(child.NS()), string(child.Name()))
	if iq.Type == "set" {
		if len(child.Raw()) > MaxSize {
			c.Error(iq, stanza.New(stanza.NotAcceptable))
			return
		}
		if err := m.t.Set(key, child.Raw()); err != nil {
			c.Error(iq, stanza.New(stanza.InternalServerErrorCond))
			return
		}
		c.Reply(iq, nil)
		return
	}
	v, err := m.t.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		v = child.Raw() // XEP-0049 §2.3: the empty element as asked
	} else if err != nil {
		c.Error(iq, stanza.New(stanza.InternalServerErrorCond))
		return
	}
	out := append([]byte("<query xmlns='jabber:iq:private'>"), v...)
	c.Reply(iq, append(out, "</query>"...))
}
