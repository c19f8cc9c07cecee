package pubsub

import (
	"strconv"

	"github.com/vireo-im/vireo/modules/rsm"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Namespaces (XEP-0060).
const (
	NS       = ns.PubSub
	NSOwner  = ns.PubSub + "#owner"
	NSEvent  = ns.PubSub + "#event"
	NSErrors = ns.PubSub + "#errors"
)

// Op is the action of a pubsub request.
type Op uint8

// Operations.
const (
	OpPublish Op = iota + 1
	OpItems
	OpRetract
	OpCreate
	OpSubscribe
	OpUnsubscribe
	OpConfigureGet
	OpConfigureSet
	OpDefault
	OpDelete
	OpPurge
	OpSubscriptions      // a user's own subscriptions (§5.6)
	OpAffiliations       // a user's own affiliations (§5.7)
	OpOwnerSubscriptions // get or set a node's subscriptions (§8.8)
	OpOwnerAffiliations  // get or set a node's affiliations (§8.9)
	OpOptions            // get a subscription's options (§6.3.2)
	OpOptionsSet         // set them (§6.3.5)
)

// Entry is one <subscription/> or <affiliation/> of an owner's set request: Value is the
// subscription state or the affiliation.
type Entry struct{ JID, Value string }

// maxEntries bounds the entries of one owner's set request.
const maxEntries = 256

// Request is a parsed <pubsub/> or <pubsub xmlns='…#owner'/> request. Its byte slices
// (Payload) view the IQ and live as long as it.
type Request struct {
	Op       Op
	Node     string
	ItemID   string   // publish: the item's id ("" when the server picks one)
	Payload  []byte   // publish: the item's single payload element
	IDs      []string // items: the ids asked for; retract: the ids to remove
	MaxItems int      // items: max_items (0: all)
	// RSM is the XEP-0059 <set/> of an items request (XEP-0060 §6.5.4), rsm.None without.
	RSM     rsm.Request
	Notify  *bool   // retract: the notify attribute when present
	Options Form    // publish-options, create's configure, the owner configure form, or subscription options
	JID     string  // subscribe, unsubscribe
	Entries []Entry // owner subscriptions and affiliations set
}

// Err is a stanza error with condition c and, unless app is "", the XEP-0060
// application-specific condition app (§7-§8 error tables).
func Err(c stanza.Condition, app string) *stanza.Error {
	e := stanza.New(c)
	if app != "" {
		e.AppCondition = []byte("<" + app + " xmlns='" + NSErrors + "'/>")
	}
	return e
}

func attr(e xmlstream.Element, name string, max int) (string, *stanza.Error) {
	v, _ := e.AppendAttr(nil, name)
	if len(v) > max {
		return "", BadRequest(name + " too long")
	}
	return string(v), nil
}

// ParseRequest reads the payload of a pubsub IQ (type set when set) in either namespace.
// It checks only the request's shape (XEP-0060 §6-§8 error cases of a malformed request);
// authorization and node state are the handler's.
func ParseRequest(q xmlstream.Element, set bool) (Request, *stanza.Error) {
	r := Request{RSM: rsm.None}
	owner := string(q.NS()) == NSOwner
	if !owner && string(q.NS()) != NS || string(q.Name()) != "pubsub" {
		return r, BadRequest("not a pubsub request")
	}
	var action xmlstream.Element
	var options, configure, subOpts xmlstream.Element
	hasAction, hasOptions, hasConfigure, hasSubOpts := false, false, false, false
	it := q.Children()
	hasSet := false
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		if !owner && string(e.NS()) == rsm.NS && string(e.Name()) == "set" {
			var se *stanza.Error
			if r.RSM, se = rsm.ParseSet(e); se != nil {
				return r, se
			}
			hasSet = true
			continue
		}
		if string(e.NS()) != string(q.NS()) {
			continue
		}
		switch name := string(e.Name()); {
		case name == "publish-options" && !owner:
			if hasOptions {
				return r, BadRequest("two publish-options")
			}
			options, hasOptions = e, true
		case name == "configure" && !owner:
			configure, hasConfigure = e, true
		case name == "options" && !owner:
			// An options request (§6.3), or the options of a subscribe (§6.3.7).
			if hasSubOpts {
				return r, BadRequest("two options")
			}
			subOpts, hasSubOpts = e, true
		default:
			if hasAction {
				return r, BadRequest("more than one pubsub action")
			}
			action, hasAction = e, true
		}
	}
	if !hasAction && hasSubOpts {
		action, hasAction, hasSubOpts = subOpts, true, false
	}
	if !hasAction {
		if hasConfigure {
			return r, Err(stanza.BadRequest, "nodeid-required")
		}
		return r, BadRequest("no pubsub action")
	}
	var e *stanza.Error
	if r.Node, e = attr(action, "node", maxNodeNameBytes); e != nil {
		return r, e
	}
	name := string(action.Name())
	switch {
	case owner && name == "configure":
		r.Op = OpConfigureGet
		if set {
			r.Op = OpConfigureSet
			x, ok := action.Child(ns.DataForms, "x")
			if !ok {
				return r, BadRequest("configure without a data form")
			}
			if r.Options, e = ParseForm(x); e != nil {
				return r, e
			}
		}
	case owner && name == "default":
		r.Op = OpDefault
	case owner && name == "delete" && set:
		r.Op = OpDelete
	case owner && name == "purge" && set:
		r.Op = OpPurge
	case owner && (name == "subscriptions" || name == "affiliations"):
		r.Op = OpOwnerSubscriptions
		attrName := "subscription"
		if name == "affiliations" {
			r.Op, attrName = OpOwnerAffiliations, "affiliation"
		}
		if set {
			if r.Entries, e = entries(action, attrName); e != nil {
				return r, e
			}
		}
	case !owner && (name == "subscriptions" || name == "affiliations") && !set:
		r.Op = OpSubscriptions
		if name == "affiliations" {
			r.Op = OpAffiliations
		}
	case !owner && name == "publish" && set:
		r.Op = OpPublish
		if err := r.parsePublish(action); err != nil {
			return r, err
		}
		if hasOptions {
			if x, ok := options.Child(ns.DataForms, "x"); ok {
				if r.Options, e = ParseForm(x); e != nil {
					return r, e
				}
				if t, ok := r.Options.Value(fieldFormType); ok && t != publishOptionsFormType {
					return r, BadRequest("publish-options form has the wrong FORM_TYPE")
				}
			}
		}
	case !owner && name == "items" && !set:
		r.Op = OpItems
		if m, ok := action.Attr("max_items"); ok {
			n, err := strconv.Atoi(string(m))
			if err != nil || n < 1 || n > maxRequestedMaxItems {
				return r, BadRequest("bad max_items")
			}
			r.MaxItems = n
		}
		if r.IDs, e = itemIDs(action, false); e != nil {
			return r, e
		}
		if hasSet && len(r.IDs) > 0 {
			return r, BadRequest("RSM cannot page items asked for by id")
		}
	case !owner && name == "retract" && set:
		r.Op = OpRetract
		if v, ok := action.Attr("notify"); ok {
			b, ok := parseBool(string(v))
			if !ok {
				return r, BadRequest("bad notify")
			}
			r.Notify = &b
		}
		if r.IDs, e = itemIDs(action, true); e != nil {
			return r, e
		}
		if len(r.IDs) == 0 {
			return r, Err(stanza.BadRequest, "item-required")
		}
	case !owner && name == "create" && set:
		r.Op = OpCreate
		if hasConfigure {
			if x, ok := configure.Child(ns.DataForms, "x"); ok {
				if r.Options, e = ParseForm(x); e != nil {
					return r, e
				}
			}
		}
	case !owner && (name == "subscribe" || name == "unsubscribe") && set:
		r.Op = OpSubscribe
		if name == "unsubscribe" {
			r.Op = OpUnsubscribe
		}
		if r.JID, e = attr(action, "jid", 3071); e != nil {
			return r, e
		}
		if r.JID == "" {
			return r, Err(stanza.BadRequest, "jid-required")
		}
		if hasSubOpts && r.Op == OpSubscribe {
			if x, ok := subOpts.Child(ns.DataForms, "x"); ok {
				if r.Options, e = ParseForm(x); e != nil {
					return r, e
				}
			}
			hasSubOpts = false
		}
	case !owner && name == "options":
		r.Op = OpOptions
		if set {
			r.Op = OpOptionsSet
			x, ok := action.Child(ns.DataForms, "x")
			if !ok {
				return r, Err(stanza.BadRequest, "invalid-options")
			}
			if r.Options, e = ParseForm(x); e != nil {
				return r, e
			}
		}
		if r.JID, e = attr(action, "jid", 3071); e != nil {
			return r, e
		}
		if r.JID == "" {
			return r, Err(stanza.BadRequest, "jid-required")
		}
	default:
		return r, Err(stanza.FeatureNotImplemented, "unsupported")
	}
	if hasSubOpts {
		return r, BadRequest("options beside " + name)
	}
	switch r.Op {
	case OpDefault, OpCreate, OpSubscriptions, OpAffiliations:
		return r, nil // a create without node asks for an instant node (§8.1.2)
	}
	if r.Node == "" {
		return r, Err(stanza.BadRequest, "nodeid-required")
	}
	return r, nil
}

func (r *Request) parsePublish(p xmlstream.Element) *stanza.Error {
	it := p.Children()
	item, ok := it.Next()
	if !ok || string(item.Name()) != "item" || string(item.NS()) != NS {
		return Err(stanza.BadRequest, "item-required")
	}
	if _, more := it.Next(); more {
		return Err(stanza.BadRequest, "invalid-payload")
	}
	var e *stanza.Error
	if r.ItemID, e = attr(item, "id", maxItemIDBytes); e != nil {
		return e
	}
	pit := item.Children()
	payload, ok := pit.Next()
	if !ok {
		return Err(stanza.BadRequest, "payload-required")
	}
	if _, more := pit.Next(); more {
		return Err(stanza.BadRequest, "invalid-payload")
	}
	// Stored and sent to others apart from the request: with the namespaces it takes
	// from the request's elements declared on it.
	r.Payload = payload.Standalone(nil)
	return nil
}

// itemIDs reads the id of each <item/> child; every item needs one when required.
func itemIDs(e xmlstream.Element, required bool) ([]string, *stanza.Error) {
	var ids []string
	it := e.Children()
	for c, ok := it.Next(); ok; c, ok = it.Next() {
		if string(c.Name()) != "item" {
			continue
		}
		id, err := attr(c, "id", maxItemIDBytes)
		if err != nil {
			return nil, err
		}
		if id == "" {
			if required {
				return nil, Err(stanza.BadRequest, "item-required")
			}
			continue
		}
		if len(ids) >= maxRequestedIDs {
			return nil, BadRequest("too many items")
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// entries reads the <subscription/> or <affiliation/> children of an owner's set request
// (XEP-0060 §8.8.2, §8.9.2); each needs a jid and a value.
func entries(e xmlstream.Element, attrName string) ([]Entry, *stanza.Error) {
	var out []Entry
	it := e.Children()
	for c, ok := it.Next(); ok; c, ok = it.Next() {
		if string(c.Name()) != attrName || string(c.NS()) != NSOwner {
			continue
		}
		j, err := attr(c, "jid", 3071)
		if err != nil {
			return nil, err
		}
		v, err := attr(c, attrName, 32)
		if err != nil {
			return nil, err
		}
		if j == "" || v == "" {
			return nil, BadRequest(attrName + " needs jid and " + attrName)
		}
		if len(out) >= maxEntries {
			return nil, BadRequest("too many entries")
		}
		out = append(out, Entry{j, v})
	}
	return out, nil
}
