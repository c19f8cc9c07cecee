package scenario

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestMUCFanoutSmall runs the groupchat fan-out against an in-process server at a fixed
// rate: rooms of 3 and 12 fill, every message reaches every occupant, and the joins and
// CPU figures are filled in.
func TestMUCFanoutSmall(t *testing.T) {
	no := false
	srv := vireotest.Start(t, vireotest.Options{Registration: true, RequireTLS: &no, AllowPlain: true, RegisterLimit: 1000})
	cfg := loadgen.Config{Addr: srv.C2SAddr(), Domain: srv.Domain(), Mode: loadgen.Plain, Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second}
	const n = 12
	for i := 1; i <= n; i++ {
		if err := loadgen.Register(cfg, "m"+strconv.Itoa(i), "pw"); err != nil {
			t.Fatal(err)
		}
	}
	r, err := MUC(Target{Name: "vireotest", Cfg: cfg, Prefix: "m", Password: "pw", PID: os.Getpid()}, MUCConfig{
		Service: "conference." + srv.Domain(), Sizes: []int{3, n}, Talkers: 0.25, Fixed: 240, Step: time.Second, LimitMs: 1000, Conc: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Points) != 2 {
		t.Fatalf("points: %+v", r.Points)
	}
	for i, p := range r.Points {
		want := []int{3, n}[i]
		if p.Error != "" || p.Occupants != want || p.Talkers != []int{1, 3}[i] || len(p.Steps) == 0 || p.LastJoinMs <= 0 {
			t.Fatalf("room of %d: %+v", want, p)
		}
		m := p.Steps[0]
		if m.Sent == 0 || m.Loss != 0 || m.Delivered != m.Sent*int64(want) || m.ServerCPUPerMsg <= 0 || m.OfferedRate != max(1, 240/want) {
			t.Fatalf("room of %d: step %+v", want, m)
		}
	}
}
