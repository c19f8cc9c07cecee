package push

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func TestPushPublishOptions(t *testing.T) {
	const po = "<field var='FORM_TYPE' type='hidden'><value>" + nsPublishOptions + "</value></field>"
	for _, tc := range []struct {
		name, in string
		want     string // normalized form; "" for none
		cond     stanza.Condition
	}{
		{name: "none", in: "<enable xmlns='urn:xmpp:push:0' jid='p' node='n'/>"},
		{name: "secret",
			in: "<enable xmlns='urn:xmpp:push:0' jid='p' node='n'><x xmlns='jabber:x:data' type='submit'>" + po +
				"<field var='secret'><value>s&amp;3</value></field></x></enable>",
			want: "<x xmlns='jabber:x:data' type='submit'>" + po + "<field var='secret'><value>s&amp;3</value></field></x>"},
		{name: "labels and desc dropped, prefixes resolved",
			in: "<enable xmlns='urn:xmpp:push:0' jid='p' node='n' xmlns:d='jabber:x:data'><d:x type='submit'>" +
				"<d:field var='FORM_TYPE'><d:value>" + nsPublishOptions + "</d:value></d:field>" +
				"<d:field var='endpoint' label='E'><d:desc>where</d:desc><d:value>https://a/b</d:value></d:field></d:x></enable>",
			want: "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + nsPublishOptions +
				"</value></field><field var='endpoint'><value>https://a/b</value></field></x>"},
		{name: "FORM_TYPE added",
			in:   "<enable xmlns='urn:xmpp:push:0' jid='p' node='n'><x xmlns='jabber:x:data' type='submit'><field var='secret'><value>s</value></field></x></enable>",
			want: "<x xmlns='jabber:x:data' type='submit'>" + po + "<field var='secret'><value>s</value></field></x>"},
		{name: "empty form", in: "<enable xmlns='urn:xmpp:push:0' jid='p' node='n'><x xmlns='jabber:x:data' type='submit'/></enable>",
			want: "<x xmlns='jabber:x:data' type='submit'>" + po + "</x>"},
		{name: "not submit", in: "<enable xmlns='urn:xmpp:push:0' jid='p' node='n'><x xmlns='jabber:x:data' type='form'/></enable>",
			cond: stanza.BadRequest},
		{name: "other FORM_TYPE",
			in:   "<enable xmlns='urn:xmpp:push:0' jid='p' node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable>",
			cond: stanza.BadRequest},
		{name: "field without var",
			in:   "<enable xmlns='urn:xmpp:push:0' jid='p' node='n'><x xmlns='jabber:x:data' type='submit'><field><value>v</value></field></x></enable>",
			cond: stanza.BadRequest},
		{name: "too large",
			in:   "<enable xmlns='urn:xmpp:push:0' jid='p' node='n'><x xmlns='jabber:x:data' type='submit'><field var='k'><value>" + strings.Repeat("v", MaxFormBytes) + "</value></field></x></enable>",
			cond: stanza.NotAcceptable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := xmlstream.ParseElement([]byte(tc.in), ns.Client)
			if err != nil {
				t.Fatal(err)
			}
			got, serr := publishOptions(e)
			if tc.cond != "" {
				if serr == nil || serr.Condition != tc.cond {
					t.Fatalf("error %v, want %s", serr, tc.cond)
				}
				return
			}
			if serr != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v\nwant %q", got, serr, tc.want)
			}
			if got != nil {
				if _, err := xmlstream.ParseElement(got, ns.Client); err != nil {
					t.Fatalf("stored form does not stand on its own: %v", err)
				}
			}
		})
	}
}

func TestPushTransient(t *testing.T) {
	for _, tc := range []struct {
		err  string
		want bool
	}{
		{"<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>", false},
		{"<error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>", false},
		{"<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>", false},
		{"<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>", true},
		{"<error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>", true},
		{"<error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>", true},
		{"", false},
	} {
		e, err := xmlstream.ParseElement([]byte("<iq type='error' id='x'>"+tc.err+"</iq>"), ns.Client)
		if err != nil {
			t.Fatal(err)
		}
		if got := transient(e); got != tc.want {
			t.Errorf("transient(%s) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestPushTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is two bytes: never cut inside it
		{"héllo", 3, "hé"},
		{"日本", 4, "日"},
	} {
		if got := string(truncate([]byte(tc.in), tc.n)); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestPushAppendPublish(t *testing.T) {
	r := registration{jid: "push.example", node: "n&1", form: []byte("<x xmlns='jabber:x:data' type='submit'/>")}
	got := string(appendPublish(nil, "u@example.org", "push-1", r, 3, "b@example.org/r", []byte("a<b")))
	want := "<iq type='set' from='u@example.org' to='push.example' id='push-1'>" +
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n&amp;1'><item>" +
		"<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>" +
		"<field var='message-count'><value>3</value></field>" +
		"<field var='last-message-sender'><value>b@example.org/r</value></field>" +
		"<field var='last-message-body'><value>a&lt;b</value></field>" +
		"</x></notification></item></publish>" +
		"<publish-options><x xmlns='jabber:x:data' type='submit'/></publish-options></pubsub></iq>"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if a, b := newID(), newID(); a == b || len(a) != len("push-")+26 {
		t.Fatalf("ids %q %q: want distinct 128-bit ids", a, b)
	}
}
