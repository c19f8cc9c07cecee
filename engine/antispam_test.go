package engine_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/antispam"
)

// TestS2SStrangerLimits: [modules.antispam] between two federated servers. alice on a
// is a stranger to bob on b: of her 8 messages to him in a minute, 5 reach him and the
// rest come back to her as policy-violation (wait); once bob adds her to his roster,
// all of hers arrive. Her chat states (no body) are never counted.
func TestS2SStrangerLimits(t *testing.T) {
	a, b := federatedWith(t, nil, func(o *vireotest.Options) { o.ModuleConfig = strangerLimits(5, 100) })
	alice := a.LoginPlain(t, "alice", "secret", "phone")
	alice.Send("<presence/>")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	for i := range 3 {
		alice.Send(fmt.Sprintf("<message to='bob@b.localhost/pc' id='cs%d' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", i))
	}
	for i := range 8 {
		alice.Send(fmt.Sprintf("<message to='bob@b.localhost/pc' id='m%d' type='chat'><body>hi %d</body></message>", i, i))
	}
	got := bob.Expect("id='m4'")
	for i := range 5 {
		if !strings.Contains(got, fmt.Sprintf("id='m%d'", i)) {
			t.Fatalf("message %d did not arrive: %s", i, got)
		}
	}
	errs := alice.Expect("id='m7'")
	for i := 5; i < 8; i++ {
		if !strings.Contains(errs, fmt.Sprintf("id='m%d'", i)) {
			t.Fatalf("no bounce for message %d: %s", i, errs)
		}
	}
	for _, want := range []string{"type='error'", "type='wait'", "<policy-violation", "have not added you"} {
		if !strings.Contains(errs, want) {
			t.Fatalf("the bounce lacks %q: %s", want, errs)
		}
	}
	bob.Never("id='m5'")

	// A contact is not a stranger.
	bob.Send("<iq type='set' id='add'><query xmlns='jabber:iq:roster'><item jid='alice@a.localhost'/></query></iq>")
	bob.Expect("id='add'")
	for i := 10; i < 18; i++ {
		alice.Send(fmt.Sprintf("<message to='bob@b.localhost/pc' id='m%d' type='chat'><body>hi %d</body></message>", i, i))
	}
	if got := bob.Expect("id='m17'"); strings.Count(got, "<message") < 8 {
		t.Fatalf("a contact's messages were limited: %s", got)
	}
}

// TestFederationProsodyStranger: a real Prosody's user writes to a Vireo user who never
// added him: the first 3 messages of the minute arrive, the rest go back through Prosody
// to his client as policy-violation (wait) errors.
func TestFederationProsodyStranger(t *testing.T) {
	v, p, _ := vireoWithProsody(t, false, func(o *vireotest.Options) { o.ModuleConfig = strangerLimits(3, 100) })
	alice := v.LoginPlain(t, "alice", "alice secret", "phone")
	alice.Send("<presence/>")
	bob := p.login("bob", "bob secret", "pc")
	for i := range 5 {
		bob.Send(fmt.Sprintf("<message to='alice@vireo.test' id='s%d' type='chat'><body>hello %d</body></message>", i, i))
	}
	if got := alice.Expect("id='s2'"); !strings.Contains(got, "hello 0") || !strings.Contains(got, "hello 1") {
		t.Fatalf("the first messages: %s", got)
	}
	got := bob.Expect("id='s4'")
	got += bob.Expect("</message>")
	for _, want := range []string{"id='s3'", "type='error'", "policy-violation", "type='wait'"} {
		if !strings.Contains(got, want) {
			t.Fatalf("bob's bounces lack %q: %s", want, got)
		}
	}
	alice.Never("hello 3")
}

// strangerLimits is a ModuleConfig that sets [modules.antispam] (vireotest turns it off).
func strangerLimits(perSender, perDomain int) func(id string, v any) error {
	return func(id string, v any) error {
		if c, ok := v.(*antispam.Config); ok {
			c.PerSender, c.PerDomain = perSender, perDomain
		}
		return nil
	}
}
