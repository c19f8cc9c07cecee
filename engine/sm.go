package engine

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// nsSM is XEP-0198 Stream Management.
const nsSM = "urn:xmpp:sm:3"

// Stream management defaults.
const (
	// DefaultResumeTimeout is how long a resumable session waits for its client.
	DefaultResumeTimeout = 300 * time.Second
	// DefaultSMAckEvery and DefaultSMAckAfter: the server asks for an acknowledgement after
	// this many stanzas, or when stanzas have been unacknowledged this long.
	DefaultSMAckEvery = 10
	DefaultSMAckAfter = time.Second
	// smMaxUnacked bounds what one stream may have unacknowledged; past it the client is
	// not acknowledging and the stream is closed (what was unacknowledged is not lost: it
	// goes to the router like on any other close).
	smMaxUnacked = 1000
)

// smState is one stream-management session (XEP-0198). It lives on the connection that
// enabled it and, when the client asked for resumption, in the server's table by id, so a
// new connection of the same account can take it over. Stream management is the engine's
// part of the protocol because it counts every stanza on the wire, including the ones the
// engine writes itself; the session that outlives the connection is the router's
// (DetachWith, AttachSkip).
//
// Every enabled stream holds one, so it is kept small: what is needed only while a resume
// waits for the old connection lives behind wait.
type smState struct {
	key  uint64          // its entry in the table of resumable sessions; 0 when not resumable
	sess *router.Session // set at enable and never changed: its JID names the account

	mu       sync.Mutex
	hIn      uint32 // stanzas received from the client
	hOut     uint32 // stanzas sent to the client
	acked    uint32 // the client's last acknowledged h
	expiry   uint32 // seconds a detached session waits (the max promised at enable)
	askedAt  uint32 // seconds since epoch of the last <r/> the server sent
	sinceReq uint16 // stanzas sent since the last <r/>
	gen      uint16 // detachments so far (wraps): a timer knows whether its detachment is over
	unacked  smQueue
	owner    *conn // the connection it is on; nil while detached
	wait     *resumeWait
}

// smQueue holds copies of the stanzas sent and not yet acknowledged, oldest first, each
// behind its length, in one pooled buffer: keeping a stanza allocates nothing, and a
// session whose client acknowledged everything holds no buffer (it went back to the pool,
// where the next burst of any session finds it), so idle sessions leave no copies and no
// holes behind in the heap.
type smQueue struct {
	buf  *bytebufferpool.ByteBuffer // nil when empty
	head uint32                     // offset of the oldest stanza's length in buf
	n    uint32                     // stanzas held
}

var smPool bytebufferpool.Pool

func (q *smQueue) push(b []byte) {
	if q.buf == nil {
		q.buf = smPool.Get()
		q.buf.B = q.buf.B[:0]
	}
	q.buf.B = binary.LittleEndian.AppendUint32(q.buf.B, uint32(len(b)))
	q.buf.B = append(q.buf.B, b...)
	q.n++
}

// drop forgets the n oldest stanzas (n <= q.n).
func (q *smQueue) drop(n uint32) {
	if n >= q.n {
		q.reset()
		return
	}
	for ; n > 0; n-- {
		q.head += 4 + binary.LittleEndian.Uint32(q.buf.B[q.head:])
		q.n--
	}
	// Keep the buffer from growing without end under a client that acknowledges
	// something now and then but always lags: move what is left to the front once the
	// acknowledged part is most of it.
	if q.head >= 4096 && int(q.head) > len(q.buf.B)/2 {
		q.buf.B = q.buf.B[:copy(q.buf.B, q.buf.B[q.head:])]
		q.head = 0
	}
}

// reset empties the queue and gives its buffer back.
func (q *smQueue) reset() {
	if q.buf != nil {
		smPool.Put(q.buf)
	}
	*q = smQueue{}
}

// take empties the queue into copies of its stanzas, oldest first (for the router, which
// keeps them while the session is detached).
func (q *smQueue) take() [][]byte {
	if q.n == 0 {
		q.reset()
		return nil
	}
	all := append([]byte(nil), q.buf.B[q.head:]...)
	out := make([][]byte, 0, q.n)
	for i := 0; i < len(all); {
		l := int(binary.LittleEndian.Uint32(all[i:]))
		out = append(out, all[i+4:i+4+l:i+4+l])
		i += 4 + l
	}
	q.reset()
	return out
}

// resumeWait is a connection waiting to resume a session while the old connection closes.
type resumeWait struct {
	c *conn
	h uint32
	r *sasl2Req // the resume is inside an XEP-0388 login
}

// sent records a stanza written to the client; it reports whether to ask for an ack, and
// false in ok when the client has left too much unacknowledged.
func (sm *smState) sent(b []byte, ackEvery int) (ask, ok bool) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.unacked.n >= smMaxUnacked {
		return false, false
	}
	sm.unacked.push(b)
	sm.hOut++
	sm.sinceReq++
	if int(sm.sinceReq) >= min(ackEvery, 1<<15) {
		sm.sinceReq = 0
		sm.askedAt = sinceEpoch(time.Now())
		return true, true
	}
	return false, true
}

// overdue reports whether stanzas have waited for an acknowledgement longer than after
// since the last request, and notes a new request if so (the timeout sweep sends it).
func (sm *smState) overdue(now, after uint32) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.unacked.n == 0 || now-sm.askedAt < after {
		return false
	}
	sm.askedAt, sm.sinceReq = now, 0
	return true
}

// keep records a stanza for a closing connection that still owns the session, as if sent.
func (sm *smState) keep(c *conn, b []byte) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.owner != c || sm.unacked.n >= smMaxUnacked {
		return false
	}
	sm.unacked.push(b)
	sm.hOut++
	return true
}

// ack applies the client's h; false when h acknowledges more than was sent.
func (sm *smState) ack(h uint32) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	n := h - sm.acked // modulo 2^32
	if n > sm.unacked.n {
		return false
	}
	sm.unacked.drop(n)
	sm.acked = h
	return true
}

// onSM handles the stream-management elements of an established stream.
func (c *conn) onSM(st *xmlstream.Stanza) {
	sm := c.sm.Load()
	switch string(st.Name) {
	case "enable":
		if sm != nil {
			c.write(smFailed("unexpected-request"))
			return
		}
		v, _ := st.Attr("resume")
		sm, enabled := c.newSM(string(v) == "true" || string(v) == "1")
		// Counting starts exactly at <enabled/>: a stanza sent meanwhile waits for the
		// lock and is counted after it (Send), or went out before it uncounted.
		sm.mu.Lock()
		c.sm.Store(sm)
		c.write(enabled)
		sm.mu.Unlock()
	case "r":
		if sm == nil {
			c.fail(stanza.UnsupportedStanzaType, "stream management is not enabled")
			return
		}
		sm.mu.Lock()
		h := sm.hIn
		sm.mu.Unlock()
		c.write([]byte("<a xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(h), 10) + "'/>"))
	case "a":
		if sm == nil {
			c.fail(stanza.UnsupportedStanzaType, "stream management is not enabled")
			return
		}
		h, ok := attrUint32(st, "h")
		if !ok || !sm.ack(h) {
			// XEP-0198 §4: an h the server never reached is an error that ends the stream.
			c.write([]byte("<failed xmlns='urn:xmpp:sm:3'><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"))
			c.fail(stanza.UndefinedCondition, "acknowledged more stanzas than were sent")
		}
	default:
		c.fail(stanza.UnsupportedStanzaType, "")
	}
}

// newSM makes the stream-management state for the established stream and its <enabled/>
// answer; the caller stores it in c.sm under its lock while writing the answer.
func (c *conn) newSM(resume bool) (*smState, []byte) {
	cfg := c.srv().config()
	sm := &smState{sess: c.sess, owner: c, expiry: uint32(cfg.ResumeTimeout / time.Second),
		askedAt: sinceEpoch(time.Now())}
	var b xmlstream.Builder
	b.Start("enabled").Attr("xmlns", nsSM)
	if resume {
		sm.key = c.srv().sms.add(sm)
		b.Attr("id", c.srv().sms.id(sm.key, c.bare.String())).Attr("resume", "true").Attr("max", strconv.Itoa(int(sm.expiry)))
	}
	b.End()
	return sm, b.B
}

func attrUint32(st *xmlstream.Stanza, name string) (uint32, bool) {
	v, ok := st.Attr(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(string(v), 10, 32)
	return uint32(n), err == nil
}

func smFailed(cond string) []byte {
	return []byte("<failed xmlns='urn:xmpp:sm:3'><" + cond + " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")
}

// onResume handles <resume/> on an authenticated stream before bind (XEP-0198 §5).
func (c *conn) onResume(st *xmlstream.Stanza) {
	id, _ := st.Attr("previd")
	h, hok := attrUint32(st, "h")
	sm, found := c.findResumable(string(id))
	if !found || !hok {
		c.write(smFailed("item-not-found"))
		return
	}
	c.takeOver(sm, h, nil)
}

// findResumable returns the resumable session id of this stream's account.
func (c *conn) findResumable(id string) (*smState, bool) {
	sm, found := c.srv().sms.find(id, c.bare.String())
	if !found || sm.sess == nil || !sm.sess.JID().Bare().Equal(c.bare) || sm.sess.Ended() {
		if found && sm.sess != nil && sm.sess.Ended() {
			c.srv().sms.remove(sm.key)
		}
		return nil, false
	}
	return sm, true
}

// takeOver resumes sm on c, at once when it is detached; r is the XEP-0388 login it is
// part of, or nil.
func (c *conn) takeOver(sm *smState, h uint32, r *sasl2Req) {
	sm.mu.Lock()
	old := sm.owner
	if old != nil && old != c {
		// The old connection still looks alive: close it, and resume when it has handed
		// the session back (its onClose).
		sm.wait = &resumeWait{c: c, h: h, r: r}
		sm.mu.Unlock()
		c.set(fPaused)
		old.closeNow()
		return
	}
	sm.mu.Unlock()
	c.finishResume(sm, h, r)
}

// finishResume runs on c's loop once the session is detached; r is the XEP-0388 login the
// resume is part of, or nil.
func (c *conn) finishResume(sm *smState, h uint32, r *sasl2Req) {
	sm.mu.Lock()
	n := h - sm.acked // modulo 2^32, like h itself
	if n > sm.hOut-sm.acked || sm.sess == nil {
		sm.mu.Unlock()
		c.write(smFailed("undefined-condition"))
		c.fail(stanza.UndefinedCondition, "h is beyond what was sent")
		return
	}
	// The router holds the unacknowledged stanzas at the head of the session's queue; the
	// client has the first n. From here this connection counts: what is resent gets the
	// numbers it had.
	sm.owner, sm.wait = c, nil
	sm.acked, sm.hOut, sm.sinceReq = h, h, 0
	sm.unacked.reset()
	sm.gen++
	hIn := sm.hIn
	sess := sm.sess
	sm.mu.Unlock()
	c.sm.Store(sm)
	resumed := []byte("<resumed xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(hIn), 10) + "' previd='" + c.srv().sms.id(sm.key, c.bare.String()) + "'/>")
	if r != nil {
		// XEP-0198 inside SASL2: <resumed/> in <success/>, and no stream features.
		c.sasl2Success(r, sess.JID().String(), resumed)
	} else {
		c.write(resumed)
	}
	c.set(fPaused)
	gc := c.gc
	c.srv().rt.AttachSkip(sess, c, int(n), func(err error) {
		gc.Wake(func(_ gnet.Conn, werr error) error {
			if werr != nil {
				return nil
			}
			c.enterLoop()
			defer c.exitLoop()
			defer c.recoverPanic()
			if err != nil {
				c.sm.Store(nil)
				c.fail(stanza.UndefinedCondition, "the session ended while resuming")
				return nil
			}
			c.sess = sess
			c.state.Store(stEstablished)
			c.srv().established.Add(1)
			c.resume()
			return nil
		})
	})
}

// smClosed runs from onClose: a resumable session is detached with what the client has
// not acknowledged, for the resumption timeout; a non-resumable one hands its unacknowledged
// stanzas to the RFC 6121 rules at once. It reports whether the session was handed to the
// router (so onClose must not unbind it).
func (c *conn) smClosed() bool {
	sm := c.sm.Load()
	if sm == nil || sm.sess == nil {
		return false
	}
	sm.mu.Lock()
	owner := sm.owner
	sm.mu.Unlock()
	if owner != c {
		return true // taken over by a resumed stream
	}
	s := c.srv()
	// A clean close by the client, or the server shutting down, ends the session now.
	resumable := sm.key != 0 && !c.has(fCleanEnd) && !s.stopping.Load()
	timeout := time.Duration(sm.expiry) * time.Second
	if !resumable {
		timeout = 0
	}
	// The handover happens on the session's shard, in order with deliveries: whatever the
	// router sent this connection before the detach is in unacked (Send keeps it while
	// the connection closes), everything after is queued by the router.
	s.rt.DetachWith(sm.sess, timeout, func() [][]byte {
		sm.mu.Lock()
		if sm.owner != c {
			sm.mu.Unlock()
			return nil
		}
		unacked := sm.unacked.take()
		sm.owner = nil
		wait := sm.wait
		sm.gen++
		gen := sm.gen
		sm.mu.Unlock()
		if !resumable {
			if sm.key != 0 {
				s.sms.remove(sm.key)
			}
			return unacked
		}
		time.AfterFunc(timeout+time.Second, func() {
			sm.mu.Lock()
			done := sm.owner == nil && sm.gen == gen
			sm.mu.Unlock()
			if done {
				s.sms.remove(sm.key)
			}
		})
		if wait != nil {
			next := wait.c
			next.gc.Wake(func(_ gnet.Conn, err error) error {
				if err == nil {
					defer next.recoverPanic()
					next.clear(fPaused)
					next.finishResume(sm, wait.h, wait.r)
				}
				return nil
			})
		}
		return unacked
	})
	return true
}

// smTable holds the resumable sessions. Every resumable stream has an entry, so it is a
// plain map split in parts with a lock each, keyed by a random 64-bit number, rather than a
// sync.Map or a map of id strings: the id a client gets is that key and a MAC of it and
// the account (smIDMAC), derived again when needed, so no session keeps its id as text,
// a guessed key is useless without the server's secret, and an id is good for one
// account only.
type smTable struct {
	secret [32]byte
	parts  [32]struct {
		mu sync.Mutex
		m  map[uint64]*smState
	}
}

// smIDMAC is how many bytes of the MAC an id carries: 64 bits beside the 64-bit key.
const smIDMAC = 8

func newSMTable() *smTable {
	t := &smTable{}
	rand.Read(t.secret[:])
	return t
}

func (t *smTable) part(key uint64) *struct {
	mu sync.Mutex
	m  map[uint64]*smState
} {
	return &t.parts[key%uint64(len(t.parts))]
}

// add gives sm a fresh key and stores it under it.
func (t *smTable) add(sm *smState) uint64 {
	for {
		var b [8]byte
		rand.Read(b[:])
		key := binary.LittleEndian.Uint64(b[:])
		if key == 0 {
			continue
		}
		p := t.part(key)
		p.mu.Lock()
		if _, taken := p.m[key]; taken {
			p.mu.Unlock()
			continue
		}
		if p.m == nil {
			p.m = make(map[uint64]*smState)
		}
		p.m[key] = sm
		p.mu.Unlock()
		return key
	}
}

// mac is the MAC of key for account.
func (t *smTable) mac(key uint64, account string) []byte {
	m := hmac.New(sha256.New, t.secret[:])
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], key)
	m.Write(b[:])
	m.Write([]byte(account))
	return m.Sum(nil)[:smIDMAC]
}

// id is the resumption id of key for account (26 characters).
func (t *smTable) id(key uint64, account string) string {
	var b [8 + smIDMAC]byte
	binary.LittleEndian.PutUint64(b[:], key)
	copy(b[8:], t.mac(key, account))
	return idEnc.EncodeToString(b[:])
}

// find returns the session an id names, if the id was made for account.
func (t *smTable) find(id, account string) (*smState, bool) {
	var b [8 + smIDMAC + 1]byte
	if idEnc.EncodedLen(8+smIDMAC) != len(id) {
		return nil, false
	}
	if n, err := idEnc.Decode(b[:], []byte(id)); err != nil || n != 8+smIDMAC {
		return nil, false
	}
	key := binary.LittleEndian.Uint64(b[:8])
	if !hmac.Equal(b[8:8+smIDMAC], t.mac(key, account)) {
		return nil, false
	}
	p := t.part(key)
	p.mu.Lock()
	sm, ok := p.m[key]
	p.mu.Unlock()
	return sm, ok && sm != nil
}

func (t *smTable) remove(key uint64) {
	p := t.part(key)
	p.mu.Lock()
	delete(p.m, key)
	p.mu.Unlock()
}
