package mam

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// nextDay returns a day after every id made so far (ids never go back in time).
func nextDay() time.Time {
	return sid.Next(time.Time{}).Time().Truncate(24 * time.Hour).Add(24 * time.Hour)
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fixture is alice's archive of 20 messages, one a minute from base: message i is with
// bob@d/phone when i is even, with carol@d/x when i%4 == 1 and carol@d/y otherwise; odd
// ones were received. ids[i] is message i's id.
type fixture struct {
	a    archive
	base time.Time
	ids  []sid.ID
}

const user = "alice@d"

func newFixture(t testing.TB, n int) *fixture {
	return newFixtureIn(t, archive{t: openStore(t).Table("mam")}, n)
}

func newFixtureIn(t testing.TB, a archive, n int) *fixture {
	f := &fixture{a: a, base: nextDay()}
	for i := 0; i < n; i++ {
		remote := "bob@d/phone"
		switch {
		case i%4 == 1:
			remote = "carol@d/x"
		case i%2 == 1:
			remote = "carol@d/y"
		}
		r, _ := jid.Parse(remote)
		id := sid.Next(f.base.Add(time.Duration(i) * time.Minute))
		raw := fmt.Sprintf("<message to='x'><body>%d</body></message>", i)
		if err := f.a.add(user, id, i%2 == 0, r, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, id)
	}
	return f
}

// index returns the position of id in the fixture ("?" if it is not there).
func (f *fixture) index(id sid.ID) string {
	for i, x := range f.ids {
		if x == id {
			return fmt.Sprint(i)
		}
	}
	return "?"
}

// TestArchivePaging runs queries against the fixture: the page (by message number),
// complete, count and index.
func TestArchivePaging(t *testing.T) {
	f := newFixture(t, 20)
	at := func(i int) string { return f.base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339) }
	id := func(i int) string { return f.ids[i].String() }
	for _, tc := range []struct {
		name, inner string
		cutoff      int // minutes after base; -1 for none
		want        string
	}{
		{"all, capped", "", -1, "[0 1 2 3 4 5 6 7 8 9] complete=false count=20 index=0"},
		{"max", rsm("<max>3</max>"), -1, "[0 1 2] complete=false count=20 index=0"},
		{"max over cap", rsm("<max>500</max>"), -1, "[0 1 2 3 4 5 6 7 8 9] complete=false count=20 index=0"},
		{"after", rsm("<max>3</max><after>" + id(4) + "</after>"), -1, "[5 6 7] complete=false count=20 index=5"},
		{"after near end", rsm("<max>3</max><after>" + id(17) + "</after>"), -1, "[18 19] complete=true count=20 index=18"},
		{"after last", rsm("<after>" + id(19) + "</after>"), -1, "[] complete=true count=20 index=-1"},
		{"last page", rsm("<max>3</max><before/>"), -1, "[17 18 19] complete=false count=20 index=17"},
		{"before", rsm("<max>3</max><before>" + id(5) + "</before>"), -1, "[2 3 4] complete=false count=20 index=2"},
		{"before near start", rsm("<max>3</max><before>" + id(2) + "</before>"), -1, "[0 1] complete=true count=20 index=0"},
		{"before and after", rsm("<max>3</max><after>" + id(2) + "</after><before>" + id(9) + "</before>"), -1, "[6 7 8] complete=false count=20 index=6"},
		{"before and after, whole", rsm("<max>10</max><after>" + id(2) + "</after><before>" + id(6) + "</before>"), -1, "[3 4 5] complete=true count=20 index=3"},
		{"index", rsm("<max>2</max><index>18</index>"), -1, "[18 19] complete=true count=20 index=18"},
		{"index past end", rsm("<index>30</index>"), -1, "[] complete=true count=20 index=-1"},
		{"index past CountLimit", rsm("<index>2000000000</index>"), -1, "[] complete=false count=-1 index=-1"},
		{"max 0", rsm("<max>0</max>"), -1, "[] complete=false count=20 index=-1"},
		{"with bare", xform(field("with", "carol@d")), -1, "[1 3 5 7 9 11 13 15 17 19] complete=true count=10 index=0"},
		{"with full", xform(field("with", "carol@d/x")), -1, "[1 5 9 13 17] complete=true count=5 index=0"},
		{"with full, last page", xform(field("with", "carol@d/x")) + rsm("<max>2</max><before/>"), -1, "[13 17] complete=false count=5 index=3"},
		{"with paging", xform(field("with", "bob@d")) + rsm("<max>3</max><after>"+id(4)+"</after>"), -1, "[6 8 10] complete=false count=10 index=3"},
		{"with nobody", xform(field("with", "dave@d")), -1, "[] complete=true count=0 index=-1"},
		{"with domain", xform(field("with", "d")), -1, "[] complete=true count=0 index=-1"},
		{"start end", xform(field("start", at(3)), field("end", at(6))), -1, "[3 4 5 6] complete=true count=4 index=0"},
		{"start end between", xform(field("start", at(3)), field("end", f.base.Add(6*time.Minute-time.Millisecond).Format(time.RFC3339Nano))), -1, "[3 4 5] complete=true count=3 index=0"},
		{"end before all", xform(field("end", f.base.Add(-time.Second).Format(time.RFC3339))), -1, "[] complete=true count=0 index=-1"},
		{"start after end", xform(field("start", at(9)), field("end", at(3))), -1, "[] complete=true count=0 index=-1"},
		{"after-id before-id", xform(field("after-id", id(3)), field("before-id", id(7))), -1, "[4 5 6] complete=true count=3 index=0"},
		{"before-id pages forward", xform(field("before-id", id(7))) + rsm("<max>2</max>"), -1, "[0 1] complete=false count=7 index=0"},
		{"ids", xform("<field var='ids'><value>" + id(9) + "</value><value>" + id(2) + "</value><value>" + id(9) + "</value></field>"), -1, "[2 9] complete=true count=2 index=0"},
		{"ids with", xform(field("with", "bob@d"), "<field var='ids'><value>"+id(9)+"</value><value>"+id(2)+"</value></field>"), -1, "[2] complete=true count=1 index=0"},
		{"ids paged", xform("<field var='ids'><value>"+id(9)+"</value><value>"+id(2)+"</value><value>"+id(5)+"</value></field>") + rsm("<max>1</max><before/>"), -1, "[9] complete=false count=3 index=2"},
		{"retention", "", 15, "[15 16 17 18 19] complete=true count=5 index=0"},
		{"retention hides ids", rsm("<after>" + id(3) + "</after>"), 15, "item-not-found"},
		{"retention hides ids list", xform("<field var='ids'><value>" + id(3) + "</value></field>"), 15, "item-not-found"},
		{"unknown after", rsm("<after>" + sid.Next(time.Now()).String() + "</after>"), -1, "item-not-found"},
		{"unknown before-id", xform(field("before-id", sid.Next(time.Now()).String())), -1, "item-not-found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, cond := mustQuery(t, tc.inner)
			if cond != "" {
				t.Fatalf("parse: %s", cond)
			}
			var cutoff time.Time
			if tc.cutoff >= 0 {
				cutoff = f.base.Add(time.Duration(tc.cutoff) * time.Minute)
			}
			pg, se, err := f.a.query(user, &q, cutoff, 10)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if se != nil {
				got = string(se.Condition)
			} else {
				var idx []string
				for _, id := range pg.ids {
					idx = append(idx, f.index(id))
				}
				got = fmt.Sprintf("[%s] complete=%v count=%d index=%d", strings.Join(idx, " "), pg.complete, pg.count, pg.index)
			}
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestArchiveCountLimit: past CountLimit the count and index are left out, paging works.
func TestArchiveCountLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes CountLimit+1 messages")
	}
	f := &fixture{a: archive{t: openStore(t).Table("mam")}, base: nextDay()}
	bob, _ := jid.Parse("bob@d")
	var ops []store.Op
	for i := 0; i <= CountLimit; i++ {
		id := sid.Next(f.base.Add(time.Duration(i) * time.Second))
		ops = append(ops, store.Op{Key: msgKey(user, id), Val: encode(true, bob, []byte("<message/>"))})
		f.ids = append(f.ids, id)
	}
	if err := f.a.t.Apply(ops...); err != nil {
		t.Fatal(err)
	}
	q, _ := mustQuery(t, rsm("<max>2</max><before/>"))
	pg, se, err := f.a.query(user, &q, time.Time{}, 10)
	if err != nil || se != nil {
		t.Fatal(err, se)
	}
	if len(pg.ids) != 2 || pg.ids[1] != f.ids[CountLimit] || pg.count != -1 || pg.index != -1 {
		t.Fatalf("page %d ids, count %d, index %d", len(pg.ids), pg.count, pg.index)
	}
}

// TestArchiveExpire: the sweep deletes old messages with their index rows, user by user,
// within its budget, and resumes where it stopped.
func TestArchiveExpire(t *testing.T) {
	st := openStore(t)
	m := &Mod{a: archive{t: st.Table("mam")}, log: zerolog.Nop()}
	m.set.Store(module.NewHostSettings(&settings{def: PolicyAlways, maxPage: DefaultMaxPage, retention: time.Hour}, nil))
	base := nextDay()
	bob, _ := jid.Parse("bob@d/r")
	users := []string{"u1@d", "u2@d", "u3@d"}
	var ops []store.Op
	for i := 0; i < 2*sweepBatch+10; i++ {
		for _, u := range users {
			o := addOps(u, sid.Next(base.Add(time.Duration(i)*time.Second)), true, bob, []byte("<message/>"))
			ops = append(ops, o[:]...)
		}
	}
	if err := m.a.t.Apply(ops...); err != nil {
		t.Fatal(err)
	}
	for _, u := range users { // and one recent message each
		m.a.add(u, sid.Next(base.Add(2*time.Hour)), false, bob, []byte("<message/>"))
	}
	m.a.t.Set(prefsKey("u2@d"), encodePrefs(prefs{def: PolicyNever}))
	m.now = func() time.Time { return base.Add(90 * time.Minute) }
	n, err := m.sweep(sweepBatch + 20) // u1 whole (2 batches + 10), u2 only started
	if err != nil || n < sweepBatch+20 || n > 3*sweepBatch {
		t.Fatalf("first sweep: %d, %v", n, err)
	}
	total := 0
	for {
		n, err := m.sweep(sweepBatch)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if n == 0 {
			break
		}
	}
	rows := func(u string) (msgs, index, other int) {
		m.a.t.Scan(store.UserKey(u), func(k, _ []byte) bool {
			switch k[len(store.UserKey(u))] {
			case kMsg:
				msgs++
			case kWith:
				index++
			default:
				other++
			}
			return true
		})
		return
	}
	for _, u := range users {
		msgs, index, other := rows(u)
		wantOther := 0
		if u == "u2@d" {
			wantOther = 1
		}
		if msgs != 1 || index != 1 || other != wantOther {
			t.Errorf("%s after sweeping: %d messages, %d index rows, %d other", u, msgs, index, other)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r, _ := jid.Parse("bob@d/r")
	v := encode(true, r, []byte("<message to='bob@d'><body>x</body></message>"))
	rec, err := decode(v)
	if err != nil || !rec.out || rec.remote != "bob@d/r" || string(rec.raw) != "<message to='bob@d' xmlns='jabber:client'><body>x</body></message>" {
		t.Fatalf("%+v %v", rec, err)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0}, {1, 2, 0}, {1, 0, 9, 'a'}} {
		if _, err := decode(bad); err == nil {
			t.Errorf("decode(%v) accepted", bad)
		}
	}
}

// TestReconfigure: a reload's retention, default policy and page size take over whole;
// a bad value is refused and changes nothing.
func TestReconfigure(t *testing.T) {
	m := &Mod{log: zerolog.Nop()}
	with := func(c Config) module.Reconfig {
		return module.Reconfig{Decode: func(v any) error { *v.(*Config) = c; return nil }}
	}
	apply, err := m.Reconfigure(with(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	apply()
	now := time.Now()
	if st := m.set.Load().All(); st.def != PolicyAlways || st.maxPage != DefaultMaxPage || !m.cutoff("u@d", now).IsZero() {
		t.Fatalf("defaults: %+v", st)
	}
	for _, bad := range []Config{{Retention: "soon"}, {Default: "sometimes"}, {SweepInterval: "-1h"}} {
		if _, err := m.Reconfigure(with(bad)); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
	apply, err = m.Reconfigure(with(Config{Retention: "30d", Default: PolicyRoster, MaxPage: 10}))
	if err != nil {
		t.Fatal(err)
	}
	apply()
	if st := m.set.Load().All(); st.def != PolicyRoster || st.maxPage != 10 || !m.cutoff("u@d", now).Equal(now.Add(-30*24*time.Hour)) {
		t.Fatalf("after: %+v", st)
	}
}

// TestHostSettings: a host's table sets the default policy, page size and retention of
// its users' archives and of its rooms' (conference.<host>); other hosts keep the
// server's; a host cannot set what is server-wide.
func TestHostSettings(t *testing.T) {
	m := &Mod{log: zerolog.Nop()}
	hostCfg := map[string]Config{"corp.example": {Retention: "1h", Default: PolicyNever, MaxPage: 5}}
	with := func(c Config) module.Reconfig {
		return module.Reconfig{Decode: func(v any) error { *v.(*Config) = c; return nil }, Hosts: []string{"corp.example"},
			DecodeHost: func(h string, v any) error { *v.(*Config) = hostCfg[h]; return nil }}
	}
	apply, err := m.Reconfigure(with(Config{Retention: "30d"}))
	if err != nil {
		t.Fatal(err)
	}
	apply()
	now := time.Now()
	for _, tc := range []struct {
		key     string
		def     string
		page    int
		keptFor time.Duration
	}{
		{"u@corp.example", PolicyNever, 5, time.Hour},
		{"room@conference.corp.example", PolicyNever, 5, time.Hour},
		{"u@example.org", PolicyAlways, DefaultMaxPage, 30 * 24 * time.Hour},
		{"u@notcorp.example", PolicyAlways, DefaultMaxPage, 30 * 24 * time.Hour},
	} {
		st := m.settingsOf(tc.key)
		if st.def != tc.def || st.maxPage != tc.page || !m.cutoff(tc.key, now).Equal(now.Add(-tc.keptFor)) {
			t.Errorf("%s: %+v, cutoff %v", tc.key, st, now.Sub(m.cutoff(tc.key, now)))
		}
	}
	for _, bad := range []Config{{Sync: true}, {SweepInterval: "5m"}, {Default: "sometimes"}} {
		hostCfg["corp.example"] = bad
		if _, err := m.Reconfigure(with(Config{})); err == nil || !strings.Contains(err.Error(), "corp.example") {
			t.Errorf("host table %+v: %v", bad, err)
		}
	}
}

// TestSweepIntervalReload: a reload's sweep_interval applies from the reload, not after
// the interval in force (an hour by default) has run out.
func TestSweepIntervalReload(t *testing.T) {
	st := openStore(t)
	m := &Mod{a: archive{t: st.Table("mam")}, log: zerolog.Nop()}
	with := func(c Config) module.Reconfig {
		return module.Reconfig{Decode: func(v any) error { *v.(*Config) = c; return nil }}
	}
	apply, err := m.Reconfigure(with(Config{Retention: "1h"}))
	if err != nil {
		t.Fatal(err)
	}
	apply()
	base := nextDay()
	m.now = func() time.Time { return base.Add(2 * time.Hour) }
	bob, _ := jid.Parse("bob@d/r")
	m.a.add("u@d", sid.Next(base), false, bob, []byte("<message/>"))
	m.stop, m.done, m.resweep = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	go m.sweeper()
	defer func() { close(m.stop); <-m.done }()
	count := func() (n int) {
		m.a.t.Scan(store.UserKey("u@d"), func(_, _ []byte) bool { n++; return true })
		return
	}
	time.Sleep(50 * time.Millisecond)
	if count() == 0 {
		t.Fatal("swept before the hour")
	}
	if apply, err = m.Reconfigure(with(Config{Retention: "1h", SweepInterval: "10ms"})); err != nil {
		t.Fatal(err)
	}
	apply()
	for deadline := time.Now().Add(5 * time.Second); count() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the new sweep interval did not apply")
		}
	}
}

// TestSweepPerHost: the sweep holds each archive to its host's retention: a host that
// keeps messages for ever loses none, another host's longer retention keeps what the
// server's would delete, and a server without retention still sweeps a host with one.
func TestSweepPerHost(t *testing.T) {
	st := openStore(t)
	m := &Mod{a: archive{t: st.Table("mam")}, log: zerolog.Nop()}
	base := nextDay()
	bob, _ := jid.Parse("bob@d/r")
	users := []string{"u@d", "u@keep.example", "u@long.example"}
	for i := 0; i < 10; i++ {
		for _, u := range users {
			m.a.add(u, sid.Next(base.Add(time.Duration(i)*time.Minute)), true, bob, []byte("<message/>"))
		}
	}
	m.now = func() time.Time { return base.Add(3 * time.Hour) }
	count := func(u string) (n int) {
		m.a.t.Scan(store.UserKey(u), func(k, _ []byte) bool {
			if k[len(store.UserKey(u))] == kMsg {
				n++
			}
			return true
		})
		return
	}
	for _, tc := range []struct {
		name   string
		server *settings
		hosts  map[string]*settings
		want   []int // messages left per user, in users' order
	}{
		{"host settings", &settings{retention: time.Hour}, map[string]*settings{"keep.example": {}, "long.example": {retention: 24 * time.Hour}}, []int{0, 10, 10}},
		{"only a host expires", &settings{}, map[string]*settings{"long.example": {retention: time.Hour}}, []int{0, 10, 0}},
	} {
		m.set.Store(module.NewHostSettings(tc.server, tc.hosts))
		m.cursor = nil
		if !m.expires() {
			t.Fatalf("%s: the sweeper would not run", tc.name)
		}
		if _, err := m.sweep(1000); err != nil {
			t.Fatal(err)
		}
		for i, u := range users {
			if got := count(u); got != tc.want[i] {
				t.Errorf("%s: %s keeps %d messages, want %d", tc.name, u, got, tc.want[i])
			}
		}
	}
	m.set.Store(module.NewHostSettings(&settings{}, map[string]*settings{"keep.example": {}}))
	if m.expires() {
		t.Fatal("nothing has a retention, yet the sweeper would run")
	}
}

// TestArchiveFullJIDBounded: a query for a full JID reads at most maxExamined index rows
// of the bare contact: what it found by then is a page that is not complete; nothing
// found is resource-constraint.
func TestArchiveFullJIDBounded(t *testing.T) {
	defer func(n int) { maxExamined = n }(maxExamined)
	maxExamined = 6
	f := newFixture(t, 20) // carol@d/x: messages 1, 5, 9, 13, 17
	q, _ := mustQuery(t, xform(field("with", "carol@d/x")))
	pg, se, err := f.a.query(user, &q, time.Time{}, 10)
	if err != nil || se != nil {
		t.Fatal(err, se)
	}
	// The first 6 rows of carol@d hold 1, 3, 5, 7, 9, 11: three of hers.
	if len(pg.ids) != 3 || f.index(pg.ids[2]) != "9" || pg.complete || pg.count != -1 {
		t.Fatalf("page %d ids (last %s), complete %v, count %d", len(pg.ids), f.index(pg.ids[len(pg.ids)-1]), pg.complete, pg.count)
	}
	q, _ = mustQuery(t, xform(field("with", "carol@d/nobody")))
	if _, se, _ := f.a.query(user, &q, time.Time{}, 10); se == nil || se.Condition != stanza.ResourceConstraintCond {
		t.Fatalf("a resource never there: %v", se)
	}
	q, _ = mustQuery(t, xform(field("with", "carol@d")))
	if pg, _, _ := f.a.query(user, &q, time.Time{}, 20); len(pg.ids) != 10 || !pg.complete || pg.count != 10 {
		t.Fatalf("the bare JID: %d ids, complete %v, count %d", len(pg.ids), pg.complete, pg.count)
	}
}
