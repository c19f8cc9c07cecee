package mam

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// benchCtx is the part of module.Context the inbound hook uses with the default policy.
type benchCtx struct{ module.Context }

func (benchCtx) Now() time.Time { return time.Now() }

// BenchmarkArchive measures the inbound archive hook on a message the sid module has
// stamped: read the preferences, find the stanza-id, write the message and its index row
// in one commit, on the disk of the test's temporary directory: without waiting for the
// disk (the default) or synced (sync=true). writers=N runs N goroutines, as N shards
// archiving for different users at once: Pebble commits their syncs together, so ns/op
// there is per message at that concurrency.
func BenchmarkArchive(b *testing.B) {
	for _, c := range []struct {
		writers int
		sync    bool
	}{{1, false}, {16, false}, {1, true}, {16, true}} {
		writers := c.writers
		b.Run(fmt.Sprintf("sync=%v/writers=%d", c.sync, writers), func(b *testing.B) {
			st, err := pebblestore.Open(b.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			m := &Mod{a: archive{t: st.Table("mam"), sync: c.sync}, cfg: Config{Default: PolicyAlways}, log: zerolog.Nop(),
				features: func() []string { return []string{ns.SID} }}
			m.set.Store(module.NewHostSettings(&settings{def: PolicyAlways, maxPage: DefaultMaxPage}, nil))
			from, _ := jid.Parse("bob@example.org/phone")
			// 256 distinct messages per writer, each with its own stanza-id.
			packets := func(user string) []module.Packet {
				to, _ := jid.Parse(user)
				ps := make([]module.Packet, 256)
				for i := range ps {
					raw := []byte("<message to='" + user + "' type='chat' id='m" + fmt.Sprint(i) + "' from='bob@example.org/phone'>" +
						"<body>Call me but love, and I'll be new baptized; henceforth I never will be Romeo.</body>" +
						"<active xmlns='http://jabber.org/protocol/chatstates'/></message>")
					child := []byte("<stanza-id xmlns='urn:xmpp:sid:0' id='" + sid.NewID(time.Now()) + "' by='" + user + "'/>")
					ps[i] = module.Packet{Raw: xmlstream.AppendChild(nil, raw, child), Kind: module.KindMessage, Type: "chat", From: from, To: to}
				}
				return ps
			}
			var n atomic.Int64
			b.ReportAllocs()
			b.SetBytes(int64(len(packets("u@d")[0].Raw)))
			b.ResetTimer()
			if writers == 1 {
				ps := packets("alice@example.org")
				for i := 0; b.Loop(); i++ {
					p := ps[i%len(ps)]
					m.inbound(benchCtx{}, &p)
				}
				return
			}
			b.SetParallelism((writers + 1) / 2)
			b.RunParallel(func(pb *testing.PB) {
				ps := packets(fmt.Sprintf("user%d@example.org", n.Add(1)))
				for i := 0; pb.Next(); i++ {
					p := ps[i%len(ps)]
					m.inbound(benchCtx{}, &p)
				}
			})
		})
	}
}
