package tlsconn

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a process's output.
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

// TestOpenSSLInterop runs OpenSSL's s_client against the record layer with each TLS 1.3
// suite: data both ways, a record of the maximum size, KeyUpdate sent by OpenSSL with and
// without the request flag, KeyUpdate sent by us with the flag, and close_notify.
func TestOpenSSLInterop(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed (CI installs it: apt-get install openssl)")
		}
		t.Skip("openssl not installed")
	}
	cfg := Prepare(&tls.Config{Certificates: []tls.Certificate{testCert(t, false)}})
	for _, suite := range []struct {
		name string
		id   uint16
	}{
		{"TLS_AES_128_GCM_SHA256", tls.TLS_AES_128_GCM_SHA256},
		{"TLS_AES_256_GCM_SHA384", tls.TLS_AES_256_GCM_SHA384},
		{"TLS_CHACHA20_POLY1305_SHA256", tls.TLS_CHACHA20_POLY1305_SHA256},
	} {
		t.Run(suite.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cmd := exec.Command(bin, "s_client", "-connect", ln.Addr().String(), "-tls1_3",
				"-ciphersuites", suite.name, "-servername", "localhost", "-no_ign_eof")
			stdin, _ := cmd.StdinPipe()
			var out lockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
			conn, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			l := serve(t, cfg, conn, 4096)
			go l.run(t)
			if err := <-l.hsDone; err != nil {
				t.Fatalf("handshake: %v\n%s", err, out.String())
			}
			if info := l.srv.Info(); info.CipherSuite != suite.id || !info.Records {
				t.Fatalf("suite %#04x, record layer %v", info.CipherSuite, info.Records)
			}
			clientSays := func(line string) {
				t.Helper()
				before := len(l.got())
				io.WriteString(stdin, line+"\n")
				waitFor(t, "server to read "+line[:min(len(line), 20)], func() bool {
					return strings.Contains(l.got()[before:], line+"\n")
				})
			}
			serverSays := func(line string) {
				t.Helper()
				if _, err := l.srv.Write([]byte(line + "\n")); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "s_client to print "+line, func() bool { return strings.Contains(out.String(), line) })
			}
			clientSays("hello from openssl")
			serverSays("hello from vireo")
			clientSays(strings.Repeat("m", 20000)) // a record of 2^14 bytes and the rest
			big := strings.Repeat("v", 17000)
			serverSays(big)
			for i, cmd := range []string{"K", "k", ""} {
				if cmd != "" {
					// s_client: KeyUpdate, requesting ours (K) or not (k). It takes a whole
					// read of its stdin as the command, so wait for it before more input.
					n := strings.Count(out.String(), "KEYUPDATE")
					io.WriteString(stdin, cmd+"\n")
					waitFor(t, "s_client's KeyUpdate", func() bool { return strings.Count(out.String(), "KEYUPDATE") > n })
				} else if err := l.srv.rec.KeyUpdate(true); err != nil {
					t.Fatal(err)
				}
				clientSays(fmt.Sprintf("client after update %d", i))
				serverSays(fmt.Sprintf("server after update %d", i))
			}
			stdin.Close() // s_client sends close_notify and leaves
			waitFor(t, "close_notify", func() bool { return l.failed() != nil })
			if err := l.failed(); err != io.EOF {
				t.Fatalf("after close_notify: %v\n%s", err, out.String())
			}
			if strings.Contains(out.String(), "alert") {
				t.Fatalf("s_client saw an alert:\n%s", out.String())
			}
		})
	}
}
