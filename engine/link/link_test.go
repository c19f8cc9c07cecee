package link

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestFrames(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2*MaxPayload+5)
	var b []byte
	b = Append(b, Open, 7, OpenInfo{Kind: KindWeb, Flags: FlagDirectTLS, Remote: "[::1]:5222"}.Append(nil))
	b = AppendData(b, 7, big)
	b = Append(b, Closed, 7, []byte{1})
	var got []Frame
	var data []byte
	for off := 0; off < len(b); {
		f, n, err := Parse(b[off:])
		if err != nil {
			t.Fatalf("at %d: %v", off, err)
		}
		off += n
		got = append(got, f)
		if f.Type == Data {
			data = append(data, f.Payload...)
		}
	}
	if len(got) != 5 || got[0].Type != Open || got[4].Type != Closed || got[4].Chan != 7 {
		t.Fatalf("frames: %+v", got)
	}
	if !bytes.Equal(data, big) {
		t.Fatalf("data split and joined: %d bytes, want %d", len(data), len(big))
	}
	o, err := ParseOpen(got[0].Payload)
	if err != nil || o.Kind != KindWeb || o.Flags != FlagDirectTLS || o.Remote != "[::1]:5222" {
		t.Fatalf("open: %+v %v", o, err)
	}
	// Every prefix of a frame is short, never an error.
	one := Append(nil, Data, 1, []byte("hello"))
	for i := range len(one) {
		if _, _, err := Parse(one[:i]); err != ErrShort {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"too long":     {0, 2, 0, 0, Data, 0, 0, 0, 1},
		"too short":    {0, 0, 0, 4, Data, 0, 0, 0, 1},
		"type 0":       {0, 0, 0, 5, 0, 0, 0, 0, 1},
		"unknown type": {0, 0, 0, 5, maxType + 1, 0, 0, 0, 1},
	} {
		if _, _, err := Parse(b); err == nil || err == ErrShort {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseOpen([]byte{9, 0}); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := ParseTLS([]byte{0, 1, 0, 2, 3, 'a'}); err == nil {
		t.Error("truncated tls info accepted")
	}
}

func TestTLSInfo(t *testing.T) {
	in := TLSInfo{Version: 0x0304, Suite: 0x1301, ServerName: "example.org", Exporter: bytes.Repeat([]byte{1}, 32), EndPoint: bytes.Repeat([]byte{2}, 48),
		PeerCerts: [][]byte{bytes.Repeat([]byte{3}, 1200), bytes.Repeat([]byte{4}, 900)}}
	if !in.Fits() {
		t.Fatal("a small chain does not fit")
	}
	out, err := ParseTLS(in.Append(nil))
	if err != nil || out.Version != in.Version || out.Suite != in.Suite || out.ServerName != in.ServerName ||
		!bytes.Equal(out.Exporter, in.Exporter) || !bytes.Equal(out.EndPoint, in.EndPoint) ||
		len(out.PeerCerts) != 2 || !bytes.Equal(out.PeerCerts[1], in.PeerCerts[1]) {
		t.Fatalf("%+v %v", out, err)
	}
	if (TLSInfo{PeerCerts: [][]byte{make([]byte, MaxPayload)}}).Fits() {
		t.Fatal("a chain over a frame fits")
	}
}

func handshake(coreSecret, edgeSecret string) (name string, cerr, eerr error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		eerr = Dial(b, []byte(edgeSecret), "edge-1")
		if eerr != nil {
			b.Close()
		}
	}()
	name, cerr = Accept(a, []byte(coreSecret))
	if cerr != nil {
		a.Close()
	}
	<-done
	return name, cerr, eerr
}

func TestHandshake(t *testing.T) {
	name, cerr, eerr := handshake("same secret", "same secret")
	if cerr != nil || eerr != nil || name != "edge-1" {
		t.Fatalf("good secret: %q %v %v", name, cerr, eerr)
	}
	_, cerr, eerr = handshake("core secret", "edge secret")
	if !errors.Is(cerr, ErrAuth) || eerr == nil {
		t.Fatalf("wrong secret: core %v, edge %v", cerr, eerr)
	}
}

// TestConnStuck: past MaxQueued waiting bytes a Data frame is refused, but the link stays
// up and control frames still go: one burst costs the channels it overflows, not the
// link. A peer that reads nothing for stuckAfter gets the link closed.
func TestConnStuck(t *testing.T) {
	defer func(d time.Duration) { stuckAfter = d }(stuckAfter)
	stuckAfter = 10 * time.Second // longer than filling the queue takes on a loaded machine
	a, b := net.Pipe()
	defer b.Close()
	c := NewConn(a)
	p := make([]byte, MaxPayload)
	sent := 0
	for c.Send(Data, 1, p) {
		if sent += len(p); sent > 2*MaxQueued {
			t.Fatal("the queue took twice MaxQueued")
		}
	}
	if c.Err() != nil || c.Queued() > MaxQueued {
		t.Fatalf("a full queue: link error %v, %d bytes queued", c.Err(), c.Queued())
	}
	if !c.Send(Close, 1, nil) {
		t.Fatal("a control frame refused on a full queue")
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("still open with nobody reading")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(c.Err(), ErrStuck) {
		t.Fatalf("closed with %v", c.Err())
	}
}

// TestConnSlowReader: a peer that reads slowly but steadily keeps its link: progress is
// measured per chunk, not over the whole queue.
func TestConnSlowReader(t *testing.T) {
	defer func(d time.Duration) { stuckAfter = d }(stuckAfter)
	stuckAfter = time.Second // a 256 KiB chunk takes 4 reads (80 ms), the 5 MiB queue 1.6 s
	a, b := net.Pipe()
	defer b.Close()
	c := NewConn(a)
	defer c.Close(nil)
	for range 80 {
		if !c.Send(Data, 1, make([]byte, MaxPayload)) {
			t.Fatal("refused")
		}
	}
	total := 0
	buf := make([]byte, 64<<10)
	for total < 80*MaxPayload && c.Err() == nil {
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := b.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		time.Sleep(20 * time.Millisecond) // 64 KiB per 20 ms: the whole queue takes longer than stuckAfter
	}
	if c.Err() != nil {
		t.Fatalf("a slow reader's link closed: %v after %d bytes", c.Err(), total)
	}
}

// TestConnExchange: frames sent on one end are read on the other in order; pings are
// answered by the link itself.
func TestConnExchange(t *testing.T) {
	a, b := net.Pipe()
	ca, cb := NewConn(a), NewConn(b)
	defer ca.Close(nil)
	defer cb.Close(nil)
	got := make(chan Frame, 100)
	go cb.Read(func(f Frame) error {
		f.Payload = append([]byte(nil), f.Payload...)
		got <- f
		return nil
	})
	go ca.Read(func(Frame) error { return nil })
	ca.Send(Ping, 0, nil)
	for i := range 50 {
		ca.Send(Data, uint32(i), []byte{byte(i)})
	}
	for i := range 50 {
		select {
		case f := <-got:
			if f.Type != Data || f.Chan != uint32(i) || f.Payload[0] != byte(i) {
				t.Fatalf("frame %d: %+v", i, f)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("frame %d not read", i)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Append(nil, Open, 1, OpenInfo{Remote: "1.2.3.4:5"}.Append(nil)))
	f.Add(Append(nil, TLSUp, 1, TLSInfo{ServerName: "a", Exporter: []byte{1}}.Append(nil)))
	f.Add(Append(Append(nil, Data, 2, []byte("<x/>")), Drained, 2, []byte{0, 0, 0, 1, 1}))
	f.Add(Append(Append(nil, Connect, CoreChan|1, ConnectInfo{Timeout: time.Second, Addr: "a.example:5269"}.Append(nil)),
		Connected, CoreChan|1, AppendConnected(nil, "192.0.2.1:5269", nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			fr, n, err := Parse(b)
			if err != nil {
				return
			}
			if n < HeaderLen || n > len(b) || len(fr.Payload) != n-HeaderLen {
				t.Fatalf("n=%d len=%d payload=%d", n, len(b), len(fr.Payload))
			}
			switch fr.Type {
			case Open:
				ParseOpen(fr.Payload)
			case TLSUp:
				ParseTLS(fr.Payload)
			case Connect:
				if d, err := ParseConnect(fr.Payload); err == nil {
					if e, err := ParseConnect(d.Append(nil)); err != nil || e != d {
						t.Fatalf("dial %+v does not round-trip: %+v %v", d, e, err)
					}
				}
			case Connected:
				ParseConnected(fr.Payload)
			}
			b = b[n:]
		}
	})
}

// TestConnectPayloads: Connect and Connected payloads round-trip and reject what is malformed.
func TestConnectPayloads(t *testing.T) {
	d := ConnectInfo{Timeout: 1500 * time.Millisecond, Addr: "xmpp.example.org:5269"}
	got, err := ParseConnect(d.Append(nil))
	if err != nil || got != d {
		t.Fatalf("dial: %+v %v", got, err)
	}
	long := ConnectInfo{Addr: strings.Repeat("a", 300)}
	if got, err := ParseConnect(long.Append(nil)); err != nil || len(got.Addr) != MaxConnectAddr {
		t.Fatalf("a long address is cut to the bound: %d %v", len(got.Addr), err)
	}
	for name, p := range map[string][]byte{"empty": nil, "no address": {0, 0, 0, 1}, "too long": make([]byte, 5+MaxConnectAddr)} {
		if _, err := ParseConnect(p); err == nil {
			t.Errorf("dial %s: accepted", name)
		}
	}
	if a, err := ParseConnected(AppendConnected(nil, "192.0.2.7:5269", nil)); err != nil || a != "192.0.2.7:5269" {
		t.Fatalf("dialed: %q %v", a, err)
	}
	_, err = ParseConnected(AppendConnected(nil, "", errors.New("connection refused")))
	var de *ConnectError
	if !errors.As(err, &de) || de.Text != "connection refused" {
		t.Fatalf("dialed failure: %v", err)
	}
	for name, p := range map[string][]byte{"empty": nil, "bad flag": {2}, "too long": make([]byte, 2+MaxConnectAddr)} {
		if _, err := ParseConnected(p); err == nil || errors.As(err, &de) {
			t.Errorf("dialed %s: %v", name, err)
		}
	}
}

// TestConnConcurrentSends: frames from many goroutines arrive whole and, per channel, in
// order, while the writer swaps its buffers under them (an empty wake once handed the
// writer the buffer Send was appending to).
func TestConnConcurrentSends(t *testing.T) {
	a, b := net.Pipe()
	ca, cb := NewConn(a), NewConn(b)
	defer ca.Close(nil)
	defer cb.Close(nil)
	const senders, each = 4, 3000
	next := make([]int, senders)
	done := make(chan error, 1)
	go func() {
		n := 0
		done <- cb.Read(func(f Frame) error {
			ch := int(f.Chan)
			want := bytes.Repeat([]byte{byte(next[ch])}, 1+next[ch]%300)
			if !bytes.Equal(f.Payload, want) {
				t.Errorf("channel %d frame %d: %d bytes, corrupt", ch, next[ch], len(f.Payload))
				return errors.New("corrupt")
			}
			next[ch]++
			if n++; n == senders*each {
				return errors.New("all read")
			}
			return nil
		})
	}()
	go ca.Read(func(Frame) error { return nil })
	for s := range senders {
		go func() {
			for i := range each {
				ca.Send(Data, uint32(s), bytes.Repeat([]byte{byte(i)}, 1+i%300))
				if i%64 == 0 {
					time.Sleep(time.Microsecond) // let the writer run dry now and then
				}
			}
		}()
	}
	select {
	case err := <-done:
		if err.Error() != "all read" {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("read %v of %d per channel", next, each)
	}
}

// BenchmarkParse is the reader's cost per frame.
func BenchmarkParse(b *testing.B) {
	frame := Append(nil, Data, 7, bytes.Repeat([]byte("x"), 200))
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, _, err := Parse(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSend is a sender's cost per 200-byte Data frame, written through a socket pair
// whose other end discards.
func BenchmarkSend(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, s)
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c := NewConn(nc)
	defer c.Close(nil)
	p := bytes.Repeat([]byte("x"), 200)
	b.ReportAllocs()
	b.SetBytes(int64(len(p) + HeaderLen))
	for b.Loop() {
		c.Send(Data, 1, p)
	}
}
