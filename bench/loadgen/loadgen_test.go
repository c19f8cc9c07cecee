package loadgen

import (
	"crypto/sha1"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestScramFinalRFC5802 checks the client side against the example exchange in RFC 5802 §5.
func TestScramFinalRFC5802(t *testing.T) {
	final, sig, err := ScramFinal(sha1.New, "pencil", "fyko+d2lbbFgONRv9qkxdawL",
		"n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
	if err != nil {
		t.Fatal(err)
	}
	if want := "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="; final != want {
		t.Fatalf("final = %s, want %s", final, want)
	}
	if sig != "rmF9pqV8S7suAoZWja4dJRkFsKQ=" {
		t.Fatalf("server signature = %s", sig)
	}
	if _, _, err := ScramFinal(sha1.New, "pencil", "abc", "n=user,r=abc", "r=zzz,s=QSXCR+Q6sek8bf92,i=4096"); err == nil {
		t.Fatal("foreign nonce accepted")
	}
}

// TestRegisterAndDial makes an account in-band on a real server, logs in with it over
// each transport, and is refused a second registration of the same name.
func TestRegisterAndDial(t *testing.T) {
	no := false
	srv := vireotest.Start(t, vireotest.Options{Registration: true, RequireTLS: &no, AllowPlain: true})
	plain := Config{Addr: srv.C2SAddr(), Domain: srv.Domain(), Mode: Plain, Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second}
	if err := Register(plain, "bencher", "s3cret"); err != nil {
		t.Fatalf("register: %v", err)
	}
	if err := Register(plain, "bencher", "other"); !errors.Is(err, ErrConflict) {
		t.Fatalf("second registration: %v, want ErrConflict", err)
	}
	for _, c := range []struct {
		mode Mode
		addr string
		mech string
		from bool
	}{{Plain, srv.C2SAddr(), "SCRAM-SHA-1", false}, {StartTLS, srv.C2SAddr(), "SCRAM-SHA-256", false}, {DirectTLS, srv.TLSAddr(), "PLAIN", false},
		{Plain, srv.C2SAddr(), "SCRAM-SHA-1", true}, {DirectTLS, srv.TLSAddr(), "SCRAM-SHA-256", true}} {
		cfg := plain
		cfg.Mode, cfg.Addr, cfg.Mechanism, cfg.SendFrom = c.mode, c.addr, c.mech, c.from
		s, err := Dial(cfg, "bencher", "s3cret", "r1")
		if err != nil {
			t.Fatalf("mode %d %s: %v", c.mode, c.mech, err)
		}
		if !strings.HasPrefix(s.JID, "bencher@"+srv.Domain()+"/") {
			t.Fatalf("bound %q", s.JID)
		}
		s.Close()
	}
	if h := streamHeader(plain.forUser("bencher")); strings.Contains(h, "from=") {
		t.Fatalf("from without SendFrom: %s", h)
	}
	plain.SendFrom = true
	if h := streamHeader(plain.forUser("bencher")); !strings.Contains(h, " from='bencher@"+srv.Domain()+"' ") {
		t.Fatalf("SendFrom: %s", h)
	}
	if _, err := Dial(plain, "bencher", "wrong", "r1"); err == nil {
		t.Fatal("wrong password logged in")
	}
}
