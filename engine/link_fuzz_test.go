package engine_test

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/link"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// linkSeeds are frame sequences an edge sends to the core: client streams opened, their
// bytes, TLS reports, closes, and frames the core never asked for.
func linkSeeds() [][]byte {
	const c2sHdr = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
	const s2sHdr = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='a.localhost' to='localhost' version='1.0'>"
	open := func(ch uint32, kind, flags byte) []byte {
		return link.Append(nil, link.Open, ch, link.OpenInfo{Kind: kind, Flags: flags, Remote: "192.0.2.1:5000"}.Append(nil))
	}
	data := func(ch uint32, s string) []byte { return link.AppendData(nil, ch, []byte(s)) }
	up := link.Append(nil, link.TLSUp, 1, link.TLSInfo{Version: tls.VersionTLS13, Suite: tls.TLS_AES_128_GCM_SHA256,
		ServerName: "localhost", Exporter: bytes.Repeat([]byte{7}, 32), EndPoint: bytes.Repeat([]byte{9}, 32)}.Append(nil))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	return [][]byte{
		cat(open(1, link.KindC2S, 0), data(1, c2sHdr)),
		cat(open(1, link.KindC2S, 0), data(1, c2sHdr+"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), up, data(1, c2sHdr)),
		cat(open(1, link.KindC2S, link.FlagDirectTLS), up, data(1, c2sHdr+"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGZ1enoAZnV6eiBwdw==</auth>"+c2sHdr)),
		cat(open(1, link.KindC2S, 0), data(1, c2sHdr), link.Append(nil, link.Closed, 1, []byte{1}), data(1, "<presence/>")),
		cat(open(2, link.KindWeb, 0), data(2, "GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\n\r\n")),
		cat(open(3, link.KindS2S, 0), data(3, s2sHdr+"<db:result from='a.localhost' to='localhost'>0123</db:result>")),
		cat(open(1, link.KindC2S, 0), open(1, link.KindC2S, 0)),
		data(9, c2sHdr),
		link.Append(nil, link.Closed, 4, []byte{0}),
		link.Append(nil, link.Drained, 0, []byte{0, 0, 0, 1, 1}),
		link.Append(nil, link.Connected, link.CoreChan|5, link.AppendConnected(nil, "192.0.2.9:5269", nil)),
		link.Append(nil, link.Pong, 0, nil),
		cat(link.Append(nil, link.TLSUp, 7, []byte{3, 4}), open(link.CoreChan|1, link.KindC2S, 0)),
	}
}

// FuzzLinkFrames sends any bytes to the core from an edge that passed the link's
// handshake: the edges sit in a DMZ, and one that was taken over must not bring the core
// down. After the input a Ping must get its Pong, or the core must have closed the link;
// a client on the core's own listener must still get answers, and nothing may have
// panicked.
func FuzzLinkFrames(f *testing.F) {
	panics, log := fuzzSetup(f, linkSeeds())
	secret := []byte("fuzz link secret")
	core := vireotest.Start(f, vireotest.Options{AllowPlain: true, S2S: true, LinkSecret: secret, Logger: log})
	core.AddUser(f, "fuzz", "fuzz pw")
	bob := core.LoginPlain(f, "fuzz", "fuzz pw", "watch")
	addr := core.Engine.Addr("link").String()
	var n int
	f.Fuzz(func(t *testing.T, in []byte) {
		n++
		nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if err := link.Dial(nc, secret, "fuzz-"+strconv.Itoa(n)); err != nil {
			t.Fatalf("link handshake: %v", err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(link.Append(completeFrames(in), link.Ping, 0, nil)); err == nil {
			if err := awaitPong(nc); err != nil {
				t.Fatalf("after %x: %v", in, err)
			}
			// The core answers a Ping on the link's reader, and the channels' streams
			// on its loops: let what the input started run before the link goes.
			buf := make([]byte, 32<<10)
			for end := time.Now().Add(time.Second); time.Now().Before(end); {
				nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				if _, err := nc.Read(buf); err != nil {
					break
				}
			}
		}
		id := "alive-" + strconv.Itoa(n)
		// bob belongs to the target, not to this input's test: written to directly.
		bob.Conn().SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(bob.Conn(), "<iq type='get' id='"+id+"'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
			t.Fatalf("after %x: %v", in, err)
		}
		if got, err := bob.ReadUntil("id='"+id+"'", 10*time.Second); err != nil {
			t.Fatalf("after %x: the core did not answer a client (%v): %q", in, err, got)
		}
		if m := panics.last(); m != "" {
			t.Fatalf("after %x: %s", in, m)
		}
	})
}

// completeFrames pads an input that ends inside a frame with zero bytes up to the frame's
// end: the Ping that follows must be a frame of its own, not the rest of the input's last
// one (a link waiting for the rest of a frame is not hung; its own ping timeout ends it).
func completeFrames(in []byte) []byte {
	b := append([]byte(nil), in...)
	off := 0
	for {
		_, k, err := link.Parse(b[off:])
		switch {
		case err == link.ErrShort && len(b)-off == 0:
			return b
		case err == link.ErrShort && len(b)-off < link.HeaderLen:
			b = append(b, make([]byte, link.HeaderLen-(len(b)-off))...)
		case err == link.ErrShort:
			b = append(b, make([]byte, off+4+int(binary.BigEndian.Uint32(b[off:]))-len(b))...)
		case err != nil:
			return b // the core closes the link at this frame
		default:
			off += k
		}
	}
}

// awaitPong reads frames until a Pong; the core closing the link (EOF, reset) is an
// answer too. Only a timeout or a frame that does not parse is an error.
func awaitPong(c net.Conn) error {
	var buf []byte
	p := make([]byte, 32<<10)
	for {
		for {
			fr, k, err := link.Parse(buf)
			if err == link.ErrShort {
				break
			}
			if err != nil {
				return err
			}
			if fr.Type == link.Pong {
				return nil
			}
			buf = buf[k:]
		}
		k, err := c.Read(p)
		buf = append(buf, p[:k]...)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return err
			}
			return nil
		}
	}
}
