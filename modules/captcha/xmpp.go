package captcha

import (
	"encoding/base64"
	"strconv"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// maxFields bounds the fields FormValues reads: a CAPTCHA form has a handful, and the
// answer comes from anyone.
const maxFields = 32

// FormValues reads a submitted data form (the answer to a challenge, and whatever else
// the form asked): the first value of each field, by var, at most maxFields of them.
func FormValues(x xmlstream.Element) map[string]string {
	f := map[string]string{}
	for it := x.Children(); len(f) < maxFields; {
		fe, ok := it.Next()
		if !ok {
			break
		}
		if string(fe.NS()) != ns.DataForms || string(fe.Name()) != "field" {
			continue
		}
		v, _ := fe.AppendAttr(nil, "var")
		if val, ok := fe.Child(ns.DataForms, "value"); ok {
			f[string(v)] = string(val.AppendText(nil))
		}
	}
	return f
}

const (
	nsBoB   = "urn:xmpp:bob"
	nsMedia = "urn:xmpp:media-element"
)

// AppendFields writes the XEP-0158 §4 fields that carry c into an open data form: 'from'
// (what the challenge is for), the challenge id, 'sid' (the id of the stanza it answers)
// and the required "ocr" field, whose XEP-0221 media names the image by its cid.
func (c *Challenge) AppendFields(b *xmlstream.Builder, from, sid string) {
	field := func(v, typ, label string) *xmlstream.Builder {
		b.Start("field").Attr("var", v).Attr("type", typ)
		if label != "" {
			b.Attr("label", label)
		}
		return b
	}
	field("from", "hidden", "").Start("value").Text(from).End().End()
	field("challenge", "hidden", "").Start("required").End().Start("value").Text(c.ID).End().End()
	field("sid", "hidden", "").Start("value").Text(sid).End().End()
	field("ocr", "text-single", "Enter the text you see").Start("required").End().
		Start("media").Attr("xmlns", nsMedia).Attr("width", strconv.Itoa(Width)).Attr("height", strconv.Itoa(Height)).
		Start("uri").Attr("type", "image/png").Text("cid:" + c.CID()).End().End().End()
}

// AppendData writes the image as XEP-0231 data, beside the form in the same stanza; max-age
// 0: a client keeps it for this form only.
func (c *Challenge) AppendData(b *xmlstream.Builder) {
	b.Start("data").Attr("xmlns", nsBoB).Attr("cid", c.CID()).Attr("type", "image/png").Attr("max-age", "0").
		Text(base64.StdEncoding.EncodeToString(c.PNG)).End()
}
