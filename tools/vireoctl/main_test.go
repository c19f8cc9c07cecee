package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/admin"
	"github.com/vireo-im/vireo/engine/config"
	"github.com/vireo-im/vireo/modules/module"
)

func TestS2SPrint(t *testing.T) {
	if r, err := parse("s2s", nil); err != nil || r.Op != "s2s" {
		t.Fatalf("parse s2s: %v %v", r, err)
	}
	if _, err := parse("s2s", []string{"x"}); err == nil {
		t.Fatal("s2s with an argument accepted")
	}
	var b bytes.Buffer
	printS2S(&b, nil)
	if !strings.Contains(b.String(), "no server-to-server streams") {
		t.Fatalf("empty: %q", b.String())
	}
	b.Reset()
	printS2S(&b, []admin.S2SConn{
		{Local: "a.example", Remote: "b.example", Direction: "out", Auth: "external", TLS: "1.3", CertValid: true, IdleS: 75.4},
		{Local: "a.example", Remote: "b.example", Direction: "in", Auth: "dialback", TLS: "1.2", IdleS: 3},
		{Local: "a.example", Remote: "c.example", Direction: "in", Auth: "dialback", TLS: "1.3", DirectTLS: true, IdleS: 1},
		{Local: "a.example", Remote: "d.example", Direction: "out", Auth: "dialback", TLS: "1.3", Via: "edge-2", IdleS: 2},
		{Local: "a.example", Remote: "e.example", Direction: "in", Auth: "dialback", TLS: "1.3", IdleS: 4, Bidi: true},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if !strings.HasSuffix(lines[4], "2s via edge edge-2") {
		t.Fatalf("a stream through an edge: %q", lines[4])
	}
	if !strings.HasSuffix(lines[5], "4s both ways") {
		t.Fatalf("a bidirectional stream: %q", lines[5])
	}
	lines = lines[:4]
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "REMOTE") {
		t.Fatalf("table: %q", b.String())
	}
	for i, want := range [][]string{{"b.example", "out", "external", "1.3", "starttls", "ok", "1m15s"},
		{"b.example", "in", "dialback", "1.2", "starttls", "-", "3s"}, {"c.example", "in", "dialback", "1.3", "direct", "-", "1s"}} {
		f := strings.Fields(lines[i+1])
		if len(f) != 8 || f[0] != want[0] || f[1] != want[1] || f[3] != want[2] || f[4] != want[3] || f[5] != want[4] || f[6] != want[5] || f[7] != want[6] {
			t.Fatalf("line %d: %q, want %v", i+1, lines[i+1], want)
		}
	}
}

func TestCertsPrint(t *testing.T) {
	na := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		cert admin.CertStatus
		want []string // the lines after the header
	}{
		{"file", admin.CertStatus{Host: "a.example", Source: "file", File: "/etc/vireo/a.pem", Issuer: "a.example", SelfSigned: true, NotAfter: na},
			[]string{"a.example file 2027-01-02T03:04:05Z acme off - a.example (self-signed)", "file /etc/vireo/a.pem"}},
		{"acme", admin.CertStatus{Host: "b.example", Source: "acme", Issuer: "R11", NotAfter: na, ACME: true,
			LastAttempt: na.Add(-60 * 24 * time.Hour), NextRenewal: na.Add(-30 * 24 * time.Hour)},
			[]string{"b.example acme 2027-01-02T03:04:05Z 2026-11-03T03:04:05Z 2026-12-03T03:04:05Z R11"}},
		{"acme, not issued yet", admin.CertStatus{Host: "c.example", Source: "file", File: "/d/c.crt", Issuer: "c.example", SelfSigned: true,
			NotAfter: na, ACME: true, LastAttempt: na.Add(-time.Hour), LastError: "new order: rate limited", Failures: 2, NextRenewal: na.Add(time.Hour)},
			[]string{"c.example file 2027-01-02T03:04:05Z 2027-01-02T02:04:05Z 2027-01-02T04:04:05Z c.example (self-signed)",
				"file /d/c.crt", "last order failed (2 in a row): new order: rate limited"}},
		{"acme, not looked at yet", admin.CertStatus{Host: "d.example", Source: "file", Issuer: "d.example", NotAfter: na, ACME: true},
			[]string{"d.example file 2027-01-02T03:04:05Z - - d.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			printCerts(&b, []admin.CertStatus{tc.cert})
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if !strings.HasPrefix(lines[0], "CERTIFICATE") {
				t.Fatalf("no header: %q", b.String())
			}
			var got []string
			for _, l := range lines[1:] {
				got = append(got, strings.Join(strings.Fields(l), " "))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestVhostOffline: with no server answering, vhost add and remove edit the config file
// and vhost list reads it; bad arguments are refused before anything is read.
func TestVhostOffline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vireo.toml")
	if err := config.WriteDefault(path, "a.org", false); err != nil {
		t.Fatal(err)
	}
	ctl := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"-config", path}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	for _, bad := range [][]string{{"vhost"}, {"vhost", "add"}, {"vhost", "list", "x"}, {"vhost", "drop", "b.org"}} {
		if code, out := ctl(bad...); code != 2 {
			t.Fatalf("%v: exit %d, %s", bad, code, out)
		}
	}
	if code, out := ctl("vhost", "add", "B.org"); code != 0 {
		t.Fatalf("add: %d %s", code, out)
	}
	if code, out := ctl("vhost", "list"); code != 0 || out != "a.org\nb.org\n" {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, out := ctl("vhost", "add", "b.org"); code != 1 || !strings.Contains(out, "already") {
		t.Fatalf("add twice: %d %s", code, out)
	}
	if code, out := ctl("vhost", "remove", "a.org"); code != 0 {
		t.Fatalf("remove: %d %s", code, out)
	}
	c, err := config.Load(path)
	if err != nil || !slices.Equal(c.Domains, []string{"b.org"}) {
		t.Fatalf("config after remove: %v %v", c, err)
	}
	if code, out := ctl("vhost", "remove", "b.org"); code != 1 || !strings.Contains(out, "last") {
		t.Fatalf("remove the last: %d %s", code, out)
	}
	if _, err := os.Stat(c.DBDir()); err == nil {
		t.Fatal("vhost opened (created) the database")
	}
}

// TestFederationOffline: with no server answering, s2s deny and allow edit the config
// file's [s2s] lists and list them; bad arguments are refused before anything is read,
// and an edit the config would refuse (a domain on both lists) changes nothing.
func TestFederationOffline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vireo.toml")
	if err := config.WriteDefault(path, "a.org", false); err != nil {
		t.Fatal(err)
	}
	ctl := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"-config", path}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	for _, bad := range [][]string{{"s2s", "block"}, {"s2s", "deny", "add"}, {"s2s", "deny", "list", "x"}, {"s2s", "allow", "drop", "b.org"}} {
		if code, out := ctl(bad...); code != 2 {
			t.Fatalf("%v: exit %d, %s", bad, code, out)
		}
	}
	if code, out := ctl("s2s", "deny", "add", "Spam.Example"); code != 0 || out != "ok\nspam.example\n" {
		t.Fatalf("add: %d %q", code, out)
	}
	if code, out := ctl("s2s", "deny", "add", "*.bad.example"); code != 0 || out != "ok\nspam.example\n*.bad.example\n" {
		t.Fatalf("add a wildcard: %d %q", code, out)
	}
	if code, out := ctl("s2s", "deny"); code != 0 || out != "spam.example\n*.bad.example\n" {
		t.Fatalf("list: %d %q", code, out)
	}
	before, _ := os.ReadFile(path)
	if code, out := ctl("s2s", "allow", "add", "spam.example"); code != 1 || !strings.Contains(out, "both") {
		t.Fatalf("a domain on both lists: %d %s", code, out)
	}
	if code, out := ctl("s2s", "deny", "add", "no domain"); code != 1 || !strings.Contains(out, "not a domain") {
		t.Fatalf("no domain: %d %s", code, out)
	}
	if code, out := ctl("s2s", "deny", "remove", "other.example"); code != 1 || !strings.Contains(out, "not on the deny list") {
		t.Fatalf("remove one not listed: %d %s", code, out)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("a refused edit changed the file")
	}
	if code, out := ctl("s2s", "deny", "remove", "spam.example"); code != 0 || out != "ok\n*.bad.example\n" {
		t.Fatalf("remove: %d %q", code, out)
	}
	c, err := config.Load(path)
	if err != nil || !slices.Equal(c.S2S.Deny, []string{"*.bad.example"}) {
		t.Fatalf("config after remove: %v %v", c.S2S.Deny, err)
	}
	if _, err := os.Stat(c.DBDir()); err == nil {
		t.Fatal("s2s deny opened (created) the database")
	}
}

func TestParseExport(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		split bool
		for_  string
		ok    bool
	}{
		{[]string{"/tmp/a.xml"}, false, "", true},
		{[]string{"-split", "/tmp/dir"}, true, "", true},
		{[]string{"-split"}, false, "", false},
		{nil, false, "", false},
		{[]string{"/tmp/a.xml", "/tmp/b.xml"}, false, "", false},
		{[]string{"-for", "ejabberd", "/tmp/a.xml"}, false, "ejabberd", true},
		{[]string{"-for=ejabberd-sha256", "-split", "/tmp/dir"}, true, "ejabberd-sha256", true},
		{[]string{"-split", "-for", "ejabberd", "/tmp/dir"}, true, "ejabberd", true},
		{[]string{"-for", "xep0227", "/tmp/a.xml"}, false, "xep0227", true},
		{[]string{"-for", "prosody", "/tmp/a.xml"}, false, "", false},
		{[]string{"-for", "/tmp/a.xml"}, false, "", false},
		{[]string{"/tmp/a.xml", "-split"}, false, "", false},
	} {
		r, err := parse("export", tc.args)
		if (err == nil) != tc.ok || (tc.ok && (r.Split != tc.split || r.For != tc.for_ || r.Path != tc.args[len(tc.args)-1])) {
			t.Errorf("export %q: %+v %v", tc.args, r, err)
		}
	}
}

func TestParseInvite(t *testing.T) {
	for _, tc := range []struct {
		args                []string
		action, target, tok string
		ttl                 time.Duration
		ok                  bool
	}{
		{[]string{"example.org"}, "create", "example.org", "", 0, true},
		{[]string{"-ttl", "48h", "juliet@example.org"}, "create", "juliet@example.org", "", 48 * time.Hour, true},
		{[]string{"list"}, "list", "", "", 0, true},
		{[]string{"revoke", "TOKEN"}, "revoke", "", "TOKEN", 0, true},
		{[]string{"revoke"}, "", "", "", 0, false},
		{nil, "", "", "", 0, false},
		{[]string{"-ttl", "soon", "example.org"}, "", "", "", 0, false},
	} {
		r, err := parse("invite", tc.args)
		if (err == nil) != tc.ok || tc.ok && (r.Action != tc.action || r.JID != tc.target || r.Token != tc.tok || r.TTL != tc.ttl) {
			t.Errorf("invite %q: %+v %v", tc.args, r, err)
		}
	}
}

func TestParseReset(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		target string
		ttl    time.Duration
		ok     bool
	}{
		{[]string{"juliet@example.org"}, "juliet@example.org", 0, true},
		{[]string{"-ttl", "2h", "juliet@example.org"}, "juliet@example.org", 2 * time.Hour, true},
		{nil, "", 0, false},
		{[]string{"a@example.org", "b@example.org"}, "", 0, false},
	} {
		r, err := parse("reset", tc.args)
		if (err == nil) != tc.ok || tc.ok && (r.Op != "reset" || r.JID != tc.target || r.TTL != tc.ttl) {
			t.Errorf("reset %q: %+v %v", tc.args, r, err)
		}
	}
}

func TestParseUsers(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		domain  string
		partial bool
		ok      bool
	}{
		{nil, "", false, true},
		{[]string{"example.org"}, "example.org", false, true},
		{[]string{"-partial"}, "", true, true},
		{[]string{"-partial", "example.org"}, "example.org", true, true},
		{[]string{"a.org", "b.org"}, "", false, false},
		{[]string{"-whatever"}, "", false, false},
	} {
		r, err := parse("users", tc.args)
		if (err == nil) != tc.ok || tc.ok && (r.Domain != tc.domain || r.Partial != tc.partial) {
			t.Errorf("users %q: %+v %v", tc.args, r, err)
		}
	}
}

func TestRoomsPrint(t *testing.T) {
	if r, err := parse("rooms", []string{"conference.example.org"}); err != nil || r.Op != "rooms" || r.Domain != "conference.example.org" {
		t.Fatalf("parse rooms SERVICE: %+v %v", r, err)
	}
	if _, err := parse("rooms", []string{"a", "b"}); err == nil {
		t.Fatal("rooms with two arguments accepted")
	}
	var b bytes.Buffer
	printRooms(&b, nil)
	if !strings.Contains(b.String(), "no rooms") {
		t.Fatalf("empty: %q", b.String())
	}
	b.Reset()
	printRooms(&b, []module.RoomInfo{{JID: "lobby@conference.example.org", Name: "Lobby", Occupants: 42, Public: true, Persistent: true},
		{JID: "new@conference.example.org", Occupants: 1, Locked: true}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "42 public  persistent Lobby") || !strings.Contains(lines[2], "1 hidden  locked") {
		t.Fatalf("rooms:\n%s", b.String())
	}
}

// TestModulesList: vireoctl modules lists every module, and with a config says which it
// turns off, everywhere or per host.
func TestModulesList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vireo.toml")
	if err := os.WriteFile(path, []byte(`domains = ["a.org", "b.org", "c.org"]
[modules]
disabled = ["version"]
[vhosts."c.org"]
modules_disabled = ["mam", "upload"]
[vhosts."b.org"]
modules_disabled = ["mam"]
[vhosts."b.org".modules.muc]
max_rooms = 5
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-config", path, "modules"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(out.String(), "\n")
	want := map[string]string{"version": "off", "mam": "per-host off on b.org, c.org", "upload": "per-host off on c.org", "roster": "",
		"muc": "XEP-0045 per-host own settings on b.org"}
	for id, state := range want {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, id+" ") || l == id })
		if i < 0 {
			t.Fatalf("no line for %s in %s", id, out.String())
		}
		if got := strings.TrimSpace(strings.Join(strings.Fields(lines[i])[1:], " ")); !strings.HasSuffix(got, state) || state == "" && strings.Contains(got, "off") {
			t.Errorf("%s: %q, want it to end with %q", id, lines[i], state)
		}
	}
	// Without a config it still lists them.
	out.Reset()
	if code := run([]string{"-config", filepath.Join(t.TempDir(), "none.toml"), "modules"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "mam") || strings.Contains(out.String(), " off") {
		t.Fatalf("without a config: %d %s", code, out.String())
	}
}
