// Package loadgen is an XMPP client built for load: many thousands of sessions in one
// process, each a goroutine with a small read buffer and Vireo's own tokenizer, SCRAM
// logins that derive the salted password once per (password, salt, iterations) instead of
// once per login, and no per-stanza allocation on the receive path beyond what the
// scenario records. It speaks to any server: plain TCP, STARTTLS or direct TLS.
package loadgen

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vireo-im/vireo/xmlstream"
)

// Mode is how a session secures its stream.
type Mode uint8

// Modes.
const (
	Plain     Mode = iota // no TLS (server must allow it)
	StartTLS              // RFC 6120 STARTTLS
	DirectTLS             // XEP-0368
)

// Config describes how to reach and log in to a server.
type Config struct {
	Addr      string // host:port
	Domain    string
	Mode      Mode
	Mechanism string // SCRAM-SHA-1, SCRAM-SHA-256, PLAIN or ANONYMOUS (a guest: user and password unused)
	TLS       *tls.Config
	LocalAddr string // source IP (spread over 127.0.0.x when ports run short)
	Timeout   time.Duration
	// WSPath, when set, makes sessions speak RFC 7395 XMPP over WebSocket to Addr, an
	// HTTP listener: ws:// with Mode Plain, wss:// with Mode DirectTLS (StartTLS is not
	// possible there). WSPath is the endpoint's path, e.g. /xmpp-websocket.
	WSPath string
	// ClassicKeyExchange offers only classical TLS key exchanges (ClassicCurves).
	ClassicKeyExchange bool
	// SendFrom names the account in the stream header's 'from' (RFC 6120 §4.7.1), as
	// Conversations does; a server may then tailor the features to the account.
	SendFrom bool

	from string // the bare JID for 'from', set per session when SendFrom is on
}

// forUser returns cfg with the header's 'from' filled for user when SendFrom is on.
func (cfg Config) forUser(user string) Config {
	if cfg.SendFrom {
		cfg.from = user + "@" + cfg.Domain
	}
	return cfg
}

// Session is one logged-in client.
type Session struct {
	JID  string
	conn net.Conn
	st   xmlstream.State
	sc   *xmlstream.Scanner
	buf  []byte
	rest []byte
	wmu  sync.Mutex
	sm   *SM  // XEP-0198, once enabled or resumed
	ws   bool // RFC 7395 framing: conn is a *wsConn
	// held is written ahead of the next Send, in the same write: a quick start's stream
	// header, which goes out with the <authenticate/> behind it.
	held []byte
}

var saltCache sync.Map // key -> salted password

func saltedPassword(h func() hash.Hash, pass string, salt []byte, iter int) []byte {
	k := fmt.Sprintf("%p|%s|%x|%d", h, pass, salt, iter)
	if v, ok := saltCache.Load(k); ok {
		return v.([]byte)
	}
	sp, _ := pbkdf2.Key(h, pass, salt, iter, h().Size())
	saltCache.Store(k, sp)
	return sp
}

// connect opens the TCP connection from cfg.LocalAddr with cfg.Timeout (default 30 s)
// as the deadline for everything until the caller clears it.
func connect(cfg *Config) (*Session, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	if cfg.LocalAddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(cfg.LocalAddr)}
	}
	c, err := d.Dial("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(cfg.Timeout))
	s := &Session{conn: c, sc: xmlstream.NewScanner(), buf: make([]byte, 4096)}
	if cfg.WSPath != "" {
		if cfg.Mode == StartTLS {
			c.Close()
			return nil, errors.New("loadgen: no STARTTLS over WebSocket (use DirectTLS for wss://)")
		}
		if cfg.Mode == DirectTLS {
			tc := tls.Client(c, s.tlsConfig(*cfg))
			if err := tc.Handshake(); err != nil {
				c.Close()
				return nil, err
			}
			c = tc
		}
		w, err := wsUpgrade(c, cfg.Domain, cfg.WSPath)
		if err != nil {
			c.Close()
			return nil, err
		}
		s.conn, s.ws = w, true
	}
	return s, nil
}

// Dial connects, authenticates user/pass and binds resource.
func Dial(cfg Config, user, pass, resource string) (*Session, error) {
	cfg = cfg.forUser(user)
	s, err := connect(&cfg)
	if err != nil {
		return nil, err
	}
	if err := s.login(cfg, user, pass, resource); err != nil {
		s.conn.Close()
		return nil, err
	}
	s.conn.SetDeadline(time.Time{})
	return s, nil
}

// ErrConflict is Register's answer when the account exists already.
var ErrConflict = errors.New("loadgen: account exists")

// Register creates user/pass by XEP-0077 in-band registration before authentication,
// for servers whose accounts are made by the generator itself.
func Register(cfg Config, user, pass string) error {
	s, err := connect(&cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.secure(cfg); err != nil {
		return err
	}
	io.WriteString(s.conn, "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>"+user+
		"</username><password>"+pass+"</password></query></iq>")
	st, err := s.expect("iq")
	if err != nil {
		return err
	}
	switch {
	case string(st.Type) == "result":
		return nil
	case bytes.Contains(st.Raw, []byte("<conflict")):
		return ErrConflict
	}
	return fmt.Errorf("loadgen: registration of %s refused: %s", user, st.Raw)
}

func (s *Session) tlsConfig(cfg Config) *tls.Config {
	var t *tls.Config
	if cfg.TLS != nil {
		t = cfg.TLS.Clone()
		if t.ServerName == "" {
			t.ServerName = cfg.Domain
		}
	} else {
		t = &tls.Config{InsecureSkipVerify: true, ServerName: cfg.Domain}
	}
	if cfg.ClassicKeyExchange && t.CurvePreferences == nil {
		t.CurvePreferences = ClassicCurves
	}
	return t
}

// ClassicCurves are the key exchanges a client without post-quantum TLS offers (OpenSSL
// before 3.5, as Debian 12's Prosody and ejabberd have): X25519, then P-256. Go's default
// puts the X25519MLKEM768 hybrid first, which a server that supports it (Vireo, crypto/tls)
// picks, at about 60 µs more per handshake here.
var ClassicCurves = []tls.CurveID{tls.X25519, tls.CurveP256}

// resetReader starts reading a new stream from the server.
func (s *Session) resetReader() {
	lim := xmlstream.DefaultLimits()
	lim.MaxStanza = 1 << 20
	s.st.Reset(xmlstream.KindClient, &lim)
	s.rest = nil
}

func (s *Session) restart(cfg Config) error {
	s.resetReader()
	if s.ws {
		// RFC 7395 §3.4: <open/>; the tokenizer gets a stream header of its own, and
		// the server's <open/> comes as a first element that expect skips.
		if _, err := io.WriteString(s.conn, "<open xmlns='"+nsFraming+"' to='"+cfg.Domain+"' version='1.0'/>"); err != nil {
			return err
		}
		s.rest = wsStreamHeader
		_, err := s.next()
		return err
	}
	_, err := io.WriteString(s.conn, streamHeader(cfg))
	if err != nil {
		return err
	}
	if _, err := s.next(); err != nil { // header
		return err
	}
	return nil
}

func streamHeader(cfg Config) string {
	from := ""
	if cfg.from != "" {
		from = " from='" + cfg.from + "'"
	}
	return "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + cfg.Domain + "'" + from + " version='1.0'>"
}

// next returns the next complete top-level element (or the stream header) as raw bytes
// valid until the following call.
func (s *Session) next() (*xmlstream.Stanza, error) {
	for {
		if len(s.rest) > 0 {
			ev, n, err := s.sc.Next(&s.st, s.rest)
			s.rest = s.rest[n:]
			if err != nil {
				return nil, err
			}
			switch ev.Kind {
			case xmlstream.EventElement:
				if s.ws && string(ev.Stanza.Name) == "close" && bytes.Contains(ev.Stanza.Raw, []byte(nsFraming)) {
					return nil, io.EOF
				}
				return ev.Stanza, nil
			case xmlstream.EventStreamStart:
				return ev.Stanza, nil
			case xmlstream.EventStreamEnd:
				return nil, io.EOF
			}
			continue
		}
		n, err := s.conn.Read(s.buf)
		if n > 0 {
			s.rest = s.buf[:n]
		}
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

func (s *Session) expect(name string) (*xmlstream.Stanza, error) {
	for {
		st, err := s.next()
		if err != nil {
			return nil, err
		}
		if string(st.Name) == name {
			return st, nil
		}
		if string(st.Name) == "error" || string(st.Name) == "failure" {
			return nil, fmt.Errorf("loadgen: server sent %s", st.Raw)
		}
	}
}

// secure opens the stream and, as cfg asks, wraps it in TLS; it returns after the
// stream features that precede authentication, and those features (the element, valid
// until the next read).
func (s *Session) secure(cfg Config) (xmlstream.Element, error) {
	if cfg.Mode == DirectTLS && !s.ws {
		tc := tls.Client(s.conn, s.tlsConfig(cfg))
		if err := tc.Handshake(); err != nil {
			return xmlstream.Element{}, err
		}
		s.conn = tc
	}
	if err := s.restart(cfg); err != nil {
		return xmlstream.Element{}, err
	}
	f, err := s.expect("features")
	if err != nil {
		return xmlstream.Element{}, err
	}
	if cfg.Mode == StartTLS {
		io.WriteString(s.conn, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		if _, err := s.expect("proceed"); err != nil {
			return xmlstream.Element{}, err
		}
		tc := tls.Client(s.conn, s.tlsConfig(cfg))
		if err := tc.Handshake(); err != nil {
			return xmlstream.Element{}, err
		}
		s.conn = tc
		if err := s.restart(cfg); err != nil {
			return xmlstream.Element{}, err
		}
		if f, err = s.expect("features"); err != nil {
			return xmlstream.Element{}, err
		}
	}
	return f.Elem(), nil
}

func (s *Session) login(cfg Config, user, pass, resource string) error {
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
	return s.bind(cfg, user, resource)
}

// bind binds resource the RFC 6120 way, after the post-authentication features.
func (s *Session) bind(cfg Config, user, resource string) error {
	io.WriteString(s.conn, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"+resource+"</resource></bind></iq>")
	st, err := s.expect("iq")
	if err != nil {
		return err
	}
	if string(st.Type) != "result" {
		return fmt.Errorf("loadgen: bind failed: %s", st.Raw)
	}
	s.JID = user + "@" + cfg.Domain + "/" + resource
	if p, ok := st.FirstChild(); ok {
		if j, ok := p.Child("", "jid"); ok {
			s.JID = string(j.AppendText(nil))
		}
	}
	return nil
}

func (s *Session) auth(cfg Config, user, pass string) error {
	mech := cfg.Mechanism
	if mech == "" {
		mech = "SCRAM-SHA-256"
	}
	if mech == "ANONYMOUS" {
		// An empty trace (RFC 4505), sent as RFC 6120 §6.4.2's zero-length initial
		// response: with no content at all a server may ask for one first.
		io.WriteString(s.conn, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'>=</auth>")
		_, err := s.expect("success")
		return err
	}
	if mech == "PLAIN" {
		io.WriteString(s.conn, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+
			base64.StdEncoding.EncodeToString(plainMessage(user, pass))+"</auth>")
		_, err := s.expect("success")
		return err
	}
	sc, err := newScram(mech, user, pass)
	if err != nil {
		return err
	}
	io.WriteString(s.conn, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='"+mech+"'>"+
		base64.StdEncoding.EncodeToString(sc.first())+"</auth>")
	ch, err := s.expect("challenge")
	if err != nil {
		return err
	}
	first, err := base64.StdEncoding.DecodeString(string(ch.Elem().AppendText(nil)))
	if err != nil {
		return err
	}
	out, err := sc.final(first)
	if err != nil {
		return err
	}
	io.WriteString(s.conn, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"+base64.StdEncoding.EncodeToString(out)+"</response>")
	ok, err := s.expect("success")
	if err != nil {
		return err
	}
	final, _ := base64.StdEncoding.DecodeString(string(ok.Elem().AppendText(nil)))
	return sc.check(final)
}

func plainMessage(user, pass string) []byte { return []byte("\x00" + user + "\x00" + pass) }

// scramClient is the client side of one SCRAM exchange without channel binding ("n,,").
type scramClient struct {
	h                  func() hash.Hash
	pass, cnonce, bare string
	verify             string // the server signature expected in server-final
}

func newScram(mech, user, pass string) (*scramClient, error) {
	var h func() hash.Hash
	switch mech {
	case "SCRAM-SHA-1":
		h = sha1.New
	case "SCRAM-SHA-256":
		h = sha256.New
	default:
		return nil, fmt.Errorf("loadgen: mechanism %s not supported", mech)
	}
	var nb [18]byte
	rand.Read(nb[:])
	cnonce := base64.RawStdEncoding.EncodeToString(nb[:])
	bare := "n=" + strings.NewReplacer("=", "=3D", ",", "=2C").Replace(user) + ",r=" + cnonce
	return &scramClient{h: h, pass: pass, cnonce: cnonce, bare: bare}, nil
}

// first is the client-first message.
func (c *scramClient) first() []byte { return []byte("n,," + c.bare) }

// final answers server-first with client-final.
func (c *scramClient) final(serverFirst []byte) ([]byte, error) {
	out, verify, err := ScramFinal(c.h, c.pass, c.cnonce, c.bare, string(serverFirst))
	if err != nil {
		return nil, err
	}
	c.verify = verify
	return []byte(out), nil
}

// check verifies server-final.
func (c *scramClient) check(serverFinal []byte) error {
	if string(serverFinal) != "v="+c.verify {
		return errors.New("loadgen: server signature mismatch")
	}
	return nil
}

// ScramFinal computes the client-final message and the expected server signature (RFC
// 5802 §3) for a server-first message.
func ScramFinal(h func() hash.Hash, pass, cnonce, clientFirstBare, serverFirst string) (final, serverSig string, err error) {
	var nonce, salt string
	iter := 0
	for _, kv := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(kv, "r="):
			nonce = kv[2:]
		case strings.HasPrefix(kv, "s="):
			salt = kv[2:]
		case strings.HasPrefix(kv, "i="):
			iter, _ = strconv.Atoi(kv[2:])
		}
	}
	if !strings.HasPrefix(nonce, cnonce) || iter <= 0 {
		return "", "", errors.New("loadgen: bad server-first message")
	}
	saltB, err := base64.StdEncoding.DecodeString(salt)
	if err != nil {
		return "", "", err
	}
	sp := saltedPassword(h, pass, saltB, iter)
	mac := func(k []byte, s string) []byte { m := hmac.New(h, k); m.Write([]byte(s)); return m.Sum(nil) }
	clientKey := mac(sp, "Client Key")
	hh := h()
	hh.Write(clientKey)
	storedKey := hh.Sum(nil)
	without := "c=biws,r=" + nonce
	authMsg := clientFirstBare + "," + serverFirst + "," + without
	sig := mac(storedKey, authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	serverKey := mac(sp, "Server Key")
	return without + ",p=" + base64.StdEncoding.EncodeToString(proof),
		base64.StdEncoding.EncodeToString(mac(serverKey, authMsg)), nil
}

// Send writes raw XML. Safe for concurrent use.
func (s *Session) Send(raw []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.held != nil {
		raw, s.held = append(s.held, raw...), nil
	}
	_, err := s.conn.Write(raw)
	return err
}

// Next returns the next stanza; its bytes are valid until the following call. Only one
// goroutine may read. With stream management on, it counts the stanzas it returns,
// answers the server's <r/> and applies its <a/> itself (those two are not returned).
func (s *Session) Next() (*xmlstream.Stanza, error) {
	for {
		st, err := s.next()
		if err != nil {
			return nil, err
		}
		mine, err := s.handleSM(st)
		if err != nil {
			return nil, err
		}
		if mine {
			s.answerPing(st)
			return st, nil
		}
	}
}

// answerPing answers the server's XEP-0199 ping, as every client does: a server pings a
// connection that has been silent for minutes (Vireo after four) and closes it when no
// answer comes, which ended the quiet occupants of a big room while it filled.
func (s *Session) answerPing(st *xmlstream.Stanza) {
	if string(st.Name) != "iq" || !bytes.Contains(st.Raw, []byte("urn:xmpp:ping")) {
		return
	}
	if t, _ := st.Attr("type"); string(t) != "get" {
		return
	}
	id, _ := st.Attr("id")
	b := append([]byte("<iq type='result' id='"), id...)
	if from, ok := st.Attr("from"); ok {
		b = append(append(append(b, "' to='"...), from...), '\'')
	} else {
		b = append(b, '\'')
	}
	s.Send(append(b, "/>"...))
}

// SetDeadline bounds the session's reads and writes from now on (the zero time: no
// bound), so that a reply that never comes is an error and not a wait without end.
func (s *Session) SetDeadline(t time.Time) error { return s.conn.SetDeadline(t) }

// Close ends the stream.
func (s *Session) Close() error {
	s.Send(s.streamEnd())
	s.st.Release()
	return s.conn.Close()
}

// streamEnd is the end of the stream: </stream:stream>, or <close/> over WebSocket.
func (s *Session) streamEnd() []byte {
	if s.ws {
		return []byte("<close xmlns='" + nsFraming + "'/>")
	}
	return []byte("</stream:stream>")
}

// Contains reports whether raw contains sub (small helper for scenarios).
func Contains(raw []byte, sub string) bool { return bytes.Contains(raw, []byte(sub)) }
