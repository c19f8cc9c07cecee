package tlsconn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"github.com/vireo-im/vireo/engine/tlsrec"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func testCert(t testing.TB, rsaKey bool) tls.Certificate {
	t.Helper()
	var priv any
	var pub any
	if rsaKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
}

// loop plays the event loop: it reads what the client sent from the wire in random chunks
// and hands them to Process, collecting the plaintext.
type loop struct {
	srv    *Conn
	wire   net.Conn
	hsDone chan error
	plain  bytes.Buffer
	err    error // what Process returned, once it failed
	mu     sync.Mutex
	maxCh  int
	tamper int // flip a bit in the tamper-th byte read after the handshake (1-based; 0: never)
}

func newLoop(t testing.TB, cfg *tls.Config, maxChunk int) (*loop, net.Conn) {
	client, wire := net.Pipe()
	return serve(t, cfg, wire, maxChunk), client
}

// serve runs a server-side Conn over wire, which delivers the client's bytes.
func serve(t testing.TB, cfg *tls.Config, wire net.Conn, maxChunk int) *loop {
	l := &loop{wire: wire, hsDone: make(chan error, 2), maxCh: maxChunk}
	out := make(chan []byte, 1024)
	go func() {
		for b := range out {
			wire.Write(b)
		}
	}()
	var wmu sync.Mutex
	closed := false
	t.Cleanup(func() {
		wmu.Lock()
		closed = true
		close(out)
		wmu.Unlock()
	})
	l.srv = Server(cfg, func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		if closed {
			return net.ErrClosed // the loop outlived its test (a close_notify at the end)
		}
		out <- append([]byte(nil), b...) // the engine copies too, and keeps order
		return nil
	}, func(err error) { l.hsDone <- err })
	return l
}

func (l *loop) run(t testing.TB) {
	buf := make([]byte, 64<<10)
	seen := 0
	for {
		n, err := l.wire.Read(buf[:1+mrand.IntN(l.maxCh)])
		if n > 0 {
			if l.tamper > 0 && l.srv.HandshakeComplete() {
				if seen < l.tamper && seen+n >= l.tamper {
					buf[l.tamper-seen-1] ^= 0x40
				}
				seen += n
			}
			perr := l.srv.Process(buf[:n], func(p []byte) {
				l.mu.Lock()
				l.plain.Write(p)
				l.mu.Unlock()
			})
			l.srv.Release()
			if perr != nil {
				l.mu.Lock()
				l.err = perr
				l.mu.Unlock()
				l.srv.Close()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (l *loop) got() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.plain.String()
}

func (l *loop) failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// waitFor polls f for up to 10 s.
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !f(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ver     uint16
		rsa     bool
		chunk   int
		prepare bool
	}{
		{"tls13-ecdsa-bytewise", tls.VersionTLS13, false, 1, true},
		{"tls13-ecdsa-random", tls.VersionTLS13, false, 700, true},
		{"tls13-unprepared", tls.VersionTLS13, false, 700, false},
		{"tls12-ecdsa-random", tls.VersionTLS12, false, 300, true},
		{"tls12-rsa-random", tls.VersionTLS12, true, 5000, true},
		{"tls13-rsa-large", tls.VersionTLS13, true, 40000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := testCert(t, tc.rsa)
			cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tc.ver, MaxVersion: tc.ver}
			if tc.prepare {
				cfg = Prepare(cfg)
			}
			l, client := newLoop(t, cfg, tc.chunk)
			go l.run(t)
			ccfg := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", MinVersion: tc.ver, MaxVersion: tc.ver}
			cc := tls.Client(client, ccfg)
			if err := cc.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-l.hsDone; err != nil {
				t.Fatalf("server handshake: %v", err)
			}
			info := l.srv.Info()
			if info.Version != tc.ver {
				t.Fatalf("version %x", info.Version)
			}
			if want := tc.ver == tls.VersionTLS13 && tc.prepare; info.Records != want {
				t.Fatalf("on the record layer: %v, want %v", info.Records, want)
			}
			km, ok := l.srv.Exporter()
			ccs := cc.ConnectionState()
			ckm, _ := ccs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
			if !ok || !bytes.Equal(km, ckm) {
				t.Fatal("exporter mismatch")
			}
			// Small writes, then a 16 KiB record, then a 40 KiB write spanning records.
			var want bytes.Buffer
			for i := 0; i < 50; i++ {
				s := fmt.Sprintf("<message id='%d'/>", i)
				want.WriteString(s)
				cc.Write([]byte(s))
			}
			big := bytes.Repeat([]byte("x"), 56<<10)
			want.Write(big)
			cc.Write(big)
			waitFor(t, "the client's bytes", func() bool { return l.got() == want.String() })
			l.srv.Idle()
			l.srv.Idle() // the cipher state goes, and comes back on use
			// Server to client, from several goroutines at once, and one write larger
			// than a record.
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 25; i++ {
						if _, err := l.srv.Write([]byte("<r/>")); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			got := make([]byte, 400)
			cc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(cc, got); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if string(got) != string(bytes.Repeat([]byte("<r/>"), 100)) {
				t.Fatalf("client got %q", got)
			}
			go l.srv.Write(big)
			gotBig := make([]byte, len(big))
			if _, err := io.ReadFull(cc, gotBig); err != nil || !bytes.Equal(gotBig, big) {
				t.Fatalf("large write: %v", err)
			}
			// close_notify from the client ends Process with EOF.
			cc.CloseWrite()
			waitFor(t, "EOF", func() bool { return l.failed() != nil })
			if err := l.failed(); err != io.EOF {
				t.Fatalf("after close_notify Process = %v, want EOF", err)
			}
			client.Close()
		})
	}
}

// TestResumption: a client that kept the session ticket skips the full handshake, and the
// resumed connection (which gets a new ticket under its application key) moves to the record
// layer with the right sequence numbers.
func TestResumption(t *testing.T) {
	cfg := Prepare(&tls.Config{Certificates: []tls.Certificate{testCert(t, false)}})
	cache := tls.NewLRUClientSessionCache(4)
	for i, wantResume := range []bool{false, true, true} {
		l, client := newLoop(t, cfg, 500)
		go l.run(t)
		cc := tls.Client(client, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", ClientSessionCache: cache})
		if err := cc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-l.hsDone; err != nil {
			t.Fatal(err)
		}
		// The ticket arrives with the first read; exchange data both ways.
		cc.Write([]byte("ping"))
		waitFor(t, "ping", func() bool { return l.got() == "ping" })
		l.srv.Write([]byte("pong"))
		b := make([]byte, 4)
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(cc, b); err != nil || string(b) != "pong" {
			t.Fatalf("connection %d: %q %v", i, b, err)
		}
		info := l.srv.Info()
		if info.DidResume != wantResume || cc.ConnectionState().DidResume != wantResume || !info.Records {
			t.Fatalf("connection %d: resumed %v (client %v), records %v", i, info.DidResume, cc.ConnectionState().DidResume, info.Records)
		}
		cc.Close()
		client.Close()
	}
}

// TestServerKeyUpdate: the server updates its key and asks the client (Go's crypto/tls) to
// update too; the client's update, and data under both new keys, go through.
func TestServerKeyUpdate(t *testing.T) {
	cfg := Prepare(&tls.Config{Certificates: []tls.Certificate{testCert(t, false)}})
	l, client := newLoop(t, cfg, 300)
	go l.run(t)
	cc := tls.Client(client, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := cc.Handshake(); err != nil {
		t.Fatal(err)
	}
	<-l.hsDone
	for i := 0; i < 3; i++ {
		if err := l.srv.rec.KeyUpdate(true); err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("after update %d", i)
		l.srv.Write([]byte(msg))
		b := make([]byte, len(msg))
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(cc, b); err != nil || string(b) != msg {
			t.Fatalf("%q %v", b, err)
		}
		// Go's client answered the request with its own KeyUpdate before this.
		cc.Write([]byte(msg))
		waitFor(t, msg, func() bool { return strings.HasSuffix(l.got(), msg) })
	}
	if r, _ := l.srv.rec.Seqs(); r != 1 {
		t.Fatalf("client records under its newest key = %d, want 1", r)
	}
}

// TestTamperedRecord: a record changed on the wire closes the connection with bad_record_mac.
func TestTamperedRecord(t *testing.T) {
	cfg := Prepare(&tls.Config{Certificates: []tls.Certificate{testCert(t, false)}})
	l, client := newLoop(t, cfg, 64)
	l.tamper = 30
	go l.run(t)
	cc := tls.Client(client, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := cc.Handshake(); err != nil {
		t.Fatal(err)
	}
	<-l.hsDone
	cc.Write(bytes.Repeat([]byte("a"), 100))
	waitFor(t, "the server to refuse the record", func() bool { return l.failed() != nil })
	if err := l.failed(); err != tlsrec.AlertBadRecordMAC {
		t.Fatalf("server: %v", err)
	}
	cc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := cc.Read(make([]byte, 10))
	if err == nil || !strings.Contains(err.Error(), "bad record MAC") {
		t.Fatalf("client read %v, want the bad_record_mac alert", err)
	}
	if l.got() != "" {
		t.Fatalf("tampered plaintext delivered: %q", l.got())
	}
}

func TestHandshakeFailureReportsOnce(t *testing.T) {
	cert := testCert(t, false)
	var calls int
	var mu sync.Mutex
	done := make(chan struct{}, 2)
	c := Server(&tls.Config{Certificates: []tls.Certificate{cert}}, func([]byte) error { return nil }, func(err error) {
		mu.Lock()
		calls++
		mu.Unlock()
		if err == nil {
			t.Error("garbage handshake succeeded")
		}
		done <- struct{}{}
	})
	c.Feed([]byte("<stream:stream xmlns='jabber:client'>this is not a client hello"))
	<-done
	c.Close()
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Fatalf("done called %d times", calls)
	}
	if c.HandshakeComplete() {
		t.Fatal("handshake complete after garbage")
	}
}

func TestCloseStopsHandshake(t *testing.T) {
	cert := testCert(t, false)
	done := make(chan error, 1)
	c := Server(&tls.Config{Certificates: []tls.Certificate{cert}}, func([]byte) error { return nil }, func(err error) { done <- err })
	before := runtime.NumGoroutine()
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("closed handshake reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("handshake goroutine still running after Close (goroutines %d)", before)
	}
}
