package scenario

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/xmlstream"
)

// PresenceResult is the presence-storm result.
type PresenceResult struct {
	Users         int   `json:"users"`
	Contacts      int   `json:"contacts_per_user"`
	Subscriptions int64 `json:"subscriptions_made"`
	// SubscribeSeconds is how long the in-band provisioning took (0 when rosters were
	// written beforehand or made by an earlier run).
	SubscribeSeconds float64 `json:"subscribe_seconds,omitempty"`
	Delivered        int64   `json:"presence_delivered"`
	// Unique counts each (receiver, contact) pair once: a contact's presence may arrive
	// twice when both log in at the same moment (probe answer and broadcast), which
	// RFC 6121 allows; rates and CPU are per unique presence.
	Unique               int64   `json:"presence_unique"`
	Seconds              float64 `json:"seconds"`
	PerSecond            float64 `json:"presence_per_second"`
	ServerCPUPerPresence float64 `json:"server_cpu_us_per_presence"`
}

// Ring is the presence storm's roster for user i of n (0-based) with r contacts: i has
// subscribed to i+1..i+r ("to") and is subscribed to by i-1..i-r ("from"), modulo n; a
// contact in both directions is "both". It is what the in-band provisioning produces, for
// servers whose rosters are written beforehand. Keys are 0-based user indexes.
func Ring(i, n, r int) map[int]string {
	m := make(map[int]string, 2*r)
	for k := 1; k <= r; k++ {
		m[(i+k)%n] = "to"
	}
	for k := 1; k <= r; k++ {
		j := (i - k + n) % n
		if m[j] == "to" {
			m[j] = "both"
		} else {
			m[j] = "from"
		}
	}
	return m
}

// PresenceStorm gives users 1..n the Ring roster of r contacts each (user i subscribes to
// users i+1..i+r, which approve automatically, all in-band so it works on any server)
// unless provisioned says the rosters were written beforehand, logs everyone out, then
// logs everyone in at once with initial presence and counts the available presence
// stanzas delivered per second.
func PresenceStorm(t Target, n, r, conc int, provisioned bool) (PresenceResult, error) {
	res := PresenceResult{Users: n, Contacts: r}
	if 2*r >= n {
		return res, fmt.Errorf("scenario: need more than twice as many users as contacts")
	}
	if !provisioned {
		ring := func(i int) []int {
			out := make([]int, r)
			for k := 1; k <= r; k++ {
				out[k-1] = (i + k) % n
			}
			return out
		}
		if err := subscribeEach(t, n, conc, ring, &res); err != nil {
			return res, err
		}
	}
	return storm(t, n, conc, res)
}

// subscribeEach has each user i of 1..n subscribe to users targets(i) (0-based), in-band,
// every user approving every request, and waits until every subscription is approved.
func subscribeEach(t Target, n, conc int, targets func(i int) []int, res *PresenceResult) error {
	var subscribed atomic.Int64
	approve := func(s *loadgen.Session, st *xmlstream.Stanza) {
		if string(st.Name) != "presence" {
			return
		}
		switch string(st.Type) {
		case "subscribe":
			s.Send([]byte("<presence type='subscribed' to='" + string(st.From) + "'/>"))
		case "subscribed":
			subscribed.Add(1)
		}
	}
	o, err := ConnectWith(t, n, conc, false, approve)
	if err != nil {
		return err
	}
	for _, s := range o.ss {
		// Request the roster first: some servers (Prosody) push subscription requests only
		// to "interested" resources (RFC 6121 §2.1.6).
		s.Send([]byte("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq><presence/>"))
	}
	time.Sleep(500 * time.Millisecond)
	want := int64(0)
	for i, s := range o.ss {
		var b bytes.Buffer
		for _, j := range targets(i) {
			fmt.Fprintf(&b, "<presence type='subscribe' to='%s%d@%s'/>", t.Prefix, j+1, t.Cfg.Domain)
			want++
		}
		s.Send(b.Bytes())
	}
	start := time.Now()
	// Generous: ejabberd 23.01 here takes minutes for 20,000 subscriptions made at once;
	// the PEP storm's full mesh asks for a million. A server that approves nothing for a
	// minute has stopped.
	deadline := start.Add(6*time.Minute + time.Duration(want)*time.Millisecond)
	last, lastChange := int64(0), time.Now()
	for subscribed.Load() < want && time.Now().Before(deadline) && time.Since(lastChange) < time.Minute {
		if s := subscribed.Load(); s != last {
			last, lastChange = s, time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.Subscriptions = subscribed.Load()
	res.SubscribeSeconds = time.Since(start).Seconds()
	o.Close()
	t.logf("  %s: %d of %d subscriptions made in %.1fs", t.Name, res.Subscriptions, want, res.SubscribeSeconds)
	if res.Subscriptions < want {
		return fmt.Errorf("scenario: only %d of %d subscriptions were made in-band", res.Subscriptions, want)
	}
	return nil
}

func storm(t Target, n, conc int, res PresenceResult) (PresenceResult, error) {

	var delivered, unique atomic.Int64
	var seen sync.Map
	count := func(s *loadgen.Session, st *xmlstream.Stanza) {
		bare := s.JID
		if i := strings.IndexByte(bare, '/'); i >= 0 {
			bare = bare[:i]
		}
		if string(st.Name) == "presence" && len(st.Type) == 0 && !bytes.HasPrefix(st.From, []byte(bare)) {
			delivered.Add(1)
			from := st.From
			if i := bytes.IndexByte(from, '/'); i >= 0 {
				from = from[:i]
			}
			if _, dup := seen.LoadOrStore(bare+" "+string(from), struct{}{}); !dup {
				unique.Add(1)
			}
		}
	}
	s0, _ := t.readProc()
	start := time.Now()
	o, err := ConnectWith(t, n, conc, false, count)
	if err != nil {
		return res, err
	}
	defer o.Close()
	for _, s := range o.ss {
		s.Send([]byte("<presence><status>storm " + strconv.Itoa(n) + "</status></presence>"))
	}
	// Done when every contact has been seen, or when nothing has arrived for 5 s (a busy
	// server may be silent for seconds before its first broadcast), within 2 minutes.
	want := int64(n * res.Contacts)
	last, lastChange := int64(-1), time.Now()
	for unique.Load() < want && time.Since(lastChange) < 5*time.Second && time.Since(start) < 2*time.Minute {
		if d := delivered.Load(); d != last {
			last, lastChange = d, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if unique.Load() >= want {
		lastChange = time.Now()
		time.Sleep(time.Second) // count stragglers (duplicates) for the delivered total
	}
	el := lastChange.Sub(start)
	s1, _ := t.readProc()
	res.Delivered = delivered.Load()
	res.Unique = unique.Load()
	res.Seconds = el.Seconds()
	if el > 0 {
		res.PerSecond = float64(res.Unique) / el.Seconds()
	}
	if res.Unique > 0 {
		res.ServerCPUPerPresence = float64((s1.CPU - s0.CPU).Microseconds()) / float64(res.Unique)
	}
	t.logf("  %s: %d presence stanzas (%d unique of %d expected) in %.1fs (%.0f/s, server %.1f µs each, incl. logins)",
		t.Name, res.Delivered, res.Unique, int64(n*res.Contacts), res.Seconds, res.PerSecond, res.ServerCPUPerPresence)
	return res, nil
}
