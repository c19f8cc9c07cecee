package module

import (
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"strings"
)

// CapsNode is the XEP-0115 node URI of the server software.
const CapsNode = "https://github.com/vireo-im/vireo"

// CapsVer computes the XEP-0115 §5.1 verification string (SHA-1) of identities and
// features (identities without xml:lang; the server has no extended forms).
func CapsVer(ids []Identity, features []string) string {
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
	h := sha1.Sum([]byte(s.String()))
	return base64.StdEncoding.EncodeToString(h[:])
}
