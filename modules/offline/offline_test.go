package offline_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/offline"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
)

// TestQuotaBytes: offline storage is bounded by bytes as well as by messages
// ([modules.offline] quota_bytes): once a user's stored messages would pass the byte quota,
// the sender gets service-unavailable and nothing more is stored, however few messages
// there are; the count quota still holds for small messages.
func TestQuotaBytes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       offline.Config
		body      int // body bytes per message
		send      int
		maxStored int
	}{
		{"bytes bind first", offline.Config{Quota: 100, QuotaBytes: 2000}, 500, 6, 2}, // ~790 bytes stored each
		{"count binds first", offline.Config{Quota: 3, QuotaBytes: 1 << 20}, 10, 5, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
				o.ModuleConfig = func(id string, v any) error {
					if c, ok := v.(*offline.Config); ok {
						*c = tc.cfg
					}
					return nil
				}
			})
			a := e.Bind("alice", "pc")
			for i := 0; i < tc.send; i++ {
				a.Send(fmt.Sprintf("<message to='bob@example.org' type='chat' id='m%d'><body>%s</body></message>", i, strings.Repeat("b", tc.body)))
			}
			a.C.Wait(t, fmt.Sprintf("id='m%d'", tc.send-1), "service-unavailable")
			n, _ := e.Store.Offline().Count("bob@example.org")
			size, _ := e.Store.Offline().Bytes("bob@example.org")
			if n != tc.maxStored || (tc.cfg.QuotaBytes > 0 && size > tc.cfg.QuotaBytes) {
				t.Fatalf("stored %d messages, %d bytes; want %d within %d bytes", n, size, tc.maxStored, tc.cfg.QuotaBytes)
			}
			if got := strings.Count(a.C.All(), "service-unavailable"); got != tc.send-tc.maxStored {
				t.Fatalf("%d refusals, want %d:\n%s", got, tc.send-tc.maxStored, a.C.All())
			}
		})
	}
}

// TestDeliveryUnderFlowControl: a backlog far larger than one batch goes out in batches, in
// order; messages are deleted only once the connection has written them, so a client that
// never reads loses nothing (everything is still stored for its next login), and a second
// resource coming online meanwhile does not get the same messages again.
func TestDeliveryUnderFlowControl(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	const n = 300
	body := strings.Repeat("z", 900)
	for i := 0; i < n; i++ {
		a.Send(fmt.Sprintf("<message to='bob@example.org' type='chat' id='o%d'><body>%s</body></message>", i, body))
	}
	waitN := func(want int) {
		t.Helper()
		for i := 0; i < 500; i++ {
			if c, _ := e.Store.Offline().Count("bob@example.org"); c == want {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		c, _ := e.Store.Offline().Count("bob@example.org")
		t.Fatalf("%d stored, want %d", c, want)
	}
	waitN(n)

	// A client that never reads: one batch goes out, nothing is deleted.
	stuck := e.Bind("bob", "stuck")
	stuck.C.HoldDrain.Store(true)
	stuck.Send("<presence/>")
	stuck.C.Wait(t, "id='o0'")
	time.Sleep(100 * time.Millisecond)
	if got := strings.Count(stuck.C.All(), "<message"); got == 0 || got >= n {
		t.Fatalf("a client that never reads got %d of %d messages at once", got, n)
	}
	// A second resource meanwhile gets nothing twice.
	other := e.Bind("bob", "other")
	other.Send("<presence/>")
	other.C.Never(t, "id='o0'")
	waitN(n)
	stuck.Unbind()

	// Next login, a reading client: everything, in order, then the store is empty.
	bob := e.Bind("bob", "phone")
	bob.Send("<presence/>")
	bob.C.Wait(t, fmt.Sprintf("id='o%d'", n-1))
	waitN(0)
	got := bob.C.All()
	last := -1
	for i := 0; i < n; i++ {
		j := strings.Index(got, fmt.Sprintf("id='o%d'", i))
		if j < 0 || j < last {
			t.Fatalf("message o%d missing or out of order", i)
		}
		last = j
	}
}

// TestStorable: what waits for an offline user's next login. Messages with a body or a
// subject, and bodiless ones with a payload (a receipt, a marker, a call proposal, an
// encrypted message without a fallback body, a store hint), as ejabberd keeps them; not
// chat states, nor anything with a no-store hint: one with a body is refused to its sender
// with service-unavailable (RFC 6121 §8.5.2.2.1: stored or refused, never lost in
// silence). A no-permanent-store hint forbids archives, not this wait (XEP-0334 §4).
func TestStorable(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	cases := []struct {
		payload string
		kept    bool
	}{
		{"<body>hello</body>", true},
		{"<subject>plans</subject>", true},
		{"<received xmlns='urn:xmpp:receipts' id='m1'/>", true},
		{"<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>", true},
		{"<propose xmlns='urn:xmpp:jingle-message:0' id='c1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>", true},
		{"<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/><payload>AAAA</payload></encrypted>", true},
		{"<store xmlns='urn:xmpp:hints'/><thread>t1</thread>", true},
		{"<composing xmlns='http://jabber.org/protocol/chatstates'/>", false},
		{"<active xmlns='http://jabber.org/protocol/chatstates'/><thread>t1</thread>", false},
		{"<thread>t1</thread>", false},
		{"<body>secret</body><no-store xmlns='urn:xmpp:hints'/>", false},
		{"<received xmlns='urn:xmpp:receipts' id='m2'/><no-store xmlns='urn:xmpp:hints'/>", false},
		{"<body>off the record</body><no-permanent-store xmlns='urn:xmpp:hints'/>", true},
	}
	for i, c := range cases {
		a.Send(fmt.Sprintf("<message to='bob@example.org' type='chat' id='s%d'>%s</message>", i, c.payload))
	}
	a.Send("<iq type='get' id='sync' to='bob@example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	a.C.Wait(t, "id='sync'")
	if got := a.C.All(); !strings.Contains(got, "id='s10'") || strings.Count(got, "type='error'") != 1 ||
		!strings.Contains(got, "<service-unavailable") {
		t.Errorf("the sender of the no-store message with a body was not told, or others were:\n%s", got)
	}
	b := e.Bind("bob", "phone")
	b.Send("<presence/>")
	b.C.Wait(t, "id='s12'")
	b.C.Never(t, "id='s11'")
	for i, c := range cases {
		got := strings.Contains(b.C.All(), fmt.Sprintf("id='s%d'", i))
		if got != c.kept {
			t.Errorf("%s: delivered at login %v, want %v", c.payload, got, c.kept)
		}
	}
}

// TestDeliveredWhenPriorityRaised: a session that comes online with a negative priority
// gets no stored messages (XEP-0160 §3) until it sends non-negative presence, without
// going unavailable first.
func TestDeliveredWhenPriorityRaised(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<message to='bob@example.org' type='chat' id='w1'><body>while away</body></message>")
	a.Send("<iq type='get' id='sync' to='bob@example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	a.C.Wait(t, "id='sync'")
	b := e.Bind("bob", "phone")
	b.Send("<presence><priority>-1</priority></presence>")
	b.C.Never(t, "id='w1'")
	b.Send("<presence><priority>5</priority></presence>")
	b.C.Wait(t, "id='w1'", "while away")

	// Lowered after login, a message is stored; raised again, it comes at once.
	b.Send("<presence><priority>-1</priority></presence>")
	a.Send("<message to='bob@example.org' type='chat' id='w2'><body>while lowered</body></message>")
	a.Send("<iq type='get' id='sync2' to='bob@example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	a.C.Wait(t, "id='sync2'")
	b.C.Never(t, "id='w2'")
	b.Send("<presence><priority>1</priority></presence>")
	b.C.Wait(t, "id='w2'", "while lowered")
}

// TestUnknownTypeIsNormal: a message of a type nobody knows is a normal message (RFC 6121
// §5.2.2): stored for an offline user like one, not bounced.
func TestUnknownTypeIsNormal(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, nil)
	a := e.Bind("alice", "pc")
	a.Send("<message to='bob@example.org' type='x-foo' id='t1'><body>hi</body></message>")
	a.Send("<iq type='get' id='sync' to='bob@example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	a.C.Wait(t, "id='sync'")
	if strings.Contains(a.C.All(), "id='t1'") {
		t.Fatalf("a message of an unknown type bounced:\n%s", a.C.All())
	}
	if n, _ := e.Store.Offline().Count("bob@example.org"); n != 1 {
		t.Fatalf("%d stored, want 1", n)
	}
}

// TestFullNotArchived: a message refused because offline storage is full is not in the
// recipient's archive either (XEP-0313 §5.1.1 keeps what was accepted for delivery): its
// sender, told it failed, may send it again.
func TestFullNotArchived(t *testing.T) {
	e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
		o.ModuleConfig = func(id string, v any) error {
			if c, ok := v.(*offline.Config); ok {
				*c = offline.Config{Quota: 1, QuotaBytes: 1 << 20}
			}
			return nil
		}
	})
	a := e.Bind("alice", "pc")
	a.Send("<message to='bob@example.org' type='chat' id='m1'><body>first</body></message>")
	a.Send("<message to='bob@example.org' type='chat' id='m2'><body>second</body></message>")
	a.C.Wait(t, "id='m2'", "service-unavailable")
	b := e.Bind("bob", "pc")
	b.Send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'/></iq>")
	got := b.C.Wait(t, "id='q'", "<fin")
	if !strings.Contains(b.C.All(), "first") || strings.Contains(b.C.All(), "second") {
		t.Fatalf("archive after a refusal: %s\n%s", got, b.C.All())
	}
}
