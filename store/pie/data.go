package pie

import (
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
)

// Namespaces of the per-module data (XEP-0227 §4.6, §4.7, §4.10, §4.11).
const (
	NSVCard        = "vcard-temp"
	NSPrivate      = "jabber:iq:private"
	NSPubsub       = "http://jabber.org/protocol/pubsub"
	NSPubsubOwner  = "http://jabber.org/protocol/pubsub#owner"
	NSDataForms    = "jabber:x:data"
	NSArchive      = "urn:xmpp:pie:0#mam"
	NSMAM          = "urn:xmpp:mam:2"
	NSForward      = "urn:xmpp:forward:0"
	nsXML          = "http://www.w3.org/XML/1998/namespace"
	nodeConfigForm = "http://jabber.org/protocol/pubsub#node_config"
)

// Node is one PEP node of a user: its configuration as the fields of a
// pubsub#node_config form, its items oldest first, and the affiliations and
// subscriptions by JID that XEP-0227 §4.10 lets an export carry.
type Node struct {
	Name          string
	Config        map[string][]string
	Items         []Item
	Affiliations  map[string]string
	Subscriptions map[string]string
}

// Item is one pubsub item; Payload is its element, standalone (it declares its
// namespace), or nil for an item without payload.
type Item struct {
	ID      string
	Payload []byte
}

// Archived is one message of a user's archive (XEP-0313) as XEP-0227 §4.11 carries it:
// the exporting server's archive id, the time it was archived and the <message/> with
// xmlns='jabber:client'.
type Archived struct {
	ID      string
	Stamp   time.Time
	Message []byte
}

// Section moves one kind of data that a module keeps in tables of its own layout
// (vCards, private XML, PEP nodes, the message archive) between the store and a User.
// Modules implement it, so that this package never learns their key layouts.
type Section interface {
	// ExportUser fills the section's fields of u (u.JID is set) from st.
	ExportUser(st store.Store, u *User) error
	// ImportUser stores the section's fields of u in st. Writing the same user again
	// leaves one copy of everything: an interrupted import can be rerun.
	ImportUser(st store.Store, u *User) error
}

// canon reads the element se from d to its end and writes it again as a standalone
// element: each element whose namespace differs from its parent's declares it, and
// namespaced attributes get prefixes of their own. So the bytes stay valid out of the
// document, whatever prefixes the exporting server used. Comments and processing
// instructions are dropped.
func canon(d *xml.Decoder, se xml.StartElement) ([]byte, error) {
	var b xmlstream.Builder
	spaces := []string{""}
	open := func(se xml.StartElement) error {
		// encoding/xml reads <p:0/> as the element "0" in p's namespace; written out
		// again it would be <0/>, which no parser takes.
		if !xmlstream.IsNCName(se.Name.Local) {
			return fmt.Errorf("pie: element name %q is not an XML name", se.Name.Local)
		}
		for _, a := range se.Attr {
			if !xmlstream.IsNCName(a.Name.Local) {
				return fmt.Errorf("pie: attribute name %q of <%s/> is not an XML name", a.Name.Local, se.Name.Local)
			}
		}
		b.Start(se.Name.Local)
		if se.Name.Space != spaces[len(spaces)-1] {
			b.Attr("xmlns", se.Name.Space)
		}
		spaces = append(spaces, se.Name.Space)
		n := 0
		for _, a := range se.Attr {
			switch {
			case a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns"):
			case a.Name.Space == "":
				b.Attr(a.Name.Local, a.Value)
			case a.Name.Space == nsXML:
				b.Attr("xml:"+a.Name.Local, a.Value)
			default:
				p := "a" + strconv.Itoa(n)
				n++
				b.Attr("xmlns:"+p, a.Name.Space).Attr(p+":"+a.Name.Local, a.Value)
			}
		}
		return nil
	}
	if err := open(se); err != nil {
		return nil, err
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := open(t); err != nil {
				return nil, err
			}
		case xml.EndElement:
			b.End()
			spaces = spaces[:len(spaces)-1]
			if b.Depth() == 0 {
				return b.B, nil
			}
		case xml.CharData:
			b.TextBytes(t)
		}
	}
}

// children calls fn for each child element of the element just started, which must
// consume it (read to its end, by Skip or a decode).
func children(d *xml.Decoder, fn func(se xml.StartElement) error) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			if err := fn(t); err != nil {
				return err
			}
		}
	}
}

func parsePrivate(d *xml.Decoder, u *User) error {
	return children(d, func(se xml.StartElement) error {
		if se.Name.Space == "" || se.Name.Space == NSPrivate {
			return d.Skip() // XEP-0049 §3 refuses unqualified and reserved fragments
		}
		b, err := canon(d, se)
		if err == nil {
			u.Private = append(u.Private, b)
		}
		return err
	})
}

// node returns u's node called name, adding it when new.
func (u *User) node(name string) *Node {
	for i := range u.PEP {
		if u.PEP[i].Name == name {
			return &u.PEP[i]
		}
	}
	u.PEP = append(u.PEP, Node{Name: name})
	return &u.PEP[len(u.PEP)-1]
}

// parsePEPOwner reads the pubsub#owner element: configurations, affiliations and
// subscriptions by node.
func parsePEPOwner(d *xml.Decoder, u *User) error {
	return children(d, func(se xml.StartElement) error {
		name := attr(se, "", "node")
		if se.Name.Space != NSPubsubOwner || name == "" {
			return d.Skip()
		}
		switch se.Name.Local {
		case "configure":
			var v struct {
				X []struct {
					Fields []struct {
						Var    string   `xml:"var,attr"`
						Values []string `xml:"value"`
					} `xml:"field"`
				} `xml:"jabber:x:data x"`
			}
			if err := d.DecodeElement(&v, &se); err != nil {
				return err
			}
			n := u.node(name)
			if n.Config == nil {
				n.Config = map[string][]string{}
			}
			for _, x := range v.X {
				for _, f := range x.Fields {
					if f.Var != "" && f.Var != "FORM_TYPE" {
						n.Config[f.Var] = f.Values
					}
				}
			}
		case "affiliations", "subscriptions":
			var v struct {
				Entries []struct {
					JID          string `xml:"jid,attr"`
					Affiliation  string `xml:"affiliation,attr"`
					Subscription string `xml:"subscription,attr"`
				} `xml:",any"`
			}
			if err := d.DecodeElement(&v, &se); err != nil {
				return err
			}
			n := u.node(name)
			for _, e := range v.Entries {
				if e.JID == "" {
					continue
				}
				if se.Name.Local == "affiliations" && e.Affiliation != "" {
					if n.Affiliations == nil {
						n.Affiliations = map[string]string{}
					}
					n.Affiliations[e.JID] = e.Affiliation
				} else if se.Name.Local == "subscriptions" && e.Subscription != "" {
					if n.Subscriptions == nil {
						n.Subscriptions = map[string]string{}
					}
					n.Subscriptions[e.JID] = e.Subscription
				}
			}
		default:
			return d.Skip()
		}
		return nil
	})
}

// parsePEPItems reads the pubsub element: the items of each node, oldest first.
func parsePEPItems(d *xml.Decoder, u *User) error {
	return children(d, func(se xml.StartElement) error {
		name := attr(se, "", "node")
		if se.Name.Space != NSPubsub || se.Name.Local != "items" || name == "" {
			return d.Skip()
		}
		n := u.node(name)
		return children(d, func(ie xml.StartElement) error {
			if ie.Name.Space != NSPubsub || ie.Name.Local != "item" {
				return d.Skip()
			}
			it := Item{ID: attr(ie, "", "id")}
			err := children(d, func(pe xml.StartElement) error {
				if it.Payload != nil {
					return d.Skip() // one payload per item (XEP-0060 §7.1.3.5)
				}
				var err error
				it.Payload, err = canon(d, pe)
				return err
			})
			if err != nil {
				return err
			}
			if it.ID == "" {
				return errors.New("pubsub item without id in node " + name)
			}
			n.Items = append(n.Items, it)
			return nil
		})
	})
}

// parseArchive reads the XEP-0227 §4.11 archive: <result/> elements, oldest first.
func parseArchive(d *xml.Decoder, u *User) error {
	return children(d, func(se xml.StartElement) error {
		if se.Name.Space != NSMAM || se.Name.Local != "result" {
			return d.Skip()
		}
		a := Archived{ID: attr(se, "", "id")}
		err := children(d, func(fe xml.StartElement) error {
			if fe.Name.Space != NSForward || fe.Name.Local != "forwarded" {
				return d.Skip()
			}
			return children(d, func(ce xml.StartElement) error {
				switch {
				case ce.Name.Space == NSDelay && ce.Name.Local == "delay":
					if st, err := time.Parse(time.RFC3339Nano, attr(ce, "", "stamp")); err == nil {
						a.Stamp = st.UTC()
					}
					return d.Skip()
				case ce.Name.Space == NSClient && ce.Name.Local == "message" && a.Message == nil:
					var err error
					a.Message, err = canon(d, ce)
					return err
				}
				return d.Skip()
			})
		})
		if err != nil {
			return err
		}
		if a.Message == nil || a.Stamp.IsZero() {
			return errors.New("archived message " + strconv.Quote(a.ID) + " without a message or a stamp")
		}
		u.Archive = append(u.Archive, a)
		return nil
	})
}

// writeData appends the per-module data of u to the open <user/> element.
func writeData(b *xmlstream.Builder, u *User) {
	for _, j := range u.Pending {
		b.Start("presence").Attr("xmlns", NSClient).Attr("type", "subscribe").Attr("from", j).End()
	}
	if u.VCard != nil {
		b.Raw(u.VCard)
	}
	writePrivacy(b, u)
	if len(u.Private) > 0 {
		b.Start("query").Attr("xmlns", NSPrivate)
		for _, p := range u.Private {
			b.Raw(p)
		}
		b.End()
	}
	if len(u.PEP) > 0 {
		b.Start("pubsub").Attr("xmlns", NSPubsubOwner)
		for _, n := range u.PEP {
			b.Start("configure").Attr("node", n.Name)
			b.Start("x").Attr("xmlns", NSDataForms).Attr("type", "form")
			b.Start("field").Attr("var", "FORM_TYPE").Attr("type", "hidden").Start("value").Text(nodeConfigForm).End().End()
			for _, k := range sortedKeys(n.Config) {
				b.Start("field").Attr("var", k)
				for _, v := range n.Config[k] {
					b.Start("value").Text(v).End()
				}
				b.End()
			}
			b.End().End()
			if len(n.Affiliations) > 0 {
				b.Start("affiliations").Attr("node", n.Name)
				for _, j := range sortedKeys(n.Affiliations) {
					b.Start("affiliation").Attr("jid", j).Attr("affiliation", n.Affiliations[j]).End()
				}
				b.End()
			}
			if len(n.Subscriptions) > 0 {
				b.Start("subscriptions").Attr("node", n.Name)
				for _, j := range sortedKeys(n.Subscriptions) {
					b.Start("subscription").Attr("jid", j).Attr("subscription", n.Subscriptions[j]).End()
				}
				b.End()
			}
		}
		b.End()
		b.Start("pubsub").Attr("xmlns", NSPubsub)
		for _, n := range u.PEP {
			b.Start("items").Attr("node", n.Name)
			for _, it := range n.Items {
				b.Start("item").Attr("id", it.ID)
				if it.Payload != nil {
					b.Raw(it.Payload)
				}
				b.End()
			}
			b.End()
		}
		b.End()
	}
	if len(u.Archive) > 0 {
		b.Start("archive").Attr("xmlns", NSArchive)
		for _, a := range u.Archive {
			b.Start("result").Attr("xmlns", NSMAM).Attr("id", a.ID)
			b.Start("forwarded").Attr("xmlns", NSForward)
			b.Start("delay").Attr("xmlns", NSDelay).Attr("stamp", a.Stamp.UTC().Format("2006-01-02T15:04:05.000Z")).End()
			b.Raw(a.Message)
			b.End().End()
		}
		b.End()
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// pendingIn marks the roster items of u that the subscription requests from (XEP-0227
// §4.9) ask for, adding an item with no subscription for a requester not on the roster.
func (u *User) pendingIn(from []string) {
	for _, f := range from {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		found := false
		for i := range u.Roster {
			if u.Roster[i].JID == f {
				u.Roster[i].PendingIn, found = true, true
			}
		}
		if !found {
			u.Roster = append(u.Roster, store.RosterItem{JID: f, PendingIn: true})
		}
	}
}
