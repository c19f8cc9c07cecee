package captcha

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/xmlstream"
)

func TestFormValues(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"answer", `<x xmlns='jabber:x:data' type='submit'><field var='challenge'><value>c1</value></field>` +
			`<field var='ocr'><value>AB&amp;C</value></field><field var='empty'/></x>`, map[string]string{"challenge": "c1", "ocr": "AB&C"}},
		{"other namespace", `<x xmlns='jabber:x:data'><field xmlns='urn:other' var='ocr'><value>no</value></field></x>`, map[string]string{}},
		{"first value", `<x xmlns='jabber:x:data'><field var='ocr'><value>one</value><value>two</value></field></x>`, map[string]string{"ocr": "one"}},
	} {
		e, err := xmlstream.ParseElement([]byte(tc.in), "jabber:client")
		if err != nil {
			t.Fatal(err)
		}
		got := FormValues(e)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	var b strings.Builder
	b.WriteString("<x xmlns='jabber:x:data'>")
	for i := range 100 {
		fmt.Fprintf(&b, "<field var='f%d'><value>v</value></field>", i)
	}
	b.WriteString("</x>")
	e, _ := xmlstream.ParseElement([]byte(b.String()), "jabber:client")
	if n := len(FormValues(e)); n != maxFields {
		t.Errorf("a form of 100 fields read as %d, want %d", n, maxFields)
	}
}

// FuzzFormValues: any element reads as at most maxFields values, without a panic.
func FuzzFormValues(f *testing.F) {
	f.Add([]byte(`<x xmlns='jabber:x:data' type='submit'><field var='challenge'><value>c1</value></field></x>`))
	f.Add([]byte(`<x xmlns='jabber:x:data'><field><value/></field><field var=''/></x>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := xmlstream.ParseElement(in, "jabber:client")
		if err != nil {
			return
		}
		if n := len(FormValues(e)); n > maxFields {
			t.Fatalf("%d fields", n)
		}
	})
}
