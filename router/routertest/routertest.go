// Package routertest runs the real router over a real Pebble store with sessions whose
// Conn records what the router delivers, so module and routing tests can drive stanzas in
// and read what comes out. It stands in only for the engine's socket.
package routertest

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Conn records what the router sends to one stream.
type Conn struct {
	mu     sync.Mutex
	got    []string
	closed stanza.StreamCondition
	N      atomic.Int64 // stanzas written (one socket write, one wake-up of a sleeping radio each)
	Bytes  atomic.Int64
	// Refuse makes Send fail, like a stream that is closing or over its outbound cap.
	Refuse  atomic.Bool
	Resumes atomic.Int64
	// HoldDrain: Drained never reports the data written.
	HoldDrain atomic.Bool
	// Guest makes the session a guest's (router.Ephemeral), set before it binds.
	Guest atomic.Bool
}

// Ephemeral implements router.Ephemeral.
func (c *Conn) Ephemeral() bool { return c.Guest.Load() }

// Send implements router.Conn.
func (c *Conn) Send(b []byte) bool {
	if c.Refuse.Load() {
		return false
	}
	c.Bytes.Add(int64(len(b)))
	c.mu.Lock()
	c.got = append(c.got, string(b))
	c.mu.Unlock()
	c.N.Add(1)
	return true
}

// Drained implements router.Conn: everything "sent" is written at once, unless
// HoldDrain is set, in which case nothing ever is (the client never reads).
func (c *Conn) Drained(f func(bool)) {
	if !c.HoldDrain.Load() {
		f(true)
	}
}

// Resume implements router.Conn; Resumes counts the calls.
func (c *Conn) Resume() { c.Resumes.Add(1) }

// Close implements router.Conn.
func (c *Conn) Close(cond stanza.StreamCondition) {
	c.mu.Lock()
	c.closed = cond
	c.mu.Unlock()
}

// Closed returns the condition the stream was closed with ("" if open).
func (c *Conn) Closed() stanza.StreamCondition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// All returns everything received, one stanza per line.
func (c *Conn) All() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.got, "\n")
}

// Got returns a copy of the received stanzas.
func (c *Conn) Got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// Reset forgets what was received.
func (c *Conn) Reset() {
	c.mu.Lock()
	c.got = nil
	c.mu.Unlock()
}

// Wait returns the stanza containing all of subs, failing the test after 5 s.
func (c *Conn) Wait(t testing.TB, subs ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.Got() {
			ok := true
			for _, sub := range subs {
				if !strings.Contains(s, sub) {
					ok = false
				}
			}
			if ok {
				return s
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("never received a stanza with %q; got:\n%s", subs, c.All())
	return ""
}

// Never fails if a stanza containing sub arrives within 100 ms.
func (c *Conn) Never(t testing.TB, sub string) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	if s := c.All(); strings.Contains(s, sub) {
		t.Fatalf("unexpectedly received %q:\n%s", sub, s)
	}
}

// Env is a router with a store and a tokenizer.
type Env struct {
	T      testing.TB
	R      *router.Router
	Store  store.Store
	Domain string
	mu     sync.Mutex
	sc     *xmlstream.Scanner
}

// New starts a router for domain "example.org" with accounts for users; opts may adjust
// the options before start.
func New(t testing.TB, users []string, opts func(*router.Options)) *Env {
	t.Helper()
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	o := router.Options{Domains: []string{"example.org"}, Store: st, Logger: zerolog.Nop(), Shards: 4}
	if opts != nil {
		opts(&o)
	}
	r, err := router.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); st.Close() })
	if err := r.StartRemovals(); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		st.Accounts().Create(store.Account{User: u + "@example.org"})
	}
	return &Env{T: t, R: r, Store: st, Domain: "example.org", sc: xmlstream.NewScanner()}
}

// HostSettings reconfigures module id as a reload would with no server-wide table and
// one [vhosts."<host>".modules.<id>] table, whose decoding set does to the module's
// settings (decoded over the server-wide defaults); it returns what applies them, or the
// module's refusal.
func (e *Env) HostSettings(id, host string, set func(v any)) (apply func(), err error) {
	apply, _, err = e.R.Reconfigure(id, module.Reconfig{Decode: func(any) error { return nil }, Domains: []string{e.Domain},
		Hosts: []string{host}, DecodeHost: func(_ string, v any) error { set(v); return nil }})
	return apply, err
}

// On returns an Env for another of the router's domains (one SetDomains added): its
// Bind binds users of domain.
func (e *Env) On(domain string) *Env {
	return &Env{T: e.T, R: e.R, Store: e.Store, Domain: domain, sc: xmlstream.NewScanner()}
}

// Sess is a bound session.
type Sess struct {
	S  *router.Session
	C  *Conn
	xs xmlstream.State
	e  *Env
}

// Bind binds user/res and returns the session.
func (e *Env) Bind(user, res string) *Sess {
	e.T.Helper()
	return e.bind(user, res, false)
}

// BindGuest binds user/res as a guest's session (SASL ANONYMOUS, XEP-0175).
func (e *Env) BindGuest(user, res string) *Sess {
	e.T.Helper()
	return e.bind(user, res, true)
}

func (e *Env) bind(user, res string, guest bool) *Sess {
	e.T.Helper()
	bare, _ := jid.Parse(user + "@" + e.Domain)
	c := &Conn{}
	c.Guest.Store(guest)
	done := make(chan *router.Session, 1)
	e.R.Bind(bare, res, c, func(s *router.Session, err error) {
		if err != nil {
			e.T.Error(err)
		}
		done <- s
	})
	s := &Sess{S: <-done, C: c, e: e}
	lim := xmlstream.DefaultLimits()
	s.xs.Reset(xmlstream.KindClient, &lim)
	e.mu.Lock()
	e.sc.Next(&s.xs, []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='"+e.Domain+"' version='1.0'>"))
	e.mu.Unlock()
	return s
}

// Send submits raw XML as if the session's client sent it.
func (s *Sess) Send(raw string) {
	s.e.T.Helper()
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	in := []byte(raw)
	for len(in) > 0 {
		ev, n, err := s.e.sc.Next(&s.xs, in)
		if err != nil {
			s.e.T.Fatalf("scan %q: %v", raw, err)
		}
		in = in[n:]
		if ev.Kind == xmlstream.EventElement && ev.Stanza.Kind() == xmlstream.KindOther {
			if !s.e.R.Nonza(s.S, ev.Stanza.Raw, ev.Stanza.NS, ev.Stanza.Name) {
				s.e.T.Fatalf("no module for %q", raw)
			}
		} else if ev.Kind == xmlstream.EventElement && !s.e.R.Submit(s.S, ev.Stanza) {
			s.e.T.Fatalf("Submit refused %q", raw)
		}
		if ev.Kind == xmlstream.EventNone {
			break
		}
	}
}

// Unbind ends the session.
func (s *Sess) Unbind() { s.e.R.Unbind(s.S) }

// Remote is a router.Remote that keeps what the router sends to other servers, for tests
// that look at federation's side (e.R.SetRemote). Safe for concurrent use.
type Remote struct {
	mu  sync.Mutex
	got []string
}

// Route implements router.Remote.
func (l *Remote) Route(_, _ jid.JID, raw []byte) error {
	l.mu.Lock()
	l.got = append(l.got, string(raw))
	l.mu.Unlock()
	return nil
}

// Matching returns the stanzas sent so far that hold every one of subs.
func (l *Remote) Matching(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.got {
		if !slices.ContainsFunc(subs, func(sub string) bool { return !strings.Contains(s, sub) }) {
			out = append(out, s)
		}
	}
	return out
}
