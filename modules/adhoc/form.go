package adhoc

import (
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// Field is one field of a form or a result the server sends (XEP-0004 §3.2).
type Field struct {
	Var, Type, Label string
	Required         bool
	Values           []string
	Options          []string // list-single choices
}

// appendForm writes <x xmlns='jabber:x:data' type='typ'> with FORM_TYPE formType (XEP-0133
// §4 uses the admin namespace for every form and result; "" writes none) and fields.
func appendForm(b *xmlstream.Builder, typ, formType, title, instructions string, fields []Field, extra []byte) {
	b.Start("x").Attr("xmlns", ns.DataForms).Attr("type", typ)
	if title != "" {
		b.Start("title").Text(title).End()
	}
	if instructions != "" && typ == "form" {
		b.Start("instructions").Text(instructions).End()
	}
	if formType != "" {
		b.Start("field").Attr("var", "FORM_TYPE").Attr("type", "hidden").
			Start("value").Text(formType).End().End()
	}
	for _, f := range fields {
		b.Start("field").Attr("var", f.Var)
		if f.Type != "" {
			b.Attr("type", f.Type)
		}
		if f.Label != "" {
			b.Attr("label", f.Label)
		}
		if f.Required && typ == "form" {
			b.Start("required").End()
		}
		for _, v := range f.Values {
			b.Start("value").Text(v).End()
		}
		for _, o := range f.Options {
			b.Start("option").Attr("label", o).Start("value").Text(o).End().End()
		}
		b.End()
	}
	b.Raw(extra)
	b.End()
}

// Note is an XEP-0050 §3.4 <note/>: Type is info, warn or error.
type Note struct{ Type, Text string }

// Status is the XEP-0050 'status' of a response.
type Status string

// Statuses.
const (
	Executing Status = "executing"
	Completed Status = "completed"
	Canceled  Status = "canceled"
)

// Response is what the server answers a command request with.
type Response struct {
	Node, SessionID string
	Status          Status
	Notes           []Note
	// Form is sent as type='form' while executing and type='result' once completed.
	Title, Instructions string
	Fields              []Field
	HasForm             bool
	// Extra is complete XML elements the form carries after its fields (XEP-0133 §4.8's
	// jabber:iq:roster <query/>).
	Extra []byte
	// FormType is the form's FORM_TYPE ("" for none).
	FormType string
}

// Append serializes r as the payload of the IQ result (XEP-0050 §3.4).
func (r *Response) Append(b *xmlstream.Builder) {
	b.Start("command").Attr("xmlns", NS).Attr("node", r.Node)
	if r.SessionID != "" {
		b.Attr("sessionid", r.SessionID)
	}
	b.Attr("status", string(r.Status))
	if r.Status == Executing {
		// Every command here has one form stage: complete is the only way on.
		b.Start("actions").Attr("execute", "complete").Start("complete").End().End()
	}
	for _, n := range r.Notes {
		b.Start("note").Attr("type", n.Type).Text(n.Text).End()
	}
	if r.HasForm {
		typ := "result"
		if r.Status == Executing {
			typ = "form"
		}
		appendForm(b, typ, r.FormType, r.Title, r.Instructions, r.Fields, r.Extra)
	}
	b.End()
}
