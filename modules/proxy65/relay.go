package proxy65

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// pair is a stream hash's waiting connections: the first to name it and the second.
type pair struct {
	hash  string
	conns [2]*waiter
	n     int
	timer *time.Timer
	// activated is set (under Mod.mu) when the pair leaves the pending map to relay;
	// its waiters' watches then end without closing anything.
	activated bool
}

// waiter is a connection waiting for its stream's activation, watched for its close.
type waiter struct {
	c       *net.TCPConn
	addr    string        // client address, for the per-address count
	watched chan struct{} // closed when the watch has ended
}

// remove takes w out of the pair; it reports whether w was in it.
func (p *pair) remove(w *waiter) bool {
	for i, x := range p.conns[:p.n] {
		if x == w {
			copy(p.conns[i:], p.conns[i+1:p.n])
			p.n--
			p.conns[p.n] = nil
			return true
		}
	}
	return false
}

// stream is an activated pair, relaying.
type stream struct {
	a, b *net.TCPConn
	user string
	rate int64 // bytes per second each way, 0 for no bound: max_rate when it was activated
	once sync.Once
	last atomic.Int64 // when a byte last moved either way, Unix nanoseconds
}

func (s *stream) touch() { s.last.Store(time.Now().UnixNano()) }

// idleFor says whether no byte moved either way for d.
func (s *stream) idleFor(d time.Duration) bool {
	return time.Since(time.Unix(0, s.last.Load())) >= d
}

func (s *stream) close() {
	s.once.Do(func() {
		s.a.Close()
		s.b.Close()
	})
}

func (m *Mod) acceptLoop() {
	defer m.wg.Done()
	var backoff time.Duration
	var logged time.Time
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait and go on, as the c2s listener does,
			// and say so at most every ten seconds.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if now := time.Now(); now.Sub(logged) > 10*time.Second {
				logged = now
				m.log.Warn().Err(err).Msg("proxy65: accept failed; retrying")
			}
			select {
			case <-m.stop:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		addr := clientAddr(c)
		if !m.admit(addr) {
			c.Close()
			continue
		}
		m.wg.Add(1)
		go m.negotiate(c, addr)
	}
}

// clientAddr is the address a connection is counted under (IPv6 by /64, as c2s counts).
func clientAddr(c net.Conn) string {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return c.RemoteAddr().String()
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return a.IP.Mask(net.CIDRMask(64, 128)).String()
}

// admit counts a new connection as waiting, or refuses it over the limits.
func (m *Mod) admit(addr string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed || m.mu.waiting >= m.conf().MaxPending || m.mu.perAddr[addr] >= pendingPerAddr {
		return false
	}
	m.mu.waiting++
	m.mu.perAddr[addr]++
	return true
}

// release uncounts a waiting connection. Mod.mu is held.
func (m *Mod) release(addr string) {
	m.mu.waiting--
	if n := m.mu.perAddr[addr] - 1; n > 0 {
		m.mu.perAddr[addr] = n
	} else {
		delete(m.mu.perAddr, addr)
	}
}

// negotiate runs the SOCKS5 exchange of a new connection, leaves it waiting under its
// hash and watches it until the activation; it closes the connection when the exchange
// fails or its client goes away first.
func (m *Mod) negotiate(c net.Conn, addr string) {
	defer m.wg.Done()
	tc, _ := c.(*net.TCPConn)
	c.SetDeadline(time.Now().Add(greetingTimeout))
	var req request
	err := greet(c)
	if err == nil {
		req, err = readRequest(c)
	}
	if err == nil && tc == nil {
		err = errors.New("proxy65: not a TCP connection")
	}
	if err != nil {
		var se *errSocks
		if errors.As(err, &se) && se.reply != 0 {
			c.Write(reply(se.reply, nil))
		}
		m.log.Debug().Err(err).Str("addr", addr).Msg("proxy65: SOCKS5 negotiation failed")
		m.mu.Lock()
		m.release(addr)
		m.mu.Unlock()
		c.Close()
		return
	}
	w := &waiter{c: tc, addr: addr, watched: make(chan struct{})}
	defer close(w.watched)
	m.mu.Lock()
	p := m.mu.pending[req.hash]
	switch {
	case m.mu.closed:
		err = errClosed
	case p == nil:
		p = &pair{hash: req.hash}
		p.timer = time.AfterFunc(pendingTTL, func() { m.expire(p) })
		m.mu.pending[req.hash] = p
	case p.n == len(p.conns):
		// XEP-0065 §10: one target per stream; a third party naming the hash is refused.
		err = &errSocks{reply: replyNotAllowed, msg: "a third connection for one stream"}
	}
	if err != nil {
		m.release(addr)
		m.mu.Unlock()
		c.Write(reply(replyNotAllowed, &req))
		c.Close()
		return
	}
	p.conns[p.n] = w
	p.n++
	// Answered while holding the lock, so that an activation cannot find the connection
	// before its client has the answer; the write is small and the socket new, so it does
	// not wait (and the greeting's deadline still bounds it).
	if _, err = c.Write(reply(replySucceeded, &req)); err != nil {
		m.drop(p, w)
		m.mu.Unlock()
		return
	}
	c.SetDeadline(time.Time{})
	m.mu.Unlock()
	m.watch(p, w)
}

// watch waits until w's client closes its connection (the pair then loses it), sends
// data before the activation (left in the kernel for the relay; the watch ends), or the
// pair is activated (activate ends the watch with a read deadline in the past).
func (m *Mod) watch(p *pair, w *waiter) {
	rc, err := w.c.SyscallConn()
	if err != nil {
		return
	}
	var b [1]byte
	var gone bool
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return false // nothing yet: wait for the socket to be readable
		}
		gone = n <= 0
		return true
	})
	if err == nil && !gone {
		return // early data: the connection waits on, unwatched
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !p.activated {
		m.drop(p, w)
	}
}

// drop takes w out of its pair (and the pair out of the pending map once empty) and
// closes it. Mod.mu is held.
func (m *Mod) drop(p *pair, w *waiter) {
	if !p.remove(w) {
		return
	}
	m.release(w.addr)
	w.c.Close()
	if p.n == 0 && m.mu.pending[p.hash] == p {
		p.timer.Stop()
		delete(m.mu.pending, p.hash)
	}
}

// expire closes a pair nobody activated in time. The timer's callback can have started
// while activate held the lock (Stop does not wait for it): a pair no longer pending is
// not this expiry's to close.
func (m *Mod) expire(p *pair) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.activated || m.mu.pending[p.hash] != p {
		return
	}
	m.dropAll(p)
}

// dropAll drops every connection of p. Mod.mu is held.
func (m *Mod) dropAll(p *pair) {
	for p.n > 0 {
		m.drop(p, p.conns[0])
	}
}

// activate starts relaying the pair of the first of hashes that has one (XEP-0065
// §6.3.5: item-not-found for none, not-allowed for a lone connection); user is the
// activating account, whose active streams and rate are bounded by cfg, the settings of
// the service it asked.
func (m *Mod) activate(hashes [2]string, user string, cfg *Config) *stanza.Error {
	m.mu.Lock()
	var p *pair
	var hash string
	for _, h := range hashes {
		if p = m.mu.pending[h]; p != nil {
			hash = h
			break
		}
	}
	switch {
	case m.mu.closed:
		m.mu.Unlock()
		return stanza.New(stanza.ServiceUnavailable)
	case p == nil:
		m.mu.Unlock()
		e := stanza.New(stanza.ItemNotFound)
		e.Text = "no connection for this stream: both parties connect before the activation"
		return e
	case p.n < len(p.conns):
		m.mu.Unlock()
		e := stanza.New(stanza.NotAllowed)
		e.Text = "only one party is connected"
		return e
	case len(m.mu.active) >= m.conf().MaxStreams || m.mu.perUser[user] >= cfg.MaxStreamsPerUser:
		m.mu.Unlock()
		e := stanza.New(stanza.ResourceConstraintCond) // type wait
		e.Text = "too many file transfers through this proxy at once"
		return e
	}
	delete(m.mu.pending, hash)
	p.timer.Stop()
	p.activated = true
	for _, w := range p.conns[:p.n] {
		m.release(w.addr)
		w.c.SetReadDeadline(aLongTimeAgo) // ends the watch
	}
	s := &stream{a: p.conns[0].c, b: p.conns[1].c, user: user, rate: cfg.MaxRate}
	s.touch()
	m.mu.active[s] = struct{}{}
	m.mu.perUser[user]++
	m.wg.Add(1)
	conns := p.conns // the relay's own copy, whatever becomes of the pair
	m.mu.Unlock()
	go func() {
		for _, w := range conns {
			<-w.watched
			w.c.SetReadDeadline(time.Time{})
		}
		m.relay(s)
	}()
	return nil
}

// aLongTimeAgo is a read deadline that has passed: it wakes a goroutine waiting to read.
var aLongTimeAgo = time.Unix(1, 0)

// relay copies both ways until both directions end, then closes and uncounts s.
func (m *Mod) relay(s *stream) {
	defer m.wg.Done()
	start := time.Now()
	var wg sync.WaitGroup
	var ab, ba int64
	wg.Add(2)
	go func() { defer wg.Done(); ab = m.pipe(s, s.b, s.a) }()
	go func() { defer wg.Done(); ba = m.pipe(s, s.a, s.b) }()
	wg.Wait()
	s.close()
	// One line per transfer, at debug: who used the proxy for how much, when an operator
	// looks into its bandwidth.
	m.log.Debug().Str("user", s.user).Int64("bytes_first_to_second", ab).Int64("bytes_second_to_first", ba).
		Dur("took", time.Since(start)).Msg("proxy65: stream ended")
	m.mu.Lock()
	delete(m.mu.active, s)
	if n := m.mu.perUser[s.user] - 1; n > 0 {
		m.mu.perUser[s.user] = n
	} else {
		delete(m.mu.perUser, s.user)
	}
	m.mu.Unlock()
}

// pipe copies src to dst and returns how many bytes it moved. At src's end it passes the
// half-close on (the receiver sees the end of the file while its own direction may go on);
// on an error, or when neither direction moved a byte for the idle time, it ends the
// stream. Each direction wakes every quarter of the idle time to note its progress (a
// splice in flight shows none until it returns), so a one-way transfer keeps its quiet
// direction open: that side wakes, finds the other's progress, and reads on. A stream
// counts as idle once the last progress noted is older than idle and a quarter: what a
// direction moved is noted at most a quarter late.
func (m *Mod) pipe(s *stream, dst, src *net.TCPConn) int64 {
	idle := m.idle
	if idle == 0 {
		idle = relayIdle
	}
	tick := idle / 4
	var total int64
	for {
		src.SetReadDeadline(time.Now().Add(tick))
		var n int64
		var err error
		var eof bool
		if rate := s.rate; rate > 0 {
			n, err = m.copyPaced(dst, src, rate, s)
			eof = err == nil
		} else {
			// splice(2) between the two sockets, a chunk at a time so progress shows.
			lr := &io.LimitedReader{R: src, N: relayChunk}
			n, err = dst.ReadFrom(lr)
			eof = err == nil && lr.N > 0
		}
		total += n
		if n > 0 {
			s.touch()
		}
		switch {
		case eof:
			dst.CloseWrite()
			return total
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && (n > 0 || !s.idleFor(idle+tick)):
		default:
			s.close()
			return total
		}
	}
}

// copyPaced copies at most rate bytes per second; it returns the bytes copied, and a nil
// error at src's end. Each read marks s's progress (s may be nil).
func (m *Mod) copyPaced(dst, src net.Conn, rate int64, s *stream) (int64, error) {
	buf := make([]byte, min(32<<10, max(rate/8, 512)))
	start, sent := time.Now(), int64(0)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if s != nil {
				s.touch()
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return sent, err
			}
			sent += int64(n)
			if ahead := time.Duration(float64(sent)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
				t := time.NewTimer(ahead)
				select {
				case <-m.stop:
					t.Stop()
					return sent, errClosed
				case <-t.C:
				}
			}
		}
		if rerr == io.EOF {
			return sent, nil
		}
		if rerr != nil {
			return sent, rerr
		}
	}
}
