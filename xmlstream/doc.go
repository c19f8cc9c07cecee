// Package xmlstream turns the bytes of an XMPP stream into stream events and complete top-level
// elements without allocating in the steady state, and writes XML into byte slices.
//
// It owns: the incremental tokenizer (Scanner, State), the RFC 6120 §11 restrictions and the
// resource limits (Limits) with the stream error each failure maps to, the tree-less views of a
// complete element (Stanza, Element), and the writer (escaping, Builder, SetAttrs, AppendChild).
// It must not do I/O, log, block, keep per-connection buffers between stanzas, or know anything
// about sessions, routing or storage.
//
// # Ownership and lifetimes
//
// A Scanner is per-loop scratch (attribute index, namespace stack, child index); one goroutine at
// a time. A State is per-connection and small (no slices or maps): offsets, counters and a
// lexical state, plus a pooled buffer only while a top-level element is partial. Everything an
// Event points to (the *Stanza, its Raw bytes, every Element derived from it) is valid only until
// the next call to Next with the same Scanner or the same State. Copy what must outlive that.
//
// # Mechanism
//
// The reference is two passes. The first pass is a resumable byte-level state machine whose
// whole state lives in State, so a chunk may end anywhere (inside a name, an attribute value, a
// UTF-8 sequence, a character reference); it validates characters, UTF-8, the lexical shape of
// tags, the RFC 6120 restrictions and the limits, matches each end tag with its start tag as
// soon as it is read (the item offsets of the open elements' names wait after the pending bytes
// in the pooled buffer, not in State), and finds where the top-level element ends.
// Bytes of an unfinished element are appended to a pooled buffer, so each input byte is scanned
// once however the input is split. When the element is complete (in the caller's input or in
// the pooled buffer), the second pass walks its tags once with the Scanner's arrays: it matches
// end tags, resolves namespaces, rejects duplicate attributes and builds the index that Stanza
// serves.
//
// Most elements arrive whole in one read. For those, Next first tries a single walk that does
// both passes' work at once over the caller's bytes (the second pass with validation turned
// on). It handles only the common shapes and gives up on anything else (an element cut by the
// end of the input, comments, unusual white space, every error); the two passes then run from
// the element's start and decide. So the fast path can only accept what the two passes accept,
// and errors are always reported by the two passes; tests and FuzzTokenizer compare the paths.
//
// # Cost
//
// Scanning is linear in the input however it is split. Element views are lazy: a child's
// namespace prefix declared on an ancestor other than its parent is resolved by walking the
// stanza from its start, so walking views of a hostile stanza built for it can cost
// O(size x children); the scanner itself never does.

package xmlstream
