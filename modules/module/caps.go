package module

import (
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"strings"
)

// CapsNode is the XEP-0115 node URI of the server software.
const CapsNode = "https://github.com/vireo-im/vireo"

// Form is an XEP-0128 extended information form in disco#info: a result form whose
// hidden FORM_TYPE field is Type.
type Form struct {
	Type   string
	Fields []FormField
}

// FormField is one field of a Form, with its values in order.
type FormField struct {
	Var    string
	Values []string
}

// CapsVer computes the XEP-0115 §5.1 verification string (SHA-1) of identities, features
// and extended information forms (identities without xml:lang).
func CapsVer(ids []Identity, features []string, forms ...Form) string {
	var s strings.Builder
	idl := make([]string, 0, len(ids))
	for _, id := range ids {
		idl = append(idl, id.Category+"/"+id.Type+"//"+id.Name)
	}
	sort.Strings(idl)
	for _, x := range idl {
		s.WriteString(x)
		s.WriteByte('<')
	}
	fs := append([]string(nil), features...)
	sort.Strings(fs)
	for _, f := range fs {
		s.WriteString(f)
		s.WriteByte('<')
	}
	// §5.1 step 6: forms by FORM_TYPE, then each form's fields by var with their values
	// sorted, FORM_TYPE itself first and without its var.
	forms = append([]Form(nil), forms...)
	sort.Slice(forms, func(a, b int) bool { return forms[a].Type < forms[b].Type })
	for _, f := range forms {
		s.WriteString(f.Type)
		s.WriteByte('<')
		fields := append([]FormField(nil), f.Fields...)
		sort.Slice(fields, func(a, b int) bool { return fields[a].Var < fields[b].Var })
		for _, fl := range fields {
			s.WriteString(fl.Var)
			s.WriteByte('<')
			vs := append([]string(nil), fl.Values...)
			sort.Strings(vs)
			for _, v := range vs {
				s.WriteString(v)
				s.WriteByte('<')
			}
		}
	}
	h := sha1.Sum([]byte(s.String()))
	return base64.StdEncoding.EncodeToString(h[:])
}
