package loadgen

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/xmlstream"
)

// fakeConn replays what a server sent and records what the client wrote.
type fakeConn struct {
	in  *strings.Reader
	out bytes.Buffer
}

func (f *fakeConn) Read(b []byte) (int, error)         { return f.in.Read(b) }
func (f *fakeConn) Write(b []byte) (int, error)        { return f.out.Write(b) }
func (f *fakeConn) Close() error                       { return nil }
func (f *fakeConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (f *fakeConn) SetDeadline(time.Time) error        { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error    { return nil }
func (f *fakeConn) SetWriteDeadline(t time.Time) error { return nil }

const header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='x' version='1.0'>"

// replay is a session in the middle of a stream whose server sends elems next.
func replay(t *testing.T, elems string, m *SM) (*Session, *fakeConn) {
	t.Helper()
	fc := &fakeConn{in: strings.NewReader(header + elems)}
	s := &Session{conn: fc, sc: xmlstream.NewScanner(), buf: make([]byte, 4096), sm: m}
	lim := xmlstream.DefaultLimits()
	s.st.Reset(xmlstream.KindClient, &lim)
	if _, err := s.next(); err != nil {
		t.Fatalf("header: %v", err)
	}
	return s, fc
}

// unackedSM is an SM that has sent n stanzas, none acknowledged, from acked on.
func unackedSM(acked uint32, n int) *SM {
	m := &SM{Acked: acked, Out: acked + uint32(n)}
	for i := 0; i < n; i++ {
		m.unacked = append(m.unacked, []byte("<message id='m"+string(rune('0'+i))+"'/>"))
	}
	return m
}

func TestNextCountsAndAcks(t *testing.T) {
	const r = "<r xmlns='urn:xmpp:sm:3'/>"
	for _, c := range []struct {
		name      string
		sm        *SM
		in        string
		returned  []string // names Next hands to the caller, in order
		wantIn    uint32
		wantWrote string
		acked     uint32
		unacked   int
		err       bool
	}{
		{name: "no stream management: nothing counted, r returned", in: "<message/>" + r,
			returned: []string{"message", "r"}},
		{name: "stanzas counted, r answered with the count so far", sm: &SM{},
			in:       "<message/><presence/>" + r + "<iq type='result' id='q'/>" + r,
			returned: []string{"message", "presence", "iq"}, wantIn: 3,
			wantWrote: "<a xmlns='urn:xmpp:sm:3' h='2'/><a xmlns='urn:xmpp:sm:3' h='3'/>"},
		{name: "non-stanzas are returned but not counted", sm: &SM{In: 7},
			in:       "<stream:features/><r/><failed xmlns='urn:xmpp:sm:3'/><message/>",
			returned: []string{"features", "r", "failed", "message"}, wantIn: 8},
		{name: "a trims what the server has", sm: unackedSM(0, 3),
			in: "<a xmlns='urn:xmpp:sm:3' h='2'/><message/>", returned: []string{"message"}, wantIn: 1, acked: 2, unacked: 1},
		{name: "h counts modulo 2^32", sm: unackedSM(0xFFFFFFFF, 2),
			in: "<a xmlns='urn:xmpp:sm:3' h='1'/>", acked: 1, unacked: 0},
		{name: "h beyond what was sent", sm: unackedSM(5, 1),
			in: "<a xmlns='urn:xmpp:sm:3' h='7'/>", acked: 5, unacked: 1, err: true},
		{name: "a without h", sm: &SM{}, in: "<a xmlns='urn:xmpp:sm:3'/>", err: true},
		{name: "the server's ping is answered", in: "<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq><iq type='result' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>",
			returned: []string{"iq", "iq"}, wantWrote: "<iq type='result' id='p1' to='localhost'/>"},
		{name: "h not a number", sm: &SM{}, in: "<a xmlns='urn:xmpp:sm:3' h='-1'/>", err: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, fc := replay(t, c.in, c.sm)
			var got []string
			var err error
			for {
				var st *xmlstream.Stanza
				st, err = s.Next()
				if err != nil {
					break
				}
				got = append(got, string(st.Name))
			}
			if c.err == (err == nil || errors.Is(err, io.EOF)) {
				t.Fatalf("err = %v, want error %v", err, c.err)
			}
			if strings.Join(got, ",") != strings.Join(c.returned, ",") {
				t.Errorf("returned %v, want %v", got, c.returned)
			}
			if fc.out.String() != c.wantWrote {
				t.Errorf("wrote %q, want %q", fc.out.String(), c.wantWrote)
			}
			if c.sm != nil {
				if c.sm.In != c.wantIn || c.sm.Acked != c.acked || c.sm.Unacked() != c.unacked {
					t.Errorf("In %d Acked %d unacked %d, want %d %d %d", c.sm.In, c.sm.Acked, c.sm.Unacked(), c.wantIn, c.acked, c.unacked)
				}
			}
		})
	}
}

func TestResumedResendsWhatHMissed(t *testing.T) {
	for _, c := range []struct {
		name       string
		h          string
		resent     int
		wrote      string
		acked      uint32
		err        bool
		keepsOldSM bool
	}{
		{name: "all received", h: "3", acked: 3},
		{name: "last two missing", h: "1", resent: 2, acked: 1, wrote: "<message id='m1'/><message id='m2'/>"},
		{name: "none received", h: "0", resent: 3, wrote: "<message id='m0'/><message id='m1'/><message id='m2'/>"},
		{name: "more than sent", h: "4", err: true, keepsOldSM: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := unackedSM(0, 3)
			s, fc := replay(t, "<resumed xmlns='urn:xmpp:sm:3' previd='p' h='"+c.h+"'/>", nil)
			st, err := s.next()
			if err != nil {
				t.Fatal(err)
			}
			err = s.resumed(st, m)
			if (err != nil) != c.err {
				t.Fatalf("err = %v", err)
			}
			if c.err {
				if s.sm != nil {
					t.Fatal("a refused resume took the counters")
				}
				return
			}
			if s.sm != m || m.Resent != c.resent || m.Acked != c.acked || fc.out.String() != c.wrote || m.Unacked() != 3-int(c.acked) {
				t.Errorf("resent %d acked %d unacked %d wrote %q", m.Resent, m.Acked, m.Unacked(), fc.out.String())
			}
		})
	}
}

func TestEnableSM(t *testing.T) {
	s, fc := replay(t, "<enabled xmlns='urn:xmpp:sm:3' id='a&amp;b' resume='true' max='300'/>", nil)
	if err := s.EnableSM(true); err != nil {
		t.Fatal(err)
	}
	if m := s.SM(); m == nil || m.ID != "a&b" || m.Max != 300 {
		t.Fatalf("SM = %+v", m)
	}
	if fc.out.String() != "<enable xmlns='urn:xmpp:sm:3' resume='true'/>" {
		t.Fatalf("wrote %q", fc.out.String())
	}
	s, _ = replay(t, "<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>", nil)
	if err := s.EnableSM(true); err == nil {
		t.Fatal("failed accepted")
	}
	s, _ = replay(t, "<enabled xmlns='urn:xmpp:sm:3'/>", nil)
	if err := s.EnableSM(true); err == nil {
		t.Fatal("enabled without an id accepted for resumption")
	}
}

// TestDropAndResume drops a session with stream management on while messages reach it,
// resumes it with the h it counted, and gets every message exactly once, over plain TCP
// and direct TLS.
func TestDropAndResume(t *testing.T) {
	no := false
	srv := vireotest.Start(t, vireotest.Options{Registration: true, RequireTLS: &no, AllowPlain: true})
	plain := Config{Addr: srv.C2SAddr(), Domain: srv.Domain(), Mode: Plain, Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second}
	for _, u := range []string{"alice", "bob"} {
		if err := Register(plain, u, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	tls := plain
	tls.Mode, tls.Addr = DirectTLS, srv.TLSAddr()
	t.Run("plain", func(t *testing.T) { dropAndResume(t, plain) })
	t.Run("tls", func(t *testing.T) { dropAndResume(t, tls) })
}

func dropAndResume(t *testing.T, cfg Config) {
	alice, err := Dial(cfg, "alice", "pw", "phone")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.EnableSM(true); err != nil {
		t.Fatal(err)
	}
	if err := alice.SendStanza([]byte("<presence/>")); err != nil {
		t.Fatal(err)
	}
	bob, err := Dial(cfg, "bob", "pw", "desk")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	seen := map[string]int{}
	read := func(s *Session, want int) {
		t.Helper()
		s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for got := 0; got < want; {
			st, err := s.Next()
			if err != nil {
				t.Fatalf("after %d of %d: %v", got, want, err)
			}
			if string(st.Name) == "message" {
				seen[string(st.ID)]++
				got++
			}
		}
		s.conn.SetReadDeadline(time.Time{})
	}
	send := func(from, to int) {
		for i := from; i < to; i++ {
			bob.Send([]byte("<message type='chat' to='" + alice.JID + "' id='m" + string(rune('a'+i)) + "'><body>x</body></message>"))
		}
	}
	send(0, 12) // the server asks for an ack after 10
	read(alice, 5)
	alice.Drop()
	alice.Release()
	send(12, 15)
	time.Sleep(200 * time.Millisecond)
	if _, err := Resume(cfg, "alice", "pw", &Session{}); err == nil {
		t.Fatal("resumed without a session")
	}
	bad := &Session{sm: &SM{ID: "nonesuch"}}
	if _, err := Resume(cfg, "alice", "pw", bad); !errors.Is(err, ErrResumeFailed) {
		t.Fatalf("unknown previd: %v", err)
	}
	again, err := Resume(cfg, "alice", "pw", alice)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	read(again, 10)
	if len(seen) != 15 {
		t.Fatalf("saw %d distinct messages: %v", len(seen), seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s arrived %d times", id, n)
		}
	}
	m := again.SM()
	if again.JID != alice.JID || m.Out != 1 || m.Resent != 0 {
		t.Fatalf("after resume: jid %s, %+v", again.JID, m)
	}
}
