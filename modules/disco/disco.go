// Package disco implements XEP-0030: Service Discovery for the server and for accounts,
// and computes the server's XEP-0115 verification string. Features are collected from the
// other modules' registrations (an IQ handler advertises its namespace), so what is
// advertised cannot drift from what is handled.
package disco

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func init() { module.Register(new(Disco)) }

// Disco is the module.
type Disco struct {
	reg     module.Registrar
	once    sync.Once
	account []byte // pre-serialized account disco#info payload
	// server is the server's disco#info with the forms it was built from: a reload may
	// replace a module's XEP-0128 form (Reconfig.InfoForm), and the payloads and the
	// verification string are rebuilt at the next query.
	server atomic.Pointer[serverCache]
	// items is the disco#items payload with the services it was built from: virtual hosts
	// added or removed at runtime replace the services (module.HostWatcher), and the
	// payload is rebuilt at the next query.
	items atomic.Pointer[itemsCache]
}

type serverCache struct {
	from     []module.Form
	info     []byte // pre-serialized server disco#info payload
	capsNode string // module.CapsNode#ver (XEP-0115 §6.2)
	capsInfo []byte // info with node='capsNode'
}

type itemsCache struct {
	from []module.Service
	b    []byte
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

// accountFeatures are the features registered by modules that apply to accounts (bare
// JIDs) rather than to the server: they are listed in the account's disco#info when the
// module providing them is enabled.
var accountFeatures = []string{
	ns.SID,  // XEP-0359 §6: messages to the account carry <stanza-id by='account'/>
	ns.Push, // XEP-0357 §4: the account can enable push notifications
	// XEP-0313 §7: a client learns of its archive from its own bare JID; Conversations
	// looks nowhere else, and without these it never syncs history.
	ns.MAM, ns.MAMExtended,
	// XEP-0424 §2, §5: the account's archive keeps retractions and tombstones what they
	// retract (the mam module).
	"urn:xmpp:message-retract:1", "urn:xmpp:message-retract:1#tombstone",
}

// bookmarksCompat is XEP-0402 §5.3's account feature, registered by the private storage
// module; it holds only with PEP (the other side of the unification) enabled.
const bookmarksCompat = "urn:xmpp:bookmarks:1#compat"

// vcardConversion is XEP-0398 §2's account feature, registered by the vcard module; it
// holds only with PEP (the other side of the conversion) enabled.
const vcardConversion = "urn:xmpp:pep-vcard-conversion:0"

// serverInfo is the server's disco#info, built once per set of forms.
func (d *Disco) serverInfo() *serverCache {
	forms := d.reg.InfoForms()
	if c := d.server.Load(); c != nil && len(c.from) == len(forms) && (len(forms) == 0 || &c.from[0] == &forms[0]) {
		return c
	}
	ids, features := d.reg.Identities(), d.reg.Features()
	c := &serverCache{from: forms, info: serverInfo(ids, features, forms, "")}
	c.capsNode = module.CapsNode + "#" + module.CapsVer(ids, features, forms...)
	c.capsInfo = serverInfo(ids, features, forms, c.capsNode)
	d.server.Store(c)
	return c
}

// build serializes the account's reply once every module has registered.
func (d *Disco) build() {
	ids, features := d.reg.Identities(), d.reg.Features()
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoInfo)
	b.Start("identity").Attr("category", "account").Attr("type", "registered").End()
	// XEP-0163 §6.1: an account with PEP is a pubsub/pep service with its features.
	pep := slices.Contains(ids, module.Identity{Category: "pubsub", Type: "pep"})
	if pep {
		b.Start("identity").Attr("category", "pubsub").Attr("type", "pep").End()
	}
	for _, f := range features {
		if slices.Contains(accountFeatures, f) || pep && (strings.HasPrefix(f, ns.PubSub) || f == bookmarksCompat || f == vcardConversion) {
			b.Start("feature").Attr("var", f).End()
		}
	}
	b.End()
	d.account = b.B
}

// serviceItems is the server's disco#items payload: XEP-0030 §4, the services of this
// server (MUC, pubsub, upload) are its items. Built once per set of services; safe from
// any shard.
func (d *Disco) serviceItems() []byte {
	svcs := d.reg.Services()
	if c := d.items.Load(); c != nil && len(c.from) == len(svcs) && (len(svcs) == 0 || &c.from[0] == &svcs[0]) {
		return c.b
	}
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoItems)
	for _, sv := range svcs {
		b.Start("item").Attr("jid", sv.Domain)
		if sv.Name != "" {
			b.Attr("name", sv.Name)
		}
		b.End()
	}
	b.End()
	d.items.Store(&itemsCache{from: svcs, b: b.B})
	return b.B
}

// serverInfo serializes the server's disco#info payload, with node when not empty.
func serverInfo(ids []module.Identity, features []string, forms []module.Form, node string) []byte {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoInfo)
	if node != "" {
		b.Attr("node", node)
	}
	for _, id := range ids {
		b.Start("identity").Attr("category", id.Category).Attr("type", id.Type)
		if id.Name != "" {
			b.Attr("name", id.Name)
		}
		b.End()
	}
	for _, f := range features {
		b.Start("feature").Attr("var", f).End()
	}
	for _, f := range forms { // XEP-0128
		b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "result")
		b.Start("field").Attr("var", "FORM_TYPE").Attr("type", "hidden").Start("value").Text(f.Type).End().End()
		for _, fl := range f.Fields {
			b.Start("field").Attr("var", fl.Var)
			for _, v := range fl.Values {
				b.Start("value").Text(v).End()
			}
			b.End()
		}
		b.End()
	}
	b.End()
	return b.B
}

func (d *Disco) infoQuery(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && iq.To.Local() != "" {
		d.accountInfo(c, iq) // the user asking about their own account
		return
	}
	srv := d.serverInfo()
	q, _ := iq.Payload()
	if n, ok := q.AppendAttr(nil, "node"); ok && len(n) > 0 {
		// XEP-0115 §6.2: the node of the server's caps is answered like no node.
		if string(n) == srv.capsNode {
			c.Reply(iq, srv.capsInfo)
			return
		}
		if h, ok := d.reg.DiscoNodeHandler(string(n)); ok {
			h(c, iq) // a module's node (XEP-0050 commands)
			return
		}
		c.Error(iq, stanza.New(stanza.ItemNotFound))
		return
	}
	c.Reply(iq, srv.info)
}

func (d *Disco) itemsQuery(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && iq.To.Local() != "" {
		d.accountItems(c, iq)
		return
	}
	q, _ := iq.Payload()
	if n, ok := q.AppendAttr(nil, "node"); ok && len(n) > 0 {
		if h, ok := d.reg.DiscoNodeHandler(string(n)); ok {
			h(c, iq)
			return
		}
		c.Error(iq, stanza.New(stanza.ItemNotFound))
		return
	}
	c.Reply(iq, d.serviceItems())
}

// accountInfo answers for a user's bare JID (XEP-0030 §3.1 identities of accounts).
func (d *Disco) accountInfo(c module.Context, iq *module.Packet) {
	d.once.Do(d.build)
	c.Reply(iq, d.account)
}

func (d *Disco) accountItems(c module.Context, iq *module.Packet) {
	c.Reply(iq, []byte("<query xmlns='http://jabber.org/protocol/disco#items'/>"))
}

// Ver computes the XEP-0115 §5.1 verification string for identities and features.
func Ver(ids []module.Identity, features []string) string { return module.CapsVer(ids, features) }
