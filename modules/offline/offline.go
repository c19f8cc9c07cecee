// Package offline implements XEP-0160: Best Practices for Handling Offline Messages, with
// XEP-0203 delay stamps. Messages for an account with no available resource are stored
// durably (the store syncs before Push returns, before anything is acknowledged) and
// delivered, then deleted, when the user next sends initial presence with a non-negative
// priority. A per-user quota of messages and of bytes answers service-unavailable when full.
package offline

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Default quotas per user: the number of messages kept and their total size. The size
// bounds what one account can cost on disk (1,000 messages of 256 KiB would be 250 MiB).
const (
	DefaultQuota      = 1000
	DefaultQuotaBytes = 10 << 20
)

func init() { module.Register(new(Offline)) }

// Config is [modules.offline].
type Config struct {
	Quota      int   `toml:"quota"`       // messages per user
	QuotaBytes int64 `toml:"quota_bytes"` // bytes of stored messages per user
}

// SetDefaultQuota lets the server's router.offline_quota act as the default.
func (c *Config) SetDefaultQuota(n int) {
	if c.Quota == 0 {
		c.Quota = n
	}
}

// Offline is the offline storage module.
type Offline struct {
	set  atomic.Pointer[module.HostSettings[Config]] // the quotas in force; a reload swaps them
	log  zerolog.Logger
	busy sync.Map // bare JID -> the session a delivery is in progress for
}

// ModuleInfo implements module.Module.
func (*Offline) ModuleInfo() module.Info {
	return module.Info{ID: "offline", XEP: 160, New: func() module.Module { return new(Offline) }, PerHost: true}
}

var _ module.Reconfigurer = (*Offline)(nil)

// Reconfigure implements module.Reconfigurer: the quotas change at a reload. A user above
// a lowered quota keeps what is stored and gets no more until it is delivered. A host's
// table sets its users' quotas.
func (o *Offline) Reconfigure(rc module.Reconfig) (func(), error) {
	set, err := module.DecodeSettings(rc, func(_ string, cfg *Config) error {
		if cfg.Quota <= 0 {
			cfg.Quota = DefaultQuota
		}
		if cfg.QuotaBytes <= 0 {
			cfg.QuotaBytes = DefaultQuotaBytes
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() { o.set.Store(set) }, nil
}

// Provision registers the inbound hook and the delivery at login.
func (o *Offline) Provision(r module.Registrar) error {
	o.log = r.Logger()
	if err := module.Configure(r, o); err != nil {
		return err
	}
	r.Hook(module.Inbound, module.KindMessage, module.OrderArchive-1, o.full)
	r.Hook(module.Inbound, module.KindMessage, module.OrderOffline, o.store)
	r.OnUndeliverable(o.keep)
	r.OnAvailable(o.deliver)
	// XEP-0160 §3: delivery waits for non-negative presence, which a session with a
	// negative priority may send later without going unavailable first. Before the
	// presence module's broadcast, which ends the chain.
	r.Hook(module.Outbound, module.KindPresence, module.OrderPresence-5, o.raised)
	r.OnSessionEnd(func(_ module.Context, s module.Session) {
		// A delivery whose session ended before its batch was written is over; what it
		// had not deleted is still stored.
		o.busy.CompareAndDelete(s.JID().Bare().String(), s)
	})
	r.Feature(ns.MsgOffline)
	return nil
}

// storable reports whether a message is worth keeping for the next login (XEP-0160 §3,
// XEP-0334 hints): one with a body or a <store/> hint, and one with any other payload
// (receipts, markers, call proposals, encrypted messages without a fallback body,
// invitations) unless it carries chat states, which say something about now and nothing
// at the next login. That is ejabberd's default (store_empty_body = unless_chat_state);
// Prosody keeps even chat states. A <no-store/> hint forbids keeping it even for later
// delivery; <no-permanent-store/> only archives, not this. refuse says the message must
// be answered with an error instead: one with a body that may not be kept, whose sender
// RFC 6121 §8.5.2.2.1 has told rather than left to think it arrived.
func storable(e xmlstream.Element) (keep, refuse bool) {
	body, store, other, state, noStore := false, false, false, false, false
	for it := e.Children(); ; {
		c, ok := it.Next()
		if !ok {
			break
		}
		switch name, space := string(c.Name()), string(c.NS()); {
		case (name == "body" || name == "subject") && space == ns.Client:
			body = true
		case space == ns.Hints && name == "no-store":
			noStore = true
		case space == ns.Hints && name == "store":
			store = true
		case space == ns.ChatStates:
			state = true
		case space == ns.Client || space == ns.SID || space == ns.Hints:
			// <thread/>, stanza and origin ids, other hints: no payload
		default:
			other = true
		}
	}
	if noStore {
		return false, body
	}
	return body || store || other && !state, false
}

// offlineBound says whether p is a message that no session takes now, which offline
// storage would keep (RFC 6121 §8.5, XEP-0160).
func offlineBound(c module.Context, p *module.Packet) bool {
	switch p.Type {
	case "", "normal", "chat":
	default:
		return false
	}
	sessions := c.Sessions(p.To.Bare())
	if !p.To.IsBare() {
		for _, s := range sessions {
			if s.JID().Resource() == p.To.Resource() {
				return false
			}
		}
	}
	for _, s := range sessions {
		if s.Available() && s.Priority() >= 0 {
			return false
		}
	}
	return true
}

// full refuses, before the archive keeps it (OrderArchive), a message bound for offline
// storage that has no room for it: XEP-0313 §5.1.1 archives messages accepted for
// delivery, and the sender, told it was not, may send it again. The store's own check
// (keep) still decides; this one reads the user's counts, on the path to a write anyway.
func (o *Offline) full(c module.Context, p *module.Packet) module.Verdict {
	if !offlineBound(c, p) {
		return module.Continue
	}
	if keep, _ := storable(p.Elem()); !keep {
		return module.Continue
	}
	user := p.To.Bare()
	q := o.set.Load().For(user.Domain())
	off := c.Store().Offline()
	n, err := off.Count(user.String())
	if err != nil {
		return module.Continue
	}
	size, err := off.Bytes(user.String())
	if err != nil {
		return module.Continue
	}
	const delayLen = 128 // the <delay/> keep adds
	if n >= q.Quota || size+int64(len(p.Raw)+delayLen) > int64(q.QuotaBytes) {
		e := stanza.New(stanza.ServiceUnavailable)
		e.Text = "offline storage is full"
		c.Error(p, e)
		return module.Stop
	}
	return module.Continue
}

func (o *Offline) store(c module.Context, p *module.Packet) module.Verdict {
	if !offlineBound(c, p) {
		return module.Continue
	}
	if keep, refuse := storable(p.Elem()); !keep {
		if refuse {
			c.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
		return module.Stop // chat states and the like are not kept for later
	}
	o.keep(c, p)
	return module.Stop
}

// keep stores p for its recipient's next login. It is also the router's RFC 6121 fallback
// for messages a session took but could not deliver (it closed, or its detached queue
// expired); it reports whether the message was taken care of (stored, or not worth
// storing, or answered with an error).
func (o *Offline) keep(c module.Context, p *module.Packet) bool {
	switch p.Type {
	case "", "normal", "chat":
	default:
		return false
	}
	if keep, refuse := storable(p.Elem()); !keep {
		if refuse {
			c.Error(p, stanza.New(stanza.ServiceUnavailable))
		}
		return true
	}
	user := p.To.Bare()
	now := c.Now().UTC()
	raw := p.Raw
	if !module.HasServerDelay(raw, c.Domain()) { // else delayed since it was first sent (its session expired)
		var b xmlstream.Builder
		b.Start("delay").Attr("xmlns", ns.Delay).Attr("from", c.Domain()).
			Attr("stamp", now.Format("2006-01-02T15:04:05.000Z")).Text("Offline Storage").End()
		raw = xmlstream.AppendChild(nil, p.Raw, b.B)
	}
	q := o.set.Load().For(user.Domain())
	_, err := c.Store().Offline().Push(user.String(), raw, now, store.Quota{Items: q.Quota, Bytes: q.QuotaBytes})
	switch {
	case errors.Is(err, store.ErrQuota):
		e := stanza.New(stanza.ServiceUnavailable)
		e.Text = "offline storage is full"
		c.Error(p, e)
	case errors.Is(err, store.ErrNotFound): // the account was deleted meanwhile
		c.Error(p, stanza.New(stanza.ServiceUnavailable))
	case err != nil:
		if module.LogStoreError(err) {
			o.log.Error().Err(err).Msg("offline: store message")
		}
		c.Error(p, module.StoreError(err))
	}
	return true
}

// Offline messages go out in batches under flow control: a batch is sent, and only when
// the connection has written it are its messages deleted and the next batch sent. A
// backlog never fills the outbound queue (the stream is never closed for what the server
// itself sends), and a session that ends mid-way loses nothing: what was not written stays
// stored for the next login.
const (
	batchBytes = 64 << 10
	batchMsgs  = 100
)

func (o *Offline) deliver(c module.Context, s module.Session) {
	if s.Priority() < 0 {
		s.SetValue(keyWaiting, true) // until its priority is raised (raised)
		return
	}
	user := s.JID().Bare().String()
	// One delivery per account at a time: a second resource coming online meanwhile
	// must not get the same messages again.
	if _, busy := o.busy.LoadOrStore(user, s); busy {
		return
	}
	o.sendBatch(c, s, user)
}

type sessKey int

// keyWaiting marks a session that went available with a negative priority: its stored
// messages wait for it to raise it.
const keyWaiting sessKey = 0

// raised delivers the stored messages to a session that raises its priority to zero or
// more, having had none delivered for its negative one.
func (o *Offline) raised(c module.Context, p *module.Packet) module.Verdict {
	s := c.Session()
	if s == nil || p.Type != "" || !p.To.IsZero() {
		return module.Continue
	}
	if s.Priority() < 0 {
		// Lowered (not only at the initial presence): what is stored while it is
		// negative waits for the raise, as at login.
		if s.Value(keyWaiting) == nil {
			s.SetValue(keyWaiting, true)
		}
		return module.Continue
	}
	if s.Value(keyWaiting) == nil {
		return module.Continue
	}
	s.SetValue(keyWaiting, nil)
	o.deliver(c, s)
	return module.Continue
}

func (o *Offline) sendBatch(c module.Context, s module.Session, user string) {
	var ids []uint64
	var batch [][]byte
	size, more := 0, false
	err := c.Store().Offline().List(user, func(m store.OfflineMessage) bool {
		if len(ids) >= batchMsgs || (len(ids) > 0 && size+len(m.Raw) > batchBytes) {
			more = true
			return false
		}
		ids = append(ids, m.ID)
		batch = append(batch, append([]byte(nil), m.Raw...))
		size += len(m.Raw)
		return true
	})
	if err != nil {
		o.log.Error().Err(err).Msg("offline: list")
		o.busy.CompareAndDelete(user, s)
		return
	}
	sent := ids[:0]
	for i, raw := range batch {
		if !s.Send(raw) {
			more = false // the session is going away; the rest waits for the next login
			break
		}
		sent = append(sent, ids[i])
	}
	if len(sent) == 0 {
		o.busy.CompareAndDelete(user, s)
		return
	}
	s.AfterWritten(func(c module.Context, ok bool) {
		if !ok {
			o.busy.CompareAndDelete(user, s) // not written: still stored, delivered at the next login
			return
		}
		if err := c.Store().Offline().Delete(user, sent...); err != nil {
			o.log.Error().Err(err).Msg("offline: delete delivered")
			o.busy.CompareAndDelete(user, s)
			return
		}
		if !more {
			o.busy.CompareAndDelete(user, s)
			return
		}
		o.sendBatch(c, s, user)
	})
}
