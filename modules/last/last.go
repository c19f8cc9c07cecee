// Package last implements XEP-0012: Last Activity: the server's uptime, and for a
// contact's bare JID the time since that account's last session ended (only to contacts
// with a presence subscription, RFC 6121 rules for presence apply).
package last

import (
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func init() { module.Register(Mod{}) }

// Table is the store table of the logout records: per account, the Unix time its last
// session ended. The administration commands read it (XEP-0133 get-user-lastlogin).
const Table = "last"

// Ended returns when user's last session ended, from the Table t; ok is false when no
// record is kept (the account never logged out, or the module is disabled).
func Ended(t store.Table, user string) (at time.Time, ok bool, err error) {
	v, err := t.Get(store.UserKey(user))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, err
	case len(v) != 8:
		return time.Time{}, false, nil
	}
	return time.Unix(int64(binary.BigEndian.Uint64(v)), 0), true, nil
}

// Mod is the module.
type Mod struct {
	start time.Time
	t     store.Table
}

// ModuleInfo implements module.Module.
func (Mod) ModuleInfo() module.Info {
	return module.Info{ID: "last", XEP: 12, New: func() module.Module { return new(Mod) }}
}

// Provision registers handlers and the logout hook.
func (m *Mod) Provision(r module.Registrar) error {
	m.start = time.Now()
	m.t = r.Table(Table)
	r.Public(ns.Last)
	r.IQ(module.IQGet, ns.Last, "query", m.query)
	r.IQBare(module.IQGet, ns.Last, "query", m.contact)
	r.OnSessionEnd(func(c module.Context, s module.Session) {
		if s.Ephemeral() {
			return // a guest whose account goes now
		}
		for _, o := range c.Sessions(s.JID().Bare()) {
			if o.Available() {
				return // still online; one bound without presence (a bot) does not count
			}
		}
		// Nobody was promised this record: a lazy write keeps a disk sync out of every logout.
		if err := m.t.ApplyLazy(store.Op{Key: store.UserKey(s.JID().Bare().String()), Val: binary.BigEndian.AppendUint64(nil, uint64(c.Now().Unix()))}); err != nil {
			l := c.Logger()
			l.Warn().Err(err).Str("user", s.JID().Bare().String()).Msg("last: record logout time")
		}
	})
	return nil
}

func reply(c module.Context, iq *module.Packet, secs int64) {
	c.Reply(iq, []byte("<query xmlns='jabber:iq:last' seconds='"+strconv.FormatInt(secs, 10)+"'/>"))
}

func (m *Mod) query(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && iq.To.Local() != "" {
		m.contact(c, iq)
		return
	}
	reply(c, iq, int64(c.Now().Sub(m.start).Seconds()))
}

func (m *Mod) contact(c module.Context, iq *module.Packet) {
	user := iq.To.Bare()
	if !iq.From.Bare().Equal(user) {
		it, ok := c.RosterItem(user, iq.From.Bare())
		if !ok || (it.Sub != store.SubFrom && it.Sub != store.SubBoth) {
			c.Error(iq, stanza.New(stanza.Forbidden))
			return
		}
	}
	for _, s := range c.Sessions(user) {
		if s.Available() {
			reply(c, iq, 0)
			return
		}
	}
	at, ok, err := Ended(m.t, user.String())
	if err != nil || !ok {
		c.Error(iq, stanza.New(stanza.ItemNotFound))
		return
	}
	reply(c, iq, max(0, int64(c.Now().Sub(at).Seconds())))
}
