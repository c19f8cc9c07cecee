package engine_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/welcome"
)

// TestIntegrationWelcome: [modules.welcome]. An account made in-band finds the operator's
// message at its first login, from the host, stamped when it was sent (offline
// storage), and only once; an account the operator adds gets none.
func TestIntegrationWelcome(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Registration: true, ModuleConfig: func(id string, v any) error {
		if c, ok := v.(*welcome.Config); ok {
			c.Subject, c.Message = "Welcome", "Hello & welcome to localhost.\nRooms: lobby@conference.localhost"
		}
		return nil
	}})
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>newbie</username><password>first steps</password></query></iq>")
	if got := r.Expect("id='reg'"); !strings.Contains(got, "type='result'") {
		t.Fatalf("registration: %s", got)
	}
	c := srv.LoginPlain(t, "newbie", "first steps", "phone")
	c.Send("<presence/>")
	got := c.Expect("</message>")
	for _, want := range []string{"from='localhost'", "to='newbie@localhost'", "<subject>Welcome</subject>",
		"<body>Hello &amp; welcome to localhost.\nRooms: lobby@conference.localhost</body>", "<delay xmlns='urn:xmpp:delay'"} {
		if !strings.Contains(got, want) {
			t.Fatalf("welcome lacks %q: %s", want, got)
		}
	}
	c2 := srv.LoginPlain(t, "newbie", "first steps", "desk")
	c2.Send("<presence/>")
	c2.Never("<subject>Welcome</subject>")

	srv.AddUser(t, "staff", "made by hand")
	s := srv.LoginPlain(t, "staff", "made by hand", "pc")
	s.Send("<presence/>")
	s.Never("<subject>Welcome</subject>")
}
