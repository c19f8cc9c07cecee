package roster

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Shared roster groups ([modules.roster] shared_groups_file): the members of a group have
// each other on their rosters, subscribed both ways, without anyone asking, as Prosody's
// mod_groups does and with its file format:
//
//	[Group Name]
//	alice@example.org=Alice
//	bob@example.org
//
// A name given on any line of a member is its name on every roster the groups put it on.
// A public group ([+Name], as in Prosody) puts its members on every account's roster,
// not only on its members'.
// The contacts are not stored: a layer over the store's rosters (store.RosterWrapper)
// adds them to every read, so presence, probes and roster reads see them like any other,
// and the file's next version replaces them. A user may rename such a contact or file it
// under other groups (that part is stored), but not remove it. Members must be accounts
// of the server's hosts.

// MaxSharedMembers bounds the members of one group: each member's roster gets all the
// others, and presence goes to all of them.
const MaxSharedMembers = 1000

// SharedGroups is a parsed groups file: for each member, the contacts the groups give it.
type SharedGroups struct {
	items map[string][]store.RosterItem // by member (bare JID), sorted by contact
	ver   map[string]uint64             // by member: a hash of its items, for roster versions
	// public are the members of the public groups, on everyone's roster, sorted by
	// contact; publicVer is their hash.
	public    []store.RosterItem
	publicVer uint64
}

// ParseSharedGroups reads a groups file; hosts are the server's virtual hosts, which
// every member must belong to.
func ParseSharedGroups(r io.Reader, hosts []string) (*SharedGroups, error) {
	type member struct{ jid, name string }
	groups := map[string][]member{}
	public := map[string]bool{}
	var order []string
	group := ""
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("line %d: a group is [Name]", n)
			}
			group = strings.TrimSpace(line[1 : len(line)-1])
			pub := strings.HasPrefix(group, "+")
			group = strings.TrimSpace(strings.TrimPrefix(group, "+"))
			if pub {
				public[group] = true
			}
			if group == "" || len(group) > MaxNameBytes {
				return nil, fmt.Errorf("line %d: a group needs a name of at most %d bytes", n, MaxNameBytes)
			}
			if _, ok := groups[group]; !ok {
				groups[group] = nil
				order = append(order, group)
			}
			continue
		}
		if group == "" {
			return nil, fmt.Errorf("line %d: a member before the first [Group]", n)
		}
		j, name, _ := strings.Cut(line, "=")
		bare, err := jid.Parse(strings.TrimSpace(j))
		if err != nil || !bare.IsBare() || bare.Local() == "" {
			return nil, fmt.Errorf("line %d: %q is not a bare JID", n, j)
		}
		if !slices.Contains(hosts, bare.Domain()) {
			return nil, fmt.Errorf("line %d: %s is not an account of this server's hosts", n, bare)
		}
		if name = strings.TrimSpace(name); len(name) > MaxNameBytes {
			return nil, fmt.Errorf("line %d: a name of at most %d bytes", n, MaxNameBytes)
		}
		if len(groups[group]) >= MaxSharedMembers {
			return nil, fmt.Errorf("line %d: group %q has more than %d members", n, group, MaxSharedMembers)
		}
		groups[group] = append(groups[group], member{bare.String(), name})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// A member's name, given on any of its lines, is its name in every group.
	names := map[string]string{}
	for _, g := range order {
		for _, m := range groups[g] {
			if names[m.jid] == "" {
				names[m.jid] = m.name
			}
		}
	}
	// file puts contact on a roster (items) under group g.
	file := func(items map[string]*store.RosterItem, contact, g string) {
		it := items[contact]
		if it == nil {
			it = &store.RosterItem{JID: contact, Name: names[contact], Sub: store.SubBoth, Shared: true}
			items[contact] = it
		}
		if !slices.Contains(it.Groups, g) {
			it.Groups = append(it.Groups, g)
		}
	}
	byMember := map[string]map[string]*store.RosterItem{}
	pubItems := map[string]*store.RosterItem{}
	for _, g := range order {
		for _, m := range groups[g] {
			if public[g] {
				file(pubItems, m.jid, g)
				continue
			}
			for _, c := range groups[g] {
				if c.jid == m.jid {
					continue
				}
				if byMember[m.jid] == nil {
					byMember[m.jid] = map[string]*store.RosterItem{}
				}
				file(byMember[m.jid], c.jid, g)
			}
		}
	}
	sg := &SharedGroups{items: map[string][]store.RosterItem{}, ver: map[string]uint64{}}
	for user, m := range byMember {
		sg.items[user], sg.ver[user] = sortedItems(m)
	}
	if len(pubItems) > 0 {
		sg.public, sg.publicVer = sortedItems(pubItems)
	}
	return sg, nil
}

// sortedItems lists m by contact, with the hash that goes into roster versions: a stored
// version is a counter far below 2^40, and the groups' hash takes the bits above, so a
// change of either gives the roster a new version (never the old one back), and a user
// in no group keeps the stored version as it is.
func sortedItems(m map[string]*store.RosterItem) ([]store.RosterItem, uint64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]store.RosterItem, 0, len(m))
	h := fnv.New64a()
	for _, k := range keys {
		it := *m[k]
		list = append(list, it)
		fmt.Fprintf(h, "%s\x00%s\x00%s\x01", it.JID, it.Name, strings.Join(it.Groups, "\x00"))
	}
	return list, (h.Sum64() | 1) << 40
}

// forUser is what the groups put on user's roster, sorted by contact.
func (g *SharedGroups) forUser(user string) []store.RosterItem {
	own := g.items[user]
	if len(g.public) == 0 {
		return own
	}
	out := make([]store.RosterItem, 0, len(own)+len(g.public))
	i, j := 0, 0
	for i < len(own) || j < len(g.public) {
		switch {
		case j == len(g.public) || i < len(own) && own[i].JID < g.public[j].JID:
			out = append(out, own[i])
			i++
		case i == len(own) || g.public[j].JID < own[i].JID:
			if g.public[j].JID != user {
				out = append(out, g.public[j])
			}
			j++
		default: // in both: one item, under every group
			it := own[i]
			it.Groups = append(slices.Clone(it.Groups), g.public[j].Groups...)
			out = append(out, it)
			i, j = i+1, j+1
		}
	}
	return out
}

// verFor is the hash user's roster version carries.
func (g *SharedGroups) verFor(user string) uint64 { return g.ver[user] ^ g.publicVer }

// LoadSharedGroups reads the groups file at path.
func LoadSharedGroups(path string, hosts []string) (*SharedGroups, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	g, err := ParseSharedGroups(f, hosts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// Members is the number of accounts in at least one group that is not public.
func (g *SharedGroups) Members() int { return len(g.items) }

// Wrap is the store.RosterWrapper layer of g over the stored rosters r.
func (g *SharedGroups) Wrap(r store.Rosters) store.Rosters { return sharedRosters{r, g} }

type sharedRosters struct {
	store.Rosters
	g *SharedGroups
}

func (s sharedRosters) shared(user, contact string) (store.RosterItem, bool) {
	find := func(list []store.RosterItem) (store.RosterItem, bool) {
		i := sort.Search(len(list), func(i int) bool { return list[i].JID >= contact })
		if i < len(list) && list[i].JID == contact {
			it := list[i]
			it.Groups = slices.Clone(it.Groups)
			return it, true
		}
		return store.RosterItem{}, false
	}
	it, own := find(s.g.items[user])
	if contact == user {
		return it, own
	}
	if pub, ok := find(s.g.public); ok {
		if !own {
			return pub, true
		}
		it.Groups = append(it.Groups, pub.Groups...)
	}
	return it, own
}

// merge is a stored item of a shared contact: the user's name and groups, the groups'
// subscription (and group names when the user filed it under none).
func merge(stored, shared store.RosterItem) store.RosterItem {
	stored.Sub, stored.Ask, stored.PendingIn, stored.Shared = store.SubBoth, false, false, true
	if stored.Name == "" {
		stored.Name = shared.Name
	}
	if len(stored.Groups) == 0 {
		stored.Groups = shared.Groups
	}
	return stored
}

func (s sharedRosters) Get(user string) ([]store.RosterItem, uint64, error) {
	items, ver, err := s.Rosters.Get(user)
	list := s.g.forUser(user)
	if err != nil || len(list) == 0 {
		return items, ver, err
	}
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		if sh, ok := s.shared(user, it.JID); ok {
			items[i] = merge(it, sh)
			seen[it.JID] = true
		}
	}
	for _, sh := range list {
		if !seen[sh.JID] {
			sh.Groups = slices.Clone(sh.Groups)
			items = append(items, sh)
		}
	}
	return items, ver ^ s.g.verFor(user), nil
}

func (s sharedRosters) Item(user, contact string) (store.RosterItem, error) {
	it, err := s.Rosters.Item(user, contact)
	sh, ok := s.shared(user, contact)
	switch {
	case !ok:
		return it, err
	case err == nil:
		return merge(it, sh), nil
	case errors.Is(err, store.ErrNotFound):
		return sh, nil
	}
	return it, err
}

func (s sharedRosters) Version(user string) (uint64, error) {
	ver, err := s.Rosters.Version(user)
	return ver ^ s.g.verFor(user), err
}

// Put stores what the user may change of a shared contact (name, groups) with the
// subscription state stored before, so that the groups' state never becomes a stored
// subscription.
func (s sharedRosters) Put(user string, it store.RosterItem) (uint64, error) {
	if _, ok := s.shared(user, it.JID); ok {
		old, err := s.Rosters.Item(user, it.JID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
		it.Sub, it.Ask, it.PendingIn, it.Approved = old.Sub, old.Ask, old.PendingIn, old.Approved
	}
	it.Shared = false
	ver, err := s.Rosters.Put(user, it)
	return ver ^ s.g.verFor(user), err
}

// Delete refuses a shared contact (store.ErrShared).
func (s sharedRosters) Delete(user, contact string) (uint64, error) {
	if _, ok := s.shared(user, contact); ok {
		return 0, store.ErrShared
	}
	ver, err := s.Rosters.Delete(user, contact)
	return ver ^ s.g.verFor(user), err
}
