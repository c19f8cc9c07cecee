package stanza

// StreamCondition is an RFC 6120 §4.9.3 defined stream error condition, e.g. "not-well-formed".
// It implements error so that errors.Is(err, stanza.NotWellFormed) works on a *StreamError.
type StreamCondition string

// Stream error conditions, RFC 6120 §4.9.3.
const (
	// BadFormat: "The entity has sent XML that cannot be processed." (§4.9.3.1)
	BadFormat StreamCondition = "bad-format"
	// BadNamespacePrefix: "The entity has sent a namespace prefix that is unsupported, or has
	// sent no namespace prefix on an element that needs such a prefix." (§4.9.3.2)
	BadNamespacePrefix StreamCondition = "bad-namespace-prefix"
	// Conflict: "The server either (1) is closing the existing stream for this entity because a
	// new stream has been initiated that conflicts with the existing stream, or (2) is refusing
	// a new stream for this entity because allowing the new stream would conflict with an
	// existing stream." (§4.9.3.3)
	Conflict StreamCondition = "conflict"
	// ConnectionTimeout: "One party is closing the stream because it has reason to believe that
	// the other party has permanently lost the ability to communicate over the stream." (§4.9.3.4)
	ConnectionTimeout StreamCondition = "connection-timeout"
	// HostGone: "The value of the 'to' attribute provided in the initial stream header
	// corresponds to an FQDN that is no longer serviced by the receiving entity." (§4.9.3.5)
	HostGone StreamCondition = "host-gone"
	// HostUnknown: "The value of the 'to' attribute provided in the initial stream header does
	// not correspond to an FQDN that is serviced by the receiving entity." (§4.9.3.6)
	HostUnknown StreamCondition = "host-unknown"
	// ImproperAddressing: "A stanza sent between two servers lacks a 'to' or 'from' attribute,
	// the 'from' or 'to' attribute has no value, or the value violates the rules for XMPP
	// addresses." (§4.9.3.7)
	ImproperAddressing StreamCondition = "improper-addressing"
	// InternalServerError: "The server has experienced a misconfiguration or other internal
	// error that prevents it from servicing the stream." (§4.9.3.8)
	InternalServerError StreamCondition = "internal-server-error"
	// InvalidFrom: "The data provided in a 'from' attribute does not match an authorized JID or
	// validated domain." (§4.9.3.9)
	InvalidFrom StreamCondition = "invalid-from"
	// InvalidNamespace: "The stream namespace name is something other than
	// http://etherx.jabber.org/streams or the content namespace declared as the default
	// namespace is not supported." (§4.9.3.10)
	InvalidNamespace StreamCondition = "invalid-namespace"
	// InvalidXML: "The entity has sent invalid XML over the stream to a server that performs
	// validation." (§4.9.3.11)
	InvalidXML StreamCondition = "invalid-xml"
	// NotAuthorized: "The entity has attempted to send XML stanzas or other outbound data before
	// the stream has been authenticated." (§4.9.3.12)
	NotAuthorized StreamCondition = "not-authorized"
	// NotWellFormed: "The initiating entity has sent XML that violates the well-formedness rules
	// of [XML] or [XML-NAMES]." (§4.9.3.13)
	NotWellFormed StreamCondition = "not-well-formed"
	// PolicyViolation: "The entity has violated some local service policy (e.g., a stanza
	// exceeds a configured size limit)." (§4.9.3.14)
	PolicyViolation StreamCondition = "policy-violation"
	// RemoteConnectionFailed: "The server is unable to properly connect to a remote entity that
	// is needed for authentication or authorization." (§4.9.3.15)
	RemoteConnectionFailed StreamCondition = "remote-connection-failed"
	// Reset: "The server is closing the stream because it has new (typically security-critical)
	// features to offer." (§4.9.3.16)
	Reset StreamCondition = "reset"
	// ResourceConstraint: "The server lacks the system resources necessary to service the
	// stream." (§4.9.3.17)
	ResourceConstraint StreamCondition = "resource-constraint"
	// RestrictedXML: "The entity has attempted to send restricted XML features such as a
	// comment, processing instruction, DTD subset, or XML entity reference." (§4.9.3.18)
	RestrictedXML StreamCondition = "restricted-xml"
	// SeeOtherHost: "The server will not provide service to the initiating entity but is
	// redirecting traffic to another host." (§4.9.3.19)
	SeeOtherHost StreamCondition = "see-other-host"
	// SystemShutdown: "The server is being shut down and all active streams are being closed."
	// (§4.9.3.20)
	SystemShutdown StreamCondition = "system-shutdown"
	// UndefinedCondition: "The error condition is not one of those defined by the other
	// conditions in this list." (§4.9.3.21)
	UndefinedCondition StreamCondition = "undefined-condition"
	// UnsupportedEncoding: "The initiating entity has encoded the stream in an encoding that is
	// not UTF-8." (§4.9.3.22)
	UnsupportedEncoding StreamCondition = "unsupported-encoding"
	// UnsupportedFeature: "The receiving entity has advertised a mandatory-to-negotiate stream
	// feature that the initiating entity does not support." (§4.9.3.23)
	UnsupportedFeature StreamCondition = "unsupported-feature"
	// UnsupportedStanzaType: "The initiating entity has sent a first-level child of the stream
	// that is not supported by the server." (§4.9.3.24)
	UnsupportedStanzaType StreamCondition = "unsupported-stanza-type"
	// UnsupportedVersion: "The 'version' attribute provided by the initiating entity in the
	// stream header specifies a version of XMPP that is not supported by the server."
	// (§4.9.3.25)
	UnsupportedVersion StreamCondition = "unsupported-version"
)

// Error returns the condition name, so a bare condition can be an errors.Is target.
func (c StreamCondition) Error() string { return "stream error: " + string(c) }

// StreamError is a stream-level error value (RFC 6120 §4.9). It implements error and works with
// errors.Is: two StreamErrors match when Condition is equal; a StreamError also matches its bare
// StreamCondition.
type StreamError struct {
	Condition StreamCondition
	Text      string // optional human-readable description, sent with xml:lang='en'
	// AppCondition is an optional raw, well-formed application-specific condition element
	// (RFC 6120 §4.9.4), such as XEP-0198's <handled-count-too-high/>.
	AppCondition []byte
}

// Error implements error.
func (e *StreamError) Error() string {
	if e.Text == "" {
		return "stream error: " + string(e.Condition)
	}
	return "stream error: " + string(e.Condition) + ": " + e.Text
}

// Is reports whether target is a *StreamError or StreamCondition with the same condition.
func (e *StreamError) Is(target error) bool {
	switch t := target.(type) {
	case *StreamError:
		return t != nil && t.Condition == e.Condition
	case StreamCondition:
		return t == e.Condition
	}
	return false
}

// AppendXML appends the RFC 6120 §4.9.2 serialization to dst and returns it:
// <stream:error><COND xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>[<text ...>..</text>][app]</stream:error>.
// An empty Condition is written as undefined-condition. The stream: prefix is the one every
// Vireo stream header declares.
func (e *StreamError) AppendXML(dst []byte) []byte {
	cond := e.Condition
	if cond == "" {
		cond = UndefinedCondition
	}
	dst = append(dst, "<stream:error><"...)
	dst = append(dst, cond...)
	dst = append(dst, " xmlns='"+nsStreams+"'/>"...)
	if e.Text != "" {
		dst = append(dst, "<text xmlns='"+nsStreams+"' xml:lang='en'>"...)
		dst = appendEscaped(dst, e.Text)
		dst = append(dst, "</text>"...)
	}
	dst = append(dst, e.AppCondition...)
	return append(dst, "</stream:error>"...)
}

// Namespaces repeated here because xmlstream/ns is the canonical home but this package must
// stay import-free of Vireo; a test checks they agree.
const (
	nsStreams = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
)
