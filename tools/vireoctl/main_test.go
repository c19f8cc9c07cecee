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
		{Local: "a.example", Remote: "c.example", Direction: "in", Auth: "dialback", TLS: "1.3", DirectTLS: true, IdleS: 1},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
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
