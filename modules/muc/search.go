package muc

import (
	"sort"
	"strconv"
	"strings"

	"github.com/vireo-im/vireo/modules/rsm"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// XEP-0433 Extended Channel Search, answered by the service itself over its directory:
// the public, unlocked rooms, searched by words in their address, name and description,
// with a minimum number of occupants, sorted by occupants (the default) or address, and
// paged with XEP-0059. Clients that find rooms this way (Gajim's search, which asks
// search.jabber.network unless told of another service) can be pointed at the service
// to list what this server hosts, including rooms no public index has crawled.

const (
	NSSearch       = "urn:xmpp:channel-search:0:search"
	nsSearchParams = "urn:xmpp:channel-search:0:search-params"
	nsSearchError  = "urn:xmpp:channel-search:0:error"
	orderNUsers    = "{urn:xmpp:channel-search:0:order}nusers"
	orderAddress   = "{urn:xmpp:channel-search:0:order}address"
	anonNone       = "{urn:xmpp:channel-search:0:anonymity}none"

	// maxSearchTerms bounds the words of one query; each is matched against every room.
	maxSearchTerms = 8
)

// dirCard is what a search result shows of a room besides its name and occupants.
type dirCard struct {
	desc, lang string
	open       bool // no membership or password needed
	nonAnon    bool // real JIDs visible to everyone
}

func cardOf(c *roomConfig) dirCard {
	return dirCard{desc: c.Desc, lang: c.Lang, open: !c.MembersOnly && !c.PasswordProtected, nonAnon: c.WhoisAnyone}
}

// searchHit is one room a search found.
type searchHit struct {
	addr string
	e    dirEntry
}

// search answers a channel search: the form for an empty <search/>, the results for a
// submitted one.
func (s *service) search(q xmlstream.Element) ([]byte, *stanza.Error) {
	x, ok := q.Child(ns.DataForms, "x")
	if !ok {
		return searchForm(), nil
	}
	f := formValues(x)
	flag := func(name string, def bool) bool {
		v, ok := f[name]
		if !ok {
			return def
		}
		return v == "1" || v == "true"
	}
	all := flag("all", false)
	terms := strings.Fields(strings.ToLower(f["q"]))
	switch {
	case all && len(terms) > 0:
		return nil, searchError(stanza.NotAllowed, stanza.Cancel, "Cannot both return all results and search by keywords.",
			"<conflicting-fields xmlns='"+nsSearchError+"'><var>all</var><var>q</var></conflicting-fields>")
	case !all && f["q"] != "" && len(terms) == 0 || len(terms) > maxSearchTerms:
		return nil, searchError(stanza.BadRequest, stanza.Modify, "Give between 1 and "+strconv.Itoa(maxSearchTerms)+" search words.",
			"<invalid-search-terms xmlns='"+nsSearchError+"'/>")
	case !all && len(terms) == 0:
		return nil, searchError(stanza.BadRequest, stanza.Modify, "", "<no-search-conditions xmlns='"+nsSearchError+"'/>")
	}
	key := f["key"]
	if key == "" {
		key = orderNUsers
	}
	if key != orderNUsers && key != orderAddress {
		return nil, searchError(stanza.FeatureNotImplemented, stanza.Modify, "", "<invalid-sort-key xmlns='"+nsSearchError+"'/>")
	}
	minUsers := 1
	if v, ok := f["min_users"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, stanza.New(stanza.BadRequest)
		}
		minUsers = n
	}
	if _, ok := f["types"]; ok && !strings.Contains(" "+string(typesOf(x)), " xep-0045 ") {
		// Only XEP-0045 rooms here, and a search for other types gets none of them.
		return searchResult(nil, rsm.Page{}, nil), nil
	}
	inName, inDesc, inAddr := flag("sinname", true), flag("sindescription", true), flag("sinaddress", true)
	hits := s.dir.search(func(addr string, e *dirEntry) bool {
		if e.occupants < minUsers {
			return false
		}
		for _, t := range terms {
			if !(inName && strings.Contains(strings.ToLower(e.name), t) || inDesc && strings.Contains(strings.ToLower(e.card.desc), t) ||
				inAddr && strings.Contains(addr, t)) {
				return false
			}
		}
		return true
	})
	r, e := rsm.Parse(q)
	if e != nil {
		return nil, e
	}
	var pg rsm.Page
	var keyOf func(i int) string
	if key == orderAddress {
		keyOf = func(i int) string { return hits[i].addr }
		pg = rsm.Cut(len(hits), keyOf, r, listPage, maxListPage)
	} else {
		// Most occupants first, then by address: the key of a position is its index, as
		// the order may change between pages (§6: no guarantee for this order).
		sort.SliceStable(hits, func(i, j int) bool { return hits[i].e.occupants > hits[j].e.occupants })
		keyOf = func(i int) string { return strconv.Itoa(i) }
		pg, e = rsm.CutOrdered(len(hits), func(k string) int {
			if i, err := strconv.Atoi(k); err == nil && i >= 0 && i < len(hits) {
				return i
			}
			return -1
		}, r, listPage, maxListPage)
		if e != nil {
			return nil, e
		}
	}
	return searchResult(hits, pg, keyOf), nil
}

// typesOf returns the values of the form's types field, each followed by a space.
func typesOf(x xmlstream.Element) []byte {
	var out []byte
	for it := x.Children(); ; {
		f, ok := it.Next()
		if !ok {
			return out
		}
		if v, _ := f.AppendAttr(nil, "var"); string(v) != "types" {
			continue
		}
		for vi := f.Children(); ; {
			v, ok := vi.Next()
			if !ok {
				break
			}
			out = append(v.AppendText(out), ' ')
		}
	}
}

func searchResult(hits []searchHit, pg rsm.Page, keyOf func(i int) string) []byte {
	var b xmlstream.Builder
	b.Start("result").Attr("xmlns", NSSearch)
	for _, h := range hits[pg.Lo:pg.Hi] {
		b.Start("item").Attr("address", h.addr)
		name := h.e.name
		if name == "" {
			name, _, _ = strings.Cut(h.addr, "@")
		}
		b.Start("name").Text(name).End()
		if h.e.card.desc != "" {
			b.Start("description").Text(h.e.card.desc).End()
		}
		if h.e.card.lang != "" {
			b.Start("language").Text(h.e.card.lang).End()
		}
		b.Start("nusers").Text(strconv.Itoa(h.e.occupants)).End()
		b.Start("service-type").Text("xep-0045").End()
		b.Start("is-open").Text(strconv.FormatBool(h.e.card.open)).End()
		if h.e.card.nonAnon {
			b.Start("anonymity-mode").Text(anonNone).End()
		} else {
			b.Start("anonymity-mode").Text("muc_semianonymous").End()
		}
		b.End()
	}
	if keyOf != nil {
		pg.Append(&b, keyOf)
	}
	b.End()
	return b.B
}

// searchForm is the search form with every field this service takes and its default.
func searchForm() []byte {
	var b xmlstream.Builder
	field := func(typ, v, label, value string) *xmlstream.Builder {
		b.Start("field").Attr("type", typ).Attr("var", v)
		if label != "" {
			b.Attr("label", label)
		}
		if value != "" {
			b.Start("value").Text(value).End()
		}
		return &b
	}
	b.Start("search").Attr("xmlns", NSSearch).Start("x").Attr("xmlns", ns.DataForms).Attr("type", "form")
	field("hidden", "FORM_TYPE", "", nsSearchParams).End()
	field("text-single", "q", "Search for", "").End()
	field("boolean", "all", "Return all entries (ignore search terms)", "false").End()
	field("boolean", "sinname", "Search in name", "true").End()
	field("boolean", "sindescription", "Search in description", "true").End()
	field("boolean", "sinaddress", "Search in address", "true").End()
	field("text-single", "min_users", "Minimum number of users", "1").End()
	field("list-multi", "types", "Service types", "xep-0045").
		Start("option").Attr("label", "XEP-0045 Multi User Chats").Start("value").Text("xep-0045").End().End().End()
	field("list-single", "key", "Sort results by", orderNUsers).
		Start("option").Attr("label", "Number of online users").Start("value").Text(orderNUsers).End().End().
		Start("option").Attr("label", "Address").Start("value").Text(orderAddress).End().End().End()
	b.End().End()
	return b.B
}

// searchError is a stanza error with XEP-0433's application condition (raw XML).
func searchError(cond stanza.Condition, typ stanza.ErrorType, text, app string) *stanza.Error {
	e := stanza.New(cond)
	e.Type = typ
	e.Text = text
	e.AppCondition = []byte(app)
	return e
}

// search returns the public, unlocked rooms that match says yes to, sorted by address.
func (d *directory) search(match func(addr string, e *dirEntry) bool) []searchHit {
	d.mu.Lock()
	var out []searchHit
	for k, e := range d.rooms {
		if e.public && !e.locked && match(k, e) {
			out = append(out, searchHit{addr: k, e: *e})
		}
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].addr < out[j].addr })
	return out
}
