package engine

import (
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// maxStrays is how many stanzas one SASL exchange answers before the stream is closed with
// not-authorized. An authenticated stream waiting to bind has no such count: its user is
// known, and the pre-auth deadline still ends it.
const maxStrays = 8

// onStray answers a stanza that arrived after the client started authenticating but before
// it bound a resource, and reports whether it did; false leaves the element to the
// not-authorized stream error (RFC 6120 §4.9.3.12).
//
// Web clients that reconnect keep running the previous session's code: Converse.js 14
// sends the OMEMO device-list query and the ack request (<r/>) of its old session right
// after its new <auth/>. A stream error there ends the reconnection, and Converse then
// re-sends its stale SASL response on the next stream and tells its user the password is
// wrong. Prosody answers such a stanza with a stanza error, ignores the <r/> of a stream
// without XEP-0198, and keeps the stream; so does this, for a few of them per exchange: an
// IQ request or a message gets <not-authorized/> (it was not processed), anything else is
// dropped. A stream that has not started SASL, or that keeps sending, still gets the
// stream error.
func (c *conn) onStray(st *xmlstream.Stanza, state uint32) bool {
	smAck := string(st.NS) == nsSM && (string(st.Name) == "r" || string(st.Name) == "a")
	if st.Kind() == xmlstream.KindOther && !smAck {
		return false
	}
	if state != stBind {
		if c.auth == nil || c.auth.strays >= maxStrays {
			return false
		}
		c.auth.strays++
	}
	typ, _ := st.Attr("type")
	id, _ := st.Attr("id")
	switch t := string(typ); {
	case st.Kind() == xmlstream.KindIQ && (t == "get" || t == "set"):
		c.iqError(id, stanza.New(stanza.NotAuthorizedCond))
	case st.Kind() == xmlstream.KindMessage && t != "error":
		var b xmlstream.Builder
		b.Start("message").Attr("type", "error")
		if id != nil {
			b.AttrBytes("id", xmlstream.AppendUnescaped(nil, id))
		}
		b.Raw(stanza.New(stanza.NotAuthorizedCond).AppendXML(nil))
		b.End()
		c.write(b.B)
	}
	return true
}
