package antispam_test

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/antispam"
)

var challengeID = regexp.MustCompile(`<message from='bob@b\.localhost' to='[^']+' id='([^']+)'`)

// answerForm is the stranger's answer to challenge id: an IQ set to bob's bare JID.
func answerForm(iqID, id, text string) string {
	return "<iq type='set' id='" + iqID + "' to='bob@b.localhost'><captcha xmlns='urn:xmpp:captcha'><x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE'><value>urn:xmpp:captcha</value></field>" +
		"<field var='from'><value>bob@b.localhost</value></field>" +
		"<field var='challenge'><value>" + id + "</value></field>" +
		"<field var='ocr'><value>" + text + "</value></field></x></captcha></iq>"
}

// TestIntegrationChallengeStrangers: with challenge_strangers on b, a stranger's messages
// and subscription request to bob wait for an answer to a CAPTCHA that comes to the
// stranger from bob's address, over real federation between two servers: a wrong answer
// drops them, the right one lets them through and the stranger in; someone bob wrote to
// first is no stranger.
func TestIntegrationChallengeStrangers(t *testing.T) {
	var mu sync.Mutex
	texts := map[string]string{}
	antispam.OnChallenge(func(id, text string) { mu.Lock(); texts[id] = text; mu.Unlock() })
	t.Cleanup(func() { antispam.OnChallenge(nil) })
	text := func(id string) string { mu.Lock(); defer mu.Unlock(); return texts[id] }

	a := vireotest.Start(t, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true})
	b := vireotest.Start(t, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true,
		ModuleConfig: func(id string, v any) error {
			if c, ok := v.(*antispam.Config); ok {
				c.Challenge = true
			}
			return nil
		}})
	vireotest.Federate(a, b)
	for _, u := range []string{"alice", "carol", "dave", "eve"} {
		a.AddUser(t, u, "secret")
	}
	b.AddUser(t, "bob", "secret")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	bob.Expect("<presence")
	alice := a.LoginPlain(t, "alice", "secret", "phone")

	challenge := func(r *vireotest.RawConn, sid string) string {
		t.Helper()
		got := r.Expect("</message>")
		for _, want := range []string{"<captcha xmlns='urn:xmpp:captcha'>", "<value>urn:xmpp:captcha</value>", "var='ocr'",
			"<data xmlns='urn:xmpp:bob'", "<value>" + sid + "</value>", "show that you are a person"} {
			if !strings.Contains(got, want) {
				t.Fatalf("the challenge lacks %q: %s", want, got)
			}
		}
		m := challengeID.FindStringSubmatch(got)
		if m == nil || text(m[1]) == "" {
			t.Fatalf("no challenge id with a text in %s", got)
		}
		return m[1]
	}

	// Held, then dropped by a wrong answer.
	alice.Send("<message to='bob@b.localhost' type='chat' id='m1'><body>hello bob</body></message>")
	alice.Send("<message to='bob@b.localhost' type='chat' id='m2'><body>are you there?</body></message>")
	id := challenge(alice, "m1")
	bob.Never("hello bob")
	alice.Send(answerForm("w1", id, "WRONG1"))
	mustHave(t, "a wrong answer", alice.Expect("</iq>"), "id='w1'", "type='error'", "<not-acceptable")
	alice.Send(answerForm("w2", id, text(id)))
	mustHave(t, "a spent challenge", alice.Expect("</iq>"), "id='w2'", "<service-unavailable")
	bob.Never("hello bob")

	// A new message, a new challenge; the right answer lets it through, and alice in.
	alice.Send("<message to='bob@b.localhost' type='chat' id='m3'><body>hello again</body></message>")
	id = challenge(alice, "m3")
	alice.Send(answerForm("r1", id+"0", text(id)))
	mustHave(t, "someone else's challenge id", alice.Expect("</iq>"), "id='r1'", "<service-unavailable")
	alice.Send(answerForm("r2", id, strings.ToLower(text(id))))
	mustHave(t, "the right answer", alice.Expect("id='r2'"), "type='result'")
	mustHave(t, "the held message", bob.Expect("</message>"), "hello again", "from='alice@a.localhost/phone'")
	for i := range 3 {
		alice.Send(fmt.Sprintf("<message to='bob@b.localhost' type='chat' id='n%d'><body>then %d</body></message>", i, i))
	}
	bob.Expect("then 2")
	alice.Never("captcha")

	// A subscription request waits too.
	dave := a.LoginPlain(t, "dave", "secret", "pc")
	dave.Send("<presence/>") // the challenge goes to the bare JID a subscription request comes from
	dave.Expect("<presence")
	dave.Send("<presence to='bob@b.localhost' type='subscribe' id='s1'/>")
	msg := dave.Expect("</message>")
	msg = msg[strings.LastIndex(msg, "<message "):]
	id = challengeID.FindStringSubmatch(msg)[1]
	bob.Never("from='dave@a.localhost'")
	// dave answers as Gajim does, with python-nbxmpp's CAPTCHA code (the script the
	// CAPTCHA-protected rooms' test uses: a challenge from a user reads the same).
	dave.Send(vireotest.NbxmppCaptcha(t, msg, text(id)))
	mustHave(t, "nbxmpp's answer", dave.Expect("id='nbc1'"), "type='result'")
	got := bob.Expect("from='dave@a.localhost'")
	mustHave(t, "the held subscription request", got[strings.LastIndex(got, "<presence"):], "type='subscribe'")

	// bob wrote to carol first: her answer is no stranger's.
	carol := a.LoginPlain(t, "carol", "secret", "pc")
	carol.Send("<presence/>")
	carol.Expect("<presence")
	bob.Send("<message to='carol@a.localhost/pc' type='chat' id='b1'><body>hi carol</body></message>")
	carol.Expect("hi carol")
	carol.Send("<message to='bob@b.localhost' type='chat' id='c1'><body>hi bob, carol here</body></message>")
	bob.Expect("carol here")
	carol.Never("captcha")

	// Past the challenges a minute, a stranger is told to wait.
	antispam.SetChallengesPerMinute(0)
	t.Cleanup(func() { antispam.SetChallengesPerMinute(600) })
	eve := a.LoginPlain(t, "eve", "secret", "pc")
	eve.Send("<message to='bob@b.localhost' type='chat' id='e1'><body>hi bob</body></message>")
	mustHave(t, "a stranger past the challenges a minute", eve.Expect("</message>"), "type='error'", "id='e1'", "<resource-constraint", "type='wait'")
	bob.Never("hi bob")
}

func mustHave(t *testing.T, what, got string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(got, s) {
			t.Fatalf("%s: want %q in %q", what, s, got)
		}
	}
}
