package scenario

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/xmlstream"
)

// MAMConfig is the archive query scenario (XEP-0313 with XEP-0059 result set management):
// users 1..Users online, their archives filled through the server with one-to-one
// messages between ring contacts, then "the last Max messages with one contact" asked
// again and again.
type MAMConfig struct {
	Users int
	// Messages is how many chat messages the fill sends; each lands in two archives, the
	// sender's and the recipient's. 0 skips the fill (the archives are there already).
	Messages int
	// Contacts is how many contacts each user writes with: i±1..i±Contacts/2 (a ring), so
	// a pair exchanges about Messages/(Users×Contacts/2) messages and a user's archive
	// holds about 2×Messages/Users.
	Contacts int
	// FillRate is the fill's first offered rate in messages per second; it adapts to what
	// the server delivers (see fill).
	FillRate int
	// Queries is how many queries are timed (0: the fill alone), Conc how many are in
	// flight (each on its own session), Max the RSM page size.
	Queries, Conc, Max int
	LoginConc          int
}

// MAMFill is the archive fill: messages through the server as fast as it delivers them.
type MAMFill struct {
	Sent      int64   `json:"sent"`
	Delivered int64   `json:"delivered"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"delivered_per_second"`
	// ServerCPUPerMsg is the server's CPU time over the fill per delivered message, which
	// the server archived twice (sender's and recipient's archive) on the way.
	ServerCPUPerMsg float64 `json:"server_cpu_us_per_message"`
	GenCPUPerMsg    float64 `json:"generator_cpu_us_per_message"`
	// FinalRate is the offered rate the fill had adapted to when it ended.
	FinalRate int `json:"final_rate"`
}

// MAMResult is the archive query scenario's result.
type MAMResult struct {
	Users    int     `json:"users"`
	Contacts int     `json:"contacts_per_user"`
	Max      int     `json:"rsm_max"`
	Conc     int     `json:"in_flight"`
	Fill     MAMFill `json:"fill"`
	// Plain is the same fill on a fresh process with archiving off, when it was measured:
	// the reference for the fill's CPU per message.
	Plain    *MAMFill `json:"plain_fill,omitempty"`
	Queries  int      `json:"queries"`
	Failures int      `json:"failures"`
	// Results is how many archived messages the queries returned in all, PerQuery the
	// mean per page (Max when every pair has that many).
	Results           int64   `json:"results"`
	PerQuery          float64 `json:"results_per_query"`
	Seconds           float64 `json:"seconds"`
	QueriesPerSec     float64 `json:"queries_per_second"`
	P50ms             float64 `json:"p50_ms"`
	P90ms             float64 `json:"p90_ms"`
	P99ms             float64 `json:"p99_ms"`
	ServerCPUPerQuery float64 `json:"server_cpu_us_per_query"`
	GenCPUPerQuery    float64 `json:"generator_cpu_us_per_query"`
	FirstFailure      string  `json:"first_failure,omitempty"`
}

// RingContact is user i's k-th contact (0 ≤ k < contacts) of n users: i+1, i-1, i+2,
// i-2, ... modulo n, so that contacts are mutual.
func RingContact(i, k, n int) int {
	d := k/2 + 1
	if k%2 == 1 {
		d = -d
	}
	return ((i+d)%n + n) % n
}

// MAMQuery appends a query for the last max messages with bare JID with, in
// urn:xmpp:mam:2 with the RSM <before/> that asks for the last page (XEP-0313 §4.3,
// XEP-0059 §2.5); id is the IQ id and the queryid.
func MAMQuery(buf []byte, id, with string, max int) []byte {
	buf = append(buf, "<iq type='set' id='"...)
	buf = append(buf, id...)
	buf = append(buf, "'><query xmlns='urn:xmpp:mam:2' queryid='"...)
	buf = append(buf, id...)
	buf = append(buf, "'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"+
		"<field var='with'><value>"...)
	buf = append(buf, with...)
	buf = append(buf, "</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>"...)
	buf = strconv.AppendInt(buf, int64(max), 10)
	return append(buf, "</max><before/></set></query></iq>"...)
}

// hasAttr reports whether raw has name='value' or name="value" (servers quote as they like).
func hasAttr(raw []byte, name, value string) bool {
	return loadgen.Contains(raw, name+"='"+value+"'") || loadgen.Contains(raw, name+"=\""+value+"\"")
}

// mamWait is the query a session has in flight.
type mamWait struct {
	id      string
	results atomic.Int64
	done    chan []byte // the IQ answer
}

// MAM logs the users in, fills their archives (unless c.Messages is 0) and times
// c.Queries queries, c.Conc in flight.
func MAM(t Target, c MAMConfig) (MAMResult, error) {
	r := MAMResult{Users: c.Users, Contacts: c.Contacts, Max: c.Max, Conc: c.Conc}
	if c.Users < 2 || c.Contacts < 1 || c.Contacts >= c.Users || c.Max < 1 || c.Conc < 1 || c.Conc > c.Users {
		return r, errors.New("scenario: mam needs 2+ users, 1 ≤ contacts < users, max ≥ 1 and 1 ≤ conc ≤ users")
	}
	var waits sync.Map // *loadgen.Session -> *mamWait
	o, err := ConnectWith(t, c.Users, c.LoginConc, true, func(s *loadgen.Session, st *xmlstream.Stanza) {
		v, ok := waits.Load(s)
		if !ok {
			return
		}
		w := v.(*mamWait)
		switch string(st.Name) {
		case "message":
			if hasAttr(st.Raw, "queryid", w.id) {
				w.results.Add(1)
			}
		case "iq":
			if string(st.ID) == w.id {
				waits.Delete(s)
				w.done <- append([]byte(nil), st.Raw...)
			}
		}
	})
	if err != nil {
		return r, err
	}
	defer o.Close()
	if c.Messages > 0 {
		t.logf("  %s: filling the archives: %d messages between %d users, %d contacts each", t.Name, c.Messages, c.Users, c.Contacts)
		r.Fill = fill(t, o, c)
		t.logf("  %s: %d of %d delivered in %.1f s (%.0f/s), server %.1f µs/message", t.Name, r.Fill.Delivered, r.Fill.Sent,
			r.Fill.Seconds, r.Fill.PerSecond, r.Fill.ServerCPUPerMsg)
	}
	if c.Queries == 0 {
		return r, nil // a fill alone (the plain reference without archiving)
	}
	o.drain(30 * time.Second)
	var hist Histogram
	var mu sync.Mutex
	var next, fails, results atomic.Int64
	var first firstError
	var wg sync.WaitGroup
	s0, _ := t.readProc()
	g0, _ := ReadProc(0)
	start := time.Now()
	for w := 0; w < c.Conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			buf := make([]byte, 0, 512)
			// Worker w asks from users w, w+Conc, ...: one query in flight per session.
			mine := (c.Users - w + c.Conc - 1) / c.Conc
			for q := 0; ; q++ {
				k := next.Add(1) - 1
				if k >= int64(c.Queries) {
					return
				}
				u := w + c.Conc*rng.IntN(mine)
				with := t.Prefix + strconv.Itoa(RingContact(u, rng.IntN(c.Contacts), c.Users)+1) + "@" + t.Cfg.Domain
				mw := &mamWait{id: "mq" + strconv.Itoa(w) + "-" + strconv.Itoa(q), done: make(chan []byte, 1)}
				s := o.ss[u]
				waits.Store(s, mw)
				buf = MAMQuery(buf[:0], mw.id, with, c.Max)
				t0 := time.Now()
				if err := s.Send(buf); err != nil {
					waits.Delete(s)
					fails.Add(1)
					first.set(err)
					continue
				}
				select {
				case ans := <-mw.done:
					d := time.Since(t0)
					if isError(ans) {
						fails.Add(1)
						first.set(fmt.Errorf("query refused: %s", ans))
						continue
					}
					mu.Lock()
					hist.Add(d)
					mu.Unlock()
					results.Add(mw.results.Load())
				case <-time.After(30 * time.Second):
					waits.Delete(s)
					fails.Add(1)
					first.set(fmt.Errorf("no answer to query %s in 30 s", mw.id))
				}
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	s1, _ := t.readProc()
	g1, _ := ReadProc(0)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.Queries, r.Failures, r.Results, r.Seconds = hist.Count(), int(fails.Load()), results.Load(), el.Seconds()
	if err := first.get(); err != nil {
		r.FirstFailure = err.Error()
	}
	r.P50ms, r.P90ms, r.P99ms = ms(hist.Quantile(0.5)), ms(hist.Quantile(0.9)), ms(hist.Quantile(0.99))
	if r.Queries > 0 {
		r.PerQuery = float64(r.Results) / float64(r.Queries)
		r.QueriesPerSec = float64(r.Queries) / el.Seconds()
		r.ServerCPUPerQuery = float64((s1.CPU - s0.CPU).Nanoseconds()) / 1000 / float64(r.Queries)
		r.GenCPUPerQuery = float64((g1.CPU - g0.CPU).Nanoseconds()) / 1000 / float64(r.Queries)
	}
	t.logf("  %s: %d queries (%d failed), %.1f results each, p50 %.2f ms p99 %.2f ms, %.0f/s, server %.0f µs/query",
		t.Name, r.Queries, r.Failures, r.PerQuery, r.P50ms, r.P99ms, r.QueriesPerSec, r.ServerCPUPerQuery)
	return r, nil
}

// fillChunk is how long the fill sends at one rate before it looks at what was delivered.
const fillChunk = 2 * time.Second

// fill sends c.Messages chat messages between ring contacts, in chunks of fillChunk at an
// offered rate that follows the server: after each chunk it waits until at most a
// quarter-chunk's worth is undelivered, then raises the rate by a quarter if that took no
// wait, and lowers it by a quarter if it took longer than the chunk. So the server runs
// near what it sustains, and its queues stay short (a backlog would be the server's
// memory, not its archive, being measured).
func fill(t Target, o *Online, c MAMConfig) MAMFill {
	var f MAMFill
	rate := max(c.FillRate, 10)
	base := o.recvd.Load()
	s0, _ := t.readProc()
	g0, _ := ReadProc(0)
	start := time.Now()
	lastLog := start
	for f.Sent < int64(c.Messages) {
		left := int64(c.Messages) - f.Sent
		dur := fillChunk
		if int64(float64(rate)*dur.Seconds()) > left {
			dur = time.Duration(float64(left) / float64(rate) * float64(time.Second))
			dur = max(dur, 20*time.Millisecond)
		}
		var budget atomic.Int64
		budget.Store(left)
		sent := paced(rate, 4, dur, func(_ int, rng *rand.Rand, buf []byte) ([]byte, *loadgen.Session) {
			a := rng.IntN(c.Users)
			b := RingContact(a, rng.IntN(c.Contacts), c.Users)
			if budget.Add(-1) < 0 {
				return buf, o.ss[a] // past the total (the chunk's rate rounds up): nothing
			}
			return chatTo(buf, o.ss[b].JID), o.ss[a]
		})
		f.Sent += min(sent.Load(), left)
		waitStart := time.Now()
		for f.Sent-(o.recvd.Load()-base) > int64(rate)/8 && time.Since(waitStart) < 30*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		switch waited := time.Since(waitStart); {
		case waited > fillChunk:
			rate = max(10, rate*3/4)
		case waited < 50*time.Millisecond:
			rate += rate / 4
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			t.logf("  %s: fill %d/%d, offering %d/s", t.Name, f.Sent, c.Messages, rate)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for o.recvd.Load()-base < f.Sent && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	s1, _ := t.readProc()
	g1, _ := ReadProc(0)
	f.Delivered, f.Seconds, f.FinalRate = o.recvd.Load()-base, el.Seconds(), rate
	f.PerSecond = float64(f.Delivered) / el.Seconds()
	if f.Delivered > 0 {
		f.ServerCPUPerMsg = float64((s1.CPU - s0.CPU).Nanoseconds()) / 1000 / float64(f.Delivered)
		f.GenCPUPerMsg = float64((g1.CPU - g0.CPU).Nanoseconds()) / 1000 / float64(f.Delivered)
	}
	return f
}
