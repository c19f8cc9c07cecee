package antispam_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/modules/antispam"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// TestRemoteSenders: what arrives from other servers (SubmitFrom, as a server-to-server
// stream hands it over). A stranger's messages stop at the budget; private messages
// through a room on the other server the user is in (their bare JID is the room's, shared
// by every occupant), a remote server's own messages and chat states without a body are
// not counted; a room's message to a user who is not in it is.
func TestRemoteSenders(t *testing.T) {
	e := routertest.New(t, []string{"bob"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*antispam.Config); ok {
				c.PerSender, c.PerDomain = 2, 100
			}
			return nil
		}
	})
	bob := e.Bind("bob", "pc")
	bob.Send("<presence/>")
	bob.Send("<presence to='tea@conference.remote.example/Bob'/>") // in the room
	from := func(s string) jid.JID { j, _ := jid.Parse(s); return j }
	send := func(sender, id, extra string) {
		raw := fmt.Sprintf("<message from='%s' to='bob@example.org/pc' id='%s' type='chat'>%s</message>", sender, id, extra)
		if !e.R.SubmitFrom(from(sender), []byte(raw)) {
			t.Fatal("submit refused")
		}
	}
	for i := range 4 {
		send("tea@conference.remote.example/Alice", fmt.Sprintf("pm%d", i), "<body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/>")
		send("remote.example", fmt.Sprintf("srv%d", i), "<body>maintenance tonight</body>")
		send("spammer@remote.example/bot", fmt.Sprintf("cs%d", i), "<composing xmlns='http://jabber.org/protocol/chatstates'/>")
	}
	for i := range 4 {
		send("spammer@remote.example/bot", fmt.Sprintf("sp%d", i), "<body>buy now</body>")
	}
	// Markers after the rest from the same senders (one sender's stanzas keep their order).
	send("spammer@remote.example/bot", "csend", "<active xmlns='http://jabber.org/protocol/chatstates'/>")
	send("tea@conference.remote.example/Alice", "last", "<body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/>")
	bob.C.Wait(t, "id='csend'")
	bob.C.Wait(t, "id='last'")
	// The spammer is out of budget: a subscription request from it goes nowhere; one
	// from another stranger of the server arrives.
	for _, sub := range []string{"spammer@remote.example", "fan@remote.example"} {
		raw := "<presence from='" + sub + "' to='bob@example.org' type='subscribe'><status>see my site</status></presence>"
		e.R.SubmitFrom(from(sub), []byte(raw))
	}
	send("spammer@remote.example/bot", "csend2", "<active xmlns='http://jabber.org/protocol/chatstates'/>")
	bob.C.Wait(t, "id='csend2'")
	bob.C.Wait(t, "from='fan@remote.example'", "type='subscribe'")
	got := bob.C.All()
	if strings.Contains(got, "from='spammer@remote.example' to='bob@example.org' type='subscribe'") {
		t.Error("the spammer's subscription request got through")
	}
	for _, id := range []string{"pm3", "srv3", "cs3", "sp0", "sp1"} {
		if !strings.Contains(got, "id='"+id+"'") {
			t.Errorf("%s did not arrive", id)
		}
	}
	for _, id := range []string{"sp2", "sp3"} {
		if strings.Contains(got, "id='"+id+"'") {
			t.Errorf("%s got past the sender's budget", id)
		}
	}
}

// TestRoomWrapperNoBypass: a room's muc#user element or a headline does not take a
// stranger's messages past the budget when the user is in no such room, nor a listed
// server's past its listing.
func TestRoomWrapperNoBypass(t *testing.T) {
	list := t.TempDir() + "/spam.txt"
	if err := os.WriteFile(list, []byte("spam.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := routertest.New(t, []string{"bob"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*antispam.Config); ok {
				c.PerSender, c.PerDomain, c.BlockedDomainsFile = 2, 100, list
			}
			return nil
		}
	})
	bob := e.Bind("bob", "pc")
	bob.Send("<presence/>")
	send := func(sender, id, typ, extra string) {
		j, _ := jid.Parse(sender)
		raw := fmt.Sprintf("<message from='%s' to='bob@example.org/pc' id='%s' type='%s'><body>buy</body>%s</message>", sender, id, typ, extra)
		if !e.R.SubmitFrom(j, []byte(raw)) {
			t.Fatal("submit refused")
		}
	}
	muc := "<x xmlns='http://jabber.org/protocol/muc#user'/>"
	for i := range 4 {
		send("ads@rooms.remote.example/shill", fmt.Sprintf("r%d", i), "chat", muc)
		send("news@remote.example", fmt.Sprintf("h%d", i), "headline", "")
	}
	send("bot@spam.example/x", "listed", "chat", muc)
	j, _ := jid.Parse("ads@rooms.remote.example/shill")
	e.R.SubmitFrom(j, []byte("<message from='ads@rooms.remote.example/shill' to='bob@example.org/pc' id='mark1' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>"))
	j, _ = jid.Parse("news@remote.example")
	e.R.SubmitFrom(j, []byte("<message from='news@remote.example' to='bob@example.org/pc' id='mark2' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>"))
	bob.C.Wait(t, "id='mark1'")
	bob.C.Wait(t, "id='mark2'")
	got := bob.C.All()
	for _, id := range []string{"r2", "r3", "h2", "h3", "listed"} {
		if strings.Contains(got, "id='"+id+"'") {
			t.Errorf("%s got past the budget or the listing", id)
		}
	}
}
