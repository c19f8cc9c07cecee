package engine_test

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationOfflineBacklog: a backlog of offline messages several times the outbound
// cap reaches a client that logs in, every message once and in order, without the stream
// being closed for what the server itself sends; the store is empty afterwards.
func TestIntegrationOfflineBacklog(t *testing.T) {
	const n, size = 120, 20 << 10 // 2.4 MB against a 256 KiB outbound cap
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, MaxOutbound: 256 << 10})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	a := srv.LoginPlain(t, "alice", "secret", "pc")
	body := strings.Repeat("y", size)
	for i := 0; i < n; i++ {
		a.Send(fmt.Sprintf("<message to='bob@localhost' type='chat' id='b%d'><body>%s</body></message>", i, body))
	}
	for i := 0; ; i++ { // stored in bob's shard, after alice's own shard is done with them
		c, _ := srv.Store.Offline().Count("bob@localhost")
		if c == n {
			break
		}
		if i == 500 {
			t.Fatalf("%d stored, want %d", c, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := srv.LoginPlain(t, "bob", "secret", "phone")
	b.Send("<presence/>")
	for i := 0; i < n; i++ {
		got, err := b.ReadUntil(fmt.Sprintf("id='b%d'", i), 10*time.Second)
		if err != nil {
			t.Fatalf("message b%d: %v (stream closed? %q)", i, err, got[max(0, len(got)-300):])
		}
		if strings.Contains(got, "stream:error") {
			t.Fatalf("stream error during the backlog: %q", got)
		}
	}
	for i := 0; i < 200; i++ {
		if c, _ := srv.Store.Offline().Count("bob@localhost"); c == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, _ := srv.Store.Offline().Count("bob@localhost")
	t.Fatalf("%d messages still stored after delivery", c)
}

// TestIntegrationOfflineReadThenLeave: a client that reads its stored messages and ends
// its stream at once must not get them again at its next login. (Found by the soak: the
// delete of a written batch was skipped when the session had ended before the shard ran
// it, so a quick client got the batch twice.)
func TestIntegrationOfflineReadThenLeave(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	a := srv.LoginPlain(t, "alice", "secret", "pc")
	const rounds, per = 25, 3
	for r := 0; r < rounds; r++ {
		for i := 0; i < per; i++ {
			a.Send(fmt.Sprintf("<message to='bob@localhost' type='chat' id='r%d-%d'><body>round %d</body></message>", r, i, r))
		}
		for i := 0; ; i++ {
			if c, _ := srv.Store.Offline().Count("bob@localhost"); c == per {
				break
			} else if i == 500 {
				t.Fatalf("round %d: %d stored, want %d", r, c, per)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b := srv.LoginPlain(t, "bob", "secret", "phone")
		b.Send("<presence/>")
		if got, err := b.ReadUntil(fmt.Sprintf("id='r%d-%d'", r, per-1), 5*time.Second); err != nil {
			t.Fatalf("round %d: %v: %q", r, err, got)
		}
		b.Send("</stream:stream>")
		b.ReadUntil("</stream:stream>", 5*time.Second)
		b.Conn().Close()
		// The deletion runs on the shard after the stream's close: up to 5 s on a busy
		// machine (a fixed half second failed under load).
		for i := 0; ; i++ {
			if c, _ := srv.Store.Offline().Count("bob@localhost"); c == 0 {
				break
			} else if i == 1000 {
				t.Fatalf("round %d: %d of the %d messages read still stored: the next login gets them again", r, c, per)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestIntegrationOfflineDropMidBatch: a client with a tiny receive window that stops
// reading in the middle of its stored messages and ends its stream (close_notify) loses
// none of them: what the server had queued is written before it closes, and whatever the
// first connection did not get comes at the next login. (The closed-socket case, where
// gnet's buffer is gone before the module asks, is TestDrained's.)
func TestIntegrationOfflineDropMidBatch(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	a := srv.LoginPlain(t, "alice", "secret", "pc")
	const n, size = 40, 16 << 10
	body := strings.Repeat("z", size)
	for i := 0; i < n; i++ {
		a.Send(fmt.Sprintf("<message to='bob@localhost' type='chat' id='d%d'><body>%s</body></message>", i, body))
	}
	for i := 0; ; i++ {
		if c, _ := srv.Store.Offline().Count("bob@localhost"); c == n {
			break
		} else if i == 500 {
			t.Fatalf("%d stored, want %d", c, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A receive buffer of a few KiB, set before the handshake so that the window stays
	// small: most of the first batch waits in the server's buffer.
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	nc, err := tls.DialWithDialer(d, "tcp", srv.TLSAddr(), srv.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	b := vireotest.NewRawConn(t, nc)
	b.Send(srv.Header())
	b.Expect("</stream:features>")
	b.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00bob\x00secret")) + "</auth>")
	b.Expect("<success")
	b.Send(srv.Header())
	b.Expect("</stream:features>")
	b.Send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>")
	b.Expect("</iq>")
	b.Send("<presence/>")
	time.Sleep(300 * time.Millisecond) // the first batch goes out and sticks
	// Half-close (close_notify): the server ends the stream and closes, and this side
	// can still read everything that reached it.
	nc.CloseWrite()
	got := map[string]bool{}
	first, _ := io.ReadAll(nc)
	for _, m := range msgIDs.FindAllStringSubmatch(string(first), -1) {
		got[m[1]] = true
	}
	time.Sleep(300 * time.Millisecond)
	c2 := srv.LoginPlain(t, "bob", "secret", "phone2")
	c2.Send("<presence/>")
	second, _ := c2.ReadUntil("never-sent", 3*time.Second)
	for _, m := range msgIDs.FindAllStringSubmatch(second, -1) {
		got[m[1]] = true
	}
	var missing []string
	for i := 0; i < n; i++ {
		if id := fmt.Sprintf("d%d", i); !got[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d stored messages never arrived (the first connection read %d bytes): %v", len(missing), n, len(first), missing)
	}
}

var msgIDs = regexp.MustCompile(`<message[^>]* id='(d\d+)'`)
