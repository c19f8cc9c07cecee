// Package version implements XEP-0092: Software Version. The operating system is not
// disclosed: it only helps attackers.
package version

import (
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// Version is reported to clients; main may overwrite it at startup, before the router
// provisions the modules (the reply is built then).
var Version = "0.1.0"

func init() { module.Register(Mod{}) }

// Mod is the module.
type Mod struct {
	// reply is built once at Provision and only read afterwards: handlers run
	// concurrently on every shard worker.
	reply []byte
}

// ModuleInfo implements module.Module.
func (Mod) ModuleInfo() module.Info {
	return module.Info{ID: "version", XEP: 92, New: func() module.Module { return new(Mod) }}
}

// Provision builds the reply and registers the IQ handler.
func (m *Mod) Provision(r module.Registrar) error {
	r.Public(ns.Version)
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.Version).
		Start("name").Text("Vireo").End().
		Start("version").Text(Version).End().
		End()
	reply := b.B
	m.reply = reply
	r.IQ(module.IQGet, ns.Version, "query", func(c module.Context, iq *module.Packet) {
		if !iq.To.IsZero() && iq.To.Local() != "" {
			c.Error(iq, stanzaServiceUnavailable())
			return
		}
		c.Reply(iq, reply)
	})
	return nil
}
