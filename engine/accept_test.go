package engine_test

import (
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationAcceptSurvivesEMFILE runs the process out of file descriptors while
// clients keep connecting: the listener must shed the excess, count it, and serve again as
// soon as descriptors free up (with gnet's own acceptor, EMFILE stopped the listener for
// good while the process kept running).
func TestIntegrationAcceptSurvivesEMFILE(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, RequireTLS: no()})
	srv.AddUser(t, "alice", "secret")

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
			restored = true
		}
	}
	defer restore()

	// Fill the descriptor table from both ends (client and server live in this process).
	var held []net.Conn
	for i := 0; i < 400; i++ {
		c, err := net.DialTimeout("tcp", srv.C2SAddr(), time.Second)
		if err != nil {
			break
		}
		held = append(held, c)
	}
	time.Sleep(300 * time.Millisecond) // the server tries to accept what is queued
	for _, c := range held {
		c.Close()
	}
	restore()
	t.Logf("held %d client connections at a limit of %d descriptors; stats %+v", len(held), low.Cur, srv.Engine.Stats())

	// The listener is still there and serves.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", srv.C2SAddr(), time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Write([]byte(srv.Header()))
			b := make([]byte, 4096)
			n, _ := c.Read(b)
			c.Close()
			if strings.Contains(string(b[:n]), "<stream:features") || strings.Contains(string(b[:n]), "<stream:stream") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener did not recover after descriptors were freed (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := srv.Dial(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
}

// TestIntegrationConnectionLimits: one address cannot hold more than its share of
// connections that have not logged in, trusted networks are exempt, and the global limit
// holds; a refused connection is closed at once, and logging in frees a slot.
func TestIntegrationConnectionLimits(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, RequireTLS: no(), MaxUnauthAddr: 3, MaxConns: 8,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}})
	srv.AddUser(t, "alice", "secret")
	open := func(ip string) (*vireotest.RawConn, bool) {
		r, err := srv.TryDialTLSFrom(t, ip)
		if err != nil {
			return nil, false
		}
		r.Send(srv.Header())
		_, err = r.ReadUntil("</stream:features>", 3*time.Second)
		return r, err == nil
	}
	var first []*vireotest.RawConn
	for i := 0; i < 3; i++ {
		r, ok := open("127.0.0.5")
		if !ok {
			t.Fatalf("connection %d from 127.0.0.5 refused under the limit", i)
		}
		first = append(first, r)
	}
	if _, ok := open("127.0.0.5"); ok {
		t.Fatal("a 4th unauthenticated connection from one address was served")
	}
	if _, ok := open("127.0.0.6"); !ok {
		t.Fatal("another address was refused")
	}
	// Logging in frees the address's slot.
	first[0].Send(plainAuth("alice", "secret"))
	first[0].Expect("<success")
	if _, ok := open("127.0.0.5"); !ok {
		t.Fatal("the slot of an authenticated connection was not given back")
	}
	// Trusted addresses are not limited per address, only by the global limit (8 now:
	// 4 from .5, 1 from .6, then 3 from .9).
	for i := 0; i < 3; i++ {
		if _, ok := open("127.0.0.9"); !ok {
			t.Fatalf("trusted connection %d refused", i)
		}
	}
	if _, ok := open("127.0.0.9"); ok {
		t.Fatal("the global connection limit did not hold")
	}
	if st := srv.Engine.Stats(); st.Refused < 2 {
		t.Fatalf("refused connections not counted: %+v", st)
	}
}
