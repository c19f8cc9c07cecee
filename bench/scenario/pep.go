package scenario

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/xmlstream"
)

// The generator's XEP-0115 entity capabilities in the PEP storm: a client that wants
// avatar metadata notifications (XEP-0163 §4.3, XEP-0084).
const (
	CapsNode       = "https://vireo.im/xmppbench"
	capsIdentity   = "client/pc//xmppbench"
	NodeAvatarMeta = "urn:xmpp:avatar:metadata"
)

// capsFeatures are the features the generator's sessions advertise.
var capsFeatures = []string{"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info", NodeAvatarMeta + "+notify"}

// CapsVer is the XEP-0115 §5.1 verification string of identities (category/type/lang/name)
// and features, without forms: base64 of the SHA-1 of each sorted identity and feature
// followed by '<'.
func CapsVer(identities, features []string) string {
	var b strings.Builder
	for _, x := range [][]string{identities, features} {
		s := slices.Clone(x)
		slices.Sort(s)
		for _, v := range s {
			b.WriteString(v)
			b.WriteByte('<')
		}
	}
	h := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(h[:])
}

// capsPresence is the available presence with the generator's caps.
func capsPresence() string {
	return "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='" + CapsNode + "' ver='" +
		CapsVer([]string{capsIdentity}, capsFeatures) + "'/></presence>"
}

// discoAnswer answers a disco#info query (XEP-0030) the way XEP-0115 §6.2 wants it: the
// node asked for echoed, the identity and features whose hash the ver is. It returns nil
// for a stanza that is no such query.
func discoAnswer(st *xmlstream.Stanza) []byte {
	if string(st.Name) != "iq" || string(st.Type) != "get" || !loadgen.Contains(st.Raw, "http://jabber.org/protocol/disco#info") {
		return nil
	}
	node := ""
	if q, ok := st.FirstChild(); ok {
		if v, ok := q.AppendAttr(nil, "node"); ok {
			node = " node='" + xmlEscape(string(v)) + "'"
		}
	}
	var b strings.Builder
	b.WriteString("<iq type='result' id='" + string(st.ID) + "'")
	if len(st.From) > 0 {
		b.WriteString(" to='" + string(st.From) + "'")
	}
	b.WriteString("><query xmlns='http://jabber.org/protocol/disco#info'" + node + "><identity category='client' type='pc' name='xmppbench'/>")
	for _, f := range capsFeatures {
		b.WriteString("<feature var='" + f + "'/>")
	}
	b.WriteString("</query></iq>")
	return []byte(b.String())
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", "'", "&apos;", "\"", "&quot;").Replace(s)
}

// AvatarID is user i's item id for the run tag: the avatar's SHA-1 in XEP-0084, made up
// here (only the metadata node is published).
func AvatarID(i int, tag string) string {
	h := sha1.Sum([]byte("xmppbench avatar " + tag + " " + strconv.Itoa(i)))
	return hex.EncodeToString(h[:])
}

// AvatarPublish is user i's XEP-0084 metadata publish with the IQ id pub-TAG and the item
// AvatarID(i, tag).
func AvatarPublish(i int, tag string) []byte {
	id := AvatarID(i, tag)
	return []byte("<iq type='set' id='pub-" + tag + "'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='" + NodeAvatarMeta +
		"'><item id='" + id + "'><metadata xmlns='" + NodeAvatarMeta + "'><info bytes='4096' id='" + id +
		"' height='64' width='64' type='image/png'/></metadata></item></publish></pubsub></iq>")
}

// UserIndex is the 0-based index of the account prefix(N) in a JID (bare or full):
// prefix7@host/res is 6. It returns -1 for any other JID.
func UserIndex(jid []byte, prefix string) int {
	if !bytes.HasPrefix(jid, []byte(prefix)) {
		return -1
	}
	n, k := 0, len(prefix)
	for ; k < len(jid) && jid[k] >= '0' && jid[k] <= '9' && k-len(prefix) < 9; k++ {
		n = n*10 + int(jid[k]-'0')
	}
	if k == len(prefix) || k >= len(jid) || jid[k] != '@' || n == 0 {
		return -1
	}
	return n - 1
}

// pepQuiet is how long nothing must arrive before the PEP storm's login and presence
// exchange counts as over.
const pepQuiet = 3 * time.Second

// PEPResult is the PEP storm's result.
type PEPResult struct {
	Users int `json:"users"`
	// Subscriptions and SubscribeSeconds are the in-band roster provisioning (0 when the
	// rosters were written beforehand).
	Subscriptions    int64   `json:"subscriptions_made,omitempty"`
	SubscribeSeconds float64 `json:"subscribe_seconds,omitempty"`
	// CapsQueries counts the disco#info queries the server sent to learn the generator's
	// caps, LoginSeconds the time from the first login to the end of the presence exchange.
	CapsQueries int64 `json:"caps_queries"`
	// Presences counts the contacts' available presence seen, each (receiver, contact)
	// once: Expected when the rosters and the presence exchange worked.
	Presences    int64   `json:"presences"`
	LoginSeconds float64 `json:"login_seconds"`
	// SetupFails counts the users whose first publish (before the storm, to create the
	// node) was refused five times (all at once, then one at a time).
	SetupFails   int `json:"setup_failures,omitempty"`
	Published    int `json:"published"`
	PublishFails int `json:"publish_failures"`
	// Expected is Users×(Users-1): each publish to every contact. Delivered counts the
	// notifications from contacts, Unique each (receiver, publisher) once; Own the
	// notifications of the publisher's own item to itself, left out of the rates.
	Expected  int64 `json:"expected"`
	Delivered int64 `json:"delivered"`
	Unique    int64 `json:"unique"`
	Own       int64 `json:"own"`
	// Seconds runs from the first publish to the last notification.
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"notifications_per_second"`
	// P50ms and P99ms are from a publish being sent to each notification of it arriving.
	P50ms              float64 `json:"p50_ms"`
	P99ms              float64 `json:"p99_ms"`
	ServerCPUPerNotify float64 `json:"server_cpu_us_per_notification"`
	GenCPUPerNotify    float64 `json:"generator_cpu_us_per_notification"`
	PublishErrorFirst  string  `json:"first_publish_error,omitempty"`
	// ServerCPUPresencePhase is the server's CPU time from the first login to the storm:
	// logins, first publishes, presence and caps.
	ServerCPUPresencePhase float64 `json:"server_cpu_seconds_login_phase"`
}

// Mesh is the PEP storm's roster for user i of n (0-based): everyone else, both ways.
func Mesh(i, n int) map[int]string {
	m := make(map[int]string, n-1)
	for j := 0; j < n; j++ {
		if j != i {
			m[j] = "both"
		}
	}
	return m
}

// PEPStorm makes users 1..n all mutual contacts (in-band, unless provisioned says the
// rosters were written beforehand), logs them in, has each publish a first item while
// nobody is available (the node then exists, as a user's avatar node does), sends
// presence that advertises urn:xmpp:avatar:metadata+notify in its caps (answering the
// server's disco#info), waits until the presence exchange is over, then has every user
// publish one avatar metadata item at once, and counts the notifications delivered per
// second.
func PEPStorm(t Target, n, conc int, provisioned bool) (PEPResult, error) {
	res := PEPResult{Users: n, Expected: int64(n) * int64(n-1)}
	if n < 2 {
		return res, errors.New("scenario: the PEP storm needs 2+ users")
	}
	if !provisioned {
		var pr PresenceResult
		if err := subscribeEach(t, n, conc, func(i int) []int {
			out := make([]int, 0, n-1)
			for j := 0; j < n; j++ {
				if j != i {
					out = append(out, j)
				}
			}
			return out
		}, &pr); err != nil {
			return res, err
		}
		res.Subscriptions, res.SubscribeSeconds = pr.Subscriptions, pr.SubscribeSeconds
	}
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	pubAt := make([]atomic.Int64, n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = AvatarID(i, tag)
	}
	// setup[i] is 1 once user i's setup publish succeeded, 2 if it was refused.
	setup := make([]atomic.Int32, n)
	seen := make([]atomic.Uint64, (n*n+63)/64)
	presSeen := make([]atomic.Uint64, (n*n+63)/64)
	var caps, delivered, unique, own, acked, pubFails, last, presences atomic.Int64
	var pubErr firstError
	lat := make(chan time.Duration, 1<<16)
	var hist Histogram
	histDone := make(chan struct{})
	go func() {
		for d := range lat {
			hist.Add(d)
		}
		close(histDone)
	}()
	on := func(s *loadgen.Session, st *xmlstream.Stanza) {
		last.Store(time.Now().UnixNano())
		if a := discoAnswer(st); a != nil {
			caps.Add(1)
			s.Send(a)
			return
		}
		switch string(st.Name) {
		case "presence":
			from, to := UserIndex(st.From, t.Prefix), UserIndex([]byte(s.JID), t.Prefix)
			if len(st.Type) == 0 && from >= 0 && from < n && to >= 0 && to < n && from != to {
				bit := uint64(to*n + from)
				if old := presSeen[bit/64].Or(1 << (bit % 64)); old&(1<<(bit%64)) == 0 {
					presences.Add(1)
				}
			}
		case "iq":
			if string(st.ID) == "pub-setup"+tag {
				if i := UserIndex([]byte(s.JID), t.Prefix); i >= 0 && i < n {
					if string(st.Type) == "result" {
						setup[i].Store(1)
					} else {
						setup[i].Store(2)
					}
				}
			}
			if string(st.ID) == "pub-"+tag {
				if string(st.Type) == "result" {
					acked.Add(1)
				} else {
					pubFails.Add(1)
					pubErr.set(fmt.Errorf("publish refused: %s", st.Raw))
				}
			}
		case "message":
			if !loadgen.Contains(st.Raw, "http://jabber.org/protocol/pubsub#event") || !loadgen.Contains(st.Raw, NodeAvatarMeta) {
				return
			}
			from, to := UserIndex(st.From, t.Prefix), UserIndex([]byte(s.JID), t.Prefix)
			if from < 0 || from >= n || to < 0 || to >= n || pubAt[from].Load() == 0 || !loadgen.Contains(st.Raw, ids[from]) {
				return // not the storm's publish (the setup item, or an earlier run's sent at login)
			}
			if from == to {
				own.Add(1)
				return
			}
			delivered.Add(1)
			lat <- time.Duration(time.Now().UnixNano() - pubAt[from].Load())
			bit := uint64(to*n + from)
			if old := seen[bit/64].Or(1 << (bit % 64)); old&(1<<(bit%64)) == 0 {
				unique.Add(1)
			}
		}
	}
	s0, _ := t.readProc()
	start := time.Now()
	o, err := ConnectWith(t, n, conc, false, on)
	if err != nil {
		close(lat)
		return res, err
	}
	// Every user publishes a first item before anyone is available, so the storm measures
	// publishes to a node that exists, as a user's avatar node does. All at once first,
	// as clients would; ejabberd 23.01 here refuses most of a hundred concurrent node
	// creations (item-not-found: its Mnesia transaction on the node index aborts as
	// cyclic), so refused ones are tried again one at a time, four more times at most.
	setupWait := func(i int) bool { // reports whether user i's answer is still awaited
		return setup[i].Load() == 0
	}
	for round := 0; round < 5; round++ {
		pending := 0
		for i, s := range o.ss {
			if setup[i].Load() == 1 {
				continue
			}
			pending++
			setup[i].Store(0)
			s.Send(AvatarPublish(i, "setup"+tag))
			for t0 := time.Now(); round > 0 && setupWait(i) && time.Since(t0) < 10*time.Second; {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if pending == 0 {
			break
		}
		for t0 := time.Now(); time.Since(t0) < 30*time.Second; time.Sleep(20 * time.Millisecond) {
			waiting := false
			for i := range setup {
				waiting = waiting || setupWait(i)
			}
			if !waiting {
				break
			}
		}
	}
	for i := range setup {
		if setup[i].Load() != 1 {
			res.SetupFails++
		}
	}
	pres := []byte(capsPresence())
	last.Store(time.Now().UnixNano())
	for _, s := range o.ss {
		s.Send(pres)
	}
	// The presence exchange (the caps queries, the last items of an earlier run) is over
	// when every user has seen every contact available and then nothing has arrived for
	// pepQuiet. Quiet alone is not enough: Prosody 0.12 can be busy and silent for
	// seconds right after the logins.
	for presences.Load() < res.Expected && time.Since(start) < 5*time.Minute {
		time.Sleep(50 * time.Millisecond)
	}
	for time.Since(time.Unix(0, last.Load())) < pepQuiet && time.Since(start) < 5*time.Minute {
		time.Sleep(50 * time.Millisecond)
	}
	res.Presences = presences.Load()
	res.LoginSeconds = time.Since(start).Seconds()
	s1, _ := t.readProc()
	res.ServerCPUPresencePhase = (s1.CPU - s0.CPU).Seconds()
	res.CapsQueries = caps.Load()
	t.logf("  %s: %d sessions up with presence in %.1f s, %d of %d contacts seen available, %d caps queries answered", t.Name, n, res.LoginSeconds,
		res.Presences, res.Expected, res.CapsQueries)
	g0, _ := ReadProc(0)
	pubStart := time.Now()
	for i, s := range o.ss {
		pubAt[i].Store(time.Now().UnixNano())
		if err := s.Send(AvatarPublish(i, tag)); err != nil {
			pubFails.Add(1)
			pubErr.set(err)
		}
	}
	// Done when every contact has every notification, or nothing has arrived for 30 s
	// (Prosody 0.12 here goes silent for over 5 s in a storm of 100 users and then
	// delivers the rest), within 10 minutes. The rate ends at the last arrival, so the
	// wait does not count.
	lastSeen := time.Now()
	for prev := int64(-1); unique.Load() < res.Expected && time.Since(lastSeen) < 30*time.Second && time.Since(pubStart) < 10*time.Minute; {
		if d := delivered.Load() + acked.Load(); d != prev {
			prev, lastSeen = d, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if unique.Load() >= res.Expected {
		lastSeen = time.Now()
	}
	el := lastSeen.Sub(pubStart)
	s2, _ := t.readProc()
	g1, _ := ReadProc(0)
	time.Sleep(200 * time.Millisecond) // the publish answers that are still on their way
	res.Published, res.PublishFails = int(acked.Load()), int(pubFails.Load())
	if err := pubErr.get(); err != nil {
		res.PublishErrorFirst = err.Error()
	}
	res.Delivered, res.Unique, res.Own, res.Seconds = delivered.Load(), unique.Load(), own.Load(), el.Seconds()
	o.Close()
	close(lat)
	<-histDone
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.P50ms, res.P99ms = ms(hist.Quantile(0.5)), ms(hist.Quantile(0.99))
	if res.Unique > 0 && el > 0 {
		res.PerSecond = float64(res.Unique) / el.Seconds()
		res.ServerCPUPerNotify = float64((s2.CPU - s1.CPU).Nanoseconds()) / 1000 / float64(res.Unique)
		res.GenCPUPerNotify = float64((g1.CPU - g0.CPU).Nanoseconds()) / 1000 / float64(res.Unique)
	}
	t.logf("  %s: %d publishes (%d refused), %d of %d notifications in %.2f s (%.0f/s, p99 %.1f ms), server %.2f µs each",
		t.Name, res.Published, res.PublishFails, res.Unique, res.Expected, res.Seconds, res.PerSecond, res.P99ms, res.ServerCPUPerNotify)
	return res, nil
}
