// Package version implements XEP-0092: Software Version. The operating system is not
// disclosed: it only helps attackers.
package version

import (
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// Version is reported to clients; main may overwrite it at startup.
var Version = "0.1.0"

func init() { module.Register(Mod{}) }

// Mod is the module.
type Mod struct{ reply []byte }

// ModuleInfo implements module.Module.
func (Mod) ModuleInfo() module.Info {
	return module.Info{ID: "version", XEP: 92, New: func() module.Module { return new(Mod) }}
}

// Provision registers the IQ handler.
func (m *Mod) Provision(r module.Registrar) error {
	r.Public(ns.Version)
	r.IQ(module.IQGet, ns.Version, "query", func(c module.Context, iq *module.Packet) {
		if !iq.To.IsZero() && iq.To.Local() != "" {
			c.Error(iq, stanzaServiceUnavailable())
			return
		}
		if m.reply == nil {
			m.reply = []byte("<query xmlns='jabber:iq:version'><name>Vireo</name><version>" + Version + "</version></query>")
		}
		c.Reply(iq, m.reply)
	})
	return nil
}
