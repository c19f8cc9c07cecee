package engine_test

import (
	"testing"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/register"
)

// TestIntegrationRegistrationWatchers: [modules.register] watchers hear of each account
// made in-band and on the web sign-up page, with how and from where; not of accounts the
// operator adds.
func TestIntegrationRegistrationWatchers(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Registration: true,
		ModuleConfig: func(id string, v any) error {
			if c, ok := v.(*register.Config); ok {
				c.Watchers = []string{"admin@localhost"}
			}
			return nil
		}})
	srv.AddUser(t, "admin", "secret")
	w := srv.LoginPlain(t, "admin", "secret", "desk")
	w.Send("<presence/>")
	w.Expect("<presence")

	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>newbie</username><password>pw</password></query></iq>")
	mustHave(t, "in-band registration", r.Expect("id='reg'"), "type='result'")
	mustHave(t, "the watcher's message", w.Expect("</message>"), "from='localhost'", "type='chat'",
		"New account newbie@localhost, registered in-band, from 127.0.0.1.")

	if _, err := srv.Engine.RegisterOpen("localhost", "webbie", "a long password", "192.0.2.7"); err != nil {
		t.Fatal(err)
	}
	mustHave(t, "the watcher's message", w.Expect("</message>"), "New account webbie@localhost, registered on the web, from 192.0.2.7.")

	if err := admin.AddUser(adminBackend{srv}, "byhand@localhost", "pw", 0); err != nil {
		t.Fatal(err)
	}
	w.Never("New account")
}
