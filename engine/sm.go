package engine

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// nsSM is XEP-0198 Stream Management.
const nsSM = ns.SM

// Stream management defaults.
const (
	// DefaultResumeTimeout is how long a resumable session waits for its client.
	DefaultResumeTimeout = 300 * time.Second
	// DefaultSMAckEvery and DefaultSMAckAfter: the server asks for an acknowledgement after
	// this many stanzas, or when stanzas have been unacknowledged this long.
	DefaultSMAckEvery = 10
	DefaultSMAckAfter = time.Second
	// DefaultSMAckTimeout is how long a client may leave the server's <r/> unanswered while
	// sending nothing at all before its connection is taken for dead (ejabberd's
	// ack_timeout). A phone whose TCP died without a word (a NAT that forgot it, a network
	// switch) is then detached within a minute of being sent something, and push and the
	// other resources take over, instead of after the next ping (ping_interval, 4 m) or the
	// kernel's retransmissions (~15 m).
	DefaultSMAckTimeout = 60 * time.Second
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
// Every enabled stream holds one, so it is kept to 64 bytes (a size class): its lock is
// one word, the queue of unacknowledged copies is one pointer, and what is needed only while
// a resume waits for the old connection lives in the table (smTable.setWait).
type smState struct {
	key  uint64          // its entry in the table of resumable sessions; 0 when not resumable
	sess *router.Session // set at enable and never changed: its JID names the account

	mu       smMu
	hIn      uint32 // stanzas received from the client
	hOut     uint32 // stanzas sent to the client
	acked    uint32 // the client's last acknowledged h
	expiry   uint32 // seconds a detached session waits (the max promised at enable)
	askedAt  uint32 // seconds since epoch of the last <r/> the server sent
	sinceReq uint16 // stanzas sent since the last <r/>
	awaiting bool   // an <r/> is out and no <a/> came since: no other is sent meanwhile
	answer   uint8  // the client's <r/>: answerIdle, answerWaits (a Barrier runs), answerAgain
	gen      uint16 // detachments so far (wraps): an expiry entry knows whether its detachment is over
	unacked  smQueue
	owner    *conn // the connection it is on; nil while detached
}

// ackWaiters are the Drained calls of one stream-management state waiting for the
// client's acknowledgement of the stanzas sent before each.
type ackWaiters struct {
	mu   sync.Mutex
	w    []ackWaiter
	dead bool // out of Server.ackWaits: a caller that finds it so adds a new one
}

type ackWaiter struct {
	h uint32 // the count of stanzas sent when Drained was called
	f func(ok bool)
}

// afterAck calls f(true) once the client acknowledged everything sent so far on sm, and
// f(false) when the stream goes first (its session detached or ended: a resumed stream
// resends those stanzas, an ended session gives them to another resource or storage, and
// the caller's copy stays, at worst a duplicate with its stanza-id). It asks for the ack
// now rather than at the next periodic request.
func (c *conn) afterAck(sm *smState, f func(bool)) {
	s := c.srv()
	sm.mu.Lock()
	h := sm.hOut
	if h == sm.acked {
		sm.mu.Unlock()
		f(true)
		return
	}
	gone := sm.owner != c
	ask := !gone && !sm.awaiting
	if ask {
		sm.askedAt, sm.sinceReq, sm.awaiting = sinceEpoch(time.Now()), 0, true
	}
	sm.mu.Unlock()
	if gone {
		f(false)
		return
	}
	for {
		v, loaded := s.ackWaits.LoadOrStore(sm, &ackWaiters{})
		if !loaded {
			s.ackWaitN.Add(1)
		}
		ws := v.(*ackWaiters)
		ws.mu.Lock()
		if !ws.dead {
			ws.w = append(ws.w, ackWaiter{h: h, f: f})
			ws.mu.Unlock()
			break
		}
		ws.mu.Unlock()
	}
	// The stream may have closed meanwhile (closing is set before onClose, whose
	// smClosed ends the calls registered by then): this one is ended here.
	if c.closing.Load() {
		c.ackWaitersDone(sm, false)
		return
	}
	// An ack that came between the check above and the registration found nothing to run.
	sm.mu.Lock()
	acked := sm.acked
	sm.mu.Unlock()
	if int32(acked-h) >= 0 {
		s.acked(sm, acked)
	}
	if ask {
		if err := c.gc.Wake(func(gnet.Conn, error) error {
			if !c.closing.Load() {
				c.enterLoop()
				c.write([]byte("<r xmlns='urn:xmpp:sm:3'/>"))
				c.exitLoop()
			}
			return nil
		}); err != nil {
			c.ackWaitersDone(sm, false)
		}
	}
}

// acked runs the Drained calls that the client's acknowledgement up to h covers; it
// reports whether some still wait (their stanzas need another request).
func (s *Server) acked(sm *smState, h uint32) (more bool) {
	if s.ackWaitN.Load() == 0 {
		return false
	}
	v, ok := s.ackWaits.Load(sm)
	if !ok {
		return false
	}
	ws := v.(*ackWaiters)
	ws.mu.Lock()
	var done []func(bool)
	keep := ws.w[:0]
	for _, w := range ws.w {
		if int32(h-w.h) >= 0 { // modulo 2^32, as h
			done = append(done, w.f)
		} else {
			keep = append(keep, w)
		}
	}
	ws.w = keep
	more = len(keep) > 0
	if !more && !ws.dead {
		// Nothing waits: the entry goes, so that a session keeps none while idle.
		ws.dead = true
		s.ackWaits.Delete(sm)
		s.ackWaitN.Add(-1)
	}
	ws.mu.Unlock()
	for _, f := range done {
		f(true)
	}
	return more
}

// ackWaitersDone ends every Drained call waiting on sm with ok (the stream is gone).
func (c *conn) ackWaitersDone(sm *smState, ok bool) {
	s := c.srv()
	if s.ackWaitN.Load() == 0 {
		return
	}
	v, found := s.ackWaits.Load(sm)
	if !found {
		return
	}
	ws := v.(*ackWaiters)
	ws.mu.Lock()
	w := ws.w
	ws.w = nil
	if !ws.dead {
		ws.dead = true
		s.ackWaits.Delete(sm)
		s.ackWaitN.Add(-1)
	}
	ws.mu.Unlock()
	for _, x := range w {
		x.f(ok)
	}
}

// States of smState.answer.
const (
	answerIdle  uint8 = iota
	answerWaits       // a Barrier for an <a/> runs
	answerAgain       // and another <r/> came meanwhile
)

// ackHandled answers the client's <r/> with the stanzas received so far once the router
// has handled them (router.Barrier): an <a/> lets the client forget them, so what they
// asked for (an offline message stored, an archive row) must be on disk first, not only
// read off the socket. Answers go out in order, one Barrier at a time; <r/>s that come
// while one runs get one answer after it. On the loop.
func (c *conn) ackHandled(sm *smState) {
	sm.mu.Lock()
	h := sm.hIn
	sm.mu.Unlock()
	gc := c.gc
	c.srv().rt.Barrier(sm.sess, func(bool) {
		// Whether or not the sync worked, the answer goes: a client that hears none
		// takes the stream for dead and sends everything again on another, which a full
		// disk does not make better; the failure is logged where it happened.
		gc.Wake(func(gnet.Conn, error) error {
			if c.closing.Load() || c.sm.Load() != sm {
				return nil
			}
			c.enterLoop()
			defer c.exitLoop()
			defer c.recoverPanic()
			c.write([]byte("<a xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(h), 10) + "'/>"))
			sm.mu.Lock()
			again := sm.answer == answerAgain
			if again {
				sm.answer = answerWaits
			} else {
				sm.answer = answerIdle
			}
			sm.mu.Unlock()
			if again {
				c.ackHandled(sm)
			}
			return nil
		})
	})
}

// smMu is a lock in one 32-bit word (a sync.Mutex takes two): it is held for a few
// counter updates and an append, never across a system call, so waiting means yielding.
type smMu struct{ v atomic.Uint32 }

func (m *smMu) Lock() {
	for !m.v.CompareAndSwap(0, 1) {
		runtime.Gosched()
	}
}

func (m *smMu) Unlock() { m.v.Store(0) }

// smQueue holds copies of the stanzas sent and not yet acknowledged, oldest first, each
// behind its length, in one pooled buffer: keeping a stanza allocates nothing, and a
// session whose client acknowledged everything holds no buffer (it went back to the pool,
// where the next burst of any session finds it), so idle sessions leave no copies and no
// holes behind in the heap. The buffer starts with the queue's own state, two
// little-endian uint32 (the offset of the oldest stanza's length, and how many stanzas it
// holds), so that the queue is a single pointer in every smState.
type smQueue struct {
	buf *bytebufferpool.ByteBuffer // nil when empty
}

// smQHdr is the length of the state at the start of an smQueue's buffer.
const smQHdr = 8

// len is how many stanzas q holds.
func (q *smQueue) len() uint32 {
	if q.buf == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(q.buf.B[4:])
}

func (q *smQueue) head() uint32 { return binary.LittleEndian.Uint32(q.buf.B) }

func (q *smQueue) set(head, n uint32) {
	binary.LittleEndian.PutUint32(q.buf.B, head)
	binary.LittleEndian.PutUint32(q.buf.B[4:], n)
}

var smPool bytebufferpool.Pool

func (q *smQueue) push(b []byte) {
	if q.buf == nil {
		q.buf = smPool.Get()
		q.buf.B = append(q.buf.B[:0], make([]byte, smQHdr)...)
		q.set(smQHdr, 0)
	}
	n := q.len()
	q.buf.B = binary.LittleEndian.AppendUint32(q.buf.B, uint32(len(b)))
	q.buf.B = append(q.buf.B, b...)
	q.set(q.head(), n+1)
}

// drop forgets the n oldest stanzas (n <= q.len()).
func (q *smQueue) drop(n uint32) {
	left := q.len()
	if n >= left {
		q.reset()
		return
	}
	head := q.head()
	for ; n > 0; n-- {
		head += 4 + binary.LittleEndian.Uint32(q.buf.B[head:])
		left--
	}
	// Keep the buffer from growing without end under a client that acknowledges
	// something now and then but always lags: move what is left to the front once the
	// acknowledged part is most of it.
	if head >= 4096 && int(head) > len(q.buf.B)/2 {
		q.buf.B = q.buf.B[:smQHdr+copy(q.buf.B[smQHdr:], q.buf.B[head:])]
		head = smQHdr
	}
	q.set(head, left)
}

// reset empties the queue and gives its buffer back.
func (q *smQueue) reset() {
	if q.buf != nil {
		smPool.Put(q.buf)
	}
	q.buf = nil
}

// take empties the queue into copies of its stanzas, oldest first (for the router, which
// keeps them while the session is detached).
func (q *smQueue) take() [][]byte {
	n := q.len()
	if n == 0 {
		q.reset()
		return nil
	}
	all := append([]byte(nil), q.buf.B[q.head():]...)
	out := make([][]byte, 0, n)
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

// sentLocked records, under sm.mu, a stanza written to the client; it reports whether to
// ask for an ack, and false in ok when the client has left too much unacknowledged.
func (sm *smState) sentLocked(b []byte, ackEvery int) (ask, ok bool) {
	if sm.unacked.len() >= smMaxUnacked {
		return false, false
	}
	sm.unacked.push(b)
	sm.hOut++
	if sm.sinceReq < 1<<15 {
		sm.sinceReq++
	}
	if int(sm.sinceReq) >= min(ackEvery, 1<<15) && !sm.awaiting {
		sm.sinceReq, sm.awaiting = 0, true
		sm.askedAt = sinceEpoch(time.Now())
		return true, true
	}
	return false, true
}

// overdue reports whether stanzas have waited for an acknowledgement longer than after
// since the last request, and notes a new request if so (the timeout sweep sends it);
// waiting, whether any stanza waits for one at all; unanswered, for how long the request
// that is out has gone unanswered (0 when none is out). One request is out at a time, as
// in Prosody and ejabberd: a client that does not answer (asleep, or gone without a word)
// is not sent another every second.
func (sm *smState) overdue(now, after uint32) (ask, waiting bool, unanswered uint32) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.unacked.len() == 0 {
		return false, false, 0
	}
	if sm.awaiting {
		return false, true, now - sm.askedAt
	}
	if now-sm.askedAt < after {
		return false, true, 0
	}
	sm.askedAt, sm.sinceReq, sm.awaiting = now, 0, true
	return true, true, 0
}

// keep records a stanza for a closing connection that still owns the session, as if sent.
func (sm *smState) keep(c *conn, b []byte) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.owner != c || sm.unacked.len() >= smMaxUnacked {
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
	if n > sm.unacked.len() {
		return false
	}
	sm.unacked.drop(n)
	sm.acked = h
	sm.awaiting = false
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
		busy := sm.answer != answerIdle
		if busy {
			sm.answer = answerAgain // answered, with the h of then, when the one running ends
		} else {
			sm.answer = answerWaits
		}
		sm.mu.Unlock()
		if !busy {
			c.ackHandled(sm)
		}
	case "a":
		if sm == nil {
			c.fail(stanza.UnsupportedStanzaType, "stream management is not enabled")
			return
		}
		h, ok := attrUint32(st, "h")
		if !ok {
			c.fail(stanza.UndefinedCondition, "<a/> needs a number h")
			return
		}
		if !sm.ack(h) {
			// XEP-0198 §4: an h the server never reached is a stream error, with what
			// the client claimed and what was sent.
			sm.mu.Lock()
			sent := sm.hOut
			sm.mu.Unlock()
			c.failWith(tooHigh(h, sent, "acknowledged more stanzas than were sent"))
			return
		}
		if c.srv().acked(sm, h) {
			// Stanzas a Drained call waits for came after the request this answers.
			sm.mu.Lock()
			ask := !sm.awaiting && sm.hOut != sm.acked
			if ask {
				sm.askedAt, sm.sinceReq, sm.awaiting = sinceEpoch(time.Now()), 0, true
			}
			sm.mu.Unlock()
			if ask {
				c.write([]byte("<r xmlns='urn:xmpp:sm:3'/>"))
			}
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
		// add sets sm.key under its part's lock, where other streams' lookups read the
		// keys of the part's sessions: writing it again here, outside the lock, raced.
		key := c.srv().sms.add(sm)
		b.Attr("id", c.srv().sms.id(key, c.bare.String())).Attr("resume", "true").Attr("max", strconv.Itoa(int(sm.expiry)))
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

// tooHigh is XEP-0198's stream error for an h beyond what the server sent: undefined-
// condition with <handled-count-too-high/> saying both counts.
func tooHigh(h, sent uint32, text string) stanza.StreamError {
	return stanza.StreamError{Condition: stanza.UndefinedCondition, Text: text,
		AppCondition: []byte("<handled-count-too-high xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(h), 10) +
			"' send-count='" + strconv.FormatUint(uint64(sent), 10) + "'/>")}
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

// resumeFailed answers a connection that waited to resume a session that will not be
// resumed after all (it ended, or another resume took the wait): <failed/>, or inside an
// XEP-0388 login, the login goes on without the resume, as when the id is unknown.
func (s *Server) resumeFailed(w *resumeWait) {
	next := w.c
	next.gc.Wake(func(_ gnet.Conn, err error) error {
		if err != nil || next.closing.Load() {
			return nil
		}
		next.enterLoop()
		defer next.exitLoop()
		defer next.recoverPanic()
		if w.r != nil {
			w.r.smFailed = smFailed("item-not-found")
			w.r.resume = false
			next.clear(fPaused)
			next.sasl2Inline(w.r)
			next.drainHeld() // what came while it waited (unless a bind paused it again)
			return nil
		}
		next.write(smFailed("item-not-found"))
		next.resume()
		return nil
	})
}

// findResumable returns the resumable session id of this stream's account.
func (c *conn) findResumable(id string) (*smState, bool) {
	sm, found := c.srv().sms.find(id, c.bare.String())
	if !found {
		sm, found = c.guestResumable(id)
	}
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
	if old == nil {
		// Claimed here, under the lock that saw it free: two resumes of one detached
		// session must not both go on to attach it.
		sm.owner = c
	}
	if old != nil && old != c {
		// The old connection still looks alive: close it, and resume when it has handed
		// the session back (its onClose).
		prev := c.srv().sms.setWait(sm, &resumeWait{c: c, h: h, r: r})
		sm.mu.Unlock()
		c.set(fPaused)
		if prev != nil && prev.c != c {
			c.srv().resumeFailed(prev) // the later resume wins; the earlier gets its answer
		}
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
	if sm.owner != nil && sm.owner != c {
		// A later resume claimed the session while this one waited for the old stream:
		// the later one wins.
		sm.mu.Unlock()
		c.srv().resumeFailed(&resumeWait{c: c, h: h, r: r})
		return
	}
	n := h - sm.acked // modulo 2^32, like h itself
	if n > sm.hOut-sm.acked || sm.sess == nil {
		sent := sm.hOut
		if sm.owner == c {
			sm.owner = nil // still detached: resumable with a right h
		}
		sm.mu.Unlock()
		c.write(smFailed("undefined-condition"))
		c.failWith(tooHigh(h, sent, "h is beyond what was sent"))
		return
	}
	// The router holds the unacknowledged stanzas at the head of the session's queue; the
	// client has the first n. Once the session is attached this connection counts from h
	// (attachResumed): what is resent gets the numbers it had. Until then the count stays
	// where the router's queue starts, so that a resume after this connection dies before
	// attaching skips the same n again instead of resending what the client has.
	sm.owner = c
	c.srv().sms.setWait(sm, nil)
	sm.sinceReq = 0
	sm.awaiting, sm.askedAt = false, sinceEpoch(time.Now()) // no request from before the resume is waited for
	sm.answer = answerIdle                                  // nor one of the client's answered: <resumed/> carries h
	sm.unacked.reset()
	sm.gen++
	hIn := sm.hIn
	sess := sm.sess
	sm.mu.Unlock()
	c.sm.Store(sm)
	c.set(fPaused)
	// <resumed h/> lets the client forget what the old stream sent, like <a h/>: it goes
	// once the router has handled those stanzas (ackHandled). The old stream's barrier,
	// if one ran, is forgotten with it (sm.answer), and one for all it read is as good.
	gc := c.gc
	c.srv().rt.Barrier(sess, func(bool) {
		gc.Wake(func(_ gnet.Conn, werr error) error {
			if werr != nil || c.closing.Load() || c.sm.Load() != sm {
				return nil // its onClose detached the session again
			}
			c.enterLoop()
			defer c.exitLoop()
			defer c.recoverPanic()
			c.attachResumed(sm, sess, hIn, h, n, r)
			return nil
		})
	})
}

// attachResumed answers a resume whose stanzas the router has handled, and attaches the
// session to c, counting from the client's h; c resends the unacknowledged stanzas past
// the n the client has, then what was queued while it was detached. On the loop.
func (c *conn) attachResumed(sm *smState, sess *router.Session, hIn, h, n uint32, r *sasl2Req) {
	sm.mu.Lock()
	sm.acked, sm.hOut = h, h
	sm.mu.Unlock()
	resumed := []byte("<resumed xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(hIn), 10) + "' previd='" + c.srv().sms.id(sm.key, c.bare.String()) + "'/>")
	if r != nil {
		// XEP-0198 inside SASL2: <resumed/> in <success/>, and no stream features.
		c.sasl2Success(r, sess.JID().String(), resumed)
	} else {
		c.write(resumed)
	}
	gc := c.gc
	c.srv().rt.AttachSkip(sess, c, int(n), func(err error) {
		gc.Wake(func(_ gnet.Conn, werr error) error {
			if werr != nil || c.closing.Load() {
				return nil // its onClose handed the session back (c.sess is not set)
			}
			c.enterLoop()
			defer c.exitLoop()
			defer c.recoverPanic()
			if err != nil {
				// The session ended meanwhile: nothing is left to resume, and the
				// table forgets it now rather than at an expiry it no longer matches.
				sm.mu.Lock()
				if sm.owner == c {
					sm.owner = nil
				}
				sm.mu.Unlock()
				c.srv().sms.setWait(sm, nil)
				c.srv().sms.remove(sm.key)
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
		return true // taken over by a resumed stream, whose acks run the Drained calls
	}
	c.ackWaitersDone(sm, false)
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
		wait := s.sms.setWait(sm, nil)
		sm.gen++
		gen := sm.gen
		sm.mu.Unlock()
		if !resumable || sm.sess.Ended() {
			// Ended already (a new bind took its resource): nothing to resume.
			if wait != nil {
				s.resumeFailed(wait)
			}
			if sm.key != 0 {
				s.sms.remove(sm.key)
			}
			return unacked
		}
		// The router ends the session at timeout; its table entry goes a second later.
		s.sms.expireAt(sm, gen, sinceEpoch(time.Now().Add(timeout+time.Second)))
		if wait != nil {
			next := wait.c
			next.gc.Wake(func(_ gnet.Conn, err error) error {
				// gnet runs a callback for a connection closed meanwhile too: one whose
				// onClose ran before it had the session must not take it now (nothing
				// would hand it back). The session stays detached and resumable.
				if err == nil && !next.closing.Load() {
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
	parts  [32]smPart
	// waits holds the connections waiting to resume a session while its old connection
	// closes: rare and short, so one map for all rather than a field in every smState.
	waitMu sync.Mutex
	waits  map[*smState]*resumeWait
	// expiring lists detached sessions in the order they left, with the second their
	// entry is due to go; the server's tick sweeps it (expire). A runtime timer and its
	// closure per detached session cost ~150 bytes, an entry here 16. An entry due later
	// than the ones behind it (a resumption timeout shortened by a reload) holds them back
	// until its own time: entries go late, never early.
	expMu    sync.Mutex
	expiring []smExpiry
	expHead  int
}

// smExpiry is one detached session's table entry due to go at second at, unless the
// session was resumed or detached again since (gen).
type smExpiry struct {
	sm  *smState
	at  uint32
	gen uint16
}

// expireAt queues sm's entry to go at second at (sinceEpoch) if it is still detached by
// detachment gen then.
func (t *smTable) expireAt(sm *smState, gen uint16, at uint32) {
	t.expMu.Lock()
	t.expiring = append(t.expiring, smExpiry{sm: sm, at: at, gen: gen})
	t.expMu.Unlock()
}

// expire removes the entries of sessions whose resumption window closed by second now.
func (t *smTable) expire(now uint32) {
	t.expMu.Lock()
	defer t.expMu.Unlock()
	for t.expHead < len(t.expiring) {
		e := t.expiring[t.expHead]
		if int32(now-e.at) < 0 {
			break
		}
		t.expiring[t.expHead] = smExpiry{}
		t.expHead++
		e.sm.mu.Lock()
		done := e.sm.owner == nil && e.sm.gen == e.gen
		e.sm.mu.Unlock()
		if done {
			t.remove(e.sm.key)
		}
	}
	// Keep the array from growing without end: move what is left to the front once the
	// swept part is most of it, and give a storm's large array back when it empties.
	if left := len(t.expiring) - t.expHead; t.expHead > 0 && t.expHead >= left {
		if left == 0 && cap(t.expiring) > 1024 {
			t.expiring = nil
		} else {
			n := copy(t.expiring, t.expiring[t.expHead:])
			clear(t.expiring[n:])
			t.expiring = t.expiring[:n]
		}
		t.expHead = 0
	}
}

// smPart is one part of the table: an open-addressing hash set of states by key, linear
// probing, no tombstones (removal shifts the run back). The keys are random, so the key
// is its own hash. A slot is one pointer and the set is at most three quarters full, so
// an entry costs 8 to 21 bytes where a Go map's costs ~40.
type smPart struct {
	mu    sync.Mutex
	slots []*smState // len is a power of two, or 0
	n     int
}

func (p *smPart) lookup(key uint64) (int, bool) {
	mask := uint64(len(p.slots) - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		switch sm := p.slots[i]; {
		case sm == nil:
			return int(i), false
		case sm.key == key:
			return int(i), true
		}
	}
}

func (p *smPart) get(key uint64) *smState {
	if p.n == 0 {
		return nil
	}
	if i, ok := p.lookup(key); ok {
		return p.slots[i]
	}
	return nil
}

// insert adds sm under sm.key, which is not in p.
func (p *smPart) insert(sm *smState) {
	if (p.n+1)*4 > len(p.slots)*3 {
		p.resize(max(16, 2*len(p.slots)))
	}
	i, _ := p.lookup(sm.key)
	p.slots[i] = sm
	p.n++
}

func (p *smPart) delete(key uint64) {
	if p.n == 0 {
		return
	}
	i, ok := p.lookup(key)
	if !ok {
		return
	}
	mask := len(p.slots) - 1
	// Backward shift: move later members of the run into the hole when their home slot
	// is not after it, so every lookup still finds them before an empty slot.
	for j := (i + 1) & mask; p.slots[j] != nil; j = (j + 1) & mask {
		home := int(p.slots[j].key & uint64(mask))
		if (j-home)&mask >= (j-i)&mask {
			p.slots[i] = p.slots[j]
			i = j
		}
	}
	p.slots[i] = nil
	p.n--
	if len(p.slots) > 16 && p.n*8 < len(p.slots) {
		p.resize(len(p.slots) / 2)
	}
}

func (p *smPart) resize(size int) {
	old := p.slots
	p.slots = make([]*smState, size)
	mask := uint64(size - 1)
	for _, sm := range old {
		if sm == nil {
			continue
		}
		i := sm.key & mask
		for p.slots[i] != nil {
			i = (i + 1) & mask
		}
		p.slots[i] = sm
	}
}

// smIDMAC is how many bytes of the MAC an id carries: 64 bits beside the 64-bit key.
const smIDMAC = 8

func newSMTable() *smTable {
	t := &smTable{}
	rand.Read(t.secret[:])
	return t
}

func (t *smTable) part(key uint64) *smPart {
	// The low bits pick the slot inside a part; the part comes from the high ones.
	return &t.parts[key>>59]
}

// add gives sm a fresh key (sm.key, set under the part's lock) and stores it under it.
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
		if p.get(key) != nil {
			p.mu.Unlock()
			continue
		}
		sm.key = key
		p.insert(sm)
		p.mu.Unlock()
		return key
	}
}

// setWait records w as the connection waiting to resume sm (nil: none) and returns the
// one recorded before.
func (t *smTable) setWait(sm *smState, w *resumeWait) *resumeWait {
	t.waitMu.Lock()
	defer t.waitMu.Unlock()
	old := t.waits[sm]
	switch {
	case w != nil && t.waits == nil:
		t.waits = map[*smState]*resumeWait{sm: w}
	case w != nil:
		t.waits[sm] = w
	default:
		delete(t.waits, sm)
	}
	return old
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
	key, mac, ok := decodeSMID(id)
	if !ok || !hmac.Equal(mac, t.mac(key, account)) {
		return nil, false
	}
	return t.get(key)
}

// decodeSMID splits a resumption id into its key and MAC.
func decodeSMID(id string) (key uint64, mac []byte, ok bool) {
	var b [8 + smIDMAC + 1]byte
	if idEnc.EncodedLen(8+smIDMAC) != len(id) {
		return 0, nil, false
	}
	if n, err := idEnc.Decode(b[:], []byte(id)); err != nil || n != 8+smIDMAC {
		return 0, nil, false
	}
	return binary.LittleEndian.Uint64(b[:8]), b[8 : 8+smIDMAC], true
}

// get returns the state of key.
func (t *smTable) get(key uint64) (*smState, bool) {
	p := t.part(key)
	p.mu.Lock()
	sm := p.get(key)
	p.mu.Unlock()
	return sm, sm != nil
}

func (t *smTable) remove(key uint64) {
	p := t.part(key)
	p.mu.Lock()
	p.delete(key)
	p.mu.Unlock()
}
