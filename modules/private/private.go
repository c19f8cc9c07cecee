// Package private implements XEP-0049: Private XML Storage, with a per-user quota of
// fragments and bytes ([modules.private] max_items, max_bytes).
//
// With the PEP module enabled, XEP-0048 bookmarks (<storage xmlns='storage:bookmarks'/>)
// are not stored here but unified with the XEP-0402 bookmarks node (XEP-0402 §5.3,
// advertised as urn:xmpp:bookmarks:1#compat on the account): a read returns the node's
// items cast into the old format, a write updates the node item by item with the usual
// notifications. A fragment stored before the node existed is read until then. The
// <url/> bookmarks of a list (web pages, XEP-0048 §3.3), which XEP-0402 has no place for,
// are kept here, in a fragment of their own, and added to every read.
package private

import (
	"errors"
	"strings"
	"sync/atomic"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pep"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// MaxSize bounds one stored fragment (not-acceptable above).
const MaxSize = 64 << 10

// Default per-user quota: fragments (one per namespace and element name) and their total
// size. Clients store a handful (bookmarks, roster delimiter, preferences).
const (
	DefaultMaxItems = 100
	DefaultMaxBytes = 1 << 20
)

func init() { module.Register(new(Mod)) }

// Config is [modules.private].
type Config struct {
	MaxItems int   `toml:"max_items"` // fragments per user
	MaxBytes int64 `toml:"max_bytes"` // bytes of fragments per user
}

// Mod is the module.
type Mod struct {
	t   store.Table
	st  store.Store
	cfg atomic.Pointer[module.HostSettings[Config]] // replaced whole at a reload
}

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "private", XEP: 49, New: func() module.Module { return new(Mod) }, PerHost: true}
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: the bounds change at a reload (fragments
// already stored stay; the next write is held to the new ones). A host's table sets its
// users' bounds.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	set, err := module.DecodeSettings(rc, func(_ string, cfg *Config) error {
		if cfg.MaxItems <= 0 {
			cfg.MaxItems = DefaultMaxItems
		}
		if cfg.MaxBytes <= 0 {
			cfg.MaxBytes = DefaultMaxBytes
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() { m.cfg.Store(set) }, nil
}

// Provision registers the handlers.
func (m *Mod) Provision(r module.Registrar) error {
	if err := module.Configure(r, m); err != nil {
		return err
	}
	m.t = r.Table("private")
	m.st = r.Store()
	r.Feature(pep.FeatureBookmarksCompat)
	r.IQ(module.IQGet, ns.Private, "query", m.handle)
	r.IQ(module.IQSet, ns.Private, "query", m.handle)
	return nil
}

// reserved namespaces cannot be stored (XEP-0049 §3: jabber:* protocol namespaces).
func reserved(space string) bool {
	switch space {
	case "", ns.Client, ns.Server, ns.Private, "vcard-temp", ns.Roster:
		return true
	}
	return false
}

func (m *Mod) handle(c module.Context, iq *module.Packet) {
	if !iq.To.IsZero() && !iq.To.Equal(iq.From.Bare()) {
		c.Error(iq, stanza.New(stanza.Forbidden))
		return
	}
	q, _ := iq.Payload()
	it := q.Children()
	child, ok := it.Next()
	if !ok {
		c.Error(iq, stanza.New(stanza.BadRequest))
		return
	}
	if _, more := it.Next(); more || reserved(string(child.NS())) {
		c.Error(iq, stanza.New(stanza.NotAcceptable))
		return
	}
	key := store.UserKey(iq.From.Bare().String(), string(child.NS()), string(child.Name()))
	if string(child.NS()) == pep.NSLegacyBookmarks && string(child.Name()) == "storage" && len(child.Raw()) <= MaxSize {
		if bm := pep.BookmarksFor(m.st); bm != nil && m.bookmarks(c, iq, bm, child, key) {
			return
		}
	}
	if iq.Type == "set" {
		raw := child.Standalone(nil) // kept apart from this <iq>: its namespaces with it
		if len(raw) > MaxSize {
			c.Error(iq, stanza.New(stanza.NotAcceptable))
			return
		}
		if !m.room(c, iq, key, len(raw)) {
			return
		}
		if err := m.t.Set(key, raw); err != nil {
			c.Error(iq, module.StoreError(err))
			return
		}
		c.Reply(iq, nil)
		return
	}
	v, err := m.t.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		v = child.Standalone(nil) // XEP-0049 §2.3: the empty element as asked
	} else if err != nil {
		c.Error(iq, stanza.New(stanza.InternalServerErrorCond))
		return
	}
	out := append([]byte("<query xmlns='jabber:iq:private'>"), v...)
	c.Reply(iq, append(out, "</query>"...))
}

// room reports whether size bytes under key fit the user's quota; else it answers iq.
func (m *Mod) room(c module.Context, iq *module.Packet, key []byte, size int) bool {
	over, err := m.over(iq.From.Bare().String(), key, size)
	if err != nil {
		c.Error(iq, stanza.New(stanza.InternalServerErrorCond))
		return false
	}
	if over {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Text = "private storage is full"
		c.Error(iq, e)
		return false
	}
	return true
}

// over reports whether storing size bytes under key would take user past the quota; the
// fragment key replaces does not count. Every IQ of one user runs on that user's shard, so
// the check and the following write are not interleaved with another of the user's sets.
func (m *Mod) over(user string, key []byte, size int) (bool, error) {
	cfg := m.cfg.Load().For(hostOf(user))
	items, total := 1, int64(size)
	err := m.t.Scan(store.UserKey(user), func(k, v []byte) bool {
		if string(k) != string(key) {
			items++
			total += int64(len(v))
		}
		return items <= cfg.MaxItems && total <= cfg.MaxBytes
	})
	return items > cfg.MaxItems || total > cfg.MaxBytes, err
}

// bookmarks answers a request for XEP-0048 bookmarks from the XEP-0402 node; it reports
// false when the request is left to the stored fragment (a read before the node exists).
func (m *Mod) bookmarks(c module.Context, iq *module.Packet, bm pep.Bookmarks, child xmlstream.Element, key []byte) bool {
	user := iq.From.Bare()
	if iq.Type == "set" {
		// The node holds the conferences now; the fragment keeps only the <url/>
		// bookmarks, which XEP-0402 has no place for (an older fragment must not come
		// back). It counts against the quota as any fragment does, checked before
		// anything is written.
		var frag []byte
		if urls := legacyURLs(child); urls != nil {
			frag = storageOf(urls)
			if !m.room(c, iq, key, len(frag)) {
				return true
			}
		}
		if e := bm.SetLegacy(c, user, child); e != nil {
			c.Error(iq, e)
			return true
		}
		var err error
		if frag == nil {
			err = m.t.Delete(key)
		} else {
			err = m.t.Set(key, frag)
		}
		if err != nil {
			c.Error(iq, module.StoreError(err))
			return true
		}
		c.Reply(iq, nil)
		return true
	}
	v, ok, err := bm.Legacy(c, user)
	if err != nil {
		c.Error(iq, module.StoreError(err))
		return true
	}
	if !ok {
		return false
	}
	if frag, err := m.t.Get(key); err == nil {
		if e, err := xmlstream.ParseElement(frag, ""); err == nil {
			if urls := legacyURLs(e); urls != nil {
				v = withURLs(v, urls)
			}
		}
	}
	out := append([]byte("<query xmlns='jabber:iq:private'>"), v...)
	c.Reply(iq, append(out, "</query>"...))
	return true
}

// legacyURLs returns the <url/> children of a XEP-0048 <storage/> (web page bookmarks,
// XEP-0048 §3.3), nil when there are none.
func legacyURLs(storage xmlstream.Element) [][]byte {
	var out [][]byte
	for it := storage.Children(); ; {
		x, ok := it.Next()
		if !ok {
			return out
		}
		if string(x.Name()) == "url" && string(x.NS()) == pep.NSLegacyBookmarks {
			out = append(out, x.Raw())
		}
	}
}

// storageOf is a XEP-0048 <storage/> holding urls.
func storageOf(urls [][]byte) []byte {
	var b xmlstream.Builder
	b.Start("storage").Attr("xmlns", pep.NSLegacyBookmarks)
	for _, u := range urls {
		b.Raw(u)
	}
	b.End()
	return b.B
}

// withURLs adds urls to storage, the <storage/> the XEP-0402 node gave.
func withURLs(storage []byte, urls [][]byte) []byte {
	e, err := xmlstream.ParseElement(storage, "")
	if err != nil {
		return storage
	}
	var b xmlstream.Builder
	b.Start("storage").Attr("xmlns", pep.NSLegacyBookmarks)
	for it := e.Children(); ; {
		x, ok := it.Next()
		if !ok {
			break
		}
		b.Raw(x.Raw())
	}
	for _, u := range urls {
		b.Raw(u)
	}
	b.End()
	return b.B
}

// hostOf is the host of a bare JID.
func hostOf(user string) string {
	_, h, _ := strings.Cut(user, "@")
	return h
}
