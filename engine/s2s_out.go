package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	mrand "math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// s2sWritePool holds the buffers outbound streams gather a burst in.
var s2sWritePool bytebufferpool.Pool

// Outbound federation tunables.
const (
	// s2sQueueMax bounds the stanzas held for one remote domain while its stream is set up
	// (or while its writer is behind); past it Route refuses with resource-constraint.
	s2sQueueMax = 1024
	// s2sQueueBytes bounds the bytes of those stanzas: a peer that reads just fast enough
	// to stay within the write deadline would otherwise hold s2sQueueMax of the largest
	// stanza, per pair of domains.
	s2sQueueBytes = 4 << 20
	// s2sSetupTimeout is the default S2S.SetupTimeout: a peer slower than this to dial,
	// STARTTLS and dialback is unreachable for the stanzas queued meanwhile.
	s2sSetupTimeout = 15 * time.Second
	// s2sWriteTimeout bounds one write on an established outbound stream.
	s2sWriteTimeout = 30 * time.Second
	// s2sCoalesce is how many bytes of queued stanzas one write may gather: four TLS
	// records' worth.
	s2sCoalesce = 64 << 10
	// s2sIdleTimeout is the default S2S.IdleTimeout: long enough that a conversation's
	// pauses keep their stream, short enough that streams to servers we rarely talk to
	// do not pile up.
	s2sIdleTimeout = 10 * time.Minute
	// s2sBackoffMin and s2sBackoffMax are the default S2S.BackoffMin and BackoffMax: a
	// peer that is briefly down is retried within seconds, one that stays down costs a
	// dial every few minutes at most.
	s2sBackoffMin = 2 * time.Second
	s2sBackoffMax = 5 * time.Minute
	// s2sReadBuf is the outbound goroutine's read buffer (negotiation and a peer's rare
	// stream-level answers only: stanzas from the peer come on its own stream).
	s2sReadBuf = 4 << 10
)

// s2sOut is the router's Remote: one outbound stream per (local domain, remote domain),
// dialed on first use. The outbound side does not run on the gnet loops in this slice:
// each stream has a writer goroutine and a reader goroutine over a blocking net.Conn and
// crypto/tls, with the xmlstream tokenizer for what the peer sends. Stanzas are queued
// (bounded) while the stream is set up; when setup fails, every queued stanza is bounced
// through the router with remote-server-not-found (or remote-server-timeout).
type s2sOut struct {
	srv    *Server
	secret []byte
	ctx    context.Context
	cancel context.CancelFunc
	// unsent counts the stanzas in the peers' queues and in their writes under way: one
	// more when enqueue takes a stanza, one less when it is written, bounced or handed over
	// (handOver counts it again in the new peer). Flush waits for zero.
	unsent atomic.Int64
	// charges holds the router.Charge of each authenticated inbound stream (*conn):
	// what one peer has inside the router is bounded, its stream paused past that.
	charges sync.Map
	mu      struct {
		sync.Mutex
		peers   map[[2]string]*outPeer
		backoff map[string]*retryState // remote domain -> failures, after a failed stream
		// backoffKept is how many entries backoff had after its last sweep (noteResult).
		backoffKept int
		in          map[*conn]inStream // authenticated inbound streams, for S2SConns
		inSeq       uint64             // the last inStream.seq
		// bidi are the inbound streams whose peer asked for a bidirectional stream
		// (XEP-0288), by the domain pair (local, remote) they authenticated: Route sends
		// over one when no outbound stream for the pair exists.
		bidi map[[2]string]*conn
		// opens counts, per local account, the outbound streams its stanzas made in the
		// current s2sOpensWindow (userOpens): one account must not spend the server's
		// budget of streams (outPeerLimit) on made-up domains.
		opens map[string]userOpens
		// verifying counts the dialback verifications under way (verify), per claimed
		// domain and per address of the claimant, and in all (verifyingN).
		verifying  map[string]int
		verifyingN int
	}
}

// Bounds on dialback verifications (verify): each opens a stream to a server any peer
// names, before that peer has proved anything, and lasts until the setup timeout. A peer
// that claims and hangs up over and over must not make this server dial the world.
const (
	maxVerifying        = 256 // in all
	maxVerifyingPerPeer = 4   // per claimed domain, and per claimant's address
)

// startVerify takes a verification slot for a claim of domain from addr; false when its
// bounds are reached: the claim fails at once. (A domain backed off after failed streams
// is still verified: its server calling is a sign it is back.)
func (o *s2sOut) startVerify(domain, addr string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.verifying == nil {
		o.mu.verifying = map[string]int{}
	}
	dk, ak := "d:"+domain, "a:"+addr
	if o.mu.verifyingN >= maxVerifying || o.mu.verifying[dk] >= maxVerifyingPerPeer ||
		o.mu.verifying[ak] >= maxVerifyingPerPeer {
		return false
	}
	o.mu.verifying[dk]++
	o.mu.verifying[ak]++
	o.mu.verifyingN++
	return true
}

// endVerify gives back startVerify's slot.
func (o *s2sOut) endVerify(domain, addr string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range []string{"d:" + domain, "a:" + addr} {
		if o.mu.verifying[k]--; o.mu.verifying[k] <= 0 {
			delete(o.mu.verifying, k)
		}
	}
	o.mu.verifyingN--
}

// Per-account budget of new outbound streams: a tenth of the server's (outPeerLimit by
// default), far above what a roster's probes open at a login.
const (
	s2sOpensPerUser = 1000
	s2sOpensWindow  = 10 * time.Minute
	s2sOpensSweep   = 4096 // entries before the map is swept of old windows
)

// userOpens is one account's streams opened since start.
type userOpens struct {
	start time.Time
	n     int
}

// openAllowedLocked counts a new stream for the account user (a bare JID) and reports
// whether its budget allows one. Called with o.mu held.
func (o *s2sOut) openAllowedLocked(user string, now time.Time) bool {
	if o.mu.opens == nil {
		o.mu.opens = map[string]userOpens{}
	}
	u := o.mu.opens[user]
	if now.Sub(u.start) >= s2sOpensWindow {
		if len(o.mu.opens) >= s2sOpensSweep {
			for k, v := range o.mu.opens {
				if now.Sub(v.start) >= s2sOpensWindow {
					delete(o.mu.opens, k)
				}
			}
		}
		u = userOpens{start: now}
	}
	if u.n >= s2sOpensPerUser {
		return false
	}
	u.n++
	o.mu.opens[user] = u
	return true
}

// retryState is one remote domain's reconnect back-off.
type retryState struct {
	fails int
	until time.Time
}

// inStream describes an authenticated inbound stream for S2SConns; the conn's lastRx
// gives its idle time.
type inStream struct {
	remote, local, auth string
	bidi                string // our domain whose stanzas to remote may go over it (XEP-0288), or ""
	tls                 uint16
	directTLS           bool
	via                 string // the edge that relays it, or ""
	seq                 uint64 // order of authentication (addIn)
}

// maxInPerPair bounds the authenticated inbound streams of one domain pair: a server
// needs one, and a second while it replaces a stream it took for dead. Past it the
// oldest is closed: one peer must not take the server's connections.
const maxInPerPair = 4

func newS2SOut(s *Server, cfg S2S) *s2sOut {
	o := &s2sOut{srv: s, secret: cfg.Secret}
	if len(o.secret) == 0 {
		o.secret = make([]byte, 32)
		rand.Read(o.secret)
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	o.mu.peers = map[[2]string]*outPeer{}
	o.mu.backoff = map[string]*retryState{}
	o.mu.in = map[*conn]inStream{}
	o.mu.bidi = map[[2]string]*conn{}
	return o
}

// addIn records an inbound stream authenticated for remote (auth: "dialback" or
// "external") to local, one of our domains; with bidi, the peer asked for a
// bidirectional stream, and our stanzas from local to remote may go over it. Called on
// c's loop.
func (o *s2sOut) addIn(c *conn, remote, auth, local string, bidi bool) {
	is := inStream{remote: remote, local: c.domainName(), auth: auth, directTLS: c.l.cfg.DirectTLS}
	if bidi {
		is.bidi = local
	}
	if t := c.tls.Load(); t != nil {
		is.tls = t.Info().Version
	} else if ch, ok := c.gc.(*edgeChan); ok {
		is.tls, is.directTLS, is.via = ch.tlsVer, ch.direct, ch.lk.name // the TLS the peer had with the edge
	}
	o.mu.Lock()
	o.mu.inSeq++
	is.seq = o.mu.inSeq
	var oldest *conn
	n := 0
	for oc, os := range o.mu.in {
		if os.remote == is.remote && os.local == is.local {
			n++
			if oldest == nil || os.seq < o.mu.in[oldest].seq {
				oldest = oc
			}
		}
	}
	o.mu.in[c] = is
	o.mu.Unlock()
	o.charges.Store(c, router.NewCharge(c))
	if n >= maxInPerPair && oldest != nil {
		oldest.Close("") // superseded: the peer opened newer ones
	}
}

// activateBidi lets Route use c, once the peer may take our stanzas on it: after the
// dialback result said valid, or after the stream restarted following SASL EXTERNAL (a
// stanza before the new stream's features would break the negotiation). Called on c's
// loop, after those writes.
func (o *s2sOut) activateBidi(c *conn) {
	if o == nil {
		return // an edge: federation is the core's
	}
	o.mu.Lock()
	if is, ok := o.mu.in[c]; ok && is.bidi != "" {
		// The newest stream for the pair wins: the peer stops using an older one.
		o.mu.bidi[[2]string{is.bidi, is.remote}] = c
	}
	o.mu.Unlock()
}

func (o *s2sOut) removeIn(c *conn) {
	o.charges.Delete(c)
	o.mu.Lock()
	if is, ok := o.mu.in[c]; ok && is.bidi != "" {
		o.dropBidiLocked([2]string{is.bidi, is.remote}, c)
	}
	delete(o.mu.in, c)
	o.mu.Unlock()
}

// dropBidiLocked forgets c as the bidirectional stream for key, if it still is. o.mu is
// held.
func (o *s2sOut) dropBidiLocked(key [2]string, c *conn) {
	if o.mu.bidi[key] == c {
		delete(o.mu.bidi, key)
	}
}

func (o *s2sOut) countIn() int64 {
	if o == nil {
		return 0 // an edge: federation is the core's
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(len(o.mu.in))
}

func (o *s2sOut) countOut() int64 {
	if o == nil {
		return 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n := int64(0)
	for _, p := range o.mu.peers {
		if p.info().up {
			n++
		}
	}
	return n
}

// backingOff reports whether remote failed recently and is not to be dialed yet. Called
// with o.mu held.
func (o *s2sOut) backingOff(remote string, now time.Time) bool {
	st := o.mu.backoff[remote]
	return st != nil && now.Before(st.until)
}

// defaultMaxOutPeers bounds the outbound server-to-server streams (one per pair of
// domains, ours and the remote): a public server federates with a few thousand domains at
// most. maxOutPeers overrides it when set (tests).
const defaultMaxOutPeers = 10_000

var maxOutPeers atomic.Int64

func outPeerLimit() int {
	if n := maxOutPeers.Load(); n > 0 {
		return int(n)
	}
	return defaultMaxOutPeers
}

// Bounds of the back-off table: any user can make the server dial domains that do not
// exist, one after another, and a domain that is never reached again would stay.
const (
	backoffSweepAt = 1024    // entries before the first sweep
	maxBackoff     = 100_000 // entries past which the table starts over
)

// sweepBackoffLocked makes room for one more back-off entry. Once the table has doubled
// since its last sweep, or is full, the domains whose last wait ended more than max ago
// go: redialed, they start from BackoffMin again. A table still three quarters full of
// recent failures starts over: the cost is earlier redials, never memory. Either way a
// sweep costs O(1) a failure, amortized. Call with o.mu held.
func (o *s2sOut) sweepBackoffLocked(max time.Duration) {
	if n := len(o.mu.backoff); n < backoffSweepAt || n < 2*o.mu.backoffKept && n < maxBackoff {
		return
	}
	now := time.Now()
	for d, st := range o.mu.backoff {
		if now.Sub(st.until) > max {
			delete(o.mu.backoff, d)
		}
	}
	if len(o.mu.backoff) >= maxBackoff*3/4 {
		clear(o.mu.backoff)
	}
	o.mu.backoffKept = len(o.mu.backoff)
}

// noteResult updates remote's back-off after a stream setup: cleared on success; on
// failure the wait doubles from BackoffMin up to BackoffMax, and is drawn uniformly from
// its upper half so that servers that lost each other do not redial in lockstep.
func (o *s2sOut) noteResult(remote string, ok bool) {
	cfg := o.srv.config().S2S
	o.mu.Lock()
	defer o.mu.Unlock()
	if ok {
		delete(o.mu.backoff, remote)
		return
	}
	st := o.mu.backoff[remote]
	if st == nil {
		o.sweepBackoffLocked(cfg.BackoffMax)
		st = new(retryState)
		o.mu.backoff[remote] = st
	}
	st.fails++
	d := cfg.BackoffMin
	for i := 1; i < st.fails && d < cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, cfg.BackoffMax)
	d = d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
	st.until = time.Now().Add(d)
}

var _ router.Remote = (*s2sOut)(nil)

// Route implements router.Remote. It never blocks: the stanza is copied into the peer's
// queue, or into the outbox of the peer's bidirectional inbound stream (XEP-0288) when
// there is one and no outbound stream for the pair; a pair keeps the stream it has, so
// its stanzas stay in order.
func (o *s2sOut) Route(from, to jid.JID, raw []byte) error {
	local, remote := from.Domain(), to.Domain()
	if !o.srv.servesRemote(local) {
		return stanza.New(stanza.RemoteServerNotFound) // we cannot vouch for that sender
	}
	if o.ctx.Err() != nil {
		return stanza.New(stanza.RemoteServerNotFound)
	}
	if err := o.srv.guestS2S(from); err != nil {
		return err
	}
	if !o.srv.hostFederates(local) {
		e := stanza.New(stanza.NotAllowed)
		e.Text = local + " does not federate with other servers."
		return e
	}
	if !o.srv.config().S2S.allowed(remote) {
		// RFC 6120 §8.3.3.10 not-allowed: "the recipient or server does not allow any
		// entity to perform the action (e.g., sending to entities at a blacklisted
		// domain)". remote-server-not-found would tell the sender the domain is gone.
		return stanza.New(stanza.NotAllowed)
	}
	var b []byte
	if bytes.Contains(raw, []byte(ns.Client)) {
		// A stanza that names jabber:client itself (some clients and libraries write it
		// out) must be in jabber:server on the wire between servers.
		b = rewriteXMLNS(raw, ns.Client, nsServer)
	} else {
		b = append([]byte(nil), raw...)
	}
	key := [2]string{local, remote}
	for {
		o.mu.Lock()
		p := o.mu.peers[key]
		if p == nil {
			if c := o.mu.bidi[key]; c != nil {
				o.mu.Unlock()
				if c.outboxLen() > o.srv.config().MaxOutbound {
					// The peer reads slower than we write: refuse, as a full queue does,
					// rather than let Send end the stream for a slow reader.
					return stanza.New(stanza.ResourceConstraintCond)
				}
				if c.Send(b) {
					// What it carries our way counts as traffic too: the idle sweep
					// (IdleTimeout) closes a stream silent in both directions only.
					c.lastRx.Store(sinceEpoch(time.Now()))
					return nil
				}
				o.mu.Lock() // closing: from now on the pair gets an outbound stream
				o.dropBidiLocked(key, c)
				o.mu.Unlock()
				continue
			}
			if o.backingOff(remote, time.Now()) {
				o.mu.Unlock()
				return stanza.New(stanza.RemoteServerTimeout)
			}
			if len(o.mu.peers) >= outPeerLimit() {
				// Each stream is a socket and two goroutines, and a server with wildcard
				// DNS can draw one per made-up subdomain; idle ones close by themselves.
				o.mu.Unlock()
				e := stanza.New(stanza.ResourceConstraintCond)
				e.Text = "too many server-to-server streams; try again later"
				return e
			}
			if from.Local() != "" && o.srv.isLocal(local) && !o.openAllowedLocked(from.Bare().String(), time.Now()) {
				// Services (rooms, pubsub) reach many servers by design; an account
				// that does is more likely walking made-up domains.
				o.mu.Unlock()
				e := stanza.New(stanza.ResourceConstraintCond)
				e.Text = "you reached too many new servers lately; try again later"
				return e
			}
			p = o.newPeer(key)
		}
		o.mu.Unlock()
		switch p.enqueue(b) {
		case enqueued:
			return nil
		case enqueueFull:
			return stanza.New(stanza.ResourceConstraintCond)
		}
		// enqueueRetired: p closed for idleness meanwhile; the next round makes a new one.
	}
}

// enforce ends the streams between pairs of domains (ours, the remote) cfg no longer
// federates (a reload that denied the remote, an allow list without it, or one of our
// hosts taken off federation): an authenticated inbound stream would otherwise keep
// delivering their stanzas until it idled out. Outbound streams close with
// </stream:stream>; Route already refuses new stanzas for those pairs.
func (o *s2sOut) enforce(allowed func(local, remote string) bool) {
	o.mu.Lock()
	var in []inRef
	for c, is := range o.mu.in {
		if !allowed(is.local, is.remote) {
			in = append(in, inRef{c, is.remote})
		}
	}
	var out []*outPeer
	for k, p := range o.mu.peers {
		if !allowed(k[0], k[1]) {
			out = append(out, p)
			delete(o.mu.peers, k)
		}
	}
	o.mu.Unlock()
	for _, p := range out {
		p.stop()
	}
	for _, r := range in {
		c, remote := r.c, r.remote
		c.gc.Wake(func(_ gnet.Conn, err error) error {
			if k, ok := c.l.kind.(*s2sIn); ok && err == nil && !c.closing.Load() {
				k.refuse(c, remote)
			}
			return nil
		})
	}
}

type inRef struct {
	c      *conn
	remote string
}

var _ router.Flusher = (*s2sOut)(nil)

// Flush implements router.Flusher: it waits until every stanza Route queued has been
// written to its stream or bounced (a peer that cannot be reached fails its setup), or
// until deadline. Server shutdown calls it before close, which would otherwise bounce what
// is still queued.
func (o *s2sOut) Flush(deadline time.Time) bool {
	for o.unsent.Load() > 0 {
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// close ends every outbound stream (server shutdown).
func (o *s2sOut) close() {
	o.cancel()
	o.mu.Lock()
	for _, p := range o.mu.peers {
		p.stop()
	}
	o.mu.Unlock()
}

// S2SConn describes one live server-to-server stream.
type S2SConn struct {
	Local     string        `json:"local"`
	Bidi      bool          `json:"bidi,omitempty"` // XEP-0288: it carries stanzas both ways
	Remote    string        `json:"remote"`
	Direction string        `json:"direction"`     // "in" or "out"
	Auth      string        `json:"auth"`          // "dialback" or "external"
	TLS       string        `json:"tls"`           // "1.3", "1.2"; "" without TLS
	CertValid bool          `json:"cert_valid"`    // out: the peer's certificate is valid for Remote
	DirectTLS bool          `json:"direct_tls"`    // TLS from the first byte (XEP-0368), not STARTTLS
	Via       string        `json:"via,omitempty"` // the edge that holds the socket (split deployment)
	Idle      time.Duration `json:"idle"`          // since the stream last carried something
}

// S2SConns lists the authenticated inbound and established outbound server-to-server
// streams, sorted by remote domain, then direction. Safe for concurrent use.
func (s *Server) S2SConns() []S2SConn {
	o := s.s2s
	now := time.Now()
	rel := sinceEpoch(now)
	var out []S2SConn
	o.mu.Lock()
	for c, is := range o.mu.in {
		idle := time.Duration(int32(rel-c.lastRx.Load())) * time.Second
		out = append(out, S2SConn{Local: is.local, Remote: is.remote, Direction: "in", Auth: is.auth, Bidi: is.bidi != "",
			TLS: tlsVersionName(is.tls), CertValid: is.auth == "external", DirectTLS: is.directTLS, Via: is.via, Idle: max(idle, 0)})
	}
	peers := make([]*outPeer, 0, len(o.mu.peers))
	for _, p := range o.mu.peers {
		peers = append(peers, p)
	}
	o.mu.Unlock()
	for _, p := range peers {
		in := p.info()
		if !in.up {
			continue
		}
		out = append(out, S2SConn{Local: p.local, Remote: p.remote, Direction: "out", Auth: in.auth, Bidi: in.bidi,
			TLS: tlsVersionName(in.tls), CertValid: in.certValid, DirectTLS: in.directTLS, Via: in.via, Idle: now.Sub(time.Unix(0, p.last.Load()))})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Remote != out[j].Remote {
			return out[i].Remote < out[j].Remote
		}
		if out[i].Direction != out[j].Direction {
			return out[i].Direction < out[j].Direction
		}
		return out[i].Local < out[j].Local
	})
	return out
}

func tlsVersionName(v uint16) string {
	switch v {
	case 0:
		return ""
	case tls.VersionTLS13:
		return "1.3"
	case tls.VersionTLS12:
		return "1.2"
	}
	return tls.VersionName(v)
}

// verify asks the authoritative server of originating, over a new stream, whether key is
// the key it handed out for the stream id it opened to receiving (XEP-0220 §2.3). addr is
// the claimant's address: verifications are bounded per claimed domain, per claimant and
// in all (startVerify); past the bounds the claim fails without a dial.
func (o *s2sOut) verify(receiving, originating, id, key, addr string) bool {
	if !o.startVerify(originating, addr) {
		o.srv.log.Debug().Str("peer", originating).Str("remote", addr).Msg("s2s dialback verify refused: too many under way")
		return false
	}
	defer o.endVerify(originating, addr)
	ps, _, _, err := o.open(receiving, originating)
	if err != nil {
		o.srv.log.Info().Err(err).Str("peer", originating).Msg("s2s dialback verify: cannot reach the authoritative server")
		return false
	}
	defer ps.nc.Close()
	// The authoritative server may be the claimant's own and never answer: without a
	// deadline this goroutine and its socket would stay for good, one more per claim.
	ps.nc.SetDeadline(time.Now().Add(o.srv.config().S2S.SetupTimeout))
	var b xmlstream.Builder
	b.Start("db:verify").Attr("from", receiving).Attr("to", originating).Attr("id", id).Text(key).End()
	if _, err := ps.nc.Write(b.B); err != nil {
		return false
	}
	for {
		ev, err := ps.next()
		if err != nil || ev.Kind != xmlstream.EventElement {
			return false
		}
		st := ev.Stanza
		if string(st.NS) != nsDialback || string(st.Name) != "verify" {
			continue
		}
		got, _ := st.Attr("id")
		if string(xmlstream.AppendUnescaped(nil, got)) != id {
			continue
		}
		typ, _ := st.Attr("type")
		ps.nc.Write([]byte("</stream:stream>"))
		return string(typ) == "valid"
	}
}

// s2sStreamError is a stream error the peer ended our stream with (RFC 6120 §4.9), such as
// host-unknown from a server that does not serve the domain we asked for.
type s2sStreamError struct{ cond, text string }

func (e *s2sStreamError) Error() string {
	if e.text != "" {
		return "s2s: the peer sent stream error " + e.cond + ": " + e.text
	}
	return "s2s: the peer sent stream error " + e.cond
}

// asStreamError returns the stream error st is, or nil when st is something else.
func asStreamError(st *xmlstream.Stanza) error {
	if string(st.Name) != "error" || string(st.NS) != ns.Stream {
		return nil
	}
	e := &s2sStreamError{cond: "undefined-condition"}
	it := st.Elem().Children()
	for c, ok := it.Next(); ok; c, ok = it.Next() {
		if string(c.NS()) != ns.Streams {
			continue
		}
		if n := string(c.Name()); n == "text" {
			e.text = string(c.AppendText(nil))
		} else {
			e.cond = n
		}
	}
	return e
}

var (
	errS2SNoTLS    = errors.New("s2s: the peer does not offer STARTTLS")
	errS2SProtocol = errors.New("s2s: unexpected answer from the peer")
	errS2SRefused  = errors.New("s2s: the peer refused our dialback key")
	errS2SCert     = errors.New("s2s: the peer's certificate is not valid for its domain (require_valid_certs)")
)

// open dials remote and negotiates a stream from local up to the features after TLS (after
// STARTTLS, or at once on a direct TLS address, XEP-0368); it returns the stream, its id
// and those features. The whole setup has one deadline, cleared at the end.
func (o *s2sOut) open(local, remote string) (*peerStream, string, []byte, error) {
	cfg := o.srv.config().S2S
	wait := cfg.SetupTimeout
	ctx, cancel := context.WithTimeout(o.ctx, wait)
	defer cancel()
	nc, direct, err := o.dial(ctx, local, remote)
	if err != nil {
		return nil, "", nil, err
	}
	nc.SetDeadline(time.Now().Add(wait))
	ps := newPeerStream(nc, &o.srv.config().Limits)
	if !direct {
		if err := o.startTLS(ctx, ps, local, remote); err != nil {
			ps.close()
			return nil, "", nil, err
		}
	}
	// XEP-0368 §3: the same certificate checks as after STARTTLS, and no STARTTLS inside.
	cs := ps.nc.(*tls.Conn).ConnectionState()
	ps.tls, ps.certValid, ps.directTLS = cs.Version, peerCertValid(cs.PeerCertificates, remote, cfg.CAs), direct
	ps.via = viaEdge(ps.nc)
	if !ps.certValid && cfg.policy(remote).requireCerts {
		ps.close()
		return nil, "", nil, errS2SCert
	}
	id, feat, err := ps.header(local, remote)
	if err != nil {
		ps.close()
		return nil, "", nil, err
	}
	ps.nc.SetDeadline(time.Time{})
	return ps, id, feat, nil
}

// startTLS opens the stream in the clear, asks for STARTTLS (RFC 6120 §5.4) and runs the
// handshake; ps then reads and writes over TLS, from a fresh stream.
func (o *s2sOut) startTLS(ctx context.Context, ps *peerStream, local, remote string) error {
	_, feat, err := ps.header(local, remote)
	if err != nil {
		return err
	}
	if !bytes.Contains(feat, []byte(ns.TLS)) {
		return errS2SNoTLS
	}
	if _, err = ps.nc.Write([]byte("<starttls xmlns='" + ns.TLS + "'/>")); err != nil {
		return err
	}
	ev, err := ps.next()
	if err != nil || ev.Kind != xmlstream.EventElement || string(ev.Stanza.Name) != "proceed" {
		if err == nil {
			err = errS2SProtocol
		}
		return err
	}
	tc, err := o.handshake(ctx, ps.nc, local, remote, false)
	if err != nil {
		return err
	}
	ps.nc = tc
	ps.reset()
	return nil
}

// handshake runs the TLS handshake of an outbound stream over nc, as STARTTLS and
// XEP-0368 direct TLS both do. It accepts any certificate, and open checks it afterwards
// (peerCertValid), so that an invalid one can still carry dialback (XEP-0344 §2.2) unless
// the policy requires a valid one. Our own certificate goes along, for a peer that offers
// SASL EXTERNAL (XEP-0178). SNI is the remote domain; on direct TLS the ALPN protocol is
// xmpp-server (XEP-0368 §3). STARTTLS offers no ALPN, as before: a server that lists
// other protocols only would refuse the handshake.
func (o *s2sOut) handshake(ctx context.Context, nc net.Conn, local, remote string, direct bool) (*tls.Conn, error) {
	cfg := &tls.Config{ServerName: jid.ToASCII(remote), InsecureSkipVerify: true, MinVersion: tls.VersionTLS12,
		GetClientCertificate: o.clientCert(local)}
	if direct {
		cfg.NextProtos = []string{"xmpp-server"}
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// peerCertValid reports whether certs (leaf first, as the peer sent them) chain to the
// system roots or to cas and name domain (DNS-ID, SRV-ID or XmppAddr: certNames; RFC
// 6125 §6.4, XEP-0178 §3).
func peerCertValid(certs []*x509.Certificate, domain string, cas *x509.CertPool) bool {
	if verifiedNames(certs, domain, nil) {
		return true
	}
	return cas != nil && verifiedNames(certs, domain, cas)
}

// clientCert presents this server's certificate for local on outbound streams; none when
// the server has no TLS configuration (the handshake then goes on without one).
func (o *s2sOut) clientCert(local string) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		cfg := o.srv.config().TLS
		switch {
		case cfg == nil:
		case cfg.GetCertificate != nil:
			if c, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: local}); err == nil && c != nil {
				return c, nil
			}
		case len(cfg.Certificates) > 0:
			return &cfg.Certificates[0], nil
		}
		return new(tls.Certificate), nil
	}
}

// outPeer is one outbound stream and its queue. Route (any goroutine) enqueues; run (its
// own goroutine) dials, authenticates and writes.
type outPeer struct {
	o             *s2sOut
	local, remote string
	q             chan []byte
	qBytes        atomic.Int64  // of the stanzas in q
	done          chan struct{} // closed by stop
	last          atomic.Int64  // unix nanoseconds of the last write or read, once up
	mu            struct {
		sync.Mutex
		dead    bool // no more enqueues: run is bouncing what is left
		retired bool // closed for idleness with an empty queue: Route makes a new peer
		stopped bool
		peerInfo
	}
}

// peerInfo is what S2SConns shows of an outbound stream.
type peerInfo struct {
	up        bool
	bidi      bool
	auth      string
	tls       uint16
	certValid bool
	directTLS bool
	via       string
}

func (p *outPeer) info() peerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.peerInfo
}

func (p *outPeer) touch() { p.last.Store(time.Now().UnixNano()) }

type enqueueResult uint8

const (
	enqueued enqueueResult = iota
	enqueueFull
	enqueueRetired
)

func (p *outPeer) enqueue(b []byte) enqueueResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.retired {
		return enqueueRetired
	}
	if p.mu.dead {
		// The stream just failed; the failure path owns the queue. Bounce this one too.
		go p.o.srv.rt.Bounce(b, stanza.New(stanza.RemoteServerNotFound))
		return enqueued
	}
	if len(p.q) > 0 && p.qBytes.Load()+int64(len(b)) > s2sQueueBytes {
		return enqueueFull
	}
	select {
	case p.q <- b:
		p.qBytes.Add(int64(len(b)))
		p.o.unsent.Add(1)
		return enqueued
	default:
		return enqueueFull
	}
}

// dequeued counts b, just taken from p.q, out of p.qBytes.
func (p *outPeer) dequeued(b []byte) []byte {
	p.qBytes.Add(-int64(len(b)))
	return b
}

// newPeer makes and starts the peer for key (local, remote). Called with o.mu held.
func (o *s2sOut) newPeer(key [2]string) *outPeer {
	p := &outPeer{o: o, local: key[0], remote: key[1], q: make(chan []byte, s2sQueueMax), done: make(chan struct{})}
	o.mu.peers[key] = p
	go p.run()
	return p
}

// handOver retires p after the peer ended the stream (say, because it was idle on that
// side) and moves the stanzas still queued, first (if not nil) ahead of them, to a new
// stream: none of them was written, so nothing is lost or sent twice. It holds o.mu
// throughout, so a Route that finds p retired meanwhile queues behind them, in order.
func (p *outPeer) handOver(first ...[]byte) {
	o := p.o
	key := [2]string{p.local, p.remote}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.peers[key] == p {
		delete(o.mu.peers, key)
	}
	p.mu.Lock()
	p.mu.retired = true
	p.mu.Unlock()
	left := append([][]byte(nil), first...)
	for len(p.q) > 0 {
		left = append(left, p.dequeued(<-p.q))
	}
	if len(left) == 0 {
		return
	}
	o.unsent.Add(-int64(len(left))) // enqueue counts those that go to the new peer again
	if o.ctx.Err() != nil {
		for _, b := range left {
			go o.srv.rt.Bounce(b, stanza.New(stanza.RemoteServerNotFound))
		}
		return
	}
	np := o.mu.peers[key]
	if np == nil {
		np = o.newPeer(key)
	}
	for _, b := range left {
		if np.enqueue(b) != enqueued {
			go o.srv.rt.Bounce(b, stanza.New(stanza.ResourceConstraintCond))
		}
	}
}

// retire takes p out of service after it has been idle, unless stanzas wait in its
// queue; it reports whether it did. Later Routes make a new peer.
func (p *outPeer) retire() bool {
	o := p.o
	o.mu.Lock()
	defer o.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) > 0 {
		return false
	}
	if key := [2]string{p.local, p.remote}; o.mu.peers[key] == p {
		delete(o.mu.peers, key)
	}
	p.mu.retired = true
	return true
}

func (p *outPeer) stop() {
	p.mu.Lock()
	if !p.mu.stopped {
		p.mu.stopped = true
		close(p.done)
	}
	p.mu.Unlock()
}

func (p *outPeer) run() {
	log := p.o.srv.log
	ps, auth, err := p.connect()
	p.o.noteResult(p.remote, err == nil)
	if err != nil {
		log.Info().Err(err).Str("peer", p.remote).Msg("s2s outbound stream failed")
		cond := stanza.RemoteServerNotFound
		var ne net.Error
		var de *s2sDialbackError
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			cond = stanza.RemoteServerTimeout
		case errors.As(err, &de):
			// XEP-0220 §2.5: after a dialback error "the Initiating Server MUST return
			// queued stanzas to the respective senders with a <remote-server-timeout/>".
			cond = stanza.RemoteServerTimeout
		}
		p.fail(cond)
		return
	}
	log.Info().Str("peer", p.remote).Str("local", p.local).Str("auth", auth).Bool("cert_valid", ps.certValid).
		Msg("s2s outbound stream authenticated")
	p.touch()
	p.mu.Lock()
	p.mu.peerInfo = peerInfo{up: true, bidi: ps.bidi, auth: auth, tls: ps.tls, certValid: ps.certValid, directTLS: ps.directTLS, via: ps.via}
	p.mu.Unlock()
	idle := p.o.srv.config().S2S.IdleTimeout
	timer := time.NewTimer(idle)
	defer timer.Stop()
	gone := make(chan struct{})
	go func() { // read to notice the end, and the peer's stanzas on a bidirectional stream
		defer close(gone)
		for {
			ev, err := ps.next()
			if err != nil {
				return
			}
			p.touch()
			if ev.Kind == xmlstream.EventStreamEnd {
				// RFC 6120 §4.4: close our direction too before the socket goes.
				ps.nc.SetWriteDeadline(time.Now().Add(time.Second))
				ps.nc.Write([]byte("</stream:stream>"))
				return
			}
			if ev.Kind == xmlstream.EventElement && ps.bidi {
				if cond := p.receive(ps, ev.Stanza); cond != "" {
					// RFC 6120 §4.9: a stream error ends the stream; the writer hands what
					// is queued to a new one.
					ps.nc.SetWriteDeadline(time.Now().Add(time.Second))
					ps.nc.Write([]byte("<stream:error><" + string(cond) + " xmlns='" + ns.Streams + "'/></stream:error></stream:stream>"))
					return
				}
			}
		}
	}()
	var batch [][]byte
	out := s2sWritePool.Get()
	defer s2sWritePool.Put(out)
	// wrote: the stream took stanzas before it went. A peer that ends streams right after
	// authenticating takes none: handing the queue to a new stream then would dial it
	// again at once, for ever, so the stanzas bounce and the back-off applies instead.
	wrote := false
	ended := func(first ...[]byte) {
		ps.close()
		if wrote {
			p.handOver(first...)
			return
		}
		log.Info().Str("peer", p.remote).Msg("s2s outbound stream ended by the peer before it took a stanza")
		p.o.noteResult(p.remote, false)
		p.fail(stanza.RemoteServerTimeout, first...)
	}
	for {
		select {
		case b := <-p.q:
			p.dequeued(b)
			// What queued up behind b goes in the same write: one TLS record and one
			// system call for a burst instead of one per stanza.
			batch, out.B = batch[:0], out.B[:0]
			if !p.tooBig(ps, b) {
				batch = append(batch, b)
				out.B = append(out.B, b...)
			}
		more:
			for len(out.B) < s2sCoalesce {
				select {
				case x := <-p.q:
					p.dequeued(x)
					if !p.tooBig(ps, x) {
						batch = append(batch, x)
						out.B = append(out.B, x...)
					}
				default:
					break more
				}
			}
			if len(batch) == 0 {
				continue
			}
			select {
			case <-gone:
				// The peer has gone while this one waited: a write would still succeed
				// (into a half-closed socket) and the stanzas would be lost unseen.
				ended(batch...)
				return
			default:
			}
			ps.nc.SetWriteDeadline(time.Now().Add(s2sWriteTimeout))
			if _, err := ps.nc.Write(out.B); err != nil {
				log.Info().Err(err).Str("peer", p.remote).Msg("s2s outbound write failed")
				ps.close()
				p.fail(stanza.RemoteServerTimeout, batch...)
				return
			}
			p.o.unsent.Add(-int64(len(batch)))
			wrote = true
			clear(batch) // the stanzas are written: let them go
			if cap(out.B) > 4*s2sCoalesce {
				out.B = nil // a huge stanza's buffer is not kept for an idle stream
			}
			p.touch()
		case <-timer.C:
			if rest := idle - time.Since(time.Unix(0, p.last.Load())); rest > 0 {
				timer.Reset(rest)
				continue
			}
			if !p.retire() {
				timer.Reset(idle)
				continue
			}
			// RFC 6120 §4.4: close our direction and give the peer a moment to close its.
			log.Info().Str("peer", p.remote).Str("local", p.local).Msg("s2s outbound stream idle, closing")
			ps.nc.SetWriteDeadline(time.Now().Add(time.Second))
			ps.nc.Write([]byte("</stream:stream>"))
			select {
			case <-gone:
			case <-time.After(time.Second):
			}
			ps.close()
			return
		case <-gone:
			ended()
			return
		case <-p.done:
			ps.nc.SetWriteDeadline(time.Now().Add(time.Second))
			ps.nc.Write([]byte("</stream:stream>"))
			ps.close()
			p.fail(stanza.RemoteServerNotFound)
			return
		}
	}
}

// receive checks and routes one stanza the peer sent over our bidirectional stream
// (XEP-0288): it may only come from the domain we connected to, for the domain we
// authenticated, and only from a peer this server would accept an inbound stream from
// (the policy an inbound stream's dialback meets, or a certificate valid for it). It
// returns the stream error to end the stream with, or "".
func (p *outPeer) receive(ps *peerStream, st *xmlstream.Stanza) stanza.StreamCondition {
	if string(st.NS) == nsDialback || asStreamError(st) != nil {
		return "" // a claim for another domain pair goes on a stream of its own; an error ends the stream
	}
	s := p.o.srv
	cfg := &s.config().S2S
	if pol := cfg.policy(p.remote); !cfg.allowed(p.remote) || !ps.certValid && (!pol.dialback || pol.requireCerts) {
		return stanza.PolicyViolation
	}
	return submitPeerStanza(s, st, p.remote, p.local, nil)
}

// connect opens the stream and authenticates p.local: with SASL EXTERNAL when the peer
// offers it (it has found our certificate valid, XEP-0178), else with dialback. When the
// peer offers XEP-0288, it asks for a bidirectional stream first.
func (p *outPeer) connect() (*peerStream, string, error) {
	ps, id, feat, err := p.o.open(p.local, p.remote)
	if err != nil {
		return nil, "", err
	}
	ps.maxBytes = advertisedMax(feat)
	ps.nc.SetDeadline(time.Now().Add(p.o.srv.config().S2S.SetupTimeout))
	if !p.o.srv.config().S2S.NoBidi && bytes.Contains(feat, []byte(nsBidiFeature)) {
		// §2.2: no answer comes; it is pipelined with what follows.
		if _, err := ps.nc.Write([]byte("<bidi xmlns='" + nsBidi + "'/>")); err != nil {
			ps.close()
			return nil, "", err
		}
		ps.bidi = true
	}
	if offersExternal(feat) {
		ok, err := p.external(ps)
		if err != nil {
			ps.close()
			return nil, "", err
		}
		if ok {
			ps.nc.SetDeadline(time.Time{})
			return ps, "external", nil
		}
		// Refused: dialback on the same stream, as XEP-0178 §3 allows.
	}
	var b xmlstream.Builder
	b.Start("db:result").Attr("from", p.local).Attr("to", p.remote).
		Text(dialbackKey(p.o.secret, p.remote, p.local, id)).End()
	if _, err := ps.nc.Write(b.B); err != nil {
		ps.close()
		return nil, "", err
	}
	for {
		ev, err := ps.next()
		if err == nil && ev.Kind != xmlstream.EventElement {
			err = errS2SProtocol
		}
		if err != nil {
			ps.close()
			return nil, "", err
		}
		st := ev.Stanza
		if err := asStreamError(st); err != nil {
			ps.close()
			return nil, "", err
		}
		if string(st.NS) != nsDialback || string(st.Name) != "result" {
			continue
		}
		switch typ, _ := st.Attr("type"); string(typ) {
		case "valid":
		case "error":
			ps.close()
			return nil, "", dialbackError(st)
		default:
			ps.close()
			return nil, "", errS2SRefused
		}
		ps.nc.SetDeadline(time.Time{})
		return ps, "dialback", nil
	}
}

// s2sDialbackError is a dialback error the peer answered our <db:result/> with
// (XEP-0220 §2.5), such as not-authorized from a server whose policy wants a valid
// certificate from us.
type s2sDialbackError struct{ cond string }

func (e *s2sDialbackError) Error() string {
	return "s2s: the peer answered dialback with error " + e.cond
}

// dialbackError reads the condition of a <db:result type='error'/>.
func dialbackError(st *xmlstream.Stanza) error {
	e := &s2sDialbackError{cond: string(stanza.UndefinedConditionCond)}
	it := st.Elem().Children()
	for c, ok := it.Next(); ok; c, ok = it.Next() {
		if string(c.Name()) != "error" {
			continue
		}
		ci := c.Children()
		for cc, ok := ci.Next(); ok; cc, ok = ci.Next() {
			if string(cc.NS()) == ns.Stanzas && string(cc.Name()) != "text" {
				e.cond = string(cc.Name())
			}
		}
	}
	return e
}

// advertisedMax reads the XEP-0478 <max-bytes/> of stream features feat (the peer's, as
// its stream yielded them), or 0.
func advertisedMax(feat []byte) int {
	// <stream:features> itself uses a prefix its header declared, which ParseElement
	// cannot resolve on its own; the <limits/> child declares its namespace.
	i := bytes.Index(feat, []byte("<limits"))
	if i < 0 {
		return 0
	}
	lim, err := xmlstream.ParseElement(feat[i:], "")
	if err != nil || string(lim.NS()) != nsStreamLimits {
		return 0
	}
	mb, ok := lim.Child(nsStreamLimits, "max-bytes")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(mb.AppendText(nil))))
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// tooBig bounces b when it is larger than the peer said it takes (XEP-0478 §4: an error
// to the sender, policy-violation without 'by', for a policy that is not ours), rather
// than send what the peer would close the stream for, losing the stanzas after it.
func (p *outPeer) tooBig(ps *peerStream, b []byte) bool {
	if ps.maxBytes == 0 || len(b) <= ps.maxBytes {
		return false
	}
	p.o.unsent.Add(-1)
	go p.o.srv.rt.Bounce(b, &stanza.Error{Type: stanza.Modify, Condition: stanza.PolicyViolationCond,
		Text: "the stanza is larger than the " + strconv.Itoa(ps.maxBytes) + " bytes " + p.remote + " takes"})
	return true
}

// offersExternal reports whether stream features feat offer SASL EXTERNAL.
func offersExternal(feat []byte) bool {
	i := bytes.Index(feat, []byte(ns.SASL))
	return i >= 0 && bytes.Contains(feat[i:], []byte(">EXTERNAL</"))
}

// external runs SASL EXTERNAL for p.local and restarts the stream; it reports false when
// the peer answered <failure/> (the stream is still usable for dialback).
func (p *outPeer) external(ps *peerStream) (bool, error) {
	auth := "<auth xmlns='" + ns.SASL + "' mechanism='EXTERNAL'>" +
		base64.StdEncoding.EncodeToString([]byte(p.local)) + "</auth>"
	if _, err := ps.nc.Write([]byte(auth)); err != nil {
		return false, err
	}
	ev, err := ps.next()
	if err != nil {
		return false, err
	}
	if ev.Kind != xmlstream.EventElement || string(ev.Stanza.NS) != ns.SASL {
		return false, errS2SProtocol
	}
	switch string(ev.Stanza.Name) {
	case "success":
	case "failure":
		p.o.srv.log.Info().Str("peer", p.remote).Msg("s2s SASL EXTERNAL refused, trying dialback")
		return false, nil
	default:
		return false, errS2SProtocol
	}
	// RFC 6120 §6.4.6: restart; the features of the new stream need nothing more from us,
	// but may say new limits (XEP-0478).
	ps.reset()
	_, feat, err := ps.header(p.local, p.remote)
	if err != nil {
		return false, err
	}
	if n := advertisedMax(feat); n > 0 {
		ps.maxBytes = n
	}
	p.o.srv.log.Debug().Str("peer", p.remote).Msg("s2s SASL EXTERNAL succeeded")
	return true, nil
}

// fail retires p: later Routes make a new peer, and every stanza queued (and first, if not
// nil) is bounced to its sender with cond.
func (p *outPeer) fail(cond stanza.Condition, first ...[]byte) {
	o := p.o
	o.mu.Lock()
	if o.mu.peers[[2]string{p.local, p.remote}] == p {
		delete(o.mu.peers, [2]string{p.local, p.remote})
	}
	o.mu.Unlock()
	p.mu.Lock()
	p.mu.dead = true
	p.mu.Unlock()
	rt := o.srv.rt
	for _, b := range first {
		rt.Bounce(b, stanza.New(cond))
	}
	o.unsent.Add(-int64(len(first)))
	for {
		select {
		case b := <-p.q:
			rt.Bounce(p.dequeued(b), stanza.New(cond))
			o.unsent.Add(-1)
		default:
			return
		}
	}
}

// peerStream is the blocking side of an outbound stream: a net.Conn read with the
// xmlstream tokenizer. Not safe for concurrent use, except that one goroutine may write
// nc while another reads.
type peerStream struct {
	nc        net.Conn
	tls       uint16 // negotiated TLS version
	certValid bool   // the peer's certificate is valid for its domain (peerCertValid)
	directTLS bool   // TLS from the first byte (XEP-0368), not after STARTTLS
	via       string // the edge that holds the socket, or ""
	bidi      bool   // we asked for a bidirectional stream (XEP-0288): the peer's stanzas come over it too
	// maxBytes is the largest stanza the peer takes, as its stream features said (XEP-0478),
	// or 0 when they did not say.
	maxBytes int
	lim      *xmlstream.Limits
	st       xmlstream.State
	sc       *xmlstream.Scanner
	buf      []byte
	pend     []byte
}

func newPeerStream(nc net.Conn, lim *xmlstream.Limits) *peerStream {
	ps := &peerStream{nc: nc, lim: lim, sc: xmlstream.NewScanner(), buf: make([]byte, s2sReadBuf)}
	ps.st.Reset(xmlstream.KindServer, lim)
	return ps
}

func (ps *peerStream) reset() {
	ps.st.Reset(xmlstream.KindServer, ps.lim)
	ps.pend = nil
}

func (ps *peerStream) close() {
	ps.nc.Close()
}

// next returns the next event; its Stanza is valid until the next call.
func (ps *peerStream) next() (xmlstream.Event, error) {
	for {
		if len(ps.pend) > 0 {
			ev, n, err := ps.sc.Next(&ps.st, ps.pend)
			ps.pend = ps.pend[n:]
			if err != nil {
				return ev, err
			}
			if ev.Kind != xmlstream.EventNone {
				return ev, nil
			}
			ps.pend = nil
		}
		n, err := ps.nc.Read(ps.buf)
		if n == 0 && err != nil {
			return xmlstream.Event{}, err
		}
		ps.pend = ps.buf[:n]
	}
}

// header sends our stream header and reads the peer's header and features; it returns the
// stream id and the raw features.
func (ps *peerStream) header(local, remote string) (string, []byte, error) {
	var b xmlstream.Builder
	b.B = append(b.B, "<?xml version='1.0'?><stream:stream xmlns='"+nsServer+
		"' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='"+nsDialback+"' from='"...)
	b.B = xmlstream.AppendEscapedString(b.B, local)
	b.B = append(b.B, "' to='"...)
	b.B = xmlstream.AppendEscapedString(b.B, remote)
	b.B = append(b.B, "' version='1.0'>"...)
	if _, err := ps.nc.Write(b.B); err != nil {
		return "", nil, err
	}
	ev, err := ps.next()
	if err != nil {
		return "", nil, err
	}
	if ev.Kind != xmlstream.EventStreamStart {
		return "", nil, errS2SProtocol
	}
	v, _ := ev.Stanza.Attr("id")
	id := string(xmlstream.AppendUnescaped(nil, v))
	if ev, err = ps.next(); err != nil {
		return "", nil, err
	}
	if ev.Kind == xmlstream.EventElement {
		if err := asStreamError(ev.Stanza); err != nil {
			return "", nil, err
		}
	}
	if ev.Kind != xmlstream.EventElement || string(ev.Stanza.Name) != "features" {
		return "", nil, errS2SProtocol
	}
	return id, append([]byte(nil), ev.Stanza.Raw...), nil
}

// SetS2SHosts replaces the federation host table (domain -> "host:port"); streams already
// open keep their peer. Tests use it to point two servers on free ports at each other.
func (s *Server) SetS2SHosts(hosts map[string]string) {
	c := *s.config()
	c.S2S.Hosts = hosts
	s.cfg.Store(&c)
}
