package xmlstream

import (
	"errors"

	"github.com/valyala/bytebufferpool"

	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// StreamKind is the content namespace a stream header must declare as its default namespace.
type StreamKind uint8

// Stream kinds.
const (
	KindClient    StreamKind = iota // jabber:client (RFC 6120 c2s)
	KindServer                      // jabber:server (RFC 6120 s2s)
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

// Scanner is per-loop scratch. Not safe for concurrent use.
type Scanner struct {
	stz Stanza
}

// NewScanner returns per-loop scratch. Not safe for concurrent use.
func NewScanner() *Scanner { return &Scanner{} }

// State is per-connection tokenizer state; the zero value is unusable until Reset.
type State struct {
	buf  *bytebufferpool.ByteBuffer
	err  *stanza.StreamError
	lim  limits
	kind StreamKind
}

// Reset starts a new stream of the given kind with the given limits (nil: defaults).
func (st *State) Reset(kind StreamKind, lim *Limits) {
	st.Release()
	*st = State{kind: kind, lim: lim.norm()}
}

// Release returns pooled buffers (on connection close).
func (st *State) Release() {}

// Pending returns the bytes of a partial element currently buffered.
func (st *State) Pending() int { return 0 }

// Err returns the sticky error after failure (nil otherwise).
func (st *State) Err() error {
	if st.err == nil {
		return nil
	}
	return st.err
}

// Next scans in and returns the next event and how many bytes of in it consumed.
func (sc *Scanner) Next(st *State, in []byte) (ev Event, n int, err error) {
	return Event{}, len(in), nil
}

// StanzaKind classifies a top-level element.
type StanzaKind uint8

// Stanza kinds.
const (
	KindOther StanzaKind = iota
	KindMessage
	KindPresence
	KindIQ
)

// Stanza is a view of a complete top-level element or the stream header.
type Stanza struct {
	Raw                []byte
	Name               []byte
	NS                 []byte
	To, From, Type, ID []byte
	Lang               []byte
	sc                 *Scanner
}

// Attr returns a non-namespaced attribute's raw escaped value.
func (s *Stanza) Attr(local string) ([]byte, bool) { return nil, false }

// Elem returns an element view of the whole stanza.
func (s *Stanza) Elem() Element { return Element{} }

// NumChildren returns the number of direct child elements.
func (s *Stanza) NumChildren() int { return 0 }

// Child returns the i-th direct child.
func (s *Stanza) Child(i int) Element { return Element{} }

// FirstChild returns the first child element.
func (s *Stanza) FirstChild() (Element, bool) { return Element{}, false }

// Kind classifies the stanza.
func (s *Stanza) Kind() StanzaKind { return KindOther }

var errMalformed = errors.New("xmlstream: malformed element")

// ParseElement returns a view of the first element in raw.
func ParseElement(raw []byte, defaultNS string) (Element, error) { return Element{}, errMalformed }

// Element is a lazy view over well-formed bytes.
type Element struct {
	root []byte
}

// Raw returns the whole element bytes.
func (e Element) Raw() []byte { return e.root }

// Name returns the local name.
func (e Element) Name() []byte { return nil }

// NS returns the resolved namespace.
func (e Element) NS() []byte { return nil }

// Attr returns a non-namespaced attribute's raw escaped value.
func (e Element) Attr(local string) ([]byte, bool) { return nil, false }

// AttrNS returns a namespaced attribute's raw escaped value.
func (e Element) AttrNS(space, local string) ([]byte, bool) { return nil, false }

// AppendAttr appends the unescaped value to dst.
func (e Element) AppendAttr(dst []byte, local string) ([]byte, bool) { return dst, false }

// Children iterates direct child elements.
func (e Element) Children() ChildIter { return ChildIter{} }

// Child returns the first direct child with that ns ("" = any) and name.
func (e Element) Child(ns, local string) (Element, bool) { return Element{}, false }

// AppendText appends the unescaped direct character data.
func (e Element) AppendText(dst []byte) []byte { return dst }

// Inner returns the raw bytes between start and end tag.
func (e Element) Inner() []byte { return nil }

// IsEmpty reports whether the element has no content.
func (e Element) IsEmpty() bool { return true }

// ChildIter iterates direct child elements.
type ChildIter struct{}

// Next returns the next child.
func (it *ChildIter) Next() (Element, bool) { return Element{}, false }

// AppendEscapedText escapes & < >.
func AppendEscapedText(dst, s []byte) []byte { return append(dst, s...) }

// AppendEscapedAttr escapes & < > ' ".
func AppendEscapedAttr(dst, s []byte) []byte { return append(dst, s...) }

// AppendEscapedString is attr-safe escaping of a string.
func AppendEscapedString(dst []byte, s string) []byte { return append(dst, s...) }

// AppendUnescaped decodes the 5 entities + numeric refs.
func AppendUnescaped(dst, raw []byte) []byte { return append(dst, raw...) }

// Builder appends elements to a byte slice.
type Builder struct {
	B []byte
}

// Start appends "<name".
func (b *Builder) Start(name string) *Builder { return b }

// Attr appends an escaped attribute.
func (b *Builder) Attr(name, value string) *Builder { return b }

// AttrBytes appends an escaped attribute.
func (b *Builder) AttrBytes(name string, value []byte) *Builder { return b }

// Text appends escaped text.
func (b *Builder) Text(s string) *Builder { return b }

// TextBytes appends escaped text.
func (b *Builder) TextBytes(s []byte) *Builder { return b }

// Raw appends trusted XML.
func (b *Builder) Raw(xml []byte) *Builder { return b }

// End closes the innermost element.
func (b *Builder) End() *Builder { return b }

// Reset starts over on dst.
func (b *Builder) Reset(dst []byte) { b.B = dst }

// AttrSet is one attribute change for SetAttrs.
type AttrSet struct {
	Name   string
	Value  []byte
	Remove bool
}

// SetAttrs rewrites only the top start tag of raw.
func SetAttrs(dst, raw []byte, set ...AttrSet) []byte { return append(dst, raw...) }

// AppendChild inserts child XML just before the end tag of the top element of raw.
func AppendChild(dst, raw, child []byte) []byte { return append(dst, raw...) }
