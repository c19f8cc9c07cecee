// Package rsm is XEP-0059 Result Set Management for lists a module holds whole, sorted
// by a string key (rooms of a MUC service, nodes of a pubsub service) or in an order of
// their own (a node's items, CutOrdered): it reads the <set/> of a request, cuts the page
// it asks for, and writes the <set/> of the answer.
//
// Paging of a sorted list is by key, not by position: <after>K</after> is the page of keys
// greater than K, whether or not K is still in the list, so a list that changes between
// two requests neither repeats nor skips what stayed. Lists that live in the store and are
// paged there (the message archive) read the <set/> here (ParseSet) and page in the store.
package rsm

import (
	"bytes"
	"sort"
	"strconv"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// NS is XEP-0059's namespace.
const NS = "http://jabber.org/protocol/rsm"

// maxValue bounds the text of one <set/> child: a key (a JID) or a number.
const maxValue = 3072

// Request is what a <set/> asks for. Max and Index are -1 when absent; Before with
// HasBefore and an empty key asks for the last page.
type Request struct {
	Max       int
	After     string
	HasAfter  bool
	Before    string
	HasBefore bool
	Index     int
}

// None is the request of a query without <set/>.
var None = Request{Max: -1, Index: -1}

// Parse reads the <set xmlns='http://jabber.org/protocol/rsm'/> among q's children: None
// when there is none, a bad-request error for a malformed one.
func Parse(q xmlstream.Element) (Request, *stanza.Error) {
	set, ok := q.Child(NS, "set")
	if !ok {
		return None, nil
	}
	return ParseSet(set)
}

// ParseSet reads a <set/> element itself (for a caller that meets it among other
// children, as the archive's query does), with Parse's errors.
func ParseSet(set xmlstream.Element) (Request, *stanza.Error) {
	r := None
	for it := set.Children(); ; {
		c, ok := it.Next()
		if !ok {
			break
		}
		if string(c.NS()) != NS {
			continue
		}
		text := c.AppendText(nil)
		if len(text) > maxValue {
			return r, bad("RSM value too long")
		}
		switch string(c.Name()) {
		case "max", "index":
			n, err := strconv.Atoi(string(bytes.TrimSpace(text)))
			if err != nil || n < 0 {
				return r, bad("RSM " + string(c.Name()) + " must be a non-negative integer")
			}
			if string(c.Name()) == "max" {
				r.Max = n
			} else {
				r.Index = n
			}
		case "after":
			if len(text) == 0 {
				return r, bad("RSM after needs a key")
			}
			r.After, r.HasAfter = string(text), true
		case "before":
			r.Before, r.HasBefore = string(text), true
		}
	}
	if r.Index >= 0 && (r.HasAfter || r.HasBefore) {
		return r, bad("RSM index cannot be combined with after or before")
	}
	return r, nil
}

func bad(text string) *stanza.Error {
	e := stanza.New(stanza.BadRequest)
	e.Text = text
	return e
}

// Page is the cut Cut made: keys[Lo:Hi] of the whole sorted list of Count keys.
type Page struct {
	Lo, Hi, Count int
	// Set says the answer carries a <set/>: the request had one, or the list was cut
	// without being asked (XEP-0059 §2.1, a responding entity that limits its answer).
	Set bool
}

// Cut returns the page of the n keys, sorted ascending, that key(i) returns, which r asks
// for: at most r.Max keys, and at most def when r gives no max or one above limit (a
// server's own bound on one answer).
func Cut(n int, key func(i int) string, r Request, def, limit int) Page {
	return cut(n, r, def, limit,
		func(k string) int { return sort.Search(n, func(i int) bool { return key(i) >= k }) },
		func(k string) int { return sort.Search(n, func(i int) bool { return key(i) > k }) })
}

// CutOrdered is Cut for a list kept in an order of its own (a pubsub node's items, by
// publication) rather than sorted by key: after and before name an entry by its key, and
// find returns that entry's position, or -1 when it is not in the list. A key that is gone
// cannot be placed, so it gets item-not-found (XEP-0059 §2.5), and the client starts over.
func CutOrdered(n int, find func(key string) int, r Request, def, limit int) (Page, *stanza.Error) {
	if r.HasBefore && r.Before != "" && find(r.Before) < 0 || r.HasAfter && find(r.After) < 0 {
		return Page{}, stanza.New(stanza.ItemNotFound)
	}
	return cut(n, r, def, limit, find, func(k string) int { return find(k) + 1 }), nil
}

// cut is the page r asks for of n entries: before(k) is where the entries before key k
// end, after(k) where those after it begin.
func cut(n int, r Request, def, limit int, before, after func(string) int) Page {
	max := r.Max
	if max < 0 || max > limit {
		max = def
	}
	p := Page{Count: n, Set: r != None || n > max}
	switch {
	case r.HasBefore:
		p.Hi = n
		if r.Before != "" {
			p.Hi = before(r.Before)
		}
		p.Lo = max0(p.Hi - max)
	case r.HasAfter:
		p.Lo = after(r.After)
		p.Hi = min(n, p.Lo+max)
	case r.Index >= 0:
		p.Lo = min(n, r.Index)
		p.Hi = min(n, p.Lo+max)
	default:
		p.Hi = min(n, max)
	}
	return p
}

func max0(i int) int { return max(i, 0) }

// Append writes the answer's <set/> for the page (nothing when p.Set is false): first
// with its index and last when the page is not empty, and always the count (§2.6:
// an empty page has only the count).
func (p Page) Append(b *xmlstream.Builder, key func(i int) string) {
	if !p.Set {
		return
	}
	b.Start("set").Attr("xmlns", NS)
	if p.Hi > p.Lo {
		b.Start("first").Attr("index", strconv.Itoa(p.Lo)).Text(key(p.Lo)).End()
		b.Start("last").Text(key(p.Hi - 1)).End()
	}
	b.Start("count").Text(strconv.Itoa(p.Count)).End()
	b.End()
}
