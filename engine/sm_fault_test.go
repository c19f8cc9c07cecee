package engine_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// smClient is a minimal XEP-0198 client over direct TLS that counts every stanza it
// receives (h) and records messages, for the fault loop below.
type smClient struct {
	t    *testing.T
	srv  *vireotest.Server
	c    net.Conn
	dec  *xml.Decoder
	h    uint32
	id   string
	mu   sync.Mutex
	msgs []string // message ids in arrival order, duplicates included
}

type anyElem struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   []byte     `xml:",innerxml"`
}

func (e anyElem) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (s *smClient) dial() error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.srv.TLSAddr(), s.srv.ClientTLS())
	if err != nil {
		return err
	}
	s.c = c
	s.dec = xml.NewDecoder(c)
	return nil
}

func (s *smClient) send(x string) error {
	s.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(s.c, x)
	return err
}

// next returns the next top-level element, skipping stream headers.
func (s *smClient) next(d time.Duration) (anyElem, error) {
	s.c.SetReadDeadline(time.Now().Add(d))
	for {
		tok, err := s.dec.Token()
		if err != nil {
			return anyElem{}, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local == "stream" {
				continue
			}
			var e anyElem
			if err := s.dec.DecodeElement(&e, &se); err != nil {
				return anyElem{}, err
			}
			return e, nil
		}
	}
}

func (s *smClient) until(local string) (anyElem, error) {
	for {
		e, err := s.next(5 * time.Second)
		if err != nil || e.XMLName.Local == local {
			return e, err
		}
		s.count(e)
	}
}

func (s *smClient) count(e anyElem) {
	switch e.XMLName.Local {
	case "message", "presence", "iq":
		s.h++
		if e.XMLName.Local == "message" {
			s.mu.Lock()
			s.msgs = append(s.msgs, e.attr("id"))
			s.mu.Unlock()
		}
	}
}

// login authenticates and binds (fresh) or resumes (after a drop).
func (s *smClient) login(resume bool) error {
	if err := s.dial(); err != nil {
		return err
	}
	hdr := s.srv.Header()
	s.send(hdr)
	if _, err := s.until("features"); err != nil {
		return err
	}
	s.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "</auth>")
	if _, err := s.until("success"); err != nil {
		return err
	}
	s.dec = xml.NewDecoder(s.c) // the stream restarts
	s.send(hdr)
	if _, err := s.until("features"); err != nil {
		return err
	}
	if resume {
		s.send(fmt.Sprintf("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>", s.id, s.h))
		e, err := s.until("resumed")
		if err == nil && e.XMLName.Local != "resumed" {
			err = fmt.Errorf("got %s", e.XMLName.Local)
		}
		return err
	}
	s.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>")
	if _, err := s.until("iq"); err != nil {
		return err
	}
	s.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	e, err := s.until("enabled")
	if err != nil {
		return err
	}
	s.id = e.attr("id")
	return s.send("<presence/>")
}

// TestIntegrationSMFaultLoop kills the client's TCP at random moments while a contact sends
// it a stream of messages; after each drop it resumes with the h it counted. Every message
// must arrive, in order, with duplicates only from the resend window (a client drops them
// by id, as XEP-0198 expects).
//
// It runs with two event loops and with one ([runtime] event_loops = 1).
func TestIntegrationSMFaultLoop(t *testing.T) {
	for _, loops := range []int{2, 1} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) { testSMFaultLoop(t, loops) })
	}
}

func testSMFaultLoop(t *testing.T, loops int) {
	const n, drops = 300, 6
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Loops: loops})
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	a := &smClient{t: t, srv: srv}
	if err := a.login(false); err != nil {
		t.Fatal(err)
	}
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	go func() {
		for i := 0; i < n; i++ {
			bob.Conn().SetWriteDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(bob.Conn(), fmt.Sprintf("<message to='alice@localhost/phone' type='chat' id='f%03d'><body>%d</body></message>", i, i))
			if i%20 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	dropAt := map[int]bool{}
	for len(dropAt) < drops {
		dropAt[20+rng.IntN(n-40)] = true
	}
	resumes := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.mu.Lock()
		distinct := map[string]bool{}
		for _, id := range a.msgs {
			distinct[id] = true
		}
		got := len(a.msgs)
		a.mu.Unlock()
		if len(distinct) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d resumes only %d of %d messages arrived", resumes, len(distinct), n)
		}
		if dropAt[got] {
			delete(dropAt, got)
			a.c.Close() // lose TCP without a word
			if err := a.login(true); err != nil {
				t.Fatalf("resume %d: %v", resumes+1, err)
			}
			resumes++
			continue
		}
		e, err := a.next(5 * time.Second)
		if err != nil {
			var missing []string
			for i := 0; i < n && len(missing) < 8; i++ {
				if id := fmt.Sprintf("f%03d", i); !distinct[id] {
					missing = append(missing, id)
				}
			}
			off, _ := srv.Store.Offline().Count("alice@localhost")
			t.Logf("missing %v; offline %d; order tail %v", missing, off, a.msgs[max(0, len(a.msgs)-5):])
			t.Fatalf("read: %v (h=%d, %d messages, %d distinct, %d resumes; router %+v, engine %+v)",
				err, a.h, got, len(distinct), resumes, srv.Router.Stats(), srv.Engine.Stats())
		}
		switch e.XMLName.Local {
		case "r":
			a.send(fmt.Sprintf("<a xmlns='urn:xmpp:sm:3' h='%d'/>", a.h))
		case "a":
		default:
			a.count(e)
		}
	}
	// In order after dropping duplicates by id.
	seen := map[string]bool{}
	var order []string
	dups := 0
	for _, id := range a.msgs {
		if seen[id] {
			dups++
			continue
		}
		seen[id] = true
		order = append(order, id)
	}
	for i, id := range order {
		if id != fmt.Sprintf("f%03d", i) {
			t.Fatalf("message %d is %s: out of order (%s)", i, id, strings.Join(order[max(0, i-3):i+1], " "))
		}
	}
	t.Logf("%d messages, %d drops and resumes, %d duplicates (resent, dropped by id), none lost, in order", n, resumes, dups)
}
