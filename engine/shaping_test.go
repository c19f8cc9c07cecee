package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationSenderRate: [c2s] max_rate. A client that sends 96 KiB of messages at
// once to a server shaping at 16 KiB/s after a 32 KiB burst is read at that pace: every
// message reaches bob, once and in order, no sooner than the debt allows (a lower bound,
// which a slow machine only makes longer), and the server counts the shaping. A client
// that keeps flooding far faster is closed with policy-violation once 16 max_stanza of
// its input wait, and what it sent before that still arrives in order.
func TestIntegrationSenderRate(t *testing.T) {
	const rate, burst, size, n = 16 << 10, 32 << 10, 1 << 10, 96
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, SenderRate: rate, SenderBurst: burst, MaxStanza: 8 << 10})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	srv.AddUser(t, "mallory", "secret")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice := srv.LoginPlain(t, "alice", "secret", "pc")
	body := strings.Repeat("x", size-120)
	var all strings.Builder
	for i := range n {
		fmt.Fprintf(&all, "<message to='bob@localhost' type='chat' id='m%03d'><body>%s</body></message>", i, body)
	}
	start := time.Now()
	alice.Send(all.String())
	got, err := bob.ReadUntil("id='m095'", 30*time.Second)
	if err != nil {
		t.Fatalf("not all messages arrived: %v", err)
	}
	elapsed := time.Since(start)
	last := -1
	for _, part := range strings.Split(got, "id='m")[1:] {
		var i int
		fmt.Sscanf(part, "%03d", &i)
		if i != last+1 {
			t.Fatalf("message %d after %d", i, last)
		}
		last = i
	}
	// What went past the burst waits for the bucket: (96 KiB - 32 KiB) / 16 KiB/s = 4 s,
	// less a little for the sizes' rounding.
	if min := time.Duration(float64(all.Len()-burst) / rate * 0.9 * float64(time.Second)); elapsed < min {
		t.Fatalf("%d bytes took %v, under the %v the rate allows", all.Len(), elapsed, min)
	}
	if st := srv.Router.Stats(); st.Shaped == 0 {
		t.Fatalf("shaping not counted: %+v", st)
	}

	// A flood: 16 × 8 KiB of input may wait; mallory sends far more.
	mallory := srv.LoginPlain(t, "mallory", "secret", "pc")
	go func() {
		chunk := strings.Repeat("<message to='bob@localhost' type='chat'><body>"+body+"</body></message>", 64)
		for range 64 {
			if _, err := mallory.Conn().Write([]byte(chunk)); err != nil {
				return
			}
		}
	}()
	if got := mallory.ExpectClosed(); !strings.Contains(got, "<policy-violation") {
		t.Fatalf("flooding client: %q", got)
	}
}
