package upload

import (
	"mime"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Request is a parsed XEP-0363 §4 slot request.
type Request struct {
	// Filename is the cleaned file name (CleanFilename), safe for a URL path segment
	// after escaping and for a file name on disk.
	Filename string
	Size     int64
	// ContentType is the announced media type, "" when the client sent none.
	ContentType string
}

// maxContentType bounds the content-type attribute (RFC 6838 allows 127+127 for type and
// subtype; parameters such as charset fit in the rest).
const maxContentType = 255

// maxFilename bounds a cleaned file name in bytes: the limit of most file systems.
const maxFilename = 255

// ParseRequest reads <request xmlns='urn:xmpp:http:upload:0' filename size content-type/>.
// e must be that element (the caller checks name and namespace). A missing or unusable
// attribute is bad-request with a text saying which.
func ParseRequest(e xmlstream.Element) (Request, *stanza.Error) {
	var r Request
	name, ok := e.AppendAttr(nil, "filename")
	if !ok {
		return r, badRequest("missing filename")
	}
	clean, ok := CleanFilename(string(name))
	if !ok {
		return r, badRequest("unusable filename")
	}
	r.Filename = clean
	size, ok := e.AppendAttr(nil, "size")
	if !ok {
		return r, badRequest("missing size")
	}
	n, err := strconv.ParseInt(string(size), 10, 64)
	if err != nil || n < 0 || size[0] == '+' {
		return r, badRequest("size must be a number of bytes")
	}
	r.Size = n
	if ct, ok := e.AppendAttr(nil, "content-type"); ok && len(ct) > 0 {
		if !validContentType(string(ct)) {
			return r, badRequest("unusable content-type")
		}
		r.ContentType = string(ct)
	}
	return r, nil
}

func badRequest(text string) *stanza.Error {
	e := stanza.New(stanza.BadRequest)
	e.Text = text
	return e
}

// validContentType accepts a media type (RFC 2045 syntax, as mime.ParseMediaType reads
// it) of printable ASCII that fits in a header line.
func validContentType(s string) bool {
	if len(s) > maxContentType {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	mt, _, err := mime.ParseMediaType(s)
	return err == nil && strings.Contains(mt, "/")
}

// CleanFilename returns name made safe as the last element of a path and of a URL: spaces
// trimmed, characters that shells, URLs or other file systems treat specially replaced by
// '_', and a leading dot replaced so the file is never hidden or taken for "." or "..". It
// refuses (ok false) what cannot be made a name without guessing: empty names, invalid
// UTF-8, control characters, path separators and names longer than 255 bytes.
func CleanFilename(name string) (string, bool) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxFilename || !utf8.ValidString(name) {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(name))
	for i, c := range name {
		switch {
		case c == '/' || c == '\\' || c == 0:
			return "", false
		case unicode.IsControl(c) || c == utf8.RuneError:
			return "", false
		case strings.ContainsRune(`"*:<>?|%#`, c):
			b.WriteByte('_')
		case i == 0 && c == '.':
			b.WriteByte('_')
		case unicode.IsSpace(c) && c != ' ':
			b.WriteByte('_')
		case c == '\u200e' || c == '\u200f' || (c >= '\u202a' && c <= '\u202e') || (c >= '\u2066' && c <= '\u2069'):
			// Bidirectional overrides disguise extensions ("gpj.exe" shown as "exe.jpg").
			b.WriteByte('_')
		default:
			b.WriteRune(c)
		}
	}
	return b.String(), true
}
