package router_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
)

// gate is a test module that holds every message for gated@example.org until released, so
// a sender's stanzas pile up inside the router the way they do behind a slow disk.
type gate struct{}

var gateCh = make(chan struct{})
var gateOn atomic.Bool

func init() { module.Register(gate{}) }

func (gate) ModuleInfo() module.Info {
	return module.Info{ID: "test_gate", New: func() module.Module { return gate{} }}
}
func (gate) Provision(r module.Registrar) error {
	// Like a hook that waits for the disk, so messages queue on the shard instead of
	// running on the sender's goroutine.
	r.WaitsForDisk(module.Inbound, module.KindMessage)
	r.Hook(module.Inbound, module.KindMessage, 1, func(c module.Context, p *module.Packet) module.Verdict {
		if gateOn.Load() && strings.HasPrefix(p.To.String(), "gated@") {
			<-gateCh
		}
		return module.Continue
	})
	return nil
}

// TestSenderBackpressure: a sender whose stanzas pile up inside the router is blocked once
// they exceed SenderInflight bytes and resumed when they drain, instead of the router's
// memory growing with whatever it offers.
func TestSenderBackpressure(t *testing.T) {
	gateOn.Store(true)
	defer gateOn.Store(false)
	e := routertest.New(t, []string{"flood", "gated"}, func(o *router.Options) { o.SenderInflight = 8 << 10 })
	g := e.Bind("gated", "r")
	g.Send("<presence/>")
	f := e.Bind("flood", "r")
	body := strings.Repeat("x", 1000)
	sent := 0
	for !f.S.Blocked() && sent < 1000 {
		f.Send("<message to='gated@example.org' type='chat'><body>" + body + "</body></message>")
		sent++
	}
	if !f.S.Blocked() {
		t.Fatalf("sender not blocked after %d KB in flight", sent)
	}
	t.Logf("blocked after %d stanzas (~%d KB) with an 8 KiB limit", sent, sent)
	if f.C.Resumes.Load() != 0 {
		t.Fatal("resumed while still backed up")
	}
	for i := 0; i < sent; i++ {
		gateCh <- struct{}{}
	}
	waitFor(t, func() bool { return f.C.Resumes.Load() == 1 && !f.S.Blocked() })
	g.C.Wait(t, "chat")
	waitFor(t, func() bool { return int(g.C.N.Load()) >= sent })
}
