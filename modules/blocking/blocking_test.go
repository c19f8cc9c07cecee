package blocking_test

import (
	"strings"
	"testing"

	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router/routertest"
)

func block(t *testing.T, s *routertest.Sess, verb, id string, jids ...string) {
	t.Helper()
	var items string
	for _, j := range jids {
		items += "<item jid='" + j + "'/>"
	}
	s.Send("<iq type='set' id='" + id + "'><" + verb + " xmlns='urn:xmpp:blocking'>" + items + "</" + verb + "></iq>")
	s.C.Wait(t, "id='"+id+"'", "type='result'")
}

// TestBlockedIQs: XEP-0191 §3.4/§3.5 for IQs. IQ requests from a blocked JID get
// service-unavailable and are not delivered; results and errors are dropped silently. IQ
// requests to a blocked JID get not-acceptable with <blocked/>; results to it are dropped.
func TestBlockedIQs(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob", "carol"}, nil)
	a := e.Bind("alice", "pc")
	b := e.Bind("bob", "pc")
	c := e.Bind("carol", "pc")
	block(t, a, "block", "bl", "bob@example.org")
	for _, tc := range []struct {
		name      string
		from      *routertest.Sess
		to        *routertest.Sess
		send      string
		wantError string // in the sender's reply; "" means no reply at all
		delivered bool
	}{
		{"get from blocked", b, a, "<iq type='get' id='i1' to='alice@example.org/pc'><query xmlns='urn:example:x'/></iq>", "service-unavailable", false},
		{"set from blocked", b, a, "<iq type='set' id='i2' to='alice@example.org/pc'><query xmlns='urn:example:x'/></iq>", "service-unavailable", false},
		{"get from blocked to bare", b, a, "<iq type='get' id='i3' to='alice@example.org'><vCard xmlns='vcard-temp'/></iq>", "service-unavailable", false},
		{"result from blocked", b, a, "<iq type='result' id='i4' to='alice@example.org/pc'/>", "", false},
		{"get to blocked", a, b, "<iq type='get' id='i5' to='bob@example.org/pc'><query xmlns='urn:example:x'/></iq>", "<blocked xmlns='urn:xmpp:blocking:errors'/>", false},
		{"result to blocked", a, b, "<iq type='result' id='i6' to='bob@example.org/pc'/>", "", false},
		{"get from other", c, a, "<iq type='get' id='i7' to='alice@example.org/pc'><query xmlns='urn:example:x'/></iq>", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.send[strings.Index(tc.send, "id='") : strings.Index(tc.send, "id='")+7]
			tc.from.Send(tc.send)
			if tc.delivered {
				tc.to.C.Wait(t, id)
				return
			}
			if tc.wantError != "" {
				got := tc.from.C.Wait(t, id, "type='error'")
				if !strings.Contains(got, tc.wantError) {
					t.Fatalf("want %s, got %s", tc.wantError, got)
				}
				if tc.from == a && !strings.Contains(got, "not-acceptable") {
					t.Fatalf("want not-acceptable, got %s", got)
				}
			} else {
				tc.from.C.Never(t, id)
			}
			tc.to.C.Never(t, id)
		})
	}
}
