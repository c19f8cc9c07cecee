package router_test

import (
	"strings"
	"testing"

	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// TestIsolated: which stanzas the wall around an isolated host stops, by the hosts their
// two ends belong to (the host itself, its services, a component under it, another
// host's, another server's).
func TestIsolated(t *testing.T) {
	e := newEnv(t) // example.org
	if err := e.R.SetDomains([]string{"example.org", "corp.example"}); err != nil {
		t.Fatal(err)
	}
	j := func(s string) jid.JID {
		v, err := jid.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		iso      []string
		from, to string
		walled   bool
	}{
		{nil, "a@corp.example/r", "b@example.org", false},
		{[]string{"corp.example"}, "a@corp.example/r", "b@corp.example", false},
		{[]string{"corp.example"}, "a@corp.example/r", "room@conference.corp.example", false},
		{[]string{"corp.example"}, "a@corp.example/r", "gw.corp.example", false},
		{[]string{"corp.example"}, "a@corp.example/r", "corp.example", false},
		{[]string{"corp.example"}, "a@corp.example/r", "b@example.org", true},
		{[]string{"corp.example"}, "b@example.org/r", "a@corp.example", true},
		{[]string{"corp.example"}, "room@conference.example.org/n", "a@corp.example/r", true},
		{[]string{"corp.example"}, "a@corp.example/r", "room@conference.example.org", true},
		{[]string{"corp.example"}, "a@corp.example/r", "x@remote.example", true},
		{[]string{"corp.example"}, "b@example.org/r", "c@example.org", false},
		{[]string{"corp.example"}, "b@example.org/r", "x@remote.example", false},
	} {
		e.R.SetIsolated(tc.iso)
		got := router.Walled(e.R, j(tc.from), j(tc.to))
		if (got != "") != tc.walled {
			t.Errorf("isolated %v, %s -> %s: %q, want walled %v", tc.iso, tc.from, tc.to, got, tc.walled)
		}
		if got != "" && !strings.Contains(got, "corp.example is a closed community") {
			t.Errorf("%s -> %s: text %q", tc.from, tc.to, got)
		}
	}
}
