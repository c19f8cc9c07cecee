package engine_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

func no() *bool { f := false; return &f }

const hdr = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"

// TestIntegrationBadInput sends what no well-behaved client sends and checks the stream
// error RFC 6120 §4.9.3 prescribes, a clean close, and that the server still logs in a
// fresh client afterwards.
func TestIntegrationBadInput(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true, MaxStanza: 8192, AuthFailLimit: 3})
	srv.AddUser(t, "alice", "secret")
	for _, tc := range []struct {
		name, send, want string
	}{
		{"malformed", hdr + "</iq>", "not-well-formed"},
		{"malformed tag", hdr + "<message to='x'<body/>", "not-well-formed"},
		{"mismatched quotes", hdr + "<message to='a@localhost\"><body/></message>", "not-well-formed"},
		{"comment", hdr + "<!-- hi -->", "restricted-xml"},
		{"processing instruction", hdr + "<?php echo 1 ?>", "restricted-xml"},
		{"dtd", "<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>" + hdr, "restricted-xml"},
		{"undefined entity", hdr + "<message><body>&bogus;</body></message>", "restricted-xml"},
		{"wrong stream namespace", "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' version='1.0'>", "invalid-namespace"},
		{"wrong content namespace", "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>", "invalid-namespace"},
		{"missing version", "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>", "unsupported-version"},
		{"unknown host", "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>", "host-unknown"},
		{"stanza before auth", hdr + "<message to='alice@localhost'><body>spam</body></message>", "not-authorized"},
		{"iq before auth", hdr + "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>", "not-authorized"},
		{"oversized stanza", hdr + "<message><body>" + strings.Repeat("x", 9000) + "</body></message>", "policy-violation"},
		{"invalid utf-8", hdr + "<message><body>\xff\xfe</body></message>", "not-well-formed"},
		{"deep nesting", hdr + strings.Repeat("<a>", 100), "policy-violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.Dial(t)
			r.Send(tc.send)
			got := r.ExpectClosed()
			if !strings.Contains(got, "<"+tc.want) || !strings.Contains(got, "</stream:stream>") {
				t.Fatalf("got %q, want a %s stream error and </stream:stream>", got, tc.want)
			}
			if !strings.Contains(got, "<stream:stream") {
				t.Fatalf("stream error without a stream header first: %q", got)
			}
		})
	}
	// The server is unharmed.
	r := srv.LoginPlain(t, "alice", "secret", "after")
	r.Send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
	r.Expect("id='r1'")
}

func TestIntegrationSASLGarbage(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AuthFailLimit: 3})
	srv.AddUser(t, "alice", "secret")
	r := srv.Dial(t)
	r.Send(hdr)
	r.Expect("</stream:features>")
	for _, tc := range []struct{ send, want string }{
		{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>!!!notbase64</auth>", "incorrect-encoding"},
		{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" + base64.StdEncoding.EncodeToString([]byte("garbage")) + "</auth>", "malformed-request"},
		{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-UNKNOWN'>=</auth>", "invalid-mechanism"},
		{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "</auth>", "invalid-mechanism"}, // PLAIN is off on plain TCP
		{"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>", "malformed-request"},
		{"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "aborted"},
	} {
		r.Send(tc.send)
		got := r.Expect("</failure>")
		if !strings.Contains(got, "<"+tc.want) {
			t.Fatalf("%s: got %q, want %s", tc.send, got, tc.want)
		}
	}
}

func TestIntegrationAuthThrottle(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, AuthFailLimit: 3})
	srv.AddUser(t, "alice", "secret")
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	bad := "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong")) + "</auth>"
	for i := 0; i < 3; i++ {
		r.Send(bad)
		if got := r.Expect("</failure>"); !strings.Contains(got, "not-authorized") {
			t.Fatalf("attempt %d: %q", i, got)
		}
	}
	// Now even the right password is refused for a while from this address.
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "</auth>")
	if got := r.Expect("</failure>"); !strings.Contains(got, "temporary-auth-failure") {
		t.Fatalf("after 3 failures: %q", got)
	}
}

func TestIntegrationSilentClient(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), PreAuthTimeout: time.Second})
	srv.AddUser(t, "alice", "secret")
	r := srv.Dial(t)
	r.Send(hdr)
	got := r.ExpectClosed()
	if !strings.Contains(got, "connection-timeout") {
		t.Fatalf("silent client: %q", got)
	}
	// A connection that sends nothing at all is closed too.
	r2 := srv.Dial(t)
	r2.ExpectClosed()
}

// TestIntegrationNeverReads floods a client that does not read: the server must close it
// once its outbound queue passes the cap, not buffer without end.
func TestIntegrationNeverReads(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, MaxOutbound: 64 << 10})
	srv.AddUser(t, "alice", "a")
	srv.AddUser(t, "bob", "b")
	victim := srv.LoginPlain(t, "bob", "b", "slow")
	victim.Send("<presence/>")
	sender := srv.LoginPlain(t, "alice", "a", "fast")
	body := strings.Repeat("y", 4000)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		sender.Send("<message to='bob@localhost/slow' type='chat'><body>" + body + "</body></message>")
		if i%50 == 0 {
			if srv.Engine.Stats().Established < 2 {
				break
			}
			// The sender is a well-behaved client that waits for the server now and
			// then; one that floods a busy server past its held-input bound is cut off.
			id := "pace" + strconv.Itoa(i)
			sender.Send("<iq type='get' id='" + id + "'><ping xmlns='urn:xmpp:ping'/></iq>")
			sender.Expect("id='" + id + "'")
		}
	}
	if n := srv.Engine.Stats().Established; n != 1 {
		t.Fatalf("established = %d; the non-reading client was not dropped", n)
	}
	// The sender is still fine.
	sender.Send("<iq type='get' id='still'><query xmlns='jabber:iq:roster'/></iq>")
	sender.Expect("id='still'")
}

// TestIntegrationSpoofedFrom: a 'from' that is not the session's own JID is a stream
// error (RFC 6120 §8.1.2.1), and nothing reaches the would-be recipient.
func TestIntegrationSpoofedFrom(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "a")
	srv.AddUser(t, "bob", "b")
	bob := srv.LoginPlain(t, "bob", "b", "pc")
	alice := srv.LoginPlain(t, "alice", "a", "pc")
	alice.Send("<message to='alice@localhost/pc' from='alice@localhost/pc' id='own'><body>own from is fine</body></message>")
	alice.Expect("own from is fine")
	// The same address in capitals is the same address (RFC 7622 §3).
	alice.Send("<message to='alice@localhost/pc' from='Alice@LOCALHOST/pc' id='caps'><body>capitals are fine</body></message>")
	alice.Expect("capitals are fine")
	alice.Send("<message to='bob@localhost/pc' from='carol@localhost/x'><body>spoofed</body></message>")
	got := alice.ExpectClosed()
	if !strings.Contains(got, "<invalid-from") {
		t.Fatalf("spoofed from: %q", got)
	}
	bob.Send("<iq type='get' id='b1'><ping xmlns='urn:xmpp:ping'/></iq>")
	if got := bob.Expect("id='b1'"); strings.Contains(got, "spoofed") {
		t.Fatalf("spoofed message delivered: %q", got)
	}
}

// TestIntegrationStalledTLSHandshake: a client that sends half a ClientHello and stops is
// closed at the pre-authentication timeout, and its handshake ends as a failure (the
// handshake has no timer of its own; closing the connection is what stops it).
func TestIntegrationStalledTLSHandshake(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{PreAuthTimeout: time.Second})
	before := srv.Engine.Counters().TLSHandshakes[1]
	nc, err := net.Dial("tcp", srv.TLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A handshake record header announcing 512 bytes, and 4 of them.
	if _, err := nc.Write([]byte{22, 3, 1, 2, 0, 1, 0, 1, 252}); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Fatalf("the stalled handshake was not closed: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Engine.Counters().TLSHandshakes[1] == before {
		if time.Now().After(deadline) {
			t.Fatal("the stalled handshake never ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamLimitsAdvertised: XEP-0478. Client streams announce the stanza limit they
// enforce and how long they may be silent, before authentication (the pre-auth timeout)
// and after (the ping interval); a stanza one byte over the limit announced gets the
// policy-violation stream error, one at the limit passes.
func TestStreamLimitsAdvertised(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, MaxStanza: 8192})
	srv.AddUser(t, "alice", "secret")
	r := srv.DialTLS(t)
	r.Send(srv.Header())
	pre := r.Expect("</stream:features>")
	want := "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>8192</max-bytes><idle-seconds>30</idle-seconds></limits>"
	if !strings.Contains(pre, want) {
		t.Fatalf("pre-auth features lack %s:\n%s", want, pre)
	}
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "</auth>")
	r.Expect("<success")
	r.Send(srv.Header())
	post := r.Expect("</stream:features>")
	m := regexp.MustCompile(`<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>(\d+)</max-bytes><idle-seconds>(\d+)</idle-seconds></limits>`).FindStringSubmatch(post)
	if m == nil || m[1] != "8192" || m[2] != "240" {
		t.Fatalf("post-auth limits %q in:\n%s", m, post)
	}
	r.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><presence/>")
	r.Expect("id='b'")
	stanza := func(n int) string {
		head, tail := "<message to='alice@localhost' id='big'><body>", "</body></message>"
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	r.Send(stanza(8192))
	r.Expect("id='big'")
	r.Send(stanza(8193))
	r.Expect("<policy-violation")
	r.ExpectClosed()
}

// TestIntegrationStrayStanzas: a stanza sent after the client started SASL but before it
// bound gets a stanza error and the stream goes on (Converse.js sends its old session's
// queries into a reconnection's SASL exchange); the ninth such stanza, and any stanza
// before SASL starts (TestIntegrationBadInput), closes the stream with not-authorized.
func TestIntegrationStrayStanzas(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	const iq = "<iq type='get' id='s%d' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='eu.siacs.conversations.axolotl.devicelist'/></pubsub></iq>"
	scramFirst := "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" +
		base64.StdEncoding.EncodeToString([]byte("n,,n=alice,r=0123456789abcdef")) + "</auth>"

	r := srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send(scramFirst)
	r.Expect("</challenge>")
	r.Send(fmt.Sprintf(iq, 1) + "<r xmlns='urn:xmpp:sm:3'/>")
	mustHave(t, "an IQ inside the SASL exchange", r.Expect("</iq>"), "type='error'", "id='s1'", "<not-authorized")
	r.Never("<a ")
	r.Send("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
	r.Expect("<aborted")
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "</auth>")
	r.Expect("<success")
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	// Authenticated, not bound: a message is refused, a presence dropped, and binding works.
	r.Send("<message to='bob@localhost' id='m1'><body>early</body></message><presence/>")
	mustHave(t, "a message before bind", r.Expect("</message>"), "type='error'", "id='m1'", "<not-authorized")
	r.Send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
	mustHave(t, "bind after strays", r.Expect("</iq>"), "type='result'", "alice@localhost/r")

	// A stream that keeps sending them is closed.
	r = srv.DialTLS(t)
	r.Send(srv.Header())
	r.Expect("</stream:features>")
	r.Send(scramFirst)
	r.Expect("</challenge>")
	for i := 1; i <= 8; i++ {
		r.Send(fmt.Sprintf(iq, i))
		r.Expect(fmt.Sprintf("id='s%d'", i))
	}
	r.Send(fmt.Sprintf(iq, 9))
	if got := r.ExpectClosed(); !strings.Contains(got, "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'") {
		t.Fatalf("the ninth stray stanza: %q, want the not-authorized stream error", got)
	}
}

// TestIntegrationBadInputCleanClose: a client that keeps sending after its stream error
// still reads the error and a clean end (FIN, not a reset). A socket closed with input
// unread sends a reset, and a client's TCP stack may drop what it had received but not
// yet read, so the server half-closes, reads and drops what comes, and closes when the
// client does (RFC 6120 §4.4) or after a short wait.
func TestIntegrationBadInputCleanClose(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no()})
	for _, tc := range []struct{ name, send, want string }{
		{"malformed", hdr + "</iq>", "<not-well-formed"},
		{"oversized", hdr + "<message><body>" + strings.Repeat("x", 300<<10), "<policy-violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.Dial(t)
			done := make(chan struct{})
			go func() {
				defer close(done)
				// One write, the bad input first and ~1 MiB after it: more than one read
				// takes, so input is still waiting when the server ends the stream.
				junk := strings.Repeat("<message><body>junk</body></message>", 30000)
				r.Conn().SetWriteDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(r.Conn(), tc.send+junk)
			}()
			got, err := r.ReadUntil("\x00never\x00", 10*time.Second)
			<-done
			if err != io.EOF {
				t.Fatalf("the server's end: %v, want EOF (a FIN); got %q", err, got)
			}
			if !strings.Contains(got, tc.want) || !strings.HasSuffix(got, "</stream:stream>") {
				t.Fatalf("got %q, want %s and </stream:stream> last", got, tc.want)
			}
		})
	}
}
