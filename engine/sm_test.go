package engine_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/store"
)

var smIDRe = regexp.MustCompile(`<enabled xmlns='urn:xmpp:sm:3' id='([^']+)' resume='true' max='(\d+)'/>`)

// loginSM authenticates user (password "secret"), binds res and enables resumable stream
// management; it returns the stream and the resumption id.
func loginSM(t *testing.T, srv *vireotest.Server, user, res string) (*vireotest.RawConn, string) {
	t.Helper()
	r := srv.AuthPlain(t, user, "secret")
	r.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + res + "</resource></bind></iq>")
	r.Expect("id='b'")
	return r, enableSM(t, r)
}

func enableSM(t *testing.T, r *vireotest.RawConn) string {
	t.Helper()
	r.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	m := smIDRe.FindStringSubmatch(r.Expect("/>"))
	if m == nil {
		t.Fatal("no <enabled/> with a resumption id")
	}
	return m[1]
}

// TestIntegrationStreamManagement: XEP-0198 on a real stream — the feature, acks both ways,
// resumption after the TCP connection dies (everything unacknowledged, then what was queued
// meanwhile, in order), unknown ids, bad h, and resuming while the old connection is alive.
func TestIntegrationStreamManagement(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")

	a, id := loginSM(t, srv, "alice", "phone")
	a.Send("<presence/>")
	a.Send("<r xmlns='urn:xmpp:sm:3'/>")
	a.Expect("<a xmlns='urn:xmpp:sm:3' h='1'/>") // the presence was handled

	for i := 1; i <= 3; i++ {
		bob.Send(fmt.Sprintf("<message to='alice@localhost/phone' type='chat' id='m%d'><body>msg %d</body></message>", i, i))
	}
	a.Expect("id='m3'")
	a.Conn().Close() // the phone loses TCP without a word; nothing was acknowledged
	for i := 4; i <= 5; i++ {
		bob.Send(fmt.Sprintf("<message to='alice@localhost/phone' type='chat' id='m%d'><body>msg %d</body></message>", i, i))
	}
	bob.Never("unavailable")

	// Resume on a new connection, having received nothing the server knows of (h=0): the
	// server resends every stanza since enable, then what came while detached, in order.
	a2 := srv.AuthPlain(t, "alice", "secret")
	a2.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
	got := a2.Expect("id='m5'")
	if !strings.Contains(got, "<resumed xmlns='urn:xmpp:sm:3' h='1' previd='"+id+"'/>") {
		t.Fatalf("no <resumed h='1'/>: %q", got)
	}
	last := strings.Index(got, "<resumed")
	for i := 1; i <= 5; i++ {
		j := strings.Index(got, fmt.Sprintf("id='m%d'", i))
		if j < last {
			t.Fatalf("m%d missing or out of order after resume:\n%s", i, got)
		}
		last = j
	}
	// Live traffic goes on, and acks work on the resumed stream.
	bob.Send("<message to='alice@localhost/phone' type='chat' id='m6'><body>live</body></message>")
	a2.Expect("id='m6'")
	a2.Send("<a xmlns='urn:xmpp:sm:3' h='6'/>") // everything so far, counted from the old stream

	// Resuming while the old connection still looks alive: the old one is closed.
	a3 := srv.AuthPlain(t, "alice", "secret")
	a3.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='6'/>")
	a3.Expect("<resumed")
	a2.ExpectClosed()
	bob.Send("<message to='alice@localhost/phone' type='chat' id='m7'><body>to the third</body></message>")
	a3.Expect("id='m7'")

	// An unknown id: failed, and the client can bind normally.
	x := srv.AuthPlain(t, "alice", "secret")
	x.Send("<resume xmlns='urn:xmpp:sm:3' previd='nope' h='0'/>")
	x.Expect("<item-not-found")
	x.Send("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>other</resource></bind></iq>")
	x.Expect("id='b2'")

	// An h larger than what was sent ends the stream.
	a3.Send("<a xmlns='urn:xmpp:sm:3' h='9999'/>")
	if got := a3.ExpectClosed(); !strings.Contains(got, "<stream:error><undefined-condition") ||
		!strings.Contains(got, "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='9999' send-count='8'/>") || strings.Contains(got, "<failed") {
		t.Fatalf("bad h: %q", got)
	}
}

// TestIntegrationStreamManagementTimeout: a detached session that is not resumed in time
// ends: contacts see unavailable only then, queued messages go to offline storage, and the
// id can no longer be resumed.
func TestIntegrationStreamManagementTimeout(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, ResumeTimeout: time.Second})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "alice", "bob", "")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")
	a := srv.LoginPlain(t, "alice", "secret", "phone")
	id := enableSM(t, a)
	a.Send("<presence/>")
	bob.Expect("from='alice@localhost/phone'")
	bob.Send("<message to='alice@localhost/phone' type='chat' id='t1'><body>unacked</body></message>")
	a.Expect("id='t1'")
	closed := time.Now()
	a.Conn().Close()
	bob.Send("<message to='alice@localhost/phone' type='chat' id='t2'><body>while away</body></message>")
	bob.Never("unavailable")
	bob.Expect("type='unavailable'")
	var stored []string
	for i := 0; i < 200 && len(stored) < 2; i++ {
		stored = stored[:0]
		srv.Store.Offline().List("alice@localhost", func(m store.OfflineMessage) bool {
			stored = append(stored, string(m.Raw))
			return true
		})
		time.Sleep(10 * time.Millisecond)
	}
	if len(stored) != 2 || !strings.Contains(stored[0], "unacked") || !strings.Contains(stored[1], "while away") {
		t.Fatalf("offline after the timeout: %q", stored)
	}
	// Each carries one <delay/>: when it was tried first, not when the expiry stored it
	// a second later (XEP-0198 §4).
	for _, m := range stored {
		st := delayStamp.FindStringSubmatch(m)
		if st == nil || strings.Count(m, "urn:xmpp:delay") != 1 {
			t.Fatalf("stored without one server delay: %s", m)
		}
		at, err := time.Parse(time.RFC3339Nano, st[1])
		if err != nil || at.Before(closed.Add(-time.Second)) || !at.Before(closed.Add(time.Second)) {
			t.Fatalf("delay stamp %s (%v); the stream closed at %s and expired a second later", st[1], err, closed.UTC())
		}
	}
	a2 := srv.AuthPlain(t, "alice", "secret")
	a2.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
	a2.Expect("<item-not-found")
}

// TestIntegrationStreamManagementBadCases: enable before bind and enable twice are
// unexpected requests (the stream goes on), an <r/> before bind is ignored; resuming another account's session is
// item-not-found; stanzas unacknowledged for sm_ack_after get a request from the server.
func TestIntegrationStreamManagementBadCases(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, SMAckAfter: time.Second})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "mallory", "secret")

	a := srv.AuthPlain(t, "alice", "secret")
	a.Send("<r xmlns='urn:xmpp:sm:3'/>") // before enable: left unanswered (c2s.go)
	a.Never("<failed")
	a.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	a.Expect("<unexpected-request")
	a.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
	a.Expect("id='b'")
	id := enableSM(t, a)
	a.Send("<enable xmlns='urn:xmpp:sm:3'/>")
	a.Expect("<unexpected-request")

	// A stanza to alice that she does not acknowledge: the server asks within about a
	// second or two (the sweep runs every second).
	a.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("id='p'")
	a.Expect("<r xmlns='urn:xmpp:sm:3'/>")

	m := srv.AuthPlain(t, "mallory", "secret")
	m.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
	m.Expect("<item-not-found")
}

// TestIntegrationSMAckTimeout: a client that leaves the server's <r/> unanswered is asked
// once, not every second, and when it has also sent nothing for sm_ack_timeout its
// connection is taken for dead: closed with connection-timeout, the session detached (its
// contacts see no unavailable) and resumable with what it was sent. A client that does not
// answer but keeps talking is left alone.
func TestIntegrationSMAckTimeout(t *testing.T) {
	const ackTimeout = 3 * time.Second
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, SMAckAfter: time.Second, SMAckTimeout: ackTimeout})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	srv.AddUser(t, "carol", "secret")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")

	// Carol does not answer <r/> but pings the server every half second: alive.
	carol, _ := loginSM(t, srv, "carol", "c")
	bob.Send("<message to='carol@localhost/c' type='chat' id='c1'><body>hi carol</body></message>")
	carol.Expect("<r xmlns='urn:xmpp:sm:3'/>")

	a, id := loginSM(t, srv, "alice", "phone")
	a.Send("<presence/>")
	a.Expect("<presence")
	bob.Send("<message to='alice@localhost/phone' type='chat' id='m1'><body>are you there</body></message>")
	start := time.Now()
	for i := 0; time.Since(start) < ackTimeout+3*time.Second; i++ {
		carol.Send(fmt.Sprintf("<iq type='get' id='p%d'><ping xmlns='urn:xmpp:ping'/></iq>", i))
		carol.Expect(fmt.Sprintf("id='p%d'", i))
		time.Sleep(500 * time.Millisecond)
	}
	// Alice said nothing since her presence: by now her stream is closed.
	got := a.ExpectClosed()
	if n := strings.Count(got, "<r xmlns='urn:xmpp:sm:3'/>"); n != 1 {
		t.Fatalf("alice was asked for an ack %d times, want once: %q", n, got)
	}
	if !strings.Contains(got, "id='m1'") || !strings.Contains(got, "connection-timeout") {
		t.Fatalf("alice's stream: %q", got)
	}
	bob.Never("unavailable")
	_, _, body := scrape(t, srv.WebAddr(), "127.0.0.1")
	if v := metricValue(t, body, `vireo_connections_timed_out_total{kind="sm_ack"}`); v != 1 {
		t.Fatalf("sm_ack timeouts = %v, want 1", v)
	}
	bob.Send("<message to='alice@localhost/phone' type='chat' id='m2'><body>still there?</body></message>")

	a2 := srv.AuthPlain(t, "alice", "secret")
	a2.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
	got = a2.Expect("id='m2'")
	if i, j := strings.Index(got, "id='m1'"), strings.Index(got, "<resumed"); i < j || j < 0 {
		t.Fatalf("m1 not resent after <resumed/>: %q", got)
	}
	carol.Send("<iq type='get' id='last'><ping xmlns='urn:xmpp:ping'/></iq>")
	if got := carol.Expect("id='last'"); strings.Contains(got, "connection-timeout") {
		t.Fatalf("carol, who kept talking, was cut off: %q", got)
	}
}

// TestIntegrationSMConflict: a new bind of the same resource ends the older session while
// its stream is up (RFC 6120 §7.7.2.2). What that stream wrote and its client never
// acknowledged follows RFC 6121 (to the other resource here), its resumption entry goes,
// and a resume of it fails at once.
func TestIntegrationSMConflict(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	desk := srv.LoginPlain(t, "alice", "secret", "desk")
	desk.Send("<presence priority='1'/>")
	before := engine.SMSessions(srv.Engine)
	a, id := loginSM(t, srv, "alice", "phone")
	a.Send("<presence/>")
	bob.Send("<message to='alice@localhost/phone' type='chat' id='u1'><body>never acknowledged</body></message>")
	a.Expect("id='u1'")
	desk.Expect("from='alice@localhost/phone'") // the phone's presence, before the message lands anywhere else

	// The same resource again, on a new stream: the phone's old stream gets <conflict/>.
	b := srv.AuthPlain(t, "alice", "secret")
	b.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>")
	b.Expect("id='b'")
	if got := a.ExpectClosed(); !strings.Contains(got, "<conflict") {
		t.Fatalf("the old stream: %q", got)
	}
	if got := desk.Expect("id='u1'") + desk.Expect("</message>"); !strings.Contains(got, "never acknowledged") {
		t.Fatalf("the unacknowledged message: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for engine.SMSessions(srv.Engine) > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := engine.SMSessions(srv.Engine); n > before {
		t.Fatalf("%d resumption entries left, %d before", n, before)
	}
	x := srv.AuthPlain(t, "alice", "secret")
	x.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
	x.Expect("<item-not-found")
}

// TestIntegrationOfflineUntilAcked: offline messages delivered to a stream with stream
// management stay stored until the client acknowledges them: unacknowledged, they are in
// memory only (resent on resume, or stored again when the session ends), and a crash while
// the session waits detached would take them. A client that goes without acknowledging
// gets them again at its next login.
func TestIntegrationOfflineUntilAcked(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	for i := 1; i <= 3; i++ {
		bob.Send(fmt.Sprintf("<message to='alice@localhost' type='chat' id='o%d'><body>offline %d</body></message>", i, i))
	}
	stored := func() int {
		n, _ := srv.Store.Offline().Count("alice@localhost")
		return n
	}
	waitCond(t, func() bool { return stored() == 3 })

	a, _ := loginSM(t, srv, "alice", "phone")
	a.Send("<presence/>")
	got := a.Expect("id='o3'")
	got += a.Expect("<r xmlns='urn:xmpp:sm:3'/>") // the server asks at once
	time.Sleep(200 * time.Millisecond)
	if n := stored(); n != 3 {
		t.Fatalf("%d offline messages stored before the client acknowledged them, want 3", n)
	}
	a.Conn().Close() // gone without an ack: the session waits, detached
	time.Sleep(200 * time.Millisecond)
	if n := stored(); n != 3 {
		t.Fatalf("%d offline messages stored after the stream went unacknowledged, want 3", n)
	}

	a2, _ := loginSM(t, srv, "alice", "tablet")
	a2.Send("<presence/>")
	got = a2.Expect("id='o3'")
	got += a2.Expect("<r xmlns='urn:xmpp:sm:3'/>")
	n := strings.Count(got, "<message") + strings.Count(got, "<presence") + strings.Count(got, "<iq")
	a2.Send(fmt.Sprintf("<a xmlns='urn:xmpp:sm:3' h='%d'/>", n))
	waitCond(t, func() bool { return stored() == 0 })
}

// waitCond waits up to 5 s for ok.
func waitCond(t *testing.T, ok func() bool) {
	t.Helper()
	for range 500 {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 5 s")
}

// TestIntegrationSMTakeoverWaiterGone: a resume that waits for the old stream to close
// (it still looked alive) and whose own connection drops meanwhile takes nothing: the
// session stays detached, and the next resume gets it at once.
func TestIntegrationSMTakeoverWaiterGone(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	for round := range 5 {
		a, id := loginSM(t, srv, "alice", fmt.Sprint("phone", round))
		a.Send("<presence/>")
		a.Expect("<presence")
		bob.Send(fmt.Sprintf("<message to='alice@localhost/phone%d' type='chat' id='w%d'><body>kept</body></message>", round, round))
		a.Expect(fmt.Sprintf("id='w%d'", round))

		// The old stream is still up: the resume waits for it, and drops at once.
		gone := srv.AuthPlain(t, "alice", "secret")
		gone.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
		gone.Conn().Close()
		a.ExpectClosed()

		next := srv.AuthPlain(t, "alice", "secret")
		next.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
		if got := next.Expect("id='w" + fmt.Sprint(round) + "'"); !strings.Contains(got, "<resumed") {
			t.Fatalf("round %d: the next resume got %q", round, got)
		}
		next.Send("</stream:stream>")
		next.ExpectClosed()
	}
}

var delayStamp = regexp.MustCompile(`<delay xmlns='urn:xmpp:delay' from='localhost' stamp='([^']+)'`)

// TestIntegrationDetachedExpiryNoDuplicate: when a detached session expires, a message to
// the bare JID that a live resource got when it came is not handed to that resource again;
// one for the detached resource alone goes to the live one, with the time it came as its
// <delay/> (XEP-0198 §4, RFC 6121 §8.5.3.2.1).
func TestIntegrationDetachedExpiryNoDuplicate(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, ResumeTimeout: time.Second})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	desk := srv.LoginPlain(t, "alice", "secret", "desk")
	desk.Send("<presence/>")
	desk.Expect("<presence")
	phone := srv.LoginPlain(t, "alice", "secret", "phone")
	enableSM(t, phone)
	phone.Send("<presence/>")
	phone.Expect("<presence")
	desk.Expect("from='alice@localhost/phone'")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	phone.Conn().Close()
	time.Sleep(200 * time.Millisecond) // detached
	sent := time.Now()
	bob.Send("<message to='alice@localhost' type='chat' id='b1'><body>to both</body></message>")
	bob.Send("<message to='alice@localhost/phone' type='chat' id='p1'><body>to the phone</body></message>")
	desk.Expect("id='b1'")
	got := desk.Expect("id='p1'") + desk.Expect("</message>") // after the expiry
	if strings.Contains(got, "id='b1'") {
		t.Fatalf("the desk got the message to the bare JID again at the phone's expiry: %s", got)
	}
	st := delayStamp.FindStringSubmatch(got)
	if st == nil {
		t.Fatalf("the phone's message came to the desk without its delay: %s", got)
	}
	if at, err := time.Parse(time.RFC3339Nano, st[1]); err != nil || at.After(sent.Add(time.Second)) { // the expiry is a second later
		t.Fatalf("delay stamp %s, sent at %s", st[1], sent.UTC())
	}
	desk.Never("id='b1'")
}

// TestIntegrationResumeDroppedBeforeAttach: a resume whose connection drops before the
// session is attached to it (often, when the client hangs up right after <resume/>)
// leaves the count where the router's queue starts: the next resume with the same h gets
// none of the stanzas the client acknowledged again, and those it lacks in order.
func TestIntegrationResumeDroppedBeforeAttach(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	a, id := loginSM(t, srv, "alice", "phone")
	for i := 1; i <= 3; i++ {
		bob.Send(fmt.Sprintf("<message to='alice@localhost/phone' type='chat' id='m%d'><body>msg %d</body></message>", i, i))
	}
	a.Expect("id='m3'")
	a.Conn().Close() // m1..m3 reached the client; it had no time to acknowledge them
	for range 20 {
		r := srv.AuthPlain(t, "alice", "secret")
		r.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='3'/>")
		r.Conn().Close() // before the attach has finished, often
	}
	bob.Send("<message to='alice@localhost/phone' type='chat' id='m4'><body>msg 4</body></message>")
	r := srv.AuthPlain(t, "alice", "secret")
	r.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='3'/>")
	got := r.Expect("id='m4'")
	if !strings.Contains(got, "<resumed") {
		t.Fatalf("no <resumed/>: %q", got)
	}
	for i := 1; i <= 3; i++ {
		if strings.Contains(got, fmt.Sprintf("id='m%d'", i)) {
			t.Fatalf("m%d, acknowledged by h='3', sent again:\n%s", i, got)
		}
	}
	r.Send("<a xmlns='urn:xmpp:sm:3' h='4'/><iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	r.Expect("id='p'") // h='4' is in range: the counts agree
}
