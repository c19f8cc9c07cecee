package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// TestRelayDelivers runs both relays in this process and checks that every frame offered
// reaches its recipient and no other, and that the figures the report rests on are there.
func TestRelayDelivers(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		direct bool
		batch  time.Duration
	}{
		{mode: "gnet"},
		{mode: "gnet", direct: true},
		{mode: "gnet", batch: 2 * time.Millisecond},
		{mode: "net"},
		{mode: "rtpoll"},
	} {
		name := tc.mode
		if tc.direct {
			name += "-direct"
		}
		if tc.batch > 0 {
			name += "-batch"
		}
		mode := tc.mode
		t.Run(name, func(t *testing.T) {
			const users = 8
			addr := serveHere(t, mode == "gnet", func(addr string, ready func()) error {
				switch mode {
				case "gnet":
					return serveGnet(addr, users, 2, tc.direct, tc.batch, ready)
				case "rtpoll":
					return serveRtpoll(addr, users, 2, ready)
				}
				return serveNet(addr, users, ready)
			})
			r, err := drive(addr, os.Getpid(), users, 400, 300, 500*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if r.Lost != 0 || r.Misdelivered != 0 {
				t.Fatalf("lost %d, misdelivered %d of %.0f/s", r.Lost, r.Misdelivered, r.Delivered)
			}
			if r.Delivered < 300 || r.P50ms <= 0 || r.P99ms < r.P50ms {
				t.Fatalf("implausible report %+v", r)
			}
		})
	}
}

// TestLoginFloorAnswers runs the answering servers in this process and checks that every
// exchange of every connection gets its whole answer.
func TestLoginFloorAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   string
		enroll bool
	}{
		{"gnet", "gnet", false},
		{"gnet-enroll", "gnet", true},
		{"net", "net", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveHere(t, tc.mode == "gnet" && !tc.enroll, func(addr string, ready func()) error {
				if tc.mode == "net" {
					return serveAnswerNet(addr, 300, ready)
				}
				return serveAnswerGnet(addr, 2, 300, tc.enroll, ready)
			})
			fails, err := storm(addr, 200, 6, 8, 150)
			if err != nil || fails != 0 {
				t.Fatalf("%d of 200 connections failed (%v)", fails, err)
			}
		})
	}
}

// serveHere runs serve on a free loopback address in this process and returns the address
// once it listens. A gnet server bound to it (gnetOwned) is stopped when the test ends.
func serveHere(t *testing.T, gnetOwned bool, serve func(addr string, ready func()) error) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	up := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- serve(addr, func() { close(up) }) }()
	select {
	case <-up:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	if gnetOwned {
		t.Cleanup(func() { gnet.Stop(context.Background(), "tcp://"+addr) })
	}
	return addr
}
