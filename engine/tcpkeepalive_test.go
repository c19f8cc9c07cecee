package engine_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// tcpTimer is one established IPv4 socket of this process's network namespace as the
// kernel lists it in /proc/net/tcp: its ports and its pending timer (tr 2 is keepalive).
type tcpTimer struct {
	local, remote int
	timer         int
	when          time.Duration
}

func tcpTimers(t *testing.T) []tcpTimer {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("no kernel socket table: %v", err)
	}
	defer f.Close()
	port := func(addr string) int {
		i := strings.LastIndexByte(addr, ':')
		p, _ := strconv.ParseInt(addr[i+1:], 16, 32)
		return int(p)
	}
	var out []tcpTimer
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[3] != "01" { // established
			continue
		}
		tr, when, _ := strings.Cut(f[5], ":")
		timer, _ := strconv.ParseInt(tr, 16, 32)
		ticks, _ := strconv.ParseInt(when, 16, 64)
		out = append(out, tcpTimer{local: port(f[1]), remote: port(f[2]), timer: int(timer),
			when: time.Duration(ticks) * time.Second / 100}) // clock ticks (USER_HZ)
	}
	return out
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestTCPKeepalive reads the kernel's socket table: the server's side of a client's
// connection (c2s, direct TLS, web) has no TCP keepalive, since the server pings a silent
// client with XEP-0199 after ping_after and Go's default would probe every 15 s, waking an
// idle phone's radio; the server's side of a component or s2s stream, accepted or dialled,
// probes only after ping_after of silence.
func TestTCPKeepalive(t *testing.T) {
	const pingAfter = 90 * time.Second
	a, b := federatedWith(t, func(o *vireotest.Options) {
		o.PingAfter = pingAfter
		o.Components = []engine.Component{{Domain: "bot.a.localhost", Secret: "s"}}
	}, func(o *vireotest.Options) { o.PingAfter = pingAfter })

	alice := a.LoginPlain(t, "alice", "secret", "phone")
	bob := b.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	alice.Send("<message to='bob@b.localhost/pc' type='chat'><body>over s2s</body></message>")
	bob.Expect("over s2s")
	direct := a.DialTLS(t)
	direct.Send(a.Header())
	direct.Expect("</stream:features>")
	web := vireotest.DialAddr(t, a.WebAddr())
	web.Send("GET /.well-known/host-meta HTTP/1.1\r\nHost: a.localhost\r\n\r\n")
	web.Expect("HTTP/1.1")
	comp := vireotest.DialAddr(t, a.ComponentAddr())
	comp.Send("<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='bot.a.localhost'>")
	comp.Expect("id=")

	plain := vireotest.DialAddr(t, a.C2SAddr())
	plain.Send(a.Header())
	plain.Expect("</stream:features>")

	clients := map[int]string{portOf(t, a.C2SAddr()): "c2s", portOf(t, a.TLSAddr()): "c2s-tls", portOf(t, a.WebAddr()): "web"}
	peers := map[int]string{portOf(t, a.ComponentAddr()): "component", portOf(t, b.S2SAddr()): "s2s"}
	var seen map[string]int
	var errs []string
	// A socket that has just sent shows its retransmission timer (1) until the ack; the
	// table is read again until none does.
	for try := 0; ; try++ {
		seen, errs = map[string]int{}, nil
		busy := false
		for _, s := range tcpTimers(t) {
			if kind, ok := clients[s.local]; ok {
				seen[kind]++
				busy = busy || s.timer == 1
				if s.timer == 2 {
					errs = append(errs, fmt.Sprintf("%s: the server's socket (port %d) has TCP keepalive, due in %v", kind, s.remote, s.when))
				}
			}
			kind, accepted := peers[s.local]
			if !accepted {
				if kind, ok := peers[s.remote]; !ok || kind != "s2s" {
					continue
				}
				kind = "s2s dialled" // a's outbound stream to b
			}
			seen[kind]++
			busy = busy || s.timer == 1
			if s.timer != 2 || s.when > pingAfter || s.when < pingAfter-30*time.Second {
				errs = append(errs, fmt.Sprintf("%s: the server's socket has timer %d due in %v, want keepalive after %v", kind, s.timer, s.when, pingAfter))
			}
		}
		if !busy || try == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, e := range errs {
		t.Error(e)
	}
	for _, kind := range []string{"c2s", "c2s-tls", "web", "component", "s2s", "s2s dialled"} {
		if seen[kind] == 0 {
			t.Errorf("no established %s socket in /proc/net/tcp", kind)
		}
	}
	t.Logf("sockets checked: %v", seen)
}
