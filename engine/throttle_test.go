package engine_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

func plainAuth(user, pass string) string {
	return "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "</auth>"
}

// TestIntegrationPipelinedSASLIsCounted opens many streams and sends every wrong guess
// before reading any answer: no more guesses than the per-address limit may be checked.
func TestIntegrationPipelinedSASLIsCounted(t *testing.T) {
	const limit, streams = 3, 12
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, AuthFailLimit: limit})
	srv.AddUser(t, "alice", "right")
	var rs []*vireotest.RawConn
	for i := 0; i < streams; i++ {
		r := srv.DialTLS(t)
		r.Send(srv.Header())
		r.Expect("</stream:features>")
		rs = append(rs, r)
	}
	for i, r := range rs {
		r.Send(plainAuth("alice", fmt.Sprint("guess", i)))
	}
	checked, refused := 0, 0
	for _, r := range rs {
		got := r.Expect("</failure>")
		switch {
		case strings.Contains(got, "not-authorized"):
			checked++
		case strings.Contains(got, "temporary-auth-failure"):
			refused++
		default:
			t.Fatalf("unexpected answer %q", got)
		}
	}
	t.Logf("%d pipelined guesses: %d checked, %d refused (limit %d per address per minute)", streams, checked, refused, limit)
	if checked > limit {
		t.Fatalf("%d guesses were checked, limit is %d", checked, limit)
	}
}

// TestIntegrationOwnerNotLockedOut: failures from a dozen addresses slow guesses against the
// account but do not lock its owner out, whether they log in from an address they used
// before or from a new one.
func TestIntegrationOwnerNotLockedOut(t *testing.T) {
	const limit = 5
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, AuthFailLimit: limit})
	srv.AddUser(t, "alice", "right")
	// login answers what the server said to a PLAIN attempt; slowed answers may take a while.
	login := func(ip, pass string) string {
		r := srv.DialTLSFrom(t, ip)
		r.Send(srv.Header())
		if _, err := r.ReadUntil("</stream:features>", 5*time.Second); err != nil {
			return err.Error()
		}
		r.Send(plainAuth("alice", pass))
		got := ""
		for !strings.Contains(got, "</failure>") && !strings.Contains(got, "<success") {
			more, err := r.ReadUntil(">", 40*time.Second)
			if err != nil {
				return got + more + err.Error()
			}
			got += more
		}
		return got
	}
	// The owner logs in once from home.
	if got := login("127.0.0.2", "right"); !strings.Contains(got, "<success") {
		t.Fatalf("first login: %q", got)
	}
	start := time.Now()
	results := make(chan string, 12*limit)
	for a := 10; a < 22; a++ { // 12 guessing addresses, all at once
		for i := 0; i < limit; i++ {
			go func() { results <- login(fmt.Sprintf("127.0.0.%d", a), "wrong") }()
		}
	}
	failures := 0
	for i := 0; i < 12*limit; i++ {
		if strings.Contains(<-results, "not-authorized") {
			failures++
		}
	}
	t.Logf("%d failed guesses from 12 addresses in %v", failures, time.Since(start).Round(time.Millisecond))
	if failures < 50 {
		t.Fatalf("only %d failures recorded; the scenario needs 50", failures)
	}
	// From home: no wait at all.
	t0 := time.Now()
	if got := login("127.0.0.2", "right"); !strings.Contains(got, "<success") {
		t.Fatalf("owner from a known address: %q", got)
	}
	t.Logf("owner from a known address: %v", time.Since(t0).Round(time.Millisecond))
	// From a new address: let in, at most after a short wait.
	t0 = time.Now()
	if got := login("127.0.0.99", "right"); !strings.Contains(got, "<success") {
		t.Fatalf("owner from a new address: %q", got)
	}
	t.Logf("owner from a new address: %v", time.Since(t0).Round(time.Millisecond))
	// A guessing address is over its own limit.
	if got := login("127.0.0.10", "wrong"); !strings.Contains(got, "temporary-auth-failure") {
		t.Fatalf("guesser over its limit: %q", got)
	}
}
