package engine

import "testing"

func TestDomainListed(t *testing.T) {
	list := []string{"spam.example", "*.bad.example"}
	for _, tc := range []struct {
		domain string
		want   bool
	}{
		{"spam.example", true},
		{"sub.spam.example", false}, // exact entries do not cover subdomains
		{"bad.example", false},      // nor does a wildcard its parent
		{"a.bad.example", true},
		{"a.b.bad.example", true},
		{"notbad.example", false},
		{"xbad.example", false},
		{"good.example", false},
	} {
		if got := domainListed(list, tc.domain); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.domain, got, tc.want)
		}
	}
}
