package engine_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"image/png"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/vireotest"
)

var (
	reChallenge = regexp.MustCompile(`var='challenge' type='hidden'><required/><value>([0-9a-f]+)</value>`)
	reBoB       = regexp.MustCompile(`<data xmlns='urn:xmpp:bob' cid='([^']+)' type='image/png' max-age='0'>([^<]+)</data>`)
	reMediaCID  = regexp.MustCompile(`<uri type='image/png'>cid:([^<]+)</uri>`)
)

// captchaGet asks r's server for the registration form and returns the answer and the
// challenge's id, checking the form as Conversations and nbxmpp read it: no legacy
// fields, the image as XEP-0231 data inside the query, named by its SHA-1 in the ocr
// field's media.
func captchaGet(t *testing.T, srv *vireotest.Server, r *vireotest.RawConn, id string) (got, challenge string) {
	t.Helper()
	r.Send("<iq type='get' id='" + id + "'><query xmlns='jabber:iq:register'/></iq>")
	got = r.Expect("id='" + id + "'")
	got += r.Expect("</iq>")
	if strings.Contains(got, "type='error'") {
		return got, ""
	}
	if strings.Contains(got, "<username/>") || strings.Contains(got, "<password/>") {
		t.Fatalf("legacy fields beside the CAPTCHA form (clients then skip the form): %q", got)
	}
	for _, want := range []string{"<x xmlns='jabber:x:data' type='form'>", "var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value>",
		"var='username'", "var='password' type='text-private'", "var='ocr'", "<media xmlns='urn:xmpp:media-element'"} {
		if !strings.Contains(got, want) {
			t.Fatalf("form lacks %q: %q", want, got)
		}
	}
	m := reChallenge.FindStringSubmatch(got)
	bob := reBoB.FindStringSubmatch(got)
	media := reMediaCID.FindStringSubmatch(got)
	if m == nil || bob == nil || media == nil || media[1] != bob[1] {
		t.Fatalf("challenge, data or media missing or apart: %q", got)
	}
	img, err := base64.StdEncoding.DecodeString(bob[2])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(img)
	if bob[1] != "sha1+"+hex.EncodeToString(sum[:])+"@bob.xmpp.org" {
		t.Fatalf("cid %s is not the image's SHA-1", bob[1])
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		t.Fatalf("image: %v", err)
	}
	return got, m[1]
}

func captchaSubmit(r *vireotest.RawConn, id, challenge, user, pass, answer string) string {
	f := func(v, val string) string { return "<field var='" + v + "'><value>" + val + "</value></field>" }
	r.Send("<iq type='set' id='" + id + "'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>" +
		f("FORM_TYPE", "jabber:iq:register") + f("username", user) + f("password", pass) + f("challenge", challenge) + f("ocr", answer) +
		"</x></query></iq>")
	got := r.Expect("id='" + id + "'")
	if strings.Contains(got, "type='error'") {
		got += r.Expect("</iq>")
	}
	return got
}

// TestIntegrationRegistrationCaptcha: with registration_captcha, an open registration
// gets XEP-0158's form and must type the image's text: a legacy submission, a wrong
// answer and a spent challenge are refused, the right answer (any case, spaces) creates
// the account, a connection gets at most five challenges, and trusted networks and
// invitations register without one.
func TestIntegrationRegistrationCaptcha(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{Registration: true, RegistrationCaptcha: true, AllowPlain: true})
	r, _ := sasl2Open(t, srv)

	r.Send("<iq type='set' id='legacy'><query xmlns='jabber:iq:register'><username>bot</username><password>pw</password></query></iq>")
	r.Expect("id='legacy'")
	r.Expect("<not-allowed")

	_, ch := captchaGet(t, srv, r, "g1")
	text := engine.CaptchaText(srv.Engine, ch)
	if text == "" {
		t.Fatal("the server holds no text for its challenge")
	}
	wrong := "X" + text[1:]
	if text[0] == 'X' {
		wrong = "A" + text[1:]
	}
	if got := captchaSubmit(r, "s1", ch, "amy", "amy's pw", wrong); !strings.Contains(got, "<not-acceptable") {
		t.Fatalf("a wrong answer: %q", got)
	}
	if got := captchaSubmit(r, "s2", ch, "amy", "amy's pw", text); !strings.Contains(got, "<service-unavailable") {
		t.Fatalf("the right answer to a spent challenge: %q", got)
	}
	_, ch = captchaGet(t, srv, r, "g2")
	text = engine.CaptchaText(srv.Engine, ch)
	answer := strings.ToLower(text[:3]) + " " + text[3:]
	if got := captchaSubmit(r, "s3", ch, "amy", "amy's pw", answer); !strings.Contains(got, "type='result'") {
		t.Fatalf("the right answer: %q", got)
	}
	srv.LoginPlain(t, "amy", "amy's pw", "pc")

	// Five challenges per connection, then resource-constraint.
	r2, _ := sasl2Open(t, srv)
	for i := range 5 {
		if _, ch := captchaGet(t, srv, r2, "c"+string(rune('0'+i))); ch == "" {
			t.Fatalf("challenge %d refused", i+1)
		}
	}
	if got, _ := captchaGet(t, srv, r2, "c5"); !strings.Contains(got, "<resource-constraint") {
		t.Fatalf("a sixth challenge: %q", got)
	}

	// An invitation (XEP-0445) vouches for its invitee: no CAPTCHA.
	lines, err := admin.Invite(adminBackend{srv}, "create", "localhost", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	r4, _ := sasl2Open(t, srv)
	r4.Send("<iq type='set' id='pa'><preauth xmlns='urn:xmpp:pars:0' token='" + strings.TrimPrefix(lines[0], "xmpp:localhost?register;preauth=") + "'/></iq>")
	r4.Expect("type='result'")
	r4.Send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>ivy</username><password>ivy's pw</password></query></iq>")
	if got := r4.Expect("id='reg'"); !strings.Contains(got, "type='result'") {
		t.Fatalf("an invited registration: %q", got)
	}

	// Trusted networks (bulk provisioning) get the plain form.
	trusted := vireotest.Start(t, vireotest.Options{Registration: true, RegistrationCaptcha: true,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	r3, _ := sasl2Open(t, trusted)
	r3.Send("<iq type='get' id='t1'><query xmlns='jabber:iq:register'/></iq>")
	if got := r3.Expect("</iq>"); !strings.Contains(got, "<username/>") || strings.Contains(got, "urn:xmpp:bob") {
		t.Fatalf("a trusted network's form: %q", got)
	}
}

// TestIntegrationNbxmppCaptcha: Gajim's library, nbxmpp (Debian's python3-nbxmpp), reads
// the CAPTCHA registration form with its XEP-0077 code, which checks the image against
// its cid, and fills it in; what it would send registers the account.
func TestIntegrationNbxmppCaptcha(t *testing.T) {
	needPython(t, "nbxmpp", "python3-nbxmpp")
	srv := vireotest.Start(t, vireotest.Options{Registration: true, RegistrationCaptcha: true, AllowPlain: true})
	r, _ := sasl2Open(t, srv)
	form, ch := captchaGet(t, srv, r, "nb0")
	form = form[strings.Index(form, "<iq "):]
	cmd := exec.Command("/usr/bin/python3", "testdata/nbxmpp_captcha.py", engine.CaptchaText(srv.Engine, ch), "gajim", "gajim's pw")
	cmd.Stdin = strings.NewReader(form)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nbxmpp: %v\n%s", err, out)
	}
	for _, want := range []string{"FORM jabber:iq:register", "BOB image/png True True True", "OCR True", "SUBMIT <iq "} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("nbxmpp output lacks %q:\n%s", want, out)
		}
	}
	_, submit, _ := strings.Cut(string(out), "SUBMIT ")
	r.Send(strings.TrimSpace(submit))
	if got := r.Expect("id='nb1'"); !strings.Contains(got, "type='result'") {
		t.Fatalf("nbxmpp's submission: %q\n%s", got, submit)
	}
	srv.LoginPlain(t, "gajim", "gajim's pw", "pc")
}
