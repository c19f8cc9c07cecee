package main

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	msasl "mellium.im/sasl"
)

// The fault tests run the real binary, write to it from raw client streams, kill it with
// SIGKILL at a random point and restart it on the same data directory: whatever the server
// acknowledged before the kill must be there afterwards (duplicates allowed, nothing lost).
// The kill point (a count of acknowledgements, plus a few milliseconds) comes from a seed
// that each test logs; VIREO_FAULT_SEED=<n> with -run on that test chooses the same point.
//
// What counts as acknowledged, without XEP-0198:
//   - a message to another user: the answer to an IQ ping sent after it to the recipient's
//     bare JID. That ping takes the same path as the message (sender's shard, then the
//     recipient's shard, FIFO both), so it is answered only after the message went through
//     the recipient's inbound phase, offline storage included. A ping to the server is not
//     enough: the sender's shard answers it while the recipient's shard may still be
//     writing; the offline test reports how many messages such acks would have lost.
//   - a roster set or an in-band registration: its IQ result.

// TestIntegrationFault builds the binary once and runs each fault scenario against it.
func TestIntegrationFault(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildVireo(t)
	t.Run("KillDuringOfflineSends", func(t *testing.T) { testKillDuringOfflineSends(t, bin, false) })
	t.Run("KillDuringOfflineSendsSM", func(t *testing.T) { testKillDuringOfflineSends(t, bin, true) })
	t.Run("KillAfterResume", func(t *testing.T) { testKillAfterResume(t, bin) })
	t.Run("KillDuringRosterSets", func(t *testing.T) { testKillDuringRosterSets(t, bin) })
	t.Run("KillDuringRegistration", func(t *testing.T) { testKillDuringRegistration(t, bin) })
	t.Run("NeverReadingClient", func(t *testing.T) { testNeverReadingClient(t, bin) })
	t.Run("OfflineReplayOverOutboundCap", func(t *testing.T) { testOfflineReplayOverOutboundCap(t, bin) })
}

func buildVireo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vireo")
	start := time.Now()
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built vireo in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// faultRand returns the scenario's random source and logs its seed.
func faultRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VIREO_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("VIREO_FAULT_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with VIREO_FAULT_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// --- the server process ---

// faultServer is one data directory served by successive vireo processes.
type faultServer struct {
	t     *testing.T
	bin   string
	dir   string
	extra string // TOML tables appended to the config
	addr  string
	cmd   *exec.Cmd
	log   *lockedBuffer
	exit  chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newFaultServer(t *testing.T, bin, extra string) *faultServer {
	dir := t.TempDir()
	s := &faultServer{t: t, bin: bin, dir: dir, extra: extra}
	t.Cleanup(func() {
		if s.cmd != nil {
			s.kill()
		}
		if t.Failed() && s.log != nil {
			t.Logf("server log of the last run:\n%s", tail(s.log.String(), 4000))
		}
	})
	return s
}

// start runs the server on a fresh loopback port and waits until it serves. Plain TCP is
// allowed (require_tls = false); clients log in with SCRAM-SHA-256.
func (s *faultServer) start() {
	s.t.Helper()
	path := s.writeConfig()
	s.log = new(lockedBuffer)
	s.cmd = exec.Command(s.bin, "-config", path)
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exit = make(chan struct{})
	go func(cmd *exec.Cmd, exit chan struct{}) { cmd.Wait(); close(exit) }(s.cmd, s.exit)
	deadline := time.After(30 * time.Second)
	for !strings.Contains(s.log.String(), "vireo is serving") {
		select {
		case <-s.exit:
			s.cmd = nil
			s.t.Fatalf("server exited before serving:\n%s", s.log.String())
		case <-deadline:
			s.t.Fatalf("server not serving within 30 s:\n%s", s.log.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// writeConfig picks a fresh loopback port and writes the config of s, data_dir
// s.dir/data, to s.dir/vireo.toml; it returns that path.
func (s *faultServer) writeConfig() string {
	s.t.Helper()
	s.addr = fmt.Sprintf("127.0.0.1:%d", freePort(s.t))
	cfg := fmt.Sprintf(`domains = ["localhost"]
data_dir = %q
log_level = "info"
log_format = "json"

[c2s]
listen = [%q]
tls_listen = []
require_tls = false
registration = true
auth_failures_per_minute = 100000
# The floods here come from a few clients at full speed on purpose; shaping them is
# engine TestIntegrationSenderRate's subject.
max_rate = 0

[admin]
socket = %q

[modules.upload]
listen = "127.0.0.1:0"
[modules.proxy65]
listen = "127.0.0.1:0"
`, filepath.Join(s.dir, "data"), s.addr, filepath.Join(s.dir, "admin.sock")) + s.extra
	path := filepath.Join(s.dir, "vireo.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *faultServer) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exit
	s.cmd = nil
}

func (s *faultServer) pid() int { return s.cmd.Process.Pid }

// rssKB reads VmRSS of pid from /proc, in KiB.
func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, errors.New("no VmRSS")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// --- raw client streams ---

// xconn is a client stream over plain TCP, read with encoding/xml.
type xconn struct {
	c net.Conn
	d *xml.Decoder
}

// stz is a top-level element as the tests need it.
type stz struct {
	XMLName xml.Name
	ID      string `xml:"id,attr"`
	H       string `xml:"h,attr"` // XEP-0198 <a/>
	Type    string `xml:"type,attr"`
	From    string `xml:"from,attr"`
	Body    string `xml:"body"`
	Bind    struct {
		JID string `xml:"jid"`
	} `xml:"bind"`
	Query struct {
		Items []struct {
			JID string `xml:"jid,attr"`
		} `xml:"item"`
	} `xml:"query"`
	Inner string `xml:",innerxml"`
}

func xdial(addr string) (*xconn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &xconn{c: c}, nil
}

func (x *xconn) send(s string) error {
	x.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(x.c, s)
	return err
}

// open sends a stream header and reads the server's header and features.
func (x *xconn) open() error {
	if err := x.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"); err != nil {
		return err
	}
	x.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	x.d = xml.NewDecoder(x.c)
	for {
		tok, err := x.d.Token()
		if err != nil {
			return fmt.Errorf("stream header: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			break
		}
	}
	f, err := x.next(10 * time.Second)
	if err == nil && f.XMLName.Local != "features" {
		err = fmt.Errorf("expected features, got <%s>%s", f.XMLName.Local, f.Inner)
	}
	return err
}

// next reads the next top-level element; the end of the stream is io.EOF.
func (x *xconn) next(d time.Duration) (stz, error) {
	x.c.SetReadDeadline(time.Now().Add(d))
	for {
		tok, err := x.d.Token()
		if err != nil {
			return stz{}, err
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			var s stz
			err := x.d.DecodeElement(&s, &tk)
			if err == nil && s.XMLName.Local == "error" && s.XMLName.Space == "http://etherx.jabber.org/streams" {
				err = fmt.Errorf("stream error: %s", s.Inner)
			}
			return s, err
		case xml.EndElement:
			return stz{}, io.EOF
		}
	}
}

// register creates user over a new pre-auth stream (XEP-0077).
func register(addr, user, pass string) error {
	x, err := xdial(addr)
	if err != nil {
		return err
	}
	defer x.c.Close()
	if err := x.open(); err != nil {
		return err
	}
	if err := x.send(registerIQ("reg", user, pass)); err != nil {
		return err
	}
	s, err := x.next(10 * time.Second)
	if err != nil {
		return err
	}
	if s.Type != "result" {
		return fmt.Errorf("register %s: %s", user, s.Inner)
	}
	return nil
}

func registerIQ(id, user, pass string) string {
	return "<iq type='set' id='" + id + "'><query xmlns='jabber:iq:register'><username>" + user +
		"</username><password>" + pass + "</password></query></iq>"
}

// xlogin logs user in with SCRAM-SHA-256 and binds resource.
func xlogin(addr, user, pass, resource string) (*xconn, error) {
	x, err := xdial(addr)
	if err != nil {
		return nil, err
	}
	if err := x.login(user, pass, resource); err != nil {
		x.c.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	return x, nil
}

func (x *xconn) login(user, pass, resource string) error {
	if err := x.auth(user, pass); err != nil {
		return err
	}
	if err := x.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
		resource + "</resource></bind></iq>"); err != nil {
		return err
	}
	s, err := x.next(10 * time.Second)
	if err != nil {
		return err
	}
	if s.Type != "result" || s.Bind.JID == "" {
		return fmt.Errorf("bind: %s", s.Inner)
	}
	return nil
}

// auth opens a stream, authenticates with SCRAM-SHA-256 and opens the stream again:
// what follows is bind, or an XEP-0198 resume.
func (x *xconn) auth(user, pass string) error {
	if err := x.open(); err != nil {
		return err
	}
	n := msasl.NewClient(msasl.ScramSha256, msasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(user), []byte(pass), nil
	}))
	_, resp, err := n.Step(nil)
	if err != nil {
		return err
	}
	if err := x.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" +
		base64.StdEncoding.EncodeToString(resp) + "</auth>"); err != nil {
		return err
	}
	for done := false; !done; {
		s, err := x.next(10 * time.Second)
		if err != nil {
			return err
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Inner))
		if err != nil && s.XMLName.Local != "failure" {
			return fmt.Errorf("sasl %s: %w", s.XMLName.Local, err)
		}
		switch s.XMLName.Local {
		case "challenge":
			if _, resp, err = n.Step(data); err != nil {
				return err
			}
			if err := x.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
				base64.StdEncoding.EncodeToString(resp) + "</response>"); err != nil {
				return err
			}
		case "success":
			if len(data) > 0 {
				if _, _, err := n.Step(data); err != nil {
					return fmt.Errorf("server signature: %w", err)
				}
			}
			done = true
		default:
			return fmt.Errorf("sasl: <%s>%s", s.XMLName.Local, s.Inner)
		}
	}
	return x.open()
}

// notify wakes a waiter without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// --- scenarios ---

// testKillDuringOfflineSends: a sender pipelines batches of messages to an offline user,
// each batch followed by a ping to the recipient (the acknowledgement) and one to the
// server; the server is killed after a random number of acknowledged batches, restarted,
// and the recipient's offline messages must include every acknowledged one. So must the
// message archives (XEP-0313): the recipient's every message acknowledged by the
// recipient ping, the sender's every one acknowledged by the server ping (the sender's
// archive is written in the sender's shard, before that ping is answered).
// senderAndRecipient registers sender and rcpt in-band and logs the sender in.
func senderAndRecipient(t *testing.T, srv *faultServer) *xconn {
	t.Helper()
	for _, u := range []string{"sender", "rcpt"} {
		if err := register(srv.addr, u, u+" pw"); err != nil {
			t.Fatal(err)
		}
	}
	x, err := xlogin(srv.addr, "sender", "sender pw", "w")
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// testKillDuringOfflineSends: with sm, what acknowledges is XEP-0198: the server's <a h/>
// to the sender's <r/> after each batch (h counts the messages, the only stanzas sent),
// which lets a client forget what it covers.
func testKillDuringOfflineSends(t *testing.T, bin string, sm bool) {
	rng := faultRand(t)
	srv := newFaultServer(t, bin, "\n[router]\noffline_quota = 100000\n\n[modules.offline]\nquota_bytes = 268435456\n")
	srv.start()
	x := senderAndRecipient(t, srv)
	defer x.c.Close()
	if sm {
		if err := x.send("<enable xmlns='urn:xmpp:sm:3'/>"); err != nil {
			t.Fatal(err)
		}
		for {
			s, err := x.next(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if s.XMLName.Local == "enabled" {
				break
			}
		}
	}

	const (
		batches = 100
		per     = 20 // messages per batch
		window  = 4  // batches written ahead of the acknowledgements
	)
	killAt := int64(5 + rng.IntN(batches-2*window-10)) // acknowledged batches before the kill
	jitter := time.Duration(rng.IntN(3000)) * time.Microsecond
	pad := strings.Repeat("x", 64)

	var ackR, ackS atomic.Int64 // batches acknowledged by the recipient ping / the server ping
	var sent atomic.Int64       // batches written, or being written
	acked := make(chan struct{}, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readErr error
	wg.Add(2)
	go func() { // reader
		defer wg.Done()
		for {
			s, err := x.next(30 * time.Second)
			if err != nil {
				readErr = err
				return
			}
			if sm && s.XMLName.Local == "a" {
				if h, err := strconv.ParseInt(s.H, 10, 64); err == nil && h/per > ackR.Load() {
					ackR.Store(h / per)
					notify(acked)
				}
				continue
			}
			if s.XMLName.Local != "iq" || len(s.ID) < 3 {
				continue
			}
			b, err := strconv.ParseInt(s.ID[2:], 10, 64)
			if err != nil {
				continue
			}
			switch s.ID[:2] {
			case "r-":
				if b+1 > ackR.Load() {
					ackR.Store(b + 1)
				}
				notify(acked)
			case "s-":
				if b+1 > ackS.Load() {
					ackS.Store(b + 1)
				}
			}
		}
	}()
	go func() { // writer
		defer wg.Done()
		var sb strings.Builder
		for b := int64(0); b < batches; b++ {
			for b-ackR.Load() >= window {
				select {
				case <-acked:
				case <-stop:
					return
				}
			}
			sb.Reset()
			for i := b * per; i < (b+1)*per; i++ {
				fmt.Fprintf(&sb, "<message to='rcpt@localhost' type='chat' id='m%d'><body>m%d %s</body></message>", i, i, pad)
			}
			if sm {
				sb.WriteString("<r xmlns='urn:xmpp:sm:3'/>")
			} else {
				fmt.Fprintf(&sb, "<iq type='get' id='r-%d' to='rcpt@localhost'><ping xmlns='urn:xmpp:ping'/></iq>", b)
				fmt.Fprintf(&sb, "<iq type='get' id='s-%d'><ping xmlns='urn:xmpp:ping'/></iq>", b)
			}
			sent.Store(b + 1) // before the write: part of it may arrive when the write fails
			if x.send(sb.String()) != nil {
				return
			}
		}
	}()
	if !waitUntil(60*time.Second, func() bool { return ackR.Load() >= killAt }) {
		close(stop)
		t.Fatalf("only %d of %d batches acknowledged within 60 s", ackR.Load(), killAt)
	}
	time.Sleep(jitter)
	srv.kill()
	close(stop)
	wg.Wait() // the reader counts acks that arrived before the process died
	x.c.Close()
	nAcked, nServerAcked, nSent := ackR.Load()*per, ackS.Load()*per, sent.Load()*per
	t.Logf("killed after %d acknowledged batches (+%v): reader stopped with %v", killAt, jitter, readErr)

	srv.start()
	got := offlineMarks(t, srv, nSent)
	stored, dups := int64(len(got)), 0
	for _, c := range got {
		dups += c - 1
	}
	var lost, lostServer []int64
	for i := int64(0); i < max(nAcked, nServerAcked); i++ {
		if got[i] > 0 {
			continue
		}
		if i < nAcked {
			lost = append(lost, i)
		}
		if i < nServerAcked {
			lostServer = append(lostServer, i)
		}
	}
	t.Logf("offline messages: sent %d, acknowledged %d, stored %d (%d duplicates); acknowledged by a server ping %d, of which lost %d",
		nSent, nAcked, stored, dups, nServerAcked, len(lostServer))
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged messages lost, first %v", len(lost), lost[:min(len(lost), 10)])
	}
	if stored < nAcked {
		t.Fatalf("stored %d < acknowledged %d", stored, nAcked)
	}

	// A new stream each: rc's decoder ended with the read timeout above.
	for _, a := range []struct {
		user  string
		acked int64
	}{{"rcpt", nAcked}, {"sender", nServerAcked}} {
		x, err := xlogin(srv.addr, a.user, a.user+" pw", "a")
		if err != nil {
			t.Fatal(err)
		}
		defer x.c.Close()
		got, err := archived(x)
		if err != nil {
			t.Fatalf("%s's archive: %v", a.user, err)
		}
		var lost []int64
		for i := int64(0); i < a.acked; i++ {
			if got[i] == 0 {
				lost = append(lost, i)
			}
		}
		t.Logf("%s's archive: %d messages, acknowledged %d", a.user, len(got), a.acked)
		if len(lost) > 0 {
			t.Fatalf("%d acknowledged messages missing from %s's archive, first %v", len(lost), a.user, lost[:min(len(lost), 10)])
		}
	}
}

// testKillAfterResume: XEP-0198's <resumed h/> acknowledges, like <a h/>, what the old
// stream sent. The sender pipelines messages to an offline user on a resumable stream,
// drops its connection without asking for an ack, resumes at once on a new one, and the
// server is killed as soon as <resumed/> arrives: every message h counts must be stored.
func testKillAfterResume(t *testing.T, bin string) {
	srv := newFaultServer(t, bin, "\n[router]\noffline_quota = 100000\n\n[modules.offline]\nquota_bytes = 268435456\n")
	srv.start()
	x := senderAndRecipient(t, srv)
	if err := x.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>"); err != nil {
		t.Fatal(err)
	}
	var id string
	for id == "" {
		s, err := x.next(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if s.XMLName.Local == "enabled" {
			id = s.ID
		}
	}
	const n = 3000
	pad := strings.Repeat("x", 64)
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "<message to='rcpt@localhost' type='chat' id='m%d'><body>m%d %s</body></message>", i, i, pad)
	}
	if err := x.send(sb.String()); err != nil {
		t.Fatal(err)
	}
	x.c.Close()

	y, err := xdial(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer y.c.Close()
	if err := y.auth("sender", "sender pw"); err != nil {
		t.Fatal(err)
	}
	if err := y.send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>"); err != nil {
		t.Fatal(err)
	}
	s, err := y.next(10 * time.Second)
	if err != nil || s.XMLName.Local != "resumed" {
		t.Fatalf("resume: <%s>%s, %v", s.XMLName.Local, s.Inner, err)
	}
	srv.kill()
	h, err := strconv.ParseInt(s.H, 10, 64)
	if err != nil || h > n {
		t.Fatalf("resumed with h=%q", s.H)
	}

	srv.start()
	got := offlineMarks(t, srv, n)
	var lost []int64
	for i := range h {
		if got[i] == 0 {
			lost = append(lost, i)
		}
	}
	t.Logf("sent %d, acknowledged by <resumed/> %d, stored %d", n, h, len(got))
	if len(lost) > 0 {
		t.Fatalf("%d messages acknowledged by <resumed/> lost, first %v", len(lost), lost[:min(len(lost), 10)])
	}
}

// offlineMarks logs rcpt in, and counts the offline messages "m<n> ..." it gets by n;
// every n must be below nSent.
func offlineMarks(t *testing.T, srv *faultServer, nSent int64) map[int64]int {
	t.Helper()
	rc, err := xlogin(srv.addr, "rcpt", "rcpt pw", "r")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.c.Close()
	// Offline messages are sent in the recipient's shard when it becomes available, before
	// the answer to a ping that follows the presence.
	if err := rc.send("<presence/><iq type='get' id='done'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
		t.Fatal(err)
	}
	got := map[int64]int{}
	// Offline messages come in flow-controlled batches, before and after the ping's
	// answer: after it, read until the stream has been quiet for 2 s.
	wait, pinged := 30*time.Second, false
	for {
		s, err := rc.next(wait)
		if err != nil && pinged && strings.Contains(err.Error(), "timeout") {
			break
		}
		if err != nil {
			t.Fatalf("collecting offline messages: %v (%d so far)", err, len(got))
		}
		if s.XMLName.Local == "iq" && s.ID == "done" {
			pinged, wait = true, 2*time.Second
			continue
		}
		if s.XMLName.Local != "message" {
			continue
		}
		f := strings.Fields(s.Body)
		if len(f) != 2 || f[0][0] != 'm' {
			t.Errorf("unexpected message %s", s.Inner)
			continue
		}
		n, err := strconv.ParseInt(f[0][1:], 10, 64)
		if err != nil || n >= nSent {
			t.Errorf("message %q was never sent (%d sent)", s.Body, nSent)
		}
		got[n]++
	}
	return got
}

var (
	mamBodyRe = regexp.MustCompile(`<result xmlns='urn:xmpp:mam:2' queryid='all' id='[^']+'>.*<body>m(\d+) `)
	mamLastRe = regexp.MustCompile(`<last>([^<]+)</last>`)
)

// archived pages through x's message archive and counts the messages "m<n> ..." by n.
func archived(x *xconn) (map[int64]int, error) {
	got := map[int64]int{}
	after := ""
	for page := 0; ; page++ {
		id := fmt.Sprint("mam", page)
		if err := x.send("<iq type='set' id='" + id + "'><query xmlns='urn:xmpp:mam:2' queryid='all'>" +
			"<set xmlns='http://jabber.org/protocol/rsm'><max>250</max>" + after + "</set></query></iq>"); err != nil {
			return got, err
		}
		for {
			s, err := x.next(30 * time.Second)
			if err != nil {
				return got, err
			}
			if s.XMLName.Local == "message" {
				if m := mamBodyRe.FindStringSubmatch(s.Inner); m != nil {
					n, _ := strconv.ParseInt(m[1], 10, 64)
					got[n]++
				}
				continue
			}
			if s.XMLName.Local != "iq" || s.ID != id {
				continue
			}
			if s.Type != "result" {
				return got, fmt.Errorf("query: %s", s.Inner)
			}
			if strings.Contains(s.Inner, "complete='true'") {
				return got, nil
			}
			m := mamLastRe.FindStringSubmatch(s.Inner)
			if m == nil {
				return got, fmt.Errorf("no <last/> in %s", s.Inner)
			}
			after = "<after>" + m[1] + "</after>"
			break
		}
	}
}

// testKillDuringRosterSets: roster sets pipelined in a window; each result acknowledges its
// item. After a kill at a random point and a restart, every acknowledged item is in the
// roster.
func testKillDuringRosterSets(t *testing.T, bin string) {
	rng := faultRand(t)
	srv := newFaultServer(t, bin, "")
	srv.start()
	if err := register(srv.addr, "owner", "owner pw"); err != nil {
		t.Fatal(err)
	}
	x, err := xlogin(srv.addr, "owner", "owner pw", "w")
	if err != nil {
		t.Fatal(err)
	}
	defer x.c.Close()

	const (
		items  = 600 // under the default roster limit of 1,000
		window = 16
	)
	killAt := int64(20 + rng.IntN(items-2*window-40))
	jitter := time.Duration(rng.IntN(3000)) * time.Microsecond

	var mu sync.Mutex
	ackedSet := map[int]bool{}
	var nAcked, sent atomic.Int64
	var errs []string
	acked := make(chan struct{}, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			s, err := x.next(30 * time.Second)
			if err != nil {
				return
			}
			if s.XMLName.Local != "iq" || !strings.HasPrefix(s.ID, "ro") {
				continue
			}
			i, _ := strconv.Atoi(s.ID[2:])
			mu.Lock()
			if s.Type == "result" {
				ackedSet[i] = true
			} else {
				errs = append(errs, s.ID+": "+s.Inner)
			}
			mu.Unlock()
			nAcked.Add(1)
			notify(acked)
		}
	}()
	go func() {
		defer wg.Done()
		for i := int64(0); i < items; i++ {
			for i-nAcked.Load() >= window {
				select {
				case <-acked:
				case <-stop:
					return
				}
			}
			sent.Store(i + 1)
			if x.send(fmt.Sprintf("<iq type='set' id='ro%d'><query xmlns='jabber:iq:roster'><item jid='c%d@example.net' name='contact %d'><group>fault</group></item></query></iq>", i, i, i)) != nil {
				return
			}
		}
	}()
	if !waitUntil(60*time.Second, func() bool { return nAcked.Load() >= killAt }) {
		close(stop)
		t.Fatalf("only %d of %d roster sets answered within 60 s", nAcked.Load(), killAt)
	}
	time.Sleep(jitter)
	srv.kill()
	close(stop)
	wg.Wait()
	x.c.Close()
	if len(errs) > 0 {
		t.Fatalf("roster sets failed: %v", errs[:min(len(errs), 5)])
	}

	srv.start()
	rc, err := xlogin(srv.addr, "owner", "owner pw", "r")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.c.Close()
	if err := rc.send("<iq type='get' id='get'><query xmlns='jabber:iq:roster'/></iq>"); err != nil {
		t.Fatal(err)
	}
	var roster stz
	for roster.ID != "get" {
		if roster, err = rc.next(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	have := map[string]bool{}
	for _, it := range roster.Query.Items {
		have[it.JID] = true
	}
	var lost []int
	for i := range ackedSet {
		if !have[fmt.Sprintf("c%d@example.net", i)] {
			lost = append(lost, i)
		}
	}
	t.Logf("roster items: sent %d, acknowledged %d, stored %d (killed after %d answers +%v)",
		sent.Load(), len(ackedSet), len(have), killAt, jitter)
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged roster items lost: %v", len(lost), lost[:min(len(lost), 10)])
	}
}

// testKillDuringRegistration: several pre-auth streams register accounts one after another
// (XEP-0077); the server is killed after a random number of results, restarted, and every
// account whose registration was answered must log in with its password.
func testKillDuringRegistration(t *testing.T, bin string) {
	rng := faultRand(t)
	srv := newFaultServer(t, bin, "")
	srv.start()

	const streams = 3
	killAt := int64(4 + rng.IntN(17))
	jitter := time.Duration(rng.IntN(5000)) * time.Microsecond

	var mu sync.Mutex
	var attempted, ackedUsers, errs []string
	var nAcked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for k := range streams {
		x, err := xdial(srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer x.c.Close()
		if err := x.open(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				user := fmt.Sprintf("u%d-%d", k, i)
				mu.Lock()
				attempted = append(attempted, user)
				mu.Unlock()
				if x.send(registerIQ(user, user, user+" pw")) != nil {
					return
				}
				s, err := x.next(30 * time.Second)
				if err != nil {
					return
				}
				mu.Lock()
				if s.Type == "result" && s.ID == user {
					ackedUsers = append(ackedUsers, user)
				} else {
					errs = append(errs, user+": "+s.Inner)
				}
				mu.Unlock()
				nAcked.Add(1)
			}
		}()
	}
	if !waitUntil(60*time.Second, func() bool { return nAcked.Load() >= killAt }) {
		close(stop)
		t.Fatalf("only %d of %d registrations answered within 60 s", nAcked.Load(), killAt)
	}
	time.Sleep(jitter)
	srv.kill()
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("registrations failed: %v", errs)
	}

	srv.start()
	ackedSet := map[string]bool{}
	for _, u := range ackedUsers {
		ackedSet[u] = true
	}
	stored := 0
	var lost []string
	for _, u := range attempted {
		x, err := xlogin(srv.addr, u, u+" pw", "r")
		if err == nil {
			stored++
			x.c.Close()
		} else if ackedSet[u] {
			lost = append(lost, fmt.Sprintf("%s (%v)", u, err))
		}
	}
	t.Logf("registrations: attempted %d, acknowledged %d, can log in %d (killed after %d answers +%v)",
		len(attempted), len(ackedUsers), stored, killAt, jitter)
	if len(lost) > 0 {
		t.Fatalf("acknowledged accounts that cannot log in after the restart: %v", lost)
	}
}

// testNeverReadingClient: one client binds, becomes available and never reads again while
// senders flood it with 20,000 messages of 2 KiB. The server's RSS must stay bounded and a
// fresh client's ping must be answered during and after the flood.
func testNeverReadingClient(t *testing.T, bin string) {
	const (
		senders   = 4
		perSender = 5000
		chunk     = 50  // messages per write
		group     = 500 // messages per acknowledging ping
		bodySize  = 2048
		rssBound  = 300 << 10 // KiB
		pingBound = 5 * time.Second
	)
	srv := newFaultServer(t, bin, "")
	srv.start()
	users := []string{"sink", "probe"}
	for i := range senders {
		users = append(users, fmt.Sprintf("flood%d", i))
	}
	for _, u := range users {
		if err := register(srv.addr, u, u+" pw"); err != nil {
			t.Fatal(err)
		}
	}
	sink, err := xlogin(srv.addr, "sink", "sink pw", "r")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.c.Close()
	if err := sink.send("<presence/>"); err != nil {
		t.Fatal(err)
	}
	// From here on nobody reads the sink's socket.

	pid := srv.pid()
	base, _ := rssKB(pid)
	var peak atomic.Int64
	peak.Store(int64(base))
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if kb, err := rssKB(pid); err == nil && int64(kb) > peak.Load() {
				peak.Store(int64(kb))
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	body := strings.Repeat("z", bodySize)
	var written atomic.Int64
	var wg sync.WaitGroup
	flood := make([]error, senders)
	back := make([]drainResult, senders)
	start := time.Now()
	for i := range senders {
		x, err := xlogin(srv.addr, fmt.Sprintf("flood%d", i), fmt.Sprintf("flood%d pw", i), "f")
		if err != nil {
			t.Fatal(err)
		}
		defer x.c.Close()
		var sb strings.Builder
		for range chunk {
			sb.WriteString("<message to='sink@localhost' type='chat'><body>" + body + "</body></message>")
		}
		msgs := sb.String()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// After every group of messages, a ping to the sink's bare JID: its answer says
			// that the sink's shard has handled the group (a ping to the server would only
			// say that the sender's shard has). Senders stay at most two groups ahead, so
			// what bounces back to them (they read it all) stays well under max_outbound.
			groups := perSender / group
			acks := make(chan int, groups)
			got := make(chan drainResult, 1)
			go func() { got <- drainMarks(x.c, i, groups, acks, 120*time.Second) }()
			for k := range groups {
				if k >= 2 {
					select {
					case <-acks:
					case r := <-got:
						back[i], flood[i] = r, r.err
						return
					}
				}
				for n := 0; n < group; n += chunk {
					if err := x.send(msgs); err != nil {
						flood[i] = fmt.Errorf("write after %d messages: %w", k*group+n, err)
						return
					}
					written.Add(chunk)
				}
				if err := x.send("<iq type='get' id='" + mark(i, k) + "' to='sink@localhost'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
					flood[i] = err
					return
				}
			}
			back[i] = <-got
			flood[i] = back[i].err
		}()
	}
	// A fresh client's ping, halfway through the flood.
	waitUntil(60*time.Second, func() bool { return written.Load() >= senders*perSender/2 })
	mid, midErr := probePing(srv.addr)
	wg.Wait()
	floodTime := time.Since(start)
	after, afterErr := probePing(srv.addr)
	close(stopSampling)
	<-sampled
	if kb, err := rssKB(pid); err == nil && int64(kb) > peak.Load() {
		peak.Store(int64(kb))
	}
	t.Logf("flood of %d messages of %d B to a never-reading client in %v: RSS %d MiB before, peak %d MiB (bound %d MiB); fresh ping %v during, %v after",
		senders*perSender, bodySize, floodTime.Round(time.Millisecond), base>>10, peak.Load()>>10, rssBound>>10, mid.Round(time.Microsecond), after.Round(time.Microsecond))
	var backBytes int64
	bounced := 0
	for _, r := range back {
		backBytes += r.bytes
		bounced += r.errors
	}
	// What reached the sink before the server gave up on it, read only now.
	sink.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	sinkGot, sinkErr := io.ReadAll(sink.c)
	how := "still open"
	if sinkErr == nil || errors.Is(sinkErr, syscall.ECONNRESET) {
		how = "closed"
	}
	if bytes.Contains(sinkGot, []byte("policy-violation")) {
		how += " with policy-violation"
	}
	t.Logf("senders got back %d stanza errors (%d KiB); the sink's stream: %s, %d KiB read afterwards",
		bounced, backBytes>>10, how, len(sinkGot)>>10)
	for i, err := range flood {
		if err != nil {
			t.Errorf("sender %d: %v", i, err)
		}
	}
	if midErr != nil || mid > pingBound {
		t.Errorf("ping during the flood: %v after %v", midErr, mid)
	}
	if afterErr != nil || after > pingBound {
		t.Errorf("ping after the flood: %v after %v", afterErr, after)
	}
	if peak.Load() > rssBound {
		t.Errorf("peak RSS %d MiB is over the bound of %d MiB", peak.Load()>>10, rssBound>>10)
	}
}

// drainResult is what one flooding sender got back.
type drainResult struct {
	bytes  int64
	errors int // stanza errors (bounced messages)
	err    error
}

// mark is the id of sender i's ping after its group k.
func mark(i, k int) string { return fmt.Sprintf("w%d.%04d.", i, k) }

// drainMarks reads c, counting and discarding, and reports on acks each of sender i's
// ping answers in turn, until all groups are answered.
func drainMarks(c net.Conn, i, groups int, acks chan<- int, d time.Duration) (r drainResult) {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64<<10)
	var keep []byte
	next := 0
	for {
		n, err := c.Read(buf)
		r.bytes += int64(n)
		win := append(keep, buf[:n]...)
		r.errors += bytes.Count(win[len(keep):], []byte("<error "))
		for next < groups {
			j := bytes.Index(win, []byte(mark(i, next)))
			if j < 0 {
				break
			}
			acks <- next
			next++
			win = win[j:]
		}
		if next == groups {
			return r
		}
		if err != nil {
			r.err = fmt.Errorf("no answer to %s: %w", mark(i, next), err)
			return r
		}
		keep = append(keep[:0], win[max(0, len(win)-16):]...)
	}
}

// probePing logs a fresh client in and times one ping to the server.
func probePing(addr string) (time.Duration, error) {
	start := time.Now()
	x, err := xlogin(addr, "probe", "probe pw", fmt.Sprintf("p%d", time.Now().UnixNano()))
	if err != nil {
		return time.Since(start), err
	}
	defer x.c.Close()
	if err := x.send("<iq type='get' id='probe'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
		return time.Since(start), err
	}
	for {
		s, err := x.next(30 * time.Second)
		if err != nil {
			return time.Since(start), err
		}
		if s.ID == "probe" {
			return time.Since(start), nil
		}
	}
}

// testOfflineReplayOverOutboundCap: more stored offline than c2s.max_outbound (1 MiB), read
// at full speed. Nothing may be lost however many logins it takes; the number of logins
// is reported. Offline delivery is flow-controlled, so it takes one login.
func testOfflineReplayOverOutboundCap(t *testing.T, bin string) {
	const (
		n        = 1000 // the default offline quota
		bodySize = 8000 // 8 MB in all, within the default 10 MiB offline quota
	)
	srv := newFaultServer(t, bin, "")
	srv.start()
	x := senderAndRecipient(t, srv)
	defer x.c.Close()
	pad := strings.Repeat("y", bodySize)
	// In rounds of 100, each closed by a ping through the recipient's shard: a client that
	// writes megabytes at once is held back by the server (bounded), not this test's subject.
	for r := 0; r < n; r += 100 {
		var sb strings.Builder
		for i := r; i < r+100 && i < n; i++ {
			fmt.Fprintf(&sb, "<message to='rcpt@localhost' type='chat' id='m%d'><body>m%d %s</body></message>", i, i, pad)
		}
		id := fmt.Sprintf("fin%d", r)
		sb.WriteString("<iq type='get' id='" + id + "' to='rcpt@localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
		if err := x.send(sb.String()); err != nil {
			t.Fatal(err)
		}
		for {
			s, err := x.next(30 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if s.ID == id {
				break
			}
			if s.XMLName.Local == "message" && s.Type == "error" {
				t.Fatalf("message bounced: %s", s.Inner)
			}
		}
	}
	got := map[int]int{}
	var rounds []string
	for login := 1; ; login++ {
		if login > 30 {
			t.Fatalf("still receiving after 30 logins: %v", rounds)
		}
		rc, err := xlogin(srv.addr, "rcpt", "rcpt pw", "r")
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.send("<presence/><iq type='get' id='done'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
			t.Fatal(err)
		}
		// Offline messages come in flow-controlled batches, after and around the ping's
		// answer: read until all have come or the stream is quiet for 3 s.
		k, end := 0, "complete"
		for len(got) < n {
			s, err := rc.next(3 * time.Second)
			if err != nil && strings.Contains(err.Error(), "timeout") {
				end = "quiet"
				break
			}
			if err != nil {
				end = err.Error()
				if i := strings.Index(end, "<"); i >= 0 { // a stream error: its condition
					end = strings.FieldsFunc(end[i+1:], func(r rune) bool { return r == ' ' || r == '/' || r == '>' })[0]
				}
				break
			}
			if s.ID == "done" {
				continue
			}
			if f := strings.Fields(s.Body); s.XMLName.Local == "message" && len(f) == 2 {
				v, err := strconv.Atoi(f[0][1:])
				if err != nil || v >= n {
					t.Fatalf("unexpected message %q", f[0])
				}
				got[v]++
				k++
			}
		}
		rc.c.Close()
		rounds = append(rounds, fmt.Sprintf("%d (%s)", k, end))
		if end == "complete" {
			break
		}
	}
	t.Logf("offline replay of %d messages of %d B: %d logins, messages per login %v", n, bodySize, len(rounds), rounds)
	if len(got) != n {
		// Offline messages are deleted only once written (flow-controlled batches), so a
		// login cut short loses nothing.
		t.Fatalf("delivered %d distinct messages of %d stored (%d lost)", len(got), n, n-len(got))
	}
	if len(rounds) != 1 {
		t.Fatalf("the backlog took %d logins; under flow control it must take one", len(rounds))
	}
}
