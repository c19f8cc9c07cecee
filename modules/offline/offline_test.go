package offline_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/modules/offline"
	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
)

// TestQuotaBytes: offline storage is bounded by bytes as well as by messages
// ([modules.offline] quota_bytes): once a user's stored messages would pass the byte quota,
// the sender gets service-unavailable and nothing more is stored, however few messages
// there are; the count quota still holds for small messages.
func TestQuotaBytes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       offline.Config
		body      int // body bytes per message
		send      int
		maxStored int
	}{
		{"bytes bind first", offline.Config{Quota: 100, QuotaBytes: 2000}, 500, 6, 2}, // ~790 bytes stored each
		{"count binds first", offline.Config{Quota: 3, QuotaBytes: 1 << 20}, 10, 5, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := routertest.New(t, []string{"alice", "bob"}, func(o *router.Options) {
				o.ModuleConfig = func(id string, v any) error {
					if c, ok := v.(*offline.Config); ok {
						*c = tc.cfg
					}
					return nil
				}
			})
			a := e.Bind("alice", "pc")
			for i := 0; i < tc.send; i++ {
				a.Send(fmt.Sprintf("<message to='bob@example.org' type='chat' id='m%d'><body>%s</body></message>", i, strings.Repeat("b", tc.body)))
			}
			a.C.Wait(t, fmt.Sprintf("id='m%d'", tc.send-1), "service-unavailable")
			n, _ := e.Store.Offline().Count("bob@example.org")
			size, _ := e.Store.Offline().Bytes("bob@example.org")
			if n != tc.maxStored || (tc.cfg.QuotaBytes > 0 && size > tc.cfg.QuotaBytes) {
				t.Fatalf("stored %d messages, %d bytes; want %d within %d bytes", n, size, tc.maxStored, tc.cfg.QuotaBytes)
			}
			if got := strings.Count(a.C.All(), "service-unavailable"); got != tc.send-tc.maxStored {
				t.Fatalf("%d refusals, want %d:\n%s", got, tc.send-tc.maxStored, a.C.All())
			}
		})
	}
}
