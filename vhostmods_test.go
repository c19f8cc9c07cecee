package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestIntegrationVHostModules: [vhosts."<host>"] modules_disabled through the real
// server, its config file and a real client (mellium): the host's users get
// service-unavailable from the modules it turned off and its disco#info and disco#items
// leave them out, while the other host keeps them; a reload brings back what it no
// longer lists, the room service included.
func TestIntegrationVHostModules(t *testing.T) {
	s, path := vhostServerWith(t, `
[vhosts."corp.localhost"]
modules_disabled = ["mam", "version", "muc"]
`)
	if r := vhost(t, s, "add", "corp.localhost"); r.Error != "" {
		t.Fatal(r.Error)
	}
	registerIBR(t, s, "localhost", "pia", "pia-pass-1")
	registerIBR(t, s, "corp.localhost", "cal", "cal-pass-1")
	pia := loginMellium(t, s, "pia", "localhost", "pia-pass-1")
	cal := loginMellium(t, s, "cal", "corp.localhost", "cal-pass-1")

	mustIn := func(what, got string, subs ...string) {
		t.Helper()
		for _, sub := range subs {
			if !strings.Contains(got, sub) {
				t.Fatalf("%s: no %q in %s", what, sub, got)
			}
		}
	}
	mustOut := func(what, got string, subs ...string) {
		t.Helper()
		for _, sub := range subs {
			if strings.Contains(got, sub) {
				t.Fatalf("%s: %q in %s", what, sub, got)
			}
		}
	}
	version := `<iq type="get" id="%s"><query xmlns="jabber:iq:version"/></iq>`
	mam := `<iq type="set" id="%s"><query xmlns="urn:xmpp:mam:2" queryid="q"/></iq>`
	info := `<iq type="get" id="%s" to="%s"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`
	items := `<iq type="get" id="%s" to="%s"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`
	ask := func(c *xmppClient, id, format string, args ...any) string {
		t.Helper()
		c.send(t, fmt.Sprintf(format, append([]any{id}, args...)...))
		return c.iqAnswer(t, id)
	}

	mustIn("version on corp", ask(cal, "v1", version), `type="error"`, "service-unavailable")
	mustIn("version on localhost", ask(pia, "v2", version), `type="result"`, "<name")
	mustIn("MAM on corp", ask(cal, "m1", mam), "service-unavailable")
	mustIn("MAM on localhost", ask(pia, "m2", mam), `type="result"`)
	corpInfo := ask(cal, "d1", info, "corp.localhost")
	mustIn("corp's disco#info", corpInfo, "jabber:iq:roster", "urn:xmpp:carbons:2")
	mustOut("corp's disco#info", corpInfo, "jabber:iq:version", "urn:xmpp:mam:2")
	mustIn("localhost's disco#info", ask(pia, "d2", info, "localhost"), "jabber:iq:version", "urn:xmpp:mam:2")
	mustOut("corp's account", ask(cal, "d3", info, "cal@corp.localhost"), "urn:xmpp:mam:2")
	mustOut("corp's services", ask(cal, "i1", items, "corp.localhost"), "conference.")
	mustIn("localhost's services", ask(pia, "i2", items, "localhost"), "conference.localhost")
	mustIn("corp's rooms", ask(cal, "r1", info, "conference.corp.localhost"), `type="error"`)

	// A reload: version and the room service come back on corp.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(b), `modules_disabled = ["mam", "version", "muc"]`, `modules_disabled = ["mam"]`, 1)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	mustIn("version on corp after the reload", ask(cal, "v3", version), `type="result"`)
	mustIn("MAM on corp after the reload", ask(cal, "m3", mam), "service-unavailable")
	mustIn("corp's services after the reload", ask(cal, "i3", items, "corp.localhost"), "conference.corp.localhost")
	mustIn("corp's rooms after the reload", ask(cal, "r2", info, "conference.corp.localhost"), `type="result"`, "http://jabber.org/protocol/muc")

	// A wrong module name fails the reload, and nothing of it applies.
	bad := strings.Replace(conf, `modules_disabled = ["mam"]`, `modules_disabled = ["mma"]`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), `"mma"`) {
		t.Fatalf("reload with an unknown module: %v", err)
	}
	mustIn("MAM on corp after the failed reload", ask(cal, "m4", mam), "service-unavailable")
}
