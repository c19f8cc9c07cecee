package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/engine/admin"
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
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "REMOTE") {
		t.Fatalf("table: %q", b.String())
	}
	for i, want := range [][]string{{"b.example", "out", "external", "1.3", "ok", "1m15s"}, {"b.example", "in", "dialback", "1.2", "-", "3s"}} {
		f := strings.Fields(lines[i+1])
		if len(f) != 7 || f[0] != want[0] || f[1] != want[1] || f[3] != want[2] || f[4] != want[3] || f[5] != want[4] || f[6] != want[5] {
			t.Fatalf("line %d: %q, want %v", i+1, lines[i+1], want)
		}
	}
}

func TestParseExport(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		split bool
		ok    bool
	}{
		{[]string{"/tmp/a.xml"}, false, true},
		{[]string{"-split", "/tmp/dir"}, true, true},
		{[]string{"-split"}, false, false},
		{nil, false, false},
		{[]string{"/tmp/a.xml", "/tmp/b.xml"}, false, false},
	} {
		r, err := parse("export", tc.args)
		if (err == nil) != tc.ok || (tc.ok && (r.Split != tc.split || r.Path != tc.args[len(tc.args)-1])) {
			t.Errorf("export %q: %+v %v", tc.args, r, err)
		}
	}
}
