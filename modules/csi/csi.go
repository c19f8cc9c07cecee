// Package csi implements XEP-0352: Client State Indication. A client that tells the server
// it is <inactive/> (a phone in a pocket) is not woken for what can wait: presence updates
// are held back, only the latest per contact kept, and so are messages that carry nothing
// but a chat state. The first stanza that matters (a message with a body, any error, any
// IQ) flushes what was held, in order, right before it; so does <active/>.
//
// State exists only while a session is inactive: an active session carries nothing. What
// one inactive session may hold is bounded; past the bound everything held is flushed.
package csi

import (
	"bytes"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// NS is the XEP-0352 namespace.
const NS = ns.CSI

const nsChatStates = ns.ChatStates

// Bounds on what one inactive session holds back.
const (
	maxHeld      = 256
	maxHeldBytes = 128 << 10
)

func init() { module.Register(&Mod{}) }

// Mod is the module.
type Mod struct{}

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "csi", XEP: 352, New: func() module.Module { return new(Mod) }}
}

// Provision registers the stream feature and the two nonzas.
func (m *Mod) Provision(r module.Registrar) error {
	r.StreamFeature(module.PostAuth, "<csi xmlns='"+NS+"'/>")
	r.Nonza(NS, "inactive", m.inactive)
	r.Nonza(NS, "active", m.active)
	// XEP-0386: a client may start its session inactive (or say active) inside Bind2.
	r.Bind2(NS, "inactive", m.inactive)
	r.Bind2(NS, "active", m.active)
	// A resumed stream is active (XEP-0352 §5.2): what was held goes after what the
	// session queued while detached.
	r.OnResumed(func(c module.Context, s module.Session) { m.active(c, s, xmlstream.Element{}) })
	return nil
}

type key struct{}

// Inactive reports whether the client of s said it is <inactive/> (and has not said
// <active/> since). Call it from s's shard, like every Session method.
func Inactive(s module.Session) bool { return s.Value(key{}) != nil }

// state is what an inactive session holds back, oldest first.
type state struct {
	s     module.Session
	held  [][]byte
	key   [][]byte // kind byte + sender: only the latest presence and chat state per contact
	bytes int
}

func (m *Mod) inactive(c module.Context, s module.Session, _ xmlstream.Element) {
	if s.Value(key{}) != nil {
		return
	}
	st := &state{s: s}
	s.SetValue(key{}, st)
	s.SetFilter(st.filter)
}

func (m *Mod) active(c module.Context, s module.Session, _ xmlstream.Element) {
	st, _ := s.Value(key{}).(*state)
	if st == nil {
		return
	}
	s.SetValue(key{}, nil)
	s.SetFilter(nil)
	st.flush()
}

// filter decides for every stanza sent to the inactive session: false means held.
func (st *state) filter(raw []byte) bool {
	e, err := xmlstream.ParseElement(raw, "jabber:client")
	if err != nil {
		st.flushFirst()
		return true
	}
	typ, _ := e.Attr("type")
	switch string(e.Name()) {
	case "presence":
		if string(typ) == "error" || string(typ) == "subscribe" {
			// Errors and subscription requests want the user's attention.
			break
		}
		from, _ := e.Attr("from")
		st.holdLatest('p', from, raw)
		return false
	case "message":
		if string(typ) != "error" && chatStateOnly(e) {
			// A stale "composing" is worth nothing: keep the latest per sender.
			from, _ := e.Attr("from")
			st.holdLatest('m', from, raw)
			return false
		}
	}
	st.flushFirst()
	return true
}

// chatStateOnly reports whether a message carries nothing but a chat state (XEP-0085)
// and the server's own stamps.
func chatStateOnly(e xmlstream.Element) bool {
	seen := false
	for it := e.Children(); ; {
		c, ok := it.Next()
		if !ok {
			break
		}
		switch string(c.NS()) {
		case nsChatStates:
			seen = true
		case "urn:xmpp:sid:0", "urn:xmpp:hints", "urn:xmpp:delay":
		default:
			return false
		}
	}
	return seen
}

// holdLatest holds raw, dropping what was held before for the same kind and sender.
func (st *state) holdLatest(kind byte, from, raw []byte) {
	for i, k := range st.key {
		if len(k) == len(from)+1 && k[0] == kind && bytes.Equal(k[1:], from) {
			st.bytes -= len(st.held[i])
			st.held = append(st.held[:i], st.held[i+1:]...)
			st.key = append(st.key[:i], st.key[i+1:]...)
			break
		}
	}
	if len(st.held) >= maxHeld || st.bytes+len(raw) > maxHeldBytes {
		st.flushFirst()
	}
	st.held = append(st.held, append([]byte(nil), raw...))
	st.key = append(st.key, append([]byte{kind}, from...))
	st.bytes += len(raw)
}

// flushFirst sends what was held, keeping the filter, before the stanza being filtered.
func (st *state) flushFirst() {
	if len(st.held) == 0 {
		return
	}
	st.s.SetFilter(nil)
	st.flush()
	st.s.SetFilter(st.filter)
}

func (st *state) flush() {
	held := st.held
	st.held, st.key, st.bytes = nil, nil, 0
	for _, raw := range held {
		st.s.Send(raw)
	}
}
