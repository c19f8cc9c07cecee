// Package disco implements XEP-0030: Service Discovery for the server and for accounts,
// and computes the server's XEP-0115 verification string. Features are collected from the
// other modules' registrations (an IQ handler advertises its namespace), so what is
// advertised cannot drift from what is handled.
package disco

import (
	"slices"
	"strings"
	"sync"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func init() { module.Register(new(Disco)) }

// Disco is the module.
type Disco struct {
	reg module.Registrar
	// hosts caches, per virtual host, the payloads built from one module.HostInfo: a
	// reload may replace a module's XEP-0128 form (Reconfig.InfoForm) or what a host
	// turns off, and virtual hosts added or removed at runtime replace the services
	// (module.HostWatcher); each comes with a new HostInfo, and the payloads are rebuilt
	// at the next query.
	hosts sync.Map // host → *hostCache
}

type hostCache struct {
	from     *module.HostInfo
	info     []byte // pre-serialized server disco#info payload
	capsNode string // module.CapsNode#ver (XEP-0115 §6.2)
	capsInfo []byte // info with node='capsNode'
	account  []byte // an account's disco#info payload
	items    []byte // the server's disco#items payload
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

// bookmarksCompat prefixes XEP-0402 §5.3's account features: #compat, registered by the
// private storage module, and #compat-pep, by PEP; both hold only with PEP (the other
// side of the unification) enabled.
const bookmarksCompat = "urn:xmpp:bookmarks:1#compat"

// vcardConversion is XEP-0398 §2's account feature, registered by the vcard module; it
// holds only with PEP (the other side of the conversion) enabled.
const vcardConversion = "urn:xmpp:pep-vcard-conversion:0"

// host returns the payloads of host, built once per module.HostInfo.
func (d *Disco) host(host string) *hostCache {
	hi := d.reg.HostInfo(host)
	if c, ok := d.hosts.Load(host); ok && c.(*hostCache).from == hi {
		return c.(*hostCache)
	}
	c := &hostCache{from: hi, info: serverInfo(hi.Identities, hi.Features, hi.Forms, ""),
		capsNode: module.CapsNode + "#" + hi.Ver, account: accountInfo(hi), items: serviceItems(hi.Services)}
	c.capsInfo = serverInfo(hi.Identities, hi.Features, hi.Forms, c.capsNode)
	d.hosts.Store(host, c)
	return c
}

// accountInfo is an account's disco#info payload on a host with hi.
func accountInfo(hi *module.HostInfo) []byte {
	var b xmlstream.Builder
	b.Start("query").Attr("xmlns", ns.DiscoInfo)
	b.Start("identity").Attr("category", "account").Attr("type", "registered").End()
	// XEP-0163 §6.1: an account with PEP is a pubsub/pep service with its features.
	pep := slices.Contains(hi.Identities, module.Identity{Category: "pubsub", Type: "pep"})
	if pep {
		b.Start("identity").Attr("category", "pubsub").Attr("type", "pep").End()
	}
	for _, f := range hi.Features {
		if slices.Contains(accountFeatures, f) || pep && (strings.HasPrefix(f, ns.PubSub) || strings.HasPrefix(f, bookmarksCompat) || f == vcardConversion) {
			b.Start("feature").Attr("var", f).End()
		}
	}
	b.End()
	return b.B
}

// serviceItems is the server's disco#items payload: XEP-0030 §4, the services of this
// server (MUC, pubsub, upload) are its items.
func serviceItems(svcs []module.Service) []byte {
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
	return b.B
}

// hostOf is the virtual host an IQ to the server or an account asks about: the one it
// names, or for none the sender's own.
func hostOf(iq *module.Packet) string {
	if !iq.To.IsZero() {
		return iq.To.Domain()
	}
	return iq.From.Domain()
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
	srv := d.host(hostOf(iq))
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
	c.Reply(iq, d.host(hostOf(iq)).items)
}

// accountInfo answers for a user's bare JID (XEP-0030 §3.1 identities of accounts): to
// the account itself and to those it shares its presence with; anyone else gets
// service-unavailable, as if there were no such account (XEP-0030 §8: what the account
// is, and that it exists, are the user's to show).
func (d *Disco) accountInfo(c module.Context, iq *module.Packet) {
	if user := iq.To.Bare(); !iq.From.Bare().Equal(user) {
		it, ok := c.RosterItem(user, iq.From.Bare())
		if !ok || it.Sub != store.SubFrom && it.Sub != store.SubBoth {
			c.Error(iq, stanza.New(stanza.ServiceUnavailable))
			return
		}
	}
	if q, _ := iq.Payload(); len(q.Raw()) > 0 {
		if n, ok := q.Attr("node"); ok && len(n) > 0 {
			// No node of the account's is described here: its PEP nodes answer to pubsub.
			c.Error(iq, stanza.New(stanza.ItemNotFound))
			return
		}
	}
	c.Reply(iq, d.host(hostOf(iq)).account)
}

func (d *Disco) accountItems(c module.Context, iq *module.Packet) {
	c.Reply(iq, []byte("<query xmlns='http://jabber.org/protocol/disco#items'/>"))
}

// Ver computes the XEP-0115 §5.1 verification string for identities and features.
func Ver(ids []module.Identity, features []string) string { return module.CapsVer(ids, features) }
