package csi_test

import (
	"fmt"
	"strings"
	"testing"

	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
)

// TestCSIHoldsBackWhatCanWait drives a busy roster at a session while it is active and
// while it is inactive, and checks what the inactive one gets: nothing until a message
// with a body arrives, then the latest presence and chat state of each contact, in order,
// right before it. It reports the bytes and wake-ups (stanzas written) saved.
func TestCSIHoldsBackWhatCanWait(t *testing.T) {
	const contacts, rounds = 20, 5
	users := []string{"me"}
	for i := 0; i < contacts; i++ {
		users = append(users, fmt.Sprintf("c%d", i))
	}
	env := routertest.New(t, users, nil)
	for i := 0; i < contacts; i++ {
		c := fmt.Sprintf("c%d@example.org", i)
		env.Store.Rosters().Put("me@example.org", store.RosterItem{JID: c, Sub: store.SubBoth})
		env.Store.Rosters().Put(c, store.RosterItem{JID: "me@example.org", Sub: store.SubBoth})
	}
	phone := env.Bind("me", "phone")
	laptop := env.Bind("me", "laptop") // stays active: tells us when traffic has passed
	phone.Send("<presence/>")
	laptop.Send("<presence/>")
	var cs []*routertest.Sess
	for i := 0; i < contacts; i++ {
		s := env.Bind(fmt.Sprintf("c%d", i), "r")
		s.Send("<presence/>")
		cs = append(cs, s)
	}
	laptop.C.Wait(t, fmt.Sprintf("from='c%d@example.org/r'", contacts-1))

	busy := func(tag string) {
		for r := 0; r < rounds; r++ {
			for i, s := range cs {
				s.Send(fmt.Sprintf("<presence><status>%s-%d</status></presence>", tag, r))
				s.Send(fmt.Sprintf("<message to='me@example.org' type='chat' id='%s%d-%d'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", tag, i, r))
			}
		}
		laptop.C.Wait(t, fmt.Sprintf("%s-%d", tag, rounds-1), fmt.Sprintf("c%d@", contacts-1))
		for _, s := range cs { // every contact's last update has passed the laptop
			laptop.C.Wait(t, fmt.Sprintf("%s-%d", tag, rounds-1), s.S.JID().String())
		}
	}

	// Active: everything is written at once.
	phone.C.Reset()
	n0, b0 := phone.C.N.Load(), phone.C.Bytes.Load()
	busy("act")
	activeN, activeB := phone.C.N.Load()-n0, phone.C.Bytes.Load()-b0
	if activeN != 2*contacts*rounds {
		t.Fatalf("active session got %d stanzas, want %d", activeN, 2*contacts*rounds)
	}

	// Inactive: nothing until something matters.
	phone.Send("<inactive xmlns='urn:xmpp:csi:0'/>")
	phone.Send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>") // in order after the nonza
	phone.C.Wait(t, "id='sync'")
	phone.C.Reset()
	n1, b1 := phone.C.N.Load(), phone.C.Bytes.Load()
	busy("ina")
	if got := phone.C.N.Load() - n1; got != 0 {
		t.Fatalf("inactive session was woken %d times:\n%s", got, phone.C.All())
	}
	cs[3].Send("<message to='me@example.org/phone' type='chat' id='body1'><body>wake up</body></message>")
	phone.C.Wait(t, "id='body1'")
	got := phone.C.Got()
	inactiveN, inactiveB := phone.C.N.Load()-n1, phone.C.Bytes.Load()-b1
	if want := int64(2*contacts + 1); inactiveN != want {
		t.Fatalf("flush wrote %d stanzas, want %d (latest presence and chat state per contact, then the message)", inactiveN, want)
	}
	if !strings.Contains(got[len(got)-1], "wake up") {
		t.Fatalf("the message must come last, after what was held: %q", got[len(got)-1])
	}
	for _, s := range got[:len(got)-1] {
		if strings.Contains(s, "<presence") && !strings.Contains(s, fmt.Sprintf("ina-%d", rounds-1)) {
			t.Fatalf("stale presence flushed: %q", s)
		}
	}
	t.Logf("busy roster (%d contacts x %d presence + chat-state updates): active %d writes / %d B; inactive %d writes / %d B (%.0f%% fewer wake-ups, %.0f%% fewer bytes)",
		contacts, rounds, activeN, activeB, inactiveN, inactiveB,
		100*(1-float64(inactiveN)/float64(activeN)), 100*(1-float64(inactiveB)/float64(activeB)))

	// Active again: nothing left, nothing held.
	phone.Send("<active xmlns='urn:xmpp:csi:0'/>")
	phone.C.Reset()
	cs[0].Send("<presence><status>back</status></presence>")
	phone.C.Wait(t, "back")
}
