package pep

import (
	"fmt"

	"github.com/vireo-im/vireo/modules/pubsub"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pie"
)

var _ pie.Section = (*Mod)(nil)

// ExportUser implements pie.Section: every node of the user's PEP service with its
// configuration, items and subscriptions (PEP nodes have no affiliations but the owner's).
func (*Mod) ExportUser(st store.Store, u *pie.User) error {
	nodes := pubsub.Nodes{T: st.Table("pep")}
	var names []string
	var cfgs []pubsub.NodeConfig
	err := nodes.List(u.JID, func(node string, c pubsub.NodeConfig) bool {
		names, cfgs = append(names, node), append(cfgs, c)
		return true
	})
	if err != nil {
		return fmt.Errorf("pep: %w", err)
	}
	for i, name := range names {
		its, err := nodes.Items(u.JID, name, 0)
		if err != nil {
			return fmt.Errorf("pep: node %s: %w", name, err)
		}
		n := pie.Node{Name: name, Config: cfgs[i].Fields()}
		for _, it := range its {
			n.Items = append(n.Items, pie.Item{ID: it.ID, Payload: it.Payload})
		}
		if subs := nodes.Subscriptions(u.JID, name); len(subs) > 0 {
			n.Subscriptions = subs
		}
		u.PEP = append(u.PEP, n)
	}
	return nil
}

// ImportUser implements pie.Section: each node is created with the default
// configuration changed by the options of the export this server supports (XEP-0227
// §4.10: unknown ones are ignored), within the default limits (the module's configuration
// is not at hand in an import), and its items are published in their order without
// notifications. Publishing replaces an item of the same id, so a second import of the
// same node leaves the same items.
func (*Mod) ImportUser(st store.Store, u *pie.User) error {
	nodes := pubsub.Nodes{T: st.Table("pep")}
	p := pubsub.Policy{MaxItems: DefaultMaxItems, Access: pubsub.PEPAccess}
	for _, n := range u.PEP {
		cfg, exists, err := nodes.Config(u.JID, n.Name)
		if err != nil {
			return fmt.Errorf("pep: node %s: %w", n.Name, err)
		}
		if !exists {
			cfg = pubsub.DefaultConfig(p)
		}
		cfg.ApplyEach(pubsub.Form(n.Config), p)
		if v := n.Config["pubsub#max_items"]; (len(v) == 0 || v[0] == "") && cfg.MaxItems < len(n.Items) {
			// The export does not say how many items the node keeps (Prosody leaves the
			// field empty at its default): keep the ones it has, within the limit,
			// rather than the newest only.
			cfg.MaxItems = min(len(n.Items), p.MaxItems)
		}
		if err := nodes.T.Apply(pubsub.ConfigOp(u.JID, n.Name, cfg)); err != nil {
			return fmt.Errorf("pep: node %s: %w", n.Name, err)
		}
		for _, it := range n.Items {
			if err := nodes.Publish(u.JID, n.Name, cfg, false, it.ID, it.Payload); err != nil {
				return fmt.Errorf("pep: node %s item %s: %w", n.Name, it.ID, err)
			}
		}
		for j, s := range n.Subscriptions {
			if s == pubsub.SubSubscribed || s == pubsub.SubPending {
				if err := nodes.SetSubscription(u.JID, n.Name, j, s); err != nil {
					return fmt.Errorf("pep: node %s: %w", n.Name, err)
				}
			}
		}
	}
	return nil
}
