package mam

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	resultset "github.com/vireo-im/vireo/modules/rsm"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Parser limits: a query names a handful of fields; anything much larger is not a query
// but an attempt to make the server work.
const (
	// MaxIDs bounds the values of the #extended 'ids' field (bad-request beyond): one
	// page's worth, as the results come back in one page anyway.
	MaxIDs = 250
	// maxFieldBytes bounds one field value (JIDs are at most 3,071 bytes).
	maxFieldBytes = 4 << 10
)

// Query is a parsed XEP-0313 §4 query: the data form's filters, XEP-0059 paging and
// <flip-page/>. Zero values mean "not given".
type Query struct {
	QueryID  string
	With     jid.JID   // 'with': bare or full
	Start    time.Time // 'start', inclusive
	End      time.Time // 'end', inclusive
	AfterID  *sid.ID   // 'after-id' (#extended), exclusive
	BeforeID *sid.ID   // 'before-id' (#extended), exclusive
	IDs      []sid.ID  // 'ids' (#extended); nil when absent
	// RSM (XEP-0059 §2): Max is -1 when absent. Before with HasBefore and a nil ID asks
	// for the last page.
	Max       int
	After     *sid.ID
	HasBefore bool
	Before    *sid.ID
	Index     int // -1 when absent
	Flip      bool
}

func badRequest(text string) *stanza.Error {
	return &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: text}
}

// notFound is the XEP-0313 §4.1.3 / §4.3 answer for an id that is not in the archive
// (or that this server never makes).
func notFound() *stanza.Error {
	return &stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound, Text: "no such message in the archive"}
}

// parseID reads an archive id given by a client; one that is not of our making cannot be
// in the archive.
func parseID(v []byte) (sid.ID, *stanza.Error) {
	id, ok := sid.ParseID(bytes.TrimSpace(v))
	if !ok {
		return id, notFound()
	}
	return id, nil
}

// ParseQuery reads <query xmlns='urn:xmpp:mam:2'/> (q must be that element). Errors are
// the stanza errors to answer with: bad-request for malformed values,
// feature-not-implemented for a form field this server does not know (§4.1.5),
// item-not-found for an id the server never issued.
func ParseQuery(q xmlstream.Element) (Query, *stanza.Error) {
	out := Query{Max: -1, Index: -1}
	if v, ok := q.AppendAttr(nil, "queryid"); ok {
		if len(v) > maxFieldBytes {
			return out, badRequest("queryid too long")
		}
		out.QueryID = string(v)
	}
	if _, ok := q.AppendAttr(nil, "node"); ok {
		// §5.1.3: reserved for pubsub archives (XEP-0442), which accounts do not have.
		return out, &stanza.Error{Type: stanza.Cancel, Condition: stanza.FeatureNotImplemented, Text: "no pubsub archive here"}
	}
	seenForm, seenSet := false, false
	for it := q.Children(); ; {
		c, ok := it.Next()
		if !ok {
			break
		}
		switch space, name := string(c.NS()), string(c.Name()); {
		case space == ns.DataForms && name == "x":
			if seenForm {
				return out, badRequest("more than one form")
			}
			seenForm = true
			if e := parseForm(c, &out); e != nil {
				return out, e
			}
		case space == NSRSM && name == "set":
			if seenSet {
				return out, badRequest("more than one RSM set")
			}
			seenSet = true
			if e := parseRSM(c, &out); e != nil {
				return out, e
			}
		case space == NS && name == "flip-page":
			out.Flip = true
		}
	}
	if out.Index >= 0 && (out.After != nil || out.HasBefore) {
		return out, badRequest("RSM index cannot be combined with after or before")
	}
	return out, nil
}

// fieldValues returns the text of each <value/> of a form field.
func fieldValues(f xmlstream.Element) ([][]byte, *stanza.Error) {
	var vals [][]byte
	for it := f.Children(); ; {
		v, ok := it.Next()
		if !ok {
			return vals, nil
		}
		if string(v.Name()) != "value" || string(v.NS()) != ns.DataForms {
			continue
		}
		t := v.AppendText(nil)
		if len(t) > maxFieldBytes {
			return nil, badRequest("form value too long")
		}
		vals = append(vals, t)
	}
}

// single returns the one value of a single-valued field ("" for none).
func single(f xmlstream.Element, name string) ([]byte, *stanza.Error) {
	vals, e := fieldValues(f)
	if e != nil {
		return nil, e
	}
	switch len(vals) {
	case 0:
		return nil, nil
	case 1:
		return bytes.TrimSpace(vals[0]), nil
	}
	return nil, badRequest("field '" + name + "' takes one value")
}

// parseForm reads the XEP-0004 form of a query (§4.1).
func parseForm(x xmlstream.Element, q *Query) *stanza.Error {
	if t, ok := x.AppendAttr(nil, "type"); ok && string(t) != "submit" {
		return badRequest("the query form must be of type submit")
	}
	seen := map[string]bool{}
	for it := x.Children(); ; {
		f, ok := it.Next()
		if !ok {
			return nil
		}
		if string(f.Name()) != "field" || string(f.NS()) != ns.DataForms {
			continue
		}
		vb, _ := f.AppendAttr(nil, "var")
		v := string(vb)
		if seen[v] {
			return badRequest("field '" + v + "' given twice")
		}
		seen[v] = true
		if v == "ids" {
			vals, e := fieldValues(f)
			if e != nil {
				return e
			}
			if len(vals) > MaxIDs {
				return badRequest("at most " + strconv.Itoa(MaxIDs) + " ids per query")
			}
			q.IDs = make([]sid.ID, 0, len(vals))
			for _, s := range vals {
				id, e := parseID(s)
				if e != nil {
					return e
				}
				q.IDs = append(q.IDs, id)
			}
			continue
		}
		val, e := single(f, v)
		if e != nil {
			return e
		}
		switch v {
		case "FORM_TYPE":
			if string(val) != NS {
				return badRequest("FORM_TYPE must be " + NS)
			}
		case "with":
			if len(val) == 0 {
				continue
			}
			j, err := jid.ParseBytes(val)
			if err != nil {
				return &stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed, Text: "'with' is not a JID"}
			}
			q.With = j
		case "start", "end":
			if len(val) == 0 {
				continue
			}
			t, err := parseTime(string(val))
			if err != nil {
				return badRequest("'" + v + "' is not an XEP-0082 DateTime")
			}
			if v == "start" {
				q.Start = t
			} else {
				q.End = t
			}
		case "after-id", "before-id":
			if len(val) == 0 {
				continue
			}
			id, e := parseID(val)
			if e != nil {
				return e
			}
			if v == "after-id" {
				q.AfterID = &id
			} else {
				q.BeforeID = &id
			}
		case "":
			return badRequest("a field without var")
		default:
			// §4.1.5: a field the server does not recognise.
			return &stanza.Error{Type: stanza.Cancel, Condition: stanza.FeatureNotImplemented, Text: "unknown field '" + v + "'"}
		}
	}
}

// parseTime reads an XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err
}

// parseRSM reads an XEP-0059 <set/> request (modules/rsm) into q: max, after, before
// (empty for the last page), index, with the keys as archive ids.
func parseRSM(set xmlstream.Element, q *Query) *stanza.Error {
	r, e := resultset.ParseSet(set)
	if e != nil {
		return e
	}
	q.Max, q.Index = r.Max, r.Index
	if r.HasAfter {
		id, e := parseID([]byte(r.After))
		if e != nil {
			return e
		}
		q.After = &id
	}
	if r.HasBefore {
		q.HasBefore = true
		if strings.TrimSpace(r.Before) != "" {
			id, e := parseID([]byte(r.Before))
			if e != nil {
				return e
			}
			q.Before = &id
		}
	}
	return nil
}
