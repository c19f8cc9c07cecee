package muc

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// histEntry is one message of a room's discussion history: the stanza as the room
// reflected it (from the occupant JID, with stanza-id and occupant-id, without 'to'),
// with <delay/> already added (XEP-0045 §7.2.13: the time the room received it).
type histEntry struct {
	raw   []byte
	at    time.Time
	chars int // characters of raw (XEP-0045 maxchars counts the whole stanza)
}

// history is a ring of the last messages of a room, in memory; its length is the room's
// muc#maxhistoryfetch, bounded by [modules.muc] max_history, and its size by
// maxHistoryBytes.
type history struct {
	ring  []histEntry
	start int // oldest entry
	n     int
	bytes int // of the entries' raw
}

// maxHistoryBytes bounds a room's history: a count alone let 200 messages of the largest
// stanza hold 50 MiB per room, and a join that asked for all of it overflowed the
// joiner's outbound limit, so that nobody could join (XEP-0045 §7.2.14 lets the service
// send less than asked).
const maxHistoryBytes = 256 << 10

// add appends e, dropping the oldest entries when the ring holds max, or more than
// maxHistoryBytes with e (e itself stays).
func (h *history) add(e histEntry, max int) {
	if max <= 0 {
		h.ring, h.start, h.n, h.bytes = nil, 0, 0, 0
		return
	}
	if len(h.ring) != max {
		h.resize(max)
	}
	if h.n == max {
		h.dropOldest()
	}
	for h.n > 0 && h.bytes+len(e.raw) > maxHistoryBytes {
		h.dropOldest()
	}
	h.ring[(h.start+h.n)%max] = e
	h.n++
	h.bytes += len(e.raw)
}

func (h *history) dropOldest() {
	h.bytes -= len(h.ring[h.start].raw)
	h.ring[h.start] = histEntry{}
	h.start = (h.start + 1) % len(h.ring)
	h.n--
}

// resize keeps the newest max entries in a ring of size max.
func (h *history) resize(max int) {
	if max <= 0 {
		h.ring, h.start, h.n, h.bytes = nil, 0, 0, 0
		return
	}
	keep := min(h.n, max)
	nr := make([]histEntry, max)
	h.bytes = 0
	for i := 0; i < keep; i++ {
		nr[i] = h.ring[(h.start+h.n-keep+i)%len(h.ring)]
		h.bytes += len(nr[i].raw)
	}
	h.ring, h.start, h.n = nr, 0, keep
}

// at returns the i-th entry, oldest first.
func (h *history) at(i int) *histEntry { return &h.ring[(h.start+i)%len(h.ring)] }

// histLimits is a <history/> request (XEP-0045 §7.2.14); negative fields are unset.
type histLimits struct {
	maxStanzas, maxChars, seconds int
	since                         time.Time
}

func noLimits() histLimits { return histLimits{maxStanzas: -1, maxChars: -1, seconds: -1} }

// parseHistory reads the <history/> child of the join element x. Malformed attributes are
// ignored (the service's own limits still apply).
func parseHistory(x xmlstream.Element) histLimits {
	l := noLimits()
	h, ok := x.Child(NS, "history")
	if !ok {
		return l
	}
	num := func(name string) int {
		v, ok := h.AppendAttr(nil, name)
		if !ok {
			return -1
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(v)))
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	l.maxStanzas, l.maxChars, l.seconds = num("maxstanzas"), num("maxchars"), num("seconds")
	if v, ok := h.AppendAttr(nil, "since"); ok {
		if t, ok := parseStamp(strings.TrimSpace(string(v))); ok {
			l.since = t
		}
	}
	return l
}

// pick returns the index of the first entry to send: the smallest amount of history that
// meets every limit (XEP-0045 §7.2.14), whole stanzas only. extra is the length of what
// each stanza gains on the way (the 'to' attribute), counted against maxchars.
func (h *history) pick(l histLimits, now time.Time, extra int) int {
	first := 0
	if l.maxStanzas >= 0 && h.n-l.maxStanzas > first {
		first = h.n - l.maxStanzas
	}
	if l.seconds >= 0 {
		from := now.Add(-time.Duration(l.seconds) * time.Second)
		for first < h.n && h.at(first).at.Before(from) {
			first++
		}
	}
	if !l.since.IsZero() {
		for first < h.n && h.at(first).at.Before(l.since) {
			first++
		}
	}
	if l.maxChars >= 0 {
		total, i := 0, h.n
		for i > first {
			c := h.at(i-1).chars + extra
			if total+c > l.maxChars {
				break
			}
			total += c
			i--
		}
		first = i
	}
	return first
}

// record adds a reflected groupchat message (tmpl, without 'to') to the history.
func (r *room) record(tmpl []byte, at time.Time) {
	if r.cfg.History <= 0 {
		return
	}
	raw := xmlstream.AppendChild(make([]byte, 0, len(tmpl)+96), tmpl, appendDelay(nil, r.jid, at))
	r.hist.add(histEntry{raw: raw, at: at, chars: utf8.RuneCount(raw)}, r.cfg.History)
}

// seedHistory fills the empty history of a room just loaded from the store with the
// newest muc#maxhistoryfetch messages of its archive (HistorySource), when the room is
// logged: the ring then holds what it held before the restart, as far as the archive
// kept it, and every <history/> limit applies to it as to live history. The seconds and
// since limits cannot reach further back than the ring anyway (the service's own limit,
// §7.2.14), so one read at load serves every later join from memory.
func (r *room) seedHistory() {
	if !r.cfg.Logging || r.cfg.History <= 0 || r.hist.n > 0 {
		return
	}
	hs, ok := r.svc.m.archive().(HistorySource)
	if !ok {
		return
	}
	newest := make([]histEntry, 0, r.cfg.History)
	err := hs.Recent(r.jid, time.Time{}, func(at time.Time, raw []byte) bool {
		b := xmlstream.AppendChild(make([]byte, 0, len(raw)+96), raw, appendDelay(nil, r.jid, at))
		newest = append(newest, histEntry{raw: b, at: at, chars: utf8.RuneCount(b)})
		return len(newest) < r.cfg.History
	})
	if err != nil && module.LogStoreError(err) {
		r.svc.m.log.Error().Err(err).Str("room", r.key).Msg("muc: read history from the archive")
	}
	for i := len(newest) - 1; i >= 0; i-- {
		r.hist.add(newest[i], r.cfg.History)
	}
}

// sendHistory sends the history a joiner asked for (x is its join element).
func (r *room) sendHistory(c module.Context, snd *sender, to jid.JID, x xmlstream.Element) {
	if r.hist.n == 0 {
		return
	}
	l := parseHistory(x)
	extra := len(" to=''") + utf8.RuneCountInString(to.String())
	for i := r.hist.pick(l, c.Now(), extra); i < r.hist.n; i++ {
		snd.to(to, r.hist.at(i).raw)
	}
}

// subjectMessage builds the subject message (XEP-0045 §7.2.15) without 'to'.
func (r *room) subjectMessage() []byte {
	var b xmlstream.Builder
	from := r.jid.String()
	if r.subject.nick != "" {
		from += "/" + r.subject.nick
	}
	b.Start("message").Attr("type", "groupchat").Attr("from", from)
	if r.subject.text == "" {
		b.Start("subject").End()
	} else {
		b.Start("subject").Text(r.subject.text).End()
	}
	if r.subject.set {
		b.Raw(appendDelay(nil, r.jid, r.subject.at))
	}
	if r.subject.occID != "" {
		b.Raw(appendOccupantID(nil, r.subject.occID))
	}
	b.End()
	return b.B
}

func (r *room) sendSubject(snd *sender, to jid.JID) { snd.to(to, r.subjectMessage()) }

// trafficSkip are the namespaces of what every groupchat message carries or the room adds
// (the message itself, its ids, delay, occupant id, muc#user data), which say nothing about
// the room's traffic.
var trafficSkip = map[string]bool{"jabber:client": true, "urn:xmpp:sid:0": true, "urn:xmpp:delay": true,
	NSOccupant: true, NS + "#user": true}

// traffic lists, sorted, the namespaces of the payloads in the room's discussion history
// (XEP-0045 §6.7: what a client should be ready for before it joins).
func (r *room) traffic() []string {
	seen := map[string]bool{}
	for i := range r.hist.n {
		e, err := xmlstream.ParseElement(r.hist.at(i).raw, "jabber:client")
		if err != nil {
			continue
		}
		for it := e.Children(); ; {
			c, ok := it.Next()
			if !ok {
				break
			}
			if space := string(c.NS()); space != "" && !trafficSkip[space] {
				seen[space] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for space := range seen {
		out = append(out, space)
	}
	slices.Sort(out)
	return out
}
