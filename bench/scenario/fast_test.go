package scenario

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestFastStormSmall runs the four phases against an in-process server, over plain TCP
// and direct TLS: every login of every phase succeeds and the ratios are filled in.
func TestFastStormSmall(t *testing.T) {
	no := false
	srv := vireotest.Start(t, vireotest.Options{Registration: true, RequireTLS: &no, AllowPlain: true, RegisterLimit: 1000,
		// FAST on plain TCP: from a trusted network only (loopback, as c2s.trusted_networks has it by default).
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	cfg := loadgen.Config{Addr: srv.C2SAddr(), Domain: srv.Domain(), Mode: loadgen.Plain, Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second}
	const k = 30
	for i := 1; i <= k; i++ {
		if err := loadgen.Register(cfg, "f"+strconv.Itoa(i), "pw"); err != nil {
			t.Fatal(err)
		}
	}
	tlsCfg := cfg
	tlsCfg.Mode, tlsCfg.Addr = loadgen.DirectTLS, srv.TLSAddr()
	// Twice on plain TCP: a second run issues new tokens for new client ids and logs in
	// with those.
	for i, c := range []loadgen.Config{cfg, cfg, tlsCfg} {
		r, err := FastStorm(Target{Name: "vireotest", Cfg: c, Prefix: "f", Password: "pw", PID: os.Getpid()}, k, 8)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []LoginResult{r.Stream, r.Legacy, r.SASL2, r.FAST, r.Quick} {
			// CPU comes from /proc in clock ticks (10 ms): a phase shorter than a few
			// ticks may read as none.
			if p.Logins != k || p.Failures != 0 || p.LoginsPerSecond <= 0 || p.ServerCPUPerLogin < 0 ||
				p.Seconds >= 0.1 && p.ServerCPUPerLogin == 0 {
				t.Fatalf("run %d: phase %+v", i, p)
			}
		}
		if r.CPUvsLegacy < 0 || r.CPUvsSASL2 < 0 || r.QuickVsLegacy < 0 || r.RateVsLegacy <= 0 || r.Mechanism != "SCRAM-SHA-1" || r.FastMechanism != FastMechanism {
			t.Fatalf("run %d: result %+v", i, r)
		}
	}
}

// TestFastStormUnsupported: a server without SASL2 in its features is reported, not run.
func TestFastStormUnsupported(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				c.Read(buf)
				c.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='localhost' version='1.0'>" +
					"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"))
				c.Read(buf)
			}()
		}
	}()
	tg := Target{Name: "old", Cfg: loadgen.Config{Addr: ln.Addr().String(), Domain: "localhost", Mechanism: "SCRAM-SHA-1", Timeout: 5 * time.Second},
		Prefix: "u", Password: "pw", PID: os.Getpid()}
	r, err := FastStorm(tg, 10, 2)
	if !errors.Is(err, ErrNoFAST) || r.Unsupported == "" || r.Legacy.Logins != 0 {
		t.Fatalf("got %v, %+v", err, r)
	}
}
