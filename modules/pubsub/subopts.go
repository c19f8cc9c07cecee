package pubsub

import (
	"bytes"
	"errors"
	"strings"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Subscription options (XEP-0060 §6.3): a subscriber may stop the notifications of one
// subscription without leaving it (pubsub#deliver), say, while it reads the node by
// polling. The other options of §16.4.2 (digests, bodies, presence filters, expiry) are not
// offered, so the form lists only what is honoured.

const (
	subscribeOptionsFormType = NS + "#subscribe_options"
	fieldDeliver             = "pubsub#deliver"
	// optsSep parts a stored subscription's state from its options; optNoDeliver is the
	// option "pubsub#deliver = false". A subscription without options is stored as it
	// was before options existed.
	optsSep      = 0
	optNoDeliver = "nodeliver"
)

// SubOptions are the options of one subscription.
type SubOptions struct {
	NoDeliver bool // pubsub#deliver false: no notifications
}

// ParseSubOptions reads a submitted pubsub#subscribe_options form: a field the service
// does not offer, or a bad value, is invalid-options (§6.3.5).
func ParseSubOptions(f Form, cur SubOptions) (SubOptions, *stanza.Error) {
	if t, ok := f.Value(fieldFormType); ok && t != subscribeOptionsFormType {
		return cur, Err(stanza.BadRequest, "invalid-options")
	}
	for k := range f {
		switch k {
		case fieldFormType:
		case fieldDeliver:
			v, _ := f.Value(k)
			b, ok := parseBool(v)
			if !ok {
				return cur, Err(stanza.BadRequest, "invalid-options")
			}
			cur.NoDeliver = !b
		default:
			return cur, Err(stanza.BadRequest, "invalid-options")
		}
	}
	return cur, nil
}

// OptionsReply is the answer to an options request (§6.3.2): the form with o's values.
func OptionsReply(node, j string, o SubOptions) []byte {
	var b xmlstream.Builder
	b.Start("pubsub").Attr("xmlns", NS).Start("options").Attr("node", node).Attr("jid", j)
	b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", "form")
	field(&b, fieldFormType, "hidden", "", subscribeOptionsFormType)
	field(&b, fieldDeliver, "boolean", "Enable delivery?", boolStr(!o.NoDeliver))
	b.End().End().End()
	return b.B
}

// splitSub parts a stored subscription value into its state and options.
func splitSub(v []byte) (string, SubOptions) {
	var o SubOptions
	if i := bytes.IndexByte(v, optsSep); i >= 0 {
		for _, opt := range strings.Split(string(v[i+1:]), ",") {
			o.NoDeliver = o.NoDeliver || opt == optNoDeliver
		}
		v = v[:i]
	}
	if len(v) == 0 {
		return SubSubscribed, o
	}
	return string(v), o
}

// joinSub is the stored value of a subscription in state with options o.
func joinSub(state string, o SubOptions) []byte {
	var v []byte
	if state != SubSubscribed {
		v = []byte(state)
	}
	if o.NoDeliver {
		v = append(append(v, optsSep), optNoDeliver...)
	}
	return v
}

// SubOptions returns j's subscription state and options (SubNone without a subscription).
func (n Nodes) SubOptions(owner, node, j string) (string, SubOptions, error) {
	v, err := n.T.Get(append(subsPrefix(owner, node), j...))
	if errors.Is(err, store.ErrNotFound) {
		return SubNone, SubOptions{}, nil
	}
	if err != nil {
		return SubNone, SubOptions{}, err
	}
	st, o := splitSub(v)
	return st, o, nil
}

// SetSubOptions sets the options of j's subscription, which exists in state.
func (n Nodes) SetSubOptions(owner, node, j, state string, o SubOptions) error {
	return n.T.Set(append(subsPrefix(owner, node), j...), joinSub(state, o))
}

// subscriptionReplyOpts is SubscriptionReply with <subscribe-options/> (§6.1.6): this
// service takes options for the subscription.
func subscriptionReplyOpts(node, j, state string) []byte {
	var b xmlstream.Builder
	b.Start("pubsub").Attr("xmlns", NS).Start("subscription").Attr("node", node).
		Attr("jid", j).Attr("subscription", state).Start("subscribe-options").End().End().End()
	return b.B
}

// options answers a subscription options request (§6.3): the subscriber, or an owner of
// the node, reads or sets the options of an existing subscription.
func (s *service) options(c module.Context, p *module.Packet, r Request, aff string) {
	j, err := jid.Parse(r.JID)
	if err != nil {
		c.Error(p, stanza.New(stanza.JIDMalformed))
		return
	}
	if !j.Bare().Equal(p.From.Bare()) && aff != AffOwner {
		c.Error(p, forbidden("only the subscriber or an owner may do this")) // §6.3.4.1
		return
	}
	st, o, err := s.m.nodes.SubOptions(s.domain, r.Node, j.String())
	if err != nil {
		s.fail(c, p, err)
		return
	}
	if st == SubNone {
		c.Error(p, Err(stanza.UnexpectedRequest, "not-subscribed")) // §6.3.4.2
		return
	}
	if r.Op == OpOptions {
		c.Reply(p, OptionsReply(r.Node, j.String(), o))
		return
	}
	o, e := ParseSubOptions(r.Options, o)
	if e != nil {
		c.Error(p, e)
		return
	}
	if err := s.m.nodes.SetSubOptions(s.domain, r.Node, j.String(), st, o); err != nil {
		s.fail(c, p, err)
		return
	}
	c.Reply(p, nil)
}
