package xmlstream

import (
	"encoding/binary"

	"github.com/valyala/bytebufferpool"

	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// StreamKind is the content namespace a stream header must declare as its default namespace.
type StreamKind uint8

// Stream kinds.
const (
	KindClient    StreamKind = iota // jabber:client (RFC 6120 client-to-server)
	KindServer                      // jabber:server (RFC 6120 server-to-server)
	KindComponent                   // jabber:component:accept (XEP-0114)
)

// EventKind says what Next found.
type EventKind uint8

// Event kinds.
const (
	EventNone        EventKind = iota // all input consumed, need more bytes
	EventStreamStart                  // stream header complete; Event.Stanza views the header start tag
	EventElement                      // one complete top-level element; Event.Stanza views it
	EventStreamEnd                    // </stream:stream>
)

// Event is one result of Next. Stanza is nil for EventNone and EventStreamEnd.
type Event struct {
	Kind   EventKind
	Stanza *Stanza
}

// fastPath enables the single-walk path for elements that arrive whole; tests turn it off to
// compare it with the two passes.
var fastPath = true

// readPool holds the buffers of partial top-level items. One pool for this role, so its size
// calibration reflects stanza sizes only.
var readPool bytebufferpool.Pool

// Scanner is per-loop scratch for the second pass: the namespace stack, the open-element stack,
// the attributes of the tag being read and the index of the last complete element. It grows to
// the largest element seen and is then reused without allocating. Not safe for concurrent use.
type Scanner struct {
	stz     Stanza
	binds   []bind   // namespace declarations in scope, innermost last
	open    []frame  // open elements of the item being indexed
	dnsTab  [][]byte // default namespaces declared in the item being indexed
	attrs   []attr   // attributes of the start tag being read
	attrNS  [][]byte // resolved namespaces of attrs (declare only)
	top     []attr   // attributes of the top-level element (Stanza.Attr)
	kids    []kid    // direct children of the top-level element (Stanza.Child)
	stk     []uint32 // first pass: item offsets of the names of the open elements (State.lex)
	key     []byte   // scratch for interning stream headers
	last    *header  // the header interned last, and its key: most streams repeat it
	lastKey []byte
}

// NewScanner returns per-loop scratch. Not safe for concurrent use.
func NewScanner() *Scanner {
	return &Scanner{
		binds:  make([]bind, 0, 16),
		open:   make([]frame, 0, 16),
		dnsTab: make([][]byte, 0, 16),
		attrs:  make([]attr, 0, 16),
		attrNS: make([][]byte, 0, 16),
		top:    make([]attr, 0, 16),
		kids:   make([]kid, 0, 16),
		stk:    make([]uint32, DefaultMaxDepth+1),
		key:    make([]byte, 0, 256),
	}
}

// State is per-connection tokenizer state; the zero value is unusable until Reset. It holds
// no slices or maps: a pooled buffer only while a top-level element is partial (or until the
// next Next after it completed), the interned stream header context, and counters. While an
// element is partial, the buffer's spare capacity after the pending bytes also holds the item
// offsets of its open elements' names (saveStack), so that end tags are matched as they arrive.
type State struct {
	buf   *bytebufferpool.ByteBuffer // bytes of the current partial item; nil between items
	hdr   *header                    // interned context of the stream header; nil before it
	lim   *limits                    // normalized, interned limits; nil until Reset
	total uint32                     // bytes of the current item scanned so far
	acc   uint32                     // char-ref value, entity name, or held UTF-8 bytes
	depth uint16                     // open elements inside the current top-level element
	nlen  uint16                     // bytes of the name being read
	attrs uint16                     // attributes of the start tag being read
	lx    uint8                      // lexical state (lx* constants)
	ret   uint8                      // state to resume after a reference or a split character
	cnt   uint8                      // small counter, meaning depends on lx
	quote uint8                      // quote of the attribute value being read
	item  uint8                      // kind of the current top-level item
	kind  StreamKind
	flags uint8
	err   uint8 // sticky error: index in errTable, 0 for none
}

// Reset starts a new stream (also after STARTTLS or SASL success): the next bytes must be
// optional white space, an optional XML declaration and a stream header. lim nil means DefaultLimits(); zero fields
// mean their defaults. The limits are copied.
func (st *State) Reset(kind StreamKind, lim *Limits) {
	st.Release()
	*st = State{kind: kind, lim: lim.norm(), lx: lxInit}
}

// Release returns pooled buffers (on connection close). The State keeps its sticky error and
// position; Reset it before reusing it.
func (st *State) Release() {
	if st.buf != nil {
		if invariants {
			for i := range st.buf.B {
				st.buf.B[i] = 0xDB // poison: a view kept past its lifetime reads garbage
			}
		}
		readPool.Put(st.buf)
		st.buf = nil
	}
	st.flags &^= fDone
}

// Pending returns the bytes of a partial element currently buffered.
func (st *State) Pending() int {
	if st.buf == nil || st.flags&fDone != 0 {
		return 0
	}
	return len(st.buf.B)
}

// Err returns the sticky error after failure (nil otherwise).
func (st *State) Err() error {
	if st.err == 0 {
		return nil
	}
	return errTable[st.err]
}

func (st *State) fail(err *stanza.StreamError) (Event, int, error) {
	st.err = errIndex(err)
	st.Release()
	return Event{}, 0, err
}

// Next scans in and returns the next event and how many bytes of in it consumed. The caller
// calls Next again with in[n:] until it returns EventNone (then all of in was consumed, and any
// partial element was copied into a pooled buffer held by st) or an error.
//
// Errors are *stanza.StreamError with the RFC 6120 condition; after an error st refuses input
// (returns the same error and n == 0). The *Stanza in the event points into the Scanner's
// scratch and into in or st's pooled buffer: valid only until the next call to Next on this
// Scanner or this State. Whitespace between top-level elements is consumed silently
// (keepalives).
func (sc *Scanner) Next(st *State, in []byte) (ev Event, n int, err error) {
	if st.err != 0 {
		return Event{}, 0, errTable[st.err]
	}
	if st.lim == nil {
		return st.fail(errNotReset)
	}
	if st.flags&fDone != 0 {
		st.Release() // the previous event's bytes are no longer needed
	}
	if len(sc.stk) <= int(st.lim.depth) {
		sc.stk = make([]uint32, int(st.lim.depth)+1)
	}
	if st.lx >= lxItem {
		if st.buf == nil {
			return st.fail(errNotReset) // Release in the middle of an element, without Reset
		}
		if st.item == itemElem {
			st.loadStack(sc.stk)
		}
	}
	if invariants {
		sc.stz = Stanza{sc: sc} // views of the previous event must not be used any more
	}
	for {
		start := n
		if st.lx < lxItem {
			var err *stanza.StreamError
			if n, err = st.skip(in, n); err != nil {
				return st.fail(err)
			}
			if n == len(in) {
				return Event{}, n, nil
			}
			start = n // in[n] == '<'
			if fastPath && st.lx == lxProlog {
				if m, ev, ok := sc.prologFast(st, in[n:]); ok {
					n += m
					if ev.Kind != EventNone {
						return ev, n, nil
					}
					continue
				}
			}
			if fastPath && st.lx == lxTop && n+1 < len(in) && nameStartOK[in[n+1]] {
				// Fast path: an element that arrives whole is checked and indexed in one walk.
				b := in[n:]
				if len(b) > int(st.lim.stanza) {
					b = b[:st.lim.stanza]
				}
				if m, err := sc.element(st, b, true); err == nil {
					return Event{Kind: EventElement, Stanza: &sc.stz}, n + m, nil
				}
			}
			st.lx, st.item, st.total, st.depth = lxLT, itemNone, 1, 0
			st.flags &^= fCheckTop
			n++
		}
		max := st.lim.stanza
		if st.hdr == nil {
			max = st.lim.header
		}
		b := in[n:]
		if room := int(max - st.total); len(b) > room {
			b = b[:room]
		}
		m, done, lerr := st.lex(b, sc.stk)
		n += m
		st.total += uint32(m)
		if lerr != nil {
			return st.fail(lerr)
		}
		if !done {
			if st.total >= max {
				if st.hdr == nil {
					return st.fail(errHeaderSize)
				}
				return st.fail(errStanzaSize)
			}
			// n == len(in): keep the partial item for the next call.
			if st.buf == nil {
				st.buf = readPool.Get()
			}
			st.buf.B = append(st.buf.B, in[start:n]...)
			if st.item == itemElem {
				st.saveStack(sc.stk)
			}
			return Event{}, n, nil
		}
		if st.flags&fCheckTop != 0 {
			// The start tag of a top-level element named stream is complete (rare): it must not
			// be a new stream header. Keep it in the buffer and continue with its content.
			st.flags &^= fCheckTop
			if st.buf == nil {
				st.buf = readPool.Get()
			}
			st.buf.B = append(st.buf.B, in[start:n]...)
			if err := sc.checkTop(st, st.buf.B); err != nil {
				return st.fail(err)
			}
			continue
		}
		raw := in[start:n]
		if st.buf != nil {
			st.buf.B = append(st.buf.B, raw...)
			raw = st.buf.B
			st.flags |= fDone
		}
		ev, ferr := sc.finish(st, raw)
		if ferr != nil {
			return st.fail(ferr)
		}
		if ev.Kind != EventNone {
			return ev, n, nil
		}
		st.Release() // an XML declaration: nothing points into it
	}
}

// skip consumes the bytes between top-level items from in[i:]. It returns the index of the '<'
// that starts the next item, or len(in).
func (st *State) skip(in []byte, i int) (int, *stanza.StreamError) {
	for i < len(in) {
		c := in[i]
		switch st.lx {
		case lxInit:
			switch c {
			case 0xEF:
				st.lx, st.cnt = lxBOM, 1
				i++
				continue
			case 0x00, 0xFE, 0xFF: // UTF-16 or UTF-32 (RFC 6120 §11.6: UTF-8 only)
				return i, errEncoding
			}
			st.lx = lxProlog
		case lxBOM:
			if c != "\xEF\xBB\xBF"[st.cnt] {
				return i, errUTF8
			}
			i++
			st.cnt++
			if st.cnt == 3 {
				st.lx = lxProlog
			}
		default: // lxProlog, lxTop, lxEnded
			for i < len(in) && isWS[in[i]] {
				i++ // also before the XML declaration (e.g. a restarted stream after a newline)
			}
			if i == len(in) {
				return i, nil
			}
			switch {
			case in[i] == '<' && st.lx != lxEnded:
				return i, nil
			case st.lx == lxTop:
				return i, errText
			case st.lx == lxEnded:
				return i, errAfterEnd
			}
			return i, errProlog
		}
	}
	return i, nil
}

// saveStack stores stk[:st.depth+1] (the open elements and the start tag being read) in the
// spare capacity of st.buf after the pending bytes, for loadStack in the next call. The pooled
// buffer grows with the element, so this allocates only when append would.
func (st *State) saveStack(stk []uint32) {
	b := st.buf.B
	l := len(b)
	for _, o := range stk[:int(st.depth)+1] {
		b = binary.LittleEndian.AppendUint32(b, o)
	}
	st.buf.B = b[:l]
}

// loadStack restores what saveStack stored.
func (st *State) loadStack(stk []uint32) {
	b := st.buf.B
	t := b[len(b) : len(b)+4*(int(st.depth)+1)]
	for k := range int(st.depth) + 1 {
		stk[k] = binary.LittleEndian.Uint32(t[4*k:])
	}
}

// checkTop checks the start tag raw of a top-level element whose local name is "stream" as
// soon as it is complete: in the streams namespace it is a second stream header inside the open
// stream, which would otherwise wait for its end tag until a timeout or a size limit. Errors of
// the tag itself are reported now too, as the second pass would report them later.
func (sc *Scanner) checkTop(st *State, raw []byte) *stanza.StreamError {
	var t tag
	if err := sc.readTag(raw, 0, &t); err != nil {
		return err
	}
	h := st.hdr
	sc.binds = sc.binds[:0]
	ens, err := sc.declare(h, raw, s2b(h.defNS))
	if err != nil {
		return err
	}
	if t.qc != -1 {
		if err := checkQName(raw, t.q0, t.q1, t.qc); err != nil {
			return err
		}
		prefix := raw[t.q0:t.qc]
		if string(prefix) == "xmlns" {
			return errReservedNS
		}
		var ok bool
		if ens, ok = sc.lookup(h, prefix); !ok {
			return errUnbound
		}
	}
	if string(ens) == ns.Stream {
		return errStreamAgain
	}
	return nil
}

// finish runs the second pass over a complete item and moves st to the next top-level state.
func (sc *Scanner) finish(st *State, raw []byte) (Event, *stanza.StreamError) {
	switch st.item {
	case itemDecl:
		st.lx, st.flags = lxProlog, st.flags|fStarted
		return Event{}, parseDecl(raw)
	case itemHeader:
		if err := sc.header(st, raw); err != nil {
			return Event{}, err
		}
		st.lx = lxTop
		return Event{Kind: EventStreamStart, Stanza: &sc.stz}, nil
	case itemElem:
		if _, err := sc.element(st, raw, false); err != nil {
			return Event{}, err
		}
		st.lx = lxTop
		return Event{Kind: EventElement, Stanza: &sc.stz}, nil
	case itemEnd:
		if err := st.hdr.checkEnd(raw); err != nil {
			return Event{}, err
		}
		st.lx = lxEnded
		return Event{Kind: EventStreamEnd}, nil
	}
	return Event{}, errNotReset
}
