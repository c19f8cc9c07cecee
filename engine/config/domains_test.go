package config

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRewriteDomains(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		domains  []string
		want     string // "" with err
		err      bool
	}{
		{name: "one line", in: "domains = [\"a.org\"]\ndata_dir = \"d\"\n", domains: []string{"a.org", "b.org"},
			want: "domains = [\"a.org\", \"b.org\"]\ndata_dir = \"d\"\n"},
		{name: "comments kept", in: "# hosts\ndomains = [\"a.org\"] # mine\n\n[c2s]\n# domains = [\"x\"]\n", domains: []string{"b.org"},
			want: "# hosts\ndomains = [\"b.org\"] # mine\n\n[c2s]\n# domains = [\"x\"]\n"},
		{name: "multi-line array with comments", in: "log_level = \"info\"\ndomains = [\n  \"a.org\", # first ]\n  \"c.org\",\n]\n[s2s]\n", domains: []string{"a.org"},
			want: "log_level = \"info\"\ndomains = [\"a.org\"]\n[s2s]\n"},
		{name: "a string before that looks like the key", in: "data_dir = \"\"\"\ndomains = [\"x\"]\n\"\"\"\ndomains=[\"a.org\"]\n", domains: []string{"b.org"},
			want: "data_dir = \"\"\"\ndomains = [\"x\"]\n\"\"\"\ndomains = [\"b.org\"]\n"},
		{name: "nested array before", in: "x = [\n[1],\n]\ndomains = ['a.org']\n", domains: []string{"b.org"},
			want: "x = [\n[1],\n]\ndomains = [\"b.org\"]\n"},
		{name: "only under a table", in: "[c2s]\ndomains = [\"a.org\"]\n", domains: []string{"b.org"}, err: true},
		{name: "dotted key", in: "domains.x = 1\n", domains: []string{"b.org"}, err: true},
		{name: "longer key", in: "domainsx = [\"a\"]\n", domains: []string{"b.org"}, err: true},
		{name: "not an array", in: "domains = \"a.org\"\n", domains: []string{"b.org"}, err: true},
		{name: "escaped", in: "domains = []\n", domains: []string{"a\"b\\c\x01"}, want: "domains = [\"a\\\"b\\\\c\\u0001\"]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RewriteDomains([]byte(tc.in), tc.domains)
			if tc.err {
				if err == nil {
					t.Fatalf("no error; got %q", got)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
}

// FuzzRewriteDomains: whatever a valid file says, a rewrite that succeeds reads back with
// the new domains and every other setting unchanged.
func FuzzRewriteDomains(f *testing.F) {
	var def strings.Builder
	defaultTmpl.Execute(&def, map[string]any{"Domain": "a.org", "Registration": true, "When": "now"})
	f.Add(def.String())
	f.Add("domains = [\"a.org\"]\n[c2s]\nlisten = []\n")
	f.Add("x = '''\ndomains = [\"q\"]\n'''\ndomains = [ # c\n\"a.org\" ]\n")
	f.Add("domains = [\"a.org\"]\n[modules.muc]\nsubdomain = \"c\"\n")
	f.Fuzz(func(t *testing.T, src string) {
		was, err := Parse([]byte(src), "/fuzz/vireo.toml")
		if err != nil {
			return
		}
		want := append(slices.Clone(was.Domains), "added.example")
		out, err := RewriteDomains([]byte(src), want)
		if err != nil {
			return
		}
		if err := sameButDomains([]byte(src), out, "/fuzz/vireo.toml", want); err != nil {
			t.Fatalf("%v\nin:  %q\nout: %q", err, src, out)
		}
	})
}

func TestWriteDomains(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vireo.toml")
	if err := WriteDefault(path, "a.org", false); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if err := WriteDomains(path, []string{"a.org", "b.org"}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Domains, []string{"a.org", "b.org"}) {
		t.Fatalf("domains = %v", c.Domains)
	}
	// Only the domains line changed: the operator's comments are all there.
	if strings.Replace(string(before), `domains = ["a.org"]`, `domains = ["a.org", "b.org"]`, 1) != string(after) {
		t.Fatalf("file changed beyond the domains:\n%s", after)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode = %v, %v", fi.Mode(), err)
	}
	// A component on the new name: the file would no longer load, so it is left alone.
	os.WriteFile(path, append(after, "\n[[component.allow]]\ndomain = \"c.org\"\nsecret = \"12345678\"\n"...), 0o640)
	if err := WriteDomains(path, []string{"a.org", "c.org"}); err == nil {
		t.Fatal("domains clashing with a component were written")
	}
	if c, err := Load(path); err != nil || len(c.Domains) != 2 {
		t.Fatalf("after the refused rewrite: %v, %v", c, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".vireo.toml") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

func TestHostCerts(t *testing.T) {
	dir := t.TempDir()
	c := Defaults("a.org")
	c.Domains = []string{"a.org", "b.org"}
	c.path = filepath.Join(dir, "v.toml")
	if err := c.normalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCert(c.TLS.Cert, c.TLS.Key, []string{"a.org"}); err != nil {
		t.Fatal(err)
	}
	cs, err := LoadCerts(c)
	if err != nil {
		t.Fatal(err)
	}
	cn := func(name string) string {
		crt, err := cs.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if err != nil {
			t.Fatal(err)
		}
		return crt.Leaf.Subject.CommonName
	}
	if got := cn("b.org"); got != "a.org" {
		t.Fatalf("b.org without a certificate of its own: served %s, want the default", got)
	}
	made, err := EnsureHostCerts(c)
	if err != nil || !slices.Equal(made, []string{"b.org"}) {
		t.Fatalf("EnsureHostCerts = %v, %v", made, err)
	}
	if made, err := EnsureHostCerts(c); err != nil || len(made) != 0 {
		t.Fatalf("second EnsureHostCerts = %v, %v", made, err)
	}
	if err := cs.Reload(c); err != nil {
		t.Fatal(err)
	}
	bCert, _ := c.HostCert("b.org")
	for name, want := range map[string]string{"a.org": "a.org", "conference.a.org": "a.org", "b.org": "b.org", "conference.b.org": "b.org", "x.net": "a.org"} {
		if got := cn(name); got != want {
			t.Errorf("%s: served %s, want %s", name, got, want)
		}
		// Served reports the same certificate, and the file it came from.
		wantFile := c.TLS.Cert
		if want == "b.org" {
			wantFile = bCert
		}
		if leaf, file := cs.Served(name); leaf == nil || leaf.Subject.CommonName != want || file != wantFile {
			t.Errorf("Served(%s) = %v from %q; want %s from %q", name, leaf, file, want, wantFile)
		}
	}
	cert, _ := c.HostCert("b.org")
	os.WriteFile(cert, []byte("garbage"), 0o644)
	if err := cs.Reload(c); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reload with a broken host certificate: %v", err)
	}
}

func TestRewriteS2SList(t *testing.T) {
	for _, tc := range []struct {
		name, in, key string
		list          []string
		want          string // "" with err
		err           bool
	}{
		{name: "replaced, comments kept", in: "domains = [\"a.org\"]\n[s2s]\n# spam\ndeny = [\"x.org\"] # old\nallow = []\n", key: "deny",
			list: []string{"x.org", "*.y.org"}, want: "domains = [\"a.org\"]\n[s2s]\n# spam\ndeny = [\"x.org\", \"*.y.org\"] # old\nallow = []\n"},
		{name: "the other list", in: "domains = [\"a.org\"]\n[s2s]\ndeny = [\"x.org\"]\nallow = []\n", key: "allow",
			list: []string{"b.org"}, want: "domains = [\"a.org\"]\n[s2s]\ndeny = [\"x.org\"]\nallow = [\"b.org\"]\n"},
		{name: "added under the header", in: "domains = [\"a.org\"]\n[s2s] # federation\nenabled = true\n[s2s.hosts]\n\"b.org\" = \"127.0.0.1:5269\"\n", key: "deny",
			list: []string{"x.org"}, want: "domains = [\"a.org\"]\n[s2s] # federation\ndeny = [\"x.org\"]\nenabled = true\n[s2s.hosts]\n\"b.org\" = \"127.0.0.1:5269\"\n"},
		{name: "under its commented example", in: "[s2s]\nenabled = true\n# Servers never federated with.\n#deny = [\"x\"]\n# allow = []\n[s2s.hosts]\n", key: "deny",
			list: []string{"x.org"}, want: "[s2s]\nenabled = true\n# Servers never federated with.\n#deny = [\"x\"]\ndeny = [\"x.org\"]\n# allow = []\n[s2s.hosts]\n"},
		{name: "an example in another table is not it", in: "[c2s]\n# deny = []\n[s2s]\n", key: "deny",
			list: []string{"x.org"}, want: "[c2s]\n# deny = []\n[s2s]\ndeny = [\"x.org\"]\n"},
		{name: "header on the last line", in: "domains = [\"a.org\"]\n[s2s]", key: "deny",
			list: []string{"x.org"}, want: "domains = [\"a.org\"]\n[s2s]\ndeny = [\"x.org\"]\n"},
		{name: "table added", in: "domains = [\"a.org\"]\n[c2s]\ndeny = [\"not this\"]", key: "deny",
			list: []string{"x.org"}, want: "domains = [\"a.org\"]\n[c2s]\ndeny = [\"not this\"]\n\n[s2s]\ndeny = [\"x.org\"]\n"},
		{name: "a subtable's key is not the table's", in: "[s2s.domains.\"b.org\"]\ndeny = [1]\n[s2s]\nallow = []\n", key: "deny",
			list: nil, want: "[s2s.domains.\"b.org\"]\ndeny = [1]\n[s2s]\ndeny = []\nallow = []\n"},
		{name: "array of tables is not the table", in: "[[s2s]]\ndeny = []\n", key: "deny",
			list: []string{"x.org"}, want: "[[s2s]]\ndeny = []\n\n[s2s]\ndeny = [\"x.org\"]\n"},
		{name: "not a list", in: "[s2s]\ndeny = \"x.org\"\n", key: "deny", list: []string{"x.org"}, err: true},
		{name: "not a federation list", in: "[s2s]\n", key: "listen", list: []string{"x.org"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RewriteS2SList([]byte(tc.in), tc.key, tc.list)
			if tc.err {
				if err == nil {
					t.Fatalf("no error; got %q", got)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
}

// FuzzRewriteS2SList: whatever a valid file says, an edit that EditS2SList's check
// accepts reads back with the new list and every other setting unchanged, and one it
// refuses leaves nothing to write.
func FuzzRewriteS2SList(f *testing.F) {
	var def strings.Builder
	defaultTmpl.Execute(&def, map[string]any{"Domain": "a.org", "Registration": true, "When": "now"})
	f.Add(def.String(), false)
	f.Add("domains = [\"a.org\"]\n[s2s]\nenabled = true\ndeny = [\"x.org\"]\n", true)
	f.Add("domains = [\"a.org\"]\ns2s.deny = [\"x.org\"]\n", false)
	f.Add("domains = [\"a.org\"]\n[s2s.hosts]\n\"b.org\" = \"127.0.0.1:1\"\n", false)
	f.Fuzz(func(t *testing.T, src string, allow bool) {
		was, err := Parse([]byte(src), "/fuzz/vireo.toml")
		if err != nil {
			return
		}
		key, list := "deny", slices.Clone(was.S2S.Deny)
		if allow {
			key, list = "allow", slices.Clone(was.S2S.Allow)
		}
		list = append(list, "added.example")
		out, err := RewriteS2SList([]byte(src), key, list)
		if err != nil {
			return
		}
		got, err := sameButS2SList([]byte(src), out, "/fuzz/vireo.toml", key, len(list))
		if err != nil {
			return // refused: EditS2SList writes nothing
		}
		if !slices.Equal(got, list) {
			t.Fatalf("read back %v, want %v\nin:  %q\nout: %q", got, list, src, out)
		}
	})
}

func TestEditS2SList(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vireo.toml")
	if err := WriteDefault(path, "a.org", false); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	edit, list, err := EditS2SList(path, "deny", []string{"Spam.Example", "*.bad.example"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(list, []string{"spam.example", "*.bad.example"}) {
		t.Fatalf("list = %v", list)
	}
	if now, _ := os.ReadFile(path); string(now) != string(before) {
		t.Fatal("the file changed before Commit")
	}
	if err := edit.Commit(); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.S2S.Deny, list) {
		t.Fatalf("deny = %v", c.S2S.Deny)
	}
	after, _ := os.ReadFile(path)
	example := "# deny = [\"spam.example\", \"*.spam.example\"]\n" // the generated file's, under [s2s]
	if !strings.Contains(string(before), example) || strings.Replace(string(before), example, example+"deny = [\"spam.example\", \"*.bad.example\"]\n", 1) != string(after) {
		t.Fatalf("the operator's text changed:\n%s", after)
	}
	// Refused, and nothing to write: a name that is no domain, one in both lists.
	if _, _, err := EditS2SList(path, "deny", []string{"a b"}); err == nil || !strings.Contains(err.Error(), "a b") {
		t.Fatalf("a bad domain: %v", err)
	}
	if _, _, err := EditS2SList(path, "allow", []string{"spam.example"}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("a domain in both lists: %v", err)
	}
	// Emptied: the key stays, with no entries.
	if edit, list, err := EditS2SList(path, "deny", nil); err != nil || len(list) != 0 {
		t.Fatalf("emptied: %v, %v", list, err)
	} else if err := edit.Commit(); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(path); err != nil || len(c.S2S.Deny) != 0 {
		t.Fatalf("after emptying: %v, %v", c.S2S.Deny, err)
	}
}

// TestEditModuleSetting: a module's setting is written into its table (added when
// missing) as a list or a one-line string whatever it holds (quotes, line ends), and
// reads back; comments and the rest stay; a value of another kind in the file is left
// for the operator.
func TestEditModuleSetting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vireo.toml")
	base := "domains = [\"a.org\"] # mine\n\n[modules.adhoc]\n# who runs XEP-0133\nadmins = [\"alice@a.org\"]\n"
	os.WriteFile(path, []byte(base), 0o600)

	edit, now, err := EditModuleSetting(path, "adhoc", "admins", []string{"alice@a.org", "bob@a.org"})
	if err != nil {
		t.Fatal(err)
	}
	var ac struct{ Admins []string }
	if now.ModuleConfig("adhoc", &ac); !slices.Equal(ac.Admins, []string{"alice@a.org", "bob@a.org"}) {
		t.Fatalf("parsed admins %v", ac.Admins)
	}
	if err := edit.Commit(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := strings.Replace(base, `admins = ["alice@a.org"]`, `admins = ["alice@a.org", "bob@a.org"]`, 1); string(got) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", got, want)
	}

	msg := "Welcome to \"a.org\".\nRules: be kind \\ patient.\n\tTab, and é."
	edit, _, err = EditModuleSetting(path, "welcome", "message", msg)
	if err != nil {
		t.Fatal(err)
	}
	edit.Commit()
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var wc struct{ Message string }
	if c.ModuleConfig("welcome", &wc); wc.Message != msg {
		t.Fatalf("message read back %q", wc.Message)
	}
	got, _ = os.ReadFile(path)
	if !strings.HasPrefix(string(got), string(got[:len(base)])) || !strings.HasSuffix(string(got), "\n[modules.welcome]\nmessage = \"Welcome to \\\"a.org\\\".\\nRules: be kind \\\\ patient.\\n\\u0009Tab, and é.\"\n") {
		t.Fatalf("file:\n%s", got)
	}
	// Replaced in place the second time.
	edit, _, err = EditModuleSetting(path, "welcome", "message", "")
	if err != nil {
		t.Fatal(err)
	}
	edit.Commit()
	if got, _ := os.ReadFile(path); strings.Count(string(got), "message =") != 1 || !strings.Contains(string(got), "message = \"\"\n") {
		t.Fatalf("file:\n%s", got)
	}
	// Refused: a string where the file has a list.
	if _, _, err := EditModuleSetting(path, "adhoc", "admins", "bob@a.org"); err == nil {
		t.Fatal("a string written over a list")
	}
	// The running configuration with one module's table taken from the file.
	was, _ := Parse([]byte(base), path)
	with := was.WithModule("welcome", c)
	var w2 struct{ Message string }
	if with.ModuleConfig("welcome", &w2); w2.Message != msg {
		t.Fatalf("WithModule: %q", w2.Message)
	}
	if r, err := with.Redacted(); err != nil || !strings.Contains(r, "Rules") {
		t.Fatalf("WithModule redacted: %v\n%s", err, r)
	}
}

// FuzzRewriteModuleSetting: whatever a valid file says and whatever the string, a rewrite
// of [modules.welcome] message either is refused or parses, reads the string back and
// leaves every other setting as it was (EditModuleSetting's checks, here without a file).
func FuzzRewriteModuleSetting(f *testing.F) {
	var def strings.Builder
	defaultTmpl.Execute(&def, map[string]any{"Domain": "a.org", "Registration": true, "When": "now"})
	f.Add(def.String(), "Welcome.\nBe kind.")
	f.Add("domains = [\"a.org\"]\n[modules.welcome]\nmessage = '''\nold\n'''\n", "new \"quoted\" \\ text")
	f.Add("domains = [\"a.org\"]\n[modules.welcome] # here\nsubject = \"x\"\n[modules.adhoc]\n", "\x00\x7f\t")
	f.Fuzz(func(t *testing.T, src, msg string) {
		if !utf8.ValidString(msg) {
			return
		}
		was, err := Parse([]byte(src), "/fuzz/vireo.toml")
		if err != nil {
			return
		}
		out, err := rewriteKey([]byte(src), "modules.welcome", "message", appendString(nil, "message", msg), false)
		if err != nil {
			return
		}
		now, err := Parse(out, "/fuzz/vireo.toml")
		if err != nil {
			return // refused: EditModuleSetting writes nothing
		}
		var got struct{ Message string }
		if err := now.ModuleConfig("welcome", &got); err != nil || got.Message != msg {
			t.Fatalf("read back %q (%v), want %q\nin:  %q\nout: %q", got.Message, err, msg, src, out)
		}
		a, _ := was.WithModule("welcome", now).Redacted()
		b, _ := now.Redacted()
		if a != b {
			t.Fatalf("other settings changed\nin:  %q\nout: %q", src, out)
		}
	})
}
