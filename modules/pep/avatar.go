package pep

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"sync"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pubsub"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// XEP-0398: User Avatar to vCard-Based Avatars Conversion, the PEP side. The vcard module
// (XEP-0054/0153) is the other side; the two meet here, as private storage and PEP meet
// for bookmarks: vcard imports pep, never the reverse.
//
// Loops cannot happen: an avatar the vcard module publishes through PublishAvatar is
// written straight to the nodes and never reaches the sink, and the sink writes the vCard
// straight to its table, never through the vCard set handler. Both sides also skip an
// avatar they already hold (same SHA-1), so a legacy client that sets the same vCard at
// every login does not notify every contact again.
const (
	// NSAvatarData is the XEP-0084 data node and payload namespace.
	NSAvatarData = "urn:xmpp:avatar:data"
	// NSAvatarMetadata is the XEP-0084 metadata node and payload namespace.
	NSAvatarMetadata = "urn:xmpp:avatar:metadata"
	// FeatureVCardConversion is the XEP-0398 §2 account feature.
	FeatureVCardConversion = "urn:xmpp:pep-vcard-conversion:0"
)

// Avatar is one image as both protocols carry it.
type Avatar struct {
	ID            string // hex SHA-1 of Data (XEP-0084 §4.2)
	Type          string // MIME type
	Data          []byte // the image bytes (not base64)
	Width, Height int    // pixels; 0 when unknown
}

// AvatarSink takes the avatars users publish through XEP-0084 (XEP-0398 §3.1), for the
// vcard module. PEPAvatar runs on the user's shard right after the metadata item was
// stored; a is nil when the user disabled their avatar (XEP-0084 §4.5, empty metadata).
type AvatarSink interface {
	PEPAvatar(c module.Context, user jid.JID, a *Avatar)
}

// Avatars is the XEP-0084 side of the conversion, for the vcard module. Its methods run on
// the user's shard.
type Avatars interface {
	// PublishAvatar publishes a as the user's XEP-0084 avatar (XEP-0398 §3.2): the data
	// item, then the metadata item, each with the notifications of its node. Nodes that
	// do not exist are created with the PEP defaults; existing nodes keep the
	// configuration (access model) the user gave them. Nothing is published when the
	// metadata node's newest item already has a.ID.
	PublishAvatar(c module.Context, user jid.JID, a Avatar) error
}

// sinks maps a server's store to its avatar sink (one process may run several servers).
var sinks sync.Map // store.Store -> AvatarSink

// SetAvatarSink makes s receive the XEP-0084 avatars of the server whose store is st.
func SetAvatarSink(st store.Store, s AvatarSink) { sinks.Store(st, s) }

// RemoveAvatarSink withdraws s, if it is still the sink of st (a reload may have
// replaced it).
func RemoveAvatarSink(st store.Store, s AvatarSink) { sinks.CompareAndDelete(st, s) }

// AvatarsFor returns the PEP module of the server whose store is st, or nil when PEP is not
// enabled there.
func AvatarsFor(st store.Store) Avatars {
	if m, ok := bridges.Load(st); ok {
		return m.(*Mod)
	}
	return nil
}

var _ Avatars = (*Mod)(nil)

// AvatarID is the XEP-0084 §4.2 item id of data: its hex SHA-1.
func AvatarID(data []byte) string {
	h := sha1.Sum(data)
	return hex.EncodeToString(h[:])
}

// PublishAvatar implements Avatars.
func (m *Mod) PublishAvatar(c module.Context, user jid.JID, a Avatar) error {
	o := user.String()
	if last, ok, err := m.nodes.Last(o, NSAvatarMetadata); err != nil {
		return err
	} else if ok && last.ID == a.ID {
		return nil
	}
	var b xmlstream.Builder
	b.Start("data").Attr("xmlns", NSAvatarData)
	b.Raw(base64.StdEncoding.AppendEncode(nil, a.Data)).End() // base64 needs no escaping
	if err := m.publishOwn(c, user, NSAvatarData, a.ID, b.B); err != nil {
		return err
	}
	b = xmlstream.Builder{}
	b.Start("metadata").Attr("xmlns", NSAvatarMetadata).
		Start("info").Attr("bytes", strconv.Itoa(len(a.Data))).Attr("id", a.ID).Attr("type", a.Type)
	if a.Width > 0 && a.Height > 0 {
		b.Attr("width", strconv.Itoa(a.Width)).Attr("height", strconv.Itoa(a.Height))
	}
	b.End().End()
	return m.publishOwn(c, user, NSAvatarMetadata, a.ID, b.B)
}

// publishOwn publishes one item on behalf of owner, as the server: the node's own
// configuration, or the PEP defaults for a new node (never weaker, never stronger than
// what the user's client would have got), and the notifications.
func (m *Mod) publishOwn(c module.Context, owner jid.JID, node, id string, payload []byte) error {
	o := owner.String()
	cfg, exists, err := m.nodes.Config(o, node)
	if err != nil {
		return err
	}
	if !exists {
		if e := m.roomForNode(owner); e != nil {
			return e
		}
		cfg = pubsub.DefaultConfig(m.policy(owner.Domain()))
	}
	if e := pubsub.CheckPayload(payload, m.conf(owner.Domain()).MaxItemSize); e != nil {
		return e
	}
	if err := m.nodes.Publish(o, node, cfg, !exists, id, payload); err != nil {
		return err
	}
	m.broadcast(c, owner, node, cfg, pubsub.ItemsEvent(node, pubsub.Item{ID: id, Payload: payload}))
	return nil
}

// avatarPublished hands the avatar of a metadata item the owner just published to the
// sink (XEP-0398 §3.1): the <info/> without a url, its data item looked up by id, the
// SHA-1 checked. A metadata item whose data is missing or does not match is left alone.
func (m *Mod) avatarPublished(c module.Context, owner jid.JID, payload []byte) {
	v, ok := sinks.Load(m.st)
	if !ok {
		return
	}
	sink := v.(AvatarSink)
	md, err := xmlstream.ParseElement(payload, "")
	if err != nil || string(md.NS()) != NSAvatarMetadata || string(md.Name()) != "metadata" {
		return
	}
	var info xmlstream.Element
	found, any := false, false
	it := md.Children()
	for x, ok := it.Next(); ok; x, ok = it.Next() {
		if string(x.NS()) != NSAvatarMetadata || string(x.Name()) != "info" {
			continue
		}
		any = true
		if _, hasURL := x.Attr("url"); !hasURL {
			info, found = x, true
			break
		}
	}
	if !any {
		sink.PEPAvatar(c, owner, nil) // XEP-0084 §4.5: avatar publishing disabled
		return
	}
	if !found {
		return
	}
	id, _ := info.AppendAttr(nil, "id")
	typ, _ := info.AppendAttr(nil, "type")
	l := c.Logger()
	item, ok, err := m.nodes.Item(owner.String(), NSAvatarData, string(id))
	if err != nil || !ok {
		l.Debug().Err(err).Str("user", owner.String()).Str("id", string(id)).Msg("pep: avatar metadata without data")
		return
	}
	de, err := xmlstream.ParseElement(item.Payload, "")
	if err != nil || string(de.NS()) != NSAvatarData || string(de.Name()) != "data" {
		return
	}
	data, err := DecodeBase64(de.AppendText(nil))
	if err != nil || len(data) == 0 || AvatarID(data) != string(id) {
		l.Debug().Str("user", owner.String()).Str("id", string(id)).Msg("pep: avatar data does not match its id")
		return
	}
	a := &Avatar{ID: string(id), Type: string(typ), Data: data}
	if w, ok := info.AppendAttr(nil, "width"); ok {
		a.Width, _ = strconv.Atoi(string(w))
	}
	if h, ok := info.AppendAttr(nil, "height"); ok {
		a.Height, _ = strconv.Atoi(string(h))
	}
	sink.PEPAvatar(c, owner, a)
}

// DecodeBase64 decodes standard base64 with any whitespace in it (XEP-0084 data and vCard
// BINVAL are often line-wrapped).
func DecodeBase64(txt []byte) ([]byte, error) {
	clean := txt[:0:0]
	for _, ch := range txt {
		if ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t' {
			clean = append(clean, ch)
		}
	}
	return base64.StdEncoding.DecodeString(string(clean))
}
