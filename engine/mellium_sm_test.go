package engine_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	mjid "mellium.im/xmpp/jid"

	"github.com/vireo-im/vireo/engine/vireotest"
)

const nsSM3 = "urn:xmpp:sm:3"

// melliumSM is the client's side of XEP-0198 for a mellium.im/xmpp session. mellium has no
// stream management of its own (v0.22.0, the only version the module proxy serves, nor its
// master branch as of 2026-12-03), but its sessions take extra stream features and hand
// every top-level element to a handler, and that is all a client's side of XEP-0198 needs:
// <enable/> once bound, <a/> for each <r/>, h counted per stanza handled, and <resume/>
// negotiated as a stream feature in place of bind.
type melliumSM struct {
	mu      sync.Mutex
	h       uint32
	id      string
	acks    int      // <a/> sent for the server's <r/>
	acked   uint32   // h of the server's last <a/>, counting what this client sent
	answers int      // <a/> received
	msgs    []string // ids of messages, in arrival order, duplicates included
	enabled chan struct{}
}

// handler counts what a session is sent and answers the server's ack requests.
func (m *melliumSM) handler(t *testing.T, s *xmpp.Session) xmpp.Handler {
	return xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		switch start.Name.Local {
		case "message", "presence", "iq":
			m.mu.Lock()
			m.h++
			if start.Name.Local == "message" {
				for _, a := range start.Attr {
					if a.Name.Local == "id" {
						m.msgs = append(m.msgs, a.Value)
					}
				}
			}
			m.mu.Unlock()
			return nil
		}
		if start.Name.Space != nsSM3 {
			return nil
		}
		switch start.Name.Local {
		case "enabled":
			for _, a := range start.Attr {
				if a.Name.Local == "id" {
					m.mu.Lock()
					m.id = a.Value
					m.mu.Unlock()
				}
			}
			close(m.enabled)
		case "a":
			for _, a := range start.Attr {
				if a.Name.Local == "h" {
					h, _ := strconv.ParseUint(a.Value, 10, 32)
					m.mu.Lock()
					m.acked = uint32(h)
					m.answers++
					m.mu.Unlock()
				}
			}
		case "r":
			m.mu.Lock()
			h := m.h
			m.acks++
			m.mu.Unlock()
			ctx := vireotest.Context(t, 5*time.Second)
			return s.Send(ctx, xml.NewDecoder(strings.NewReader(
				"<a xmlns='"+nsSM3+"' h='"+strconv.FormatUint(uint64(h), 10)+"'/>")))
		}
		return nil
	})
}

// resume is the stream feature that resumes m's session after authentication. When the
// server answers <failed/>, it binds a new session with mellium's own bind instead, as
// XEP-0198 lets a client do, and reports that through fellBack.
func (m *melliumSM) resume(fellBack *bool) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:      xml.Name{Space: nsSM3, Local: "sm"},
		Necessary: xmpp.Authn,
		// Required, so that mellium stops at it and returns its error: an optional feature's
		// error is dropped by mellium's negotiator when nothing else is left to negotiate.
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, interface{}, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, s *xmpp.Session, _ interface{}) (xmpp.SessionState, io.ReadWriter, error) {
			m.mu.Lock()
			start := xml.StartElement{Name: xml.Name{Space: nsSM3, Local: "resume"}, Attr: []xml.Attr{
				{Name: xml.Name{Local: "previd"}, Value: m.id},
				{Name: xml.Name{Local: "h"}, Value: strconv.FormatUint(uint64(m.h), 10)},
			}}
			m.mu.Unlock()
			w := s.TokenWriter()
			err := w.EncodeToken(start)
			if err == nil {
				err = w.EncodeToken(start.End())
			}
			if err == nil {
				err = w.Flush()
			}
			w.Close()
			if err != nil {
				return 0, nil, err
			}
			r := s.TokenReader()
			d := xml.NewTokenDecoder(r)
			var answer anyElem
			for {
				tok, err := d.Token()
				if err != nil {
					r.Close()
					return 0, nil, err
				}
				if start, ok := tok.(xml.StartElement); ok {
					err = d.DecodeElement(&answer, &start)
					r.Close()
					if err != nil {
						return 0, nil, err
					}
					break
				}
			}
			switch answer.XMLName.Local {
			case "resumed":
				return xmpp.Ready, nil, nil
			case "failed":
				*fellBack = true
				return xmpp.BindResource().Negotiate(ctx, s, nil)
			}
			return 0, nil, fmt.Errorf("answer to <resume/>: <%s>", answer.XMLName.Local)
		},
	}
}

// melliumSMSession logs bob in over STARTTLS with SCRAM, then either binds and enables
// resumable stream management (m.id empty) or resumes m's session.
func melliumSMSession(t *testing.T, srv *vireotest.Server, m *melliumSM, fellBack *bool) (*xmpp.Session, net.Conn) {
	t.Helper()
	ctx := vireotest.Context(t, 10*time.Second)
	conn, err := net.Dial("tcp", srv.C2SAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	last := xmpp.BindResource()
	if m.id != "" {
		last = m.resume(fellBack)
	}
	s, err := xmpp.NewClientSession(ctx, mjid.MustParse("bob@"+srv.Domain()), conn,
		xmpp.StartTLS(srv.ClientTLS()),
		xmpp.SASL("", "bob secret", msasl.ScramSha256),
		last,
	)
	if err != nil {
		t.Fatalf("mellium session (resuming %q): %v", m.id, err)
	}
	return s, conn
}

// TestIntegrationMelliumSM: a mellium.im/xmpp client with stream management enabled loses
// its TCP connection between two batches of messages, comes back with <resume/> on a new
// stream, and gets every message exactly once and in order; a second client that offers an
// id the server does not know gets <failed/> and binds instead.
func TestIntegrationMelliumSM(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{SMAckAfter: 50 * time.Millisecond})
	srv.AddUser(t, "alice", "alice secret")
	srv.AddUser(t, "bob", "bob secret")
	alice := loginSTARTTLS(t, srv, "alice", "alice secret", "laptop", msasl.ScramSha256)
	alice.serve(t)

	m := &melliumSM{enabled: make(chan struct{})}
	bob, conn := melliumSMSession(t, srv, m, nil)
	served := make(chan error, 1)
	go func() { served <- bob.Serve(m.handler(t, bob)) }()
	bobSend := func(raw string) {
		t.Helper()
		ctx := vireotest.Context(t, 5*time.Second)
		if err := bob.Send(ctx, xml.NewDecoder(strings.NewReader(raw))); err != nil {
			t.Fatalf("bob sends %s: %v", raw, err)
		}
	}
	bobSend("<enable xmlns='" + nsSM3 + "' resume='true'/>")
	select {
	case <-m.enabled:
	case <-time.After(10 * time.Second):
		t.Fatal("no <enabled/>")
	}
	bobSend("<presence/>")
	bobJID := bob.LocalAddr().String() // mellium's bind asks the server to pick the resource

	const n = 12
	sendTo := func(from, to int) {
		for i := from; i <= to; i++ {
			alice.send(t, fmt.Sprintf("<message to='%s' type='chat' id='m%02d'><body>%d</body></message>", bobJID, i, i))
		}
	}
	waitFor := func(what string, done func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			m.mu.Lock()
			ok := done()
			m.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("bob: no %s; has %d messages, answered %d <r/>, server acked %d", what, len(m.msgs), m.acks, m.acked)
			}
		}
	}
	bobSend("<r xmlns='" + nsSM3 + "'/>")
	waitFor("<a h='1'/> for the presence", func() bool { return m.acked == 1 })
	sendTo(1, 4)
	waitFor("4 messages", func() bool { return len(m.msgs) == 4 })
	// The server asks for an ack once stanzas have waited SMAckAfter; bob's answer lets it
	// drop them, so the resume below resends nothing.
	waitFor("<r/> after the messages", func() bool { return m.acks > 0 && m.h == 5 })
	// The server reads in order: once it answers this <r/>, it has bob's <a/> as well.
	bobSend("<r xmlns='" + nsSM3 + "'/>")
	waitFor("a second <a/>", func() bool { return m.answers == 2 })
	conn.Close() // the phone loses TCP without a word
	<-served
	sendTo(5, 8) // while bob is detached (or before the server has noticed)

	var fellBack bool
	bob, _ = melliumSMSession(t, srv, m, &fellBack)
	if fellBack {
		t.Fatal("the server did not resume the session")
	}
	go func() { served <- bob.Serve(m.handler(t, bob)) }()
	sendTo(9, n)
	waitFor("every message", func() bool { return len(m.msgs) >= n })
	bobSend("<message to='" + alice.s.LocalAddr().String() + "' type='chat' id='back'><body>resumed fine</body></message>")
	alice.waitFor(t, "resumed fine")

	m.mu.Lock()
	got := append([]string(nil), m.msgs...)
	acks := m.acks
	m.mu.Unlock()
	if len(got) != n {
		t.Fatalf("bob got %d messages for %d sent: %v", len(got), n, got)
	}
	for i, id := range got {
		if want := fmt.Sprintf("m%02d", i+1); id != want {
			t.Fatalf("message %d is %s, want %s (all: %v)", i, id, want, got)
		}
	}
	t.Logf("%d messages across a drop and a resume, each once and in order; %d ack requests answered", n, acks)

	// An id the server does not know: <failed/>, and the same stream binds a new session.
	stale := &melliumSM{id: "not-a-session", enabled: make(chan struct{})}
	fellBack = false
	other, _ := melliumSMSession(t, srv, stale, &fellBack)
	if !fellBack {
		t.Fatal("an unknown id was resumed")
	}
	if other.LocalAddr().Resourcepart() == "" {
		t.Fatalf("no resource bound after <failed/>: %s", other.LocalAddr())
	}
	other.Close()
}
