package engine

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/link"
)

// testOut is a linkConn on a link whose far end the test reads.
func testOut(t *testing.T) (*linkConn, *link.Conn) {
	t.Helper()
	a, b := net.Pipe()
	lk := &coreLink{name: "edge-1", lc: link.NewConn(a), outs: map[uint32]*linkConn{}}
	far := link.NewConn(b)
	t.Cleanup(func() { lk.lc.Close(nil); far.Close(nil) })
	c := lk.newOut()
	if c.id&link.CoreChan == 0 {
		t.Fatalf("the core numbered its channel %#x, outside its half", c.id)
	}
	return c, far
}

// TestLinkConnRead: a read waits for the edge's data, keeps its order across frames,
// honours deadlines (as a timeout net.Error, which the s2s code maps to
// remote-server-timeout), and ends with EOF after the edge's Closed.
func TestLinkConnRead(t *testing.T) {
	c, _ := testOut(t)
	c.up("192.0.2.1:5269", nil)
	if got := c.RemoteAddr().String(); got != "192.0.2.1:5269" {
		t.Fatalf("remote %q", got)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	done := make(chan string)
	go func() {
		b, err := io.ReadAll(c)
		if err != nil {
			done <- "error: " + err.Error()
		}
		done <- string(b)
	}()
	c.input([]byte("<stream"))
	c.input([]byte(":stream>"))
	c.fail(io.EOF)
	if got := <-done; got != "<stream:stream>" {
		t.Fatalf("read %q", got)
	}
}

// TestLinkConnDeadlineWakes: a deadline set while a read waits applies to that read.
func TestLinkConnDeadlineWakes(t *testing.T) {
	c, _ := testOut(t)
	c.up("x", nil)
	errc := make(chan error)
	go func() {
		_, err := c.Read(make([]byte, 8))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.SetDeadline(time.Now().Add(10 * time.Millisecond))
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline set during a read did not end it")
	}
}

// TestLinkConnWriteClose: writes become Data frames on the channel; Close sends Close,
// forgets the channel and fails later calls; a lost link fails writes.
func TestLinkConnWriteClose(t *testing.T) {
	c, far := testOut(t)
	c.up("x", nil)
	frames := make(chan link.Frame, 8)
	go far.Read(func(f link.Frame) error {
		f.Payload = append([]byte(nil), f.Payload...)
		frames <- f
		return nil
	})
	if n, err := c.Write([]byte("<stream:stream>")); n != 15 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	if f := <-frames; f.Type != link.Data || f.Chan != c.id || string(f.Payload) != "<stream:stream>" {
		t.Fatalf("frame %+v", f)
	}
	c.Close()
	if f := <-frames; f.Type != link.Close || f.Chan != c.id {
		t.Fatalf("frame %+v", f)
	}
	if c.lk.outs[c.id] != nil {
		t.Fatal("a closed connection is still numbered")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}

	d := c.lk.newOut()
	d.up("y", nil)
	c.lk.lc.Close(nil)
	if _, err := d.Write([]byte("x")); err == nil {
		t.Fatal("a write on a lost link succeeded")
	}
}

// TestLinkConnInputBound: a peer that sends more than the core reads loses the connection.
func TestLinkConnInputBound(t *testing.T) {
	c, _ := testOut(t)
	c.up("x", nil)
	chunk := make([]byte, link.MaxPayload)
	for range linkConnInput/len(chunk) + 1 {
		c.input(chunk)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection survived more input than the bound")
	}
}
