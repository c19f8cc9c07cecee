// Package ping implements XEP-0199: XMPP Ping (answering pings to the server; the engine
// pings silent clients).
package ping

import (
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

func init() { module.Register(Ping{}) }

// Ping is the module.
type Ping struct{}

// ModuleInfo implements module.Module.
func (Ping) ModuleInfo() module.Info {
	return module.Info{ID: "ping", XEP: 199, New: func() module.Module { return new(Ping) }}
}

// Provision registers the IQ handler.
func (p *Ping) Provision(r module.Registrar) error {
	r.Public(ns.Ping)
	r.IQ(module.IQGet, ns.Ping, "ping", func(c module.Context, iq *module.Packet) { c.Reply(iq, nil) })
	return nil
}
