package extauth

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// start runs testdata/auth.py (the Debian python3, as a site's script would) over a users
// file the test can rewrite.
func start(t testing.TB, cfg Config, users string) (*Program, string) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	file := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(file, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("testdata/auth.py")
	cfg.Command = []string{"/usr/bin/python3", script, file}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	cfg.Log = zerolog.Nop()
	p, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, file
}

const users = "alice@example.org:wonder land\nbob@example.org:pa:ss:wörd\n"

func TestCheck(t *testing.T) {
	p, _ := start(t, Config{}, users)
	for _, c := range []struct {
		user, domain, pw string
		want             bool
	}{
		{"alice", "example.org", "wonder land", true},
		{"alice", "example.org", "wonderland", false},
		{"alice", "example.com", "wonder land", false},
		{"bob", "example.org", "pa:ss:wörd", true}, // colons and UTF-8 in a password
		{"bob", "example.org", "pa:ss", false},
		{"carol", "example.org", "", false},
	} {
		got, err := p.CheckPassword(c.user, c.domain, c.pw)
		if err != nil || got != c.want {
			t.Errorf("CheckPassword(%s@%s, %q) = %v, %v; want %v", c.user, c.domain, c.pw, got, err, c.want)
		}
	}
	for _, c := range []struct {
		user string
		want bool
	}{{"alice", true}, {"bob", true}, {"carol", false}} {
		if got, err := p.UserExists(c.user, "example.org"); err != nil || got != c.want {
			t.Errorf("UserExists(%s) = %v, %v; want %v", c.user, got, err, c.want)
		}
	}
	if got, err := p.CheckPassword("alice", "example.org", string(make([]byte, MaxRequest))); got || err != nil {
		t.Errorf("an oversized request: %v, %v; want a plain no", got, err)
	}
}

// TestFailures: a program that exits, hangs or answers garbage fails that request with an
// error (never a yes) and is started again for the next one.
func TestFailures(t *testing.T) {
	p, _ := start(t, Config{Timeout: 2 * restartDelay}, users)
	for _, bad := range []string{"crash", "slow", "garbage"} {
		ok, err := p.CheckPassword("alice", "example.org", bad)
		if ok || err == nil {
			t.Fatalf("%s: %v, %v; want an error", bad, ok, err)
		}
		if p.Failures() == 0 {
			t.Fatalf("%s: not counted as a failure", bad)
		}
		// Waits for the restart (restartDelay), within the timeout.
		ok, err = p.CheckPassword("alice", "example.org", "wonder land")
		if !ok || err != nil {
			t.Fatalf("after %s: %v, %v; want the program back", bad, ok, err)
		}
	}
}

// TestBusy: requests beyond MaxWaiting per process fail at once instead of piling up
// behind a program that hangs.
func TestBusy(t *testing.T) {
	p, _ := start(t, Config{Timeout: 2 * time.Second}, users)
	var wg sync.WaitGroup
	for range MaxWaiting {
		wg.Go(func() { p.CheckPassword("alice", "example.org", "slow") })
	}
	// Every waiting slot is taken once the first request is with the program.
	for deadline := time.Now().Add(2 * time.Second); len(p.waiting) < MaxWaiting; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiting, want %d", len(p.waiting), MaxWaiting)
		}
	}
	t0 := time.Now()
	if _, err := p.CheckPassword("alice", "example.org", "wonder land"); !errors.Is(err, ErrBusy) {
		t.Fatalf("request %d: %v, want ErrBusy", MaxWaiting+1, err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("ErrBusy took %v: it must not wait", d)
	}
	wg.Wait()
}

// TestCache: a remembered success skips the program; another password asks it, and a no
// forgets the success.
func TestCache(t *testing.T) {
	p, file := start(t, Config{CacheTTL: time.Minute}, users)
	check := func(pw string, want bool, calls uint64) {
		t.Helper()
		got, err := p.CheckPassword("alice", "example.org", pw)
		if err != nil || got != want || p.Calls() != calls {
			t.Fatalf("CheckPassword(%q) = %v, %v after %d calls; want %v after %d", pw, got, err, p.Calls(), want, calls)
		}
	}
	check("wonder land", true, 1)
	check("wonder land", true, 1) // remembered
	check("wrong", false, 2)
	check("wonder land", true, 2) // still remembered: a wrong guess does not evict it
	// The site changes the password: the old one works until the cache expires (documented)
	// unless the program says no to it first.
	if err := os.WriteFile(file, []byte("alice@example.org:new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("new", true, 3)
	check("wonder land", false, 4) // asked, since it differs from the remembered one
	check("new", true, 4)
}

func TestNoCache(t *testing.T) {
	p, _ := start(t, Config{}, users)
	for i := range 3 {
		if ok, err := p.CheckPassword("alice", "example.org", "wonder land"); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if p.Calls() != uint64(i+1) {
			t.Fatalf("calls %d after %d checks: without a cache every check asks", p.Calls(), i+1)
		}
	}
}

func TestConcurrent(t *testing.T) {
	p, _ := start(t, Config{Processes: 3}, users)
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := range 60 {
		wg.Go(func() {
			pw, want := "wonder land", true
			if i%2 == 1 {
				pw, want = "no", false
			}
			if ok, err := p.CheckPassword("alice", "example.org", pw); err != nil || ok != want {
				errs <- errors.Join(err, errors.New("wrong answer"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if p.Calls() != 60 {
		t.Fatalf("%d calls, want 60", p.Calls())
	}
}

func TestStartAndClose(t *testing.T) {
	if _, err := Start(Config{Command: []string{"/nonexistent/auth"}}); err == nil {
		t.Fatal("a missing program started")
	}
	if _, err := Start(Config{}); err == nil {
		t.Fatal("no command started")
	}
	p, _ := start(t, Config{Processes: 2}, users)
	p.Close()
	if _, err := p.CheckPassword("alice", "example.org", "wonder land"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

func TestParseAnswer(t *testing.T) {
	for _, c := range []struct {
		in   [4]byte
		want bool
		err  bool
	}{
		{[4]byte{0, 2, 0, 1}, true, false},
		{[4]byte{0, 2, 0, 0}, false, false},
		{[4]byte{0, 2, 0, 2}, false, true},
		{[4]byte{0, 3, 0, 1}, false, true},
		{[4]byte{1, 2, 0, 1}, false, true},
	} {
		got, err := ParseAnswer(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("ParseAnswer(%v) = %v, %v", c.in, got, err)
		}
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte{0, 2, 0, 1})
	f.Add([]byte{0, 2, 0, 0})
	f.Add([]byte{0xff, 0xff, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a [4]byte
		copy(a[:], b)
		ok, err := ParseAnswer(a)
		if ok && (err != nil || a != [4]byte{0, 2, 0, 1}) {
			t.Fatalf("%v read as yes", a)
		}
	})
}

// BenchmarkCheckPassword: one check through the test script (Debian's python3 reading a
// file per request): the cost of the pipe round trip and the program, which the cache
// skips.
func BenchmarkCheckPassword(b *testing.B) {
	for _, ttl := range []time.Duration{0, time.Minute} {
		name := "program"
		if ttl > 0 {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			p, _ := start(b, Config{CacheTTL: ttl}, users)
			defer p.Close()
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := p.CheckPassword("alice", "example.org", "wonder land"); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// TestManage: setpass, tryregister and removeuser reach the program, which keeps what it
// allows; a refusal is a plain no; a changed or removed password is no longer remembered.
func TestManage(t *testing.T) {
	p, _ := start(t, Config{CacheTTL: time.Hour}, users+"lee@example.org:locked\n")
	const d = "example.org"
	step := func(what string, got bool, err error, want bool) {
		t.Helper()
		if err != nil || got != want {
			t.Fatalf("%s: %v, %v; want %v", what, got, err, want)
		}
	}
	ok, err := p.CheckPassword("alice", d, "wonder land") // remembered now
	step("alice's password", ok, err, true)
	ok, err = p.SetPassword("alice", d, "new: pass")
	step("setpass alice", ok, err, true)
	ok, err = p.CheckPassword("alice", d, "wonder land")
	step("alice's old password", ok, err, false)
	ok, err = p.CheckPassword("alice", d, "new: pass")
	step("alice's new password", ok, err, true)
	ok, err = p.SetPassword("lee", d, "x")
	step("setpass of a locked user", ok, err, false)
	ok, err = p.SetPassword("nobody", d, "x")
	step("setpass of an unknown user", ok, err, false)

	ok, err = p.TryRegister("carol", d, "c pw")
	step("tryregister carol", ok, err, true)
	ok, err = p.CheckPassword("carol", d, "c pw")
	step("carol's password", ok, err, true)
	ok, err = p.TryRegister("carol", d, "other")
	step("tryregister a taken name", ok, err, false)
	ok, err = p.TryRegister("nope", d, "x")
	step("tryregister a refused name", ok, err, false)

	ok, err = p.RemoveUser("alice", d)
	step("removeuser alice", ok, err, true)
	ok, err = p.CheckPassword("alice", d, "new: pass") // was remembered: forgotten at removal
	step("removed alice's password", ok, err, false)
	ok, err = p.UserExists("alice", d)
	step("removed alice exists", ok, err, false)
	ok, err = p.RemoveUser("lee", d)
	step("removeuser of a locked user", ok, err, false)
}

// TestLookupsLeaveRoomForLogins: isuser requests (messages to names the server does not
// know, which anyone can send) take at most half of the waiting slots: past that they
// are refused at once, and logins still find room.
func TestLookupsLeaveRoomForLogins(t *testing.T) {
	p, _ := start(t, Config{Timeout: 2 * time.Second}, users)
	var wg sync.WaitGroup
	wg.Go(func() { p.CheckPassword("alice", "example.org", "slow") }) // the one process is busy
	for deadline := time.Now().Add(2 * time.Second); len(p.waiting) < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow login never got in")
		}
	}
	refused := make(chan struct{}, MaxWaiting)
	for range MaxWaiting {
		wg.Go(func() {
			t0 := time.Now()
			if _, err := p.UserExists("nobody", "example.org"); errors.Is(err, ErrBusy) && time.Since(t0) < time.Second {
				refused <- struct{}{}
			}
		})
	}
	for deadline := time.Now().Add(2 * time.Second); len(p.lookups) < cap(p.lookups); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d lookups waiting, want %d", len(p.lookups), cap(p.lookups))
		}
	}
	if n := len(p.waiting); n >= cap(p.waiting) {
		t.Fatalf("lookups took every waiting slot (%d of %d): no login could get in", n, cap(p.waiting))
	}
	wg.Wait()
	if n := len(refused); n != MaxWaiting-cap(p.lookups) {
		t.Fatalf("%d lookups refused at once, want %d", n, MaxWaiting-cap(p.lookups))
	}
}
