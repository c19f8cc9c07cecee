package mam

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// MaxPrefsJIDs bounds the JIDs of one user's always and never lists together
// (not-acceptable beyond): the lists are read for every archived message.
const MaxPrefsJIDs = 500

// Default archiving policies (XEP-0441 §2.1).
const (
	PolicyAlways = "always"
	PolicyNever  = "never"
	PolicyRoster = "roster"
)

// prefs are one user's archiving preferences (XEP-0441).
type prefs struct {
	def    string
	always []string // normalized JIDs, bare or full
	never  []string
	// implicit: the user stored none; def is the host's default, which a reload may
	// change, so it is read at each use rather than kept.
	implicit bool
}

func validPolicy(s string) bool { return s == PolicyAlways || s == PolicyNever || s == PolicyRoster }

// encodePrefs stores prefs as lines: the default, then "+jid" (always) and "-jid" (never).
// JIDs cannot hold a line feed (RFC 7622 forbids control characters).
func encodePrefs(p prefs) []byte {
	var b strings.Builder
	b.WriteString(p.def)
	for _, j := range p.always {
		b.WriteString("\n+" + j)
	}
	for _, j := range p.never {
		b.WriteString("\n-" + j)
	}
	return []byte(b.String())
}

func decodePrefs(v []byte) (prefs, error) {
	lines := strings.Split(string(v), "\n")
	p := prefs{def: lines[0]}
	if !validPolicy(p.def) {
		return p, fmt.Errorf("%w: archive preferences", store.ErrCorrupt)
	}
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, "+"):
			p.always = append(p.always, l[1:])
		case strings.HasPrefix(l, "-"):
			p.never = append(p.never, l[1:])
		default:
			return p, fmt.Errorf("%w: archive preferences", store.ErrCorrupt)
		}
	}
	return p, nil
}

// listed reports whether contact matches an entry of list: a bare entry matches every
// resource of that JID, a full entry only that resource.
func listed(list []string, contact jid.JID) bool {
	full, bare := contact.String(), contact.Bare().String()
	for _, j := range list {
		if j == bare || j == full {
			return true
		}
	}
	return false
}

// parsePrefs reads <prefs default='...'><always><jid/>...</always><never>...</never></prefs>.
func parsePrefs(e xmlstream.Element) (prefs, *stanza.Error) {
	d, _ := e.AppendAttr(nil, "default")
	p := prefs{def: string(d)}
	if !validPolicy(p.def) {
		return p, badRequest("default must be always, never or roster")
	}
	n := 0
	for it := e.Children(); ; {
		c, ok := it.Next()
		if !ok {
			break
		}
		if string(c.NS()) != NS || (string(c.Name()) != "always" && string(c.Name()) != "never") {
			continue
		}
		for ji := c.Children(); ; {
			j, ok := ji.Next()
			if !ok {
				break
			}
			if string(j.NS()) != NS || string(j.Name()) != "jid" {
				continue
			}
			if n++; n > MaxPrefsJIDs {
				return p, &stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable,
					Text: fmt.Sprintf("at most %d JIDs in the preferences", MaxPrefsJIDs)}
			}
			v, err := jid.ParseBytes(bytes.TrimSpace(j.AppendText(nil)))
			if err != nil {
				return p, &stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed}
			}
			if string(c.Name()) == "always" {
				p.always = append(p.always, v.String())
			} else {
				p.never = append(p.never, v.String())
			}
		}
	}
	return p, nil
}

// appendPrefs writes p as the XEP-0441 <prefs/> element.
func appendPrefs(b *xmlstream.Builder, p prefs) {
	b.Start("prefs").Attr("xmlns", NS).Attr("default", p.def)
	for _, l := range []struct {
		name string
		jids []string
	}{{"always", p.always}, {"never", p.never}} {
		b.Start(l.name)
		for _, j := range l.jids {
			b.Start("jid").Text(j).End()
		}
		b.End()
	}
	b.End()
}

// prefsCache remembers users' preferences: they decide every archive write (twice per
// message), and reading them from the store each time was the largest part of archiving's
// cost. A user's entry is read and replaced only on that user's shard, but the map is
// shared by all shards, so it is split by a hash with a lock per part. A part that grows
// past its bound is emptied rather than kept in LRU order: users come back with one read.
// An account's entry is dropped when the account is removed (before its name can be
// registered again).
type prefsCache struct {
	seed  maphash.Seed
	parts [64]struct {
		mu sync.Mutex
		m  map[string]prefs
	}
}

// prefsPerPart bounds one part of the cache (64 parts: about 260,000 users).
const prefsPerPart = 4096

func newPrefsCache() *prefsCache { return &prefsCache{seed: maphash.MakeSeed()} }

func (pc *prefsCache) part(user string) *struct {
	mu sync.Mutex
	m  map[string]prefs
} {
	return &pc.parts[maphash.String(pc.seed, user)%uint64(len(pc.parts))]
}

func (pc *prefsCache) get(user string) (prefs, bool) {
	p := pc.part(user)
	p.mu.Lock()
	v, ok := p.m[user]
	p.mu.Unlock()
	return v, ok
}

func (pc *prefsCache) drop(user string) {
	p := pc.part(user)
	p.mu.Lock()
	delete(p.m, user)
	p.mu.Unlock()
}

func (pc *prefsCache) put(user string, v prefs) {
	p := pc.part(user)
	p.mu.Lock()
	if p.m == nil || len(p.m) >= prefsPerPart {
		p.m = make(map[string]prefs)
	}
	p.m[user] = v
	p.mu.Unlock()
}
