package version

import (
	"strings"
	"sync"
	"testing"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// fakeReg records the IQ handler; other Registrar methods are not used by the module.
type fakeReg struct {
	module.Registrar
	h module.IQHandler
}

func (r *fakeReg) IQ(_ module.IQType, _, _ string, h module.IQHandler) { r.h = h }
func (r *fakeReg) Public(string)                                       {}

// fakeCtx records replies; each goroutine has its own, as each shard has its own context.
type fakeCtx struct {
	module.Context
	got []byte
}

func (c *fakeCtx) Reply(_ *module.Packet, payload []byte) { c.got = append(c.got[:0], payload...) }
func (c *fakeCtx) Error(*module.Packet, *stanza.Error)    { c.got = []byte("error") }

// TestConcurrentQueries calls the handler from many goroutines at once, as shard workers
// do; run with -race.
func TestConcurrentQueries(t *testing.T) {
	var r fakeReg
	m := new(Mod)
	if err := m.Provision(&r); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var start, done sync.WaitGroup
	start.Add(1)
	out := make([]string, n)
	for i := 0; i < n; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			c := &fakeCtx{}
			r.h(c, &module.Packet{Kind: module.KindIQ, Type: "get", ID: "v"})
			out[i] = string(c.got)
		}()
	}
	start.Done()
	done.Wait()
	for i, got := range out {
		if !strings.Contains(got, "<name>Vireo</name>") || !strings.Contains(got, "<version>"+Version+"</version>") {
			t.Fatalf("reply %d: %q", i, got)
		}
	}
}

func (r *fakeReg) HostConfig() ([]string, func(string, any) error) { return nil, nil }
func (r *fakeReg) HostInfoForms(string, map[string]module.Form)    {}
