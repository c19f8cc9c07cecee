package last_test

import (
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/last"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// guestConn is the stream of a SASL ANONYMOUS login (router.Ephemeral).
type guestConn struct{ routertest.Conn }

func (*guestConn) Ephemeral() bool { return true }

// TestLogoutRecord: a user's last session end is recorded (XEP-0012), a guest's is not:
// its account goes with the session, and the write would only be removed again.
func TestLogoutRecord(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	e.Store.Accounts().Create(store.Account{User: "guest1@example.org", Anonymous: true})
	alice := e.Bind("alice", "pc")
	g := &guestConn{}
	done := make(chan *router.Session, 1)
	gj, _ := jid.Parse("guest1@example.org")
	e.R.Bind(gj, "web", g, func(s *router.Session, err error) {
		if err != nil {
			t.Error(err)
		}
		done <- s
	})
	gs := <-done
	if !gs.Ephemeral() || alice.S.Ephemeral() {
		t.Fatalf("Ephemeral: guest %v, alice %v", gs.Ephemeral(), alice.S.Ephemeral())
	}
	e.R.Unbind(gs)
	alice.Unbind()
	tbl := e.Store.Table(last.Table)
	waitRecorded(t, tbl, "alice@example.org")
	// The guest's session ended first, on its own shard: well before now.
	time.Sleep(100 * time.Millisecond)
	if _, ok, _ := last.Ended(tbl, "guest1@example.org"); ok {
		t.Fatal("a guest's logout was recorded")
	}
}

// TestLogoutRecordBesideBot: the end of the user's last available session is recorded
// though a session without presence (a bot, a tool) stays bound: contacts asking see the
// time of that logout, not an older one.
func TestLogoutRecordBesideBot(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	bot := e.Bind("alice", "bot") // never sends presence
	pc := e.Bind("alice", "pc")
	pc.Send("<presence/>")
	pc.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	pc.C.Wait(t, "id='p'")
	pc.Unbind()
	waitRecorded(t, e.Store.Table(last.Table), "alice@example.org")
	_ = bot
}

// waitRecorded waits (5 s at most) for user's logout record.
func waitRecorded(t *testing.T, tbl store.Table, user string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok, _ := last.Ended(tbl, user); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's logout was not recorded", user)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
