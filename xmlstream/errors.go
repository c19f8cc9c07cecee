package xmlstream

import "github.com/vireo-im/vireo/xmlstream/stanza"

// The stream errors Next returns. They are shared values so that failing costs no allocation;
// callers must treat them as read-only. errors.Is(err, stanza.NotWellFormed) and friends work.
var (
	errChar        = nwf("character not allowed by XML 1.0")
	errUTF8        = nwf("invalid UTF-8")
	errTag         = nwf("malformed tag")
	errLTInAttr    = nwf("'<' in attribute value")
	errRef         = nwf("malformed character or entity reference")
	errCharRef     = nwf("character reference to a non-XML character")
	errCDEnd       = nwf("']]>' in character data")
	errMismatch    = nwf("end tag does not match start tag")
	errDupAttr     = nwf("duplicate attribute")
	errQName       = nwf("malformed qualified name")
	errReservedNS  = nwf("reserved namespace prefix or name misused")
	errEmptyPrefix = nwf("namespace prefix bound to the empty name")
	errDecl        = nwf("malformed XML declaration")
	errStreamClose = nwf("end tag does not close the stream")
	errStreamAgain = nwf("stream header inside an open stream")
	errAfterEnd    = nwf("data after the end of the stream")
	errMarkup      = nwf("markup not allowed here")
	errProlog      = nwf("character data before the stream header")
	errInternal    = nwf("inconsistent element") // the two passes disagree: a bug, never a panic
	errBail        = nwf("fast path gave up")    // internal: never returned by Next

	errUnbound = &stanza.StreamError{Condition: stanza.BadNamespacePrefix, Text: "unbound namespace prefix"}
	errNoPfx   = &stanza.StreamError{Condition: stanza.BadNamespacePrefix, Text: "stream element needs a namespace prefix"}

	errComment = restricted("comments are not allowed")
	errPI      = restricted("processing instructions are not allowed")
	errDTD     = restricted("DTDs and markup declarations are not allowed")
	errEntity  = restricted("entity references other than the predefined ones are not allowed")

	errEncoding = &stanza.StreamError{Condition: stanza.UnsupportedEncoding, Text: "only UTF-8 is supported"}

	errStanzaSize = policy("stanza too large")
	errHeaderSize = policy("stream header too large")
	errDepth      = policy("elements nested too deep")
	errAttrs      = policy("too many attributes")
	errBinds      = policy("too many namespace declarations in scope")
	errName       = policy("name too long")

	errStreamNS  = &stanza.StreamError{Condition: stanza.InvalidNamespace, Text: "root element is not stream in http://etherx.jabber.org/streams"}
	errContentNS = &stanza.StreamError{Condition: stanza.InvalidNamespace, Text: "wrong content namespace"}

	errText        = &stanza.StreamError{Condition: stanza.BadFormat, Text: "character data at stream level"}
	errEmptyHeader = &stanza.StreamError{Condition: stanza.BadFormat, Text: "stream header is an empty element"}

	errNotReset = &stanza.StreamError{Condition: stanza.InternalServerError, Text: "xmlstream: State used before Reset"}
)

// errTable lists every error Next returns, so that a State keeps its sticky error in one byte.
var errTable = []*stanza.StreamError{nil,
	errChar, errUTF8, errTag, errLTInAttr, errRef, errCharRef, errCDEnd, errMismatch, errDupAttr,
	errQName, errReservedNS, errEmptyPrefix, errDecl, errStreamClose, errAfterEnd, errMarkup,
	errProlog, errInternal, errUnbound, errNoPfx, errComment, errPI, errDTD, errEntity,
	errEncoding, errStanzaSize, errHeaderSize, errDepth, errAttrs, errBinds, errName, errStreamNS,
	errContentNS, errText, errEmptyHeader, errNotReset, errStreamAgain,
}

// errIndex returns err's index in errTable.
func errIndex(err *stanza.StreamError) uint8 {
	for i, e := range errTable {
		if e == err {
			return uint8(i)
		}
	}
	if invariants {
		panic("xmlstream: error missing from errTable: " + err.Error())
	}
	return errIndex(errInternal) // unreachable: every error Next returns is in the table
}

func nwf(text string) *stanza.StreamError {
	return &stanza.StreamError{Condition: stanza.NotWellFormed, Text: text}
}

func restricted(text string) *stanza.StreamError {
	return &stanza.StreamError{Condition: stanza.RestrictedXML, Text: text}
}

func policy(text string) *stanza.StreamError {
	return &stanza.StreamError{Condition: stanza.PolicyViolation, Text: text}
}

// IsInvalidUTF8 reports whether err is Next's error for bytes that are not UTF-8, which a
// WebSocket transport must answer with close code 1007 (RFC 6455 §7.4.1) rather than 1000.
func IsInvalidUTF8(err error) bool { return err == errUTF8 }
