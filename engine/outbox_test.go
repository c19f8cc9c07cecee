package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationOutboxOrder: a burst pipelined in one write, followed at once by the end
// of the sender's stream (what a send-and-quit script does), reaches its recipient
// complete and in order through the outbox's coalesced writes, and the close that ends
// each stream comes after every byte before it. Over TLS, so the record layer's writes go
// through the outbox too. (Before, the router dropped the stanzas of a stream that had
// ended before its shard reached them: 1,100 to 1,600 of these 2,000 were lost.)
func TestIntegrationOutboxOrder(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "alice pw")
	srv.AddUser(t, "bob", "bob pw")
	alice := srv.LoginPlain(t, "alice", "alice pw", "a")
	bob := srv.LoginPlain(t, "bob", "bob pw", "b")

	const n = 2000
	var burst strings.Builder
	for i := range n {
		fmt.Fprintf(&burst, "<message to='bob@localhost/b' type='chat' id='m%d'><body>%d</body></message>", i, i)
	}
	alice.Send(burst.String())
	// The end of alice's stream is answered after everything the server wrote to her
	// (nothing here) and closes her connection.
	alice.Send("</stream:stream>")
	alice.Expect("</stream:stream>")
	alice.ExpectClosed()

	for i := range n {
		got, err := bob.ReadUntil(fmt.Sprintf("<body>%d</body>", i), 20*time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if strings.Count(got, "<body>") != 1 {
			t.Fatalf("message %d arrived after a later one: %q", i, got)
		}
	}
	bob.Send("</stream:stream>")
	bob.Expect("</stream:stream>")
	bob.ExpectClosed()
}
