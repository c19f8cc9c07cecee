//go:build linux

package standard_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
)

// TestDiskFull runs the router on a store on a 16 MiB tmpfs and fills it: every write a
// client asks for is answered at once with resource-constraint (type wait), an offline
// message included, reads are answered, and writes work again once space is freed.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("disk-full test mounts a small tmpfs and needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	st, err := pebblestore.Open(filepath.Join(dir, "db"), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the router's cleanup, registered below
	for _, u := range []string{"alice", "bob"} {
		if err := st.Accounts().Create(store.Account{User: u + "@example.org"}); err != nil {
			t.Fatal(err)
		}
	}
	e := routertest.New(t, nil, func(o *router.Options) { o.Store = st })
	a := e.Bind("alice", "pc")
	a.Send("<iq type='set' id='r0'><query xmlns='jabber:iq:roster'><item jid='carol@example.org'/></query></iq>")
	a.C.Wait(t, "id='r0'", "type='result'")

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 4<<10); ; {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	time.Sleep(1100 * time.Millisecond) // the store trusts a free-space reading for 1 s

	for _, tc := range []struct{ name, id, send string }{
		{"offline message", "m1", "<message to='bob@example.org' type='chat' id='m1'><body>hi</body></message>"},
		{"roster set", "r1", "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='dave@example.org'/></query></iq>"},
		{"vcard set", "v1", "<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>"},
		{"private set", "p1", "<iq type='set' id='p1'><query xmlns='jabber:iq:private'><x xmlns='urn:example:p'>1</x></query></iq>"},
		{"block", "b1", "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='eve@example.org'/></block></iq>"},
		{"password change", "w1", "<iq type='set' id='w1'><query xmlns='jabber:iq:register'><username>alice</username><password>n3w</password></query></iq>"},
	} {
		start := time.Now()
		a.Send(tc.send)
		got := a.C.Wait(t, "id='"+tc.id+"'", "type='error'")
		took := time.Since(start)
		t.Logf("%s: %v", tc.name, took)
		if !strings.Contains(got, "<resource-constraint ") || !strings.Contains(got, "type='wait'") {
			t.Errorf("%s on a full disk: %s, want resource-constraint (wait)", tc.name, got)
		}
		if took > 2*time.Second {
			t.Errorf("%s: answered after %v, want < 2 s", tc.name, took)
		}
	}
	a.Send("<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>")
	if got := a.C.Wait(t, "id='g1'"); !strings.Contains(got, "carol@example.org") {
		t.Errorf("roster read on a full disk: %s", got)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	a.Send("<message to='bob@example.org' type='chat' id='m2'><body>again</body></message>")
	a.Send("<iq type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='dave@example.org'/></query></iq>")
	a.C.Wait(t, "id='r2'", "type='result'")
	// The message is stored in bob's shard, the roster in alice's: the roster answer says
	// nothing about when bob's store write finishes, so wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := st.Offline().Count("bob@example.org")
		if n == 1 && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's offline messages after space came back: %d %v, want 1", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
