package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/xmlstream"
)

// MUCConfig is the groupchat fan-out scenario (XEP-0045): one room per size, one session
// per occupant (accounts 1..max(Sizes), the first n of them in the room of size n).
type MUCConfig struct {
	Service string // the MUC service, conference.<domain>
	Sizes   []int  // occupants per room
	// Talkers is the fraction of occupants that send (at least one).
	Talkers float64
	// RateStart and RateMax bound the search, in delivered stanzas per second (the room's
	// messages per second times its occupants). Fixed, when set, runs one step at that
	// delivered rate instead of a search.
	RateStart, RateMax, Fixed int
	Step                      time.Duration
	LimitMs                   float64
	Conc                      int
}

// MUCPoint is the fan-out in one room.
type MUCPoint struct {
	Occupants int `json:"occupants"`
	Talkers   int `json:"talkers"`
	// JoinSeconds is the time all occupants took to join (Conc at a time), and LastJoinMs
	// the join of the last one alone, into a room of Occupants-1: from its presence to its
	// self-presence (status 110), which comes after the whole occupant list.
	JoinSeconds float64 `json:"join_seconds"`
	LastJoinMs  float64 `json:"last_join_ms"`
	// Steps are the search's: OfferedRate is messages per second to the room, Sent the
	// messages sent, Delivered the stanzas the occupants got (Sent x Occupants when nothing
	// is lost), server and generator CPU per delivered stanza.
	Steps []MsgResult `json:"steps"`
	Best  MsgResult   `json:"best"`
	Error string      `json:"error,omitempty"`
}

// MUCResult is the groupchat fan-out at every size.
type MUCResult struct {
	Points []MUCPoint `json:"points"`
}

// waiter is what one session waits for: a stanza that match accepts.
type waiter struct {
	match func(raw []byte) bool
	ch    chan struct{}
	got   []byte // the stanza that matched
}

// MUC connects max(Sizes) sessions, then for each size fills a room, measures the joins
// and runs a rate search (or one fixed step) of groupchat messages from the talkers.
func MUC(t Target, c MUCConfig) (MUCResult, error) {
	var r MUCResult
	if len(c.Sizes) == 0 {
		return r, errors.New("scenario: no room sizes")
	}
	n := 0
	for _, s := range c.Sizes {
		n = max(n, s)
	}
	var waits sync.Map // *loadgen.Session -> *waiter
	o, err := ConnectWith(t, n, c.Conc, true, func(s *loadgen.Session, st *xmlstream.Stanza) {
		v, ok := waits.Load(s)
		if !ok {
			return
		}
		w := v.(*waiter)
		if !w.match(st.Raw) {
			return
		}
		w.got = append([]byte(nil), st.Raw...)
		waits.Delete(s)
		close(w.ch)
	})
	if err != nil {
		return r, err
	}
	defer o.Close()
	// await sends raw on s and waits for a stanza that match accepts.
	await := func(s *loadgen.Session, raw string, match func([]byte) bool) error {
		w := &waiter{match: match, ch: make(chan struct{})}
		waits.Store(s, w)
		if err := s.Send([]byte(raw)); err != nil {
			waits.Delete(s)
			return err
		}
		select {
		case <-w.ch:
			if isError(w.got) {
				return fmt.Errorf("error answer to %q: %s", raw, w.got)
			}
			return nil
		case <-time.After(60 * time.Second):
			waits.Delete(s)
			return fmt.Errorf("no answer to %q", raw)
		}
	}
	for _, size := range c.Sizes {
		p := MUCPoint{Occupants: size, Talkers: max(1, int(math.Ceil(c.Talkers*float64(size))))}
		err := t.mucRoom(o, c, &p, await)
		if err != nil {
			p.Error = err.Error()
			t.logf("  %s: room of %d: %v", t.Name, size, err)
		}
		r.Points = append(r.Points, p)
	}
	return r, nil
}

// mucRoom creates the room of p.Occupants, joins them and runs the messaging steps.
func (t Target) mucRoom(o *Online, c MUCConfig, p *MUCPoint, await func(*loadgen.Session, string, func([]byte) bool) error) error {
	size := p.Occupants
	room := "fanout" + strconv.Itoa(size) + "-" + strconv.FormatInt(time.Now().Unix()%100000, 10) + "@" + c.Service
	join := func(i int) string {
		return "<presence to='" + room + "/u" + strconv.Itoa(i) + "'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
	}
	// The self-presence (status 110) ends a join (§7.2.3).
	joinOne := func(i int) error {
		return await(o.ss[i], join(i), func(raw []byte) bool { return isSelf(raw) || isError(raw) && loadgen.Contains(raw, room) })
	}
	// The owner creates the room and accepts the default configuration (XEP-0045 §10.1.2).
	if err := joinOne(0); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := await(o.ss[0], "<iq type='set' id='fanout-cfg' to='"+room+"'><query xmlns='http://jabber.org/protocol/muc#owner'>"+
		"<x xmlns='jabber:x:data' type='submit'/></query></iq>", func(raw []byte) bool {
		return loadgen.Contains(raw, "fanout-cfg")
	}); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	var next atomic.Int64
	next.Store(1)
	var fails atomic.Int64
	var first firstError
	var wg sync.WaitGroup
	start := time.Now()
	// Each join sends the joiner every occupant's presence and every occupant the
	// joiner's: a room of n costs n² stanzas to fill, all of which the generator reads. In
	// a room of thousands, many joins in flight only pile presence up in the server's
	// outboxes (and past max_outbound a reader that falls behind is cut off), so big rooms
	// join with fewer in flight.
	conc := c.Conc
	if size > 1000 {
		conc = min(conc, 4)
	}
	// A server that stops answering must not hold the run for joins × 60 s.
	maxFails := int64(size/100 + 10)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= size-1 || fails.Load() > maxFails {
					return
				}
				if err := joinOne(i); err != nil {
					fails.Add(1)
					first.set(err)
				}
			}
		}()
	}
	wg.Wait()
	if size > 1 {
		t0 := time.Now()
		if err := joinOne(size - 1); err != nil {
			fails.Add(1)
			first.set(err)
		}
		p.LastJoinMs = float64(time.Since(t0).Microseconds()) / 1000
	}
	p.JoinSeconds = time.Since(start).Seconds()
	if fails.Load() > 0 {
		return fmt.Errorf("%d joins failed: %w", fails.Load(), first.get())
	}
	t.logf("  %s: room of %d joined in %.1f s, last join %.1f ms", t.Name, size, p.JoinSeconds, p.LastJoinMs)
	o.drain(10 * time.Second)
	talkers := o.ss[:p.Talkers]
	step := func(delivered int) (bool, error) {
		rate := max(1, delivered/size)
		for try := 0; try < 2; try++ {
			m, err := fanout(t, o, room, talkers, size, rate, c.Step)
			if err != nil {
				return false, err
			}
			p.Steps = append(p.Steps, m)
			ok := m.Loss == 0 && m.P99ms <= c.LimitMs
			t.logf("  %s: room of %d, %d msgs/s offered: delivered %.0f/s lost %d p50 %.1fms p99 %.1fms server %.2fµs/stanza pass=%v",
				t.Name, size, rate, m.DeliveredPerSec, m.Loss, m.P50ms, m.P99ms, m.ServerCPUPerMsg, ok)
			if ok {
				return true, nil
			}
			o.drain(30 * time.Second)
		}
		return false, nil
	}
	if c.Fixed > 0 {
		if _, err := step(c.Fixed); err != nil {
			return err
		}
	} else {
		pass, fail := 0, 0
		for d := c.RateStart; d <= c.RateMax; d *= 2 {
			ok, err := step(d)
			if err != nil {
				return err
			}
			if !ok {
				fail = d
				break
			}
			pass = d
		}
		for fail > 0 && fail-pass > pass/5 && fail/size-pass/size > 1 {
			mid := (pass + fail) / 2
			ok, err := step(mid)
			if err != nil {
				return err
			}
			if ok {
				pass = mid
			} else {
				fail = mid
			}
		}
	}
	p.Best = Best(p.Steps, c.LimitMs)
	return nil
}

// fanout sends rate groupchat messages per second to room from the talkers for dur, the
// send time in the body, waits for stragglers and reports what the occupants received:
// every message should reach each of the size occupants, the sender's reflection
// included.
func fanout(t Target, o *Online, room string, talkers []*loadgen.Session, size, rate int, dur time.Duration) (MsgResult, error) {
	o.mu.Lock()
	o.hist = Histogram{}
	o.mu.Unlock()
	base := o.recvd.Load()
	s0, _ := t.readProc()
	g0, _ := ReadProc(0)
	// Up to four sending goroutines, fewer at low rates so that each one's share of a
	// message per tick still adds up to whole messages within the step.
	senders := max(1, min(4, len(talkers), rate/20))
	sent := paced(rate, senders, dur, func(w int, rng *rand.Rand, buf []byte) ([]byte, *loadgen.Session) {
		// Talker w, w+senders, ...: each talker's messages stay in order.
		k := w + senders*rng.IntN(max(1, (len(talkers)-w+senders-1)/senders))
		buf = append(buf, "<message type='groupchat' to='"...)
		buf = append(buf, room...)
		buf = append(buf, "'><body>ts:"...)
		buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
		return append(buf, "</body></message>"...), talkers[k]
	})
	deadline := time.Now().Add(5 * time.Second)
	for o.recvd.Load()-base < sent.Load()*int64(size) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	s1, _ := t.readProc()
	g1, _ := ReadProc(0)
	delivered := o.recvd.Load() - base
	o.mu.Lock()
	h := o.hist
	o.hist = Histogram{}
	o.mu.Unlock()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r := MsgResult{Users: size, OfferedRate: rate, Sent: sent.Load(), Delivered: delivered,
		DeliveredPerSec: float64(delivered) / dur.Seconds(), Loss: sent.Load()*int64(size) - delivered,
		P50ms: ms(h.Quantile(0.5)), P95ms: ms(h.Quantile(0.95)), P99ms: ms(h.Quantile(0.99))}
	if delivered > 0 {
		r.ServerCPUPerMsg = float64((s1.CPU - s0.CPU).Nanoseconds()) / 1000 / float64(delivered)
		r.GenCPUPerMsg = float64((g1.CPU - g0.CPU).Nanoseconds()) / 1000 / float64(delivered)
	}
	return r, nil
}

// isError reports whether raw is a stanza of type error (either quote).
func isError(raw []byte) bool {
	i := bytes.IndexByte(raw, '>')
	if i < 0 {
		i = len(raw)
	}
	return loadgen.Contains(raw[:i], "type='error'") || loadgen.Contains(raw[:i], "type=\"error\"")
}
