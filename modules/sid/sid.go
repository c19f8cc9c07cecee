// Package sid implements XEP-0359: Unique and Stable Stanza IDs: every message delivered
// to a local account gets <stanza-id by='account'/>, and stanza-ids that claim to be from
// that account but came from outside are removed (§5, spoofing).
package sid

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
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
	enc  = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
	last atomic.Uint64 // milliseconds<<16 | sequence of the latest id
	rnd  = func() uint32 {
		var b [4]byte
		rand.Read(b[:])
		return binary.BigEndian.Uint32(b[:])
	}()
)

// ID is a stanza id in binary form: 48 bits of Unix milliseconds, 16 bits of sequence
// within the millisecond, 32 random bits fixed per process. Within one process ids are
// strictly increasing: a millisecond that runs out of sequence borrows the next one, and
// when the clock steps back ids stay at the latest time until it catches up. So their
// byte order is the order they were made in, and the text form sorts the same way.
// Message archives (XEP-0313) key their rows by it. Across a restart the order holds as
// long as the clock did not step back over the restart.
type ID [12]byte

// IDLen is the length of an ID in text form.
const IDLen = 20

// Next returns a new id for a stanza handled at now.
func Next(now time.Time) ID {
	want := uint64(min(max(now.UnixMilli(), 0), 1<<48-1)) << 16
	var v uint64
	for {
		old := last.Load()
		v = max(want, old+1)
		if last.CompareAndSwap(old, v) {
			break
		}
	}
	var id ID
	binary.BigEndian.PutUint64(id[:8], v)
	binary.BigEndian.PutUint32(id[8:], rnd)
	return id
}

// Time returns the millisecond the id was made in.
func (id ID) Time() time.Time {
	return time.UnixMilli(int64(binary.BigEndian.Uint64(id[:8]) >> 16)).UTC()
}

// AppendText appends the text form of id to dst.
func (id ID) AppendText(dst []byte) []byte { return enc.AppendEncode(dst, id[:]) }

// String returns the text form.
func (id ID) String() string { return string(id.AppendText(nil)) }

// ParseID reads the text form of an id made by Next (in this or an earlier process);
// anything else, including a non-canonical spelling, is refused.
func ParseID(s []byte) (ID, bool) {
	var id ID
	if len(s) != IDLen {
		return id, false
	}
	n, err := enc.Decode(id[:], s)
	if err != nil || n != len(id) {
		return id, false
	}
	var back [IDLen]byte
	if string(enc.AppendEncode(back[:0], id[:])) != string(s) {
		return id, false
	}
	return id, true
}

// IDFloor is the smallest id that Next can return for the millisecond of t: ids made
// in t's millisecond or later are >= it.
func IDFloor(t time.Time) ID {
	var id ID
	ms := min(max(t.UnixMilli(), 0), 1<<48-1)
	binary.BigEndian.PutUint64(id[:8], uint64(ms)<<16)
	return id
}

// NewID returns a unique id that sorts by time (an ID in text form).
func NewID(now time.Time) string { return Next(now).String() }

// AppendID appends a new id to dst.
func AppendID(dst []byte, now time.Time) []byte { return Next(now).AppendText(dst) }

func (m *Mod) stamp(c module.Context, p *module.Packet) module.Verdict {
	if p.Type == "error" || p.Type == "groupchat" {
		return module.Continue
	}
	e := p.Elem()
	by := p.To.Bare().String()
	raw := p.Raw
	body, spoofed := false, false
	for it := e.Children(); ; {
		ch, ok := it.Next()
		if !ok {
			break
		}
		switch {
		case string(ch.Name()) == "body":
			body = true
		case isBy(ch, by):
			spoofed = true
		}
	}
	if spoofed {
		raw = Unstamp(nil, raw, by)
	}
	if !body {
		p.Raw = raw // without the spoofed ids, if there were any
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

// isBy reports whether c is a <stanza-id/> by the entity by.
func isBy(c xmlstream.Element, by string) bool {
	if string(c.Name()) != "stanza-id" || string(c.NS()) != ns.SID {
		return false
	}
	v, ok := c.AppendAttr(nil, "by")
	return ok && SameJID(v, by)
}

// SameJID reports whether v (an attribute's text) names the prepared address by: XEP-0359
// §4 compares addresses as RFC 7622 prepares them, so "Bob@Example.org" is by too, and a
// claim spelled so must go as well.
func SameJID(v []byte, by string) bool {
	if string(v) == by {
		return true
	}
	j, err := jid.ParseBytes(v)
	return err == nil && j.String() == by
}

// Unstamp appends raw to dst without its <stanza-id by='by'/> children: only the entity
// named in 'by' may say what its id for a stanza is (§5), and clients take such an id for
// an archive row of theirs (XEP-0313).
func Unstamp(dst, raw []byte, by string) []byte {
	return xmlstream.CutChildren(dst, raw, ns.Client, func(c xmlstream.Element) bool { return isBy(c, by) })
}

// Stamp returns raw with id (an ID in text form) as its one <stanza-id by='by'/> child.
func Stamp(raw []byte, by, id string) []byte {
	out := Unstamp(make([]byte, 0, len(raw)+96), raw, by)
	var b xmlstream.Builder
	b.Start("stanza-id").Attr("xmlns", ns.SID).Attr("id", id).Attr("by", by).End()
	return xmlstream.AppendChild(nil, out, b.B)
}
