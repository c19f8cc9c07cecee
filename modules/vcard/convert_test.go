package vcard

import (
	"testing"

	"github.com/vireo-im/vireo/modules/pep"
	"github.com/vireo-im/vireo/xmlstream"
)

// TestVCardWithPhoto: the PEP avatar replaces the PHOTO (or removes it), keeps the other
// fields, and reports no change for the photo the card already has, even line-wrapped.
func TestVCardWithPhoto(t *testing.T) {
	img := []byte("\x89PNG not really")
	a := &pep.Avatar{ID: pep.AvatarID(img), Type: "image/png", Data: img}
	const b64 = "iVBORyBub3QgcmVhbGx5" // base64(img)
	for _, tc := range []struct {
		name, old string
		a         *pep.Avatar
		want      string // "" = unchanged
	}{
		{"no card", "", a, "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>" + b64 + "</BINVAL></PHOTO></vCard>"},
		{"other fields kept", "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><EXTVAL>http://x</EXTVAL></PHOTO><NICKNAME>a</NICKNAME></vCard>", a,
			"<vCard xmlns='vcard-temp'><FN>A</FN><NICKNAME>a</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>" + b64 + "</BINVAL></PHOTO></vCard>"},
		{"same photo wrapped", "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORyBub3Qg\n  cmVhbGx5</BINVAL></PHOTO></vCard>", a, ""},
		{"removed", "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><BINVAL>" + b64 + "</BINVAL></PHOTO></vCard>", nil, "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>"},
		{"nothing to remove", "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>", nil, ""},
		{"no card, nothing to remove", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var old []byte
			if tc.old != "" {
				old = []byte(tc.old)
			}
			got, changed := withPhoto(old, tc.a)
			if !changed {
				if tc.want != "" {
					t.Fatalf("unchanged, want %s", tc.want)
				}
				return
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			e, err := xmlstream.ParseElement(got, "")
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := photo(e); tc.a != nil && (!ok || p.typ != tc.a.Type || string(p.data) != string(img)) {
				t.Fatalf("photo() of the new card: %+v %v", p, ok)
			}
		})
	}
}
