package stanza

// ErrorType is the RFC 6120 §8.3.2 stanza error type.
type ErrorType string

// Stanza error types, RFC 6120 §8.3.2.
const (
	// Auth: "retry after providing credentials".
	Auth ErrorType = "auth"
	// Cancel: "do not retry (the error cannot be remedied)".
	Cancel ErrorType = "cancel"
	// Continue: "proceed (the condition was only a warning)".
	Continue ErrorType = "continue"
	// Modify: "retry after changing the data sent".
	Modify ErrorType = "modify"
	// Wait: "retry after waiting (the error is temporary)".
	Wait ErrorType = "wait"
)

// Condition is an RFC 6120 §8.3.3 stanza error condition; each has a default type. It
// implements error so that errors.Is(err, stanza.ItemNotFound) works on an *Error.
type Condition string

// Stanza error conditions, RFC 6120 §8.3.3. Names that clash with stream conditions carry a
// Cond suffix.
const (
	// BadRequest: "The sender has sent a stanza containing XML that does not conform to the
	// appropriate schema or that cannot be processed." (§8.3.3.1, modify)
	BadRequest Condition = "bad-request"
	// ConflictCond: "Access cannot be granted because an existing resource exists with the same
	// name or address." (§8.3.3.2, cancel)
	ConflictCond Condition = "conflict"
	// FeatureNotImplemented: "The feature represented in the XML stanza is not implemented by
	// the intended recipient or an intermediate server." (§8.3.3.3, cancel)
	FeatureNotImplemented Condition = "feature-not-implemented"
	// Forbidden: "The requesting entity does not possess the necessary permissions to perform an
	// action that only certain authorized roles or individuals are allowed to complete."
	// (§8.3.3.4, auth)
	Forbidden Condition = "forbidden"
	// Gone: "The recipient or server can no longer be contacted at this address." (§8.3.3.5,
	// cancel)
	Gone Condition = "gone"
	// InternalServerErrorCond: "The server has experienced a misconfiguration or other internal
	// error." (§8.3.3.6, cancel)
	InternalServerErrorCond Condition = "internal-server-error"
	// ItemNotFound: "The addressed JID or item requested cannot be found." (§8.3.3.7, cancel)
	ItemNotFound Condition = "item-not-found"
	// JIDMalformed: "The sending entity has provided an XMPP address or aspect thereof that
	// violates the rules defined in [XMPP-ADDR]." (§8.3.3.8, modify)
	JIDMalformed Condition = "jid-malformed"
	// NotAcceptable: "The recipient or server understands the request but cannot process it
	// because the request does not meet criteria defined by the recipient or server."
	// (§8.3.3.9, modify)
	NotAcceptable Condition = "not-acceptable"
	// NotAllowed: "The recipient or server does not allow any entity to perform the action."
	// (§8.3.3.10, cancel)
	NotAllowed Condition = "not-allowed"
	// NotAuthorizedCond: "The sender needs to provide credentials before being allowed to
	// perform the action, or has provided improper credentials." (§8.3.3.11, auth)
	NotAuthorizedCond Condition = "not-authorized"
	// PolicyViolationCond: "The entity has violated some local service policy." (§8.3.3.12,
	// modify)
	PolicyViolationCond Condition = "policy-violation"
	// RecipientUnavailable: "The intended recipient is temporarily unavailable, undergoing
	// maintenance, etc." (§8.3.3.13, wait)
	RecipientUnavailable Condition = "recipient-unavailable"
	// Redirect: "The recipient or server is redirecting requests for this information to
	// another entity." (§8.3.3.14, modify)
	Redirect Condition = "redirect"
	// RegistrationRequired: "The requesting entity is not authorized to access the requested
	// service because prior registration is necessary." (§8.3.3.15, auth)
	RegistrationRequired Condition = "registration-required"
	// RemoteServerNotFound: "A remote server or service specified as part or all of the JID of
	// the intended recipient does not exist or cannot be resolved." (§8.3.3.16, cancel)
	RemoteServerNotFound Condition = "remote-server-not-found"
	// RemoteServerTimeout: "A remote server or service specified as part or all of the JID of
	// the intended recipient (or needed to fulfill a request) was resolved but communications
	// could not be established within a reasonable amount of time." (§8.3.3.17, wait)
	RemoteServerTimeout Condition = "remote-server-timeout"
	// ResourceConstraintCond: "The server or recipient is busy or lacks the system resources
	// necessary to service the request." (§8.3.3.18, wait)
	ResourceConstraintCond Condition = "resource-constraint"
	// ServiceUnavailable: "The server or recipient does not currently provide the requested
	// service." (§8.3.3.19, cancel)
	ServiceUnavailable Condition = "service-unavailable"
	// SubscriptionRequired: "The requesting entity is not authorized to access the requested
	// service because a prior subscription is necessary." (§8.3.3.20, auth)
	SubscriptionRequired Condition = "subscription-required"
	// UndefinedConditionCond: "The error condition is not one of those defined by the other
	// conditions in this list." (§8.3.3.21, modify by convention here)
	UndefinedConditionCond Condition = "undefined-condition"
	// UnexpectedRequest: "The recipient or server understood the request but was not expecting
	// it at this time." (§8.3.3.22, wait)
	UnexpectedRequest Condition = "unexpected-request"
)

// DefaultType returns the error type RFC 6120 §8.3.3 gives as the usual one for c. Unknown
// conditions get Cancel.
func (c Condition) DefaultType() ErrorType {
	switch c {
	case BadRequest, JIDMalformed, NotAcceptable, PolicyViolationCond, Redirect, UndefinedConditionCond:
		return Modify
	case Forbidden, NotAuthorizedCond, RegistrationRequired, SubscriptionRequired:
		return Auth
	case RecipientUnavailable, RemoteServerTimeout, ResourceConstraintCond, UnexpectedRequest:
		return Wait
	}
	return Cancel
}

// Error returns the condition name, so a bare condition can be an errors.Is target.
func (c Condition) Error() string { return "stanza error: " + string(c) }

// Error is a stanza error value (RFC 6120 §8.3). It implements error; errors.Is matches on
// Condition (against another *Error or a bare Condition).
type Error struct {
	Type         ErrorType // empty means Condition.DefaultType()
	Condition    Condition // empty means undefined-condition
	Text         string    // optional human-readable description, sent with xml:lang='en'
	By           string    // optional 'by' attribute: the entity that generated the error
	AppCondition []byte    // optional raw, well-formed application-specific condition element
}

// New returns an error with c and c's default type.
func New(c Condition) *Error { return &Error{Type: c.DefaultType(), Condition: c} }

// Error implements error.
func (e *Error) Error() string {
	s := "stanza error: " + string(e.typ()) + " " + string(e.cond())
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Is reports whether target is an *Error or Condition with the same condition.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Error:
		return t != nil && t.Condition == e.Condition
	case Condition:
		return t == e.Condition
	}
	return false
}

func (e *Error) cond() Condition {
	if e.Condition == "" {
		return UndefinedConditionCond
	}
	return e.Condition
}

func (e *Error) typ() ErrorType {
	if e.Type == "" {
		return e.cond().DefaultType()
	}
	return e.Type
}

// LegacyCode is the XEP-0086 error code for c ("" for a condition it does not map, such
// as policy-violation). Clients that predate RFC 3920 read only the code, and some current
// ones still branch on it: profanity 0.13 publishes its first OMEMO device list only when
// fetching the list fails with code 404. ejabberd, Openfire and Tigase send it too.
func (c Condition) LegacyCode() string {
	switch c {
	case BadRequest, JIDMalformed, UnexpectedRequest:
		return "400"
	case NotAuthorizedCond:
		return "401"
	case Forbidden:
		return "403"
	case ItemNotFound, RecipientUnavailable, RemoteServerNotFound:
		return "404"
	case NotAllowed:
		return "405"
	case NotAcceptable:
		return "406"
	case RegistrationRequired, SubscriptionRequired:
		return "407"
	case ConflictCond:
		return "409"
	case InternalServerErrorCond, ResourceConstraintCond, UndefinedConditionCond:
		return "500"
	case FeatureNotImplemented:
		return "501"
	case ServiceUnavailable:
		return "503"
	case RemoteServerTimeout:
		return "504"
	case Gone, Redirect:
		return "302"
	}
	return ""
}

// AppendXML appends the RFC 6120 §8.3.2 serialization to dst and returns it, with the
// XEP-0086 legacy code where the condition has one:
// <error type='..' [by='..'] [code='..']><COND xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>[<text ...>..</text>]APP</error>.
func (e *Error) AppendXML(dst []byte) []byte {
	dst = append(dst, "<error type='"...)
	dst = appendEscaped(dst, string(e.typ()))
	dst = append(dst, '\'')
	if e.By != "" {
		dst = append(dst, " by='"...)
		dst = appendEscaped(dst, e.By)
		dst = append(dst, '\'')
	}
	if code := e.cond().LegacyCode(); code != "" {
		dst = append(dst, " code='"...)
		dst = append(dst, code...)
		dst = append(dst, '\'')
	}
	dst = append(dst, "><"...)
	dst = append(dst, e.cond()...)
	dst = append(dst, " xmlns='"+nsStanzas+"'/>"...)
	if e.Text != "" {
		dst = append(dst, "<text xmlns='"+nsStanzas+"' xml:lang='en'>"...)
		dst = appendEscaped(dst, e.Text)
		dst = append(dst, "</text>"...)
	}
	dst = append(dst, e.AppCondition...)
	return append(dst, "</error>"...)
}
