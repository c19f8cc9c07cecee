package proxy65

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/module"
)

// TestHash checks Hash against the two DST.ADDR values XEP-0260 §2.2 gives (initiator's
// and responder's proxy candidates).
func TestHash(t *testing.T) {
	for _, c := range []struct{ sid, req, target, want string }{
		{"vj3hs98y", "romeo@montague.lit/orchard", "juliet@capulet.lit/balcony", "972b7bf47291ca609517f67f86b5081086052dad"},
		{"vj3hs98y", "juliet@capulet.lit/balcony", "romeo@montague.lit/orchard", "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba"},
	} {
		if got := Hash(c.sid, c.req, c.target); got != c.want {
			t.Errorf("Hash(%q, %q, %q) = %s, want %s", c.sid, c.req, c.target, got, c.want)
		}
	}
}

const hash = "972b7bf47291ca609517f67f86b5081086052dad"

func connectRequest(cmd, atyp byte, addr string) []byte {
	b := append([]byte{5, cmd, 0, atyp, byte(len(addr))}, addr...)
	return append(b, 0, 0)
}

func TestReadRequest(t *testing.T) {
	for _, c := range []struct {
		name  string
		in    []byte
		hash  string
		reply byte // expected errSocks reply, 0 for none
		fail  bool
	}{
		{"hash", connectRequest(1, 3, hash), hash, 0, false},
		{"upper case", connectRequest(1, 3, strings.ToUpper(hash)), hash, 0, false},
		{"port not 0", append(connectRequest(1, 3, hash)[:5+40], 0x1f, 0x90), hash, 0, false},
		{"SOCKS4", append([]byte{4}, connectRequest(1, 3, hash)[1:]...), "", 0, true},
		{"BIND", connectRequest(2, 3, hash), "", replyBadCommand, true},
		{"UDP ASSOCIATE", connectRequest(3, 3, hash), "", replyBadCommand, true},
		{"IPv4", []byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 80}, "", replyBadAddress, true},
		{"short name", connectRequest(1, 3, "example.org"), "", replyBadAddress, true},
		{"not hex", connectRequest(1, 3, strings.Repeat("g", 40)), "", replyBadAddress, true},
		{"truncated", connectRequest(1, 3, hash)[:20], "", 0, true},
		{"empty", nil, "", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := readRequest(bytes.NewReader(c.in))
			if c.fail {
				if err == nil {
					t.Fatalf("accepted: %+v", req)
				}
				var se *errSocks
				if c.reply != 0 && (!errors.As(err, &se) || se.reply != c.reply) {
					t.Fatalf("error %v, want SOCKS reply %d", err, c.reply)
				}
				return
			}
			if err != nil || req.hash != c.hash {
				t.Fatalf("got %q, %v; want %q", req.hash, err, c.hash)
			}
			// The reply repeats DST.ADDR and DST.PORT as sent.
			r := reply(replySucceeded, &req)
			if !bytes.Equal(r[:5], []byte{5, 0, 0, 3, 40}) || !bytes.Equal(r[5:], c.in[5:]) {
				t.Fatalf("reply %v does not repeat the request %v", r, c.in)
			}
		})
	}
}

type rw struct {
	io.Reader
	out bytes.Buffer
}

func (r *rw) Write(b []byte) (int, error) { return r.out.Write(b) }

func TestGreet(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		out  []byte
		ok   bool
	}{
		{"no authentication", []byte{5, 1, 0}, []byte{5, 0}, true},
		{"among others", []byte{5, 3, 2, 1, 0}, []byte{5, 0}, true},
		{"password only", []byte{5, 1, 2}, []byte{5, 0xff}, false},
		{"no methods", []byte{5, 0}, []byte{5, 0xff}, false},
		{"SOCKS4", []byte{4, 1, 0}, nil, false},
		{"truncated", []byte{5, 3, 0}, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := &rw{Reader: bytes.NewReader(c.in)}
			err := greet(x)
			if (err == nil) != c.ok || !bytes.Equal(x.out.Bytes(), c.out) {
				t.Fatalf("err %v, wrote %v; want ok=%v and %v", err, x.out.Bytes(), c.ok, c.out)
			}
		})
	}
}

// FuzzReadRequest: any input is an error or a lower-case hexadecimal stream hash that
// the reply repeats as sent; never a panic.
func FuzzReadRequest(f *testing.F) {
	f.Add(connectRequest(1, 3, hash))
	f.Add(connectRequest(1, 3, strings.ToUpper(hash)))
	f.Add([]byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 1, 0, 3, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := readRequest(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(req.hash) != HashLen || strings.ToLower(req.hash) != req.hash || !strings.EqualFold(req.hash, string(in[5:5+HashLen])) {
			t.Fatalf("hash %q from %q", req.hash, in)
		}
		if r := reply(replySucceeded, &req); !bytes.Equal(r[5:], in[5:5+HashLen+2]) {
			t.Fatalf("reply %q for %q", r, in)
		}
	})
}

func TestConfig(t *testing.T) {
	c := Config{}
	if err := c.normalize(); err != nil || c.Subdomain != "proxy" || c.Listen != ":7777" || c.MaxStreams != DefaultMaxStreams ||
		c.MaxStreamsPerUser != DefaultMaxStreamsPerUser || c.MaxPending != DefaultMaxPending {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	for _, bad := range []Config{{Port: 70000}, {MaxStreams: -1}, {MaxRate: -5}} {
		if err := bad.normalize(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestCopyPaced: with max_rate, a stream moves no faster than the rate (the bound is a
// floor on the time taken, which pacing guarantees, not a measurement of speed), and
// every byte arrives.
func TestCopyPaced(t *testing.T) {
	m := &Mod{stop: make(chan struct{})}
	a, b := net.Pipe()
	payload := bytes.Repeat([]byte("x"), 48<<10)
	go func() {
		a.Write(payload)
		a.Close()
	}()
	var out bytes.Buffer
	start := time.Now()
	if n, err := m.copyPaced(&pipeWriter{&out}, b, 32<<10, nil); err != nil || n != int64(len(payload)) {
		t.Fatalf("copied %d, %v", n, err)
	}
	if took := time.Since(start); took < 1400*time.Millisecond {
		t.Fatalf("48 KiB at 32 KiB/s took %v", took)
	}
	if !bytes.Equal(out.Bytes(), payload) {
		t.Fatalf("copied %d bytes, want %d", out.Len(), len(payload))
	}
}

type pipeWriter struct{ b *bytes.Buffer }

func (p *pipeWriter) Read([]byte) (int, error)         { return 0, io.EOF }
func (p *pipeWriter) Write(b []byte) (int, error)      { return p.b.Write(b) }
func (p *pipeWriter) Close() error                     { return nil }
func (p *pipeWriter) LocalAddr() net.Addr              { return nil }
func (p *pipeWriter) RemoteAddr() net.Addr             { return nil }
func (p *pipeWriter) SetDeadline(time.Time) error      { return nil }
func (p *pipeWriter) SetReadDeadline(time.Time) error  { return nil }
func (p *pipeWriter) SetWriteDeadline(time.Time) error { return nil }

// relayPair runs m's listener and returns the two ends of an activated stream.
func relayPair(tb testing.TB, m *Mod) (net.Conn, net.Conn) {
	tb.Helper()
	a, b, _ := relayPairOf(tb, m)
	return a, b
}

// relayPairOf is relayPair that also returns the pair the stream was activated from.
func relayPairOf(tb testing.TB, m *Mod) (net.Conn, net.Conn, *pair) {
	tb.Helper()
	apply, err := m.Reconfigure(module.Reconfig{Decode: func(any) error { return nil }})
	if err != nil {
		tb.Fatal(err)
	}
	apply()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	m.ln, m.stop = ln, make(chan struct{})
	m.mu.pending, m.mu.perAddr = map[string]*pair{}, map[string]int{}
	m.mu.active, m.mu.perUser = map[*stream]struct{}{}, map[string]int{}
	m.wg.Add(1)
	go m.acceptLoop()
	tb.Cleanup(func() { m.Cleanup() })
	h := Hash("sid", "a@example.org/r", "b@example.org/r")
	var ends [2]net.Conn
	for i := range ends {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		c.Write(append([]byte{5, 1, 0}, connectRequest(1, 3, h)...))
		rep := make([]byte, 2+7+HashLen)
		if _, err := io.ReadFull(c, rep); err != nil || rep[3] != replySucceeded {
			tb.Fatalf("CONNECT: %v %v", rep, err)
		}
		ends[i] = c
	}
	var p *pair
	for {
		m.mu.Lock()
		p = m.mu.pending[h]
		m.mu.Unlock()
		if serr := m.activate([2]string{h, h}, "a@example.org", m.conf()); serr == nil {
			break
		}
		time.Sleep(time.Millisecond) // the second connection is still being registered
	}
	return ends[0], ends[1], p
}

// TestExpireAfterActivate: the pending pair's timer can fire while activate holds the
// lock (Timer.Stop does not wait for a callback that started); the expiry that then runs
// must leave the activated stream alone: not close it, not uncount its connections
// again, not clear the pair under the relay starting on it (which crashed the process).
func TestExpireAfterActivate(t *testing.T) {
	m := &Mod{}
	a, b, p := relayPairOf(t, m)
	m.expire(p) // the callback that lost the race to activate's lock
	m.mu.Lock()
	waiting := m.mu.waiting
	m.mu.Unlock()
	if waiting != 0 {
		t.Fatalf("waiting = %d after the activated pair expired, want 0", waiting)
	}
	a.Write([]byte("ping"))
	buf := make([]byte, 4)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("stream after the expiry: %q %v", buf, err)
	}
}

// BenchmarkRelay moves 64 KiB chunks through an activated stream, one direction: what a
// file transfer costs the proxy (splice(2) between the sockets, no copy in user space).
func BenchmarkRelay(b *testing.B) {
	m := &Mod{}
	src, dst := relayPair(b, m)
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		want := int64(b.N) * int64(len(chunk))
		for got := int64(0); got < want; {
			n, err := dst.Read(buf)
			got += int64(n)
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	for range b.N {
		if _, err := src.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// TestHostSettings: a host's [vhosts."<host>".modules.proxy65] table gives proxy.<host>
// its own streamhost address and port, remote users and streams per user; other hosts'
// services keep the server-wide ones; what the listener shares cannot differ per host.
func TestHostSettings(t *testing.T) {
	m := &Mod{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	m.ln = ln
	host := func(set func(*Config)) module.Reconfig {
		return module.Reconfig{Decode: func(any) error { return nil }, Hosts: []string{"corp.example"},
			DecodeHost: func(_ string, v any) error { set(v.(*Config)); return nil }}
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Listen = "127.0.0.1:7778" },
		func(c *Config) { c.MaxStreams = 3 },
		func(c *Config) { c.Subdomain = "files" },
	} {
		if _, err := m.Reconfigure(host(bad)); err == nil || !strings.Contains(err.Error(), "server-wide") {
			t.Fatalf("a server-wide key in a host's table: %v", err)
		}
	}
	apply, err := m.Reconfigure(host(func(c *Config) {
		c.Address, c.Port, c.AllowRemote, c.MaxStreamsPerUser = "192.0.2.7", 7777, true, 1
	}))
	if err != nil {
		t.Fatal(err)
	}
	apply()
	svc := func(h string) *service { return &service{m: m, host: h, domain: "proxy." + h} }
	corp, other := svc("corp.example"), svc("example.org")
	if got := string(corp.streamhost()); !strings.Contains(got, "host='192.0.2.7' port='7777'") && !strings.Contains(got, `host="192.0.2.7" port="7777"`) {
		t.Fatalf("corp's streamhost: %s", got)
	}
	if got := string(other.streamhost()); !strings.Contains(got, "proxy.example.org") || strings.Contains(got, "192.0.2.7") {
		t.Fatalf("the other host's streamhost: %s", got)
	}
	if !corp.conf().AllowRemote || other.conf().AllowRemote {
		t.Fatal("allow_remote is not the host's own")
	}
	if corp.conf().MaxStreamsPerUser != 1 || other.conf().MaxStreamsPerUser != DefaultMaxStreamsPerUser {
		t.Fatalf("streams per user: corp %d, other %d", corp.conf().MaxStreamsPerUser, other.conf().MaxStreamsPerUser)
	}
}

// TestRelayIdle: an active stream on which nothing moves either way for the idle time is
// closed (it held its slots until a restart), while a one-way transfer whose other
// direction stays quiet for longer than that goes on.
func TestRelayIdle(t *testing.T) {
	for _, rate := range []int64{0, 1 << 20} {
		m := &Mod{idle: 2 * time.Second}
		a, b, _ := relayPairOf(t, m)
		if rate > 0 {
			m.mu.Lock()
			for s := range m.mu.active {
				s.rate = rate
			}
			m.mu.Unlock()
		}
		// One way, a byte every 100 ms for two idle times and more: b never sends.
		buf := make([]byte, 1)
		for range 50 {
			if _, err := a.Write([]byte("x")); err != nil {
				t.Fatalf("rate %d: write during the one-way transfer: %v", rate, err)
			}
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(b, buf); err != nil {
				t.Fatalf("rate %d: the one-way transfer was cut: %v", rate, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Then silence: the stream ends, and its slot with it.
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := b.Read(buf); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("rate %d: an idle stream still open: %v", rate, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			m.mu.Lock()
			n := len(m.mu.active)
			m.mu.Unlock()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rate %d: %d streams still counted after the idle close", rate, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
