package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/roster"
)

// TestIntegrationSharedGroups: [modules.roster] shared_groups_file. alice and bob are in a
// group and never asked each other: each has the other on the roster, subscribed both
// ways, under the group's name, and sees the other's presence; carol, outside it, has
// nobody and sees nothing. alice cannot remove bob, but can rename him. A reload with a
// new file puts carol in: her open session gets alice's next presence, and her next
// login's roster has alice.
func TestIntegrationSharedGroups(t *testing.T) {
	file := filepath.Join(t.TempDir(), "groups.txt")
	if err := os.WriteFile(file, []byte("[Team]\nalice@localhost=Alice\nbob@localhost=Bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, ModuleConfig: func(id string, v any) error {
		if c, ok := v.(*roster.Config); ok {
			c.SharedGroupsFile = file
		}
		return nil
	}})
	for _, u := range []string{"alice", "bob", "carol"} {
		srv.AddUser(t, u, "secret")
	}
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>")
	got := bob.Expect("id='r'") + bob.Expect("</iq>")
	if !strings.Contains(got, "<item jid='alice@localhost' name='Alice' subscription='both'><group>Team</group></item>") {
		t.Fatalf("bob's roster: %s", got)
	}
	carol := srv.LoginPlain(t, "carol", "secret", "pc")
	carol.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>")
	if got := carol.Expect("id='r'") + carol.Expect("</iq>"); strings.Contains(got, "<item") {
		t.Fatalf("carol's roster: %s", got)
	}
	alice := srv.LoginPlain(t, "alice", "secret", "pc")
	alice.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>")
	alice.Expect("id='r'")
	alice.Expect("from='bob@localhost/pc'") // bob's presence, answering alice's probe
	bob.Expect("from='alice@localhost/pc'")
	carol.Never("from='alice@localhost")

	// Removing bob is refused; renaming him is alice's own business.
	alice.Send("<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query></iq>")
	if got := alice.Expect("id='rm'") + alice.Expect("</iq>"); !strings.Contains(got, "<not-allowed") {
		t.Fatalf("removing a shared contact: %s", got)
	}
	alice.Send("<iq type='set' id='mv'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bobby'><group>Work</group></item></query></iq>")
	if got := alice.Expect("id='mv'"); !strings.Contains(got, "type='result'") {
		t.Fatalf("renaming a shared contact: %s", got)
	}
	alice.Send("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>")
	got = alice.Expect("id='r2'") + alice.Expect("</iq>")
	if !strings.Contains(got, "<item jid='bob@localhost' name='Bobby' subscription='both'><group>Work</group></item>") {
		t.Fatalf("alice's roster after the rename: %s", got)
	}

	// A reload with carol in the group.
	if err := os.WriteFile(file, []byte("[Team]\nalice@localhost=Alice\nbob@localhost=Bob\ncarol@localhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	apply, ok, err := srv.Router.Reconfigure("roster", module.Reconfig{Decode: func(v any) error {
		v.(*roster.Config).SharedGroupsFile = file
		return nil
	}, Domains: []string{"localhost"}})
	if err != nil || !ok {
		t.Fatalf("reload: %v %v", ok, err)
	}
	apply()
	// Online sessions follow at once: alice's next presence reaches carol's open session.
	alice.Send("<presence><status>after the reload</status></presence>")
	if got, _ := carol.ReadUntil("after the reload", 5*time.Second); !strings.Contains(got, "from='alice@localhost/pc'") {
		t.Fatalf("carol's open session after the reload: %s", got)
	}
	carol2 := srv.LoginPlain(t, "carol", "secret", "phone")
	carol2.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
	if got := carol2.Expect("id='r'") + carol2.Expect("</iq>"); !strings.Contains(got, "<item jid='alice@localhost' name='Alice' subscription='both'><group>Team</group></item>") {
		t.Fatalf("carol's roster after the reload: %s", got)
	}
}
