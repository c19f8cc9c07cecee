package roster

import (
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pebblestore"
)

const groupsFile = `# the team
[Team]
alice@a.org=Alice
bob@a.org = Bob
carol@b.org

[Ops]
alice@a.org
dave@a.org=Dave
`

func TestParseSharedGroups(t *testing.T) {
	g, err := ParseSharedGroups(strings.NewReader(groupsFile), []string{"a.org", "b.org"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Members() != 4 {
		t.Fatalf("members %d", g.Members())
	}
	got := func(user string) string {
		var out []string
		for _, it := range g.items[user] {
			out = append(out, it.JID+"="+it.Name+"/"+strings.Join(it.Groups, "+")+"/"+it.Sub.String())
		}
		return strings.Join(out, " ")
	}
	for user, want := range map[string]string{
		"alice@a.org": "bob@a.org=Bob/Team/both carol@b.org=/Team/both dave@a.org=Dave/Ops/both",
		"bob@a.org":   "alice@a.org=Alice/Team/both carol@b.org=/Team/both",
		"dave@a.org":  "alice@a.org=Alice/Ops/both",
	} {
		if got := got(user); got != want {
			t.Errorf("%s: %s, want %s", user, got, want)
		}
	}
	for _, tc := range []struct{ name, file, want string }{
		{"member first", "alice@a.org\n", "before the first"},
		{"full JID", "[G]\nalice@a.org/pc\n", "not a bare JID"},
		{"other host", "[G]\nalice@elsewhere.org\n", "not an account of this server"},
		{"domain", "[G]\na.org\n", "not a bare JID"},
		{"bad header", "[G\nalice@a.org\n", "a group is [Name]"},
	} {
		if _, err := ParseSharedGroups(strings.NewReader(tc.file), []string{"a.org"}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestSharedRosters: the groups' contacts appear in every read beside the stored ones,
// subscribed both ways; a user's rename is stored without the groups' subscription; a
// shared contact cannot be removed; the version changes with the groups and goes back
// to the stored one for a user in no group.
func TestSharedRosters(t *testing.T) {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Rosters().Put("alice@a.org", store.RosterItem{JID: "zed@x.org", Sub: store.SubTo}); err != nil {
		t.Fatal(err)
	}
	plainVer, _ := st.Rosters().Version("alice@a.org")
	g, err := ParseSharedGroups(strings.NewReader(groupsFile), []string{"a.org", "b.org"})
	if err != nil {
		t.Fatal(err)
	}
	st.SetRosterWrapper(g.Wrap)
	r := st.Rosters()
	items, ver, err := r.Get("alice@a.org")
	if err != nil || len(items) != 4 || ver == plainVer {
		t.Fatalf("alice's roster: %v %d %v", items, ver, err)
	}
	it, err := r.Item("alice@a.org", "bob@a.org")
	if err != nil || it.Sub != store.SubBoth || !it.Shared || it.Name != "Bob" {
		t.Fatalf("bob on alice's roster: %+v %v", it, err)
	}
	if it, err := r.Item("alice@a.org", "zed@x.org"); err != nil || it.Shared || it.Sub != store.SubTo {
		t.Fatalf("a stored contact: %+v %v", it, err)
	}
	// A rename is the user's: stored, without the groups' subscription.
	it.Name, it.Groups = "Bobby", []string{"Friends"}
	if _, err := r.Put("alice@a.org", it); err != nil {
		t.Fatal(err)
	}
	if stored, err := st.StoredRosters().Item("alice@a.org", "bob@a.org"); err != nil || stored.Sub != store.SubNone || stored.Name != "Bobby" {
		t.Fatalf("stored rename: %+v %v", stored, err)
	}
	if it, _ := r.Item("alice@a.org", "bob@a.org"); it.Name != "Bobby" || it.Sub != store.SubBoth || it.Groups[0] != "Friends" {
		t.Fatalf("renamed: %+v", it)
	}
	if _, err := r.Delete("alice@a.org", "bob@a.org"); !errors.Is(err, store.ErrShared) {
		t.Fatalf("removing a shared contact: %v", err)
	}
	// Other groups: another version; no groups: the stored one.
	before, _ := r.Version("alice@a.org")
	g2, _ := ParseSharedGroups(strings.NewReader("[Team]\nalice@a.org\nbob@a.org\n"), []string{"a.org"})
	st.SetRosterWrapper(g2.Wrap)
	if v, _ := st.Rosters().Version("alice@a.org"); v == before {
		t.Fatal("the version did not change with the groups")
	}
	st.SetRosterWrapper(nil)
	stored, _ := st.Rosters().Version("alice@a.org")
	if items, ver, _ := st.Rosters().Get("alice@a.org"); len(items) != 2 || ver != stored {
		t.Fatalf("without groups: %v %d (stored %d)", items, ver, stored)
	}
}

func FuzzParseSharedGroups(f *testing.F) {
	f.Add(groupsFile)
	f.Add("[G]\nalice@a.org=\n[G]\nbob@a.org\n")
	f.Fuzz(func(t *testing.T, file string) {
		g, err := ParseSharedGroups(strings.NewReader(file), []string{"a.org", "b.org"})
		if err != nil {
			return
		}
		for user, items := range g.items {
			for _, it := range items {
				if it.JID == user || it.Sub != store.SubBoth || len(it.Groups) == 0 {
					t.Fatalf("%s: %+v", user, it)
				}
			}
		}
	})
}

// TestPublicGroups: a public group ([+Name]) puts its members on every account's roster,
// members and others alike (never a member on its own), beside its private groups.
func TestPublicGroups(t *testing.T) {
	g, err := ParseSharedGroups(strings.NewReader("[+Help desk]\nhelp@a.org=Help\nops@a.org\n[Team]\nalice@a.org\nops@a.org\n"), []string{"a.org"})
	if err != nil {
		t.Fatal(err)
	}
	r := g.Wrap(emptyRosters{})
	for user, want := range map[string]string{
		"stranger@a.org": "help@a.org=Help/Help desk ops@a.org=/Help desk",
		"help@a.org":     "ops@a.org=/Help desk",
		"alice@a.org":    "help@a.org=Help/Help desk ops@a.org=/Team+Help desk",
		"ops@a.org":      "alice@a.org=/Team help@a.org=Help/Help desk",
	} {
		items, ver, err := r.Get(user)
		var got []string
		for _, it := range items {
			got = append(got, it.JID+"="+it.Name+"/"+strings.Join(it.Groups, "+"))
		}
		if err != nil || strings.Join(got, " ") != want || ver == 0 {
			t.Errorf("%s: %q (ver %d, %v), want %q", user, strings.Join(got, " "), ver, err, want)
		}
	}
	if it, err := r.Item("stranger@a.org", "ops@a.org"); err != nil || it.Sub != store.SubBoth || !it.Shared {
		t.Fatalf("ops on a stranger's roster: %+v %v", it, err)
	}
	if _, err := r.Delete("stranger@a.org", "help@a.org"); !errors.Is(err, store.ErrShared) {
		t.Fatalf("removing a public group's member: %v", err)
	}
}

// emptyRosters is a store with no stored rosters.
type emptyRosters struct{ store.Rosters }

func (emptyRosters) Get(string) ([]store.RosterItem, uint64, error) { return nil, 0, nil }
func (emptyRosters) Item(string, string) (store.RosterItem, error) {
	return store.RosterItem{}, store.ErrNotFound
}
func (emptyRosters) Version(string) (uint64, error) { return 0, nil }
