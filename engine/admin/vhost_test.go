package admin

import (
	"slices"
	"testing"
)

func TestNextHosts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hosts  []string
		add    bool
		domain string
		want   []string
		d      string
		err    bool
	}{
		{name: "add", hosts: []string{"a.org"}, add: true, domain: "b.org", want: []string{"a.org", "b.org"}, d: "b.org"},
		{name: "add prepared", hosts: []string{"a.org"}, add: true, domain: "B.Org.", want: []string{"a.org", "b.org"}, d: "b.org"},
		{name: "add twice", hosts: []string{"a.org", "b.org"}, add: true, domain: "b.org", err: true},
		{name: "add not a domain", hosts: []string{"a.org"}, add: true, domain: "a b", err: true},
		{name: "add empty", hosts: []string{"a.org"}, add: true, domain: "", err: true},
		{name: "remove", hosts: []string{"a.org", "b.org", "c.org"}, domain: "b.org", want: []string{"a.org", "c.org"}, d: "b.org"},
		{name: "remove unknown", hosts: []string{"a.org", "b.org"}, domain: "c.org", err: true},
		{name: "remove the last", hosts: []string{"a.org"}, domain: "a.org", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.hosts)
			got, d, err := NextHosts(in, tc.add, tc.domain)
			if tc.err {
				if err == nil {
					t.Fatalf("no error; got %v", got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) || d != tc.d {
				t.Fatalf("got %v %q %v, want %v %q", got, d, err, tc.want, tc.d)
			}
			if !slices.Equal(in, tc.hosts) {
				t.Fatalf("the input changed: %v", in)
			}
		})
	}
}
