package push

import (
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/muc"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// mentions is the module's muc.Notifier: a member of a members-only room who is named in
// a groupchat message while away from the room is notified as for a message addressed to
// them, with the occupant JID of the sender as last-message-sender and the same
// coalescing (min_interval) and count.
type mentions struct{ m *Mod }

var _ muc.Notifier = mentions{}

// Mention runs on the room's shard: a member without registrations costs a map lookup;
// otherwise the rest runs on the member's shard (module.ShardCaller), where its sessions
// are. The member is away from the room when none of its sessions in the room
// (m.Sessions) is awake there (connected, available, not XEP-0352 inactive); a member with
// no session in the room is away from it even while awake elsewhere.
func (n mentions) Mention(c module.Context, mn *muc.Mention) {
	if _, ok := n.m.enabled.Load(mn.User.String()); !ok || !n.m.on(mn.User.Domain()) {
		return
	}
	sc, ok := c.(module.ShardCaller)
	if !ok {
		return
	}
	user, from := mn.User, mn.From.String()
	body := append([]byte(nil), mn.Body...)
	joined := append([]jid.JID(nil), mn.Sessions...)
	sc.CallOn(user, func(uc module.Context) {
		for _, s := range uc.Sessions(user) {
			if !awake(s) {
				continue
			}
			for _, j := range joined {
				if s.JID().Equal(j) {
					return // reading the room
				}
			}
		}
		n.m.notify(uc, user, from, body, 1)
	})
}

// Cleanup removes the mention notifier from muc.
func (m *Mod) Cleanup() error {
	if m.st != nil {
		muc.SetNotifier(m.st, nil)
		m.st = nil
	}
	return nil
}
