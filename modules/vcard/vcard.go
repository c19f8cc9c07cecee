// Package vcard implements XEP-0054: vcard-temp, and XEP-0153: vCard-Based Avatars (the
// server adds the photo hash to the user's outgoing presence), with XEP-0398: User Avatar
// to vCard-Based Avatars Conversion when PEP is enabled (see convert.go).
package vcard

import (
	"errors"
	"sync/atomic"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pep"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// MaxSize is the default bound of a stored vCard, the user's only one (avatars make them
// the largest thing users store); [modules.vcard] max_bytes changes it.
const MaxSize = 64 << 10

// Config is [modules.vcard].
type Config struct {
	MaxBytes int `toml:"max_bytes"`
}

func init() { module.Register(new(Mod)) }

// Mod is the module.
type Mod struct {
	cards, hashes store.Table
	st            store.Store                                 // the server's store, the key of the PEP bridge
	cfg           atomic.Pointer[module.HostSettings[Config]] // replaced whole at a reload
}

var (
	_ module.Provisioner = (*Mod)(nil)
	_ module.Cleaner     = (*Mod)(nil)
	_ pep.AvatarSink     = (*Mod)(nil)
)

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "vcard", XEP: 54, New: func() module.Module { return new(Mod) }, PerHost: true}
}

type hashKey struct{}

// noPhoto is the cached answer "nothing is known of this account's avatar".
type noPhoto struct{}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: max_bytes changes at a reload. A host's
// table sets it for its users.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	set, err := module.DecodeSettings(rc, func(_ string, cfg *Config) error {
		if cfg.MaxBytes <= 0 {
			cfg.MaxBytes = MaxSize
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() { m.cfg.Store(set) }, nil
}

// Provision registers the handlers and the presence hook.
func (m *Mod) Provision(r module.Registrar) error {
	if err := module.Configure(r, m); err != nil {
		return err
	}
	m.cards, m.hashes = r.Table("vcard"), r.Table("vcardhash")
	m.st = r.Store()
	if m.st != nil {
		pep.SetAvatarSink(m.st, m)
	}
	// XEP-0398 §2; the disco module lists it on accounts only when PEP is enabled too.
	r.Feature(pep.FeatureVCardConversion)
	r.IQ(module.IQGet, ns.VCard, "vCard", m.get)
	r.IQ(module.IQSet, ns.VCard, "vCard", m.set)
	r.IQBare(module.IQGet, ns.VCard, "vCard", m.get)
	r.Hook(module.Outbound, module.KindPresence, module.OrderVCard, m.presence)
	return nil
}

func (m *Mod) get(c module.Context, iq *module.Packet) {
	user := iq.From.Bare()
	switch {
	case iq.To.IsZero():
		// XEP-0054 §3.1: no 'to' asks for the user's own.
	case iq.To.Local() == "":
		// A server's or service's vCard, which none is kept for (as Prosody answers):
		// not the requester's own under the server's address.
		c.Error(iq, stanza.New(stanza.ItemNotFound))
		return
	default:
		user = iq.To.Bare()
	}
	v, err := m.cards.Get(store.UserKey(user.String()))
	if errors.Is(err, store.ErrNotFound) {
		c.Reply(iq, []byte("<vCard xmlns='vcard-temp'/>"))
		return
	}
	if err != nil {
		c.Error(iq, stanza.New(stanza.InternalServerErrorCond))
		return
	}
	c.Reply(iq, v)
}

func (m *Mod) set(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && !iq.To.Equal(iq.From.Bare()) {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	card, _ := iq.Payload()
	// Served to others apart from this <iq>: with the namespaces it takes from it.
	raw := card.Standalone(nil)
	if len(raw) > m.cfg.Load().For(iq.From.Domain()).MaxBytes {
		e := stanza.New(stanza.NotAcceptable)
		e.Text = "vCard too large"
		c.Error(iq, e)
		return
	}
	user := store.UserKey(iq.From.Bare().String())
	if err := m.cards.Set(user, raw); err != nil {
		c.Error(iq, module.StoreError(err))
		return
	}
	ph, hasPhoto := photo(card)
	hash := ""
	if hasPhoto {
		hash = pep.AvatarID(ph.data)
	}
	if err := m.hashes.Set(user, []byte(hash)); err != nil {
		l := c.Logger()
		l.Error().Err(err).Str("user", iq.From.Bare().String()).Msg("vcard: store photo hash")
		c.Error(iq, stanza.New(stanza.InternalServerErrorCond))
		return
	}
	for _, s := range c.Sessions(iq.From.Bare()) {
		s.SetValue(hashKey{}, hash)
	}
	c.Reply(iq, nil)
	if hasPhoto {
		m.toPEP(c, iq.From.Bare(), ph, hash)
	}
}

// presence adds <x xmlns='vcard-temp:x:update'><photo>HASH</photo></x> to the user's
// available presence, broadcast or directed (MUC joins): XEP-0153 §4.1 on the server side
// and XEP-0398 §4. A presence whose x has a <photo/> (even an empty one: the client says
// "no avatar" or "not ready yet") is left as it is; an x without one is replaced.
func (m *Mod) presence(c module.Context, p *module.Packet) module.Verdict {
	if p.Type != "" {
		return module.Continue
	}
	x, hasX := p.Elem().Child(ns.VCardUpdate, "x")
	if hasX {
		if _, ok := x.Child("", "photo"); ok {
			return module.Continue
		}
	}
	s := c.Session()
	if s == nil {
		return module.Continue
	}
	// A stored hash, "" included, is known: "" says the account has no avatar (it was
	// removed, or a vCard without PHOTO was set), which contacts must hear as an empty
	// <photo/> or they keep showing the old one (XEP-0153 §4.3, XEP-0398 §5). No row at
	// all says nothing.
	var hash string
	known := false
	switch v := s.Value(hashKey{}).(type) {
	case string:
		hash, known = v, true
	case noPhoto:
	default:
		if v, err := m.hashes.Get(store.UserKey(p.From.Bare().String())); err == nil {
			hash, known = string(v), true
		}
		if !known {
			s.SetValue(hashKey{}, noPhoto{}) // zero-size: caching "no record" allocates nothing
		} else {
			s.SetValue(hashKey{}, hash)
		}
	}
	if !known {
		return module.Continue
	}
	raw := p.Raw
	if hasX { // cut the empty x out; x.Raw() is a window on p.Raw
		off := cap(p.Raw) - cap(x.Raw())
		raw = append(append(make([]byte, 0, len(p.Raw)), p.Raw[:off]...), p.Raw[off+len(x.Raw()):]...)
	}
	if hash == "" {
		p.Raw = xmlstream.AppendChild(nil, raw, []byte("<x xmlns='vcard-temp:x:update'><photo/></x>"))
		return module.Continue
	}
	p.Raw = xmlstream.AppendChild(nil, raw, []byte("<x xmlns='vcard-temp:x:update'><photo>"+hash+"</photo></x>"))
	return module.Continue
}
