package vireotest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// NbxmppCaptcha reads an XEP-0158 challenge message the way Gajim does, with
// python-nbxmpp's code (engine/testdata/nbxmpp_muc_captcha.py, Debian's python3-nbxmpp),
// types answer as the text and returns the IQ nbxmpp would send back (its id is nbc1).
// The test fails when nbxmpp cannot read the form or its image.
func NbxmppCaptcha(t testing.TB, challenge, answer string) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(here), "..", "testdata", "nbxmpp_muc_captcha.py")
	cmd := exec.Command("/usr/bin/python3", script, answer)
	cmd.Stdin = strings.NewReader(challenge)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nbxmpp: %v\n%s", err, out)
	}
	for _, want := range []string{"FORM urn:xmpp:captcha True True", "BOB image/png True True", "SUBMIT <iq "} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("nbxmpp output lacks %q:\n%s", want, out)
		}
	}
	_, submit, _ := strings.Cut(string(out), "SUBMIT ")
	return strings.TrimSpace(submit)
}
