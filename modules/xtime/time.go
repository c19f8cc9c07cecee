// Package xtime implements XEP-0202: Entity Time (for the server).
package xtime

import (
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// NS is the XEP-0202 namespace.
const NS = ns.Time

func init() { module.Register(Mod{}) }

// Mod is the module.
type Mod struct{}

// ModuleInfo implements module.Module.
func (Mod) ModuleInfo() module.Info {
	return module.Info{ID: "time", XEP: 202, New: func() module.Module { return new(Mod) }}
}

// Provision registers the IQ handler.
func (m *Mod) Provision(r module.Registrar) error {
	r.Public(NS)
	r.IQ(module.IQGet, NS, "time", func(c module.Context, iq *module.Packet) {
		now := c.Now().UTC()
		c.Reply(iq, []byte("<time xmlns='urn:xmpp:time'><tzo>+00:00</tzo><utc>"+now.Format("2006-01-02T15:04:05.000Z")+"</utc></time>"))
	})
	return nil
}
