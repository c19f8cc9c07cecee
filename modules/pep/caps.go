package pep

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"sort"
	"strings"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// discoInfo is what a disco#info result says, enough to check an XEP-0115 ver.
type discoInfo struct {
	ids      []string   // CATEGORY/TYPE/LANG/NAME
	features []string   // sorted
	forms    [][]string // each: FORM_TYPE, then var, values..., per field, already in hash order
}

// parseDiscoInfo reads a disco#info <query/>. ok is false when it breaks the XEP-0115
// §5.4 rules that make a ver unverifiable (duplicate identities, features or form types).
func parseDiscoInfo(q xmlstream.Element) (discoInfo, bool) {
	var d discoInfo
	seen := map[string]bool{}
	formTypes := map[string]bool{}
	it := q.Children()
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		switch {
		case string(e.NS()) == ns.DiscoInfo && string(e.Name()) == "identity":
			c, _ := e.AppendAttr(nil, "category")
			t, _ := e.AppendAttr(nil, "type")
			var l []byte
			if v, ok := e.AttrNS(ns.XML, "lang"); ok {
				l = xmlstream.AppendUnescaped(nil, v)
			}
			n, _ := e.AppendAttr(nil, "name")
			s := string(c) + "/" + string(t) + "/" + string(l) + "/" + string(n)
			if seen["i"+s] {
				return d, false
			}
			seen["i"+s] = true
			d.ids = append(d.ids, s)
		case string(e.NS()) == ns.DiscoInfo && string(e.Name()) == "feature":
			v, _ := e.AppendAttr(nil, "var")
			if seen["f"+string(v)] {
				return d, false
			}
			seen["f"+string(v)] = true
			d.features = append(d.features, string(v))
		case string(e.NS()) == ns.DataForms && string(e.Name()) == "x":
			f, ft, ok := formForHash(e)
			if !ok {
				continue // §5.4 3.6: a form without a hidden FORM_TYPE is ignored
			}
			if formTypes[ft] {
				return d, false
			}
			formTypes[ft] = true
			d.forms = append(d.forms, f)
		}
	}
	sort.Strings(d.ids)
	sort.Strings(d.features)
	sort.Slice(d.forms, func(i, j int) bool { return d.forms[i][0] < d.forms[j][0] })
	return d, true
}

func formForHash(x xmlstream.Element) ([]string, string, bool) {
	type fld struct {
		v    string
		vals []string
	}
	var fields []fld
	formType, hidden := "", false
	it := x.Children()
	for fe, ok := it.Next(); ok; fe, ok = it.Next() {
		if string(fe.Name()) != "field" {
			continue
		}
		v, _ := fe.AppendAttr(nil, "var")
		var vals []string
		vit := fe.Children()
		for ve, ok := vit.Next(); ok; ve, ok = vit.Next() {
			if string(ve.Name()) == "value" {
				vals = append(vals, string(ve.AppendText(nil)))
			}
		}
		if string(v) == "FORM_TYPE" {
			t, _ := fe.AppendAttr(nil, "type")
			hidden = string(t) == "hidden"
			if len(vals) > 0 {
				formType = vals[0]
			}
			continue
		}
		sort.Strings(vals)
		fields = append(fields, fld{string(v), vals})
	}
	if !hidden || formType == "" {
		return nil, "", false
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].v < fields[j].v })
	out := []string{formType}
	for _, f := range fields {
		out = append(out, f.v)
		out = append(out, f.vals...)
	}
	return out, formType, true
}

// ver computes the XEP-0115 §5.1 verification string of d with the named hash ("sha-1",
// "sha-256", "sha-512"); ok is false for other hashes.
func (d discoInfo) ver(hashName string) (string, bool) {
	var h hash.Hash
	switch strings.ToLower(hashName) {
	case "sha-1":
		h = sha1.New()
	case "sha-256":
		h = sha256.New()
	case "sha-512":
		h = sha512.New()
	default:
		return "", false
	}
	var s strings.Builder
	for _, x := range d.ids {
		s.WriteString(x)
		s.WriteByte('<')
	}
	for _, x := range d.features {
		s.WriteString(x)
		s.WriteByte('<')
	}
	for _, f := range d.forms {
		for _, x := range f {
			s.WriteString(x)
			s.WriteByte('<')
		}
	}
	h.Write([]byte(s.String()))
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), true
}
