// Package disco implements XEP-0030: Service Discovery for the server and for accounts,
// and computes the server's XEP-0115 verification string. Features are collected from the
// other modules' registrations (an IQ handler advertises its namespace), so what is
// advertised cannot drift from what is handled.
package disco

import (
	"sync"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func init() { module.Register(new(Disco)) }

// Disco is the module.
type Disco struct {
	reg   module.Registrar
	once  sync.Once
	info  []byte // pre-serialized server disco#info payload
	items []byte
}

// ModuleInfo implements module.Module.
func (*Disco) ModuleInfo() module.Info {
	return module.Info{ID: "disco", XEP: 30, New: func() module.Module { return new(Disco) }}
}

// Provision registers the handlers.
func (d *Disco) Provision(r module.Registrar) error {
	d.reg = r
	r.Identity("server", "im", "Vireo")
	r.IQ(module.IQGet, ns.DiscoInfo, "query", d.infoQuery)
	r.IQ(module.IQGet, ns.DiscoItems, "query", d.itemsQuery)
	r.Public(ns.DiscoInfo)
	r.Public(ns.DiscoItems)
	r.IQBare(module.IQGet, ns.DiscoInfo, "query", d.accountInfo)
	r.IQBare(module.IQGet, ns.DiscoItems, "query", d.accountItems)
	return nil
}

// build serializes the replies once every module has registered.
func (d *Disco) build() {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoInfo)
	for _, id := range d.reg.Identities() {
		b.Start("identity").Attr("category", id.Category).Attr("type", id.Type)
		if id.Name != "" {
			b.Attr("name", id.Name)
		}
		b.End()
	}
	for _, f := range d.reg.Features() {
		b.Start("feature").Attr("var", f).End()
	}
	b.End()
	d.info = b.B
	// XEP-0030 §4: the services of this server (MUC, pubsub, upload) are its items.
	b = xmlstream.Builder{}
	b.Start("query").Attr("xmlns", ns.DiscoItems)
	for _, sv := range d.reg.Services() {
		b.Start("item").Attr("jid", sv.Domain)
		if sv.Name != "" {
			b.Attr("name", sv.Name)
		}
		b.End()
	}
	b.End()
	d.items = b.B
}

func (d *Disco) infoQuery(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && iq.To.Local() != "" {
		d.accountInfo(c, iq) // the user asking about their own account
		return
	}
	if q, _ := iq.Payload(); hasNode(q) {
		c.Error(iq, stanza.New(stanza.ItemNotFound))
		return
	}
	d.once.Do(d.build)
	c.Reply(iq, d.info)
}

func hasNode(q xmlstream.Element) bool {
	n, ok := q.Attr("node")
	return ok && len(n) > 0
}

func (d *Disco) itemsQuery(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && iq.To.Local() != "" {
		d.accountItems(c, iq)
		return
	}
	d.once.Do(d.build)
	c.Reply(iq, d.items)
}

// accountInfo answers for a user's bare JID (XEP-0030 §3.1 identities of accounts).
func (d *Disco) accountInfo(c module.Context, iq *module.Packet) {
	c.Reply(iq, []byte("<query xmlns='http://jabber.org/protocol/disco#info'><identity category='account' type='registered'/></query>"))
}

func (d *Disco) accountItems(c module.Context, iq *module.Packet) {
	c.Reply(iq, []byte("<query xmlns='http://jabber.org/protocol/disco#items'/>"))
}

// Ver computes the XEP-0115 §5.1 verification string for identities and features.
func Ver(ids []module.Identity, features []string) string { return module.CapsVer(ids, features) }
