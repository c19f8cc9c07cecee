package stanza_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

var (
	_ error = (*stanza.StreamError)(nil)
	_ error = (*stanza.Error)(nil)
	_ error = stanza.NotWellFormed
	_ error = stanza.ItemNotFound
)

func TestStreamErrorAppendXML(t *testing.T) {
	tests := []struct {
		err  stanza.StreamError
		want string
	}{
		{stanza.StreamError{Condition: stanza.NotWellFormed},
			"<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"},
		{stanza.StreamError{Condition: stanza.PolicyViolation, Text: "stanza <too> big & 'bad'"},
			"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
				"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>stanza &lt;too&gt; big &amp; &apos;bad&apos;</text></stream:error>"},
		{stanza.StreamError{},
			"<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"},
	}
	for _, tc := range tests {
		t.Run(string(tc.err.Condition), func(t *testing.T) {
			prefix := []byte("x")
			got := string(tc.err.AppendXML(prefix))
			if got != "x"+tc.want {
				t.Errorf("AppendXML:\n got %s\nwant x%s", got, tc.want)
			}
		})
	}
}

func TestStreamErrorIs(t *testing.T) {
	err := fmt.Errorf("read: %w", &stanza.StreamError{Condition: stanza.RestrictedXML, Text: "comment"})
	if !errors.Is(err, &stanza.StreamError{Condition: stanza.RestrictedXML}) {
		t.Error("errors.Is with same condition = false")
	}
	if !errors.Is(err, stanza.RestrictedXML) {
		t.Error("errors.Is with bare condition = false")
	}
	if errors.Is(err, &stanza.StreamError{Condition: stanza.NotWellFormed}) {
		t.Error("errors.Is with other condition = true")
	}
	if errors.Is(err, stanza.NotWellFormed) {
		t.Error("errors.Is with other bare condition = true")
	}
	var se *stanza.StreamError
	if !errors.As(err, &se) || se.Text != "comment" {
		t.Errorf("errors.As = %v", se)
	}
	if got := se.Error(); got != "stream error: restricted-xml: comment" {
		t.Errorf("Error() = %q", got)
	}
}

// TestLegacyCode: every RFC 6120 condition that XEP-0086's table maps has its code there.
func TestLegacyCode(t *testing.T) {
	want := map[stanza.Condition]string{
		stanza.BadRequest: "400", stanza.ConflictCond: "409", stanza.FeatureNotImplemented: "501",
		stanza.Forbidden: "403", stanza.Gone: "302", stanza.InternalServerErrorCond: "500",
		stanza.ItemNotFound: "404", stanza.JIDMalformed: "400", stanza.NotAcceptable: "406",
		stanza.NotAllowed: "405", stanza.NotAuthorizedCond: "401", stanza.PolicyViolationCond: "",
		stanza.RecipientUnavailable: "404", stanza.Redirect: "302", stanza.RegistrationRequired: "407",
		stanza.RemoteServerNotFound: "404", stanza.RemoteServerTimeout: "504",
		stanza.ResourceConstraintCond: "500", stanza.ServiceUnavailable: "503",
		stanza.SubscriptionRequired: "407", stanza.UndefinedConditionCond: "500",
		stanza.UnexpectedRequest: "400", stanza.Condition("x-unknown"): "",
	}
	for c, code := range want {
		if got := c.LegacyCode(); got != code {
			t.Errorf("%s: code %q, want %q", c, got, code)
		}
	}
}

func TestStanzaErrorAppendXML(t *testing.T) {
	tests := []struct {
		name string
		err  *stanza.Error
		want string
	}{
		{"default type", stanza.New(stanza.ItemNotFound),
			"<error type='cancel' code='404'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"},
		{"full", &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: "a<b", By: "example.com",
			AppCondition: []byte("<blocked xmlns='urn:xmpp:blocking:errors'/>")},
			"<error type='modify' by='example.com' code='400'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" +
				"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>a&lt;b</text>" +
				"<blocked xmlns='urn:xmpp:blocking:errors'/></error>"},
		{"empty", &stanza.Error{},
			"<error type='modify' code='500'><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"},
		{"empty type", &stanza.Error{Condition: stanza.Forbidden},
			"<error type='auth' code='403'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"},
		// XEP-0086 predates policy-violation: no code.
		{"no legacy code", stanza.New(stanza.PolicyViolationCond),
			"<error type='modify'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.err.AppendXML(nil)); got != tc.want {
				t.Errorf("AppendXML:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestStanzaErrorIs(t *testing.T) {
	err := fmt.Errorf("handle: %w", stanza.New(stanza.ServiceUnavailable))
	if !errors.Is(err, stanza.New(stanza.ServiceUnavailable)) || !errors.Is(err, stanza.ServiceUnavailable) {
		t.Error("errors.Is same condition = false")
	}
	if errors.Is(err, stanza.New(stanza.ItemNotFound)) || errors.Is(err, stanza.ItemNotFound) {
		t.Error("errors.Is other condition = true")
	}
	if errors.Is(err, stanza.ServiceUnavailable) && errors.Is(err, stanza.StreamCondition("service-unavailable")) {
		t.Error("stanza condition matched a stream condition")
	}
}

func TestDefaultType(t *testing.T) {
	// RFC 6120 §8.3.3, the type each condition's section gives.
	want := map[stanza.Condition]stanza.ErrorType{
		stanza.BadRequest: stanza.Modify, stanza.ConflictCond: stanza.Cancel,
		stanza.FeatureNotImplemented: stanza.Cancel, stanza.Forbidden: stanza.Auth,
		stanza.Gone: stanza.Cancel, stanza.InternalServerErrorCond: stanza.Cancel,
		stanza.ItemNotFound: stanza.Cancel, stanza.JIDMalformed: stanza.Modify,
		stanza.NotAcceptable: stanza.Modify, stanza.NotAllowed: stanza.Cancel,
		stanza.NotAuthorizedCond: stanza.Auth, stanza.PolicyViolationCond: stanza.Modify,
		stanza.RecipientUnavailable: stanza.Wait, stanza.Redirect: stanza.Modify,
		stanza.RegistrationRequired: stanza.Auth, stanza.RemoteServerNotFound: stanza.Cancel,
		stanza.RemoteServerTimeout: stanza.Wait, stanza.ResourceConstraintCond: stanza.Wait,
		stanza.ServiceUnavailable: stanza.Cancel, stanza.SubscriptionRequired: stanza.Auth,
		stanza.UndefinedConditionCond: stanza.Modify, stanza.UnexpectedRequest: stanza.Wait,
	}
	for c, typ := range want {
		if got := c.DefaultType(); got != typ {
			t.Errorf("%s.DefaultType() = %s, want %s", c, got, typ)
		}
		if got := stanza.New(c); got.Type != typ || got.Condition != c {
			t.Errorf("New(%s) = %+v", c, got)
		}
	}
}

func TestNamespacesAgree(t *testing.T) {
	// stanza keeps private copies of two namespaces to stay import-free; they must match ns.
	se := (&stanza.StreamError{Condition: stanza.Reset}).AppendXML(nil)
	if want := "xmlns='" + ns.Streams + "'"; !contains(string(se), want) {
		t.Errorf("stream error %s lacks %s", se, want)
	}
	e := stanza.New(stanza.Gone).AppendXML(nil)
	if want := "xmlns='" + ns.Stanzas + "'"; !contains(string(e), want) {
		t.Errorf("stanza error %s lacks %s", e, want)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
