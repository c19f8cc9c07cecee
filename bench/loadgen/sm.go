package loadgen

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/vireo-im/vireo/xmlstream"
)

// NSSM is XEP-0198 Stream Management.
const NSSM = "urn:xmpp:sm:3"

// SM is the client side of a XEP-0198 session. In is the h the client acknowledges (the
// stanzas it has read since <enabled/>); Out counts the stanzas it has sent with
// SendStanza; Acked is the server's last h for them, and the copies of Acked+1..Out are
// kept to be sent again after a resume that did not cover them.
type SM struct {
	ID  string // resumption id (previd); empty when the server offered no resumption
	Max int    // the server's resumption timeout in seconds (0: not given)

	In      uint32 // read only by the session's reader, or once it has stopped
	Out     uint32 // the rest under the session's write lock
	Acked   uint32
	unacked [][]byte
	// AcksSent counts the <a/> answers to the server's <r/>; Resent the stanzas sent
	// again after a resume because the server's h did not cover them.
	AcksSent int
	Resent   int
}

// ErrResumeFailed is Resume's answer when the server refuses the resumption (<failed/>).
var ErrResumeFailed = errors.New("loadgen: resumption refused")

// smKind classifies a top-level element read on a stream with stream management on.
type smKind uint8

const (
	smOther   smKind = iota // stream features, errors, anything that is neither
	smStanza                // message, presence or iq: counts for h
	smRequest               // <r/>: answer with <a h=In/>
	smAck                   // <a h=…/>: the server's count of what the client sent
)

func classify(st *xmlstream.Stanza) smKind {
	if st.Kind() != xmlstream.KindOther {
		return smStanza
	}
	if string(st.NS) != NSSM {
		return smOther
	}
	switch string(st.Name) {
	case "r":
		return smRequest
	case "a":
		return smAck
	}
	return smOther
}

// hAttr reads an h attribute (an unsigned 32-bit counter).
func hAttr(st *xmlstream.Stanza) (uint32, error) {
	v, ok := st.Attr("h")
	if !ok {
		return 0, fmt.Errorf("loadgen: %s without h", st.Name)
	}
	n, err := strconv.ParseUint(string(v), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("loadgen: bad h %q", v)
	}
	return uint32(n), nil
}

// ack applies the server's h to what the client has sent: the copies it covers are
// dropped. h counts modulo 2^32 (XEP-0198 §4); an h beyond Out is an error.
func (m *SM) ack(h uint32) error {
	n := h - m.Acked
	if int64(n) > int64(len(m.unacked)) {
		return fmt.Errorf("loadgen: server acknowledged %d stanzas, %d were unacknowledged", n, len(m.unacked))
	}
	m.unacked = m.unacked[n:]
	if len(m.unacked) == 0 {
		m.unacked = nil
	}
	m.Acked = h
	return nil
}

// Unacked is how many sent stanzas the server has not acknowledged yet.
func (m *SM) Unacked() int { return len(m.unacked) }

func ackElem(h uint32) []byte {
	return []byte("<a xmlns='" + NSSM + "' h='" + strconv.FormatUint(uint64(h), 10) + "'/>")
}

// EnableSM asks for stream management after bind, with resumption when resume is set,
// and waits for <enabled/>. Call it before any reader starts on the session.
func (s *Session) EnableSM(resume bool) error {
	e := "<enable xmlns='" + NSSM + "'/>"
	if resume {
		e = "<enable xmlns='" + NSSM + "' resume='true'/>"
	}
	if err := s.Send([]byte(e)); err != nil {
		return err
	}
	st, err := s.expect("enabled")
	if err != nil {
		return err
	}
	m := &SM{}
	if v, ok := st.Attr("id"); ok {
		m.ID = string(xmlstream.AppendUnescaped(nil, v))
	}
	if v, ok := st.Attr("max"); ok {
		m.Max, _ = strconv.Atoi(string(v))
	}
	if resume && m.ID == "" {
		return errors.New("loadgen: server enabled stream management without resumption")
	}
	s.wmu.Lock()
	s.sm = m
	s.wmu.Unlock()
	return nil
}

// SM returns a copy of the session's stream-management counters (nil when not
// enabled). In is exact only from the reader or after it has stopped.
func (s *Session) SM() *SM {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.sm == nil {
		return nil
	}
	c := *s.sm
	c.unacked = nil
	return &c
}

// SendStanza writes one stanza; with stream management on it is counted and kept until
// the server acknowledges it. Safe for concurrent use.
func (s *Session) SendStanza(raw []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.sm != nil {
		s.sm.Out++
		s.sm.unacked = append(s.sm.unacked, append([]byte(nil), raw...))
	}
	_, err := s.conn.Write(raw)
	return err
}

// handleSM is the reader's part of stream management: it counts stanzas, answers <r/>
// and applies <a/>. It reports whether st is for the caller (a stanza or anything that
// is not stream management).
func (s *Session) handleSM(st *xmlstream.Stanza) (bool, error) {
	m := s.sm // set before the reader starts, replaced only by Resume on a new Session
	if m == nil {
		return true, nil
	}
	switch classify(st) {
	case smStanza:
		m.In++
		return true, nil
	case smRequest:
		s.wmu.Lock()
		m.AcksSent++
		_, err := s.conn.Write(ackElem(m.In))
		s.wmu.Unlock()
		return false, err
	case smAck:
		h, err := hAttr(st)
		if err != nil {
			return false, err
		}
		s.wmu.Lock()
		err = m.ack(h)
		s.wmu.Unlock()
		return false, err
	}
	return true, nil
}

// Drop closes the TCP connection without ending the stream, as a client that loses its
// network does: a server with resumption keeps the session detached. The reader's Next
// returns an error; the SM counters stay for Resume.
func (s *Session) Drop() error {
	if w, ok := s.conn.(*wsConn); ok {
		return w.Conn.Close() // no close frame: the network is gone
	}
	return s.conn.Close()
}

// EndStream sends the stream's end without closing the connection: the server ends the
// session (no resumption) and closes its side, which the reader sees as the end.
func (s *Session) EndStream() error { return s.Send(s.streamEnd()) }

// Release frees the parser state of a session whose reader has stopped (after Drop).
func (s *Session) Release() { s.st.Release() }

// Resume opens a new stream for user, authenticates and resumes prev's stream-management
// session (XEP-0198 §5) with the h prev has counted, instead of binding. prev must have
// been dropped and its reader stopped. On <resumed/> the server's h acknowledges what
// prev sent; whatever it does not cover is sent again. The new session carries prev's
// JID and counters on.
func Resume(cfg Config, user, pass string, prev *Session) (*Session, error) {
	m := prev.sm
	if m == nil || m.ID == "" {
		return nil, errors.New("loadgen: no resumable session to resume")
	}
	s, err := connect(&cfg)
	if err != nil {
		return nil, err
	}
	if err := s.resume(cfg, user, pass, m); err != nil {
		s.conn.Close()
		return nil, err
	}
	s.JID = prev.JID
	s.conn.SetDeadline(time.Time{})
	return s, nil
}

func (s *Session) resume(cfg Config, user, pass string, m *SM) error {
	if _, err := s.secure(cfg); err != nil {
		return err
	}
	if err := s.auth(cfg, user, pass); err != nil {
		return err
	}
	if err := s.restart(cfg); err != nil {
		return err
	}
	if _, err := s.expect("features"); err != nil {
		return err
	}
	if err := s.Send([]byte("<resume xmlns='" + NSSM + "' previd='" + xmlEscape(m.ID) + "' h='" +
		strconv.FormatUint(uint64(m.In), 10) + "'/>")); err != nil {
		return err
	}
	for {
		st, err := s.next()
		if err != nil {
			return err
		}
		switch string(st.Name) {
		case "resumed":
			return s.resumed(st, m)
		case "failed":
			return fmt.Errorf("%w: %s", ErrResumeFailed, st.Raw)
		case "error":
			return fmt.Errorf("loadgen: server sent %s", st.Raw)
		}
	}
}

// resumed applies the server's <resumed h=…/> to m, sends again what h does not cover, in
// order, before anything new, and makes m the session's.
func (s *Session) resumed(st *xmlstream.Stanza, m *SM) error {
	h, err := hAttr(st)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := m.ack(h); err != nil {
		return err
	}
	for _, raw := range m.unacked {
		if _, err := s.conn.Write(raw); err != nil {
			return err
		}
		m.Resent++
	}
	s.sm = m
	return nil
}

func xmlEscape(s string) string { return string(xmlstream.AppendEscapedString(nil, s)) }
