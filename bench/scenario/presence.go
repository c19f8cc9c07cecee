package scenario

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/xmlstream"
)

// PresenceResult is the presence-storm result.
type PresenceResult struct {
	Users                int     `json:"users"`
	Contacts             int     `json:"contacts_per_user"`
	Subscriptions        int64   `json:"subscriptions_made"`
	Delivered            int64   `json:"presence_delivered"`
	Seconds              float64 `json:"seconds"`
	PerSecond            float64 `json:"presence_per_second"`
	ServerCPUPerPresence float64 `json:"server_cpu_us_per_presence"`
}

// PresenceStorm gives users 1..n a roster of r contacts each (user i subscribes to users
// i+1..i+r, which approve automatically, all in-band so it works on any server), logs
// everyone out, then logs everyone in at once with initial presence and counts the
// available presence stanzas delivered per second.
func PresenceStorm(t Target, n, r, conc int) (PresenceResult, error) {
	res := PresenceResult{Users: n, Contacts: r}
	if r >= n {
		return res, fmt.Errorf("scenario: need more users than contacts")
	}
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
	o, err := ConnectWith(t, n, conc, approve)
	if err != nil {
		return res, err
	}
	for _, s := range o.ss {
		// Request the roster first: some servers (Prosody) push subscription requests only
		// to "interested" resources (RFC 6121 §2.1.6).
		s.Send([]byte("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq><presence/>"))
	}
	time.Sleep(500 * time.Millisecond)
	for i, s := range o.ss {
		var b bytes.Buffer
		for k := 1; k <= r; k++ {
			fmt.Fprintf(&b, "<presence type='subscribe' to='%s%d@%s'/>", t.Prefix, (i+k)%n+1, t.Cfg.Domain)
		}
		s.Send(b.Bytes())
	}
	want := int64(n * r)
	deadline := time.Now().Add(2 * time.Minute)
	for subscribed.Load() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	res.Subscriptions = subscribed.Load()
	o.Close()
	t.logf("  %s: %d of %d subscriptions made", t.Name, res.Subscriptions, want)

	var delivered atomic.Int64
	count := func(s *loadgen.Session, st *xmlstream.Stanza) {
		bare := s.JID
		if i := strings.IndexByte(bare, '/'); i >= 0 {
			bare = bare[:i]
		}
		if string(st.Name) == "presence" && len(st.Type) == 0 && !bytes.HasPrefix(st.From, []byte(bare)) {
			delivered.Add(1)
		}
	}
	s0, _ := ReadProc(t.PID)
	start := time.Now()
	o, err = ConnectWith(t, n, conc, count)
	if err != nil {
		return res, err
	}
	defer o.Close()
	for _, s := range o.ss {
		s.Send([]byte("<presence><status>storm " + strconv.Itoa(n) + "</status></presence>"))
	}
	last, lastChange := int64(-1), time.Now()
	for time.Since(lastChange) < 2*time.Second && time.Since(start) < 2*time.Minute {
		if d := delivered.Load(); d != last {
			last, lastChange = d, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := lastChange.Sub(start)
	s1, _ := ReadProc(t.PID)
	res.Delivered = delivered.Load()
	res.Seconds = el.Seconds()
	if el > 0 {
		res.PerSecond = float64(res.Delivered) / el.Seconds()
	}
	if res.Delivered > 0 {
		res.ServerCPUPerPresence = float64((s1.CPU - s0.CPU).Microseconds()) / float64(res.Delivered)
	}
	t.logf("  %s: %d presence stanzas in %.1fs (%.0f/s, server %.1f µs each, incl. logins)", t.Name, res.Delivered, res.Seconds, res.PerSecond, res.ServerCPUPerPresence)
	return res, nil
}
