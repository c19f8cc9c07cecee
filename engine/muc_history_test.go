package engine_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationMUCHistoryRestart: a persistent, logged room serves its join history
// (XEP-0045 §7.2.14) after a restart of the server on the same data directory, from its
// archive: the newest messages with their <delay/>, under every legacy limit (maxstanzas,
// maxchars, seconds, since), without the real JIDs the archive keeps.
func TestIntegrationMUCHistoryRestart(t *testing.T) {
	dir := t.TempDir()
	t.Run("before", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Dir: dir})
		for _, u := range []string{"alice", "bob"} {
			srv.AddUser(t, u, "secret")
		}
		alice := mucLogin(t, srv, "alice", "pc")
		mucCreate(t, alice, mucRoom, "Alice")
		alice.Send(mucConfig(mucRoom, "cfg", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_enablelogging", "1",
			"muc#maxhistoryfetch", "3"))
		expectStanza(t, alice, "id='cfg'", "type='result'")
		for _, body := range []string{"h1", "h2", "h3", "h4"} {
			alice.Send("<message to='" + mucRoom + "' type='groupchat' id='" + body + "'><body>" + body + "</body></message>")
			expectStanza(t, alice, "<body>"+body+"</body>")
		}
		alice.Send("</stream:stream>")
	})
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, Dir: dir})
	bob := mucLogin(t, srv, "bob", "pc")
	histOf := func(id string, hist string) []string {
		t.Helper()
		bob.Send(mucJoin(mucRoom, "Bob", id, hist))
		var got strings.Builder
		for {
			got.WriteString(bob.Expect(">"))
			if s, _ := stanzaWith(got.String(), "<subject"); s != "" {
				break
			}
		}
		var bodies []string
		for _, m := range []string{"h1", "h2", "h3", "h4"} {
			if s, _ := stanzaWith(got.String(), "<body>"+m+"</body>"); s != "" {
				if !strings.Contains(s, "<delay xmlns='urn:xmpp:delay' from='"+mucRoom+"' stamp='") ||
					!strings.Contains(s, "from='"+mucRoom+"/Alice'") || strings.Contains(s, "alice@localhost") {
					t.Fatalf("history message: %s", s)
				}
				bodies = append(bodies, m)
			}
		}
		bob.Send("<presence to='" + mucRoom + "/Bob' type='unavailable'/>")
		expectStanza(t, bob, "from='"+mucRoom+"/Bob'", "type='unavailable'")
		return bodies
	}
	for i, tc := range []struct{ hist, want string }{
		{"", "h2,h3,h4"}, // muc#maxhistoryfetch = 3
		{"<history maxstanzas='2'/>", "h3,h4"},
		{"<history maxstanzas='0'/>", ""},
		{"<history seconds='3600'/>", "h2,h3,h4"},
		{"<history since='2999-01-01T00:00:00Z'/>", ""},
		{"<history maxchars='0'/>", ""},
	} {
		if got := strings.Join(histOf("j"+string(rune('a'+i)), tc.hist), ","); got != tc.want {
			t.Fatalf("%q: history %q, want %q", tc.hist, got, tc.want)
		}
	}
}
