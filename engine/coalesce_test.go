package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationCoalesce: with a tick far longer than the test, a stanza for a
// connection that was just written to waits for the tick, and what a client waits for
// does not: an IQ answer takes the waiting stanzas with it, in order, and so does the
// end of the stream. Each step fails if the waiting bytes are lost or only the tick
// releases them.
func TestIntegrationCoalesce(t *testing.T) {
	alice, bob := alicePlusBob(t, vireotest.Options{CoalesceWrites: 10 * time.Second})

	// Bob's bind result went out moments ago, so the first message waits.
	alice.Send("<message to='bob@localhost/b' type='chat' id='m1'><body>one</body></message>")
	alice.Send("<message to='bob@localhost/b' type='chat' id='m2'><body>two</body></message>")
	bob.Never("<body>one</body>")

	// A ping's answer is urgent: it flushes the messages ahead of it.
	bob.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	got := bob.Expect("id='p1'")
	i1, i2, ip := strings.Index(got, "<body>one</body>"), strings.Index(got, "<body>two</body>"), strings.Index(got, "<iq")
	if i1 < 0 || i2 < i1 || ip < i2 {
		t.Fatalf("want one, two, then the pong; got %q", got)
	}

	// The end of the stream flushes what waits before it.
	alice.Send("<message to='bob@localhost/b' type='chat' id='m3'><body>three</body></message>")
	bob.Never("<body>three</body>")
	bob.Send("</stream:stream>")
	got = bob.Expect("</stream:stream>")
	if !strings.Contains(got, "<body>three</body>") {
		t.Fatalf("the message waiting before the end of the stream was lost: %q", got)
	}
	bob.ExpectClosed()
}

// TestIntegrationCoalesceBurst: a connection quiet for a tick gets the next two stanzas
// at once, each in its own write, even when they come moments apart; from the third
// within the tick on, a burst is under way and stanzas wait for the tick.
func TestIntegrationCoalesceBurst(t *testing.T) {
	const tick = 2 * time.Second
	alice, bob := alicePlusBob(t, vireotest.Options{CoalesceWrites: tick})
	time.Sleep(tick + 200*time.Millisecond) // bob's login answers are a tick old
	for i, id := range []string{"m1", "m2"} {
		alice.Send("<message to='bob@localhost/b' type='chat' id='" + id + "'><body>x</body></message>")
		// Well under the tick: the stanza did not wait for it.
		if got, err := bob.ReadUntil("id='"+id+"'", tick/2); err != nil {
			t.Fatalf("stanza %d after a quiet tick waited: %v; got %q", i+1, err, got)
		}
	}
	alice.Send("<message to='bob@localhost/b' type='chat' id='m3'><body>x</body></message>")
	bob.Never("id='m3'")
	if got, err := bob.ReadUntil("id='m3'", 2*tick); err != nil {
		t.Fatalf("the third stanza of a burst was not flushed by the tick: %v; got %q", err, got)
	}
}

// TestIntegrationCoalesceTick: what waits leaves at the tick without any urgent write,
// and a burst spread over several ticks arrives complete and in order.
func TestIntegrationCoalesceTick(t *testing.T) {
	alice, bob := alicePlusBob(t, vireotest.Options{CoalesceWrites: 20 * time.Millisecond})
	bodies := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, b := range bodies {
		alice.Send("<message to='bob@localhost/b' type='chat'><body>" + b + "</body></message>")
		time.Sleep(7 * time.Millisecond)
	}
	for _, b := range bodies {
		got := bob.Expect("</body>")
		if !strings.HasSuffix(got, "<body>"+b+"</body>") {
			t.Fatalf("want body %q next; got %q", b, got)
		}
	}
}

// TestIntegrationCoalesceFlood: a flood for a connection that was just written to (a
// joiner's occupant list in a big room) is written in chunks while it grows, rather than
// held for the tick until it passes the outbound cap and the stream is closed. (With the
// first version of coalescing, 111 of 10,000 joiners of one room were disconnected so.)
func TestIntegrationCoalesceFlood(t *testing.T) {
	alice, bob := alicePlusBob(t, vireotest.Options{CoalesceWrites: 2 * time.Second})
	const n = 450
	body := strings.Repeat("x", 3000)
	var burst strings.Builder
	for i := range n {
		fmt.Fprintf(&burst, "<message to='bob@localhost/b' type='chat' id='f%d'><body>%s</body></message>", i, body)
	}
	// Bob reads all along, as a client does: only what the server holds back counts
	// against the cap, not what a slow test reader leaves in the kernel.
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := bob.ReadUntil(fmt.Sprintf("id='f%d'", i), 20*time.Second); err != nil {
				done <- fmt.Errorf("message %d of %d: %w", i, n, err)
				return
			}
		}
		done <- nil
	}()
	alice.Send(burst.String()) // ~1.4 MB, more than the 1 MiB cap
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// alicePlusBob starts a server with o (PLAIN allowed) and logs alice and bob in.
func alicePlusBob(t *testing.T, o vireotest.Options) (alice, bob *vireotest.RawConn) {
	t.Helper()
	o.AllowPlain = true
	srv := vireotest.Start(t, o)
	srv.AddUser(t, "alice", "alice pw")
	srv.AddUser(t, "bob", "bob pw")
	return srv.LoginPlain(t, "alice", "alice pw", "a"), srv.LoginPlain(t, "bob", "bob pw", "b")
}
