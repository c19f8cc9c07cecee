package upload

import (
	"net/url"
	"testing"

	"github.com/vireo-im/vireo/xmlstream/xmltest"
)

// FuzzUploadRequest feeds arbitrary well-formed payloads to ParseRequest: it must not
// panic, and an accepted file name must be clean (cleaning it again changes nothing) and
// come back unchanged through the slot URL's path.
func FuzzUploadRequest(f *testing.F) {
	for _, s := range []string{
		`<request xmlns='urn:xmpp:http:upload:0' filename='a.jpg' size='23456' content-type='image/jpeg'/>`,
		`<request xmlns='urn:xmpp:http:upload:0' filename='../../x' size='1'/>`,
		`<request xmlns='urn:xmpp:http:upload:0' filename='.a b%2f#?' size='0' content-type='text/plain; charset=utf-8'/>`,
		`<request xmlns='urn:xmpp:http:upload:0' filename='&#x202e;x' size='-5'/>`,
	} {
		f.Add([]byte(s))
	}
	id := newSlotID()
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, ok := xmltest.IQPayload(raw)
		if !ok {
			return
		}
		r, serr := ParseRequest(e)
		if serr != nil {
			return
		}
		if r.Size < 0 {
			t.Fatalf("negative size accepted: %q", raw)
		}
		if again, ok := CleanFilename(r.Filename); !ok || again != r.Filename {
			t.Fatalf("accepted name %q is not clean (%q, %v)", r.Filename, again, ok)
		}
		u, err := url.Parse("https://upload.example.org/" + id + "/" + url.PathEscape(r.Filename))
		if err != nil {
			t.Fatalf("slot URL for %q: %v", r.Filename, err)
		}
		gid, name, ok := splitPath(u.Path)
		if !ok || gid != id || name != r.Filename {
			t.Fatalf("slot URL path %q reads back as %q %q %v", u.Path, gid, name, ok)
		}
	})
}

// FuzzUploadPath: splitPath never accepts a name that could leave the slot's directory.
func FuzzUploadPath(f *testing.F) {
	for _, s := range []string{"/0123456789abcdef0123456789abcdef/a.txt", "/../x", "/0123456789abcdef0123456789abcdef/..", "//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		id, name, ok := splitPath(p)
		if !ok {
			return
		}
		if !validID(id) || name == "" || name == "." || name == ".." {
			t.Fatalf("%q accepted as %q %q", p, id, name)
		}
		for i := 0; i < len(name); i++ {
			if name[i] == '/' || name[i] == '\\' || name[i] == 0 {
				t.Fatalf("%q accepted with separator in name %q", p, name)
			}
		}
	})
}
