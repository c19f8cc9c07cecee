package pie

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"

	"github.com/vireo-im/vireo/xmlstream"
)

// NSPrivacy is XEP-0016's namespace, in which XEP-0227 §4.7 carries a user's privacy
// lists.
const NSPrivacy = "jabber:iq:privacy"

// BlockList is the name of the privacy list an export writes a user's block list
// (XEP-0191) as, and sets as the default: the name ejabberd's mod_blocking gives the
// list it keeps blocks in, so that ejabberd's import makes them blocks again.
const BlockList = "Blocked contacts"

// maxPrivacyItems bounds the items read from one user's privacy lists.
const maxPrivacyItems = 10000

// privacyItem is one <item/> of a privacy list, with what the block list needs of it.
type privacyItem struct {
	order        int
	typ, value   string
	deny, allKin bool // action='deny'; no child element: every kind of stanza
}

// parsePrivacy reads §4.7's <query xmlns='jabber:iq:privacy'/> into u.Blocked: the
// block list a server with XEP-0191 alone keeps of the user's privacy lists. That is
// the default list's items that deny one JID every kind of stanza (what a block is in
// a server that keeps blocks in privacy lists, as ejabberd does), unless an item before
// them in the list's order allows that JID. What else privacy lists can say (by group or subscription, only some
// kinds of stanza, lists other than the default) has no block list equivalent and is
// not imported.
func parsePrivacy(d *xml.Decoder, u *User) error {
	lists := map[string][]privacyItem{}
	def := ""
	n := 0
	err := children(d, func(se xml.StartElement) error {
		switch se.Name.Local {
		case "default":
			def = attr(se, "", "name")
		case "list":
			name := attr(se, "", "name")
			return children(d, func(it xml.StartElement) error {
				if it.Name.Local != "item" {
					return d.Skip()
				}
				if n++; n > maxPrivacyItems {
					return fmt.Errorf("more than %d privacy list items", maxPrivacyItems)
				}
				item, err := parsePrivacyItem(d, it)
				lists[name] = append(lists[name], item)
				return err
			})
		}
		return d.Skip()
	})
	if err != nil {
		return err
	}
	u.Blocked = append(u.Blocked, blocked(lists[def])...)
	return nil
}

// parsePrivacyItem reads the <item/> se to its end.
func parsePrivacyItem(d *xml.Decoder, se xml.StartElement) (privacyItem, error) {
	order, err := strconv.Atoi(attr(se, "", "order"))
	if err != nil || order < 0 {
		order = 1 << 30 // XEP-0016 requires it; without, last
	}
	it := privacyItem{order: order, typ: attr(se, "", "type"), value: attr(se, "", "value"), deny: attr(se, "", "action") == "deny", allKin: true}
	// Children (<message/>, <iq/>, <presence-in/>, <presence-out/>) narrow the item to
	// some kinds of stanza.
	err = children(d, func(xml.StartElement) error {
		it.allKin = false
		return d.Skip()
	})
	return it, err
}

// blocked returns the JIDs items block whole, in the list's order.
func blocked(items []privacyItem) []string {
	sort.SliceStable(items, func(a, b int) bool { return items[a].order < items[b].order })
	allowed := map[string]bool{}
	seen := map[string]bool{}
	var out []string
	for _, it := range items {
		if it.typ != "jid" || it.value == "" {
			continue
		}
		switch {
		case !it.deny:
			allowed[it.value] = true
		case it.allKin && !allowed[it.value] && !seen[it.value]:
			seen[it.value] = true
			out = append(out, it.value)
		}
	}
	return out
}

// writePrivacy writes u's block list as the default privacy list BlockList: one item
// per JID, denying every kind of stanza.
func writePrivacy(b *xmlstream.Builder, u *User) {
	if len(u.Blocked) == 0 {
		return
	}
	b.Start("query").Attr("xmlns", NSPrivacy)
	b.Start("list").Attr("name", BlockList)
	for i, j := range u.Blocked {
		b.Start("item").Attr("type", "jid").Attr("value", j).Attr("action", "deny").Attr("order", strconv.Itoa(i+1)).End()
	}
	b.End()
	b.Start("default").Attr("name", BlockList).End()
	b.End()
}
