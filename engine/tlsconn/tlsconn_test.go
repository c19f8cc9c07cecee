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
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"runtime"
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

// loop plays the event loop: it reads what the client sent from the wire in random chunks,
// feeds it, and reads plaintext whenever the handshake is done.
type loop struct {
	srv    *Conn
	wire   net.Conn
	hsDone chan error
	plain  bytes.Buffer
	mu     sync.Mutex
	maxCh  int
}

func newLoop(t *testing.T, cfg *tls.Config, maxChunk int) (*loop, net.Conn) {
	client, wire := net.Pipe()
	l := &loop{wire: wire, hsDone: make(chan error, 2), maxCh: maxChunk}
	out := make(chan []byte, 1024)
	go func() {
		for b := range out {
			wire.Write(b)
		}
	}()
	t.Cleanup(func() { close(out) })
	var wmu sync.Mutex
	l.srv = Server(cfg, func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		out <- append([]byte(nil), b...) // the engine copies too, and keeps order
		return nil
	}, func(err error) { l.hsDone <- err })
	return l, client
}

func (l *loop) run(t *testing.T) {
	buf := make([]byte, 64<<10)
	p := make([]byte, 4096)
	for {
		n, err := l.wire.Read(buf[:1+mrand.IntN(l.maxCh)])
		if n > 0 {
			l.srv.Feed(buf[:n])
			for l.srv.HandshakeComplete() {
				m, rerr := l.srv.Read(p)
				l.mu.Lock()
				l.plain.Write(p[:m])
				l.mu.Unlock()
				if rerr != nil || m == 0 {
					break
				}
			}
			if l.srv.Buffered() == 0 {
				l.srv.Release()
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

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ver   uint16
		rsa   bool
		chunk int
	}{
		{"tls13-ecdsa-bytewise", tls.VersionTLS13, false, 1},
		{"tls13-ecdsa-random", tls.VersionTLS13, false, 700},
		{"tls12-ecdsa-random", tls.VersionTLS12, false, 300},
		{"tls12-rsa-random", tls.VersionTLS12, true, 5000},
		{"tls13-rsa-large", tls.VersionTLS13, true, 40000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := testCert(t, tc.rsa)
			cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tc.ver, MaxVersion: tc.ver}
			l, client := newLoop(t, cfg, tc.chunk)
			go l.run(t)
			cc := tls.Client(client, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", MinVersion: tc.ver, MaxVersion: tc.ver})
			if err := cc.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-l.hsDone; err != nil {
				t.Fatalf("server handshake: %v", err)
			}
			if v := l.srv.ConnectionState().Version; v != tc.ver {
				t.Fatalf("version %x", v)
			}
			scs, ccs := l.srv.ConnectionState(), cc.ConnectionState()
			km, err := scs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
			ckm, _ := ccs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
			if err != nil || !bytes.Equal(km, ckm) {
				t.Fatalf("exporter mismatch: %v", err)
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
			deadline := time.Now().Add(10 * time.Second)
			for l.got() != want.String() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if g := l.got(); g != want.String() {
				t.Fatalf("server got %d bytes, want %d", len(g), want.Len())
			}
			// Server to client, from several goroutines at once.
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
			// close_notify from the client ends Read with EOF.
			cc.CloseWrite()
			deadline = time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := l.srv.Read(make([]byte, 10)); err == io.EOF {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := l.srv.Read(make([]byte, 10)); err != io.EOF {
				t.Fatalf("after close_notify Read = %v, want EOF", err)
			}
			l.srv.Close()
			client.Close()
		})
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
