// Package sid implements XEP-0359: Unique and Stable Stanza IDs: every message delivered
// to a local account gets <stanza-id by='account'/>, and stanza-ids that claim to be from
// that account but came from outside are removed (§5, spoofing).
package sid

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

func init() { module.Register(Mod{}) }

// Mod is the module.
type Mod struct{}

// ModuleInfo implements module.Module.
func (Mod) ModuleInfo() module.Info {
	return module.Info{ID: "sid", XEP: 359, New: func() module.Module { return new(Mod) }}
}

// Provision registers the hook.
func (m *Mod) Provision(r module.Registrar) error {
	r.Feature(ns.SID)
	r.Hook(module.Inbound, module.KindMessage, module.OrderStanzaID, m.stamp)
	return nil
}

var (
	enc = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
	seq atomic.Uint64
	rnd = func() uint32 {
		var b [4]byte
		rand.Read(b[:])
		return binary.BigEndian.Uint32(b[:])
	}()
)

// NewID returns a unique id that sorts by time: 48 bits of milliseconds, 16 bits of a
// per-process sequence, 32 random bits fixed per process.
func NewID(now time.Time) string { return string(AppendID(nil, now)) }

// AppendID appends a new id to dst.
func AppendID(dst []byte, now time.Time) []byte {
	var b [12]byte
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint64(b[:8], ms<<16|seq.Add(1)&0xffff)
	binary.BigEndian.PutUint32(b[8:], rnd)
	return enc.AppendEncode(dst, b[:])
}

func (m *Mod) stamp(c module.Context, p *module.Packet) module.Verdict {
	if p.Type == "error" || p.Type == "groupchat" {
		return module.Continue
	}
	e := p.Elem()
	by := p.To.Bare().String()
	raw := p.Raw
	body := false
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		switch {
		case string(ch.Name()) == "body":
			body = true
		case string(ch.Name()) == "stanza-id" && string(ch.NS()) == ns.SID:
			if v, ok := ch.AppendAttr(nil, "by"); ok && string(v) == by {
				if i := bytes.Index(raw, ch.Raw()); i >= 0 {
					raw = append(append([]byte(nil), raw[:i]...), raw[i+len(ch.Raw()):]...)
				}
			}
		}
	}
	if !body {
		return module.Continue
	}
	var out, child *[]byte
	if sc, ok := c.(module.Scratcher); ok {
		out, child = sc.Scratch(0), sc.Scratch(1)
	} else {
		out, child = new([]byte), new([]byte)
	}
	ch := append((*child)[:0], "<stanza-id xmlns='urn:xmpp:sid:0' id='"...)
	ch = AppendID(ch, c.Now())
	ch = append(ch, "' by='"...)
	ch = xmlstream.AppendEscapedString(ch, by)
	ch = append(ch, "'/>"...)
	*child = ch
	*out = xmlstream.AppendChild((*out)[:0], raw, ch)
	p.Raw = *out
	return module.Continue
}
