package xmlstream

import (
	"bytes"
	"sync"

	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// header is what a stream keeps from its header for the rest of the stream: the namespace
// bindings its elements inherit, its xml:lang, and the name its end tag must repeat. Headers
// are interned, so the thousands of connections whose headers declare the same things share
// one value and a State pays one pointer for it.
type header struct {
	qname string  // root's qualified name, e.g. "stream:stream"
	lang  string  // raw xml:lang value of the header, "" if none
	defNS string  // content namespace (jabber:client ...)
	binds []hbind // prefixed namespace declarations of the header
}

type hbind struct{ prefix, uri string }

// lookup resolves a prefix declared on the stream header.
func (h *header) lookup(prefix []byte) ([]byte, bool) {
	if h == nil {
		return nil, false
	}
	for k := range h.binds {
		if h.binds[k].prefix == string(prefix) {
			return s2b(h.binds[k].uri), true
		}
	}
	return nil, false
}

// checkEnd checks that raw, a lexically valid end tag, closes the stream element.
func (h *header) checkEnd(raw []byte) *stanza.StreamError {
	k := 2
	for k < len(raw) && !tagStop[raw[k]] {
		k++
	}
	if h == nil || string(raw[2:k]) != h.qname {
		return errStreamClose
	}
	return nil
}

// maxInterned bounds the intern table, so that clients sending random languages or prefixes
// cannot grow it; beyond it a header costs its stream one small allocation.
const maxInterned = 1024

var interned struct {
	sync.RWMutex
	m map[string]*header
}

// intern returns the shared header for these values. The key is built in sc.key; looking a
// []byte up with string(key) does not allocate.
func (sc *Scanner) intern(qname, lang, defNS []byte, binds []bind) *header {
	key := append(sc.key[:0], qname...)
	key = append(key, 0)
	key = append(key, lang...)
	key = append(key, 0)
	key = append(key, defNS...)
	for _, b := range binds {
		key = append(key, 0)
		key = append(key, b.prefix...)
		key = append(key, 1)
		key = append(key, b.uri...)
	}
	sc.key = key
	if sc.last != nil && string(key) == string(sc.lastKey) {
		return sc.last // the common case: every stream on this loop sends the same header
	}
	h := internLookup(key)
	sc.lastKey = append(sc.lastKey[:0], key...)
	sc.last = h
	return h
}

func internLookup(key []byte) *header {
	interned.RLock()
	h := interned.m[string(key)]
	interned.RUnlock()
	if h != nil {
		return h
	}
	h = newHeader(key)
	interned.Lock()
	defer interned.Unlock()
	if old := interned.m[string(key)]; old != nil {
		return old
	}
	if interned.m == nil {
		interned.m = make(map[string]*header)
	}
	if len(interned.m) < maxInterned {
		interned.m[string(key)] = h
	}
	return h
}

// newHeader builds a header from its intern key (see intern).
func newHeader(key []byte) *header {
	parts := bytes.Split(key, []byte{0})
	h := &header{qname: string(parts[0]), lang: string(parts[1]), defNS: string(parts[2])}
	for _, p := range parts[3:] {
		pfx, uri, _ := bytes.Cut(p, []byte{1})
		h.binds = append(h.binds, hbind{prefix: string(pfx), uri: string(uri)})
	}
	return h
}

// kindNS returns the content namespace a stream of kind k must declare.
func kindNS(k StreamKind) string {
	switch k {
	case KindServer:
		return ns.Server
	case KindComponent:
		return ns.Component
	}
	return ns.Client
}

// header runs the second pass over the stream header start tag (RFC 6120 §4.7, §4.8).
func (sc *Scanner) header(st *State, raw []byte) *stanza.StreamError {
	var t tag
	if err := sc.readTag(raw, 0, &t); err != nil {
		return err
	}
	return sc.headerTag(st, raw, &t)
}

// headerTag is header after the start tag was read into t and sc.attrs.
func (sc *Scanner) headerTag(st *State, raw []byte, t *tag) *stanza.StreamError {
	sc.binds = sc.binds[:0]
	sc.kids = sc.kids[:0]
	own, err := sc.declare(nil, raw, nil)
	if err != nil {
		return err
	}
	if err := checkQName(raw, t.q0, t.q1, t.qc); err != nil {
		return err
	}
	if t.qc < 0 {
		return errNoPfx // RFC 6120 §4.9.3.2 example: <stream xmlns='jabber:client'>
	}
	uri, ok := sc.lookup(nil, raw[t.q0:t.qc])
	if !ok {
		return errUnbound
	}
	local := raw[t.qc+1 : t.q1]
	if string(uri) != ns.Stream || string(local) != "stream" {
		return errStreamNS // RFC 6120 §4.9.3.10
	}
	if string(own) != kindNS(st.kind) {
		return errContentNS
	}
	if t.empty {
		return errEmptyHeader
	}
	sc.top = append(sc.top[:0], sc.attrs...)
	sc.stz = Stanza{Raw: raw, Name: local, NS: s2b(ns.Stream), sc: sc, te: t.end}
	sc.stz.fillAttrs()
	st.hdr = sc.intern(raw[t.q0:t.q1], sc.stz.Lang, own, sc.binds)
	sc.stz.hdr, sc.stz.dns = st.hdr, s2b(st.hdr.defNS)
	return nil
}

// parseDecl checks an XML declaration (XML 1.0 §2.8): version, then optional encoding and
// standalone. Any encoding other than UTF-8 is refused (RFC 6120 §11.6).
func parseDecl(raw []byte) *stanza.StreamError {
	if len(raw) < 7 {
		return errDecl
	}
	b := raw[5 : len(raw)-2] // between "<?xml" and "?>"
	seen := 0
	for {
		k := 0
		for k < len(b) && isWS[b[k]] {
			k++
		}
		if k == len(b) {
			break
		}
		if k == 0 {
			return errDecl // pseudo-attributes are separated by white space
		}
		b = b[k:]
		eq := bytes.IndexByte(b, '=')
		if eq < 0 {
			return errDecl
		}
		name := b[:eq]
		for len(name) > 0 && isWS[name[len(name)-1]] {
			name = name[:len(name)-1]
		}
		b = b[eq+1:]
		for len(b) > 0 && isWS[b[0]] {
			b = b[1:]
		}
		if len(b) == 0 || (b[0] != '\'' && b[0] != '"') {
			return errDecl
		}
		end := bytes.IndexByte(b[1:], b[0])
		if end < 0 {
			return errDecl
		}
		val := b[1 : 1+end]
		b = b[end+2:]
		switch {
		case seen == 0 && string(name) == "version":
			if len(val) < 3 || val[0] != '1' || val[1] != '.' {
				return errDecl
			}
			for _, c := range val[2:] {
				if c < '0' || c > '9' {
					return errDecl
				}
			}
			seen = 1
		case seen == 1 && string(name) == "encoding":
			if !bytes.EqualFold(val, []byte("UTF-8")) {
				return errEncoding
			}
			seen = 2
		case seen >= 1 && seen < 3 && string(name) == "standalone":
			if string(val) != "yes" && string(val) != "no" {
				return errDecl
			}
			seen = 3
		default:
			return errDecl
		}
	}
	if seen == 0 {
		return errDecl
	}
	return nil
}

// prologFast handles an XML declaration or a stream header that arrives whole at in[0] == '<'
// in one walk: it returns the bytes consumed and the event, or ok == false to leave the input
// to the first pass (which then also reports any error).
func (sc *Scanner) prologFast(st *State, in []byte) (n int, ev Event, ok bool) {
	if len(in) > int(st.lim.header) {
		in = in[:st.lim.header]
	}
	if len(in) > 6 && string(in[:5]) == "<?xml" && isWS[in[5]] {
		if st.flags&fStarted != 0 {
			return 0, Event{}, false
		}
		end := bytes.Index(in, []byte("?>"))
		if end < 0 {
			return 0, Event{}, false
		}
		for _, c := range in[5:end] {
			if c >= 0x7F || c < 0x20 && !isWS[c] {
				return 0, Event{}, false
			}
		}
		if parseDecl(in[:end+2]) != nil {
			return 0, Event{}, false
		}
		st.flags |= fStarted
		return end + 2, Event{}, true
	}
	var t tag
	if !sc.readTagV(in, 0, st.lim, &t) || t.empty {
		return 0, Event{}, false
	}
	raw := in[:t.end]
	if sc.headerTag(st, raw, &t) != nil {
		return 0, Event{}, false
	}
	st.lx, st.flags = lxTop, st.flags|fStarted
	return len(raw), Event{Kind: EventStreamStart, Stanza: &sc.stz}, true
}
