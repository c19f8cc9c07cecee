package pubsub

import (
	"strconv"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Access models (XEP-0060 §4.5).
const (
	AccessPresence  = "presence"
	AccessOpen      = "open"
	AccessRoster    = "roster"
	AccessWhitelist = "whitelist"
	AccessAuthorize = "authorize"
)

// Policy is what a service allows in node configurations.
type Policy struct {
	MaxItems int      // the highest pubsub#max_items ("max" means this)
	Access   []string // the access models a node may have, the first is the default
}

// PEPAccess are the access models of PEP nodes (XEP-0163 §3 and §4.2: presence default).
var PEPAccess = []string{AccessPresence, AccessOpen, AccessRoster, AccessWhitelist}

func (p Policy) allows(model string) bool {
	for _, a := range p.Access {
		if a == model {
			return true
		}
	}
	return false
}

// send_last_published_item values (XEP-0060 §12.6 pubsub#send_last_published_item).
const (
	SendNever              = "never"
	SendOnSub              = "on_sub"
	SendOnSubAndPresence   = "on_sub_and_presence"
	nsNodeConfig           = "http://jabber.org/protocol/pubsub#node_config"
	nsPublishOptions       = "http://jabber.org/protocol/pubsub#publish-options"
	fieldPersist           = "pubsub#persist_items"
	fieldMaxItems          = "pubsub#max_items"
	fieldAccess            = "pubsub#access_model"
	fieldSendLast          = "pubsub#send_last_published_item"
	fieldNotifyRetract     = "pubsub#notify_retract"
	fieldTitle             = "pubsub#title"
	fieldDeliverPayloads   = "pubsub#deliver_payloads"
	fieldDeliverNotify     = "pubsub#deliver_notifications"
	fieldRosterGroups      = "pubsub#roster_groups_allowed"
	fieldNotifyDelete      = "pubsub#notify_delete"
	fieldPresenceDelivery  = "pubsub#presence_based_delivery"
	fieldFormType          = "FORM_TYPE"
	defaultNodeMaxItems    = 1 // PEP nodes keep the last item unless configured otherwise
	maxTitle               = 256
	maxFormFields          = 64
	maxFormValuesPerField  = 16
	maxFormValueBytes      = 1024
	maxNodeNameBytes       = 1024
	maxItemIDBytes         = 1024
	maxRequestedIDs        = 256
	maxRequestedMaxItems   = 1 << 20
	publishOptionsFormType = nsPublishOptions
)

// NodeConfig is a node's configuration (XEP-0060 §8.2) as stored.
type NodeConfig struct {
	Persist       bool   `json:"persist"`
	MaxItems      int    `json:"max_items"`
	Access        string `json:"access"`
	SendLast      string `json:"send_last"`
	NotifyRetract bool   `json:"notify_retract"`
	Title         string `json:"title,omitempty"`
}

// DefaultConfig is the configuration of a new node under p: one persistent item, p's
// first access model, the last item sent on subscription and presence.
func DefaultConfig(p Policy) NodeConfig {
	return NodeConfig{Persist: true, MaxItems: defaultNodeMaxItems, Access: p.Access[0],
		SendLast: SendOnSubAndPresence, NotifyRetract: true}
}

// Form is a submitted XEP-0004 data form: its fields' values by var.
type Form map[string][]string

// Value returns the first value of field v and whether the form has it.
func (f Form) Value(v string) (string, bool) {
	vs, ok := f[v]
	if !ok {
		return "", false
	}
	if len(vs) == 0 {
		return "", true
	}
	return vs[0], true
}

func parseBool(s string) (bool, bool) {
	switch s {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

// parseMaxItems reads pubsub#max_items: a positive number or "max" (XEP-0060 §17 v1.15),
// which is the server's cap.
func parseMaxItems(s string, limit int) (int, *stanza.Error) {
	if s == "max" {
		return limit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, badOption("pubsub#max_items must be a positive number or max")
	}
	if n > limit {
		e := stanza.New(stanza.PolicyViolationCond)
		e.Text = "pubsub#max_items is above this server's limit of " + strconv.Itoa(limit)
		return 0, e
	}
	return n, nil
}

func badOption(text string) *stanza.Error {
	e := stanza.New(stanza.NotAcceptable)
	e.Text = text
	return e
}

// Apply changes c by the fields of a configure (or create or publish-options) form within
// p. Unknown fields, and known ones at the only value this server supports, are accepted
// and ignored. On error c is unchanged.
func (c *NodeConfig) Apply(f Form, p Policy) *stanza.Error {
	limit := p.MaxItems
	n := *c
	for v, vs := range f {
		s := ""
		if len(vs) > 0 {
			s = vs[0]
		}
		switch v {
		case fieldPersist:
			b, ok := parseBool(s)
			if !ok {
				return badOption("pubsub#persist_items must be a boolean")
			}
			n.Persist = b
		case fieldMaxItems:
			m, e := parseMaxItems(s, limit)
			if e != nil {
				return e
			}
			n.MaxItems = m
		case fieldAccess:
			if !p.allows(s) {
				return badOption("unsupported pubsub#access_model")
			}
			n.Access = s
		case fieldSendLast:
			switch s {
			case SendNever, SendOnSub, SendOnSubAndPresence:
				n.SendLast = s
			default:
				return badOption("unsupported pubsub#send_last_published_item")
			}
		case fieldNotifyRetract:
			b, ok := parseBool(s)
			if !ok {
				return badOption("pubsub#notify_retract must be a boolean")
			}
			n.NotifyRetract = b
		case fieldTitle:
			if len(s) > maxTitle {
				return badOption("pubsub#title is too long")
			}
			n.Title = s
		case fieldDeliverPayloads, fieldDeliverNotify:
			// Always on: PEP notifications carry their payloads.
			if b, ok := parseBool(s); !ok || !b {
				return badOption(v + " can only be true here")
			}
		}
	}
	*c = n
	return nil
}

// Matches reports whether c already has every option of a publish-options form (XEP-0223
// §3: otherwise the publish fails with precondition-not-met). Fields c does not know are
// ignored, like Apply ignores them.
func (c NodeConfig) Matches(f Form, p Policy) bool {
	want := c
	if e := want.Apply(f, p); e != nil {
		return false
	}
	return want == c
}

// AppendForm writes c as the pubsub#node_config form of a configure result (XEP-0060
// §8.2.1), values escaped by the builder.
func (c NodeConfig) AppendForm(b *xmlstream.Builder, p Policy) {
	b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "form")
	field(b, fieldFormType, "hidden", "", nsNodeConfig)
	field(b, fieldTitle, "text-single", "A friendly name for the node", c.Title)
	field(b, fieldPersist, "boolean", "Persist items to storage", boolStr(c.Persist))
	field(b, fieldMaxItems, "text-single", "Max # of items to persist", strconv.Itoa(c.MaxItems))
	field(b, fieldAccess, "list-single", "Specify the subscriber model", c.Access, p.Access...)
	field(b, fieldSendLast, "list-single", "When to send the last published item", c.SendLast,
		SendNever, SendOnSub, SendOnSubAndPresence)
	field(b, fieldNotifyRetract, "boolean", "Notify subscribers when items are removed from the node", boolStr(c.NotifyRetract))
	field(b, fieldDeliverNotify, "boolean", "Deliver event notifications", "1")
	field(b, fieldDeliverPayloads, "boolean", "Deliver payloads with event notifications", "1")
	b.End()
}

func field(b *xmlstream.Builder, v, typ, label, value string, options ...string) {
	b.Start("field").Attr("var", v).Attr("type", typ)
	if label != "" {
		b.Attr("label", label)
	}
	b.Start("value").Text(value).End()
	for _, o := range options {
		b.Start("option").Start("value").Text(o).End().End()
	}
	b.End()
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// ParseForm reads a submitted data form (XEP-0004 §3.3), bounded in fields and values.
func ParseForm(x xmlstream.Element) (Form, *stanza.Error) {
	if typ, _ := x.Attr("type"); string(typ) != "submit" && string(typ) != "" {
		if string(typ) == "cancel" {
			return Form{}, nil
		}
		return nil, BadRequest("data form must be of type submit")
	}
	f := Form{}
	it := x.Children()
	for fe, ok := it.Next(); ok; fe, ok = it.Next() {
		if string(fe.Name()) != "field" || string(fe.NS()) != ns.DataForms {
			continue
		}
		v, ok := fe.AppendAttr(nil, "var")
		if !ok || len(v) == 0 {
			continue
		}
		if len(f) >= maxFormFields {
			return nil, BadRequest("too many form fields")
		}
		var vals []string
		vit := fe.Children()
		for ve, ok := vit.Next(); ok; ve, ok = vit.Next() {
			if string(ve.Name()) != "value" {
				continue
			}
			t := ve.AppendText(nil)
			if len(t) > maxFormValueBytes || len(vals) >= maxFormValuesPerField {
				return nil, BadRequest("form value too long")
			}
			vals = append(vals, string(t))
		}
		f[string(v)] = vals
	}
	return f, nil
}

// BadRequest is a bad-request error with text.
func BadRequest(text string) *stanza.Error {
	e := stanza.New(stanza.BadRequest)
	e.Text = text
	return e
}

// Fields returns c as the fields of a pubsub#node_config form, for an export (XEP-0227
// §4.10) that another server reads back with its own field names.
func (c NodeConfig) Fields() map[string][]string {
	f := map[string][]string{
		fieldPersist:       {boolStr(c.Persist)},
		fieldMaxItems:      {strconv.Itoa(c.MaxItems)},
		fieldAccess:        {c.Access},
		fieldSendLast:      {c.SendLast},
		fieldNotifyRetract: {boolStr(c.NotifyRetract)},
	}
	if c.Title != "" {
		f[fieldTitle] = []string{c.Title}
	}
	return f
}

// ApplyEach is Apply field by field, skipping each field c cannot take (a value this
// server does not support, an empty one) instead of refusing the form: an import of
// another server's nodes (XEP-0227 §4.10) keeps what it can.
func (c *NodeConfig) ApplyEach(f Form, p Policy) {
	for v, vs := range f {
		if len(vs) == 0 {
			continue
		}
		c.Apply(Form{v: vs}, p)
	}
}
