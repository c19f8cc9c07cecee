package engine_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestIntegrationReloadListeners: a reload opens the listeners it adds, stops accepting on
// the ones it takes away while their sessions go on, fails as a whole (domains included)
// when a new listener's port is taken, and lets a listener of another kind take over a
// removed one's address.
func TestIntegrationReloadListeners(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "alice pw")
	kept := srv.LoginPlain(t, "alice", "alice pw", "kept") // on c2s-tls, removed below
	tlsAddr := srv.TLSAddr()

	reload := func(cfg engine.Config) error { return srv.Engine.Reload(cfg) }
	without := func(ls []engine.Listener, name string) []engine.Listener {
		return slices.DeleteFunc(slices.Clone(ls), func(l engine.Listener) bool { return l.Name == name })
	}
	stream := func(addr, to string) *vireotest.RawConn {
		c := vireotest.DialAddr(t, addr)
		c.Send(strings.Replace(srv.Header(), "to='localhost'", "to='"+to+"'", 1))
		return c
	}

	// Added: it serves at once.
	cfg := srv.Engine.Config()
	cfg.Listeners = append(slices.Clone(cfg.Listeners), engine.Listener{Name: "c2s-extra", Addr: "127.0.0.1:0"})
	if err := reload(cfg); err != nil {
		t.Fatal(err)
	}
	extra := srv.Engine.Addr("c2s-extra")
	if extra == nil {
		t.Fatal("no c2s-extra listener after the reload")
	}
	stream(extra.String(), "localhost").Expect("</stream:features>")

	// A port in use: the reload fails and nothing of it applies, the new domain included.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := srv.Engine.Config()
	bad.Domains = append(slices.Clone(bad.Domains), "other.example")
	bad.Listeners = append(without(bad.Listeners, "c2s-extra"), engine.Listener{Name: "c2s-busy", Addr: busy.Addr().String()})
	if err := reload(bad); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("reload onto a taken port: %v", err)
	}
	if srv.Engine.Addr("c2s-busy") != nil {
		t.Fatal("the failed reload left a listener")
	}
	stream(extra.String(), "other.example").Expect("host-unknown")

	// Removed: no new connections, the session on it goes on.
	cfg = srv.Engine.Config()
	cfg.Listeners = without(cfg.Listeners, "c2s-tls")
	if err := reload(cfg); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", tlsAddr, 2*time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts after its listener was removed", tlsAddr)
	}
	kept.Send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	kept.Expect("id='p1'")
	if n := engine.RetiredListeners(srv.Engine); n != 1 {
		t.Fatalf("%d retired listeners, want 1", n)
	}
	var closed []engine.ListenerInfo
	for _, l := range srv.Engine.Listeners() {
		if !l.Accepting {
			closed = append(closed, l)
		}
	}
	if len(closed) != 1 || closed[0].Name != "c2s-tls" || closed[0].Addr != tlsAddr || closed[0].Conns != 1 {
		t.Fatalf("listeners closed by the reload: %+v; want c2s-tls on %s with its one session", closed, tlsAddr)
	}
	kept.Send("</stream:stream>")
	kept.ExpectClosed()
	deadline := time.Now().Add(10 * time.Second)
	for engine.RetiredListeners(srv.Engine) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the retired listener is kept after its last connection closed")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Same address, another kind: the web listener binds once the plain one has closed.
	cfg = srv.Engine.Config()
	cfg.Listeners = append(without(cfg.Listeners, "c2s-extra"), engine.Listener{Name: "web-moved", Addr: extra.String(), WebSocket: true})
	if err := reload(cfg); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + extra.String() + "/.well-known/host-meta")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "urn:xmpp:alt-connections:websocket") {
		t.Fatalf("host-meta on the moved address: %d %s", resp.StatusCode, body)
	}

	// Moved to a name that does not resolve, on the same port: it can be tried
	// only once the old one closed, so the rest of the reload is in force already. The
	// error says so (ListenerError), and the new domain is served.
	_, port, _ := net.SplitHostPort(extra.String())
	cfg = srv.Engine.Config()
	cfg.Domains = append(slices.Clone(cfg.Domains), "late.example")
	cfg.Listeners = append(without(cfg.Listeners, "web-moved"), engine.Listener{Name: "c2s-nowhere", Addr: "no-such-host.invalid:" + port})
	var lerr *engine.ListenerError
	if err := reload(cfg); !errors.As(err, &lerr) {
		t.Fatalf("a late listener that cannot bind: %v", err)
	}
	if got := srv.Engine.Config().Domains; !slices.Contains(got, "late.example") {
		t.Fatalf("domains after a partial reload: %v", got)
	}
}

// TestIntegrationReloadListenersShutdown: a session on a listener that a reload took
// away is still told the server is shutting down.
func TestIntegrationReloadListenersShutdown(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "alice pw")
	c := srv.LoginPlain(t, "alice", "alice pw", "r")
	cfg := srv.Engine.Config()
	cfg.Listeners = slices.DeleteFunc(slices.Clone(cfg.Listeners), func(l engine.Listener) bool { return l.Name == "c2s-tls" })
	if err := srv.Engine.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	go srv.Stop()
	c.Expect("<system-shutdown")
	c.ExpectClosed()
}

// TestReloadListenersConcurrent: reloads that race (an admin command and a SIGHUP) leave
// exactly the listeners of the last one, and no socket behind.
func TestReloadListenersConcurrent(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	extra := "127.0.0.1:" + strconv.Itoa(vireotest.FreePort(t, "127.0.0.1"))
	base := srv.Engine.Config()
	with := base
	with.Listeners = append(slices.Clone(base.Listeners), engine.Listener{Name: "c2s-extra", Addr: extra})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				cfg := base
				if (g+i)%2 == 0 {
					cfg = with
				}
				srv.Engine.Reload(cfg) // a port still held by a retiring listener may fail one
			}
		}()
	}
	wg.Wait()
	if err := srv.Engine.Reload(base); err != nil {
		t.Fatal(err)
	}
	if srv.Engine.Addr("c2s-extra") != nil {
		t.Fatal("c2s-extra is listed after the last reload took it away")
	}
	if c, err := net.DialTimeout("tcp", extra, 2*time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts: a racing reload left its socket open", extra)
	}
	if err := srv.Engine.Reload(with); err != nil {
		t.Fatalf("the port is not free again: %v", err)
	}
}
