package antispam

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// TestAllow: one sender's budget, many senders' shared domain budget, the minute turning
// over, refused attempts counting, and a full table starting over rather than growing.
func TestAllow(t *testing.T) {
	m := withConfig(Config{PerSender: 3, PerDomain: 5})
	t0 := time.Date(2026, 12, 6, 12, 0, 10, 0, time.UTC)
	for i, want := range []bool{true, true, true, false, false} {
		if got := m.allowTo("example.org", "spam@x.example", "x.example", t0); got != want {
			t.Fatalf("message %d: %v, want %v", i, got, want)
		}
	}
	// The domain has had 5: a second account of it is refused at once.
	if m.allowTo("example.org", "other@x.example", "x.example", t0) {
		t.Fatal("the domain's budget did not hold")
	}
	// Another server is not affected.
	if !m.allowTo("example.org", "friend@y.example", "y.example", t0) {
		t.Fatal("another domain refused")
	}
	// The next minute starts afresh.
	if !m.allowTo("example.org", "spam@x.example", "x.example", t0.Add(time.Minute)) {
		t.Fatal("the next minute refused")
	}
	// Off: no limit of that kind.
	off := withConfig(Config{PerSender: 0, PerDomain: 2})
	for i := range 2 {
		if !off.allowTo("example.org", fmt.Sprintf("u%d@z.example", i), "z.example", t0) {
			t.Fatalf("sender limit off: message %d refused", i)
		}
	}
	if off.allowTo("example.org", "u9@z.example", "z.example", t0) {
		t.Fatal("the domain limit did not hold with the sender limit off")
	}
	// Bounded: a wave of new senders never grows the table past maxTracked.
	big := withConfig(Config{PerSender: 1})
	for i := range maxTracked + 10 {
		big.allowTo("example.org", fmt.Sprintf("s%d@w.example", i), "w.example", t0)
	}
	if n := len(big.senders); n > maxTracked {
		t.Fatalf("%d windows kept", n)
	}
}

// BenchmarkAllow: the cost a counted stranger's message pays.
func BenchmarkAllow(b *testing.B) {
	m := withConfig(Config{PerSender: 1 << 30, PerDomain: 1 << 30})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.allowTo("example.org", "spam@x.example", "x.example", now)
	}
}

func withConfig(c Config) *Mod {
	m := &Mod{senders: map[string]*window{}, domains: map[string]*window{}}
	m.cfg.Store(module.NewHostSettings(&c, nil))
	return m
}

// allowTo is allow for a message to a user of host, on host's budget.
func (m *Mod) allowTo(host, sender, domain string, now time.Time) bool {
	cfg, scope := m.budget(host)
	return m.allow(cfg, scope, sender, domain, now)
}

// TestReconfigure: a reload's new limits and blocked domains file take over whole; a
// negative limit or a file that cannot be read is refused and changes nothing.
func TestReconfigure(t *testing.T) {
	m := &Mod{senders: map[string]*window{}, domains: map[string]*window{}}
	decode := func(c Config) module.Reconfig {
		return module.Reconfig{Decode: func(v any) error { *v.(*Config) = c; return nil }}
	}
	apply, err := m.Reconfigure(module.Reconfig{Decode: func(any) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	apply()
	if c := m.cfg.Load().All(); c.PerSender != DefaultPerSender || c.PerDomain != DefaultPerDomain {
		t.Fatalf("defaults: %+v", c)
	}
	list := filepath.Join(t.TempDir(), "blocked.txt")
	if _, err := m.Reconfigure(decode(Config{PerSender: -1})); err == nil {
		t.Fatal("a negative limit accepted")
	}
	if _, err := m.Reconfigure(decode(Config{BlockedDomainsFile: list})); err == nil {
		t.Fatal("a missing file accepted")
	}
	if m.listed("spam.example", time.Now()) || m.cfg.Load().All().PerSender != DefaultPerSender {
		t.Fatal("a refused reconfiguration changed something")
	}
	os.WriteFile(list, []byte("# JabberSPAM\nSpam.Example.\n"), 0o600)
	apply, err = m.Reconfigure(decode(Config{PerSender: 1, BlockedDomainsFile: list}))
	if err != nil {
		t.Fatal(err)
	}
	apply()
	if !m.listed("a.spam.example", time.Now()) || m.listed("example", time.Now()) {
		t.Fatal("the new file is not in force")
	}
	t0 := time.Now()
	if !m.allowTo("example.org", "x@y.example", "y.example", t0) || m.allowTo("example.org", "x@y.example", "y.example", t0) {
		t.Fatal("the new sender limit is not in force")
	}
}

// TestHostBudgets: a host's own table gives the strangers writing to its users budgets of
// their own, counted apart from the other hosts' (which share the server-wide ones); keys
// it leaves out keep the defaults; the blocked domains file cannot differ per host.
func TestHostBudgets(t *testing.T) {
	m := &Mod{senders: map[string]*window{}, domains: map[string]*window{}}
	host := func(set func(*Config)) module.Reconfig {
		return module.Reconfig{Decode: func(any) error { return nil }, Hosts: []string{"corp.example"},
			DecodeHost: func(_ string, v any) error { set(v.(*Config)); return nil }}
	}
	if _, err := m.Reconfigure(host(func(c *Config) { c.BlockedDomainsFile = "/etc/spam.txt" })); err == nil ||
		!strings.Contains(err.Error(), "server-wide") {
		t.Fatalf("a host's own blocked domains file: %v", err)
	}
	apply, err := m.Reconfigure(host(func(c *Config) { c.PerSender = 1 }))
	if err != nil {
		t.Fatal(err)
	}
	apply()
	if c, _ := m.budget("corp.example"); c.PerSender != 1 || c.PerDomain != DefaultPerDomain {
		t.Fatalf("corp's budget: %+v", c)
	}
	t0 := time.Now()
	if !m.allowTo("corp.example", "x@y.example", "y.example", t0) || m.allowTo("corp.example", "x@y.example", "y.example", t0) {
		t.Fatal("corp's sender limit is not in force")
	}
	// The same stranger still has the server-wide budget for the other hosts' users.
	for i := range DefaultPerSender {
		if !m.allowTo("example.org", "x@y.example", "y.example", t0) || !m.allowTo("other.example", "z@y.example", "y.example", t0) {
			t.Fatalf("message %d to another host refused", i)
		}
	}
	if m.allowTo("other.example", "x@y.example", "y.example", t0) {
		t.Fatal("the hosts on the server-wide settings do not share its budget")
	}
}

// TestApprovalsBounded: one user keeps at most maxApprovals strangers let in; past it the
// oldest approval goes.
func TestApprovalsBounded(t *testing.T) {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := &Mod{approvals: st.Table(table)}
	parse := func(s string) jid.JID { j, _ := jid.Parse(s); return j }
	user := parse("alice@example.org")
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i := range maxApprovals + 2 {
		if err := m.approve(user, parse(fmt.Sprintf("s%d@spam.example", i)), t0.Add(time.Duration(i)*time.Second), true); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	st.Table(table).Scan(store.UserKey(user.String()), func(_, _ []byte) bool { n++; return true })
	if n != maxApprovals {
		t.Fatalf("%d approvals kept", n)
	}
	if m.approved(user, parse("s0@spam.example")) || m.approved(user, parse("s1@spam.example")) ||
		!m.approved(user, parse("s2@spam.example")) || !m.approved(user, parse(fmt.Sprintf("s%d@spam.example", maxApprovals+1))) {
		t.Fatal("not the oldest approvals went")
	}
}
